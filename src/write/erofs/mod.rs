//! EROFS images that Linux 6.1 mounts and erofs-utils 1.5 checks.
//!
//! Written here rather than through a crate: the Rust EROFS writers either
//! keep file contents out of the image (composefs stores them in an object
//! store, the image holds overlayfs redirects) or cannot hold devices,
//! FIFOs, sockets, xattrs or holes (erofs-rs's builder, unreleased).
//!
//! Image layout, in 4 KiB blocks:
//! - block 0: 1 KiB unused, the superblock, then the metadata area, which
//!   runs on through as many blocks as it needs. It holds every inode, root
//!   first, in walk order, each 32-byte aligned (its nid is its byte offset
//!   / 32): the inode core, its inline xattrs, then either the tail of its
//!   data (the last partial block, never crossing a block boundary, as the
//!   kernel requires), the block map of a chunk-based file, or the map
//!   header and lcluster indexes of a compressed file.
//! - then the data area: each inode's whole blocks (a compressed file's
//!   one block per extent), in the same order.
//! - the superblock is written last, once the UUID, a digest of
//!   everything else, and its checksum over block 0 are known.
//!
//! Regular files with zero blocks become chunk-based files with holes
//! ([`chunk`]). With [`Compression::Lz4`], a regular file is stored
//! LZ4-compressed ([`compressed`]) where that saves at least a block over
//! its uncompressed layout. Only feature bits Linux 6.1 knows are claimed:
//! `EROFS_FEATURE_INCOMPAT_CHUNKED_FILE` (5.15), `..._LZ4_0PADDING` (5.3)
//! and `EROFS_FEATURE_COMPAT_SB_CHKSUM`. File contents are read twice:
//! once while planning (zero blocks, the tail, kept in memory as it goes
//! inline) and once while writing blocks; files that may compress are
//! also compressed once while planning.

mod chunk;
mod compressed;
mod directory;
mod inode;
mod lz4;
mod superblock;
mod xattr;

use std::collections::{HashMap, hash_map};
use std::fmt;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{clamp_mtime, is_zero};
use crate::tree::{Blob, Device, Kind, NodeId, Tree};
use chunk::{Chunks, Scan};
use compressed::{Encoder, Extents};
use directory::{Directory, Dirent};
use inode::{Core, Layout};
use superblock::Superblock;

/// `blkszbits`: 4 KiB blocks, the page size Linux 6.1 requires.
const BLOCK_BITS: u32 = 12;
const BLOCK_SIZE: usize = 1 << BLOCK_BITS;
/// `EROFS_SUPER_OFFSET`.
const SUPERBLOCK_OFFSET: u64 = 1024;
/// Inodes are addressed in 32-byte slots (`EROFS_ISLOTBITS`).
const SLOT: u64 = 32;
/// `EROFS_NAME_LEN`.
const MAX_NAME: usize = 255;
/// The largest device numbers `new_encode_dev` keeps: 12 and 20 bits.
const MAX_MAJOR: u32 = 0xfff;
const MAX_MINOR: u32 = 0xf_ffff;
/// Writes pass through a buffer of this size.
const OUTPUT_BUFFER: usize = 256 * 1024;
/// Contents are copied through a buffer of this size.
const COPY_BUFFER: usize = 256 * 1024;

/// How file data is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed: flat blocks with inline tails, holes for zero blocks.
    /// LinuxKit's choice: its `mkfs.erofs` call passes no `-z`.
    #[default]
    None,
    /// Regular files LZ4-compressed into 4 KiB blocks where that saves a
    /// block; the rest as with `None`.
    Lz4,
}

impl Compression {
    const ALL: [Compression; 2] = [Compression::None, Compression::Lz4];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no EROFS compression.
#[derive(Debug, Error)]
#[error("unknown EROFS compression `{0}`: use none or lz4")]
pub struct ParseCompressionError(String);

impl FromStr for Compression {
    type Err = ParseCompressionError;

