#!/usr/bin/env bash
# Builds armbox's Linux test initramfs: a gzip'd newc cpio holding Debian's busybox-static,
# the /init and test scripts of tools/linux/initramfs/, and the virtio .ko files with their
# load order, from the cache that tools/linux/fetch-debian.sh fills.
# Usage: bash tools/linux/make-initramfs.sh [--no-modules] OUT.cpio.gz [CACHE_DIR]
# CACHE_DIR defaults to $ARMBOX_CACHE/linux, as for fetch-debian.sh. --no-modules leaves the
# Debian modules out (for a kernel with its drivers built in, as tools/linux/build-kernel.sh
# makes: Debian's .ko files would not load into it). The archive is rebuilt every time (well
# under a second) and is byte-for-byte the same for the same inputs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
modules=1
[ "${1:-}" = --no-modules ] && { modules=0; shift; }
[ $# -ge 1 ] || { echo "usage: $0 [--no-modules] OUT.cpio.gz [CACHE_DIR]" >&2; exit 2; }
out=$1
root=${ARMBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/armbox}
cache=${2:-$root/linux}
need="busybox"
[ $modules = 1 ] && need="busybox release modules.order"
for f in $need; do
  [ -e "$cache/$f" ] || { echo "make-initramfs: $cache/$f missing (run tools/linux/fetch-debian.sh $cache)" >&2; exit 2; }
done
release=none
[ $modules = 1 ] && release=$(cat "$cache/release")

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,armbox}
cp "$cache/busybox" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
cp "$here/initramfs/init" "$stage/init"
cp "$here"/initramfs/armbox/*.sh "$stage/armbox/"
chmod 755 "$stage/init" "$stage/bin/busybox"
echo "root:x:0:0:root:/root:/bin/sh" > "$stage/etc/passwd"
echo "root:x:0:" > "$stage/etc/group"
if [ $modules = 1 ]; then
  mkdir -p "$stage/lib/modules/$release"
  # shellcheck disable=SC2046
  (cd "$cache/modules" && cp --parents $(cat "$cache/modules.order") modules.dep "$stage/lib/modules/$release/")
  cp "$cache/modules.order" "$stage/lib/modules/load-order"
fi
# The kernel opens /dev/console for init before init can mount devtmpfs; only root may make
# the node, and /init copes without it (it reopens the console once devtmpfs is mounted).
[ "$(id -u)" = 0 ] && mknod -m 600 "$stage/dev/console" c 5 1

# Reproducible: fixed times, owner root, sorted names, no gzip timestamp.
find "$stage" -exec touch -h -d @0 {} +
tmp=$out.tmp.$$
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
  cpio --quiet -o -H newc -R 0:0 --reproducible | gzip -9 -n) > "$tmp"
mv "$tmp" "$out"
echo "make-initramfs: $out ($(stat -c %s "$out") bytes, modules for kernel $release)" >&2
