/**
 * 64-bit integer arithmetic on 32-bit halves (the representation chosen in docs/STATE.md).
 * Results come back through the CPU's scratch fields `R64.lo`/`R64.hi` so nothing allocates.
 * Every helper is checked against a BigInt reference in test/alu.test.ts.
 */
import type { Cpu } from "./cpu.ts";
import { R64 } from "./ret64.ts";
import { I } from "./state.ts";

const TWO32 = 4294967296;

/** Writes NZCV into PSTATE. */
export function setNZCV(c: Cpu, n: number, z: number, cf: number, v: number): void {
  const r = c.r;
  r[I.PSTATE] = (r[I.PSTATE]! & 0x0fffffff) | (n << 31) | (z << 30) | (cf << 29) | (v << 28);
}

/** NZCV as a 4-bit number (N=8, Z=4, C=2, V=1). */
export function nzcv(c: Cpu): number {
  return c.r[I.PSTATE]! >>> 28;
}

/** ConditionHolds (Arm ARM J1.3) for one condition and NZCV value (the reference). */
function conditionHoldsSlow(cond: number, f: number): boolean {
  const n = (f >>> 3) & 1;
  const z = (f >>> 2) & 1;
  const cf = (f >>> 1) & 1;
  const v = f & 1;
  let result: boolean;
  switch (cond >>> 1) {
    case 0:
      result = z === 1;
      break;
    case 1:
      result = cf === 1;
      break;
    case 2:
      result = n === 1;
      break;
    case 3:
      result = v === 1;
      break;
    case 4:
      result = cf === 1 && z === 0;
      break;
    case 5:
      result = n === v;
      break;
    case 6:
      result = n === v && z === 0;
      break;
    default:
      return true; // AL and NV both always hold
  }
  return (cond & 1) !== 0 ? !result : result;
}

/** COND_TABLE[cond << 4 | NZCV] = 1 when the condition holds: one load per B.cond/CSEL. */
const COND_TABLE = (() => {
  const t = new Uint8Array(256);
  for (let cond = 0; cond < 16; cond++)
    for (let f = 0; f < 16; f++) t[(cond << 4) | f] = conditionHoldsSlow(cond, f) ? 1 : 0;
  return t;
})();

/** ConditionHolds (Arm ARM J1.3): cond is the 4-bit condition code. */
export function conditionHolds(c: Cpu, cond: number): boolean {
  return COND_TABLE[(cond << 4) | (c.r[I.PSTATE]! >>> 28)] === 1;
}

/**
 * AddWithCarry for 64 bits: (alo,ahi) + (blo,bhi) + carry. Result in R64.lo/R64.hi;
 * flags written when `flags`.
 */
export function add64(
  c: Cpu,
  alo: number,
  ahi: number,
  blo: number,
  bhi: number,
  carry: number,
  flags: boolean,
): void {
  const l = alo + blo + carry;
  const lc = l >= TWO32 ? 1 : 0;
  const h = ahi + bhi + lc;
  const rlo = l >>> 0;
  const rhi = h >>> 0;
  R64.lo = rlo;
  R64.hi = rhi;
  if (flags) {
    const v = (~(ahi ^ bhi) & (ahi ^ rhi)) >>> 31;
    setNZCV(c, rhi >>> 31, (rlo | rhi) === 0 ? 1 : 0, h >= TWO32 ? 1 : 0, v);
  }
}

/**
 * SUBS for 64 bits, (alo,ahi) - (blo,bhi): the result in R64.lo/R64.hi and NZCV in PSTATE
 * (C = no borrow; V = operands of different sign and a result whose sign differs from a's).
 * The compare of nearly every compiled loop: inline arithmetic, no AddWithCarry.
 */
export function subs64(c: Cpu, alo: number, ahi: number, blo: number, bhi: number): void {
  const l = alo - blo;
  const h = ahi - bhi - (l < 0 ? 1 : 0);
  const lo = l >>> 0;
  const hi = h >>> 0;
  const v = ((ahi ^ bhi) & (ahi ^ hi)) >>> 31;
  const r = c.r;
  r[I.PSTATE] =
    (r[I.PSTATE]! & 0x0fffffff) |
    (hi & 0x80000000) |
    ((lo | hi) === 0 ? 0x40000000 : 0) |
    (h >= 0 ? 0x20000000 : 0) |
    (v << 28);
  R64.lo = lo;
  R64.hi = hi;
}

