//! The JSON documents that tie an image together: indexes and manifests,
//! in both their OCI and Docker v2 schema 2 media types.

use oci_spec::image::{Descriptor, DescriptorBuilder, ImageIndex, ImageManifest, MediaType};

use super::{Digest, Error};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Media types asked for when fetching a manifest by tag or digest.
pub const ACCEPTED: [&str; 4] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];

/// An index (one manifest per platform) or a single-platform manifest.
pub enum Document {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

impl Document {
    /// Parses a manifest blob, telling the two kinds apart by `mediaType`
    /// or, when a producer omitted it, by the presence of `manifests`.
    pub fn parse(digest: &Digest, bytes: &[u8]) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidManifest {
            digest: digest.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let media_type = value.get("mediaType").and_then(|m| m.as_str());
        let is_index = match media_type {
            Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
            Some(other) => return Err(invalid(format!("unsupported media type {other}"))),
            None => value.get("manifests").is_some(),
        };
        let document = if is_index {
            serde_json::from_value(value).map(|i| Self::Index(Box::new(i)))
        } else {
            serde_json::from_value(value).map(|m| Self::Manifest(Box::new(m)))
        };
        document.map_err(|e| invalid(e.to_string()))
    }

    /// The media type to record for this document in a descriptor: its
    /// own `mediaType`, else the OCI one its shape implies.
    pub fn media_type(&self) -> String {
        let (declared, implied) = match self {
            Self::Index(index) => (index.media_type(), OCI_INDEX),
            Self::Manifest(manifest) => (manifest.media_type(), OCI_MANIFEST),
        };
        declared
            .as_ref()
            .map_or_else(|| implied.to_owned(), |m| m.to_string())
    }

    /// Every blob this document refers to directly.
    pub fn children(&self) -> Vec<&Descriptor> {
        match self {
            Self::Index(index) => index.manifests().iter().collect(),
            Self::Manifest(manifest) => std::iter::once(manifest.config())
                .chain(manifest.layers())
                .collect(),
        }
    }
}

/// The digest a descriptor names, in our own type.
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest, Error> {
    descriptor.digest().to_string().parse()
}

/// A descriptor for a blob of `media_type`.
pub fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    DescriptorBuilder::default()
        .media_type(MediaType::from(media_type))
        .digest(
            digest
                .to_string()
                .parse::<oci_spec::image::Digest>()
                .expect("a sha256 digest is valid"),
        )
        .size(size)
        .build()
        .expect("media type, digest and size are all a descriptor needs")
}
