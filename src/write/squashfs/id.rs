//! The id table: every distinct uid and gid once, in ascending order;
//! inodes name their owner and group by index into it.

use std::collections::BTreeMap;

/// The ids of an image and their indexes.
pub(super) struct IdTable {
    indexes: BTreeMap<u32, u16>,
}

impl IdTable {
    /// The table of `ids`, or `None` if there are more than the 65,535
    /// indexes the superblock's count can hold.
    pub fn new(ids: impl IntoIterator<Item = u32>) -> Option<IdTable> {
        let mut indexes: BTreeMap<u32, u16> = ids.into_iter().map(|id| (id, 0)).collect();
        for (index, slot) in indexes.values_mut().enumerate() {
            *slot = u16::try_from(index).ok()?;
        }
        u16::try_from(indexes.len()).ok()?;
        Some(IdTable { indexes })
    }

    /// The index of `id`, which must be one the table was made from.
    pub fn index(&self, id: u32) -> u16 {
        self.indexes[&id]
    }

    pub fn len(&self) -> u16 {
        // `new` checked that the count fits.
        self.indexes.len() as u16
    }

    /// The table's entries: each id as 32 bits.
    pub fn entries(&self) -> Vec<u8> {
        self.indexes
            .keys()
            .flat_map(|id| id.to_le_bytes())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sorted_and_unique() {
        let table = IdTable::new([100_000, 0, 4_294_967_294, 0, 100_000]).unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table.index(0), 0);
        assert_eq!(table.index(100_000), 1);
        assert_eq!(table.index(4_294_967_294), 2);
        assert_eq!(&table.entries()[4..8], &100_000u32.to_le_bytes());
    }

    #[test]
    fn more_than_65535_ids_do_not_fit() {
        assert!(IdTable::new(0..65_535).is_some());
        assert!(IdTable::new(0..65_536).is_none());
    }
}
