/** The 32-bit-halves helpers of alu.ts against a BigInt reference (fast-check). */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  add64,
  asr64,
  clz64,
  decodeBitMasks,
  lsl64,
  lsr64,
  mul64,
  mulHigh64,
  rbit32,
  ror64,
} from "../src/arch/arm64/alu.ts";
import { R64 } from "../src/arch/arm64/ret64.ts";
import { makeCpu } from "./support/snippet.ts";

const c = makeCpu();
const M64 = (1n << 64n) - 1n;
const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: M64 }),
  fc.constantFrom(0n, 1n, M64, 1n << 63n, (1n << 63n) - 1n, 0xffffffffn, 1n << 32n),
);
const halves = (v: bigint): [number, number] => [Number(v & 0xffffffffn), Number(v >> 32n)];
const result = (): bigint => (BigInt(R64.hi >>> 0) << 32n) | BigInt(R64.lo >>> 0);
const s64 = (v: bigint) => BigInt.asIntN(64, v);

test("add64 with carry and flags", () => {
  fc.assert(
    fc.property(u64, u64, fc.integer({ min: 0, max: 1 }), (a, b, cin) => {
      add64(c, ...halves(a), ...halves(b), cin, true);
      const sum = a + b + BigInt(cin);
      assert.equal(result(), sum & M64);
      const f = c.pstate >>> 28;
      const n = (sum >> 63n) & 1n;
      const z = (sum & M64) === 0n ? 1 : 0;
      const cf = sum > M64 ? 1 : 0;
      const v = s64(a) + s64(b) + BigInt(cin) !== s64(sum & M64) ? 1 : 0;
      assert.equal(f, (Number(n) << 3) | (z << 2) | (cf << 1) | v);
    }),
    { numRuns: 3000 },
  );
});

test("shifts, rotate, multiply, clz, rbit", () => {
  fc.assert(
    fc.property(u64, u64, fc.integer({ min: 0, max: 63 }), (a, b, s) => {
      const S = BigInt(s);
      lsl64(...halves(a), s);
      assert.equal(result(), (a << S) & M64);
      lsr64(...halves(a), s);
      assert.equal(result(), a >> S);
      asr64(...halves(a), s);
      assert.equal(result(), BigInt.asUintN(64, s64(a) >> S));
      ror64(...halves(a), s);
      assert.equal(result(), ((a >> S) | (a << (64n - S))) & M64);
      mul64(...halves(a), ...halves(b));
      assert.equal(result(), (a * b) & M64);
      mulHigh64(...halves(a), ...halves(b), false);
      assert.equal(result(), (a * b) >> 64n);
      mulHigh64(...halves(a), ...halves(b), true);
      assert.equal(result(), BigInt.asUintN(64, (s64(a) * s64(b)) >> 64n));
      assert.equal(clz64(...halves(a)), a === 0n ? 64 : 64 - a.toString(2).length);
      const lo = halves(a)[0];
      assert.equal(
        rbit32(lo),
        Number.parseInt(lo.toString(2).padStart(32, "0").split("").reverse().join(""), 2),
      );
    }),
    { numRuns: 3000 },
  );
});

test("decodeBitMasks: known logical immediates and reserved encodings", () => {
  // 0x00ff00ff00ff00ff: N=0 imms=000111 (8 ones in 16-bit elements... esize 16 -> imms 10 0111)
  assert.deepEqual(decodeBitMasks(0, 0b100111, 0, true), [0x00ff00ff, 0x00ff00ff]);
  assert.deepEqual(decodeBitMasks(1, 0b000000, 0, true), [1, 0]);
  // 63 ones rotated right by one: only bit 62 clear.
  assert.deepEqual(decodeBitMasks(1, 0b111110, 1, true), [0xffffffff, 0xbfffffff]);
  assert.equal(decodeBitMasks(1, 0b111111, 0, true), null); // all ones is reserved
  assert.equal(decodeBitMasks(1, 0, 0, false), null); // N=1 needs 64-bit
});
