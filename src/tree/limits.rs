//! What a tree may hold, so that hostile layers cost bounded time, memory
//! and output.
//!
//! A few hundred compressed bytes can describe a path a hundred thousand
//! directories deep; every writer repeats each node's full path, so such a
//! tree turns into gigabytes. Linux's own limits on paths bound the depth,
//! a limit on nodes bounds the rest. Sparse files are the one way a layer
//! stores more bytes than its stream holds, so their holes are bounded too.

use super::TreeError;
use super::resolve::shown;

/// Linux's `PATH_MAX`: a path, with its terminating NUL, fits in this many
/// bytes, so a path is at most 4095 bytes long.
pub const PATH_MAX: usize = 4096;

/// Linux's `NAME_MAX`: the longest name of one directory entry, in bytes.
pub const NAME_MAX: usize = 255;

/// The most nodes one tree may allocate, counting the nodes of entries that
/// were later replaced or removed (they keep their memory). A large
/// distribution image holds a few hundred thousand; each node costs about
/// 200 bytes.
pub const MAX_NODES: usize = 1 << 22;

/// The most bytes of holes the sparse files of one layer may hold. Holes
/// are stored as zeros, so a few bytes of sparse map could otherwise fill
/// `$TMPDIR`; this is the largest file a newc cpio (the initrd) can hold.
pub const MAX_HOLE_BYTES: u64 = 4 << 30;

/// The longest path accepted: `PATH_MAX` less its NUL.
pub(super) const MAX_PATH_LEN: usize = PATH_MAX - 1;

/// Checks a path as Linux checks one given to a system call: no NUL byte,
/// at most 4095 bytes, no component over 255 bytes.
pub fn check_path(path: &[u8]) -> Result<(), TreeError> {
    if path.contains(&0) {
        return Err(TreeError::Nul {
            path: shown(path).replace('\0', "\\0"),
        });
    }
    if path.len() > MAX_PATH_LEN {
        return Err(TreeError::PathTooLong {
            path: shown(path),
            length: path.len(),
        });
    }
    match path
        .split(|&byte| byte == b'/')
        .find(|c| c.len() > NAME_MAX)
    {
        Some(name) => Err(TreeError::NameTooLong {
            path: shown(path),
            length: name.len(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_at_linuxs_limits_pass_and_beyond_them_fail() {
        let name = "n".repeat(NAME_MAX);
        assert!(check_path(format!("a/{name}/b").as_bytes()).is_ok());
        assert!(matches!(
            check_path(format!("a/{name}x/b").as_bytes()),
            Err(TreeError::NameTooLong { length: 256, .. })
        ));
        let longest = "d/".repeat(MAX_PATH_LEN / 2) + "f";
        assert_eq!(longest.len(), MAX_PATH_LEN);
        assert!(check_path(longest.as_bytes()).is_ok());
        assert!(matches!(
            check_path(format!("{longest}f").as_bytes()),
            Err(TreeError::PathTooLong { length: 4096, .. })
        ));
        assert!(matches!(
            check_path(b"a/b\0c"),
            Err(TreeError::Nul { path }) if path == "a/b\\0c"
        ));
    }
}