/** SUBS for 32 bits: returns a - b (unsigned), NZCV in PSTATE. */
export function subs32(c: Cpu, a: number, b: number): number {
  const s = a - b;
  const res = s >>> 0;
  const v = ((a ^ b) & (a ^ res)) >>> 31;
  const r = c.r;
  r[I.PSTATE] =
    (r[I.PSTATE]! & 0x0fffffff) |
    (res & 0x80000000) |
    (res === 0 ? 0x40000000 : 0) |
    (s >= 0 ? 0x20000000 : 0) |
    (v << 28);
  return res;
}

/** ADD/SUB for 32 bits without carry in, setting NZCV when `flags` (ADDS/SUBS): returns the result. */
export function addSub32(c: Cpu, a: number, b: number, sub: boolean, flags: boolean): number {
  if (sub && flags) return subs32(c, a, b);
  const s = sub ? a - b : a + b;
  const res = s >>> 0;
  if (flags) {
    const v = (~(a ^ b) & (a ^ res)) >>> 31;
    const r = c.r;
    r[I.PSTATE] =
      (r[I.PSTATE]! & 0x0fffffff) |
      (res & 0x80000000) |
      (res === 0 ? 0x40000000 : 0) |
      (s > 0xffffffff ? 0x20000000 : 0) |
      (v << 28);
  }
  return res;
}

/** AddWithCarry for 32 bits; result zero-extended in R64.lo (R64.hi = 0). */
export function add32(c: Cpu, a: number, b: number, carry: number, flags: boolean): void {
  const s = (a >>> 0) + (b >>> 0) + carry;
  const res = s >>> 0;
  R64.lo = res;
  R64.hi = 0;
  if (flags) {
    const v = (~(a ^ b) & (a ^ res)) >>> 31;
    setNZCV(c, res >>> 31, res === 0 ? 1 : 0, s >= TWO32 ? 1 : 0, v);
  }
}

/** Logical shift left of a 64-bit value by 0..63. */
export function lsl64(lo: number, hi: number, s: number): void {
  if (s === 0) {
    R64.lo = lo >>> 0;
    R64.hi = hi >>> 0;
  } else if (s < 32) {
    R64.hi = ((hi << s) | (lo >>> (32 - s))) >>> 0;
    R64.lo = (lo << s) >>> 0;
  } else {
    R64.hi = (lo << (s - 32)) >>> 0;
    R64.lo = 0;
  }
}

export function lsr64(lo: number, hi: number, s: number): void {
  if (s === 0) {
    R64.lo = lo >>> 0;
    R64.hi = hi >>> 0;
  } else if (s < 32) {
    R64.lo = ((lo >>> s) | (hi << (32 - s))) >>> 0;
    R64.hi = hi >>> s;
  } else {
    R64.lo = hi >>> (s - 32);
    R64.hi = 0;
  }
}

export function asr64(lo: number, hi: number, s: number): void {
  if (s === 0) {
    R64.lo = lo >>> 0;
    R64.hi = hi >>> 0;
  } else if (s < 32) {
    R64.lo = ((lo >>> s) | (hi << (32 - s))) >>> 0;
    R64.hi = (hi >> s) >>> 0;
  } else {
    R64.lo = (hi >> (s - 32)) >>> 0;
    R64.hi = (hi >> 31) >>> 0;
  }
}

export function ror64(lo: number, hi: number, s: number): void {
  s &= 63;
  if (s === 0) {
    R64.lo = lo >>> 0;
    R64.hi = hi >>> 0;
    return;
  }
  if (s >= 32) {
    const t = lo;
    lo = hi;
    hi = t;
    s -= 32;
    if (s === 0) {
      R64.lo = lo >>> 0;
      R64.hi = hi >>> 0;
      return;
    }
  }
  R64.lo = ((lo >>> s) | (hi << (32 - s))) >>> 0;
  R64.hi = ((hi >>> s) | (lo << (32 - s))) >>> 0;
}

/** Shift by type (0 LSL, 1 LSR, 2 ASR, 3 ROR) for 64-bit values. */
export function shift64(type: number, lo: number, hi: number, s: number): void {
  switch (type) {
    case 0:
      lsl64(lo, hi, s);
      return;
    case 1:
      lsr64(lo, hi, s);
      return;
    case 2:
      asr64(lo, hi, s);
      return;
    default:
      ror64(lo, hi, s);
  }
}

/** Shift by type for 32-bit values (s in 0..31). */
export function shift32(type: number, v: number, s: number): number {
  switch (type) {
    case 0:
      return (v << s) >>> 0;
    case 1:
      return v >>> s;
    case 2:
      return (v >> s) >>> 0;
    default:
      return s === 0 ? v >>> 0 : ((v >>> s) | (v << (32 - s))) >>> 0;
  }
}

