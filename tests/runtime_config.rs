//! `config.json` and `runtime.json` against outputs derived by hand from
//! LinuxKit's `ConfigToOCI` and `ImageBundle`: one fixture per rule under
//! `testdata/runtime-config/<rule>/`.
//!
//! A fixture holds `image.yml`, a container entry, and optionally
//! `label.yml` (the image's `org.mobyproject.config` label),
//! `image-config.json` (the image config's `config` object) and
//! `shared-root` (the directory of an earlier container with the same
//! image). It expects either `config.json` and `runtime.json`, byte for
//! byte, or `error.txt`, the error's message.
//!
//! The entry is the first onboot container (`containers/onboot/000-NAME`)
//! of a system that also has, in order, onboot `dhcpcd`, onshutdown
//! `shutdown`, and services `sshd` and `dhcpcd`; so the entry's own name is
//! id 100, `shutdown` 102, `sshd` 103 and `dhcpcd` 104 (its later number).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use ossify::assemble::ids::IdMap;
use ossify::assemble::runtime_config::{BundleLocation, ImageConfig, LABEL, runtime_config};
use ossify::config::{self, ContainerSettings, Image, Source};

const FIXTURES: &str = "testdata/runtime-config";

const OTHER_CONTAINERS: &str = "
  - name: dhcpcd
    image: linuxkit/dhcpcd:v1
onshutdown:
  - name: shutdown
    image: linuxkit/shutdown:v1
services:
  - name: sshd
    image: linuxkit/sshd:v1
  - name: dhcpcd
    image: linuxkit/dhcpcd:v1
";

/// What a fixture produces: both files, or the error message.
fn generate(dir: &Path) -> Result<(String, String), String> {
    let entry = fs::read_to_string(dir.join("image.yml")).unwrap();
    let mut text = String::from("onboot:\n");
    for (i, line) in entry.lines().enumerate() {
        text += if i == 0 { "  - " } else { "    " };
        text += line;
        text += "\n";
    }
    text += OTHER_CONTAINERS;
    let source = Source {
        path: dir.join("image.yml"),
        text,
    };
    let config = config::load(&[source])
        .unwrap_or_else(|problems| panic!("{}: {problems}", dir.display()))
        .config;
    let ids = IdMap::allocate(&config);

    let mut image: ImageConfig = match fs::read_to_string(dir.join("image-config.json")) {
        Ok(json) => serde_json::from_str(&json).unwrap(),
        Err(_) => ImageConfig::default(),
    };
    if let Ok(label) = fs::read_to_string(dir.join("label.yml")) {
        image.labels.insert(LABEL.into(), label);
    }
    let container = &config.onboot[0];
    let path = format!("containers/onboot/000-{}", container.name);
    let shared_root = fs::read_to_string(dir.join("shared-root")).ok();
    let location = BundleLocation {
        path: &path,
        shared_root: shared_root.as_deref().map(str::trim),
    };
    let generated =
        runtime_config(container, &image, &ids, location).map_err(|error| error.to_string())?;
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    Ok((
        text(generated.config_json()),
        text(generated.runtime_json()),
    ))
}

