//! Resolution: from the references a config names to verified blobs in the
//! cache and the facts the build needs (config, layers), touching the
//! network only when the cache cannot answer.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, future};
use oci_spec::image::{Descriptor, ImageConfiguration};
use tokio::sync::Semaphore;

use super::limit::Limit;
use super::manifest::{DOCKER_MANIFEST, Document, OCI_MANIFEST, descriptor, descriptor_digest};
use super::registry::{Registry, Remote};
use super::store::{BlobState, Store, StoreGuard};
use super::transport::Transport;
use super::{Digest, Error, Mirror, Platform, Reference};

/// When the network may be used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Use what the cache has; fetch only what it lacks.
    #[default]
    Cached,
    /// Ask the registry what each tag points to now (`--pull`).
    Pull,
    /// Never touch the network; fail on anything missing (`--offline`).
    Offline,
}

/// How to resolve; `Default` resolves from the cache first, for the host's
/// platform, with no mirrors, 4 downloads at a time, and a 60 s stall
/// timeout.
#[derive(Clone, Debug)]
pub struct Options {
    pub policy: Policy,
    /// The platform to pick from multi-arch indexes; the host's when `None`.
    pub platform: Option<Platform>,
    pub mirrors: Vec<Mirror>,
    /// Hosts reached over plain HTTP although not loopback.
    pub insecure_registries: Vec<String>,
    /// Extra CA certificates (PEM) to trust.
    pub ca_certs: Vec<PathBuf>,
    /// How many blobs download at once, across all images.
    pub parallel_downloads: usize,
    /// A download that receives less than 1 KiB in this long has stalled
    /// (and is tried again, a bounded number of times).
    pub stall_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            platform: None,
            mirrors: Vec::new(),
            insecure_registries: Vec::new(),
            ca_certs: Vec::new(),
            parallel_downloads: 4,
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Reports downloads as they happen, so the CLI can draw progress bars on a
/// terminal and print plain lines in CI. Every method defaults to nothing.
pub trait Progress: Send + Sync {
    /// A download of `size` bytes starts (again, after a failed attempt).
    fn blob_started(&self, _digest: &Digest, _size: u64) {}
    /// `done` bytes of the blob have arrived and been written.
    fn blob_advanced(&self, _digest: &Digest, _done: u64) {}
    /// The blob was verified and is in the cache.
    fn blob_finished(&self, _digest: &Digest) {}
    /// The command waits for another process's lock on the cache; the
    /// message says which.
    fn waiting(&self, _message: &str) {}
    /// Something was wrong but was repaired, e.g. a corrupt cached blob.
    fn warning(&self, _message: &str) {}
}

/// A [`Progress`] that reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

/// How a layer blob is compressed, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// One layer of a resolved image; its blob is in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The digest of the blob as stored (compressed).
    pub digest: Digest,
    /// The digest of the uncompressed tar, from the image config.
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
    pub compression: Compression,
}

/// An image pinned to a digest, with everything needed to build from it.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The reference as asked for.
    pub reference: Reference,
    /// What the reference points to: an index or a manifest. This is the
    /// digest to pin (`reference@digest`).
    pub digest: Digest,
    /// The manifest chosen for the platform.
    pub manifest_digest: Digest,
    pub platform: Platform,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// Bottom layer first.
    pub layers: Vec<Layer>,
    /// The blobs of the SPDX documents BuildKit attested for this
    /// platform's manifest (in-toto statements), in the cache.
    pub spdx_attestations: Vec<Digest>,
}

impl ResolvedImage {
    /// The pinned form, `registry/repo[:tag]@sha256:…`.
    pub fn pinned(&self) -> String {
        pinned(&self.reference, &self.digest)
    }
}

impl ResolvedLayout {
    /// The pinned form, `registry/repo[:tag]@sha256:…`.
    pub fn pinned(&self) -> String {
        pinned(&self.reference, &self.digest)
    }
}

fn pinned(reference: &Reference, digest: &Digest) -> String {
    let base = reference.to_string();
    let base = base.split('@').next().unwrap_or(&base);
    format!("{base}@{digest}")
}

/// An image index to be copied whole as an OCI image layout (a LinuxKit
/// volume of `format: oci`), with the platforms to keep; none keeps all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutRequest {
    pub reference: Reference,
    pub platforms: Vec<Platform>,
}

