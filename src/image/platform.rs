//! Platforms (`linux/arm64/v8`) and choosing one from a multi-arch index.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Platform as OciPlatform;

use super::Error;

/// The OS, architecture and optional variant an image is built for, in the
/// Go names registries use (`amd64`, `arm64`, `v8`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the machine ossify runs on.
    pub fn host() -> Self {
        Self::linux(std::env::consts::ARCH)
    }

    /// A Linux platform for an architecture given as in `--arch`; Rust and
    /// kernel names (`x86_64`, `aarch64`) are accepted too.
    pub fn linux(architecture: &str) -> Self {
        let architecture = match architecture {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" | "i386" | "i686" => "386",
            "powerpc64le" => "ppc64le",
            "riscv64gc" => "riscv64",
            other => other,
        };
        Self {
            os: "linux".to_owned(),
            architecture: architecture.to_owned(),
            variant: None,
        }
    }

    /// Whether an index entry built for `candidate` serves this platform.
    /// A missing variant matches any, and arm64 without one means `v8`.
    pub fn matches(&self, candidate: &OciPlatform) -> bool {
        let candidate_variant = candidate
            .variant()
            .clone()
            .or_else(|| (self.architecture == "arm64").then(|| "v8".to_owned()));
        candidate.os().to_string() == self.os
            && candidate.architecture().to_string() == self.architecture
            && (self.variant.is_none() || self.variant == candidate_variant)
    }

    pub(crate) fn describe(candidate: &OciPlatform) -> String {
        let mut text = format!("{}/{}", candidate.os(), candidate.architecture());
        if let Some(variant) = candidate.variant() {
            text = format!("{text}/{variant}");
        }
        text
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

impl FromStr for Platform {
    type Err = Error;

    /// Parses `os/arch[/variant]`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        let invalid = || Error::InvalidPlatform(s.to_owned());
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid());
        }
        match parts[..] {
            [os, arch] | [os, arch, _] => Ok(Self {
                os: os.to_owned(),
                variant: parts.get(2).map(|v| (*v).to_owned()),
                ..Self::linux(arch)
            }),
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Arch, Os, PlatformBuilder};

    fn candidate(arch: Arch, variant: Option<&str>) -> OciPlatform {
        let mut builder = PlatformBuilder::default().os(Os::Linux).architecture(arch);
        if let Some(v) = variant {
            builder = builder.variant(v);
        }
        builder.build().unwrap()
    }

    #[test]
    fn parses_os_arch_variant() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/x86_64".parse::<Platform>().unwrap(),
            Platform::linux("amd64")
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v8".parse::<Platform>().is_err());
    }

    #[test]
    fn matches_arch_and_variant() {
        let arm64: Platform = "linux/arm64".parse().unwrap();
        let arm64_v8: Platform = "linux/arm64/v8".parse().unwrap();
        let arm_v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(arm64.matches(&candidate(Arch::ARM64, Some("v8"))));
        assert!(arm64_v8.matches(&candidate(Arch::ARM64, None)));
        assert!(!arm64.matches(&candidate(Arch::Amd64, None)));
        assert!(arm_v7.matches(&candidate(Arch::ARM, Some("v7"))));
        assert!(!arm_v7.matches(&candidate(Arch::ARM, Some("v6"))));
    }
}