#[test]
fn fixtures_match_linuxkit() {
    let mut dirs: Vec<_> = fs::read_dir(FIXTURES)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    for dir in &dirs {
        let expected = |name: &str| fs::read_to_string(dir.join(name)).ok();
        let outcome = generate(dir);
        let matches = match (&outcome, expected("error.txt")) {
            (Err(error), Some(expected)) => error == expected.trim_end(),
            (Ok((config, runtime)), None) => {
                expected("config.json").as_ref() == Some(config)
                    && expected("runtime.json").as_ref() == Some(runtime)
            }
            _ => false,
        };
        if !matches {
            failures.push(format!("{}:\n{outcome:#?}", dir.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(dirs.len() >= 20, "fixtures missing under {FIXTURES}");
}

/// The checks the schema already makes when a configuration is loaded,
/// made again on settings that bypass it.
#[test]
fn errors_name_the_container_and_what_is_wrong() {
    let cases: [(ContainerSettings, &str); 6] = [
        (
            ContainerSettings {
                capabilities: Some(vec!["CAP_SYS_ADMIN".into(), "cap_chown".into()]),
                ..Default::default()
            },
            "container `web`: unknown capability `cap_chown`",
        ),
        (
            ContainerSettings {
                rlimits: Some(vec!["nofile,1024".into()]),
                ..Default::default()
            },
            "container `web`: cannot parse rlimit `nofile,1024`: expected `name,soft,hard`",
        ),
        (
            ContainerSettings {
                rlimits: Some(vec!["nofile,lots,4096".into()]),
                ..Default::default()
            },
            "container `web`: cannot parse `lots` as a limit: expected a number or `unlimited`",
        ),
        (
            ContainerSettings {
                rlimits: Some(vec!["files,1,2".into()]),
                ..Default::default()
            },
            "container `web`: unknown rlimit `RLIMIT_FILES`",
        ),
        (
            ContainerSettings {
                tmpfs: Some(vec!["/run:size=1m:x".into()]),
                ..Default::default()
            },
            "container `web`: cannot parse tmpfs `/run:size=1m:x`: too many ':'",
        ),
        (
            ContainerSettings {
                binds: Some(vec!["/var".into()]),
                ..Default::default()
            },
            "container `web`: cannot parse bind `/var`: expected `source:destination[:options]`",
        ),
    ];
    for (settings, expected) in cases {
        let container = Image {
            name: "web".into(),
            image: "nginx".into(),
            settings,
        };
        let location = BundleLocation {
            path: "containers/services/web",
            shared_root: None,
        };
        let error = runtime_config(
            &container,
            &ImageConfig::default(),
            &IdMap::default(),
            location,
        )
        .unwrap_err();
        assert_eq!(error.to_string(), expected);
        assert_eq!(error.container, "web");
    }
}

/// The bundle of a readonly container runs under runc, as LinuxKit's init
/// runs it (`runc run --no-pivot`, the root being an initramfs). Needs
/// root, `runc` and a static busybox (Debian: `runc`, `busybox-static`),
/// and fails saying which is missing.
#[test]
#[ignore = "heavy: needs root, runc and busybox-static (scripts/test.sh as root)"]
fn runc_runs_a_readonly_bundle() {
    let busybox = Path::new("/bin/busybox");
    // /proc/self belongs to the effective user.
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    assert!(root, "runc needs root: run scripts/test.sh as root");
    assert!(
        busybox.exists(),
        "{} is missing: install busybox-static",
        busybox.display()
    );
    assert!(
        Command::new("runc").arg("--version").output().is_ok(),
        "cannot run runc: install runc"
    );
    let bundle = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    for dir in ["bin", "dev", "proc", "sys", "etc"] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let container = Image {
        name: "hello".into(),
        image: "example/hello:v1".into(),
        settings: ContainerSettings {
            readonly: Some(true),
            command: Some(vec![
                "/bin/busybox".into(),
                "sh".into(),
                "-c".into(),
                "echo pid $$ uid $(/bin/busybox id -u); \
                 /bin/busybox touch /written 2>/dev/null || echo read-only; \
                 /bin/busybox grep CapEff /proc/self/status"
                    .into(),
            ]),
            ..Default::default()
        },
    };
    let location = BundleLocation {
        path: "containers/onboot/000-hello",
        shared_root: None,
    };
    let generated = runtime_config(
        &container,
        &ImageConfig::default(),
        &IdMap::default(),
        location,
    )
    .unwrap();
    fs::write(bundle.path().join("config.json"), generated.config_json()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let id = format!("ossify-test-{}", std::process::id());
    let output = Command::new("runc")
        .arg("--root")
        .arg(state.path())
        .args(["run", "--no-pivot", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "runc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "pid 1 uid 0\nread-only\nCapEff:\t0000000000000000\n",
        "a new pid namespace, a read-only root and no capabilities"
    );
}
