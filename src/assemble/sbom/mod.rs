//! The software bill of materials LinuxKit writes into the root,
//! `sbom.spdx.json`: one SPDX 2.3 document merged from the SBOMs of the
//! images placed (moby/build/sbom.go).
//!
//! LinuxKit merges only the SPDX documents BuildKit attested for an image;
//! an image without one adds nothing. ossify merges the same documents
//! and, for an image that has none, lists the packages its package
//! databases record ([`packages`]), so a scanner reading the root sees
//! them. LinuxKit's document namespace is a random UUID, which makes every
//! build differ; ossify derives it from the document's contents, and the
//! creation date is SOURCE_DATE_EPOCH, so the same inputs give the same
//! bytes.

mod packages;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::tree::Tree;
use crate::write::date::DateTime;

/// LinuxKit's name for the file, relative to the root.
pub const DEFAULT_FILE_NAME: &str = "sbom.spdx.json";

/// The lists of an SPDX document that merging concatenates, in the order
/// the merged document writes them (LinuxKit's merge takes these).
const MERGED_LISTS: [&str; 5] = [
    "packages",
    "files",
    "hasExtractedLicensingInfos",
    "relationships",
    "annotations",
];

/// An SPDX document that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("its SPDX document is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("its SPDX document is not a JSON object")]
    NotAnObject,
    #[error("its SPDX document's `{0}` is not a list")]
    NotAList(&'static str),
}

/// The SBOM of a build, gathered image by image.
#[derive(Debug, Default)]
pub struct Sbom {
    lists: Map<String, Value>,
    external_refs: Vec<Value>,
}

impl Sbom {
    /// Adds an SPDX JSON document describing an image placed at `prefix`
    /// (`""` for the root): paths in it are moved below the prefix, as
    /// LinuxKit does.
    pub fn add_document(&mut self, prefix: &str, spdx_json: &[u8]) -> Result<(), SbomError> {
        let document: Value = serde_json::from_slice(spdx_json).map_err(SbomError::NotJson)?;
        let Value::Object(mut document) = document else {
            return Err(SbomError::NotAnObject);
        };
        for (list, key) in [("files", "fileName"), ("packages", "packageFileName")] {
            for item in items(&mut document, list)? {
                let name = item.get(key).and_then(Value::as_str).unwrap_or_default();
                let joined = join(prefix, name);
                if let Some(item) = item.as_object_mut() {
                    if joined.is_empty() {
                        item.remove(key);
                    } else {
                        item.insert(key.to_owned(), Value::String(joined));
                    }
                }
            }
        }
        for list in MERGED_LISTS {
            let taken = std::mem::take(items(&mut document, list)?);
            self.append(list, taken);
        }
        let refs = std::mem::take(items(&mut document, "externalDocumentRefs")?);
        self.external_refs.extend(refs);
        Ok(())
    }

    /// Adds the packages that `image`'s package databases (apk, dpkg)
    /// record, for an image placed at `prefix` that came without an SPDX
    /// document.
    pub fn add_package_databases(&mut self, prefix: &str, image: &Tree) {
        self.append("packages", packages::from_databases(prefix, image));
    }

    fn append(&mut self, list: &str, items: Vec<Value>) {
        if items.is_empty() {
            return;
        }
        let entry = self
            .lists
            .entry(list.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        entry
            .as_array_mut()
            .expect("only lists are stored")
            .extend(items);
    }

    /// The merged document as JSON, created at `created` (seconds since
    /// 1970). Its namespace is derived from everything else in it.
    pub fn to_json(&self, created: u64) -> Vec<u8> {
        let mut document = Map::new();
        document.insert("spdxVersion".into(), json!("SPDX-2.3"));
        document.insert("dataLicense".into(), json!("CC0-1.0"));
        document.insert("SPDXID".into(), json!("SPDXRef-DOCUMENT"));
        document.insert("name".into(), json!("sbom"));
        document.insert("documentNamespace".into(), Value::Null);
        if !self.external_refs.is_empty() {
            document.insert(
                "externalDocumentRefs".into(),
                Value::Array(self.external_refs.clone()),
            );
        }
        document.insert(
            "creationInfo".into(),
            json!({
                "licenseListVersion": "3.20",
                "creators": [concat!("Tool: ossify-", env!("CARGO_PKG_VERSION"))],
                "created": DateTime::from_unix(created).to_string(),
            }),
        );
        for list in MERGED_LISTS {
            if let Some(items) = self.lists.get(list) {
                document.insert(list.to_owned(), items.clone());
            }
        }
        let content = serde_json::to_vec(&document).expect("JSON values always serialise");
        document.insert(
            "documentNamespace".into(),
            json!(format!(
                "https://spdx.org/spdxdocs/ossify-sbom-{}",
                uuid(&Sha256::digest(&content))
            )),
        );
        let mut bytes = serde_json::to_vec_pretty(&document).expect("JSON values always serialise");
        bytes.push(b'\n');
        bytes
    }
}

/// The list `key` of `document`, created empty when absent.
fn items<'a>(
    document: &'a mut Map<String, Value>,
    key: &'static str,
) -> Result<&'a mut Vec<Value>, SbomError> {
    document
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or(SbomError::NotAList(key))
}

/// `prefix` and `name` joined and cleaned as Go's `filepath.Join` does:
/// empty parts vanish, `.` and `..` are resolved, and a leading `/` stays.
fn join(prefix: &str, name: &str) -> String {
    let joined = match (prefix.is_empty(), name.is_empty()) {
        (true, _) => name.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}/{name}"),
    };
    if joined.is_empty() {
        return joined;
    }
    let rooted = joined.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            part => parts.push(part),
        }
    }
    let cleaned = parts.join("/");
    match (rooted, cleaned.is_empty()) {
        (true, _) => format!("/{cleaned}"),
        (false, true) => ".".to_owned(),
        (false, false) => cleaned,
    }
}

/// A UUID (version 5 layout) made of the first 16 bytes of `hash`.
fn uuid(hash: &[u8]) -> String {
    let mut bytes: [u8; 16] = hash[..16].try_into().expect("a sha256 has 32 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::output::atomic::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests;
