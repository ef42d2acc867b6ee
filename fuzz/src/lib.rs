//! Fuzzing ossify's parsers of untrusted bytes; see `docs/fuzzing.md`.
//!
//! `targets` and what it uses are plain Rust over ossify's public API, so
//! that `tests/fuzz_corpus.rs` can replay the corpus through the very same
//! code in the fast test tier, without libFuzzer.

pub mod invariants;
pub mod memory;
pub mod seeds;
pub mod targets;
