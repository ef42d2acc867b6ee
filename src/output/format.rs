//! Output formats by their LinuxKit names, each described in one place:
//! [`Format::descriptor`] says what files a format writes and how it is
//! made, in one exhaustive `match`, so a new format is one arm the compiler
//! asks for, and every other question (streamable? which bootloaders?
//! supported?) is answered from the descriptor.

use std::fmt;
use std::str::FromStr;

use super::disk::{Container, Firmware, Sizing};
use super::iso;

/// An output format, named as `linuxkit build --format` names it, plus
/// ossify's own (`uki`, `squashfs`, `erofs`, `ext4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    KernelInitrd,
    TarKernelInitrd,
    Tar,
    Docker,
    KernelSquashfs,
    KernelErofs,
    KernelIso,
    IsoBios,
    IsoEfi,
    IsoEfiInitrd,
    Iso,
    RawBios,
    RawEfi,
    Qcow2Bios,
    Qcow2Efi,
    Vhd,
    DynamicVhd,
    Vmdk,
    Aws,
    Gcp,
    Rpi3,
    Uki,
    Squashfs,
    Erofs,
    Ext4,
}

/// What a format is: its name, the suffixes of the files it writes after
/// the build's name, and how it is made.
pub(super) struct Descriptor {
    pub name: &'static str,
    pub suffixes: &'static [&'static str],
    pub recipe: Recipe,
}

/// How a format is made from the built root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recipe {
    /// The whole root as a tar, `boot/` included: the formats that stream.
    /// With `dockerfile`, LinuxKit's Dockerfile follows the root, so the tar
    /// is a context `docker build` takes.
    Tar { dockerfile: bool },
    /// The kernel, the initrd and the command line, as files of their own.
    KernelInitrd,
    /// The kernel, initrd, command line and microcode, in one tar.
    TarKernelInitrd,
    /// The root without `boot/` as one filesystem image; with `kernel`, the
    /// kernel and command line beside it, as files of their own.
    Root {
        filesystem: Filesystem,
        kernel: bool,
    },
    /// A medium that boots the kernel and initrd.
    Bootable(Medium),
    /// A LinuxKit format this version does not write.
    NotYet,
}

/// A filesystem the root is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filesystem {
    Squashfs,
    Erofs,
    Ext4,
    /// ISO 9660 with Rock Ridge and Joliet, as genisoimage writes it.
    Iso9660,
}

/// A bootable medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Medium {
    Uki,
    Iso(iso::Firmware),
    Disk(Firmware, Container, Sizing),
}

/// Which bootloader a medium needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loader {
    Isolinux,
    EfiStub,
    GrubPc,
}

impl Format {
    /// Every format, in the order help and errors list them.
    pub const ALL: [Format; 25] = [
        Format::KernelInitrd,
        Format::TarKernelInitrd,
        Format::Tar,
        Format::Docker,
        Format::KernelSquashfs,
        Format::KernelErofs,
        Format::KernelIso,
        Format::IsoBios,
        Format::IsoEfi,
        Format::IsoEfiInitrd,
        Format::Iso,
        Format::RawBios,
        Format::RawEfi,
        Format::Qcow2Bios,
        Format::Qcow2Efi,
        Format::Vhd,
        Format::DynamicVhd,
        Format::Vmdk,
        Format::Aws,
        Format::Gcp,
        Format::Rpi3,
        Format::Uki,
        Format::Squashfs,
        Format::Erofs,
        Format::Ext4,
    ];

