/**
 * Building blocks shared by the integer and SIMD&FP load/store executors
 * (load-store.ts, load-store-atomic.ts): address arithmetic on 32-bit halves and
 * "element" accessors that move one register's worth of data between memory and a
 * scratch buffer, so that a multi-register load can finish every memory access before it
 * writes any register (a faulting instruction changes nothing).
 */
import type { Cpu } from "../cpu.ts";
import { R64 } from "../ret64.ts";
import { I, OFF } from "../state.ts";

const TWO32 = 4294967296;

/** Scratch for loaded data: element 0 at S[0..3], element 1 at S[4..7]. */
export const S = new Uint32Array(8);

/** Outputs of the address helpers. */
export let aLo = 0;
export let aHi = 0;

/** (aLo, aHi) = 64-bit register slot `b` + small signed `off` (|off| < 2^32). */
export function addrImm(r: Uint32Array, b: number, off: number): void {
  const s = r[b]! + off;
  const lo = s >>> 0;
  aLo = lo;
  aHi = (r[b + 1]! + (s - lo) / TWO32) >>> 0;
}

/** (aLo, aHi) = (lo, hi) + small signed `off`. */
export function addImm(lo: number, hi: number, off: number): void {
  const s = lo + off;
  const l = s >>> 0;
  aLo = l;
  aHi = (hi + (s - l) / TWO32) >>> 0;
}

/** (aLo, aHi) = (blo, bhi) + (olo, ohi), modulo 2^64. */
export function add64(blo: number, bhi: number, olo: number, ohi: number): void {
  const s = blo + olo;
  aLo = s >>> 0;
  aHi = (bhi + ohi + (s >= TWO32 ? 1 : 0)) >>> 0;
}

/**
 * One register's worth of a transfer. `ld` loads from (lo, hi) into S[o..]; `put` writes
 * register `t` from S[o..]; `st` stores register `t` to (lo, hi).
 */
export interface Elem {
  readonly bytes: number;
  readonly fp: boolean;
  ld(c: Cpu, lo: number, hi: number, o: number): void;
  put(c: Cpu, t: number, o: number): void;
  st(c: Cpu, lo: number, hi: number, t: number): void;
}

/** How a loaded integer is extended: zero, sign to 32 bits (W), sign to 64 bits (X). */
export const EXT = { ZERO: 0, SIGN32: 1, SIGN64: 2 } as const;

function putX(c: Cpu, t: number, o: number): void {
  const i = t === 31 ? I.DISCARD : t * 2;
  c.r[i] = S[o]!;
  c.r[i + 1] = S[o + 1]!;
}

function gprSlot(t: number): number {
  return t === 31 ? I.ZERO : t * 2;
}

function makeGpr(sizeLog: number, ext: number): Elem {
  let ld: Elem["ld"];
  let st: Elem["st"];
  switch (sizeLog) {
    case 0:
      st = (c, lo, hi, t) => c.st8(lo, hi, c.r[gprSlot(t)]! & 0xff);
      if (ext === EXT.ZERO)
        ld = (c, lo, hi, o) => {
          S[o] = c.ld8(lo, hi);
          S[o + 1] = 0;
        };
      else if (ext === EXT.SIGN32)
        ld = (c, lo, hi, o) => {
          S[o] = (c.ld8(lo, hi) << 24) >> 24;
          S[o + 1] = 0;
        };
      else
        ld = (c, lo, hi, o) => {
          const v = (c.ld8(lo, hi) << 24) >> 24;
          S[o] = v;
          S[o + 1] = v >> 31;
        };
      break;
    case 1:
      st = (c, lo, hi, t) => c.st16(lo, hi, c.r[gprSlot(t)]! & 0xffff);
      if (ext === EXT.ZERO)
        ld = (c, lo, hi, o) => {
          S[o] = c.ld16(lo, hi);
          S[o + 1] = 0;
        };
      else if (ext === EXT.SIGN32)
        ld = (c, lo, hi, o) => {
          S[o] = (c.ld16(lo, hi) << 16) >> 16;
          S[o + 1] = 0;
        };
      else
        ld = (c, lo, hi, o) => {
          const v = (c.ld16(lo, hi) << 16) >> 16;
          S[o] = v;
          S[o + 1] = v >> 31;
        };
      break;
    case 2:
      st = (c, lo, hi, t) => c.st32(lo, hi, c.r[gprSlot(t)]!);
      if (ext === EXT.SIGN64)
        ld = (c, lo, hi, o) => {
          const v = c.ld32(lo, hi) | 0;
          S[o] = v;
          S[o + 1] = v >> 31;
        };
      else
        ld = (c, lo, hi, o) => {
          S[o] = c.ld32(lo, hi);
          S[o + 1] = 0;
        };
      break;
    default:
      st = (c, lo, hi, t) => {
        const i = gprSlot(t);
        c.st64(lo, hi, c.r[i]!, c.r[i + 1]!);
      };
      ld = (c, lo, hi, o) => {
        c.ld64(lo, hi);
        S[o] = R64.lo;
        S[o + 1] = R64.hi;
      };
  }
  return { bytes: 1 << sizeLog, fp: false, ld, st, put: putX };
}

