//! Telling the user what is happening: bars on a terminal, one plain line per
//! step in CI logs and pipes.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::Verbosity;

/// How progress is shown; chosen once per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// indicatif spinners and bars, redrawn in place.
    Bars,
    /// One line per step, for logs that must read well after the fact.
    Lines,
    /// Nothing but errors.
    Quiet,
}

impl Style {
    /// Bars only on an interactive terminal outside CI: `CI` is set by
    /// GitHub Actions, GitLab CI and most other runners.
    pub fn detect(verbosity: Verbosity) -> Style {
        if verbosity.quiet {
            Style::Quiet
        } else if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            Style::Bars
        } else {
            Style::Lines
        }
    }
}

/// Reports the steps of a command on stderr.
pub struct Progress {
    style: Style,
    verbose: bool,
}

impl Progress {
    pub fn new(verbosity: Verbosity) -> Progress {
        Progress {
            style: Style::detect(verbosity),
            verbose: verbosity.verbose,
        }
    }

    /// Starts a step; the returned [`Step`] finishes it.
    pub fn step(&self, message: impl Into<String>) -> Step {
        let message = message.into();
        match self.style {
            Style::Bars => {
                let bar = ProgressBar::new_spinner().with_message(message);
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .expect("the template is valid"),
                );
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                Step { bar: Some(bar) }
            }
            Style::Lines => {
                eprintln!("{message}");
                Step { bar: None }
            }
            Style::Quiet => Step { bar: None },
        }
    }

    /// Prints the outcome of a command, which `-q` silences.
    pub fn info(&self, message: impl AsRef<str>) {
        if self.style != Style::Quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// Prints a warning, which even `-q` shows.
    pub fn warn(&self, message: impl AsRef<str>) {
        eprintln!("warning: {}", message.as_ref());
    }
}

/// A step in progress; on a terminal its spinner stops when it is finished
/// or dropped.
pub struct Step {
    bar: Option<ProgressBar>,
}

impl Step {
    /// Replaces the spinner with `message` on a line of its own.
    pub fn finish(self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            eprintln!("{}", message.into());
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}

/// The stages of a command, one after another: each a spinner with its
/// elapsed time on a terminal, a line otherwise; with `-v`, each also says
/// when it started, so slow stages stand out in CI logs.
pub struct Stages<'a> {
    progress: &'a Progress,
    /// The stage running, its message and when it started.
    current: std::cell::RefCell<Option<(Step, String, std::time::Instant)>>,
    started: std::time::Instant,
}

impl<'a> Stages<'a> {
    pub fn new(progress: &'a Progress) -> Stages<'a> {
        Stages {
            progress,
            current: std::cell::RefCell::new(None),
            started: std::time::Instant::now(),
        }
    }

    /// Ends the stage running, if any, and starts `message`.
    pub fn start(&self, message: &str) {
        self.end();
        let step = if self.progress.verbose {
            let at = self.started.elapsed().as_secs_f64();
            self.progress.step(format!("[{at:.2} s] {message}"))
        } else {
            self.progress.step(message)
        };
        *self.current.borrow_mut() = Some((step, message.to_owned(), std::time::Instant::now()));
    }

    /// Ends the stage running, if any.
    pub fn end(&self) {
        if let Some((step, message, started)) = self.current.borrow_mut().take() {
            step.finish(format!(
                "{message}: {:.2} s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
}

/// Download progress from image resolution: a bar per blob (bytes, rate)
/// on a terminal, a line per blob otherwise.
pub struct Downloads {
    style: Style,
    bars: indicatif::MultiProgress,
    active: std::sync::Mutex<std::collections::HashMap<String, ProgressBar>>,
}

impl Downloads {
    pub fn new(progress: &Progress) -> Downloads {
        Downloads {
            style: progress.style,
            bars: indicatif::MultiProgress::new(),
            active: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn short(digest: &crate::image::Digest) -> String {
        digest.hex().chars().take(12).collect()
    }
}

impl crate::image::Progress for Downloads {
    fn blob_started(&self, digest: &crate::image::Digest, size: u64) {
        match self.style {
            Style::Bars => {
                let bar = self.bars.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                );
                bar.set_message(Self::short(digest));
                if let Ok(mut active) = self.active.lock() {
                    active.insert(digest.to_string(), bar);
                }
            }
            Style::Lines => eprintln!("fetching {digest} ({size} bytes)"),
            Style::Quiet => {}
        }
    }

    fn blob_advanced(&self, digest: &crate::image::Digest, done: u64) {
        if let Ok(active) = self.active.lock()
            && let Some(bar) = active.get(&digest.to_string())
        {
            bar.set_position(done);
        }
    }

    fn blob_finished(&self, digest: &crate::image::Digest) {
        if let Ok(mut active) = self.active.lock()
            && let Some(bar) = active.remove(&digest.to_string())
        {
            bar.finish_and_clear();
        }
        if self.style == Style::Lines {
            eprintln!("fetched {digest}");
        }
    }

    fn warning(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn waiting(&self, message: &str) {
        super::say_waiting(message);
    }
}
