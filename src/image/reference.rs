//! Image references, normalised the way Docker does it.

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference as OciReference;

use super::{Digest, Error};

/// A fully qualified image reference: `busybox` becomes
/// `docker.io/library/busybox:latest`, so one image has one name in the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    inner: OciReference,
}

impl Reference {
    /// The registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The pinned digest, when the reference names one.
    pub fn digest(&self) -> Option<Digest> {
        self.inner.digest().and_then(|d| d.parse().ok())
    }

    /// The same repository pinned to `digest`, without a tag.
    pub fn with_digest(&self, digest: &Digest) -> Self {
        Self {
            inner: OciReference::with_digest(
                self.registry().to_owned(),
                self.repository().to_owned(),
                digest.to_string(),
            ),
        }
    }

    pub(crate) fn as_oci(&self) -> &OciReference {
        &self.inner
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.whole())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidReference {
            reference: s.to_owned(),
            reason,
        };
        let inner = OciReference::from_str(s).map_err(|e| invalid(e.to_string()))?;
        if inner.repository().chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase".to_owned()));
        }
        if let Some(digest) = inner.digest() {
            digest
                .parse::<Digest>()
                .map_err(|_| invalid(format!("unsupported digest {digest}")))?;
        }
        Ok(Self { inner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(input: &str) -> String {
        input.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        let digest = format!("sha256:{}", "1".repeat(64));
        assert_eq!(normalised("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalised("linuxkit/init:v1"), "docker.io/linuxkit/init:v1");
        assert_eq!(normalised("localhost:5000/a/b:c"), "localhost:5000/a/b:c");
        assert_eq!(
            normalised(&format!("alpine@{digest}")),
            format!("docker.io/library/alpine@{digest}")
        );
        assert_eq!(
            normalised(&format!("alpine:3.20@{digest}")),
            format!("docker.io/library/alpine:3.20@{digest}")
        );
    }

    #[test]
    fn exposes_parts() {
        let r: Reference = "127.0.0.1:5000/team/app:1.0".parse().unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.digest(), None);
    }

    #[test]
    fn invalid_references_say_why() {
        for bad in ["", "UPPER/case", "a@sha256:xyz", "a@md5:00"] {
            let err = bad.parse::<Reference>().unwrap_err().to_string();
            assert!(err.contains("invalid image reference"), "{bad}: {err}");
        }
    }
}
