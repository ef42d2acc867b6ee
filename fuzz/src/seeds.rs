//! Seed inputs for every target, synthesised here: small tar layers,
//! image archives, OCI documents, configurations, PE stubs and GRUB
//! files. No byte comes from a host package. `cargo run --bin seeds`
//! writes them into each target's corpus.

use std::io::Write;

use sha2::{Digest, Sha256};

/// A seed: the target it is for, a name, and its bytes.
pub struct Seed {
    pub target: &'static str,
    pub name: &'static str,
    pub bytes: Vec<u8>,
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut add = |target, name, bytes| {
        seeds.push(Seed {
            target,
            name,
            bytes,
        })
    };
    for (name, layer) in layers() {
        add("layer_tar", name, layer);
    }
    let plain = lower_and_upper();
    add("layer_stream", "plain", plain.clone());
    add("layer_stream", "gzip", gzip(&plain));
    add(
        "layer_stream",
        "gzip-members",
        [gzip(&plain[..512]), gzip(&plain[512..])].concat(),
    );
    add("layer_stream", "zstd", zstd(&plain));
    for (name, document) in oci_documents() {
        add("oci_image", name, document);
    }
    add("archive_import", "oci-layout", oci_layout_archive());
    add("archive_import", "docker-save", docker_save_archive());
    for (name, yaml) in configs() {
        add("config", name, yaml.into_bytes());
    }
    add("uki_stub", "pe32-plus", pe_stub(PeStub::default()));
    add(
        "uki_stub",
        "pe32",
        pe_stub(PeStub {
            pe32: true,
            ..PeStub::default()
        }),
    );
    add(
        "uki_stub",
        "trailing-symbols",
        pe_stub(PeStub {
            trailing: 300,
            ..PeStub::default()
        }),
    );
    add(
        "uki_stub",
        "signed",
        pe_stub(PeStub {
            certificate: true,
            ..PeStub::default()
        }),
    );
    add("grub_core", "modules", grub_input(MODDEP));
    add("grub_core", "cycle", grub_input("a: b\nb: a\nnormal: a\n"));
    seeds
}

/// One tar entry, its name written verbatim so that hostile names reach
/// the parser as they are.
enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
    /// A PAX extended header (its records) for the entry after it.
    Pax(&'a [(&'a str, &'a [u8])]),
    /// A GNU long name for the entry after it.
    LongName(&'a str),
    /// A file whose header claims more bytes than follow.
    Short(&'a str, u64, &'a [u8]),
}

fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let (mut header, data) = match *entry {
            Entry::Dir(path) => (header(path, tar::EntryType::Directory, 0, ""), Vec::new()),
            Entry::File(path, data) => (
                header(path, tar::EntryType::Regular, data.len() as u64, ""),
                data.to_vec(),
            ),
            Entry::Symlink(path, target) => {
                (header(path, tar::EntryType::Symlink, 0, target), Vec::new())
            }
            Entry::HardLink(path, target) => {
                (header(path, tar::EntryType::Link, 0, target), Vec::new())
            }
            Entry::Char(path, major, minor) => {
                let mut header = header(path, tar::EntryType::Char, 0, "");
                header.set_device_major(major).expect("ustar has devices");
                header.set_device_minor(minor).expect("ustar has devices");
                (header, Vec::new())
            }
            Entry::Fifo(path) => (header(path, tar::EntryType::Fifo, 0, ""), Vec::new()),
            Entry::Pax(records) => {
                let data: Vec<u8> = records
                    .iter()
                    .flat_map(|(key, value)| pax_record(key, value))
                    .collect();
                let size = data.len() as u64;
                (header("PaxHeader", tar::EntryType::XHeader, size, ""), data)
            }
            Entry::LongName(name) => {
                let data = [name.as_bytes(), b"\0"].concat();
                let size = data.len() as u64;
                let kind = tar::EntryType::GNULongName;
                (header("././@LongLink", kind, size, ""), data)
            }
            Entry::Short(path, claimed, data) => (
                header(path, tar::EntryType::Regular, claimed, ""),
                data.to_vec(),
            ),
        };
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// A ustar header with `name` and `link` written verbatim (cut at 100
/// bytes), checksum not yet set.
fn header(name: &str, kind: tar::EntryType, size: u64, link: &str) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    let old = header.as_old_mut();
    let name = &name.as_bytes()[..name.len().min(100)];
    old.name[..name.len()].copy_from_slice(name);
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    let mode = match kind {
        tar::EntryType::Directory => 0o755,
        _ => 0o644,
    };
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_size(size);
    header
}

