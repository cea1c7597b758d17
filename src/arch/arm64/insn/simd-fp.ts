/**
 * AdvSIMD floating point, vector and scalar-SIMD forms (Arm ARM C4.1.96/C4.1.97): three-same
 * FP, two-register misc FP, FP by element, across lanes, scalar pairwise, fixed-point
 * conversions by immediate, FMOV (vector, immediate). Single and double precision only:
 * the FP16 forms are Armv8.2 and stay UNDEFINED.
 *
 * Every executor reads all source lanes into scratch first (Vd may equal Vn/Vm), computes
 * every lane (flags of all lanes accumulate), then writes Vd (upper half zeroed for 64-bit
 * vectors and scalars) and FPSR.
 *
 * The table (SIMD_FP) is one pattern per instruction, all of feature AdvSIMD; the shared
 * formats are FMT (one per encoding group, vector or scalar) and the family lists
 * (THREE_SAME, MISC, BY_ELEMENT, FIXED_POINT, ACROSS_LANES, PAIRWISE_SCALAR) above it.
 * Names are the Arm ARM's headings; a heading's scalar encoding adds "scalar" to the
 * qualifier ("FMLA (by element, scalar)", "FCMEQ (zero, scalar)", "FABD (scalar)").
 * URECPE and URSQRTE (in the FP part of two-register misc) are simd-integer.ts's.
 */
import type { Exec, Fields, Pattern } from "../decoder.ts";
import {
  fixedToFp,
  fp,
  fpAdd,
  fpCompareOp,
  fpConvert,
  fpcrMode,
  fpDiv,
  fpMax,
  fpMaxNum,
  fpMin,
  fpMinNum,
  fpMul,
  fpMulAdd,
  fpMulX,
  fpRecipEstimate,
  fpRecipStep,
  fpRecpX,
  fpRoundInt,
  fpRSqrtEstimate,
  fpRSqrtStep,
  fpSqrt,
  fpSub,
  fpToFixed,
  RM,
} from "../fpcore.ts";
import { R64 } from "../ret64.ts";
import { I } from "../state.ts";
import { vfpExpandImm } from "./fp-scalar.ts";

const vi = (n: number): number => I.V + 4 * n;

/** A lane operation: a = Vn lane, b = Vm lane, c = old Vd lane; result in R64.hi/R64.lo. */
type LaneOp = (
  N: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  fpcr: number,
  ch: number,
  cl: number,
) => void;

const TA = new Uint32Array(8);
const TB = new Uint32Array(4);
const TD = new Uint32Array(4);
const TR = new Uint32Array(4);

function commitFlags(r: Uint32Array): void {
  if (fp.flags !== 0) r[I.FPSR] = (r[I.FPSR]! | fp.flags) >>> 0;
}

/** A compare's result lane: all ones when `b`, else zero. */
function mask(N: number, b: boolean): void {
  R64.lo = b ? 0xffffffff : 0;
  R64.hi = b && N === 64 ? 0xffffffff : 0;
}

/**
 * Lane-wise executor. `cnt` lanes of N bits; `melem` >= 0 broadcasts element melem of Vm
 * (by-element forms). Lanes beyond cnt*N bits of Vd are zeroed.
 */
function lanes(N: number, cnt: number, op: LaneOp, d: number, n: number, m: number, melem = -1): Exec {
  const di = vi(d);
  const ni = vi(n);
  const mi = vi(m);
  const w = N === 64 ? 2 : 1;
  const words = cnt * w;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const fpcr = r[I.FPCR]!;
    fp.flags = 0;
    for (let k = 0; k < 4; k++) {
      TA[k] = r[ni + k]!;
      TB[k] = r[mi + k]!;
      TD[k] = r[di + k]!;
    }
    if (melem >= 0) {
      const lo = TB[melem * w]!;
      const hi = TB[melem * w + 1] ?? 0;
      for (let k = 0; k < 4; k += w) {
        TB[k] = lo;
        if (w === 2) TB[k + 1] = hi;
      }
    }
    for (let j = 0; j < words; j += w) {
      op(N, TA[j + 1]!, TA[j]!, TB[j + 1]!, TB[j]!, fpcr, TD[j + 1]!, TD[j]!);
      TR[j] = R64.lo;
      if (w === 2) TR[j + 1] = R64.hi;
    }
    for (let k = 0; k < words; k++) r[di + k] = TR[k]!;
    for (let k = words; k < 4; k++) r[di + k] = 0;
    commitFlags(r);
  };
}

