//! Where a build's outputs go, decided once when the command line is read:
//! a directory and a base name (`--dir`, `--name`), or what `-o` names — a
//! file to replace whole, or a FIFO, character device or stdout to stream
//! into. Nothing else is ever written to: a symbolic link, directory,
//! socket or block device given to `-o` is refused, not replaced.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;

use super::atomic::{self, AtomicFile};
use super::{Format, OutputError};
use crate::file_type::describe;

/// Where the outputs of a build go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Files named `<name>…` in a directory, as LinuxKit names them.
    Directory { dir: PathBuf, name: Name },
    /// One format's single output, given with `-o`.
    Output(Target),
}

impl Destination {
    /// The base name outputs are named after.
    pub fn name(&self) -> String {
        match self {
            Destination::Directory { name, .. } => name.to_string(),
            Destination::Output(Target::File(path)) => file_name(path),
            Destination::Output(Target::Stream(stream)) => file_name(stream.arg()),
        }
    }

    /// The directory output files and their temporary files are written
    /// in; `None` when the output is streamed.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Destination::Directory { dir, .. } => Some(dir),
            Destination::Output(Target::File(path)) => Some(parent(path)),
            Destination::Output(Target::Stream(_)) => None,
        }
    }

    /// Where the build manifest goes: `<dir>/<name>.manifest.json`, or
    /// `FILE.manifest.json` beside `-o FILE`; nowhere for a stream.
    pub fn manifest_path(&self) -> Option<PathBuf> {
        match self {
            Destination::Directory { dir, name } => Some(dir.join(format!("{name}.manifest.json"))),
            Destination::Output(Target::File(path)) => {
                let mut manifest = path.clone().into_os_string();
                manifest.push(".manifest.json");
                Some(PathBuf::from(manifest))
            }
            Destination::Output(Target::Stream(_)) => None,
        }
    }
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The base name of a build's outputs (`--name`, else the config file's
/// stem): one plain file name, so that every output lands in `--dir` and
/// nowhere else, and none is hidden or taken for a temporary file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

/// The longest name whose outputs and manifest all fit Linux's 255-byte
/// file names.
fn max_name() -> usize {
    255 - super::longest_suffix()
}

/// Why a string is not a [`Name`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidName {
    #[error("the name is empty")]
    Empty,
    #[error("`{0}` contains `/`; a file name is wanted, not a path")]
    Slash(String),
    #[error("`{0}` names a directory, not a file")]
    Dots(String),
    #[error("the name contains a NUL byte")]
    Nul,
    #[error(
        "`{0}` starts with `{prefix}`, the prefix of ossify's temporary files, which builds delete",
        prefix = atomic::TEMP_PREFIX
    )]
    Reserved(String),
    #[error(
        "`{0}` is {len} bytes; a name is at most {max}, so that every output's file name fits in 255",
        len = .0.len(),
        max = max_name()
    )]
    TooLong(String),
}

impl FromStr for Name {
    type Err = InvalidName;

    fn from_str(name: &str) -> Result<Name, InvalidName> {
        plain_file_name(name)?;
        if name.starts_with(atomic::TEMP_PREFIX) {
            return Err(InvalidName::Reserved(name.to_owned()));
        }
        if name.len() > max_name() {
            return Err(InvalidName::TooLong(name.to_owned()));
        }
        Ok(Name(name.to_owned()))
    }
}

/// Checks that `name` is one plain file name: not empty, not `.` or `..`,
/// without `/` or NUL.
pub(crate) fn plain_file_name(name: &str) -> Result<(), InvalidName> {
    if name.is_empty() {
        Err(InvalidName::Empty)
    } else if name.contains('/') {
        Err(InvalidName::Slash(name.to_owned()))
    } else if name == "." || name == ".." {
        Err(InvalidName::Dots(name.to_owned()))
    } else if name.contains('\0') {
        Err(InvalidName::Nul)
    } else {
        Ok(())
    }
}

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `-o` names, by what is there now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing yet, or a regular file: written beside it and renamed over
    /// it when complete.
    File(PathBuf),
    /// Written into as the output is made; no manifest goes beside it.
    Stream(Stream),
}

