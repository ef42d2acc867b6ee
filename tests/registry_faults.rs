//! `ossify pull` against a registry that fails on purpose
//! (`support::FakeRegistry`): server errors, resets, stalls, trickles,
//! wrong bytes, oversized and endless manifests, missing blobs. Each test
//! checks the message, the exit status, and that the cache is left clean:
//! no name in `index.json`, no partial file, nothing listed.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use ossify::image::{Digest, Platform};
use support::{FakeRegistry, Fault, LayerBlob, Layout, layer_tar};

/// The fake registry's one image, tagged `1`, and what it is made of.
struct Image {
    registry: FakeRegistry,
    /// `127.0.0.1:PORT/test/app:1`.
    reference: String,
    manifest: String,
    /// A small gzip layer, then a 64 KiB plain one.
    layers: Vec<String>,
}

impl Image {
    fn serve() -> Self {
        let mut layout = Layout::new();
        let noise: Vec<u8> = (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let layers = vec![
            LayerBlob::gzip(layer_tar(&[("etc/issue", b"fault test\n")])),
            LayerBlob::plain(layer_tar(&[("noise", &noise)])),
        ];
        let manifest = layout.image(Platform::host().architecture.as_str(), &layers);
        let digest = manifest["digest"].as_str().unwrap().to_owned();
        layout.name(manifest, "1");
        let registry = FakeRegistry::serve(layout);
        Self {
            reference: format!("{}/test/app:1", registry.addr),
            registry,
            manifest: digest,
            layers: layers.iter().map(LayerBlob::digest).collect(),
        }
    }

    /// The second, larger layer's request path suffix.
    fn big_layer(&self) -> String {
        format!("blobs/{}", self.layers[1])
    }
}

/// `ossify pull -q`: stderr holds only errors (and warnings).
fn pull(cache: &Path, reference: &str, extra: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut args = vec![
        "pull",
        "-q",
        "--cache-dir",
        cache.to_str().unwrap(),
        reference,
    ];
    args.extend(extra);
    let output = support::ossify_in(cache.parent().unwrap(), &args);
    (output, started.elapsed())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails unless `output` is a failure (exit status 1) whose message is
/// the single line `expected`.
fn assert_fails_with(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    assert_eq!(stderr(output).trim_end(), format!("error: {expected}"));
    assert!(output.stdout.is_empty());
}

/// Fails unless the cache names nothing, holds no partial download, and
/// `cache ls` lists nothing.
fn assert_clean_cache(cache: &Path) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"],
        serde_json::json!([]),
        "a name was recorded"
    );
    for entry in std::fs::read_dir(cache.join("blobs/sha256")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            format!("sha256:{name}").parse::<Digest>().is_ok(),
            "{name} left in the cache"
        );
    }
    let listed = support::ossify_in(cache, &["cache", "ls", "--cache-dir", "."]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        listed.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
}

fn cache_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    (dir, cache)
}

#[test]
fn a_healthy_registry_serves_a_pull() {
    let image = Image::serve();
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &image.reference, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}@{}\n", image.reference, image.manifest)
    );
    let listed = support::ossify_in(&cache, &["cache", "ls", "--cache-dir", "."]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.starts_with(&format!("{}\t{}\t", image.reference, image.manifest)),
        "{listed}"
    );
}

#[test]
fn transient_errors_and_resets_are_retried() {
    let image = Image::serve();
    image
        .registry
        .fault_times(&image.big_layer(), Fault::Status(503), 1);
    image
        .registry
        .fault_times(&image.big_layer(), Fault::ResetMidway, 1);
    image
        .registry
        .fault_times("manifests/1", Fault::Status(500), 1);
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &image.reference, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(image.registry.requests(&image.big_layer()), 3);
    assert_eq!(image.registry.requests("manifests/1"), 2);
}

