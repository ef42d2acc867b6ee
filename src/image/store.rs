//! The cache: an OCI image layout directory that skopeo, umoci and crane
//! can read. Blobs live under `blobs/sha256/<hex>`, image names in
//! `index.json` as `org.opencontainers.image.ref.name` annotations.
//!
//! A blob only ever appears under its name by an atomic rename after its
//! digest was checked, so readers never see a partial or wrong blob, and it
//! is checked again whenever it is read. `index.json` is rewritten the same
//! way under a file lock, so several processes can share one cache.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType};
use tempfile::NamedTempFile;

use super::digest::{Hasher, digest_reader};
use super::manifest::{Document, descriptor_digest};
use super::{Digest, Error, Platform, Reference};

/// The annotation that names an image in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const TEMP_PREFIX: &str = ".partial-";

/// An open cache directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An image named in the cache, as `cache ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    /// The name recorded in `index.json`.
    pub name: String,
    pub digest: Digest,
    /// The platforms whose manifests are in the cache.
    pub platforms: Vec<String>,
    /// The bytes of every cached blob the image uses.
    pub size: u64,
}

/// What checking a blob in the cache found.
#[derive(Debug, PartialEq, Eq)]
pub enum BlobState {
    Missing,
    Valid,
    /// The file did not match its digest and has been deleted.
    Corrupt {
        actual: Digest,
    },
}

/// Held while blobs are being added, so that `rm` and `clean` (which take
/// it exclusively) never delete a blob that is about to be named.
pub struct StoreGuard {
    _lock: File,
}

