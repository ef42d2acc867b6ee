//! Getting images: references and platforms, the OCI-layout cache, and
//! pulls from registries (auth, mirrors, transport), verified end to end.
//!
//! The build pipeline calls [`Resolver::resolve`] for the references a
//! config names, then reads each layer with [`Store::open_blob`] while it
//! holds the lock the resolution returned.

mod archive;
mod auth;
mod digest;
mod error;
mod limit;
mod manifest;
mod mirror;
mod platform;
mod reference;
mod registry;
mod resolve;
mod store;
mod transport;

pub use digest::Digest;
pub use error::{Error, FetchError, Oversize};
pub use limit::MAX_DOCUMENT;
pub use manifest::OCI_INDEX;
pub use mirror::Mirror;
pub use platform::Platform;
pub use reference::Reference;
pub use resolve::{
    Compression, Layer, LayoutRequest, NoProgress, Options, Policy, Progress, ResolvedImage,
    ResolvedImages, ResolvedLayout, Resolver, SPDX_DOCUMENT,
};
pub use store::{BlobReader, BlobState, CachedImage, Store, StoreGuard};
pub use transport::Transport;
