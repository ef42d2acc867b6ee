//! LinuxKit YAML: reading, checking and merging configuration files.
//!
//! A file is parsed into a tree of positioned YAML values ([`yaml`]), checked
//! against LinuxKit's schema ([`schema`], [`check`]) so that every problem is
//! reported with its file, line and column, decoded into typed values
//! ([`model`]), and merged with the files before it as `linuxkit build`
//! merges them.

mod check;
mod model;
mod problem;
pub mod rules;
mod schema;
mod volumes;
mod yaml;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

pub use model::{
    Boot, Config, ContainerSettings, Device, File, Id, IdMapping, Image, Interface, Kernel,
    Located, Mount, Runtime, Volume,
};
pub use problem::{Position, Problem, Problems};

use check::Checker;
use schema::Type;
use yaml::{Node, Value};

/// The text of one configuration file and the name it is reported under.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// The path that means standard input, as in LinuxKit.
pub const STDIN: &str = "-";

/// The most bytes a configuration file may hold. LinuxKit's largest
/// examples are a few KiB; the cap keeps `/dev/zero` or an endless pipe
/// from growing the process without end.
pub const MAX_CONFIG_SIZE: u64 = 16 * 1024 * 1024;

/// A configuration file could not be read; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// More than [`MAX_CONFIG_SIZE`] bytes.
    #[error("it holds more than {MAX_CONFIG_SIZE} bytes (16 MiB), the most a configuration may")]
    TooLarge,
    /// YAML is text.
    #[error("it is not UTF-8 text")]
    NotText(#[source] std::string::FromUtf8Error),
}

impl Source {
    /// Reads `path`, or standard input for `-`, up to [`MAX_CONFIG_SIZE`]
    /// bytes. Pipes and process substitution (`<(…)`) are read like files.
    pub fn read(path: &Path) -> Result<Source, ReadError> {
        if path == Path::new(STDIN) {
            Ok(Source {
                path: PathBuf::from("<stdin>"),
                text: read_capped(std::io::stdin().lock())?,
            })
        } else {
            Ok(Source {
                path: path.to_owned(),
                text: read_capped(std::fs::File::open(path)?)?,
            })
        }
    }
}

/// The text `reader` holds, if it is no more than [`MAX_CONFIG_SIZE`] bytes.
fn read_capped(reader: impl Read) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    reader.take(MAX_CONFIG_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_SIZE {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(ReadError::NotText)
}

/// A configuration that passed its checks, and what deserves a warning.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Problem>,
}

/// Parses, checks and merges `sources` in order. Every problem found is
/// returned, not just the first; a YAML syntax error ends the checks of
/// its own file only.
pub fn load(sources: &[Source]) -> Result<Loaded, Problems> {
    let mut checker = Checker::default();
    let mut warnings = Vec::new();
    let mut config = Config::default();
    for source in sources {
        let file = Arc::new(source.path.clone());
        match yaml::parse(file, &source.text) {
            Ok(root) => {
                let part = decode_file(&mut checker, &mut warnings, &root);
                config.append(part);
            }
            Err(problem) => checker.problems.push(problem),
        }
    }
    check_unique_names(&mut checker, "services", &config.services, |i| &i.name);
    check_unique_names(&mut checker, "volumes", &config.volumes, |v| &v.name);
    for (section, containers) in [
        ("onboot", &config.onboot),
        ("onshutdown", &config.onshutdown),
        ("services", &config.services),
    ] {
        volumes::check_binds(&mut checker, section, containers, &config.volumes);
    }
    for file in &config.files {
        check_file(&mut checker, file);
    }
    if checker.problems.is_empty() {
        Ok(Loaded { config, warnings })
    } else {
        Err(Problems(checker.problems))
    }
}

