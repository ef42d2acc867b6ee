//! PE executables (the UKI): DOS stub, headers, section table, and the
//! section an offset falls in, whose contents (the initrd) are described
//! in turn.

use super::Pair;
use super::source::{Fields, Source, c_string};

/// The most sections read; PE allows 96.
const MAX_SECTIONS: u64 = 96;
const SECTION: u64 = 40;

/// Whether `source` has a PE signature where its DOS header points.
pub(crate) fn is_pe(source: &dyn Source) -> bool {
    source
        .bytes(0x3c, 4)
        .and_then(|at| source.bytes(u64::from(at.le32(0)), 4))
        .is_some_and(|signature| signature == b"PE\0\0")
}

/// The breadcrumb of `offset` in the PE file of `pair`.
pub(crate) fn describe(pair: &Pair<'_>, offset: u64) -> Vec<String> {
    let source = pair.expected;
    if !is_pe(source) {
        return Vec::new();
    }
    let pe = u64::from(source.bytes(0x3c, 4).unwrap_or_default().le32(0));
    if offset < pe {
        return vec!["DOS header and stub".to_owned()];
    }
    let Some(coff) = source.bytes(pe, 24) else {
        return Vec::new();
    };
    let table = pe + 24 + u64::from(coff.le16(20));
    if offset < table {
        return vec!["PE headers".to_owned()];
    }
    let count = u64::from(coff.le16(6)).min(MAX_SECTIONS);
    if offset < table + count * SECTION {
        return vec!["section table".to_owned()];
    }
    let sections = source.bytes(table, count * SECTION).unwrap_or_default();
    for section in sections.chunks_exact(SECTION as usize) {
        let start = u64::from(section.le32(20));
        let range = start..start + u64::from(section.le32(16));
        if range.contains(&offset) {
            let mut crumbs = vec![format!("section {}", c_string(&section[..8]))];
            crumbs.extend(pair.nested(range, offset));
            return crumbs;
        }
    }
    vec!["outside any section".to_owned()]
}
