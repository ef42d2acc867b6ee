//! Volume descriptors (ECMA-119 8.4, Joliet's supplementary descriptor) and
//! path tables (9.4).

use super::names::ucs2;
use super::record::{SECTOR, put_both_u16, put_both_u32};

const TYPE_PRIMARY: u8 = 1;
const TYPE_SUPPLEMENTARY: u8 = 2;
const TYPE_TERMINATOR: u8 = 255;
/// Joliet's escape sequence for UCS-2 level 3.
const JOLIET_ESCAPE: &[u8] = b"%/E";
/// The 17-byte "not specified" date.
const NO_DATE: [u8; 17] = *b"0000000000000000\0";

/// Which of the two descriptors, and so which character set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavour {
    Primary,
    Joliet,
}

/// What a primary or Joliet volume descriptor records.
pub(super) struct Volume<'a> {
    pub flavour: Flavour,
    pub volume_id: &'a str,
    pub volume_sectors: u32,
    pub path_table_len: u32,
    pub l_path_table: u32,
    pub m_path_table: u32,
    /// The root directory's record (34 bytes).
    pub root_record: &'a [u8],
    pub date: [u8; 17],
}

impl Volume<'_> {
    pub(super) fn encode(&self) -> [u8; SECTOR] {
        let mut out = [0; SECTOR];
        let joliet = self.flavour == Flavour::Joliet;
        out[0] = if joliet {
            TYPE_SUPPLEMENTARY
        } else {
            TYPE_PRIMARY
        };
        out[1..6].copy_from_slice(b"CD001");
        out[6] = 1;
        let text = |out: &mut [u8], value: &str| {
            let encoded = if joliet {
                let mut encoded = ucs2(value);
                encoded.truncate(out.len() & !1);
                encoded
            } else {
                value.as_bytes()[..value.len().min(out.len())].to_vec()
            };
            let padding = if joliet { ucs2(" ") } else { b" ".to_vec() };
            for (slot, byte) in out
                .iter_mut()
                .zip(encoded.iter().chain(padding.iter().cycle()))
            {
                *slot = *byte;
            }
        };
        text(&mut out[8..40], ""); // system identifier
        text(&mut out[40..72], self.volume_id);
        put_both_u32(&mut out[80..88], self.volume_sectors);
        if joliet {
            out[88..88 + JOLIET_ESCAPE.len()].copy_from_slice(JOLIET_ESCAPE);
        }
        put_both_u16(&mut out[120..124], 1); // volume set size
        put_both_u16(&mut out[124..128], 1); // volume sequence number
        put_both_u16(&mut out[128..132], SECTOR as u16);
        put_both_u32(&mut out[132..140], self.path_table_len);
        out[140..144].copy_from_slice(&self.l_path_table.to_le_bytes());
        out[148..152].copy_from_slice(&self.m_path_table.to_be_bytes());
        out[156..190].copy_from_slice(self.root_record);
        // volume set, publisher, preparer, application; copyright,
        // abstract and bibliographic file identifiers
        for range in [
            190..318,
            318..446,
            446..574,
            574..702,
            702..739,
            739..776,
            776..813,
        ] {
            text(&mut out[range], "");
        }
        out[813..830].copy_from_slice(&self.date); // creation
        out[830..847].copy_from_slice(&self.date); // modification
        out[847..864].copy_from_slice(&NO_DATE); // expiration
        out[864..881].copy_from_slice(&self.date); // effective
        out[881] = 1; // file structure version
        out
    }
}

/// The volume descriptor set terminator.
pub(super) fn terminator() -> [u8; SECTOR] {
    let mut out = [0; SECTOR];
    out[0] = TYPE_TERMINATOR;
    out[1..6].copy_from_slice(b"CD001");
    out[6] = 1;
    out
}

/// One directory in a path table: its identifier, first sector and parent's
/// number (1-based, the root is its own parent).
pub(super) struct PathEntry<'a> {
    pub identifier: &'a [u8],
    pub extent: u32,
    pub parent: u16,
}

/// The length of a path table of `identifier_lens`.
pub(super) fn path_table_len(identifier_lens: impl Iterator<Item = usize>) -> usize {
    identifier_lens.map(|len| 8 + len + len % 2).sum()
}

/// A path table, little-endian (L) or big-endian (M).
pub(super) fn path_table(entries: &[PathEntry<'_>], big_endian: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.push(entry.identifier.len() as u8);
        out.push(0); // extended attribute record length
        if big_endian {
            out.extend_from_slice(&entry.extent.to_be_bytes());
            out.extend_from_slice(&entry.parent.to_be_bytes());
        } else {
            out.extend_from_slice(&entry.extent.to_le_bytes());
            out.extend_from_slice(&entry.parent.to_le_bytes());
        }
        out.extend_from_slice(entry.identifier);
        if entry.identifier.len() % 2 == 1 {
            out.push(0);
        }
    }
    out
}