/** Pairwise: result lane i = op(x[2i], x[2i+1]) over x = Vn lanes then Vm lanes. */
function pairwise(N: number, cnt: number, op: LaneOp, d: number, n: number, m: number): Exec {
  const di = vi(d);
  const ni = vi(n);
  const mi = vi(m);
  const w = N === 64 ? 2 : 1;
  const words = cnt * w;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const fpcr = r[I.FPCR]!;
    fp.flags = 0;
    for (let k = 0; k < words; k++) {
      TA[k] = r[ni + k]!;
      TA[words + k] = r[mi + k]!;
    }
    for (let j = 0; j < words; j += w) {
      const a = 2 * j;
      const b = a + w;
      op(N, TA[a + 1] ?? 0, TA[a]!, TA[b + 1] ?? 0, TA[b]!, fpcr, 0, 0);
      TR[j] = R64.lo;
      if (w === 2) TR[j + 1] = R64.hi;
    }
    for (let k = 0; k < words; k++) r[di + k] = TR[k]!;
    for (let k = words; k < 4; k++) r[di + k] = 0;
    commitFlags(r);
  };
}

/** Scalar pairwise (2 lanes of Vn -> scalar), and the 4S across-lanes reduction. */
function reduce(N: number, cnt: number, op: LaneOp, d: number, n: number): Exec {
  const di = vi(d);
  const ni = vi(n);
  return (c) => {
    c.checkFp();
    const r = c.r;
    const fpcr = r[I.FPCR]!;
    fp.flags = 0;
    let lo: number;
    let hi: number;
    if (cnt === 2) {
      if (N === 64) op(64, r[ni + 1]!, r[ni]!, r[ni + 3]!, r[ni + 2]!, fpcr, 0, 0);
      else op(32, 0, r[ni]!, 0, r[ni + 1]!, fpcr, 0, 0);
      lo = R64.lo;
      hi = N === 64 ? R64.hi : 0;
    } else {
      // Reduce(): op(op(e0, e1), op(e2, e3))
      op(32, 0, r[ni]!, 0, r[ni + 1]!, fpcr, 0, 0);
      const x = R64.lo;
      op(32, 0, r[ni + 2]!, 0, r[ni + 3]!, fpcr, 0, 0);
      op(32, 0, x, 0, R64.lo, fpcr, 0, 0);
      lo = R64.lo;
      hi = 0;
    }
    r[di] = lo;
    r[di + 1] = hi;
    r[di + 2] = 0;
    r[di + 3] = 0;
    commitFlags(r);
  };
}

// ---- lane operations

const opFmla: LaneOp = (N, ah, al, bh, bl, fpcr, ch, cl) => fpMulAdd(N, ch, cl, ah, al, bh, bl, fpcr);
const opFmls: LaneOp = (N, ah, al, bh, bl, fpcr, ch, cl) =>
  N === 64
    ? fpMulAdd(64, ch, cl, (ah ^ 0x80000000) >>> 0, al, bh, bl, fpcr)
    : fpMulAdd(32, 0, cl, 0, (al ^ 0x80000000) >>> 0, 0, bl, fpcr);
const opFabd: LaneOp = (N, ah, al, bh, bl, fpcr) => {
  fpSub(N, ah, al, bh, bl, fpcr);
  if (N === 64) R64.hi = R64.hi & 0x7fffffff;
  else R64.lo = R64.lo & 0x7fffffff;
};
const cmp =
  (k: number, abs: boolean): LaneOp =>
  (N, ah, al, bh, bl, fpcr) => {
    if (abs) {
      if (N === 64) {
        ah &= 0x7fffffff;
        bh &= 0x7fffffff;
      } else {
        al &= 0x7fffffff;
        bl &= 0x7fffffff;
      }
    }
    mask(N, fpCompareOp(N, ah, al, bh, bl, k, fpcr));
  };
