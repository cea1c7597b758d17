/**
 * Scalar floating point (Arm ARM C4.1.96 "Data Processing -- Scalar Floating-Point and
 * Advanced SIMD", the ftype-based scalar groups): FMOV, arithmetic, FMADD family, FCVT,
 * FRINT*, compares, FCCMP, FCSEL and the FP <-> integer conversions. Armv8.0 only: half
 * precision appears in FCVT alone (FP16 arithmetic is Armv8.2), FJCVTZS (v8.3) and FRINT32/64
 * (v8.5) are UNDEFINED.
 *
 * The arithmetic itself lives in ../fpcore.ts; every executor here checks FP access, clears
 * the flag accumulator, runs the operation and only then writes the destination and FPSR.
 * The table (FP_SCALAR, at the end) is one pattern per instruction, all of feature FP; the
 * shared formats are FMT and the family lists (DP1, DP2, DP3, INT_CONV, FIXED_CONV) above it.
 */
import { conditionHolds } from "../alu.ts";
import type { Exec, Fields, Pattern } from "../decoder.ts";
import {
  fixedToFp,
  fp,
  fpAdd,
  fpCompare,
  fpConvert,
  fpcrMode,
  fpDiv,
  fpMax,
  fpMaxNum,
  fpMin,
  fpMinNum,
  fpMul,
  fpMulAdd,
  fpRoundInt,
  fpSqrt,
  fpSub,
  fpToFixed,
  RM,
} from "../fpcore.ts";
import { xr, xw } from "../regs.ts";
import { R64 } from "../ret64.ts";
import { I } from "../state.ts";

/** u32 index of V register n. */
const vi = (n: number): number => I.V + 4 * n;

/** Writes a scalar S/H result (zero-extended to 128 bits). */
function wr32(r: Uint32Array, i: number, v: number): void {
  r[i] = v;
  r[i + 1] = 0;
  r[i + 2] = 0;
  r[i + 3] = 0;
}
function wr64(r: Uint32Array, i: number, lo: number, hi: number): void {
  r[i] = lo;
  r[i + 1] = hi;
  r[i + 2] = 0;
  r[i + 3] = 0;
}
function commitFlags(r: Uint32Array): void {
  if (fp.flags !== 0) r[I.FPSR] = (r[I.FPSR]! | fp.flags) >>> 0;
}

/** ftype -> size in bits for arithmetic (single, double); null when unallocated in v8.0. */
function arithSize(ftype: number): number | null {
  return ftype === 0 ? 32 : ftype === 1 ? 64 : null;
}
/** ftype -> size for FCVT (half allowed). */
function cvtSize(t: number): number | null {
  return t === 0 ? 32 : t === 1 ? 64 : t === 3 ? 16 : null;
}

type Op2 = (N: number, ah: number, al: number, bh: number, bl: number, fpcr: number) => void;

function twoSource(N: number, op: Op2, negate: boolean, d: number, n: number, m: number): Exec {
  const di = vi(d);
  const ni = vi(n);
  const mi = vi(m);
  if (N === 32) {
    const neg = negate ? 0x80000000 : 0;
    return (c) => {
      c.checkFp();
      const r = c.r;
      fp.flags = 0;
      op(32, 0, r[ni]!, 0, r[mi]!, r[I.FPCR]!);
      wr32(r, di, (R64.lo ^ neg) >>> 0);
      commitFlags(r);
    };
  }
  const neg = negate ? 0x80000000 : 0;
  return (c) => {
    c.checkFp();
    const r = c.r;
    fp.flags = 0;
    op(64, r[ni + 1]!, r[ni]!, r[mi + 1]!, r[mi]!, r[I.FPCR]!);
    wr64(r, di, R64.lo, (R64.hi ^ neg) >>> 0);
    commitFlags(r);
  };
}