    fn from_str(name: &str) -> Result<Self, ParseCompressionError> {
        Compression::ALL
            .into_iter()
            .find(|compression| compression.name() == name)
            .ok_or_else(|| ParseCompressionError(name.to_owned()))
    }
}

/// How the image is written; `Default` gives the default layout.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Later mtimes are clamped to this; it is also the superblock's build
    /// time, which inodes with exactly this mtime share (compact inodes).
    pub source_date_epoch: u64,
    /// How file data is stored.
    pub compression: Compression,
}

/// Writing an EROFS image failed.
#[derive(Debug, Error)]
pub enum ErofsError {
    /// Reading contents from the tree, or writing the image, failed.
    #[error(
        "writing the EROFS image failed at `{path}` (reading its contents, or writing the output: is the disk full?)"
    )]
    Io {
        /// The tree path being written; empty for the superblock.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// An xattr's namespace has no EROFS name index Linux 6.1 knows.
    #[error(
        "xattr `{name}` of `{path}` cannot be stored in EROFS: Linux 6.1 knows only user., trusted., security. and POSIX ACL xattrs; remove it"
    )]
    XattrNamespace {
        /// The node.
        path: String,
        /// The xattr's name.
        name: String,
    },
    /// An xattr's name or value is longer than its EROFS entry holds.
    #[error(
        "xattr `{name}` of `{path}` does not fit EROFS: names are at most 255 bytes after the namespace, values at most 65535 bytes ({value_len} given); shorten or remove it"
    )]
    XattrTooLarge {
        /// The node.
        path: String,
        /// The xattr's name.
        name: String,
        /// The value's length.
        value_len: usize,
    },
    /// All xattrs of one node take more than an inode's xattr area holds.
    #[error(
        "the xattrs of `{path}` take {len} bytes, more than an EROFS inode holds (about 256 KiB); remove some"
    )]
    XattrsTooLarge {
        /// The node.
        path: String,
        /// The encoded length.
        len: usize,
    },
    /// A directory entry's name is longer than EROFS allows.
    #[error("`{path}` has a name of {len} bytes; EROFS names are at most 255 bytes")]
    NameTooLong {
        /// The entry.
        path: String,
        /// The name's length.
        len: usize,
    },
    /// A device number does not fit the inode's 32-bit encoding.
    #[error(
        "device `{path}` is {major}:{minor}; EROFS holds majors up to 4095 and minors up to 1048575"
    )]
    DeviceNumber {
        /// The device node.
        path: String,
        /// The major number.
        major: u32,
        /// The minor number.
        minor: u32,
    },
    /// The image would need more blocks than 32-bit block addresses reach.
    #[error("the EROFS image would be {blocks} blocks of 4 KiB; at most 2^32 - 1 (16 TiB) fit")]
    ImageTooLarge {
        /// The blocks needed.
        blocks: u64,
    },
    /// A file yielded fewer bytes than its size.
    #[error("reading `{path}` gave fewer bytes than its size {size}; was the tree changed?")]
    ShortContents {
        /// The file.
        path: String,
        /// Its declared size.
        size: u64,
    },
    /// A file compressed differently when written than when planned.
    #[error("`{path}` changed while the EROFS image was written; was the tree changed?")]
    ContentsChanged {
        /// The file.
        path: String,
    },
}

/// Writes `tree` as a bare EROFS image to `out`, starting at its current
/// position 0, and returns `out` positioned at the image's end.
/// Deterministic: the same tree and options give the same bytes.
pub fn write<W: Write + Seek>(tree: &Tree, out: W, options: &Options) -> Result<W, ErofsError> {
    let mut image = Image::plan(tree, options)?;
    image.place()?;
    image.write(tree, out)
}

/// One inode and where it goes.
#[derive(Debug)]
struct Inode {
    /// One of its paths, `/`-rooted, for messages.
    path: String,
    /// The core; `i_u` and the layout are final once placed.
    core: Core,
    /// The inline xattr area.
    xattrs: Vec<u8>,
    data: Data,
    /// Its nid (byte offset / 32), once placed.
    nid: u64,
    /// The first block of its data in the data area, once placed.
    first_block: u32,
}

/// What an inode holds besides its core and xattrs.
#[derive(Debug)]
enum Data {
    /// Nothing: devices, FIFOs, sockets, empty files.
    None,
    /// Whole blocks, then a tail: after the inode if `inline`, else in a
    /// last, zero-padded block.
    Flat { contents: Contents, inline: bool },
    /// A sparse file.
    Chunked { blob: Blob, chunks: Chunks },
    /// An LZ4-compressed file.
    Compressed { blob: Blob, extents: Extents },
}

