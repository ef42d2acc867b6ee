//! Output formats by their LinuxKit names, and the files each one writes.

use std::fmt;
use std::str::FromStr;

/// An output format, named as `linuxkit build --format` names it.
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
}

/// Every format with its name and the file names it writes for `<name>`.
const FORMATS: &[(Format, &str, &[&str])] = &[
    (
        Format::KernelInitrd,
        "kernel+initrd",
        &["-kernel", "-initrd.img", "-cmdline"],
    ),
    (
        Format::TarKernelInitrd,
        "tar-kernel-initrd",
        &["-initrd.tar"],
    ),
    (Format::Tar, "tar", &[".tar"]),
    (Format::Docker, "docker", &[".docker"]),
    (
        Format::KernelSquashfs,
        "kernel+squashfs",
        &["-kernel", "-squashfs.img", "-cmdline"],
    ),
    (
        Format::KernelErofs,
        "kernel+erofs",
        &["-kernel", "-erofs.img", "-cmdline"],
    ),
    (
        Format::KernelIso,
        "kernel+iso",
        &["-kernel", ".iso", "-cmdline"],
    ),
    (Format::IsoBios, "iso-bios", &[".iso"]),
    (Format::IsoEfi, "iso-efi", &["-efi.iso"]),
    (Format::IsoEfiInitrd, "iso-efi-initrd", &["-efi-initrd.iso"]),
    (Format::Iso, "iso", &["-hybrid.iso"]),
    (Format::RawBios, "raw-bios", &["-bios.img"]),
    (Format::RawEfi, "raw-efi", &["-efi.img"]),
    (Format::Qcow2Bios, "qcow2-bios", &[".qcow2"]),
    (Format::Qcow2Efi, "qcow2-efi", &["-efi.qcow2"]),
    (Format::Vhd, "vhd", &[".vhd"]),
    (Format::DynamicVhd, "dynamic-vhd", &[".vhd"]),
    (Format::Vmdk, "vmdk", &[".vmdk"]),
    (Format::Aws, "aws", &[".raw"]),
    (Format::Gcp, "gcp", &[".img.tar.gz"]),
    (Format::Rpi3, "rpi3", &[".tar"]),
    (Format::Uki, "uki", &[".efi"]),
];

impl Format {
    fn entry(self) -> &'static (Format, &'static str, &'static [&'static str]) {
        FORMATS
            .iter()
            .find(|(format, _, _)| *format == self)
            .expect("every format is listed in FORMATS")
    }

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The files this format writes for a build named `name`.
    pub fn file_names(self, name: &str) -> Vec<String> {
        self.entry()
            .2
            .iter()
            .map(|suffix| format!("{name}{suffix}"))
            .collect()
    }

    /// Formats that are a single stream and so can go to stdout with `-o -`.
    pub fn is_streamable(self) -> bool {
        matches!(self, Format::Tar | Format::Docker)
    }

    /// Every format name, for help and error messages.
    pub fn all_names() -> Vec<&'static str> {
        FORMATS.iter().map(|(_, name, _)| *name).collect()
    }

    /// The formats this version of ossify can write.
    pub fn supported() -> &'static [Format] {
        &[]
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of LinuxKit's (or ossify's `uki`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}`; known formats: {list}", list = Format::all_names().join(", "))]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        FORMATS
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|(format, _, _)| *format)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
