//! A build, end to end: the images a configuration names are resolved and
//! verified, their layers applied, the root filesystem assembled, the
//! outputs written, and a manifest of digests recorded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use thiserror::Error;

use crate::assemble::{self, ImageConfig, ImageError, Images, files::Host, go_json};
use crate::bootloader::Bootloader;
use crate::config::{Config, Located};
use crate::image::{
    self, LayoutRequest, Policy, Progress, Reference, ResolvedImage, ResolvedImages,
    ResolvedLayout, Resolver, Store, StoreGuard,
};
use crate::lock::Pins;
use crate::output::deflated::DeflateAhead;
use crate::output::manifest::{
    BuildOptions, ConfigRecord, FileName, HostFileRecord, ImageRecord, Manifest, OutputRecord,
    SbomRecord, VERSION,
};
use crate::output::{self, Destination, Format, OutputError, atomic};
use crate::reuse::Reuse;
use crate::tree::layer::{Layer, LayerError};
use crate::tree::{Compression, Kind, Metadata, Tree};
use crate::write::initrd_compression::InitrdCompression;

/// Everything a build needs besides the configuration.
pub struct Request<'a> {
    pub formats: &'a [Format],
    pub destination: &'a Destination,
    pub source_date_epoch: u64,
    /// The image cache; `None` for the default location.
    pub cache_dir: Option<PathBuf>,
    /// The boot image given on the command line, over the config's `boot:`.
    pub boot_image: Option<String>,
    /// The size of disk images in bytes; `None` for content plus headroom.
    pub disk_size: Option<u64>,
    /// How root filesystem images are written.
    pub root: output::RootOptions,
    /// How the initrd is compressed.
    pub initrd_compression: InitrdCompression,
    /// Store the kernel uncompressed, as LinuxKit's `--decompress-kernel`.
    pub decompress_kernel: bool,
    /// Use the work earlier builds kept in the cache (see [`crate::reuse`]),
    /// and keep this build's; else every step is done afresh.
    pub reuse: bool,
    /// The SBOM to write into the root; `None` for none (`--no-sbom`).
    pub sbom: Option<assemble::SbomOptions>,
    pub resolve: image::Options,
    /// The configuration files, as the manifest records them.
    pub configs: &'a [ConfigRecord],
    /// Build from exactly these digests (`--locked`, or a rebuild): an
    /// image without a pin is an error.
    pub pins: Option<&'a Pins>,
    pub progress: Arc<dyn Progress>,
    /// Reports each stage as it starts.
    pub stage: &'a dyn Fn(&str),
}

/// A build failed.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("{position}")]
    Reference {
        position: crate::config::Position,
        source: image::Error,
    },
    #[error("--boot-image")]
    BootImage(#[source] image::Error),
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error("cannot read boot image {reference}")]
    BootImageContents {
        reference: String,
        source: ImageError,
    },
    #[error(transparent)]
    Assemble(#[from] assemble::Error),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot read the environment: {0}")]
    Environment(std::io::Error),
    #[error("{}", unpinned(position.as_ref(), reference))]
    Unpinned {
        position: Option<crate::config::Position>,
        reference: String,
    },
    #[error(
        "the lock pins {reference} for {locked}, but this build is for {platform}: lock again \
         with the build's --arch or --platform"
    )]
    PlatformMismatch {
        reference: String,
        locked: String,
        platform: String,
    },
}

