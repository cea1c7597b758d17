/**
 * fpcore against qemu-aarch64: golden vectors recorded from a static C program that sets FPCR,
 * runs one instruction on raw operand bits and prints the result bits and FPSR.
 * Vector format: "op fpcr a b c result fpsr" (hex). Set FP_LIVE=<path of the reference binary>
 * to generate a fresh random batch and compare live instead.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import fc from "fast-check";
import * as F from "../src/arch/arm64/fpcore.ts";
import { R64 } from "../src/arch/arm64/ret64.ts";
import { FP_VECTORS } from "./fp-vectors.test.ts";
import { SYNC_TIMEOUT_MS } from "./support/children.ts";

const M64 = (1n << 64n) - 1n;
const hi = (x: bigint) => Number((x >> 32n) & 0xffffffffn);
const lo = (x: bigint) => Number(x & 0xffffffffn);
const RMODE: Record<string, number> = { n: 0, p: 1, m: 2, z: 3, a: 4 };

/** Runs `op` through fpcore; returns [result, fpsr] like the reference program prints them. */
export function model(op: string, fpcr: number, a: bigint, b: bigint, c: bigint): [bigint, number] {
  F.fp.flags = 0;
  R64.hi = 0;
  R64.lo = 0;
  const [name, sfx = "s", fb] = op.split("_") as [string, string?, string?];
  const p = sfx.at(-1) === "d" ? 64 : 32;
  const sgn = p === 64 ? 1n << 63n : 1n << 31n;
  const mode = F.fpcrMode(fpcr);
  let r: bigint | null = null;
  const two = (
    f: (N: number, ah: number, al: number, bh: number, bl: number, fpcr: number) => void,
    x = a,
    y = b,
  ) => f(p, hi(x), lo(x), hi(y), lo(y), fpcr);
  const fma = (cc: bigint, aa: bigint, bb: bigint) =>
    F.fpMulAdd(p, hi(cc), lo(cc), hi(aa), lo(aa), hi(bb), lo(bb), fpcr);
  switch (name) {
    case "fadd":
      two(F.fpAdd);
      break;
    case "fsub":
      two(F.fpSub);
      break;
    case "fmul":
      two(F.fpMul);
      break;
    case "fnmul":
      two(F.fpMul);
      r = F.bits64() ^ sgn;
      break;
    case "fdiv":
      two(F.fpDiv);
      break;
    case "fmax":
      two(F.fpMax);
      break;
    case "fmin":
      two(F.fpMin);
      break;
    case "fmaxnm":
      two(F.fpMaxNum);
      break;
    case "fminnm":
      two(F.fpMinNum);
      break;
    case "fmulx":
      two(F.fpMulX);
      break;
    case "frecps":
      two(F.fpRecipStep);
      break;
    case "frsqrts":
      two(F.fpRSqrtStep);
      break;
    case "fmadd":
      fma(c, a, b);
      break;
    case "fmsub":
      fma(c, a ^ sgn, b);
      break;
    case "fnmadd":
      fma(c ^ sgn, a ^ sgn, b);
      break;
    case "fnmsub":
      fma(c ^ sgn, a, b);
      break;
    case "fsqrt":
      F.fpSqrt(p, hi(a), lo(a), fpcr);
      break;
    case "frecpe":
      F.fpRecipEstimate(p, hi(a), lo(a), fpcr);
      break;
    case "frsqrte":
      F.fpRSqrtEstimate(p, hi(a), lo(a), fpcr);
      break;
    case "frecpx":
      F.fpRecpX(p, hi(a), lo(a), fpcr);
      break;
    case "fabs":
      r = a & (sgn - 1n);
      break;
    case "fneg":
      r = a ^ sgn;
      break;
    case "fcmp":
    case "fcmpe":
      r = BigInt((F.fpCompare(p, hi(a), lo(a), hi(b), lo(b), name === "fcmpe", fpcr) << 28) >>> 0);
      break;
    case "fcvtxn":
      F.fpConvert(64, 32, hi(a), lo(a), fpcr, F.RM.ODD);
      break;
    case "urecpe":
      r = BigInt(F.unsignedRecipEstimate(lo(a)));
      break;
    case "ursqrte":
      r = BigInt(F.unsignedRSqrtEstimate(lo(a)));
      break;
    case "fcvt": {
      const sz = (ch: string) => (ch === "d" ? 64 : ch === "s" ? 32 : 16);
      const to = sz(sfx[0]!);
      const from = sz(sfx[1]!);
      F.fpConvert(from, to, hi(a), lo(a) & (from === 16 ? 0xffff : 0xffffffff), fpcr, mode);
      break;
    }
    default:
      if (name.startsWith("frint")) {
        const k = name[5]!;
        const m = k === "x" || k === "i" ? mode : RMODE[k]!;
        F.fpRoundInt(p, hi(a), lo(a), fpcr, m, k === "x");
      } else if (name.startsWith("fcvt")) {
        // fcvt{n,p,m,z,a}{s,u}_{w,x}{s,d}[_fN]
        const m = RMODE[name[4]!]!;
        const M = sfx[0] === "w" ? 32 : 64;
        const fbits = fb ? Number(fb.slice(1)) : 0;
        F.fpToFixed(p, hi(a), lo(a), fbits, name[5] === "u", M, fpcr, m);
      } else if (name === "scvtf" || name === "ucvtf") {
        const N = sfx[0] === "d" ? 64 : 32;
        const M = sfx[1] === "w" ? 32 : 64;
        const fbits = fb ? Number(fb.slice(1)) : 0;
        F.fixedToFp(N, hi(a), lo(a), M, fbits, name === "ucvtf", fpcr, mode);
      } else throw new Error(`no model for ${op}`);
  }
  if (r === null) r = F.bits64();
  return [r & M64, F.fp.flags];
}

