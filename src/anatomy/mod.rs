//! Where two builds of an output first differ, and which structure of the
//! output that byte belongs to: `ossify verify --rebuild` reports "byte
//! 123456: GPT partition 1 › FAT cluster 37 › file EFI/BOOT/BOOTX64.EFI ›
//! data" rather than a bare offset.
//!
//! The files are compared a MiB at a time; then only the expected file's
//! structure around the offset is parsed, reading just what naming it
//! needs. Every describer reads through [`source::Source::bytes`], which
//! bounds each read, so a corrupt or foreign file yields a shorter
//! breadcrumb, never a panic. Everything before the offset is the same in
//! both files, so a structure that starts before it starts at the same
//! place in both: a partition, a file extent or a compressed stream is
//! taken as the same window of each, and compressed streams are
//! decompressed on both sides to find the first differing decompressed
//! byte.

mod compare;
mod compressed;
mod container;
mod cpio;
mod disk;
mod ext4;
mod fat;
mod filesystem;
mod iso9660;
mod pe;
mod sequential;
mod source;
mod tar;

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use compare::OnError;
use compressed::Compression;
use sequential::SourceStream;
use source::{Fields, FileSource, Source, Window};

/// How an output file is laid out, so a byte offset can be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A tar archive (`tar`, `docker`, `tar-kernel-initrd`).
    Tar,
    /// A cpio archive, compressed or not.
    Initrd,
    /// A compressed stream of a tar or cpio (the `gcp` tarball).
    Compressed,
    Iso9660,
    /// An MBR or GPT partitioned disk.
    Disk,
    Fat,
    Ext4,
    Squashfs,
    Erofs,
    Qcow2,
    /// A fixed or dynamic VHD.
    Vhd,
    /// A streamOptimized VMDK.
    Vmdk,
    /// A PE executable (the UKI).
    Pe,
    /// Bytes without structure ossify knows (the kernel, the command line).
    Opaque,
}

impl Layout {
    /// The layout of the file `file_name` written for the format named
    /// `format` (LinuxKit's names, as `--format` takes them); formats that
    /// write several files are told apart by the file's suffix.
    pub fn of(format: &str, file_name: &str) -> Layout {
        match format {
            "tar" | "docker" | "tar-kernel-initrd" => Layout::Tar,
            "iso-bios" | "iso-efi" | "iso-efi-initrd" | "iso" => Layout::Iso9660,
            "raw-bios" | "raw-efi" | "aws" => Layout::Disk,
            "qcow2-bios" | "qcow2-efi" => Layout::Qcow2,
            "vhd" | "dynamic-vhd" => Layout::Vhd,
            "vmdk" => Layout::Vmdk,
            "gcp" => Layout::Compressed,
            "uki" => Layout::Pe,
            "squashfs" => Layout::Squashfs,
            "erofs" => Layout::Erofs,
            "ext4" => Layout::Ext4,
            "kernel+initrd" | "kernel+squashfs" | "kernel+erofs" | "kernel+iso" => {
                match file_name {
                    name if name.ends_with("-initrd.img") => Layout::Initrd,
                    name if name.ends_with("-squashfs.img") => Layout::Squashfs,
                    name if name.ends_with("-erofs.img") => Layout::Erofs,
                    name if name.ends_with(".iso") => Layout::Iso9660,
                    _ => Layout::Opaque,
                }
            }
            _ => Layout::Opaque,
        }
    }

    /// The layout `source` looks like, by its magic numbers: for a
    /// partition, a file inside an image, a virtual disk's guest.
    fn sniff(source: &dyn Source) -> Layout {
        let head = source.bytes(0, 512.min(source.len())).unwrap_or_default();
        let at = |offset: u64, magic: &[u8]| {
            source.bytes(offset, magic.len() as u64).as_deref() == Some(magic)
        };
        if Compression::sniff(&head).is_some() {
            Layout::Compressed
        } else if head.starts_with(cpio::MAGIC) {
            Layout::Initrd
        } else if at(257, b"ustar") {
            Layout::Tar
        } else if head.starts_with(b"QFI\xfb") {
            Layout::Qcow2
        } else if head.starts_with(b"KDMV") {
            Layout::Vmdk
        } else if head.starts_with(b"conectix") || at(source.len().saturating_sub(512), b"conectix")
        {
            Layout::Vhd
        } else if at(32769, b"CD001") {
            Layout::Iso9660
        } else if head.starts_with(b"hsqs") {
            Layout::Squashfs
        } else if at(1024, &filesystem::EROFS_MAGIC.to_le_bytes()) {
            Layout::Erofs
        } else if at(1080, &ext4::MAGIC.to_le_bytes()) {
            Layout::Ext4
        } else if head.starts_with(b"MZ") && pe::is_pe(source) {
            Layout::Pe
        } else if head.le16(510) == 0xaa55 {
            if fat::is_fat(&head) {
                Layout::Fat
            } else {
                Layout::Disk
            }
        } else {
            Layout::Opaque
        }
    }
}

/// Where two files first differ.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// The first differing byte offset in the files (or the shorter file's
    /// length when one is a prefix).
    pub offset: u64,
    /// The structures the offset falls in, outermost first, e.g.
    /// `["GPT partition 1 \"ESP\"", "FAT cluster 37", "file
    /// EFI/BOOT/BOOTX64.EFI", "data"]`; empty for [`Layout::Opaque`]. In a
    /// compressed stream, the structure at the first differing
    /// decompressed byte (`["gzip stream", "cpio entry etc/issue", "data"]`).
    pub structure: Vec<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}", self.offset)?;
        if !self.structure.is_empty() {
            write!(f, ": {}", self.structure.join(" › "))?;
        }
        Ok(())
    }
}