/// Builds `config` as `request` says and returns the manifest, which is
/// also written beside the outputs (except when they are streamed). The
/// outputs and the manifest are put in place together at the end, or not
/// at all. Temporary files that a killed build left in the output
/// directory are removed first.
pub fn build(config: &Config, request: &Request<'_>) -> Result<Manifest, BuildError> {
    output::check_supported(request.formats)?;
    if let Some(dir) = request.destination.dir() {
        atomic::remove_stale(dir);
    }
    let with_boot_image = request.formats.iter().any(|f| f.needs_bootloader());
    let Resolution {
        references,
        boot_image,
        resolved,
        layouts,
        cache_lock,
        store,
        resolver,
    } = resolve(config, request, with_boot_image)?;
    let by_name: HashMap<String, ResolvedImage> = references
        .iter()
        .map(|(written, reference)| {
            let image = resolved
                .iter()
                .find(|r| r.reference == *reference)
                .expect("every reference was resolved");
            (written.clone(), image.clone())
        })
        .collect();
    let layouts: HashMap<String, ResolvedLayout> = layouts.into_iter().collect();
    let reuse = request.reuse.then(|| Reuse::open(store.dir())).flatten();
    let images = CachedImages {
        store: &store,
        images: &by_name,
        layouts: &layouts,
        ahead: None,
        reuse: reuse.as_ref(),
    };

    let bootloader = match &boot_image {
        Some((written, _)) => Some(Bootloader::from_image(
            written.clone(),
            images
                .filesystem(written, request.source_date_epoch)
                .map_err(|source| BuildError::BootImageContents {
                    reference: written.clone(),
                    source,
                })?,
        )),
        None if request.formats.iter().any(|f| f.needs_bootloader()) => {
            request.progress.warning(
                "no boot image named (--boot-image or `boot: image:`): using this host's \
                 bootloader files; their digests go into the manifest",
            );
            Some(Bootloader::host())
        }
        None => None,
    };
    if let Some(bootloader) = &bootloader {
        output::check_bootloader(
            request.formats,
            bootloader,
            &resolver.platform().architecture,
        )?;
    }
    (request.stage)("assembling the root filesystem");
    let working_dir = std::env::current_dir().map_err(BuildError::Environment)?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let metadata_json = go_json::to_vec_indent(config);
    let metadata_yaml = serde_saphyr::to_string(config)
        .expect("a configuration always serialises")
        .into_bytes();
    let sources_read = std::cell::RefCell::default();
    let host = Host {
        working_dir: &working_dir,
        home: home.as_deref(),
        metadata_yaml: &metadata_yaml,
        metadata_json: &metadata_json,
        sources_read: &sources_read,
    };
    let options = assemble::Options {
        mtime: request.source_date_epoch,
        host,
        decompress_kernel: request.decompress_kernel,
        sbom: request.sbom.clone(),
    };
    let gzip_initrd = request.initrd_compression == InitrdCompression::Gzip
        && request.formats.iter().any(|f| f.needs_initrd());
    // Deflating ahead is only a head start: without it the initrd is the same.
    let ahead = gzip_initrd
        .then(|| DeflateAhead::start(reuse.clone()).ok())
        .flatten();
    let images = CachedImages {
        ahead: ahead.as_ref(),
        ..images
    };
    let root = assemble::assemble(config, &images, &options)?;
    let deflated_ahead = ahead.map(DeflateAhead::finish);

    let names: Vec<&str> = request.formats.iter().map(|f| f.name()).collect();
    (request.stage)(&format!("writing {}", names.join(", ")));
    let staged = output::write_all(
        root,
        request.formats,
        request.destination,
        request.source_date_epoch,
        &output::BootOptions {
            bootloader: bootloader.as_ref(),
            architecture: &resolver.platform().architecture,
            disk_size: request.disk_size,
            root: request.root,
            initrd_compression: request.initrd_compression,
            deflated_ahead: deflated_ahead.as_ref(),
        },
    )?;
    if let Some(deflated) = deflated_ahead {
        // Compacting kept work only saves later builds time.
        let _ = deflated.compact();
    }
    // The last blob and kept segment have been read: `cache rm` and
    // `clean` may go on.
    drop(cache_lock);

    let manifest = Manifest {
        version: VERSION,
        ossify_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        name: request.destination.name(),
        source_date_epoch: request.source_date_epoch,
        options: Some(BuildOptions {
            formats: request.formats.to_vec(),
            platform: resolver.platform(),
            size: request.disk_size,
            boot_image: request.boot_image.clone(),
            initrd_compression: request.initrd_compression,
            squashfs_compression: request.root.squashfs_compression,
            squashfs_block_size: request.root.squashfs_block_size,
            erofs_compression: request.root.erofs_compression,
            decompress_kernel: request.decompress_kernel,
            sbom: request.sbom.as_ref().map(|sbom| SbomRecord {
                path: sbom.path.clone(),
                created: sbom.created,
            }),
        }),
        configs: request.configs.to_vec(),
        images: image_records(&resolved, &layouts),
        source_files: sources_read
            .into_inner()
            .into_iter()
            .map(|read| HostFileRecord {
                path: read.source,
                sha256: read.sha256,
            })
            .collect(),
        host_files: bootloader
            .map(|b| b.host_files())
            .unwrap_or_default()
            .into_iter()
            .map(|f| HostFileRecord {
                path: f.path,
                sha256: f.sha256,
            })
            .collect(),
        outputs: staged
            .written()
            .into_iter()
            .map(|w| OutputRecord {
                format: w.format.to_string(),
                file: output_file_name(&w.file.path),
                size: w.file.size,
                sha256: w.file.sha256,
            })
            .collect(),
    };
    staged.commit(&manifest.to_json())?;
    Ok(manifest)
}

