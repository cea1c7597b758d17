#!/usr/bin/env bash
# Live migration between two "hosts" on this machine: two network namespaces joined by a
# veth pair with addresses in a private /30 that exists only between them (no traffic
# leaves this machine). The destination (armbox run --incoming) runs in one namespace,
# the source (a guest printing "tick N" lines, with a QMP socket) in the other; QMP
# migrate moves it; the script checks that query-migrate reports completed with a
# measured downtime and that the console output of source then destination is one
# gapless, repeat-free sequence. Everything is cleaned up on exit (trap). Needs root.
#
#   tools/netns-migrate.sh [idle|counter|dirty] [SMP] [MEMORY]
set -euo pipefail

GUEST=${1:-idle}
SMP=${2:-4}
MEM=${3:-256M}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARMBOX="node $ROOT/bin/armbox.js"
NS_SRC=armbox-mig-src-$$
NS_DST=armbox-mig-dst-$$
VETH_SRC=vms$$
VETH_DST=vmd$$
# A /30 private to the two namespaces (link-local-like use of a TEST-NET-style range
# would also do); nothing outside the pair routes to it.
ADDR_SRC=10.233.$(($$ % 250)).1
ADDR_DST=10.233.$(($$ % 250)).2
PORT=4444
WORK=$(mktemp -d /tmp/armbox-netns.XXXXXX)
PIDS=()

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$NS_SRC" 2>/dev/null
  ip netns del "$NS_DST" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ "$(id -u)" != 0 ]; then
  echo "netns-migrate: needs root (ip netns)" >&2
  exit 2
fi

ip netns add "$NS_SRC"
ip netns add "$NS_DST"
ip link add "$VETH_SRC" type veth peer name "$VETH_DST"
ip link set "$VETH_SRC" netns "$NS_SRC"
ip link set "$VETH_DST" netns "$NS_DST"
ip -n "$NS_SRC" addr add "$ADDR_SRC/30" dev "$VETH_SRC"
ip -n "$NS_DST" addr add "$ADDR_DST/30" dev "$VETH_DST"
ip -n "$NS_SRC" link set "$VETH_SRC" up
ip -n "$NS_DST" link set "$VETH_DST" up
ip -n "$NS_SRC" link set lo up
ip -n "$NS_DST" link set lo up
echo "netns-migrate: $NS_SRC ($ADDR_SRC) <-veth-> $NS_DST ($ADDR_DST)"

# Destination: listens on its veth address only.
ip netns exec "$NS_DST" $ARMBOX run --incoming "tcp:$ADDR_DST:$PORT" --smp "$SMP" --memory "$MEM" \
  </dev/null >"$WORK/dst.out" 2>"$WORK/dst.err" &
PIDS+=($!)
DST_PID=$!
# Source: the guest, with QMP on a Unix socket (reachable from the root namespace too).
ip netns exec "$NS_SRC" $ARMBOX run --kernel "$ROOT/guests/migration/bin/$GUEST.elf" --smp "$SMP" \
  --memory "$MEM" --qmp "unix:$WORK/src.qmp" </dev/null >"$WORK/src.out" 2>"$WORK/src.err" &
PIDS+=($!)
SRC_PID=$!

for _ in $(seq 100); do
  [ -S "$WORK/src.qmp" ] && grep -q "waiting for an incoming migration" "$WORK/dst.err" && break
  sleep 0.1
done
sleep 1 # let the guest print for a while
qmp() { ip netns exec "$NS_SRC" $ARMBOX qmp "$WORK/src.qmp" "$@"; }
qmp migrate "{\"uri\":\"tcp:$ADDR_DST:$PORT\"}"
STATUS=""
for _ in $(seq 300); do
  INFO=$(qmp query-migrate 2>/dev/null || true)
  [ -n "$INFO" ] && LAST=$INFO
  STATUS=$(sed -n 's/.*"status":"\([a-z-]*\)".*/\1/p' <<<"$INFO")
  case "$STATUS" in completed | failed | cancelled) break ;; esac
  if ! kill -0 "$SRC_PID" 2>/dev/null; then break; fi
  sleep 0.1
done
# As QEMU's, the source stays after a completed migration, paused in postmigrate, until quit.
SRC_STATE=$(qmp query-status 2>/dev/null || true)
echo "netns-migrate: source after the migration: ${SRC_STATE:-no answer}"
grep -q '"status":"postmigrate"' <<<"$SRC_STATE" || { echo "netns-migrate: the source is not in postmigrate" >&2; exit 1; }
qmp quit >/dev/null
wait "$SRC_PID" && SRC_RC=0 || SRC_RC=$?
echo "netns-migrate: last query-migrate: ${LAST:-none}"
echo "netns-migrate: source: $(grep -h 'migration' "$WORK/src.err" | tail -1) (exit $SRC_RC)"
sleep 1.5 # the destination runs on
kill "$DST_PID" 2>/dev/null || true
wait "$DST_PID" 2>/dev/null || true
echo "netns-migrate: destination: $(grep -h 'incoming migration complete' "$WORK/dst.err" || cat "$WORK/dst.err")"

# The console across both hosts: tick 0, 1, 2, ... with no gap and no repeat.
cat "$WORK/src.out" "$WORK/dst.out" | tr -d '\r' | grep '^tick ' | awk '
  { n = $2 + 0
    if (NR > 1 && n != prev + 1) { printf "netns-migrate: console gap or repeat: %d after %d\n", n, prev; bad = 1 }
    prev = n }
  END { if (bad) exit 1
        if (NR < 2) { print "netns-migrate: too few tick lines"; exit 1 }
        printf "netns-migrate: console continuous: ticks 0..%d\n", prev }' || exit 1
SRC_LAST=$(tr -d '\r' <"$WORK/src.out" | grep '^tick ' | tail -1 | cut -d' ' -f2)
DST_FIRST=$(tr -d '\r' <"$WORK/dst.out" | grep '^tick ' | head -1 | cut -d' ' -f2)
echo "netns-migrate: source printed up to tick $SRC_LAST, destination went on from tick $DST_FIRST"
[ -n "$DST_FIRST" ] || { echo "netns-migrate: the destination printed nothing" >&2; exit 1; }
grep -q '"downtime"' <<<"${LAST:-}" || grep -q 'downtime' "$WORK/src.err" || {
  echo "netns-migrate: no measured downtime reported" >&2
  exit 1
}
echo "netns-migrate: PASS"
