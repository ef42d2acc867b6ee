//! Archive and image writers. Each takes a [`Tree`](crate::tree::Tree) and
//! knows nothing of OCI or YAML.
//!
//! Every writer takes a `source_date_epoch`: mtimes later than it are
//! clamped down to it, earlier ones kept, as `SOURCE_DATE_EPOCH` specifies.

pub mod cpio;
pub mod gzip;
pub mod tar;

/// The mtime a writer records for `mtime` under `source_date_epoch`.
pub fn clamp_mtime(mtime: u64, source_date_epoch: u64) -> u64 {
    mtime.min(source_date_epoch)
}
