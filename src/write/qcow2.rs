//! qcow2 version 3 images of a raw disk (qemu's docs/interop/qcow2.rst).
//!
//! Everything is laid out before anything is written, so the output is one
//! sequential stream: a first pass over the raw image finds the non-zero
//! clusters, then come the header, the refcount table and blocks, the L1
//! table, the L2 tables that map any data, and the data clusters in guest
//! order. All-zero clusters stay unallocated. Every allocated cluster is used
//! exactly once, so every refcount is 1 and every table entry carries the
//! COPIED flag, which `qemu-img check` expects of such entries.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use super::raw_image::{ConvertError, RawImage};

const FORMAT: &str = "qcow2";
const MAGIC: &[u8; 4] = b"QFI\xfb";
const VERSION: u32 = 3;
const CLUSTER_BITS: u32 = 16;
/// 64 KiB, qemu's default.
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// 16-bit refcounts, qemu's default.
const REFCOUNT_ORDER: u32 = 4;
/// The version-3 header without optional fields.
const HEADER_LENGTH: u32 = 104;
/// Table entries are 8 bytes, so a cluster holds this many L1/L2/refcount-table entries.
const ENTRIES_PER_CLUSTER: u64 = CLUSTER / 8;
/// Refcount-block entries per cluster: 2 bytes each.
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;
/// Set on L1 and L2 entries whose cluster has refcount 1.
const COPIED: u64 = 1 << 63;
const OUTPUT_BUFFER: usize = 1 << 20;

/// Where each structure lives, in clusters from the file's start.
struct Layout {
    /// Per guest cluster: whether it holds data.
    allocated: Vec<bool>,
    /// Per L1 entry: whether its L2 table exists (maps any data).
    l2_present: Vec<bool>,
    refcount_table: u64,
    refcount_table_clusters: u64,
    refcount_blocks: u64,
    refcount_block_count: u64,
    l1_table: u64,
    l1_clusters: u64,
    l2_tables: u64,
    data: u64,
    /// Clusters in the whole file.
    total: u64,
}

impl Layout {
    fn new(allocated: Vec<bool>) -> Layout {
        let l2_present: Vec<bool> = allocated
            .chunks(ENTRIES_PER_CLUSTER as usize)
            .map(|range| range.contains(&true))
            .collect();
        let l1_clusters = clusters_for_entries(l2_present.len() as u64);
        let l2_count = l2_present.iter().filter(|&&present| present).count() as u64;
        let data_count = allocated.iter().filter(|&&used| used).count() as u64;
        // The refcount structures count themselves: grow them until they cover
        // the file including their own clusters.
        let fixed = 1 + l1_clusters + l2_count + data_count;
        let (mut block_count, mut table_clusters) = (0, 0);
        loop {
            let total = fixed + block_count + table_clusters;
            let needed_blocks = total.div_ceil(REFCOUNTS_PER_BLOCK);
            let needed_table = clusters_for_entries(needed_blocks);
            if (needed_blocks, needed_table) == (block_count, table_clusters) {
                break;
            }
            (block_count, table_clusters) = (needed_blocks, needed_table);
        }
        let refcount_table = 1;
        let refcount_blocks = refcount_table + table_clusters;
        let l1_table = refcount_blocks + block_count;
        let l2_tables = l1_table + l1_clusters;
        let data = l2_tables + l2_count;
        Layout {
            allocated,
            l2_present,
            refcount_table,
            refcount_table_clusters: table_clusters,
            refcount_blocks,
            refcount_block_count: block_count,
            l1_table,
            l1_clusters,
            l2_tables,
            data,
            total: data + data_count,
        }
    }
}

/// Clusters needed for `entries` 8-byte table entries.
fn clusters_for_entries(entries: u64) -> u64 {
    entries.div_ceil(ENTRIES_PER_CLUSTER)
}

