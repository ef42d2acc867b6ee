//! Moving images into and out of the cache as files: `cache import` reads
//! an OCI layout directory, an OCI archive tar or a `docker save` tar;
//! `cache export` writes an OCI archive tar that skopeo and docker load.
//!
//! Imports go blob by blob through the store's verifying writer, so an
//! archive with a damaged blob is refused and leaves nothing half-written.
//! Nothing is trusted for its size: a layout directory's files must be
//! regular files and are read no further than their descriptors declare,
//! metadata files and manifests are capped as a registry's are, and names
//! are recorded only once every image named has a complete platform.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::ImageIndex;
use serde::Deserialize;
use serde_json::json;

use super::limit::Limit;
use super::manifest::{DOCKER_MANIFEST, Document, descriptor, descriptor_digest};
use super::store::{BlobState, MAX_NESTING, REF_NAME, Store, open_regular};
use super::{Digest, Error, Reference};

/// The annotation docker and containerd use for a full image name, where
/// `org.opencontainers.image.ref.name` often holds only the tag.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Metadata files an archive carries beside its blobs, kept in memory.
const METADATA: [&str; 2] = ["index.json", "manifest.json"];

/// Files that are neither blobs nor needed: layout markers and the legacy
/// per-layer `VERSION` and `json` of old `docker save` archives.
const IGNORED: [&str; 4] = ["oci-layout", "repositories", "VERSION", "json"];

/// One image entry of a `docker save` archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Where an import's files come from.
enum Source {
    /// A directory: each file is read when a descriptor (or
    /// `manifest.json`) names it, and only then.
    Directory(PathBuf),
    /// A tar archive, streamed through once: its metadata files in
    /// memory, every other file stored as a blob, by its path in the
    /// archive.
    Archive {
        metadata: HashMap<String, Vec<u8>>,
        blobs: HashMap<String, (Digest, u64)>,
    },
}

impl Store {
    /// Adds the images in `path` to the cache and returns their names.
    pub fn import(&self, path: &Path) -> Result<Vec<Reference>, Error> {
        let _guard = self.guard()?;
        self.remove_stale_partials()?;
        let source = if path.is_dir() {
            Source::Directory(path.to_owned())
        } else {
            Source::stream(self, path)?
        };
        let named = match (
            source.metadata("manifest.json")?,
            source.metadata("index.json")?,
        ) {
            (Some(docker), _) => self.import_docker_save(&docker, &source)?,
            (None, Some(index)) => self.import_oci_index(&index, &source)?,
            (None, None) => return Err(Error::NotAnArchive),
        };
        if named.is_empty() {
            return Err(Error::NoNames);
        }
        for (reference, descriptor) in &named {
            self.set_ref(reference, descriptor)?;
        }
        Ok(named.into_iter().map(|(reference, _)| reference).collect())
    }

    /// The images of an OCI layout's `index.json` and their descriptors,
    /// once every blob they need is in the store.
    fn import_oci_index(
        &self,
        index: &[u8],
        source: &Source,
    ) -> Result<Vec<(Reference, oci_spec::image::Descriptor)>, Error> {
        let index: ImageIndex =
            serde_json::from_slice(index).map_err(|source| Error::InvalidMetadata {
                file: "index.json",
                source,
            })?;
        let mut named = Vec::new();
        let mut seen = HashSet::new();
        for descriptor in index.manifests() {
            let annotations = descriptor.annotations().clone().unwrap_or_default();
            let name = annotations.get(CONTAINERD_NAME).or_else(|| {
                annotations
                    .get(REF_NAME)
                    .filter(|n| n.contains(['/', ':', '@']))
            });
            let Some(name) = name else {
                continue;
            };
            let reference: Reference = name.parse()?;
            let root = descriptor_digest(descriptor)?;
            let limit = Limit::Document(Some(descriptor.size()));
            self.import_tree(source, &root, limit, 0, &mut seen)?;
            if let Some(missing) = self.holding(&root).missing {
                return Err(Error::IncompleteImport {
                    reference: reference.to_string(),
                    missing,
                });
            }
            named.push((reference, descriptor.clone()));
        }
        Ok(named)
    }

