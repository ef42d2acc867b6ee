//! Shared test support: images made in the test, and running ossify.

#![allow(dead_code)]

pub mod oci_layout;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the ossify binary with `args` in `dir`.
pub fn ossify_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ossify"))
        .args(args)
        .current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("CI")
        .output()
        .expect("ossify runs")
}
