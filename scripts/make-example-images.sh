#!/usr/bin/env bash
# Builds the images examples/hello.yml names, from Debian packages, as an OCI
# image layout for `ossify cache import`. No container tool, no root needed
# (apt-get download works as any user once apt's package lists exist).
#
#   scripts/make-example-images.sh [LAYOUT]     default: target/example-images
#
#   localhost/ossify-examples/kernel:debian12  /kernel (Debian's vmlinuz), /kernel.tar
#   localhost/ossify-examples/init:busybox     busybox-static, runc and its libraries, /init
#   localhost/ossify-examples/hello:busybox    busybox-static, for a readonly onboot container
#
# The init mounts the usual filesystems, checks what the build put in the
# root (the onboot bundle and a `files:` entry), runs the onboot container
# with runc and prints OSSIFY-BOOT-OK on the console only if all of that
# worked, then powers off. The tests and the quickstart look for that marker.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/oci-layout.sh

layout=${1:-target/example-images}
debs=target/debian-packages
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kernel_package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kernel_package" ] || { echo "make-example-images: no linux-image-amd64 in apt's lists; run apt-get update" >&2; exit 1; }
debian_download "$debs" "$kernel_package" busybox-static runc libseccomp2 libc6

# The kernel image: LinuxKit's layout, /kernel plus a kernel.tar that the
# build unpacks into the root: the kernel's module lists, and the modules a
# root on a virtio disk needs (the block driver and the squashfs, EROFS and
# ext4 filesystems), with their dependencies and a modules.dep naming them.
debian_unpack "$debs" "$work/linux" "$kernel_package"
mkdir -p "$work/kernel" "$work/kernel-tar"
cp "$work"/linux/boot/vmlinuz-* "$work/kernel/kernel"
modules=$(basename "$work"/linux/lib/modules/*)
mkdir -p "$work/kernel-tar/lib/modules/$modules"
cp "$work/linux/lib/modules/$modules"/modules.{order,builtin} "$work/kernel-tar/lib/modules/$modules/"
# Debian ships no modules.dep (depmod writes it on install): each module's
# dependencies are read from its .modinfo `depends=` field instead.
module_path() { # NAME: the module's path under lib/modules/VERSION
  (cd "$work/linux/lib/modules/$modules" && find kernel -name "$1.ko" -o -name "${1//_/-}.ko" | head -n1)
}
module_depends() { # PATH: the names it depends on
  tr '\0' '\n' <"$work/linux/lib/modules/$modules/$1" | sed -n 's/^depends=//p' | tr ',' ' '
}
declare -A all_deps=()
add_module() { # NAME: adds it and its dependencies, recording all of them as depmod does
  local path name dep
  local -a deps=()
  path=$(module_path "$1")
  [ -n "$path" ] || { echo "make-example-images: module $1 is not in $kernel_package" >&2; exit 1; }
  [ -z "${all_deps[$path]+set}" ] || return 0
  for name in $(module_depends "$path"); do
    add_module "$name"
    for dep in "$(module_path "$name")" ${all_deps[$(module_path "$name")]}; do
      [[ " ${deps[*]} " == *" $dep "* ]] || deps+=("$dep")
    done
  done
  all_deps[$path]="${deps[*]}"
  mkdir -p "$work/kernel-tar/lib/modules/$modules/$(dirname "$path")"
  cp "$work/linux/lib/modules/$modules/$path" "$work/kernel-tar/lib/modules/$modules/$path"
}
# crc32c_generic is the crc32c that libcrc32c (EROFS) and ext4's checksums ask for.
for name in virtio_pci virtio_blk crc32c_generic squashfs erofs ext4; do
  add_module "$name"
done
for path in "${!all_deps[@]}"; do
  echo "$path: ${all_deps[$path]}"
done | sort >"$work/kernel-tar/lib/modules/$modules/modules.dep"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=go-w,a+rX \
  -C "$work/kernel-tar" -cf "$work/kernel/kernel.tar" lib

# The init image: busybox as the shell, runc with exactly the libraries it links.
debian_unpack "$debs" "$work/packages" busybox-static runc libseccomp2 libc6
init=$work/init
mkdir -p "$init/bin" "$init/usr/sbin" "$init/lib/x86_64-linux-gnu" "$init/lib64" "$init/run" "$init/tmp"
cp "$work/packages/bin/busybox" "$init/bin/busybox"
cp "$work/packages/usr/sbin/runc" "$init/usr/sbin/runc"
cp -L "$work"/packages/usr/lib/x86_64-linux-gnu/libseccomp.so.2 "$init/lib/x86_64-linux-gnu/"
cp -L "$work/packages/lib/x86_64-linux-gnu/libc.so.6" "$init/lib/x86_64-linux-gnu/"
cp -L "$work/packages/lib64/ld-linux-x86-64.so.2" "$init/lib64/"
cat >"$init/init" <<'INIT'
#!/bin/busybox sh
# ossify's example init: prove the build, then power off. The root may be
# read-only (squashfs, EROFS), so busybox's applets go on a tmpfs.
/bin/busybox mount -t tmpfs tmpfs /run
/bin/busybox mkdir /run/bin
/bin/busybox --install -s /run/bin
export PATH=/run/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t cgroup2 cgroup2 /sys/fs/cgroup
exec >/dev/console 2>&1
fail() { echo "ossify example init: $*"; poweroff -f; }
# A root mounted read-write (ext4) must keep what is written to it.
if grep -q '^[^ ]* / [^ ]* rw' /proc/mounts; then
  echo written >/root-write-check && [ "$(cat /root-write-check)" = written ] ||
    fail "the read-write root did not keep a file written to it"
  echo "read-write root: wrote and read back /root-write-check"
fi
bundle=/containers/onboot/000-hello
[ -f "$bundle/config.json" ] || fail "missing $bundle/config.json"
[ -f /etc/issue ] || fail "missing /etc/issue (a files: entry)"
said=$(runc --root /run/runc run --no-pivot --bundle "$bundle" hello) || fail "runc run failed: $said"
echo "onboot container said: $said"
[ "$said" = "hello from an ossify image" ] || fail "unexpected output from the onboot container"
echo OSSIFY-BOOT-OK
poweroff -f
INIT
chmod 755 "$init/init"

# The onboot container's image.
mkdir -p "$work/hello/bin"
cp "$work/packages/bin/busybox" "$work/hello/bin/busybox"

oci_layout_init "$layout"
oci_layout_add localhost/ossify-examples/kernel:debian12 '{}' "$work/kernel"
oci_layout_add localhost/ossify-examples/init:busybox '{}' "$init"
oci_layout_add localhost/ossify-examples/hello:busybox '{"Cmd":["/bin/busybox","sh"],"Env":["PATH=/bin"]}' "$work/hello"
oci_layout_finish
echo "make-example-images: wrote $layout (import it: ossify cache import $layout)"
