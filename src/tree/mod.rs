//! An in-memory filesystem: the root filesystem ossify assembles and writes.
//!
//! Metadata lives in a table of [`Node`]s (inodes) addressed by [`NodeId`];
//! directories map names to node ids, so hard links are simply two entries
//! naming one node. File contents live in an [`Arena`]. Nothing here touches
//! the host filesystem: ownership, devices and xattrs are plain values.

pub mod arena;
mod compression;
pub mod layer;
pub mod limits;
mod node;
mod pax;
mod resolve;
mod sparse;
mod walk;

use std::collections::HashMap;
use std::io::{self, Read};

use thiserror::Error;

pub use arena::{Arena, Blob, BlobReader, SpillWatcher, StoreError};
pub use compression::Compression;
use limits::{MAX_NODES, MAX_PATH_LEN, NAME_MAX};
pub use node::{Device, Directory, Kind, Metadata, Node, NodeId};
use resolve::{Resolution, shown};
pub use walk::{Entry, Walk};

/// A path could not be resolved or changed inside a tree.
#[derive(Debug, Error)]
pub enum TreeError {
    /// An intermediate path component is a file, device or the like.
    #[error("`{path}`: a component on the way is not a directory")]
    NotADirectory {
        /// The path being resolved.
        path: String,
    },
    /// Symlinks chained beyond Linux's limit, usually a loop.
    #[error("`{path}`: more than 40 symbolic links on the way (a symlink loop?)")]
    SymlinkLoop {
        /// The path being resolved.
        path: String,
    },
    /// Nothing exists at the path.
    #[error("`{path}` does not exist")]
    NotFound {
        /// The path looked up.
        path: String,
    },
    /// The path ends in `.` or `..` or names the root, so it denotes a
    /// directory itself, which only a directory can be written over.
    #[error(
        "`{path}` names a directory itself (it ends in `.` or `..`); only a directory can go there"
    )]
    NotAnEntry {
        /// The path given.
        path: String,
    },
    /// Hard links to directories do not exist on Linux.
    #[error("`{path}`: cannot hard link to a directory")]
    HardLinkToDirectory {
        /// The path of the link.
        path: String,
    },
    /// A path longer than Linux accepts.
    #[error(
        "`{path}` is {length} bytes long; Linux takes paths of at most {MAX_PATH_LEN} bytes (PATH_MAX)"
    )]
    PathTooLong {
        /// The path, shortened.
        path: String,
        /// Its length in bytes.
        length: usize,
    },
    /// A path with a NUL byte, which no Linux path can hold (a system call
    /// would read it cut short there).
    #[error("`{path}` holds a NUL byte, which no Linux path can")]
    Nul {
        /// The path, shortened, the NUL shown as `\0`.
        path: String,
    },
    /// A path with a component longer than Linux accepts.
    #[error(
        "`{path}` holds a name of {length} bytes; Linux takes names of at most {NAME_MAX} bytes (NAME_MAX)"
    )]
    NameTooLong {
        /// The path, shortened.
        path: String,
        /// The length of the long name.
        length: usize,
    },
    /// Symlinks lead a path to a place deeper than a path can name.
    #[error(
        "`{path}` leads through symbolic links to a place {length} bytes deep; Linux takes paths of at most {MAX_PATH_LEN} bytes (PATH_MAX)"
    )]
    TooDeep {
        /// The path, shortened.
        path: String,
        /// The length of the path of the place it leads to.
        length: usize,
    },
    /// The tree holds as many nodes as it may.
    #[error(
        "more than {MAX_NODES} files, directories and links, ossify's limit for one filesystem (entries later replaced or removed count too)"
    )]
    TooManyNodes,
}

/// An in-memory filesystem tree.
#[derive(Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    arena: Arena,
    implicit_dir: Metadata,
    /// [`MAX_NODES`], lowered by tests.
    max_nodes: usize,
}

