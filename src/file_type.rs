//! What a file is, in words: messages that refuse a FIFO, a device or a
//! symbolic link say which one they met.

use std::fs::FileType;
use std::os::unix::fs::FileTypeExt;

/// `kind` with its article, for messages: "a directory", "a FIFO".
pub fn describe(kind: FileType) -> &'static str {
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a file of an unknown type"
    }
}

/// A small file could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    #[error("cannot read it")]
    Io(#[source] std::io::Error),
    #[error("it is larger than {0} bytes, more than ossify ever writes there")]
    TooLarge(u64),
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
}

/// The whole of the regular file at `path`, at most `max` bytes: for the
/// JSON files ossify writes and reads back (manifests, lock files). A FIFO
/// or device is refused without waiting on it.
pub fn read_small_file(path: &std::path::Path, max: u64) -> Result<Vec<u8>, SmallFileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(SmallFileError::Io)?;
    let kind = file.metadata().map_err(SmallFileError::Io)?.file_type();
    if !kind.is_file() {
        return Err(SmallFileError::NotAFile(describe(kind)));
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(SmallFileError::Io)?;
    if bytes.len() as u64 > max {
        return Err(SmallFileError::TooLarge(max));
    }
    Ok(bytes)
}
