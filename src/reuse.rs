//! Work kept from earlier builds, in the cache directory, found by content.
//!
//! Users rebuild often with small changes, and most of a build's time goes
//! to two steps whose results depend only on their input's bytes:
//! inflating layers and deflating the initrd's large files. `reuse/` keeps
//! both, under names that are digests of what they were made from:
//!
//! - `layers/<hex>`: a layer's uncompressed tar, named by its diff_id (the
//!   sha256 of those very bytes, checked again whenever it is applied);
//! - `gzip/<hex>`: a file's contents as a gzip segment (see
//!   [`crate::write::gzip`]), named by the BLAKE3 digest of the contents,
//!   with the BLAKE3 digest of the segment itself checked on every read.
//!
//! So a reused result is the same bytes a cold build makes, and a damaged
//! one is ignored and made again. Entries appear by atomic rename, under
//! the cache's shared lock; `cache clean` removes them all. A cache that
//! cannot be written to still builds, only without keeping anything.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::image::Digest;
use crate::write::gzip::SegmentCheck;

/// The directory's name inside the cache.
pub const DIR: &str = "reuse";
/// What a kept segment file starts with: its format, version 1.
const SEGMENT_MAGIC: &[u8; 8] = b"OSSYGZ1\n";
/// Magic, CRC-32 and length of the input, BLAKE3 of the segment.
const SEGMENT_HEADER: usize = 8 + 4 + 8 + 32;

/// The `reuse/` directory of a cache that can be written to.
#[derive(Debug, Clone)]
pub struct Reuse {
    dir: PathBuf,
}

impl Reuse {
    /// The reuse directory of the cache at `cache_dir`, created if need
    /// be, or `None` when it cannot be written to (a read-only cache).
    pub fn open(cache_dir: &Path) -> Option<Reuse> {
        let dir = cache_dir.join(DIR);
        for sub in ["layers", "gzip"] {
            fs::create_dir_all(dir.join(sub)).ok()?;
        }
        // Created by another user, or on a read-only mount, it may exist
        // and still refuse new entries.
        NamedTempFile::new_in(dir.join("gzip")).ok()?;
        Some(Reuse { dir })
    }

    /// Removes everything kept in the cache at `cache_dir`.
    pub fn remove(cache_dir: &Path) -> io::Result<()> {
        match fs::remove_dir_all(cache_dir.join(DIR)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.hex())
    }

    /// The uncompressed tar of the layer whose diff_id is `diff_id`, if
    /// kept. The caller checks its digest as it reads it.
    pub fn layer(&self, diff_id: &Digest) -> Option<File> {
        File::open(self.layer_path(diff_id)).ok()
    }

    /// Removes the kept layer `diff_id`, found damaged; returns whether
    /// it is gone.
    pub fn forget_layer(&self, diff_id: &Digest) -> bool {
        fs::remove_file(self.layer_path(diff_id)).is_ok()
    }

    /// A file to write a layer's uncompressed tar to, to keep it with
    /// [`Reuse::keep_layer`] once its digest is known to be right.
    pub fn new_layer(&self) -> io::Result<NamedTempFile> {
        NamedTempFile::new_in(self.dir.join("layers"))
    }

    /// Keeps `written` as the layer whose diff_id is `diff_id`.
    pub fn keep_layer(&self, written: NamedTempFile, diff_id: &Digest) -> io::Result<()> {
        written.persist(self.layer_path(diff_id))?;
        Ok(())
    }

    fn segment_path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join("gzip").join(hex::encode(key))
    }

    /// Whether a segment for contents with digest `key` is kept.
    pub fn has_segment(&self, key: &[u8; 32]) -> bool {
        self.segment_path(key).is_file()
    }

    /// The kept segment for contents with digest `key`, read whole and
    /// checked; `None` when it is absent or damaged (then it is removed,
    /// to be made and kept again).
    pub fn segment(&self, key: &[u8; 32]) -> Option<(SegmentCheck, Vec<u8>)> {
        let path = self.segment_path(key);
        let mut bytes = Vec::new();
        File::open(&path).ok()?.read_to_end(&mut bytes).ok()?;
        let segment = Self::parse_segment(bytes);
        if segment.is_none() {
            let _ = fs::remove_file(&path);
        }
        segment
    }

    /// A kept segment file's check and segment, if it is whole.
    fn parse_segment(mut bytes: Vec<u8>) -> Option<(SegmentCheck, Vec<u8>)> {
        let (header, deflated) = bytes.split_at_checked(SEGMENT_HEADER)?;
        let field = |range: std::ops::Range<usize>| &header[range];
        let digest = blake3::hash(deflated);
        if field(0..8) != SEGMENT_MAGIC || field(20..52) != digest.as_bytes() {
            return None;
        }
        let check = SegmentCheck {
            crc: u32::from_le_bytes(field(8..12).try_into().ok()?),
            len: u64::from_le_bytes(field(12..20).try_into().ok()?),
        };
        bytes.drain(..SEGMENT_HEADER);
        Some((check, bytes))
    }

    /// Keeps `deflated`, the segment of contents with digest `key`.
    pub fn keep_segment(
        &self,
        key: &[u8; 32],
        deflated: &[u8],
        check: SegmentCheck,
    ) -> io::Result<()> {
        let mut file = NamedTempFile::new_in(self.dir.join("gzip"))?;
        file.write_all(SEGMENT_MAGIC)?;
        file.write_all(&check.crc.to_le_bytes())?;
        file.write_all(&check.len.to_le_bytes())?;
        file.write_all(blake3::hash(deflated).as_bytes())?;
        file.write_all(deflated)?;
        file.persist(self.segment_path(key))?;
        Ok(())
    }
}
