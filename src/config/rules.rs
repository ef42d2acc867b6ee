//! The checks LinuxKit makes on individual strings of a configuration:
//! capability names, rlimits, modes, binds, image references.
//!
//! LinuxKit makes most of them while building; ossify makes them while
//! validating too, so the error points at the line that caused it.

/// Every capability LinuxKit knows, in its order (`moby/sys/capability`).
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The resource limits `rlimits` may set.
pub const RLIMITS: &[&str] = &[
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// `all` or `none`, which LinuxKit accepts in any case but only alone.
pub fn is_capability_keyword(name: &str) -> bool {
    name.eq_ignore_ascii_case("all") || name.eq_ignore_ascii_case("none")
}

/// A capability name as LinuxKit accepts it: exact, with the `CAP_` prefix.
pub fn capability(name: &str) -> Result<(), String> {
    if CAPABILITIES.contains(&name) {
        return Ok(());
    }
    let upper = name.to_ascii_uppercase();
    let hint = [upper.clone(), format!("CAP_{upper}")]
        .into_iter()
        .find(|candidate| CAPABILITIES.contains(&candidate.as_str()))
        .map(|known| format!(" (did you mean {known}?)"))
        .unwrap_or_default();
    Err(format!("unknown capability `{name}`{hint}"))
}

/// A resource limit, `name,soft,hard`, as LinuxKit parses it.
pub fn rlimit(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.splitn(3, ',').collect();
    let [name, soft, hard] = parts[..] else {
        return Err(format!(
            "cannot parse rlimit `{text}`: expected name,soft,hard such as \"nofile,1024,4096\""
        ));
    };
    let name = name.trim().to_ascii_uppercase();
    let name = if name.starts_with("RLIMIT_") {
        name
    } else {
        format!("RLIMIT_{name}")
    };
    if !RLIMITS.contains(&name.as_str()) {
        return Err(format!(
            "unknown rlimit `{name}` in `{text}`; expected one of: {}",
            RLIMITS.join(", ")
        ));
    }
    for value in [soft, hard] {
        let value = value.trim();
        if !value.eq_ignore_ascii_case("unlimited") && value.parse::<u64>().is_err() {
            return Err(format!(
                "cannot parse `{value}` in rlimit `{text}`: expected a number or \"unlimited\""
            ));
        }
    }
    Ok(())
}

/// A file or device mode: octal digits, as LinuxKit's `ParseInt(mode, 8, 32)`.
pub fn octal_mode(text: &str) -> Result<(), String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(()),
        Ok(_) => Err(format!("mode `{text}` is larger than 07777")),
        Err(_) => Err(format!(
            "cannot parse mode `{text}` as an octal number such as \"0644\""
        )),
    }
}

/// A volume name, which becomes a directory name under `/containers/volumes`.
pub fn volume_name(name: &str) -> Result<(), String> {
    if name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid volume name `{name}`: use only a-z, 0-9, `_` and `-`"
        ))
    }
}

/// A bind, `source:destination[:options]`.
pub fn bind(text: &str) -> Result<(), String> {
    match text.split(':').count() {
        2 | 3 => Ok(()),
        1 => Err(format!(
            "cannot parse bind `{text}`: missing `:` between source and destination"
        )),
        _ => Err(format!(
            "cannot parse bind `{text}`: too many `:`; expected source:destination[:options]"
        )),
    }
}

/// A tmpfs mount, `destination[:options]`.
pub fn tmpfs(text: &str) -> Result<(), String> {
    if text.split(':').count() <= 2 {
        Ok(())
    } else {
        Err(format!(
            "cannot parse tmpfs `{text}`: too many `:`; expected destination[:options]"
        ))
    }
}

/// The shape of an image reference. Package references (`@pkg:`), which
/// LinuxKit resolves by building a package, are refused here: ossify builds
/// images from references only.
pub fn image_reference(text: &str) -> Result<(), String> {
    if text.starts_with("@pkg:") {
        return Err(format!(
            "`{text}`: package references are not supported: build the package and reference its image"
        ));
    }
    if text.is_empty() {
        return Err("empty image reference".to_owned());
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid image reference `{text}`: contains {c:?}"));
    }
    let (name, _digest) = text.split_once('@').unwrap_or((text, ""));
    let repository = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    };
    let path = repository
        .split_once('/')
        .map_or(repository, |(first, rest)| {
            if first.contains(['.', ':']) || first == "localhost" {
                rest
            } else {
                repository
            }
        });
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "invalid image reference `{text}`: repository names must be lowercase"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_exact_with_a_hint() {
        assert!(capability("CAP_SYS_ADMIN").is_ok());
        let err = capability("sys_admin").unwrap_err();
        assert!(err.contains("did you mean CAP_SYS_ADMIN"), "{err}");
        assert!(capability("CAP_FLY").is_err());
    }

    #[test]
    fn rlimits_take_names_with_or_without_prefix() {
        assert!(rlimit("nofile,1024,4096").is_ok());
        assert!(rlimit("RLIMIT_CORE, unlimited ,Unlimited").is_ok());
        assert!(rlimit("nofile,1024").is_err());
        assert!(rlimit("bogus,1,1").unwrap_err().contains("RLIMIT_BOGUS"));
        assert!(rlimit("nofile,-1,4").is_err());
    }

    #[test]
    fn modes_are_octal() {
        assert!(octal_mode("0644").is_ok());
        assert!(octal_mode("755").is_ok());
        assert!(octal_mode("0o644").is_err());
        assert!(octal_mode("0888").is_err());
        assert!(octal_mode("77777").is_err());
    }

    #[test]
    fn binds_and_tmpfs_count_colons() {
        assert!(bind("/a:/b").is_ok());
        assert!(bind("/a:/b:ro").is_ok());
        assert!(bind("/a").is_err());
        assert!(bind("/a:/b:ro:x").is_err());
        assert!(tmpfs("/run:size=1m").is_ok());
        assert!(tmpfs("/run:a:b").is_err());
    }

    #[test]
    fn image_references() {
        assert!(image_reference("linuxkit/init:v1.0").is_ok());
        assert!(image_reference("localhost:5000/x/y@sha256:abc").is_ok());
        assert!(
            image_reference("@pkg:../pkg/init")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(image_reference("Linuxkit/init").is_err());
        assert!(image_reference("REGISTRY.example.com/x").is_ok());
        assert!(image_reference("a b").is_err());
    }
}
