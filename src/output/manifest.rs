//! `<name>.manifest.json`: what a build was made from and what it made, so
//! CI can compare builds by digest.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's schema version; bumped on incompatible changes.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub version: u32,
    pub name: String,
    pub source_date_epoch: u64,
    /// Every image used, in configuration order, each once.
    pub images: Vec<ImageRecord>,
    pub outputs: Vec<OutputRecord>,
    /// Bootloader files taken from the host because no boot image was
    /// named; absent when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_files: Vec<HostFileRecord>,
}

/// An image as asked for and as resolved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub reference: String,
    /// `registry/repository[:tag]@sha256:…`: the exact content used.
    pub resolved: String,
    pub platform: String,
}

/// One output file. `file` is its name, not its path, so that manifests of
/// builds into different directories compare equal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputRecord {
    pub format: String,
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

/// A file read from the host's filesystem.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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

/// How an output file differs from what its manifest records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("{file}: missing")]
    Missing { file: String },
    #[error("{file}: {actual} bytes, the manifest says {expected}")]
    Size {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error("{file}: sha256 {actual}, the manifest says {expected}")]
    Digest {
        file: String,
        expected: String,
        actual: String,
    },
}

impl Manifest {
    /// Reads a manifest file.
    pub fn read(path: &Path) -> io::Result<Manifest> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Checks every output against its recorded size and sha256, looking
    /// for the files in `dir`; returns what differs.
    pub fn verify(&self, dir: &Path) -> io::Result<Vec<Mismatch>> {
        let mut mismatches = Vec::new();
        for output in &self.outputs {
            let file = output.file.clone();
            let mut contents = match File::open(dir.join(&output.file)) {
                Ok(contents) => contents,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    mismatches.push(Mismatch::Missing { file });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let actual = contents.metadata()?.len();
            if actual != output.size {
                mismatches.push(Mismatch::Size {
                    file,
                    expected: output.size,
                    actual,
                });
                continue;
            }
            let actual = sha256(&mut contents)?;
            if actual != output.sha256 {
                mismatches.push(Mismatch::Digest {
                    file,
                    expected: output.sha256.clone(),
                    actual,
                });
            }
        }
        Ok(mismatches)
    }
}

/// The sha256 of everything `reader` yields, in lower-case hex.
fn sha256(reader: &mut impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        match reader.read(&mut buffer)? {
            0 => return Ok(super::atomic::hex(&hasher.finalize())),
            n => hasher.update(&buffer[..n]),
        }
    }
}