function threeSource(N: number, o1: number, o0: number, d: number, n: number, m: number, a: number): Exec {
  const di = vi(d);
  const ni = vi(n);
  const mi = vi(m);
  const ai = vi(a);
  // FMSUB negates op1, FNMADD negates both, FNMSUB the addend (FPNeg: NaNs flip sign too).
  const neg1 = o0 !== o1 ? 0x80000000 : 0; // FMSUB (0,1), FNMADD (1,0)
  const negA = o1 === 1 ? 0x80000000 : 0;
  if (N === 32) {
    return (c) => {
      c.checkFp();
      const r = c.r;
      fp.flags = 0;
      fpMulAdd(32, 0, (r[ai]! ^ negA) >>> 0, 0, (r[ni]! ^ neg1) >>> 0, 0, r[mi]!, r[I.FPCR]!);
      wr32(r, di, R64.lo);
      commitFlags(r);
    };
  }
  return (c) => {
    c.checkFp();
    const r = c.r;
    fp.flags = 0;
    fpMulAdd(
      64,
      (r[ai + 1]! ^ negA) >>> 0,
      r[ai]!,
      (r[ni + 1]! ^ neg1) >>> 0,
      r[ni]!,
      r[mi + 1]!,
      r[mi]!,
      r[I.FPCR]!,
    );
    wr64(r, di, R64.lo, R64.hi);
    commitFlags(r);
  };
}

/** FCVT: `ftype` is the source precision, `opc` the destination (half allowed). */
function fcvt(f: Fields): Exec | null {
  const from = cvtSize(f.ftype!);
  const to = cvtSize(f.opc!);
  if (from === null || to === null || from === to) return null;
  const di = vi(f.Rd!);
  const ni = vi(f.Rn!);
  return (c) => {
    c.checkFp();
    const r = c.r;
    fp.flags = 0;
    const fpcr = r[I.FPCR]!;
    fpConvert(from, to, r[ni + 1]!, from === 16 ? r[ni]! & 0xffff : r[ni]!, fpcr, fpcrMode(fpcr));
    if (to === 64) wr64(r, di, R64.lo, R64.hi);
    else wr32(r, di, R64.lo);
    commitFlags(r);
  };
}

/** FMOV (register), FABS, FNEG (scalar), by `opcode` 0, 1, 2: the sign bit kept, cleared, flipped. */
function moveSign(opcode: number) {
  return (f: Fields): Exec | null => {
    const N = arithSize(f.ftype!);
    if (N === null) return null;
    const di = vi(f.Rd!);
    const ni = vi(f.Rn!);
    return (c) => {
      c.checkFp();
      const r = c.r;
      const lo = r[ni]!;
      const hi = r[ni + 1]!;
      if (N === 32) wr32(r, di, opcode === 0 ? lo : opcode === 1 ? lo & 0x7fffffff : (lo ^ 0x80000000) >>> 0);
      else wr64(r, di, lo, opcode === 0 ? hi : opcode === 1 ? hi & 0x7fffffff : (hi ^ 0x80000000) >>> 0);
    };
  };
}

function fsqrt(f: Fields): Exec | null {
  const N = arithSize(f.ftype!);
  if (N === null) return null;
  const di = vi(f.Rd!);
  const ni = vi(f.Rn!);
  return (c) => {
    c.checkFp();
    const r = c.r;
    fp.flags = 0;
    fpSqrt(N, r[ni + 1]!, r[ni]!, r[I.FPCR]!);
    if (N === 32) wr32(r, di, R64.lo);
    else wr64(r, di, R64.lo, R64.hi);
    commitFlags(r);
  };
}

/** FRINT<x> (scalar): `fixed` rounding mode (-1: FPCR's), `exact` signals Inexact (FRINTX). */
function frint(fixed: number, exact: boolean) {
  return (f: Fields): Exec | null => {
    const N = arithSize(f.ftype!);
    if (N === null) return null;
    const di = vi(f.Rd!);
    const ni = vi(f.Rn!);
    return (c) => {
      c.checkFp();
      const r = c.r;
      fp.flags = 0;
      const fpcr = r[I.FPCR]!;
      fpRoundInt(N, r[ni + 1]!, r[ni]!, fpcr, fixed >= 0 ? fixed : fpcrMode(fpcr), exact);
      if (N === 32) wr32(r, di, R64.lo);
      else wr64(r, di, R64.lo, R64.hi);
      commitFlags(r);
    };
  };
}

