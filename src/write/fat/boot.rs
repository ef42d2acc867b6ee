//! The reserved area: the boot sector with its BIOS parameter block, and on
//! FAT32 the FSInfo sector and the backups of both.

use super::geometry::{FatType, Geometry, SECTOR};
use super::names::{SHORT_NAME_LEN, ShortName};

const SECTOR_LEN: usize = SECTOR as usize;
/// FAT32's FSInfo sector and the backup boot sector, by sector number.
pub(super) const FSINFO_SECTOR: u64 = 1;
pub(super) const BACKUP_BOOT_SECTOR: u64 = 6;

// BIOS parameter block, common to all types.
const JUMP: usize = 0;
const OEM_NAME: usize = 3;
const BYTES_PER_SECTOR: usize = 11;
const SECTORS_PER_CLUSTER: usize = 13;
const RESERVED_SECTORS: usize = 14;
const NUM_FATS: usize = 16;
const ROOT_ENTRIES: usize = 17;
const TOTAL_SECTORS_16: usize = 19;
const MEDIA: usize = 21;
const FAT_SECTORS_16: usize = 22;
const SECTORS_PER_TRACK: usize = 24;
const HEADS: usize = 26;
const HIDDEN_SECTORS: usize = 28;
const TOTAL_SECTORS_32: usize = 32;
// FAT32 extension.
const FAT_SECTORS_32: usize = 36;
const ROOT_CLUSTER: usize = 44;
const FSINFO: usize = 48;
const BACKUP_BOOT: usize = 50;
/// The extended boot record starts here on FAT12/16 and this much later on FAT32.
const EXTENDED_FAT1X: usize = 36;
const EXTENDED_FAT32: usize = 64;
// Extended boot record fields, relative to its start.
const DRIVE_NUMBER: usize = 0;
const BOOT_SIGNATURE: usize = 2;
const VOLUME_ID: usize = 3;
const VOLUME_LABEL: usize = 7;
const FS_TYPE: usize = 18;
const EXTENDED_LEN: usize = 26;
const SIGNATURE: usize = 510;

const OEM: &[u8; 8] = b"MSWIN4.1";
/// Fixed disk.
pub(super) const MEDIA_FIXED: u8 = 0xF8;
/// First hard disk, as BIOS numbers drives.
const FIRST_HARD_DISK: u8 = 0x80;
/// Says the volume id, label and type fields follow.
const EXTENDED_BOOT_SIGNATURE: u8 = 0x29;
/// A nominal CHS geometry; LBA-addressed partitions ignore it.
const NOMINAL_SECTORS_PER_TRACK: u16 = 63;
const NOMINAL_HEADS: u16 = 255;
/// Real-mode address where the BIOS loads a boot sector.
const LOAD_ADDRESS: u16 = 0x7C00;

/// Boot code for when a BIOS boots the volume by mistake: print
/// [`NOT_BOOTABLE`] with INT 10h teletype output, then halt. The two bytes
/// after `mov si` take the message's address.
const BOOT_CODE: [u8; 24] = [
    0x31, 0xC0, // xor ax, ax
    0x8E, 0xD8, // mov ds, ax
    0xBE, 0x00, 0x00, // mov si, message
    0x31, 0xDB, // xor bx, bx
    0xFC, // cld
    0xAC, // next: lodsb
    0x84, 0xC0, // test al, al
    0x74, 0x06, // jz halt
    0xB4, 0x0E, // mov ah, 0x0E
    0xCD, 0x10, // int 0x10
    0xEB, 0xF5, // jmp next
    0xF4, // halt: hlt
    0xEB, 0xFD, // jmp halt
];
const BOOT_CODE_MESSAGE_ADDRESS: usize = 5;
const NOT_BOOTABLE: &[u8] = b"This is not a bootable disk.\r\n\0";

// FSInfo fields.
const FSINFO_LEAD: usize = 0;
const FSINFO_STRUCT: usize = 484;
const FSINFO_FREE: usize = 488;
const FSINFO_NEXT_FREE: usize = 492;
const FSINFO_TRAIL: usize = 508;
const FSINFO_LEAD_SIGNATURE: u32 = 0x4161_5252;
const FSINFO_STRUCT_SIGNATURE: u32 = 0x6141_7272;
const FSINFO_TRAIL_SIGNATURE: u32 = 0xAA55_0000;

