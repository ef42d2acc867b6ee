//! The kernel image: LinuxKit takes three files out of it and ignores the
//! rest.
//!
//! The kernel goes to `boot/kernel` with the command line beside it in
//! `boot/cmdline`, microcode to `boot/ucode.cpio` (outputs move these out
//! of the root filesystem), and the modules tarball is unpacked into the
//! root filesystem.

use std::io::Read;

use super::Failure;
use crate::config::Kernel;
use crate::tree::layer::Layer;
use crate::tree::{Compression, Kind, Metadata, Tree};

/// LinuxKit's default name of the kernel in a kernel image.
const DEFAULT_BINARY: &str = "kernel";
/// LinuxKit's default name of the modules tarball in a kernel image.
const DEFAULT_TAR: &str = "kernel.tar";

/// Places the kernel of `image` into `root` as the `kernel:` section says;
/// `decompress` stores it uncompressed, as LinuxKit's `--decompress-kernel`.
pub fn place(
    root: &mut Tree,
    image: &Tree,
    kernel: &Kernel,
    mtime: u64,
    decompress: bool,
) -> Result<(), Failure> {
    let binary = kernel
        .binary
        .as_deref()
        .filter(|b| !b.is_empty())
        .unwrap_or(DEFAULT_BINARY);
    let Some(blob_meta) = regular_file(image, binary) else {
        return Err(Failure::Missing(format!(
            "no file `{binary}` in the kernel image; set `binary:` to the kernel's path in the image"
        )));
    };
    root.insert("boot", Kind::directory(), Metadata::new(0o755, mtime))?;
    let cmdline = kernel.cmdline.as_deref().unwrap_or_default();
    let cmdline_blob = root
        .store_bytes(cmdline.as_bytes())
        .map_err(Failure::Storage)?;
    root.insert(
        "boot/cmdline",
        Kind::File(cmdline_blob),
        Metadata::new(0o644, mtime),
    )?;
    if decompress {
        let (blob, metadata) = blob_meta;
        let compressed = read_capped(image, &blob, binary)?;
        let bytes = decompressed(&compressed).map_err(|problem| {
            Failure::Unsupported(format!(
                "--decompress-kernel: cannot decompress `{binary}` of the kernel image: {problem}"
            ))
        })?;
        let stored = root.store_bytes(&bytes).map_err(Failure::Storage)?;
        root.insert("boot/kernel", Kind::File(stored), metadata)?;
    } else {
        copy_file(root, image, blob_meta, "boot/kernel")?;
    }

    if let Some(ucode) = kernel.ucode.as_deref().filter(|u| !u.is_empty())
        && let Some(found) = regular_file(image, ucode)
    {
        copy_file(root, image, found, "boot/ucode.cpio")?;
    }

    let tar = match kernel.tar.as_deref() {
        None => Some(DEFAULT_TAR),
        Some("" | "none") => None,
        Some(name) => Some(name),
    };
    if let Some(tar) = tar {
        let Some((blob, _)) = regular_file(image, tar) else {
            return Err(Failure::Missing(format!(
                "no file `{tar}` in the kernel image; set `tar: none` if the image has no modules tarball"
            )));
        };
        let layer = Layer {
            digest: tar,
            compression: Compression::Detect,
            diff_id: None,
        };
        layer.apply(root, image.contents(&blob))?;
    }
    Ok(())
}

/// The largest kernel `--decompress-kernel` reads or writes: a compressed
/// x86 kernel is about 8 MiB and an uncompressed one about 60 MiB.
const MAX_KERNEL_SIZE: u64 = 512 << 20;

/// The bytes of the kernel `blob`, if it is no larger than [`MAX_KERNEL_SIZE`].
fn read_capped(image: &Tree, blob: &crate::tree::Blob, name: &str) -> Result<Vec<u8>, Failure> {
    if blob.len() > MAX_KERNEL_SIZE {
        return Err(Failure::Invalid(format!(
            "the kernel `{name}` is {} bytes, more than the {MAX_KERNEL_SIZE} a kernel may be",
            blob.len()
        )));
    }
    let mut bytes = Vec::new();
    image
        .contents(blob)
        .read_to_end(&mut bytes)
        .map_err(Failure::Storage)?;
    Ok(bytes)
}

