//! LinuxKit's spellings of a command line, so that a `linuxkit …` line in a
//! CI file works with only the program name changed: single-dash long
//! options (`-format iso-efi`, `-dir=out`), the persistent flags LinuxKit
//! takes before the subcommand (`linuxkit --cache DIR -v 2 build …`), and
//! `-v N`, LinuxKit's logging level.

use std::ffi::OsString;

/// LinuxKit's flags and the ossify option each one means; `None` marks
/// flags that are accepted and ignored.
const FLAGS: &[(&str, Option<&str>)] = &[
    ("format", Some("--format")),
    ("dir", Some("--dir")),
    ("name", Some("--name")),
    ("arch", Some("--arch")),
    ("size", Some("--size")),
    ("pull", Some("--pull")),
    ("cache", Some("--cache-dir")),
    ("no-sbom", Some("--no-sbom")),
    ("sbom-output", Some("--sbom-output")),
    ("sbom-current-time", Some("--sbom-current-time")),
    ("dry-run", Some("--dry-run")),
    ("decompress-kernel", Some("--decompress-kernel")),
    ("input-tar", Some("--input-tar")),
    ("docker", Some("--docker")),
    ("mirror", Some("--mirror")),
    ("cert-file", Some("--ca-cert")),
    ("quiet", Some("--quiet")),
    ("verbose", Some("--verbose")),
    ("disable-content-trust", None),
];

/// LinuxKit's persistent flags, which it takes before the subcommand too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persistent {
    Cache,
    Mirror,
    CertFile,
    Quiet,
    Verbose,
}

impl Persistent {
    fn from_option(option: &str) -> Option<Persistent> {
        Some(match option {
            "--cache-dir" | "--cache" => Persistent::Cache,
            "--mirror" => Persistent::Mirror,
            "--ca-cert" | "--cert-file" => Persistent::CertFile,
            "-q" | "--quiet" => Persistent::Quiet,
            "-v" | "--verbose" => Persistent::Verbose,
            _ => return None,
        })
    }

    fn takes_value(self) -> bool {
        matches!(
            self,
            Persistent::Cache | Persistent::Mirror | Persistent::CertFile
        )
    }

    /// Whether ossify's `subcommand` has this option. LinuxKit accepts
    /// every persistent flag everywhere; where ossify's command has no use
    /// for one (`verify` reads no cache, `cache ls` prints no progress),
    /// it is dropped.
    fn applies_to(self, subcommand: &str) -> bool {
        match subcommand {
            "build" | "lock" | "pull" => true,
            "validate" => matches!(self, Persistent::Quiet | Persistent::Verbose),
            "cache" => self == Persistent::Cache,
            _ => false,
        }
    }
}

/// Rewrites LinuxKit's spellings into ossify's, leaving everything else as
/// it is. Arguments after `--` are never touched.
pub fn translate_linuxkit_spellings<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into).peekable();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    // Persistent flags before the subcommand, with their values.
    let mut leading: Vec<(Persistent, Vec<OsString>)> = Vec::new();
    let mut subcommand: Option<String> = None;
    // Where the subcommand's own arguments start in `out`.
    let mut insert_at = None;
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        let mut spelled = match translate(&arg) {
            Some(Some(spelled)) => vec![spelled],
            Some(None) => continue,
            None => vec![arg],
        };
        let option = spelled[0].to_str().unwrap_or_default().to_owned();
        let (name, inline_value) = match option.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (option.clone(), None),
        };
        let persistent = Persistent::from_option(&name);
        if persistent == Some(Persistent::Verbose) {
            let level = match inline_value {
                Some(level) => Some(level),
                None => args
                    .next_if(|next| logging_level(next).is_some())
                    .and_then(|next| next.into_string().ok()),
            };
            spelled = match level.as_deref().and_then(logging_level) {
                Some(level) => level.into_iter().map(OsString::from).collect(),
                None => spelled,
            };
        } else if persistent.is_some_and(Persistent::takes_value) && inline_value.is_none() {
            spelled.extend(args.next());
        }
        match (&subcommand, persistent) {
            (None, Some(persistent)) => leading.push((persistent, spelled)),
            (None, None) if !option.starts_with('-') => {
                subcommand = Some(option.clone());
                out.extend(spelled);
                // `cache` has subcommands of its own; its options follow them.
                if option == "cache" {
                    out.extend(args.next());
                }
                insert_at = Some(out.len());
            }
            _ => out.extend(spelled),
        }
    }
    if let (Some(subcommand), Some(at)) = (subcommand, insert_at) {
        let moved = leading
            .into_iter()
            .filter(|(persistent, _)| persistent.applies_to(&subcommand))
            .flat_map(|(_, spelled)| spelled);
        out.splice(at..at, moved);
    } else {
        out.extend(leading.into_iter().flat_map(|(_, spelled)| spelled));
    }
    out
}

