//! Loading and merging configurations through the library API.

use std::path::Path;

use ossify::config::{self, Config, Id, Source};

fn load(paths: &[&str]) -> Config {
    let sources: Vec<Source> = paths
        .iter()
        .map(|p| Source::read(Path::new(p)).unwrap())
        .collect();
    config::load(&sources)
        .unwrap_or_else(|p| panic!("{p}"))
        .config
}

fn load_text(text: &str) -> Result<Config, config::Problems> {
    let source = Source {
        path: "inline.yml".into(),
        text: text.to_owned(),
    };
    config::load(&[source]).map(|l| l.config)
}

#[test]
fn later_files_merge_as_linuxkit_append_config() {
    let config = load(&["testdata/valid/base.yml", "testdata/valid/extra.yml"]);
    let kernel = config.kernel.as_ref().unwrap();
    assert_eq!(kernel.image.as_deref(), Some("linuxkit/kernel:6.6.13"));
    // An empty cmdline does not override; an empty ucode does, because
    // LinuxKit keeps tar and ucode as pointers.
    assert_eq!(kernel.cmdline.as_deref(), Some("console=ttyS0"));
    assert_eq!(kernel.tar.as_deref(), Some("none"));
    assert_eq!(kernel.ucode.as_deref(), Some(""));
    assert_eq!(config.init.len(), 1);
    // onboot names may repeat: they run one after another.
    let onboot: Vec<&str> = config.onboot.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(onboot, ["sysctl", "sysctl"]);
    assert_eq!(config.services[0].position.line, 13);
    assert!(config.services[0].position.file.ends_with("extra.yml"));
}

#[test]
fn merge_keys_and_aliases_fill_entries_and_explicit_keys_win() {
    let config = load(&["testdata/valid/anchors-and-flow.yml"]);
    let sshd = &config.services[1];
    assert_eq!(sshd.name, "sshd");
    assert_eq!(sshd.image, "linuxkit/sshd:v1.0.0");
    assert_eq!(sshd.settings.net.as_deref(), Some("new"));
    assert_eq!(
        sshd.settings.capabilities.as_deref(),
        Some(&["CAP_NET_ADMIN".to_owned(), "CAP_NET_RAW".to_owned()][..])
    );
    assert_eq!(sshd.settings.command.as_ref().unwrap()[0], "/usr/sbin/sshd");
    assert_eq!(
        config.services[2].settings.capabilities,
        sshd.settings.capabilities
    );
}

#[test]
fn every_key_is_decoded_into_its_field() {
    let config = load(&["testdata/valid/every-key.yml"]);
    let kernel = config.kernel.as_ref().unwrap();
    assert_eq!(kernel.binary.as_deref(), Some("bzImage"));
    assert_eq!(kernel.ucode.as_deref(), Some("intel-ucode.cpio"));
    let every = &config.onboot[1].settings;
    assert_eq!(every.uid, Some(Id::Number(1000)));
    assert_eq!(every.gid, Some(Id::Name("staff".into())));
    assert_eq!(
        every.additional_gids,
        Some(vec![Id::Number(10), Id::Name("wheel".into())])
    );
    assert_eq!(every.oom_score_adj, Some(-500));
    assert_eq!(every.readonly, Some(true));
    assert_eq!(
        every.mounts.as_ref().unwrap()[1].uidmappings[0].host_id,
        1000
    );
    assert_eq!(
        every.devices.as_ref().unwrap()[1].mode.as_deref(),
        Some("0666")
    );
    assert_eq!(every.uid_mappings.as_ref().unwrap()[0].size, 65536);
    assert_eq!(every.resources.as_ref().unwrap()["memory"]["kernelTCP"], 0);
    assert_eq!(every.sysctl.as_ref().unwrap()["net.ipv4.ip_forward"], "1");
    let runtime = every.runtime.as_ref().unwrap();
    assert_eq!(runtime.bind_ns.as_ref().unwrap()["net"], "/run/netns/n");
    assert_eq!(
        runtime.interfaces.as_ref().unwrap()[0].peer,
        "veth-everything"
    );
    let getty = &config.services[0].settings;
    assert_eq!(getty.capabilities_add.as_ref().unwrap(), &["CAP_SYS_TIME"]);
    assert_eq!(
        getty.binds_add.as_ref().unwrap(),
        &["/etc/getty.shadow:/etc/shadow"]
    );
    assert_eq!(config.files.len(), 6);
    assert_eq!(config.files[3].mode.as_deref(), Some("0755"));
    assert!(config.files[3].directory);
    assert_eq!(config.volumes[0].platforms.as_ref().unwrap().len(), 2);
    assert_eq!(
        config.boot.as_ref().unwrap().image,
        "localhost:5000/ossify/boot:debian12"
    );
}