/// The kernel inside `kernel`: a gzip stream (arm64's `Image.gz`), or a
/// bzImage whose payload is gzip (x86), as LinuxKit's `decompressKernel`
/// accepts. Other formats are refused rather than passed through, so the
/// flag never silently does nothing.
fn decompressed(kernel: &[u8]) -> Result<Vec<u8>, String> {
    const GZIP_MAGIC: &[u8] = b"\x1f\x8b";
    let payload = if kernel.starts_with(GZIP_MAGIC) {
        kernel
    } else {
        let payload = bzimage_payload(kernel)?;
        if !payload.starts_with(GZIP_MAGIC) {
            return Err("its bzImage payload is not gzip, the only compression supported".into());
        }
        payload
    };
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(payload)
        .take(MAX_KERNEL_SIZE + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("its gzip stream is damaged: {e}"))?;
    if out.len() as u64 > MAX_KERNEL_SIZE {
        return Err(format!(
            "it decompresses to more than {MAX_KERNEL_SIZE} bytes"
        ));
    }
    Ok(out)
}

/// The compressed payload of an x86 bzImage (boot protocol 2.08 or later;
/// Documentation/arch/x86/boot.rst): `payload_offset` counts from the end
/// of the real-mode setup, whose length is `setup_sects` + 1 sectors.
fn bzimage_payload(kernel: &[u8]) -> Result<&[u8], String> {
    let u16_at = |at: usize| u16::from_le_bytes([kernel[at], kernel[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(kernel[at..at + 4].try_into().expect("4 bytes"));
    if kernel.len() <= 0x250 || u16_at(0x1fe) != 0xaa55 || &kernel[0x202..0x206] != b"HdrS" {
        return Err("it is neither gzip nor an x86 bzImage".into());
    }
    if u16_at(0x206) < 0x0208 {
        return Err("its bzImage boot protocol is older than 2.08".into());
    }
    let setup_sects = match kernel[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248) as usize;
    let end = start + u32_at(0x24c) as usize;
    kernel
        .get(start..end)
        .ok_or_else(|| "its bzImage payload runs past the end of the file".into())
}

/// The contents and metadata of the regular file at `path`, if there is one.
fn regular_file(tree: &Tree, path: &str) -> Option<(crate::tree::Blob, Metadata)> {
    let node = tree.node(tree.lookup(path)?);
    match &node.kind {
        Kind::File(blob) => Some((*blob, node.metadata.clone())),
        _ => None,
    }
}

/// Copies a file of `from` into `to` at `path`, keeping its metadata.
fn copy_file(
    to: &mut Tree,
    from: &Tree,
    (blob, metadata): (crate::tree::Blob, Metadata),
    path: &str,
) -> Result<(), Failure> {
    let copied = to
        .store(from.contents(&blob), blob.len())
        .map_err(Failure::Storage)?;
    to.insert(path, Kind::File(copied), metadata)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A bzImage-shaped file: two setup sectors after the boot sector,
    /// then a payload at `payload_offset` from the setup's end.
    fn bzimage(payload: &[u8], version: u16) -> Vec<u8> {
        let mut image = vec![0u8; 3 * 512];
        image[0x1f1] = 2;
        image[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&version.to_le_bytes());
        image[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend_from_slice(&[0xee; 16]);
        image.extend_from_slice(payload);
        image.extend_from_slice(b"trailer");
        image
    }

    #[test]
    fn gzip_kernels_and_gzip_bzimages_decompress() {
        let vmlinux = b"\x7fELF the kernel itself".repeat(100);
        assert_eq!(decompressed(&gzip(&vmlinux)).unwrap(), vmlinux);
        assert_eq!(
            decompressed(&bzimage(&gzip(&vmlinux), 0x020f)).unwrap(),
            vmlinux
        );
    }

    #[test]
    fn other_kernels_are_refused_with_the_reason() {
        let cases = [
            (b"plain".repeat(200), "neither gzip nor an x86 bzImage"),
            (bzimage(b"\xfd7zXZ\0 an xz payload", 0x020f), "not gzip"),
            (bzimage(&gzip(b"k"), 0x0206), "older than 2.08"),
        ];
        for (kernel, reason) in cases {
            let error = decompressed(&kernel).unwrap_err();
            assert!(error.contains(reason), "{error}");
        }
        let mut truncated = bzimage(&gzip(b"kernel"), 0x020f);
        truncated.truncate(3 * 512 + 20);
        assert!(
            decompressed(&truncated)
                .unwrap_err()
                .contains("past the end")
        );
    }
}
