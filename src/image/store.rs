//! The cache: an OCI image layout directory that skopeo, umoci and crane
//! can read. Blobs live under `blobs/sha256/<hex>`, image names in
//! `index.json` as `org.opencontainers.image.ref.name` annotations.
//!
//! A blob only ever appears under its name by an atomic rename after its
//! digest was checked, so readers never see a partial or wrong blob, and it
//! is checked again whenever it is read. `index.json` is rewritten the same
//! way under a file lock, so several processes can share one cache.
//!
//! Locks: `gc.lock` is held shared by every command that reads or adds
//! blobs (for a build, from resolution to the last layer read) and
//! exclusively by `rm` and `clean`, which delete them. Each partial
//! download is itself locked while written, so a file left by a process
//! that died can be told from one being written, and removed.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType};
use tempfile::NamedTempFile;

use super::digest::{Hasher, digest_reader};
use super::limit::MAX_DOCUMENT;
use super::manifest::{Document, descriptor_digest};
use super::{Digest, Error, Platform, Reference};
use crate::abandoned::{remove_abandoned, remove_if_abandoned};

/// The annotation that names an image in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const TEMP_PREFIX: &str = ".partial-";
const GC_LOCK: &str = "gc.lock";
const INDEX_LOCK: &str = "index.json.lock";

/// How deep indexes may nest inside indexes; real images have one level.
pub(crate) const MAX_NESTING: usize = 4;

/// Told, once, when a lock is held by another process, before waiting.
type OnWait = Arc<dyn Fn(&str) + Send + Sync>;

/// A cache directory.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    on_wait: OnWait,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

/// An image named in the cache, as `cache ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    /// The name recorded in `index.json`.
    pub name: String,
    pub digest: Digest,
    /// The platforms whose manifest, config and layers are all cached.
    pub platforms: Vec<String>,
    /// The bytes of the blobs of those platforms.
    pub size: u64,
    /// A blob the image lacks, when no platform of it is complete: the
    /// image cannot be used until it is pulled again (a pull by an older
    /// ossify, or a hand edit, may have left it so).
    pub missing: Option<Digest>,
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

/// The shared lock on `gc.lock`: while it lives, `rm` and `clean` (which
/// take it exclusively) delete nothing.
pub struct StoreGuard {
    _lock: Option<File>,
}

/// What the cache holds of one image.
#[derive(Default)]
pub(crate) struct Holding {
    /// Every blob of the image that is present, used or not: what garbage
    /// collection keeps.
    pub present: BTreeSet<Digest>,
    /// The blobs of its complete platforms and the indexes above them.
    pub usable: BTreeSet<Digest>,
    /// The platforms whose manifest, config and layers are all present.
    pub platforms: Vec<String>,
    /// A blob the image lacks, when no platform of it is complete.
    pub missing: Option<Digest>,
    /// Its manifests' configs: their diff_ids name the layers whose kept
    /// uncompressed tars (see [`crate::reuse`]) garbage collection keeps.
    pub configs: BTreeSet<Digest>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Shared,
    Exclusive,
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

    /// Opens the layout at `dir`, creating an empty one if needed: for
    /// commands that add to the cache.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let store = Self::at(dir);
        let blobs = store.blobs_dir();
        fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            store.write_atomically(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !store.index_path().exists() {
            let _lock = store.index_lock()?;
            if !store.index_path().exists() {
                store.write_index(&empty_index())?;
            }
        }
        Ok(store)
    }