/// The boot sector of a volume laid out as `geometry`.
pub(super) fn boot_sector(
    geometry: &Geometry,
    volume_id: u32,
    hidden_sectors: u32,
    label: &ShortName,
) -> [u8; SECTOR_LEN] {
    let mut sector = [0u8; SECTOR_LEN];
    let fat32 = geometry.fat_type == FatType::Fat32;
    let extended = if fat32 {
        EXTENDED_FAT32
    } else {
        EXTENDED_FAT1X
    };
    let code = extended + EXTENDED_LEN;
    sector[JUMP..JUMP + 3].copy_from_slice(&[0xEB, (code - 2) as u8, 0x90]);
    sector[OEM_NAME..OEM_NAME + 8].copy_from_slice(OEM);
    put_u16(&mut sector, BYTES_PER_SECTOR, SECTOR as u16);
    // Cluster sizes are powers of two up to 64 sectors.
    sector[SECTORS_PER_CLUSTER] = geometry.sectors_per_cluster as u8;
    put_u16(
        &mut sector,
        RESERVED_SECTORS,
        geometry.reserved_sectors as u16,
    );
    sector[NUM_FATS] = geometry.num_fats() as u8;
    put_u16(&mut sector, ROOT_ENTRIES, geometry.root_entries as u16);
    // Geometry::choose keeps the total within u32.
    let total = geometry.total_sectors as u32;
    match u16::try_from(total) {
        Ok(small) if !fat32 => put_u16(&mut sector, TOTAL_SECTORS_16, small),
        _ => put_u32(&mut sector, TOTAL_SECTORS_32, total),
    }
    sector[MEDIA] = MEDIA_FIXED;
    put_u16(&mut sector, SECTORS_PER_TRACK, NOMINAL_SECTORS_PER_TRACK);
    put_u16(&mut sector, HEADS, NOMINAL_HEADS);
    put_u32(&mut sector, HIDDEN_SECTORS, hidden_sectors);
    if fat32 {
        put_u32(&mut sector, FAT_SECTORS_32, geometry.fat_sectors as u32);
        put_u32(&mut sector, ROOT_CLUSTER, super::FIRST_CLUSTER);
        put_u16(&mut sector, FSINFO, FSINFO_SECTOR as u16);
        put_u16(&mut sector, BACKUP_BOOT, BACKUP_BOOT_SECTOR as u16);
    } else {
        // FAT12/16 FATs are at most 256 sectors.
        put_u16(&mut sector, FAT_SECTORS_16, geometry.fat_sectors as u16);
    }
    sector[extended + DRIVE_NUMBER] = FIRST_HARD_DISK;
    sector[extended + BOOT_SIGNATURE] = EXTENDED_BOOT_SIGNATURE;
    put_u32(&mut sector, extended + VOLUME_ID, volume_id);
    sector[extended + VOLUME_LABEL..extended + VOLUME_LABEL + SHORT_NAME_LEN]
        .copy_from_slice(label);
    sector[extended + FS_TYPE..extended + FS_TYPE + 8].copy_from_slice(geometry.fat_type.label());
    sector[code..code + BOOT_CODE.len()].copy_from_slice(&BOOT_CODE);
    let message = code + BOOT_CODE.len();
    put_u16(
        &mut sector,
        code + BOOT_CODE_MESSAGE_ADDRESS,
        LOAD_ADDRESS + message as u16,
    );
    sector[message..message + NOT_BOOTABLE.len()].copy_from_slice(NOT_BOOTABLE);
    sector[SIGNATURE..].copy_from_slice(&[0x55, 0xAA]);
    sector
}

/// The FAT32 FSInfo sector: a hint of the free cluster count and where to
/// look for the next free cluster.
pub(super) fn fs_info(free_clusters: u32, next_free: u32) -> [u8; SECTOR_LEN] {
    let mut sector = [0u8; SECTOR_LEN];
    put_u32(&mut sector, FSINFO_LEAD, FSINFO_LEAD_SIGNATURE);
    put_u32(&mut sector, FSINFO_STRUCT, FSINFO_STRUCT_SIGNATURE);
    put_u32(&mut sector, FSINFO_FREE, free_clusters);
    put_u32(&mut sector, FSINFO_NEXT_FREE, next_free);
    put_u32(&mut sector, FSINFO_TRAIL, FSINFO_TRAIL_SIGNATURE);
    sector
}

fn put_u16(sector: &mut [u8], offset: usize, value: u16) {
    sector[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

fn put_u32(sector: &mut [u8], offset: usize, value: u32) {
    sector[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}
