//! Path resolution confined to the tree, in the manner of securejoin.
//!
//! Layers are untrusted input: an entry named `../../etc/passwd`, or one
//! reached through a symlink to `/` or to `../..`, must land inside the tree.
//! So `..` stops at the root, absolute paths and absolute symlink targets
//! start from the root, and every symlink in an intermediate component is
//! followed inside the tree, never on the host.

use super::limits::{self, MAX_PATH_LEN, NAME_MAX};
use super::{Kind, NodeId, Tree, TreeError};

/// Linux's limit on symlinks followed in one lookup (`MAXSYMLINKS`). With
/// link targets no longer than a path, it bounds the work of one lookup.
pub(super) const MAX_SYMLINKS: u32 = 40;

/// Paths longer than this are shortened in messages.
const SHOWN_PATH: usize = 160;

/// Where a path leads: the directory holding its last component and that
/// component's name, or, for a path ending in `.` or `..` (or naming the
/// root), just the directory it names.
#[derive(Debug)]
pub(super) struct Resolution {
    pub(super) dir: NodeId,
    pub(super) name: Option<Vec<u8>>,
}

enum Component {
    Root,
    Parent,
    Name(Vec<u8>),
}

/// Components of `path`; an absolute path starts with [`Component::Root`].
fn components(path: &[u8]) -> impl Iterator<Item = Component> + '_ {
    let root = path.starts_with(b"/").then_some(Component::Root);
    let rest = path
        .split(|&byte| byte == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .map(|part| match part {
            b".." => Component::Parent,
            name => Component::Name(name.to_vec()),
        });
    root.into_iter().chain(rest)
}

/// A resolution in progress: the directories walked so far (for `..`), each
/// with the length of its path from the root (`a/b` is 3, as archives
/// write it), and the
/// components still to follow, last one first.
struct Walker<'p> {
    path: &'p [u8],
    stack: Vec<(NodeId, usize)>,
    pending: Vec<Component>,
    symlinks: u32,
}

impl<'p> Walker<'p> {
    /// Starts resolving every component of `path`.
    fn new(root: NodeId, path: &'p [u8]) -> Self {
        Walker::following(root, path, components(path).collect())
    }

    /// Starts resolving `path` up to its last component, returned apart when
    /// it is a name because it is never followed.
    fn up_to_name(root: NodeId, path: &'p [u8]) -> (Self, Option<Vec<u8>>) {
        let mut components: Vec<Component> = components(path).collect();
        let name = match components.pop() {
            Some(Component::Name(name)) => Some(name),
            other => {
                components.extend(other);
                None
            }
        };
        (Walker::following(root, path, components), name)
    }

    fn following(root: NodeId, path: &'p [u8], mut components: Vec<Component>) -> Self {
        components.reverse();
        Walker {
            path,
            stack: vec![(root, 0)],
            pending: components,
            symlinks: 0,
        }
    }

    fn current(&self) -> NodeId {
        self.stack[self.stack.len() - 1].0
    }

    /// The length of the current directory's path from the root.
    fn depth(&self) -> usize {
        self.stack[self.stack.len() - 1].1
    }

    /// Follows components until all are done (`None`) or one names nothing
    /// (`Some((directory, name))`, left pending so that a caller that creates
    /// it can advance again).
    fn advance(&mut self, tree: &Tree) -> Result<Option<(NodeId, Vec<u8>)>, TreeError> {
        while let Some(component) = self.pending.pop() {
            match component {
                Component::Root => self.stack.truncate(1),
                Component::Parent => {
                    if self.stack.len() > 1 {
                        self.stack.pop();
                    }
                }
                Component::Name(name) => {
                    let dir = self.current();
                    let Some(child) = tree.directory(dir).get(&name) else {
                        let missing = (dir, name.clone());
                        self.pending.push(Component::Name(name));
                        return Ok(Some(missing));
                    };
                    match &tree.node(child).kind {
                        Kind::Directory(_) => {
                            self.stack.push((child, child_len(self.depth(), &name)))
                        }
                        Kind::Symlink(target) => {
                            self.symlinks += 1;
                            if self.symlinks > MAX_SYMLINKS {
                                return Err(TreeError::SymlinkLoop {
                                    path: shown(self.path),
                                });
                            }
                            let start = self.pending.len();
                            self.pending.extend(components(target));
                            self.pending[start..].reverse();
                        }
                        _ => {
                            return Err(TreeError::NotADirectory {
                                path: shown(self.path),
                            });
                        }
                    }
                }
            }
        }
        Ok(None)
    }
}

