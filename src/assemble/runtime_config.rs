//! A container's `config.json` and `runtime.json`, as LinuxKit's
//! `ConfigToOCI` and `ImageBundle` write them.
//!
//! Each setting comes from the first of these that has it: the YAML entry,
//! the image's `org.mobyproject.config` label, the image config (command,
//! environment, working directory only), LinuxKit's default. A list written
//! empty in the YAML counts as written, so `capabilities: []` clears the
//! label's capabilities.
//!
//! LinuxKit's quirks are kept where a built image depends on them (a
//! label's `capabilities.add` is ignored, `ipc: none` is a namespace path,
//! the image config's `User` is not read). Three are fixed on purpose:
//! `uidMappings` and `gidMappings` keep their `hostID` and `containerID`
//! (LinuxKit's YAML decoder drops them), a hugepage limit's `pageSize` is
//! written as the string the runtime spec wants, and errors name the
//! offending rlimit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::ids::{IdMap, UnknownId};
use super::oci;
use crate::config::{self, ContainerSettings, Image, Problems, Source, rules};

/// The image label that holds a container's settings.
pub const LABEL: &str = "org.mobyproject.config";

/// The part of an OCI image config LinuxKit reads; deserialises from the
/// image config's `config` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub entrypoint: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cmd: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    pub working_dir: String,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// Image configs write `null` for an empty list.
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

/// Where a container's bundle is in the root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLocation<'a> {
    /// Such as `containers/onboot/000-name`, without a leading `/`.
    pub path: &'a str,
    /// The directory holding this container's image when an earlier
    /// container already has it: LinuxKit extracts each image once.
    pub shared_root: Option<&'a str>,
}

/// The bundle files of one container.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    pub spec: oci::Spec,
    pub runtime: oci::Runtime,
    /// Where the container's image is: the `shared_root`, or else
    /// `rootfs/` (readonly) or `lower/` (under an overlay) in the bundle,
    /// which is where the image is to be extracted.
    pub image_root: String,
}

impl RuntimeConfig {
    /// `config.json`, as LinuxKit writes it.
    pub fn config_json(&self) -> Vec<u8> {
        super::go_json::to_vec_indent(&self.spec)
    }

    /// `runtime.json`, as LinuxKit writes it.
    pub fn runtime_json(&self) -> Vec<u8> {
        super::go_json::to_vec_indent(&self.runtime)
    }
}

/// A container whose bundle cannot be written, and why.
#[derive(Debug, thiserror::Error)]
#[error("container `{container}`: {reason}")]
pub struct Error {
    pub container: String,
    pub reason: Reason,
}

/// What is wrong with a container's settings.
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    #[error("invalid {LABEL} label:\n{0}")]
    Label(Problems),
    #[error("unknown capability `{0}`")]
    UnknownCapability(String),
    #[error("cannot parse rlimit `{0}`: expected `name,soft,hard`")]
    Rlimit(String),
    #[error("cannot parse `{0}` as a limit: expected a number or `unlimited`")]
    RlimitValue(String),
    #[error("unknown rlimit `{0}`")]
    UnknownRlimit(String),
    #[error("cannot parse tmpfs `{0}`: too many ':'")]
    Tmpfs(String),
    #[error("cannot parse bind `{0}`: expected `source:destination[:options]`")]
    Bind(String),
    #[error("mount for destination `{0}` is missing type")]
    MountType(String),
    #[error("mount of type `{0}` is missing destination")]
    MountDestination(String),
    #[error("cannot parse mode `{mode}` of device `{path}` as an octal value")]
    DeviceMode { path: String, mode: String },
    #[error(transparent)]
    UnknownId(#[from] UnknownId),
    #[error("invalid resources: {0}")]
    Resources(serde_json::Error),
}

/// Builds the bundle files of `container`, run from an image with config
/// `image`, at `location`; `ids` numbers named users and groups.
pub fn runtime_config(
    container: &Image,
    image: &ImageConfig,
    ids: &IdMap,
    location: BundleLocation<'_>,
) -> Result<RuntimeConfig, Error> {
    let error = |reason| Error {
        container: container.name.clone(),
        reason,
    };
    let label = match image.labels.get(LABEL).filter(|text| !text.is_empty()) {
        Some(text) => config::load_label(&Source {
            path: PathBuf::from(format!("{} label {LABEL}", container.image)),
            text: text.clone(),
        })
        .map_err(|problems| error(Reason::Label(problems)))?,
        None => ContainerSettings::default(),
    };
    let layers = Layers {
        yaml: Some(&container.settings),
        label: Some(&label),
    };
    let spec = spec(&layers, image, ids).map_err(error)?;
    let image_root = image_root(spec.root.readonly, location);
    let mut runtime = runtime(&layers.runtime());
    runtime.mounts.splice(
        0..0,
        rootfs_mounts(spec.root.readonly, location.path, &image_root),
    );
    Ok(RuntimeConfig {
        spec,
        runtime,
        image_root,
    })
}

