//! `verify --rebuild`: a build made again from what its manifest records
//! (the configs whole, the options, every image pinned by digest) and
//! compared byte by byte with the files beside the manifest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::anatomy::{self, Difference, Layout};
use crate::assemble::SbomOptions;
use crate::build::Request;
use crate::config::{self, Config, Source};
use crate::image::{self, Policy, Progress};
use crate::lock::Pins;
use crate::output::manifest::{BuildOptions, ConfigRecord, HostFileRecord, Manifest, ReadError};
use crate::output::{Destination, Name, RootOptions, Target};

/// A manifest read for a rebuild, its configs parsed and its images
/// pinned.
pub struct Rebuild {
    pub manifest: Manifest,
    pub options: BuildOptions,
    pub name: Name,
    pub config: Config,
    pub pins: Pins,
}

/// A manifest that cannot be rebuilt.
#[derive(Debug, Error)]
pub enum RebuildError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(
        "it is a version {0} manifest, which records no build options or configs; only \
         manifests of version 2 and later can be rebuilt (build again with this ossify)"
    )]
    TooOld(u32),
    #[error("its config {file} does not have the sha256 it records; the manifest was edited")]
    ConfigEdited { file: String },
    #[error("its configs no longer load:\n{0}")]
    Config(config::Problems),
    #[error("it pins `{resolved}`, which is not a pinned reference")]
    BadPin {
        resolved: String,
        #[source]
        source: crate::image::Error,
    },
    #[error("its name `{name}` is not a usable output name")]
    Name {
        name: String,
        #[source]
        source: crate::output::destination::InvalidName,
    },
    #[error("cannot compare {file} with its rebuild")]
    Compare {
        file: String,
        #[source]
        source: anatomy::AnatomyError,
    },
}

impl Rebuild {
    /// Reads the manifest at `path` and everything a rebuild needs from it.
    pub fn read(path: &Path) -> Result<Rebuild, RebuildError> {
        let manifest = Manifest::read(path)?;
        let options = match (&manifest.options, manifest.configs.is_empty()) {
            (Some(options), false) => options.clone(),
            _ => return Err(RebuildError::TooOld(manifest.version)),
        };
        for record in &manifest.configs {
            if ConfigRecord::new(record.file.clone(), record.text.clone()) != *record {
                return Err(RebuildError::ConfigEdited {
                    file: record.file.clone(),
                });
            }
        }
        let sources: Vec<Source> = manifest
            .configs
            .iter()
            .map(|record| Source {
                path: PathBuf::from(&record.file),
                text: record.text.clone(),
            })
            .collect();
        let config = config::load(&sources).map_err(RebuildError::Config)?.config;
        let pins = Pins::new(&manifest.images)
            .map_err(|(resolved, source)| RebuildError::BadPin { resolved, source })?;
        let name = manifest.name.parse().map_err(|source| RebuildError::Name {
            name: manifest.name.clone(),
            source,
        })?;
        Ok(Rebuild {
            manifest,
            options,
            name,
            config,
            pins,
        })
    }

    /// Where the rebuild writes into `dir`: as the build did, under the
    /// recorded name, or to one file when `-o FILE` named the output.
    pub fn destination(&self, dir: &Path) -> Destination {
        match &self.manifest.outputs[..] {
            [only] if only.file.as_str() == self.manifest.name => {
                Destination::Output(Target::File(dir.join(only.file.as_str())))
            }
            _ => Destination::Directory {
                dir: dir.to_owned(),
                name: self.name.clone(),
            },
        }
    }