#[test]
fn persistent_server_errors_fail_after_four_attempts() {
    let image = Image::serve();
    image.registry.fault(&image.big_layer(), Fault::Status(500));
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &image.reference, &[]);
    assert_fails_with(
        &output,
        &format!(
            "registry {}: cannot fetch blob {} of {}: gave up after 4 attempts: \
             HTTP 500 Internal Server Error: fault injected by the test",
            image.registry.addr, image.layers[1], image.reference
        ),
    );
    assert_eq!(image.registry.requests(&image.big_layer()), 4);
    assert_clean_cache(&cache);
}

#[test]
fn a_connection_reset_mid_blob_fails_with_its_reason() {
    let image = Image::serve();
    image.registry.fault(&image.big_layer(), Fault::ResetMidway);
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &image.reference, &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    let expected = format!(
        "error: registry {}: cannot fetch blob {} of {}: gave up after 4 attempts: ",
        image.registry.addr, image.layers[1], image.reference
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.contains("reset"), "the reason is lost: {message}");
    assert_eq!(image.registry.requests(&image.big_layer()), 4);
    assert_clean_cache(&cache);
}

#[test]
fn a_stalled_blob_fails_within_the_stall_timeout() {
    let image = Image::serve();
    image.registry.fault(&image.big_layer(), Fault::Stall);
    let (_dir, cache) = cache_dir();
    let (output, elapsed) = pull(&cache, &image.reference, &["--stall-timeout", "1"]);
    assert_fails_with(
        &output,
        &format!(
            "registry {}: cannot fetch blob {} of {}: gave up after 4 attempts: \
             stalled: less than 1 KiB arrived in 1 s (--stall-timeout)",
            image.registry.addr, image.layers[1], image.reference
        ),
    );
    // Four attempts of one second and 3.5 s of pauses between them.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert_eq!(image.registry.requests(&image.big_layer()), 4);
    assert_clean_cache(&cache);
}

#[test]
fn a_trickle_counts_as_a_stall() {
    let image = Image::serve();
    image.registry.fault(&image.big_layer(), Fault::Trickle);
    let (_dir, cache) = cache_dir();
    let (output, elapsed) = pull(&cache, &image.reference, &["--stall-timeout", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("stalled: less than 1 KiB arrived in 1 s"),
        "{}",
        stderr(&output)
    );
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert_clean_cache(&cache);
}

#[test]
fn wrong_bytes_are_discarded_without_retrying() {
    let image = Image::serve();
    image.registry.fault(&image.big_layer(), Fault::WrongBytes);
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &image.reference, &[]);
    let message = stderr(&output);
    let expected = format!(
        "error: registry {}: cannot fetch blob {} of {}: the content sent hashes to sha256:",
        image.registry.addr, image.layers[1], image.reference
    );
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.starts_with(&expected), "{message}");
    assert!(
        message.trim_end().ends_with("; it was discarded"),
        "{message}"
    );
    assert_eq!(image.registry.requests(&image.big_layer()), 1);
    assert_clean_cache(&cache);
}

/// A manifest announced as 4 GiB is refused before its body is read, and
/// one that never ends is cut at the limit: either way ossify reads far
/// less than the registry would send.
#[test]
fn oversized_manifests_are_cut_at_the_limit() {
    for fault in [Fault::HugeLength, Fault::Endless] {
        let image = Image::serve();
        image.registry.fault("manifests/1", fault);
        let (_dir, cache) = cache_dir();
        let (output, _) = pull(&cache, &image.reference, &[]);
        assert_fails_with(
            &output,
            &format!(
                "registry {}: cannot fetch the manifest of {}: it is larger than 4 MiB, \
                 the limit for manifests, indexes and image configs",
                image.registry.addr, image.reference
            ),
        );
        assert!(
            image.registry.flooded() < 64 << 20,
            "{} bytes were sent before ossify stopped reading",
            image.registry.flooded()
        );
        assert_clean_cache(&cache);
    }
}