/// The YAML's settings over the label's: LinuxKit's `assign*` helpers.
struct Layers<'a, S> {
    yaml: Option<&'a S>,
    label: Option<&'a S>,
}

impl<'a, S> Layers<'a, S> {
    /// The YAML's value if it has one, else the label's.
    fn pick<T: ?Sized>(&self, field: fn(&S) -> Option<&T>) -> Option<&'a T> {
        self.yaml
            .and_then(field)
            .or_else(|| self.label.and_then(field))
    }

    /// The same for the settings LinuxKit keeps as plain strings, where
    /// empty means not set.
    fn pick_text(&self, field: fn(&S) -> Option<&String>) -> Option<&'a str> {
        [self.yaml, self.label]
            .into_iter()
            .flatten()
            .filter_map(field)
            .find(|text| !text.is_empty())
            .map(String::as_str)
    }

    /// A list with a `.add` companion: the YAML's list replaces everything;
    /// otherwise the label's list (its `.add` is ignored) is followed by
    /// the YAML's additions.
    fn with_additions(
        &self,
        list: fn(&S) -> Option<&Vec<String>>,
        additions: fn(&S) -> Option<&Vec<String>>,
    ) -> Vec<String> {
        match self.yaml.and_then(list) {
            Some(list) => list.clone(),
            None => [self.label.and_then(list), self.yaml.and_then(additions)]
                .into_iter()
                .flatten()
                .flatten()
                .cloned()
                .collect(),
        }
    }

    fn list<T: Clone>(&self, field: fn(&S) -> Option<&Vec<T>>) -> Vec<T> {
        self.pick(field).cloned().unwrap_or_default()
    }

    fn map(&self, field: fn(&S) -> Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
        self.pick(field).cloned().unwrap_or_default()
    }

    fn flag(&self, field: fn(&S) -> Option<&bool>) -> bool {
        self.pick(field).copied().unwrap_or(false)
    }
}

impl<'a> Layers<'a, ContainerSettings> {
    fn runtime(&self) -> Layers<'a, config::Runtime> {
        Layers {
            yaml: self.yaml.and_then(|s| s.runtime.as_ref()),
            label: self.label.and_then(|s| s.runtime.as_ref()),
        }
    }
}

type Settings<'a> = Layers<'a, ContainerSettings>;

fn spec(layers: &Settings<'_>, image: &ImageConfig, ids: &IdMap) -> Result<oci::Spec, Reason> {
    let readonly = layers.flag(|s| s.readonly.as_ref());
    let args = layers
        .pick(|s| s.command.as_ref())
        .cloned()
        .unwrap_or_else(|| [image.entrypoint.as_slice(), &image.cmd].concat());
    let env = layers
        .pick(|s| s.env.as_ref())
        .cloned()
        .unwrap_or_else(|| image.env.clone());
    let cwd = layers
        .pick_text(|s| s.cwd.as_ref())
        .or(Some(image.working_dir.as_str()).filter(|dir| !dir.is_empty()))
        .unwrap_or("/");
    let user = oci::User {
        uid: layers
            .pick(|s| s.uid.as_ref())
            .map_or(Ok(0), |id| ids.numeric(id))?,
        gid: layers
            .pick(|s| s.gid.as_ref())
            .map_or(Ok(0), |id| ids.numeric(id))?,
        additional_gids: layers
            .list(|s| s.additional_gids.as_ref())
            .iter()
            .map(|id| ids.numeric(id))
            .collect::<Result<_, _>>()?,
    };
    let mut resources = match layers.pick(|s| s.resources.as_ref()) {
        Some(value) => serde_json::from_value(value.clone()).map_err(Reason::Resources)?,
        None => oci::Resources::default(),
    };
    let devices = devices(&layers.list(|s| s.devices.as_ref()), &mut resources)?;
    Ok(oci::Spec {
        oci_version: oci::OCI_VERSION,
        process: oci::Process {
            user,
            args,
            env,
            cwd: cwd.to_owned(),
            capabilities: capabilities(layers)?,
            rlimits: rlimits(&layers.list(|s| s.rlimits.as_ref()))?,
            no_new_privileges: layers.flag(|s| s.no_new_privileges.as_ref()),
            oom_score_adj: layers.pick(|s| s.oom_score_adj.as_ref()).copied(),
        },
        root: oci::Root {
            path: "rootfs",
            readonly,
        },
        hostname: layers
            .pick_text(|s| s.hostname.as_ref())
            .unwrap_or_default()
            .to_owned(),
        mounts: mounts(layers, readonly)?,
        annotations: layers.map(|s| s.annotations.as_ref()),
        linux: oci::Linux {
            uid_mappings: id_mappings(layers.list(|s| s.uid_mappings.as_ref())),
            gid_mappings: id_mappings(layers.list(|s| s.gid_mappings.as_ref())),
            sysctl: layers.map(|s| s.sysctl.as_ref()),
            resources,
            cgroups_path: layers
                .pick(|s| s.cgroups_path.as_ref())
                .cloned()
                .unwrap_or_default(),
            namespaces: namespaces(layers),
            devices,
            rootfs_propagation: layers
                .pick(|s| s.rootfs_propagation.as_ref())
                .cloned()
                .unwrap_or_default(),
            masked_paths: layers.list(|s| s.masked_paths.as_ref()),
            readonly_paths: layers.list(|s| s.readonly_paths.as_ref()),
        },
    })
}