    /// Brings blob `digest` and everything below it that `source` has
    /// into the store. What it lacks is left for the completeness check.
    fn import_tree(
        &self,
        source: &Source,
        digest: &Digest,
        limit: Limit,
        depth: usize,
        seen: &mut HashSet<Digest>,
    ) -> Result<(), Error> {
        if !seen.insert(digest.clone())
            || depth > MAX_NESTING
            || !source.blob(self, digest, limit)?
        {
            return Ok(());
        }
        match Document::parse(digest, &self.read_blob(digest)?)? {
            Document::Index(index) => {
                for child in index.manifests() {
                    let limit = Limit::Document(Some(child.size()));
                    self.import_tree(source, &descriptor_digest(child)?, limit, depth + 1, seen)?;
                }
            }
            Document::Manifest(manifest) => {
                let config = manifest.config();
                let limit = Limit::Document(Some(config.size()));
                source.blob(self, &descriptor_digest(config)?, limit)?;
                for layer in manifest.layers() {
                    let limit = Limit::Declared(layer.size());
                    source.blob(self, &descriptor_digest(layer)?, limit)?;
                }
            }
        }
        Ok(())
    }

    /// Writes a Docker v2 manifest for each image of a `docker save`
    /// `manifest.json`, to be named after the image's tags.
    fn import_docker_save(
        &self,
        manifest: &[u8],
        source: &Source,
    ) -> Result<Vec<(Reference, oci_spec::image::Descriptor)>, Error> {
        let entries: Vec<DockerSaveEntry> =
            serde_json::from_slice(manifest).map_err(|source| Error::InvalidMetadata {
                file: "manifest.json",
                source,
            })?;
        let mut named = Vec::new();
        for entry in entries {
            let (config, config_size) = source.file(self, &entry.config, Limit::Document(None))?;
            let layers = entry
                .layers
                .iter()
                .map(|layer| {
                    let (digest, size) = source.file(self, layer, Limit::File)?;
                    Ok(json!({
                        "mediaType": self.docker_layer_media_type(&digest)?,
                        "size": size,
                        "digest": digest.to_string(),
                    }))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": config_size,
                    "digest": config.to_string(),
                },
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&manifest).expect("JSON values serialise");
            let digest = self.write_blob(&bytes)?;
            let descriptor = descriptor(DOCKER_MANIFEST, &digest, bytes.len() as u64);
            for tag in &entry.repo_tags {
                named.push((tag.parse()?, descriptor.clone()));
            }
        }
        Ok(named)
    }

    /// `docker save` layers are plain tars from older Docker and may be
    /// compressed from newer; the first bytes tell.
    fn docker_layer_media_type(&self, digest: &Digest) -> Result<&'static str, Error> {
        let mut magic = [0u8; 4];
        let path = self.blob_path(digest);
        let mut file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let n = file.read(&mut magic).map_err(|e| Error::io(&path, e))?;
        Ok(match &magic[..n] {
            [0x1f, 0x8b, ..] => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.docker.image.rootfs.diff.tar",
        })
    }

    /// Writes the image named `reference`, with every blob of it the cache
    /// holds, as an OCI archive tar into `out`, which messages call `output`.
    /// An image the cache holds incompletely is refused.
    pub fn export(
        &self,
        reference: &Reference,
        out: impl io::Write,
        output: &Path,
    ) -> Result<(), Error> {
        let _guard = self.guard()?;
        let name = reference.to_string();
        let root = self.lookup(&name)?.ok_or_else(|| Error::NotInCache {
            reference: name.clone(),
        })?;
        let holding = self.holding(&descriptor_digest(&root)?);
        if let Some(missing) = holding.missing {
            return Err(Error::Incomplete {
                reference: name,
                missing,
            });
        }
        let blobs = holding.usable;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [root],
        });
        let mut tar = tar::Builder::new(out);
        let mut append = |path: &str, size: u64, data: &mut dyn Read| {
            let mut header = tar::Header::new_ustar();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, path, data)
                .map_err(|e| Error::io(output, e))
        };
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        append("oci-layout", layout.len() as u64, &mut &layout[..])?;
        let index = serde_json::to_vec(&index).expect("JSON values serialise");
        append("index.json", index.len() as u64, &mut index.as_slice())?;
        for digest in &blobs {
            let size = fs::metadata(self.blob_path(digest))
                .map_err(|e| Error::io(self.blob_path(digest), e))?
                .len();
            let mut reader = self.open_blob(digest)?;
            append(&format!("blobs/sha256/{}", digest.hex()), size, &mut reader)?;
        }
        tar.into_inner()
            .and_then(|mut out| out.flush())
            .map_err(|e| Error::io(output, e))
    }
}

