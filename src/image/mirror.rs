//! Registry mirrors, given as LinuxKit does: `--mirror [REGISTRY=]URL`
//! (REGISTRY defaults to `docker.io`) or the same entries, separated by
//! spaces or commas, in `$LINUXKIT_MIRROR`.

use std::str::FromStr;

use super::Error;

/// Where to fetch one registry's images from instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// The registry being mirrored, e.g. `docker.io`.
    pub registry: String,
    /// The mirror's `host[:port]`.
    pub host: String,
    /// Whether the mirror URL said `http://`.
    pub plain_http: bool,
}

impl Mirror {
    /// The mirrors listed in `$LINUXKIT_MIRROR`.
    pub fn from_env() -> Result<Vec<Self>, Error> {
        std::env::var("LINUXKIT_MIRROR")
            .unwrap_or_default()
            .split([' ', ',', '\n', '\t'])
            .filter(|entry| !entry.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl FromStr for Mirror {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidMirror(s.to_owned());
        let (registry, url) = match s.split_once('=') {
            Some((registry, url)) => (registry, url),
            None => ("docker.io", s),
        };
        let (plain_http, rest) = match url.split_once("://") {
            Some(("http", rest)) => (true, rest),
            Some(("https", rest)) => (false, rest),
            Some(_) => return Err(invalid()),
            None => (false, url),
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if registry.is_empty() || host.is_empty() || host.contains('/') {
            return Err(invalid());
        }
        let registry = match registry {
            "index.docker.io" | "registry-1.docker.io" => "docker.io",
            other => other,
        };
        Ok(Self {
            registry: registry.to_owned(),
            host: host.to_owned(),
            plain_http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_and_url() {
        let m: Mirror = "quay.io=http://127.0.0.1:5000/".parse().unwrap();
        assert_eq!(
            m,
            Mirror {
                registry: "quay.io".into(),
                host: "127.0.0.1:5000".into(),
                plain_http: true
            }
        );
        let m: Mirror = "https://mirror.example".parse().unwrap();
        assert_eq!(m.registry, "docker.io");
        assert!(!m.plain_http);
    }

    #[test]
    fn rejects_paths_and_odd_schemes() {
        for bad in ["http://host/path", "ftp://host", "docker.io=", "=host"] {
            assert!(bad.parse::<Mirror>().is_err(), "{bad}");
        }
    }
}
