/**
 * Interesting operand values the generator biases in: integer edge cases and, for FP,
 * signed zeros, infinities, quiet and signalling NaNs, denormals, extreme normals,
 * rounding ties and integer-conversion boundaries.
 */
import type { Rng } from "./prng.ts";

/** 64-bit integer edge values as [lo, hi]. */
const INT64: readonly (readonly [number, number])[] = [
  [0, 0],
  [1, 0],
  [2, 0],
  [0xffffffff, 0xffffffff], // -1
  [0xfffffffe, 0xffffffff], // -2
  [0, 0x80000000], // INT64_MIN
  [0xffffffff, 0x7fffffff], // INT64_MAX
  [0x80000000, 0], // INT32_MIN zero-extended
  [0x80000000, 0xffffffff], // INT32_MIN sign-extended
  [0x7fffffff, 0], // INT32_MAX
  [0xffffffff, 0], // UINT32_MAX
  [0, 1], // 2^32
  [0x80, 0],
  [0xff, 0],
  [0x8000, 0],
  [0xffff, 0],
  [0x1f, 0],
  [0x3f, 0],
  [0x40, 0],
];

/** A random 64-bit register value, biased towards edge cases. Returns [lo, hi]. */
export function randomX(g: Rng): [number, number] {
  const k = g.int(16);
  if (k < 5) {
    const [lo, hi] = g.pick(INT64);
    return [lo, hi];
  }
  if (k < 7) {
    // small positive or negative
    const v = g.range(-300, 300);
    return [v >>> 0, v < 0 ? 0xffffffff : 0];
  }
  if (k < 9) {
    // power of two, or power of two minus one, maybe negated
    const b = g.int(64);
    let lo = b < 32 ? 2 ** b : 0;
    let hi = b >= 32 ? 2 ** (b - 32) : 0;
    if (g.chance(0.3)) {
      // minus one
      if (lo === 0) {
        lo = 0xffffffff;
        hi = hi - 1;
      } else lo = lo - 1;
    }
    if (g.chance(0.25)) {
      lo = ~lo >>> 0;
      hi = ~hi >>> 0;
    }
    return [lo >>> 0, hi >>> 0];
  }
  if (k < 11) {
    // 32-bit value with garbage (or sign) in the high half
    const lo = g.chance(0.5) ? g.u32() : g.pick(INT64)[0];
    const hi = g.pick([0, 0xffffffff, g.u32()]);
    return [lo, hi];
  }
  return [g.u32(), g.u32()];
}

const F64: readonly string[] = [
  "0000000000000000",
  "8000000000000000",
  "7ff0000000000000",
  "fff0000000000000",
  "7ff8000000000000",
  "7ff8000000001234",
  "fff8000000000abc",
  "7ff0000000000001",
  "7ff4000000000000",
  "fff0000000005678",
  "0000000000000001",
  "800fffffffffffff",
  "000fffffffffffff",
  "0010000000000000",
  "8010000000000000",
  "7fefffffffffffff",
  "ffefffffffffffff",
  "3ff0000000000000",
  "bff0000000000000",
  "3fe0000000000000",
  "3ff8000000000000",
  "4004000000000000",
  "c004000000000000",
  "3fdfffffffffffff",
  "41e0000000000000",
  "c1e0000000000000",
  "41dfffffffe00000",
  "41efffffffe00000",
  "41f0000000000000",
  "43e0000000000000",
  "c3e0000000000000",
  "43f0000000000000",
  "40f0000800000000",
  "47efffffe0000000",
  "47effffff0000000",
  "3810000000000000",
  "36a0000000000000",
  "3690000000000000",
  "3ff0000010000000",
  "3ff0000010000001",
  "40effc0000000000",
  "40effe0000000000",
  "3f10000000000000",
  "3e70000000000000",
  "3ff0020000000000",
  "c1e0000000100000",
  "4330000000000001",
  "433fffffffffffff",
];
const F32: readonly number[] = [
  0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fc01234, 0xffc00abc, 0x7f800001, 0x7fa00000,
  0xff812345, 0x00000001, 0x807fffff, 0x007fffff, 0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff, 0x3f800000,
  0xbf800000, 0x3f000000, 0x3fc00000, 0x40200000, 0xc0200000, 0x3effffff, 0x4f000000, 0xcf000000, 0x4effffff,
  0x4f800000, 0x4f7fffff, 0x5f000000, 0xdf000000, 0x5f800000, 0x477fe000, 0x477ff000, 0x38800000, 0x33800000,
  0x33000000, 0x3f801000, 0x3f801001, 0x4b000001, 0x4b7fffff, 0x3f800001,
];
const F16: readonly number[] = [
  0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7e12, 0xfe34, 0x7c01, 0x7d00, 0xfd23, 0x0001, 0x83ff, 0x03ff,
  0x0400, 0x8400, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x3800, 0x3e00, 0x4100, 0xc100, 0x37ff, 0x3c01, 0x6400,
];

