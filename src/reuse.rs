//! Work kept from earlier builds, in the cache directory, found by content.
//!
//! Users rebuild often with small changes, and most of a build's time goes
//! to two steps whose results depend only on their input's bytes:
//! inflating layers and deflating the initrd's large files. `reuse/` keeps
//! both, under names that are digests of what they were made from:
//!
//! - `layers/<hex>`: a layer's uncompressed tar, named by its diff_id (the
//!   sha256 of those very bytes, checked as it was kept), and
//!   `layers/<hex>.b3`, the BLAKE3 digest of the same bytes, taken then
//!   and checked whenever the tar is applied: BLAKE3 reads several times
//!   faster than sha256, and a rebuild reads every kept layer;
//! - `gzip/<hex>.pack`: files' contents as gzip segments (see
//!   [`crate::write::gzip`]), those one worker of one build deflated, one
//!   after another; `gzip/<hex>.idx` finds each by the BLAKE3 digest of
//!   its contents, with the BLAKE3 digest of the segment itself, checked
//!   on every read. (A file per worker, not per segment: creating
//!   thousands of small files cost more than deflating them.)
//!
//! So a reused result is the same bytes a cold build makes, and a damaged
//! one is ignored and made again. Entries appear by atomic rename, under
//! the cache's shared lock; `cache clean` removes them all. A cache that
//! cannot be written to still builds, only without keeping anything.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::image::Digest;
use crate::write::contents::Contents;
use crate::write::gzip::SegmentCheck;

/// The directory's name inside the cache.
pub const DIR: &str = "reuse";

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

    /// Removes the kept layers of the cache at `cache_dir` whose diff_id
    /// is not in `live`, and files left by builds that ended before
    /// keeping them. Only for a caller that holds the cache exclusively.
    pub fn forget_layers_except(cache_dir: &Path, live: &BTreeSet<Digest>) -> io::Result<()> {
        let dir = cache_dir.join(DIR).join("layers");
        let entries = match fs::read_dir(&dir) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            entries => entries?,
        };
        for entry in entries {
            let path = entry?.path();
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            let diff_id = format!("sha256:{stem}").parse::<Digest>().ok();
            if diff_id.is_none_or(|id| !live.contains(&id)) {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.hex())
    }

    fn layer_digest_path(&self, diff_id: &Digest) -> PathBuf {
        self.layer_path(diff_id).with_extension("b3")
    }

    /// The uncompressed tar of the layer whose diff_id is `diff_id`, if
    /// kept, and the BLAKE3 digest it must have. The caller checks it as
    /// it reads the tar.
    pub fn layer(&self, diff_id: &Digest) -> Option<(File, Key)> {
        let mut digest = Key::default();
        File::open(self.layer_digest_path(diff_id))
            .ok()?
            .read_exact(&mut digest)
            .ok()?;
        Some((File::open(self.layer_path(diff_id)).ok()?, digest))
    }

    /// Removes the kept layer `diff_id`, found damaged; returns whether
    /// it is gone.
    pub fn forget_layer(&self, diff_id: &Digest) -> bool {
        let _ = fs::remove_file(self.layer_digest_path(diff_id));
        fs::remove_file(self.layer_path(diff_id)).is_ok()
    }

    /// A file to write a layer's uncompressed tar to, to keep it with
    /// [`Reuse::keep_layer`] once its digest is known to be right.
    pub fn new_layer(&self) -> io::Result<NamedTempFile> {
        NamedTempFile::new_in(self.dir.join("layers"))
    }

    /// Keeps `written`, whose BLAKE3 digest is `digest`, as the layer
    /// whose diff_id is `diff_id`.
    pub fn keep_layer(
        &self,
        written: NamedTempFile,
        diff_id: &Digest,
        digest: &Key,
    ) -> io::Result<()> {
        let mut file = NamedTempFile::new_in(self.dir.join("layers"))?;
        file.write_all(digest)?;
        // The digest first: a kept tar always has one (an older digest
        // left by a failed keep fails its check, and the tar is remade).
        file.persist(self.layer_digest_path(diff_id))?;
        written.persist(self.layer_path(diff_id))?;
        Ok(())
    }

    /// Every pack of segments kept, with its index; a pack whose index
    /// is damaged is removed.
    pub fn segments(&self) -> KeptSegments {
        let mut kept = KeptSegments::default();
        let dir = self.dir.join("gzip");
        let Ok(entries) = fs::read_dir(&dir) else {
            return kept;
        };
        let mut indexes: Vec<PathBuf> = entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "idx"))
            .collect();
        indexes.sort();
        for index in indexes {
            let pack_path = index.with_extension("pack");
            let loaded = read_index(&index).and_then(|entries| {
                let pack = File::open(&pack_path).ok()?;
                Some((pack, entries))
            });
            let Some((pack, entries)) = loaded else {
                remove_pack(&pack_path);
                continue;
            };
            let number = kept.packs.len() as u32;
            kept.packs.push((pack, pack_path));
            for (key, segment) in entries {
                kept.index.entry(key).or_insert((number, segment));
            }
        }
        kept
    }

    /// A file to append new segments to, to keep with
    /// [`Reuse::keep_pack`].
    pub fn new_pack(&self) -> io::Result<NamedTempFile> {
        NamedTempFile::new_in(self.dir.join("gzip"))
    }

    /// Keeps `pack`, holding the segments `entries` describe, with its
    /// index, both named by the index's digest; returns the pack's path.
    pub fn keep_pack(
        &self,
        pack: NamedTempFile,
        entries: &[(Key, PackedSegment)],
    ) -> io::Result<PathBuf> {
        let mut index = Vec::with_capacity(INDEX_MAGIC.len() + entries.len() * INDEX_ENTRY + 32);
        index.extend_from_slice(INDEX_MAGIC);
        for (key, segment) in entries {
            index.extend_from_slice(key);
            index.extend_from_slice(&segment.offset.to_le_bytes());
            index.extend_from_slice(&segment.len.to_le_bytes());
            index.extend_from_slice(&segment.check.crc.to_le_bytes());
            index.extend_from_slice(&segment.check.len.to_le_bytes());
            index.extend_from_slice(&segment.digest);
        }
        let digest = blake3::hash(&index);
        index.extend_from_slice(digest.as_bytes());
        let name = self.dir.join("gzip").join(digest.to_hex().as_str());
        // The pack first: an index never names a missing pack.
        pack.persist(name.with_extension("pack"))?;
        let mut file = NamedTempFile::new_in(self.dir.join("gzip"))?;
        file.write_all(&index)?;
        file.persist(name.with_extension("idx"))?;
        Ok(name.with_extension("pack"))
    }
}