/// A PAX record, `LEN KEY=VALUE\n`, LEN counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + rest.to_string().len();
    if len.to_string().len() > rest.to_string().len() {
        len += 1;
    }
    [format!("{len} {key}=").as_bytes(), value, b"\n"].concat()
}

fn layers() -> Vec<(&'static str, Vec<u8>)> {
    use Entry::*;
    vec![
        (
            "every-kind",
            tar(&[
                Dir("bin/"),
                File("bin/sh", b"#!"),
                Symlink("bin/ash", "sh"),
                HardLink("bin/busybox", "bin/sh"),
                Char("dev/null", 1, 3),
                Fifo("run/fifo"),
                File("etc/passwd", b"root:x:0:0::/:/bin/sh\n"),
            ]),
        ),
        (
            "whiteouts",
            tar(&[
                File("etc/.wh.passwd", b""),
                File("opaque/.wh..wh..opq", b""),
                File("opaque/new", b"upper"),
                File(".wh..wh.plnk", b""),
                File("usr/lib/.wh.libc.so", b""),
            ]),
        ),
        (
            "escapes",
            tar(&[
                File("../../etc/escaped", b"x"),
                File("/abs/file", b"x"),
                File("root/etc/through-root", b"x"),
                File("up/through-up", b"x"),
                File("lib/../../../lib-up", b"x"),
                File("etc/dangling/created", b"x"),
                Dir("./"),
                File("a/./b//c", b"x"),
                File("loop/x", b"x"),
            ]),
        ),
        (
            "through-a-file",
            tar(&[Symlink("etc/passwd/x", "y")]),
        ),
        (
            "pax-and-long-names",
            tar(&[
                Pax(&[
                    ("path", b"pax/long/name/over/a/hundred/bytes/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                    ("uid", b"4294967295"),
                    ("gid", b"1000"),
                    ("mtime", b"-1.5"),
                    ("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02"),
                ]),
                File("ignored", b"pax"),
                LongName("gnu/long/name/over/a/hundred/bytes/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
                File("ignored", b"gnu"),
            ]),
        ),
        (
            "hard-links",
            tar(&[
                HardLink("etc/shadow", "etc/passwd"),
                HardLink("lib/libc.so.6", "lib/libc.so"),
                HardLink("root/etc/group", "up/etc/passwd"),
                HardLink("dir-link", "etc"),
            ]),
        ),
        ("missing-link", tar(&[HardLink("missing", "nowhere")])),
        ("short-file", tar(&[Short("big", 1 << 40, b"only this")])),
        ("lower-and-upper", lower_and_upper()),
    ]
}

fn lower_and_upper() -> Vec<u8> {
    use Entry::*;
    tar(&[
        Dir("etc/"),
        File("etc/hostname", b"fuzz\n"),
        Symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
        File("etc/.wh.hostname", b""),
    ])
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("writing to memory")
}

fn oci_documents() -> Vec<(&'static str, Vec<u8>)> {
    let label = r#"{"capabilities":["CAP_NET_ADMIN"],"binds":["/var:/var:rshared"],"rlimits":["nofile,1024,2048"],"mounts":[{"type":"tmpfs","destination":"/tmp"}]}"#;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/bin/sh"],
            "Cmd": null,
            "Env": ["PATH=/bin"],
            "WorkingDir": "/",
            "Labels": {"org.mobyproject.config": label},
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", hex(&Sha256::digest([0u8; 1024])))]},
    });
    let manifest = |media_type: &str, layer_type: &str| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "@config@", "size": 1},
            "layers": [{"mediaType": layer_type, "digest": "@layer@", "size": 1024}],
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "@manifest@", "size": 1,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "@manifest@", "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    });
    let join = |parts: &[&serde_json::Value]| {
        parts
            .iter()
            .map(|part| serde_json::to_string_pretty(part).expect("JSON values serialise"))
            .collect::<Vec<_>>()
            .join("\n----\n")
            .into_bytes()
    };
    let oci = manifest(
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.layer.v1.tar",
    );
    let docker = manifest(
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    );
    vec![
        ("oci-manifest", join(&[&config, &oci])),
        ("docker-manifest", join(&[&config, &docker])),
        ("index", join(&[&config, &oci, &index])),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// An archive of `files`, as `cache import` reads one.
fn archive(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, data.as_slice())
            .expect("writing to memory");
    }
    builder.into_inner().expect("writing to memory")
}

