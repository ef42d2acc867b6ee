//! What a `build` command line asks for, with LinuxKit's defaults applied:
//! formats, output names and places.

use std::path::{Path, PathBuf};

use crate::config::STDIN;
use crate::output::{Destination, Format};

use super::BuildArgs;

/// A build command line, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub formats: Vec<Format>,
    pub destination: Destination,
}

/// A command line that contradicts itself; reported with exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl BuildArgs {
    /// Applies LinuxKit's rules: no format means `kernel+initrd`, or `tar`
    /// with `-o`; formats may be comma-separated; the name defaults to the
    /// last config file's stem, `moby` for stdin.
    pub fn plan(&self) -> Result<BuildPlan, UsageError> {
        let mut formats = Vec::new();
        for name in self.formats.iter().flat_map(|f| f.split(',')) {
            let format: Format = name
                .trim()
                .parse()
                .map_err(|e: crate::output::UnknownFormat| UsageError(e.to_string()))?;
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        if formats.is_empty() {
            formats.push(if self.output.is_some() {
                Format::Tar
            } else {
                Format::KernelInitrd
            });
        }
        let destination = match &self.output {
            None => Destination::Directory {
                dir: self.dir.clone().unwrap_or_else(|| PathBuf::from(".")),
                name: self
                    .name
                    .clone()
                    .unwrap_or_else(|| default_name(&self.configs)),
            },
            Some(output) => {
                let [format] = formats[..] else {
                    return Err(UsageError(
                        "-o can only be used when building a single format".into(),
                    ));
                };
                if output == Path::new(STDIN) {
                    if !format.is_streamable() {
                        return Err(UsageError(format!(
                            "-o - streams to stdout, which format {format} cannot do; use -o FILE or --dir"
                        )));
                    }
                    if self.json {
                        return Err(UsageError(
                            "--json prints to stdout, which -o - already uses for the image".into(),
                        ));
                    }
                    Destination::Stdout
                } else if format.file_names("x").len() != 1 {
                    return Err(UsageError(format!(
                        "format {format} writes several files; use --dir and --name instead of -o"
                    )));
                } else {
                    Destination::File(output.clone())
                }
            }
        };
        Ok(BuildPlan {
            formats,
            destination,
        })
    }
}

/// The stem of the last config file, or `moby` when it is stdin.
fn default_name(configs: &[PathBuf]) -> String {
    match configs.last() {
        Some(last) if last != Path::new(STDIN) => last
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "moby".to_owned()),
        _ => "moby".to_owned(),
    }
}