/// Where flat data comes from.
#[derive(Debug)]
enum Contents {
    /// A file in the tree; its tail was kept when it was scanned.
    Blob { blob: Blob, tail: Vec<u8> },
    /// Bytes at hand: a symlink's target, a directory once encoded.
    Bytes(Vec<u8>),
    /// A directory, encoded once every nid is known.
    Directory(Directory),
}

impl Inode {
    /// The bytes after the xattrs in the metadata area: an inline tail or
    /// a block map.
    fn trailer_len(&self) -> u64 {
        match &self.data {
            Data::Flat { inline: true, .. } => self.core.size % BLOCK_SIZE as u64,
            Data::Chunked { chunks, .. } => chunks.map_len(),
            Data::Compressed { extents, .. } => self.map_padding() + extents.map_len(),
            _ => 0,
        }
    }

    /// Zeros between the xattrs and a compressed file's map, which starts
    /// 8-aligned (the inode itself is 32-aligned).
    fn map_padding(&self) -> u64 {
        let fixed = (self.core.on_disk_len() + self.xattrs.len()) as u64;
        fixed.next_multiple_of(8) - fixed
    }

    /// The blocks the inode takes in the data area.
    fn stored_blocks(&self) -> u64 {
        let size = self.core.size;
        match &self.data {
            Data::None => 0,
            Data::Flat { inline: true, .. } => size / BLOCK_SIZE as u64,
            Data::Flat { inline: false, .. } => size.div_ceil(BLOCK_SIZE as u64),
            Data::Chunked { chunks, .. } => chunks.stored_blocks(),
            Data::Compressed { extents, .. } => extents.blocks(),
        }
    }
}

/// The whole image, planned before a byte is written.
struct Image {
    inodes: Vec<Inode>,
    build_time: u64,
    /// The first block of the data area, once placed.
    data_block: u32,
    /// The image's size in blocks, once placed.
    blocks: u32,
}

impl Image {
    /// Plans an inode per node, root first, then in walk order.
    fn plan(tree: &Tree, options: &Options) -> Result<Image, ErofsError> {
        let mut order = vec![(tree.root(), String::from("/"))];
        let mut indexes = HashMap::from([(tree.root(), 0)]);
        for entry in tree.walk() {
            if let hash_map::Entry::Vacant(vacant) = indexes.entry(entry.id) {
                vacant.insert(order.len());
                order.push((
                    entry.id,
                    format!("/{}", String::from_utf8_lossy(&entry.path)),
                ));
            }
        }
        let planner = Planner {
            tree,
            indexes: &indexes,
            build_time: options.source_date_epoch,
            compression: options.compression,
        };
        let mut parents = vec![0; order.len()];
        let mut inodes = Vec::with_capacity(order.len());
        for (index, (id, path)) in order.into_iter().enumerate() {
            inodes.push(planner.inode(index, id, path, &mut parents)?);
        }
        Ok(Image {
            inodes,
            build_time: options.source_date_epoch,
            data_block: 0,
            blocks: 0,
        })
    }