/// A one-layer image: its layer and config blobs.
fn image_blobs() -> (Vec<u8>, Vec<u8>) {
    let layer = tar(&[Entry::File("hello", b"hello\n")]);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256(&layer))]},
    });
    (
        layer,
        serde_json::to_vec(&config).expect("JSON values serialise"),
    )
}

fn oci_layout_archive() -> Vec<u8> {
    let (layer, config) = image_blobs();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{}", sha256(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": format!("sha256:{}", sha256(&layer)), "size": layer.len()}],
    }))
    .expect("JSON values serialise");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256(&manifest)),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "fuzz.invalid/hello:1"},
        }],
    }))
    .expect("JSON values serialise");
    let blob = |bytes: &[u8]| (format!("blobs/sha256/{}", sha256(bytes)), bytes.to_vec());
    archive(&[
        (
            "oci-layout".to_owned(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".to_owned(), index),
        blob(&manifest),
        blob(&config),
        blob(&layer),
    ])
}

fn docker_save_archive() -> Vec<u8> {
    let (layer, config) = image_blobs();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["fuzz.invalid/hello:1"],
        "Layers": ["layer/layer.tar"],
    }]))
    .expect("JSON values serialise");
    archive(&[
        ("manifest.json".to_owned(), manifest),
        ("config.json".to_owned(), config),
        ("layer/layer.tar".to_owned(), layer),
        ("layer/VERSION".to_owned(), b"1.0".to_vec()),
    ])
}

