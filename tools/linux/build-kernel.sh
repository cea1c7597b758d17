#!/usr/bin/env bash
# Builds armbox's own small arm64 kernel from Debian's linux-source-6.1 (apt-get install
# linux-source-6.1 bc flex bison libssl-dev libelf-dev gcc-aarch64-linux-gnu): `make
# allnoconfig`, then tools/linux/armbox.config merged on top, every option of the fragment
# checked in the result, then `make Image`. Leaves OUT_DIR/Image and OUT_DIR/config.
# Usage: bash tools/linux/build-kernel.sh [OUT_DIR]
#   OUT_DIR       default $ARMBOX_CACHE/linux-armbox (ARMBOX_CACHE as for fetch-debian.sh)
#   LINUX_SOURCE  the source tarball, default /usr/src/linux-source-6.1.tar.xz
#   JOBS          make -j, default the number of processors
# The source is unpacked once into OUT_DIR/src and objects kept in OUT_DIR/build, so a second
# run rebuilds only what changed. Run it with nice: a full build takes a while.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=${ARMBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/armbox}
out=${1:-$root/linux-armbox}
tarball=${LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
jobs=${JOBS:-$(nproc)}
fragment=$here/armbox.config
mk=(make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- -j"$jobs")

for t in aarch64-linux-gnu-gcc bc flex bison make; do
  command -v "$t" >/dev/null || { echo "build-kernel: $t not found" >&2; exit 2; }
done
[ -f "$tarball" ] || { echo "build-kernel: $tarball not found (apt-get install linux-source-6.1)" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/src
if [ ! -f "$src/Makefile" ]; then
  echo "build-kernel: unpacking $tarball" >&2
  rm -rf "$src" "$out/src.tmp"
  mkdir -p "$out/src.tmp"
  tar -xf "$tarball" -C "$out/src.tmp" --strip-components=1
  mv "$out/src.tmp" "$src"
fi
build=$out/build
mkdir -p "$build"

"${mk[@]}" -C "$src" O="$build" -s allnoconfig
# merge_config.sh -m merges without running kconfig; olddefconfig then settles dependencies.
(cd "$build" && "$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$fragment" >/dev/null)
# (A fragment that picks one entry of a choice makes kconfig say "changes choice state".)
"${mk[@]}" -C "$src" O="$build" -s olddefconfig 2> >(grep -v 'changes choice state' >&2)

# Every line of the fragment must hold in the final .config: kconfig silently drops an
# option whose dependencies are not met, and a kernel without its console is a silent one.
bad=0
while IFS= read -r line; do
  case $line in
    CONFIG_*=*) grep -qxF "$line" "$build/.config" || { echo "build-kernel: wanted $line, got: $(grep "^${line%%=*}=\|^# ${line%%=*} is" "$build/.config" || echo "(absent)")" >&2; bad=1; } ;;
    "# CONFIG_"*" is not set")
      opt=${line#\# }; opt=${opt%% *}
      if grep -q "^$opt=" "$build/.config"; then echo "build-kernel: wanted $opt off, got $(grep "^$opt=" "$build/.config")" >&2; bad=1; fi ;;
  esac
done < "$fragment"
[ $bad = 0 ] || exit 1

start=$(date +%s)
"${mk[@]}" -C "$src" O="$build" -s Image
end=$(date +%s)
cp "$build/arch/arm64/boot/Image" "$out/Image"
cp "$build/.config" "$out/config"
echo "build-kernel: $out/Image ($(stat -c %s "$out/Image") bytes, $(cat "$build/include/config/kernel.release"), make Image $((end - start)) s)" >&2
