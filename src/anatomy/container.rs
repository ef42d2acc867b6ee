//! Virtual-disk containers: qcow2, VHD (fixed and dynamic) and
//! streamOptimized VMDK. Their own headers and tables are named; a byte of
//! guest data is named by its guest offset and then described in the guest
//! disk, read through the container's block map on both sides.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read};

use flate2::read::ZlibDecoder;

use super::Pair;
use super::source::{Fields, Source, Window};

const SECTOR: u64 = 512;
/// The most table entries read from a header's count (L1, BAT, grains).
const MAX_ENTRIES: u64 = 1 << 24;
/// qcow2 table entries' offset bits.
const QCOW2_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const QCOW2_COMPRESSED: u64 = 1 << 62;
const VHD_FOOTER: u64 = 512;
const VHD_UNUSED: u32 = u32::MAX;

/// A container's guest disk as fixed-size blocks, each stored somewhere
/// in the file or absent (zeros).
trait BlockMap {
    fn block_size(&self) -> u64;
    fn guest_len(&self) -> u64;
    /// Fills `buf` from byte `within` of guest block `index`.
    fn read_block(&self, index: u64, within: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// The guest disk of a [`BlockMap`], readable as any source.
struct Guest<M>(M);

impl<M: BlockMap> Source for Guest<M> {
    fn len(&self) -> u64 {
        self.0.guest_len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset.saturating_add(buf.len() as u64) > self.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let size = self.0.block_size();
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let within = at % size;
            let n = ((size - within) as usize).min(buf.len() - done);
            self.0
                .read_block(at / size, within, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }
}

/// Reads `buf` from the host at `host` plus `within`, or zeros for an
/// absent block.
fn read_host(
    source: &dyn Source,
    host: Option<u64>,
    within: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    match host {
        Some(host) => source.read_at(host + within, buf),
        None => {
            buf.fill(0);
            Ok(())
        }
    }
}

/// The crumbs of guest byte `guest` of both sides' guests.
fn guest_crumbs<'a, M: BlockMap>(
    pair: &Pair<'a>,
    what: String,
    guest: u64,
    map: impl Fn(&'a dyn Source) -> Option<M>,
) -> Vec<String> {
    let mut crumbs = vec![format!("{what} (guest byte {guest})")];
    if let (Some(expected), Some(actual)) = (map(pair.expected), map(pair.actual)) {
        crumbs.extend(pair.within(&Guest(expected), &Guest(actual), guest));
    }
    crumbs
}

/// A qcow2 image's L1 table, to map guest clusters.
struct Qcow2<'a> {
    source: &'a dyn Source,
    cluster_bits: u32,
    size: u64,
    l1: Vec<u64>,
}

impl<'a> Qcow2<'a> {
    fn open(source: &'a dyn Source) -> Option<Qcow2<'a>> {
        let header = source.bytes(0, 104)?;
        let cluster_bits = header.be32(20);
        let l1_size = u64::from(header.be32(36));
        if &header[..4] != b"QFI\xfb" || !(9..=21).contains(&cluster_bits) || l1_size > MAX_ENTRIES
        {
            return None;
        }
        let l1 = source.bytes(header.be64(40), l1_size * 8)?;
        Some(Qcow2 {
            source,
            cluster_bits,
            size: header.be64(24),
            l1: l1
                .chunks_exact(8)
                .map(|e| e.be64(0) & QCOW2_OFFSET_MASK)
                .collect(),
        })
    }

    fn l2_entries(&self) -> u64 {
        1 << (self.cluster_bits - 3)
    }

    /// The host offset of guest cluster `index`, if allocated.
    fn host(&self, index: u64) -> io::Result<Option<u64>> {
        let l2 = self
            .l1
            .get((index / self.l2_entries()) as usize)
            .copied()
            .unwrap_or(0);
        if l2 == 0 {
            return Ok(None);
        }
        let mut entry = [0u8; 8];
        self.source
            .read_at(l2 + index % self.l2_entries() * 8, &mut entry)?;
        let entry = u64::from_be_bytes(entry);
        if entry & QCOW2_COMPRESSED != 0 {
            return Err(io::Error::other(
                "compressed qcow2 clusters are not described",
            ));
        }
        Ok(Some(entry & QCOW2_OFFSET_MASK).filter(|&host| host != 0))
    }
}

impl BlockMap for Qcow2<'_> {
    fn block_size(&self) -> u64 {
        1 << self.cluster_bits
    }
    fn guest_len(&self) -> u64 {
        self.size
    }
    fn read_block(&self, index: u64, within: u64, buf: &mut [u8]) -> io::Result<()> {
        read_host(self.source, self.host(index)?, within, buf)
    }
}

/// The breadcrumb of `offset` in the qcow2 image of `pair`.
pub(crate) fn qcow2(pair: &Pair<'_>, offset: u64) -> Vec<String> {
    let Some(image) = Qcow2::open(pair.expected) else {
        return Vec::new();
    };
    let source = pair.expected;
    let cluster = 1u64 << image.cluster_bits;
    if offset < cluster {
        return vec!["qcow2 header".to_owned()];
    }
    let header = source.bytes(0, 104).unwrap_or_default();
    let in_table = |at: u64, len: u64| (at..at.saturating_add(len)).contains(&offset);
    if in_table(header.be64(40), image.l1.len() as u64 * 8) {
        return vec!["L1 table".to_owned()];
    }
    let refcount_table = header.be64(48);
    let refcount_clusters = u64::from(header.be32(56));
    if in_table(refcount_table, refcount_clusters * cluster) {
        return vec!["refcount table".to_owned()];
    }
    let refcount_blocks = source
        .bytes(
            refcount_table,
            (refcount_clusters * cluster).min(MAX_ENTRIES * 8),
        )
        .unwrap_or_default();
    if refcount_blocks
        .chunks_exact(8)
        .any(|entry| entry.be64(0) != 0 && in_table(entry.be64(0), cluster))
    {
        return vec!["refcount block".to_owned()];
    }
    if let Some(index) = image
        .l1
        .iter()
        .position(|&l2| l2 != 0 && in_table(l2, cluster))
    {
        return vec![format!("L2 table {index}")];
    }
    let host_cluster = offset & !(cluster - 1);
    for (l1_index, &l2) in image.l1.iter().enumerate() {
        let Some(table) = (l2 != 0).then(|| source.bytes(l2, cluster)).flatten() else {
            continue;
        };
        let found = table
            .chunks_exact(8)
            .position(|entry| entry.be64(0) & QCOW2_OFFSET_MASK == host_cluster);
        if let Some(l2_index) = found {
            let index = l1_index as u64 * image.l2_entries() + l2_index as u64;
            let guest = index * cluster + (offset - host_cluster);
            return guest_crumbs(pair, "qcow2 data cluster".to_owned(), guest, Qcow2::open);
        }
    }
    vec!["unreferenced cluster".to_owned()]
}

/// A dynamic VHD's block allocation table.
struct DynamicVhd<'a> {
    source: &'a dyn Source,
    block: u64,
    bitmap: u64,
    size: u64,
    bat: Vec<u32>,
}

impl<'a> DynamicVhd<'a> {
    fn open(source: &'a dyn Source) -> Option<DynamicVhd<'a>> {
        let footer = source.bytes(0, VHD_FOOTER)?;
        let header = source.bytes(footer.be64(16), 1024)?;
        let entries = u64::from(header.be32(28));
        let block = u64::from(header.be32(32));
        if &header[..8] != b"cxsparse"
            || entries > MAX_ENTRIES
            || !block.is_power_of_two()
            || block < SECTOR
        {
            return None;
        }
        let bat = source.bytes(header.be64(16), entries * 4)?;
        Some(DynamicVhd {
            source,
            block,
            bitmap: (block / SECTOR).div_ceil(8).next_multiple_of(SECTOR),
            size: footer.be64(48),
            bat: bat.chunks_exact(4).map(|e| e.be32(0)).collect(),
        })
    }
}

impl BlockMap for DynamicVhd<'_> {
    fn block_size(&self) -> u64 {
        self.block
    }
    fn guest_len(&self) -> u64 {
        self.size
    }
    fn read_block(&self, index: u64, within: u64, buf: &mut [u8]) -> io::Result<()> {
        let host = self
            .bat
            .get(index as usize)
            .filter(|&&sector| sector != VHD_UNUSED)
            .map(|&sector| u64::from(sector) * SECTOR + self.bitmap);
        read_host(self.source, host, within, buf)
    }
}

/// The breadcrumb of `offset` in the VHD of `pair`.
pub(crate) fn vhd(pair: &Pair<'_>, offset: u64) -> Vec<String> {
    let source = pair.expected;
    let footer_at = source.len().saturating_sub(VHD_FOOTER);
    if offset >= footer_at {
        return vec!["VHD footer".to_owned()];
    }
    let footer = source.bytes(footer_at, VHD_FOOTER).unwrap_or_default();
    if footer.be32(60) != 3 {
        // Fixed: the guest disk is the file before the footer.
        return pair.nested(0..footer_at, offset);
    }
    if offset < VHD_FOOTER {
        return vec!["VHD footer copy".to_owned()];
    }
    let Some(image) = DynamicVhd::open(source) else {
        return Vec::new();
    };
    let header_at = footer.be64(16);
    if (header_at..header_at.saturating_add(1024)).contains(&offset) {
        return vec!["VHD dynamic disk header".to_owned()];
    }
    let bat_at = source.bytes(header_at, 1024).unwrap_or_default().be64(16);
    if (bat_at..bat_at.saturating_add(image.bat.len() as u64 * 4)).contains(&offset) {
        return vec![
            "block allocation table".to_owned(),
            format!("entry {}", (offset - bat_at) / 4),
        ];
    }
    for (index, &sector) in image.bat.iter().enumerate() {
        let start = u64::from(sector) * SECTOR;
        if sector == VHD_UNUSED || !(start..start + image.bitmap + image.block).contains(&offset) {
            continue;
        }
        if offset < start + image.bitmap {
            return vec![format!("VHD block {index}"), "sector bitmap".to_owned()];
        }
        let guest = index as u64 * image.block + (offset - start - image.bitmap);
        return guest_crumbs(pair, format!("VHD block {index}"), guest, DynamicVhd::open);
    }
    vec!["unreferenced space".to_owned()]
}

/// A streamOptimized VMDK's grains, found by walking its markers.
struct Vmdk<'a> {
    source: &'a dyn Source,
    capacity: u64,
    grain: u64,
    /// Guest grain index → where its compressed bytes are.
    grains: BTreeMap<u64, (u64, u64)>,
    /// The last grain decompressed, as describers read it piecewise.
    cache: RefCell<Option<(u64, Vec<u8>)>>,
}