fn configs() -> Vec<(&'static str, String)> {
    let valid = [
        (
            "anchors-and-flow",
            include_str!("../../testdata/valid/anchors-and-flow.yml"),
        ),
        ("base", include_str!("../../testdata/valid/base.yml")),
        (
            "every-key",
            include_str!("../../testdata/valid/every-key.yml"),
        ),
        ("extra", include_str!("../../testdata/valid/extra.yml")),
    ];
    let mut configs: Vec<(&'static str, String)> = valid
        .iter()
        .map(|(name, text)| (*name, text.to_string()))
        .collect();
    configs.push(("merged", format!("{}\0{}", valid[1].1, valid[3].1)));
    configs.push((
        "label",
        "capabilities: [all]\nbinds: [\"/a:/b\"]\nrlimits: [\"nofile,1,2\"]\ndevices:\n  - path: /dev/null\n    type: c\n    major: 1\n    minor: 3\n    mode: \"0666\"\n".to_owned(),
    ));
    configs
}

/// The shape of a synthetic PE stub: one `.text` section after headers
/// with room for more.
#[derive(Default)]
struct PeStub {
    /// A PE32 optional header rather than PE32+.
    pe32: bool,
    /// Bytes after the last section, as a COFF symbol table would be.
    trailing: usize,
    /// A certificate table directory entry, as a signed stub has.
    certificate: bool,
}

fn pe_stub(shape: PeStub) -> Vec<u8> {
    const PE: usize = 0x80;
    const FILE_ALIGNMENT: usize = 0x200;
    let optional_len: usize = if shape.pe32 {
        96 + 16 * 8
    } else {
        112 + 16 * 8
    };
    let optional = PE + 24;
    let table = optional + optional_len;
    let mut stub = vec![0u8; 0x600];
    let put16 = |stub: &mut Vec<u8>, at: usize, value: u16| {
        stub[at..at + 2].copy_from_slice(&value.to_le_bytes())
    };
    let put32 = |stub: &mut Vec<u8>, at: usize, value: u32| {
        stub[at..at + 4].copy_from_slice(&value.to_le_bytes())
    };
    stub[..2].copy_from_slice(b"MZ");
    put32(&mut stub, 0x3C, PE as u32);
    stub[PE..PE + 4].copy_from_slice(b"PE\0\0");
    put16(&mut stub, PE + 4, 0x8664);
    put16(&mut stub, PE + 6, 1);
    put16(&mut stub, PE + 20, optional_len as u16);
    put16(&mut stub, optional, if shape.pe32 { 0x10B } else { 0x20B });
    put32(&mut stub, optional + 32, 0x1000);
    put32(&mut stub, optional + 36, FILE_ALIGNMENT as u32);
    put32(&mut stub, optional + 56, 0x2000);
    put32(&mut stub, optional + 60, 0x400);
    let directories = optional + if shape.pe32 { 96 } else { 112 };
    put32(&mut stub, directories - 4, 16);
    if shape.certificate {
        put32(&mut stub, directories + 4 * 8, 0x400);
        put32(&mut stub, directories + 4 * 8 + 4, 0x10);
    }
    stub[table..table + 5].copy_from_slice(b".text");
    put32(&mut stub, table + 8, 0x200);
    put32(&mut stub, table + 12, 0x1000);
    put32(&mut stub, table + 16, 0x200);
    put32(&mut stub, table + 20, 0x400);
    put32(&mut stub, table + 36, 0x6000_0020);
    let text = b"\xC3 stub text";
    stub[0x400..0x400 + text.len()].copy_from_slice(text);
    stub.resize(stub.len() + shape.trailing, 0xAA);
    stub
}

/// A `moddep.lst` naming the modules a core image embeds.
const MODDEP: &str = "normal: boot terminal crypto\nlinux: boot video relocator\nfat: fshelp\npart_msdos:\nbiosdisk:\nserial: terminfo\nterminfo:\nboot:\nterminal:\ncrypto:\nvideo:\nrelocator:\nfshelp:\n";

/// `moddep.lst`, a NUL byte and a synthetic ELF32 `kernel.img` with a
/// text and a data section at GRUB's link address.
fn grub_input(moddep: &str) -> Vec<u8> {
    const HEADER: usize = 0x34;
    const SECTION: usize = 0x28;
    let sections: [(u32, u32, u32, &[u8]); 3] = [
        (1, 2, 0x9000, b"kernel text"),
        (1, 3, 0x9010, b"data"),
        (8, 3, 0x9020, b""),
    ];
    let mut elf = vec![0u8; HEADER];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 1;
    elf[5] = 1;
    let mut headers = vec![0u8; SECTION];
    for (kind, flags, address, contents) in sections {
        let mut header = [0u8; SECTION];
        header[4..8].copy_from_slice(&kind.to_le_bytes());
        header[8..12].copy_from_slice(&flags.to_le_bytes());
        header[12..16].copy_from_slice(&address.to_le_bytes());
        header[16..20].copy_from_slice(&(elf.len() as u32).to_le_bytes());
        header[20..24].copy_from_slice(&(contents.len() as u32).to_le_bytes());
        headers.extend_from_slice(&header);
        elf.extend_from_slice(contents);
    }
    let table = elf.len() as u32;
    elf[0x20..0x24].copy_from_slice(&table.to_le_bytes());
    elf[0x2E..0x30].copy_from_slice(&(SECTION as u16).to_le_bytes());
    elf[0x30..0x32].copy_from_slice(&(sections.len() as u16 + 1).to_le_bytes());
    elf.extend_from_slice(&headers);
    [moddep.as_bytes(), b"\0", &elf].concat()
}
