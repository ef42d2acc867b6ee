//! ISO 9660 images for booting: a small tree (kernel, initrd, boot loader
//! files, an EFI FAT image) with Rock Ridge and Joliet, El Torito boot
//! entries for BIOS (isolinux, with its boot info table) and EFI, and
//! optionally an isohybrid MBR and GPT so the image also boots as a disk.
//!
//! Written here rather than through a crate so every byte is a function of
//! the input: one caller-given timestamp dates everything, names are laid
//! out in sorted order, and GUIDs and the disk signature derive from a
//! caller-given seed. The layout is computed first, so the size is known
//! before writing; file contents are then streamed in one pass.
//!
//! Volume layout, in 2048-byte sectors: system area (0–15), primary volume
//! descriptor (16), El Torito boot record, Joliet descriptor, terminator;
//! path tables; ISO 9660 directories; Rock Ridge continuation areas; Joliet
//! directories; file contents in directory order; for hybrid images, zeros
//! up to a whole MiB with the backup GPT in the last sectors.

mod descriptor;
mod el_torito;
mod hybrid;
mod names;
mod record;
mod rock_ridge;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::io::{self, BufWriter, Read, Write};

use thiserror::Error;

use descriptor::{Flavour, PathEntry, Volume};
use el_torito::BootEntry;
use hybrid::SystemArea;
use record::{DateTime, PARENT_ID, Record, SECTOR, SELF_ID, SectorPacker, sectors};
use rock_ridge::{ContinuationArea, Location, SystemUse};

/// The primary volume descriptor's sector; the system area comes before.
const PVD_LBA: u32 = 16;
/// Longest volume identifier: 32 d-characters, 16 UCS-2 characters.
const VOLUME_ID_LEN: usize = 32;
const JOLIET_VOLUME_ID_LEN: usize = 16;
/// Sectors of 512 bytes isolinux has the BIOS load: its own first 2 KiB.
const BIOS_LOAD_SECTORS: u16 = 4;
/// The boot catalog's permissions.
const CATALOG_MODE: u32 = 0o444;
const OUTPUT_BUFFER: usize = 256 * 1024;

/// Permission bits (including setuid, setgid, sticky) and owner of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// How the image is labelled, dated and booted.
#[derive(Clone, Debug)]
pub struct Options {
    /// The volume label; upper-cased and reduced to d-characters (A–Z,
    /// 0–9, _) and 32 characters for ISO 9660, 16 characters for Joliet.
    pub volume_id: String,
    /// Seconds since the Unix epoch; dates every descriptor and record.
    pub timestamp: u64,
    pub el_torito: Option<ElTorito>,
    /// Make the image bootable as a disk too; needs `el_torito`.
    pub hybrid: Option<Hybrid>,
}

/// El Torito boot entries. Paths name regular files added to the builder;
/// the catalog is created at `catalog`, whose directory must exist.
#[derive(Clone, Debug)]
pub struct ElTorito {
    pub catalog: String,
    /// A no-emulation BIOS boot image (isolinux.bin): 4 sectors loaded, boot
    /// info table patched in.
    pub bios: Option<String>,
    /// An EFI FAT image.
    pub efi: Option<String>,
}

/// The system area of a hybrid image.
#[derive(Clone, Debug)]
pub struct Hybrid {
    /// isohybrid MBR boot code, e.g. isolinux's isohdpfx.bin (432 bytes);
    /// needs a BIOS boot entry.
    pub mbr_code: Option<Vec<u8>>,
    /// Seed of the MBR disk signature and GPT GUIDs.
    pub seed: Vec<u8>,
}

