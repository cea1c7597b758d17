/** Scalar FP instructions through the CPU: decode, register semantics, FPSR/NZCV. */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Cpu } from "../src/arch/arm64/cpu.ts";
import { I } from "../src/arch/arm64/state.ts";
import { runWords } from "./support/snippet.ts";

const V = (n: number) => I.V + 4 * n;
function setS(c: Cpu, n: number, x: number) {
  c.r[V(n)] = x >>> 0;
  c.r[V(n) + 1] = 0xaaaaaaaa;
  c.r[V(n) + 2] = 0xbbbbbbbb;
  c.r[V(n) + 3] = 0xcccccccc;
}
function setD(c: Cpu, n: number, x: bigint) {
  c.r[V(n)] = Number(x & 0xffffffffn);
  c.r[V(n) + 1] = Number(x >> 32n);
  c.r[V(n) + 2] = 0xbbbbbbbb;
  c.r[V(n) + 3] = 0xcccccccc;
}
const q = (c: Cpu, n: number) => [...c.r.subarray(V(n), V(n) + 4)].map((x) => x.toString(16));
const d = (c: Cpu, n: number) => (BigInt(c.r[V(n) + 1]!) << 32n) | BigInt(c.r[V(n)]!);
function ok(exit: { kind: string; ec?: number }) {
  assert.equal(exit.kind, "exception");
  assert.equal(exit.ec, 0x3c);
}

test("FADD S zeroes the upper bits; FPSR IXC accumulates", () => {
  const { cpu, exit } = runWords([0x1e222820], (c) => {
    setS(c, 1, 0x3f800000);
    setS(c, 2, 0x33800001); // 1 + just over half an ulp
  });
  ok(exit);
  assert.deepEqual(q(cpu, 0), ["3f800001", "0", "0", "0"]);
  assert.equal(cpu.r[I.FPSR], 0x10);
});

test("FMADD D is fused (single rounding)", () => {
  // (1+2^-52)*(1-2^-53) - 1 = 2^-53 - 2^-105 exactly (a separate multiply would give 2^-53)
  const { cpu, exit } = runWords([0x1f420c20], (c) => {
    setD(c, 1, 0x3ff0000000000001n);
    setD(c, 2, 0x3fefffffffffffffn);
    setD(c, 3, 0xbff0000000000000n);
  });
  ok(exit);
  assert.equal(d(cpu, 0), 0x3c9ffffffffffffen);
  assert.equal(cpu.r[I.FPSR], 0);
});

test("FCMP #0.0 with NaN sets C,V; FCCMP uses the immediate when the condition fails", () => {
  let r = runWords([0x1e202028], (c) => setS(c, 1, 0x7fc00000));
  assert.equal(r.cpu.r[I.PSTATE]! >>> 28, 0b0011);
  assert.equal(r.cpu.r[I.FPSR], 0);
  // fccmp d1, d2, #4, ne with Z set -> nzcv = 4
  r = runWords([0x1e621424], (c) => {
    c.r[I.PSTATE] = 0x40000000;
    setD(c, 1, 0x3ff0000000000000n);
    setD(c, 2, 0x4000000000000000n);
  });
  assert.equal(r.cpu.r[I.PSTATE]! >>> 28, 4);
  // condition holds: 1 < 2 -> N
  r = runWords([0x1e621424], (c) => {
    setD(c, 1, 0x3ff0000000000000n);
    setD(c, 2, 0x4000000000000000n);
  });
  assert.equal(r.cpu.r[I.PSTATE]! >>> 28, 8);
});

test("FCSEL, FMOV immediate", () => {
  let r = runWords([0x1e220c20], (c) => {
    c.r[I.PSTATE] = 0x40000000;
    setS(c, 1, 0x11111111);
    setS(c, 2, 0x22222222);
  });
  assert.deepEqual(q(r.cpu, 0), ["11111111", "0", "0", "0"]);
  r = runWords([0x1e6f1000, 0x1e381001]);
  assert.equal(d(r.cpu, 0), 0x3ff8000000000000n);
  assert.deepEqual(q(r.cpu, 1), ["be000000", "0", "0", "0"]);
});

test("conversions: FCVTZS W from D saturates with IOC; FCVTZS X fixed; SCVTF; UCVTF fixed", () => {
  let r = runWords([0x1e780020], (c) => setD(c, 1, 0x41f0000000000000n)); // 2^32
  assert.equal(r.cpu.getX(0), 0x7fffffffn);
  assert.equal(r.cpu.r[I.FPSR], 1);
  r = runWords([0x9e18d820], (c) => setS(c, 1, 0x3fc00000)); // 1.5 * 2^10
  assert.equal(r.cpu.getX(0), 1536n);
  r = runWords([0x9e620020], (c) => c.setX(1, -3n & 0xffffffffffffffffn));
  assert.equal(d(r.cpu, 0), 0xc008000000000000n);
  r = runWords([0x1e03f420], (c) => c.setX(1, 0xffffffff0000000cn)); // w1 = 12, /8
  assert.deepEqual(q(r.cpu, 0), ["3fc00000", "0", "0", "0"]);
});

test("FMOV to/from the top half of V", () => {
  const r = runWords([0x9eae0020, 0x9eaf0002], (c) => {
    c.r[V(1) + 2] = 0x89abcdef;
    c.r[V(1) + 3] = 0x01234567;
    c.setX(0, 0n);
    c.r[V(2)] = 0x55;
  });
  assert.equal(r.cpu.getX(0), 0x0123456789abcdefn);
  assert.deepEqual(q(r.cpu, 2), ["55", "0", "89abcdef", "1234567"]);
});

test("FCVT H from D, FRINTA, FNMUL", () => {
  let r = runWords([0x1e63c020], (c) => setD(c, 1, 0x3ff8000000000000n));
  assert.deepEqual(q(r.cpu, 0), ["3e00", "0", "0", "0"]);
  r = runWords([0x1e264020], (c) => setS(c, 1, 0xc0200000)); // -2.5 -> -3
  assert.deepEqual(q(r.cpu, 0), ["c0400000", "0", "0", "0"]);
  r = runWords([0x1e628820], (c) => {
    setD(c, 1, 0x4000000000000000n);
    setD(c, 2, 0x4008000000000000n);
  });
  assert.equal(d(r.cpu, 0), 0xc018000000000000n);
});

test("half-precision arithmetic (FP16, Armv8.2) is UNDEFINED", () => {
  // fadd h0, h1, h2 = 0x1ee22820
  const r = runWords([0x1ee22820]);
  assert.equal(r.exit.kind, "exception");
  assert.equal((r.exit as { ec: number }).ec, 0);
});
