/**
 * AdvSIMD FP (vector and scalar-SIMD) through the CPU. Hand-checked cases; with
 * FP_DIFF=<count> also a live random differential against qemu-aarch64 over every FP_SCALAR
 * and SIMD_FP pattern, using the difftest harness (tools/difftest).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Cpu } from "../src/arch/arm64/cpu.ts";
import { I } from "../src/arch/arm64/state.ts";
import { runWords } from "./support/snippet.ts";

const V = (n: number) => I.V + 4 * n;
const setQ = (c: Cpu, n: number, w: number[]) => {
  for (const [i, x] of w.entries()) c.r[V(n) + i] = x >>> 0;
};
const getQ = (c: Cpu, n: number) => [...c.r.subarray(V(n), V(n) + 4)];
const f32 = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const f64 = (x: number) => [...new Uint32Array(new Float64Array([x]).buffer)];

test("FADD 4S lane-wise with NaN lanes and IXC", () => {
  const { cpu } = runWords([0x4e22d420], (c) => {
    setQ(c, 1, [f32(1), f32(2), 0x7f800001, f32(1)]);
    setQ(c, 2, [f32(2), f32(-2), f32(1), f32(2 ** -30)]);
  });
  assert.deepEqual(getQ(cpu, 0), [f32(3), 0, 0x7fc00001, f32(1)]);
  assert.equal(cpu.r[I.FPSR], 0x11); // IOC from the SNaN lane, IXC from lane 3
});

test("FMLA 2D by element accumulates into Vd", () => {
  const { cpu } = runWords([0x4fc21820], (c) => {
    setQ(c, 0, [...f64(1), ...f64(10)]);
    setQ(c, 1, [...f64(2), ...f64(3)]);
    setQ(c, 2, [...f64(100), ...f64(0.5)]);
  });
  assert.deepEqual(getQ(cpu, 0), [...f64(2), ...f64(11.5)]);
});

test("FADDP 4S pairs Vn then Vm; scalar FADDP D", () => {
  let r = runWords([0x6e22d420], (c) => {
    setQ(c, 1, [f32(1), f32(2), f32(3), f32(4)]);
    setQ(c, 2, [f32(10), f32(20), f32(30), f32(40)]);
  });
  assert.deepEqual(getQ(r.cpu, 0), [f32(3), f32(7), f32(30), f32(70)]);
  r = runWords([0x7e70d820], (c) => setQ(c, 1, [...f64(1.5), ...f64(2.25)]));
  assert.deepEqual(getQ(r.cpu, 0), [...f64(3.75), 0, 0]);
});

test("FMAXV propagates a NaN; result zero-extended", () => {
  const { cpu } = runWords([0x6e30f820], (c) => setQ(c, 1, [f32(1), 0x7fc00123, f32(5), f32(-1)]));
  assert.deepEqual(getQ(cpu, 0), [0x7fc00123, 0, 0, 0]);
});

test("FCVTN2 keeps the low half; FCVTL2 widens the high half", () => {
  let r = runWords([0x4e616820], (c) => {
    setQ(c, 0, [1, 2, 3, 4]);
    setQ(c, 1, [...f64(1.5), ...f64(-0.25)]);
  });
  assert.deepEqual(getQ(r.cpu, 0), [1, 2, f32(1.5), f32(-0.25)]);
  r = runWords([0x4e617820], (c) => setQ(c, 1, [0, 0, f32(3), f32(-7)]));
  assert.deepEqual(getQ(r.cpu, 0), [...f64(3), ...f64(-7)]);
});

test("FMOV vector immediate, SCVTF fixed-point, FCMGE #0, FCVTZU saturation", () => {
  let r = runWords([0x4f04f400, 0x6f03f401]);
  assert.deepEqual(getQ(r.cpu, 0), [f32(-2), f32(-2), f32(-2), f32(-2)]);
  assert.deepEqual(getQ(r.cpu, 1), [...f64(0.5), ...f64(0.5)]);
  r = runWords([0x0f3ce420], (c) => setQ(c, 1, [24, -8, 9, 9]));
  assert.deepEqual(getQ(r.cpu, 0), [f32(1.5), f32(-0.5), 0, 0]);
  r = runWords([0x6ee0c820], (c) => setQ(c, 1, [...f64(-0), ...f64(-1)]));
  assert.deepEqual(getQ(r.cpu, 0), [0xffffffff, 0xffffffff, 0, 0]);
  r = runWords([0x6ea1b820], (c) => setQ(c, 1, [f32(-1), f32(2 ** 33), f32(7.9), 0x7fc00000]));
  assert.deepEqual(getQ(r.cpu, 0), [0, 0xffffffff, 7, 0]);
  assert.equal(r.cpu.r[I.FPSR], 0x11); // IOC (saturation, NaN) and IXC (7.9; saturated lanes raise no IXC)
});

test("FMUL scalar by element, FRECPE", () => {
  let r = runWords([0x5fa29820], (c) => {
    setQ(c, 1, [f32(3), 9, 9, 9]);
    setQ(c, 2, [0, 0, 0, f32(0.5)]);
  });
  assert.deepEqual(getQ(r.cpu, 0), [f32(1.5), 0, 0, 0]);
  r = runWords([0x0ea1d820], (c) => setQ(c, 1, [f32(2), f32(0), 0, 0]));
  assert.deepEqual(getQ(r.cpu, 0), [0x3eff8000, 0x7f800000, 0, 0]);
  assert.equal(r.cpu.r[I.FPSR], 0x2);
});

const diffCount = Number(process.env.FP_DIFF ?? 0);
test("live differential against qemu (FP_DIFF=<count>)", { skip: diffCount === 0 }, async () => {
  const { ArmboxRunner } = await import("../tools/difftest/armbox-runner.ts");
  const { diffDeltas, toDelta } = await import("../tools/difftest/delta.ts");
  const { randomState } = await import("../tools/difftest/generate.ts");
  const { Rng } = await import("../tools/difftest/prng.ts");
  const { runOnQemu } = await import("../tools/difftest/qemu.ts");
  const { FP_SCALAR } = await import("../src/arch/arm64/insn/fp-scalar.ts");
  const { SIMD_FP } = await import("../src/arch/arm64/insn/simd-fp.ts");
  const { parsePattern } = await import("../src/arch/arm64/decoder.ts");
  const { getDecoder } = await import("../src/arch/arm64/isa.ts");
  const pats = [...FP_SCALAR, ...SIMD_FP].map(parsePattern);
  const cases = [];
  for (let k = 0; k < diffCount; k++) {
    const seed = (Number(process.env.FP_SEED ?? 1) * 100003 + k * 7919) >>> 0;
    const g = new Rng(seed);
    const state = randomState(g, 0.8);
    const cp = pats[k % pats.length]!;
    let w = ((g.u32() & ~cp.mask) | cp.value) >>> 0;
    for (let t = 0; t < 50 && k % 10 !== 0 && getDecoder().nameOf(w) === null; t++)
      w = ((g.u32() & ~cp.mask) | cp.value) >>> 0;
    cases.push({ cls: "fp", seed, words: [w], state });
  }
  const ref = await runOnQemu(cases, "cortex-a57");
  const ours = new ArmboxRunner();
  const bad: string[] = [];
  cases.forEach((c, k) => {
    const d = diffDeltas(c, toDelta(c, ref[k]!), toDelta(c, ours.run(c)));
    if (d.length) bad.push(`${c.words[0]!.toString(16)} fpcr=${c.state.fpcr.toString(16)}: ${d.join("; ")}`);
  });
  assert.deepEqual(bad.slice(0, 10), []);
});
