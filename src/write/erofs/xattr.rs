//! Inline extended attributes: the area right after an inode's core, an
//! `erofs_xattr_ibody_header` followed by `erofs_xattr_entry`s, each padded
//! to 4 bytes.
//!
//! Names are stored as a prefix index plus the rest of the name. Linux 6.1
//! knows only the fixed prefixes below (long prefixes came in 6.4), so an
//! attribute in any other namespace cannot be stored and is an error.
//! Shared xattrs are not used: every inode carries its own.

use std::collections::BTreeMap;

use super::ErofsError;

/// `EROFS_XATTR_INDEX_*` and the name each stands for. The POSIX ACL
/// indexes stand for a whole name; the others for a prefix.
const PREFIXES: [(u8, &str, Match); 5] = [
    (1, "user.", Match::Prefix),
    (2, "system.posix_acl_access", Match::Whole),
    (3, "system.posix_acl_default", Match::Whole),
    (4, "trusted.", Match::Prefix),
    (6, "security.", Match::Prefix),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Match {
    Prefix,
    Whole,
}

/// `sizeof(struct erofs_xattr_ibody_header)`.
const HEADER: usize = 12;
/// `sizeof(struct erofs_xattr_entry)`.
const ENTRY_HEADER: usize = 4;
/// The longest name suffix: `e_name_len` is one byte.
const MAX_SUFFIX: usize = u8::MAX as usize;
/// The largest value: `e_value_size` is 16 bits.
const MAX_VALUE: usize = u16::MAX as usize;

/// The inline xattr area of the node at `path`, empty without xattrs.
/// Its length is a multiple of 4, as `i_xattr_icount` counts 4-byte words.
pub fn encode(path: &str, xattrs: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, ErofsError> {
    if xattrs.is_empty() {
        return Ok(Vec::new());
    }
    let mut area = vec![0; HEADER];
    for (name, value) in xattrs {
        let (index, suffix) = split_name(name).ok_or_else(|| ErofsError::XattrNamespace {
            path: path.to_owned(),
            name: name.clone(),
        })?;
        if suffix.len() > MAX_SUFFIX || value.len() > MAX_VALUE {
            return Err(ErofsError::XattrTooLarge {
                path: path.to_owned(),
                name: name.clone(),
                value_len: value.len(),
            });
        }
        area.push(suffix.len() as u8);
        area.push(index);
        area.extend_from_slice(&(value.len() as u16).to_le_bytes());
        area.extend_from_slice(suffix.as_bytes());
        area.extend_from_slice(value);
        area.resize(area.len().next_multiple_of(ENTRY_HEADER), 0);
    }
    if icount(area.len()).is_none() {
        return Err(ErofsError::XattrsTooLarge {
            path: path.to_owned(),
            len: area.len(),
        });
    }
    Ok(area)
}

/// `i_xattr_icount` for an area of `len` bytes: the header counts as one
/// word, each further 4 bytes as another. `None` when it overflows 16 bits.
pub fn icount(len: usize) -> Option<u16> {
    if len == 0 {
        return Some(0);
    }
    u16::try_from(1 + (len - HEADER) / 4).ok()
}

/// The prefix index and the rest of `name`.
fn split_name(name: &str) -> Option<(u8, &str)> {
    PREFIXES
        .iter()
        .find_map(|&(index, prefix, kind)| match kind {
            Match::Whole => (name == prefix).then_some((index, "")),
            Match::Prefix => name
                .strip_prefix(prefix)
                .filter(|suffix| !suffix.is_empty())
                .map(|suffix| (index, suffix)),
        })
}

/// Reads an inline xattr area back into full names and values.
#[cfg(test)]
pub fn decode(area: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut xattrs = Vec::new();
    let mut at = HEADER;
    assert_eq!(area[4], 0, "h_shared_count: no shared xattrs are written");
    while at < area.len() {
        let name_len = area[at] as usize;
        let index = area[at + 1];
        let value_len = u16::from_le_bytes([area[at + 2], area[at + 3]]) as usize;
        let name_at = at + ENTRY_HEADER;
        let suffix = std::str::from_utf8(&area[name_at..name_at + name_len]).unwrap();
        let prefix = PREFIXES
            .iter()
            .find(|(known, ..)| *known == index)
            .map(|(_, prefix, _)| *prefix)
            .unwrap();
        let value = &area[name_at + name_len..name_at + name_len + value_len];
        xattrs.push((format!("{prefix}{suffix}"), value.to_vec()));
        at = (name_at + name_len + value_len).next_multiple_of(ENTRY_HEADER);
    }
    xattrs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xattrs(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_vec()))
            .collect()
    }

    #[test]
    fn names_are_split_on_known_prefixes_and_read_back() {
        let capability: &[u8] = &[
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let all = xattrs(&[
            ("security.capability", capability),
            ("system.posix_acl_access", b"\x02\0\0\0"),
            ("trusted.overlay.opaque", b"y"),
            ("user.a", b""),
        ]);
        let area = encode("f", &all).unwrap();
        assert_eq!(area.len() % 4, 0);
        // The first entry: "capability" under index 6.
        assert_eq!(&area[12..16], &[10, 6, 20, 0]);
        assert_eq!(&area[16..26], b"capability");
        let decoded: BTreeMap<String, Vec<u8>> = decode(&area).into_iter().collect();
        assert_eq!(decoded, all);
        assert_eq!(icount(area.len()), Some(1 + (area.len() as u16 - 12) / 4));
    }

    #[test]
    fn no_xattrs_is_no_area() {
        assert!(encode("f", &BTreeMap::new()).unwrap().is_empty());
        assert_eq!(icount(0), Some(0));
    }

    #[test]
    fn unknown_namespaces_and_oversized_entries_are_errors() {
        for name in ["system.sockprotoname", "user.", "osx.foo"] {
            let error = encode("f", &xattrs(&[(name, b"v")])).unwrap_err();
            assert!(
                matches!(error, ErofsError::XattrNamespace { .. }),
                "{name}: {error}"
            );
        }
        let long_name = format!("user.{}", "n".repeat(256));
        let error = encode("f", &xattrs(&[(&long_name, b"v")])).unwrap_err();
        assert!(matches!(error, ErofsError::XattrTooLarge { .. }), "{error}");
        let value = vec![0; 65536];
        let error = encode("f", &xattrs(&[("user.big", &value)])).unwrap_err();
        assert!(matches!(error, ErofsError::XattrTooLarge { .. }), "{error}");
    }

    #[test]
    fn too_many_words_for_the_icount_is_an_error() {
        let value = vec![7; 60_000];
        let many: BTreeMap<String, Vec<u8>> = (0..5)
            .map(|i| (format!("user.{i}"), value.clone()))
            .collect();
        let error = encode("f", &many).unwrap_err();
        assert!(
            matches!(error, ErofsError::XattrsTooLarge { .. }),
            "{error}"
        );
    }
}