    /// Gives every inode its nid and data blocks, then encodes directories.
    fn place(&mut self) -> Result<(), ErofsError> {
        let block = BLOCK_SIZE as u64;
        let mut offset = superblock::END;
        for inode in &mut self.inodes {
            let fixed = (inode.core.on_disk_len() + inode.xattrs.len()) as u64;
            let trailer = inode.trailer_len();
            // Keep core, xattrs and an inline tail in one block where they
            // fit: the kernel refuses a tail that crosses a block boundary.
            // A block map or lcluster indexes may run on: their 4- and
            // 8-byte entries never straddle.
            let in_one_block = match inode.data {
                Data::Chunked { .. } | Data::Compressed { .. } => fixed,
                _ => fixed + trailer,
            };
            if in_one_block <= block && offset % block + in_one_block > block {
                offset = offset.next_multiple_of(block);
            }
            inode.nid = offset / SLOT;
            offset = (offset + fixed + trailer).next_multiple_of(SLOT);
        }
        let mut next_block = offset.div_ceil(block);
        self.data_block = block_number(next_block)?;
        for inode in &mut self.inodes {
            inode.first_block = block_number(next_block)?;
            next_block += inode.stored_blocks();
        }
        self.blocks = block_number(next_block)?;
        for inode in &mut self.inodes {
            inode.core.i_u = match &inode.data {
                Data::Flat { .. } if inode.stored_blocks() > 0 => inode.first_block,
                Data::Flat { .. } => 0,
                Data::Chunked { chunks, .. } => chunks.bits,
                // `compressed_blocks`: what stat reports.
                Data::Compressed { extents, .. } => extents.blocks() as u32,
                Data::None => inode.core.i_u,
            };
        }
        let nids: Vec<u64> = self.inodes.iter().map(|inode| inode.nid).collect();
        for inode in &mut self.inodes {
            if let Data::Flat { contents, .. } = &mut inode.data
                && let Contents::Directory(directory) = contents
            {
                *contents = Contents::Bytes(directory.encode(|index| nids[index]));
            }
        }
        Ok(())
    }

    /// Writes the metadata area, the data area, then the superblock.
    fn write<W: Write + Seek>(&self, tree: &Tree, out: W) -> Result<W, ErofsError> {
        let mut output = Output::new(out);
        let mut copy_buffer = vec![0; COPY_BUFFER];
        for inode in &self.inodes {
            self.write_metadata(inode, &mut output)
                .map_err(|source| io_error(&inode.path, source))?;
        }
        let data_start = u64::from(self.data_block) * BLOCK_SIZE as u64;
        output
            .pad_to(data_start)
            .map_err(|source| io_error("", source))?;
        for inode in &self.inodes {
            write_data(tree, inode, &mut output, &mut copy_buffer)?;
        }
        let mut superblock = self.superblock(output.hash.clone()).encode();
        superblock::seal(
            &mut superblock,
            &output.first_block[superblock::END as usize..],
        );
        let mut out = output
            .out
            .into_inner()
            .map_err(|error| io_error("", error.into_error()))?;
        (|| {
            out.seek(SeekFrom::Start(SUPERBLOCK_OFFSET))?;
            out.write_all(&superblock)?;
            out.seek(SeekFrom::Start(u64::from(self.blocks) * BLOCK_SIZE as u64))
        })()
        .map_err(|source| io_error("", source))?;
        Ok(out)
    }

    /// The superblock, its UUID a digest of the image written so far
    /// (everything but the superblock) and of the superblock's other fields.
    fn superblock(&self, mut digest: Sha256) -> Superblock {
        let any = |wanted: fn(&Data) -> bool| self.inodes.iter().any(|inode| wanted(&inode.data));
        let chunked = any(|data| matches!(data, Data::Chunked { .. }));
        let compressed = any(|data| matches!(data, Data::Compressed { .. }));
        let mut superblock = Superblock {
            root_nid: self.inodes[0].nid as u16,
            inodes: self.inodes.len() as u64,
            build_time: self.build_time,
            blocks: self.blocks,
            uuid: [0; 16],
            feature_incompat: if chunked {
                superblock::INCOMPAT_CHUNKED_FILE
            } else {
                0
            } | if compressed {
                superblock::INCOMPAT_LZ4_0PADDING
            } else {
                0
            },
            lz4_max_distance: if compressed {
                lz4::MAX_DISTANCE as u16
            } else {
                0
            },
        };
        digest.update(superblock.encode());
        let digest = digest.finalize();
        superblock.uuid.copy_from_slice(&digest[..16]);
        // An RFC 9562 version 8 (custom) UUID.
        superblock.uuid[6] = 0x80 | (superblock.uuid[6] & 0x0f);
        superblock.uuid[8] = 0x80 | (superblock.uuid[8] & 0x3f);
        superblock
    }