    /// The one place a format is described.
    pub(super) fn descriptor(self) -> Descriptor {
        use Recipe::{Bootable, NotYet, Root};
        let iso = |bios, efi| Bootable(Medium::Iso(iso::Firmware { bios, efi }));
        let disk = |firmware, container| Bootable(Medium::Disk(firmware, container, Sizing::Fit));
        // LinuxKit's cloud images are 1 GiB unless `-size` says otherwise.
        let cloud = |container, multiple| {
            Bootable(Medium::Disk(
                Firmware::Bios,
                container,
                Sizing::Cloud { multiple },
            ))
        };
        let root = |filesystem, kernel| Root { filesystem, kernel };
        let (name, suffixes, recipe): (_, &[&str], _) = match self {
            Format::KernelInitrd => (
                "kernel+initrd",
                &["-kernel", "-initrd.img", "-cmdline"],
                Recipe::KernelInitrd,
            ),
            Format::TarKernelInitrd => (
                "tar-kernel-initrd",
                &["-initrd.tar"],
                Recipe::TarKernelInitrd,
            ),
            Format::Tar => ("tar", &[".tar"], Recipe::Tar { dockerfile: false }),
            Format::Docker => ("docker", &[".docker"], Recipe::Tar { dockerfile: true }),
            Format::KernelSquashfs => (
                "kernel+squashfs",
                &["-kernel", "-squashfs.img", "-cmdline"],
                root(Filesystem::Squashfs, true),
            ),
            Format::KernelErofs => (
                "kernel+erofs",
                &["-kernel", "-erofs.img", "-cmdline"],
                root(Filesystem::Erofs, true),
            ),
            Format::KernelIso => (
                "kernel+iso",
                &["-kernel", ".iso", "-cmdline"],
                root(Filesystem::Iso9660, true),
            ),
            Format::IsoBios => ("iso-bios", &[".iso"], iso(true, false)),
            Format::IsoEfi => ("iso-efi", &["-efi.iso"], iso(false, true)),
            Format::IsoEfiInitrd => ("iso-efi-initrd", &["-efi-initrd.iso"], iso(false, true)),
            Format::Iso => ("iso", &["-hybrid.iso"], iso(true, true)),
            Format::RawBios => (
                "raw-bios",
                &["-bios.img"],
                disk(Firmware::Bios, Container::Raw),
            ),
            Format::RawEfi => (
                "raw-efi",
                &["-efi.img"],
                disk(Firmware::Efi, Container::Raw),
            ),
            Format::Qcow2Bios => (
                "qcow2-bios",
                &[".qcow2"],
                disk(Firmware::Bios, Container::Qcow2),
            ),
            Format::Qcow2Efi => (
                "qcow2-efi",
                &["-efi.qcow2"],
                disk(Firmware::Efi, Container::Qcow2),
            ),
            Format::Vhd => ("vhd", &[".vhd"], disk(Firmware::Bios, Container::FixedVhd)),
            Format::DynamicVhd => (
                "dynamic-vhd",
                &[".vhd"],
                disk(Firmware::Bios, Container::DynamicVhd),
            ),
            Format::Vmdk => ("vmdk", &[".vmdk"], disk(Firmware::Bios, Container::Vmdk)),
            Format::Aws => ("aws", &[".raw"], cloud(Container::Raw, 1)),
            // Compute Engine imports disks of whole GiB only.
            Format::Gcp => (
                "gcp",
                &[".img.tar.gz"],
                cloud(Container::GceTarball, 1 << 30),
            ),
            Format::Rpi3 => ("rpi3", &[".tar"], NotYet),
            Format::Uki => ("uki", &[".efi"], Bootable(Medium::Uki)),
            Format::Squashfs => (
                "squashfs",
                &[".squashfs"],
                root(Filesystem::Squashfs, false),
            ),
            Format::Erofs => ("erofs", &[".erofs"], root(Filesystem::Erofs, false)),
            Format::Ext4 => ("ext4", &[".ext4"], root(Filesystem::Ext4, false)),
        };
        Descriptor {
            name,
            suffixes,
            recipe,
        }
    }