/// Comparing two outputs failed.
#[derive(Debug, thiserror::Error)]
pub enum AnatomyError {
    #[error("cannot open `{path}` to compare it (does it exist and is it readable?)")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading `{expected}` or `{actual}` failed while comparing them")]
    Read {
        expected: PathBuf,
        actual: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where `actual` first differs from `expected`, laid out as `layout`:
/// `None` when the files are identical.
pub fn first_difference(
    layout: Layout,
    expected: &Path,
    actual: &Path,
) -> Result<Option<Difference>, AnatomyError> {
    let open = |path: &Path| {
        File::open(path)
            .and_then(FileSource::new)
            .map_err(|source| AnatomyError::Open {
                path: path.to_owned(),
                source,
            })
    };
    let (expected_file, actual_file) = (open(expected)?, open(actual)?);
    let read_error = |source| AnatomyError::Read {
        expected: expected.to_owned(),
        actual: actual.to_owned(),
        source,
    };
    let mut left = sequential::SourceReader {
        source: &expected_file,
        position: 0,
    };
    let mut right = sequential::SourceReader {
        source: &actual_file,
        position: 0,
    };
    let Some(offset) =
        compare::first_difference(&mut left, &mut right, OnError::Fail).map_err(read_error)?
    else {
        return Ok(None);
    };
    let pair = Pair {
        expected: &expected_file,
        actual: &actual_file,
        depth: 0,
    };
    Ok(Some(Difference {
        offset,
        structure: describe(layout, &pair, offset),
    }))
}

/// The same range of the expected and the actual file (or of what they
/// contain), described together.
pub(crate) struct Pair<'a> {
    pub expected: &'a dyn Source,
    pub actual: &'a dyn Source,
    /// How many containers deep this is; bounded so nested images cannot
    /// recurse without end.
    depth: u8,
}

const MAX_DEPTH: u8 = 6;

impl Pair<'_> {
    /// The breadcrumb of `offset` in the range `range` of both sides,
    /// described as whatever the expected side's range looks like.
    pub(crate) fn nested(&self, range: Range<u64>, offset: u64) -> Vec<String> {
        let len = range.end.saturating_sub(range.start);
        let expected = Window::new(self.expected, range.start, len);
        let actual = Window::new(self.actual, range.start, len);
        self.within(&expected, &actual, offset.saturating_sub(range.start))
    }

    /// The breadcrumb of `offset` in `expected` and `actual`, two views
    /// (a guest disk, a decompressed grain) of this pair's sides.
    pub(crate) fn within(
        &self,
        expected: &dyn Source,
        actual: &dyn Source,
        offset: u64,
    ) -> Vec<String> {
        if self.depth >= MAX_DEPTH {
            return Vec::new();
        }
        let pair = Pair {
            expected,
            actual,
            depth: self.depth + 1,
        };
        describe(Layout::sniff(expected), &pair, offset)
    }
}

/// What an archive walker found at an offset: its crumbs, and the range of
/// the entry's data when the offset lies in it, to describe further.
pub(crate) struct Found {
    pub crumbs: Vec<String>,
    pub data: Option<Range<u64>>,
}

impl Found {
    fn crumbs<const N: usize, S: Into<String>>(crumbs: [S; N]) -> Found {
        Found {
            crumbs: crumbs.into_iter().map(Into::into).collect(),
            data: None,
        }
    }
}

/// The breadcrumb of `offset` in `pair`, laid out as `layout`.
fn describe(layout: Layout, pair: &Pair<'_>, offset: u64) -> Vec<String> {
    let compressed = matches!(layout, Layout::Initrd | Layout::Compressed);
    if offset >= pair.expected.len() && !compressed {
        return vec!["past the end of the expected file".to_owned()];
    }
    let mut stream = SourceStream {
        source: pair.expected,
        position: 0,
    };
    let found = match layout {
        Layout::Opaque => return Vec::new(),
        Layout::Tar => tar::describe(&mut stream, offset),
        Layout::Initrd | Layout::Compressed => {
            let head = pair.expected.bytes(0, 6).unwrap_or_default();
            match Compression::sniff(&head) {
                Some(compression) => return compressed::describe(compression, pair),
                None if head.starts_with(cpio::MAGIC) => cpio::describe(&mut stream, offset),
                None => return Vec::new(),
            }
        }
        Layout::Disk => return disk::describe(pair, offset),
        Layout::Fat => return fat::describe(pair, offset),
        Layout::Ext4 => return ext4::describe(pair.expected, offset),
        Layout::Iso9660 => return iso9660::describe(pair, offset),
        Layout::Squashfs => return filesystem::squashfs(pair.expected, offset),
        Layout::Erofs => return filesystem::erofs(pair.expected, offset),
        Layout::Qcow2 => return container::qcow2(pair, offset),
        Layout::Vhd => return container::vhd(pair, offset),
        Layout::Vmdk => return container::vmdk(pair, offset),
        Layout::Pe => return pe::describe(pair, offset),
    };
    let mut crumbs = found.crumbs;
    if let Some(data) = found.data {
        crumbs.extend(pair.nested(data, offset));
    }
    crumbs
}
