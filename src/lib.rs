//! ossify builds bootable, immutable operating-system images from OCI images
//! and LinuxKit YAML, without Docker, root, mounts or loop devices.
//!
//! The pipeline runs one way, each module owning one stage:
//! `config` (YAML → `Config`) → image resolution → tree → assembly →
//! writers → outputs. See `docs/architecture.md`.

pub mod image;