    /// The layout at `dir` as it is, creating nothing: for commands that
    /// only read or remove. A directory without an `index.json` reads as
    /// an empty cache; a read-only cache can be read.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self {
            root: dir.into(),
            on_wait: Arc::new(|_| {}),
        }
    }

    /// Calls `on_wait` with a message saying what it waits for whenever
    /// this store has to wait for another process's lock.
    pub fn on_wait(mut self, on_wait: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_wait = Arc::new(on_wait);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// Takes the shared lock that keeps `remove` and `clean` out: hold it
    /// while adding blobs and naming them, and while reading them.
    pub fn guard(&self) -> Result<StoreGuard, Error> {
        Ok(StoreGuard {
            _lock: self.gc_lock(Access::Shared)?,
        })
    }

    /// Hashes a cached blob; a corrupt one is deleted so it is fetched again.
    pub fn check_blob(&self, digest: &Digest) -> Result<BlobState, Error> {
        let path = self.blob_path(digest);
        let Some(file) = open_regular(&path)? else {
            return Ok(BlobState::Missing);
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
        let file = open_regular(&self.blob_path(digest))?
            .ok_or_else(|| Error::BlobMissing(digest.clone()))?;
        Ok(BlobReader {
            file,
            expected: digest.clone(),
            hasher: Some(Hasher::default()),
        })
    }

    /// Reads a whole small blob (a manifest, index or config), verified,
    /// and no larger than [`MAX_DOCUMENT`].
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .take(MAX_DOCUMENT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(self.blob_path(digest), e))?;
        if bytes.len() as u64 > MAX_DOCUMENT {
            return Err(Error::CachedBlob {
                digest: digest.clone(),
                source: super::error::Oversize::Document,
            });
        }
        Ok(bytes)
    }

    /// Starts writing a blob; nothing is visible in the cache until
    /// [`BlobWriter::commit`] has checked it.
    pub fn blob_writer(&self) -> Result<BlobWriter, Error> {
        let dir = self.blobs_dir();
        loop {
            let file = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(&dir)
                .map_err(|e| Error::io(&dir, e))?;
            // Blocks only while a sweep that found the file unlocked (in the
            // instant between its creation and this lock) removes it; then
            // the file has no name left and another is made.
            file.as_file()
                .lock()
                .map_err(|e| Error::io(file.path(), e))?;
            let metadata = file
                .as_file()
                .metadata()
                .map_err(|e| Error::io(file.path(), e))?;
            if metadata.nlink() > 0 {
                return Ok(BlobWriter {
                    store: self.clone(),
                    file,
                    hasher: Hasher::default(),
                });
            }
        }
    }

    /// Writes a small blob held in memory and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let mut writer = self.blob_writer()?;
        writer.write(bytes)?;
        writer.commit(None)
    }

    /// Removes the partial downloads whose writer is gone (killed, or on a
    /// full disk): those whose lock can be taken. A concurrent pull's
    /// partial files are locked, and stay.
    pub fn remove_stale_partials(&self) -> Result<(), Error> {
        let dir = self.blobs_dir();
        remove_abandoned(&dir, TEMP_PREFIX)
            .map(drop)
            .map_err(|e| Error::io(&dir, e))
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

    /// Names a cached manifest or index, replacing what the name meant
    /// before. Call it only once every blob the image needs is present and
    /// verified. Writes nothing when the name already means `descriptor`.
    pub fn set_ref(&self, reference: &Reference, descriptor: &Descriptor) -> Result<(), Error> {
        let name = reference.to_string();
        let mut entry = descriptor.clone();
        entry.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), name.clone())])));
        if self.lookup(&name)?.as_ref() == Some(&entry) {
            return Ok(());
        }
        self.update_index(|manifests| {
            manifests.retain(|d| ref_name(d) != Some(name.as_str()));
            manifests.push(entry);
        })
    }

    /// The images named in the cache, sorted by name, complete or not.
    pub fn list(&self) -> Result<Vec<CachedImage>, Error> {
        let _guard = self.guard()?;
        let mut images = Vec::new();
        for descriptor in self.read_index()?.manifests() {
            let Some(name) = ref_name(descriptor) else {
                continue;
            };
            let digest = descriptor_digest(descriptor)?;
            let holding = self.holding(&digest);
            let size = holding
                .usable
                .iter()
                .map(|blob| fs::metadata(self.blob_path(blob)).map_or(0, |m| m.len()))
                .sum();
            images.push(CachedImage {
                name: name.to_owned(),
                digest,
                platforms: holding.platforms,
                size,
                missing: holding.missing,
            });
        }
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(images)
    }

    /// Forgets `reference` and deletes the blobs no other name uses.
    /// Returns whether the name was in the cache.
    pub fn remove(&self, reference: &Reference) -> Result<bool, Error> {
        if !self.index_path().exists() {
            return Ok(false);
        }
        let _exclusive = self.gc_lock(Access::Exclusive)?;
        let name = reference.to_string();
        if self.lookup(&name)?.is_none() {
            return Ok(false);
        }
        self.update_index(|manifests| manifests.retain(|d| ref_name(d) != Some(name.as_str())))?;
        self.collect_garbage()?;
        Ok(true)
    }

    /// Empties the cache: every name, every blob and the work kept for
    /// reuse. A cache that does not exist is left so.
    pub fn clean(&self) -> Result<(), Error> {
        if !self.index_path().exists() {
            return Ok(());
        }
        let _exclusive = self.gc_lock(Access::Exclusive)?;
        self.update_index(Vec::clear)?;
        self.collect_garbage()?;
        self.remove_reuse()
    }

    /// Removes only the work kept for reuse (see [`crate::reuse`]), so the
    /// next build starts cold from the cached images.
    pub fn clean_reuse(&self) -> Result<(), Error> {
        if !self.root.join(crate::reuse::DIR).exists() {
            return Ok(());
        }
        let _exclusive = self.gc_lock(Access::Exclusive)?;
        self.remove_reuse()
    }

    fn remove_reuse(&self) -> Result<(), Error> {
        crate::reuse::Reuse::remove(&self.root)
            .map_err(|e| Error::io(self.root.join(crate::reuse::DIR), e))
    }

    /// Deletes blobs that no name reaches, partial downloads whose
    /// writer is gone, and the kept layers of images no longer cached.
    fn collect_garbage(&self) -> Result<(), Error> {
        let mut keep = BTreeSet::new();
        let mut diff_ids = BTreeSet::new();
        for descriptor in self.read_index()?.manifests() {
            let holding = self.holding(&descriptor_digest(descriptor)?);
            keep.extend(holding.present);
            for config in &holding.configs {
                diff_ids.extend(self.config_diff_ids(config));
            }
        }
        crate::reuse::Reuse::forget_layers_except(&self.root, &diff_ids)
            .map_err(|e| Error::io(self.root.join(crate::reuse::DIR), e))?;
        let dir = self.blobs_dir();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            if is_partial(&path) {
                remove_if_abandoned(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            }
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let digest = format!("sha256:{name}").parse::<Digest>().ok();
            if digest.is_none_or(|d| !keep.contains(&d)) {
                remove_if_present(&path)?;
            }
        }
        Ok(())
    }

    /// What the cache holds of the image at `root`.
    pub(crate) fn holding(&self, root: &Digest) -> Holding {
        let mut holding = Holding::default();
        let mut walk = Walk {
            store: self,
            holding: &mut holding,
            seen: HashMap::new(),
            first_missing: None,
        };
        let complete = walk.visit(root, None, 0);
        let first_missing = walk.first_missing.take();
        if !complete {
            holding.missing = Some(first_missing.unwrap_or_else(|| root.clone()));
        }
        holding.platforms.sort();
        holding.platforms.dedup();
        holding
    }

    /// The image config blob `digest`, as JSON, if it is present and whole.
    fn read_config(&self, digest: &Digest) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.read_blob(digest).ok()?).ok()
    }

    /// The diff_ids the image config `config` lists; none when it cannot
    /// be read.
    fn config_diff_ids(&self, config: &Digest) -> Vec<Digest> {
        let config = self.read_config(config);
        let listed = config
            .as_ref()
            .and_then(|c| c.pointer("/rootfs/diff_ids")?.as_array());
        listed
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str()?.parse().ok())
            .collect()
    }

    /// The platform an image config declares, for manifests not reached
    /// through an index.
    fn config_platform(&self, manifest: &ImageManifest) -> Option<String> {
        let config = self.read_config(&descriptor_digest(manifest.config()).ok()?)?;
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

    /// The cache's `index.json`; none reads as an empty one.
    pub(crate) fn read_index(&self) -> Result<ImageIndex, Error> {
        let path = self.index_path();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(empty_index()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 > MAX_DOCUMENT {
            return Err(Error::in_file(
                path.display().to_string(),
                super::error::Oversize::Document.into(),
            ));
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::CorruptIndex { path, source })
    }

    fn update_index(&self, change: impl FnOnce(&mut Vec<Descriptor>)) -> Result<(), Error> {
        let _lock = self.index_lock()?;
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

    /// The exclusive lock that serialises changes to `index.json`, held for
    /// a moment only.
    fn index_lock(&self) -> Result<File, Error> {
        let path = self.root.join(INDEX_LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }

    /// Locks `gc.lock`, saying first what it waits for when another
    /// process holds it. `None` when there is nothing to lock: the cache
    /// does not exist, or (for a shared lock) it is read-only and has no
    /// lock file, so no one can change it either. An existing lock file is
    /// opened read-only for a shared lock, so read-only caches work.
    fn gc_lock(&self, access: Access) -> Result<Option<File>, Error> {
        let path = self.root.join(GC_LOCK);
        let create = || {
            File::options()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
        };
        let opened = match access {
            Access::Shared => File::open(&path).or_else(|e| match e.kind() {
                io::ErrorKind::NotFound => create(),
                _ => Err(e),
            }),
            Access::Exclusive => create(),
        };
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e)
                if access == Access::Shared
                    && matches!(
                        e.kind(),
                        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied
                    ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let attempt = match access {
            Access::Shared => file.try_lock_shared(),
            Access::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                (self.on_wait)(&match access {
                    Access::Shared => format!(
                        "waiting for `ossify cache rm` or `cache clean` to finish with the cache at {}…",
                        self.root.display()
                    ),
                    Access::Exclusive => format!(
                        "waiting for the builds and pulls using the cache at {} to finish…",
                        self.root.display()
                    ),
                });
                match access {
                    Access::Shared => file.lock_shared(),
                    Access::Exclusive => file.lock(),
                }
                .map_err(|e| Error::io(&path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        Ok(Some(file))
    }
}

/// A walk from an image's root through its indexes and manifests.
struct Walk<'a> {
    store: &'a Store,
    holding: &'a mut Holding,
    /// Whether each blob met was complete, so a blob listed many times is
    /// walked once.
    seen: HashMap<Digest, bool>,
    first_missing: Option<Digest>,
}

impl Walk<'_> {
    /// Records what is present of `digest` (reached with `platform`) and
    /// below it; returns whether it is complete.
    fn visit(&mut self, digest: &Digest, platform: Option<String>, depth: usize) -> bool {
        if let Some(&complete) = self.seen.get(digest) {
            return complete;
        }
        let complete = self.visit_once(digest, platform, depth);
        self.seen.insert(digest.clone(), complete);
        complete
    }

    fn visit_once(&mut self, digest: &Digest, platform: Option<String>, depth: usize) -> bool {
        let document = match self.store.read_blob(digest) {
            Ok(bytes) => Document::parse(digest, &bytes).ok(),
            Err(_) => None,
        };
        let Some(document) = document.filter(|_| depth <= MAX_NESTING) else {
            self.first_missing.get_or_insert_with(|| digest.clone());
            return false;
        };
        self.holding.present.insert(digest.clone());
        match &document {
            Document::Index(index) => {
                let mut complete = false;
                for child in index.manifests() {
                    let Ok(child_digest) = descriptor_digest(child) else {
                        continue;
                    };
                    let child_platform = child.platform().as_ref().map(Platform::describe);
                    complete |= self.visit(&child_digest, child_platform, depth + 1);
                }
                if complete {
                    self.holding.usable.insert(digest.clone());
                }
                complete
            }
            Document::Manifest(manifest) => {
                self.holding
                    .configs
                    .extend(descriptor_digest(manifest.config()).ok());
                let mut blobs = vec![digest.clone()];
                let mut complete = true;
                for child in document.children() {
                    match descriptor_digest(child) {
                        Ok(blob) if self.store.blob_path(&blob).is_file() => {
                            self.holding.present.insert(blob.clone());
                            blobs.push(blob);
                        }
                        Ok(blob) => {
                            self.first_missing.get_or_insert(blob);
                            complete = false;
                        }
                        Err(_) => complete = false,
                    }
                }
                if complete {
                    self.holding.usable.extend(blobs);
                    self.holding
                        .platforms
                        .extend(platform.or_else(|| self.store.config_platform(manifest)));
                }
                complete
            }
        }
    }
}

/// A blob being written to the cache; dropping it without committing
/// leaves nothing behind. Its partial file is locked while it lives.
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

impl BlobReader {
    /// The blob's size in bytes, as stored.
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
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

/// Opens a file of an image layout (the cache, or one being imported),
/// which must be a regular file: a symlink could point at `/dev/zero` or
/// out of the layout, a FIFO could block forever. `None` when there is no
/// such file.
pub(crate) fn open_regular(path: &Path) -> Result<Option<File>, Error> {
    let file_type = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata.file_type(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if file_type.is_file() {
        return File::open(path).map(Some).map_err(|e| Error::io(path, e));
    }
    let kind = crate::file_type::describe(file_type);
    Err(Error::NotRegularFile {
        path: path.to_owned(),
        kind,
    })
}

fn is_partial(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX))
}

fn remove_if_present(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}
