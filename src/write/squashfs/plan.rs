//! The order inodes are written and numbered in: depth first, entries in
//! name order, each directory after everything below it, because a
//! directory's listing names where its entries' inodes are. A hard-linked
//! node comes once, under the first name met.

use std::collections::HashMap;

use crate::tree::{Kind, NodeId, Tree};

/// One inode to write.
pub(super) struct Planned {
    pub id: NodeId,
    /// The directory holding it (the root for the root).
    pub parent: NodeId,
    /// Its first path, for error messages; empty for the root.
    pub path: Vec<u8>,
}

/// Every node of a tree in writing order, and its inode number (its place
/// in that order, from 1).
pub(super) struct Plan {
    pub order: Vec<Planned>,
    pub numbers: HashMap<NodeId, u32>,
}

impl Plan {
    pub fn new(tree: &Tree) -> Plan {
        let mut plan = Plan {
            order: Vec::new(),
            numbers: HashMap::new(),
        };
        let root = tree.root();
        let Kind::Directory(top) = &tree.node(root).kind else {
            unreachable!("a tree's root is a directory");
        };
        // Open directories: id, parent, length of their path, entries left.
        let mut open = vec![(root, root, 0, top.entries())];
        let mut path = Vec::new();
        while let Some((dir, parent, base, entries)) = open.last_mut() {
            let (dir, parent, base) = (*dir, *parent, *base);
            let Some((name, child)) = entries.next() else {
                open.pop();
                path.truncate(base);
                plan.push(dir, parent, &path);
                continue;
            };
            if plan.numbers.contains_key(&child) {
                continue;
            }
            path.truncate(base);
            if base > 0 {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            match &tree.node(child).kind {
                Kind::Directory(below) => open.push((child, dir, path.len(), below.entries())),
                _ => plan.push(child, dir, &path),
            }
        }
        plan
    }

    fn push(&mut self, id: NodeId, parent: NodeId, path: &[u8]) {
        self.order.push(Planned {
            id,
            parent,
            path: path.to_vec(),
        });
        self.numbers.insert(id, self.order.len() as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Metadata;

    #[test]
    fn directories_come_after_their_entries_and_links_once() {
        let mut tree = Tree::new(0);
        let meta = Metadata::new(0o644, 0);
        let file = tree.store_bytes(b"x").unwrap();
        let z = tree.insert("a/z", Kind::File(file), meta.clone()).unwrap();
        tree.insert("a/b/c", Kind::Fifo, meta.clone()).unwrap();
        tree.hard_link("d", z).unwrap();
        tree.insert("e", Kind::Socket, meta).unwrap();
        let plan = Plan::new(&tree);
        let paths: Vec<&[u8]> = plan.order.iter().map(|p| p.path.as_slice()).collect();
        assert_eq!(
            paths,
            [&b"a/b/c"[..], b"a/b", b"a/z", b"a", b"e", b""],
            "d is a/z again"
        );
        assert_eq!(plan.numbers[&tree.root()], 6);
        assert_eq!(plan.numbers[&tree.lookup("d").unwrap()], 3);
        assert_eq!(plan.order[1].parent, tree.lookup("a").unwrap());
    }
}