/// An image index pinned to a digest, with every blob of its kept
/// platforms in the cache.
#[derive(Clone, Debug)]
pub struct ResolvedLayout {
    pub reference: Reference,
    /// The index's digest.
    pub digest: Digest,
    /// The index's media type, for the layout's `index.json`.
    pub media_type: String,
    /// The platforms kept; none: all.
    pub platforms: Vec<Platform>,
    /// The blobs of the kept platforms, each platform's config, layers and
    /// manifest in that order, as LinuxKit writes a layout.
    pub blobs: Vec<Digest>,
}

/// The images of one resolution, and the shared lock on the cache that
/// keeps their blobs there: hold it for as long as the blobs are read.
pub struct ResolvedImages {
    /// In the order the references were given.
    pub images: Vec<ResolvedImage>,
    /// In the order the layout requests were given.
    pub layouts: Vec<ResolvedLayout>,
    pub lock: StoreGuard,
}

/// Resolves references against a store and, when allowed, registries.
pub struct Resolver {
    store: Store,
    options: Options,
    progress: Arc<dyn Progress>,
}

impl Resolver {
    pub fn new(store: Store, options: Options) -> Self {
        Self {
            store,
            options,
            progress: Arc::new(NoProgress),
        }
    }

    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    pub fn platform(&self) -> Platform {
        self.options.platform.clone().unwrap_or_else(Platform::host)
    }

    /// Resolves every reference (concurrently), returning them in order
    /// with the cache lock that keeps them there. Blocks; runs its own
    /// async runtime.
    pub fn resolve(&self, references: &[Reference]) -> Result<ResolvedImages, Error> {
        self.resolve_with_layouts(references, &[])
    }

    /// [`Resolver::resolve`], and every layout request with it, under the
    /// same lock.
    pub fn resolve_with_layouts(
        &self,
        references: &[Reference],
        layouts: &[LayoutRequest],
    ) -> Result<ResolvedImages, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io(self.store.dir(), e))?;
        let lock = self.store.guard()?;
        let transport = Transport {
            insecure_registries: self.options.insecure_registries.clone(),
            ca_certs: self.options.ca_certs.clone(),
        };
        let remotes: Vec<Remote> = references
            .iter()
            .chain(layouts.iter().map(|l| &l.reference))
            .map(|r| Remote::new(r, &self.options.mirrors, &transport))
            .collect();
        let http_hosts = remotes
            .iter()
            .filter(|r| r.plain_http())
            .map(|r| r.host().to_owned())
            .collect();
        let session = Session {
            resolver: self,
            transport,
            http_hosts,
            registry: OnceLock::new(),
            downloads: Semaphore::new(self.options.parallel_downloads.max(1)),
        };
        let (image_remotes, layout_remotes) = remotes.split_at(references.len());
        let (images, layouts) = runtime.block_on(future::try_join(
            future::try_join_all(
                references
                    .iter()
                    .zip(image_remotes)
                    .map(|(reference, remote)| session.resolve(reference, remote)),
            ),
            future::try_join_all(
                layouts
                    .iter()
                    .zip(layout_remotes)
                    .map(|(request, remote)| session.layout(request, remote)),
            ),
        ))?;
        Ok(ResolvedImages {
            images,
            layouts,
            lock,
        })
    }
}

/// The state of one [`Resolver::resolve`] call. Its registry client is made
/// on the first request (loading the system's CA certificates takes a
/// while), so a resolution the cache answers makes neither it nor any
/// connection. Making it also removes the partial downloads of pulls that
/// died.
struct Session<'a> {
    resolver: &'a Resolver,
    transport: Transport,
    /// Registries reached over plain HTTP.
    http_hosts: Vec<String>,
    registry: OnceLock<Registry>,
    /// Bounds the number of blobs downloading at once, across images.
    downloads: Semaphore,
}

/// Whether a blob is a manifest (fetched from `/manifests/`) or not (`/blobs/`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Blob,
}

