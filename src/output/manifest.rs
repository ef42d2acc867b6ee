//! `<name>.manifest.json`: what a build was made from and what it made, so
//! CI can compare builds by digest.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::destination::{InvalidName, plain_file_name};
use crate::file_type::describe;

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
    pub file: FileName,
    pub size: u64,
    pub sha256: String,
}

/// An output's file name: one plain name in the manifest's directory, so
/// that checking a manifest never reads a file outside it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);

impl TryFrom<String> for FileName {
    type Error = InvalidName;

    fn try_from(name: String) -> Result<FileName, InvalidName> {
        plain_file_name(&name)?;
        Ok(FileName(name))
    }
}

impl From<FileName> for String {
    fn from(name: FileName) -> String {
        name.0
    }
}

impl FileName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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
    Missing { file: FileName },
    #[error("{file}: {what}, not a regular file")]
    NotAFile { file: FileName, what: &'static str },
    #[error("{file}: {actual} bytes, the manifest says {expected}")]
    Size {
        file: FileName,
        expected: u64,
        actual: u64,
    },
    #[error("{file}: sha256 {actual}, the manifest says {expected}")]
    Digest {
        file: FileName,
        expected: String,
        actual: String,
    },
}

/// The largest manifest read: far more than a build of every format
/// writes, and a bound on what a stray file can make `verify` read.
const MAX_MANIFEST: u64 = 1 << 20;

/// A file is not a manifest `verify` can check.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read it")]
    Io(#[source] io::Error),
    #[error("it is larger than {MAX_MANIFEST} bytes, more than any build writes")]
    TooLarge,
    #[error("it is {0}, not a file a build writes")]
    NotAFile(&'static str),
    #[error("it is not a build manifest")]
    Malformed(#[source] serde_json::Error),
    #[error("it has version {0}; this ossify reads version {VERSION}")]
    Version(u32),
    #[error("it lists no outputs; every build writes at least one")]
    NoOutputs,
}

impl Manifest {
    /// Reads a manifest file written by a build: a JSON object of this
    /// version with at least one output, each a plain file name.
    pub fn read(path: &Path) -> Result<Manifest, ReadError> {
        // Opened without waiting for a FIFO's writer, then refused unless
        // it is a regular file.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(ReadError::Io)?;
        let kind = file.metadata().map_err(ReadError::Io)?.file_type();
        if !kind.is_file() {
            return Err(ReadError::NotAFile(describe(kind)));
        }
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Io)?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(ReadError::TooLarge);
        }
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(ReadError::Malformed)?;
        if manifest.version != VERSION {
            return Err(ReadError::Version(manifest.version));
        }
        if manifest.outputs.is_empty() {
            return Err(ReadError::NoOutputs);
        }
        Ok(manifest)
    }

    /// Checks every output against its recorded size and sha256, looking
    /// for the files in `dir`; returns what differs.
    pub fn verify(&self, dir: &Path) -> io::Result<Vec<Mismatch>> {
        let mut mismatches = Vec::new();
        for output in &self.outputs {
            let file = output.file.clone();
            let path = dir.join(output.file.as_str());
            // Not through a link, and without waiting on a FIFO.
            let opened = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path);
            let mut contents = match opened {
                Ok(contents) => contents,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    mismatches.push(Mismatch::Missing { file });
                    continue;
                }
                Err(e) => match std::fs::symlink_metadata(&path) {
                    Ok(link) if link.file_type().is_symlink() => {
                        mismatches.push(Mismatch::NotAFile {
                            file,
                            what: describe(link.file_type()),
                        });
                        continue;
                    }
                    _ => return Err(e),
                },
            };
            let metadata = contents.metadata()?;
            if !metadata.is_file() {
                mismatches.push(Mismatch::NotAFile {
                    file,
                    what: describe(metadata.file_type()),
                });
                continue;
            }
            let actual = metadata.len();
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
