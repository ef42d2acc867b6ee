//! Inodes as laid out in the inode table. Each kind has a basic form and an
//! extended one with an xattr id and wider fields; the basic form is used
//! whenever it can hold the inode, as mksquashfs does.

use crate::tree::Kind;

use super::data::FileData;

/// No fragment / no xattrs.
pub(super) const NONE: u32 = u32::MAX;

/// The inode type codes; the extended forms are these plus 7. Directory
/// entries carry the basic code whichever form the inode has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InodeType {
    Directory = 1,
    File = 2,
    Symlink = 3,
    BlockDevice = 4,
    CharDevice = 5,
    Fifo = 6,
    Socket = 7,
}

const EXTENDED: u16 = 7;

impl InodeType {
    /// The type of a node of `kind`.
    pub fn of(kind: &Kind) -> InodeType {
        match kind {
            Kind::Directory(_) => InodeType::Directory,
            Kind::File(_) => InodeType::File,
            Kind::Symlink(_) => InodeType::Symlink,
            Kind::BlockDevice(_) => InodeType::BlockDevice,
            Kind::CharDevice(_) => InodeType::CharDevice,
            Kind::Fifo => InodeType::Fifo,
            Kind::Socket => InodeType::Socket,
        }
    }
}

/// The fields every inode starts with.
pub(super) struct Common {
    /// Permission bits, with setuid, setgid and sticky; no type bits.
    pub mode: u16,
    /// Index of the owner in the id table.
    pub uid: u16,
    /// Index of the group in the id table.
    pub gid: u16,
    pub mtime: u32,
    /// 1 for the first inode written, up to the inode count.
    pub number: u32,
    pub nlink: u32,
    /// The xattr id, if the inode has xattrs.
    pub xattr: Option<u32>,
}

impl Common {
    pub fn with_xattr(self, xattr: Option<u32>) -> Common {
        Common { xattr, ..self }
    }
}

/// What an inode holds besides the common fields.
pub(super) enum Body<'a> {
    Directory {
        /// Where its listing starts: the block's offset from the directory
        /// table's start, and the offset in the block.
        start_block: u32,
        offset: u16,
        /// The listing's size plus 3, as the kernel counts it.
        file_size: u32,
        parent: u32,
    },
    File(&'a FileData),
    Symlink(&'a [u8]),
    Device {
        block: bool,
        /// The device number in Linux's `new_encode_dev` form.
        rdev: u32,
    },
    Ipc(InodeType),
}

impl Body<'_> {
    pub fn inode_type(&self) -> InodeType {
        match self {
            Body::Directory { .. } => InodeType::Directory,
            Body::File(_) => InodeType::File,
            Body::Symlink(_) => InodeType::Symlink,
            Body::Device { block: true, .. } => InodeType::BlockDevice,
            Body::Device { block: false, .. } => InodeType::CharDevice,
            Body::Ipc(kind) => *kind,
        }
    }
}

/// Appends the inode's bytes to `out`.
pub(super) fn encode(common: &Common, body: &Body<'_>, out: &mut Vec<u8>) {
    let extended = common.xattr.is_some() || needs_extended(common, body);
    let code = body.inode_type() as u16 + if extended { EXTENDED } else { 0 };
    put16(out, code);
    put16(out, common.mode);
    put16(out, common.uid);
    put16(out, common.gid);
    put32(out, common.mtime);
    put32(out, common.number);
    let xattr = common.xattr.unwrap_or(NONE);
    match *body {
        Body::Directory {
            start_block,
            offset,
            file_size,
            parent,
        } => {
            if extended {
                put32(out, common.nlink);
                put32(out, file_size);
                put32(out, start_block);
                put32(out, parent);
                put16(out, 0); // no directory index
                put16(out, offset);
                put32(out, xattr);
            } else {
                put32(out, start_block);
                put32(out, common.nlink);
                put16(out, file_size as u16);
                put16(out, offset);
                put32(out, parent);
            }
        }
        Body::File(data) => {
            let (fragment, offset) = data.fragment.unwrap_or((NONE, 0));
            if extended {
                put64(out, data.start);
                put64(out, data.size);
                put64(out, data.sparse);
                put32(out, common.nlink);
                put32(out, fragment);
                put32(out, offset);
                put32(out, xattr);
            } else {
                put32(out, data.start as u32);
                put32(out, fragment);
                put32(out, offset);
                put32(out, data.size as u32);
            }
            for &word in &data.blocks {
                put32(out, word);
            }
        }
        Body::Symlink(target) => {
            put32(out, common.nlink);
            put32(out, target.len() as u32);
            out.extend_from_slice(target);
            if extended {
                put32(out, xattr);
            }
        }
        Body::Device { rdev, .. } => {
            put32(out, common.nlink);
            put32(out, rdev);
            if extended {
                put32(out, xattr);
            }
        }
        Body::Ipc(_) => {
            put32(out, common.nlink);
            if extended {
                put32(out, xattr);
            }
        }
    }
}