    /// How this format is made.
    pub(super) fn recipe(self) -> Recipe {
        self.descriptor().recipe
    }

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        self.descriptor().name
    }

    /// The files this format writes for a build named `name`.
    pub fn file_names(self, name: &str) -> Vec<String> {
        self.descriptor()
            .suffixes
            .iter()
            .map(|suffix| format!("{name}{suffix}"))
            .collect()
    }

    /// Formats that are a single stream and so can go to stdout with `-o -`.
    pub fn is_streamable(self) -> bool {
        matches!(self.recipe(), Recipe::Tar { .. })
    }

    /// Whether this version of ossify writes the format.
    pub fn is_supported(self) -> bool {
        self.recipe() != Recipe::NotYet
    }

    /// Every format name, for help and error messages.
    pub fn all_names() -> Vec<&'static str> {
        Format::ALL.iter().map(|format| format.name()).collect()
    }

    /// The formats this version of ossify writes.
    pub fn supported() -> Vec<Format> {
        Format::ALL
            .into_iter()
            .filter(|format| format.is_supported())
            .collect()
    }

    /// Whether the format is made from an initrd of the tree.
    pub fn needs_initrd(self) -> bool {
        matches!(
            self.recipe(),
            Recipe::KernelInitrd | Recipe::TarKernelInitrd | Recipe::Bootable(_)
        )
    }

    /// Whether the format needs bootloader files (from a boot image).
    pub fn needs_bootloader(self) -> bool {
        !self.loaders().is_empty()
    }

    /// The bootloaders this format puts on its medium.
    pub(super) fn loaders(self) -> &'static [Loader] {
        match self.recipe() {
            Recipe::Bootable(Medium::Uki | Medium::Disk(Firmware::Efi, ..)) => &[Loader::EfiStub],
            Recipe::Bootable(Medium::Disk(Firmware::Bios, ..)) => &[Loader::GrubPc],
            Recipe::Bootable(Medium::Iso(firmware)) => match (firmware.bios, firmware.efi) {
                (true, true) => &[Loader::Isolinux, Loader::EfiStub],
                (true, false) => &[Loader::Isolinux],
                (false, true) => &[Loader::EfiStub],
                (false, false) => &[],
            },
            Recipe::Tar { .. }
            | Recipe::KernelInitrd
            | Recipe::TarKernelInitrd
            | Recipe::Root { .. }
            | Recipe::NotYet => &[],
        }
    }
}

/// The longest suffix a format or the manifest adds to a build's name.
pub(crate) fn longest_suffix() -> usize {
    Format::ALL
        .iter()
        .flat_map(|format| format.descriptor().suffixes)
        .chain(&[".manifest.json"])
        .map(|suffix| suffix.len())
        .max()
        .unwrap_or_default()
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of LinuxKit's or ossify's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}`; known formats: {list}", list = Format::all_names().join(", "))]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_listed_once_in_declaration_order() {
        for (index, format) in Format::ALL.iter().enumerate() {
            assert_eq!(*format as usize, index, "{format} is out of place in ALL");
        }
    }

    #[test]
    fn names_round_trip_and_files_follow_linuxkit() {
        for name in Format::all_names() {
            assert_eq!(name.parse::<Format>().unwrap().name(), name);
        }
        assert_eq!(
            Format::KernelInitrd.file_names("hello"),
            ["hello-kernel", "hello-initrd.img", "hello-cmdline"]
        );
        assert_eq!(Format::Iso.file_names("x"), ["x-hybrid.iso"]);
        assert!(
            "iso-uefi"
                .parse::<Format>()
                .unwrap_err()
                .to_string()
                .contains("iso-efi")
        );
    }

    #[test]
    fn only_the_tars_stream_and_bootloaders_follow_the_medium() {
        let streamable: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| f.is_streamable())
            .collect();
        assert_eq!(streamable, [Format::Tar, Format::Docker]);
        assert_eq!(Format::Gcp.loaders(), [Loader::GrubPc]);
        assert_eq!(Format::Iso.loaders(), [Loader::Isolinux, Loader::EfiStub]);
        assert_eq!(Format::Vmdk.loaders(), [Loader::GrubPc]);
        assert_eq!(Format::Qcow2Efi.loaders(), [Loader::EfiStub]);
        assert!(!Format::KernelInitrd.needs_bootloader());
    }
}