/// Building or writing an ISO image failed.
#[derive(Debug, Error)]
pub enum IsoError {
    #[error("`{path}` cannot be a path in the ISO image: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("`{path}` is added to the ISO image twice; add each path once")]
    Duplicate { path: String },
    #[error("the parent of `{path}` is not a directory in the ISO image; add directories first")]
    NoParent { path: String },
    #[error("El Torito boot image `{path}` is not a regular file in the ISO image; add it first")]
    NoBootImage { path: String },
    #[error("El Torito boot image `{path}` is {len} bytes; a BIOS boot image needs at least 64")]
    BootImageTooShort { path: String, len: u64 },
    #[error("`{path}` is {len} bytes; this ISO writer takes files under 4 GiB")]
    FileTooLarge { path: String, len: u64 },
    #[error("the ISO image has {count} directories; at most 65535 fit its path tables")]
    TooManyDirectories { count: usize },
    #[error("the ISO image would be over 8 TiB; ISO 9660 addresses 2^32 sectors")]
    ImageTooLarge,
    #[error("timestamp {0} is outside the years 1900-2155 that ISO 9660 records")]
    Timestamp(u64),
    #[error("El Torito needs a BIOS or an EFI boot image; set `bios` or `efi`")]
    NoBootEntry,
    #[error("a hybrid image needs El Torito boot entries; set `el_torito`")]
    HybridWithoutBoot,
    #[error("isohybrid MBR code needs a BIOS boot image to load; set `el_torito.bios`")]
    MbrCodeWithoutBios,
    #[error("the isohybrid MBR code is {0} bytes; use isolinux's 432-byte isohdpfx.bin")]
    MbrCodeTooLong(usize),
    #[error("reading `{path}` gave {actual} bytes, but {declared} were declared; was it changed?")]
    LengthMismatch {
        path: String,
        declared: u64,
        actual: u64,
    },
    #[error(
        "writing the ISO image failed at `{path}` (reading its contents, or writing the output: is the disk full?)"
    )]
    Io { path: String, source: io::Error },
}

/// Collects the tree of an ISO image: directories, files and symlinks.
pub struct IsoBuilder<'a> {
    nodes: Vec<Node<'a>>,
}

/// An ISO image laid out and ready to be written.
pub struct IsoImage<'a> {
    /// Everything before the first file's contents.
    head: Vec<u8>,
    /// File contents in sector order: name (for errors), length, contents.
    files: Vec<(String, u64, Contents<'a>)>,
    len: u64,
    backup_gpt: Option<Vec<u8>>,
}

const ROOT: usize = 0;

struct Node<'a> {
    name: Vec<u8>,
    parent: usize,
    metadata: Metadata,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Directory(BTreeMap<Vec<u8>, usize>),
    File { len: u64, contents: Contents<'a> },
    Symlink(Vec<u8>),
}

enum Contents<'a> {
    Reader(Box<dyn Read + 'a>),
    Bytes(Vec<u8>),
}