const GPR: Elem[][] = [0, 1, 2, 3].map((s) => [EXT.ZERO, EXT.SIGN32, EXT.SIGN64].map((e) => makeGpr(s, e)));

/** General-purpose register element of 2^sizeLog bytes. */
export function gprElem(sizeLog: number, ext: number): Elem {
  return GPR[sizeLog]![ext]!;
}

function putV(c: Cpu, t: number, o: number): void {
  const i = I.V + 4 * t;
  const r = c.r;
  r[i] = S[o]!;
  r[i + 1] = S[o + 1]!;
  r[i + 2] = S[o + 2]!;
  r[i + 3] = S[o + 3]!;
}

function makeFp(sizeLog: number): Elem {
  let ld: Elem["ld"];
  let st: Elem["st"];
  switch (sizeLog) {
    case 0:
      ld = (c, lo, hi, o) => {
        S[o] = c.ld8(lo, hi);
        S[o + 1] = 0;
        S[o + 2] = 0;
        S[o + 3] = 0;
      };
      st = (c, lo, hi, t) => c.st8(lo, hi, c.r8[OFF.V + 16 * t]!);
      break;
    case 1:
      ld = (c, lo, hi, o) => {
        S[o] = c.ld16(lo, hi);
        S[o + 1] = 0;
        S[o + 2] = 0;
        S[o + 3] = 0;
      };
      st = (c, lo, hi, t) => c.st16(lo, hi, c.r[I.V + 4 * t]! & 0xffff);
      break;
    case 2:
      ld = (c, lo, hi, o) => {
        S[o] = c.ld32(lo, hi);
        S[o + 1] = 0;
        S[o + 2] = 0;
        S[o + 3] = 0;
      };
      st = (c, lo, hi, t) => c.st32(lo, hi, c.r[I.V + 4 * t]!);
      break;
    case 3:
      ld = (c, lo, hi, o) => {
        c.ld64(lo, hi);
        S[o] = R64.lo;
        S[o + 1] = R64.hi;
        S[o + 2] = 0;
        S[o + 3] = 0;
      };
      st = (c, lo, hi, t) => {
        const i = I.V + 4 * t;
        c.st64(lo, hi, c.r[i]!, c.r[i + 1]!);
      };
      break;
    default:
      ld = (c, lo, hi, o) => {
        c.ld64(lo, hi);
        S[o] = R64.lo;
        S[o + 1] = R64.hi;
        addImm(lo, hi, 8);
        c.ld64(aLo, aHi);
        S[o + 2] = R64.lo;
        S[o + 3] = R64.hi;
      };
      st = (c, lo, hi, t) => {
        const i = I.V + 4 * t;
        const r = c.r;
        c.st64(lo, hi, r[i]!, r[i + 1]!);
        addImm(lo, hi, 8);
        c.st64(aLo, aHi, r[i + 2]!, r[i + 3]!);
      };
  }
  return { bytes: 1 << sizeLog, fp: true, ld, st, put: putV };
}

const FP: Elem[] = [0, 1, 2, 3, 4].map(makeFp);

/** SIMD&FP register element (B, H, S, D, Q for sizeLog 0..4); loads zero the rest of Vt. */
export function fpElem(sizeLog: number): Elem {
  return FP[sizeLog]!;
}
