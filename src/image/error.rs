//! Everything that can go wrong getting an image, worded for the person
//! who has to fix it. No variant ever carries a credential.

use std::io;
use std::path::{Path, PathBuf};

use super::Digest;

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
    NotFound { reference: String },

    #[error("authentication required for {host} (check docker login / REGISTRY_AUTH_FILE)")]
    AuthRequired { host: String },

    #[error("image {reference} is not in the cache and --offline forbids fetching it")]
    NotCached { reference: String },

    #[error("image {reference} is not in the cache (`ossify cache ls` lists what is)")]
    NotInCache { reference: String },

    #[error("image {reference} has no manifest for {platform} (it has: {available})")]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: String,
    },

    #[error("registry {host}: {message}")]
    Registry { host: String, message: String },

    #[error("{host} sent content for {expected} that hashes to {actual}; it was discarded")]
    WrongContent {
        host: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("content for {expected} hashes to {actual}; it was discarded")]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error(
        "cached blob {expected} is corrupt (its content hashes to {actual}); run the command again to fetch it anew"
    )]
    CorruptBlob { expected: Digest, actual: Digest },

    #[error("blob {0} is not in the cache")]
    BlobMissing(Digest),

    #[error("manifest {digest} cannot be used: {reason}")]
    InvalidManifest { digest: Digest, reason: String },

    #[error("{path}: not a valid OCI index: {reason}")]
    CorruptIndex { path: PathBuf, reason: String },

    #[error("cannot import {path}: {reason}")]
    Import { path: PathBuf, reason: String },

    #[error("CA certificate {path}: {reason}")]
    CaCert { path: PathBuf, reason: String },

    #[error("no cache directory: set XDG_CACHE_HOME or HOME, or pass --cache-dir")]
    NoCacheDir,

    #[error("cannot access {path}")]
    Io { path: PathBuf, source: io::Error },
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_owned(),
            source,
        }
    }
}