impl<'a> IsoBuilder<'a> {
    /// An image with only the root directory, which has `root`'s metadata.
    pub fn new(root: Metadata) -> IsoBuilder<'a> {
        let root = Node {
            name: Vec::new(),
            parent: ROOT,
            metadata: root,
            kind: Kind::Directory(BTreeMap::new()),
        };
        IsoBuilder { nodes: vec![root] }
    }

    /// Adds a directory at `path` ("a/b" or "/a/b"); its parent must exist.
    pub fn dir(&mut self, path: &str, metadata: Metadata) -> Result<(), IsoError> {
        self.add(path, metadata, Kind::Directory(BTreeMap::new()))
    }

    /// Adds a regular file of `len` bytes read from `contents` while the
    /// image is written.
    pub fn file(
        &mut self,
        path: &str,
        metadata: Metadata,
        len: u64,
        contents: impl Read + 'a,
    ) -> Result<(), IsoError> {
        if len > u64::from(u32::MAX) {
            return Err(IsoError::FileTooLarge {
                path: path.to_owned(),
                len,
            });
        }
        let contents = Contents::Reader(Box::new(contents));
        self.add(path, metadata, Kind::File { len, contents })
    }

    /// Adds a symbolic link to `target`.
    pub fn symlink(
        &mut self,
        path: &str,
        metadata: Metadata,
        target: &str,
    ) -> Result<(), IsoError> {
        self.add(path, metadata, Kind::Symlink(target.as_bytes().to_vec()))
    }

    fn add(&mut self, path: &str, metadata: Metadata, kind: Kind<'a>) -> Result<(), IsoError> {
        let bad = |reason| IsoError::BadPath {
            path: path.to_owned(),
            reason,
        };
        let components: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
        let Some((name, parents)) = components.split_last() else {
            return Err(bad("it names the root directory"));
        };
        if components.iter().any(|&part| part == "." || part == "..") {
            return Err(bad("it contains `.` or `..`"));
        }
        if name.len() > 255 {
            return Err(bad("a name is longer than 255 bytes"));
        }
        let parent = self
            .lookup(parents)
            .filter(|&parent| matches!(self.nodes[parent].kind, Kind::Directory(_)))
            .ok_or_else(|| IsoError::NoParent {
                path: path.to_owned(),
            })?;
        let id = self.nodes.len();
        let Kind::Directory(children) = &mut self.nodes[parent].kind else {
            return Err(IsoError::NoParent {
                path: path.to_owned(),
            });
        };
        match children.entry(name.as_bytes().to_vec()) {
            Entry::Occupied(_) => {
                return Err(IsoError::Duplicate {
                    path: path.to_owned(),
                });
            }
            Entry::Vacant(slot) => slot.insert(id),
        };
        self.nodes.push(Node {
            name: name.as_bytes().to_vec(),
            parent,
            metadata,
            kind,
        });
        Ok(())
    }

    fn lookup(&self, components: &[&str]) -> Option<usize> {
        components
            .iter()
            .try_fold(ROOT, |node, name| match &self.nodes[node].kind {
                Kind::Directory(children) => children.get(name.as_bytes()).copied(),
                _ => None,
            })
    }

    /// Lays the image out; boot images are read here (the BIOS one into
    /// memory, to patch its boot info table).
    pub fn layout(mut self, options: &Options) -> Result<IsoImage<'a>, IsoError> {
        let date = DateTime::from_unix(options.timestamp);
        if !(1900..=2155).contains(&date.year) {
            return Err(IsoError::Timestamp(options.timestamp));
        }
        let boot = match &options.el_torito {
            Some(el_torito) => Some(self.prepare_boot(el_torito)?),
            None => None,
        };
        if let Some(hybrid) = &options.hybrid {
            check_hybrid(hybrid, boot.as_ref())?;
        }

        // Sector addresses, in the order of the module doc.
        let mut sectors_used = Allocator {
            next: u64::from(PVD_LBA) + 1,
        };
        let boot_record_lba = boot.as_ref().map(|_| sectors_used.take(1));
        let joliet_descriptor_lba = sectors_used.take(1);
        let terminator_lba = sectors_used.take(1);
        let mut continuation_area = ContinuationArea::default();
        let mut iso =
            self.plan_tree(View::new(&self, false), &date, Some(&mut continuation_area))?;
        let mut joliet = self.plan_tree(View::new(&self, true), &date, None)?;
        iso.place_path_tables(&mut sectors_used);
        joliet.place_path_tables(&mut sectors_used);
        iso.place_directories(&mut sectors_used);
        let continuation_lba = sectors_used.take(continuation_area.sectors());
        joliet.place_directories(&mut sectors_used);
        let head_sectors = sectors_used.next;
        let mut file_lbas = vec![0u32; self.nodes.len()];
        let mut file_order = Vec::new();
        for &dir in &iso.view.dirs {
            for &(_, child) in &iso.view.children[dir] {
                if let Kind::File { len, .. } = self.nodes[child].kind {
                    if len > 0 {
                        file_lbas[child] = sectors_used.take(sectors(len));
                    }
                    file_order.push(child);
                }
            }
        }
        let esp = boot.as_ref().and_then(|boot| boot.efi);
        let len = image_len(sectors_used.next, options.hybrid.is_some(), esp.is_some());
        let volume_sectors =
            u32::try_from(len / SECTOR as u64).map_err(|_| IsoError::ImageTooLarge)?;
        if let Some(boot) = &boot {
            self.finish_boot(boot, &file_lbas)?;
        }

        let mut head = vec![0; head_sectors as usize * SECTOR];
        let mut put = |lba: u32, bytes: &[u8]| {
            let at = lba as usize * SECTOR;
            head[at..at + bytes.len()].copy_from_slice(bytes);
        };
        let system_area = options.hybrid.as_ref().map(|hybrid| SystemArea {
            image_len: len,
            bios: hybrid
                .mbr_code
                .as_deref()
                .zip(boot.as_ref().and_then(|boot| boot.bios))
                .map(|(code, (bios, _))| (code, file_lbas[bios])),
            esp: esp.map(|(node, len)| (u64::from(file_lbas[node]) * 4, len)),
            seed: &hybrid.seed,
        });
        if let Some(system_area) = &system_area {
            put(0, &system_area.system_area());
        }
        let iso_volume_id: String = names::d_characters(options.volume_id.as_bytes())
            .chars()
            .take(VOLUME_ID_LEN)
            .collect();
        let joliet_volume_id: String = options
            .volume_id
            .chars()
            .take(JOLIET_VOLUME_ID_LEN)
            .collect();
        let mut continuations = vec![0; continuation_area.sectors() as usize * SECTOR];
        for (tree, descriptor_lba, flavour, volume_id) in [
            (&iso, PVD_LBA, Flavour::Primary, &iso_volume_id),
            (
                &joliet,
                joliet_descriptor_lba,
                Flavour::Joliet,
                &joliet_volume_id,
            ),
        ] {
            let places = self.places(tree, &file_lbas);
            let (extent, length) = places[ROOT];
            let root_record = Record {
                identifier: SELF_ID,
                extent,
                length,
                is_dir: true,
                date: date.short(),
                system_use: &[],
            };
            let volume = Volume {
                flavour,
                volume_id,
                volume_sectors,
                path_table_len: tree.path_tables.len as u32,
                l_path_table: tree.path_tables.l_lba,
                m_path_table: tree.path_tables.m_lba,
                root_record: &root_record.encode(),
                date: date.long(),
            };
            put(descriptor_lba, &volume.encode());
            let entries = tree.view.path_entries(&places);
            put(
                tree.path_tables.l_lba,
                &descriptor::path_table(&entries, false),
            );
            put(
                tree.path_tables.m_lba,
                &descriptor::path_table(&entries, true),
            );
            for (dir, &extent) in tree.plan.iter().zip(&tree.extents) {
                let records = self.encode_directory(
                    dir,
                    &places,
                    &date,
                    continuation_lba,
                    &mut continuations,
                );
                put(extent, &records);
            }
        }
        if let (Some(lba), Some(boot)) = (boot_record_lba, &boot) {
            put(lba, &el_torito::boot_record(file_lbas[boot.catalog]));
        }
        put(terminator_lba, &descriptor::terminator());
        put(continuation_lba, &continuations);

        let backup_gpt = system_area.as_ref().and_then(SystemArea::backup_gpt);
        let paths: Vec<String> = (0..self.nodes.len()).map(|node| self.path(node)).collect();
        let mut nodes: Vec<Option<Node<'a>>> = self.nodes.into_iter().map(Some).collect();
        let files = file_order
            .into_iter()
            .filter_map(|node| match nodes[node].take()?.kind {
                Kind::File { len, contents } => Some((paths[node].clone(), len, contents)),
                _ => None,
            })
            .collect();
        Ok(IsoImage {
            head,
            files,
            len,
            backup_gpt,
        })
    }

    /// Where every node lives in `tree`: first sector and length.
    fn places(&self, tree: &PlannedTree, file_lbas: &[u32]) -> Vec<(u32, u32)> {
        let mut places: Vec<(u32, u32)> = self
            .nodes
            .iter()
            .zip(file_lbas)
            .map(|(node, &lba)| match node.kind {
                Kind::File { len, .. } => (lba, len as u32),
                _ => (0, 0),
            })
            .collect();
        for ((&dir, &extent), planned) in tree.view.dirs.iter().zip(&tree.extents).zip(&tree.plan) {
            places[dir] = (extent, (planned.sectors * SECTOR as u64) as u32);
        }
        places
    }

    /// A directory's records, packed into sectors; their Rock Ridge
    /// overflow goes into `continuations`, the area at `continuation_lba`.
    fn encode_directory(
        &self,
        dir: &DirectoryPlan,
        places: &[(u32, u32)],
        date: &DateTime,
        continuation_lba: u32,
        continuations: &mut [u8],
    ) -> Vec<u8> {
        let mut packer = SectorPacker::default();
        for planned in &dir.records {
            let locations: Vec<Location> = planned
                .continuations
                .iter()
                .map(|location| Location {
                    sector: location.sector + continuation_lba,
                    ..*location
                })
                .collect();
            let parts = planned
                .system_use
                .as_ref()
                .map(|system_use| system_use.encode(&locations))
                .unwrap_or_default();
            for (part, location) in parts.iter().skip(1).zip(&planned.continuations) {
                let at = location.sector as usize * SECTOR + location.offset as usize;
                continuations[at..at + part.len()].copy_from_slice(part);
            }
            let (extent, length) = places[planned.target];
            let record = Record {
                identifier: &planned.identifier,
                extent,
                length,
                is_dir: matches!(self.nodes[planned.target].kind, Kind::Directory(_)),
                date: date.short(),
                system_use: parts.first().map_or(&[][..], Vec::as_slice),
            };
            packer.push(&record.encode());
        }
        packer.finish()
    }

    /// Adds the catalog and reads the BIOS image into memory.
    fn prepare_boot(&mut self, el_torito: &ElTorito) -> Result<Boot, IsoError> {
        let catalog = Metadata {
            mode: CATALOG_MODE,
            uid: 0,
            gid: 0,
        };
        self.add(
            &el_torito.catalog,
            catalog,
            Kind::File {
                len: SECTOR as u64,
                contents: Contents::Bytes(Vec::new()),
            },
        )?;
        let catalog = self
            .lookup_path(&el_torito.catalog)
            .ok_or_else(|| IsoError::NoParent {
                path: el_torito.catalog.clone(),
            })?;
        let mut image = |path: &str| {
            let node = self
                .lookup_path(path)
                .filter(|&node| matches!(self.nodes[node].kind, Kind::File { .. }))
                .ok_or_else(|| IsoError::NoBootImage {
                    path: path.to_owned(),
                })?;
            let Kind::File { len, .. } = self.nodes[node].kind else {
                return Err(IsoError::NoBootImage {
                    path: path.to_owned(),
                });
            };
            Ok((node, len))
        };
        let bios = el_torito.bios.as_deref().map(&mut image).transpose()?;
        let efi = el_torito.efi.as_deref().map(&mut image).transpose()?;
        if bios.is_none() && efi.is_none() {
            return Err(IsoError::NoBootEntry);
        }
        if let Some((node, len)) = bios {
            let path = self.path(node);
            let Kind::File { contents, .. } = &mut self.nodes[node].kind else {
                return Err(IsoError::NoBootImage { path });
            };
            let bytes = read_all(contents, len, &path)?;
            *contents = Contents::Bytes(bytes);
        }
        Ok(Boot { catalog, bios, efi })
    }

    /// Patches the BIOS image's boot info table and writes the catalog.
    fn finish_boot(&mut self, boot: &Boot, file_lbas: &[u32]) -> Result<(), IsoError> {
        let mut entries = Vec::new();
        if let Some((node, _)) = boot.bios {
            if let Kind::File {
                contents: Contents::Bytes(bytes),
                len,
            } = &mut self.nodes[node].kind
                && !el_torito::patch_boot_info_table(bytes, PVD_LBA, file_lbas[node])
            {
                let len = *len;
                return Err(IsoError::BootImageTooShort {
                    path: self.path(node),
                    len,
                });
            }
            entries.push(BootEntry {
                platform: el_torito::PLATFORM_X86,
                lba: file_lbas[node],
                load_sectors: BIOS_LOAD_SECTORS,
            });
        }
        if let Some((node, len)) = boot.efi {
            entries.push(BootEntry {
                platform: el_torito::PLATFORM_EFI,
                lba: file_lbas[node],
                load_sectors: el_torito::efi_load_sectors(len),
            });
        }
        if let Kind::File { contents, .. } = &mut self.nodes[boot.catalog].kind {
            *contents = Contents::Bytes(el_torito::catalog(&entries).to_vec());
        }
        Ok(())
    }

    fn lookup_path(&self, path: &str) -> Option<usize> {
        let components: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
        self.lookup(&components)
    }

    fn path(&self, mut node: usize) -> String {
        let mut parts = Vec::new();
        while node != ROOT {
            parts.push(String::from_utf8_lossy(&self.nodes[node].name).into_owned());
            node = self.nodes[node].parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// The records of every directory of `view`: ".", "..", then the
    /// children; with Rock Ridge if `continuation_area` is given, whose
    /// overflow goes there.
    fn plan_tree(
        &self,
        view: View,
        date: &DateTime,
        mut continuation_area: Option<&mut ContinuationArea>,
    ) -> Result<PlannedTree, IsoError> {
        let count = view.dirs.len();
        if count > usize::from(u16::MAX) {
            return Err(IsoError::TooManyDirectories { count });
        }
        let plan = view
            .dirs
            .iter()
            .map(|&dir| {
                let parent = self.nodes[dir].parent;
                let specials = [(SELF_ID.to_vec(), dir), (PARENT_ID.to_vec(), parent)];
                let mut records = Vec::new();
                let mut record_lens = Vec::new();
                for (index, (identifier, target)) in specials
                    .into_iter()
                    .chain(view.children[dir].iter().cloned())
                    .enumerate()
                {
                    let base = record::record_len_without_system_use(identifier.len());
                    let (system_use, continuations) = match continuation_area.as_deref_mut() {
                        Some(area) => {
                            let entries = self.rock_ridge(target, index, dir == ROOT, date);
                            let system_use =
                                SystemUse::split(entries, record::RECORD_MAX - 1 - base);
                            let continuations = system_use
                                .continuation_lens()
                                .map(|len| {
                                    let (sector, offset) = area.reserve(len);
                                    Location {
                                        sector,
                                        offset,
                                        len: len as u32,
                                    }
                                })
                                .collect();
                            (Some(system_use), continuations)
                        }
                        None => (None, Vec::new()),
                    };
                    let len = base + system_use.as_ref().map_or(0, SystemUse::inline_len);
                    record_lens.push(len + len % 2);
                    records.push(RecordPlan {
                        identifier,
                        target,
                        system_use,
                        continuations,
                    });
                }
                let mut packer = SectorPacker::default();
                for len in record_lens {
                    packer.reserve(len);
                }
                DirectoryPlan {
                    records,
                    sectors: sectors(packer.finish().len() as u64),
                }
            })
            .collect();
        Ok(PlannedTree {
            view,
            plan,
            path_tables: PathTables::default(),
            extents: Vec::new(),
        })
    }

    /// The Rock Ridge entries of the `index`th record of a directory (0 is
    /// ".", 1 is ".."), which describes `node`.
    fn rock_ridge(
        &self,
        node: usize,
        index: usize,
        in_root: bool,
        date: &DateTime,
    ) -> Vec<Vec<u8>> {
        let entry = &self.nodes[node];
        let (file_type, nlink) = match &entry.kind {
            Kind::Directory(children) => {
                let subdirectories = children
                    .values()
                    .filter(|&&child| matches!(self.nodes[child].kind, Kind::Directory(_)))
                    .count();
                (rock_ridge::S_IFDIR, 2 + subdirectories as u32)
            }
            Kind::File { .. } => (rock_ridge::S_IFREG, 1),
            Kind::Symlink(_) => (rock_ridge::S_IFLNK, 1),
        };
        let root_self = in_root && index == 0;
        let mut entries = Vec::new();
        if root_self {
            entries.push(rock_ridge::sp());
        }
        let mode = file_type | (entry.metadata.mode & 0o7777);
        entries.push(rock_ridge::px(
            mode,
            nlink,
            entry.metadata.uid,
            entry.metadata.gid,
        ));
        entries.push(rock_ridge::tf(date));
        if index >= 2 {
            entries.extend(rock_ridge::nm(&entry.name));
        }
        if let Kind::Symlink(target) = &entry.kind {
            entries.extend(rock_ridge::sl(target));
        }
        if root_self {
            entries.push(rock_ridge::er());
        }
        entries
    }
}

/// The nodes El Torito refers to: the catalog, and the BIOS and EFI images
/// with their lengths.
struct Boot {
    catalog: usize,
    bios: Option<(usize, u64)>,
    efi: Option<(usize, u64)>,
}

/// One directory tree over the nodes: ISO 9660 (all nodes) or Joliet (no
/// symlinks, which it cannot express).
struct View {
    /// Directories breadth-first, children in identifier order: path table
    /// order, so a directory's number is its index + 1.
    dirs: Vec<usize>,
    /// Per node: its children's identifiers and nodes, sorted.
    children: Vec<Vec<(Vec<u8>, usize)>>,
    /// Per node: its identifier.
    identifiers: Vec<Vec<u8>>,
}

impl View {
    fn new(builder: &IsoBuilder<'_>, joliet: bool) -> View {
        let nodes = &builder.nodes;
        let mut children = vec![Vec::new(); nodes.len()];
        let mut identifiers = vec![Vec::new(); nodes.len()];
        identifiers[ROOT] = vec![0];
        for (dir, node) in nodes.iter().enumerate() {
            let Kind::Directory(entries) = &node.kind else {
                continue;
            };
            let included: Vec<(&[u8], usize, bool)> = entries
                .iter()
                .filter(|&(_, &child)| !(joliet && matches!(nodes[child].kind, Kind::Symlink(_))))
                .map(|(name, &child)| {
                    let is_dir = matches!(nodes[child].kind, Kind::Directory(_));
                    (name.as_slice(), child, is_dir)
                })
                .collect();
            let named: Vec<(&[u8], bool)> = included
                .iter()
                .map(|&(name, _, is_dir)| (name, is_dir))
                .collect();
            let ids = if joliet {
                names::joliet_identifiers(&named)
            } else {
                names::iso_identifiers(&named)
            };
            let mut sorted: Vec<(Vec<u8>, usize)> = ids
                .into_iter()
                .zip(included.iter().map(|&(_, child, _)| child))
                .collect();
            sorted.sort();
            for (id, child) in &sorted {
                identifiers[*child] = id.clone();
            }
            children[dir] = sorted;
        }
        let mut dirs = vec![ROOT];
        let mut index = 0;
        while index < dirs.len() {
            let dir = dirs[index];
            dirs.extend(
                children[dir]
                    .iter()
                    .map(|&(_, child)| child)
                    .filter(|&child| matches!(nodes[child].kind, Kind::Directory(_))),
            );
            index += 1;
        }
        View {
            dirs,
            children,
            identifiers,
        }
    }

    fn path_entries(&self, places: &[(u32, u32)]) -> Vec<PathEntry<'_>> {
        let mut numbers = vec![0u16; self.identifiers.len()];
        for (index, &dir) in self.dirs.iter().enumerate() {
            numbers[dir] = index as u16 + 1;
        }
        let mut parents = vec![ROOT; self.identifiers.len()];
        for (dir, children) in self.children.iter().enumerate() {
            for &(_, child) in children {
                parents[child] = dir;
            }
        }
        self.dirs
            .iter()
            .map(|&dir| PathEntry {
                identifier: &self.identifiers[dir],
                extent: places[dir].0,
                parent: numbers[parents[dir]],
            })
            .collect()
    }
}