/** VFPExpandImm: the 8-bit FMOV immediate as (hi, lo) bits of an N-bit value. */
export function vfpExpandImm(imm8: number, N: number): [number, number] {
  const s = imm8 >>> 7;
  const b6 = (imm8 >>> 6) & 1;
  const e2 = (imm8 >>> 4) & 3;
  const f4 = imm8 & 15;
  if (N === 32) {
    const exp = ((b6 ^ 1) << 7) | (b6 ? 0x7c : 0) | e2;
    return [0, ((s << 31) | (exp << 23) | (f4 << 19)) >>> 0];
  }
  const exp = ((b6 ^ 1) << 10) | (b6 ? 0x3fc : 0) | e2;
  return [((s << 31) | (exp << 20) | (f4 << 16)) >>> 0, 0];
}

/** A conversion's handler: the fields of its pattern and the fraction bits (0: integer). */
type Conv = (f: Fields, fbits: number) => Exec | null;

/** FCVT<r>S/U (scalar, integer and fixed-point): FP register to general register, rounding `mode`. */
function toInt(mode: number, unsigned: boolean): Conv {
  return (f, fbits) => {
    const N = arithSize(f.ftype!);
    if (N === null) return null;
    const M = f.sf ? 64 : 32;
    const ni = vi(f.Rn!);
    const dw = xw(f.Rd!);
    return (c) => {
      c.checkFp();
      const r = c.r;
      fp.flags = 0;
      fpToFixed(N, r[ni + 1]!, r[ni]!, fbits, unsigned, M, r[I.FPCR]!, mode);
      r[dw] = R64.lo;
      r[dw + 1] = M === 64 ? R64.hi : 0;
      commitFlags(r);
    };
  };
}

/** SCVTF / UCVTF (scalar, integer and fixed-point): general register to FP register. */
function toFp(unsigned: boolean): Conv {
  return (f, fbits) => {
    const N = arithSize(f.ftype!);
    if (N === null) return null;
    const M = f.sf ? 64 : 32;
    const di = vi(f.Rd!);
    const nr = xr(f.Rn!);
    return (c) => {
      c.checkFp();
      const r = c.r;
      fp.flags = 0;
      const fpcr = r[I.FPCR]!;
      fixedToFp(N, M === 64 ? r[nr + 1]! : 0, r[nr]!, M, fbits, unsigned, fpcr, fpcrMode(fpcr));
      if (N === 32) wr32(r, di, R64.lo);
      else wr64(r, di, R64.lo, R64.hi);
      commitFlags(r);
    };
  };
}

/** FMOV (general) between Wn and Sd or Xn and Dd (FP16 forms are Armv8.2: UNDEFINED). */
function fmovGeneral(toGen: boolean) {
  return (f: Fields): Exec | null => {
    const sf = f.sf!;
    if (!((sf === 0 && f.ftype === 0) || (sf === 1 && f.ftype === 1))) return null;
    if (toGen) {
      const ni = vi(f.Rn!);
      const dw = xw(f.Rd!);
      return (c) => {
        c.checkFp();
        c.r[dw] = c.r[ni]!;
        c.r[dw + 1] = sf ? c.r[ni + 1]! : 0;
      };
    }
    const di = vi(f.Rd!);
    const nr = xr(f.Rn!);
    return (c) => {
      c.checkFp();
      if (sf) wr64(c.r, di, c.r[nr]!, c.r[nr + 1]!);
      else wr32(c.r, di, c.r[nr]!);
    };
  };
}

/** FMOV Xd, Vn.D[1]. */
function fmovFromTop(f: Fields): Exec {
  const ni = vi(f.Rn!) + 2;
  const dw = xw(f.Rd!);
  return (c) => {
    c.checkFp();
    c.r[dw] = c.r[ni]!;
    c.r[dw + 1] = c.r[ni + 1]!;
  };
}