/** Compare against +0.0: `swap` compares 0 OP a (for LE/LT). */
const cmpZero =
  (k: number, swap: boolean): LaneOp =>
  (N, ah, al, _bh, _bl, fpcr) => {
    mask(N, swap ? fpCompareOp(N, 0, 0, ah, al, k, fpcr) : fpCompareOp(N, ah, al, 0, 0, k, fpcr));
  };
const opAbs: LaneOp = (N, ah, al) => {
  R64.hi = N === 64 ? ah & 0x7fffffff : 0;
  R64.lo = N === 64 ? al : al & 0x7fffffff;
};
const opNeg: LaneOp = (N, ah, al) => {
  R64.hi = N === 64 ? (ah ^ 0x80000000) >>> 0 : 0;
  R64.lo = N === 64 ? al : (al ^ 0x80000000) >>> 0;
};
const opSqrt: LaneOp = (N, ah, al, _bh, _bl, fpcr) => fpSqrt(N, ah, al, fpcr);
const opRint =
  (mode: number, exact: boolean): LaneOp =>
  (N, ah, al, _bh, _bl, fpcr) =>
    fpRoundInt(N, ah, al, fpcr, mode < 0 ? fpcrMode(fpcr) : mode, exact);
const opToInt =
  (mode: number, unsigned: boolean, fbits = 0): LaneOp =>
  (N, ah, al, _bh, _bl, fpcr) =>
    fpToFixed(N, ah, al, fbits, unsigned, N, fpcr, mode);
const opToFp =
  (unsigned: boolean, fbits = 0): LaneOp =>
  (N, ah, al, _bh, _bl, fpcr) =>
    fixedToFp(N, ah, al, N, fbits, unsigned, fpcr, fpcrMode(fpcr));
const opRecpe: LaneOp = (N, ah, al, _bh, _bl, fpcr) => fpRecipEstimate(N, ah, al, fpcr);
const opRsqrte: LaneOp = (N, ah, al, _bh, _bl, fpcr) => fpRSqrtEstimate(N, ah, al, fpcr);
const opRecpx: LaneOp = (N, ah, al, _bh, _bl, fpcr) => fpRecpX(N, ah, al, fpcr);
// fpcore's optional flags would clash with the LaneOp's extra arguments: wrap.
const opAdd: LaneOp = (N, ah, al, bh, bl, fpcr) => fpAdd(N, ah, al, bh, bl, fpcr);
const opMul: LaneOp = (N, ah, al, bh, bl, fpcr) => fpMul(N, ah, al, bh, bl, fpcr);
const opMulX: LaneOp = (N, ah, al, bh, bl, fpcr) => fpMulX(N, ah, al, bh, bl, fpcr);

/** FCVTN/FCVTN2 (sz 0: 4S->4H, 1: 2D->2S), FCVTXN/FCVTXN2 (round to odd). */
function narrow(Q: number, sz: number, d: number, n: number, odd: boolean, scalar: boolean): Exec {
  const di = vi(d);
  const ni = vi(n);
  return (c) => {
    c.checkFp();
    const r = c.r;
    const fpcr = r[I.FPCR]!;
    const mode = odd ? RM.ODD : fpcrMode(fpcr);
    fp.flags = 0;
    for (let k = 0; k < 4; k++) TA[k] = r[ni + k]!;
    if (sz === 1) {
      const cnt = scalar ? 1 : 2;
      for (let i = 0; i < cnt; i++) {
        fpConvert(64, 32, TA[2 * i + 1]!, TA[2 * i]!, fpcr, mode);
        TR[i] = R64.lo;
      }
      if (scalar) {
        r[di] = TR[0]!;
        r[di + 1] = 0;
      } else if (Q) {
        r[di + 2] = TR[0]!;
        r[di + 3] = TR[1]!;
      } else {
        r[di] = TR[0]!;
        r[di + 1] = TR[1]!;
      }
    } else {
      for (let i = 0; i < 4; i++) {
        fpConvert(32, 16, 0, TA[i]!, fpcr, mode);
        TR[i] = R64.lo & 0xffff;
      }
      const w0 = (TR[0]! | (TR[1]! << 16)) >>> 0;
      const w1 = (TR[2]! | (TR[3]! << 16)) >>> 0;
      if (Q) {
        r[di + 2] = w0;
        r[di + 3] = w1;
      } else {
        r[di] = w0;
        r[di + 1] = w1;
      }
    }
    if (!Q || scalar) {
      r[di + 2] = 0;
      r[di + 3] = 0;
    }
    commitFlags(r);
  };
}