impl Tree {
    /// An empty tree whose root, and every directory created implicitly as a
    /// parent, is mode 0755, owned by root, with mtime `mtime` (pass
    /// SOURCE_DATE_EPOCH: these are generated entries).
    pub fn new(mtime: u64) -> Tree {
        let implicit_dir = Metadata::new(0o755, mtime);
        let root = Node {
            kind: Kind::directory(),
            metadata: implicit_dir.clone(),
            links: 1,
        };
        Tree {
            nodes: vec![root],
            arena: Arena::default(),
            implicit_dir,
            max_nodes: MAX_NODES,
        }
    }

    /// The root directory.
    pub fn root(&self) -> NodeId {
        NodeId(0)
    }

    /// The node with id `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// The metadata of node `id`, to change; hard links share it.
    pub fn metadata_mut(&mut self, id: NodeId) -> &mut Metadata {
        &mut self.nodes[id.0 as usize].metadata
    }

    /// The node at `path`, if any. Symlinks in intermediate components are
    /// followed inside the tree; a symlink as the last component is returned
    /// itself.
    pub fn lookup(&self, path: impl AsRef<[u8]>) -> Option<NodeId> {
        let resolution = self.resolve(path.as_ref()).ok()?;
        match resolution.name {
            Some(name) => self.directory(resolution.dir).get(&name),
            None => Some(resolution.dir),
        }
    }

    /// The node at `path` with every symlink followed, the last component's
    /// too, inside the tree; `None` when the path leads nowhere or loops.
    pub fn lookup_following(&self, path: impl AsRef<[u8]>) -> Option<NodeId> {
        let mut path = path.as_ref().to_vec();
        for _ in 0..resolve::MAX_SYMLINKS {
            let id = self.lookup(&path)?;
            let Kind::Symlink(target) = &self.node(id).kind else {
                return Some(id);
            };
            path = if target.starts_with(b"/") {
                target.clone()
            } else {
                let parent = path
                    .iter()
                    .rposition(|&byte| byte == b'/')
                    .map_or(&path[..0], |slash| &path[..=slash]);
                [parent, target].concat()
            };
        }
        None
    }

    /// Puts a node of `kind` with `metadata` at `path`, creating missing
    /// parents, and returns it.
    ///
    /// A directory put over a directory keeps its entries and takes the new
    /// metadata; anything else replaces what was there (a directory with all
    /// it held).
    pub fn insert(
        &mut self,
        path: impl AsRef<[u8]>,
        kind: Kind,
        metadata: Metadata,
    ) -> Result<NodeId, TreeError> {
        let path = path.as_ref();
        let resolution = self.resolve_creating(path)?;
        self.insert_at(resolution, kind, metadata, path)
    }

    fn insert_at(
        &mut self,
        resolution: Resolution,
        kind: Kind,
        metadata: Metadata,
        path: &[u8],
    ) -> Result<NodeId, TreeError> {
        match (resolution.name, kind) {
            (None, Kind::Directory(_)) => {
                *self.metadata_mut(resolution.dir) = metadata;
                Ok(resolution.dir)
            }
            (None, _) => Err(TreeError::NotAnEntry { path: shown(path) }),
            (Some(name), Kind::Directory(_)) => self.put_directory(resolution.dir, name, metadata),
            (Some(name), kind) => {
                let id = self.new_node(kind, metadata)?;
                self.attach(resolution.dir, name, id);
                Ok(id)
            }
        }
    }

    /// Puts a directory named `name` in `dir`: an existing directory keeps
    /// its entries and takes `metadata`, anything else is replaced.
    fn put_directory(
        &mut self,
        dir: NodeId,
        name: Vec<u8>,
        metadata: Metadata,
    ) -> Result<NodeId, TreeError> {
        if let Some(existing) = self.directory(dir).get(&name)
            && matches!(self.node(existing).kind, Kind::Directory(_))
        {
            *self.metadata_mut(existing) = metadata;
            return Ok(existing);
        }
        let id = self.new_node(Kind::directory(), metadata)?;
        self.attach(dir, name, id);
        Ok(id)
    }

