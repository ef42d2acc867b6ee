//! Assembly of a root filesystem from made-up images, checked entry by
//! entry, and the outputs written from it; failures end to end, their
//! causes printed.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ossify::assemble::{self, ImageConfig, ImageError, Images, files::Host};
use ossify::config::{self, Source};
use ossify::output::{self, Destination, Format};
use ossify::tree::{Kind, Metadata, Tree};
use support::chain;

const EPOCH: u64 = 1_492_533_000;

/// Images made in memory: a kernel image, an init image, a container image.
struct FakeImages;

fn file(tree: &mut Tree, path: &str, contents: &[u8], mode: u32) {
    let blob = tree.store_bytes(contents).unwrap();
    tree.insert(path, Kind::File(blob), Metadata::new(mode, 0))
        .unwrap();
}

fn kernel_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(
            &mut header,
            "lib/modules/6.1.0/modules.order",
            &b"order\n"[..],
        )
        .unwrap();
    builder.into_inner().unwrap()
}

impl Images for FakeImages {
    fn config(&self, reference: &str) -> Result<ImageConfig, ImageError> {
        let mut config = ImageConfig {
            cmd: vec!["/bin/sh".into()],
            ..ImageConfig::default()
        };
        if reference.contains("labelled") {
            config.labels = BTreeMap::from([(
                "org.mobyproject.config".to_owned(),
                r#"{"capabilities": ["CAP_SYS_ADMIN"]}"#.to_owned(),
            )]);
        }
        Ok(config)
    }

    fn filesystem(&self, reference: &str, mtime: u64) -> Result<Tree, ImageError> {
        let mut tree = Tree::new(mtime);
        match reference.split(':').next().unwrap() {
            "test/kernel" => {
                file(&mut tree, "kernel", b"KERNEL", 0o644);
                file(
                    &mut tree,
                    "kernel.gz",
                    &support::layout::gzip(b"KERNEL"),
                    0o644,
                );
                file(&mut tree, "kernel.tar", &kernel_tar(), 0o644);
                file(&mut tree, "ucode.cpio", b"UCODE", 0o644);
                file(&mut tree, "other", b"ignored", 0o644);
            }
            "test/init" => {
                file(&mut tree, "init", b"#!/bin/sh\n", 0o755);
                file(&mut tree, ".dockerenv", b"", 0o644);
                file(&mut tree, "etc/hostname", b"builder\n", 0o644);
                file(&mut tree, "etc/resolv.conf", b"nameserver 8.8.8.8\n", 0o644);
            }
            "test/apk-base" => file(&mut tree, "lib/apk/db/installed", b"P:musl\n", 0o644),
            "test/apk-tools" => file(&mut tree, "lib/apk/db/installed", b"P:curl\n", 0o644),
            "test/hello" | "test/labelled" => {
                file(&mut tree, "bin/busybox", b"BUSYBOX", 0o755);
                file(&mut tree, "etc/hosts", b"10.0.0.1 build\n", 0o600);
                file(&mut tree, "Dockerfile", b"FROM scratch\n", 0o644);
            }
            other => return Err(format!("image {other} not found").into()),
        }
        Ok(tree)
    }

    fn oci_layout(&self, reference: &str, mtime: u64) -> Result<Tree, ImageError> {
        Err(format!("no index {reference} in the fake images (asked at {mtime})").into())
    }

    fn spdx_documents(&self, reference: &str) -> Result<Vec<Vec<u8>>, ImageError> {
        if !reference.starts_with("test/hello") {
            return Ok(Vec::new());
        }
        let document = serde_json::json!({
            "spdxVersion": "SPDX-2.3",
            "packages": [{"name": "busybox", "SPDXID": "SPDXRef-busybox", "versionInfo": "1.36"}],
            "files": [{"fileName": "/bin/busybox", "SPDXID": "SPDXRef-File-busybox"}],
        });
        Ok(vec![serde_json::to_vec(&document).unwrap()])
    }
}

const CONFIG: &str = r#"
kernel:
  image: test/kernel:1
  cmdline: console=ttyS0
  ucode: ucode.cpio
