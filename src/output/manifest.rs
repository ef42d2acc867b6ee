//! `<name>.manifest.json`: what a build was made from and what it made, so
//! CI can compare builds by digest.

use serde::Serialize;

/// The manifest's schema version; bumped on incompatible changes.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Manifest {
    pub version: u32,
    pub name: String,
    pub source_date_epoch: u64,
    /// Every image used, in configuration order, each once.
    pub images: Vec<ImageRecord>,
    pub outputs: Vec<OutputRecord>,
    /// Bootloader files taken from the host because no boot image was
    /// named; absent when there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_files: Vec<HostFileRecord>,
}

/// An image as asked for and as resolved.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub reference: String,
    /// `registry/repository[:tag]@sha256:…`: the exact content used.
    pub resolved: String,
    pub platform: String,
}

/// One output file. `file` is its name, not its path, so that manifests of
/// builds into different directories compare equal.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutputRecord {
    pub format: String,
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

/// A file read from the host's filesystem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HostFileRecord {
    pub path: String,
    pub sha256: String,
}

impl Manifest {
    /// Pretty JSON with a trailing newline; field order is fixed by the
    /// structs, so the bytes depend only on the values.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        bytes.push(b'\n');
        bytes
    }
}