impl Session<'_> {
    fn registry(&self) -> Result<&Registry, Error> {
        if let Some(registry) = self.registry.get() {
            return Ok(registry);
        }
        let store = &self.resolver.store;
        store.remove_stale_partials()?;
        let registry = Registry::new(
            self.transport.clone(),
            self.http_hosts.clone(),
            self.resolver.options.stall_timeout,
        )?;
        Ok(self.registry.get_or_init(|| registry))
    }

    async fn resolve(
        &self,
        reference: &Reference,
        remote: &Remote,
    ) -> Result<ResolvedImage, Error> {
        let store = &self.resolver.store;
        let digest = self.root(reference, remote).await?;
        let root_bytes = store.read_blob(&digest)?;
        let root = Document::parse(&digest, &root_bytes)?;
        let root_descriptor = descriptor(&root.media_type(), &digest, root_bytes.len() as u64);

        let platform = self.resolver.platform();
        let attestation_index = match &root {
            Document::Index(index) => Some(index.manifests().clone()),
            Document::Manifest(_) => None,
        };
        let (manifest_digest, manifest) = match root {
            Document::Manifest(manifest) => (digest.clone(), manifest),
            Document::Index(index) => {
                let entry = index
                    .manifests()
                    .iter()
                    .find(|m| m.platform().as_ref().is_some_and(|p| platform.matches(p)))
                    .ok_or_else(|| Error::NoMatchingPlatform {
                        reference: reference.to_string(),
                        platform: platform.to_string(),
                        available: available_platforms(index.manifests()),
                    })?;
                let child = descriptor_digest(entry)?;
                let limit = Limit::Document(Some(entry.size()));
                self.ensure(reference, remote, &child, limit, Kind::Manifest)
                    .await?;
                match Document::parse(&child, &store.read_blob(&child)?)? {
                    Document::Manifest(manifest) => (child, manifest),
                    Document::Index(_) => {
                        return Err(Error::InvalidManifest {
                            digest: child,
                            reason: "an index inside an index is not supported".to_owned(),
                        });
                    }
                }
            }
        };

        let config_digest = descriptor_digest(manifest.config())?;
        self.ensure(
            reference,
            remote,
            &config_digest,
            Limit::Document(Some(manifest.config().size())),
            Kind::Blob,
        )
        .await?;
        let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&config_digest)?)
            .map_err(|e| Error::InvalidManifest {
                digest: config_digest.clone(),
                reason: format!("image config: {e}"),
            })?;

        let layers = layers(&manifest_digest, manifest.layers(), &config)?;
        futures_util::stream::iter(&layers)
            .map(|layer| {
                self.ensure(
                    reference,
                    remote,
                    &layer.digest,
                    Limit::Declared(layer.size),
                    Kind::Blob,
                )
            })
            .buffer_unordered(usize::MAX)
            .try_collect::<()>()
            .await?;

        let spdx_attestations = match &attestation_index {
            Some(entries) => {
                self.spdx_attestations(reference, remote, entries, &manifest_digest)
                    .await?
            }
            None => Vec::new(),
        };

        // Only now, with every blob it needs present and verified, may the
        // name point at the image.
        store.set_ref(reference, &root_descriptor)?;

        Ok(ResolvedImage {
            reference: reference.clone(),
            digest,
            manifest_digest,
            platform,
            config_digest,
            config,
            layers,
            spdx_attestations,
        })
    }

    /// An index and every blob of its platforms that `request` keeps, as
    /// LinuxKit copies them into a volume of `format: oci`
    /// (cache/indexsource.go, `OCITarReader`): only image manifests, and
    /// the variant compared only when the request names one.
    async fn layout(
        &self,
        request: &LayoutRequest,
        remote: &Remote,
    ) -> Result<ResolvedLayout, Error> {
        let reference = &request.reference;
        let store = &self.resolver.store;
        let digest = self.root(reference, remote).await?;
        let root_bytes = store.read_blob(&digest)?;
        let root = Document::parse(&digest, &root_bytes)?;
        let media_type = root.media_type();
        let Document::Index(index) = root else {
            return Err(Error::InvalidManifest {
                digest,
                reason: format!(
                    "{reference} is a single image, not an index; a volume of `format: oci` \
                     copies an index (use `format: filesystem` for a single image)"
                ),
            });
        };
        let kept = index.manifests().iter().filter(|entry| {
            let is_image = matches!(
                entry.media_type().to_string().as_str(),
                OCI_MANIFEST | DOCKER_MANIFEST
            );
            let platform_kept = request.platforms.is_empty()
                || entry
                    .platform()
                    .as_ref()
                    .is_some_and(|p| request.platforms.iter().any(|want| want.matches(p)));
            is_image && platform_kept
        });
        let mut blobs = Vec::new();
        for entry in kept {
            let manifest_digest = descriptor_digest(entry)?;
            let limit = Limit::Document(Some(entry.size()));
            self.ensure(reference, remote, &manifest_digest, limit, Kind::Manifest)
                .await?;
            let Document::Manifest(manifest) =
                Document::parse(&manifest_digest, &store.read_blob(&manifest_digest)?)?
            else {
                continue;
            };
            let config = manifest.config();
            let config_digest = descriptor_digest(config)?;
            let limit = Limit::Document(Some(config.size()));
            self.ensure(reference, remote, &config_digest, limit, Kind::Blob)
                .await?;
            blobs.push(config_digest);
            for layer in manifest.layers() {
                let layer_digest = descriptor_digest(layer)?;
                let limit = Limit::Declared(layer.size());
                self.ensure(reference, remote, &layer_digest, limit, Kind::Blob)
                    .await?;
                blobs.push(layer_digest);
            }
            blobs.push(manifest_digest);
        }
        let descriptor = descriptor(&media_type, &digest, root_bytes.len() as u64);
        store.set_ref(reference, &descriptor)?;
        Ok(ResolvedLayout {
            reference: reference.clone(),
            digest,
            media_type,
            platforms: request.platforms.clone(),
            blobs,
        })
    }

    /// The SPDX attestations of `manifest` in an index's `entries`: BuildKit
    /// adds an entry annotated as the attestation manifest of the platform
    /// manifest, whose layers are in-toto statements; those whose
    /// predicate is an SPDX document are fetched (LinuxKit:
    /// cache/imagesource.go, `SBoMs`). An image cached without them, when
    /// the network may not be used, has none: the build then reads its
    /// package databases instead, and says so.
    async fn spdx_attestations(
        &self,
        reference: &Reference,
        remote: &Remote,
        entries: &[Descriptor],
        manifest: &Digest,
    ) -> Result<Vec<Digest>, Error> {
        let manifest = manifest.to_string();
        let annotated = |entry: &&Descriptor| {
            entry.annotations().as_ref().is_some_and(|a| {
                a.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION_MANIFEST)
                    && a.get(REFERENCE_DIGEST) == Some(&manifest)
            })
        };
        let Some(entry) = entries.iter().find(annotated) else {
            return Ok(Vec::new());
        };
        let store = &self.resolver.store;
        let attestation = descriptor_digest(entry)?;
        let limit = Limit::Document(Some(entry.size()));
        let fetched = async {
            self.ensure(reference, remote, &attestation, limit, Kind::Manifest)
                .await?;
            let Document::Manifest(statements) =
                Document::parse(&attestation, &store.read_blob(&attestation)?)?
            else {
                return Err(Error::InvalidManifest {
                    digest: attestation.clone(),
                    reason: "an attestation manifest that is an index".to_owned(),
                });
            };
            let mut spdx = Vec::new();
            for layer in statements.layers().iter().filter(|l| is_spdx_statement(l)) {
                let digest = descriptor_digest(layer)?;
                self.ensure(
                    reference,
                    remote,
                    &digest,
                    Limit::Declared(layer.size().min(MAX_ATTESTATION)),
                    Kind::Blob,
                )
                .await?;
                spdx.push(digest);
            }
            Ok(spdx)
        };
        match fetched.await {
            Err(Error::NotCached { .. }) => {
                self.resolver.progress.warning(&format!(
                    "{reference}: its SBOM attestation is not cached and the network may not be \
                     used; the SBOM lists the packages of its package databases instead"
                ));
                Ok(Vec::new())
            }
            result => result,
        }
    }

    /// The digest the reference points to, its blob in the store.
    async fn root(&self, reference: &Reference, remote: &Remote) -> Result<Digest, Error> {
        let policy = self.resolver.options.policy;
        if let Some(pinned) = reference.digest() {
            self.ensure(
                reference,
                remote,
                &pinned,
                Limit::Document(None),
                Kind::Manifest,
            )
            .await?;
            return Ok(pinned);
        }
        if policy != Policy::Pull
            && let Some(cached) = self.resolver.store.lookup(&reference.to_string())?
        {
            let digest = descriptor_digest(&cached)?;
            self.ensure(
                reference,
                remote,
                &digest,
                Limit::Document(Some(cached.size())),
                Kind::Manifest,
            )
            .await?;
            return Ok(digest);
        }
        if policy == Policy::Offline {
            return Err(Error::NotCached {
                reference: reference.to_string(),
            });
        }
        self.registry()?
            .fetch_manifest(remote, None, Limit::Document(None), &self.resolver.store)
            .await
    }

    /// Makes sure blob `digest` is in the store and intact, fetching it
    /// (no more than `limit` allows) if the policy allows.
    async fn ensure(
        &self,
        reference: &Reference,
        remote: &Remote,
        digest: &Digest,
        limit: Limit,
        kind: Kind,
    ) -> Result<(), Error> {
        let store = &self.resolver.store;
        match store.check_blob(digest)? {
            BlobState::Valid => return Ok(()),
            BlobState::Missing => {}
            BlobState::Corrupt { actual } => self.resolver.progress.warning(&format!(
                "cached blob {digest} was corrupt (it hashed to {actual}); fetching it again"
            )),
        }
        if self.resolver.options.policy == Policy::Offline {
            return Err(Error::NotCached {
                reference: reference.to_string(),
            });
        }
        let registry = self.registry()?;
        let _slot = self.downloads.acquire().await.expect("never closed");
        match kind {
            Kind::Manifest => {
                registry
                    .fetch_manifest(remote, Some(digest), limit, store)
                    .await?;
            }
            Kind::Blob => {
                registry
                    .fetch_blob(remote, digest, limit, store, &*self.resolver.progress)
                    .await?
            }
        }
        Ok(())
    }
}

