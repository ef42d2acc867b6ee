//! File names on FAT: the 8.3 short name every entry has, and when the name
//! does not fit 8.3 as written, a VFAT long name beside it.
//!
//! A name that is already a valid upper-case 8.3 name is stored as is, with no
//! long name (how `EFI/BOOT/BOOTX64.EFI` is expected to look). Any other name
//! gets a long name and a generated `BASIS~N.EXT` short name, unique within
//! its directory, following the Windows scheme.

use std::collections::HashSet;

/// Length of a short name: 8 for the base, 3 for the extension, space-padded.
pub(super) const SHORT_NAME_LEN: usize = 11;
/// Longest long name, in UTF-16 units.
const MAX_LONG_NAME: usize = 255;
/// Characters beyond A–Z and 0–9 that a short name may hold.
const SHORT_NAME_SYMBOLS: &[u8] = b"$%'-_@~`!(){}^#&";
/// Characters a long name may not hold (besides control characters).
const LONG_NAME_FORBIDDEN: &[char] = &['"', '*', '/', ':', '<', '>', '?', '\\', '|'];

/// A space-padded 8.3 name as stored in a directory entry.
pub(super) type ShortName = [u8; SHORT_NAME_LEN];

/// The names of one directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EntryName {
    pub short: ShortName,
    /// The long name in UTF-16, when the name needs one.
    pub long: Option<Vec<u16>>,
}

/// Why a path component cannot be a FAT name, or `None` if it can.
pub(super) fn invalid_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Some("empty, `.` and `..` are not file names")
    } else if name.ends_with(['.', ' ']) {
        Some("FAT names cannot end in a dot or space")
    } else if name
        .chars()
        .any(|c| c.is_control() || LONG_NAME_FORBIDDEN.contains(&c))
    {
        Some(r#"FAT names cannot hold control characters or any of " * / : < > ? \ |"#)
    } else if name.encode_utf16().count() > MAX_LONG_NAME {
        Some("FAT names are at most 255 UTF-16 characters")
    } else {
        None
    }
}

/// Names the entries of one directory, given in the order they are written.
/// Names that are valid 8.3 keep their short name; the others get the first
/// free `~N` short name in turn.
pub(super) fn name_entries(names: &[&str]) -> Vec<EntryName> {
    let exact: Vec<Option<ShortName>> = names.iter().map(|name| exact_short_name(name)).collect();
    let mut taken: HashSet<ShortName> = exact.iter().flatten().copied().collect();
    names
        .iter()
        .zip(exact)
        .map(|(name, exact)| match exact {
            Some(short) => EntryName { short, long: None },
            None => EntryName {
                short: numbered_short_name(name, &mut taken),
                long: Some(name.encode_utf16().collect()),
            },
        })
        .collect()
}

fn is_short_name_char(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit() || SHORT_NAME_SYMBOLS.contains(&byte)
}

/// The short name `name` already is, if it is a valid upper-case 8.3 name.
fn exact_short_name(name: &str) -> Option<ShortName> {
    let (base, extension) = name.split_once('.').unwrap_or((name, ""));
    let valid = |part: &str, max: usize| part.len() <= max && part.bytes().all(is_short_name_char);
    if base.is_empty() || !valid(base, 8) || !valid(extension, 3) {
        return None;
    }
    Some(pad_short_name(base.as_bytes(), extension.as_bytes()))
}

fn pad_short_name(base: &[u8], extension: &[u8]) -> ShortName {
    let mut short = [b' '; SHORT_NAME_LEN];
    short[..base.len()].copy_from_slice(base);
    short[8..8 + extension.len()].copy_from_slice(extension);
    short
}

/// Upper-cases `part`, drops spaces and dots, and replaces what a short name
/// cannot hold with `_`.
fn short_name_basis(part: &str) -> Vec<u8> {
    part.chars()
        .filter(|c| *c != ' ' && *c != '.')
        .map(|c| {
            let upper = c.to_ascii_uppercase();
            if upper.is_ascii() && is_short_name_char(upper as u8) {
                upper as u8
            } else {
                b'_'
            }
        })
        .collect()
}

/// The first `BASIS~N.EXT` not in `taken`, which it joins.
fn numbered_short_name(name: &str, taken: &mut HashSet<ShortName>) -> ShortName {
    let trimmed = name.trim_start_matches('.');
    let (base, extension) = match trimmed.rsplit_once('.') {
        Some((base, extension)) => (base, extension),
        None => (trimmed, ""),
    };
    let mut base = short_name_basis(base);
    if base.is_empty() {
        base.push(b'_');
    }
    let mut extension = short_name_basis(extension);
    extension.truncate(3);
    // A directory holds at most 65536 entries, so a free number always exists.
    let mut number = 0u32;
    loop {
        number += 1;
        let tail = format!("~{number}");
        let keep = base.len().min(8 - tail.len());
        let short = pad_short_name(&[&base[..keep], tail.as_bytes()].concat(), &extension);
        if taken.insert(short) {
            return short;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(name: &EntryName) -> String {
        String::from_utf8(name.short.to_vec()).unwrap()
    }

    #[test]
    fn upper_case_8_3_names_need_no_long_name() {
        let names = name_entries(&["BOOTX64.EFI", "EFI", "A_B-C$.X"]);
        assert_eq!(short(&names[0]), "BOOTX64 EFI");
        assert_eq!(short(&names[1]), "EFI        ");
        assert_eq!(short(&names[2]), "A_B-C$  X  ");
        assert!(names.iter().all(|name| name.long.is_none()));
    }

    #[test]
    fn other_names_get_unique_numbered_short_names() {
        let names = name_entries(&[
            "vmlinuz",
            "initrd.img",
            "Long File Name.tar.gz",
            "Long File Name.tar.xz",
            "LONGFI~1.GZ",
            ".hidden",
            "a+b",
        ]);
        let shorts: Vec<String> = names.iter().map(short).collect();
        assert_eq!(
            shorts,
            [
                "VMLINU~1   ",
                "INITRD~1IMG",
                "LONGFI~2GZ ",
                "LONGFI~1XZ ",
                "LONGFI~1GZ ",
                "HIDDEN~1   ",
                "A_B~1      ",
            ]
        );
        assert_eq!(
            names[0].long.as_deref(),
            Some(&*"vmlinuz".encode_utf16().collect::<Vec<_>>())
        );
        assert!(names[4].long.is_none());
    }

    #[test]
    fn ten_collisions_shorten_the_basis() {
        let names: Vec<String> = (0..10).map(|i| format!("document{i}.txt")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let entries = name_entries(&refs);
        assert_eq!(short(&entries[8]), "DOCUME~9TXT");
        assert_eq!(short(&entries[9]), "DOCUM~10TXT");
    }

    #[test]
    fn rejects_names_fat_cannot_hold() {
        for name in ["", ".", "..", "a.", "a ", "a:b", "a*", "tab\t"] {
            assert!(invalid_reason(name).is_some(), "{name:?}");
        }
        assert!(invalid_reason(&"x".repeat(256)).is_some());
        assert!(invalid_reason("grub.cfg").is_none());
    }
}