/// Whether fields other than xattrs need the extended form.
fn needs_extended(common: &Common, body: &Body<'_>) -> bool {
    match body {
        Body::Directory { file_size, .. } => *file_size > u32::from(u16::MAX),
        Body::File(data) => {
            common.nlink != 1
                || data.sparse != 0
                || u32::try_from(data.start).is_err()
                || u32::try_from(data.size).is_err()
        }
        Body::Symlink(_) | Body::Device { .. } | Body::Ipc(_) => false,
    }
}

/// Linux's `new_encode_dev`, if the numbers fit its 12-bit major and 20-bit
/// minor.
pub(super) fn encode_dev(major: u32, minor: u32) -> Option<u32> {
    if major > 0xfff || minor > 0xf_ffff {
        return None;
    }
    Some((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(nlink: u32, xattr: Option<u32>) -> Common {
        Common {
            mode: 0o644,
            uid: 1,
            gid: 2,
            mtime: 1000,
            number: 5,
            nlink,
            xattr,
        }
    }

    #[test]
    fn device_numbers_use_the_new_encoding() {
        assert_eq!(encode_dev(8, 1), Some(0x801));
        assert_eq!(
            encode_dev(259, 70000),
            Some(0x70 | 259 << 8 | 0x11100 << 12)
        );
        assert_eq!(encode_dev(4096, 0), None);
        assert_eq!(encode_dev(0, 1 << 20), None);
    }

    #[test]
    fn small_files_are_basic_and_links_extended() {
        let data = FileData {
            size: 5000,
            start: 96,
            blocks: vec![100],
            fragment: Some((3, 40)),
            sparse: 0,
        };
        let mut basic = Vec::new();
        encode(&common(1, None), &Body::File(&data), &mut basic);
        assert_eq!(basic.len(), 16 + 16 + 4);
        assert_eq!(u16::from_le_bytes([basic[0], basic[1]]), 2);
        assert_eq!(&basic[20..24], &3u32.to_le_bytes(), "fragment index");

        let mut linked = Vec::new();
        encode(&common(2, None), &Body::File(&data), &mut linked);
        assert_eq!(linked.len(), 16 + 40 + 4);
        assert_eq!(u16::from_le_bytes([linked[0], linked[1]]), 9);
        assert_eq!(&linked[40..44], &2u32.to_le_bytes(), "nlink");
        assert_eq!(&linked[52..56], &NONE.to_le_bytes(), "no xattrs");
    }

    #[test]
    fn xattrs_make_any_kind_extended() {
        let mut out = Vec::new();
        encode(&common(1, Some(7)), &Body::Symlink(b"target"), &mut out);
        assert_eq!(u16::from_le_bytes([out[0], out[1]]), 10);
        assert_eq!(out.len(), 16 + 8 + 6 + 4);
        assert_eq!(&out[out.len() - 4..], &7u32.to_le_bytes());

        out.clear();
        encode(&common(1, None), &Body::Ipc(InodeType::Socket), &mut out);
        assert_eq!((out[0], out.len()), (7, 20));
    }
}