function parse(lines: string): [string, number, bigint, bigint, bigint, bigint, number][] {
  return lines
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [op, fpcr, a, b, c, r, s] = l.trim().split(/\s+/);
      return [
        op!,
        Number.parseInt(fpcr!, 16),
        BigInt(`0x${a}`),
        BigInt(`0x${b}`),
        BigInt(`0x${c}`),
        BigInt(`0x${r}`),
        Number.parseInt(s!, 16),
      ];
    });
}

function check(vectors: ReturnType<typeof parse>): string[] {
  const bad: string[] = [];
  for (const [op, fpcr, a, b, c, r, s] of vectors) {
    let got: [bigint, number];
    try {
      got = model(op, fpcr, a, b, c);
    } catch (e) {
      bad.push(
        `${op} ${fpcr.toString(16)} ${a.toString(16)} ${b.toString(16)} ${c.toString(16)}: threw ${e}`,
      );
      continue;
    }
    if (got[0] !== r || got[1] !== s)
      bad.push(
        `${op} fpcr=${fpcr.toString(16)} ${a.toString(16)} ${b.toString(16)} ${c.toString(16)}: want ${r.toString(16)} fpsr ${s.toString(16)}, got ${got[0].toString(16)} fpsr ${got[1].toString(16)}`,
      );
  }
  return bad;
}

// ---- random case generation (live mode, and how the golden vectors were made)