init:
  - test/init:1
onboot:
  - name: hello
    image: test/hello:1
    readonly: true
  - name: again
    image: test/hello:1
onshutdown:
  - name: bye
    image: test/labelled:1
services:
  - name: web
    image: test/labelled:1
    uid: web
volumes:
  - name: data
files:
  - path: etc/issue
    contents: "hello\n"
    mode: "0644"
  - path: /var/lib/secret
    contents: s3cret
    uid: web
  - path: etc/config.yml
    metadata: yaml
  - path: home/optional
    source: does/not/exist
    optional: true
  - path: etc/localtime
    symlink: /usr/share/zoneinfo/UTC
"#;

fn assemble(text: &str) -> Result<Tree, assemble::Error> {
    assemble_with(text, false, None)
}

fn assemble_with(
    text: &str,
    decompress_kernel: bool,
    sbom: Option<assemble::SbomOptions>,
) -> Result<Tree, assemble::Error> {
    let source = Source {
        path: "test.yml".into(),
        text: text.to_owned(),
    };
    let config = config::load(&[source]).unwrap().config;
    let host = Host {
        working_dir: Path::new("."),
        home: None,
        metadata_yaml: b"kernel: {}\n",
        metadata_json: b"{}",
        sources_read: &Default::default(),
    };
    assemble::assemble(
        &config,
        &FakeImages,
        &assemble::Options {
            mtime: EPOCH,
            host,
            decompress_kernel,
            sbom,
        },
    )
}

/// Binds and bind mounts that name a volume point at its `merged/`
/// directory in the container's config.json; absolute sources stay.
#[test]
fn binds_of_volumes_point_at_the_volume_overlay() {
    let tree = assemble(
        "services:\n  - name: web\n    image: test/hello:1\n    \
         binds: [\"data:/data:ro\", \"/etc/hosts:/etc/hosts\"]\n    \
         mounts: [{type: bind, source: data, destination: /m, options: [rbind]}]\n  \
         - name: more\n    image: test/hello:1\n    binds.add: [\"data:/more\"]\n\
         volumes:\n  - name: data\n",
    )
    .unwrap();
    let config_json = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&read(
            &tree,
            &format!("containers/services/{name}/config.json"),
        ))
        .unwrap()
    };
    let (web, more) = (config_json("web"), config_json("more"));
    let source = |destination: &str| {
        let config = if destination == "/more" { &more } else { &web };
        config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == destination)
            .unwrap_or_else(|| panic!("no mount at {destination}: {config}"))["source"]
            .clone()
    };
    for destination in ["/data", "/more", "/m"] {
        assert_eq!(source(destination), "/containers/volumes/data/merged");
    }
    assert_eq!(source("/etc/hosts"), "/etc/hosts");
    assert!(tree.lookup("containers/volumes/data/merged").is_some());
}

/// The SBOM merges attested documents (paths moved below where the image
/// is placed) and the package databases of images without one; it is
/// written once, where `--sbom-output` says.
#[test]
fn the_sbom_lists_attested_and_database_packages_where_they_are_placed() {
    let sbom = assemble::SbomOptions {
        path: "/var/sbom.json".to_owned(),
        created: EPOCH,
    };
    let tree = assemble_with(
        "init:\n  - test/apk-base:1\nonboot:\n  - name: hello\n    image: test/hello:1\n    \
         readonly: true\n  - name: again\n    image: test/hello:1\n",
        false,
        Some(sbom),
    )
    .unwrap();
    assert!(tree.lookup("sbom.spdx.json").is_none());
    let document: serde_json::Value =
        serde_json::from_slice(&read(&tree, "var/sbom.json")).unwrap();
    let packages: Vec<(&str, &str)> = document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["externalRefs"][0]["referenceLocator"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        packages,
        [("musl", "pkg:apk/alpine/musl"), ("busybox", "")],
        "the database's package, then the attested one, once for the shared image"
    );
    assert_eq!(
        document["files"][0]["fileName"],
        "containers/onboot/000-hello/rootfs/bin/busybox"
    );
    assert_eq!(metadata(&tree, "var/sbom.json").mode, 0o644);
    let without = assemble("init:\n  - test/apk-base:1\n").unwrap();
    assert!(without.lookup("sbom.spdx.json").is_none());
}

