//! Lock files: every image a configuration names, pinned to the digest a
//! build would use, and the sha256 of each configuration file, so that a
//! later `build --locked` uses exactly those images whatever their tags
//! point to by then.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::file_type::{SmallFileError, read_small_file};
use crate::image::{self, Reference};
use crate::output::manifest::{ConfigRecord, ImageRecord};

/// The lock file's schema version.
pub const VERSION: u32 = 1;

/// What a lock file's name adds to its config's stem.
pub const SUFFIX: &str = ".lock.json";

/// The largest lock file read: thousands of images' worth.
const MAX_LOCK_FILE: u64 = 1 << 20;

/// A lock file. Field order is the JSON's key order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockFile {
    pub version: u32,
    /// The configuration files locked, in merge order.
    pub configs: Vec<LockedConfig>,
    /// Every image, the boot image and volumes' indexes included, as a
    /// build's manifest records them.
    pub images: Vec<ImageRecord>,
}

/// A configuration file as it was when locked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockedConfig {
    pub file: String,
    pub sha256: String,
}

/// A lock file cannot be used.
#[derive(Debug, Error)]
pub enum LockError {
    #[error("cannot read lock file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: SmallFileError,
    },
    #[error("lock file {path} is not an ossify lock file")]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("lock file {path} has version {version}; this ossify reads version {VERSION}")]
    Version { path: PathBuf, version: u32 },
    #[error(
        "lock file {path} was made from {locked} config file(s), this build has {given}: \
         run `ossify lock` with the build's config files"
    )]
    ConfigCount {
        path: PathBuf,
        locked: usize,
        given: usize,
    },
    #[error(
        "config file {file} changed since it was locked in {path} (its sha256 is {actual}, the \
         lock has {locked} for {locked_file}): run `ossify lock` again to pin the images it \
         names now, or restore the file"
    )]
    ConfigChanged {
        path: PathBuf,
        file: String,
        locked_file: String,
        locked: String,
        actual: String,
    },
    #[error("lock file {path} pins `{resolved}`, which is not a pinned reference")]
    BadPin {
        path: PathBuf,
        resolved: String,
        #[source]
        source: image::Error,
    },
}

impl LockFile {
    /// The lock of `configs` pinning `images`.
    pub fn new(configs: &[ConfigRecord], images: Vec<ImageRecord>) -> LockFile {
        LockFile {
            version: VERSION,
            configs: configs
                .iter()
                .map(|c| LockedConfig {
                    file: c.file.clone(),
                    sha256: c.sha256.clone(),
                })
                .collect(),
            images,
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a lock file always serialises");
        bytes.push(b'\n');
        bytes
    }

    pub fn read(path: &Path) -> Result<LockFile, LockError> {
        let bytes = read_small_file(path, MAX_LOCK_FILE).map_err(|source| LockError::Read {
            path: path.to_owned(),
            source,
        })?;
        let lock: LockFile =
            serde_json::from_slice(&bytes).map_err(|source| LockError::Malformed {
                path: path.to_owned(),
                source,
            })?;
        if lock.version != VERSION {
            return Err(LockError::Version {
                path: path.to_owned(),
                version: lock.version,
            });
        }
        Ok(lock)
    }

    /// Checks that `configs` are the files locked, byte for byte; `path`
    /// names the lock file in errors.
    pub fn check_configs(&self, path: &Path, configs: &[ConfigRecord]) -> Result<(), LockError> {
        if self.configs.len() != configs.len() {
            return Err(LockError::ConfigCount {
                path: path.to_owned(),
                locked: self.configs.len(),
                given: configs.len(),
            });
        }
        for (locked, given) in self.configs.iter().zip(configs) {
            if locked.sha256 != given.sha256 {
                return Err(LockError::ConfigChanged {
                    path: path.to_owned(),
                    file: given.file.clone(),
                    locked_file: locked.file.clone(),
                    locked: locked.sha256.clone(),
                    actual: given.sha256.clone(),
                });
            }
        }
        Ok(())
    }

    /// The images it pins; `path` names the lock file in errors.
    pub fn pins(&self, path: &Path) -> Result<Pins, LockError> {
        Pins::new(&self.images).map_err(|(resolved, source)| LockError::BadPin {
            path: path.to_owned(),
            resolved,
            source,
        })
    }
}

/// The default lock file of a build: `<stem>.lock.json` beside the last
/// config file; `None` when that is standard input or a URL.
pub fn default_path(configs: &[PathBuf]) -> Option<PathBuf> {
    let last = configs.last()?;
    if last.as_os_str() == crate::config::STDIN
        || crate::cli::remote_config::config_url(last).is_some()
    {
        return None;
    }
    let stem = last.file_stem()?.to_string_lossy();
    Some(last.with_file_name(format!("{stem}{SUFFIX}")))
}

/// Images pinned to digests, looked up by the reference a config names:
/// from a lock file, or from a manifest for a rebuild.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    pins: Vec<Pin>,
}

/// One reference and the digest it is pinned to.
#[derive(Debug, Clone)]
pub struct Pin {
    /// The reference as a config names it, normalised.
    pub reference: Reference,
    /// The same, pinned: `registry/repo[:tag]@sha256:…`.
    pub pinned: Reference,
    /// The platform it was resolved for; several, or `all`, for indexes
    /// copied whole.
    pub platform: String,
}

impl Pins {
    /// Pins from a manifest's or lock file's image records; an error names
    /// the record that pins nothing.
    pub fn new(records: &[ImageRecord]) -> Result<Pins, (String, image::Error)> {
        let pins = records
            .iter()
            .map(|record| {
                let parse = |s: &str| s.parse::<Reference>().map_err(|e| (s.to_owned(), e));
                let pinned = parse(&record.resolved)?;
                if pinned.digest().is_none() {
                    return Err((
                        record.resolved.clone(),
                        image::Error::InvalidReference {
                            reference: record.resolved.clone(),
                            reason: "it names no digest".into(),
                        },
                    ));
                }
                Ok(Pin {
                    reference: parse(&record.reference)?,
                    pinned,
                    platform: record.platform.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Pins { pins })
    }

    /// The pin of `reference`, if it has one.
    pub fn get(&self, reference: &Reference) -> Option<&Pin> {
        self.pins.iter().find(|pin| pin.reference == *reference)
    }
}
