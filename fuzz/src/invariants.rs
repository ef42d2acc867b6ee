//! What must hold of a tree whatever layers built it, and of the archives
//! written from it. Each check panics, naming the path, when it does not.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use ossify::tree::{Kind, NodeId, Tree};

/// Checks `tree`: every name is one a Linux directory can hold (no `/`, no
/// NUL, not empty, `.` or `..`), so nothing can name a place outside the
/// tree; every path the walk yields looks up to its own node; each node has
/// as many links as names; no directory is reached twice (no cycle, no hard
/// link to a directory), so the walk ends.
pub fn check_tree(tree: &Tree) {
    check_names(tree, tree.root(), b"/");
    let mut names: HashMap<NodeId, u32> = HashMap::new();
    let mut directories = HashSet::from([tree.root()]);
    for entry in tree.walk() {
        let path = String::from_utf8_lossy(&entry.path);
        assert_eq!(
            tree.lookup(&entry.path),
            Some(entry.id),
            "`{path}` does not look up to the node the walk found there"
        );
        *names.entry(entry.id).or_default() += 1;
        if let Kind::Directory(_) = entry.node.kind {
            assert!(
                directories.insert(entry.id),
                "directory `{path}` is reached twice: a cycle or a hard-linked directory"
            );
            check_names(tree, entry.id, &entry.path);
        }
    }
    for (id, count) in names {
        assert_eq!(
            tree.node(id).links(),
            count,
            "a node with {count} names counts {} links",
            tree.node(id).links()
        );
    }
}

fn check_names(tree: &Tree, dir: NodeId, path: &[u8]) {
    let Kind::Directory(directory) = &tree.node(dir).kind else {
        unreachable!("only directories are checked for names");
    };
    for (name, _) in directory.entries() {
        assert!(
            !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/'),
            "directory `{}` holds an entry named {:?}",
            String::from_utf8_lossy(path),
            String::from_utf8_lossy(name)
        );
        assert!(
            !name.contains(&0),
            "directory `{}` holds a name with a NUL byte: {:?}",
            String::from_utf8_lossy(path),
            String::from_utf8_lossy(name)
        );
    }
}

/// Checks a tar written from a tree: it reads back whole, and every entry
/// is a relative path without `..`, so extracting it stays in the
/// directory it is extracted into.
pub fn check_tar(archive: &[u8]) {
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().expect("a tar ossify wrote opens") {
        let mut entry = entry.expect("a tar ossify wrote reads back");
        let path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&path);
        assert!(
            !path.starts_with(b"/"),
            "the tar holds an absolute path `{shown}`"
        );
        assert!(
            path.split(|&byte| byte == b'/').all(|part| part != b".."),
            "the tar holds a path through `..`: `{shown}`"
        );
        std::io::copy(&mut entry.by_ref(), &mut std::io::sink())
            .expect("a tar ossify wrote holds every file's contents");
    }
}
