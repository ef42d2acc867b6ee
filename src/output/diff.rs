//! What differs between two builds' manifests, input by input and output
//! by output, so a CI job that sees a new digest can say why in one screen.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::manifest::{HostFileRecord, Manifest};

/// One thing recorded differently by two manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What kind of thing: `ossify`, `option`, `config`, `image`,
    /// `source file`, `host file` or `output`.
    pub section: &'static str,
    /// Which one: an option's name, a config's file name, an image's
    /// reference, a file's path or name.
    pub key: String,
    /// What the first manifest records; `None` when it has no such thing.
    pub a: Option<String>,
    /// What the second manifest records; `None` when it has no such thing.
    pub b: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |value: &Option<String>| value.clone().unwrap_or_else(|| "(none)".into());
        write!(
            f,
            "{:<11} {}: {} → {}",
            self.section,
            self.key,
            side(&self.a),
            side(&self.b)
        )
    }
}

/// One section of a manifest as key → recorded value.
type Records = fn(&Manifest) -> BTreeMap<String, String>;

/// Every difference between `a` and `b`, inputs and options before
/// outputs, each section in key order.
pub fn diff(a: &Manifest, b: &Manifest) -> Vec<Change> {
    let sections: [(&'static str, Records); 7] = [
        ("ossify", |m| {
            m.ossify_version
                .iter()
                .map(|v| ("version".to_owned(), v.clone()))
                .collect()
        }),
        ("option", options),
        ("config", |m| {
            m.configs
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("{} ({})", i + 1, c.file), c.sha256.clone()))
                .collect()
        }),
        ("image", |m| {
            m.images
                .iter()
                .map(|i| {
                    (
                        format!("{} ({})", i.reference, i.platform),
                        i.resolved.clone(),
                    )
                })
                .collect()
        }),
        ("source file", |m| files(&m.source_files)),
        ("host file", |m| files(&m.host_files)),
        ("output", |m| {
            m.outputs
                .iter()
                .map(|o| {
                    (
                        o.file.to_string(),
                        format!("sha256:{} ({} bytes)", o.sha256, o.size),
                    )
                })
                .collect()
        }),
    ];
    let mut changes = Vec::new();
    for (section, records) in sections {
        let (a, b) = (records(a), records(b));
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let (a, b) = (a.get(key), b.get(key));
            if a != b {
                changes.push(Change {
                    section,
                    key: key.clone(),
                    a: a.cloned(),
                    b: b.cloned(),
                });
            }
        }
    }
    changes
}

/// The name, SOURCE_DATE_EPOCH and every recorded option, as compact JSON.
fn options(manifest: &Manifest) -> BTreeMap<String, String> {
    let mut options = BTreeMap::from([
        ("name".to_owned(), manifest.name.clone()),
        (
            "source_date_epoch".to_owned(),
            manifest.source_date_epoch.to_string(),
        ),
    ]);
    if let Some(recorded) = &manifest.options
        && let serde_json::Value::Object(fields) =
            serde_json::to_value(recorded).expect("options always serialise")
    {
        options.extend(fields.into_iter().map(|(k, v)| (k, v.to_string())));
    }
    options
}

fn files(records: &[HostFileRecord]) -> BTreeMap<String, String> {
    records
        .iter()
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::manifest::{ImageRecord, OutputRecord, VERSION};

    fn manifest(resolved: &str, sha256: &str) -> Manifest {
        Manifest {
            version: VERSION,
            ossify_version: Some("1.0.0".into()),
            name: "hello".into(),
            source_date_epoch: 1,
            options: None,
            configs: Vec::new(),
            images: vec![ImageRecord {
                reference: "localhost/app:1".into(),
                resolved: resolved.into(),
                platform: "linux/amd64".into(),
            }],
            source_files: Vec::new(),
            host_files: Vec::new(),
            outputs: vec![OutputRecord {
                format: "tar".into(),
                file: "hello.tar".to_owned().try_into().unwrap(),
                size: 10,
                sha256: sha256.into(),
            }],
        }
    }

    #[test]
    fn identical_manifests_have_no_changes() {
        let a = manifest("localhost/app:1@sha256:aa", "11");
        assert_eq!(diff(&a, &a.clone()), []);
    }

    #[test]
    fn a_moved_tag_shows_as_the_image_and_the_output_it_changed() {
        let a = manifest("localhost/app:1@sha256:aa", "11");
        let mut b = manifest("localhost/app:1@sha256:bb", "22");
        b.source_date_epoch = 2;
        let changes = diff(&a, &b);
        let summary: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.section, c.key.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("option", "source_date_epoch"),
                ("image", "localhost/app:1 (linux/amd64)"),
                ("output", "hello.tar"),
            ]
        );
        assert_eq!(changes[1].b.as_deref(), Some("localhost/app:1@sha256:bb"));
        assert_eq!(
            changes[2].to_string(),
            "output      hello.tar: sha256:11 (10 bytes) → sha256:22 (10 bytes)"
        );
    }

    #[test]
    fn something_only_one_build_has_shows_none_on_the_other_side() {
        let a = manifest("localhost/app:1@sha256:aa", "11");
        let mut b = a.clone();
        b.images.clear();
        let changes = diff(&a, &b);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].b, None);
        assert!(changes[0].to_string().ends_with("→ (none)"));
    }
}