#[test]
fn a_blob_longer_than_its_descriptor_is_refused() {
    let image = Image::serve();
    image.registry.fault(&image.big_layer(), Fault::Longer);
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &image.reference, &[]);
    let size = support::layer_tar(&[("noise", &[0u8; 64 * 1024])]).len();
    assert_fails_with(
        &output,
        &format!(
            "registry {}: cannot fetch blob {} of {}: it is longer than the {size} bytes \
             its descriptor declares",
            image.registry.addr, image.layers[1], image.reference
        ),
    );
    assert_eq!(image.registry.requests(&image.big_layer()), 1);
    assert_clean_cache(&cache);
}

#[test]
fn a_missing_blob_names_no_image_and_says_why() {
    let image = Image::serve();
    image.registry.fault(&image.big_layer(), Fault::Status(404));
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &image.reference, &[]);
    assert_fails_with(
        &output,
        &format!(
            "registry {}: cannot fetch blob {} of {}: HTTP 404 Not Found: fault injected by the test",
            image.registry.addr, image.layers[1], image.reference
        ),
    );
    assert_clean_cache(&cache);
}

#[test]
fn an_unknown_tag_is_not_found_with_the_registry_reason() {
    let image = Image::serve();
    let (_dir, cache) = cache_dir();
    let reference = format!("{}/test/app:2", image.registry.addr);
    let (output, _) = pull(&cache, &reference, &[]);
    assert_fails_with(
        &output,
        &format!("image {reference} not found: HTTP 404 Not Found: manifest unknown"),
    );
    assert_clean_cache(&cache);
}

#[test]
fn a_refused_connection_says_so() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &format!("{addr}/test/app:1"), &[]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.starts_with(&format!(
            "error: registry {addr}: cannot fetch the manifest of {addr}/test/app:1: gave up after 4 attempts: "
        )),
        "{message}"
    );
    assert!(
        message.contains("Connection refused"),
        "the reason is lost: {message}"
    );
    assert_clean_cache(&cache);
}

#[test]
fn a_killed_pull_leaves_no_name_and_the_next_pull_sweeps_its_partial_file() {
    let image = Image::serve();
    image.registry.fault(&image.big_layer(), Fault::Stall);
    let (_dir, cache) = cache_dir();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ossify"))
        .args([
            "pull",
            "--cache-dir",
            cache.to_str().unwrap(),
            &image.reference,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partials = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cache.join("blobs/sha256"))
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".partial-")
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !partials()
        .iter()
        .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 32 * 1024))
    {
        assert!(
            Instant::now() < deadline,
            "the pull never reached the stall"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stale = partials();
    assert_eq!(stale.len(), 1);

    // Another pull's partial download, being written: locked.
    let live = cache.join("blobs/sha256/.partial-live");
    let live_file = std::fs::File::create(&live).unwrap();
    live_file.lock().unwrap();

    image.registry.heal();
    let (output, _) = pull(&cache, &image.reference, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stale[0].exists(),
        "the dead pull's partial file is still there"
    );
    assert!(live.exists(), "a live partial file was removed");
}

#[test]
fn a_failed_pull_of_a_moved_tag_keeps_what_the_name_meant_before() {
    let mut layout = Layout::new();
    let arch = Platform::host().architecture;
    let old = layout.image(
        arch.as_str(),
        &[LayerBlob::plain(layer_tar(&[("v", b"1\n")]))],
    );
    let new_layer = LayerBlob::plain(layer_tar(&[("v", b"2\n")]));
    let new = layout.image(arch.as_str(), std::slice::from_ref(&new_layer));
    layout.name(old, "1");
    layout.name(new, "2");
    let registry = FakeRegistry::serve(layout);
    let reference = format!("{}/test/app:1", registry.addr);
    let (_dir, cache) = cache_dir();
    let (output, _) = pull(&cache, &reference, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let index = std::fs::read_to_string(cache.join("index.json")).unwrap();

    registry.move_tag("1", "2");
    registry.fault(&format!("blobs/{}", new_layer.digest()), Fault::Status(404));
    let (output, _) = pull(&cache, &reference, &["--pull"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(cache.join("index.json")).unwrap(),
        index,
        "the name moved to an image whose layer is missing"
    );
}
