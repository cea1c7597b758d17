/**
 * AdvSIMD copies and permutes, hand-computed. V0 = bytes 00..0f, V1 = 10..1f, V2 = ee..,
 * X3 = 0x8899aabbccddeeff unless a case says otherwise. Vectors are hex in byte order.
 * (test/simd-permute-qemu.test.ts compares random encodings against qemu-aarch64.)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Cpu } from "../src/arch/arm64/cpu.ts";
import { getDecoder } from "../src/arch/arm64/isa.ts";
import { OFF } from "../src/arch/arm64/state.ts";
import { runWords } from "./support/snippet.ts";

const iota = (n: number, from = 0) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff)).toString("hex");
function setV(c: Cpu, n: number, hex: string): void {
  c.r8.set(Buffer.from(hex, "hex"), OFF.V + 16 * n);
}
function getV(c: Cpu, n: number): string {
  return Buffer.from(c.r8.subarray(OFF.V + 16 * n, OFF.V + 16 * n + 16)).toString("hex");
}
function run(word: number, setup?: (c: Cpu) => void): Cpu {
  const { cpu, exit } = runWords([word], (c) => {
    setV(c, 0, iota(16));
    setV(c, 1, iota(16, 0x10));
    setV(c, 2, "ee".repeat(16));
    c.setX(3, 0x8899aabbccddeeffn);
    setup?.(c);
  });
  assert.equal(exit.kind, "exception");
  assert.equal((exit as { ec: number }).ec, 0x3c, `${word.toString(16)} did not run to the BRK`);
  return cpu;
}
const Z8 = "00".repeat(8);

const vectorCases: [string, number, string][] = [
  ["zip1 v2.8b, v0.8b, v1.8b", 0x0e013802, "0010011102120313" + Z8],
  ["zip2 v2.4s, v0.4s, v1.4s", 0x4e817802, "08090a0b18191a1b0c0d0e0f1c1d1e1f"],
  ["uzp1 v2.8h, v0.8h, v1.8h", 0x4e411802, "0001040508090c0d101114151819" + "1c1d"],
  ["uzp2 v2.16b, v0.16b, v1.16b", 0x4e015802, "01030507090b0d0f11131517191b1d1f"],
  ["trn1 v2.4h, v0.4h, v1.4h", 0x0e412802, "0001101104051415" + Z8],
  ["trn2 v2.2d, v0.2d, v1.2d", 0x4ec16802, iota(8, 8) + iota(8, 0x18)],
  ["ext v2.16b, v0.16b, v1.16b, #3", 0x6e011802, iota(13, 3) + "101112"],
  ["ext v2.8b, v0.8b, v1.8b, #7", 0x2e013802, "07" + iota(7, 0x10) + Z8],
  ["dup v2.8h, v0.h[5]", 0x4e160402, "0a0b".repeat(8)],
  ["dup v2.2s, w3", 0x0e040c62, "ffeeddcc".repeat(2) + Z8],
  ["dup v2.2d, x3", 0x4e080c62, "ffeeddccbbaa9988".repeat(2)],
  ["mov v2.s[1], w3", 0x4e0c1c62, "eeeeeeeeffeeddcc" + "ee".repeat(8)],
  ["mov v2.b[15], v0.b[2]", 0x6e1f1402, "ee".repeat(15) + "02"],
  ["mov b2, v0.b[9]", 0x5e130402, "09" + "00".repeat(15)],
  ["mov d2, v0.d[1]", 0x5e180402, iota(8, 8) + Z8],
];

for (const [name, word, want] of vectorCases) {
  test(name, () => assert.equal(getV(run(word), 2), want));
}

test("zip1 v0.16b, v0.16b, v0.16b: destination aliases both sources", () => {
  assert.equal(getV(run(0x4e003800), 0), "0000010102020303040405050606" + "0707");
});

test("tbl: out-of-range indices give 0", () => {
  const c = run(0x4e010002, (c) => setV(c, 1, "0f001005ff010203040506070809" + "0a20"));
  assert.equal(getV(c, 2), "0f000005000102030405060708090a00");
});

test("tbx with three registers wrapping V30, V31, V0: out-of-range keeps Vd, Q=0 clears the top", () => {
  const c = run(0x0e0153c2, (c) => {
    setV(c, 30, iota(16, 0xa0));
    setV(c, 31, iota(16, 0xb0));
    setV(c, 1, "0f001005ff010203" + "2f2f2f2f2f2f2f2f");
  });
  assert.equal(getV(c, 2), "afa0b0a5eea1a2a3" + Z8);
});

test("umov / smov", () => {
  assert.equal(run(0x0e1e3c03).getX(3), 0x0f0en); // umov w3, v0.h[7]
  assert.equal(run(0x4e183c03).getX(3), 0x0f0e0d0c0b0a0908n); // mov x3, v0.d[1]
  const neg = (c: Cpu) => setV(c, 0, iota(16, 0x80));
  assert.equal(run(0x4e1f2c03, neg).getX(3), 0xffffffffffffff8fn); // smov x3, v0.b[15]
  assert.equal(run(0x0e1e2c03, neg).getX(3), 0xffff8f8en); // smov w3, v0.h[7]
});

test("reserved imm5/Q combinations are unallocated", () => {
  const d = getDecoder();
  const reserved = [
    0x0e080402, // dup v2.1d, v0.d[0] (Q=0, D)
    0x0e080c62, // dup v2.1d, x3
    0x0e003c03, // umov with imm5 = 00000
    0x0e083c03, // umov w3, v0.d[0] (Q=0, D)
    0x4e043c03, // umov x3, v0.s[0] (Q=1, S)
    0x0e042c03, // smov w3, v0.s[0]
    0x4e082c03, // smov x3, v0.d[0]
    0x0e041c62, // ins with Q=0
    0x0ec13802, // zip1 with size=11, Q=0
    0x0e010802, // permute opcode 000
    0x2e014002, // ext v2.8b with imm4 = 8
    0x5e100402, // scalar dup imm5 = 10000
  ];
  for (const w of reserved) assert.equal(d.nameOf(w), null, w.toString(16));
});