let seed = 12345;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed;
}
function r32(): bigint {
  return BigInt(((rnd() << 1) ^ rnd()) >>> 0);
}
function pick<T>(xs: readonly T[]): T {
  return xs[rnd() % xs.length]!;
}
const SPECIAL32 = [
  0x0, 0x80000000, 0x1, 0x807fffff, 0x800000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x40000000, 0x3f000000,
  0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fc12345, 0x7f812345, 0xff800001, 0xffc00001,
  0x40200000, 0x40600000, 0xc0200000, 0x3f800001, 0x4f000000, 0x4effffff, 0x4f800000, 0xcf000000, 0x5f000000,
  0x5f800000, 0xdf000000, 0x00400000, 0x3effffff, 0x33800000, 0x34000000, 0x7e800000, 0x00ffffff, 0x3eaaaaab,
  0x4b000001, 0x4b7fffff,
].map(BigInt);
const SPECIAL64 = [
  "0",
  "8000000000000000",
  "1",
  "800fffffffffffff",
  "10000000000000",
  "3ff0000000000000",
  "bff0000000000000",
  "3ff8000000000000",
  "4000000000000000",
  "3fe0000000000000",
  "7fefffffffffffff",
  "ffefffffffffffff",
  "7ff0000000000000",
  "fff0000000000000",
  "7ff8000000000000",
  "7ff8000012345678",
  "7ff0000012345678",
  "fff0000000000001",
  "4004000000000000",
  "c004000000000000",
  "3ff0000000000001",
  "41e0000000000000",
  "41dfffffffffffc0",
  "41f0000000000000",
  "c1e0000000000000",
  "43e0000000000000",
  "43f0000000000000",
  "c3e0000000000000",
  "0008000000000000",
  "3fdfffffffffffff",
  "3ca0000000000000",
  "47efffffe0000000",
  "47efffffefffffff",
  "36a0000000000000",
  "3810000000000000",
  "380fffffffffffff",
  "4330000000000001",
  "433fffffffffffff",
  "40f0000000000000",
  "7fe0000000000000",
  "0010000000000001",
  "3e70000000000000",
].map((x) => BigInt(`0x${x}`));
function val(p: number): bigint {
  const k = rnd() % 10;
  if (p === 32) {
    if (k < 4) return pick(SPECIAL32);
    if (k < 7) return r32();
    // near 1.0 / small exponents
    const e = 100 + (rnd() % 56);
    return BigInt((((rnd() & 1) << 31) | (e << 23) | (rnd() & 0x7fffff)) >>> 0);
  }
  if (k < 4) return pick(SPECIAL64);
  if (k < 6) return (r32() << 32n) | r32();
  if (k < 7)
    return (
      BigInt(Math.floor(Math.random() * 0)) +
      ((BigInt(rnd() % 2) << 63n) | (BigInt(rnd() % 0x7ff) << 52n) | (r32() << 20n) | (r32() & 0xfffffn))
    );
  const e = 900 + (rnd() % 250);
  return (BigInt(rnd() & 1) << 63n) | (BigInt(e) << 52n) | (r32() << 20n) | (r32() & 0xfffffn);
}
const FPCRS = [
  0,
  0,
  0,
  1 << 22,
  2 << 22,
  3 << 22,
  1 << 24,
  1 << 25,
  (1 << 24) | (1 << 25) | (2 << 22),
  1 << 26,
  (1 << 26) | (3 << 22),
];

export function genCases(ops: string[], perOp: number, s = 12345): string[] {
  seed = s;
  const out: string[] = [];
  for (const op of ops) {
    for (let i = 0; i < perOp; i++) {
      const sfx = op.split("_")[1] ?? "s";
      let p = sfx.at(-1) === "d" ? 64 : 32;
      if (op.startsWith("scvtf") || op.startsWith("ucvtf")) p = sfx[1] === "x" ? 64 : 32;
      if (op === "fcvtxn" || op === "fcvt_sd" || op === "fcvt_hd") p = 64;
      let a = val(p);
      let b = val(p);
      let c = val(p);
      if (i % 4 === 3 && p === 32) b = a ^ BigInt(rnd() & 7);
      if (op.startsWith("fcvt_sh") || op.startsWith("fcvt_dh")) a = r32() & 0xffffn;
      if (op.startsWith("scvtf") || op.startsWith("ucvtf")) {
        if (i % 3 === 0) a = BigInt(rnd() % 5000) - 2500n;
        if (i % 3 === 1) a = (1n << BigInt(rnd() % 64)) + BigInt(rnd() % 5) - 2n;
        a &= p === 64 ? M64 : 0xffffffffn;
      }
      if (op.startsWith("fmadd") && i % 5 === 4) c = (a * 3n) & (p === 64 ? M64 : 0xffffffffn);
      out.push(`${op} ${pick(FPCRS).toString(16)} ${a.toString(16)} ${b.toString(16)} ${c.toString(16)}`);
    }
  }
  return out;
}