/** FMOV Vd.D[1], Xn (the rest of Vd is kept). */
function fmovToTop(f: Fields): Exec {
  const di = vi(f.Rd!) + 2;
  const nr = xr(f.Rn!);
  return (c) => {
    c.checkFp();
    c.r[di] = c.r[nr]!;
    c.r[di + 1] = c.r[nr + 1]!;
  };
}

function setNzcv(r: Uint32Array, nzcv: number): void {
  r[I.PSTATE] = ((r[I.PSTATE]! & 0x0fffffff) | (nzcv << 28)) >>> 0;
}

/** FCMP / FCMPE (`signal`: quiet NaNs raise Invalid too), with Vm or `zero` (#0.0). */
function fcmp(signal: boolean) {
  return (f: Fields): Exec | null => {
    const N = arithSize(f.ftype!);
    if (N === null) return null;
    const zero = f.zero === 1;
    const ni = vi(f.Rn!);
    const mi = zero ? I.ZERO : vi(f.Rm!);
    return (c) => {
      c.checkFp();
      const r = c.r;
      fp.flags = 0;
      const nzcv = fpCompare(N, r[ni + 1]!, r[ni]!, N === 64 ? r[mi + 1]! : 0, r[mi]!, signal, r[I.FPCR]!);
      setNzcv(r, nzcv);
      commitFlags(r);
    };
  };
}

/** FCCMP / FCCMPE: the compare when `cond` holds, else NZCV = the immediate. */
function fccmp(signal: boolean) {
  return (f: Fields): Exec | null => {
    const N = arithSize(f.ftype!);
    if (N === null) return null;
    const ni = vi(f.Rn!);
    const mi = vi(f.Rm!);
    const cond = f.cond!;
    const imm = f.nzcv!;
    return (c) => {
      c.checkFp();
      const r = c.r;
      if (conditionHolds(c, cond)) {
        fp.flags = 0;
        setNzcv(r, fpCompare(N, r[ni + 1]!, r[ni]!, r[mi + 1]!, r[mi]!, signal, r[I.FPCR]!));
        commitFlags(r);
      } else setNzcv(r, imm);
    };
  };
}

function fcsel(f: Fields): Exec | null {
  const N = arithSize(f.ftype!);
  if (N === null) return null;
  const di = vi(f.Rd!);
  const ni = vi(f.Rn!);
  const mi = vi(f.Rm!);
  const cond = f.cond!;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const si = conditionHolds(c, cond) ? ni : mi;
    wr64(r, di, r[si]!, N === 64 ? r[si + 1]! : 0);
  };
}

/** FMOV (scalar, immediate). */
function fmovImm(f: Fields): Exec | null {
  const N = arithSize(f.ftype!);
  if (N === null) return null;
  const [hi, lo] = vfpExpandImm(f.imm8!, N);
  const di = vi(f.Rd!);
  return (c) => {
    c.checkFp();
    wr64(c.r, di, lo, hi);
  };
}

const bin = (v: number, width: number) => v.toString(2).padStart(width, "0");

/**
 * The formats (decodetree's `@...`), one per encoding group of C4.1.96: the bits an
 * instruction fixes are its opcode, the named fields are what its handler reads.
 */
