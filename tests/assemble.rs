//! Assembly of a root filesystem from made-up images, checked entry by
//! entry, and the outputs written from it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ossify::assemble::{self, ImageConfig, ImageError, Images, files::Host};
use ossify::config::{self, Source};
use ossify::output::{self, Destination, Format};
use ossify::tree::{Kind, Metadata, Tree};

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
            "test/hello" | "test/labelled" => {
                file(&mut tree, "bin/busybox", b"BUSYBOX", 0o755);
                file(&mut tree, "etc/hosts", b"10.0.0.1 build\n", 0o600);
                file(&mut tree, "Dockerfile", b"FROM scratch\n", 0o644);
            }
            other => return Err(format!("image {other} not found").into()),
        }
        Ok(tree)
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
    };
    assemble::assemble(
        &config,
        &FakeImages,
        &assemble::Options { mtime: EPOCH, host },
    )
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
    let error = assemble(&missing_binary).unwrap_err().to_string();
    assert!(
        error.starts_with("kernel at test.yml:3:3, image test/kernel:1: no file `bzImage`"),
        "{error}"
    );

    let missing_image = CONFIG.replace("test/labelled:1\n    uid", "test/nowhere:1\n    uid");
    let error = assemble(&missing_image).unwrap_err().to_string();
    assert!(
        error.starts_with("services[0] (web) at test.yml:"),
        "{error}"
    );
    assert!(
        error.contains("image test/nowhere:1: image test/nowhere not found"),
        "{error}"
    );

    let missing_source = CONFIG.replace("    optional: true\n", "");
    let error = assemble(&missing_source).unwrap_err().to_string();
    assert!(
        error.starts_with("files[3] (home/optional) at test.yml:"),
        "{error}"
    );
    assert!(
        error.contains("cannot read source `does/not/exist`"),
        "{error}"
    );
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    output::atomic::hex(&sha2::Sha256::digest(std::fs::read(path).unwrap()))
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
        assert_eq!(w.file.sha256, sha256(&w.file.path));
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