    /// Writes an inode's core, xattrs and inline tail or block map.
    fn write_metadata<W: Write>(&self, inode: &Inode, output: &mut Output<W>) -> io::Result<()> {
        output.pad_to(inode.nid * SLOT)?;
        output.write_all(&inode.core.encode())?;
        output.write_all(&inode.xattrs)?;
        match &inode.data {
            Data::Flat {
                contents,
                inline: true,
            } => output.write_all(tail(contents, inode.core.size)),
            Data::Chunked { chunks, .. } => output.write_all(&chunks.map(inode.first_block)),
            Data::Compressed { extents, .. } => {
                output.pad_to(output.written + inode.map_padding())?;
                output.write_all(&extents.map(inode.first_block))
            }
            _ => Ok(()),
        }
    }
}

/// The last partial block of flat contents of `size` bytes.
fn tail(contents: &Contents, size: u64) -> &[u8] {
    match contents {
        Contents::Blob { tail, .. } => tail,
        Contents::Bytes(bytes) => &bytes[bytes.len() - (size % BLOCK_SIZE as u64) as usize..],
        Contents::Directory(_) => unreachable!("directories are encoded when placed"),
    }
}

/// Writes an inode's blocks in the data area.
fn write_data<W: Write>(
    tree: &Tree,
    inode: &Inode,
    output: &mut Output<W>,
    buffer: &mut [u8],
) -> Result<(), ErofsError> {
    let start = u64::from(inode.first_block) * BLOCK_SIZE as u64;
    let size = inode.core.size;
    let io = |source| io_error(&inode.path, source);
    let short = || ErofsError::ShortContents {
        path: inode.path.clone(),
        size,
    };
    output.pad_to(start).map_err(io)?;
    match &inode.data {
        Data::None => {}
        Data::Flat { contents, inline } => {
            let tail = tail(contents, size);
            let whole = size - tail.len() as u64;
            match contents {
                Contents::Blob { blob, .. } => {
                    let mut reader = tree.contents(blob);
                    if !copy(&mut reader, whole, Some(output), buffer).map_err(io)? {
                        return Err(short());
                    }
                }
                Contents::Bytes(bytes) => output.write_all(&bytes[..whole as usize]).map_err(io)?,
                Contents::Directory(_) => unreachable!("directories are encoded when placed"),
            }
            if !inline {
                output.write_all(tail).map_err(io)?;
            }
        }
        Data::Chunked { blob, chunks } => {
            let mut reader = tree.contents(blob);
            for (index, &present) in chunks.present.iter().enumerate() {
                let len = chunks.chunk_len(index);
                let target = present.then_some(&mut *output);
                if !copy(&mut reader, len, target, buffer).map_err(io)? {
                    return Err(short());
                }
                output
                    .pad_to(output.written.next_multiple_of(BLOCK_SIZE as u64))
                    .map_err(io)?;
            }
        }
        Data::Compressed { blob, extents } => {
            let mut encoder = Encoder::new(tree.contents(blob), size);
            for planned in &extents.extents {
                let extent = encoder.next_extent().map_err(|source| {
                    if source.kind() == io::ErrorKind::UnexpectedEof {
                        short()
                    } else {
                        io(source)
                    }
                })?;
                if extent != Some(*planned) {
                    return Err(ErofsError::ContentsChanged {
                        path: inode.path.clone(),
                    });
                }
                output.write_all(encoder.block()).map_err(io)?;
            }
        }
    }
    let end = start + inode.stored_blocks() * BLOCK_SIZE as u64;
    output.pad_to(end).map_err(io)
}

/// Copies `len` bytes from `reader` to `output`, or skips them without
/// one; `false` when the reader ends first.
fn copy<W: Write>(
    reader: &mut impl Read,
    mut len: u64,
    mut output: Option<&mut Output<W>>,
    buffer: &mut [u8],
) -> io::Result<bool> {
    while len > 0 {
        let want = buffer.len().min(len as usize);
        let read = reader.read(&mut buffer[..want])?;
        if read == 0 {
            return Ok(false);
        }
        if let Some(output) = output.as_deref_mut() {
            output.write_all(&buffer[..read])?;
        }
        len -= read as u64;
    }
    Ok(true)
}

/// Builds one inode's plan.
struct Planner<'a> {
    tree: &'a Tree,
    indexes: &'a HashMap<NodeId, usize>,
    build_time: u64,
    compression: Compression,
}