/// The index annotations BuildKit marks an attestation manifest with.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// An in-toto statement layer, and the predicate type of an SPDX one.
const IN_TOTO_JSON: &str = "application/vnd.in-toto+json";
const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
pub const SPDX_DOCUMENT: &str = "https://spdx.dev/Document";
/// The largest attestation read: an SBOM of a large image is a few MiB.
const MAX_ATTESTATION: u64 = 64 << 20;

/// Whether an attestation layer is an in-toto statement about an SPDX
/// document.
fn is_spdx_statement(layer: &Descriptor) -> bool {
    layer.media_type().to_string() == IN_TOTO_JSON
        && layer
            .annotations()
            .as_ref()
            .and_then(|a| a.get(PREDICATE_TYPE))
            .is_some_and(|t| t == SPDX_DOCUMENT)
}

/// Pairs each layer descriptor with its diff ID and compression.
fn layers(
    manifest: &Digest,
    descriptors: &[Descriptor],
    config: &ImageConfiguration,
) -> Result<Vec<Layer>, Error> {
    let invalid = |reason: String| Error::InvalidManifest {
        digest: manifest.clone(),
        reason,
    };
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != descriptors.len() {
        return Err(invalid(format!(
            "{} layers but {} diff IDs in the config",
            descriptors.len(),
            diff_ids.len()
        )));
    }
    descriptors
        .iter()
        .zip(diff_ids)
        .map(|(descriptor, diff_id)| {
            let media_type = descriptor.media_type().to_string();
            let compression = compression(&media_type)
                .ok_or_else(|| invalid(format!("unsupported layer media type {media_type}")))?;
            Ok(Layer {
                digest: descriptor_digest(descriptor)?,
                diff_id: diff_id.parse()?,
                size: descriptor.size(),
                media_type,
                compression,
            })
        })
        .collect()
}

/// The compression a layer media type implies; `None` for non-layers.
fn compression(media_type: &str) -> Option<Compression> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
        "application/vnd.oci.image.layer.v1.tar+zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

fn available_platforms(manifests: &[Descriptor]) -> String {
    let platforms: Vec<String> = manifests
        .iter()
        .filter_map(|m| m.platform().as_ref().map(Platform::describe))
        .collect();
    if platforms.is_empty() {
        "no platform annotations".to_owned()
    } else {
        platforms.join(", ")
    }
}