/// `capabilities` are the effective set, in their order; the bounding,
/// inheritable and permitted sets are those plus `ambient`, sorted.
fn capabilities(layers: &Settings<'_>) -> Result<oci::Capabilities, Reason> {
    let effective = capability_names(
        layers.with_additions(|s| s.capabilities.as_ref(), |s| s.capabilities_add.as_ref()),
    )?;
    let ambient = capability_names(layers.list(|s| s.ambient.as_ref()))?;
    let all: Vec<String> = effective
        .iter()
        .chain(&ambient)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(oci::Capabilities {
        bounding: all.clone(),
        effective,
        inheritable: all.clone(),
        permitted: all,
        ambient,
    })
}

/// Checks capability names, expanding a lone `all` or `none`.
fn capability_names(names: Vec<String>) -> Result<Vec<String>, Reason> {
    if let [name] = names.as_slice() {
        if name.eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        if name.eq_ignore_ascii_case("all") {
            return Ok(rules::CAPABILITIES.iter().map(|c| c.to_string()).collect());
        }
    }
    match names
        .iter()
        .find(|n| !rules::CAPABILITIES.contains(&n.as_str()))
    {
        Some(unknown) => Err(Reason::UnknownCapability(unknown.clone())),
        None => Ok(names),
    }
}

/// Parses `name,soft,hard` entries; the name may lack `RLIMIT_` and be in
/// any case, a limit may be `unlimited`.
fn rlimits(entries: &[String]) -> Result<Vec<oci::Rlimit>, Reason> {
    entries
        .iter()
        .map(|entry| {
            let parts: Vec<&str> = entry.splitn(3, ',').collect();
            let [name, soft, hard] = parts[..] else {
                return Err(Reason::Rlimit(entry.clone()));
            };
            let name = name.trim().to_uppercase();
            let kind = if name.starts_with("RLIMIT_") {
                name
            } else {
                format!("RLIMIT_{name}")
            };
            if !rules::RLIMITS.contains(&kind.as_str()) {
                return Err(Reason::UnknownRlimit(kind));
            }
            Ok(oci::Rlimit {
                hard: limit(hard)?,
                soft: limit(soft)?,
                kind,
            })
        })
        .collect()
}

fn limit(text: &str) -> Result<u64, Reason> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(u64::MAX);
    }
    text.parse()
        .map_err(|_| Reason::RlimitValue(text.to_owned()))
}

/// LinuxKit's mounts, as Docker's but without `/dev/shm` and `/dev/mqueue`:
/// destination, type (also the source) and options.
const DEFAULT_MOUNTS: &[(&str, &str, &[&str])] = &[
    ("/proc", "proc", &["nosuid", "nodev", "noexec", "relatime"]),
    (
        "/dev",
        "tmpfs",
        &["nosuid", "strictatime", "mode=755", "size=65536k"],
    ),
    (
        "/dev/pts",
        "devpts",
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ],
    ),
    ("/sys", "sysfs", &["nosuid", "noexec", "nodev"]),
    (
        "/sys/fs/cgroup",
        "cgroup",
        &["nosuid", "noexec", "nodev", "relatime", "ro"],
    ),
];

