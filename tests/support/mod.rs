//! Test support: a real registry (Debian's `docker-registry`) on 127.0.0.1,
//! and OCI images built byte by byte, pushed to it with skopeo.

pub mod layout;
pub mod registry;

pub use layout::{LayerBlob, Layout, layer_tar};
pub use registry::Registry;
