/**
 * `armbox run` end to end: the demo guest, a dumped device tree that dtc accepts without
 * warnings, semihosting exit codes, and clear errors for bad input.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runSync } from "./support/children.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const run = (...args: string[]) => runSync(process.execPath, [ARMBOX, "run", ...args]);
const tmp = mkdtempSync(join(tmpdir(), "armbox-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const hasDtc = spawnSync("dtc", ["--version"]).status === 0;

test("armbox run --guest demo boots the bare-metal demo guest and traces MP states", () => {
  const r = run("--guest", "demo", "--deterministic");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /RESULT: PASS/);
  assert.match(r.stderr, /vcpu 1: STOPPED -> RUNNABLE/);
  assert.match(r.stderr, /vcpu 1: RUNNABLE -> STOPPED/);
});

test("--dump-dtb writes a tree that dtc accepts without warnings", {
  skip: !hasDtc && "dtc not installed",
}, () => {
  const file = join(tmp, "x.dtb");
  const r = run("--smp", "4", "--append", "console=ttyAMA0", "--dump-dtb", file);
  assert.equal(r.status, 0, r.stderr);
  const d = runSync("dtc", ["-I", "dtb", "-O", "dts", file]);
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.stderr, "", "no dtc warnings");
  assert.match(d.stdout, /compatible = "arm,gic-v3"/);
  assert.match(d.stdout, /bootargs = "console=ttyAMA0"/);
  assert.equal((d.stdout.match(/enable-method = "psci"/g) ?? []).length, 4);
});

test("bad input gets a clear message and a non-zero status", () => {
  const missing = run("--kernel", join(tmp, "nope.elf"));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no such file/);
  const notArm = join(tmp, "x86.elf");
  const elf = new Uint8Array(64);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  elf[16] = 2;
  elf[18] = 62; // EM_X86_64
  writeFileSync(notArm, elf);
  const x86 = run("--kernel", notArm);
  assert.notEqual(x86.status, 0);
  assert.match(x86.stderr, /x86-64|AArch64|arm64/i);
  const smp = run("--smp", "200");
  assert.equal(smp.status, 2);
  assert.match(smp.stderr, /vCPUs/);
  const mem = run("--memory", "lots");
  assert.equal(mem.status, 2);
  assert.match(mem.stderr, /bad size/);
});
