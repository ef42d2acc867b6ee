//! Volumes of `format: oci`: the image index copied whole into the
//! volume's `lower/` as an OCI image layout, keeping only the platforms
//! the volume lists, as LinuxKit writes it.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use support::layer_builder::LayerBuilder;
use support::{FakeRegistry, LayerBlob, Layout};

/// The blobs of one platform's image, by kind.
struct PlatformImage {
    manifest: String,
    config: String,
    layer: String,
}

/// A registry with tag `multi` (an index of an amd64 and an arm64 image)
/// and tag `single` (one image, no index).
fn registry() -> (FakeRegistry, String, BTreeMap<&'static str, PlatformImage>) {
    let mut layout = Layout::new();
    let mut images = BTreeMap::new();
    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = LayerBlob::gzip(
            LayerBuilder::new()
                .file("etc/arch", arch.as_bytes(), 0o644)
                .finish(),
        );
        let manifest = layout.image(arch, std::slice::from_ref(&layer));
        let bytes = std::fs::read(
            layout
                .path()
                .join("blobs/sha256")
                .join(&manifest["digest"].as_str().unwrap()[7..]),
        )
        .unwrap();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        images.insert(
            arch,
            PlatformImage {
                manifest: manifest["digest"].as_str().unwrap().to_owned(),
                config: parsed["config"]["digest"].as_str().unwrap().to_owned(),
                layer: layer.digest(),
            },
        );
        manifests.push(manifest);
    }
    let single = layout.image("amd64", &[]);
    let index = layout.index(manifests);
    let index_digest = index["digest"].as_str().unwrap().to_owned();
    layout.name(index, "multi");
    layout.name(single, "single");
    (FakeRegistry::serve(layout), index_digest, images)
}

/// Builds a tar with one volume of `format: oci` (extra volume keys in
/// `settings`); returns its entries under the volume's `lower/`, or the
/// failed build's stderr.
fn build(
    dir: &Path,
    registry: &FakeRegistry,
    image: &str,
    settings: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let config = dir.join("vol.yml");
    std::fs::write(
        &config,
        format!(
            "volumes:\n  - name: data\n    image: {}/test/vol:{image}\n    format: oci\n{settings}",
            registry.addr
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let built = support::ossify_in(
        dir,
        &[
            "build",
            "-f",
            "tar",
            "--no-sbom",
            "--cache-dir",
            dir.join("cache").to_str().unwrap(),
            "--dir",
            out.to_str().unwrap(),
            config.to_str().unwrap(),
        ],
    );
    if !built.status.success() {
        return Err(String::from_utf8_lossy(&built.stderr).into_owned());
    }
    let tar = std::fs::read(out.join("vol.tar")).unwrap();
    let mut entries = BTreeMap::new();
    for entry in tar::Archive::new(&tar[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if let Some(inside) = path.strip_prefix("containers/volumes/data/lower/") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            entries.insert(inside.to_owned(), bytes);
        }
    }
    Ok(entries)
}

fn blob(digest: &str) -> String {
    format!("blobs/sha256/{}", &digest[7..])
}

#[test]
fn an_oci_volume_holds_the_index_as_a_layout_of_the_platforms_it_lists() {
    let (registry, index, images) = registry();
    let dir = tempfile::tempdir().unwrap();
    let entries = build(
        dir.path(),
        &registry,
        "multi",
        "    platforms:\n      - linux/arm64\n",
    )
    .unwrap();
    assert_eq!(entries["oci-layout"], br#"{"imageLayoutVersion": "1.0.0"}"#);
    let layout_index: Value = serde_json::from_slice(&entries["index.json"]).unwrap();
    assert_eq!(layout_index["manifests"][0]["digest"], index);
    assert!(
        layout_index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap()
            .ends_with("/test/vol:multi")
    );
    let arm64 = &images["arm64"];
    let amd64 = &images["amd64"];
    for kept in [&index, &arm64.manifest, &arm64.config, &arm64.layer] {
        assert!(entries.contains_key(&blob(kept)), "{kept} missing");
    }
    for left_out in [&amd64.manifest, &amd64.config, &amd64.layer] {
        assert!(!entries.contains_key(&blob(left_out)), "{left_out} copied");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/vol.manifest.json")).unwrap())
            .unwrap();
    let record = &manifest["images"][0];
    assert!(
        record["resolved"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@{index}"))
    );
    assert_eq!(record["platform"], "linux/arm64");
    let all = build(dir.path(), &registry, "multi", "").unwrap();
    for kept in [&amd64.manifest, &amd64.layer, &arm64.manifest] {
        assert!(
            all.contains_key(&blob(kept)),
            "{kept} missing without platforms"
        );
    }
}

#[test]
fn an_oci_volume_of_a_single_image_says_it_needs_an_index() {
    let (registry, _, _) = registry();
    let dir = tempfile::tempdir().unwrap();
    let stderr = build(dir.path(), &registry, "single", "").unwrap_err();
    assert!(
        stderr.contains("is a single image, not an index") && stderr.contains("format: filesystem"),
        "{stderr}"
    );
}

#[test]
fn a_lock_pins_an_oci_volumes_index_and_a_rebuild_uses_it() {
    let (registry, index, _) = registry();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &registry, "multi", "").unwrap();
    let cache = dir.path().join("cache");
    let run = |args: &[&str]| {
        let mut line = args.to_vec();
        line.extend(["--cache-dir", cache.to_str().unwrap()]);
        support::ossify_in(dir.path(), &line)
    };
    let locked = run(&["lock", "--offline", "vol.yml"]);
    assert!(locked.status.success(), "{}", stderr(&locked));
    let lock: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("vol.lock.json")).unwrap()).unwrap();
    assert!(
        lock["images"][0]["resolved"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@{index}"))
    );
    assert_eq!(lock["images"][0]["platform"], "all");

    let frozen = run(&[
        "build",
        "-f",
        "tar",
        "--no-sbom",
        "--frozen",
        "--dir",
        "frozen",
        "vol.yml",
    ]);
    assert!(frozen.status.success(), "{}", stderr(&frozen));
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("frozen/vol.manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["images"], lock["images"]);
    let rebuilt = run(&["verify", "--rebuild", "frozen/vol.manifest.json"]);
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert!(
        stderr(&rebuilt).contains("vol.tar: identical"),
        "{}",
        stderr(&rebuilt)
    );
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