    /// The request that makes the build again into `destination`: the
    /// recorded options and platform, every image by its pinned digest,
    /// fetched with `resolve`'s registry settings when not cached.
    pub fn request<'a>(
        &'a self,
        destination: &'a Destination,
        cache_dir: Option<PathBuf>,
        resolve: image::Options,
        progress: Arc<dyn Progress>,
        stage: &'a dyn Fn(&str),
    ) -> Request<'a> {
        let options = &self.options;
        Request {
            formats: &options.formats,
            destination,
            source_date_epoch: self.manifest.source_date_epoch,
            cache_dir,
            boot_image: options.boot_image.clone(),
            disk_size: options.size,
            root: RootOptions {
                squashfs_compression: options.squashfs_compression,
                squashfs_block_size: options.squashfs_block_size,
                erofs_compression: options.erofs_compression,
                size: options.size,
            },
            initrd_compression: options.initrd_compression,
            decompress_kernel: options.decompress_kernel,
            // Work kept by earlier builds would make the rebuild lean on
            // them: each output is made afresh.
            reuse: false,
            sbom: options.sbom.as_ref().map(|sbom| SbomOptions {
                path: sbom.path.clone(),
                created: sbom.created,
            }),
            resolve: image::Options {
                policy: Policy::Cached,
                platform: Some(options.platform.clone()),
                ..resolve
            },
            configs: &self.manifest.configs,
            pins: Some(&self.pins),
            progress,
            stage,
        }
    }

    /// Compares every output beside the manifest, in `dir`, with the
    /// rebuild in `rebuilt_dir`, whose manifest is `rebuilt`.
    pub fn compare(
        &self,
        dir: &Path,
        rebuilt: &Manifest,
        rebuilt_dir: &Path,
    ) -> Result<Report, RebuildError> {
        let mut outputs = Vec::new();
        for output in &self.manifest.outputs {
            let file = output.file.as_str();
            let original = dir.join(file);
            let kind = std::fs::symlink_metadata(&original)
                .ok()
                .map(|m| m.file_type());
            let verdict = if !rebuilt.outputs.iter().any(|o| o.file == output.file) {
                Verdict::NotRebuilt
            } else if let Some(kind) = kind.filter(|kind| !kind.is_file()) {
                // Never followed or waited on: a link or FIFO is not an output.
                Verdict::NotAFile {
                    what: crate::file_type::describe(kind),
                }
            } else if kind.is_none() {
                Verdict::Missing
            } else {
                let layout = Layout::of(&output.format, file);
                match anatomy::first_difference(layout, &rebuilt_dir.join(file), &original)
                    .map_err(|source| RebuildError::Compare {
                        file: file.to_owned(),
                        source,
                    })? {
                    None => Verdict::Identical,
                    Some(difference) => Verdict::Different(difference),
                }
            };
            outputs.push(OutputReport {
                file: file.to_owned(),
                format: output.format.clone(),
                verdict,
            });
        }
        let changed_inputs = changed_files(
            "source file",
            &self.manifest.source_files,
            &rebuilt.source_files,
        )
        .chain(changed_files(
            "host file",
            &self.manifest.host_files,
            &rebuilt.host_files,
        ))
        .collect();
        Ok(Report {
            outputs,
            changed_inputs,
        })
    }
}

/// Host files read by both builds whose contents differ: a rebuild can
/// pin images by digest, but not the files of the machine it runs on.
fn changed_files<'a>(
    what: &'a str,
    original: &'a [HostFileRecord],
    rebuilt: &'a [HostFileRecord],
) -> impl Iterator<Item = String> + 'a {
    original.iter().filter_map(
        move |file| match rebuilt.iter().find(|r| r.path == file.path) {
            Some(now) if now.sha256 == file.sha256 => None,
            Some(now) => Some(format!(
                "{what} {} has changed: sha256 {} when built, {} now",
                file.path, file.sha256, now.sha256
            )),
            None => Some(format!("{what} {} was not read by the rebuild", file.path)),
        },
    )
}

/// The outcome of a rebuild.
#[derive(Debug, Serialize)]
pub struct Report {
    pub outputs: Vec<OutputReport>,
    /// Host files that differ from when the build was made: the likely
    /// cause of any difference.
    pub changed_inputs: Vec<String>,
}

impl Report {
    pub fn identical(&self) -> bool {
        self.outputs
            .iter()
            .all(|o| matches!(o.verdict, Verdict::Identical))
    }
}

#[derive(Debug, Serialize)]
pub struct OutputReport {
    pub file: String,
    pub format: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// How an output compares with its rebuild.
#[derive(Debug, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Identical,
    /// The file beside the manifest is gone.
    Missing,
    /// The rebuild wrote no such file.
    NotRebuilt,
    /// Beside the manifest is a link, FIFO or other non-file.
    NotAFile {
        what: &'static str,
    },
    Different(Difference),
}

impl std::fmt::Display for OutputReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Verdict::Identical => write!(f, "{}: identical", self.file),
            Verdict::Missing => write!(f, "{}: missing beside the manifest", self.file),
            Verdict::NotRebuilt => write!(f, "{}: the rebuild did not write it", self.file),
            Verdict::NotAFile { what } => write!(f, "{}: {what}, not a regular file", self.file),
            Verdict::Different(difference) => {
                write!(f, "{}: differs from the rebuild at {difference}", self.file)
            }
        }
    }
}