/// Writes the raw disk image in `raw` as a qcow2 image to `out` and returns `out`.
pub fn write<W: Write>(raw: &File, out: W) -> Result<W, ConvertError> {
    let image = RawImage::new(raw)?;
    let layout = Layout::new(image.allocated_chunks(CLUSTER as usize)?);
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER, out);
    let write_error = ConvertError::write(FORMAT);
    let mut cluster = vec![0; CLUSTER as usize];

    header(&image, &layout, &mut cluster);
    out.write_all(&cluster).map_err(&write_error)?;

    let block_offsets =
        (0..layout.refcount_block_count).map(|index| (layout.refcount_blocks + index) * CLUSTER);
    write_table(&mut out, block_offsets, layout.refcount_table_clusters)?;

    for block in 0..layout.refcount_block_count {
        let first = block * REFCOUNTS_PER_BLOCK;
        let used = layout.total.saturating_sub(first).min(REFCOUNTS_PER_BLOCK) as usize;
        cluster.fill(0);
        for refcount in cluster[..used * 2].chunks_exact_mut(2) {
            refcount.copy_from_slice(&1u16.to_be_bytes());
        }
        out.write_all(&cluster).map_err(&write_error)?;
    }

    let mut next_l2 = layout.l2_tables;
    let l1_entries = layout.l2_present.iter().map(|&present| {
        if present {
            table_entry(&mut next_l2)
        } else {
            0
        }
    });
    write_table(&mut out, l1_entries, layout.l1_clusters)?;

    let mut next_data = layout.data;
    let tables = layout.allocated.chunks(ENTRIES_PER_CLUSTER as usize);
    for (range, _) in tables
        .zip(&layout.l2_present)
        .filter(|(_, present)| **present)
    {
        let l2_entries = range
            .iter()
            .map(|&used| if used { table_entry(&mut next_data) } else { 0 });
        write_table(&mut out, l2_entries, 1)?;
    }

    for (index, _) in layout
        .allocated
        .iter()
        .enumerate()
        .filter(|(_, used)| **used)
    {
        image.read_chunk(index as u64, &mut cluster)?;
        out.write_all(&cluster).map_err(&write_error)?;
    }
    out.into_inner()
        .map_err(|error| write_error(error.into_error()))
}

/// The L1 or L2 entry pointing at cluster `*next`, which it takes.
fn table_entry(next: &mut u64) -> u64 {
    let cluster = *next;
    *next += 1;
    (cluster * CLUSTER) | COPIED
}

/// Fills `cluster` with the header (big-endian fields) and zero padding; the
/// zeros after the header read as the end of the header extensions.
fn header(image: &RawImage, layout: &Layout, cluster: &mut [u8]) {
    cluster.fill(0);
    let mut put = |offset: usize, bytes: &[u8]| {
        cluster[offset..offset + bytes.len()].copy_from_slice(bytes);
    };
    put(0, MAGIC);
    put(4, &VERSION.to_be_bytes());
    // 8: backing file offset, 16: its length (none).
    put(20, &CLUSTER_BITS.to_be_bytes());
    put(24, &image.size().to_be_bytes());
    // 32: encryption method (none).
    put(36, &(layout.l2_present.len() as u32).to_be_bytes());
    put(40, &(layout.l1_table * CLUSTER).to_be_bytes());
    put(48, &(layout.refcount_table * CLUSTER).to_be_bytes());
    put(56, &(layout.refcount_table_clusters as u32).to_be_bytes());
    // 60: snapshot count, 64: snapshot table offset (none).
    // 72, 80, 88: incompatible, compatible and autoclear features (none).
    put(96, &REFCOUNT_ORDER.to_be_bytes());
    put(100, &HEADER_LENGTH.to_be_bytes());
}

/// Writes a table of big-endian 8-byte `entries`, zero-padded to `clusters` clusters.
fn write_table<W: Write>(
    out: &mut W,
    entries: impl Iterator<Item = u64>,
    clusters: u64,
) -> Result<(), ConvertError> {
    let mut written = 0;
    for entry in entries {
        out.write_all(&entry.to_be_bytes())
            .map_err(ConvertError::write(FORMAT))?;
        written += 8;
    }
    let padding = clusters * CLUSTER - written;
    write_zeros(out, padding)
}

/// Writes `count` zero bytes.
fn write_zeros<W: Write>(out: &mut W, count: u64) -> Result<(), ConvertError> {
    io::copy(&mut io::repeat(0).take(count), out)
        .map(drop)
        .map_err(ConvertError::write(FORMAT))
}