/** FCVTL/FCVTL2 (sz 0: 4H->4S, 1: 2S->2D) from the lower (Q=0) or upper half of Vn. */
function widen(Q: number, sz: number, d: number, n: number): Exec {
  const di = vi(d);
  const ni = vi(n) + (Q ? 2 : 0);
  return (c) => {
    c.checkFp();
    const r = c.r;
    const fpcr = r[I.FPCR]!;
    fp.flags = 0;
    const w0 = r[ni]!;
    const w1 = r[ni + 1]!;
    if (sz === 1) {
      fpConvert(32, 64, 0, w0, fpcr, 0);
      TR[0] = R64.lo;
      TR[1] = R64.hi;
      fpConvert(32, 64, 0, w1, fpcr, 0);
      TR[2] = R64.lo;
      TR[3] = R64.hi;
    } else {
      const h = [w0 & 0xffff, w0 >>> 16, w1 & 0xffff, w1 >>> 16];
      for (let i = 0; i < 4; i++) {
        fpConvert(16, 32, 0, h[i]!, fpcr, 0);
        TR[i] = R64.lo;
      }
    }
    for (let k = 0; k < 4; k++) r[di + k] = TR[k]!;
    commitFlags(r);
  };
}

/** Lane count for a vector of N-bit lanes, or null when reserved (2D needs Q=1). */
function vcount(N: number, Q: number): number | null {
  if (N === 64) return Q ? 2 : null;
  return Q ? 4 : 2;
}

/** Vector FP lanes: N from sz, the lane count from Q (null: 2D needs Q = 1). */
function laneShape(f: Fields): [number, number] | null {
  const N = f.sz ? 64 : 32;
  const cnt = vcount(N, f.Q!);
  return cnt === null ? null : [N, cnt];
}

/** An instruction of the three-same group. */
interface FpOp {
  readonly name: string;
  readonly u: number;
  readonly a: number;
  /** opcode<2:0>. */
  readonly op: number;
  readonly lane: LaneOp;
  /** Pairwise (FADDP, FMAXP, ...): lanes of Vn then Vm taken two by two. */
  readonly pair?: boolean;
  /** The name of the scalar form (Arm ARM: the same heading's "Scalar" encoding), if any. */
  readonly scalar?: string;
}

