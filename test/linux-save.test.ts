/**
 * The `--save` flavour of the hotplug snapshot: Debian's kernel at --smp 4, deterministic,
 * takes cpu2 offline from its command line and keeps a busy loop running; `--stop-at N
 * --save` writes the snapshot after N instructions; `--restore` in a fresh process shows
 * /sys/devices/system/cpu/online = 0-1,3 and a working shell, and cpu2 comes back.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  boot,
  engine,
  requireFiles,
  restoreWithCpu2Offline,
  skipUnlessCi,
  testTimeoutMs,
} from "./support/linux.ts";

const skip = engine === "qemu" ? "armbox only (--stop-at/--save)" : skipUnlessCi();
/** Well past the shell (about 1 G instructions at --smp 4): the busy loop fills the rest. */
const N = 1_800_000_000;

test("Linux: cpu2 offline, --stop-at N --save, --restore in a fresh process: still offline, shell alive, cpu2 back", {
  skip,
  timeout: testTimeoutMs * 2,
}, async (t) => {
  requireFiles();
  const dir = mkdtempSync(join(tmpdir(), "armbox-linux-save-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const snap = join(dir, "n.snap");
  const cmd =
    'armbox.cmd="echo 0 > /sys/devices/system/cpu/cpu2/online; echo OFF-$((40+2)); (while :; do :; done) & exec sh"';
  const saved = await boot({
    smp: 4,
    append: `console=ttyAMA0 panic=-1 ${cmd}`,
    args: ["--stop-at", String(N), "--save", snap],
    name: "save-src",
  });
  assert.equal(saved.exit.code, 0, saved.stderr);
  assert.match(saved.transcript, /\nOFF-42\r?\n/, `cpu2 went offline before instruction ${N}`);
  await restoreWithCpu2Offline(snap, "save-dst");
});
