//! Depth-first traversal of a tree in the order archives want it.

use std::collections::btree_map;

use super::{Kind, Node, NodeId, Tree};

/// One node met by a [`Walk`], under one of its names.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The path from the root, without a leading `/`, e.g. `etc/passwd`.
    pub path: Vec<u8>,
    /// The node; a hard-linked node is met once per name.
    pub id: NodeId,
    /// The node itself.
    pub node: &'a Node,
}

/// Iterates a tree's nodes below the root: each directory before its
/// entries, entries in name byte order. Archive writers rely on this order
/// for parents-first, deterministic output.
#[derive(Debug)]
pub struct Walk<'a> {
    tree: &'a Tree,
    /// Per open directory: the length of its path and its remaining entries.
    stack: Vec<(usize, btree_map::Iter<'a, Vec<u8>, NodeId>)>,
    path: Vec<u8>,
}

impl<'a> Walk<'a> {
    pub(super) fn new(tree: &'a Tree) -> Self {
        let root = tree.directory(tree.root());
        Walk {
            tree,
            stack: vec![(0, root.entries.iter())],
            path: Vec::new(),
        }
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        loop {
            let (base, entries) = self.stack.last_mut()?;
            let Some((name, &id)) = entries.next() else {
                self.stack.pop();
                continue;
            };
            self.path.truncate(*base);
            if *base > 0 {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(name);
            let node = self.tree.node(id);
            if let Kind::Directory(dir) = &node.kind {
                self.stack.push((self.path.len(), dir.entries.iter()));
            }
            return Some(Entry {
                path: self.path.clone(),
                id,
                node,
            });
        }
    }
}
