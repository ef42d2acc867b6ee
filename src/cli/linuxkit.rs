//! LinuxKit's single-dash long options (`-format iso-efi`, `-dir=out`), so a
//! `linuxkit build …` line in a CI file works with only the program name
//! changed.

use std::ffi::OsString;

/// LinuxKit's `build` flags and the ossify option each one means; `None`
/// marks flags that are accepted and ignored.
const BUILD_FLAGS: &[(&str, Option<&str>)] = &[
    ("format", Some("--format")),
    ("dir", Some("--dir")),
    ("name", Some("--name")),
    ("arch", Some("--arch")),
    ("size", Some("--size")),
    ("pull", Some("--pull")),
    ("cache", Some("--cache-dir")),
    ("no-sbom", Some("--no-sbom")),
    ("disable-content-trust", None),
];

/// Rewrites LinuxKit's spellings into ossify's, leaving everything else as
/// it is. Arguments after `--` are never touched.
pub fn translate_linuxkit_spellings<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut out = Vec::new();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        match translate(&arg) {
            Some(Some(spelled)) => out.push(spelled),
            Some(None) => {}
            None => out.push(arg),
        }
    }
    out
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
    let (_, ossify) = BUILD_FLAGS.iter().find(|(name, _)| *name == flag)?;
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
            translated(&["build", "-format", "iso-efi", "-dir=out", "-pull", "x.yml"]),
            [
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
                "build",
                "-disable-content-trust",
                "-o",
                "-",
                "-",
                "-v",
                "-f",
                "tar"
            ]),
            ["build", "-o", "-", "-", "-v", "-f", "tar"]
        );
    }

    #[test]
    fn nothing_after_double_dash_is_touched() {
        assert_eq!(
            translated(&["validate", "--", "-format"]),
            ["validate", "--", "-format"]
        );
    }
}
