# shellcheck shell=bash
# Shell functions of scripts/bench.sh: the prerequisites, the workloads
# (built once from Debian packages, cached under target/bench/workloads/),
# the measured sides of every row, one function that measures a row in
# alternating pairs, and the report (table, JSON, count of targets met).
# Source it from the repository's top, after scripts/lib/oci-layout.sh.

# Commands the suite runs, each with the Debian package that has it.
declare -A bench_tools=(
  [/usr/bin/time]=time [cpio]=cpio [pigz]=pigz [umoci]=umoci [python3]=python3 [curl]=curl
  [mksquashfs]=squashfs-tools [mkfs.erofs]=erofs-utils [mke2fs]=e2fsprogs [dumpe2fs]=e2fsprogs
  [objcopy]=binutils [objdump]=binutils [mkfs.vfat]=dosfstools [mcopy]=mtools [mmd]=mtools
  [xorriso]=xorriso [skopeo]=skopeo [docker-registry]=docker-registry
)

# Stops with the apt-get line that installs whatever is missing.
bench_prerequisites() {
  local tool missing=()
  for tool in "${!bench_tools[@]}"; do
    command -v "$tool" >/dev/null || missing+=("${bench_tools[$tool]}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "bench: missing tools; install them with:" >&2
  echo "  apt-get install $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')" >&2
  exit 1
}

# A release build of ossify (or OSSIFY_BIN=PATH, for a before-and-after
# comparison), a scratch directory removed on exit, and an image cache in
# it. Sets and exports `ossify`, `work` and `cache`.
bench_init() {
  if [ -n "${OSSIFY_BIN:-}" ]; then
    ossify=$(realpath "$OSSIFY_BIN")
  else
    cargo build --release --quiet
    ossify=$(realpath "${CARGO_TARGET_DIR:-target}/release/ossify")
  fi
  work=$(mktemp -d)
  cache=$work/cache
  export ossify work cache
  bench_cleanups=("rm -rf $work")
  trap bench_cleanup EXIT
  : >"$work/rows.tsv"
  : >"$work/runs.tsv"
  : >"$work/workloads.tsv"
  bench_started=$(date +%s)
}

# Runs the cleanup commands, newest first (a server before its files).
bench_cleanup() {
  local i
  for ((i = ${#bench_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${bench_cleanups[i]}" || true
  done
}

bench_load() {
  cut -d' ' -f1-3 /proc/loadavg
}

# Forgets what earlier builds left for reuse, so the next build is cold:
# `ossify cache clean --reuse` removes only the reuse store and keeps the
# images.
bench_forget_reuse() { # CACHE_DIR
  "$ossify" cache clean --reuse --cache-dir "$1" >/dev/null
}

# --- Workloads ---------------------------------------------------------------

debs=target/debian-packages

# The Debian packages each workload's tree is made of: about 50 MiB of
# userland, the kernel package (vmlinuz and all modules, ~400 MiB), and
# the kernel package with toolchains and libraries (~1 GiB).
bench_workload_packages() { # MIB
  local kernel
  kernel=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$kernel" ] || { echo "bench: no linux-image-amd64 in apt's lists; run apt-get update" >&2; exit 1; }
  case $1 in
    50) echo busybox-static coreutils bash perl-base libc6 libpython3.11-stdlib util-linux ;;
    400) echo "$kernel" ;;
    1024) echo "$kernel" golang-1.19-go golang-1.19-src libllvm15 gcc-12 cpp-12 libclang-cpp15 ;;
    *) echo "bench: no workload of $1 MiB (50, 400 or 1024)" >&2; exit 1 ;;
  esac
}