impl Planner<'_> {
    fn inode(
        &self,
        index: usize,
        id: NodeId,
        path: String,
        parents: &mut [usize],
    ) -> Result<Inode, ErofsError> {
        let node = self.tree.node(id);
        let metadata = &node.metadata;
        let xattrs = xattr::encode(&path, &metadata.xattrs)?;
        let mut i_u = 0;
        let (nlink, size, data) = match &node.kind {
            Kind::Directory(directory) => {
                let mut entries = vec![
                    Dirent {
                        name: b".".to_vec(),
                        inode: index,
                        file_type: FT_DIR,
                    },
                    Dirent {
                        name: b"..".to_vec(),
                        inode: parents[index],
                        file_type: FT_DIR,
                    },
                ];
                let mut subdirectories = 0;
                for (name, child) in directory.entries() {
                    if name.len() > MAX_NAME {
                        return Err(ErofsError::NameTooLong {
                            path: child_path(&path, name),
                            len: name.len(),
                        });
                    }
                    let child_index = self.indexes[&child];
                    let kind = &self.tree.node(child).kind;
                    if let Kind::Directory(_) = kind {
                        subdirectories += 1;
                        parents[child_index] = index;
                    }
                    entries.push(Dirent {
                        name: name.to_vec(),
                        inode: child_index,
                        file_type: file_type(kind),
                    });
                }
                let directory = Directory::new(entries);
                let size = directory.size();
                (
                    2 + subdirectories,
                    size,
                    flat(Contents::Directory(directory)),
                )
            }
            Kind::File(blob) if blob.is_empty() => (node.links(), 0, Data::None),
            Kind::File(blob) => {
                let scan = Scan::read(self.tree.contents(blob), blob.len())
                    .map_err(|source| self.read_error(&path, blob.len(), source))?;
                let data = match scan.chunks() {
                    Some(chunks) => Data::Chunked {
                        blob: *blob,
                        chunks,
                    },
                    None => flat(Contents::Blob {
                        blob: *blob,
                        tail: scan.tail,
                    }),
                };
                (node.links(), blob.len(), data)
            }
            Kind::Symlink(target) => (
                node.links(),
                target.len() as u64,
                flat(Contents::Bytes(target.clone())),
            ),
            Kind::CharDevice(device) | Kind::BlockDevice(device) => {
                i_u = encode_device(&path, *device)?;
                (node.links(), 0, Data::None)
            }
            Kind::Fifo | Kind::Socket => (node.links(), 0, Data::None),
        };
        let mut core = Core {
            extended: false,
            layout: Layout::FlatPlain,
            xattr_icount: xattr::icount(xattrs.len()).expect("xattr::encode checks the count"),
            mode: (node.kind.file_type_bits() | (metadata.mode & 0o7777)) as u16,
            nlink,
            size,
            i_u,
            ino: index as u32 + 1,
            uid: metadata.uid,
            gid: metadata.gid,
            mtime: clamp_mtime(metadata.mtime, self.build_time),
        };
        core.extended = core.needs_extended(self.build_time);
        let mut data = data;
        if let Data::Flat { inline, .. } = &mut data {
            let tail = (size % BLOCK_SIZE as u64) as usize;
            *inline = tail > 0 && core.on_disk_len() + xattrs.len() + tail <= BLOCK_SIZE;
        }
        if let Some((blob, extents)) = self.compress(&path, &data)? {
            data = Data::Compressed { blob, extents };
        }
        core.layout = match data {
            Data::None | Data::Flat { inline: false, .. } => Layout::FlatPlain,
            Data::Flat { inline: true, .. } => Layout::FlatInline,
            Data::Chunked { .. } => Layout::ChunkBased,
            Data::Compressed { .. } => Layout::CompressionLegacy,
        };
        Ok(Inode {
            path,
            core,
            xattrs,
            data,
            nid: 0,
            first_block: 0,
        })
    }

    /// A regular file's contents and extents compressed, if compression
    /// is on and they take fewer blocks than the file `uncompressed` and
    /// fewer bytes with their map.
    fn compress(
        &self,
        path: &str,
        uncompressed: &Data,
    ) -> Result<Option<(Blob, Extents)>, ErofsError> {
        let block = BLOCK_SIZE as u64;
        let (blob, blocks, bytes) = match uncompressed {
            _ if self.compression == Compression::None => return Ok(None),
            Data::Chunked { blob, chunks } => {
                let blocks = chunks.stored_blocks();
                (blob, blocks, chunks.map_len() + blocks * block)
            }
            Data::Flat {
                contents: Contents::Blob { blob, .. },
                inline: true,
            } => (blob, blob.len() / block, blob.len()),
            Data::Flat {
                contents: Contents::Blob { blob, .. },
                inline: false,
            } => {
                let blocks = blob.len().div_ceil(block);
                (blob, blocks, blocks * block)
            }
            _ => return Ok(None),
        };
        let size = blob.len();
        let (Some(max_blocks), Some(max_bytes)) = (blocks.checked_sub(1), bytes.checked_sub(1))
        else {
            return Ok(None);
        };
        let extents = Extents::plan(self.tree.contents(blob), size, max_blocks, max_bytes)
            .map_err(|source| self.read_error(path, size, source))?;
        Ok(extents.map(|extents| (*blob, extents)))
    }

    fn read_error(&self, path: &str, size: u64, source: io::Error) -> ErofsError {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            ErofsError::ShortContents {
                path: path.to_owned(),
                size,
            }
        } else {
            io_error(path, source)
        }
    }
}

