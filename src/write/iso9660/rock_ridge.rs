//! Rock Ridge (RRIP 1.10, "RRIP_1991A", over SUSP 1.12): POSIX modes, owners, link counts,
//! long names, symlinks and times in each directory record's system use
//! area. What does not fit a record's 255 bytes moves to continuation areas
//! (CE entries), each inside one sector as Linux requires.

use super::record::{DateTime, SECTOR, put_both_u32};

/// Every SUSP entry starts with a signature, its length and its version.
const HEADER: usize = 4;
/// An entry's length is one byte.
const ENTRY_MAX: usize = 255;
const CE_LEN: usize = 28;
/// Flag of NM and SL entries (and SL components): continued in the next.
const CONTINUE: u8 = 0x01;
/// SL component flags.
const COMPONENT_CURRENT: u8 = 0x02;
const COMPONENT_PARENT: u8 = 0x04;
const COMPONENT_ROOT: u8 = 0x08;
/// TF flags: modify, access and attribute-change times, 7-byte form.
const TF_MODIFY_ACCESS_ATTRIBUTES: u8 = 0x0E;

const ER_IDENTIFIER: &[u8] = b"RRIP_1991A";
const ER_DESCRIPTOR: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SOURCE: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

/// POSIX file type bits.
pub(super) const S_IFDIR: u32 = 0o040000;
pub(super) const S_IFREG: u32 = 0o100000;
pub(super) const S_IFLNK: u32 = 0o120000;

fn entry(signature: &[u8; 2], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(signature);
    out.push((HEADER + body.len()) as u8);
    out.push(1);
    out.extend_from_slice(body);
    out
}

/// SP: marks the volume as using SUSP; first entry of the root's "." record.
pub(super) fn sp() -> Vec<u8> {
    entry(b"SP", &[0xBE, 0xEF, 0])
}

/// ER: names the extension in use (Rock Ridge); in the root's "." record.
pub(super) fn er() -> Vec<u8> {
    let mut body = vec![
        ER_IDENTIFIER.len() as u8,
        ER_DESCRIPTOR.len() as u8,
        ER_SOURCE.len() as u8,
        1,
    ];
    body.extend_from_slice(ER_IDENTIFIER);
    body.extend_from_slice(ER_DESCRIPTOR);
    body.extend_from_slice(ER_SOURCE);
    entry(b"ER", &body)
}

/// PX: mode (type and permission bits), link count, owner and group.
pub(super) fn px(mode: u32, nlink: u32, uid: u32, gid: u32) -> Vec<u8> {
    let mut body = [0; 32];
    for (field, value) in body.chunks_mut(8).zip([mode, nlink, uid, gid]) {
        put_both_u32(field, value);
    }
    entry(b"PX", &body)
}

/// TF: the same time as modification, access and attribute change.
pub(super) fn tf(date: &DateTime) -> Vec<u8> {
    let mut body = vec![TF_MODIFY_ACCESS_ATTRIBUTES];
    for _ in 0..3 {
        body.extend_from_slice(&date.short());
    }
    entry(b"TF", &body)
}

/// NM entries carrying `name`, split where one entry cannot hold it.
pub(super) fn nm(name: &[u8]) -> Vec<Vec<u8>> {
    let room = ENTRY_MAX - HEADER - 1;
    let chunks: Vec<&[u8]> = name.chunks(room).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let flags = if index + 1 < chunks.len() {
                CONTINUE
            } else {
                0
            };
            let mut body = vec![flags];
            body.extend_from_slice(chunk);
            entry(b"NM", &body)
        })
        .collect()
}

/// SL entries carrying a symlink's `target`, split into path components and,
/// where one entry cannot hold them, into several entries.
pub(super) fn sl(target: &[u8]) -> Vec<Vec<u8>> {
    let room = ENTRY_MAX - HEADER - 1;
    let mut components: Vec<Vec<u8>> = Vec::new();
    if target.starts_with(b"/") {
        components.push(vec![COMPONENT_ROOT, 0]);
    }
    for part in target
        .split(|&byte| byte == b'/')
        .filter(|part| !part.is_empty())
    {
        match part {
            b"." => components.push(vec![COMPONENT_CURRENT, 0]),
            b".." => components.push(vec![COMPONENT_PARENT, 0]),
            _ => {
                let pieces: Vec<&[u8]> = part.chunks(room - 2).collect();
                for (index, piece) in pieces.iter().enumerate() {
                    let flags = if index + 1 < pieces.len() {
                        CONTINUE
                    } else {
                        0
                    };
                    let mut component = vec![flags, piece.len() as u8];
                    component.extend_from_slice(piece);
                    components.push(component);
                }
            }
        }
    }
    let mut bodies: Vec<Vec<u8>> = vec![Vec::new()];
    for component in components {
        let current = bodies.last_mut().expect("bodies starts non-empty");
        if current.len() + component.len() > room {
            bodies.push(component);
        } else {
            current.extend_from_slice(&component);
        }
    }
    let count = bodies.len();
    bodies
        .into_iter()
        .enumerate()
        .map(|(index, components)| {
            let mut body = vec![if index + 1 < count { CONTINUE } else { 0 }];
            body.extend_from_slice(&components);
            entry(b"SL", &body)
        })
        .collect()
}

