//! Assembly: turning a configuration and its images into the root
//! filesystem LinuxKit would build.
//!
//! The order is LinuxKit's: kernel, init images, volumes, onboot,
//! onshutdown and service containers, files; later entries win where paths
//! meet, except apk's database, whose copies in init images are joined
//! ([`apk`]). [`kernel`] places the kernel, [`image_fs`] adjusts each image's
//! filesystem, [`runtime_config`] writes each container's `config.json` and
//! `runtime.json` ([`oci`] is their shape, [`go_json`] their bytes), [`ids`]
//! numbers named users and groups, [`files`] writes the `files:` section.

pub mod apk;
pub mod files;
pub mod go_json;
pub mod ids;
pub mod image_fs;
pub mod kernel;
pub mod oci;
pub mod runtime_config;
pub mod sbom;

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use crate::config::{Config, Image, Located, Position};
use crate::tree::layer::LayerError;
use crate::tree::{Kind, Metadata, Tree, TreeError};
use ids::{IdMap, UnknownId};
use image_fs::Placement;
use runtime_config::BundleLocation;
pub use runtime_config::ImageConfig;

/// Where assembly gets images from: resolved, verified and unpacked by the
/// caller (the registry and cache), or made up by a test.
pub trait Images {
    /// The image config of `reference`.
    fn config(&self, reference: &str) -> Result<ImageConfig, ImageError>;
    /// The filesystem of `reference`, every layer applied, in a new tree
    /// whose generated entries are dated `mtime`.
    fn filesystem(&self, reference: &str, mtime: u64) -> Result<Tree, ImageError>;
    /// The image index `reference` as an OCI image layout (`oci-layout`,
    /// `index.json`, `blobs/`), for a volume of `format: oci`; entries
    /// dated `mtime`.
    fn oci_layout(&self, reference: &str, mtime: u64) -> Result<Tree, ImageError>;
    /// The SPDX documents (JSON) attested for `reference`; none when it
    /// came without.
    fn spdx_documents(&self, reference: &str) -> Result<Vec<Vec<u8>>, ImageError>;
}

/// Why an image could not be had; its message and its causes are shown.
pub type ImageError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, without saying where; [`Error`] adds the place. Each
/// variant's cause is its source, so the whole chain is printed once.
#[derive(Debug, Error)]
pub enum Failure {
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Contents assembly generates or copies could not be stored.
    #[error(
        "cannot write file contents to ossify's temporary file; free space in $TMPDIR or point TMPDIR elsewhere"
    )]
    Storage(#[source] std::io::Error),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Image(ImageError),
    #[error(transparent)]
    RuntimeConfig(#[from] runtime_config::Error),
    #[error(
        "cannot merge the image's SBOM attestation (build with --no-sbom to leave the SBOM out)"
    )]
    Sbom(#[source] sbom::SbomError),
    #[error(transparent)]
    Source(#[from] files::SourceError),
    #[error(transparent)]
    UnknownId(#[from] UnknownId),
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
}

/// An assembly failure and the configuration entry it happened at, such as
/// `onboot[0] (hello) at config.yml:12:5, image busybox:1.36`; the failure
/// is its source.
#[derive(Debug, Error)]
#[error("{place}")]
pub struct Error {
    pub place: Box<Place>,
    #[source]
    pub failure: Box<Failure>,
}

/// A configuration entry, named for error messages.
#[derive(Debug, Clone)]
pub struct Place {
    pub entry: String,
    pub position: Option<Position>,
    pub image: Option<String>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.entry)?;
        if let Some(position) = &self.position {
            write!(f, " at {position}")?;
        }
        if let Some(image) = &self.image {
            write!(f, ", image {image}")?;
        }
        Ok(())
    }
}

/// What assembly needs besides the configuration and the images.
pub struct Options<'a> {
    /// SOURCE_DATE_EPOCH: the date of every generated entry.
    pub mtime: u64,
    pub host: files::Host<'a>,
    /// Store the kernel uncompressed (`--decompress-kernel`).
    pub decompress_kernel: bool,
    /// Where to write the SBOM and what date it bears; `None` for none.
    pub sbom: Option<SbomOptions>,
}

/// The SBOM written into the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomOptions {
    /// Its path in the root, LinuxKit's `sbom.spdx.json` by default.
    pub path: String,
    /// Its creation date, seconds since 1970.
    pub created: u64,
}