/// The BLAKE3 digest of a file's contents, which names its segment.
pub type Key = [u8; 32];

/// Where a segment lies in a pack, and what checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedSegment {
    pub offset: u64,
    pub len: u64,
    /// The CRC-32 and length of the contents it deflates.
    pub check: SegmentCheck,
    /// The BLAKE3 digest of the segment's own bytes.
    pub digest: [u8; 32],
}

/// What an index starts with: its format, version 1.
const INDEX_MAGIC: &[u8; 8] = b"OSSYIDX1";
/// Key, offset, length, CRC-32, contents' length, digest.
const INDEX_ENTRY: usize = 32 + 8 + 8 + 4 + 8 + 32;
/// Indexes larger than this are not read: one build's worth of large
/// files is far smaller.
const MAX_INDEX: u64 = 256 << 20;

/// The entries of the index at `path`, if it is whole.
fn read_index(path: &Path) -> Option<Vec<(Key, PackedSegment)>> {
    let file = File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_INDEX).read_to_end(&mut bytes).ok()?;
    let (body, digest) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    let entries = body.strip_prefix(INDEX_MAGIC)?;
    if blake3::hash(body).as_bytes() != digest || entries.len() % INDEX_ENTRY != 0 {
        return None;
    }
    let number = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    Some(
        entries
            .chunks_exact(INDEX_ENTRY)
            .map(|entry| {
                let key: Key = entry[..32].try_into().expect("32 bytes");
                let segment = PackedSegment {
                    offset: number(&entry[32..40]),
                    len: number(&entry[40..48]),
                    check: SegmentCheck {
                        crc: u32::from_le_bytes(entry[48..52].try_into().expect("4 bytes")),
                        len: number(&entry[52..60]),
                    },
                    digest: entry[60..92].try_into().expect("32 bytes"),
                };
                (key, segment)
            })
            .collect(),
    )
}

/// Removes a pack and its index.
pub fn remove_pack(pack: &Path) {
    let _ = fs::remove_file(pack);
    let _ = fs::remove_file(pack.with_extension("idx"));
}

/// The segments kept by earlier builds, by the digest of their contents.
#[derive(Debug, Default)]
pub struct KeptSegments {
    packs: Vec<(File, PathBuf)>,
    index: HashMap<Key, (u32, PackedSegment)>,
}

impl KeptSegments {
    /// The path of every pack loaded.
    pub fn pack_paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.packs.iter().map(|(_, path)| path)
    }

    /// Whether a segment for contents with digest `key` is kept.
    pub fn contains(&self, key: &Key) -> bool {
        self.index.contains_key(key)
    }

    /// The kept segment for contents with digest `key`, checked: its
    /// check, and where its bytes lie. `None` when it is absent or damaged
    /// (then its pack is removed, to be made and kept again).
    pub fn get(&self, key: &Key) -> Option<(SegmentCheck, Contents<'_>)> {
        let (pack, segment) = self.index.get(key)?;
        let (file, path) = &self.packs[*pack as usize];
        let contents = Contents::File {
            file,
            offset: segment.offset,
            len: segment.len,
        };
        // Read twice, to check then to copy, as a segment may be larger
        // than memory should hold; the second read finds the page cache.
        let mut hasher = blake3::Hasher::new();
        let read = contents.for_each_piece(|piece| {
            hasher.update(piece);
        });
        if read.is_err() || hasher.finalize().as_bytes() != &segment.digest {
            remove_pack(path);
            return None;
        }
        Some((segment.check, contents))
    }
}
