#!/usr/bin/env bash
# Benchmark (not a test): an EFI-bootable ISO of examples/hello.yml.
# ossify builds `-f iso-efi` with the boot image from its cache. The shell
# pipeline starts from the kernel, initrd and cmdline that ossify builds for
# the same config (`-f kernel+initrd`, not timed) and the same systemd-boot
# stub the boot image holds, and does by hand what the format does:
#
#   objcopy --add-section …  a UKI, as systemd's documentation shows
#   mkfs.vfat + mmd + mcopy  an ESP image holding it as EFI/BOOT/BOOTX64.EFI
#   xorriso -as mkisofs      an ISO with that image as El Torito's EFI entry
#
# Runs alternate, each into an empty output directory; reports the best
# time and the largest peak RSS of each. Both sides start from the same
# kernel, initrd and stub: the pipeline is handed them, while ossify makes
# its initrd as part of any build. So ossify's `-f kernel+initrd` is timed
# too, and what is compared is ossify's time for the ISO beyond that
# (iso-efi minus kernel+initrd, best of each) against the pipeline's.
# Fails unless that is at most 0.5x the pipeline's time.
#
# Needs: binutils dosfstools mtools xorriso time (Debian packages). Usage:
#   scripts/bench-iso-efi.sh           # RUNS=5
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/oci-layout.sh
. scripts/bench-lib.sh

runs=${RUNS:-5}
debs=target/debian-packages
bench_init

# The example images and the boot image (they download their packages into $debs).
scripts/make-example-images.sh "$work/examples" >/dev/null
scripts/make-boot-image.sh "$work/boot" localhost/ossify/boot:debian12 >/dev/null
"$ossify" cache import --cache-dir "$work/cache" "$work/examples" >/dev/null
"$ossify" cache import --cache-dir "$work/cache" "$work/boot" >/dev/null
build=("$ossify" build --quiet --offline --cache-dir "$work/cache" --boot-image localhost/ossify/boot:debian12)

# The pipeline's inputs: the same kernel, initrd, cmdline and stub.
"${build[@]}" --dir "$work/parts" -f kernel+initrd examples/hello.yml
debian_unpack "$debs" "$work/stub" systemd-boot-efi
printf 'ID=ossify\nNAME="hello"\nPRETTY_NAME="hello (built by ossify)"\n' >"$work/parts/os-release"

cat >"$work/pipeline.sh" <<'SH'
set -euo pipefail
stub=$1 parts=$2 out=$3
mkdir -p "$out/iso/boot"
# The UKI: each section placed after the stub's last one and after each
# other, at the stub's section alignment (VMAs include the image base).
align=$((16#$(objdump -p "$stub" | awk '$1 == "SectionAlignment" {print $2}')))
read -r size vma < <(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/ {last = "0x" $3 " 0x" $4} END {print last}')
next=$((vma + size))
sections=()
for part in osrel:os-release cmdline:hello-cmdline linux:hello-kernel initrd:hello-initrd.img; do
  section=.${part%%:*} file=$parts/${part#*:}
  next=$(((next + align - 1) / align * align))
  sections+=(--add-section "$section=$file" --change-section-vma "$section=$(printf 0x%x "$next")")
  next=$((next + $(stat -c %s "$file")))
done
objcopy "${sections[@]}" "$stub" "$out/uki.efi"
# The ESP image: the UKI plus 2% and 512 KiB for FAT's own structures.
esp=$out/iso/boot/efi.img
uki_kib=$((($(stat -c %s "$out/uki.efi") + 1023) / 1024))
mkfs.vfat -C -n EFI "$esp" $((uki_kib + uki_kib / 50 + 512)) >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT
mcopy -i "$esp" "$out/uki.efi" ::/EFI/BOOT/BOOTX64.EFI
xorriso -as mkisofs -quiet -o "$out/hello-efi.iso" -V hello -c boot/boot.cat \
  -e boot/efi.img -no-emul-boot -isohybrid-gpt-basdat "$out/iso"
SH

stub=$work/stub/usr/lib/systemd/boot/efi/linuxx64.efi.stub
for _ in $(seq "$runs"); do
  rm -rf "$work/ossify-out" "$work/pipeline-out" "$work/initrd-out"
  bench_measure ossify "${build[@]}" --dir "$work/ossify-out" -f iso-efi examples/hello.yml
  bench_measure initrd "${build[@]}" --dir "$work/initrd-out" -f kernel+initrd examples/hello.yml
  bench_measure pipeline bash "$work/pipeline.sh" "$stub" "$work/parts" "$work/pipeline-out"
done

iso_only=$(echo "$(bench_best_time ossify) - $(bench_best_time initrd)" | bc)
ratio=$(bench_ratio "$iso_only" "$(bench_best_time pipeline)")
printf '\nexamples/hello.yml: kernel %s KiB, initrd %s KiB; best of %s runs:\n' \
  "$(($(stat -c %s "$work/parts/hello-kernel") / 1024))" "$(($(stat -c %s "$work/parts/hello-initrd.img") / 1024))" "$runs"
bench_row ossify "ossify -f iso-efi"
bench_row pipeline "objcopy+mkfs.vfat+mcopy+xorriso"
bench_row initrd "ossify -f kernel+initrd"
printf '  %-32s %7.2f s\n' "ossify's ISO beyond its initrd" "$iso_only"
printf '  ISO: ossify %s KiB, pipeline %s KiB\n' \
  "$(($(stat -c %s "$work/ossify-out/hello-efi.iso") / 1024))" "$(($(stat -c %s "$work/pipeline-out/hello-efi.iso") / 1024))"
printf '  time ratio %.2f (limit 0.5); load after: %s\n' "$ratio" "$(bench_load)"
if [ "$(echo "$ratio <= 0.5" | bc)" -eq 1 ]; then
  echo "PASS"
else
  echo "FAIL: ossify's ISO step takes more than 0.5x the pipeline's time" >&2
  exit 1
fi
