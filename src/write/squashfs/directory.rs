//! Directory listings in the directory table: runs of entries, each run
//! under a header naming the inode-table block its entries' inodes start in
//! and a base inode number the entries' numbers are stored relative to.

use super::inode::InodeType;
use super::metadata::MetadataRef;

/// Most entries under one header.
const MAX_RUN: u32 = 256;

/// One entry of a listing.
pub(super) struct DirEntry<'a> {
    pub name: &'a [u8],
    /// Where the entry's inode starts in the inode table.
    pub inode: MetadataRef,
    pub number: u32,
    pub inode_type: InodeType,
}

/// The listing of `entries` (sorted by name, names 1 to 256 bytes long), or
/// `None` if an inode-table block offset does not fit the header's 32 bits.
pub(super) fn encode(entries: &[DirEntry<'_>]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    // The open run: its header's place in `out`, block, base number, count.
    let mut run: Option<(usize, u64, u32, u32)> = None;
    for entry in entries {
        let fits = run.is_some_and(|(_, block, base, count)| {
            count < MAX_RUN
                && block == entry.inode.block
                && i16::try_from(i64::from(entry.number) - i64::from(base)).is_ok()
        });
        if !fits {
            let block = u32::try_from(entry.inode.block).ok()?;
            run = Some((out.len(), entry.inode.block, entry.number, 0));
            out.extend_from_slice(&0u32.to_le_bytes()); // count - 1, set below
            out.extend_from_slice(&block.to_le_bytes());
            out.extend_from_slice(&entry.number.to_le_bytes());
        }
        let (header, _, base, count) = run.as_mut()?;
        let delta = (i64::from(entry.number) - i64::from(*base)) as i16;
        out.extend_from_slice(&entry.inode.offset.to_le_bytes());
        out.extend_from_slice(&delta.to_le_bytes());
        out.extend_from_slice(&(entry.inode_type as u16).to_le_bytes());
        out.extend_from_slice(&(entry.name.len() as u16 - 1).to_le_bytes());
        out.extend_from_slice(entry.name);
        out[*header..*header + 4].copy_from_slice(&count.to_le_bytes());
        *count += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &[u8], block: u64, number: u32) -> DirEntry<'_> {
        DirEntry {
            name,
            inode: MetadataRef { block, offset: 32 },
            number,
            inode_type: InodeType::File,
        }
    }

    fn headers(listing: &[u8]) -> Vec<(u32, u32, u32)> {
        let mut headers = Vec::new();
        let mut at = 0;
        let word = |at: usize| u32::from_le_bytes(listing[at..at + 4].try_into().unwrap());
        while at < listing.len() {
            let (count, block, base) = (word(at), word(at + 4), word(at + 8));
            headers.push((count + 1, block, base));
            at += 12;
            for _ in 0..=count {
                let size = u16::from_le_bytes([listing[at + 6], listing[at + 7]]);
                at += 8 + usize::from(size) + 1;
            }
        }
        headers
    }

    #[test]
    fn entries_share_a_header_while_they_can() {
        let names: Vec<Vec<u8>> = (0..300).map(|i| format!("f{i:03}").into_bytes()).collect();
        let mut entries: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| entry(name, 0, 10 + i as u32))
            .collect();
        entries[1].inode.block = 500;
        entries[2].inode.block = 500;
        entries[3].number = 40_000;
        let listing = encode(&entries).unwrap();
        assert_eq!(
            headers(&listing),
            vec![
                (1, 0, 10),
                (2, 500, 11),
                (1, 0, 40_000),
                (256, 0, 14),
                (40, 0, 270)
            ]
        );
        assert_eq!(&listing[12..14], &32u16.to_le_bytes(), "inode offset");
        assert_eq!(&listing[16..18], &2u16.to_le_bytes(), "type");
        assert_eq!(&listing[18..20], &3u16.to_le_bytes(), "name length - 1");
        assert_eq!(&listing[20..24], b"f000");
    }

    #[test]
    fn an_empty_directory_has_an_empty_listing() {
        assert_eq!(encode(&[]), Some(Vec::new()));
    }
}
