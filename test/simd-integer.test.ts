/**
 * AdvSIMD integer: decoding boundaries (what this class must leave to the FP, permute and
 * crypto tables, which encodings are unallocated), FPSR.QC behaviour and the FP access trap.
 * The semantics themselves are covered by test/simd-integer-vectors.test.ts.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu } from "../src/arch/arm64/cpu.ts";
import { compileDecoder } from "../src/arch/arm64/decoder.ts";
import { SIMD_INTEGER } from "../src/arch/arm64/insn/simd-integer.ts";
import { getLane, getLaneBig, getV, setLane, setV } from "../src/arch/arm64/simd-util.ts";
import { createVmMemory, I, RAM_OFFSET } from "../src/arch/arm64/state.ts";
import { sysregIndex } from "../src/arch/arm64/sysregs.ts";
import { makeCpu, runWords } from "./support/snippet.ts";

const mine = compileDecoder([SIMD_INTEGER]);

test("FP, crypto and permute encodings are left to their own tables", () => {
  const others: [number, string][] = [
    [0x4e22d420, "fadd v0.4s, v1.4s, v2.4s"],
    [0x4f03f600, "fmov v0.4s, #1.0"],
    [0x6f04f400, "fmov v0.2d, #-2.0"],
    [0x4ea0c820, "fcmgt v0.4s, v1.4s, #0.0"],
    [0x4f3de420, "scvtf v0.4s, v1.4s, #3"],
    [0x5f7bfc20, "fcvtzs d0, d1, #5"],
    [0x4fa21020, "fmla v0.4s, v1.4s, v2.s[1]"],
    [0x5fa29820, "fmul s0, s1, v2.s[3]"],
    [0x7e70d820, "faddp d0, v1.2d"],
    [0x6e30f820, "fmaxv s0, v1.4s"],
    [0x0e216820, "fcvtn v0.4h, v1.4s"],
    [0x0ee2e020, "pmull v0.1q, v1.1d, v2.1d"],
    [0x4e284820, "aese v0.16b, v1.16b"],
    [0x5e280820, "sha1h s0, s1"],
    [0x4e0c0420, "dup v0.4s, v1.s[1]"],
    [0x6e021820, "ext v0.16b, v1.16b, v2.16b, #3"],
  ];
  for (const [w, asm] of others) assert.equal(mine.nameOf(w), null, asm);
});

test("integer forms decode to their named patterns", () => {
  const ours: [number, string][] = [
    [0x4ee28420, "ADD (vector)"],
    [0x5ee28420, "ADD (scalar)"],
    [0x4ea20420, "SHADD (vector)"],
    [0x0ea12820, "XTN"],
    [0x4e62b420, "SQDMULH (vector)"],
    [0x4eb1b820, "ADDV"],
    [0x4f7d0420, "SSHR (vector)"],
    [0x0f3d8420, "SHRN"],
    [0x4fa28020, "MUL (by element)"],
    [0x4e205820, "CNT"],
  ];
  for (const [w, name] of ours) assert.equal(mine.nameOf(w), name, w.toString(16));
});

test("unallocated size/Q combinations are UNDEFINED", () => {
  const undef: [number, string][] = [
    [0x0ee28420, "add v0.1d"],
    [0x4ee20420, "shadd .2d"],
    [0x0ee12820, "xtn from size 3"],
    [0x4e22b420, "sqdmulh .16b"],
    [0x0eb1b820, "addv s0, v1.2s"],
    [0x0f7d0420, "sshr v0.1d"],
    [0x0f7d8420, "shrn from .2d source lanes of 128 bits"],
    [0x4fe28020, "mul by element, size 3"],
    [0x5e228420, "add b0, b1, b2"],
    [0x4e605820, "cnt .8h"],
    [0x0ee08820, "cmgt v0.1d, #0"],
  ];
  for (const [w, asm] of undef) {
    assert.equal(mine.nameOf(w), null, asm);
    const { exit } = runWords([w]);
    assert.equal(exit.kind, "exception", asm);
    assert.equal((exit as { ec: number }).ec, 0, asm);
  }
});

test("FPSR.QC is sticky: set by saturation, never cleared by a non-saturating op", () => {
  // sqadd v0.16b, v1.16b, v2.16b ; add v3.16b, v1.16b, v2.16b
  const { cpu } = runWords([0x4e220c20, 0x4e228423], (c) => {
    setV(c, 1, 0x7fn);
    setV(c, 2, 0x01n);
  });
  assert.equal(getLane(cpu, 0, 8, 0), 0x7f);
  assert.equal(getLane(cpu, 3, 8, 0), 0x80);
  assert.equal((cpu.r[I.FPSR]! >>> 27) & 1, 1);
  const r2 = runWords([0x4e220c20], (c) => {
    setV(c, 1, 0x7en);
    setV(c, 2, 0x01n);
  });
  assert.equal((r2.cpu.r[I.FPSR]! >>> 27) & 1, 0);
});

test("a faulting or trapped instruction changes nothing: FP access trap at EL1 with CPACR_EL1.FPEN = 0", () => {
  const RAM = 1 << 20;
  const cpu = new Cpu({ memory: createVmMemory(RAM), index: 0, bus: { ramBase: 0, ramSize: RAM } });
  cpu.dv.setUint32(RAM_OFFSET + 0x10000, 0x4e228420, true); // add v0.16b, v1.16b, v2.16b
  cpu.pc = 0x10000n;
  setV(cpu, 0, 0x1234n);
  setV(cpu, 1, 1n);
  setV(cpu, 2, 2n);
  cpu.run(1);
  const esr = cpu.r[sysregIndex("ESR_EL1")]!;
  assert.equal(esr >>> 26, 0x07);
  assert.equal(getV(cpu, 0), 0x1234n);
});

test("lane helpers round-trip", () => {
  const c = makeCpu();
  setLane(c, 5, 16, 3, 0x8001);
  assert.equal(getLane(c, 5, 16, 3), 0x8001);
  assert.equal(getLane(c, 5, 16, 3, true), -0x7fff);
  setLane(c, 5, 8, 15, 0x1ff);
  assert.equal(getLane(c, 5, 8, 15), 0xff);
  assert.equal(getLaneBig(c, 5, 64, 1), 0xff00000000000000n);
  assert.equal(getLaneBig(c, 5, 64, 0, true), BigInt.asIntN(64, 0x8001n << 48n));
});
