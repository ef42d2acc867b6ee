//! Numbers for named users and groups.
//!
//! A container's `uid`, `gid` and `additionalGids` (and a file's `uid` and
//! `gid`) may name a container instead of giving a number, so that each
//! service can run as a user of its own. LinuxKit numbers the containers
//! from 100 in onboot, onshutdown, services order; a name used twice keeps
//! the later number, and the count goes on regardless.

use std::collections::BTreeMap;

use crate::config::{Config, Id};

/// The number LinuxKit gives the first container.
const FIRST_ID: u32 = 100;

/// Container names and the user and group numbers they stand for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap(BTreeMap<String, u32>);

impl IdMap {
    /// Numbers the containers of `config` as LinuxKit's build does.
    pub fn allocate(config: &Config) -> IdMap {
        let containers = config
            .onboot
            .iter()
            .chain(&config.onshutdown)
            .chain(&config.services);
        IdMap(
            containers
                .zip(FIRST_ID..)
                .map(|(image, id)| (image.name.clone(), id))
                .collect(),
        )
    }

    /// The number `id` stands for: itself, 0 for `root` or an empty name,
    /// else a container's number.
    pub fn numeric(&self, id: &Id) -> Result<u32, UnknownId> {
        match id {
            // Go converts with uint32(), which wraps; so does `as`.
            Id::Number(n) => Ok(*n as u32),
            Id::Name(name) if name.is_empty() || name == "root" => Ok(0),
            Id::Name(name) => self
                .0
                .get(name)
                .copied()
                .ok_or_else(|| UnknownId(name.clone())),
        }
    }
}

/// A user or group name that is no container's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot find id `{0}`")]
pub struct UnknownId(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Image, Located, Position};

    fn containers(names: &[&str]) -> Vec<Located<Image>> {
        let position = Position {
            file: std::sync::Arc::new("test.yml".into()),
            line: 1,
            column: 1,
        };
        names
            .iter()
            .map(|name| Located {
                value: Image {
                    name: name.to_string(),
                    ..Image::default()
                },
                position: position.clone(),
            })
            .collect()
    }

    #[test]
    fn allocates_in_section_order_and_a_repeated_name_keeps_the_later_number() {
        let config = Config {
            onboot: containers(&["dhcpcd", "sysctl"]),
            onshutdown: containers(&["shutdown"]),
            services: containers(&["sshd", "dhcpcd"]),
            ..Config::default()
        };
        let ids = IdMap::allocate(&config);
        let name = |n: &str| ids.numeric(&Id::Name(n.into()));
        assert_eq!(name("sysctl"), Ok(101));
        assert_eq!(name("shutdown"), Ok(102));
        assert_eq!(name("sshd"), Ok(103));
        assert_eq!(name("dhcpcd"), Ok(104));
        assert_eq!(name("root"), Ok(0));
        assert_eq!(name(""), Ok(0));
        assert_eq!(name("nobody"), Err(UnknownId("nobody".into())));
        assert_eq!(ids.numeric(&Id::Number(65534)), Ok(65534));
    }
}