/// apk's databases of several init images are joined, not overwritten.
#[test]
fn init_images_apk_databases_are_joined() {
    let tree =
        assemble("init:\n  - test/apk-base:1\n  - test/init:1\n  - test/apk-tools:1\n").unwrap();
    assert_eq!(
        read(&tree, "lib/apk/db/installed"),
        b"P:musl\n\n\nP:curl\n\n\n"
    );
}

#[test]
fn decompress_kernel_stores_the_kernel_uncompressed_or_says_why_not() {
    let config = |binary: &str| {
        format!("kernel:\n  image: test/kernel:1\n  binary: {binary}\n  tar: none\n")
    };
    let tree = assemble_with(&config("kernel.gz"), true, None).unwrap();
    assert_eq!(read(&tree, "boot/kernel"), b"KERNEL");
    let kept = assemble_with(&config("kernel.gz"), false, None).unwrap();
    assert_eq!(read(&kept, "boot/kernel"), support::layout::gzip(b"KERNEL"));
    let error = format!(
        "{:#}",
        anyhow::Error::from(assemble_with(&config("kernel"), true, None).unwrap_err())
    );
    assert!(
        error.contains("test/kernel:1")
            && error.contains("--decompress-kernel: cannot decompress `kernel`")
            && error.contains("neither gzip nor an x86 bzImage"),
        "{error}"
    );
}

fn read(tree: &Tree, path: &str) -> Vec<u8> {
    let id = tree
        .lookup(path)
        .unwrap_or_else(|| panic!("{path} is missing"));
    let Kind::File(blob) = &tree.node(id).kind else {
        panic!("{path} is not a file")
    };
    let mut contents = Vec::new();
    tree.contents(blob).read_to_end(&mut contents).unwrap();
    contents
}

fn metadata(tree: &Tree, path: &str) -> Metadata {
    tree.node(
        tree.lookup(path)
            .unwrap_or_else(|| panic!("{path} is missing")),
    )
    .metadata
    .clone()
}

