#!/bin/sh
# Runs Debian's busybox-static (arm64) under `armbox user` and under qemu-aarch64 and
# compares stdout and exit status for a handful of applets. Fetches the package into a
# cache directory on first use. Usage: tools/busybox-compare.sh [CACHE_DIR]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-${ARMBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/armbox}}
bb=$cache/busybox-static/bin/busybox
qemu=${QEMU_AARCH64:-qemu-aarch64}

if [ ! -x "$bb" ]; then
  echo "fetching busybox-static (arm64) into $cache" >&2
  lists=$cache/arm64lists
  mkdir -p "$lists/partial" "$cache/deb"
  o="-oAPT::Architecture=arm64 -oAPT::Architectures=arm64 -oDir::State::Lists=$lists -oDebug::NoLocking=1"
  apt-get $o update >/dev/null || { echo "apt-get update failed" >&2; exit 2; }
  (cd "$cache/deb" && apt-get $o download busybox-static) || { echo "apt-get download failed" >&2; exit 2; }
  dpkg -x "$cache"/deb/busybox-static_*.deb "$cache/busybox-static" || exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'pear\napple\nfig\nbanana\ncherry\napple\nZebra\n10\n9\n' > "$work/words.txt"
i=0
while [ $i -lt 2000 ]; do echo "line $i of the sha256sum input"; i=$((i + 1)); done > "$work/data.txt"

fail=0
pass=0
# Each case is one line: the arguments to busybox, as shell words.
while IFS= read -r args; do
  [ -z "$args" ] && continue
  eval "set -- $args"
  "$qemu" "$bb" "$@" > "$work/want" 2> "$work/want.err"; ws=$?
  start=$(date +%s%N)
  node "$here/bin/armbox.js" user "$bb" "$@" > "$work/got" 2> "$work/got.err"; gs=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ $ws -eq $gs ] && cmp -s "$work/want" "$work/got"; then
    echo "PASS busybox $args (${ms} ms)"
    pass=$((pass + 1))
  else
    echo "FAIL busybox $args: exit $gs (qemu $ws)"
    diff "$work/want" "$work/got" | head -10
    head -5 "$work/got.err"
    fail=$((fail + 1))
  fi
done <<CASES
echo hello world
sha256sum '$work/data.txt'
expr 7 \\* 6
printf '%f\n' 3.14159
sort '$work/words.txt'
sh -c 'i=0; while [ \$i -lt 10000 ]; do i=\$((i+1)); done; echo \$i'
sh -c 'echo one | tr a-z A-Z; x=\$(echo sub); echo "got \$x"; false || echo fallback; exit 3'
wc -l '$work/data.txt'
CASES
echo "busybox-compare: $pass passed, $fail failed"
[ $fail -eq 0 ]
