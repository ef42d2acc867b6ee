//! The PAX records of a layer entry that ossify applies: owner and time
//! over the header's, extended attributes, and GNU's sparse-file records.
//! Others (`path`, `linkpath`, `size`) the tar crate applies itself; the
//! rest (`atime`, `ctime`, …) mean nothing in an image.

use std::collections::BTreeMap;

use thiserror::Error;

use super::sparse;

const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
/// Linux's `XATTR_NAME_MAX`: the longest extended attribute name.
pub const XATTR_NAME_MAX: usize = 255;
/// Linux's `XATTR_SIZE_MAX`: the largest extended attribute value.
pub const XATTR_SIZE_MAX: usize = 64 * 1024;

/// A PAX record that cannot be applied.
#[derive(Debug, Error)]
pub enum PaxError {
    /// A record ossify reads holds no value it can use.
    #[error("PAX record `{record}` holds `{value}`, which is not what it should")]
    Malformed {
        /// The record's key.
        record: String,
        /// Its value, shortened.
        value: String,
    },
    /// A path or link target with a NUL byte, which only a PAX record can
    /// carry and no file system can hold.
    #[error(
        "PAX record `{record}` holds a NUL byte, which no file name can (Go's reader refuses it too)"
    )]
    Nul {
        /// The record's key.
        record: String,
    },
    /// An extended attribute name that is not UTF-8 or too long for Linux.
    #[error(
        "extended attribute `{name}`: names are UTF-8 of at most {XATTR_NAME_MAX} bytes on Linux (XATTR_NAME_MAX)"
    )]
    XattrName {
        /// The name, shortened.
        name: String,
    },
    /// An extended attribute value too large for Linux.
    #[error(
        "extended attribute `{name}` holds {length} bytes; Linux takes at most {XATTR_SIZE_MAX} (XATTR_SIZE_MAX)"
    )]
    XattrValue {
        /// The attribute's name.
        name: String,
        /// The value's length.
        length: usize,
    },
}

/// What an entry's PAX records change.
#[derive(Debug, Default)]
pub(super) struct Records {
    pub(super) uid: Option<u32>,
    pub(super) gid: Option<u32>,
    pub(super) mtime: Option<u64>,
    pub(super) xattrs: BTreeMap<String, Vec<u8>>,
    pub(super) sparse: sparse::Records,
}

impl Records {
    /// Takes one record.
    pub(super) fn take(&mut self, key: &[u8], value: &[u8]) -> Result<(), PaxError> {
        if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
            return self.xattr(name, value);
        }
        if self.sparse.take(key, value) {
            return Ok(());
        }
        let malformed = || PaxError::Malformed {
            record: String::from_utf8_lossy(key).into_owned(),
            value: String::from_utf8_lossy(&value[..value.len().min(40)]).into_owned(),
        };
        match key {
            b"path" | b"linkpath" if value.contains(&0) => {
                return Err(PaxError::Nul {
                    record: String::from_utf8_lossy(key).into_owned(),
                });
            }
            b"uid" => self.uid = Some(pax_id(value).ok_or_else(malformed)?),
            b"gid" => self.gid = Some(pax_id(value).ok_or_else(malformed)?),
            b"mtime" => self.mtime = Some(pax_time(value).ok_or_else(malformed)?),
            _ => {}
        }
        Ok(())
    }

    fn xattr(&mut self, name: &[u8], value: &[u8]) -> Result<(), PaxError> {
        let name = match std::str::from_utf8(name) {
            Ok(name) if name.len() <= XATTR_NAME_MAX => name.to_owned(),
            _ => {
                return Err(PaxError::XattrName {
                    name: String::from_utf8_lossy(&name[..name.len().min(64)]).into_owned(),
                });
            }
        };
        if value.len() > XATTR_SIZE_MAX {
            return Err(PaxError::XattrValue {
                name,
                length: value.len(),
            });
        }
        self.xattrs.insert(name, value.to_vec());
        Ok(())
    }
}

fn pax_id(value: &[u8]) -> Option<u32> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A PAX time (`seconds[.fraction]`), whole seconds; times before 1970 are 0.
fn pax_time(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let seconds = text.split_once('.').map_or(text, |(seconds, _)| seconds);
    match seconds.strip_prefix('-') {
        Some(before_epoch) => before_epoch.parse::<u64>().ok().map(|_| 0),
        None => seconds.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(pax_time(b"1700000000.123456"), Some(1_700_000_000));
        assert_eq!(pax_time(b"42"), Some(42));
        assert_eq!(pax_time(b"-5.5"), Some(0));
        assert_eq!(pax_time(b"soon"), None);
    }

    #[test]
    fn xattrs_within_linuxs_limits_only() {
        let mut records = Records::default();
        let name = "user.".to_owned() + &"n".repeat(XATTR_NAME_MAX - 5);
        records
            .take(
                format!("SCHILY.xattr.{name}").as_bytes(),
                &[7; XATTR_SIZE_MAX],
            )
            .unwrap();
        assert_eq!(records.xattrs[&name].len(), XATTR_SIZE_MAX);
        assert!(matches!(
            records.take(format!("SCHILY.xattr.{name}x").as_bytes(), b""),
            Err(PaxError::XattrName { .. })
        ));
        assert!(matches!(
            records.take(b"SCHILY.xattr.user.big", &[0; XATTR_SIZE_MAX + 1]),
            Err(PaxError::XattrValue { length: 65537, .. })
        ));
        assert!(matches!(
            records.take(b"uid", b"-1"),
            Err(PaxError::Malformed { .. })
        ));
    }
}
