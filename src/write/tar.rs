//! PAX tar archives of a tree, byte-for-byte reproducible.
//!
//! Entries come in walk order (parents first, names sorted). Each header is
//! ustar; a PAX extended header precedes it only when a value does not fit
//! (long path or link target, wide uid/gid, size over 8 GiB) or the node has
//! xattrs (`SCHILY.xattr.NAME`, as GNU tar and Docker write them). A node
//! met again under another name is written as a hard link to its first path.
//! Owner names are left empty: ids are what the tree knows.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};

use tar::{Builder, EntryType, Header};

use super::{WriteError, clamp_mtime};
use crate::tree::{Device, Entry, Kind, NodeId, Tree};

/// Output buffer; data is copied straight into it from the tree's arena.
const BUFFER: usize = 256 * 1024;
/// The largest value of an 8-byte octal header field (uid, gid, device
/// numbers).
const MAX_OCTAL_ID: u64 = 0o7777777;
/// The largest value of a 12-byte octal header field (size).
const MAX_OCTAL_SIZE: u64 = 0o77777777777;
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;

/// A regular file written after the tree's entries, owned by root, mode
/// 0644 and dated `source_date_epoch`, as LinuxKit appends the Dockerfile
/// of its `docker` format.
#[derive(Debug, Clone, Copy)]
pub struct Appended<'a> {
    pub path: &'a str,
    pub contents: &'a [u8],
}

/// Writes `tree` as a PAX tar to `out`, then the `appended` files, and
/// returns `out`. Mtimes later than `source_date_epoch` are written as it.
pub fn write<W: Write>(
    tree: &Tree,
    out: W,
    source_date_epoch: u64,
    appended: &[Appended<'_>],
) -> Result<W, WriteError> {
    let mut writer = TarWriter {
        tree,
        source_date_epoch,
        builder: Builder::new(BufWriter::with_capacity(BUFFER, out)),
        first_paths: HashMap::new(),
    };
    for entry in tree.walk() {
        writer.append(&entry)?;
    }
    for file in appended {
        let io_error = |source| WriteError::io(file.path.as_bytes(), source);
        let mut header = generated_header(
            EntryType::Regular,
            file.contents.len() as u64,
            source_date_epoch,
        );
        header.set_path(file.path).map_err(io_error)?;
        header.set_cksum();
        writer
            .builder
            .append(&header, file.contents)
            .map_err(io_error)?;
    }
    let buffered = writer
        .builder
        .into_inner()
        .map_err(|source| WriteError::io(b"", source))?;
    buffered
        .into_inner()
        .map_err(|error| WriteError::io(b"", error.into_error()))
}

struct TarWriter<'t, W: Write> {
    tree: &'t Tree,
    source_date_epoch: u64,
    builder: Builder<BufWriter<W>>,
    /// The path each hard-linked node was first written under.
    first_paths: HashMap<NodeId, Vec<u8>>,
}

/// A PAX extended header and its records.
type PaxEntry = (Header, Vec<u8>);