/// Parses and checks an image's `org.mobyproject.config` label: YAML or
/// JSON holding the settings of a container entry. As in LinuxKit, it is
/// checked against the container schema with a placeholder `name` and
/// `image`, and may not set either itself. `source.path` names the label in
/// messages.
pub fn load_label(source: &Source) -> Result<ContainerSettings, Problems> {
    let file = Arc::new(source.path.clone());
    let root = yaml::parse(file, &source.text).map_err(|problem| Problems(vec![problem]))?;
    let mut checker = Checker::default();
    let Value::Map(entries) = &root.value else {
        checker.report(
            &root.position,
            format!("the label must be a mapping, found {}", root.value.kind()),
        );
        return Err(Problems(checker.problems));
    };
    let mut settings: Vec<_> = Vec::with_capacity(entries.len() + 2);
    for (key, value) in entries {
        if key.name == "name" || key.name == "image" {
            checker.report(
                &key.position,
                format!("`{}` cannot be set in an image label", key.name),
            );
        } else {
            settings.push((key.clone(), value.clone()));
        }
    }
    for name in ["name", "image"] {
        let position = root.position.clone();
        settings.push((
            yaml::Key {
                name: name.into(),
                position: position.clone(),
            },
            Node {
                value: Value::Str("label".into()),
                position,
            },
        ));
    }
    let with_placeholders = Node {
        value: Value::Map(settings),
        position: root.position.clone(),
    };
    let image: Option<Located<Image>> = decode(
        &mut checker,
        &with_placeholders,
        &Type::Object(schema::IMAGE),
        "label",
    );
    match image {
        Some(image) if checker.problems.is_empty() => Ok(image.value.settings),
        _ => Err(Problems(checker.problems)),
    }
}

impl Config {
    /// Merges a later file into this configuration, as LinuxKit's
    /// `AppendConfig`: kernel image, cmdline and binary override when
    /// non-empty; tar and ucode override when written at all, even empty;
    /// every list appends.
    pub fn append(&mut self, later: Config) {
        if let Some(new) = later.kernel {
            match &mut self.kernel {
                None => self.kernel = Some(new),
                Some(old) => {
                    let non_empty = |s: &Option<String>| s.as_ref().is_some_and(|s| !s.is_empty());
                    if non_empty(&new.image) {
                        old.value.image = new.value.image.clone();
                        old.position = new.position.clone();
                    }
                    if non_empty(&new.cmdline) {
                        old.value.cmdline = new.value.cmdline.clone();
                    }
                    if non_empty(&new.binary) {
                        old.value.binary = new.value.binary.clone();
                    }
                    if new.tar.is_some() {
                        old.value.tar = new.value.tar.clone();
                    }
                    if new.ucode.is_some() {
                        old.value.ucode = new.value.ucode.clone();
                    }
                }
            }
        }
        self.init.extend(later.init);
        self.onboot.extend(later.onboot);
        self.onshutdown.extend(later.onshutdown);
        self.services.extend(later.services);
        self.files.extend(later.files);
        self.volumes.extend(later.volumes);
        if later.boot.is_some() {
            self.boot = later.boot;
        }
    }
}

/// Decodes one file's root mapping, reporting problems in `checker`.
fn decode_file(checker: &mut Checker, warnings: &mut Vec<Problem>, root: &Node) -> Config {
    let mut config = Config::default();
    let Value::Map(entries) = &root.value else {
        if !matches!(root.value, Value::Null) {
            checker.report(
                &root.position,
                format!(
                    "expected a mapping with keys such as kernel, init, onboot, services; found {}",
                    root.value.kind()
                ),
            );
        }
        return config;
    };
    for (key, node) in entries {
        if matches!(node.value, Value::Null) {
            continue;
        }
        let section = key.name.as_str();
        match section {
            "kernel" => {
                config.kernel = decode(checker, node, &Type::Object(schema::KERNEL), section)
            }
            "init" => config.init = decode_list(checker, node, &schema::INIT_IMAGE, section),
            "onboot" => {
                config.onboot = decode_list(checker, node, &Type::Object(schema::IMAGE), section)
            }
            "onshutdown" => {
                config.onshutdown =
                    decode_list(checker, node, &Type::Object(schema::IMAGE), section)
            }
            "services" => {
                config.services = decode_list(checker, node, &Type::Object(schema::IMAGE), section)
            }
            "files" => {
                config.files = decode_list(checker, node, &Type::Object(schema::FILE), section)
            }
            "volumes" => {
                config.volumes = decode_list(checker, node, &Type::Object(schema::VOLUME), section)
            }
            "boot" => config.boot = decode(checker, node, &Type::Object(schema::BOOT), section),
            "trust" => {
                if checker
                    .check(node, &Type::Object(schema::TRUST), section)
                    .is_some()
                {
                    warnings.push(Problem {
                        position: key.position.clone(),
                        message: "`trust` is ignored: ossify verifies images by digest instead"
                            .into(),
                    });
                }
            }
            _ => checker.report(
                &key.position,
                format!(
                    "unknown key `{section}`; expected one of: {}",
                    schema::ROOT_KEYS.join(", ")
                ),
            ),
        }
    }
    config
}

