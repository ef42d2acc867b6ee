//! File identifiers for the two directory trees: ISO 9660 level 1 (8.3
//! d-characters, what every reader understands) and Joliet (UCS-2, what
//! Windows shows). The real POSIX name travels in Rock Ridge's NM entry.
//!
//! Both squeeze names into a smaller alphabet or length, so distinct names can
//! collide; a collision is resolved by replacing the name's tail with a
//! counter, in name order, so the result is deterministic.

use std::collections::HashSet;

/// Longest level-1 file name part and extension, and directory name.
const NAME_LEN: usize = 8;
const EXTENSION_LEN: usize = 3;
/// Longest Joliet name, in UCS-2 characters.
const JOLIET_LEN: usize = 64;
/// The version suffix every ISO 9660 and Joliet file name carries.
const VERSION: &str = ";1";

/// The ISO 9660 identifier of each of one directory's children, given as
/// (name, is a directory) in name order.
pub(super) fn iso_identifiers(children: &[(&[u8], bool)]) -> Vec<Vec<u8>> {
    let mut used = HashSet::new();
    children
        .iter()
        .map(|&(name, is_dir)| {
            let (base, extension) = if is_dir {
                (d_characters(name), String::new())
            } else {
                match name.iter().rposition(|&byte| byte == b'.') {
                    Some(dot) => (d_characters(&name[..dot]), d_characters(&name[dot + 1..])),
                    None => (d_characters(name), String::new()),
                }
            };
            let extension: String = extension.chars().take(EXTENSION_LEN).collect();
            unique(&mut used, |counter| {
                let base = with_counter(&base, NAME_LEN, counter);
                if is_dir {
                    base
                } else {
                    format!("{base}.{extension}{VERSION}")
                }
            })
            .into_bytes()
        })
        .collect()
}

/// The Joliet identifier (UCS-2 big-endian) of each of one directory's
/// children, given as (name, is a directory) in name order.
pub(super) fn joliet_identifiers(children: &[(&[u8], bool)]) -> Vec<Vec<u8>> {
    let mut used = HashSet::new();
    children
        .iter()
        .map(|&(name, is_dir)| {
            let name: String = String::from_utf8_lossy(name)
                .chars()
                .map(|c| {
                    let forbidden = c < ' ' || matches!(c, '*' | '/' | ':' | ';' | '?' | '\\');
                    // Outside the Basic Multilingual Plane UCS-2 has no code.
                    if forbidden || u32::from(c) > 0xFFFF {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            let version = if is_dir { "" } else { VERSION };
            let name = unique(&mut used, |counter| {
                format!("{}{version}", with_counter(&name, JOLIET_LEN, counter))
            });
            ucs2(&name)
        })
        .collect()
}

/// `text` in UCS-2 big-endian, as Joliet records it.
pub(super) fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// `name` upper-cased, with every byte outside the d-characters (A-Z, 0-9,
/// _) replaced by `_`.
pub(super) fn d_characters(name: &[u8]) -> String {
    name.iter()
        .map(|&byte| {
            let upper = byte.to_ascii_uppercase();
            if upper.is_ascii_uppercase() || upper.is_ascii_digit() {
                char::from(upper)
            } else {
                '_'
            }
        })
        .collect()
}

/// `name` cut to `max` characters, its tail replaced by `counter` if given.
fn with_counter(name: &str, max: usize, counter: Option<u32>) -> String {
    let suffix = counter.map(|n| n.to_string()).unwrap_or_default();
    let kept: String = name.chars().take(max - suffix.len()).collect();
    kept + &suffix
}

/// The first of `make(None)`, `make(Some(1))`, `make(Some(2))`, … not yet
/// in `used`, which it is added to.
fn unique(used: &mut HashSet<String>, make: impl Fn(Option<u32>) -> String) -> String {
    let mut candidate = make(None);
    let mut counter = 0;
    while used.contains(&candidate) {
        counter += 1;
        candidate = make(Some(counter));
    }
    used.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(children: &[(&str, bool)]) -> Vec<String> {
        let children: Vec<(&[u8], bool)> = children
            .iter()
            .map(|&(name, dir)| (name.as_bytes(), dir))
            .collect();
        iso_identifiers(&children)
            .into_iter()
            .map(|id| String::from_utf8(id).unwrap())
            .collect()
    }

    #[test]
    fn iso_identifiers_are_8_3_d_characters_with_version() {
        assert_eq!(
            iso(&[
                ("isolinux.bin", false),
                ("initrd.img", false),
                ("vmlinuz", false),
                (".hidden-file.conf", false),
                ("boot-loader.d", true),
            ]),
            [
                "ISOLINUX.BIN;1",
                "INITRD.IMG;1",
                "VMLINUZ.;1",
                "_HIDDEN_.CON;1",
                "BOOT_LOA"
            ]
        );
    }

    #[test]
    fn colliding_identifiers_get_counters() {
        assert_eq!(
            iso(&[
                ("ldlinux.c32", false),
                ("ldlinux.c32x", false),
                ("LDLINUX.C32", false)
            ]),
            ["LDLINUX.C32;1", "LDLINUX1.C32;1", "LDLINUX2.C32;1"]
        );
    }

    #[test]
    fn joliet_identifiers_keep_case_and_replace_forbidden_characters() {
        let ids = joliet_identifiers(&[(b"Read Me;x.txt", false), (b"EFI", true)]);
        assert_eq!(ids, [ucs2("Read Me_x.txt;1"), ucs2("EFI")]);
    }
}
