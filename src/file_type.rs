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
