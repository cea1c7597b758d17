/**
 * Shared helpers for AdvSIMD executors: lane access on the V registers, a scratch area
 * for operands (so that Vd may alias Vn/Vm), FPSR.QC handling and saturation.
 *
 * Lanes are little-endian: element i of size e bytes of Vn is at byte OFF.V + 16n + i*e
 * of the vCPU block (Arm ARM: Elem[V[n], i, esize]).
 */
import type { Cpu } from "./cpu.ts";
import { R64 } from "./ret64.ts";
import { I } from "./state.ts";

/** FPSR.QC, the cumulative saturation flag (Arm ARM C5.2.10). */
export const FPSR_QC = 1 << 27;

// ---------------------------------------------------------------------------
// Lane access directly on a vCPU (for other classes: permutes, loads/stores, tests)

let viewCpu: Cpu | null = null;
let u16v: Uint16Array = new Uint16Array(0);
let s8v: Int8Array = new Int8Array(0);
let s16v: Int16Array = new Int16Array(0);
let s32v: Int32Array = new Int32Array(0);

function views(c: Cpu): void {
  if (viewCpu === c) return;
  const b = c.r8.buffer;
  const o = c.r8.byteOffset;
  const len = c.r8.byteLength;
  u16v = new Uint16Array(b, o, len >> 1);
  s8v = new Int8Array(b, o, len);
  s16v = new Int16Array(b, o, len >> 1);
  s32v = new Int32Array(b, o, len >> 2);
  viewCpu = c;
}

/** Byte offset (in the vCPU block) of element `i` of size `esize` bits of Vn. */
export function laneOffset(n: number, esize: number, i: number): number {
  return 336 + 16 * n + i * (esize >> 3);
}

/** Reads element i (esize 8/16/32) of Vn as an unsigned or signed number. */
export function getLane(c: Cpu, n: number, esize: number, i: number, signed = false): number {
  const off = laneOffset(n, esize, i);
  if (esize === 8) return signed ? (c.r8[off]! << 24) >> 24 : c.r8[off]!;
  if (esize === 16) {
    views(c);
    return signed ? s16v[off >> 1]! : u16v[off >> 1]!;
  }
  if (esize === 32) return signed ? c.r[off >> 2]! | 0 : c.r[off >> 2]!;
  throw new RangeError(`getLane: esize ${esize}`);
}

/** Writes element i (esize 8/16/32) of Vn; the value is truncated to the lane. */
export function setLane(c: Cpu, n: number, esize: number, i: number, v: number): void {
  const off = laneOffset(n, esize, i);
  if (esize === 8) c.r8[off] = v;
  else if (esize === 16) {
    views(c);
    u16v[off >> 1] = v;
  } else if (esize === 32) c.r[off >> 2] = v;
  else throw new RangeError(`setLane: esize ${esize}`);
}

/** Reads 64-bit element i of Vn into R64.lo / R64.hi. */
export function getLane64(c: Cpu, n: number, i: number): void {
  const w = I.V + 4 * n + 2 * i;
  R64.lo = c.r[w]!;
  R64.hi = c.r[w + 1]!;
}
export function setLane64(c: Cpu, n: number, i: number, lo: number, hi: number): void {
  const w = I.V + 4 * n + 2 * i;
  c.r[w] = lo;
  c.r[w + 1] = hi;
}

/** Reads element i of Vn as a BigInt (any esize), for tests and slow paths. */
export function getLaneBig(c: Cpu, n: number, esize: number, i: number, signed = false): bigint {
  if (esize === 64) {
    const w = I.V + 4 * n + 2 * i;
    const v = (BigInt(c.r[w + 1]!) << 32n) | BigInt(c.r[w]!);
    return signed ? BigInt.asIntN(64, v) : v;
  }
  return BigInt(getLane(c, n, esize, i, signed));
}

/** Reads the whole 128-bit Vn as a BigInt. */
export function getV(c: Cpu, n: number): bigint {
  const w = I.V + 4 * n;
  let v = 0n;
  for (let k = 3; k >= 0; k--) v = (v << 32n) | BigInt(c.r[w + k]!);
  return v;
}
export function setV(c: Cpu, n: number, v: bigint): void {
  const w = I.V + 4 * n;
  for (let k = 0; k < 4; k++) {
    c.r[w + k] = Number((v >> BigInt(32 * k)) & 0xffffffffn);
  }
}

/** Zeroes bytes [bytes, 16) of Vn (scalar and 64-bit vector writes clear the rest). */
export function zeroUpper(c: Cpu, n: number, bytes: number): void {
  const w = I.V + 4 * n;
  const r = c.r;
  if (bytes <= 8) {
    r[w + 2] = 0;
    r[w + 3] = 0;
    if (bytes <= 4) {
      r[w + 1] = 0;
      if (bytes < 4) r[w] = r[w]! & (bytes === 2 ? 0xffff : 0xff);
    }
  }
}

/** Sets FPSR.QC. */
export function setQC(c: Cpu): void {
  c.r[I.FPSR] = c.r[I.FPSR]! | FPSR_QC;
}

// signed view silences an unused-variable lint when only some views are needed
void s8v;
void s32v;
