//! OCI images written from scratch into an OCI layout directory: layer
//! tars, configs, manifests and indexes, each with a known digest.

use std::io::Write;
use std::path::Path;

use ossify::image::Digest;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub struct Layout {
    dir: TempDir,
    names: Vec<Value>,
}

/// A layer: the blob as stored (maybe compressed) and the tar it holds.
pub struct LayerBlob {
    pub media_type: &'static str,
    pub blob: Vec<u8>,
    pub tar: Vec<u8>,
}

impl LayerBlob {
    pub fn plain(tar: Vec<u8>) -> Self {
        Self {
            media_type: TAR,
            blob: tar.clone(),
            tar,
        }
    }

    pub fn gzip(tar: Vec<u8>) -> Self {
        Self {
            media_type: TAR_GZIP,
            blob: gzip(&tar),
            tar,
        }
    }

    pub fn zstd(tar: Vec<u8>) -> Self {
        Self {
            media_type: TAR_ZSTD,
            blob: zstd(&tar),
            tar,
        }
    }

    pub fn digest(&self) -> String {
        Digest::of(&self.blob).to_string()
    }
}

impl Layout {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Self {
            dir,
            names: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a blob and returns its descriptor.
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = Digest::of(bytes);
        std::fs::write(self.path().join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    /// Writes a single-platform image; returns its manifest descriptor,
    /// carrying the platform so it can go into an index.
    pub fn image(&self, arch: &str, layers: &[LayerBlob]) -> Value {
        self.image_with_config(
            arch,
            json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}),
            layers,
        )
    }

    /// Like [`Layout::image`], with `config` as the image config's
    /// `config` object (`Cmd`, `Env`, `Labels`, …).
    pub fn image_with_config(&self, arch: &str, config: Value, layers: &[LayerBlob]) -> Value {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| Digest::of(&l.tar).to_string())
            .collect();
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).unwrap(),
        );
        let layers: Vec<Value> = layers
            .iter()
            .map(|l| self.blob(l.media_type, &l.blob))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        });
        let mut descriptor = self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        let (architecture, variant) = match arch {
            "arm64" => ("arm64", Some("v8")),
            other => (other, None),
        };
        descriptor["platform"] = json!({"os": "linux", "architecture": architecture});
        if let Some(variant) = variant {
            descriptor["platform"]["variant"] = json!(variant);
        }
        descriptor
    }

    /// Writes an index of `manifests`; returns its descriptor.
    pub fn index(&self, manifests: Vec<Value>) -> Value {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.blob(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&index).unwrap(),
        )
    }

    /// Names `descriptor` in the layout's `index.json`.
    pub fn name(&mut self, mut descriptor: Value, name: &str) {
        descriptor.as_object_mut().unwrap().remove("platform");
        descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        self.names.push(descriptor);
        let index = json!({"schemaVersion": 2, "manifests": self.names});
        std::fs::write(
            self.path().join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }
}

/// A tar of regular files, as a layer holds.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}