#[test]
fn the_root_filesystem_has_linuxkits_layout() {
    let root = assemble(CONFIG).unwrap();
    // Kernel image: three files taken, modules unpacked, the rest ignored.
    assert_eq!(read(&root, "boot/kernel"), b"KERNEL");
    assert_eq!(read(&root, "boot/cmdline"), b"console=ttyS0");
    assert_eq!(read(&root, "boot/ucode.cpio"), b"UCODE");
    assert_eq!(read(&root, "lib/modules/6.1.0/modules.order"), b"order\n");
    assert!(root.lookup("other").is_none() && root.lookup("kernel.tar").is_none());
    // Init: flattened into the root, Docker traces removed, mount points made.
    assert_eq!(read(&root, "init"), b"#!/bin/sh\n");
    assert!(root.lookup(".dockerenv").is_none() && root.lookup("etc/hostname").is_none());
    let resolv = root.node(root.lookup("etc/resolv.conf").unwrap());
    assert_eq!(
        resolv.kind,
        Kind::Symlink(b"/run/resolvconf/resolv.conf".to_vec())
    );
    assert_eq!(
        root.node(root.lookup("etc/mtab").unwrap()).kind,
        Kind::Symlink(b"/proc/mounts".to_vec())
    );
    for dir in ["dev", "dev/pts", "dev/shm", "proc", "sys"] {
        assert!(
            matches!(
                root.node(root.lookup(dir).unwrap()).kind,
                Kind::Directory(_)
            ),
            "{dir}"
        );
    }
    // A readonly onboot container: its image in rootfs/, adjusted.
    let hello = "containers/onboot/000-hello";
    assert_eq!(
        read(&root, &format!("{hello}/rootfs/bin/busybox")),
        b"BUSYBOX"
    );
    assert!(root.lookup(format!("{hello}/rootfs/Dockerfile")).is_none());
    let hosts = read(&root, &format!("{hello}/rootfs/etc/hosts"));
    assert!(hosts.starts_with(b"127.0.0.1       localhost\n"));
    assert_eq!(
        metadata(&root, &format!("{hello}/rootfs/etc/hosts")).mode,
        0o600,
        "mode kept"
    );
    assert_eq!(
        read(&root, &format!("{hello}/rootfs/etc/resolv.conf")),
        b"\n# no resolv.conf configured\n"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&read(&root, &format!("{hello}/config.json"))).unwrap();
    assert_eq!(config["root"]["readonly"], true);
    assert_eq!(config["process"]["args"][0], "/bin/sh");
    assert!(root.lookup(format!("{hello}/runtime.json")).is_some());
    // The same image again: not placed twice; an overlay over the first copy.
    let again = "containers/onboot/001-again";
    assert!(root.lookup(format!("{again}/lower")).is_none());
    for dir in ["tmp", "rootfs"] {
        assert!(root.lookup(format!("{again}/{dir}")).is_some(), "{dir}");
    }
    let runtime = String::from_utf8(read(&root, &format!("{again}/runtime.json"))).unwrap();
    assert!(
        runtime.contains("lowerdir=/containers/onboot/000-hello/rootfs"),
        "{runtime}"
    );
    // onshutdown numbering, services by name, a label's capabilities.
    let bye: serde_json::Value =
        serde_json::from_slice(&read(&root, "containers/onshutdown/000-bye/config.json")).unwrap();
    assert_eq!(
        bye["process"]["capabilities"]["effective"][0],
        "CAP_SYS_ADMIN"
    );
    let web: serde_json::Value =
        serde_json::from_slice(&read(&root, "containers/services/web/config.json")).unwrap();
    // hello, again, bye, web: the fourth container is uid 103.
    assert_eq!(web["process"]["user"]["uid"], 103);
    assert!(root.lookup("containers/volumes/data/lower").is_some());
    assert!(root.lookup("containers/volumes/data/merged").is_some());
    // Files: modes, owners, parents, metadata, optional sources.
    assert_eq!(read(&root, "etc/issue"), b"hello\n");
    assert_eq!(metadata(&root, "etc/issue").mode, 0o644);
    let secret = metadata(&root, "var/lib/secret");
    assert_eq!((secret.mode, secret.uid), (0o600, 103));
    let var = metadata(&root, "var");
    assert_eq!(
        (var.mode, var.uid),
        (0o700, 103),
        "parents take the entry's owner and a derived mode"
    );
    assert_eq!(read(&root, "etc/config.yml"), b"kernel: {}\n");
    assert!(root.lookup("home/optional").is_none());
    assert_eq!(
        root.node(root.lookup("etc/localtime").unwrap()).kind,
        Kind::Symlink(b"/usr/share/zoneinfo/UTC".to_vec())
    );
}

#[test]
fn errors_name_the_entry_its_position_and_image() {
    let missing_binary = CONFIG.replace("ucode: ucode.cpio", "binary: bzImage");
    let error = chain(&assemble(&missing_binary).unwrap_err());
    assert!(
        error.starts_with("kernel at test.yml:3:3, image test/kernel:1: no file `bzImage`"),
        "{error}"
    );

    let missing_image = CONFIG.replace("test/labelled:1\n    uid", "test/nowhere:1\n    uid");
    let error = chain(&assemble(&missing_image).unwrap_err());
    assert!(
        error.starts_with("services[0] (web) at test.yml:"),
        "{error}"
    );
    assert!(
        error.contains("image test/nowhere:1: image test/nowhere not found"),
        "{error}"
    );

    let missing_source = CONFIG.replace("    optional: true\n", "");
    let error = assemble(&missing_source).unwrap_err();
    let text = chain(&error);
    assert!(
        text.starts_with("files[3] (home/optional) at test.yml:"),
        "{text}"
    );
    assert!(
        text.contains("cannot read source `does/not/exist`"),
        "{text}"
    );
    assert!(
        std::error::Error::source(&error).is_some(),
        "the failure is the place's source"
    );
    assert!(
        text.ends_with("No such file or directory (os error 2)"),
        "the cause comes last: {text}"
    );
}

