//! ossify builds bootable, immutable operating-system images from OCI images
//! and LinuxKit YAML, without Docker, root, mounts or loop devices.
//!
//! The pipeline runs one way, each module owning one stage:
//! [`config`] (YAML → [`config::Config`]) → [`image`] → [`tree`] →
//! [`assemble`] → [`write`] → [`output`]. See `docs/architecture.md`.

pub mod abandoned;
pub mod anatomy;
pub mod assemble;
pub mod bootloader;
pub mod build;
pub mod cli;
pub mod config;
pub mod file_type;
pub mod image;
pub mod lock;
pub mod output;
pub mod rebuild;
pub mod reuse;
pub mod sha256;
pub mod tree;
pub mod write;