    /// Makes `path` another name of node `target` (a hard link), creating
    /// missing parents; `target` must not be a directory.
    pub fn hard_link(
        &mut self,
        path: impl AsRef<[u8]>,
        target: NodeId,
    ) -> Result<NodeId, TreeError> {
        let path = path.as_ref();
        let resolution = self.resolve_creating(path)?;
        self.hard_link_at(resolution, target, path)
    }

    fn hard_link_at(
        &mut self,
        resolution: Resolution,
        target: NodeId,
        path: &[u8],
    ) -> Result<NodeId, TreeError> {
        if matches!(self.node(target).kind, Kind::Directory(_)) {
            return Err(TreeError::HardLinkToDirectory { path: shown(path) });
        }
        let Some(name) = resolution.name else {
            return Err(TreeError::NotAnEntry { path: shown(path) });
        };
        if self.directory(resolution.dir).get(&name) != Some(target) {
            self.attach(resolution.dir, name, target);
        }
        Ok(target)
    }

    /// Removes the entry at `path` (a directory with everything in it) and
    /// returns the node it named; `None` when nothing was there.
    pub fn remove(&mut self, path: impl AsRef<[u8]>) -> Option<NodeId> {
        let resolution = self.resolve(path.as_ref()).ok()?;
        self.detach(resolution.dir, &resolution.name?)
    }

    /// Stores file contents for a later [`Tree::insert`] of a
    /// [`Kind::File`]: at most `size` bytes from `contents`, streamed.
    /// Compare the blob's length with `size` to detect a short stream.
    /// The error says whether reading `contents` or storing them failed.
    pub fn store_from(&mut self, contents: impl Read, size: u64) -> Result<Blob, StoreError> {
        self.arena.store(contents, size)
    }

    /// [`Tree::store_from`] for callers that report either failure alike.
    pub fn store(&mut self, contents: impl Read, size: u64) -> io::Result<Blob> {
        Ok(self.store_from(contents, size)?)
    }

    /// Stores generated file contents; only writing them can fail.
    pub fn store_bytes(&mut self, contents: &[u8]) -> io::Result<Blob> {
        self.store(contents, contents.len() as u64)
    }

    /// Tells `watcher` of the contents of every large file stored from now
    /// on, as it is stored.
    pub fn watch_spills(&mut self, watcher: Box<dyn SpillWatcher>) {
        self.arena.watch(watcher);
    }

