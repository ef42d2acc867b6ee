use serde_json::{Value, json};

use super::*;
use crate::tree::{Kind, Metadata};

fn document(sbom: &Sbom, created: u64) -> Value {
    serde_json::from_slice(&sbom.to_json(created)).unwrap()
}

fn attested(package: &str, file: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "documentNamespace": "https://example.com/random-0",
        "packages": [{"name": package, "SPDXID": format!("SPDXRef-{package}"), "packageFileName": "/lib/apk/db/installed"}],
        "files": [{"fileName": file, "SPDXID": format!("SPDXRef-File-{package}")}],
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": format!("SPDXRef-{package}")}],
    }))
    .unwrap()
}

#[test]
fn documents_merge_in_order_with_paths_below_their_prefix() {
    let mut sbom = Sbom::default();
    sbom.add_document("", &attested("musl", "/etc/os-release"))
        .unwrap();
    sbom.add_document(
        "containers/onboot/000-hello/rootfs",
        &attested("busybox", "bin/busybox"),
    )
    .unwrap();
    let merged = document(&sbom, 1_492_533_000);
    let names: Vec<&Value> = merged["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, ["musl", "busybox"]);
    assert_eq!(
        merged["packages"][1]["packageFileName"],
        "containers/onboot/000-hello/rootfs/lib/apk/db/installed"
    );
    assert_eq!(merged["files"][0]["fileName"], "/etc/os-release");
    assert_eq!(
        merged["files"][1]["fileName"],
        "containers/onboot/000-hello/rootfs/bin/busybox"
    );
    assert_eq!(merged["relationships"].as_array().unwrap().len(), 2);
    assert_eq!(merged["spdxVersion"], "SPDX-2.3");
    assert_eq!(merged["creationInfo"]["created"], "2017-04-18T16:30:00Z");
}

#[test]
fn the_namespace_follows_the_contents_and_nothing_else() {
    let build = |package: &str| {
        let mut sbom = Sbom::default();
        sbom.add_document("", &attested(package, "x")).unwrap();
        sbom
    };
    let namespace = |sbom: &Sbom, created| document(sbom, created)["documentNamespace"].clone();
    assert_eq!(build("a").to_json(0), build("a").to_json(0));
    assert_ne!(namespace(&build("a"), 0), namespace(&build("b"), 0));
    assert_ne!(namespace(&build("a"), 0), namespace(&build("a"), 1));
    let text = namespace(&build("a"), 0);
    let uuid = text
        .as_str()
        .unwrap()
        .strip_prefix("https://spdx.org/spdxdocs/ossify-sbom-")
        .unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "5", "a version 5 layout");
}

#[test]
fn documents_that_are_not_spdx_json_are_refused() {
    let mut sbom = Sbom::default();
    assert!(matches!(
        sbom.add_document("", b"{not json"),
        Err(SbomError::NotJson(_))
    ));
    assert!(matches!(
        sbom.add_document("", b"[1, 2]"),
        Err(SbomError::NotAnObject)
    ));
    assert!(matches!(
        sbom.add_document("", br#"{"packages": {"a": 1}}"#),
        Err(SbomError::NotAList("packages"))
    ));
}

#[test]
fn package_databases_become_packages_of_the_image_distribution() {
    let mut image = Tree::new(0);
    for (path, contents) in [
        ("etc/os-release", &b"NAME=\"Wolfi\"\nID=wolfi\n"[..]),
        (
            "lib/apk/db/installed",
            b"P:glibc\nV:2.40-r1\nA:x86_64\nL:LGPL-2.1-or-later\n\n",
        ),
    ] {
        let blob = image.store_bytes(contents).unwrap();
        image
            .insert(path, Kind::File(blob), Metadata::new(0o644, 0))
            .unwrap();
    }
    let mut sbom = Sbom::default();
    sbom.add_package_databases("containers/services/web/lower", &image);
    sbom.add_package_databases("", &Tree::new(0));
    let merged = document(&sbom, 0);
    let packages = merged["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1);
    assert_eq!(
        packages[0]["externalRefs"][0]["referenceLocator"],
        "pkg:apk/wolfi/glibc@2.40-r1?arch=x86_64"
    );
    assert_eq!(packages[0]["licenseDeclared"], "LGPL-2.1-or-later");
    assert_eq!(
        packages[0]["sourceInfo"],
        "acquired package info from apk database: containers/services/web/lower/lib/apk/db/installed"
    );
}

#[test]
fn paths_join_as_go_filepath_join_does() {
    for (prefix, name, joined) in [
        ("", "", ""),
        ("", "/usr/bin/x", "/usr/bin/x"),
        ("a/rootfs", "", "a/rootfs"),
        ("a/rootfs", "/usr//bin/./x", "a/rootfs/usr/bin/x"),
        ("a/rootfs", "../../x", "x"),
        ("a", "../../x", "../x"),
    ] {
        assert_eq!(join(prefix, name), joined, "{prefix:?} + {name:?}");
    }
}
