//! Tar archives (ustar, PAX and GNU): which entry's header, extended
//! header, data or padding an offset falls in.

use std::ops::Range;

use super::Found;
use super::sequential::Sequential;
use super::source::c_string;

const BLOCK: u64 = 512;
/// The largest PAX or GNU long-name payload read for a path.
const MAX_EXTENSION: u64 = 1 << 20;

/// Names the structure at `target` by walking the archive from its start.
pub(crate) fn describe(stream: &mut dyn Sequential, target: u64) -> Found {
    let mut position = 0u64;
    // A PAX `path` or GNU long name for the next entry, and where its
    // extension started, so an offset inside it names that entry.
    let mut pending: Option<(Option<String>, u64)> = None;
    loop {
        let mut header = [0u8; BLOCK as usize];
        if stream.read_exact(&mut header).is_err() {
            return Found::crumbs(["after the tar archive"]);
        }
        if header.iter().all(|&b| b == 0) {
            return Found::crumbs(["end-of-archive blocks"]);
        }
        let kind = header[156];
        let size = size(&header);
        let Some(next) = size
            .checked_next_multiple_of(BLOCK)
            .and_then(|padded| (position + BLOCK).checked_add(padded))
        else {
            return Found::crumbs(["tar header (size out of range)"]);
        };
        let data = position + BLOCK..position + BLOCK + size;
        if matches!(kind, b'x' | b'L' | b'K') {
            let extension = read_extension(stream, size, kind);
            let (path, start) = pending.take().unwrap_or((None, position));
            pending = Some((extension.or(path), start));
            if target < next {
                // Named by the entry it extends: read on to that header.
                let name = next_name(stream, &pending);
                return Found::crumbs([format!("tar entry {name}"), "extended header".to_owned()]);
            }
        } else {
            let name = pending
                .take()
                .and_then(|(path, _)| path)
                .unwrap_or_else(|| ustar_name(&header));
            if target < next {
                return entry(name, target, position, data);
            }
            if stream.skip(next - data.start).is_err() {
                return Found::crumbs(["after the tar archive"]);
            }
        }
        position = next;
    }
}

/// The crumbs of `target` inside the entry `name` whose header is at
/// `header` and data spans `data`.
fn entry(name: String, target: u64, header: u64, data: Range<u64>) -> Found {
    let entry = format!("tar entry {name}");
    let (part, nested) = if target < header + BLOCK {
        ("header", None)
    } else if data.contains(&target) {
        ("data", Some(data))
    } else {
        ("padding after data", None)
    };
    Found {
        crumbs: vec![entry, part.to_owned()],
        data: nested,
    }
}

/// The name of the entry after extension headers already read.
fn next_name(stream: &mut dyn Sequential, pending: &Option<(Option<String>, u64)>) -> String {
    if let Some((Some(path), _)) = pending {
        return path.clone();
    }
    let mut header = [0u8; BLOCK as usize];
    match stream.read_exact(&mut header) {
        Ok(()) => ustar_name(&header),
        Err(_) => "(unnamed)".to_owned(),
    }
}

/// Reads an extension's payload (and its padding): the path a PAX header
/// or GNU long name gives, if any.
fn read_extension(stream: &mut dyn Sequential, size: u64, kind: u8) -> Option<String> {
    let padded = size.next_multiple_of(BLOCK);
    if size > MAX_EXTENSION {
        stream.skip(padded).ok()?;
        return None;
    }
    let mut payload = vec![0; padded as usize];
    stream.read_exact(&mut payload).ok()?;
    payload.truncate(size as usize);
    match kind {
        b'L' => Some(c_string(&payload)),
        b'x' => pax_path(&payload),
        _ => None,
    }
}

/// The `path` record of a PAX extended header: records are
/// `"<len> <key>=<value>\n"`.
fn pax_path(mut payload: &[u8]) -> Option<String> {
    let mut path = None;
    while !payload.is_empty() {
        let space = payload.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&payload[..space]).ok()?.parse().ok()?;
        let record = payload.get(space + 1..len)?;
        if let Some(value) = record.strip_prefix(b"path=") {
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            path = Some(String::from_utf8_lossy(value).into_owned());
        }
        payload = &payload[len..];
    }
    path
}

/// `prefix/name` of a ustar header, or the plain name.
fn ustar_name(header: &[u8; 512]) -> String {
    let name = c_string(&header[..100]);
    let prefix = if &header[257..262] == b"ustar" {
        c_string(&header[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// The size field: octal, or base-256 when its top bit is set.
fn size(header: &[u8; 512]) -> u64 {
    let field = &header[124..136];
    if field[0] & 0x80 != 0 {
        return field[1..]
            .iter()
            .fold(0u64, |n, &b| n.saturating_mul(256).saturating_add(b.into()));
    }
    field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .fold(0u64, |n, &b| {
            n.saturating_mul(8).saturating_add((b - b'0').into())
        })
}
