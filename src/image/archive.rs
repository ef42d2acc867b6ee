//! Moving images into and out of the cache as files: `cache import` reads
//! an OCI layout directory, an OCI archive tar or a `docker save` tar;
//! `cache export` writes an OCI archive tar that skopeo and docker load.
//!
//! Imports go blob by blob through the store's verifying writer, so an
//! archive with a damaged blob is refused and leaves nothing half-written.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageIndex;
use serde::Deserialize;
use serde_json::json;

use super::manifest::{DOCKER_MANIFEST, Document, descriptor, descriptor_digest};
use super::store::{REF_NAME, Store};
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

/// What an archive held: its metadata files, and the digest of every blob
/// stored from it, by its path in the archive.
#[derive(Default)]
struct Contents {
    metadata: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, (Digest, u64)>,
}

impl Store {
    /// Adds the images in `path` to the cache and returns their names.
    pub fn import(&self, path: &Path) -> Result<Vec<Reference>, Error> {
        let _guard = self.guard()?;
        let invalid = |reason: String| Error::Import {
            path: path.to_owned(),
            reason,
        };
        let mut contents = Contents::default();
        if path.is_dir() {
            for file in files_under(path)? {
                let relative = file.strip_prefix(path).unwrap_or(&file).to_string_lossy();
                let reader = File::open(&file).map_err(|e| Error::io(&file, e))?;
                contents
                    .add(self, &relative, reader)
                    .map_err(|e| invalid(e.to_string()))?;
            }
        } else {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let mut archive = tar::Archive::new(BufReader::new(file));
            for entry in archive.entries().map_err(|e| Error::io(path, e))? {
                let entry = entry.map_err(|e| Error::io(path, e))?;
                if entry.header().entry_type().is_file() {
                    let name = entry.path().map_err(|e| Error::io(path, e))?;
                    let name = name.to_string_lossy().trim_start_matches("./").to_owned();
                    contents
                        .add(self, &name, entry)
                        .map_err(|e| invalid(e.to_string()))?;
                }
            }
        }
        let names = match (
            contents.metadata.get("manifest.json"),
            contents.metadata.get("index.json"),
        ) {
            (Some(docker), _) => self.import_docker_save(docker, &contents),
            (None, Some(index)) => self.import_oci_index(index),
            (None, None) => Err(Error::Import {
                path: path.to_owned(),
                reason: "neither index.json nor manifest.json found".to_owned(),
            }),
        }
        .map_err(|e| invalid(e.to_string()))?;
        if names.is_empty() {
            return Err(invalid(
                "it names no image (no ref name annotation or RepoTags)".to_owned(),
            ));
        }
        Ok(names)
    }

    /// Names the images of an OCI layout's `index.json`, once every blob
    /// they need is in the store.
    fn import_oci_index(&self, index: &[u8]) -> Result<Vec<Reference>, Error> {
        let index: ImageIndex = serde_json::from_slice(index).map_err(|e| Error::Import {
            path: PathBuf::from("index.json"),
            reason: e.to_string(),
        })?;
        let mut names = Vec::new();
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
            self.require_complete(&descriptor_digest(descriptor)?)?;
            self.set_ref(&reference, descriptor)?;
            names.push(reference);
        }
        Ok(names)
    }

    /// Writes a Docker v2 manifest for each image of a `docker save`
    /// `manifest.json` and names it after the image's tags.
    fn import_docker_save(
        &self,
        manifest: &[u8],
        contents: &Contents,
    ) -> Result<Vec<Reference>, Error> {
        let entries: Vec<DockerSaveEntry> =
            serde_json::from_slice(manifest).map_err(|e| Error::Import {
                path: PathBuf::from("manifest.json"),
                reason: e.to_string(),
            })?;
        let blob = |name: &str| {
            contents.blobs.get(name).ok_or_else(|| Error::Import {
                path: PathBuf::from(name),
                reason: "named in manifest.json but missing from the archive".to_owned(),
            })
        };
        let mut names = Vec::new();
        for entry in entries {
            let (config, config_size) = blob(&entry.config)?;
            let layers = entry
                .layers
                .iter()
                .map(|layer| {
                    let (digest, size) = blob(layer)?;
                    Ok(json!({
                        "mediaType": self.docker_layer_media_type(digest)?,
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
                let reference: Reference = tag.parse()?;
                self.set_ref(&reference, &descriptor)?;
                names.push(reference);
            }
        }
        Ok(names)
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

    /// Fails unless every blob the image at `root` needs is in the store:
    /// for an index, at least one platform's manifest, config and layers.
    fn require_complete(&self, root: &Digest) -> Result<(), Error> {
        let document = Document::parse(root, &self.read_blob(root)?)?;
        match document {
            Document::Index(index) => {
                let present: Vec<Digest> = index
                    .manifests()
                    .iter()
                    .filter_map(|m| descriptor_digest(m).ok())
                    .filter(|d| self.blob_path(d).exists())
                    .collect();
                if present.is_empty() {
                    return Err(Error::BlobMissing(root.clone()));
                }
                present.iter().try_for_each(|d| self.require_complete(d))
            }
            Document::Manifest(_) => document.children().into_iter().try_for_each(|child| {
                let digest = descriptor_digest(child)?;
                match self.blob_path(&digest).exists() {
                    true => Ok(()),
                    false => Err(Error::BlobMissing(digest)),
                }
            }),
        }
    }

    /// Writes the image named `reference`, with every blob of it the cache
    /// holds, as an OCI archive tar into `out`, which messages call `output`.
    pub fn export(
        &self,
        reference: &Reference,
        out: impl io::Write,
        output: &Path,
    ) -> Result<(), Error> {
        let name = reference.to_string();
        let root = self.lookup(&name)?.ok_or_else(|| Error::NotInCache {
            reference: name.clone(),
        })?;
        let blobs = self.reachable(&descriptor_digest(&root)?, &mut Vec::new())?;
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

impl Contents {
    /// Keeps a metadata file, or stores a blob (checking it against its
    /// name when it sits under `blobs/sha256/`).
    fn add(&mut self, store: &Store, name: &str, mut reader: impl Read) -> Result<(), Error> {
        let file_name = name.rsplit('/').next().unwrap_or(name);
        if METADATA.contains(&name) {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(name, e))?;
            self.metadata.insert(name.to_owned(), bytes);
            return Ok(());
        }
        if IGNORED.contains(&file_name) {
            return Ok(());
        }
        let expected = name
            .strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}").parse::<Digest>())
            .transpose()?;
        let mut writer = store.blob_writer()?;
        let mut buf = vec![0; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| Error::io(name, e))?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n])?;
        }
        let size = writer.len();
        let digest = writer.commit(expected.as_ref())?;
        self.blobs.insert(name.to_owned(), (digest, size));
        Ok(())
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
