//! Test support: a real registry (Debian's `docker-registry`) on 127.0.0.1,
//! OCI images built byte by byte (pushed to it with skopeo, or imported
//! into a cache), and running the ossify binary.

pub mod boot;
pub mod layer_builder;
pub mod layout;
pub mod registry;

pub use layout::{LayerBlob, Layout, layer_tar};
pub use registry::Registry;

/// Runs the ossify binary with `args` in `dir`.
pub fn ossify_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ossify"))
        .args(args)
        .current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("CI")
        .output()
        .expect("ossify runs")
}
