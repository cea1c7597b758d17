/**
 * Runs every program in guests/user/ under the user-mode runner (in-process) and compares
 * stdout and exit status with the output recorded from qemu-aarch64 (guests/user/expected).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { JitOptions } from "../src/arch/arm64/jit/jit.ts";
import { runProgram, UserProcess } from "../src/user/process.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const guestDir = path.join(root, "guests/user");

/** Arguments per program; must match guests/user/Makefile's `expected` target. */
export const USER_ARGS: Record<string, string[]> = {
  strings: ["one", "two words", ""],
  sys_basic: ["alpha", "beta"],
  // Its scratch directory is named after the guest pid, which is the same every run:
  // a fresh parent keeps a run that was killed half-way from failing the next one.
  files: [fs.mkdtempSync(path.join(os.tmpdir(), "armbox-files-"))],
};
/** Programs too slow for the unit test run (measured by tools/user-compare.ts instead). */
const SLOW = new Set(process.env.ARMBOX_BENCH ? [] : ["bench"]);

export interface Captured {
  status: number;
  stdout: string;
  stderr: string;
}

export function runCaptured(
  file: string,
  argv: string[],
  maxInstructions = 20_000_000_000,
  jit: JitOptions | false = false,
): Captured {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const status = runProgram(file, argv, {
    ramBytes: 256 << 20,
    env: ["PATH=/usr/bin:/bin", "LANG=C"],
    stdout: { write: (b) => out.push(b) },
    stderr: { write: (b) => err.push(b) },
    diag: (l) => err.push(Buffer.from(`${l}\n`)),
    maxInstructions,
    jit,
  });
  return { status, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}

const programs = fs
  .readdirSync(path.join(guestDir, "expected"))
  .filter((f) => f.endsWith(".out"))
  .map((f) => f.slice(0, -4))
  .sort();

for (const name of programs) {
  test(`user program ${name} matches qemu-aarch64`, {
    skip: SLOW.has(name) ? "slow (set ARMBOX_BENCH=1)" : false,
  }, () => {
    const bin = path.join(guestDir, "bin", name);
    const r = runCaptured(bin, [bin, ...(USER_ARGS[name] ?? [])]);
    const got = `${r.stdout}--- exit ${r.status}\n`;
    const want = fs.readFileSync(path.join(guestDir, "expected", `${name}.out`), "utf8");
    assert.equal(got, want, `stderr:\n${r.stderr}`);
  });
}

// The same programs with the translator on, at a low threshold so that most code runs
// translated (issue 10: every user program passes with the translator).
for (const name of programs) {
  test(`user program ${name} matches qemu-aarch64, translated`, {
    skip: SLOW.has(name) ? "slow (set ARMBOX_BENCH=1)" : false,
  }, () => {
    const bin = path.join(guestDir, "bin", name);
    const r = runCaptured(bin, [bin, ...(USER_ARGS[name] ?? [])], 20_000_000_000, {
      threshold: 2,
      batch: 16,
    });
    const got = `${r.stdout}--- exit ${r.status}\n`;
    const want = fs.readFileSync(path.join(guestDir, "expected", `${name}.out`), "utf8");
    assert.equal(got, want, `stderr:\n${r.stderr}`);
  });
}

/** Runs a program in process; its retired-instruction count and output. */
function countRun(
  name: string,
  jit: JitOptions | false,
): { count: bigint; out: string; inline: number; flushes: number } {
  const bin = path.join(guestDir, "bin", name);
  let out = "";
  const p = new UserProcess({
    ramBytes: 256 << 20,
    env: ["PATH=/usr/bin:/bin", "LANG=C"],
    stdout: { write: (b) => (out += Buffer.from(b).toString()) },
    stderr: { write: () => {} },
    diag: () => {},
    jit,
  });
  p.exec(bin, [bin, ...(USER_ARGS[name] ?? [])], []);
  p.run();
  const stats = p.cpu.jit?.stats;
  return {
    count: p.cpu.instructionCount,
    out,
    inline: stats?.inlineInstructions ?? 0,
    flushes: stats?.flushes ?? 0,
  };
}

test("a code cache far too small for the program is flushed again and again, and nothing changes", () => {
  const a = countRun("sort", false);
  const b = countRun("sort", { threshold: 2, batch: 4, maxInstructions: 64 });
  assert.equal(b.out, a.out);
  assert.equal(b.count, a.count);
  assert.ok(b.flushes > 10, `the cache was flushed ${b.flushes} times`);
});

test("translated and interpreted runs retire exactly the same number of instructions", () => {
  for (const name of ["hash", "sort", "math64", "recursion", "bits", "lists"]) {
    if (!programs.includes(name)) continue;
    const a = countRun(name, false);
    const b = countRun(name, { threshold: 2, batch: 16 });
    assert.ok(b.inline > 0, `${name}: nothing was translated inline`);
    assert.equal(b.out, a.out, name);
    assert.equal(b.count, a.count, `${name}: instruction counts differ`);
  }
});