/// The `oci-layout` file of an OCI image layout.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion": "1.0.0"}"#;

/// The images of a build, resolved.
struct Resolution {
    /// Every reference as written in the config (and the boot image), parsed.
    references: Vec<(String, Reference)>,
    boot_image: Option<(String, Reference)>,
    /// Each distinct image once, in the order first named.
    resolved: Vec<ResolvedImage>,
    /// The indexes copied whole into volumes of `format: oci`, by the
    /// reference as written.
    layouts: Vec<(String, ResolvedLayout)>,
    /// Keeps their blobs in the cache until the build has read them.
    cache_lock: StoreGuard,
    store: Store,
    resolver: Resolver,
}

/// Resolves every image `config` names, and the boot image when
/// `with_boot_image` and one is named, as `request` says.
fn resolve(
    config: &Config,
    request: &Request<'_>,
    with_boot_image: bool,
) -> Result<Resolution, BuildError> {
    let mut named = references(config)?;
    let boot_image = if with_boot_image {
        boot_image(config, request)?
    } else {
        None
    };
    named.extend(boot_image.clone());
    // Each distinct image once, in the order first named, with what is
    // asked for: its pinned form when there are pins.
    let mut unique: Vec<(Reference, Reference)> = Vec::new();
    for named in &named {
        if !unique
            .iter()
            .any(|(reference, _)| *reference == named.reference)
        {
            let asked = pinned(request.pins, &named.reference, named.position.as_ref())?;
            unique.push((named.reference.clone(), asked));
        }
    }
    let references: Vec<(String, Reference)> = named
        .into_iter()
        .map(|n| (n.written, n.reference))
        .collect();
    let boot_image = boot_image.map(|n| (n.written, n.reference));
    let dir = match &request.cache_dir {
        Some(dir) => dir.clone(),
        None => Store::default_dir()?,
    };
    // An offline build only reads: it creates no cache, and works on a
    // read-only one.
    let store = match request.resolve.policy {
        Policy::Offline => Store::at(dir),
        Policy::Cached | Policy::Pull => Store::open(dir)?,
    };
    let progress = Arc::clone(&request.progress);
    let store = store.on_wait(move |message| progress.waiting(message));
    (request.stage)(&format!("resolving {} image(s)", references.len()));
    let resolver = Resolver::new(store.clone(), request.resolve.clone())
        .with_progress(Arc::clone(&request.progress));
    let layout_requests = layout_requests(config)?;
    let asked: Vec<Reference> = unique.iter().map(|(_, asked)| asked.clone()).collect();
    let requests = layout_requests
        .iter()
        .map(|(_, layout, position)| {
            Ok(LayoutRequest {
                reference: pinned(request.pins, &layout.reference, Some(position))?,
                platforms: layout.platforms.clone(),
            })
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    let ResolvedImages {
        images: mut resolved,
        mut layouts,
        lock: cache_lock,
    } = resolver.resolve_with_layouts(&asked, &requests)?;
    // Pinned or not, an image is recorded and found by the reference the
    // config names.
    for (image, (reference, _)) in resolved.iter_mut().zip(&unique) {
        image.reference = reference.clone();
        check_platform(request.pins, image)?;
    }
    for (layout, (_, request, _)) in layouts.iter_mut().zip(&layout_requests) {
        layout.reference = request.reference.clone();
    }
    let layouts = layout_requests
        .into_iter()
        .map(|(written, _, _)| written)
        .zip(layouts)
        .collect();
    Ok(Resolution {
        references,
        boot_image,
        resolved,
        layouts,
        cache_lock,
        store,
        resolver,
    })
}

/// Why an image is missing from the lock, and what to do.
fn unpinned(position: Option<&crate::config::Position>, reference: &str) -> String {
    match position {
        Some(position) => format!(
            "{position}: image {reference} is not pinned by the lock file: the config changed \
             since `ossify lock`, or was locked with other files; run `ossify lock` again"
        ),
        None => format!(
            "--boot-image {reference} is not pinned by the lock file; lock with the same \
             option: `ossify lock --boot-image {reference} CONFIG…`"
        ),
    }
}

/// `reference` as the build asks for it: pinned when `pins` are given,
/// and then an error when they do not pin it.
fn pinned(
    pins: Option<&Pins>,
    reference: &Reference,
    position: Option<&crate::config::Position>,
) -> Result<Reference, BuildError> {
    let Some(pins) = pins else {
        return Ok(reference.clone());
    };
    match pins.get(reference) {
        Some(pin) => Ok(pin.pinned.clone()),
        None => Err(BuildError::Unpinned {
            position: position.cloned(),
            reference: reference.to_string(),
        }),
    }
}

/// A pinned image must be for the platform it was pinned for: the same
/// index gives another platform other bytes.
fn check_platform(pins: Option<&Pins>, image: &ResolvedImage) -> Result<(), BuildError> {
    let Some(pin) = pins.and_then(|pins| pins.get(&image.reference)) else {
        return Ok(());
    };
    let platform = image.platform.to_string();
    if pin.platform == platform {
        Ok(())
    } else {
        Err(BuildError::PlatformMismatch {
            reference: image.reference.to_string(),
            locked: pin.platform.clone(),
            platform,
        })
    }
}

/// Resolves, without building, every image `config` names and the boot
/// image if one is named: what a build with `request` would use now.
pub fn lock(config: &Config, request: &Request<'_>) -> Result<Vec<ImageRecord>, BuildError> {
    let resolution = resolve(config, request, true)?;
    let layouts: HashMap<String, ResolvedLayout> = resolution.layouts.into_iter().collect();
    Ok(image_records(&resolution.resolved, &layouts))
}

/// The manifest's records of the images and of the indexes copied whole,
/// whose platform is the ones kept (`all` when not filtered).
fn image_records(
    resolved: &[ResolvedImage],
    layouts: &HashMap<String, ResolvedLayout>,
) -> Vec<ImageRecord> {
    let mut layouts: Vec<&ResolvedLayout> = layouts.values().collect();
    layouts.sort_by_key(|layout| layout.pinned());
    let images = resolved.iter().map(|image| ImageRecord {
        reference: image.reference.to_string(),
        resolved: image.pinned(),
        platform: image.platform.to_string(),
    });
    let indexes = layouts.into_iter().map(|layout| ImageRecord {
        reference: layout.reference.to_string(),
        resolved: layout.pinned(),
        platform: match &layout.platforms[..] {
            [] => "all".to_owned(),
            platforms => platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        },
    });
    images.chain(indexes).collect()
}

/// The manifest's name for the output at `path`, whose last component a
/// [`Destination`] always makes a plain file name.
fn output_file_name(path: &Path) -> FileName {
    path.file_name()
        .and_then(|name| FileName::try_from(name.to_string_lossy().into_owned()).ok())
        .expect("every output path ends in a plain file name")
}

/// An image reference as written, parsed, and where it was written
/// (`None` for the command line's).
#[derive(Clone)]
struct Named {
    written: String,
    reference: Reference,
    position: Option<crate::config::Position>,
}

/// The boot image to take bootloader files from, as written and parsed:
/// the command line's, else the config's `boot: image:`.
fn boot_image(config: &Config, request: &Request<'_>) -> Result<Option<Named>, BuildError> {
    if let Some(written) = &request.boot_image {
        let reference = Reference::from_str(written).map_err(BuildError::BootImage)?;
        return Ok(Some(Named {
            written: written.clone(),
            reference,
            position: None,
        }));
    }
    match &config.boot {
        Some(boot) => match Reference::from_str(&boot.value.image) {
            Ok(reference) => Ok(Some(Named {
                written: boot.value.image.clone(),
                reference,
                position: Some(boot.position.clone()),
            })),
            Err(source) => Err(BuildError::Reference {
                position: boot.position.clone(),
                source,
            }),
        },
        None => Ok(None),
    }
}

/// Every image reference of `config`, as written and parsed, in build order.
fn references(config: &Config) -> Result<Vec<Named>, BuildError> {
    let mut written: Vec<Located<String>> = Vec::new();
    if let Some(kernel) = &config.kernel
        && let Some(image) = kernel.image.as_ref().filter(|i| !i.is_empty())
    {
        written.push(Located {
            value: image.clone(),
            position: kernel.position.clone(),
        });
    }
    written.extend(config.init.iter().cloned());
    for volume in config.volumes.iter().filter(|v| !is_oci_volume(v)) {
        if let Some(image) = volume.image.as_ref().filter(|i| !i.is_empty()) {
            written.push(Located {
                value: image.clone(),
                position: volume.position.clone(),
            });
        }
    }
    for container in config
        .onboot
        .iter()
        .chain(&config.onshutdown)
        .chain(&config.services)
    {
        written.push(Located {
            value: container.image.clone(),
            position: container.position.clone(),
        });
    }
    written
        .into_iter()
        .map(|w| match Reference::from_str(&w.value) {
            Ok(reference) => Ok(Named {
                written: w.value,
                reference,
                position: Some(w.position),
            }),
            Err(source) => Err(BuildError::Reference {
                position: w.position,
                source,
            }),
        })
        .collect()
}

/// Whether a volume holds its image as an OCI image layout.
fn is_oci_volume(volume: &crate::config::Volume) -> bool {
    volume.format.as_deref() == Some("oci")
}

/// The volumes of `format: oci` that name an image, as layout requests
/// with the reference as written and where.
fn layout_requests(
    config: &Config,
) -> Result<Vec<(String, LayoutRequest, crate::config::Position)>, BuildError> {
    config
        .volumes
        .iter()
        .filter(|volume| is_oci_volume(volume))
        .filter_map(|volume| {
            let image = volume.image.as_ref().filter(|i| !i.is_empty())?;
            let request = (|| {
                Ok(LayoutRequest {
                    reference: Reference::from_str(image)?,
                    platforms: volume
                        .platforms
                        .iter()
                        .flatten()
                        .map(|p| p.parse())
                        .collect::<Result<_, image::Error>>()?,
                })
            })();
            Some(
                request
                    .map(|request| (image.clone(), request, volume.position.clone()))
                    .map_err(|source| BuildError::Reference {
                        position: volume.position.clone(),
                        source,
                    }),
            )
        })
        .collect()
}

/// Resolved images whose blobs are in the cache, read and verified as
/// assembly asks for them.
struct CachedImages<'a> {
    store: &'a Store,
    images: &'a HashMap<String, ResolvedImage>,
    layouts: &'a HashMap<String, ResolvedLayout>,
    /// Where image files are deflated while layers are read, for a gzip
    /// initrd.
    ahead: Option<&'a DeflateAhead>,
    /// Where uncompressed layers are kept for the next build.
    reuse: Option<&'a Reuse>,
}

impl CachedImages<'_> {
    fn get(&self, reference: &str) -> Result<&ResolvedImage, ImageError> {
        self.images
            .get(reference)
            .ok_or_else(|| format!("image {reference} was not resolved").into())
    }

    /// The tree of `image`'s layers. With `reuse`, each layer's tar comes
    /// from there when kept, and is kept there when not.
    fn layers(
        &self,
        image: &ResolvedImage,
        mtime: u64,
        reuse: Option<&Reuse>,
    ) -> Result<Tree, ImageError> {
        let mut tree = Tree::new(mtime);
        if let Some(ahead) = self.ahead {
            tree.watch_spills(ahead.watcher());
        }
        for layer in &image.layers {
            let digest_text = layer.digest.to_string();
            let diff_id = layer.diff_id.to_string();
            let io_failed = |e: std::io::Error| format!("layer {digest_text}: {e}");
            let reading = |compression, diff_id| Layer {
                digest: &digest_text,
                compression,
                diff_id,
            };
            let compression = match layer.compression {
                image::Compression::None => Compression::None,
                image::Compression::Gzip => Compression::Gzip,
                image::Compression::Zstd => Compression::Zstd,
            };
            let Some(reuse) = reuse else {
                let blob = self.store.open_blob(&layer.digest)?;
                reading(compression, Some(&diff_id)).apply(&mut tree, blob)?;
                continue;
            };
            // Contents are referenced in the kept tar (see `apply_backed`),
            // which stays open, and so readable, until the build ends.
            if let Some((kept, digest)) = reuse.layer(&layer.diff_id) {
                let backing = kept.try_clone().map_err(io_failed)?;
                let mut kept = Blake3Reader::new(kept);
                // The kept tar's digest, not the diff_id, is checked.
                let applied = reading(Compression::None, None).apply_backed(
                    &mut tree,
                    &mut kept,
                    Some(backing),
                );
                let damaged = match applied {
                    Ok(()) if kept.digest() == digest => continue,
                    Ok(()) => KeptLayerError::Digest,
                    Err(error) => KeptLayerError::Apply(error),
                };
                if reuse.forget_layer(&layer.diff_id) {
                    return Err(DamagedKeptLayer(damaged).into());
                }
                return Err(damaged.into());
            }
            let blob = self.store.open_blob(&layer.digest)?;
            let decoded = compression.decoder(blob).map_err(io_failed)?;
            let copy = reuse.new_layer().map_err(io_failed)?;
            let backing = copy.as_file().try_clone().map_err(io_failed)?;
            let mut tee = Tee {
                inner: Blake3Reader::new(decoded),
                copy,
            };
            reading(Compression::None, Some(&diff_id)).apply_backed(
                &mut tree,
                &mut tee,
                Some(backing),
            )?;
            // Applying checked the diff_id of exactly the bytes copied.
            reuse
                .keep_layer(tee.copy, &layer.diff_id, &tee.inner.digest())
                .map_err(io_failed)?;
        }
        Ok(tree)
    }
}

