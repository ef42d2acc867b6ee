//! Packages read from an image's package databases, as SPDX packages: apk's
//! `lib/apk/db/installed` and dpkg's `var/lib/dpkg/status`, both
//! paragraphs of `key: value` lines. Each package gets a package URL
//! (`pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64`) naming the distribution of
//! the image's `etc/os-release`, which is how scanners match them against
//! advisories.

use std::io::Read;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::assemble::apk;
use crate::tree::{Kind, Tree};

/// dpkg's database of installed packages, relative to the root.
const DPKG_STATUS: &str = "var/lib/dpkg/status";
/// The largest database or os-release read; larger ones are skipped.
const MAX_DATABASE_SIZE: u64 = 64 << 20;

/// A package manager whose database ossify reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Apk,
    Dpkg,
}

impl Manager {
    fn database(self) -> &'static str {
        match self {
            Manager::Apk => apk::INSTALLED,
            Manager::Dpkg => DPKG_STATUS,
        }
    }

    /// The package URL type (purl-spec's `apk` and `deb`).
    fn purl_type(self) -> &'static str {
        match self {
            Manager::Apk => "apk",
            Manager::Dpkg => "deb",
        }
    }

    /// The distribution when `etc/os-release` does not say.
    fn default_distribution(self) -> &'static str {
        match self {
            Manager::Apk => "alpine",
            Manager::Dpkg => "debian",
        }
    }
}

/// One installed package, as its database lists it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Package {
    name: String,
    version: String,
    architecture: String,
    license: Option<String>,
    homepage: Option<String>,
}

/// The SPDX packages of every database in `image`, placed at `prefix`.
pub fn from_databases(prefix: &str, image: &Tree) -> Vec<Value> {
    let distribution = read(image, "etc/os-release")
        .and_then(|text| os_release_id(&text))
        .filter(|id| !id.is_empty());
    [Manager::Apk, Manager::Dpkg]
        .into_iter()
        .flat_map(|manager| {
            let packages = read(image, manager.database())
                .map(|text| parse(manager, &text))
                .unwrap_or_default();
            let distribution = distribution
                .clone()
                .unwrap_or_else(|| manager.default_distribution().to_owned());
            packages
                .into_iter()
                .map(move |package| spdx_package(manager, &distribution, prefix, &package))
        })
        .collect()
}

/// The text of the regular file at `path` in `image`, if it is one and
/// not too large.
fn read(image: &Tree, path: &str) -> Option<String> {
    let id = image.lookup_following(path)?;
    let Kind::File(blob) = &image.node(id).kind else {
        return None;
    };
    if blob.len() > MAX_DATABASE_SIZE {
        return None;
    }
    let mut bytes = Vec::new();
    image.contents(blob).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `ID` of an os-release file, unquoted.
fn os_release_id(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("ID="))
        .map(|id| id.trim().trim_matches(['"', '\'']).to_owned())
}

/// The installed packages of a database's text. apk writes one-letter
/// keys (`P:musl`), dpkg `Package: musl` with continuation lines, and only
/// packages dpkg's `Status` marks installed count.
fn parse(manager: Manager, text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|paragraph| {
            let mut package = Package::default();
            let mut installed = manager == Manager::Apk;
            for line in paragraph.lines() {
                let field = match manager {
                    Manager::Apk => line.split_once(':'),
                    Manager::Dpkg if line.starts_with([' ', '\t']) => None,
                    Manager::Dpkg => line.split_once(": ").or_else(|| line.split_once(':')),
                };
                let Some((key, value)) = field else { continue };
                let value = value.trim().to_owned();
                match (manager, key) {
                    (Manager::Apk, "P") | (Manager::Dpkg, "Package") => package.name = value,
                    (Manager::Apk, "V") | (Manager::Dpkg, "Version") => package.version = value,
                    (Manager::Apk, "A") | (Manager::Dpkg, "Architecture") => {
                        package.architecture = value
                    }
                    (Manager::Apk, "L") => package.license = Some(value),
                    (Manager::Apk, "U") | (Manager::Dpkg, "Homepage") => {
                        package.homepage = Some(value)
                    }
                    (Manager::Dpkg, "Status") => installed = value.ends_with(" installed"),
                    _ => {}
                }
            }
            (installed && !package.name.is_empty()).then_some(package)
        })
        .collect()
}

