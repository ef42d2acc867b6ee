//! cpio "newc" archives, the initramfs format: which entry's header, name,
//! data or padding an offset falls in. Archives may follow one another, as
//! the kernel reads them.

use super::Found;
use super::sequential::Sequential;

pub(crate) const MAGIC: &[u8; 6] = b"070701";
const HEADER: u64 = 110;
const TRAILER: &str = "TRAILER!!!";
/// The longest name read; the kernel's own limit is PATH_MAX.
const MAX_NAME: u64 = 4096;

/// Names the structure at `target` by walking the archive from its start.
pub(crate) fn describe(stream: &mut dyn Sequential, target: u64) -> Found {
    let mut position = 0u64;
    loop {
        let mut header = [0u8; HEADER as usize];
        if stream.read_exact(&mut header).is_err() || &header[..6] != MAGIC {
            return Found::crumbs(["after the cpio archive"]);
        }
        let (Some(file_size), Some(name_size)) = (hex(&header[54..62]), hex(&header[94..102]))
        else {
            return Found::crumbs(["cpio header (unreadable)"]);
        };
        let name_end = position + HEADER + name_size;
        let data = name_end.next_multiple_of(4);
        let data_end = data + file_size;
        let next = data_end.next_multiple_of(4);
        let name = if name_size <= MAX_NAME {
            let mut name = vec![0; name_size as usize];
            match stream.read_exact(&mut name) {
                Ok(()) => super::source::c_string(&name),
                Err(_) => return Found::crumbs(["after the cpio archive"]),
            }
        } else if stream.skip(name_size).is_ok() {
            "(name too long)".to_owned()
        } else {
            return Found::crumbs(["after the cpio archive"]);
        };
        if target < next {
            let part = if target < position + HEADER {
                "header"
            } else if target < name_end {
                "name"
            } else if target < data {
                "padding after name"
            } else if target < data_end {
                "data"
            } else {
                "padding after data"
            };
            let entry = if name == TRAILER {
                "cpio trailer".to_owned()
            } else {
                format!("cpio entry {name}")
            };
            return Found {
                crumbs: vec![entry, part.to_owned()],
                data: (part == "data").then_some(data..data_end),
            };
        }
        if stream.skip(next - name_end).is_err() {
            return Found::crumbs(["after the cpio archive"]);
        }
        position = next;
        if name == TRAILER {
            // Padding may follow, or another archive, 4-byte aligned.
            match skip_zeros(stream, &mut position, target) {
                Some(found) => return found,
                None => continue,
            }
        }
    }
}

/// Skips the zero padding after a trailer, four bytes at a time: the
/// padding's crumbs when `target` lies in it, else `None` with the stream
/// at the next archive's magic (its bytes already consumed are replayed by
/// reading the header from `position`).
fn skip_zeros(stream: &mut dyn Sequential, position: &mut u64, target: u64) -> Option<Found> {
    let mut word = [0u8; 4];
    loop {
        if stream.read_exact(&mut word).is_err() {
            return Some(Found::crumbs(["after the cpio archive"]));
        }
        if word != [0; 4] {
            if word != MAGIC[..4] || target < *position {
                return Some(Found::crumbs(["after the cpio archive"]));
            }
            // Another archive: the rest of its header follows.
            return Some(describe_after_magic(stream, *position, target));
        }
        if target < *position + 4 {
            return Some(Found::crumbs(["padding after the cpio trailer"]));
        }
        *position += 4;
    }
}

/// An archive that follows a trailer, whose first four bytes are read.
fn describe_after_magic(stream: &mut dyn Sequential, start: u64, target: u64) -> Found {
    struct Replay<'a> {
        head: Vec<u8>,
        rest: &'a mut dyn Sequential,
    }
    impl Sequential for Replay<'_> {
        fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
            let n = self.head.len().min(buf.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            self.rest.read_exact(&mut buf[n..])
        }
        fn skip(&mut self, n: u64) -> std::io::Result<()> {
            let held = (self.head.len() as u64).min(n);
            self.head.drain(..held as usize);
            self.rest.skip(n - held)
        }
    }
    let mut replay = Replay {
        head: MAGIC[..4].to_vec(),
        rest: stream,
    };
    let mut found = describe(&mut replay, target - start);
    found.data = found
        .data
        .map(|range| range.start + start..range.end + start);
    found
}

/// An 8-digit hex header field.
fn hex(field: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok()
}