export function runReference(bin: string, cases: string[]): string[] {
  const res = spawnSync("qemu-aarch64", [bin], {
    timeout: SYNC_TIMEOUT_MS,
    killSignal: "SIGKILL",
    input: `${cases.join("\n")}\n`,
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
  const outs = res.stdout.trim().split("\n");
  return cases.map((cs, i) => `${cs} ${outs[i]}`);
}

test("fpcore matches qemu-aarch64 golden vectors", () => {
  const bad = check(parse(FP_VECTORS));
  assert.deepEqual(bad.slice(0, 20), []);
});

const live = process.env.FP_LIVE;
test("fpcore live differential against qemu", { skip: !live }, () => {
  const ops = (process.env.FP_OPS ?? "").split(",").filter((x) => x);
  const cases = genCases(ops, Number(process.env.FP_N ?? 50), Number(process.env.FP_SEED ?? 1));
  const bad = check(parse(runReference(live!, cases).join("\n")));
  if (bad.length) console.log(`${bad.length} mismatches\n${bad.slice(0, 40).join("\n")}`);
  assert.equal(bad.length, 0);
});

test("double FMA's exact-product fast path agrees with the full path, bit for bit and flag for flag", () => {
  // Doubles with short mantissas (integers, halves, quarters...) make a*b exact: the fast
  // path's territory. Mixed in: full-width mantissas, zeros, tiny, huge and special values.
  const dv = new DataView(new ArrayBuffer(8));
  const bits = (x: number): [number, number] => {
    dv.setFloat64(0, x, true);
    return [dv.getUint32(4, true), dv.getUint32(0, true)];
  };
  const short = fc
    .tuple(fc.integer({ min: -(2 ** 20), max: 2 ** 20 }), fc.integer({ min: -60, max: 60 }))
    .map(([m, e]) => m * 2 ** e);
  const edge = fc.constantFrom(
    0,
    -0,
    2 ** -1022,
    -(2 ** -1074),
    2 ** 1000,
    1e308,
    Infinity,
    -Infinity,
    NaN,
    1 / 3,
  );
  const value = fc.oneof(
    { weight: 6, arbitrary: short },
    { weight: 1, arbitrary: fc.double() },
    { weight: 1, arbitrary: edge },
  );
  const fpcr = fc.constantFrom(0, 0, 0, 1 << 22, 2 << 22, 3 << 22, 1 << 24, 1 << 25);
  // Near-cancellation down at the bottom of the normal range (results that underflow).
  const tinyShort = fc
    .tuple(fc.integer({ min: 1, max: 2 ** 20 }), fc.integer({ min: -540, max: -500 }))
    .map(([m, e]) => m * 2 ** e);
  const cancel = fc
    .tuple(tinyShort, tinyShort, fc.integer({ min: -(2 ** 30), max: 2 ** 30 }))
    .map(([a, b, k]) => [a, b, -(a * b) + k * 2 ** -1074] as const);
  const triple = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(value, value, value) },
    { weight: 1, arbitrary: cancel },
  );
  fc.assert(
    fc.property(triple, fpcr, ([a, b, c], cr) => {
      const [ah, al] = bits(a);
      const [bh, bl] = bits(b);
      const [ch, cl] = bits(c);
      F.fp.flags = 0;
      F.fpMulAdd(64, ch, cl, ah, al, bh, bl, cr);
      const fast = [R64.hi, R64.lo, F.fp.flags];
      F.fp.flags = 0;
      F.fpMulAddFull(64, ch, cl, ah, al, bh, bl, cr);
      assert.deepEqual(fast, [R64.hi, R64.lo, F.fp.flags], `${a} * ${b} + ${c}, fpcr ${cr.toString(16)}`);
    }),
    { numRuns: 20000 },
  );
});