const FMT = {
  /** Floating-point data-processing (1 source). */
  dp1: (opcode: number) => `0 0 0 11110 ftype:2 1 ${bin(opcode, 6)} 10000 Rn:5 Rd:5`,
  /** Floating-point data-processing (2 source). */
  dp2: (opcode: number) => `0 0 0 11110 ftype:2 1 Rm:5 ${bin(opcode, 4)} 10 Rn:5 Rd:5`,
  /** Floating-point data-processing (3 source). */
  dp3: (o1: number, o0: number) => `0 0 0 11111 ftype:2 ${o1} Rm:5 ${o0} Ra:5 Rn:5 Rd:5`,
  /** Conversion between floating-point and integer (`sf`, `ftype` fixed by the FMOV top-half forms). */
  int: (rmode: number, opcode: number, sf = "sf:1", ftype = "ftype:2") =>
    `${sf} 0 0 11110 ${ftype} 1 ${bin(rmode, 2)} ${bin(opcode, 3)} 000000 Rn:5 Rd:5`,
  /** Floating-point compare; `e` = 1 signals on quiet NaNs (FCMPE). */
  cmp: (e: number) => `0 0 0 11110 ftype:2 1 Rm:5 00 1000 Rn:5 ${e} zero:1 000`,
  /** Floating-point conditional compare; `e` as for cmp. */
  ccmp: (e: number) => `0 0 0 11110 ftype:2 1 Rm:5 cond:4 01 Rn:5 ${e} nzcv:4`,
  /** Conversion between floating-point and fixed-point. */
  fixed: (rmode: number, opcode: number) =>
    `sf:1 0 0 11110 ftype:2 0 ${bin(rmode, 2)} ${bin(opcode, 3)} scale:6 Rn:5 Rd:5`,
};

/** Floating-point data-processing (2 source): [name, opcode, operation]. FNMUL negates. */
const DP2: readonly [string, number, Op2][] = [
  ["FMUL (scalar)", 0, fpMul],
  ["FDIV (scalar)", 1, fpDiv],
  ["FADD (scalar)", 2, fpAdd],
  ["FSUB (scalar)", 3, fpSub],
  ["FMAX (scalar)", 4, fpMax],
  ["FMIN (scalar)", 5, fpMin],
  ["FMAXNM (scalar)", 6, fpMaxNum],
  ["FMINNM (scalar)", 7, fpMinNum],
  ["FNMUL (scalar)", 8, fpMul],
];
/** Floating-point data-processing (1 source), besides FCVT: [name, opcode, handler]. */
const DP1: readonly [string, number, (f: Fields) => Exec | null][] = [
  ["FMOV (register)", 0, moveSign(0)],
  ["FABS (scalar)", 1, moveSign(1)],
  ["FNEG (scalar)", 2, moveSign(2)],
  ["FSQRT (scalar)", 3, fsqrt],
  ["FRINTN (scalar)", 8, frint(RM.TIEEVEN, false)],
  ["FRINTP (scalar)", 9, frint(RM.POSINF, false)],
  ["FRINTM (scalar)", 10, frint(RM.NEGINF, false)],
  ["FRINTZ (scalar)", 11, frint(RM.ZERO, false)],
  ["FRINTA (scalar)", 12, frint(RM.TIEAWAY, false)],
  ["FRINTX (scalar)", 14, frint(-1, true)],
  ["FRINTI (scalar)", 15, frint(-1, false)],
];
/** Floating-point data-processing (3 source): [name, o1, o0]. */
const DP3: readonly [string, number, number][] = [
  ["FMADD", 0, 0],
  ["FMSUB", 0, 1],
  ["FNMADD", 1, 0],
  ["FNMSUB", 1, 1],
];
/** Conversion between floating-point and integer: [name, rmode, opcode, handler]. */
const INT_CONV: readonly [string, number, number, Conv][] = [
  ["FCVTNS (scalar)", 0, 0, toInt(RM.TIEEVEN, false)],
  ["FCVTNU (scalar)", 0, 1, toInt(RM.TIEEVEN, true)],
  ["SCVTF (scalar, integer)", 0, 2, toFp(false)],
  ["UCVTF (scalar, integer)", 0, 3, toFp(true)],
  ["FCVTAS (scalar)", 0, 4, toInt(RM.TIEAWAY, false)],
  ["FCVTAU (scalar)", 0, 5, toInt(RM.TIEAWAY, true)],
  ["FCVTPS (scalar)", 1, 0, toInt(RM.POSINF, false)],
  ["FCVTPU (scalar)", 1, 1, toInt(RM.POSINF, true)],
  ["FCVTMS (scalar)", 2, 0, toInt(RM.NEGINF, false)],
  ["FCVTMU (scalar)", 2, 1, toInt(RM.NEGINF, true)],
  ["FCVTZS (scalar, integer)", 3, 0, toInt(RM.ZERO, false)],
  ["FCVTZU (scalar, integer)", 3, 1, toInt(RM.ZERO, true)],
];
/** Conversion between floating-point and fixed-point: [name, rmode, opcode, handler]. */
const FIXED_CONV: readonly [string, number, number, Conv][] = [
  ["FCVTZS (scalar, fixed-point)", 3, 0, toInt(RM.ZERO, false)],
  ["FCVTZU (scalar, fixed-point)", 3, 1, toInt(RM.ZERO, true)],
  ["SCVTF (scalar, fixed-point)", 0, 2, toFp(false)],
  ["UCVTF (scalar, fixed-point)", 0, 3, toFp(true)],
];

