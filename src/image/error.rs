//! Everything that can go wrong getting an image, worded for the person
//! who has to fix it. No variant ever carries a credential.
//!
//! Each variant says what failed; the reason, when another error holds it,
//! is its source, printed after it by the caller's cause chain.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Digest;
use super::limit::MAX_DOCUMENT;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    #[error("invalid digest {0:?}: expected sha256: and 64 lowercase hex digits")]
    InvalidDigest(String),

    #[error("invalid platform {0:?}: expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/arm64/v8")]
    InvalidPlatform(String),

    #[error("invalid mirror {0:?}: expected [REGISTRY=]URL, e.g. docker.io=http://127.0.0.1:5000")]
    InvalidMirror(String),

    #[error("image {reference} not found")]
    NotFound {
        reference: String,
        #[source]
        source: Box<FetchError>,
    },

    #[error("authentication required for {host} (check docker login / REGISTRY_AUTH_FILE)")]
    AuthRequired {
        host: String,
        #[source]
        source: Box<FetchError>,
    },

    #[error(
        "image {reference} is not in the cache and --offline (or --frozen) forbids fetching it"
    )]
    NotCached { reference: String },

    #[error("image {reference} is not in the cache (`ossify cache ls` lists what is)")]
    NotInCache { reference: String },

    #[error(
        "image {reference} is incomplete in the cache: blob {missing} is missing \
         (`ossify pull {reference}` fetches it, `ossify cache rm {reference}` forgets the image)"
    )]
    Incomplete { reference: String, missing: Digest },

    #[error("image {reference} lacks blob {missing}, which the layout or archive does not hold")]
    IncompleteImport { reference: String, missing: Digest },

    #[error("image {reference} has no manifest for {platform} (it has: {available})")]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: String,
    },

    /// A registry failed to deliver `what` (a manifest or a blob).
    #[error("registry {host}: cannot fetch {what}")]
    Fetch {
        host: String,
        what: String,
        #[source]
        source: Box<FetchError>,
    },

    #[error("content for {expected} hashes to {actual}; it was discarded")]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error(
        "cached blob {expected} is corrupt (its content hashes to {actual}); run the command again to fetch it anew"
    )]
    CorruptBlob { expected: Digest, actual: Digest },

    #[error("blob {0} is not in the cache")]
    BlobMissing(Digest),

    #[error(transparent)]
    Oversized(#[from] Oversize),

    #[error("cached blob {digest} cannot be read")]
    CachedBlob {
        digest: Digest,
        #[source]
        source: Oversize,
    },

    #[error("blob {digest} has {actual} bytes, but its descriptor declares {declared}")]
    SizeMismatch {
        digest: Digest,
        declared: u64,
        actual: u64,
    },

    #[error("manifest {digest} cannot be used: {reason}")]
    InvalidManifest { digest: Digest, reason: String },

    #[error("{path} is not a valid OCI index")]
    CorruptIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// One file of an import (named as the archive or layout has it) or
    /// of the cache.
    #[error("{file}")]
    InFile {
        file: String,
        #[source]
        source: Box<Error>,
    },

    #[error("the archive cannot be read")]
    Archive(#[source] io::Error),

    #[error("{path} is {kind}, not a regular file; an image layout holds only regular files")]
    NotRegularFile { path: PathBuf, kind: &'static str },

    #[error("{file} is not valid")]
    InvalidMetadata {
        file: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error("{name} is named in manifest.json but missing from the archive")]
    MissingFromArchive { name: String },

    #[error("manifest.json names {name:?}, which is not a path inside the layout")]
    PathOutside { name: String },

    #[error(
        "neither index.json nor manifest.json found: not an OCI layout, OCI archive or `docker save` archive"
    )]
    NotAnArchive,

    #[error("it names no image (no ref name annotation or RepoTags)")]
    NoNames,

    #[error("CA certificate {path}")]
    CaCert {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("cannot set up the HTTP client")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),

    #[error("no cache directory: set XDG_CACHE_HOME or HOME, or pass --cache-dir")]
    NoCacheDir,

    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Why a registry did not deliver a manifest or blob: the source of
/// [`Error::Fetch`], [`Error::NotFound`] and [`Error::AuthRequired`].
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The registry answered with an error status; `message` is what its
    /// error body says, if anything.
    #[error("HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        status: reqwest::StatusCode,
        message: String,
    },

    #[error(transparent)]
    Network(reqwest::Error),

    #[error(
        "stalled: less than 1 KiB arrived in {} s (--stall-timeout)",
        .timeout.as_secs_f64()
    )]
    Stalled { timeout: Duration },

    #[error("the connection ended after {received} of {size} bytes")]
    Truncated { received: u64, size: u64 },

    #[error(transparent)]
    Oversized(Oversize),

    #[error("the content sent hashes to {actual}; it was discarded")]
    WrongContent { actual: Digest },

    #[error("cannot authenticate")]
    Authentication(#[source] oci_client::errors::OciDistributionError),

    #[error("gave up after {attempts} attempts")]
    GaveUp {
        attempts: u32,
        #[source]
        last: Box<FetchError>,
    },
}

/// How something was too big.
#[derive(Debug, thiserror::Error)]
pub enum Oversize {
    #[error(
        "it is larger than {} MiB, the limit for manifests, indexes and image configs",
        MAX_DOCUMENT >> 20
    )]
    Document,

    #[error("it is longer than the {0} bytes its descriptor declares")]
    Descriptor(u64),
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_owned(),
            source,
        }
    }

    /// `error`, said of one file.
    pub(crate) fn in_file(file: impl Into<String>, error: Error) -> Self {
        Self::InFile {
            file: file.into(),
            source: Box::new(error),
        }
    }
}