/** Advanced SIMD three same, FP (opcode 11xxx): U, a, opcode<2:0>. */
const THREE_SAME: readonly FpOp[] = [
  { name: "FMAXNM (vector)", u: 0, a: 0, op: 0, lane: fpMaxNum },
  { name: "FMLA (vector)", u: 0, a: 0, op: 1, lane: opFmla },
  { name: "FADD (vector)", u: 0, a: 0, op: 2, lane: opAdd },
  { name: "FMULX (vector)", u: 0, a: 0, op: 3, lane: opMulX, scalar: "FMULX (scalar)" },
  { name: "FCMEQ (register)", u: 0, a: 0, op: 4, lane: cmp(0, false), scalar: "FCMEQ (register, scalar)" },
  { name: "FMAX (vector)", u: 0, a: 0, op: 6, lane: fpMax },
  { name: "FRECPS (vector)", u: 0, a: 0, op: 7, lane: fpRecipStep, scalar: "FRECPS (scalar)" },
  { name: "FMINNM (vector)", u: 0, a: 1, op: 0, lane: fpMinNum },
  { name: "FMLS (vector)", u: 0, a: 1, op: 1, lane: opFmls },
  { name: "FSUB (vector)", u: 0, a: 1, op: 2, lane: fpSub },
  { name: "FMIN (vector)", u: 0, a: 1, op: 6, lane: fpMin },
  { name: "FRSQRTS (vector)", u: 0, a: 1, op: 7, lane: fpRSqrtStep, scalar: "FRSQRTS (scalar)" },
  { name: "FMAXNMP (vector)", u: 1, a: 0, op: 0, lane: fpMaxNum, pair: true },
  { name: "FADDP (vector)", u: 1, a: 0, op: 2, lane: opAdd, pair: true },
  { name: "FMUL (vector)", u: 1, a: 0, op: 3, lane: opMul },
  { name: "FCMGE (register)", u: 1, a: 0, op: 4, lane: cmp(1, false), scalar: "FCMGE (register, scalar)" },
  { name: "FACGE (vector)", u: 1, a: 0, op: 5, lane: cmp(1, true), scalar: "FACGE (scalar)" },
  { name: "FMAXP (vector)", u: 1, a: 0, op: 6, lane: fpMax, pair: true },
  { name: "FDIV (vector)", u: 1, a: 0, op: 7, lane: fpDiv },
  { name: "FMINNMP (vector)", u: 1, a: 1, op: 0, lane: fpMinNum, pair: true },
  { name: "FABD (vector)", u: 1, a: 1, op: 2, lane: opFabd, scalar: "FABD (scalar)" },
  { name: "FCMGT (register)", u: 1, a: 1, op: 4, lane: cmp(2, false), scalar: "FCMGT (register, scalar)" },
  { name: "FACGT (vector)", u: 1, a: 1, op: 5, lane: cmp(2, true), scalar: "FACGT (scalar)" },
  { name: "FMINP (vector)", u: 1, a: 1, op: 6, lane: fpMin, pair: true },
];

/** Advanced SIMD two-register miscellaneous, FP lane-wise ops: [name, U, a, opcode, lane op, scalar form]. */
const MISC: readonly [string, number, number, number, LaneOp, string?][] = [
  ["FRINTN (vector)", 0, 0, 0b11000, opRint(RM.TIEEVEN, false)],
  ["FRINTM (vector)", 0, 0, 0b11001, opRint(RM.NEGINF, false)],
  ["FCVTNS (vector)", 0, 0, 0b11010, opToInt(RM.TIEEVEN, false), "FCVTNS (vector, scalar)"],
  ["FCVTMS (vector)", 0, 0, 0b11011, opToInt(RM.NEGINF, false), "FCVTMS (vector, scalar)"],
  ["FCVTAS (vector)", 0, 0, 0b11100, opToInt(RM.TIEAWAY, false), "FCVTAS (vector, scalar)"],
  ["SCVTF (vector, integer)", 0, 0, 0b11101, opToFp(false), "SCVTF (vector, integer, scalar)"],
  ["FCMGT (zero)", 0, 1, 0b01100, cmpZero(2, false), "FCMGT (zero, scalar)"],
  ["FCMEQ (zero)", 0, 1, 0b01101, cmpZero(0, false), "FCMEQ (zero, scalar)"],
  ["FCMLT (zero)", 0, 1, 0b01110, cmpZero(2, true), "FCMLT (zero, scalar)"],
  ["FABS (vector)", 0, 1, 0b01111, opAbs],
  ["FRINTP (vector)", 0, 1, 0b11000, opRint(RM.POSINF, false)],
  ["FRINTZ (vector)", 0, 1, 0b11001, opRint(RM.ZERO, false)],
  ["FCVTPS (vector)", 0, 1, 0b11010, opToInt(RM.POSINF, false), "FCVTPS (vector, scalar)"],
  ["FCVTZS (vector, integer)", 0, 1, 0b11011, opToInt(RM.ZERO, false), "FCVTZS (vector, integer, scalar)"],
  ["FRECPE (vector)", 0, 1, 0b11101, opRecpe, "FRECPE (scalar)"],
  ["FRINTA (vector)", 1, 0, 0b11000, opRint(RM.TIEAWAY, false)],
  ["FRINTX (vector)", 1, 0, 0b11001, opRint(-1, true)],
  ["FCVTNU (vector)", 1, 0, 0b11010, opToInt(RM.TIEEVEN, true), "FCVTNU (vector, scalar)"],
  ["FCVTMU (vector)", 1, 0, 0b11011, opToInt(RM.NEGINF, true), "FCVTMU (vector, scalar)"],
  ["FCVTAU (vector)", 1, 0, 0b11100, opToInt(RM.TIEAWAY, true), "FCVTAU (vector, scalar)"],
  ["UCVTF (vector, integer)", 1, 0, 0b11101, opToFp(true), "UCVTF (vector, integer, scalar)"],
  ["FCMGE (zero)", 1, 1, 0b01100, cmpZero(1, false), "FCMGE (zero, scalar)"],
  ["FCMLE (zero)", 1, 1, 0b01101, cmpZero(1, true), "FCMLE (zero, scalar)"],
  ["FNEG (vector)", 1, 1, 0b01111, opNeg],
  ["FRINTI (vector)", 1, 1, 0b11001, opRint(-1, false)],
  ["FCVTPU (vector)", 1, 1, 0b11010, opToInt(RM.POSINF, true), "FCVTPU (vector, scalar)"],
  ["FCVTZU (vector, integer)", 1, 1, 0b11011, opToInt(RM.ZERO, true), "FCVTZU (vector, integer, scalar)"],
  ["FRSQRTE (vector)", 1, 1, 0b11101, opRsqrte, "FRSQRTE (scalar)"],
  ["FSQRT (vector)", 1, 1, 0b11111, opSqrt],
];