/** Low 64 bits of a 64x64 multiply (via 16-bit limbs; exact, no allocation). */
export function mul64(alo: number, ahi: number, blo: number, bhi: number): void {
  const a48 = ahi >>> 16;
  const a32 = ahi & 0xffff;
  const a16 = alo >>> 16;
  const a00 = alo & 0xffff;
  const b48 = bhi >>> 16;
  const b32 = bhi & 0xffff;
  const b16 = blo >>> 16;
  const b00 = blo & 0xffff;
  let c48 = 0;
  let c32 = 0;
  let c16 = 0;
  let c00 = 0;
  c00 += a00 * b00;
  c16 += c00 >>> 16;
  c00 &= 0xffff;
  c16 += a16 * b00;
  c32 += c16 >>> 16;
  c16 &= 0xffff;
  c16 += a00 * b16;
  c32 += c16 >>> 16;
  c16 &= 0xffff;
  c32 += a32 * b00;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c32 += a16 * b16;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c32 += a00 * b32;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c48 += a48 * b00 + a32 * b16 + a16 * b32 + a00 * b48;
  c48 &= 0xffff;
  R64.lo = ((c16 << 16) | c00) >>> 0;
  R64.hi = ((c48 << 16) | c32) >>> 0;
}

/** High 64 bits of a 64x64 multiply, signed or unsigned (SMULH/UMULH). */
export function mulHigh64(alo: number, ahi: number, blo: number, bhi: number, signed: boolean): void {
  let a = (BigInt(ahi >>> 0) << 32n) | BigInt(alo >>> 0);
  let b = (BigInt(bhi >>> 0) << 32n) | BigInt(blo >>> 0);
  if (signed) {
    a = BigInt.asIntN(64, a);
    b = BigInt.asIntN(64, b);
  }
  const p = BigInt.asUintN(64, (a * b) >> 64n);
  R64.lo = Number(p & 0xffffffffn);
  R64.hi = Number(p >> 32n);
}

/** Count leading zeros of a 64-bit value. */
export function clz64(lo: number, hi: number): number {
  return hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
}

/** Reverses the bits of a 32-bit word. */
export function rbit32(v: number): number {
  v = ((v >>> 1) & 0x55555555) | ((v & 0x55555555) << 1);
  v = ((v >>> 2) & 0x33333333) | ((v & 0x33333333) << 2);
  v = ((v >>> 4) & 0x0f0f0f0f) | ((v & 0x0f0f0f0f) << 4);
  v = ((v >>> 8) & 0x00ff00ff) | ((v & 0x00ff00ff) << 8);
  return ((v >>> 16) | (v << 16)) >>> 0;
}

/** Byte-reverses a 32-bit word. */
export function rev32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** Reads register slot `i` as an unsigned BigInt (slow path helper). */
export function big(c: Cpu, i: number): bigint {
  return (BigInt(c.r[i + 1]!) << 32n) | BigInt(c.r[i]!);
}

/** Writes an unsigned 64-bit BigInt into register slot `i`. */
export function setBig(c: Cpu, i: number, v: bigint): void {
  v = BigInt.asUintN(64, v);
  c.r[i] = Number(v & 0xffffffffn);
  c.r[i + 1] = Number(v >> 32n);
}

/**
 * DecodeBitMasks (Arm ARM J1.1.3) for logical immediates: returns [lo, hi] of wmask,
 * or null when the encoding is reserved.
 */
export function decodeBitMasks(
  n: number,
  imms: number,
  immr: number,
  is64: boolean,
): [number, number] | null {
  const combined = (n << 6) | (~imms & 0x3f);
  if (combined === 0) return null;
  const len = 31 - Math.clz32(combined);
  if (len < 1) return null;
  if (!is64 && len > 5) return null;
  const levels = (1 << len) - 1;
  const s = imms & levels;
  const r = immr & levels;
  if (s === levels) return null;
  const esize = 1 << len;
  let welem = (1n << BigInt(s + 1)) - 1n;
  // ROR(welem, r) within esize
  const emask = (1n << BigInt(esize)) - 1n;
  welem = ((welem >> BigInt(r)) | (welem << BigInt(esize - r))) & emask;
  let v = 0n;
  for (let i = 0; i < 64; i += esize) v |= welem << BigInt(i);
  if (!is64) v &= 0xffffffffn;
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}