type Entry = Omit<Pattern, "feature">;

const TABLE: Entry[] = [
  ...INT_CONV.map(([name, rmode, opcode, conv]) => ({
    name,
    pattern: FMT.int(rmode, opcode),
    decode: (f: Fields) => conv(f, 0),
  })),
  { name: "FMOV (general, to general)", pattern: FMT.int(0, 6), decode: fmovGeneral(true) },
  { name: "FMOV (general, from general)", pattern: FMT.int(0, 7), decode: fmovGeneral(false) },
  // The top-half forms: sf = 1 and ftype = 10 (Vn.D[1] / Vd.D[1]).
  {
    name: "FMOV (general, top half to 64-bit)",
    pattern: FMT.int(1, 6, "1", "10"),
    decode: fmovFromTop,
  },
  {
    name: "FMOV (general, 64-bit to top half)",
    pattern: FMT.int(1, 7, "1", "10"),
    decode: fmovToTop,
  },
  ...FIXED_CONV.map(([name, rmode, opcode, conv]) => ({
    name,
    pattern: FMT.fixed(rmode, opcode),
    // A 32-bit general register allows 1..32 fraction bits only.
    decode: (f: Fields) => (f.sf === 0 && f.scale! < 32 ? null : conv(f, 64 - f.scale!)),
  })),
  { name: "FCMP", pattern: FMT.cmp(0), decode: fcmp(false) },
  { name: "FCMPE", pattern: FMT.cmp(1), decode: fcmp(true) },
  {
    name: "FMOV (scalar, immediate)",
    pattern: "0 0 0 11110 ftype:2 1 imm8:8 100 00000 Rd:5",
    decode: fmovImm,
  },
  { name: "FCCMP", pattern: FMT.ccmp(0), decode: fccmp(false) },
  { name: "FCCMPE", pattern: FMT.ccmp(1), decode: fccmp(true) },
  ...DP2.map(([name, opcode, op]) => ({
    name,
    pattern: FMT.dp2(opcode),
    decode: (f: Fields) => {
      const N = arithSize(f.ftype!);
      return N === null ? null : twoSource(N, op, opcode === 8, f.Rd!, f.Rn!, f.Rm!);
    },
  })),
  { name: "FCSEL", pattern: "0 0 0 11110 ftype:2 1 Rm:5 cond:4 11 Rn:5 Rd:5", decode: fcsel },
  ...DP1.map(([name, opcode, decode]) => ({ name, pattern: FMT.dp1(opcode), decode })),
  // FCVT: opcode 0001 opc, opc the destination precision.
  { name: "FCVT", pattern: "0 0 0 11110 ftype:2 1 0001 opc:2 10000 Rn:5 Rd:5", decode: fcvt },
  ...DP3.map(([name, o1, o0]) => ({
    name,
    pattern: FMT.dp3(o1, o0),
    decode: (f: Fields) => {
      const N = arithSize(f.ftype!);
      return N === null ? null : threeSource(N, o1, o0, f.Rd!, f.Rn!, f.Rm!, f.Ra!);
    },
  })),
];

/** The scalar floating-point instructions, one pattern each, all of feature FP. */
export const FP_SCALAR: Pattern[] = TABLE.map((p) => ({ ...p, feature: "FP" }));