/// The default mounts, overridden by destination with `tmpfs`, then
/// `binds`, then `mounts`, and sorted by destination so that a mount comes
/// before the mounts inside it.
fn mounts(layers: &Settings<'_>, readonly: bool) -> Result<Vec<oci::Mount>, Reason> {
    let mut by_destination = BTreeMap::new();
    let mut add = |destination: &str, kind: &str, source: &str, options: Vec<String>| {
        let mount = oci::Mount {
            destination: destination.to_owned(),
            kind: kind.to_owned(),
            source: source.to_owned(),
            options,
            ..oci::Mount::default()
        };
        by_destination.insert(mount.destination.clone(), mount);
    };
    for &(destination, kind, options) in DEFAULT_MOUNTS {
        let mut options = strings(options);
        if readonly && (destination == "/dev" || destination == "/sys") {
            options.push("ro".into());
        }
        add(destination, kind, kind, options);
    }
    for tmpfs in layers.list(|s| s.tmpfs.as_ref()) {
        let (destination, options) = match tmpfs.split(':').collect::<Vec<_>>()[..] {
            [destination] => (destination, Vec::new()),
            [destination, options] => (destination, split_options(options)),
            _ => return Err(Reason::Tmpfs(tmpfs)),
        };
        add(destination, "tmpfs", "tmpfs", options);
    }
    for bind in layers.with_additions(|s| s.binds.as_ref(), |s| s.binds_add.as_ref()) {
        let (source, destination, options) = match bind.split(':').collect::<Vec<_>>()[..] {
            [source, destination] => (source, destination, strings(&["rw", "rbind", "rshared"])),
            [source, destination, options] => {
                let mut options = split_options(options);
                options.push("rbind".into());
                (source, destination, options)
            }
            _ => return Err(Reason::Bind(bind)),
        };
        add(destination, "bind", source, options);
    }
    for mount in layers.list(|s| s.mounts.as_ref()) {
        let kind = match (mount.kind.as_str(), mount.source.as_str()) {
            ("", source @ ("mqueue" | "devpts" | "proc" | "sysfs" | "cgroup")) => source,
            ("", _) if mount.destination == "/dev" => "tmpfs",
            ("", _) => return Err(Reason::MountType(mount.destination)),
            (kind, _) => kind,
        };
        let source = if mount.source.is_empty() {
            kind
        } else {
            &mount.source
        };
        let destination = match mount.destination.as_str() {
            "" => default_mountpoint(kind).ok_or_else(|| Reason::MountDestination(kind.into()))?,
            destination => destination,
        };
        add(destination, kind, source, mount.options.clone());
    }
    Ok(by_destination.into_values().collect())
}