impl<W: Write> TarWriter<'_, W> {
    fn append(&mut self, entry: &Entry<'_>) -> Result<(), WriteError> {
        let (header, pax) = self.header(entry)?;
        let io_error = |source| WriteError::io(&entry.path, source);
        if let Some((pax_header, records)) = pax {
            self.builder
                .append(&pax_header, records.as_slice())
                .map_err(io_error)?;
        }
        let result = match &entry.node.kind {
            Kind::File(blob) if header.entry_type() == EntryType::Regular => {
                self.builder.append(&header, self.tree.contents(blob))
            }
            _ => self.builder.append(&header, io::empty()),
        };
        result.map_err(io_error)
    }

    /// The header for `entry`, and the PAX extended header to precede it
    /// when one is needed.
    fn header(&mut self, entry: &Entry<'_>) -> Result<(Header, Option<PaxEntry>), WriteError> {
        let node = entry.node;
        let metadata = &node.metadata;
        let mtime = clamp_mtime(metadata.mtime, self.source_date_epoch);
        let mut header = Header::new_ustar();
        let mut pax = PaxRecords::default();

        let mut path = entry.path.clone();
        if let Kind::Directory(_) = node.kind {
            path.push(b'/');
        }
        if !set_ustar_path(&mut header, &path) {
            pax.add("path", &path);
        }
        header.set_mode(metadata.mode & 0o7777);
        header.set_uid(pax.id_field("uid", metadata.uid));
        header.set_gid(pax.id_field("gid", metadata.gid));
        header.set_mtime(mtime);
        header.set_size(0);
        set_device(&mut header, Device::NONE, &entry.path)?;

        let first_path = match node.links() {
            1 => None,
            _ => self.first_paths.get(&entry.id),
        };
        match (&node.kind, first_path) {
            (_, Some(first)) => {
                header.set_entry_type(EntryType::Link);
                set_link_name(&mut header, &mut pax, first);
            }
            (Kind::Directory(_), None) => header.set_entry_type(EntryType::Directory),
            (Kind::File(blob), None) => {
                header.set_entry_type(EntryType::Regular);
                header.set_size(blob.len());
                if blob.len() > MAX_OCTAL_SIZE {
                    pax.add("size", blob.len().to_string().as_bytes());
                }
            }
            (Kind::Symlink(target), None) => {
                header.set_entry_type(EntryType::Symlink);
                set_link_name(&mut header, &mut pax, target);
            }
            (Kind::CharDevice(device), None) => {
                header.set_entry_type(EntryType::Char);
                set_device(&mut header, *device, &entry.path)?;
            }
            (Kind::BlockDevice(device), None) => {
                header.set_entry_type(EntryType::Block);
                set_device(&mut header, *device, &entry.path)?;
            }
            (Kind::Fifo, None) => header.set_entry_type(EntryType::Fifo),
            (Kind::Socket, None) => {
                return Err(WriteError::Unsupported {
                    path: String::from_utf8_lossy(&entry.path).into_owned(),
                    what: "a socket",
                    format: "tar",
                });
            }
        }
        if first_path.is_none() {
            for (name, value) in &metadata.xattrs {
                pax.add(&format!("SCHILY.xattr.{name}"), value);
            }
            if node.links() > 1 {
                self.first_paths.insert(entry.id, entry.path.clone());
            }
        }
        header.set_cksum();
        Ok((header, pax.into_entry(&path, self.source_date_epoch)))
    }
}

/// Sets the device numbers of a ustar header. Its fields hold every number
/// Linux gives (12-bit majors, 20-bit minors); a wider one, which only a
/// forged layer holds, is refused rather than cut to its low digits.
fn set_device(header: &mut Header, device: Device, path: &[u8]) -> Result<(), WriteError> {
    for (field, value) in [
        ("device major", device.major),
        ("device minor", device.minor),
    ] {
        if u64::from(value) > MAX_OCTAL_ID {
            return Err(WriteError::Unrepresentable {
                path: String::from_utf8_lossy(path).into_owned(),
                field,
                value: value.into(),
                format: "tar",
            });
        }
    }
    let ustar = header
        .as_ustar_mut()
        .expect("headers made by Header::new_ustar are ustar");
    ustar.set_device_major(device.major);
    ustar.set_device_minor(device.minor);
    Ok(())
}

/// Puts `path` in the ustar name field, or split between prefix and name at
/// a `/`; `false` when it fits neither way.
fn set_ustar_path(header: &mut Header, path: &[u8]) -> bool {
    let ustar = header
        .as_ustar_mut()
        .expect("headers made by Header::new_ustar are ustar");
    if path.len() <= NAME_LEN {
        ustar.name[..path.len()].copy_from_slice(path);
        return true;
    }
    let split = path
        .iter()
        .enumerate()
        .filter(|&(_, &byte)| byte == b'/')
        .map(|(slash, _)| slash)
        .find(|&slash| path.len() - slash - 1 <= NAME_LEN);
    match split {
        Some(slash) if slash <= PREFIX_LEN && slash + 1 < path.len() => {
            ustar.prefix[..slash].copy_from_slice(&path[..slash]);
            ustar.name[..path.len() - slash - 1].copy_from_slice(&path[slash + 1..]);
            true
        }
        _ => false,
    }
}

/// Sets the link name, through a PAX `linkpath` record when it is too long.
fn set_link_name(header: &mut Header, pax: &mut PaxRecords, target: &[u8]) {
    if target.len() <= NAME_LEN {
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target);
    } else {
        pax.add("linkpath", target);
    }
}