/// A tree's L and M path tables: their length and first sectors.
#[derive(Default)]
struct PathTables {
    len: usize,
    l_lba: u32,
    m_lba: u32,
}

/// One of the two directory trees with its directories' records, and
/// once placed, its path tables' and directories' sectors.
struct PlannedTree {
    view: View,
    /// Per directory, in `view.dirs` order.
    plan: Vec<DirectoryPlan>,
    path_tables: PathTables,
    extents: Vec<u32>,
}

impl PlannedTree {
    fn place_path_tables(&mut self, sectors_used: &mut Allocator) {
        let view = &self.view;
        let len =
            descriptor::path_table_len(view.dirs.iter().map(|&dir| view.identifiers[dir].len()));
        let table_sectors = sectors(len as u64);
        self.path_tables = PathTables {
            len,
            l_lba: sectors_used.take(table_sectors),
            m_lba: sectors_used.take(table_sectors),
        };
    }

    fn place_directories(&mut self, sectors_used: &mut Allocator) {
        self.extents = self
            .plan
            .iter()
            .map(|dir| sectors_used.take(dir.sectors))
            .collect();
    }
}

/// Hands out consecutive sectors. Addresses past 2^32 wrap here, but
/// then the image is refused for its size before any is used.
struct Allocator {
    next: u64,
}