/// LinuxKit's `-v N` as ossify's options: 0 is quiet, 1 (LinuxKit's
/// default, info) is ossify's default, 2 and 3 (debug, trace) are
/// `--verbose`. `None` when `text` is no level.
fn logging_level(text: impl AsRef<std::ffi::OsStr>) -> Option<Option<&'static str>> {
    match text.as_ref().to_str()? {
        "0" => Some(Some("--quiet")),
        "1" => Some(None),
        "2" | "3" => Some(Some("--verbose")),
        _ => None,
    }
}

/// `Some(Some(new))` for a LinuxKit flag, `Some(None)` for an ignored one,
/// `None` for anything else.
fn translate(arg: &OsString) -> Option<Option<OsString>> {
    let text = arg.to_str()?;
    let body = text.strip_prefix('-').filter(|b| !b.starts_with('-'))?;
    let (flag, value) = match body.split_once('=') {
        Some((flag, value)) => (flag, Some(value)),
        None => (body, None),
    };
    let (_, ossify) = FLAGS.iter().find(|(name, _)| *name == flag)?;
    Some(ossify.map(|long| match value {
        Some(value) => OsString::from(format!("{long}={value}")),
        None => OsString::from(long),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(args: &[&str]) -> Vec<String> {
        translate_linuxkit_spellings(args.iter().copied())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            translated(&[
                "ossify", "build", "-format", "iso-efi", "-dir=out", "-pull", "x.yml"
            ]),
            [
                "ossify",
                "build",
                "--format",
                "iso-efi",
                "--dir=out",
                "--pull",
                "x.yml"
            ]
        );
    }

    #[test]
    fn ignored_flags_vanish_and_others_stay() {
        assert_eq!(
            translated(&[
                "ossify",
                "build",
                "-disable-content-trust",
                "-o",
                "-",
                "-",
                "-v",
                "-f",
                "tar"
            ]),
            ["ossify", "build", "-o", "-", "-", "-v", "-f", "tar"]
        );
    }

    #[test]
    fn nothing_after_double_dash_is_touched() {
        assert_eq!(
            translated(&["ossify", "validate", "--", "-format", "-v", "2"]),
            ["ossify", "validate", "--", "-format", "-v", "2"]
        );
    }

    #[test]
    fn persistent_flags_before_the_subcommand_move_after_it() {
        assert_eq!(
            translated(&[
                "linuxkit",
                "--cache",
                "/c",
                "-mirror=http://m",
                "--cert-file",
                "ca.pem",
                "-q",
                "build",
                "-format",
                "tar",
                "x.yml"
            ]),
            [
                "linuxkit",
                "build",
                "--cache",
                "/c",
                "--mirror=http://m",
                "--cert-file",
                "ca.pem",
                "-q",
                "--format",
                "tar",
                "x.yml"
            ]
        );
        assert_eq!(
            translated(&["linuxkit", "--cache", "/c", "-v", "2", "cache", "ls"]),
            ["linuxkit", "cache", "ls", "--cache", "/c"]
        );
        assert_eq!(
            translated(&["linuxkit", "-q", "--cache=/c", "verify", "m.json"]),
            ["linuxkit", "verify", "m.json"]
        );
    }

    #[test]
    fn a_logging_level_after_v_is_linuxkit_s() {
        let level = |line: &[&str]| translated(line)[1..].join(" ");
        assert_eq!(
            level(&["x", "-v", "0", "build", "a.yml"]),
            "build --quiet a.yml"
        );
        assert_eq!(level(&["x", "-v", "1", "build", "a.yml"]), "build a.yml");
        assert_eq!(
            level(&["x", "build", "-v", "2", "a.yml"]),
            "build --verbose a.yml"
        );
        assert_eq!(
            level(&["x", "build", "--verbose=3", "a.yml"]),
            "build --verbose a.yml"
        );
        assert_eq!(level(&["x", "build", "-v", "a.yml"]), "build -v a.yml");
        assert_eq!(
            level(&["x", "build", "-v", "4", "a.yml"]),
            "build -v 4 a.yml"
        );
    }
}