/// Where a filesystem of type `kind` is mounted when no destination is given.
fn default_mountpoint(kind: &str) -> Option<&'static str> {
    match kind {
        "proc" => Some("/proc"),
        "devpts" => Some("/dev/pts"),
        "sysfs" => Some("/sys"),
        "cgroup" => Some("/sys/fs/cgroup"),
        "mqueue" => Some("/dev/mqueue"),
        _ => None,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn split_options(options: &str) -> Vec<String> {
    options.split(',').map(str::to_owned).collect()
}

/// The namespaces the container gets, in LinuxKit's order. `host` or
/// `root` shares the host's; `new` (and, for the network, `none`) makes a
/// new one; anything else is the path of one to join. By default only the
/// pid namespace is new; the mount namespace always is.
fn namespaces(layers: &Settings<'_>) -> Vec<oci::Namespace> {
    let setting = |field: fn(&ContainerSettings) -> Option<&String>| {
        layers.pick_text(field).unwrap_or("root")
    };
    let requested = [
        ("network", setting(|s| s.net.as_ref()), &["new", "none"][..]),
        ("ipc", setting(|s| s.ipc.as_ref()), &["new"]),
        ("uts", setting(|s| s.uts.as_ref()), &["new"]),
        (
            "pid",
            layers.pick_text(|s| s.pid.as_ref()).unwrap_or("new"),
            &["new"],
        ),
        ("user", setting(|s| s.userns.as_ref()), &["new"]),
        ("mount", "new", &["new"]),
    ];
    requested
        .into_iter()
        .filter(|(_, value, _)| !matches!(*value, "host" | "root"))
        .map(|(kind, value, new)| oci::Namespace {
            kind,
            path: if new.contains(&value) {
                String::new()
            } else {
                value.to_owned()
            },
        })
        .collect()
}

/// Device nodes to create, each also allowed in the devices cgroup after
/// the configuration's own rules; `path: all` only allows a whole type.
fn devices(
    devices: &[config::Device],
    resources: &mut oci::Resources,
) -> Result<Vec<oci::Device>, Reason> {
    let mut nodes = Vec::new();
    for device in devices {
        if device.path == "all" {
            resources.devices.push(oci::DeviceRule {
                allow: true,
                kind: device.kind.clone(),
                access: "rwm".into(),
                ..oci::DeviceRule::default()
            });
            continue;
        }
        let mode = device.mode.as_deref().unwrap_or_default();
        // Go's ParseInt(mode, 8, 32), whose result os.FileMode wraps.
        let file_mode = i32::from_str_radix(mode, 8).map_err(|_| Reason::DeviceMode {
            path: device.path.clone(),
            mode: mode.to_owned(),
        })? as u32;
        resources.devices.push(oci::DeviceRule {
            allow: true,
            kind: device.kind.clone(),
            major: Some(device.major),
            minor: Some(device.minor),
            access: "rwm".into(),
        });
        nodes.push(oci::Device {
            path: device.path.clone(),
            kind: device.kind.clone(),
            major: device.major,
            minor: device.minor,
            file_mode,
        });
    }
    Ok(nodes)
}

/// LinuxKit drops `hostID` and `containerID` here (yaml.v3 looks for the
/// lowercased Go names); ossify keeps what the schema documents.
fn id_mappings(mappings: Vec<config::IdMapping>) -> Vec<oci::IdMapping> {
    mappings
        .into_iter()
        .map(|m| oci::IdMapping {
            container_id: m.container_id as u32,
            host_id: m.host_id as u32,
            size: m.size as u32,
        })
        .collect()
}

/// `runtime.json` without the bundle's root mounts: each setting, and each
/// of `bindNS`, from the YAML, else the label, else empty.
fn runtime(layers: &Layers<'_, config::Runtime>) -> oci::Runtime {
    let bind = |namespace: &str| {
        [layers.yaml, layers.label]
            .into_iter()
            .flatten()
            .find_map(|runtime| runtime.bind_ns.as_ref()?.get(namespace))
            .cloned()
            .unwrap_or_default()
    };
    oci::Runtime {
        cgroups: layers.list(|r| r.cgroups.as_ref()),
        mounts: layers
            .list(|r| r.mounts.as_ref())
            .into_iter()
            .map(|mount| oci::Mount {
                destination: mount.destination,
                kind: mount.kind,
                source: mount.source,
                options: mount.options,
                uid_mappings: id_mappings(mount.uidmappings),
                gid_mappings: id_mappings(mount.gidmappings),
            })
            .collect(),
        mkdir: layers.list(|r| r.mkdir.as_ref()),
        interfaces: layers.list(|r| r.interfaces.as_ref()),
        bind_ns: oci::BindNamespaces {
            cgroup: bind("cgroup"),
            ipc: bind("ipc"),
            mnt: bind("mnt"),
            net: bind("net"),
            pid: bind("pid"),
            user: bind("user"),
            uts: bind("uts"),
        },
        namespace: layers
            .pick(|r| r.namespace.as_ref())
            .cloned()
            .unwrap_or_default(),
    }
}

/// Where the container's image is: where an earlier container put it, or
/// in this bundle, straight in `rootfs/` when readonly, else in `lower/`
/// under an overlay.
fn image_root(readonly: bool, location: BundleLocation<'_>) -> String {
    match location.shared_root {
        Some(root) => root.to_owned(),
        None if readonly => format!("{}/rootfs", location.path),
        None => format!("{}/lower", location.path),
    }
}

/// The mounts LinuxKit's init makes before runc starts, so that `rootfs/`
/// is a mount point: a readonly container binds its image root there (onto
/// itself unless shared); any other gets an overlay of the image root under
/// a private tmpfs in `tmp/`.
fn rootfs_mounts(readonly: bool, path: &str, image_root: &str) -> Vec<oci::Mount> {
    let rootfs = format!("/{path}/rootfs");
    if readonly {
        return vec![oci::Mount {
            destination: rootfs,
            source: format!("/{image_root}"),
            options: strings(&["bind"]),
            ..oci::Mount::default()
        }];
    }
    let tmp = format!("/{path}/tmp");
    vec![
        oci::Mount {
            destination: tmp.clone(),
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            ..oci::Mount::default()
        },
        oci::Mount {
            destination: tmp.clone(),
            options: strings(&["remount", "private"]),
            ..oci::Mount::default()
        },
        oci::Mount {
            destination: rootfs,
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir=/{image_root}"),
                format!("upperdir={tmp}/upper"),
                format!("workdir={tmp}/work"),
            ],
            ..oci::Mount::default()
        },
    ]
}
