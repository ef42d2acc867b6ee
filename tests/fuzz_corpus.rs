//! Replays every input kept in `testdata/fuzz/TARGET/` through its fuzz
//! target, the same code libFuzzer runs in the soaks (`fuzz/src/`), so an
//! input that once crashed stays covered in the fast tier. See
//! `docs/fuzzing.md`.

#[path = "../fuzz/src/invariants.rs"]
mod invariants;
#[path = "../fuzz/src/memory.rs"]
mod memory;
#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use targets::TARGETS;

#[global_allocator]
static ALLOCATOR: memory::Bounded = memory::Bounded;

/// An input still running after this has hung: the process is stopped.
const HANG: Duration = Duration::from_secs(120);

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz")
}

/// The inputs of `target`: its minimised corpus and the inputs that once
/// crashed it, kept apart so that no corpus merge drops them.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut inputs = Vec::new();
    for kind in ["corpus", "crashes"] {
        let dir = corpus_root().join(target).join(kind);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            inputs.push(entry.expect("the corpus reads").path());
        }
    }
    inputs.sort();
    inputs
}

/// Aborts the process when the input it was last told of runs past
/// [`HANG`]: a hang must fail loudly, not stall the suite.
fn watchdog() -> mpsc::Sender<String> {
    let (started, next) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut current = None;
        loop {
            match next.recv_timeout(HANG) {
                Ok(input) => current = Some(input),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(input) = &current {
                        eprintln!("fuzz corpus: {input} ran for over {HANG:?}: a hang");
                        std::process::abort();
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    });
    started
}

#[test]
fn every_target_has_a_corpus_and_every_corpus_a_target() {
    for target in TARGETS {
        assert!(
            !inputs(target.name).is_empty(),
            "no inputs in {}/{}/corpus: run `cargo run --bin seeds` in fuzz/",
            corpus_root().display(),
            target.name
        );
    }
    for entry in std::fs::read_dir(corpus_root()).expect("testdata/fuzz exists") {
        let name = entry.expect("testdata/fuzz reads").file_name();
        let name = name.to_string_lossy();
        assert!(
            targets::target(&name).is_some(),
            "testdata/fuzz/{name} belongs to no fuzz target"
        );
    }
}

#[test]
fn every_kept_input_passes_its_target() {
    let started = watchdog();
    let mut failures = Vec::new();
    for target in TARGETS {
        for input in inputs(target.name) {
            let shown = input.display().to_string();
            started.send(shown.clone()).expect("the watchdog runs");
            let bytes = std::fs::read(&input).expect("the corpus reads");
            if catch_unwind(AssertUnwindSafe(|| targets::run(target, &bytes))).is_err() {
                failures.push(shown);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "inputs that break their target's invariants (the panics above say how):\n{}",
        failures.join("\n")
    );
}