impl Store {
    /// `$XDG_CACHE_HOME/ossify`, else `~/.cache/ossify`.
    pub fn default_dir() -> Result<PathBuf, Error> {
        let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        non_empty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| non_empty("HOME").map(|home| Path::new(&home).join(".cache")))
            .map(|cache| cache.join("ossify"))
            .ok_or(Error::NoCacheDir)
    }

    /// Opens the layout at `dir`, creating an empty one if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let store = Self { root: dir.into() };
        let blobs = store.root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            store.write_atomically(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !store.index_path().exists() {
            let _lock = store.lock("index.json.lock", true)?;
            if !store.index_path().exists() {
                store.write_index(&empty_index())?;
            }
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Takes the shared lock that keeps `remove` and `clean` out while
    /// blobs are added and named.
    pub fn guard(&self) -> Result<StoreGuard, Error> {
        Ok(StoreGuard {
            _lock: self.lock("gc.lock", false)?,
        })
    }

    /// Hashes a cached blob; a corrupt one is deleted so it is fetched again.
    pub fn check_blob(&self, digest: &Digest) -> Result<BlobState, Error> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BlobState::Missing),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let (actual, _) = digest_reader(file).map_err(|e| Error::io(&path, e))?;
        if &actual == digest {
            return Ok(BlobState::Valid);
        }
        remove_if_present(&path)?;
        Ok(BlobState::Corrupt { actual })
    }

    /// A reader over a cached blob that fails with `InvalidData` at the end
    /// if the content does not match `digest`: callers must read to EOF
    /// before trusting what they read.
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader, Error> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobMissing(digest.clone()),
            _ => Error::io(&path, e),
        })?;
        Ok(BlobReader {
            file,
            expected: digest.clone(),
            hasher: Some(Hasher::default()),
        })
    }

    /// Reads a whole small blob (a manifest or config), verified.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(self.blob_path(digest), e))?;
        Ok(bytes)
    }

    /// Starts writing a blob; nothing is visible in the cache until
    /// [`BlobWriter::commit`] has checked it.
    pub fn blob_writer(&self) -> Result<BlobWriter, Error> {
        let dir = self.root.join("blobs/sha256");
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        Ok(BlobWriter {
            store: self.clone(),
            file,
            hasher: Hasher::default(),
        })
    }

    /// Writes a small blob held in memory and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let mut writer = self.blob_writer()?;
        writer.write(bytes)?;
        writer.commit(None)
    }

    /// The descriptor `index.json` records under `name`.
    pub fn lookup(&self, name: &str) -> Result<Option<Descriptor>, Error> {
        Ok(self
            .read_index()?
            .manifests()
            .iter()
            .find(|d| ref_name(d) == Some(name))
            .cloned())
    }

    /// Names a cached manifest or index, replacing what the name meant before.
    pub fn set_ref(&self, reference: &Reference, descriptor: &Descriptor) -> Result<(), Error> {
        let name = reference.to_string();
        let mut entry = descriptor.clone();
        entry.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), name.clone())])));
        self.update_index(|manifests| {
            manifests.retain(|d| ref_name(d) != Some(name.as_str()));
            manifests.push(entry);
        })
    }

    /// The images named in the cache, sorted by name.
    pub fn list(&self) -> Result<Vec<CachedImage>, Error> {
        let mut images = Vec::new();
        for descriptor in self.read_index()?.manifests() {
            let Some(name) = ref_name(descriptor) else {
                continue;
            };
            let digest = descriptor_digest(descriptor)?;
            let mut platforms = Vec::new();
            let mut size = 0;
            for blob in self.reachable(&digest, &mut platforms)? {
                size += fs::metadata(self.blob_path(&blob)).map_or(0, |m| m.len());
            }
            images.push(CachedImage {
                name: name.to_owned(),
                digest,
                platforms,
                size,
            });
        }
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(images)
    }

    /// Forgets `reference` and deletes the blobs no other name uses.
    /// Returns whether the name was in the cache.
    pub fn remove(&self, reference: &Reference) -> Result<bool, Error> {
        let _exclusive = self.lock("gc.lock", true)?;
        let name = reference.to_string();
        let mut found = false;
        self.update_index(|manifests| {
            let before = manifests.len();
            manifests.retain(|d| ref_name(d) != Some(name.as_str()));
            found = manifests.len() != before;
        })?;
        self.collect_garbage()?;
        Ok(found)
    }

    /// Empties the cache: every name and every blob.
    pub fn clean(&self) -> Result<(), Error> {
        let _exclusive = self.lock("gc.lock", true)?;
        self.update_index(Vec::clear)?;
        self.collect_garbage()
    }

    /// Deletes blobs (and leftover partial downloads) that no name reaches.
    fn collect_garbage(&self) -> Result<(), Error> {
        let mut keep = BTreeSet::new();
        for descriptor in self.read_index()?.manifests() {
            keep.extend(self.reachable(&descriptor_digest(descriptor)?, &mut Vec::new())?);
        }
        let dir = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let digest = format!("sha256:{name}").parse::<Digest>().ok();
            if digest.is_none_or(|d| !keep.contains(&d)) {
                remove_if_present(&path)?;
            }
        }
        Ok(())
    }

    /// The cached blobs reachable from `root` (itself included), adding the
    /// platform of each cached manifest met on the way to `platforms`.
    pub(crate) fn reachable(
        &self,
        root: &Digest,
        platforms: &mut Vec<String>,
    ) -> Result<Vec<Digest>, Error> {
        let mut found = Vec::new();
        let mut pending = vec![(root.clone(), None)];
        while let Some((digest, platform)) = pending.pop() {
            if !self.blob_path(&digest).exists() {
                continue;
            }
            found.push(digest.clone());
            let Ok(bytes) = self.read_blob(&digest) else {
                continue;
            };
            let Ok(document) = Document::parse(&digest, &bytes) else {
                continue;
            };
            if let Document::Manifest(manifest) = &document {
                platforms.extend(platform.or_else(|| self.config_platform(manifest)));
            }
            for child in document.children() {
                let child_platform = child.platform().as_ref().map(Platform::describe);
                if is_manifest(child.media_type()) || child_platform.is_some() {
                    pending.push((descriptor_digest(child)?, child_platform));
                } else {
                    found.push(descriptor_digest(child)?);
                }
            }
        }
        found.retain(|d| self.blob_path(d).exists());
        found.sort();
        found.dedup();
        platforms.sort();
        platforms.dedup();
        Ok(found)
    }

    /// The platform an image config declares, for manifests not reached
    /// through an index.
    fn config_platform(&self, manifest: &ImageManifest) -> Option<String> {
        let config = self
            .read_blob(&descriptor_digest(manifest.config()).ok()?)
            .ok()?;
        let config: serde_json::Value = serde_json::from_slice(&config).ok()?;
        let field = |name| config.get(name).and_then(|v| v.as_str());
        let mut platform = format!("{}/{}", field("os")?, field("architecture")?);
        if let Some(variant) = field("variant") {
            platform = format!("{platform}/{variant}");
        }
        Some(platform)
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub(crate) fn read_index(&self) -> Result<ImageIndex, Error> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::CorruptIndex {
            path,
            reason: e.to_string(),
        })
    }

    fn update_index(&self, change: impl FnOnce(&mut Vec<Descriptor>)) -> Result<(), Error> {
        let _lock = self.lock("index.json.lock", true)?;
        let mut index = self.read_index()?;
        let mut manifests = index.manifests().clone();
        change(&mut manifests);
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(index).expect("an image index always serialises");
        self.write_atomically(&self.index_path(), &json)
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let mut file = NamedTempFile::new_in(&self.root).map_err(|e| Error::io(&self.root, e))?;
        file.write_all(bytes).map_err(|e| Error::io(path, e))?;
        file.persist(path).map_err(|e| Error::io(path, e.error))?;
        Ok(())
    }

    fn lock(&self, name: &str, exclusive: bool) -> Result<File, Error> {
        let path = self.root.join(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }
}

/// A blob being written to the cache; dropping it without committing
/// leaves nothing behind.
pub struct BlobWriter {
    store: Store,
    file: NamedTempFile,
    hasher: Hasher,
}

impl BlobWriter {
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.hasher.update(bytes);
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(self.file.path(), e))
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// Moves the blob under its digest. With `expected`, a blob whose
    /// content hashes to anything else is discarded with an error.
    pub fn commit(self, expected: Option<&Digest>) -> Result<Digest, Error> {
        let actual = self.hasher.finish();
        if let Some(expected) = expected.filter(|e| **e != actual) {
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let path = self.store.blob_path(&actual);
        self.file
            .persist(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        Ok(actual)
    }
}

/// A verifying reader over a cached blob; see [`Store::open_blob`].
pub struct BlobReader {
    file: File,
    expected: Digest,
    hasher: Option<Hasher>,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(n);
        };
        if n > 0 {
            hasher.update(&buf[..n]);
            return Ok(n);
        }
        let actual = self.hasher.take().expect("checked above").finish();
        if actual != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Error::CorruptBlob {
                    expected: self.expected.clone(),
                    actual,
                },
            ));
        }
        Ok(0)
    }
}

fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .expect("an empty index has every required field")
}

fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(REF_NAME)
        .map(String::as_str)
}

fn is_manifest(media_type: &MediaType) -> bool {
    super::manifest::ACCEPTED.contains(&media_type.to_string().as_str())
}

fn remove_if_present(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}
