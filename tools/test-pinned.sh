#!/usr/bin/env bash
# Runs `npm test` pinned to one core beside a CPU-bound process on that same core (issue 9:
# the suite must pass on a starved host, only slower) and prints its wall time.
# Usage: tools/test-pinned.sh [CORE]   (the Linux tests need ARMBOX_LINUX_KERNEL/INITRD).
set -euo pipefail
cd "$(dirname "$0")/.."
core="${1:-0}"
taskset -c "$core" sh -c 'while :; do :; done' &
hog=$!
trap 'kill $hog 2>/dev/null || true' EXIT
start=$(date +%s)
status=0
taskset -c "$core" npm test || status=$?
echo "npm test pinned to core $core beside a CPU hog: exit $status, wall $(( $(date +%s) - start )) s"
exit "$status"