impl Source {
    /// Streams the tar archive at `path` into `store`.
    fn stream(store: &Store, path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut archive = tar::Archive::new(BufReader::new(file));
        let mut metadata = HashMap::new();
        let mut blobs = HashMap::new();
        for entry in archive.entries().map_err(Error::Archive)? {
            let entry = entry.map_err(Error::Archive)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry.path().map_err(Error::Archive)?;
            let name = name.to_string_lossy().trim_start_matches("./").to_owned();
            let file_name = name.rsplit('/').next().unwrap_or(&name);
            if METADATA.contains(&name.as_str()) {
                let bytes =
                    read_document(entry, Error::Archive).map_err(|e| Error::in_file(&name, e))?;
                metadata.insert(name, bytes);
            } else if !IGNORED.contains(&file_name) {
                let expected = name
                    .strip_prefix("blobs/sha256/")
                    .map(|hex| format!("sha256:{hex}").parse::<Digest>())
                    .transpose()
                    .map_err(|e| Error::in_file(&name, e))?;
                let stored =
                    copy_blob(store, entry, expected.as_ref(), Limit::File, Error::Archive)
                        .map_err(|e| Error::in_file(&name, e))?;
                blobs.insert(name, stored);
            }
        }
        Ok(Self::Archive { metadata, blobs })
    }

    /// A metadata file (`index.json`, `manifest.json`), if there is one.
    fn metadata(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::Directory(dir) => {
                let path = dir.join(name);
                let Some(file) = open_regular(&path)? else {
                    return Ok(None);
                };
                let bytes = read_document(file, |e| Error::io(&path, e))
                    .map_err(|e| Error::in_file(path.display().to_string(), e))?;
                Ok(Some(bytes))
            }
            Self::Archive { metadata, .. } => Ok(metadata.get(name).cloned()),
        }
    }

    /// Makes sure the store holds blob `digest`, taking it from the source
    /// when the store lacks it; `false` when neither has it.
    fn blob(&self, store: &Store, digest: &Digest, limit: Limit) -> Result<bool, Error> {
        let entry = format!("blobs/sha256/{}", digest.hex());
        let check_size = |size: u64| match limit.declared() {
            Some(declared) if declared != size => Err(Error::in_file(
                &entry,
                Error::SizeMismatch {
                    digest: digest.clone(),
                    declared,
                    actual: size,
                },
            )),
            _ => Ok(()),
        };
        if store.check_blob(digest)? == BlobState::Valid {
            let path = store.blob_path(digest);
            let size = fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            check_size(size)?;
            return Ok(true);
        }
        match self {
            Self::Directory(dir) => {
                let path = dir.join(&entry);
                let Some(file) = open_regular(&path)? else {
                    return Ok(false);
                };
                let (_, size) =
                    copy_blob(store, file, Some(digest), limit, |e| Error::io(&path, e))
                        .map_err(|e| Error::in_file(path.display().to_string(), e))?;
                check_size(size)?;
                Ok(true)
            }
            Self::Archive { .. } => Ok(false),
        }
    }

    /// A file a `docker save` `manifest.json` names by path, stored.
    fn file(&self, store: &Store, name: &str, limit: Limit) -> Result<(Digest, u64), Error> {
        let missing = || Error::MissingFromArchive {
            name: name.to_owned(),
        };
        match self {
            Self::Directory(dir) => {
                let inside = Path::new(name)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
                if !inside {
                    return Err(Error::PathOutside {
                        name: name.to_owned(),
                    });
                }
                let path = dir.join(name);
                let file = open_regular(&path)?.ok_or_else(missing)?;
                copy_blob(store, file, None, limit, |e| Error::io(&path, e))
                    .map_err(|e| Error::in_file(path.display().to_string(), e))
            }
            Self::Archive { blobs, .. } => {
                let (digest, size) = blobs.get(name).cloned().ok_or_else(missing)?;
                limit
                    .check(size)
                    .map_err(|e| Error::in_file(name, e.into()))?;
                Ok((digest, size))
            }
        }
    }
}

/// Reads a whole metadata file, no larger than a document may be.
fn read_document(
    reader: impl Read,
    io_error: impl Fn(io::Error) -> Error,
) -> Result<Vec<u8>, Error> {
    let limit = Limit::Document(None);
    let mut bytes = Vec::new();
    reader
        .take(limit.bytes() + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    limit.check(bytes.len() as u64)?;
    Ok(bytes)
}

/// Copies `reader` into a new blob, reading at most one byte past what
/// `limit` allows, and checks it against `expected`.
fn copy_blob(
    store: &Store,
    reader: impl Read,
    expected: Option<&Digest>,
    limit: Limit,
    io_error: impl Fn(io::Error) -> Error,
) -> Result<(Digest, u64), Error> {
    let mut reader = reader.take(limit.bytes().saturating_add(1));
    let mut writer = store.blob_writer()?;
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(&io_error)?;
        if n == 0 {
            break;
        }
        writer.write(&buf[..n])?;
        limit.check(writer.len())?;
    }
    let size = writer.len();
    Ok((writer.commit(expected)?, size))
}
