//! Output formats by their LinuxKit names, the files each one writes, and
//! writing them to their [`destination`]: all together or not at all
//! ([`atomic`]), with a [`manifest`] of digests.

pub mod atomic;
mod boot;
mod bootable;
pub mod deflated;
pub mod destination;
pub mod diff;
mod disk;
mod efi;
mod format;
mod iso;
pub mod manifest;
mod root;

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::bootloader::{Bootloader, BootloaderError};
use crate::tree::{Kind, Metadata, Tree};
use crate::write::contents::Contents;
use crate::write::fat::FatError;
use crate::write::grub::GrubError;
use crate::write::initrd_compression::InitrdCompression;
use crate::write::iso9660::IsoError;
use crate::write::partition::PartitionError;
use crate::write::raw_image::ConvertError;
use crate::write::uki::UkiError;
use crate::write::{self, WriteError};
use atomic::{AtomicFile, CommitError, Finished, Pending};
use bootable::Bootable;
use deflated::{DeflatedFiles, InitrdSink};
pub use destination::{Destination, Name, Stream, Target, TargetWriter, Unstreamable};
pub(crate) use format::longest_suffix;
use format::{Filesystem, Loader, Medium, Recipe};
pub use format::{Format, UnknownFormat};
pub use root::RootOptions;

