//! The command line: what a user can type, and how LinuxKit's spellings of it
//! are understood.
//!
//! Lives in the library so tests can check that a `linuxkit build …` line
//! parses to the same options when only the program name changes.

mod linuxkit;
mod plan;
pub mod progress;
pub mod remote_config;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::image;
use crate::output::Name;

pub use linuxkit::translate_linuxkit_spellings;
pub use plan::{BuildPlan, UsageError};

/// LinuxKit's fixed build time, 2017-04-18T16:30:00Z, used when neither the
/// flag nor `SOURCE_DATE_EPOCH` gives one.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 1_492_533_000;

/// Build bootable, immutable OS images from OCI images and LinuxKit YAML,
/// without Docker or root.
#[derive(Debug, Parser)]
#[command(name = "ossify", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build images from one or more LinuxKit YAML files.
    ///
    /// Several files merge in order, as `linuxkit build` merges them: later
    /// kernel settings override, lists append. A file named `-` is read
    /// from standard input.
    Build(BuildArgs),
    /// Check LinuxKit YAML files without building: parse, merge and report
    /// every problem as file:line:column.
    Validate(ValidateArgs),
    /// Fetch images into the cache and print each one pinned by digest.
    ///
    /// Every blob is verified against its digest as it arrives.
    Pull(PullArgs),
    /// Look after the image cache.
    ///
    /// The cache is an OCI image layout directory that skopeo, umoci and
    /// crane can read too.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Pin every image the configs name to its digest, in a lock file.
    ///
    /// Resolves every image the configs name, the boot image and volumes'
    /// images included, without building, and writes them with the config
    /// files' sha256 to `<last config's stem>.lock.json` beside the last
    /// config (or --lockfile). `build --locked` then uses exactly those
    /// digests, wherever the tags have moved.
    Lock(LockArgs),
    /// Check built files against their manifest, or rebuild them.
    ///
    /// Every output beside MANIFEST must have the size and sha256 it
    /// records; each difference is printed, and the exit status is 1.
    /// With --rebuild, the build is made again from the manifest's pinned
    /// inputs and compared byte by byte with the files beside it.
    Verify(VerifyArgs),
    /// Say why two builds differ: their inputs, options and outputs.
    ///
    /// Compares two manifests written by `ossify build`; exit status 0
    /// when they record the same build, 1 when they differ.
    Diff(DiffArgs),
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct LockArgs {
    #[command(flatten)]
    pub images: ImageArgs,

    /// Where to write the lock. Default: `<stem>.lock.json` beside the
    /// last config file; `-` prints it on stdout.
    #[arg(long, value_name = "PATH")]
    pub lockfile: Option<PathBuf>,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// The boot image, overriding the config's `boot: image:`.
    #[arg(long, value_name = "REF")]
    pub boot_image: Option<String>,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// LinuxKit YAML files, merged in order; `-` reads standard input.
    #[arg(value_name = "CONFIG", required = true)]
    pub configs: Vec<PathBuf>,
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct VerifyArgs {
    /// Build again from each manifest's configs, options and pinned
    /// images (fetched by digest when not cached) into a temporary
    /// directory, and report for every output whether it is identical,
    /// or the first differing byte and the structure it falls in. The
    /// rebuild does all its work afresh, without the work earlier builds
    /// kept in the cache.
    #[arg(long)]
    pub rebuild: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Print one JSON result object per manifest on stdout: whether its
    /// outputs are identical, and each difference.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// `<name>.manifest.json` files written by `ossify build`.
    #[arg(value_name = "MANIFEST", required = true)]
    pub manifests: Vec<PathBuf>,
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct DiffArgs {
    /// Print the differences as a JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// The manifest of the first build.
    #[arg(value_name = "A")]
    pub a: PathBuf,

    /// The manifest of the second build.
    #[arg(value_name = "B")]
    pub b: PathBuf,
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct BuildArgs {
    /// Output format; repeat or comma-separate for several. Default:
    /// kernel+initrd, or tar when -o is given. Written: kernel+initrd, tar,
    /// docker, tar-kernel-initrd, kernel+squashfs, kernel+erofs, kernel+iso,
    /// uki, iso-bios, iso-efi, iso-efi-initrd, iso, raw-bios, raw-efi,
    /// qcow2-bios, qcow2-efi, vhd, dynamic-vhd, vmdk, aws, gcp, squashfs,
    /// erofs, ext4.
    #[arg(short = 'f', long = "format", value_name = "FORMAT")]
    pub formats: Vec<String>,

    /// Directory to write outputs to. Default: the current directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Write a single-format build to FILE; `-` streams a tar to stdout,
    /// and so does a FIFO or character device.
    #[arg(short = 'o', long = "output", visible_alias = "o", value_name = "FILE", conflicts_with_all = ["dir", "name"])]
    pub output: Option<PathBuf>,

    /// Base name of the outputs, a plain file name. Default: the last
    /// config file's stem (`moby` when the config comes from stdin).
    #[arg(long, value_name = "NAME")]
    pub name: Option<Name>,

    #[command(flatten)]
    pub images: ImageArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// Build from the digests the lock file pins (see `ossify lock`), not
    /// where tags point now; fails when the config names an image the lock
    /// does not pin, or a config file changed since it was locked.
    #[arg(long)]
    pub locked: bool,

    /// --locked and --offline: the cache must hold every pinned image.
    #[arg(long, conflicts_with = "pull")]
    pub frozen: bool,

    /// The lock file --locked reads. Default: `<stem>.lock.json` beside
    /// the last config file.
    #[arg(long, value_name = "PATH")]
    pub lockfile: Option<PathBuf>,

    /// Timestamp for every file and generated entry, in seconds since 1970.
    /// Default: $SOURCE_DATE_EPOCH, else LinuxKit's fixed 1492533000.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "SOURCE_DATE_EPOCH",
        default_value_t = DEFAULT_SOURCE_DATE_EPOCH
    )]
    pub source_date_epoch: u64,

    /// OCI image holding bootloader files (isolinux, systemd-boot stub, GRUB),
    /// overriding the config's `boot: image:`.
    #[arg(long, value_name = "REF")]
    pub boot_image: Option<String>,

    /// Size of disk images and of the ext4 image, e.g. 512M or 1G.
    /// Default: content plus headroom.
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,

    /// Compressor of the initrd: gzip (LinuxKit's), zstd (several times
    /// faster and smaller), xz, lz4 or none; Linux unpacks each.
    #[arg(long, value_name = "NAME", default_value = "gzip")]
    pub initrd_compression: crate::write::initrd_compression::InitrdCompression,

    /// Compressor of squashfs images (kernel+squashfs, squashfs): gzip
    /// (LinuxKit's), xz, zstd or lz4.
    #[arg(long, value_name = "NAME", default_value = "gzip")]
    pub squashfs_compression: crate::write::squashfs::Compression,

    /// Data block size of squashfs images: a power of two from 4K to 1M.
    #[arg(long, value_name = "SIZE", default_value = "128K")]
    pub squashfs_block_size: crate::write::squashfs::BlockSize,

    /// Compression of EROFS images (kernel+erofs, erofs): none (LinuxKit's)
    /// or lz4, which Linux 5.3 and later read.
    #[arg(long, value_name = "NAME", default_value = "none")]
    pub erofs_compression: crate::write::erofs::Compression,

    /// Leave out the SBOM: by default the root holds an SPDX 2.3 document
    /// merged from the images' SBOM attestations and package databases.
    #[arg(long)]
    pub no_sbom: bool,

    /// The SBOM's path in the root.
    #[arg(long, value_name = "NAME", default_value = crate::assemble::sbom::DEFAULT_FILE_NAME)]
    pub sbom_output: String,

    /// Date the SBOM now instead of SOURCE_DATE_EPOCH, as LinuxKit's flag
    /// does; every build then differs.
    #[arg(long)]
    pub sbom_current_time: bool,

    /// Store the kernel uncompressed: a gzip kernel, or an x86 bzImage
    /// whose payload is gzip, as LinuxKit's --decompress-kernel.
    #[arg(long)]
    pub decompress_kernel: bool,

    /// Neither use nor keep the work earlier builds kept in the cache
    /// (uncompressed layers, deflated files; see `cache clean --reuse`):
    /// every layer is inflated and every file compressed afresh.
    #[arg(long)]
    pub no_reuse: bool,

    /// Print the merged configuration as YAML on stdout and stop, as
    /// LinuxKit's --dry-run; reads no image and needs no cache.
    #[arg(long)]
    pub dry_run: bool,

    /// LinuxKit's reuse of a previous build's tar. Refused: ossify reads
    /// unchanged images from its cache, so a rebuild needs no input tar.
    #[arg(long, value_name = "TAR")]
    pub input_tar: Option<PathBuf>,

    /// LinuxKit's image lookup in a Docker daemon. Refused: ossify uses no
    /// Docker daemon; `ossify cache import` takes a `docker save` tar.
    #[arg(long)]
    pub docker: bool,

    /// Print one JSON result object (the build manifest) on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// LinuxKit YAML files, merged in order; `-` reads standard input.
    #[arg(value_name = "CONFIG", required = true)]
    pub configs: Vec<PathBuf>,
}

/// Where images come from, which platform to pick, and how long to wait
/// for a download: shared by `build`, `pull` and `lock`.
#[derive(Debug, Args, PartialEq, Eq, Clone)]
pub struct ImageArgs {
    /// Architecture to pick from multi-arch images (amd64, arm64, riscv64, …).
    /// Default: the host's.
    #[arg(long, value_name = "ARCH", conflicts_with = "platform")]
    pub arch: Option<String>,

    /// Platform to pick from multi-arch images, with a variant when it
    /// matters, e.g. linux/arm64/v8.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Where images are cached and how registries are reached: shared by
/// every command that resolves images.
#[derive(Debug, Args, PartialEq, Eq, Clone)]
pub struct RegistryArgs {
    #[command(flatten)]
    pub cache: CacheArgs,

    /// Fetch REGISTRY's images from URL instead (REGISTRY defaults to
    /// docker.io); repeatable. $LINUXKIT_MIRROR adds more, as in LinuxKit.
    #[arg(long = "mirror", value_name = "[REGISTRY=]URL")]
    pub mirrors: Vec<String>,

    /// Reach HOST[:PORT] over plain HTTP (loopback registries always are);
    /// repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// Also trust the CA certificates in FILE (PEM); repeatable.
    /// $SSL_CERT_FILE is honoured too.
    #[arg(long = "ca-cert", visible_alias = "cert-file", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,

    /// A download that receives less than 1 KiB in SECONDS has stalled:
    /// it is tried again, at most 4 times in all, then the command fails.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub stall_timeout: u64,
}

/// When the network may be used: shared by `build` and `lock`.
#[derive(Debug, Args, PartialEq, Eq, Clone, Copy, Default)]
pub struct NetworkArgs {
    /// Ask registries for the current digest of every tag, even when cached.
    #[arg(long)]
    pub pull: bool,

    /// Never touch the network; fail if an image is not in the cache.
    #[arg(long, conflicts_with = "pull")]
    pub offline: bool,
}

impl NetworkArgs {
    pub fn policy(self) -> image::Policy {
        if self.offline {
            image::Policy::Offline
        } else if self.pull {
            image::Policy::Pull
        } else {
            image::Policy::Cached
        }
    }
}

/// The image cache to use.
#[derive(Debug, Args, PartialEq, Eq, Clone, Default)]
pub struct CacheArgs {
    /// Image cache, an OCI image layout directory. Default:
    /// $LINUXKIT_CACHE, else $XDG_CACHE_HOME/ossify, else ~/.cache/ossify.
    #[arg(
        long = "cache-dir",
        visible_alias = "cache",
        value_name = "DIR",
        env = "LINUXKIT_CACHE"
    )]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct PullArgs {
    #[command(flatten)]
    pub images: ImageArgs,

    /// Fetch even when the cache holds the tag already, to learn where
    /// it points now.
    #[arg(long)]
    pub pull: bool,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// Image references, e.g. alpine:3.20 or localhost:5000/app@sha256:….
    #[arg(value_name = "REF", required = true)]
    pub references: Vec<String>,
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum CacheCommand {
    /// List the cached images: name, digest, platforms and size.
    Ls {
        #[command(flatten)]
        cache: CacheArgs,
        /// Print a JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Forget images and delete the blobs nothing else uses.
    Rm {
        #[command(flatten)]
        cache: CacheArgs,
        #[arg(value_name = "REF", required = true)]
        references: Vec<String>,
    },
    /// Empty the cache: images, blobs and the work kept for faster
    /// rebuilds.
    Clean {
        #[command(flatten)]
        cache: CacheArgs,
        /// Remove only the work kept for faster rebuilds (unpacked layers,
        /// deflated files), keeping the images: the next build is cold.
        #[arg(long)]
        reuse: bool,
    },
    /// Add the images of an OCI layout directory, an OCI archive tar or a
    /// `docker save` tar, verifying every blob.
    Import {
        #[command(flatten)]
        cache: CacheArgs,
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
    /// Write a cached image as an OCI archive tar.
    Export {
        #[command(flatten)]
        cache: CacheArgs,
        #[arg(value_name = "REF")]
        reference: String,
        /// The archive to write; `-`, a FIFO or a character device is
        /// streamed into.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct ValidateArgs {
    /// Print one JSON result object on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// LinuxKit YAML files, merged in order; `-` reads standard input.
    #[arg(value_name = "CONFIG", required = true)]
    pub configs: Vec<PathBuf>,
}

#[derive(Debug, Args, PartialEq, Eq, Clone, Copy)]
pub struct Verbosity {
    /// Print only errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail about each step.
    #[arg(short, long)]
    pub verbose: bool,
}

impl CacheArgs {
    /// The cache directory chosen.
    pub fn dir(&self) -> Result<PathBuf, image::Error> {
        match &self.cache_dir {
            Some(dir) => Ok(dir.clone()),
            None => image::Store::default_dir(),
        }
    }

    /// Opens the cache, creating it when missing: for commands that add
    /// images. Waiting for another process's lock is said on stderr.
    pub fn open(&self) -> Result<image::Store, image::Error> {
        Ok(image::Store::open(self.dir()?)?.on_wait(say_waiting))
    }

    /// The cache as it is, creating nothing: for commands that only read
    /// or remove, which see a missing cache as an empty one.
    pub fn existing(&self) -> Result<image::Store, image::Error> {
        Ok(image::Store::at(self.dir()?).on_wait(say_waiting))
    }
}

/// Tells the user why a command is not moving, even with `-q`.
pub fn say_waiting(message: &str) {
    eprintln!("{message}");
}

impl ImageArgs {
    /// Resolution options for `policy` and the platform asked for.
    pub fn resolve_options(&self, policy: image::Policy) -> Result<image::Options, image::Error> {
        let platform = match (&self.platform, &self.arch) {
            (Some(platform), _) => Some(platform.parse()?),
            (None, Some(arch)) => Some(image::Platform::linux(arch)),
            (None, None) => None,
        };
        self.registry.resolve_options(policy, platform)
    }
}

impl RegistryArgs {
    /// Resolution options for `policy` and `platform` (`None`: the
    /// host's), with mirrors from the flags and from `$LINUXKIT_MIRROR`.
    pub fn resolve_options(
        &self,
        policy: image::Policy,
        platform: Option<image::Platform>,
    ) -> Result<image::Options, image::Error> {
        let mut mirrors = self
            .mirrors
            .iter()
            .map(|m| m.parse())
            .collect::<Result<Vec<image::Mirror>, _>>()?;
        mirrors.extend(image::Mirror::from_env()?);
        Ok(image::Options {
            policy,
            platform,
            mirrors,
            insecure_registries: self.insecure_registries.clone(),
            ca_certs: self.ca_certs.clone(),
            stall_timeout: std::time::Duration::from_secs(self.stall_timeout),
            ..image::Options::default()
        })
    }
}

impl Cli {
    /// Parses a command line written with ossify's or LinuxKit's spellings.
    pub fn parse_from_any<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        Cli::try_parse_from(translate_linuxkit_spellings(args))
    }
}
