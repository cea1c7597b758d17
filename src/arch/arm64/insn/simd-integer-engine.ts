/**
 * The lane engine behind the AdvSIMD integer executors.
 *
 * Every executor copies its source registers into a small scratch area first (slot A = Vn,
 * B = Vm, D = old Vd, R = result), computes lane by lane with a per-lane kernel, then
 * copies R back to Vd. So Vd may alias any source, and nothing in Vd changes before all
 * lanes are computed.
 *
 * Kernels work on exact integers: for lanes of up to 32 bits on JS numbers (every value
 * they produce stays below 2^53 or is a power-of-two multiple, so it is exact), for
 * 64-bit lanes on BigInt (the slow path). Storing into a typed-array lane truncates
 * modulo 2^esize, which is exactly the Arm ARM's `result<esize-1:0>`.
 */
import type { Cpu } from "../cpu.ts";
import { FPSR_QC } from "../simd-util.ts";
import { I } from "../state.ts";

const SCR = new ArrayBuffer(64);
/** The scratch area as words: A = [0,4), B = [4,8), D = [8,12), R = [12,16). */
export const S32 = new Uint32Array(SCR);
export const SLOT = { A: 0, B: 16, D: 32, R: 48 } as const;
export type Slot = keyof typeof SLOT;

export type NumView = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;
export type BigView = BigUint64Array | BigInt64Array;
export type View = NumView | BigView;

const VIEWS: Record<string, View> = {
  u8: new Uint8Array(SCR),
  s8: new Int8Array(SCR),
  u16: new Uint16Array(SCR),
  s16: new Int16Array(SCR),
  u32: new Uint32Array(SCR),
  s32: new Int32Array(SCR),
  u64: new BigUint64Array(SCR),
  s64: new BigInt64Array(SCR),
};

export function view(esize: number, signed: boolean): View {
  return VIEWS[(signed ? "s" : "u") + esize]!;
}

/** One operand of the lane loop: lane i is `v[base + i * stride]`. */
export interface Opnd {
  readonly v: View;
  readonly base: number;
  readonly stride: number;
}

/** Operand in `slot` with lanes of `esize` bits, starting at lane `lane0`. */
export function opnd(slot: Slot, esize: number, signed: boolean, lane0 = 0, stride = 1): Opnd {
  return { v: view(esize, signed), base: SLOT[slot] / (esize >> 3) + lane0, stride };
}

export type KN = (a: number, b: number, d: number) => number;
export type KB = (a: bigint, b: bigint, d: bigint) => bigint;

// ---------------------------------------------------------------------------
// Saturation (Arm ARM SatQ / SignedSatQ / UnsignedSatQ): set `sat` when clamping.

let sat = false;

export function satN(v: number, min: number, max: number): number {
  if (v > max) {
    sat = true;
    return max;
  }
  if (v < min) {
    sat = true;
    return min;
  }
  return v;
}
export function satB(v: bigint, min: bigint, max: bigint): bigint {
  if (v > max) {
    sat = true;
    return max;
  }
  if (v < min) {
    sat = true;
    return min;
  }
  return v;
}
/** [min, max] of an esize-bit integer. */
export function boundsN(esize: number, unsigned: boolean): [number, number] {
  return unsigned ? [0, 2 ** esize - 1] : [-(2 ** (esize - 1)), 2 ** (esize - 1) - 1];
}
export function boundsB(esize: number, unsigned: boolean): [bigint, bigint] {
  const e = BigInt(esize);
  return unsigned ? [0n, (1n << e) - 1n] : [-(1n << (e - 1n)), (1n << (e - 1n)) - 1n];
}
/** Clears the saturation latch (call before a lane loop). */
export function satReset(): void {
  sat = false;
}
/** After a lane loop: if any lane saturated, set FPSR.QC. */
export function satCommit(c: Cpu): void {
  if (sat) {
    c.r[I.FPSR] = c.r[I.FPSR]! | FPSR_QC;
    sat = false;
  }
}

// ---------------------------------------------------------------------------
// Moving registers in and out of the scratch area

export function loadSlot(r: Uint32Array, reg: number, word: number): void {
  const s = I.V + 4 * reg;
  S32[word] = r[s]!;
  S32[word + 1] = r[s + 1]!;
  S32[word + 2] = r[s + 2]!;
  S32[word + 3] = r[s + 3]!;
}

/** Writes the R slot to Vd: `out` bytes (16, 8, 4, 2 or 1); the rest of Vd is zeroed. */
export function storeR(r: Uint32Array, rd: number, out: number): void {
  const w = I.V + 4 * rd;
  if (out === 16) {
    r[w] = S32[12]!;
    r[w + 1] = S32[13]!;
    r[w + 2] = S32[14]!;
    r[w + 3] = S32[15]!;
    return;
  }
  r[w + 2] = 0;
  r[w + 3] = 0;
  if (out === 8) {
    r[w] = S32[12]!;
    r[w + 1] = S32[13]!;
    return;
  }
  r[w + 1] = 0;
  r[w] = out === 4 ? S32[12]! : out === 2 ? S32[12]! & 0xffff : S32[12]! & 0xff;
}

// ---------------------------------------------------------------------------
// The generic lane executor

