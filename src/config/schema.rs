//! LinuxKit's configuration schema, as data.
//!
//! Mirrors the JSON schema `linuxkit build` validates against
//! (`src/cmd/linuxkit/moby/schema.go`): every object rejects unknown keys,
//! `uid`/`gid` take a number or a name, and image entries need `name` and
//! `image`. A few string types carry the checks LinuxKit makes later, at
//! build time, so that `validate` already reports them with their position.

/// The type a YAML value must have.
#[derive(Debug)]
pub enum Type {
    String,
    Bool,
    Integer,
    /// A user or group: a number, or a name allocated at build time.
    Id,
    Array(&'static Type),
    Object(&'static [Field]),
    /// A mapping from any key to a string (`sysctl`, `annotations`).
    StringMap,
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// A string with a check of its own; `what` names it in messages.
    Checked {
        what: &'static str,
        check: fn(&str) -> Result<(), String>,
    },
    /// A capability list: known `CAP_*` names, or `all`/`none` alone.
    Capabilities,
}

/// One key of an object.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Type,
    pub required: bool,
}

const fn field(name: &'static str, ty: Type) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const fn required(name: &'static str, ty: Type) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

const STRINGS: Type = Type::Array(&Type::String);
const IMAGE_REF: Type = Type::Checked {
    what: "an image reference",
    check: super::rules::image_reference,
};

pub const KERNEL: &[Field] = &[
    field("image", IMAGE_REF),
    field("cmdline", Type::String),
    field("binary", Type::String),
    field("tar", Type::String),
    field("ucode", Type::String),
];

pub const FILE: &[Field] = &[
    field("path", Type::String),
    field("directory", Type::Bool),
    field("symlink", Type::String),
    field("contents", Type::String),
    field("source", Type::String),
    field("metadata", Type::Choice(&["yaml", "json"])),
    field("optional", Type::Bool),
    field(
        "mode",
        Type::Checked {
            what: "an octal mode such as \"0644\"",
            check: super::rules::octal_mode,
        },
    ),
    field("uid", Type::Id),
    field("gid", Type::Id),
];

pub const VOLUME: &[Field] = &[
    field(
        "name",
        Type::Checked {
            what: "a volume name",
            check: super::rules::volume_name,
        },
    ),
    field("image", IMAGE_REF),
    field("readonly", Type::Bool),
    field("format", Type::Choice(&["oci", "filesystem"])),
    field("platforms", STRINGS),
];

pub const TRUST: &[Field] = &[field("image", STRINGS), field("org", STRINGS)];

pub const BOOT: &[Field] = &[required("image", IMAGE_REF)];

const ID_MAPPING: Type = Type::Object(&[
    field("hostID", Type::Integer),
    field("containerID", Type::Integer),
    field("size", Type::Integer),
]);

const MOUNT: Type = Type::Object(&[
    field("destination", Type::String),
    field("type", Type::String),
    field("source", Type::String),
    field("options", STRINGS),
    field("uidmappings", Type::Array(&ID_MAPPING)),
    field("gidmappings", Type::Array(&ID_MAPPING)),
]);

const DEVICE: Type = Type::Object(&[
    field("path", Type::String),
    field("type", Type::String),
    field("major", Type::Integer),
    field("minor", Type::Integer),
    field(
        "mode",
        Type::Checked {
            what: "an octal mode such as \"0666\"",
            check: super::rules::octal_mode,
        },
    ),
]);

const WEIGHT_DEVICE: Type = Type::Object(&[
    field("major", Type::Integer),
    field("minor", Type::Integer),
    field("weight", Type::Integer),
    field("leafWeight", Type::Integer),
]);

const THROTTLE_DEVICE: Type = Type::Object(&[
    field("major", Type::Integer),
    field("minor", Type::Integer),
    field("rate", Type::Integer),
]);

const RESOURCES: Type = Type::Object(&[
    field(
        "devices",
        Type::Array(&Type::Object(&[
            field("allow", Type::Bool),
            field("type", Type::String),
            field("major", Type::Integer),
            field("minor", Type::Integer),
            field("access", Type::String),
        ])),
    ),
    field(
        "memory",
        Type::Object(&[
            field("limit", Type::Integer),
            field("reservation", Type::Integer),
            field("swap", Type::Integer),
            field("kernel", Type::Integer),
            field("kernelTCP", Type::Integer),
            field("swappiness", Type::Integer),
            field("disableOOMKiller", Type::Bool),
        ]),
    ),
    field(
        "cpu",
        Type::Object(&[
            field("shares", Type::Integer),
            field("quota", Type::Integer),
            field("period", Type::Integer),
            field("realtimeRuntime", Type::Integer),
            field("realtimePeriod", Type::Integer),
            field("cpus", Type::String),
            field("mems", Type::String),
        ]),
    ),
    field("pids", Type::Object(&[field("limit", Type::Integer)])),
    field(
        "blockio",
        Type::Object(&[
            field("weight", Type::Integer),
            field("leafWeight", Type::Integer),
            field("weightDevice", Type::Array(&WEIGHT_DEVICE)),
            field("throttleReadBpsDevice", Type::Array(&THROTTLE_DEVICE)),
            field("throttleWriteBpsDevice", Type::Array(&THROTTLE_DEVICE)),
            field("throttleReadIOPSDevice", Type::Array(&THROTTLE_DEVICE)),
            field("throttleWriteIOPSDevice", Type::Array(&THROTTLE_DEVICE)),
        ]),
    ),
    field(
        "hugepageLimits",
        Type::Array(&Type::Object(&[
            field("pageSize", Type::Integer),
            field("limit", Type::Integer),
        ])),
    ),
    field(
        "network",
        Type::Object(&[
            field("classID", Type::Integer),
            field(
                "priorities",
                Type::Array(&Type::Object(&[
                    field("name", Type::String),
                    field("priority", Type::Integer),
                ])),
            ),
        ]),
    ),
]);

const NAMESPACES: Type = Type::Object(&[
    field("cgroup", Type::String),
    field("ipc", Type::String),
    field("mnt", Type::String),
    field("net", Type::String),
    field("pid", Type::String),
    field("user", Type::String),
    field("uts", Type::String),
]);

const RUNTIME: Type = Type::Object(&[
    field("cgroups", STRINGS),
    field("mounts", Type::Array(&MOUNT)),
    field("mkdir", STRINGS),
    field(
        "interfaces",
        Type::Array(&Type::Object(&[
            field("name", Type::String),
            field("add", Type::String),
            field("peer", Type::String),
            field("createInRoot", Type::Bool),
        ])),
    ),
    field("bindNS", NAMESPACES),
    field("namespace", Type::String),
]);

/// An entry of `onboot`, `onshutdown` or `services`. An image's
/// `org.mobyproject.config` label is checked against it too, with a
/// placeholder name and image, as LinuxKit does.
pub const IMAGE: &[Field] = &[
    required("name", Type::String),
    required("image", IMAGE_REF),
    field("capabilities", Type::Capabilities),
    field("capabilities.add", Type::Capabilities),
    field("ambient", Type::Capabilities),
    field("mounts", Type::Array(&MOUNT)),
    field(
        "binds",
        Type::Array(&Type::Checked {
            what: "a bind such as \"/src:/dest[:options]\"",
            check: super::rules::bind,
        }),
    ),
    field(
        "binds.add",
        Type::Array(&Type::Checked {
            what: "a bind such as \"/src:/dest[:options]\"",
            check: super::rules::bind,
        }),
    ),
    field("devices", Type::Array(&DEVICE)),
    field(
        "tmpfs",
        Type::Array(&Type::Checked {
            what: "a tmpfs mount such as \"/dest[:options]\"",
            check: super::rules::tmpfs,
        }),
    ),
    field("command", STRINGS),
    field("env", STRINGS),
    field("cwd", Type::String),
    field("net", Type::String),
    field("pid", Type::String),
    field("ipc", Type::String),
    field("uts", Type::String),
    field("userns", Type::String),
    field("readonly", Type::Bool),
    field("maskedPaths", STRINGS),
    field("readonlyPaths", STRINGS),
    field("uid", Type::Id),
    field("gid", Type::Id),
    field("additionalGids", Type::Array(&Type::Id)),
    field("noNewPrivileges", Type::Bool),
    field("hostname", Type::String),
    field("oomScoreAdj", Type::Integer),
    field("rootfsPropagation", Type::String),
    field("cgroupsPath", Type::String),
    field("resources", RESOURCES),
    field("sysctl", Type::StringMap),
    field(
        "rlimits",
        Type::Array(&Type::Checked {
            what: "an rlimit such as \"nofile,1024,4096\"",
            check: super::rules::rlimit,
        }),
    ),
    field("uidMappings", Type::Array(&ID_MAPPING)),
    field("gidMappings", Type::Array(&ID_MAPPING)),
    field("annotations", Type::StringMap),
    field("runtime", RUNTIME),
];

/// The keys of a configuration file, in LinuxKit's order, plus ossify's
/// one extension, `boot`.
pub const ROOT_KEYS: &[&str] = &[
    "kernel",
    "init",
    "onboot",
    "onshutdown",
    "services",
    "files",
    "volumes",
    "trust",
    "boot",
];

/// An entry of `init`: an image reference.
pub const INIT_IMAGE: Type = IMAGE_REF;
