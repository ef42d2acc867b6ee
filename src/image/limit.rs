//! How much of a blob ossify reads. Manifests, indexes and image configs
//! are parsed in memory, so they are capped; every blob stops one byte past
//! the size its descriptor declares, so a registry or a file that never
//! ends costs nothing.

use super::error::Oversize;

/// The most bytes of a manifest, an index (the cache's `index.json`
/// included) or an image config that ossify reads. Real ones are a few
/// KiB; the largest multi-platform indexes stay far below 1 MiB.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// How many bytes one blob may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// A manifest, index or image config: its declared size when one is
    /// known, and never more than [`MAX_DOCUMENT`].
    Document(Option<u64>),
    /// A layer: its declared size.
    Declared(u64),
    /// A layer no descriptor sizes (a `docker save` archive names layers
    /// by path): as long as its file, which is finite.
    File,
}

impl Limit {
    /// The most bytes allowed.
    pub fn bytes(self) -> u64 {
        match self {
            Self::Document(declared) => declared.map_or(MAX_DOCUMENT, |d| d.min(MAX_DOCUMENT)),
            Self::Declared(size) => size,
            Self::File => u64::MAX,
        }
    }

    /// The size a descriptor declares, when one does.
    pub fn declared(self) -> Option<u64> {
        match self {
            Self::Document(declared) => declared,
            Self::Declared(size) => Some(size),
            Self::File => None,
        }
    }

    /// Fails when `len` bytes are more than allowed: call it with a
    /// declared or announced length before reading, and with the count
    /// read after every chunk.
    pub fn check(self, len: u64) -> Result<(), Oversize> {
        if len <= self.bytes() {
            return Ok(());
        }
        Err(match self {
            Self::Declared(size) => Oversize::Descriptor(size),
            Self::Document(Some(declared)) if declared <= MAX_DOCUMENT => {
                Oversize::Descriptor(declared)
            }
            Self::Document(_) | Self::File => Oversize::Document,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_stop_at_their_declared_size_and_at_the_cap() {
        assert!(Limit::Document(None).check(MAX_DOCUMENT).is_ok());
        assert!(matches!(
            Limit::Document(None).check(MAX_DOCUMENT + 1),
            Err(Oversize::Document)
        ));
        assert!(matches!(
            Limit::Document(Some(10)).check(11),
            Err(Oversize::Descriptor(10))
        ));
        assert!(matches!(
            Limit::Document(Some(4 << 30)).check(4 << 30),
            Err(Oversize::Document)
        ));
    }

    #[test]
    fn layers_stop_at_their_declared_size_only() {
        assert!(Limit::Declared(5 << 30).check(5 << 30).is_ok());
        assert!(matches!(
            Limit::Declared(5).check(6),
            Err(Oversize::Descriptor(5))
        ));
        assert!(Limit::File.check(u64::MAX).is_ok());
    }
}
