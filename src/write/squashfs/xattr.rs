//! Extended attributes: each distinct set of an inode's attributes is
//! stored once as key/value pairs in metadata blocks, and numbered by an
//! entry of the xattr id table (where the pairs start, how many, how many
//! bytes); inodes hold that number.
//!
//! Squashfs stores a name without its namespace prefix, as a type: only the
//! user, trusted and security namespaces exist. Values are stored inline
//! (never out of line), so sets sharing a value store it once per set.

use std::collections::BTreeMap;
use std::io;

use super::metadata::MetadataWriter;
use super::{Compression, SquashfsError};

/// The namespaces squashfs has, by type.
const PREFIXES: [&str; 3] = ["user.", "trusted.", "security."];

/// Builds the xattr pairs and id table.
pub(super) struct XattrTable {
    pairs: MetadataWriter,
    ids: Vec<u8>,
    known: BTreeMap<Vec<u8>, u32>,
    compression: Compression,
    block_size: u32,
}

impl XattrTable {
    pub fn new(compression: Compression, block_size: u32) -> Self {
        XattrTable {
            pairs: MetadataWriter::new(compression, block_size),
            ids: Vec::new(),
            known: BTreeMap::new(),
            compression,
            block_size,
        }
    }

    /// The xattr id of `xattrs` (those of the node at `path`), storing the
    /// set if it is new; `None` for no xattrs.
    pub fn add(
        &mut self,
        xattrs: &BTreeMap<String, Vec<u8>>,
        path: &str,
    ) -> Result<Option<u32>, SquashfsError> {
        if xattrs.is_empty() {
            return Ok(None);
        }
        let pairs = encode(xattrs, path)?;
        if let Some(&id) = self.known.get(&pairs) {
            return Ok(Some(id));
        }
        let id = self.known.len() as u32;
        let start = self.pairs.position().packed();
        let size = u32::try_from(pairs.len()).map_err(|_| SquashfsError::XattrTooLarge {
            path: path.to_owned(),
            name: String::from("(all of them)"),
        })?;
        self.pairs
            .write(&pairs)
            .map_err(|source| SquashfsError::io("the xattr table", source))?;
        self.ids.extend_from_slice(&start.to_le_bytes());
        self.ids
            .extend_from_slice(&(xattrs.len() as u32).to_le_bytes());
        self.ids.extend_from_slice(&size.to_le_bytes());
        self.known.insert(pairs, id);
        Ok(Some(id))
    }

    /// The tables as placed at absolute offset `start`: the pairs, the id
    /// entries, the id table header and its index; and the header's offset,
    /// for the superblock. `None` if no inode has xattrs.
    pub fn finish(self, start: u64) -> io::Result<Option<(Vec<u8>, u64)>> {
        if self.known.is_empty() {
            return Ok(None);
        }
        let (mut bytes, _) = self.pairs.finish()?;
        let mut ids = MetadataWriter::new(self.compression, self.block_size);
        ids.write(&self.ids)?;
        let (id_blocks, id_block_starts) = ids.finish()?;
        let ids_start = start + bytes.len() as u64;
        bytes.extend_from_slice(&id_blocks);
        let header_start = start + bytes.len() as u64;
        bytes.extend_from_slice(&start.to_le_bytes());
        bytes.extend_from_slice(&(self.known.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        for block in id_block_starts {
            bytes.extend_from_slice(&(ids_start + block).to_le_bytes());
        }
        Ok(Some((bytes, header_start)))
    }
}

/// The pairs of `xattrs` as stored: type, name length, name, value length,
/// value.
fn encode(xattrs: &BTreeMap<String, Vec<u8>>, path: &str) -> Result<Vec<u8>, SquashfsError> {
    let mut out = Vec::new();
    for (name, value) in xattrs {
        let (kind, suffix) = PREFIXES
            .iter()
            .enumerate()
            .find_map(|(kind, prefix)| Some((kind as u16, name.strip_prefix(prefix)?)))
            .filter(|(_, suffix)| !suffix.is_empty())
            .ok_or_else(|| SquashfsError::XattrNamespace {
                path: path.to_owned(),
                name: name.clone(),
            })?;
        let too_large = || SquashfsError::XattrTooLarge {
            path: path.to_owned(),
            name: name.clone(),
        };
        let name_len = u16::try_from(suffix.len()).map_err(|_| too_large())?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_large())?;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(suffix.as_bytes());
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_vec()))
            .collect()
    }

    #[test]
    fn names_lose_their_prefix_for_a_type() {
        let pairs = encode(&set(&[("security.capability", b"\x01\0\0\x02")]), "f").unwrap();
        let mut expected = vec![2, 0, 10, 0];
        expected.extend_from_slice(b"capability");
        expected.extend_from_slice(&[4, 0, 0, 0, 1, 0, 0, 2]);
        assert_eq!(pairs, expected);
    }

    #[test]
    fn other_namespaces_are_refused() {
        for name in ["system.posix_acl_access", "user.", "nodot"] {
            let err = encode(&set(&[(name, b"x")]), "etc/f").unwrap_err();
            assert!(
                matches!(&err, SquashfsError::XattrNamespace { path, .. } if path == "etc/f"),
                "{err}"
            );
        }
    }

    #[test]
    fn identical_sets_share_an_id() {
        let mut table = XattrTable::new(Compression::Gzip, 131072);
        let a = set(&[("user.a", b"1"), ("trusted.b", b"2")]);
        let b = set(&[("user.a", b"2")]);
        assert_eq!(table.add(&BTreeMap::new(), "x").unwrap(), None);
        assert_eq!(table.add(&a, "x").unwrap(), Some(0));
        assert_eq!(table.add(&b, "y").unwrap(), Some(1));
        assert_eq!(table.add(&a, "z").unwrap(), Some(0));
        let (bytes, header) = table.finish(1000).unwrap().unwrap();
        let at = (header - 1000) as usize;
        assert_eq!(&bytes[at..at + 8], &1000u64.to_le_bytes());
        assert_eq!(&bytes[at + 8..at + 12], &2u32.to_le_bytes(), "two ids");
        assert_eq!(bytes.len(), at + 16 + 8, "one index block");
    }

    #[test]
    fn no_xattrs_no_table() {
        assert!(
            XattrTable::new(Compression::Gzip, 131072)
                .finish(0)
                .unwrap()
                .is_none()
        );
    }
}