/// An output that is written into as it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    /// `-o -`.
    Stdout,
    Fifo(PathBuf),
    CharDevice(PathBuf),
}

/// `-o` names something no output may replace or be written into.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("-o {}: {what}; {advice}", path.display())]
pub struct Unwritable {
    path: PathBuf,
    what: String,
    advice: &'static str,
}

impl Target {
    /// Decides what the `-o` argument `arg` is: `-` for stdout, else by
    /// what is at the path (without following a symbolic link).
    pub fn from_arg(arg: &Path) -> Result<Target, Unwritable> {
        if arg == Path::new("-") {
            return Ok(Target::Stream(Stream::Stdout));
        }
        let refuse = |what: String, advice| {
            Err(Unwritable {
                path: arg.to_owned(),
                what,
                advice,
            })
        };
        let Some(name) = arg.file_name() else {
            return refuse(
                "does not end in a file name".to_owned(),
                "name the file to write",
            );
        };
        if name
            .as_encoded_bytes()
            .starts_with(atomic::TEMP_PREFIX.as_bytes())
        {
            return refuse(
                format!(
                    "its name starts with `{}`, the prefix of ossify's temporary files, which builds delete",
                    atomic::TEMP_PREFIX
                ),
                "choose another name",
            );
        }
        // Absent, or not to be inspected (a missing or unreadable
        // directory): writing it says why, if it cannot be written.
        let Ok(metadata) = arg.symlink_metadata() else {
            return Ok(Target::File(arg.to_owned()));
        };
        let kind = metadata.file_type();
        if kind.is_file() {
            Ok(Target::File(arg.to_owned()))
        } else if kind.is_fifo() {
            Ok(Target::Stream(Stream::Fifo(arg.to_owned())))
        } else if kind.is_char_device() {
            Ok(Target::Stream(Stream::CharDevice(arg.to_owned())))
        } else if kind.is_dir() {
            refuse(
                format!("is {}", describe(kind)),
                "name a file to write (in that directory, say)",
            )
        } else if kind.is_symlink() {
            refuse(
                format!("is {}, which ossify does not write through", describe(kind)),
                "give the path it points to, or remove the link",
            )
        } else {
            refuse(
                format!("is {}, which ossify does not write to", describe(kind)),
                "name a file, a FIFO or a character device",
            )
        }
    }
}

impl Stream {
    /// The `-o` argument that named it.
    pub fn arg(&self) -> &Path {
        match self {
            Stream::Stdout => Path::new("-"),
            Stream::Fifo(path) | Stream::CharDevice(path) => path,
        }
    }

    /// Opens the stream for writing. A FIFO's open waits for a reader, as
    /// a shell's redirection does. A path that has become something else
    /// since the command line was read is refused rather than written.
    fn open(&self) -> io::Result<Box<dyn Write>> {
        let path = match self {
            Stream::Stdout => return Ok(Box::new(io::stdout())),
            Stream::Fifo(path) | Stream::CharDevice(path) => path,
        };
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(path)?;
        let kind = file.metadata()?.file_type();
        if kind.is_fifo() || kind.is_char_device() {
            Ok(Box::new(file))
        } else {
            Err(io::Error::other(format!(
                "it is {} now, no longer a FIFO or character device",
                describe(kind)
            )))
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Stdout => f.write_str("stdout"),
            Stream::Fifo(path) => write!(f, "the FIFO {}", path.display()),
            Stream::CharDevice(path) => write!(f, "the character device {}", path.display()),
        }
    }
}

/// A format asked to go to a stream cannot be written as one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "-o {} streams to {stream}, which format {format} cannot do; use -o FILE or --dir",
    stream.arg().display()
)]
pub struct Unstreamable {
    pub format: Format,
    pub stream: Stream,
}

/// One output written to a `-o` target: into a temporary file put in
/// place by [`TargetWriter::finish`] for a file, straight through for a
/// stream. Dropped unfinished, it leaves a file target as it was.
pub struct TargetWriter {
    path: PathBuf,
    sink: BufWriter<Sink>,
}

