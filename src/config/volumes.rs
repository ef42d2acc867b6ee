//! Containers' binds of volumes. A bind whose source is not an absolute
//! path names a volume (`binds: ["data:/data"]`); LinuxKit
//! (moby/build/volume.go) rewrites its source to the volume's `merged/`
//! directory, where init mounts the volume's overlay, and refuses a bind
//! of a read-only volume that does not say `ro`. The same holds for
//! `binds.add` and for `mounts:` entries of type `bind`.

use super::check::Checker;
use super::model::{ContainerSettings, Image, Located, Mount, Volume};

/// The directory of a volume's overlay in the root filesystem.
pub fn merged_dir(volume: &str) -> String {
    format!("/containers/volumes/{volume}/merged")
}

/// The volume a bind or mount source names: any source that is not an
/// absolute path.
fn named_volume(source: &str) -> Option<&str> {
    (!source.starts_with('/')).then_some(source)
}

/// Whether a bind (`source:destination[:options]`) mounts read-only:
/// LinuxKit wants its third part to be exactly `ro`.
fn bind_is_readonly(bind: &str) -> bool {
    bind.split(':').nth(2) == Some("ro")
}

/// Whether a mount's options make it read-only: the first of `ro` and
/// `rw` decides, as in LinuxKit.
fn mount_is_readonly(mount: &Mount) -> bool {
    mount
        .options
        .iter()
        .find(|option| *option == "ro" || *option == "rw")
        .is_some_and(|option| option == "ro")
}

impl ContainerSettings {
    /// Every volume these settings bind, with how the bind is written and
    /// whether it is read-only.
    fn volume_binds(&self) -> Vec<(&str, String, bool)> {
        let binds = self.binds.iter().chain(&self.binds_add).flatten();
        let from_binds = binds.filter_map(|bind| {
            let source = bind.split(':').next().unwrap_or_default();
            named_volume(source)
                .map(|volume| (volume, format!("bind `{bind}`"), bind_is_readonly(bind)))
        });
        let from_mounts = self
            .mounts
            .iter()
            .flatten()
            .filter(|m| m.kind == "bind")
            .filter_map(|mount| {
                named_volume(&mount.source).map(|volume| {
                    (
                        volume,
                        format!("mount of `{}` at `{}`", mount.source, mount.destination),
                        mount_is_readonly(mount),
                    )
                })
            });
        from_binds.chain(from_mounts).collect()
    }

    /// These settings with every volume named as a bind or mount source
    /// replaced by the volume's `merged/` directory.
    pub fn with_volume_paths(&self) -> ContainerSettings {
        let rewrite_bind = |bind: &String| match bind.split_once(':') {
            Some((source, rest)) if named_volume(source).is_some() => {
                format!("{}:{rest}", merged_dir(source))
            }
            _ => bind.clone(),
        };
        let rewrite_binds = |binds: &Option<Vec<String>>| {
            binds
                .as_ref()
                .map(|binds| binds.iter().map(rewrite_bind).collect())
        };
        let mounts = self.mounts.as_ref().map(|mounts| {
            mounts
                .iter()
                .map(|mount| match named_volume(&mount.source) {
                    Some(volume) if mount.kind == "bind" => Mount {
                        source: merged_dir(volume),
                        ..mount.clone()
                    },
                    _ => mount.clone(),
                })
                .collect()
        });
        ContainerSettings {
            binds: rewrite_binds(&self.binds),
            binds_add: rewrite_binds(&self.binds_add),
            mounts,
            ..self.clone()
        }
    }
}

/// Reports each bind of `section`'s containers that names no declared
/// volume, or writes into a read-only one.
pub fn check_binds(
    checker: &mut Checker,
    section: &str,
    containers: &[Located<Image>],
    volumes: &[Located<Volume>],
) {
    for (index, container) in containers.iter().enumerate() {
        let at = format!("{section}[{index}] ({})", container.name);
        for (name, bind, readonly) in container.settings.volume_binds() {
            match volumes.iter().find(|v| v.name == name) {
                None => checker.report(
                    &container.position,
                    format!(
                        "{at}: {bind} names no volume `{name}`; declare it under `volumes:` or give an absolute path"
                    ),
                ),
                Some(volume) if volume.readonly && !readonly => checker.report(
                    &container.position,
                    format!(
                        "{at}: {bind} writes into volume `{name}`, which is `readonly: true`; mount it read-only (`:ro`)"
                    ),
                ),
                Some(_) => {}
            }
        }
    }
}
