//! The libFuzzer binary for every target; `OSSIFY_FUZZ_TARGET` names the
//! one to run (`scripts/fuzz.sh` sets it).

#![no_main]

use std::sync::OnceLock;

use ossify_fuzz::memory::Bounded;
use ossify_fuzz::targets::{self, TARGETS, Target};

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

fn chosen() -> &'static Target {
    static CHOSEN: OnceLock<&'static Target> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        let name = std::env::var("OSSIFY_FUZZ_TARGET").unwrap_or_default();
        targets::target(&name).unwrap_or_else(|| {
            let names: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
            eprintln!(
                "fuzz: set OSSIFY_FUZZ_TARGET to one of: {}",
                names.join(", ")
            );
            std::process::exit(2)
        })
    })
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| targets::run(chosen(), input));
