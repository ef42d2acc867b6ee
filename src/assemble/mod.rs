//! Assembly: turning a configuration and its images into the root
//! filesystem LinuxKit would build.
//!
//! [`runtime_config`] writes each container's `config.json` and
//! `runtime.json`; [`ids`] allocates the numbers behind named users and
//! groups; [`oci`] is the shape of both files and [`go_json`] the bytes
//! LinuxKit writes them as.

pub mod go_json;
pub mod ids;
pub mod oci;
pub mod runtime_config;
