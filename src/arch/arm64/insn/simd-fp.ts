/**
 * AdvSIMD floating point, vector and scalar-SIMD forms (Arm ARM C4.1.96/C4.1.97): three-same
 * FP, two-register misc FP, FP by element, across lanes, scalar pairwise, fixed-point
 * conversions by immediate, FMOV (vector, immediate). Single and double precision only:
 * the FP16 forms are Armv8.2 and stay UNDEFINED.
 *
 * Every executor reads all source lanes into scratch first (Vd may equal Vn/Vm), computes
 * every lane (flags of all lanes accumulate), then writes Vd (upper half zeroed for 64-bit
 * vectors and scalars) and FPSR.
 */
import type { Exec, Pattern } from "../decoder.ts";
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
  unsignedRecipEstimate,
  unsignedRSqrtEstimate,
} from "../fpcore.ts";
import { I } from "../state.ts";
import { vfpExpandImm } from "./fp-scalar.ts";

const vi = (n: number): number => I.V + 4 * n;

/** A lane operation: a = Vn lane, b = Vm lane, c = old Vd lane; result in fp.hi/fp.lo. */
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

const signOf = (N: number): number => (N === 64 ? 0 : 0x80000000); // lo-word sign mask for N=32
/** Negates operand a (FPNeg, NaNs included) and calls f. */
function mask(N: number, b: boolean): void {
  fp.lo = b ? 0xffffffff : 0;
  fp.hi = b && N === 64 ? 0xffffffff : 0;
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
      TR[j] = fp.lo;
      if (w === 2) TR[j + 1] = fp.hi;
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
      TR[j] = fp.lo;
      if (w === 2) TR[j + 1] = fp.hi;
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
      lo = fp.lo;
      hi = N === 64 ? fp.hi : 0;
    } else {
      // Reduce(): op(op(e0, e1), op(e2, e3))
      op(32, 0, r[ni]!, 0, r[ni + 1]!, fpcr, 0, 0);
      const x = fp.lo;
      op(32, 0, r[ni + 2]!, 0, r[ni + 3]!, fpcr, 0, 0);
      op(32, 0, x, 0, fp.lo, fpcr, 0, 0);
      lo = fp.lo;
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
  if (N === 64) fp.hi = fp.hi & 0x7fffffff;
  else fp.lo = fp.lo & 0x7fffffff;
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
  fp.hi = N === 64 ? ah & 0x7fffffff : 0;
  fp.lo = N === 64 ? al : al & 0x7fffffff;
};
const opNeg: LaneOp = (N, ah, al) => {
  fp.hi = N === 64 ? (ah ^ 0x80000000) >>> 0 : 0;
  fp.lo = N === 64 ? al : (al ^ 0x80000000) >>> 0;
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
const opURecpe: LaneOp = (_N, _ah, al) => {
  fp.hi = 0;
  fp.lo = unsignedRecipEstimate(al);
};
const opURsqrte: LaneOp = (_N, _ah, al) => {
  fp.hi = 0;
  fp.lo = unsignedRSqrtEstimate(al);
};
void signOf;
// fpcore's optional flags would clash with the LaneOp's extra arguments: wrap.
const opAdd: LaneOp = (N, ah, al, bh, bl, fpcr) => fpAdd(N, ah, al, bh, bl, fpcr);
const opMul: LaneOp = (N, ah, al, bh, bl, fpcr) => fpMul(N, ah, al, bh, bl, fpcr);
const opMulX: LaneOp = (N, ah, al, bh, bl, fpcr) => fpMulX(N, ah, al, bh, bl, fpcr);

/** Three-same FP ops indexed by U:a:opcode<2:0> (opcode 11xxx). */
function threeSameOp(U: number, a: number, op3: number): { op: LaneOp; pair?: boolean } | null {
  switch ((U << 4) | (a << 3) | op3) {
    case 0b00000:
      return { op: fpMaxNum };
    case 0b00001:
      return { op: opFmla };
    case 0b00010:
      return { op: opAdd };
    case 0b00011:
      return { op: opMulX };
    case 0b00100:
      return { op: cmp(0, false) }; // FCMEQ
    case 0b00110:
      return { op: fpMax };
    case 0b00111:
      return { op: fpRecipStep };
    case 0b01000:
      return { op: fpMinNum };
    case 0b01001:
      return { op: opFmls };
    case 0b01010:
      return { op: fpSub };
    case 0b01110:
      return { op: fpMin };
    case 0b01111:
      return { op: fpRSqrtStep };
    case 0b10000:
      return { op: fpMaxNum, pair: true }; // FMAXNMP
    case 0b10010:
      return { op: opAdd, pair: true }; // FADDP
    case 0b10011:
      return { op: opMul };
    case 0b10100:
      return { op: cmp(1, false) }; // FCMGE
    case 0b10101:
      return { op: cmp(1, true) }; // FACGE
    case 0b10110:
      return { op: fpMax, pair: true }; // FMAXP
    case 0b10111:
      return { op: fpDiv };
    case 0b11000:
      return { op: fpMinNum, pair: true }; // FMINNMP
    case 0b11010:
      return { op: opFabd };
    case 0b11100:
      return { op: cmp(2, false) }; // FCMGT
    case 0b11101:
      return { op: cmp(2, true) }; // FACGT
    case 0b11110:
      return { op: fpMin, pair: true }; // FMINP
    default:
      return null;
  }
}

/** Two-register misc FP ops by U:a:opcode (conversions between widths handled separately). */
function miscOp(U: number, a: number, opcode: number): LaneOp | null {
  switch ((U << 6) | (a << 5) | opcode) {
    case 0b0011000:
      return opRint(RM.TIEEVEN, false); // FRINTN
    case 0b0011001:
      return opRint(RM.NEGINF, false); // FRINTM
    case 0b0011010:
      return opToInt(RM.TIEEVEN, false); // FCVTNS
    case 0b0011011:
      return opToInt(RM.NEGINF, false); // FCVTMS
    case 0b0011100:
      return opToInt(RM.TIEAWAY, false); // FCVTAS
    case 0b0011101:
      return opToFp(false); // SCVTF
    case 0b0101100:
      return cmpZero(2, false); // FCMGT #0
    case 0b0101101:
      return cmpZero(0, false); // FCMEQ #0
    case 0b0101110:
      return cmpZero(2, true); // FCMLT #0
    case 0b0101111:
      return opAbs;
    case 0b0111000:
      return opRint(RM.POSINF, false); // FRINTP
    case 0b0111001:
      return opRint(RM.ZERO, false); // FRINTZ
    case 0b0111010:
      return opToInt(RM.POSINF, false); // FCVTPS
    case 0b0111011:
      return opToInt(RM.ZERO, false); // FCVTZS
    case 0b0111101:
      return opRecpe; // FRECPE
    case 0b1011000:
      return opRint(RM.TIEAWAY, false); // FRINTA
    case 0b1011001:
      return opRint(-1, true); // FRINTX
    case 0b1011010:
      return opToInt(RM.TIEEVEN, true); // FCVTNU
    case 0b1011011:
      return opToInt(RM.NEGINF, true); // FCVTMU
    case 0b1011100:
      return opToInt(RM.TIEAWAY, true); // FCVTAU
    case 0b1011101:
      return opToFp(true); // UCVTF
    case 0b1101100:
      return cmpZero(1, false); // FCMGE #0
    case 0b1101101:
      return cmpZero(1, true); // FCMLE #0
    case 0b1101111:
      return opNeg;
    case 0b1111001:
      return opRint(-1, false); // FRINTI
    case 0b1111010:
      return opToInt(RM.POSINF, true); // FCVTPU
    case 0b1111011:
      return opToInt(RM.ZERO, true); // FCVTZU
    case 0b1111101:
      return opRsqrte; // FRSQRTE
    case 0b1111111:
      return opSqrt; // FSQRT
    default:
      return null;
  }
}

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
        TR[i] = fp.lo;
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
        TR[i] = fp.lo & 0xffff;
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
      TR[0] = fp.lo;
      TR[1] = fp.hi;
      fpConvert(32, 64, 0, w1, fpcr, 0);
      TR[2] = fp.lo;
      TR[3] = fp.hi;
    } else {
      const h = [w0 & 0xffff, w0 >>> 16, w1 & 0xffff, w1 >>> 16];
      for (let i = 0; i < 4; i++) {
        fpConvert(16, 32, 0, h[i]!, fpcr, 0);
        TR[i] = fp.lo;
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

export const SIMD_FP: Pattern[] = [
  {
    name: "ASIMD_FP_THREE_SAME",
    pattern: "0 Q:1 U:1 01110 a:1 sz:1 1 Rm:5 11 op3:3 1 Rn:5 Rd:5",
    decode: (f) => {
      const x = threeSameOp(f.U!, f.a!, f.op3!);
      const N = f.sz ? 64 : 32;
      const cnt = vcount(N, f.Q!);
      if (!x || cnt === null) return null;
      return x.pair ? pairwise(N, cnt, x.op, f.Rd!, f.Rn!, f.Rm!) : lanes(N, cnt, x.op, f.Rd!, f.Rn!, f.Rm!);
    },
  },
  {
    name: "ASIMD_FP_SCALAR_THREE_SAME", // FMULX, FCMxx, FACxx, FRECPS, FRSQRTS, FABD
    pattern: "01 U:1 11110 a:1 sz:1 1 Rm:5 11 op3:3 1 Rn:5 Rd:5",
    decode: (f) => {
      const key = (f.U! << 4) | (f.a! << 3) | f.op3!;
      // Only these have scalar forms.
      if (![0b00011, 0b00100, 0b00111, 0b01111, 0b10100, 0b10101, 0b11010, 0b11100, 0b11101].includes(key))
        return null;
      const x = threeSameOp(f.U!, f.a!, f.op3!)!;
      return lanes(f.sz ? 64 : 32, 1, x.op, f.Rd!, f.Rn!, f.Rm!);
    },
  },
  {
    name: "ASIMD_FP_TWO_REG_MISC",
    pattern: "0 Q:1 U:1 01110 a:1 sz:1 10000 opcode:5 10 Rn:5 Rd:5",
    decode: (f) => {
      const { Q, U, a, sz, opcode } = f as Record<string, number>;
      if (a === 0 && opcode === 0b10110) {
        if (U === 1 && sz === 0) return null; // FCVTXN needs 2D
        return narrow(Q!, sz!, f.Rd!, f.Rn!, U === 1, false);
      }
      if (U === 0 && a === 0 && opcode === 0b10111) return widen(Q!, sz!, f.Rd!, f.Rn!);
      if (a === 1 && opcode === 0b11100) {
        if (sz === 1) return null; // URECPE / URSQRTE: 32-bit lanes only
        return lanes(32, Q ? 4 : 2, U ? opURsqrte : opURecpe, f.Rd!, f.Rn!, f.Rn!);
      }
      const op = miscOp(U!, a!, opcode!);
      const N = sz ? 64 : 32;
      const cnt = vcount(N, Q!);
      if (!op || cnt === null) return null;
      return lanes(N, cnt, op, f.Rd!, f.Rn!, f.Rn!);
    },
  },
  {
    name: "ASIMD_FP_SCALAR_TWO_REG_MISC",
    pattern: "01 U:1 11110 a:1 sz:1 10000 opcode:5 10 Rn:5 Rd:5",
    decode: (f) => {
      const { U, a, sz, opcode } = f as Record<string, number>;
      if (U === 1 && a === 0 && opcode === 0b10110) return sz ? narrow(0, 1, f.Rd!, f.Rn!, true, true) : null; // FCVTXN
      const N = sz ? 64 : 32;
      if (U === 0 && a === 1 && opcode === 0b11111) return lanes(N, 1, opRecpx, f.Rd!, f.Rn!, f.Rn!);
      // Scalar forms exist for conversions, compares with zero and the estimates.
      if (
        opcode < 0b01100 ||
        opcode === 0b01111 ||
        opcode === 0b11000 ||
        opcode === 0b11001 ||
        opcode === 0b11111
      )
        return null;
      if (opcode === 0b11100 && a === 1) return null;
      const op = miscOp(U!, a!, opcode!);
      if (!op) return null;
      return lanes(N, 1, op, f.Rd!, f.Rn!, f.Rn!);
    },
  },
  {
    name: "ASIMD_FP_ACROSS_LANES", // FMAXNMV, FMINNMV, FMAXV, FMINV (4S)
    pattern: "0 Q:1 1 01110 a:1 sz:1 11000 opcode:5 10 Rn:5 Rd:5",
    decode: (f) => {
      if (f.Q !== 1 || f.sz !== 0) return null;
      const op =
        f.opcode === 0b01100
          ? f.a
            ? fpMinNum
            : fpMaxNum
          : f.opcode === 0b01111
            ? f.a
              ? fpMin
              : fpMax
            : null;
      if (!op) return null;
      return reduce(32, 4, op, f.Rd!, f.Rn!);
    },
  },
  {
    name: "ASIMD_FP_SCALAR_PAIRWISE", // FADDP, FMAXP, FMINP, FMAXNMP, FMINNMP (scalar)
    pattern: "01 1 11110 a:1 sz:1 11000 opcode:5 10 Rn:5 Rd:5",
    decode: (f) => {
      let op: LaneOp | null = null;
      if (f.opcode === 0b01100) op = f.a ? fpMinNum : fpMaxNum;
      else if (f.opcode === 0b01101 && f.a === 0) op = opAdd;
      else if (f.opcode === 0b01111) op = f.a ? fpMin : fpMax;
      if (!op) return null;
      return reduce(f.sz ? 64 : 32, 2, op, f.Rd!, f.Rn!);
    },
  },
  {
    name: "ASIMD_FP_BY_ELEMENT", // FMLA, FMLS, FMUL, FMULX (vector, by element)
    pattern: "0 Q:1 U:1 01111 1 sz:1 L:1 M:1 Rm:4 opcode:4 H:1 0 Rn:5 Rd:5",
    decode: (f) => byElement(f.Q!, f.U!, f.sz!, f.L!, f.M!, f.Rm!, f.opcode!, f.H!, f.Rn!, f.Rd!, false),
  },
  {
    name: "ASIMD_FP_SCALAR_BY_ELEMENT",
    pattern: "01 U:1 11111 1 sz:1 L:1 M:1 Rm:4 opcode:4 H:1 0 Rn:5 Rd:5",
    decode: (f) => byElement(1, f.U!, f.sz!, f.L!, f.M!, f.Rm!, f.opcode!, f.H!, f.Rn!, f.Rd!, true),
  },
  {
    name: "ASIMD_FP_SHIFT_IMM", // SCVTF, UCVTF, FCVTZS, FCVTZU (vector, fixed-point)
    pattern: "0 Q:1 U:1 011110 immh:4 immb:3 opcode:5 1 Rn:5 Rd:5",
    decode: (f) => fixedImm(f.Q!, f.U!, f.immh!, f.immb!, f.opcode!, f.Rn!, f.Rd!, false),
  },
  {
    name: "ASIMD_FP_SCALAR_SHIFT_IMM",
    pattern: "01 U:1 111110 immh:4 immb:3 opcode:5 1 Rn:5 Rd:5",
    decode: (f) => fixedImm(1, f.U!, f.immh!, f.immb!, f.opcode!, f.Rn!, f.Rd!, true),
  },
  {
    name: "FMOV_VECTOR_IMM", // FMOV (vector, immediate), single and double
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

function byElement(
  Q: number,
  U: number,
  sz: number,
  L: number,
  M: number,
  rm: number,
  opcode: number,
  H: number,
  n: number,
  d: number,
  scalar: boolean,
): Exec | null {
  let op: LaneOp;
  if (U === 0 && opcode === 0b0001) op = opFmla;
  else if (U === 0 && opcode === 0b0101) op = opFmls;
  else if (opcode === 0b1001) op = U ? opMulX : opMul;
  else return null;
  const N = sz ? 64 : 32;
  if (sz === 1 && L === 1) return null;
  const index = sz ? H : (H << 1) | L;
  const cnt = scalar ? 1 : vcount(N, Q);
  if (cnt === null) return null;
  return lanes(N, cnt, op, d, n, (M << 4) | rm, index);
}

function fixedImm(
  Q: number,
  U: number,
  immh: number,
  immb: number,
  opcode: number,
  n: number,
  d: number,
  scalar: boolean,
): Exec | null {
  if (opcode !== 0b11100 && opcode !== 0b11111) return null;
  if ((immh & 0b1100) === 0) return null; // immh 0000: other class; 001x: FP16 (v8.2)
  const N = (immh & 8) !== 0 ? 64 : 32;
  const fbits = 2 * N - ((immh << 3) | immb);
  const cnt = scalar ? 1 : vcount(N, Q);
  if (cnt === null) return null;
  const op = opcode === 0b11100 ? opToFp(U === 1, fbits) : opToInt(RM.ZERO, U === 1, fbits);
  return lanes(N, cnt, op, d, n, n);
}