/// Checks and decodes one value.
fn decode<T: DeserializeOwned>(
    checker: &mut Checker,
    node: &Node,
    ty: &Type,
    at: &str,
) -> Option<Located<T>> {
    let before = checker.problems.len();
    let json = checker.check(node, ty, at)?;
    if checker.problems.len() > before {
        return None;
    }
    match serde_json::from_value(json) {
        Ok(value) => Some(Located {
            value,
            position: node.position.clone(),
        }),
        Err(error) => {
            checker.report(&node.position, format!("{at}: {error}"));
            None
        }
    }
}

/// Checks and decodes a list section item by item, so each item keeps its
/// own position and a bad item does not hide the others.
fn decode_list<T: DeserializeOwned>(
    checker: &mut Checker,
    node: &Node,
    item: &Type,
    section: &str,
) -> Vec<Located<T>> {
    let Value::Seq(items) = &node.value else {
        checker.report(
            &node.position,
            format!("{section}: expected a list, found {}", node.value.kind()),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, n)| decode(checker, n, item, &item_label(section, i, n)))
        .collect()
}

/// `services[2] (getty)`: the index alone is hard to find in a long file.
fn item_label(section: &str, index: usize, node: &Node) -> String {
    let name = match &node.value {
        Value::Map(entries) => entries.iter().find_map(|(k, v)| match &v.value {
            Value::Str(s) if k.name == "name" => Some(s.as_str()),
            _ => None,
        }),
        _ => None,
    };
    match name {
        Some(name) => format!("{section}[{index}] ({name})"),
        None => format!("{section}[{index}]"),
    }
}

/// Services run at the same time and volumes share a directory, so their
/// names must be unique across all files. onboot and onshutdown names may
/// repeat: they run one after another, in numbered directories.
fn check_unique_names<T>(
    checker: &mut Checker,
    section: &str,
    items: &[Located<T>],
    name: impl Fn(&T) -> &String,
) {
    let mut seen: BTreeMap<&str, &Position> = BTreeMap::new();
    for item in items {
        let item_name = name(&item.value).as_str();
        if let Some(first) = seen.get(item_name) {
            checker.report(
                &item.position,
                format!("duplicate {section} name `{item_name}`: first defined at {first}"),
            );
        } else {
            seen.insert(item_name, &item.position);
        }
    }
}

/// The rules LinuxKit applies to a `files` entry when it builds it.
fn check_file(checker: &mut Checker, file: &Located<File>) {
    let f = &file.value;
    let at = &file.position;
    if f.path.is_empty() {
        checker.report(at, "files: entry has no `path`");
        return;
    }
    let path = &f.path;
    if f.directory && f.contents.is_some() {
        checker.report(
            at,
            format!("files `{path}`: a directory cannot have `contents`"),
        );
    }
    let literal = f.directory || f.symlink.is_some() || f.contents.is_some();
    match (literal, &f.source, &f.metadata) {
        (true, Some(_), _) => checker.report(
            at,
            format!("files `{path}`: `source` cannot be combined with `contents`, `directory` or `symlink`"),
        ),
        (true, None, Some(_)) => checker.report(
            at,
            format!("files `{path}`: `metadata` cannot be combined with `contents`, `directory` or `symlink`"),
        ),
        (false, Some(_), Some(_)) => checker.report(
            at,
            format!("files `{path}`: give either `source` or `metadata`, not both"),
        ),
        (false, None, None) => checker.report(
            at,
            format!(
                "files `{path}`: nothing to write; give one of `contents`, `source`, `metadata`, `directory` or `symlink`"
            ),
        ),
        _ => {}
    }
}
