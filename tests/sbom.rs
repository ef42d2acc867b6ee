//! The SBOM in the root (`sbom.spdx.json`): the SPDX documents BuildKit
//! attests for an image, pulled from a registry with the image, merged
//! with the packages the package databases of unattested images list;
//! byte-identical across builds; `--no-sbom` and `--sbom-output`.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::io::Read;
use std::path::Path;

use ossify::image::Platform;
use serde_json::{Value, json};
use support::layer_builder::LayerBuilder;
use support::{FakeRegistry, LayerBlob, Layout};

/// A registry serving tag `attested`, an index whose platform manifest has
/// an SPDX attestation (as BuildKit pushes it), and tag `debian`, an image
/// with a dpkg database and no attestation.
fn registry() -> FakeRegistry {
    let mut layout = Layout::new();
    let arch = Platform::host().architecture;
    let attested = layout.image(
        arch.as_str(),
        &[LayerBlob::gzip(
            LayerBuilder::new()
                .file("init", b"#!/bin/sh\n", 0o755)
                .finish(),
        )],
    );
    let spdx = json!({
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "buildkit",
        "documentNamespace": "https://example.com/random-namespace",
        "packages": [{"name": "busybox", "SPDXID": "SPDXRef-busybox", "versionInfo": "1.36.1"}],
        "files": [{"fileName": "/bin/busybox", "SPDXID": "SPDXRef-File-busybox"}],
    });
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "x", "digest": {"sha256": "00"}}],
        "predicate": spdx,
    });
    let mut layer = layout.blob(
        "application/vnd.in-toto+json",
        &serde_json::to_vec(&statement).unwrap(),
    );
    layer["annotations"] = json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"});
    let config = layout.blob("application/vnd.oci.image.config.v1+json", b"{}");
    let attestation_manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let mut attestation = layout.blob(
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&attestation_manifest).unwrap(),
    );
    attestation["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    attestation["annotations"] = json!({
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": attested["digest"],
    });
    let index = layout.index(vec![attested, attestation]);
    layout.name(index, "attested");
    let debian = layout.image(
        arch.as_str(),
        &[LayerBlob::gzip(
            LayerBuilder::new()
                .file(
                    "etc/os-release",
                    b"PRETTY_NAME=\"Debian 12\"\nID=debian\n",
                    0o644,
                )
                .file(
                    "var/lib/dpkg/status",
                    b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u7\nArchitecture: amd64\n",
                    0o644,
                )
                .finish(),
        )],
    );
    layout.name(debian, "debian");
    FakeRegistry::serve(layout)
}

/// Builds a tar of the two images from `registry` into `dir/out` with
/// `extra` options, and returns the SBOM at `path` in it, if any.
fn sbom_of_build(
    dir: &Path,
    registry: &FakeRegistry,
    extra: &[&str],
    path: &str,
) -> Option<Vec<u8>> {
    let config = dir.join("sbom.yml");
    std::fs::write(
        &config,
        format!(
            "init:\n  - {0}/test/app:attested\nservices:\n  - name: app\n    image: {0}/test/app:debian\n",
            registry.addr
        ),
    )
    .unwrap();
    let cache = dir.join("cache");
    let out = dir.join("out");
    let mut args = vec![
        "build",
        "-f",
        "tar",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--dir",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    args.push(config.to_str().unwrap());
    let built = support::ossify_in(dir, &args);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let tar = std::fs::read(out.join("sbom.tar")).unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    archive.entries().unwrap().find_map(|entry| {
        let mut entry = entry.unwrap();
        (entry.path().unwrap().to_str() == Some(path)).then(|| {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            bytes
        })
    })
}

#[test]
fn the_sbom_merges_attestations_and_package_databases_reproducibly() {
    let registry = registry();
    let first = tempfile::tempdir().unwrap();
    let bytes = sbom_of_build(first.path(), &registry, &[], "sbom.spdx.json")
        .expect("the root holds sbom.spdx.json");
    let document: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    assert_eq!(document["creationInfo"]["created"], "2017-04-18T16:30:00Z");
    let packages: Vec<&str> = document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(packages, ["busybox", "libc6"]);
    assert_eq!(
        document["packages"][1]["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64"
    );
    assert_eq!(document["files"][0]["fileName"], "/bin/busybox");
    assert!(
        document["documentNamespace"]
            .as_str()
            .unwrap()
            .starts_with("https://spdx.org/spdxdocs/ossify-sbom-")
    );

    // Another build, another cache: the same bytes; offline from the first
    // cache too, the attestation having been cached with the image.
    let second = tempfile::tempdir().unwrap();
    assert_eq!(
        sbom_of_build(second.path(), &registry, &[], "sbom.spdx.json").unwrap(),
        bytes
    );
    assert_eq!(
        sbom_of_build(first.path(), &registry, &["--offline"], "sbom.spdx.json").unwrap(),
        bytes
    );
}

#[test]
fn no_sbom_leaves_it_out_and_sbom_output_moves_it() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        sbom_of_build(dir.path(), &registry, &["--no-sbom"], "sbom.spdx.json"),
        None
    );
    let moved = sbom_of_build(
        dir.path(),
        &registry,
        &["-sbom-output", "var/lib/sbom.json"],
        "var/lib/sbom.json",
    );
    assert!(moved.is_some(), "the SBOM is where -sbom-output says");
}