/// A layer kept for reuse was found damaged.
#[derive(Debug, Error)]
enum KeptLayerError {
    #[error("its contents differ from the digest taken when it was kept")]
    Digest,
    #[error(transparent)]
    Apply(LayerError),
}

/// A layer kept for reuse did not apply (it was removed).
#[derive(Debug, Error)]
#[error("a layer kept for reuse is damaged")]
struct DamagedKeptLayer(#[source] KeptLayerError);

/// Passes a stream through while taking its BLAKE3 digest.
struct Blake3Reader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R> Blake3Reader<R> {
    fn new(inner: R) -> Blake3Reader<R> {
        Blake3Reader {
            inner,
            hasher: blake3::Hasher::new(),
        }
    }

    fn digest(&self) -> crate::reuse::Key {
        *self.hasher.finalize().as_bytes()
    }
}

impl<R: std::io::Read> std::io::Read for Blake3Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

/// Passes a stream through while copying it to a file. A failed copy
/// fails the read: the file backs the tree's contents (see
/// `Layer::apply_backed`), so it must hold every byte.
struct Tee<R> {
    inner: R,
    copy: tempfile::NamedTempFile,
}

impl<R: std::io::Read> std::io::Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        std::io::Write::write_all(&mut self.copy, &buf[..read])?;
        Ok(read)
    }
}