# The workload of about MIB MiB: the unpacked tree of its Debian packages
# as the one-layer OCI image REF, in a layout cached under
# target/bench/workloads/ and keyed by the package files' names, so a
# rerun (or a rerun with the same packages) skips the making. Imports it
# into $cache; sets `layer` (its gzip'd layer blob), `tree_mib`, `tree_files`.
bench_workload() { # MIB REF
  local mib=$1 ref=$2 packages key dir
  read -ra packages < <(bench_workload_packages "$mib")
  debian_download "$debs" "${packages[@]}"
  key=$(for p in "${packages[@]}"; do basename "$(compgen -G "$debs/${p}_*.deb" | head -n1)"; done \
    | sort | { cat; echo "$ref"; } | sha256sum | cut -c1-12)
  dir=target/bench/workloads/$mib-$key
  if [ ! -e "$dir/info" ]; then
    echo "bench: making the $mib MiB workload from ${packages[*]}" >&2
    rm -rf "$dir" "$work/tree"
    mkdir -p "$dir"
    debian_unpack "$debs" "$work/tree" "${packages[@]}"
    echo "$(du -sm --apparent-size "$work/tree" | cut -f1) $(find "$work/tree" | wc -l)" >"$work/info"
    oci_layout_init "$dir/layout"
    oci_layout_add "$ref" '{}' "$work/tree"
    oci_layout_finish
    rm -rf "$work/tree"
    mv "$work/info" "$dir/info"
  fi
  # shellcheck disable=SC2034 # the caller's: the workload's size and layer
  read -r tree_mib tree_files <"$dir/info"
  # shellcheck disable=SC2034
  layer=$(realpath "$dir/layout/blobs/sha256/$(bench_layer_digest "$dir/layout")")
  "$ossify" cache import --cache-dir "$cache" "$dir/layout" >/dev/null
}

# The digest (hex) of the only layer of the only image in LAYOUT.
bench_layer_digest() { # LAYOUT
  python3 - "$1" <<'PY'
import json, sys
layout = sys.argv[1]
def blob(digest):
    return json.load(open(f"{layout}/blobs/sha256/{digest.split(':')[1]}"))
manifest = blob(json.load(open(f"{layout}/index.json"))["manifests"][0]["digest"])
print(manifest["layers"][0]["digest"].split(":")[1])
PY
}

# A config booting the example kernel with the image REF as its only init,
# and, given STAMP, a `files:` entry etc/bench-stamp holding it.
bench_root_config() { # FILE REF [STAMP]
  cat >"$1" <<YAML
kernel:
  image: localhost/ossify-examples/kernel:debian12
  cmdline: "console=ttyS0"
init:
  - $2
YAML
  [ $# -lt 3 ] || printf 'files:\n  - path: etc/bench-stamp\n    contents: "%s"\n' "$3" >>"$1"
}

# --- The measured sides ------------------------------------------------------
# Each runs in a fresh `bash -c` under GNU time and writes into "$out", an
# empty directory of its own. A side's `<name>_setup` function, when there
# is one, runs just before it, untimed.

# ossify building FORMAT from CONFIG, cold (nothing left to reuse).
side_ossify() { # FORMAT CONFIG [BUILD_OPTION...]
  local format=$1 config=$2
  shift 2
  "$ossify" build --quiet --offline --cache-dir "$cache" --dir "$out" -f "$format" "$@" "$config"
}
side_ossify_setup() { bench_forget_reuse "$cache"; }

# ossify building again, with whatever earlier builds left to reuse: the
# config at $work/rebuild.yml, its stamp set to STAMP.
side_rebuild() { # STAMP FORMAT REF
  bench_root_config "$work/rebuild.yml" "$3" "$1"
  "$ossify" build --quiet --offline --cache-dir "$cache" --dir "$out" -f "$2" "$work/rebuild.yml"
}
# The same build, cold: the reference of the rebuild rows.
side_cold() { side_rebuild "$@"; }
side_cold_setup() { bench_forget_reuse "$cache"; }

# What people script for an initrd: unpack the layer, then newc cpio
# compressed at level 6 by COMPRESSOR (gzip or pigz).
side_cpio() { # COMPRESSOR LAYER
  mkdir "$out/root"
  cd "$out/root" || return
  tar -xzf "$2"
  find . | cpio -o -H newc --quiet | "$1" -6 >"$out/initrd.img"
}

# The example's initrd by hand: `umoci unpack` of each image (the layout
# $work/umoci names them kernel, init, hello), the kernel's kernel.tar,
# the onboot bundle and the `files:` entry placed as ossify places them,
# then find | cpio | gzip -6.
side_umoci() {
  local name
  for name in kernel init; do
    umoci unpack --rootless --image "$work/umoci:$name" "$out/$name" >/dev/null
  done
  local root=$out/init/rootfs
  tar -xf "$out/kernel/rootfs/kernel.tar" -C "$root"
  mkdir -p "$root/containers/onboot"
  umoci unpack --rootless --image "$work/umoci:hello" "$root/containers/onboot/000-hello" >/dev/null
  mkdir -p "$root/etc"
  printf 'Built by ossify from examples/hello.yml.\n' >"$root/etc/issue"
  cd "$root" || return
  find . | cpio -o -H newc --quiet | gzip -6 >"$out/initrd.img"
}

# A root tar by hand: unpack the layer, tar it again.
side_tar() { # LAYER
  mkdir "$out/root"
  tar -xzf "$1" -C "$out/root"
  tar -cf "$out/root.tar" -C "$out/root" .
}

# A root filesystem image by hand, from the same layer, with ossify's
# settings (ossify leaves boot/ out of root images). ext4 gets the size
# and inode count of ossify's image of the same root, in $work/ext4-size.
side_mkfs() { # FILESYSTEM LAYER
  mkdir "$out/root"
  tar -xzf "$2" -C "$out/root" --exclude=./boot
  case $1 in
    squashfs) mksquashfs "$out/root" "$out/root.squashfs" -comp gzip -Xcompression-level 9 -b 128K \
      -processors "$(nproc)" -noappend -all-root -quiet -no-progress ;;
    erofs) mkfs.erofs --quiet --all-root "$out/root.erofs" "$out/root" ;;
    ext4)
      local image inodes
      image=$(compgen -G "$work/ext4-size/*.ext4")
      inodes=$(dumpe2fs -h "$image" 2>/dev/null | awk -F: '/^Inode count/ {print $2 + 0}')
      mke2fs -q -F -t ext4 -O ^has_journal,^resize_inode -E root_owner=0:0 -N "$inodes" \
        -d "$out/root" "$out/root.ext4" "$(($(stat -c %s "$image") / 1024))k" ;;
  esac
}

