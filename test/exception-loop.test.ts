/**
 * A guest stuck re-taking one exception at its own vector (here: VBAR_EL1 = 0, where
 * nothing is mapped, so the vector's fetch aborts to the same vector) is reported with
 * PC, ESR, FAR and the exception level, and armbox exits non-zero instead of spinning.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Cpu, createVmMemory, RAM_OFFSET } from "../src/arch/arm64/index.ts";
import { SYNC_TIMEOUT_MS } from "./support/children.ts";

const RAM_BASE = 0x4000_0000;

test("the CPU reports an exception loop at its vector and keeps the architectural state", () => {
  const memory = createVmMemory(1 << 20);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: RAM_BASE, ramSize: 1 << 20 } });
  cpu.dv.setUint32(RAM_OFFSET + 0x100, 0, true); // UDF #0
  cpu.pc = BigInt(RAM_BASE + 0x100);
  const exit = cpu.run(1_000_000);
  assert.equal(exit.kind, "exception-loop");
  const msg = exit.kind === "exception-loop" ? exit.message : "";
  // Instruction abort from EL1 (EC 0x21), IL, external abort (FSC 0x10) at VBAR + 0x200.
  assert.match(msg, /PC 0x200\b/);
  assert.match(msg, /ESR_EL1 0x86000010\b/);
  assert.match(msg, /FAR_EL1 0x200\b/);
  assert.match(msg, /EL1/);
  assert.ok(cpu.instructionCount < 1000n, "stopped soon, not at the end of the budget");
  assert.equal(cpu.pc, 0x200n);
});

test("a guest that handles its exceptions is not a loop, however many it takes", () => {
  // Vectors at RAM_BASE + 0x800: the handler skips the faulting UDF and returns.
  const memory = createVmMemory(1 << 20);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: RAM_BASE, ramSize: 1 << 20 } });
  const w = (off: number, v: number) => cpu.dv.setUint32(RAM_OFFSET + off, v >>> 0, true);
  for (let i = 0; i < 200; i++) w(0x100 + i * 4, 0); // 200 UDFs in a row
  w(0x100 + 200 * 4, 0xd4000022); // hvc #1
  // Current EL with SPx, synchronous: ELR += 4; eret.
  w(0x800 + 0x200, 0xd5384020); // mrs x0, elr_el1
  w(0x800 + 0x204, 0x91001000); // add x0, x0, #4
  w(0x800 + 0x208, 0xd5184020); // msr elr_el1, x0
  w(0x800 + 0x20c, 0xd69f03e0); // eret
  cpu.setX(1, BigInt(RAM_BASE + 0x800));
  w(0x0f8, 0xd518c001); // msr vbar_el1, x1
  w(0x0fc, 0xd5033fdf); // isb
  cpu.pc = BigInt(RAM_BASE + 0xf8);
  const exit = cpu.run(100_000);
  assert.deepEqual(exit, { kind: "hvc", imm: 1 });
});

test("armbox run exits non-zero with the message when the guest is stuck", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "armbox-loop-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = join(dir, "udf.bin");
  writeFileSync(kernel, Buffer.from([0, 0, 0, 0])); // a raw binary: UDF #0
  const r = spawnSync(
    process.execPath,
    [new URL("../bin/armbox.js", import.meta.url).pathname, "run", "--kernel", kernel],
    {
      encoding: "utf8",
      timeout: SYNC_TIMEOUT_MS,
      killSignal: "SIGKILL",
    },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /stuck re-taking the same exception at its vector: PC 0x200, ESR_EL1 0x86000010, FAR_EL1 0x200/,
  );
});