impl Images for CachedImages<'_> {
    fn config(&self, reference: &str) -> Result<ImageConfig, ImageError> {
        let image = self.get(reference)?;
        let config = serde_json::to_value(image.config.config())?;
        Ok(serde_json::from_value(config)?)
    }

    fn filesystem(&self, reference: &str, mtime: u64) -> Result<Tree, ImageError> {
        let image = self.get(reference)?;
        let mut reuse = self.reuse;
        loop {
            match self.layers(image, mtime, reuse) {
                // It was removed, so this time it is made again from its
                // blob; each damaged layer is met once.
                Err(error) if error.is::<DamagedKeptLayer>() => {}
                // Reuse only saves time: when keeping fails (a full disk),
                // the image is read from its blobs alone.
                Err(_) if reuse.is_some() => reuse = None,
                result => return result,
            }
        }
    }

    fn oci_layout(&self, reference: &str, mtime: u64) -> Result<Tree, ImageError> {
        let layout = self
            .layouts
            .get(reference)
            .ok_or_else(|| format!("image index {reference} was not resolved"))?;
        let mut tree = Tree::new(mtime);
        let file = |tree: &mut Tree, path: &str, contents: &[u8]| -> Result<(), ImageError> {
            let blob = tree.store_bytes(contents)?;
            tree.insert(path, Kind::File(blob), Metadata::new(0o644, mtime))?;
            Ok(())
        };
        file(&mut tree, "oci-layout", OCI_LAYOUT)?;
        for dir in ["blobs", "blobs/sha256"] {
            tree.insert(dir, Kind::directory(), Metadata::new(0o755, mtime))?;
        }
        for digest in layout.blobs.iter().chain([&layout.digest]) {
            let reader = self.store.open_blob(digest)?;
            let size = reader.size()?;
            let blob = tree.store(reader, size)?;
            tree.insert(
                format!("blobs/sha256/{}", digest.hex()),
                Kind::File(blob),
                Metadata::new(0o644, mtime),
            )?;
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": image::OCI_INDEX,
            "manifests": [{
                "mediaType": layout.media_type,
                "size": self.store.open_blob(&layout.digest)?.size()?,
                "digest": layout.digest.to_string(),
                "annotations": {"org.opencontainers.image.ref.name": layout.reference.to_string()},
            }],
        });
        file(&mut tree, "index.json", &serde_json::to_vec_pretty(&index)?)?;
        Ok(tree)
    }

    fn spdx_documents(&self, reference: &str) -> Result<Vec<Vec<u8>>, ImageError> {
        let image = self.get(reference)?;
        image
            .spdx_attestations
            .iter()
            .map(|digest| {
                let statement: serde_json::Value =
                    serde_json::from_slice(&self.store.read_blob(digest)?)
                        .map_err(|e| format!("the in-toto statement {digest} is not JSON: {e}"))?;
                if statement["predicateType"] != image::SPDX_DOCUMENT {
                    return Err(format!(
                        "the in-toto statement {digest} has predicate type {}, not {}",
                        statement["predicateType"],
                        image::SPDX_DOCUMENT
                    )
                    .into());
                }
                Ok(serde_json::to_vec(&statement["predicate"])?)
            })
            .collect()
    }
}