fn supported_names() -> String {
    Format::supported()
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writing an output failed.
#[derive(Debug, Error)]
pub enum OutputError {
    #[error("cannot write {}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot write {}", path.display())]
    Format { path: PathBuf, source: FormatError },
    #[error(
        "format {0} needs bootloader files; name a boot image with --boot-image or `boot: image:`"
    )]
    NoBootloader(Format),
    #[error(
        "format {0} boots a kernel, and the build has none; add `kernel: image:` to the config"
    )]
    NoKernel(Format),
    #[error(transparent)]
    WrongArchitecture(#[from] WrongArchitecture),
    #[error(transparent)]
    Bootloader(#[from] BootloaderError),
    #[error("format {0} is not supported yet; this version writes: {list}", list = supported_names())]
    Unsupported(Format),
    #[error(transparent)]
    Unstreamable(#[from] Unstreamable),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Writing one format's bytes failed.
#[derive(Debug, Error)]
pub enum FormatError {
    #[error(transparent)]
    Archive(#[from] WriteError),
    #[error(transparent)]
    Bootloader(#[from] BootloaderError),
    #[error(transparent)]
    Fat(#[from] FatError),
    #[error(transparent)]
    Uki(#[from] UkiError),
    #[error(transparent)]
    Squashfs(#[from] crate::write::squashfs::SquashfsError),
    #[error(transparent)]
    Erofs(#[from] crate::write::erofs::ErofsError),
    #[error(transparent)]
    Ext4(#[from] crate::write::ext4::Ext4Error),
    #[error(transparent)]
    Iso(#[from] IsoError),
    #[error(transparent)]
    Grub(#[from] GrubError),
    #[error(transparent)]
    Partition(#[from] PartitionError),
    #[error(transparent)]
    Convert(#[from] ConvertError),
    #[error(transparent)]
    DiskSize(#[from] disk::TooSmall),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One file written by a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub format: Format,
    pub file: Finished,
}

/// Fails for the first format of `formats` this version cannot write, so a
/// build can stop before it fetches anything.
pub fn check_supported(formats: &[Format]) -> Result<(), OutputError> {
    match formats.iter().find(|f| !f.is_supported()) {
        Some(format) => Err(OutputError::Unsupported(*format)),
        None => Ok(()),
    }
}

/// What formats need besides the tree and the date.
#[derive(Clone, Copy)]
pub struct BootOptions<'a> {
    /// Where bootloader files come from; `None` when no format needs them.
    pub bootloader: Option<&'a Bootloader>,
    /// The architecture built for, as OCI names it (`amd64`).
    pub architecture: &'a str,
    /// The size of disk images in bytes; `None` for content plus headroom.
    pub disk_size: Option<u64>,
    /// How root filesystem images are written.
    pub root: RootOptions,
    /// How the initrd is compressed.
    pub initrd_compression: InitrdCompression,
    /// Files of the tree deflated during assembly, for a gzip initrd.
    pub deflated_ahead: Option<&'a DeflatedFiles>,
}

/// The outputs of a build, complete in temporary files beside their final
/// paths; [`Staged::commit`] puts them in place with their manifest.
/// Dropped uncommitted, they are removed and the destination is unchanged.
pub struct Staged {
    files: Vec<(Format, Pending)>,
    manifest: Option<PathBuf>,
}

impl Staged {
    /// Every output file, as it will be once committed.
    pub fn written(&self) -> Vec<Written> {
        self.files
            .iter()
            .map(|(format, pending)| Written {
                format: *format,
                file: pending.file().clone(),
            })
            .collect()
    }

    /// Puts every output in place, then `manifest` at the destination's
    /// manifest path, in one step ([`atomic::commit`]).
    pub fn commit(self, manifest: &[u8]) -> Result<(), OutputError> {
        let manifest = match &self.manifest {
            Some(path) => Some(stage_file(path, |out| copy(&mut &manifest[..], out))?),
            None => None,
        };
        let outputs = self.files.into_iter().map(|(_, file)| file).collect();
        Ok(atomic::commit(outputs, manifest)?)
    }
}

/// Writes `tree` in every format of `formats` to `destination`: streamed,
/// or staged for a commit. Dates are clamped to `source_date_epoch`. The
/// tree is consumed: formats built from an initrd take the boot files out
/// of it, after the formats that hold the whole tree are written.
pub fn write_all(
    tree: Tree,
    formats: &[Format],
    destination: &Destination,
    source_date_epoch: u64,
    boot_options: &BootOptions<'_>,
) -> Result<Staged, OutputError> {
    check_supported(formats)?;
    let files = match destination {
        Destination::Output(Target::Stream(stream)) => {
            write_stream(&tree, formats, stream, source_date_epoch)?;
            Vec::new()
        }
        Destination::Output(Target::File(path)) => write_files(
            tree,
            formats,
            &Files {
                path: &|_| path.clone(),
                dir: destination::parent(path),
                name: &destination.name(),
            },
            source_date_epoch,
            boot_options,
        )?,
        Destination::Directory { dir, name } => write_files(
            tree,
            formats,
            &Files {
                path: &|file_name| dir.join(file_name),
                dir,
                name: name.as_str(),
            },
            source_date_epoch,
            boot_options,
        )?,
    };
    Ok(Staged {
        files,
        manifest: destination.manifest_path(),
    })
}

/// LinuxKit's Dockerfile for the `docker` format (moby/build/build.go):
/// the root becomes an image whose entrypoint is LinuxKit's init.
const DOCKERFILE: &[u8] = b"
FROM scratch

COPY . ./

ENTRYPOINT [\"/bin/rc.init\"]
";

/// Writes `tree` as the tar of `format` (`tar` or `docker`) to `out`.
fn write_tar(
    tree: &Tree,
    dockerfile: bool,
    out: &mut dyn Write,
    source_date_epoch: u64,
) -> Result<(), WriteError> {
    let appended: &[write::tar::Appended<'_>] = if dockerfile {
        &[write::tar::Appended {
            path: "Dockerfile",
            contents: DOCKERFILE,
        }]
    } else {
        &[]
    };
    write::tar::write(tree, out, source_date_epoch, appended).map(drop)
}

/// Writes `tree` as a tar into `stream`: only the tar formats stream.
fn write_stream(
    tree: &Tree,
    formats: &[Format],
    stream: &Stream,
    source_date_epoch: u64,
) -> Result<(), OutputError> {
    // One format at most: the command line allows no more with `-o`.
    let mut dockerfile = false;
    for &format in formats {
        match format.recipe() {
            Recipe::Tar { dockerfile: with } => dockerfile |= with,
            _ => {
                return Err(Unstreamable {
                    format,
                    stream: stream.clone(),
                }
                .into());
            }
        }
    }
    let mut out = TargetWriter::open(&Target::Stream(stream.clone()))?;
    write_tar(tree, dockerfile, &mut out, source_date_epoch).map_err(|source| {
        OutputError::Format {
            path: stream.arg().to_owned(),
            source: source.into(),
        }
    })?;
    out.finish()
}

/// Where the output files of a build go.
struct Files<'a> {
    /// The path of the output whose LinuxKit file name is given.
    path: &'a dyn Fn(&str) -> PathBuf,
    /// The directory they are in, where scratch files go too.
    dir: &'a Path,
    /// The base name outputs are named after.
    name: &'a str,
}

/// Writes every format of `formats` into temporary files beside `files`.
fn write_files(
    mut tree: Tree,
    formats: &[Format],
    files: &Files<'_>,
    source_date_epoch: u64,
    boot_options: &BootOptions<'_>,
) -> Result<Vec<(Format, Pending)>, OutputError> {
    let name = files.name;
    let mut written = Vec::new();
    // Formats of the whole root come first: the boot files are split out
    // of the tree after them.
    for &format in formats {
        let Recipe::Tar { dockerfile } = format.recipe() else {
            continue;
        };
        let path = (files.path)(&format.file_names(name)[0]);
        let file = stage_file(&path, |out| {
            write_tar(&tree, dockerfile, out, source_date_epoch)
        })?;
        written.push((format, file));
    }
    let initrd_formats: Vec<Format> = formats
        .iter()
        .copied()
        .filter(|f| f.needs_initrd())
        .collect();
    let root_formats: Vec<(Format, Filesystem, bool)> = formats
        .iter()
        .filter_map(|&format| match format.recipe() {
            Recipe::Root { filesystem, kernel } => Some((format, filesystem, kernel)),
            _ => None,
        })
        .collect();
    if initrd_formats.is_empty() && root_formats.is_empty() {
        return Ok(written);
    }
    let scratch = files.dir;
    let io_error = |source| OutputError::Io {
        path: scratch.to_owned(),
        source,
    };
    let boot = boot::split(&mut tree).map_err(io_error)?;
    boot::without_boot_dir(&mut tree, |root| {
        for (format, filesystem, with_kernel) in root_formats {
            let names = format.file_names(name);
            let image = if with_kernel { &names[1] } else { &names[0] };
            let file = stage_file(&(files.path)(image), |out| {
                root::write(
                    root,
                    filesystem,
                    name,
                    &boot_options.root,
                    source_date_epoch,
                    out,
                )
            })?;
            if with_kernel {
                written.extend(beside_kernel_and_cmdline(
                    format, file, &boot, &names, files,
                )?);
            } else {
                written.push((format, file));
            }
        }
        Ok::<_, OutputError>(())
    })?;
    if initrd_formats.is_empty() {
        return Ok(written);
    }
    if let Some(format) = formats.iter().find(|f| f.needs_bootloader())
        && boot.kernel.is_empty()
    {
        return Err(OutputError::NoKernel(*format));
    }
    let mut initrd_file = initrd(&tree, &boot.ucode, scratch, source_date_epoch, boot_options)?;
    drop(tree);
    let initrd_len = initrd_file.stream_position().map_err(io_error)?;
    // Read from its file by every format, however large it is.
    let initrd = Contents::file(&initrd_file, initrd_len);
    let cmdline = String::from_utf8_lossy(&boot.cmdline);
    let bootable = boot_options
        .bootloader
        .map(|bootloader| {
            Bootable::new(
                name,
                &boot.kernel,
                initrd,
                &cmdline,
                source_date_epoch,
                boot_options.architecture,
                bootloader,
            )
        })
        .transpose()
        .map_err(io_error)?;
    let mut disks = bootable
        .as_ref()
        .map(|system| disk::Disks::new(system, boot_options.disk_size, scratch));
    for format in initrd_formats {
        let names = format.file_names(name);
        match format.recipe() {
            Recipe::Bootable(medium) => {
                let (Some(system), Some(disks)) = (&bootable, &mut disks) else {
                    return Err(OutputError::NoBootloader(format));
                };
                let file = stage_file(&(files.path)(&names[0]), |out| {
                    write_medium(system, disks, medium, scratch, out)
                })?;
                written.push((format, file));
            }
            Recipe::KernelInitrd => {
                let file = stage_file(&(files.path)(&names[1]), |out| {
                    copy(&mut initrd.reader(), out)
                })?;
                written.extend(beside_kernel_and_cmdline(
                    format, file, &boot, &names, files,
                )?);
            }
            Recipe::TarKernelInitrd => {
                let mut bundle = Tree::new(source_date_epoch);
                let parts = [
                    ("kernel", &boot.kernel[..]),
                    ("cmdline", &boot.cmdline),
                    ("ucode.cpio", &boot.ucode),
                ];
                for (file_name, contents) in parts.into_iter().filter(|(_, c)| !c.is_empty()) {
                    let blob = bundle.store_bytes(contents).map_err(io_error)?;
                    add_file(&mut bundle, file_name, blob, source_date_epoch);
                }
                let blob = bundle
                    .store(initrd.reader(), initrd_len)
                    .map_err(io_error)?;
                add_file(&mut bundle, "initrd.img", blob, source_date_epoch);
                let file = stage_file(&(files.path)(&names[0]), |out| {
                    write::tar::write(&bundle, out, source_date_epoch, &[]).map(drop)
                })?;
                written.push((format, file));
            }
            // Written above, or refused by `check_supported`.
            Recipe::Tar { .. } | Recipe::Root { .. } | Recipe::NotYet => {}
        }
    }
    Ok(written)
}

/// The files of a `kernel+…` format, as LinuxKit lists them: the kernel
/// (`names[0]`), `image`, then the command line (`names[2]`); LinuxKit
/// writes only the kernel and command line that are not empty.
fn beside_kernel_and_cmdline(
    format: Format,
    image: Pending,
    boot: &boot::BootFiles,
    names: &[String],
    files: &Files<'_>,
) -> Result<Vec<(Format, Pending)>, OutputError> {
    let part = |contents: &[u8], file_name: &String| -> Result<Option<Pending>, OutputError> {
        if contents.is_empty() {
            return Ok(None);
        }
        stage_file(&(files.path)(file_name), |out| {
            copy(&mut &contents[..], out)
        })
        .map(Some)
    };
    let kernel = part(&boot.kernel, &names[0])?;
    let cmdline = part(&boot.cmdline, &names[2])?;
    Ok([kernel, Some(image), cmdline]
        .into_iter()
        .flatten()
        .map(|file| (format, file))
        .collect())
}

/// A bootable format cannot be made for the architecture built for.
#[derive(Debug, Error)]
#[error("format {format} boots {firmware} only, not {architecture}; {instead}")]
pub struct WrongArchitecture {
    format: Format,
    firmware: &'static str,
    architecture: String,
    instead: &'static str,
}

/// Fails, before anything is built, when one of `formats` cannot boot on
/// `architecture` or `bootloader` lacks a file it needs. Each file is read
/// once, however many formats need it.
pub fn check_bootloader(
    formats: &[Format],
    bootloader: &Bootloader,
    architecture: &str,
) -> Result<(), OutputError> {
    use crate::bootloader::{ISOHYBRID_MBR, ISOLINUX, LDLINUX};
    let mut checked = Vec::new();
    for &format in formats {
        for &loader in format.loaders() {
            let wrong = |firmware, instead| WrongArchitecture {
                format,
                firmware,
                architecture: architecture.to_owned(),
                instead,
            };
            let efi_stub = match bootable::efi_target(architecture) {
                Some((stub, _)) => Some(stub),
                None if loader == Loader::EfiStub => {
                    return Err(wrong("UEFI on amd64 and arm64", "build kernel+initrd").into());
                }
                None => None,
            };
            if loader != Loader::EfiStub && !matches!(architecture, "amd64" | "386") {
                return Err(wrong("x86 BIOS", "use an EFI format (raw-efi, iso-efi, uki)").into());
            }
            if checked.contains(&loader) {
                continue;
            }
            checked.push(loader);
            match loader {
                Loader::Isolinux => {
                    for file in [ISOLINUX, LDLINUX, ISOHYBRID_MBR] {
                        bootloader.read(file)?;
                    }
                }
                Loader::EfiStub => {
                    bootloader.read(efi_stub.expect("checked above"))?;
                }
                Loader::GrubPc => {
                    bootloader.grub_pc()?;
                }
            }
        }
    }
    Ok(())
}

/// Writes `medium` for `system` to `out`.
fn write_medium(
    system: &Bootable<'_>,
    disks: &mut disk::Disks<'_>,
    medium: Medium,
    scratch: &Path,
    out: &mut dyn Write,
) -> Result<(), FormatError> {
    match medium {
        Medium::Uki => {
            efi::uki(system)?.write(out)?;
            Ok(())
        }
        Medium::Iso(firmware) => iso::write(system, firmware, scratch, out),
        Medium::Disk(firmware, container, sizing) => {
            disk::write(disks, firmware, container, sizing, out)
        }
    }
}

/// A file at the top of a tree just made, where no insert can fail.
fn add_file(tree: &mut Tree, name: &str, blob: crate::tree::Blob, mtime: u64) {
    tree.insert(name, Kind::File(blob), Metadata::new(0o644, mtime))
        .expect("a plain name in a new tree always inserts");
}

fn copy(from: &mut impl Read, to: &mut dyn Write) -> Result<(), WriteError> {
    io::copy(from, to)
        .map(drop)
        .map_err(|e| WriteError::io(b"", e))
}

/// Writes one output file through `fill` into a temporary file beside
/// `path`, ready for its commit. The file is seekable, so writers that
/// fill in headers last write it in place.
fn stage_file<E: Into<FormatError>>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<AtomicFile>) -> Result<(), E>,
) -> Result<Pending, OutputError> {
    let io_error = |source| OutputError::Io {
        path: path.to_owned(),
        source,
    };
    let mut out = atomic::buffered(AtomicFile::create(path).map_err(io_error)?);
    fill(&mut out).map_err(|source| OutputError::Format {
        path: path.to_owned(),
        source: source.into(),
    })?;
    let file = out.into_inner().map_err(|e| io_error(e.into_error()))?;
    file.finish().map_err(io_error)
}

/// The initrd: microcode, then the tree as a newc cpio compressed as
/// `options` say, in an unlinked temporary file in `dir`, positioned at
/// its end.
fn initrd(
    tree: &Tree,
    ucode: &[u8],
    dir: &Path,
    source_date_epoch: u64,
    options: &BootOptions<'_>,
) -> Result<File, OutputError> {
    let io_error = |source| OutputError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut file = tempfile::tempfile_in(dir).map_err(io_error)?;
    file.write_all(ucode).map_err(io_error)?;
    let sink = InitrdSink {
        compressor: options
            .initrd_compression
            .compressor(&mut file)
            .map_err(io_error)?,
        ahead: options.deflated_ahead,
    };
    let sink = write::cpio::write_to_sink(tree, sink, source_date_epoch).map_err(|source| {
        OutputError::Format {
            path: dir.join("initrd"),
            source: source.into(),
        }
    })?;
    sink.compressor.finish().map_err(io_error)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootloaders_must_suit_the_architecture() {
        // The architecture is checked before any file is looked for, so
        // the host's (absent or present) files do not matter here.
        let host = Bootloader::host();
        let error = check_bootloader(&[Format::RawBios], &host, "arm64").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("format raw-bios boots x86 BIOS only, not arm64"),
            "{error}"
        );
        let error = check_bootloader(&[Format::Uki], &host, "riscv64").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("format uki boots UEFI on amd64 and arm64 only"),
            "{error}"
        );
        assert!(check_bootloader(&[Format::Tar, Format::KernelInitrd], &host, "s390x").is_ok());
    }
}