/** Advanced SIMD vector x indexed element, FP: [name, U, opcode, lane op]. */
const BY_ELEMENT: readonly [string, number, number, LaneOp][] = [
  ["FMLA (by element)", 0, 0b0001, opFmla],
  ["FMLS (by element)", 0, 0b0101, opFmls],
  ["FMUL (by element)", 0, 0b1001, opMul],
  ["FMULX (by element)", 1, 0b1001, opMulX],
];

/** Advanced SIMD shift by immediate, the fixed-point conversions: [name, U, opcode, lane op of fbits]. */
const FIXED_POINT: readonly [string, number, number, (fbits: number) => LaneOp][] = [
  ["SCVTF (vector, fixed-point)", 0, 0b11100, (fbits) => opToFp(false, fbits)],
  ["UCVTF (vector, fixed-point)", 1, 0b11100, (fbits) => opToFp(true, fbits)],
  ["FCVTZS (vector, fixed-point)", 0, 0b11111, (fbits) => opToInt(RM.ZERO, false, fbits)],
  ["FCVTZU (vector, fixed-point)", 1, 0b11111, (fbits) => opToInt(RM.ZERO, true, fbits)],
];

/** FMAXNMV/FMINNMV/FMAXV/FMINV (4S only) and the scalar pairwise forms: [name, a, opcode, op]. */
const ACROSS_LANES: readonly [string, number, number, LaneOp][] = [
  ["FMAXNMV", 0, 0b01100, fpMaxNum],
  ["FMINNMV", 1, 0b01100, fpMinNum],
  ["FMAXV", 0, 0b01111, fpMax],
  ["FMINV", 1, 0b01111, fpMin],
];
const PAIRWISE_SCALAR: readonly [string, number, number, LaneOp][] = [
  ["FMAXNMP (scalar)", 0, 0b01100, fpMaxNum],
  ["FMINNMP (scalar)", 1, 0b01100, fpMinNum],
  ["FADDP (scalar)", 0, 0b01101, opAdd],
  ["FMAXP (scalar)", 0, 0b01111, fpMax],
  ["FMINP (scalar)", 1, 0b01111, fpMin],
];

const bin = (v: number, width: number) => v.toString(2).padStart(width, "0");
/** Bits 31..28 of the vector (`0 Q U 0`) and scalar (`0 1 U 1`) forms of one group. */
const head = (scalar: boolean, u: number | string) => (scalar ? `01 ${u} 1` : `0 Q:1 ${u} 0`);

