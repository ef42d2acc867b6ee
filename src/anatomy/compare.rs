//! Where two byte streams first differ, a MiB at a time, so a 1 GiB output
//! costs two MiB of memory.

use std::io::{self, Read};

const CHUNK: usize = 1 << 20;

/// How a read error on one side is taken.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Fail: the files themselves must be readable.
    Fail,
    /// The stream ends there: a decoder that cannot go on has produced all
    /// it can, and the other side's extra bytes are the difference.
    End,
}

/// The first offset at which `a` and `b` differ, the shorter length when
/// one is a prefix of the other, `None` when they are equal.
pub(crate) fn first_difference(
    a: &mut dyn Read,
    b: &mut dyn Read,
    on_error: OnError,
) -> io::Result<Option<u64>> {
    let mut left = vec![0; CHUNK];
    let mut right = vec![0; CHUNK];
    let mut offset = 0u64;
    loop {
        let l = fill(a, &mut left, on_error)?;
        let r = fill(b, &mut right, on_error)?;
        let common = l.min(r);
        // Slice equality is memcmp, fast even unoptimised; the byte-wise
        // search runs on one differing chunk only.
        if left[..common] != right[..common]
            && let Some(at) = left[..common]
                .iter()
                .zip(&right[..common])
                .position(|(x, y)| x != y)
        {
            return Ok(Some(offset + at as u64));
        }
        if l != r {
            return Ok(Some(offset + common as u64));
        }
        if l == 0 {
            return Ok(None);
        }
        offset += l as u64;
    }
}

/// Reads until `buf` is full or the stream ends; the bytes read.
fn fill(reader: &mut dyn Read, buf: &mut [u8], on_error: OnError) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) if on_error == OnError::End => break,
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}