/// Builds the root filesystem of `config`, as LinuxKit's build tar holds
/// it: `boot/kernel`, `boot/cmdline` and `boot/ucode.cpio` included.
pub fn assemble(
    config: &Config,
    images: &dyn Images,
    options: &Options<'_>,
) -> Result<Tree, Error> {
    let mtime = options.mtime;
    let mut root = Tree::new(mtime);
    let ids = IdMap::allocate(config);

    if let Some(kernel) = &config.kernel
        && let Some(reference) = kernel.image.as_deref().filter(|i| !i.is_empty())
    {
        let place = place("kernel", Some(&kernel.position), Some(reference));
        let image = images
            .filesystem(reference, mtime)
            .map_err(|e| place.fail(Failure::Image(e)))?;
        kernel::place(&mut root, &image, kernel, mtime, options.decompress_kernel)
            .map_err(|e| place.fail(e))?;
    }

    let mut placed = Placed {
        roots: HashMap::new(),
        sbom: options.sbom.as_ref().map(|_| sbom::Sbom::default()),
    };
    let mut apk_databases = apk::InstalledDatabases::default();
    for (index, reference) in config.init.iter().enumerate() {
        let place = place(
            &format!("init[{index}]"),
            Some(&reference.position),
            Some(reference),
        );
        let mut image = images
            .filesystem(reference, mtime)
            .map_err(|e| place.fail(Failure::Image(e)))?;
        image_fs::adjust(&mut image, Placement::Root, mtime).map_err(|e| place.fail(e))?;
        apk_databases.collect(&image).map_err(|e| place.fail(e))?;
        record_sbom(placed.sbom.as_mut(), images, reference, "", &image)
            .map_err(|e| place.fail(e))?;
        root.merge("", image).map_err(|e| place.fail(e.into()))?;
    }
    apk_databases
        .write_union(&mut root, mtime)
        .map_err(|e| place("init", None, None).fail(e))?;

    for (index, volume) in config.volumes.iter().enumerate() {
        let place = place(
            &format!("volumes[{index}] ({})", volume.name),
            Some(&volume.position),
            volume.image.as_deref(),
        );
        place_volume(&mut root, volume, images, placed.sbom.as_mut(), mtime)
            .map_err(|e| place.fail(e))?;
    }

    for (section, containers) in [
        ("onboot", &config.onboot),
        ("onshutdown", &config.onshutdown),
        ("services", &config.services),
    ] {
        for (index, container) in containers.iter().enumerate() {
            let path = match section {
                "services" => format!("containers/services/{}", container.name),
                _ => format!("containers/{section}/{index:03}-{}", container.name),
            };
            let place = place(
                &format!("{section}[{index}] ({})", container.name),
                Some(&container.position),
                Some(&container.image),
            );
            place_container(
                &mut root,
                container,
                &path,
                &ids,
                images,
                &mut placed,
                mtime,
            )
            .map_err(|e| place.fail(e))?;
        }
    }

    files::place(&mut root, &config.files, &ids, &options.host, mtime).map_err(
        |(index, failure)| {
            let file = &config.files[index];
            place(
                &format!("files[{index}] ({})", file.path),
                Some(&file.position),
                None,
            )
            .fail(failure)
        },
    )?;
    if let (Some(sbom), Some(sbom_options)) = (placed.sbom, &options.sbom) {
        let path = sbom_options.path.trim_start_matches('/');
        insert_file(&mut root, path, &sbom.to_json(sbom_options.created), mtime)
            .map_err(|e| place("the SBOM", None, None).fail(e))?;
    }
    Ok(root)
}

/// Adds the image `reference`, placed at `prefix` as `image`, to the SBOM:
/// its attested SPDX documents, else what its package databases list.
fn record_sbom(
    sbom: Option<&mut sbom::Sbom>,
    images: &dyn Images,
    reference: &str,
    prefix: &str,
    image: &Tree,
) -> Result<(), Failure> {
    let Some(sbom) = sbom else {
        return Ok(());
    };
    let documents = images.spdx_documents(reference).map_err(Failure::Image)?;
    if documents.is_empty() {
        sbom.add_package_databases(prefix, image);
    }
    for document in documents {
        sbom.add_document(prefix, &document)
            .map_err(Failure::Sbom)?;
    }
    Ok(())
}

fn place(entry: &str, position: Option<&Position>, image: Option<&str>) -> Place {
    Place {
        entry: entry.to_owned(),
        position: position.cloned(),
        image: image.map(str::to_owned),
    }
}