    /// A reader over the contents of a file of this tree.
    pub fn contents(&self, blob: &Blob) -> BlobReader<'_> {
        self.arena.open(blob)
    }

    /// Every node below the root, parents before children, siblings in name
    /// byte order.
    pub fn walk(&self) -> Walk<'_> {
        Walk::new(self)
    }

    /// Lays `other` over the directory at `path` (created if missing, a
    /// non-directory there replaced), the way a layer is applied: `other`'s
    /// directories merge with existing ones, its other nodes replace what is
    /// there, and the directory takes `other`'s root metadata. Hard links in
    /// `other` stay hard links; file contents are not copied.
    pub fn merge(&mut self, path: impl AsRef<[u8]>, other: Tree) -> Result<NodeId, TreeError> {
        let target = self.insert(
            path,
            Kind::directory(),
            other.node(other.root()).metadata.clone(),
        )?;
        let relocation = self.arena.absorb(other.arena);
        let mut import = Import {
            nodes: other.nodes,
            relocation,
            imported: HashMap::new(),
        };
        self.overlay(target, NodeId(0), &mut import)?;
        Ok(target)
    }

    /// Lays the directory `source` of `import` over the directory `target`,
    /// with an explicit stack: layers can nest directories arbitrarily deep.
    fn overlay(
        &mut self,
        target: NodeId,
        source: NodeId,
        import: &mut Import,
    ) -> Result<(), TreeError> {
        let mut pending = vec![(target, source)];
        while let Some((target, source)) = pending.pop() {
            let Kind::Directory(dir) = &import.nodes[source.0 as usize].kind else {
                continue;
            };
            let entries: Vec<(Vec<u8>, NodeId)> =
                dir.entries.iter().map(|(n, id)| (n.clone(), *id)).collect();
            for (name, child) in entries {
                let source_child = &import.nodes[child.0 as usize];
                if let Kind::Directory(_) = source_child.kind {
                    let merged = self.put_directory(target, name, source_child.metadata.clone())?;
                    pending.push((merged, child));
                    continue;
                }
                let id = match import.imported.get(&child) {
                    Some(&id) => id,
                    None => {
                        let kind = match &source_child.kind {
                            Kind::File(blob) => Kind::File(import.relocation.apply(*blob)),
                            kind => kind.clone(),
                        };
                        let id = self.new_node(kind, source_child.metadata.clone())?;
                        import.imported.insert(child, id);
                        id
                    }
                };
                self.attach(target, name, id);
            }
        }
        Ok(())
    }

    /// The directory node `id`; ids in directory stacks are always ones.
    fn directory(&self, id: NodeId) -> &Directory {
        match &self.node(id).kind {
            Kind::Directory(dir) => dir,
            _ => unreachable!("node {id:?} is used as a directory but is not one"),
        }
    }

    /// Allocates a node, while the tree may hold more.
    fn new_node(&mut self, kind: Kind, metadata: Metadata) -> Result<NodeId, TreeError> {
        if self.nodes.len() >= self.max_nodes {
            return Err(TreeError::TooManyNodes);
        }
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node {
            kind,
            metadata,
            links: 0,
        });
        Ok(id)
    }

    /// Names `id` as `name` in directory `dir`, replacing any entry there.
    fn attach(&mut self, dir: NodeId, name: Vec<u8>, id: NodeId) {
        self.nodes[id.0 as usize].links += 1;
        let Kind::Directory(directory) = &mut self.nodes[dir.0 as usize].kind else {
            unreachable!("node {dir:?} is used as a directory but is not one");
        };
        if let Some(replaced) = directory.entries.insert(name, id) {
            self.release(replaced);
        }
    }

    /// Removes entry `name` from directory `dir`.
    fn detach(&mut self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        let Kind::Directory(directory) = &mut self.nodes[dir.0 as usize].kind else {
            unreachable!("node {dir:?} is used as a directory but is not one");
        };
        let removed = directory.entries.remove(name)?;
        self.release(removed);
        Some(removed)
    }

    /// Drops one link to `id`; a directory losing its only link releases
    /// everything it held, so link counts stay exact.
    fn release(&mut self, id: NodeId) {
        let mut pending = vec![id];
        while let Some(id) = pending.pop() {
            let node = &mut self.nodes[id.0 as usize];
            node.links -= 1;
            if node.links == 0
                && let Kind::Directory(dir) = &mut node.kind
            {
                pending.extend(std::mem::take(&mut dir.entries).into_values());
            }
        }
    }
}