enum Sink {
    File(AtomicFile),
    Stream(Box<dyn Write>),
}

impl TargetWriter {
    pub fn open(target: &Target) -> Result<TargetWriter, OutputError> {
        let (path, sink) = match target {
            Target::File(path) => (path.clone(), AtomicFile::create(path).map(Sink::File)),
            Target::Stream(stream) => (stream.arg().to_owned(), stream.open().map(Sink::Stream)),
        };
        match sink {
            Ok(sink) => Ok(TargetWriter {
                path,
                sink: BufWriter::with_capacity(atomic::BUFFER, sink),
            }),
            Err(source) => Err(OutputError::Io { path, source }),
        }
    }

    /// Flushes the output and, for a file, puts it in place.
    pub fn finish(self) -> Result<(), OutputError> {
        let io_error = |source| OutputError::Io {
            path: self.path.clone(),
            source,
        };
        match self
            .sink
            .into_inner()
            .map_err(|e| io_error(e.into_error()))?
        {
            Sink::File(file) => {
                let pending = file.finish().map_err(io_error)?;
                atomic::commit(vec![pending], None)?;
            }
            Sink::Stream(mut stream) => stream.flush().map_err(io_error)?,
        }
        Ok(())
    }
}

impl Write for TargetWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(file) => file.write(buf),
            Sink::Stream(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(file) => file.flush(),
            Sink::Stream(stream) => stream.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_file_names_that_leave_room_for_every_suffix() {
        for good in [
            "hello",
            "a.b",
            "-x",
            ".hidden",
            "ossify-x",
            &"n".repeat(240),
        ] {
            assert_eq!(good.parse::<Name>().unwrap().as_str(), good);
        }
        assert_eq!(max_name(), 240, "docs/cli.md says 240");
        for (bad, error) in [
            ("", InvalidName::Empty),
            ("../x", InvalidName::Slash("../x".into())),
            ("/abs", InvalidName::Slash("/abs".into())),
            (".", InvalidName::Dots(".".into())),
            ("..", InvalidName::Dots("..".into())),
            ("a\0b", InvalidName::Nul),
            (".ossify-x", InvalidName::Reserved(".ossify-x".into())),
        ] {
            assert_eq!(bad.parse::<Name>(), Err(error), "{bad:?}");
        }
        let long = "n".repeat(241);
        assert_eq!(long.parse::<Name>(), Err(InvalidName::TooLong(long)));
    }

    #[test]
    fn dash_o_is_classified_by_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        let regular = at("regular");
        std::fs::write(&regular, "x").unwrap();
        std::os::unix::fs::symlink(&regular, at("link")).unwrap();
        std::fs::create_dir(at("dir")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(at("socket")).unwrap();
        let fifo =
            std::ffi::CString::new(at("fifo").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        let file = |path: PathBuf| Ok(Target::File(path));
        assert_eq!(Target::from_arg(&at("absent")), file(at("absent")));
        assert_eq!(Target::from_arg(&regular), file(regular.clone()));
        assert_eq!(
            Target::from_arg(Path::new("-")),
            Ok(Target::Stream(Stream::Stdout))
        );
        assert_eq!(
            Target::from_arg(&at("fifo")),
            Ok(Target::Stream(Stream::Fifo(at("fifo"))))
        );
        assert_eq!(
            Target::from_arg(Path::new("/dev/null")),
            Ok(Target::Stream(Stream::CharDevice("/dev/null".into())))
        );
        for (name, what) in [
            ("link", "is a symbolic link"),
            ("dir", "is a directory"),
            ("socket", "is a socket"),
            ("..", "does not end in a file name"),
            (".ossify-out", "prefix of ossify's temporary files"),
        ] {
            let error = Target::from_arg(&at(name)).unwrap_err().to_string();
            assert!(error.contains(what), "{name}: {error}");
            assert!(
                error.starts_with(&format!("-o {}", at(name).display())),
                "{error}"
            );
        }
    }
}
