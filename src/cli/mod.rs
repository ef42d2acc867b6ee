//! The command line: what a user can type, and how LinuxKit's spellings of it
//! are understood.
//!
//! Lives in the library so tests can check that a `linuxkit build …` line
//! parses to the same options when only the program name changes.

mod linuxkit;
mod plan;
pub mod progress;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
}

#[derive(Debug, Args, PartialEq, Eq)]
pub struct BuildArgs {
    /// Output format; repeat for several. Default: kernel+initrd, or tar
    /// when -o is given. `ossify build --format help` lists them.
    #[arg(short = 'f', long = "format", value_name = "FORMAT")]
    pub formats: Vec<String>,

    /// Directory to write outputs to. Default: the current directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Write a single-format build to FILE; `-` streams a tar to stdout.
    #[arg(short = 'o', long = "output", visible_alias = "o", value_name = "FILE", conflicts_with_all = ["dir", "name"])]
    pub output: Option<PathBuf>,

    /// Base name of the outputs. Default: the last config file's stem
    /// (`moby` when the config comes from stdin).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Architecture to build for (amd64, arm64, riscv64, …). Default: the host's.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,

    /// Image cache, an OCI image layout directory.
    /// Default: $XDG_CACHE_HOME/ossify, else ~/.cache/ossify.
    #[arg(long = "cache-dir", visible_alias = "cache", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Ask registries for the current digest of every tag, even when cached.
    #[arg(long)]
    pub pull: bool,

    /// Never touch the network; fail if an image is not in the cache.
    #[arg(long, conflicts_with = "pull")]
    pub offline: bool,

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

    /// Size of disk images, e.g. 512M or 1G. Default: content plus headroom.
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,

    /// Accepted for LinuxKit compatibility; ossify writes no SBOM yet.
    #[arg(long)]
    pub no_sbom: bool,

    /// Print one JSON result object (the build manifest) on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub verbosity: Verbosity,

    /// LinuxKit YAML files, merged in order; `-` reads standard input.
    #[arg(value_name = "CONFIG", required = true)]
    pub configs: Vec<PathBuf>,
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