/// The records of one PAX extended header.
#[derive(Default)]
struct PaxRecords {
    bytes: Vec<u8>,
}

impl PaxRecords {
    /// Appends `LEN KEY=VALUE\n`, where LEN counts the whole record,
    /// its own digits included.
    fn add(&mut self, key: &str, value: &[u8]) {
        let unnumbered = key.len() + value.len() + 3;
        let mut len = unnumbered + unnumbered.to_string().len();
        if len.to_string().len() > unnumbered.to_string().len() {
            len += 1;
        }
        self.bytes
            .extend_from_slice(format!("{len} {key}=").as_bytes());
        self.bytes.extend_from_slice(value);
        self.bytes.push(b'\n');
    }

    /// The value for an 8-byte octal id field: `id` when it fits, else 0 with
    /// the id in a PAX record.
    fn id_field(&mut self, key: &str, id: u32) -> u64 {
        if u64::from(id) <= MAX_OCTAL_ID {
            return u64::from(id);
        }
        self.add(key, id.to_string().as_bytes());
        0
    }

    /// The extended header carrying these records for the entry at `path`,
    /// unless there are none. It is a generated entry, so its mtime is
    /// SOURCE_DATE_EPOCH.
    fn into_entry(self, path: &[u8], source_date_epoch: u64) -> Option<PaxEntry> {
        if self.bytes.is_empty() {
            return None;
        }
        let mut header = generated_header(
            EntryType::XHeader,
            self.bytes.len() as u64,
            source_date_epoch,
        );
        let name = path.strip_suffix(b"/").unwrap_or(path);
        let base = name.rsplit(|&byte| byte == b'/').next().unwrap_or(name);
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend_from_slice(&base[..base.len().min(NAME_LEN - pax_name.len())]);
        set_ustar_path(&mut header, &pax_name);
        header.set_cksum();
        Some((header, self.bytes))
    }
}

/// The ustar header of an entry ossify makes up rather than takes from the
/// tree: owned by root, mode 0644, dated `mtime`. The caller sets the path
/// and then the checksum.
fn generated_header(entry_type: EntryType, size: u64, mtime: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(entry_type);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_their_own_digits() {
        // Around 10 and 100 bytes the length's own digits tip it over.
        for value_len in 0..200 {
            let mut records = PaxRecords::default();
            records.add("k", &vec![b'v'; value_len]);
            let text = String::from_utf8(records.bytes.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), text.len(), "{text:?}");
        }
    }

    #[test]
    fn device_numbers_beyond_ustar_fields_are_refused_not_cut() {
        let mut tree = Tree::new(0);
        let fits = Device {
            major: 4095,
            minor: (1 << 20) - 1,
        };
        tree.insert("fits", Kind::CharDevice(fits), Default::default())
            .unwrap();
        let archive = write(&tree, Vec::new(), 0, &[]).unwrap();
        let mut entries = tar::Archive::new(&archive[..]);
        let entry = entries.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.header().device_major().unwrap(), Some(fits.major));
        assert_eq!(entry.header().device_minor().unwrap(), Some(fits.minor));

        let wide = Device {
            major: 1,
            minor: 1 << 21,
        };
        tree.insert("wide", Kind::BlockDevice(wide), Default::default())
            .unwrap();
        let error = write(&tree, Vec::new(), 0, &[]).unwrap_err();
        assert!(
            matches!(
                &error,
                WriteError::Unrepresentable { path, field: "device minor", value, .. }
                    if path == "wide" && *value == 1 << 21
            ),
            "{error:?}"
        );
    }

    #[test]
    fn ustar_paths_split_at_a_slash_or_do_not_fit() {
        let split = format!("{}/{}", "p".repeat(150), "n".repeat(100));
        let mut header = Header::new_ustar();
        assert!(set_ustar_path(&mut header, split.as_bytes()));
        assert_eq!(&*header.path_bytes(), split.as_bytes());
        let unsplittable = format!("{}/{}", "p".repeat(10), "n".repeat(101));
        assert!(!set_ustar_path(
            &mut Header::new_ustar(),
            unsplittable.as_bytes()
        ));
        let prefix_too_long = format!("{}/{}", "p".repeat(156), "n");
        assert!(!set_ustar_path(
            &mut Header::new_ustar(),
            prefix_too_long.as_bytes()
        ));
    }
}
