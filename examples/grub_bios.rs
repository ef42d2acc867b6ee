//! Writes the GRUB BIOS boot pieces to files, for assembling a test disk by
//! hand: `grub_bios <i386-pc dir> <out dir> <kernel command line>` writes
//! `boot-code.bin` (440 bytes for the MBR), `core.img` (for LBA 1) and
//! `grub.cfg`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ossify::write::grub;

/// Sectors between the MBR and a first partition at LBA 2048.
const GAP_SECTORS: u64 = 2047;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(grub_dir), Some(out), Some(cmdline)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: grub_bios <i386-pc dir> <out dir> <kernel command line>");
    };
    let files = grub::GrubPcFiles::from_dir(&PathBuf::from(grub_dir))?;
    let out = PathBuf::from(out);
    let core = grub::core_image(&files, grub::MODULES, grub::PREFIX, None, GAP_SECTORS)?;
    let written = [
        ("boot-code.bin", grub::boot_code(&files)?.to_vec()),
        ("core.img", core),
        ("grub.cfg", grub::config(&cmdline).into_bytes()),
    ];
    for (name, bytes) in written {
        std::fs::write(out.join(name), bytes).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}