/** The formats (decodetree's `@...`), one per encoding group of C4.1.96, vector or scalar. */
const FMT = {
  /** Three same (FP). */
  same: (s: boolean, u: number, a: number, op3: number) =>
    `${head(s, u)} 1110 ${a} sz:1 1 Rm:5 11 ${bin(op3, 3)} 1 Rn:5 Rd:5`,
  /** Two-register miscellaneous (FP). */
  misc: (s: boolean, u: number, a: number, opcode: number) =>
    `${head(s, u)} 1110 ${a} sz:1 10000 ${bin(opcode, 5)} 10 Rn:5 Rd:5`,
  /** Across lanes (4S only: Q = 1, sz = 0) and scalar pairwise. */
  pair: (s: boolean, a: number, opcode: number) =>
    `${s ? "01 1 1" : "0 1 1 0"} 1110 ${a} ${s ? "sz:1" : "0"} 11000 ${bin(opcode, 5)} 10 Rn:5 Rd:5`,
  /** Vector x indexed element (FP, single and double). */
  elem: (s: boolean, u: number, opcode: number) =>
    `${head(s, u)} 1111 1 sz:1 L:1 M:1 Rm:4 ${bin(opcode, 4)} H:1 0 Rn:5 Rd:5`,
  /** Shift by immediate. */
  shift: (s: boolean, u: number, opcode: number) =>
    `${head(s, u)} 11110 immh:4 immb:3 ${bin(opcode, 5)} 1 Rn:5 Rd:5`,
};

type Entry = Omit<Pattern, "feature">;

/** An instruction's vector pattern and, when it has a scalar form (named `scalar`), that one's too. */
function forms(
  name: string,
  scalar: string | undefined,
  pattern: (scalar: boolean) => string,
  decode: (scalar: boolean) => Entry["decode"],
): Entry[] {
  const vector = { name, pattern: pattern(false), decode: decode(false) };
  return scalar === undefined
    ? [vector]
    : [vector, { name: scalar, pattern: pattern(true), decode: decode(true) }];
}

/**
 * The handler of a lane-wise instruction: every lane of the vector (Q, sz) or the one lane
 * of the scalar (sz); `oneSource` reads Vn only (two-register misc), `pair` pairwise.
 */
function laneWise(lane: LaneOp, oneSource: boolean, pair = false) {
  return (scalar: boolean) =>
    (f: Fields): Exec | null => {
      const m = oneSource ? f.Rn! : f.Rm!;
      if (scalar) return lanes(f.sz ? 64 : 32, 1, lane, f.Rd!, f.Rn!, m);
      const shape = laneShape(f);
      if (shape === null) return null;
      const [N, cnt] = shape;
      return pair ? pairwise(N, cnt, lane, f.Rd!, f.Rn!, m) : lanes(N, cnt, lane, f.Rd!, f.Rn!, m);
    };
}