/// Assembles a configuration holding only `files`, each a `source:`.
fn assemble_sources(sources: &[&Path]) -> Result<Tree, assemble::Error> {
    let mut config = String::from("files:\n");
    for (index, source) in sources.iter().enumerate() {
        config += &format!("  - path: f{index}\n    source: {}\n", source.display());
    }
    assemble(&config)
}

#[test]
fn sources_are_read_to_their_end_whatever_size_they_report() {
    let status = Path::new("/proc/self/status");
    assert_eq!(std::fs::metadata(status).unwrap().len(), 0);
    let root = assemble_sources(&[status]).unwrap();
    let contents = String::from_utf8(read(&root, "f0")).unwrap();
    assert!(contents.starts_with("Name:"), "{contents}");
}

#[test]
fn sources_that_are_not_regular_files_are_refused_by_type() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let fifo_name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `fifo_name` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo_name.as_ptr(), 0o600) }, 0);
    let socket = dir.path().join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let cases: [(&Path, &str); 4] = [
        (&fifo, "is a FIFO; a source must be a regular file"),
        (&socket, "is a socket; a source must be a regular file"),
        (
            Path::new("/dev/null"),
            "is a character device; a source must be a regular file",
        ),
        (
            dir.path(),
            "is a directory; a source is one file, so give each file its own entry",
        ),
    ];
    for (source, message) in cases {
        let error = chain(&assemble_sources(&[source]).unwrap_err());
        assert!(error.starts_with("files[0] (f0) at test.yml:"), "{error}");
        assert!(error.contains(message), "{source:?}: {error}");
        assert!(!error.contains("TMPDIR"), "{source:?}: {error}");
    }
    let optional = format!(
        "files:\n  - path: f\n    source: {}\n    optional: true\n",
        fifo.display()
    );
    let error = chain(&assemble(&optional).unwrap_err());
    assert!(error.contains("is a FIFO"), "optional, yet a FIFO: {error}");
}

/// The archive formats of `CONFIG`, written into `dir` as `t`.
fn write_archives(dir: &std::path::Path) -> Vec<output::Written> {
    let destination = Destination::Directory {
        dir: dir.to_owned(),
        name: "t".parse().unwrap(),
    };
    let staged = output::write_all(
        assemble(CONFIG).unwrap(),
        &[Format::Tar, Format::KernelInitrd, Format::TarKernelInitrd],
        &destination,
        EPOCH,
        &output::BootOptions {
            bootloader: None,
            architecture: "amd64",
            disk_size: None,
            root: Default::default(),
            initrd_compression: Default::default(),
            deflated_ahead: None,
        },
    )
    .unwrap();
    let written = staged.written();
    staged.commit(b"{}\n").unwrap();
    written
}

#[test]
fn outputs_split_the_boot_files_and_are_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_archives(dir.path());
    let mut names: Vec<String> = written
        .iter()
        .map(|w| {
            w.file
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "t-cmdline",
            "t-initrd.img",
            "t-initrd.tar",
            "t-kernel",
            "t.tar"
        ]
    );
    for w in &written {
        assert_eq!(w.file.sha256, support::sha256_file(&w.file.path));
    }
    assert_eq!(
        std::fs::read(dir.path().join("t-kernel")).unwrap(),
        b"KERNEL"
    );
    assert_eq!(
        std::fs::read(dir.path().join("t-cmdline")).unwrap(),
        b"console=ttyS0"
    );
    let initrd = std::fs::read(dir.path().join("t-initrd.img")).unwrap();
    assert!(
        initrd.starts_with(b"UCODE\x1f\x8b"),
        "microcode first, then gzip"
    );
    let mut cpio = Vec::new();
    flate2::read::GzDecoder::new(&initrd[5..])
        .read_to_end(&mut cpio)
        .unwrap();
    let listing = String::from_utf8_lossy(&cpio);
    assert!(listing.contains("containers/onboot/000-hello/config.json"));
    assert!(!listing.contains("boot/kernel") && !listing.contains("boot/cmdline"));
    let tar_listing =
        String::from_utf8_lossy(&std::fs::read(dir.path().join("t.tar")).unwrap()).into_owned();
    assert!(
        tar_listing.contains("boot/kernel"),
        "the tar format keeps boot/"
    );
    let mut bundle =
        tar::Archive::new(std::fs::File::open(dir.path().join("t-initrd.tar")).unwrap());
    let entries: Vec<String> = bundle
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["cmdline", "initrd.img", "kernel", "ucode.cpio"]);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        6,
        "the five outputs and the manifest; no temporary file left"
    );

    let again = tempfile::tempdir().unwrap();
    let rewritten = write_archives(again.path());
    let digests =
        |w: &[output::Written]| w.iter().map(|w| w.file.sha256.clone()).collect::<Vec<_>>();
    assert_eq!(digests(&written), digests(&rewritten));
}