#[test]
fn an_explicit_empty_list_differs_from_an_absent_one() {
    let config = load_text(
        "onboot:\n  - name: a\n    image: a:1\n    capabilities: []\n  - name: b\n    image: b:1\n",
    )
    .unwrap();
    assert_eq!(config.onboot[0].settings.capabilities, Some(vec![]));
    assert_eq!(config.onboot[1].settings.capabilities, None);
}

#[test]
fn problems_are_collected_across_sections_and_files() {
    let problems =
        load_text("kernel:\n  image: 3\nonboot:\n  - name: a\n  - image: b:1\nbogus: 1\n")
            .unwrap_err();
    let lines: Vec<u64> = problems.0.iter().map(|p| p.position.line).collect();
    assert_eq!(lines, [2, 4, 5, 6], "{problems}");
    assert!(problems.to_string().starts_with("inline.yml:2:"));
}

#[test]
fn an_empty_file_is_an_empty_config() {
    assert_eq!(load_text("").unwrap(), Config::default());
    assert_eq!(load_text("# only a comment\n").unwrap(), Config::default());
}

#[test]
fn a_config_file_may_hold_up_to_16_mib() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yml");
    let mut text = vec![b'#'; config::MAX_CONFIG_SIZE as usize];
    text[config::MAX_CONFIG_SIZE as usize - 1] = b'\n';
    std::fs::write(&path, &text).unwrap();
    let source = Source::read(&path).unwrap();
    assert_eq!(source.text.len() as u64, config::MAX_CONFIG_SIZE);
    text.push(b'\n');
    std::fs::write(&path, &text).unwrap();
    assert!(matches!(
        Source::read(&path),
        Err(config::ReadError::TooLarge)
    ));
}

/// A bind source that is not an absolute path names a volume: it must be
/// declared (in any of the merged files), and a read-only volume must be
/// bound read-only, as LinuxKit's build requires.
#[test]
fn binds_of_volumes_must_name_declared_volumes_and_respect_readonly() {
    let config = |binds: &str, mounts: &str| {
        format!(
            "services:\n  - name: web\n    image: nginx:1\n    binds: [{binds}]\n    mounts: [{mounts}]\n\
             volumes:\n  - name: data\n  - name: certs\n    readonly: true\n"
        )
    };
    let fine = config(
        "\"data:/data\", \"certs:/certs:ro\", \"/etc/resolv.conf:/etc/resolv.conf\"",
        "{type: bind, source: certs, destination: /c, options: [rbind, ro]}",
    );
    load_text(&fine).unwrap_or_else(|p| panic!("{p}"));
    for (binds, mounts, says) in [
        (
            "\"logs:/logs\"",
            "",
            "bind `logs:/logs` names no volume `logs`",
        ),
        (
            "\"certs:/certs\"",
            "",
            "bind `certs:/certs` writes into volume `certs`",
        ),
        ("\"certs:/certs:rw\"", "", "writes into volume `certs`"),
        (
            "",
            "{type: bind, source: certs, destination: /c, options: [rw, ro]}",
            "mount of `certs` at `/c` writes into volume `certs`",
        ),
        (
            "",
            "{type: bind, source: cache, destination: /c}",
            "names no volume `cache`",
        ),
    ] {
        let problems = load_text(&config(binds, mounts)).unwrap_err();
        assert_eq!(problems.0.len(), 1, "{problems}");
        let text = problems.to_string();
        assert!(
            text.starts_with("inline.yml:2:5: services[0] (web): "),
            "{text}"
        );
        assert!(text.contains(says), "{text}");
    }
}
