//! OCI image layouts made in the test, for `cache import`: a few tar
//! layers, an image config and a manifest per image, one `index.json`
//! naming them.

use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

/// An image to put in a layout.
pub struct Image<'a> {
    /// Full name, e.g. `localhost/test/init:1`.
    pub name: &'a str,
    /// The image config's `config` object (`Cmd`, `Env`, `Labels`, …).
    pub config: serde_json::Value,
    /// Uncompressed tar layers, bottom first; stored gzip'd.
    pub layers: Vec<Vec<u8>>,
}

/// A tar layer built entry by entry.
pub struct LayerBuilder(tar::Builder<Vec<u8>>);

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, owner: (u64, u64), size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        header.set_mtime(1_000_000_000);
        header.set_size(size);
        header
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut header = Self::header(tar::EntryType::Directory, mode, (0, 0), 0);
        self.0.append_data(&mut header, path, &[][..]).unwrap();
        self
    }

    pub fn file(self, path: &str, contents: &[u8], mode: u32) -> Self {
        self.owned_file(path, contents, mode, (0, 0))
    }

    pub fn owned_file(mut self, path: &str, contents: &[u8], mode: u32, owner: (u64, u64)) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, mode, owner, contents.len() as u64);
        self.0.append_data(&mut header, path, contents).unwrap();
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, (0, 0), 0);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    pub fn hard_link(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Link, 0o755, (0, 0), 0);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Self {
        let mut header = Self::header(tar::EntryType::Char, 0o666, (0, 0), 0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.0.append_data(&mut header, path, &[][..]).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `blob` under `dir/blobs/sha256/` and returns its descriptor.
fn put(dir: &Path, media_type: &str, blob: &[u8]) -> serde_json::Value {
    let hex = sha256(blob);
    std::fs::write(dir.join("blobs/sha256").join(&hex), blob).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": blob.len()})
}

/// Writes an OCI image layout holding `images` to `dir`.
pub fn write(dir: &Path, images: &[Image<'_>]) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut manifests = Vec::new();
    for image in images {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for layer in &image.layers {
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gzip, layer).unwrap();
            let compressed = gzip.finish().unwrap();
            layers.push(put(
                dir,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                &compressed,
            ));
            diff_ids.push(format!("sha256:{}", sha256(layer)));
        }
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": image.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = put(
            dir,
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        });
        let mut descriptor = put(
            dir,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
        descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": image.name});
        manifests.push(descriptor);
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}
