#!/usr/bin/env bash
# Builds a boot image: an OCI image holding the bootloader files ossify's
# ISO and disk formats need, at their usual Debian paths, from Debian's
# packages. Writes an OCI image layout for `ossify cache import`; no
# container tool, no root.
#
#   scripts/make-boot-image.sh [LAYOUT [REF]]
#       default: target/boot-image, localhost/ossify/boot:debian12
#
# Then: ossify build --boot-image REF -f iso …, or `boot: {image: REF}` in
# the config.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/oci-layout.sh

layout=${1:-target/boot-image}
ref=${2:-localhost/ossify/boot:debian12}
debs=target/debian-packages
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# isolinux: isolinux.bin, isohdpfx.bin; syslinux-common: ldlinux.c32;
# systemd-boot-efi: the UKI stub; grub-pc-bin: GRUB's i386-pc modules.
packages=(isolinux syslinux-common systemd-boot-efi grub-pc-bin grub-efi-amd64-bin)
debian_download "$debs" "${packages[@]}"
debian_unpack "$debs" "$work/rootfs" "${packages[@]}"
rm -rf "$work/rootfs/usr/share/doc" "$work/rootfs/usr/share/man" "$work/rootfs/usr/share/lintian"

oci_layout_init "$layout"
oci_layout_add "$ref" '{}' "$work/rootfs"
oci_layout_finish
echo "make-boot-image: wrote $ref to $layout (import it: ossify cache import $layout)"
