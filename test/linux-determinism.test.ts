/**
 * Deterministic equivalence for Linux: with --deterministic, the state digest after N+M
 * instructions of Debian's kernel booting at --smp 2 equals the digest after N, a
 * snapshot written by one process, and M more in a fresh process (the software TLB is not
 * in the digest and the restored vCPUs start with an empty one). N and M are random
 * across the boot (the seed is printed; ARMBOX_LINUX_SEED repeats a run).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { start } from "./support/children.ts";
import {
  engine,
  initrdPath,
  kernelPath,
  requireFiles,
  skipUnlessCi,
  testTimeoutMs,
} from "./support/linux.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const skip = engine === "qemu" ? "armbox only (state digests)" : skipUnlessCi();

/**
 * Runs `armbox run ARGS` to its end (a --stop-at), returning stdout; killed at the
 * deadline, or when the test ends first (a timeout).
 */
async function armbox(
  t: TestContext,
  args: string[],
  deadlineMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = start(t, process.execPath, [ARMBOX, "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.proc.kill("SIGKILL"), deadlineMs);
  const { code } = await child.exited;
  clearTimeout(timer);
  return { code, stdout: child.stdout, stderr: child.stderr };
}
const digest = (out: string) => /state-digest: ([0-9a-f]{64})/.exec(out)?.[1];

test("Linux, --deterministic --smp 2: digest after N+M = digest after N, save, restore in a new process, M", {
  skip,
  timeout: testTimeoutMs * 3,
}, async (t) => {
  requireFiles();
  const seed = Number(process.env.ARMBOX_LINUX_SEED ?? Date.now() % 100_000);
  // A small LCG: the seed alone decides N and M.
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const n = 20_000_000 + Math.floor(rnd() * 180_000_000);
  const m = 5_000_000 + Math.floor(rnd() * 60_000_000);
  console.log(`# seed ${seed}: N = ${n}, M = ${m}`);
  const base = [
    "--deterministic",
    ...["--kernel", kernelPath, "--initrd", initrdPath, "--smp", "2", "--memory", "512M"],
    ...["--append", "console=ttyAMA0 panic=-1"],
  ];
  const dir = mkdtempSync(join(tmpdir(), "armbox-linux-det-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const snap = join(dir, "n.snap");
  const deadline = testTimeoutMs;
  const straight = await armbox(t, [...base, "--stop-at", String(n + m), "--state-digest"], deadline);
  assert.equal(straight.code, 0, straight.stderr);
  const saved = await armbox(t, [...base, "--stop-at", String(n), "--save", snap], deadline);
  assert.equal(saved.code, 0, saved.stderr);
  const restored = await armbox(t, ["--restore", snap, "--stop-at", String(m), "--state-digest"], deadline);
  assert.equal(restored.code, 0, restored.stderr);
  assert.ok(digest(straight.stdout), straight.stdout.slice(-500));
  assert.equal(digest(restored.stdout), digest(straight.stdout), `seed ${seed}`);
  // The console output continues exactly: what the restored run printed is what the
  // straight run printed after the first run's part.
  assert.equal(
    saved.stdout + restored.stdout.replace(/state-digest: .*\n/, ""),
    straight.stdout.replace(/state-digest: .*\n/, ""),
  );
});

test("Linux, --deterministic --smp 2: the state digest after N is the same translated (--accel jit) and interpreted, for several N", {
  skip,
  timeout: testTimeoutMs * 6,
}, async (t) => {
  requireFiles();
  const seed = Number(process.env.ARMBOX_LINUX_SEED ?? Date.now() % 100_000);
  const extra = 100_000_000 + ((seed * 7919) % 100_000_000);
  // The last N is past /init, its module loading (insmod of the virtio modules) and the
  // shell's prompt: user space and the exception trampolines run translated too.
  const SHELL = 1_300_000_000;
  console.log(`# seed ${seed}: N = 25000000, 70000000, ${extra}, ${SHELL}`);
  const base = [
    "--deterministic",
    ...["--kernel", kernelPath, "--initrd", initrdPath, "--smp", "2", "--memory", "512M"],
    ...["--append", "console=ttyAMA0 panic=-1"],
  ];
  for (const n of [25_000_000, 70_000_000, extra, SHELL]) {
    const runs = [];
    for (const accel of ["interp", "jit"]) {
      const r = await armbox(
        t,
        [...base, "--accel", accel, "--stop-at", String(n), "--state-digest"],
        testTimeoutMs,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.ok(digest(r.stdout), r.stdout.slice(-500));
      runs.push(r);
    }
    assert.equal(digest(runs[1]!.stdout), digest(runs[0]!.stdout), `N = ${n}, seed ${seed}`);
    assert.equal(runs[1]!.stdout, runs[0]!.stdout, `console output, N = ${n}`);
    if (n === SHELL) assert.match(runs[0]!.stdout, /armbox# /, "the shell's prompt");
  }
});