const TABLE: Entry[] = [
  ...THREE_SAME.flatMap((x) =>
    forms(x.name, x.scalar, (s) => FMT.same(s, x.u, x.a, x.op), laneWise(x.lane, false, x.pair)),
  ),
  ...MISC.flatMap(([name, u, a, opcode, lane, scalar]) =>
    forms(name, scalar, (s) => FMT.misc(s, u, a, opcode), laneWise(lane, true)),
  ),
  {
    name: "FRECPX",
    pattern: FMT.misc(true, 0, 1, 0b11111),
    decode: (f) => lanes(f.sz ? 64 : 32, 1, opRecpx, f.Rd!, f.Rn!, f.Rn!),
  },
  {
    name: "FCVTN",
    pattern: FMT.misc(false, 0, 0, 0b10110),
    aliases: ["fcvtn2"],
    decode: (f) => narrow(f.Q!, f.sz!, f.Rd!, f.Rn!, false, false),
  },
  {
    name: "FCVTXN (vector)",
    pattern: FMT.misc(false, 1, 0, 0b10110),
    aliases: ["fcvtxn2"],
    // Round to odd, 2D -> 2S only.
    decode: (f) => (f.sz === 0 ? null : narrow(f.Q!, 1, f.Rd!, f.Rn!, true, false)),
  },
  {
    name: "FCVTXN (scalar)",
    pattern: FMT.misc(true, 1, 0, 0b10110),
    decode: (f) => (f.sz ? narrow(0, 1, f.Rd!, f.Rn!, true, true) : null),
  },
  {
    name: "FCVTL",
    pattern: FMT.misc(false, 0, 0, 0b10111),
    aliases: ["fcvtl2"],
    decode: (f) => widen(f.Q!, f.sz!, f.Rd!, f.Rn!),
  },
  ...ACROSS_LANES.map(([name, a, opcode, op]) => ({
    name,
    pattern: FMT.pair(false, a, opcode),
    decode: (f: Fields) => reduce(32, 4, op, f.Rd!, f.Rn!),
  })),
  ...PAIRWISE_SCALAR.map(([name, a, opcode, op]) => ({
    name,
    pattern: FMT.pair(true, a, opcode),
    decode: (f: Fields) => reduce(f.sz ? 64 : 32, 2, op, f.Rd!, f.Rn!),
  })),
  ...BY_ELEMENT.flatMap(([name, u, opcode, op]) =>
    forms(
      name,
      name.replace(")", ", scalar)"),
      (s) => FMT.elem(s, u, opcode),
      (s) => (f) => byElement(f, op, s),
    ),
  ),
  ...FIXED_POINT.flatMap(([name, u, opcode, op]) =>
    forms(
      name,
      name.replace(")", ", scalar)"),
      (s) => FMT.shift(s, u, opcode),
      (s) => (f) => fixedImm(f, op, s),
    ),
  ),
  {
    name: "FMOV (vector, immediate)", // single and double
    pattern: "0 Q:1 op:1 0111100000 abc:3 1111 0 1 defgh:5 Rd:5",
    decode: (f) => {
      if (f.op === 1 && f.Q === 0) return null;
      const imm8 = (f.abc! << 5) | f.defgh!;
      const N = f.op ? 64 : 32;
      const [hi, lo] = vfpExpandImm(imm8, N);
      const di = vi(f.Rd!);
      const Q = f.Q!;
      return (c) => {
        c.checkFp();
        const r = c.r;
        if (N === 64) {
          r[di] = lo;
          r[di + 1] = hi;
          r[di + 2] = lo;
          r[di + 3] = hi;
        } else {
          r[di] = lo;
          r[di + 1] = lo;
          r[di + 2] = Q ? lo : 0;
          r[di + 3] = Q ? lo : 0;
        }
      };
    },
  },
];

/** The AdvSIMD floating-point instructions, one pattern each, all of feature AdvSIMD. */
export const SIMD_FP: Pattern[] = TABLE.map((p) => ({ ...p, feature: "AdvSIMD" }));

/** FMLA, FMLS, FMUL, FMULX (by element), Vm's element broadcast; `scalar`: one lane. */
function byElement(f: Fields, op: LaneOp, scalar: boolean): Exec | null {
  const { sz, L, H } = f as Record<string, number>;
  const N = sz ? 64 : 32;
  if (sz === 1 && L === 1) return null;
  const index = sz ? H! : (H! << 1) | L!;
  const cnt = scalar ? 1 : vcount(N, f.Q!);
  if (cnt === null) return null;
  return lanes(N, cnt, op, f.Rd!, f.Rn!, (f.M! << 4) | f.Rm!, index);
}

/** SCVTF, UCVTF, FCVTZS, FCVTZU (vector, fixed-point): fbits from immh:immb. */
function fixedImm(f: Fields, op: (fbits: number) => LaneOp, scalar: boolean): Exec | null {
  const immh = f.immh!;
  if ((immh & 0b1100) === 0) return null; // immh 0000: other class; 001x: FP16 (v8.2)
  const N = (immh & 8) !== 0 ? 64 : 32;
  const fbits = 2 * N - ((immh << 3) | f.immb!);
  const cnt = scalar ? 1 : vcount(N, f.Q!);
  if (cnt === null) return null;
  return lanes(N, cnt, op(fbits), f.Rd!, f.Rn!, f.Rn!);
}
