//! What a `build` command line asks for, with LinuxKit's defaults applied:
//! formats, output names and places.

use std::path::{Path, PathBuf};

use crate::config::STDIN;
use crate::output::{Destination, Format, Name, RootOptions, Stream, Target, Unstreamable};

use super::BuildArgs;

/// A build command line, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub formats: Vec<Format>,
    pub destination: Destination,
    /// `--size` in bytes.
    pub disk_size: Option<u64>,
    /// How root filesystem images are written.
    pub root: RootOptions,
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
        if self.docker {
            return Err(UsageError(
                "--docker: ossify uses no Docker daemon; it pulls images from registries into \
                 its own cache. For an image that exists only in Docker, run `docker save IMAGE \
                 -o image.tar` and `ossify cache import image.tar`, then build without --docker"
                    .into(),
            ));
        }
        if let Some(tar) = &self.input_tar {
            return Err(UsageError(format!(
                "--input-tar {}: not supported. ossify reads unchanged images from its cache \
                 (--cache-dir) and writes the same bytes from the same inputs, so a rebuild \
                 needs no previous build's tar; drop --input-tar",
                tar.display()
            )));
        }
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
        // LinuxKit gives vhd and dynamic-vhd the same file name; one build
        // cannot write both. The kernel and cmdline of several kernel+X
        // formats are the same bytes, so sharing those is fine.
        let mut seen: Vec<(String, Format)> = Vec::new();
        for &format in &formats {
            for file in format.file_names("<name>") {
                if file.ends_with("-kernel") || file.ends_with("-cmdline") {
                    continue;
                }
                if let Some((_, other)) = seen.iter().find(|(f, _)| *f == file) {
                    return Err(UsageError(format!(
                        "formats {other} and {format} both write {file}; build them in separate runs"
                    )));
                }
                seen.push((file, format));
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
                name: match &self.name {
                    Some(name) => name.clone(),
                    None => default_name(&self.configs)?,
                },
            },
            Some(output) => {
                let [format] = formats[..] else {
                    return Err(UsageError(
                        "-o can only be used when building a single format".into(),
                    ));
                };
                let target = Target::from_arg(output).map_err(|e| UsageError(e.to_string()))?;
                match &target {
                    Target::Stream(stream) if !format.is_streamable() => {
                        return Err(UsageError(
                            Unstreamable {
                                format,
                                stream: stream.clone(),
                            }
                            .to_string(),
                        ));
                    }
                    Target::Stream(Stream::Stdout) if self.json => {
                        return Err(UsageError(
                            "--json prints to stdout, which -o - already uses for the image".into(),
                        ));
                    }
                    Target::File(_) if format.file_names("x").len() != 1 => {
                        return Err(UsageError(format!(
                            "format {format} writes several files; use --dir and --name instead of -o"
                        )));
                    }
                    _ => {}
                }
                Destination::Output(target)
            }
        };
        let disk_size = self.size.as_deref().map(parse_size).transpose()?;
        Ok(BuildPlan {
            formats,
            destination,
            disk_size,
            root: RootOptions {
                squashfs_compression: self.squashfs_compression,
                squashfs_block_size: self.squashfs_block_size,
                erofs_compression: self.erofs_compression,
                size: disk_size,
            },
        })
    }
}

/// The largest `--size`: 16 TiB, far beyond any image ossify is for, and
/// small enough that no disk arithmetic can overflow.
const MAX_SIZE: u64 = 16 << 40;

/// A disk size as LinuxKit's `-size` takes it (util.go, `getDiskSizeMB`): a
/// bare number means GiB, `NM` MiB and `NG` GiB; ossify also takes K and T,
/// and `MB`, `MiB` alike (all powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, UsageError> {
    let invalid = || {
        UsageError(format!(
            "--size {text}: expected a size from 1K to 16T, such as 512M, 1G or 2 (GiB, as in LinuxKit)"
        ))
    };
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches('B')
        .trim_end_matches('I')
    {
        "" if unit.is_empty() => 30,
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(1 << shift)
        .filter(|&bytes| bytes > 0 && bytes <= MAX_SIZE)
        .ok_or_else(invalid)
}

/// LinuxKit's name for a build's outputs when none is given.
const STDIN_NAME: &str = "moby";

/// The stem of the last config file, or `moby` when it is stdin; it must
/// make a [`Name`] as `--name` must.
fn default_name(configs: &[PathBuf]) -> Result<Name, UsageError> {
    let stem = match configs.last() {
        Some(last) if last != Path::new(STDIN) => last
            .file_stem()
            .map_or_else(|| STDIN_NAME.into(), |stem| stem.to_string_lossy()),
        _ => STDIN_NAME.into(),
    };
    stem.parse().map_err(|e| {
        UsageError(format!(
            "the output name taken from config file {} is not usable: {e}; give one with --name",
            configs
                .last()
                .map_or_else(String::new, |c| c.display().to_string())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_as_linuxkit_takes_them() {
        assert_eq!(parse_size("2").unwrap(), 2 << 30);
        assert_eq!(parse_size("1024M").unwrap(), 1 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("8GiB").unwrap(), 8 << 30);
        assert_eq!(parse_size("4096B").unwrap(), 4096);
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert_eq!(parse_size("16T").unwrap(), 16 << 40);
        for bad in ["", "G", "1X", "-1M", "0", "17T", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