/// One marker of a streamOptimized VMDK.
enum Marker {
    /// A grain of guest sector `lba`, compressed bytes at `data`.
    Grain {
        lba: u64,
        data: (u64, u64),
    },
    /// Metadata (grain table, directory, footer) filling `sectors` after
    /// the marker's own sector.
    Metadata {
        kind: u32,
        sectors: u64,
    },
    End,
}

impl<'a> Vmdk<'a> {
    fn open(source: &'a dyn Source) -> Option<Vmdk<'a>> {
        let header = source.bytes(0, SECTOR)?;
        let grain = header.le64(20).checked_mul(SECTOR)?;
        if &header[..4] != b"KDMV" || !(SECTOR..=1 << 24).contains(&grain) {
            return None;
        }
        let mut grains = BTreeMap::new();
        walk_markers(source, &header, |_, marker| {
            if let Marker::Grain { lba, data } = marker {
                grains.insert(lba / (grain / SECTOR), data);
            }
            grains.len() as u64 > MAX_ENTRIES
        });
        Some(Vmdk {
            source,
            capacity: header.le64(12).saturating_mul(SECTOR),
            grain,
            grains,
            cache: RefCell::new(None),
        })
    }
}

/// Calls `visit` with each marker and its offset until it returns true or
/// the stream ends.
fn walk_markers(source: &dyn Source, header: &[u8], mut visit: impl FnMut(u64, Marker) -> bool) {
    let mut at = header.le64(64).saturating_mul(SECTOR);
    while let Some(sector) = source.bytes(at, SECTOR.min(source.len().saturating_sub(at))) {
        if sector.len() < 16 {
            return;
        }
        let (value, size) = (sector.le64(0), u64::from(sector.le32(8)));
        let (marker, next) = if size > 0 {
            let data = (at + 12, size);
            (
                Marker::Grain { lba: value, data },
                (at + 12 + size).next_multiple_of(SECTOR),
            )
        } else {
            match sector.le32(12) {
                0 => (Marker::End, u64::MAX),
                kind => (
                    Marker::Metadata {
                        kind,
                        sectors: value,
                    },
                    at.saturating_add(SECTOR.saturating_mul(value.saturating_add(1))),
                ),
            }
        };
        let end = matches!(marker, Marker::End);
        if visit(at, marker) || end {
            return;
        }
        at = next;
    }
}

impl BlockMap for Vmdk<'_> {
    fn block_size(&self) -> u64 {
        self.grain
    }
    fn guest_len(&self) -> u64 {
        self.capacity
    }
    fn read_block(&self, index: u64, within: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut cache = self.cache.borrow_mut();
        if cache.as_ref().is_none_or(|(cached, _)| *cached != index) {
            let mut grain = vec![0; self.grain as usize];
            if let Some(&(at, len)) = self.grains.get(&index) {
                let compressed = self
                    .source
                    .bytes(at, len)
                    .ok_or_else(|| io::Error::other("grain outside the file"))?;
                let mut decoder = ZlibDecoder::new(&compressed[..]).take(self.grain);
                let mut filled = 0;
                while filled < grain.len() {
                    match decoder.read(&mut grain[filled..])? {
                        0 => break,
                        n => filled += n,
                    }
                }
            }
            *cache = Some((index, grain));
        }
        let (_, grain) = cache.as_ref().expect("filled above");
        let start = within as usize;
        buf.copy_from_slice(&grain[start..start + buf.len()]);
        Ok(())
    }
}