/// Fills `buf` unless the stream ends first; returns how much was read.
pub(crate) fn read_up_to(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The nodes of a tree being merged into another, and where they went.
struct Import {
    nodes: Vec<Node>,
    relocation: arena::Relocation,
    imported: HashMap<NodeId, NodeId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tree: &mut Tree, contents: &[u8]) -> Kind {
        Kind::File(tree.store_bytes(contents).unwrap())
    }

    fn read(tree: &Tree, path: &str) -> Vec<u8> {
        let Kind::File(blob) = &tree.node(tree.lookup(path).unwrap()).kind else {
            panic!("`{path}` is not a file");
        };
        let mut contents = Vec::new();
        tree.contents(blob).read_to_end(&mut contents).unwrap();
        contents
    }

    fn paths(tree: &Tree) -> Vec<String> {
        tree.walk()
            .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
            .collect()
    }

    #[test]
    fn insert_creates_parents_with_the_implicit_metadata() {
        let mut tree = Tree::new(42);
        let kind = file(&mut tree, b"hi");
        tree.insert("a/b/c", kind, Metadata::new(0o600, 7)).unwrap();
        let parent = tree.node(tree.lookup("a/b").unwrap());
        assert_eq!(parent.metadata, Metadata::new(0o755, 42));
        assert_eq!(read(&tree, "/a/b/c"), b"hi");
    }

    #[test]
    fn walk_is_parents_first_in_byte_order() {
        let mut tree = Tree::new(0);
        for path in ["b/z", "a", "b/a", "B", "b/a/x"] {
            tree.insert(path, Kind::directory(), Metadata::new(0o755, 0))
                .unwrap();
        }
        assert_eq!(paths(&tree), ["B", "a", "b", "b/a", "b/a/x", "b/z"]);
    }

    #[test]
    fn directory_over_directory_keeps_entries_other_kinds_replace() {
        let mut tree = Tree::new(0);
        let kind = file(&mut tree, b"x");
        tree.insert("d/f", kind, Metadata::new(0o644, 0)).unwrap();
        tree.insert("d", Kind::directory(), Metadata::new(0o700, 0))
            .unwrap();
        assert_eq!(paths(&tree), ["d", "d/f"]);
        assert_eq!(tree.node(tree.lookup("d").unwrap()).metadata.mode, 0o700);
        tree.insert("d", Kind::Fifo, Metadata::new(0o644, 0))
            .unwrap();
        assert_eq!(paths(&tree), ["d"]);
        assert!(matches!(
            tree.insert("new/..", Kind::Fifo, Metadata::default()),
            Err(TreeError::NotAnEntry { .. })
        ));
    }

    #[test]
    fn hard_link_counts_follow_links_and_removals() {
        let mut tree = Tree::new(0);
        let kind = file(&mut tree, b"shared");
        let id = tree.insert("a", kind, Metadata::new(0o644, 0)).unwrap();
        tree.hard_link("dir/b", id).unwrap();
        tree.hard_link("dir/c", id).unwrap();
        assert_eq!(tree.node(id).links(), 3);
        assert_eq!(tree.remove("a"), Some(id));
        assert_eq!(tree.node(id).links(), 2);
        let dir = tree.lookup("dir");
        assert_eq!(tree.remove("dir"), dir);
        assert_eq!(tree.node(id).links(), 0);
        assert!(matches!(
            tree.hard_link("x", tree.root()),
            Err(TreeError::HardLinkToDirectory { .. })
        ));
    }

    #[test]
    fn lookup_follows_intermediate_symlinks_but_not_the_last() {
        let mut tree = Tree::new(0);
        let kind = file(&mut tree, b"lib");
        tree.insert("usr/lib/libc.so", kind, Metadata::new(0o755, 0))
            .unwrap();
        let link = tree
            .insert(
                "lib",
                Kind::Symlink(b"/usr/lib".to_vec()),
                Metadata::new(0o777, 0),
            )
            .unwrap();
        assert_eq!(tree.lookup("lib"), Some(link));
        assert_eq!(read(&tree, "lib/libc.so"), b"lib");
        assert_eq!(read(&tree, "lib/../../../usr/lib/libc.so"), b"lib");
        assert_eq!(tree.lookup("lib/missing"), None);
    }

    #[test]
    fn merge_overlays_another_tree_keeping_hard_links_and_contents() {
        let mut image = Tree::new(5);
        let kind = file(&mut image, b"busybox");
        let id = image
            .insert("bin/busybox", kind, Metadata::new(0o755, 1))
            .unwrap();
        image.hard_link("bin/sh", id).unwrap();
        let large = vec![9u8; 100_000];
        let blob = image.store(&large[..], large.len() as u64).unwrap();
        image
            .insert("big", Kind::File(blob), Metadata::new(0o644, 1))
            .unwrap();

        let mut root = Tree::new(0);
        let kind = file(&mut root, b"root file");
        root.insert("etc/motd", kind, Metadata::new(0o644, 0))
            .unwrap();
        let kind = file(&mut root, b"replaced");
        root.insert("c/rootfs/big", kind, Metadata::new(0o644, 0))
            .unwrap();
        root.merge("c/rootfs", image).unwrap();

        assert_eq!(read(&root, "etc/motd"), b"root file");
        assert_eq!(read(&root, "c/rootfs/bin/sh"), b"busybox");
        assert_eq!(read(&root, "c/rootfs/big"), large);
        let busybox = root.lookup("c/rootfs/bin/busybox").unwrap();
        assert_eq!(root.lookup("c/rootfs/bin/sh"), Some(busybox));
        assert_eq!(root.node(busybox).links(), 2);
        assert_eq!(
            root.node(root.lookup("c/rootfs").unwrap()).metadata,
            Metadata::new(0o755, 5)
        );
    }

    #[test]
    fn the_deepest_tree_a_path_can_name_needs_no_deep_stack() {
        let depth = MAX_PATH_LEN / 2;
        let path = "d/".repeat(depth) + "f";
        let mut image = Tree::new(0);
        image
            .insert(&path, Kind::Fifo, Metadata::new(0o644, 0))
            .unwrap();
        let mut root = Tree::new(0);
        root.merge("rootfs", image).unwrap();
        assert_eq!(root.walk().count(), depth + 2);
        let deepest = root.lookup(format!("rootfs/{path}")).unwrap();
        root.remove("rootfs");
        assert_eq!(root.node(deepest).links(), 0);
    }

    #[test]
    fn paths_longer_than_linux_allows_are_refused() {
        let mut tree = Tree::new(0);
        let long = "d/".repeat(MAX_PATH_LEN / 2) + "ff";
        assert!(matches!(
            tree.insert(&long, Kind::Fifo, Metadata::default()),
            Err(TreeError::PathTooLong { length: 4096, .. })
        ));
        let name = "n".repeat(NAME_MAX + 1);
        assert!(matches!(
            tree.insert(format!("a/{name}"), Kind::Fifo, Metadata::default()),
            Err(TreeError::NameTooLong { length: 256, .. })
        ));
        assert_eq!(tree.walk().count(), 0, "nothing was created on the way");
    }

    #[test]
    fn symlinks_cannot_lead_deeper_than_a_path_can_name() {
        let mut tree = Tree::new(0);
        let half = "d/".repeat(1500);
        tree.insert(&half, Kind::directory(), Metadata::default())
            .unwrap();
        tree.insert(
            "s",
            Kind::Symlink(half.clone().into_bytes()),
            Metadata::default(),
        )
        .unwrap();
        let error = tree
            .insert(format!("s/{half}x"), Kind::Fifo, Metadata::default())
            .unwrap_err();
        assert!(
            matches!(error, TreeError::TooDeep { length, .. } if length > MAX_PATH_LEN),
            "{error:?}"
        );
        let long_name = "n".repeat(NAME_MAX + 1);
        tree.insert(
            "dangling",
            Kind::Symlink(format!("/{long_name}").into_bytes()),
            Metadata::default(),
        )
        .unwrap();
        assert!(matches!(
            tree.insert("dangling/x", Kind::Fifo, Metadata::default()),
            Err(TreeError::NameTooLong { length: 256, .. })
        ));
    }

    #[test]
    fn a_tree_allocates_at_most_its_node_limit() {
        let mut tree = Tree::new(0);
        tree.max_nodes = 3;
        tree.insert("a", Kind::Fifo, Metadata::default()).unwrap();
        tree.insert("a", Kind::Fifo, Metadata::default()).unwrap();
        assert!(matches!(
            tree.insert("a", Kind::Fifo, Metadata::default()),
            Err(TreeError::TooManyNodes)
        ));
        let mut image = Tree::new(0);
        image
            .insert("x/y", Kind::Fifo, Metadata::default())
            .unwrap();
        let mut root = Tree::new(0);
        root.max_nodes = 3;
        assert!(matches!(
            root.merge("into", image),
            Err(TreeError::TooManyNodes)
        ));
    }
}