export interface Spec {
  /** Number of result lanes computed. */
  n: number;
  rn: number;
  /** -1 when there is no second source register. */
  rm: number;
  rd: number;
  a: Opnd;
  b?: Opnd;
  d?: Opnd;
  r: Opnd;
  /** Kernel on numbers (every operand at most 32 bits) ... */
  kn?: KN;
  /** ... or on BigInt (some operand is 64-bit). */
  kb?: KB;
  /** Copy old Vd into slot D (accumulating ops). */
  loadD?: boolean;
  /** Copy old Vd into slot R first (writes to the upper half only, insert ops). */
  preR?: boolean;
  /** 64-bit pairwise: place Vm's low half right after Vn's low half (slot A). */
  halfConcat?: boolean;
  /** Bytes written to Vd (the rest is zeroed). */
  out: number;
  /**
   * Widening to 64-bit lanes without BigInt: `kn` on the (at most 32-bit) sources gives an
   * exact number x (|x| < 2^53, or a power-of-two multiple); the 64-bit result lane is
   * x (acc 0), or the 64-bit lane of slot `from` plus/minus x (acc 1 / -1).
   */
  wide?: { acc: 0 | 1 | -1; from: "A" | "D" };
}

function isBig(v: View): v is BigView {
  return v instanceof BigInt64Array || v instanceof BigUint64Array;
}

export function build(s: Spec): (c: Cpu) => void {
  const { n, rn, rm, rd, out } = s;
  const loadD = s.loadD ?? false;
  const preR = s.preR ?? false;
  const half = s.halfConcat ?? false;
  const a = s.a;
  const b = s.b ?? s.a;
  const d = s.d ?? s.a;
  const rr = s.r;
  const anyBig = isBig(a.v) || isBig(b.v) || isBig(d.v) || isBig(rr.v);
  const load = (c: Cpu): Uint32Array => {
    c.checkFp();
    const r = c.r;
    loadSlot(r, rn, 0);
    if (rm >= 0) loadSlot(r, rm, 4);
    if (loadD) loadSlot(r, rd, 8);
    if (preR) loadSlot(r, rd, 12);
    if (half) {
      S32[2] = S32[4]!;
      S32[3] = S32[5]!;
    }
    sat = false;
    return r;
  };
  if (s.wide !== undefined && s.kn !== undefined) {
    const k = s.kn;
    const acc = s.wide.acc;
    const fw = s.wide.from === "A" ? 0 : 8;
    const av = a.v as NumView,
      ab = a.base,
      as = a.stride;
    const bv = (s.b ?? s.a).v as NumView,
      bb = (s.b ?? s.a).base,
      bs = (s.b ?? s.a).stride;
    return (c) => {
      const r = load(c);
      for (let i = 0; i < n; i++) {
        const x = k(av[ab + i * as]!, bv[bb + i * bs]!, 0) * (acc < 0 ? -1 : 1);
        let xhi = Math.floor(x / 4294967296);
        let lo = x - xhi * 4294967296; // in [0, 2^32)
        if (acc !== 0) {
          lo += S32[fw + 2 * i]!;
          xhi += S32[fw + 2 * i + 1]! + (lo > 0xffffffff ? 1 : 0);
        }
        S32[12 + 2 * i] = lo;
        S32[13 + 2 * i] = xhi;
      }
      storeR(r, rd, out);
    };
  }
  if (!anyBig) {
    const k = s.kn;
    if (k === undefined) throw new Error("lane spec without a number kernel");
    const av = a.v as NumView,
      ab = a.base,
      as = a.stride;
    const bv = b.v as NumView,
      bb = b.base,
      bs = b.stride;
    const dv = d.v as NumView,
      db = d.base,
      ds = d.stride;
    const rv = rr.v as NumView,
      rb = rr.base;
    return (c) => {
      const r = load(c);
      for (let i = 0; i < n; i++) rv[rb + i] = k(av[ab + i * as]!, bv[bb + i * bs]!, dv[db + i * ds]!);
      if (sat) satCommit(c);
      storeR(r, rd, out);
    };
  }
  const k = s.kb;
  if (k === undefined) throw new Error("lane spec without a BigInt kernel");
  const av = a.v,
    ab = a.base,
    as = a.stride;
  const bv = b.v,
    bb = b.base,
    bs = b.stride;
  const dv = d.v,
    db = d.base,
    ds = d.stride;
  const rv = rr.v,
    rb = rr.base;
  if (isBig(av) && isBig(bv) && isBig(dv) && isBig(rv)) {
    return (c) => {
      const r = load(c);
      for (let i = 0; i < n; i++) rv[rb + i] = k(av[ab + i * as]!, bv[bb + i * bs]!, dv[db + i * ds]!);
      if (sat) satCommit(c);
      storeR(r, rd, out);
    };
  }
  // Mixed widths (widening to or narrowing from 64-bit lanes).
  const get = (v: View, i: number): bigint => (isBig(v) ? v[i]! : BigInt(v[i]!));
  const rbits = BigInt(rv.BYTES_PER_ELEMENT * 8);
  const rBig = isBig(rv);
  return (c) => {
    const r = load(c);
    for (let i = 0; i < n; i++) {
      const x = k(get(av, ab + i * as), get(bv, bb + i * bs), get(dv, db + i * ds));
      if (rBig) (rv as BigView)[rb + i] = x;
      else (rv as NumView)[rb + i] = Number(BigInt.asUintN(Number(rbits), x));
    }
    if (sat) satCommit(c);
    storeR(r, rd, out);
  };
}
