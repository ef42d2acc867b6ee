//! Image resolution against a real registry on 127.0.0.1: pulls by tag and
//! digest, multi-arch indexes, compression, cache-only resolution, mirrors,
//! tampering, and moving images in and out of the cache. The tests that
//! need Debian's `docker-registry` and skopeo are in the heavy tier
//! (`#[ignore]`, run by scripts/test.sh); the rest need nothing but Rust.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ossify::image::{
    Compression, Error, Options, Platform, Policy, Progress, Reference, ResolvedImage, Resolver,
    Store,
};
use serde_json::Value;
use support::{LayerBlob, Layout, Registry, layer_tar};
use tempfile::TempDir;

/// Remembers what a resolution reported.
#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<String>>,
    warnings: Mutex<Vec<String>>,
}

impl Progress for Recorder {
    fn blob_started(&self, digest: &ossify::image::Digest, _size: u64) {
        self.started.lock().unwrap().push(digest.to_string());
    }

    fn warning(&self, message: &str) {
        self.warnings.lock().unwrap().push(message.to_owned());
    }
}

/// `cache export REF -o archive`, as the command writes it.
fn export(store: &Store, reference: &Reference, archive: &Path) {
    let target = ossify::output::Target::File(archive.to_owned());
    let mut out = ossify::output::TargetWriter::open(&target).unwrap();
    store.export(reference, &mut out, archive).unwrap();
    out.finish().unwrap();
}

fn new_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    (dir, store)
}

fn reference(text: &str) -> Reference {
    text.parse().unwrap()
}

fn resolve_with(store: &Store, options: Options, text: &str) -> Result<ResolvedImage, Error> {
    Resolver::new(store.clone(), options)
        .resolve(&[reference(text)])
        .map(|mut resolved| resolved.images.remove(0))
}

/// The error with its causes, as `ossify` prints it.
fn chain(error: Error) -> String {
    format!("{:#}", anyhow::Error::from(error))
}

fn resolve(store: &Store, text: &str) -> Result<ResolvedImage, Error> {
    resolve_with(store, Options::default(), text)
}

fn read_blob(store: &Store, digest: &ossify::image::Digest) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    store.open_blob(digest).unwrap().read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Fails if a download left anything but finished blobs in the cache.
fn assert_no_partial_blobs(store: &Store) {
    for entry in std::fs::read_dir(store.dir().join("blobs/sha256")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "stray file {name} in the cache"
        );
    }
}

/// Pushes a one-platform image with the given layers; returns the
/// manifest digest.
fn push_image(registry: &Registry, target: &str, layers: &[LayerBlob]) -> String {
    let mut layout = Layout::new();
    let manifest = layout.image(Platform::host().architecture.as_str(), layers);
    let digest = manifest["digest"].as_str().unwrap().to_owned();
    layout.name(manifest, "image");
    registry.push(&layout, "image", target);
    digest
}

fn two_layers() -> Vec<LayerBlob> {
    vec![
        LayerBlob::plain(layer_tar(&[("etc/issue", b"ossify test\n")])),
        LayerBlob::gzip(layer_tar(&[("bin/hello", b"#!/bin/sh\necho hello\n")])),
    ]
}