/// A path as messages show it: invalid UTF-8 replaced, and a long one cut
/// short with its length, so that a hostile path cannot flood a terminal.
pub(super) fn shown(path: &[u8]) -> String {
    if path.len() <= SHOWN_PATH {
        return String::from_utf8_lossy(path).into_owned();
    }
    let start = String::from_utf8_lossy(&path[..SHOWN_PATH / 2]);
    let end = String::from_utf8_lossy(&path[path.len() - SHOWN_PATH / 2..]);
    format!("{start}…{end} ({} bytes)", path.len())
}

impl Tree {
    /// Resolves `path` to existing directories only.
    pub(super) fn resolve(&self, path: &[u8]) -> Result<Resolution, TreeError> {
        let (mut walker, name) = Walker::up_to_name(self.root(), path);
        match walker.advance(self)? {
            None => Ok(Resolution {
                dir: walker.current(),
                name,
            }),
            Some(_) => Err(TreeError::NotFound { path: shown(path) }),
        }
    }

    /// Resolves `path`, following every component, to an existing directory.
    pub(super) fn resolve_directory(&self, path: &[u8]) -> Result<NodeId, TreeError> {
        let mut walker = Walker::new(self.root(), path);
        match walker.advance(self)? {
            None => Ok(walker.current()),
            Some(_) => Err(TreeError::NotFound { path: shown(path) }),
        }
    }

    /// Resolves `path`, creating missing directories on the way (also those
    /// a dangling symlink points to) with the tree's implicit metadata.
    ///
    /// The path must be one Linux would accept, and so must the place it
    /// leads to: symlinks cannot make a path deeper than PATH_MAX allows.
    /// Every node created this way therefore has a path of at most 4095
    /// bytes, which bounds what writers repeat per node.
    pub(super) fn resolve_creating(&mut self, path: &[u8]) -> Result<Resolution, TreeError> {
        limits::check_path(path)?;
        let (mut walker, name) = Walker::up_to_name(self.root(), path);
        while let Some((dir, missing)) = walker.advance(self)? {
            check_place(path, walker.depth(), &missing)?;
            let created = self.new_node(Kind::directory(), self.implicit_dir.clone())?;
            self.attach(dir, missing, created);
        }
        if let Some(name) = &name {
            check_place(path, walker.depth(), name)?;
        }
        Ok(Resolution {
            dir: walker.current(),
            name,
        })
    }
}

/// Checks that an entry `name`, in a directory whose path is `depth` bytes
/// long, is one Linux could create. Names can come from symlink targets,
/// which `path` itself does not show.
fn check_place(path: &[u8], depth: usize, name: &[u8]) -> Result<(), TreeError> {
    if name.len() > NAME_MAX {
        return Err(TreeError::NameTooLong {
            path: shown(path),
            length: name.len(),
        });
    }
    let length = child_len(depth, name);
    if length > MAX_PATH_LEN {
        return Err(TreeError::TooDeep {
            path: shown(path),
            length,
        });
    }
    Ok(())
}

/// The length of the path of `name` in a directory whose path is `depth`
/// bytes long.
fn child_len(depth: usize, name: &[u8]) -> usize {
    match depth {
        0 => name.len(),
        _ => depth + 1 + name.len(),
    }
}