/// The SPDX package for `package`.
fn spdx_package(manager: Manager, distribution: &str, prefix: &str, package: &Package) -> Value {
    let id = Sha256::new()
        .chain_update(manager.purl_type())
        .chain_update([0])
        .chain_update(prefix)
        .chain_update([0])
        .chain_update(&package.name)
        .chain_update([0])
        .chain_update(&package.version)
        .finalize();
    let spdx_id = format!(
        "SPDXRef-Package-{}-{}-{}",
        manager.purl_type(),
        spdx_id_safe(&package.name),
        &crate::output::atomic::hex(&id)[..16]
    );
    let mut purl = format!(
        "pkg:{}/{}/{}",
        manager.purl_type(),
        percent_encode(distribution),
        percent_encode(&package.name),
    );
    if !package.version.is_empty() {
        purl.push('@');
        purl.push_str(&percent_encode(&package.version));
    }
    if !package.architecture.is_empty() {
        purl.push_str("?arch=");
        purl.push_str(&percent_encode(&package.architecture));
    }
    let declared = package
        .license
        .as_deref()
        .and_then(license_expression)
        .unwrap_or_else(|| "NOASSERTION".to_owned());
    let source = if prefix.is_empty() {
        format!("/{}", manager.database())
    } else {
        format!("{prefix}/{}", manager.database())
    };
    let mut spdx = json!({
        "name": package.name,
        "SPDXID": spdx_id,
        "versionInfo": package.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": declared,
        "copyrightText": "NOASSERTION",
        "sourceInfo": format!("acquired package info from {} database: {source}", manager.purl_type()),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl,
        }],
    });
    if let Some(homepage) = &package.homepage {
        spdx["homepage"] = json!(homepage);
    }
    spdx
}

/// An apk `L:` field as an SPDX license expression: identifiers joined by
/// `AND` where apk separates them by spaces, or the field as written when
/// it already uses SPDX operators. `None` when it holds anything else.
fn license_expression(field: &str) -> Option<String> {
    let tokens: Vec<&str> = field.split_whitespace().collect();
    let is_identifier = |token: &&str| {
        !token.is_empty()
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '(' | ')'))
    };
    if tokens.is_empty() || !tokens.iter().all(is_identifier) {
        return None;
    }
    let has_operators = tokens.iter().any(|t| matches!(*t, "AND" | "OR" | "WITH"));
    Some(if has_operators {
        tokens.join(" ")
    } else {
        tokens.join(" AND ")
    })
}

/// `text` with every character an SPDX id may not hold replaced by `-`.
fn spdx_id_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `text` percent-encoded for a package URL: everything but unreserved
/// characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const APK: &str = "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\nU:https://musl.libc.org/\n\n\
                       P:busybox\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\n\n";
    const DPKG: &str = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u7\n\
                        Architecture: amd64\nDescription: GNU C Library\n continued line: not a key\n\n\
                        Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n";

    #[test]
    fn apk_and_dpkg_databases_parse_into_installed_packages() {
        let apk = parse(Manager::Apk, APK);
        assert_eq!(
            apk.iter()
                .map(|p| (p.name.as_str(), p.version.as_str()))
                .collect::<Vec<_>>(),
            [("musl", "1.2.5-r0"), ("busybox", "1.36.1-r29")]
        );
        assert_eq!(apk[0].license.as_deref(), Some("MIT"));
        let dpkg = parse(Manager::Dpkg, DPKG);
        assert_eq!(dpkg.len(), 1, "{dpkg:?}");
        assert_eq!(dpkg[0].version, "2.36-9+deb12u7");
        assert_eq!(dpkg[0].architecture, "amd64");
    }

    #[test]
    fn packages_carry_package_urls_and_licenses() {
        let package = spdx_package(Manager::Dpkg, "debian", "", &parse(Manager::Dpkg, DPKG)[0]);
        assert_eq!(
            package["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64"
        );
        assert_eq!(package["licenseDeclared"], "NOASSERTION");
        assert_eq!(
            package["sourceInfo"],
            "acquired package info from deb database: /var/lib/dpkg/status"
        );
        assert_eq!(
            license_expression("MIT BSD-2-Clause").unwrap(),
            "MIT AND BSD-2-Clause"
        );
        assert_eq!(
            license_expression("MIT OR Apache-2.0").unwrap(),
            "MIT OR Apache-2.0"
        );
        assert_eq!(license_expression("custom:foo"), None);
    }
}