/// `ossify build -f tar` of `config`, offline, from a cache holding
/// `layers` as the image `localhost/test/bad:1`; returns its stderr once it
/// has failed with exit status 1.
fn failed_build(layers: Vec<support::LayerBlob>, config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = support::Layout::new();
    let image = layout.image("amd64", &layers);
    layout.name(image, "localhost/test/bad:1");
    let cache = dir.path().join("cache");
    ossify::image::Store::open(&cache)
        .unwrap()
        .import(layout.path())
        .unwrap();
    let config_path = dir.path().join("bad.yml");
    std::fs::write(&config_path, config).unwrap();
    let out = dir.path().join("out");
    let output = support::build_offline(dir.path(), &cache, &out, &["-f", "tar"], &[&config_path]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

const BAD_CONTAINER: &str = "onboot:\n  - name: bad\n    image: localhost/test/bad:1\n";

/// Asserts that `stderr` holds `cause` exactly once, after the place.
fn assert_cause_once(stderr: &str, place: &str, cause: &str) {
    assert!(stderr.contains(place), "no `{place}` in:\n{stderr}");
    assert_eq!(
        stderr.matches(cause).count(),
        1,
        "`{cause}` should appear once in:\n{stderr}"
    );
    assert!(
        stderr.find(place) < stderr.find(cause),
        "the cause follows the place:\n{stderr}"
    );
}

#[test]
fn a_build_prints_why_a_layer_cannot_be_applied() {
    use support::layer_builder::LayerBuilder;
    let place = "onboot[0] (bad) at ";
    let symlink_loop = LayerBuilder::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", b"x", 0o644)
        .finish();
    let stderr = failed_build(vec![support::LayerBlob::gzip(symlink_loop)], BAD_CONTAINER);
    assert_cause_once(&stderr, place, "more than 40 symbolic links on the way");
    assert!(stderr.contains("entry `a/x`"), "{stderr}");

    let through_a_file = LayerBuilder::new()
        .file("f", b"f", 0o644)
        .file("f/x", b"x", 0o644)
        .finish();
    let stderr = failed_build(
        vec![support::LayerBlob::gzip(through_a_file)],
        BAD_CONTAINER,
    );
    assert_cause_once(&stderr, place, "a component on the way is not a directory");

    let mut truncated = support::LayerBlob::gzip(
        LayerBuilder::new()
            .file("big", &[7; 100_000], 0o644)
            .finish(),
    );
    truncated.blob.truncate(truncated.blob.len() - 10);
    let stderr = failed_build(vec![truncated], BAD_CONTAINER);
    assert_cause_once(&stderr, place, "the stream is truncated or corrupt");
    assert!(
        stderr.trim_end().ends_with("incomplete deflate stream"),
        "the decoder's own reason ends the chain:\n{stderr}"
    );
    assert!(!stderr.contains("TMPDIR"), "{stderr}");
}

#[test]
fn a_build_prints_why_a_source_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{BAD_CONTAINER}files:\n  - path: etc/conf\n    source: {}\n",
        dir.path().display()
    );
    let stderr = failed_build(Vec::new(), &config);
    assert_cause_once(&stderr, "files[0] (etc/conf) at ", "is a directory");
    assert!(!stderr.contains("TMPDIR"), "{stderr}");
}