impl Allocator {
    fn take(&mut self, count: u64) -> u32 {
        let at = self.next;
        self.next += count;
        at as u32
    }
}

struct DirectoryPlan {
    records: Vec<RecordPlan>,
    sectors: u64,
}

struct RecordPlan {
    identifier: Vec<u8>,
    target: usize,
    system_use: Option<SystemUse>,
    /// Where the system use parts after the first go, relative to the
    /// continuation area's first sector.
    continuations: Vec<Location>,
}

/// Checks the hybrid options against the boot entries.
fn check_hybrid(hybrid: &Hybrid, boot: Option<&Boot>) -> Result<(), IsoError> {
    let boot = boot.ok_or(IsoError::HybridWithoutBoot)?;
    if let Some(code) = &hybrid.mbr_code {
        if code.len() > hybrid::MBR_CODE_LEN {
            return Err(IsoError::MbrCodeTooLong(code.len()));
        }
        if boot.bios.is_none() {
            return Err(IsoError::MbrCodeWithoutBios);
        }
    }
    Ok(())
}

/// The image's length for `data_sectors` of volume: hybrid images end on a
/// whole cylinder, after room for the backup GPT if there is one.
fn image_len(data_sectors: u64, hybrid: bool, gpt: bool) -> u64 {
    let data = data_sectors * SECTOR as u64;
    if !hybrid {
        return data;
    }
    let backup = if gpt {
        hybrid::GPT_BACKUP_SECTORS * hybrid::DISK_SECTOR
    } else {
        0
    };
    (data + backup).next_multiple_of(hybrid::CYLINDER)
}