/** Writes a random f64 bit pattern (biased) into `b` at `off`. */
function f64Into(g: Rng, b: Uint8Array, off: number): void {
  const k = g.int(10);
  let lo: number;
  let hi: number;
  if (k < 4) {
    const s = g.pick(F64);
    hi = Number.parseInt(s.slice(0, 8), 16);
    lo = Number.parseInt(s.slice(8), 16);
  } else if (k < 8) {
    // a normal number of moderate magnitude, sometimes with few mantissa bits (exact cases)
    const exp = 1023 + g.range(-40, 40);
    hi = ((g.bits(1) << 31) | (exp << 20) | g.bits(20)) >>> 0;
    lo = g.chance(0.3) ? 0 : g.chance(0.3) ? (g.bits(4) << 28) >>> 0 : g.u32();
  } else if (k < 9) {
    const exp = g.pick([
      0,
      1,
      2,
      2046,
      2045,
      1023 + 52,
      1023 + 63,
      1023 + 31,
      1023 - 1022 + 1,
      897,
      896,
      1150,
    ]);
    hi = ((g.bits(1) << 31) | (exp << 20) | g.bits(20)) >>> 0;
    lo = g.u32();
  } else {
    hi = g.u32();
    lo = g.u32();
  }
  put32(b, off, lo);
  put32(b, off + 4, hi);
}

function f32Bits(g: Rng): number {
  const k = g.int(10);
  if (k < 4) return g.pick(F32);
  if (k < 8) {
    const exp = 127 + g.range(-20, 20);
    const man = g.chance(0.3) ? g.bits(6) << 17 : g.bits(23);
    return ((g.bits(1) << 31) | (exp << 23) | man) >>> 0;
  }
  if (k < 9) {
    const exp = g.pick([0, 1, 2, 254, 253, 127 + 23, 127 + 31, 127 + 63, 127 + 15, 112, 113, 102, 142]);
    return ((g.bits(1) << 31) | (exp << 23) | g.bits(23)) >>> 0;
  }
  return g.u32();
}

function f16Bits(g: Rng): number {
  const k = g.int(10);
  if (k < 4) return g.pick(F16);
  if (k < 8) {
    const exp = 15 + g.range(-8, 8);
    return ((g.bits(1) << 15) | (exp << 10) | g.bits(10)) >>> 0;
  }
  if (k < 9) return ((g.bits(1) << 15) | (g.pick([0, 1, 30, 29, 25]) << 10) | g.bits(10)) >>> 0;
  return g.bits(16);
}

/** Fills a 16-byte vector register image at `off` with lanes of one randomly chosen kind. */
export function randomV(g: Rng, b: Uint8Array, off: number, fpBias: number): void {
  const fp = g.chance(fpBias);
  const kind = fp ? g.pick(["f64", "f32", "f32", "f16", "mixed"]) : g.pick(["int", "rand", "rand", "f32"]);
  switch (kind) {
    case "f64":
      f64Into(g, b, off);
      f64Into(g, b, off + 8);
      return;
    case "f32":
      for (let i = 0; i < 4; i++) put32(b, off + i * 4, f32Bits(g));
      return;
    case "f16":
      for (let i = 0; i < 8; i++) put16(b, off + i * 2, f16Bits(g));
      return;
    case "mixed":
      f64Into(g, b, off);
      put32(b, off + 8, f32Bits(g));
      put16(b, off + 12, f16Bits(g));
      put16(b, off + 14, f16Bits(g));
      return;
    case "int": {
      const esize = g.pick([1, 2, 4, 8]);
      for (let i = 0; i < 16; i += esize) {
        const [lo, hi] = randomX(g);
        const v = g.chance(0.5)
          ? lo
          : g.pick([0, 0xffffffff, 0x80808080, 0x7f7f7f7f, 0x80008000, 0x7fff7fff, 1]);
        if (esize === 8) {
          put32(b, off + i, lo);
          put32(b, off + i + 4, hi);
        } else if (esize === 4) put32(b, off + i, v);
        else if (esize === 2) put16(b, off + i, v & 0xffff);
        else b[off + i] = v & 0xff;
      }
      return;
    }
    default:
      for (let i = 0; i < 16; i += 4) put32(b, off + i, g.u32());
  }
}

export function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}
export function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}