# An EFI-bootable ISO by hand from the example's kernel, initrd and cmdline
# (in $work/parts) and the boot image's systemd-boot stub: a UKI as
# systemd documents it, an ESP image holding it, xorriso.
side_iso() {
  local stub=$work/stub/usr/lib/systemd/boot/efi/linuxx64.efi.stub parts=$work/parts
  mkdir -p "$out/iso/boot"
  # Each section after the stub's last one and after each other, at the
  # stub's section alignment (VMAs include the image base).
  local align size vma next part section file sections=()
  align=$((16#$(objdump -p "$stub" | awk '$1 == "SectionAlignment" {print $2}')))
  read -r size vma < <(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/ {last = "0x" $3 " 0x" $4} END {print last}')
  next=$((vma + size))
  for part in osrel:os-release cmdline:hello-cmdline linux:hello-kernel initrd:hello-initrd.img; do
    section=.${part%%:*} file=$parts/${part#*:}
    next=$(((next + align - 1) / align * align))
    sections+=(--add-section "$section=$file" --change-section-vma "$section=$(printf 0x%x "$next")")
    next=$((next + $(stat -c %s "$file")))
  done
  objcopy "${sections[@]}" "$stub" "$out/uki.efi"
  # The ESP image: the UKI plus 2% and 512 KiB for FAT's own structures.
  local esp=$out/iso/boot/efi.img uki_kib
  uki_kib=$((($(stat -c %s "$out/uki.efi") + 1023) / 1024))
  mkfs.vfat -C -n EFI "$esp" $((uki_kib + uki_kib / 50 + 512)) >/dev/null
  mmd -i "$esp" ::/EFI ::/EFI/BOOT
  mcopy -i "$esp" "$out/uki.efi" ::/EFI/BOOT/BOOTX64.EFI
  xorriso -as mkisofs -quiet -o "$out/hello-efi.iso" -V hello -c boot/boot.cat \
    -e boot/efi.img -no-emul-boot -isohybrid-gpt-basdat "$out/iso"
}

# Pulling IMAGE into an empty cache.
side_pull() { # IMAGE
  "$ossify" pull --quiet --cache-dir "$out/cache" "$1" >/dev/null
}
side_skopeo() { # IMAGE
  skopeo copy --quiet --insecure-policy --src-tls-verify=false --preserve-digests "docker://$1" "oci:$out/skopeo:big"
}

export -f bench_forget_reuse bench_root_config side_ossify side_ossify_setup side_rebuild side_cold \
  side_cold_setup side_cpio side_umoci side_tar side_mkfs side_iso side_pull side_skopeo

# --- Measuring ---------------------------------------------------------------

# Runs the side COMMAND (a side function and its arguments, split on
# spaces) once into an empty $work/out-SIDE, under GNU time; appends
# "WORKLOAD ID SIDE PAIR seconds max_rss_kib" to the runs. Fails, with the
# command's messages, if the command does.
bench_run() { # ID SIDE PAIR COMMAND
  local id=$1 side=$2 pair=$3 command
  read -ra command <<<"$4"
  export out=$work/out-$side
  rm -rf "$out"
  mkdir -p "$out"
  ! declare -F "${command[0]}_setup" >/dev/null || "${command[0]}_setup" "${command[@]:1}"
  /usr/bin/time -v -o "$work/time" bash -euo pipefail -c '"$@"' _ "${command[@]}" >/dev/null 2>"$work/stderr" || {
    cat "$work/stderr" >&2
    echo "bench: $id: $side failed: $4" >&2
    return 1
  }
  awk -F': ' -v prefix="${workload:?}	$id	$side	$pair" '
    /Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]}
    /Maximum resident set size/ {rss = $2}
    END {printf "%s\t%.2f\t%d\n", prefix, s, rss}' "$work/time" >>"$work/runs.tsv"
}

# Whether the row ID was asked for: BENCH_ONLY is a substring of its name.
bench_wanted() { # ID
  [[ "$1" == *"${BENCH_ONLY:-}"* ]]
}

# Measures one row: a warm-up pair, then BENCH_PAIRS (default 5) pairs,
# each the REFERENCE side then the OSSIFY side. With a BASELINE, ossify's
# time in each pair is OSSIFY's less BASELINE's (what ossify spends beyond
# what the reference is handed). With no reference ("-"), OSSIFY runs once
# and only its peak RSS has a target. TARGET is the largest ratio of
# times, RSS the largest peak RSS in MiB ("-": none). CHECK, when given,
# runs after the pairs; the row fails if it does, and if a side's command
# fails (the suite goes on with the next row). Needs `workload` set.
bench_row() { # ID TARGET RSS OSSIFY REFERENCE [BASELINE [CHECK]]
  local id=$1 target=$2 rss=$3 ossify_side=$4 reference_side=$5 baseline=${6:--} check=${7:--}
  bench_wanted "$id" || return 0
  echo "bench: ${workload:?} $id (load $(bench_load))" >&2
  local pair pairs=${BENCH_PAIRS:-5} checked=-
  if [ "$reference_side" = - ]; then
    bench_run "$id" ossify 1 "$ossify_side" || checked=failed
  else
    for ((pair = 0; pair <= pairs; pair++)); do
      bench_pair "$id" "$pair" "$reference_side" "$baseline" "$ossify_side" || { checked=failed && break; }
    done
  fi
  if [ "$check" != - ] && [ "$checked" != failed ]; then
    if "$check"; then checked=same; else checked=differ; fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$workload" "$ossify_side" "$reference_side" "$baseline" \
    "$target" "$rss" "$checked" >>"$work/rows.tsv"
}

# One pair of a row: the reference, the baseline if there is one, ossify.
bench_pair() { # ID PAIR REFERENCE BASELINE OSSIFY
  bench_run "$1" reference "$2" "$3" || return 1
  if [ "$4" != - ]; then bench_run "$1" baseline "$2" "$4" || return 1; fi
  bench_run "$1" ossify "$2" "$5"
}

# The sha256 of every file in DIR, by name.
bench_sums() { # DIR
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# The table on stdout (Markdown), the JSON in target/bench/results.json,
# and last the line `bench: N of M targets met`. Fails unless all are.
bench_report() {
  mkdir -p target/bench
  BENCH_SECONDS=$(($(date +%s) - bench_started)) python3 - "$work/rows.tsv" "$work/runs.tsv" "$work/workloads.tsv" target/bench/results.json <<'PY'
import json, os, platform, statistics, sys, time

rows_file, runs_file, workloads_file, json_file = sys.argv[1:]
workloads = []
for line in open(workloads_file):
    name, mib, entries, packages = line.rstrip("\n").split("\t")
    workloads.append({"workload": name, "tree_mib": int(mib), "entries": int(entries), "debian_packages": packages.split()})
runs = {}
for line in open(runs_file):
    workload, row, side, pair, seconds, rss = line.rstrip("\n").split("\t")
    runs.setdefault((workload, row), []).append({"side": side, "pair": int(pair), "seconds": float(seconds), "rss_kib": int(rss)})

def model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()

met = total = 0
rows = []
for line in open(rows_file):
    row, workload, ossify, reference, baseline, target, rss_limit, check = line.rstrip("\n").split("\t")
    row_runs = runs.get((workload, row), [])
    measured = [r for r in row_runs if r["pair"] > 0 or reference == "-"]
    def times(side):
        return {r["pair"]: r["seconds"] for r in measured if r["side"] == side}
    ossify_times = times("ossify")
    if baseline != "-":
        base = times("baseline")
        ossify_times = {p: t - base[p] for p, t in ossify_times.items()}
    reference_times = times("reference")
    ratios = [ossify_times[p] / reference_times[p] for p in ossify_times if reference_times.get(p)]
    def peak(side):
        values = [r["rss_kib"] for r in row_runs if r["side"] == side]
        return round(max(values) / 1024, 1) if values else None
    if check == "failed":
        rows.append({"workload": workload, "row": row, "ossify": ossify, "failed": True, "runs": row_runs,
                     "targets": [{"what": "every run succeeded", "met": False}]})
        total += 1
        continue
    entry = {
        "workload": workload, "row": row, "ossify": ossify,
        "reference": None if reference == "-" else reference,
        "baseline": None if baseline == "-" else baseline,
        "ossify_median_s": round(statistics.median(ossify_times.values()), 2),
        "reference_median_s": round(statistics.median(reference_times.values()), 2) if reference_times else None,
        "ratio_median": round(statistics.median(ratios), 3) if ratios else None,
        "ossify_peak_rss_mib": peak("ossify"),
        "reference_peak_rss_mib": peak("reference"),
        "targets": [], "runs": row_runs,
        "same_bytes_as_cold": None if check == "-" else check == "same", "failed": False,
    }
    if target != "-":
        entry["targets"].append({"what": f"ratio <= {target}", "met": entry["ratio_median"] <= float(target)})
    if rss_limit != "-":
        entry["targets"].append({"what": f"rss <= {rss_limit} MiB", "met": entry["ossify_peak_rss_mib"] <= float(rss_limit)})
    if check in ("same", "differ"):
        entry["targets"].append({"what": "same bytes as a cold build", "met": check == "same"})
    for t in entry["targets"]:
        total += 1
        met += t["met"]
    rows.append(entry)

def fmt(value, unit=""):
    return "–" if value is None else f"{value}{unit}"

print("| workload | row | ossify median | reference median | ratio (median of pairs) | ossify peak RSS | reference peak RSS | target | met |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if r["failed"]:
        print(f"| {r['workload']} | {r['row']} | **failed** | | | | | | **no** |")
        continue
    print(f"| {r['workload']} | {r['row']} | {r['ossify_median_s']:.2f} s | {fmt(r['reference_median_s'], ' s')} "
          f"| {fmt(r['ratio_median'])} | {fmt(r['ossify_peak_rss_mib'], ' MiB')} | {fmt(r['reference_peak_rss_mib'], ' MiB')} "
          f"| {', '.join(t['what'] for t in r['targets']) or '–'} "
          f"| {' '.join('yes' if t['met'] else '**no**' for t in r['targets']) or '–'} |")

uname = os.uname()
result = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"nproc": os.cpu_count(), "model_name": model(), "kernel": f"{uname.sysname} {uname.release}"},
    "load_average": list(os.getloadavg()),
    "pairs": int(os.environ.get("BENCH_PAIRS", "5")),
    "seconds": int(os.environ["BENCH_SECONDS"]),
    "workloads": workloads, "rows": rows, "targets_met": met, "targets": total,
}
with open(json_file, "w") as f:
    json.dump(result, f, indent=1)
for w in workloads:
    print(f"\n{w['workload']}: {w['tree_mib']} MiB in {w['entries']} entries from {' '.join(w['debian_packages'])}", end="")
print(f"\n\nsuite took {result['seconds']} s; load {' '.join(f'{l:.2f}' for l in result['load_average'])}; JSON in {json_file}")
print(f"bench: {met} of {total} targets met")
sys.exit(0 if met == total else 1)
PY
}