fn read_all(contents: &mut Contents<'_>, len: u64, path: &str) -> Result<Vec<u8>, IsoError> {
    let mut bytes = Vec::new();
    copy_exact(contents, len, &mut bytes, path)?;
    Ok(bytes)
}

/// Copies exactly `len` bytes of `contents` to `out`.
fn copy_exact(
    contents: &mut Contents<'_>,
    len: u64,
    out: &mut impl Write,
    path: &str,
) -> Result<(), IsoError> {
    let io_error = |source| IsoError::Io {
        path: path.to_owned(),
        source,
    };
    let mismatch = |actual| IsoError::LengthMismatch {
        path: path.to_owned(),
        declared: len,
        actual,
    };
    match contents {
        Contents::Bytes(bytes) if bytes.len() as u64 == len => {
            out.write_all(bytes).map_err(io_error)
        }
        Contents::Bytes(bytes) => Err(mismatch(bytes.len() as u64)),
        Contents::Reader(reader) => {
            let copied = io::copy(&mut reader.take(len), out).map_err(io_error)?;
            let extra = reader.read(&mut [0]).map_err(io_error)?;
            if copied != len || extra > 0 {
                return Err(mismatch(copied + extra as u64));
            }
            Ok(())
        }
    }
}

impl IsoImage<'_> {
    /// The image's length in bytes.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Writes the image to `out`, reading file contents as it goes, and
    /// returns `out`.
    pub fn write<W: Write>(self, out: W) -> Result<W, IsoError> {
        let mut out = BufWriter::with_capacity(OUTPUT_BUFFER, out);
        let io_error = |path: &str| {
            let path = path.to_owned();
            move |source| IsoError::Io { path, source }
        };
        out.write_all(&self.head)
            .map_err(io_error("volume descriptors"))?;
        let mut written = self.head.len() as u64;
        for (path, len, mut contents) in self.files {
            copy_exact(&mut contents, len, &mut out, &path)?;
            let padded = sectors(len) * SECTOR as u64;
            write_zeros(&mut out, padded - len).map_err(io_error(&path))?;
            written += padded;
        }
        let backup = self.backup_gpt.as_deref().unwrap_or_default();
        write_zeros(&mut out, self.len - written - backup.len() as u64)
            .map_err(io_error("padding"))?;
        out.write_all(backup).map_err(io_error("backup GPT"))?;
        out.into_inner().map_err(|error| IsoError::Io {
            path: "end".to_owned(),
            source: error.into_error(),
        })
    }
}

fn write_zeros(out: &mut impl Write, mut count: u64) -> io::Result<()> {
    let zeros = [0; SECTOR];
    while count > 0 {
        let chunk = count.min(SECTOR as u64) as usize;
        out.write_all(&zeros[..chunk])?;
        count -= chunk as u64;
    }
    Ok(())
}
