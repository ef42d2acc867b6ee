//! Archive and image writers. Each takes a [`Tree`](crate::tree::Tree) and
//! knows nothing of OCI or YAML.
//!
//! Every writer takes a `source_date_epoch`: mtimes later than it are
//! clamped down to it, earlier ones kept, as `SOURCE_DATE_EPOCH` specifies.

use std::io;

use thiserror::Error;

pub mod contents;
pub mod cpio;
pub mod date;
pub mod erofs;
pub mod ext4;
pub mod fat;
pub mod grub;
pub mod gzip;
pub mod initrd_compression;
pub mod iso9660;
pub mod partition;
pub mod qcow2;
pub mod raw_image;
pub mod squashfs;
pub mod tar;
pub mod uki;
pub mod vhd;
pub mod vmdk;

/// The mtime a writer records for `mtime` under `source_date_epoch`.
pub fn clamp_mtime(mtime: u64, source_date_epoch: u64) -> u64 {
    mtime.min(source_date_epoch)
}

/// Whether every byte of `bytes` is zero. A page at a time against a page
/// of zeros: slice equality is `memcmp`, fast even in unoptimised test
/// builds, and stopping at the first non-zero page keeps data cheap.
pub fn is_zero(bytes: &[u8]) -> bool {
    const ZEROS: [u8; 4096] = [0; 4096];
    bytes
        .chunks(ZEROS.len())
        .all(|page| page == &ZEROS[..page.len()])
}

/// Writing an archive failed.
#[derive(Debug, Error)]
pub enum WriteError {
    /// Writing the output, or reading contents back from the tree, failed.
    #[error("writing the archive failed at `{path}` (is the output's disk full?)")]
    Io {
        /// The entry being written; empty for the archive's end.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The format cannot hold a kind of node.
    #[error(
        "`{path}` is {what}, which {format} cannot hold; remove it from the tree or use another format"
    )]
    Unsupported {
        /// The entry.
        path: String,
        /// The kind of node.
        what: &'static str,
        /// The archive format.
        format: &'static str,
    },
    /// A value is too large for the format's header field.
    #[error("`{path}`: {field} {value} does not fit a {format} header; use another output format")]
    Unrepresentable {
        /// The entry.
        path: String,
        /// The header field.
        field: &'static str,
        /// The value.
        value: u64,
        /// The archive format.
        format: &'static str,
    },
}

impl WriteError {
    pub(crate) fn io(path: &[u8], source: io::Error) -> WriteError {
        WriteError::Io {
            path: String::from_utf8_lossy(path).into_owned(),
            source,
        }
    }
}