impl Place {
    fn fail(&self, failure: Failure) -> Error {
        Error {
            place: Box::new(self.clone()),
            failure: Box::new(failure),
        }
    }
}

/// The images placed so far: where each image's root went, for later
/// containers of the same image to share, and the SBOM listing them when
/// one is written.
struct Placed {
    roots: HashMap<String, String>,
    sbom: Option<sbom::Sbom>,
}

/// A container's bundle: `config.json`, `runtime.json`, and its image in
/// `rootfs/` (readonly) or in `lower/` under an overlay with `tmp/` and an
/// empty `rootfs/`. An image already placed for an earlier container is
/// not placed again; the bundle points at the earlier copy.
fn place_container(
    root: &mut Tree,
    container: &Located<Image>,
    path: &str,
    ids: &IdMap,
    images: &dyn Images,
    placed: &mut Placed,
    mtime: u64,
) -> Result<(), Failure> {
    let image_config = images.config(&container.image).map_err(Failure::Image)?;
    let shared_root = placed.roots.get(&container.image).cloned();
    let location = BundleLocation {
        path,
        shared_root: shared_root.as_deref(),
    };
    let container = Image {
        settings: container.settings.with_volume_paths(),
        ..container.value.clone()
    };
    let bundle = runtime_config::runtime_config(&container, &image_config, ids, location)?;
    if shared_root.is_none() {
        let mut image = images
            .filesystem(&container.image, mtime)
            .map_err(Failure::Image)?;
        image_fs::adjust(&mut image, Placement::Container, mtime)?;
        record_sbom(
            placed.sbom.as_mut(),
            images,
            &container.image,
            &bundle.image_root,
            &image,
        )?;
        root.merge(&bundle.image_root, image)?;
        placed
            .roots
            .insert(container.image.clone(), bundle.image_root.clone());
    }
    insert_file(
        root,
        &format!("{path}/config.json"),
        &bundle.config_json(),
        mtime,
    )?;
    let readonly = container.settings.readonly == Some(true);
    let dirs: &[&str] = if readonly {
        &["rootfs"]
    } else {
        &["tmp", "rootfs"]
    };
    for dir in dirs {
        root.insert(
            format!("{path}/{dir}"),
            Kind::directory(),
            Metadata::new(0o755, mtime),
        )?;
    }
    insert_file(
        root,
        &format!("{path}/runtime.json"),
        &bundle.runtime_json(),
        mtime,
    )?;
    Ok(())
}

/// A volume: its image (or nothing) in `lower/`, with empty `tmp/` and
/// `merged/` for the overlay LinuxKit's init mounts there.
fn place_volume(
    root: &mut Tree,
    volume: &Located<crate::config::Volume>,
    images: &dyn Images,
    sbom: Option<&mut sbom::Sbom>,
    mtime: u64,
) -> Result<(), Failure> {
    let base = format!("containers/volumes/{}", volume.name);
    let lower = format!("{base}/lower");
    let oci = volume.format.as_deref() == Some("oci");
    match volume.image.as_deref().filter(|i| !i.is_empty()) {
        Some(reference) if oci => {
            let layout = images
                .oci_layout(reference, mtime)
                .map_err(Failure::Image)?;
            root.merge(&lower, layout)?;
        }
        None if oci => {
            return Err(Failure::Invalid(
                "a volume of `format: oci` needs an `image:` to copy".into(),
            ));
        }
        Some(reference) => {
            let mut image = images
                .filesystem(reference, mtime)
                .map_err(Failure::Image)?;
            image_fs::adjust(&mut image, Placement::Root, mtime)?;
            record_sbom(sbom, images, reference, &lower, &image)?;
            root.merge(&lower, image)?;
        }
        None => {
            root.insert(&lower, Kind::directory(), Metadata::new(0o755, mtime))?;
        }
    }
    for dir in ["tmp", "merged"] {
        root.insert(
            format!("{base}/{dir}"),
            Kind::directory(),
            Metadata::new(0o755, mtime),
        )?;
    }
    Ok(())
}

fn insert_file(root: &mut Tree, path: &str, contents: &[u8], mtime: u64) -> Result<(), Failure> {
    let blob = root.store_bytes(contents).map_err(Failure::Storage)?;
    root.insert(path, Kind::File(blob), Metadata::new(0o644, mtime))?;
    Ok(())
}
