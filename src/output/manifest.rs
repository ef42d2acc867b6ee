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
use super::format::Format;
use crate::file_type::{SmallFileError, describe, read_small_file};
use crate::image::Platform;
use crate::write::initrd_compression::InitrdCompression;
use crate::write::{erofs, squashfs};

/// The manifest's schema version; bumped on incompatible changes.
/// Version 1 recorded images and outputs only; 2 adds all a rebuild needs.
pub const VERSION: u32 = 2;

/// A build: what it was made from (enough to make it again) and what it
/// made. Field order is the JSON's key order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub version: u32,
    /// The ossify that built it; absent in version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ossify_version: Option<String>,
    pub name: String,
    pub source_date_epoch: u64,
    /// Every option that affects the bytes; absent in version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BuildOptions>,
    /// The configuration files, in merge order, whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ConfigRecord>,
    /// Every image used, in configuration order, each once.
    pub images: Vec<ImageRecord>,
    /// Files read from the host for `files:` entries with a `source:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_files: Vec<HostFileRecord>,
    /// Bootloader files taken from the host because no boot image was
    /// named; absent when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_files: Vec<HostFileRecord>,
    pub outputs: Vec<OutputRecord>,
}

/// The options of a build that change its bytes, beyond the name and
/// SOURCE_DATE_EPOCH: with the configs and pinned images, all a rebuild
/// needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildOptions {
    #[serde(with = "as_strings")]
    pub formats: Vec<Format>,
    /// The platform images were picked for.
    #[serde(with = "as_string")]
    pub platform: Platform,
    /// `--size` in bytes.
    pub size: Option<u64>,
    /// `--boot-image` as given; a config's `boot:` is in the config.
    pub boot_image: Option<String>,
    #[serde(with = "as_string")]
    pub initrd_compression: InitrdCompression,
    #[serde(with = "as_string")]
    pub squashfs_compression: squashfs::Compression,
    #[serde(with = "as_string")]
    pub squashfs_block_size: squashfs::BlockSize,
    #[serde(with = "as_string")]
    pub erofs_compression: erofs::Compression,
    pub decompress_kernel: bool,
    /// The SBOM written into the root; `None` with `--no-sbom`.
    pub sbom: Option<SbomRecord>,
}

/// Where the SBOM went in the root, and the date it carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SbomRecord {
    pub path: String,
    pub created: u64,
}

/// A configuration file as read: its name (not its directory, so builds
/// from different places compare equal), its sha256 and its text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigRecord {
    pub file: String,
    pub sha256: String,
    pub text: String,
}

impl ConfigRecord {
    pub fn new(file: String, text: String) -> ConfigRecord {
        ConfigRecord {
            file,
            sha256: super::atomic::hex(&Sha256::digest(text.as_bytes())),
            text,
        }
    }
}

/// A value kept in JSON as its `Display` form and read back with
/// `FromStr`, so the manifest holds the spellings the command line takes.
mod as_string {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// A list of values, each kept as [`as_string`] keeps one.
mod as_strings {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<T: Display, S: Serializer>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|value| value.parse().map_err(D::Error::custom))
            .collect()
    }
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
    #[error(transparent)]
    File(#[from] SmallFileError),
    #[error("it is not a build manifest")]
    Malformed(#[source] serde_json::Error),
    #[error("it has version {0}; this ossify reads versions 1 to {VERSION}")]
    Version(u32),
    #[error("it lists no outputs; every build writes at least one")]
    NoOutputs,
}

impl Manifest {
    /// Reads a manifest file written by a build: a JSON object of a known
    /// version with at least one output, each a plain file name.
    pub fn read(path: &Path) -> Result<Manifest, ReadError> {
        let bytes = read_small_file(path, MAX_MANIFEST)?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(ReadError::Malformed)?;
        if !(1..=VERSION).contains(&manifest.version) {
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
pub fn sha256(reader: &mut impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        match reader.read(&mut buffer)? {
            0 => return Ok(super::atomic::hex(&hasher.finalize())),
            n => hasher.update(&buffer[..n]),
        }
    }
}