/// Where a piece of a system use area sits in the volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Location {
    pub sector: u32,
    pub offset: u32,
    pub len: u32,
}

/// A record's system use entries split into the part in the record and the
/// parts in continuation areas. Every part but the last is followed by a
/// CE entry pointing at the next.
pub(super) struct SystemUse {
    parts: Vec<Vec<u8>>,
}

impl SystemUse {
    /// Splits `entries` so the first part fits `inline_room` bytes and every
    /// other part one sector, each with room for its CE entry.
    pub(super) fn split(entries: Vec<Vec<u8>>, inline_room: usize) -> SystemUse {
        let total: usize = entries.iter().map(Vec::len).sum();
        if total <= inline_room {
            return SystemUse {
                parts: vec![entries.concat()],
            };
        }
        let mut parts = vec![Vec::new()];
        let mut room = inline_room - CE_LEN;
        let mut remaining = total;
        for entry in entries {
            let current = parts.last_mut().expect("parts starts non-empty");
            // The last part needs no CE, so it may use the whole room.
            let fits_as_last = current.len() + remaining <= room + CE_LEN;
            if current.len() + entry.len() > room && !fits_as_last {
                parts.push(Vec::new());
                room = SECTOR - CE_LEN;
            }
            remaining -= entry.len();
            parts
                .last_mut()
                .expect("parts starts non-empty")
                .extend_from_slice(&entry);
        }
        SystemUse { parts }
    }

    /// The length of the part inside the record, with its CE entry.
    pub(super) fn inline_len(&self) -> usize {
        self.part_len(0)
    }

    /// The lengths of the continuation parts, each with its CE entry.
    pub(super) fn continuation_lens(&self) -> impl Iterator<Item = usize> + '_ {
        (1..self.parts.len()).map(|index| self.part_len(index))
    }

    fn part_len(&self, index: usize) -> usize {
        let ce = if index + 1 < self.parts.len() {
            CE_LEN
        } else {
            0
        };
        self.parts[index].len() + ce
    }

    /// Every part's bytes, its CE pointing at `continuations`, the places
    /// of parts 1.. in order.
    pub(super) fn encode(&self, continuations: &[Location]) -> Vec<Vec<u8>> {
        self.parts
            .iter()
            .enumerate()
            .map(|(index, part)| {
                let mut bytes = part.clone();
                if let Some(next) = continuations.get(index) {
                    let mut body = [0; 24];
                    put_both_u32(&mut body[0..8], next.sector);
                    put_both_u32(&mut body[8..16], next.offset);
                    put_both_u32(&mut body[16..24], next.len);
                    bytes.extend_from_slice(&entry(b"CE", &body));
                }
                bytes
            })
            .collect()
    }
}

/// Places continuation parts one after another in a run of sectors, a part
/// never crossing a sector boundary.
#[derive(Default)]
pub(super) struct ContinuationArea {
    len: usize,
}

impl ContinuationArea {
    /// Reserves `len` bytes; returns the sector (relative to the area's
    /// start) and offset.
    pub(super) fn reserve(&mut self, len: usize) -> (u32, u32) {
        if self.len % SECTOR + len > SECTOR {
            self.len += SECTOR - self.len % SECTOR;
        }
        let at = self.len;
        self.len += len;
        ((at / SECTOR) as u32, (at % SECTOR) as u32)
    }

    pub(super) fn sectors(&self) -> u64 {
        self.len.div_ceil(SECTOR) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sl_components_follow_rrip() {
        let entries = sl(b"/usr/../lib");
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0],
            [
                b"SL".as_slice(),
                &[19, 1, 0],
                &[8, 0],
                &[0, 3],
                b"usr",
                &[4, 0],
                &[0, 3],
                b"lib"
            ]
            .concat()
        );
    }

    #[test]
    fn long_names_and_targets_are_split_across_entries() {
        let name = vec![b'n'; 300];
        let entries = nm(&name);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0][4], CONTINUE);
        assert_eq!(entries[1][4], 0);
        let target = [b"a/".repeat(200), vec![b'x'; 600]].concat();
        let entries = sl(&target);
        assert!(entries.iter().all(|entry| entry.len() <= ENTRY_MAX));
        assert!(entries.len() > 2);
    }

    #[test]
    fn overflow_moves_to_continuation_parts_with_ce() {
        let entries = vec![vec![0; 100], vec![1; 100], vec![2; 100]];
        let split = SystemUse::split(entries, 150);
        assert_eq!(split.inline_len(), 100 + CE_LEN);
        assert_eq!(split.continuation_lens().collect::<Vec<_>>(), [200]);
        let location = Location {
            sector: 7,
            offset: 64,
            len: 200,
        };
        let parts = split.encode(&[location]);
        assert_eq!(&parts[0][100..102], b"CE");
        assert_eq!(parts[0][104..108], 7u32.to_le_bytes());
        assert_eq!(parts[1].len(), 200);
    }
}