fn digest_text(value: &Value) -> &str {
    value["digest"].as_str().unwrap()
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn pulls_by_tag_and_by_digest() {
    let registry = Registry::start();
    let layers = two_layers();
    let target = format!("{}/test/app:1.0", registry.addr);
    let manifest = push_image(&registry, "test/app:1.0", &layers);

    let (_dir, store) = new_store();
    let image = resolve(&store, &target).unwrap();
    assert_eq!(image.digest.to_string(), manifest);
    assert_eq!(image.manifest_digest.to_string(), manifest);
    assert_eq!(image.pinned(), format!("{target}@{manifest}"));
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.layers[0].compression, Compression::None);
    assert_eq!(image.layers[1].compression, Compression::Gzip);
    for (layer, expected) in image.layers.iter().zip(&layers) {
        assert_eq!(layer.digest.to_string(), expected.digest());
        assert_eq!(read_blob(&store, &layer.digest).unwrap(), expected.blob);
        assert_eq!(layer.diff_id, ossify::image::Digest::of(&expected.tar));
    }
    assert_eq!(
        image
            .config
            .config()
            .as_ref()
            .unwrap()
            .cmd()
            .as_ref()
            .unwrap(),
        &vec!["/bin/sh".to_owned()]
    );

    let (_dir, fresh) = new_store();
    let pinned = format!("{}/test/app@{manifest}", registry.addr);
    let by_digest = resolve(&fresh, &pinned).unwrap();
    assert_eq!(by_digest.layers, image.layers);
    assert_no_partial_blobs(&fresh);
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn picks_the_platform_from_a_multi_arch_index() {
    let registry = Registry::start();
    let mut layout = Layout::new();
    let amd64_layer = LayerBlob::gzip(layer_tar(&[("arch", b"amd64\n")]));
    let arm64_layer = LayerBlob::gzip(layer_tar(&[("arch", b"arm64\n")]));
    let amd64 = layout.image("amd64", std::slice::from_ref(&amd64_layer));
    let arm64 = layout.image("arm64", std::slice::from_ref(&arm64_layer));
    let (amd64_digest, arm64_digest) = (
        digest_text(&amd64).to_owned(),
        digest_text(&arm64).to_owned(),
    );
    let index = layout.index(vec![amd64, arm64]);
    let index_digest = digest_text(&index).to_owned();
    layout.name(index, "multi");
    registry.push(&layout, "multi", "test/multi:latest");
    let target = format!("{}/test/multi", registry.addr);

    let (_dir, store) = new_store();
    for (platform, manifest, layer) in [
        ("linux/amd64", &amd64_digest, &amd64_layer),
        ("linux/arm64", &arm64_digest, &arm64_layer),
        ("linux/arm64/v8", &arm64_digest, &arm64_layer),
    ] {
        let options = Options {
            platform: Some(platform.parse().unwrap()),
            ..Options::default()
        };
        let image = resolve_with(&store, options, &target).unwrap();
        assert_eq!(image.digest.to_string(), index_digest, "{platform}");
        assert_eq!(&image.manifest_digest.to_string(), manifest, "{platform}");
        assert_eq!(
            image.layers[0].digest.to_string(),
            layer.digest(),
            "{platform}"
        );
    }

    let options = Options {
        platform: Some(Platform::linux("s390x")),
        ..Options::default()
    };
    let error = resolve_with(&store, options, &target)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no manifest for linux/s390x"), "{error}");
    assert!(error.contains("linux/amd64, linux/arm64/v8"), "{error}");

    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, format!("{target}:latest"));
    assert_eq!(listed[0].platforms, ["linux/amd64", "linux/arm64/v8"]);
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn fetches_zstd_layers() {
    let registry = Registry::start();
    let layer = LayerBlob::zstd(layer_tar(&[("big", &vec![7u8; 100_000])]));
    push_image(&registry, "test/zstd:1", std::slice::from_ref(&layer));
    let (_dir, store) = new_store();
    let image = resolve(&store, &format!("{}/test/zstd:1", registry.addr)).unwrap();
    assert_eq!(image.layers[0].compression, Compression::Zstd);
    assert_eq!(image.layers[0].media_type, support::layout::TAR_ZSTD);
    let blob = read_blob(&store, &image.layers[0].digest).unwrap();
    let mut tar = Vec::new();
    ruzstd::decoding::StreamingDecoder::new(blob.as_slice())
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(ossify::image::Digest::of(&tar), image.layers[0].diff_id);
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn a_cached_image_resolves_with_the_registry_gone() {
    let mut registry = Registry::start();
    let manifest = push_image(&registry, "test/cached:1", &two_layers());
    let target = format!("{}/test/cached:1", registry.addr);
    let pinned = format!("{}/test/cached@{manifest}", registry.addr);
    let (_dir, store) = new_store();
    let first = resolve(&store, &target).unwrap();
    resolve(&store, &pinned).unwrap();
    registry.stop();

    let recorder = Arc::new(Recorder::default());
    let again = Resolver::new(store.clone(), Options::default())
        .with_progress(recorder.clone())
        .resolve(&[reference(&target), reference(&pinned)])
        .unwrap()
        .images;
    assert_eq!(again[0].digest, first.digest);
    assert_eq!(again[1].layers, first.layers);
    assert!(recorder.started.lock().unwrap().is_empty());

    let pull = Options {
        policy: Policy::Pull,
        ..Options::default()
    };
    let error = resolve_with(&store, pull, &target).unwrap_err().to_string();
    assert!(
        error.contains(&registry.addr),
        "--pull must ask the registry: {error}"
    );

    let offline = Options {
        policy: Policy::Offline,
        ..Options::default()
    };
    assert_eq!(
        resolve_with(&store, offline, &target).unwrap().digest,
        first.digest
    );
}

#[test]
fn offline_fails_clearly_for_a_missing_image() {
    let (_dir, store) = new_store();
    let offline = Options {
        policy: Policy::Offline,
        ..Options::default()
    };
    let error = resolve_with(&store, offline, "busybox:1.36").unwrap_err();
    assert_eq!(
        error.to_string(),
        "image docker.io/library/busybox:1.36 is not in the cache and --offline (or --frozen) forbids fetching it"
    );
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn missing_images_and_tags_are_reported_as_not_found() {
    let registry = Registry::start();
    push_image(&registry, "test/present:1", &two_layers());
    let (_dir, store) = new_store();
    for target in ["test/present:2", "test/absent:1"] {
        let target = format!("{}/{target}", registry.addr);
        let error = resolve(&store, &target).unwrap_err().to_string();
        assert_eq!(error, format!("image {target} not found"));
    }
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn a_mirror_serves_docker_hub_references() {
    let registry = Registry::start();
    let manifest = push_image(&registry, "library/hello:1", &two_layers());
    let (_dir, store) = new_store();
    let options = Options {
        mirrors: vec![
            format!("docker.io=http://{}", registry.addr)
                .parse()
                .unwrap(),
        ],
        ..Options::default()
    };
    let image = resolve_with(&store, options, "hello:1").unwrap();
    assert_eq!(image.digest.to_string(), manifest);
    assert_eq!(store.list().unwrap()[0].name, "docker.io/library/hello:1");
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn a_corrupt_cached_blob_is_detected_and_fetched_again() {
    let registry = Registry::start();
    let layers = two_layers();
    let target = format!("{}/test/flip:1", registry.addr);
    push_image(&registry, "test/flip:1", &layers);
    let (_dir, store) = new_store();
    let image = resolve(&store, &target).unwrap();
    let layer = &image.layers[1].digest;
    flip_a_byte(&store.blob_path(layer));

    let error = read_blob(&store, layer).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("is corrupt"), "{error}");

    let offline = Options {
        policy: Policy::Offline,
        ..Options::default()
    };
    let error = resolve_with(&store, offline, &target)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not in the cache"), "{error}");
    assert!(
        !store.blob_path(layer).exists(),
        "the corrupt blob must be gone"
    );

    let recorder = Arc::new(Recorder::default());
    Resolver::new(store.clone(), Options::default())
        .with_progress(recorder.clone())
        .resolve(&[reference(&target)])
        .unwrap();
    assert_eq!(*recorder.started.lock().unwrap(), [layer.to_string()]);
    assert_eq!(read_blob(&store, layer).unwrap(), layers[1].blob);

    flip_a_byte(&store.blob_path(layer));
    let recorder = Arc::new(Recorder::default());
    Resolver::new(store.clone(), Options::default())
        .with_progress(recorder.clone())
        .resolve(&[reference(&target)])
        .unwrap();
    let warnings = recorder.warnings.lock().unwrap();
    assert!(
        warnings[0].contains(&format!("cached blob {layer} was corrupt")),
        "{warnings:?}"
    );
    assert_eq!(read_blob(&store, layer).unwrap(), layers[1].blob);
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn wrong_content_from_a_registry_or_mirror_is_never_used() {
    let registry = Registry::start();
    let layers = two_layers();
    push_image(&registry, "library/bad:1", &layers);
    flip_a_byte(&registry.blob_data(&layers[1].digest()));

    let (_dir, store) = new_store();
    for (target, options) in [
        (
            format!("{}/library/bad:1", registry.addr),
            Options::default(),
        ),
        (
            "bad:1".to_owned(),
            Options {
                mirrors: vec![format!("http://{}", registry.addr).parse().unwrap()],
                ..Options::default()
            },
        ),
    ] {
        let error = chain(resolve_with(&store, options, &target).unwrap_err());
        assert!(error.contains(&registry.addr), "{error}");
        assert!(error.contains(&layers[1].digest()), "{error}");
        assert!(error.contains("hashes to"), "{error}");
        let digest = layers[1].digest().parse().unwrap();
        assert!(!store.blob_path(&digest).exists());
        assert_no_partial_blobs(&store);
    }
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn export_then_import_round_trips_and_skopeo_reads_the_cache() {
    let registry = Registry::start();
    let target = format!("{}/test/export:1", registry.addr);
    push_image(&registry, "test/export:1", &two_layers());
    let (dir, store) = new_store();
    let image = resolve(&store, &target).unwrap();

    let archive = dir.path().join("image.tar");
    export(&store, &reference(&target), &archive);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode & 0o644,
        0o644,
        "readable like a file the user made: {mode:o}"
    );
    let (_other, imported) = new_store();
    assert_eq!(imported.import(&archive).unwrap(), [reference(&target)]);
    let offline = Options {
        policy: Policy::Offline,
        ..Options::default()
    };
    assert_eq!(
        resolve_with(&imported, offline.clone(), &target)
            .unwrap()
            .layers,
        image.layers
    );

    let copy = dir.path().join("copy");
    let skopeo = std::process::Command::new("skopeo")
        .args(["copy", "--quiet", "--preserve-digests", "--insecure-policy"])
        .arg(format!("oci:{}:{target}", store.dir().display()))
        .arg(format!("oci:{}:{target}", copy.display()))
        .output()
        .expect("skopeo is missing: install it with `apt-get install skopeo`");
    assert!(
        skopeo.status.success(),
        "{}",
        String::from_utf8_lossy(&skopeo.stderr)
    );
    let (_third, from_layout) = new_store();
    assert_eq!(from_layout.import(&copy).unwrap(), [reference(&target)]);
    assert_eq!(
        resolve_with(&from_layout, offline, &target).unwrap().layers,
        image.layers
    );
}

#[test]
fn imports_a_docker_save_archive() {
    let tar = LayerBlob::plain(layer_tar(&[("hello", b"world\n")]));
    let diff_id = ossify::image::Digest::of(&tar.tar);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": Platform::host().architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    }))
    .unwrap();
    let config_name = format!("{}.json", ossify::image::Digest::of(&config).hex());
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["example.com/saved:1"],
        "Layers": ["0123abcd/layer.tar"],
    }]))
    .unwrap();
    let mut archive = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("manifest.json", manifest.as_slice()),
        (config_name.as_str(), config.as_slice()),
        ("0123abcd/VERSION", b"1.0".as_slice()),
        ("0123abcd/layer.tar", tar.blob.as_slice()),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        archive.append_data(&mut header, path, data).unwrap();
    }
    let (dir, store) = new_store();
    let path = dir.path().join("saved.tar");
    std::fs::write(&path, archive.into_inner().unwrap()).unwrap();

    assert_eq!(
        store.import(&path).unwrap(),
        [reference("example.com/saved:1")]
    );
    let offline = Options {
        policy: Policy::Offline,
        ..Options::default()
    };
    let image = resolve_with(&store, offline, "example.com/saved:1").unwrap();
    assert_eq!(image.layers[0].diff_id, diff_id);
    assert_eq!(image.layers[0].compression, Compression::None);
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn a_damaged_archive_is_refused() {
    let registry = Registry::start();
    let target = format!("{}/test/damaged:1", registry.addr);
    let layers = two_layers();
    push_image(&registry, "test/damaged:1", &layers);
    let (dir, store) = new_store();
    resolve(&store, &target).unwrap();
    let archive = dir.path().join("image.tar");
    export(&store, &reference(&target), &archive);
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes
        .windows(layers[0].blob.len())
        .position(|w| w == layers[0].blob.as_slice())
        .unwrap();
    bytes[at + 600] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();

    let (_other, imported) = new_store();
    let error = chain(imported.import(&archive).unwrap_err());
    assert!(error.contains("hashes to"), "{error}");
    assert!(imported.list().unwrap().is_empty());
    assert_no_partial_blobs(&imported);
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn remove_and_clean_free_the_cache() {
    let registry = Registry::start();
    let shared = LayerBlob::plain(layer_tar(&[("shared", b"both images\n")]));
    let own = LayerBlob::plain(layer_tar(&[("own", b"only one\n")]));
    push_image(
        &registry,
        "test/a:1",
        &[LayerBlob::plain(shared.tar.clone())],
    );
    push_image(
        &registry,
        "test/b:1",
        &[LayerBlob::plain(shared.tar.clone()), own],
    );
    let (a, b) = (
        format!("{}/test/a:1", registry.addr),
        format!("{}/test/b:1", registry.addr),
    );
    let (_dir, store) = new_store();
    let images = Resolver::new(store.clone(), Options::default())
        .resolve(&[reference(&a), reference(&b)])
        .unwrap()
        .images;
    let listed = store.list().unwrap();
    assert_eq!(listed.iter().map(|i| &i.name).collect::<Vec<_>>(), [&a, &b]);
    assert_eq!(listed[1].digest, images[1].digest);
    assert_eq!(listed[1].platforms, [Platform::host().to_string()]);
    assert!(listed[1].size > listed[0].size);

    assert!(store.remove(&reference(&b)).unwrap());
    assert!(!store.remove(&reference(&b)).unwrap());
    assert!(!store.blob_path(&images[1].layers[1].digest).exists());
    assert!(store.blob_path(&images[0].layers[0].digest).exists());
    assert_eq!(store.list().unwrap().len(), 1);

    store.clean().unwrap();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.dir().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn concurrent_resolutions_share_one_cache() {
    let registry = Registry::start();
    let targets: Vec<String> = (0..4)
        .map(|i| {
            let layer = LayerBlob::gzip(layer_tar(&[("n", format!("{i}").as_bytes())]));
            push_image(&registry, &format!("test/c{i}:1"), &[layer]);
            format!("{}/test/c{i}:1", registry.addr)
        })
        .collect();
    let (_dir, store) = new_store();
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                let store = Store::open(store.dir()).unwrap();
                for target in &targets {
                    resolve(&store, target).unwrap();
                }
            });
        }
    });
    assert_eq!(store.list().unwrap().len(), targets.len());
    assert_no_partial_blobs(&store);
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// A server on 127.0.0.1 that answers every request with `response`, or
/// drops the connection when there is none; counts the connections.
fn failing_server(response: Option<&'static str>) -> (String, Arc<Mutex<usize>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(Mutex::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            *counter.lock().unwrap() += 1;
            if let Some(response) = response {
                let mut request = [0; 4096];
                let _ = std::io::Read::read(&mut stream, &mut request);
                let _ = std::io::Write::write_all(&mut stream, response.as_bytes());
            }
        }
    });
    (addr, connections)
}

#[test]
fn server_errors_and_resets_are_retried_a_bounded_number_of_times() {
    let unavailable =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy";
    for response in [Some(unavailable), None] {
        let (addr, connections) = failing_server(response);
        let (_dir, store) = new_store();
        let error = chain(resolve(&store, &format!("{addr}/test/flaky:1")).unwrap_err());
        let expected = format!(
            "registry {addr}: cannot fetch the manifest of {addr}/test/flaky:1: gave up after 4 attempts: "
        );
        assert!(error.starts_with(&expected), "{error}");
        let connections = *connections.lock().unwrap();
        assert!((4..=8).contains(&connections), "{connections} connections");
        assert_no_partial_blobs(&store);
    }
}