/// Flat data, its tail's placement decided once the core's size is known.
fn flat(contents: Contents) -> Data {
    Data::Flat {
        contents,
        inline: false,
    }
}

/// `EROFS_FT_*`, as in `struct erofs_dirent`.
const FT_DIR: u8 = 2;

fn file_type(kind: &Kind) -> u8 {
    match kind {
        Kind::File(_) => 1,
        Kind::Directory(_) => FT_DIR,
        Kind::CharDevice(_) => 3,
        Kind::BlockDevice(_) => 4,
        Kind::Fifo => 5,
        Kind::Socket => 6,
        Kind::Symlink(_) => 7,
    }
}

/// The device number as Linux's `new_encode_dev`, which EROFS stores.
fn encode_device(path: &str, device: Device) -> Result<u32, ErofsError> {
    let Device { major, minor } = device;
    if major > MAX_MAJOR || minor > MAX_MINOR {
        return Err(ErofsError::DeviceNumber {
            path: path.to_owned(),
            major,
            minor,
        });
    }
    Ok((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

fn child_path(parent: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A block number, or the error for an image too large to address.
/// `u32::MAX` is the null address, so it is never a block.
fn block_number(blocks: u64) -> Result<u32, ErofsError> {
    u32::try_from(blocks)
        .ok()
        .filter(|&blocks| blocks != u32::MAX)
        .ok_or(ErofsError::ImageTooLarge { blocks })
}

fn io_error(path: &str, source: io::Error) -> ErofsError {
    ErofsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The image stream: buffered, counted, and digested for the UUID.
struct Output<W: Write> {
    out: BufWriter<W>,
    written: u64,
    hash: Sha256,
    /// A copy of block 0, which the superblock's checksum covers.
    first_block: Vec<u8>,
}

impl<W: Write> Output<W> {
    fn new(out: W) -> Self {
        Output {
            out: BufWriter::with_capacity(OUTPUT_BUFFER, out),
            written: 0,
            hash: Sha256::new(),
            first_block: Vec::with_capacity(BLOCK_SIZE),
        }
    }

    /// Writes zeros up to byte `offset` of the image.
    fn pad_to(&mut self, offset: u64) -> io::Result<()> {
        const ZEROS: [u8; BLOCK_SIZE] = [0; BLOCK_SIZE];
        debug_assert!(offset >= self.written, "the layout only moves forward");
        while self.written < offset {
            let len = (offset - self.written).min(BLOCK_SIZE as u64) as usize;
            self.write_all(&ZEROS[..len])?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.out.write(bytes)?;
        self.hash.update(&bytes[..written]);
        let in_first_block = BLOCK_SIZE
            .saturating_sub(self.first_block.len())
            .min(written);
        self.first_block.extend_from_slice(&bytes[..in_first_block]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests;