/// The breadcrumb of `offset` in the VMDK of `pair`. A grain is compared
/// decompressed on both sides: its compressed bytes differ from the first
/// changed byte of the grain on.
pub(crate) fn vmdk(pair: &Pair<'_>, offset: u64) -> Vec<String> {
    let source = pair.expected;
    let Some(header) = source.bytes(0, SECTOR) else {
        return Vec::new();
    };
    if offset < SECTOR {
        return vec!["VMDK header".to_owned()];
    }
    let descriptor = header.le64(28).saturating_mul(SECTOR);
    let descriptor_end = descriptor.saturating_add(header.le64(36).saturating_mul(SECTOR));
    if (descriptor..descriptor_end).contains(&offset) {
        return vec!["VMDK descriptor".to_owned()];
    }
    let mut found = None;
    walk_markers(source, &header, |at, marker| {
        let (end, crumb) = match marker {
            Marker::Grain {
                lba,
                data: (start, len),
            } => (start + len, Some(lba)),
            Marker::Metadata { kind, sectors } => {
                let name = match kind {
                    1 => "grain table",
                    2 => "grain directory",
                    3 => "footer",
                    _ => "metadata",
                };
                let end = at.saturating_add(SECTOR.saturating_mul(sectors.saturating_add(1)));
                if (at..end).contains(&offset) {
                    found = Some(vec![format!("VMDK {name}")]);
                    return true;
                }
                (end, None)
            }
            Marker::End => (at + SECTOR, None),
        };
        if (at..end.checked_next_multiple_of(SECTOR).unwrap_or(u64::MAX)).contains(&offset) {
            // A changed grain compresses to another length: its marker's
            // size field is then where the files first differ.
            found = Some(match crumb {
                Some(lba) if offset >= at + 8 => grain_crumbs(pair, lba),
                Some(lba) => vec![format!("VMDK grain marker (guest sector {lba})")],
                None => vec!["VMDK end-of-stream marker".to_owned()],
            });
            return true;
        }
        false
    });
    found.unwrap_or_else(|| vec!["padding before the first grain".to_owned()])
}

/// The first differing guest byte of the grain at guest sector `lba`.
fn grain_crumbs(pair: &Pair<'_>, lba: u64) -> Vec<String> {
    let (Some(expected), Some(actual)) = (Vmdk::open(pair.expected), Vmdk::open(pair.actual))
    else {
        return vec![format!("VMDK grain (guest sector {lba})")];
    };
    let start = lba.saturating_mul(SECTOR);
    let len = expected.grain;
    let (expected, actual) = (Guest(expected), Guest(actual));
    let left = Window::new(&expected, start, len)
        .bytes(0, len.min(expected.len() - start.min(expected.len())));
    let right =
        Window::new(&actual, start, len).bytes(0, len.min(actual.len() - start.min(actual.len())));
    let within = match (left, right) {
        (Some(left), Some(right)) => left
            .iter()
            .zip(&right)
            .position(|(a, b)| a != b)
            .unwrap_or(left.len().min(right.len())) as u64,
        _ => 0,
    };
    let guest = start + within;
    let mut crumbs = vec![format!("VMDK grain (guest byte {guest})")];
    crumbs.extend(pair.within(&expected, &actual, guest));
    crumbs
}
