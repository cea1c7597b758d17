#!/usr/bin/env bash
# Fetches Debian 12's arm64 cloud kernel (the newest linux-image-6.1.0-*-cloud-arm64-unsigned
# the archive lists) and busybox-static (arm64) with `apt-get download`, without adding the
# arm64 architecture to the host, and unpacks what a Linux boot test needs:
#   CACHE_DIR/vmlinuz       the kernel: an uncompressed arm64 Image (EFI stub, "ARM\x64" at 0x38)
#   CACHE_DIR/busybox       the static busybox binary
#   CACHE_DIR/modules/      lib/modules/<release>/ trimmed to the .ko files the initramfs
#                           loads (virtio_mmio, virtio_blk, virtio_rng, virtio_console, ext4 and
#                           their dependencies), a modules.dep for just those, modules.builtin
#   CACHE_DIR/modules.order those .ko files, relative to modules/, in load order
#   CACHE_DIR/release       the kernel release (uname -r), the name of lib/modules/<release>
#   CACHE_DIR/version       the kernel and busybox package names and versions
# Idempotent: does nothing when they are all present. Usage: bash tools/linux/fetch-debian.sh
# [CACHE_DIR]; the default is $ARMBOX_CACHE/linux (ARMBOX_CACHE defaults to
# ${XDG_CACHE_HOME:-$HOME/.cache}/armbox, as for tools/busybox-compare.sh).
set -eu
root=${ARMBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/armbox}
cache=${1:-$root/linux}
# The modules the initramfs wants; the cloud kernel builds some in, which modules.builtin says.
WANT="virtio_mmio virtio_blk virtio_rng virtio_console ext4"

if [ -s "$cache/vmlinuz" ] && [ -x "$cache/busybox" ] && [ -s "$cache/modules.order" ] && [ -s "$cache/release" ]; then
  exit 0
fi
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
lists=$cache/arm64lists
mkdir -p "$lists/partial" "$cache/deb"
o="-oAPT::Architecture=arm64 -oAPT::Architectures=arm64 -oDir::State::Lists=$lists -oDebug::NoLocking=1"
# As root, apt's _apt user cannot write into the cache; download as root without the warning.
[ "$(id -u)" = 0 ] && o="$o -oAPT::Sandbox::User=root"
echo "fetch-debian: apt-get update (arm64 lists in $lists)" >&2
# shellcheck disable=SC2086
apt-get $o update >/dev/null || { echo "fetch-debian: apt-get update failed" >&2; exit 2; }

# The newest ABI first: linux-image-6.1.0-<abi>-cloud-arm64-unsigned, sorted on <abi>.
# shellcheck disable=SC2086
candidates=$(apt-cache $o search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-arm64-unsigned$' |
  cut -d' ' -f1 | sort -t- -k4,4nr)
[ -n "$candidates" ] || { echo "fetch-debian: no linux-image-6.1.0-*-cloud-arm64-unsigned listed" >&2; exit 2; }
kpkg=
cd "$cache/deb"
for p in $candidates; do
  # shellcheck disable=SC2086
  if ls "${p}"_*.deb >/dev/null 2>&1 || apt-get $o download "$p" >/dev/null; then kpkg=$p; break; fi
  echo "fetch-debian: $p is listed but could not be downloaded; trying the next" >&2
done
[ -n "$kpkg" ] || { echo "fetch-debian: no kernel package could be downloaded" >&2; exit 2; }
# shellcheck disable=SC2086
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get $o download busybox-static >/dev/null ||
  { echo "fetch-debian: apt-get download busybox-static failed" >&2; exit 2; }

kdeb=$(ls "${kpkg}"_*.deb | head -1)
bdeb=$(ls busybox-static_*.deb | head -1)
x=$cache/x
rm -rf "$x"
mkdir -p "$x/kernel" "$x/busybox"
dpkg -x "$kdeb" "$x/kernel"
dpkg -x "$bdeb" "$x/busybox"

release=$(ls "$x/kernel/lib/modules" | head -1)
mdir=$x/kernel/lib/modules/$release
cp "$x/kernel/boot/vmlinuz-$release" "$cache/vmlinuz.tmp"
cp "$x/busybox/bin/busybox" "$cache/busybox.tmp"
chmod 755 "$cache/busybox.tmp"

# The package carries no modules.dep (depmod runs when it is installed), so the dependencies
# come from each .ko's own .modinfo "depends=" field, which is what depmod reads too. A
# module that modules.builtin names is in the Image already and needs no file.
index=$x/index
find "$mdir/kernel" -name '*.ko' | sed "s|^$mdir/||" | while read -r f; do
  echo "$(basename "$f" .ko | tr - _) $f"
done > "$index"
modfile() { awk -v n="$(echo "$1" | tr - _)" '$1 == n { print $2; exit }' "$index"; }
depends() { tr '\0' '\n' < "$mdir/$1" | grep -a '^depends=' | cut -d= -f2 | tr , ' '; }
order=$cache/modules.order.tmp
dep=$x/modules.dep
: > "$order"
: > "$dep"
visit() { # $1: module name
  local f ds d
  f=$(modfile "$1")
  if [ -z "$f" ]; then
    if grep -qE "/$1\.ko\$" "$mdir/modules.builtin" || grep -qE "/$(echo "$1" | tr _ -)\.ko\$" "$mdir/modules.builtin"; then
      echo "fetch-debian: $1 is built into $release" >&2
      return 0
    fi
    echo "fetch-debian: $1 is neither a module nor built into $release" >&2
    exit 2
  fi
  grep -qxF "$f" "$order" && return 0
  ds=$(depends "$f")
  for d in $ds; do visit "$d"; done
  echo "$f: $(for d in $ds; do modfile "$d"; done | tr '\n' ' ' | sed 's/ $//')" >> "$dep"
  echo "$f" >> "$order"
}
for m in $WANT; do visit "$m"; done
rm -rf "$cache/modules"
mkdir -p "$cache/modules"
while read -r f; do
  mkdir -p "$cache/modules/$(dirname "$f")"
  cp "$mdir/$f" "$cache/modules/$f"
done < "$order"
cp "$dep" "$mdir/modules.builtin" "$cache/modules/"
mv "$order" "$cache/modules.order"
mv "$cache/busybox.tmp" "$cache/busybox"
mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
kver=$(dpkg-deb -f "$kdeb" Version)
bver=$(dpkg-deb -f "$bdeb" Version)
echo "$release" > "$cache/release"
printf 'kernel %s %s (%s)\nbusybox-static %s\n' "$kpkg" "$release" "$kver" "$bver" > "$cache/version"
rm -rf "$x"
for d in "$cache"/deb/*.deb; do [ "$d" = "$cache/deb/$kdeb" ] || [ "$d" = "$cache/deb/$bdeb" ] || rm -f "$d"; done
echo "fetch-debian: $(cat "$cache/version" | tr '\n' ' ')into $cache" >&2
echo "fetch-debian: modules: $(tr '\n' ' ' < "$cache/modules.order")" >&2
