/**
 * Scalar floating point (Arm ARM C4.1.96 "Data Processing -- Scalar Floating-Point and
 * Advanced SIMD", the ftype-based scalar groups): FMOV, arithmetic, FMADD family, FCVT,
 * FRINT*, compares, FCCMP, FCSEL and the FP <-> integer conversions. Armv8.0 only: half
 * precision appears in FCVT alone (FP16 arithmetic is Armv8.2), FJCVTZS (v8.3) and FRINT32/64
 * (v8.5) are UNDEFINED.
 *
 * The arithmetic itself lives in ../fpcore.ts; every executor here checks FP access, clears
 * the flag accumulator, runs the operation and only then writes the destination and FPSR.
 */
import { conditionHolds } from "../alu.ts";
import type { Exec, Pattern } from "../decoder.ts";
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
const OPS2: (Op2 | null)[] = [fpMul, fpDiv, fpAdd, fpSub, fpMax, fpMin, fpMaxNum, fpMinNum, fpMul];

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
      wr32(r, di, (fp.lo ^ neg) >>> 0);
      commitFlags(r);
    };
  }
  const neg = negate ? 0x80000000 : 0;
  return (c) => {
    c.checkFp();
    const r = c.r;
    fp.flags = 0;
    op(64, r[ni + 1]!, r[ni]!, r[mi + 1]!, r[mi]!, r[I.FPCR]!);
    wr64(r, di, fp.lo, (fp.hi ^ neg) >>> 0);
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
      wr32(r, di, fp.lo);
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
    wr64(r, di, fp.lo, fp.hi);
    commitFlags(r);
  };
}

function oneSource(ftype: number, opcode: number, d: number, n: number): Exec | null {
  const di = vi(d);
  const ni = vi(n);
  if (opcode === 4 || opcode === 5 || opcode === 7) {
    // FCVT: ftype is the source precision, opcode<1:0> the destination.
    const from = cvtSize(ftype);
    const to = cvtSize(opcode & 3);
    if (from === null || to === null || from === to) return null;
    return (c) => {
      c.checkFp();
      const r = c.r;
      fp.flags = 0;
      const fpcr = r[I.FPCR]!;
      fpConvert(from, to, r[ni + 1]!, from === 16 ? r[ni]! & 0xffff : r[ni]!, fpcr, fpcrMode(fpcr));
      if (to === 64) wr64(r, di, fp.lo, fp.hi);
      else wr32(r, di, fp.lo);
      commitFlags(r);
    };
  }
  const N = arithSize(ftype);
  if (N === null) return null;
  const sign = N === 32 ? 0 : 1; // u32 offset of the word holding the sign bit
  switch (opcode) {
    case 0: // FMOV (register)
    case 1: // FABS
    case 2: // FNEG
      return (c) => {
        c.checkFp();
        const r = c.r;
        const lo = r[ni]!;
        const hi = r[ni + 1]!;
        if (N === 32)
          wr32(r, di, opcode === 0 ? lo : opcode === 1 ? lo & 0x7fffffff : (lo ^ 0x80000000) >>> 0);
        else wr64(r, di, lo, opcode === 0 ? hi : opcode === 1 ? hi & 0x7fffffff : (hi ^ 0x80000000) >>> 0);
      };
    case 3: // FSQRT
      return (c) => {
        c.checkFp();
        const r = c.r;
        fp.flags = 0;
        fpSqrt(N, r[ni + 1]!, r[ni]!, r[I.FPCR]!);
        if (N === 32) wr32(r, di, fp.lo);
        else wr64(r, di, fp.lo, fp.hi);
        commitFlags(r);
      };
    case 8: // FRINTN
    case 9: // FRINTP
    case 10: // FRINTM
    case 11: // FRINTZ
    case 12: // FRINTA
    case 14: // FRINTX
    case 15: {
      // FRINTI
      const fixed = opcode <= 12 ? [RM.TIEEVEN, RM.POSINF, RM.NEGINF, RM.ZERO, RM.TIEAWAY][opcode - 8]! : -1;
      const exact = opcode === 14;
      return (c) => {
        c.checkFp();
        const r = c.r;
        fp.flags = 0;
        const fpcr = r[I.FPCR]!;
        fpRoundInt(N, r[ni + 1]!, r[ni]!, fpcr, fixed >= 0 ? fixed : fpcrMode(fpcr), exact);
        if (N === 32) wr32(r, di, fp.lo);
        else wr64(r, di, fp.lo, fp.hi);
        commitFlags(r);
      };
    }
    default:
      void sign;
      return null;
  }
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

/** FP <-> integer conversions and FMOV (general), sf:0 0 11110 ftype 1 rmode opcode 000000. */
function intConv(
  sf: number,
  ftype: number,
  rmode: number,
  opcode: number,
  d: number,
  n: number,
  fbits: number,
): Exec | null {
  const M = sf ? 64 : 32;
  if (opcode >= 6) {
    // FMOV (general)
    const toGen = opcode === 6;
    if (rmode === 1 && sf === 1 && ftype === 2) {
      // FMOV Xd, Vn.D[1] / FMOV Vd.D[1], Xn
      if (toGen) {
        const ni = vi(n) + 2;
        const dw = xw(d);
        return (c) => {
          c.checkFp();
          c.r[dw] = c.r[ni]!;
          c.r[dw + 1] = c.r[ni + 1]!;
        };
      }
      const di = vi(d) + 2;
      const nr = xr(n);
      return (c) => {
        c.checkFp();
        c.r[di] = c.r[nr]!;
        c.r[di + 1] = c.r[nr + 1]!;
      };
    }
    if (rmode !== 0 || !((sf === 0 && ftype === 0) || (sf === 1 && ftype === 1))) return null;
    if (toGen) {
      const ni = vi(n);
      const dw = xw(d);
      return (c) => {
        c.checkFp();
        c.r[dw] = c.r[ni]!;
        c.r[dw + 1] = sf ? c.r[ni + 1]! : 0;
      };
    }
    const di = vi(d);
    const nr = xr(n);
    return (c) => {
      c.checkFp();
      if (sf) wr64(c.r, di, c.r[nr]!, c.r[nr + 1]!);
      else wr32(c.r, di, c.r[nr]!);
    };
  }
  const N = arithSize(ftype);
  if (N === null) return null;
  if (opcode === 2 || opcode === 3) {
    // SCVTF / UCVTF (rmode 00)
    if (rmode !== 0) return null;
    const unsigned = opcode === 3;
    const di = vi(d);
    const nr = xr(n);
    return (c) => {
      c.checkFp();
      const r = c.r;
      fp.flags = 0;
      const fpcr = r[I.FPCR]!;
      fixedToFp(N, M === 64 ? r[nr + 1]! : 0, r[nr]!, M, fbits, unsigned, fpcr, fpcrMode(fpcr));
      if (N === 32) wr32(r, di, fp.lo);
      else wr64(r, di, fp.lo, fp.hi);
      commitFlags(r);
    };
  }
  // FCVT{N,P,M,Z}{S,U} (opcode 0/1, rmode selects), FCVTA{S,U} (opcode 4/5, rmode 00)
  let mode: number;
  let unsigned: boolean;
  if (opcode <= 1) {
    mode = [RM.TIEEVEN, RM.POSINF, RM.NEGINF, RM.ZERO][rmode]!;
    unsigned = opcode === 1;
  } else if (opcode === 4 || opcode === 5) {
    if (rmode !== 0) return null;
    mode = RM.TIEAWAY;
    unsigned = opcode === 5;
  } else return null;
  const ni = vi(n);
  const dw = xw(d);
  return (c) => {
    c.checkFp();
    const r = c.r;
    fp.flags = 0;
    fpToFixed(N, r[ni + 1]!, r[ni]!, fbits, unsigned, M, r[I.FPCR]!, mode);
    r[dw] = fp.lo;
    r[dw + 1] = M === 64 ? fp.hi : 0;
    commitFlags(r);
  };
}

function setNzcv(r: Uint32Array, nzcv: number): void {
  r[I.PSTATE] = ((r[I.PSTATE]! & 0x0fffffff) | (nzcv << 28)) >>> 0;
}

export const FP_SCALAR: Pattern[] = [
  {
    name: "FP_INT_CONV", // FCVT*, SCVTF, UCVTF, FMOV (general)
    pattern: "sf:1 0 0 11110 ftype:2 1 rmode:2 opcode:3 000000 Rn:5 Rd:5",
    decode: (f) => intConv(f.sf!, f.ftype!, f.rmode!, f.opcode!, f.Rd!, f.Rn!, 0),
  },
  {
    name: "FP_FIXED_CONV", // FCVTZS/FCVTZU/SCVTF/UCVTF (scalar, fixed-point)
    pattern: "sf:1 0 0 11110 ftype:2 0 rmode:2 opcode:3 scale:6 Rn:5 Rd:5",
    decode: (f) => {
      const { sf, rmode, opcode, scale } = f as Record<string, number>;
      if (sf === 0 && scale! < 32) return null;
      const fbits = 64 - scale!;
      if (rmode === 3 && opcode! <= 1) return intConv(sf!, f.ftype!, 3, opcode!, f.Rd!, f.Rn!, fbits);
      if (rmode === 0 && (opcode === 2 || opcode === 3))
        return intConv(sf!, f.ftype!, 0, opcode, f.Rd!, f.Rn!, fbits);
      return null;
    },
  },
  {
    name: "FCMP", // FCMP, FCMPE, with register or #0.0
    pattern: "0 0 0 11110 ftype:2 1 Rm:5 op:2 1000 Rn:5 opc2:5",
    decode: (f) => {
      const N = arithSize(f.ftype!);
      if (N === null || f.op !== 0 || (f.opc2! & 7) !== 0) return null;
      const signal = (f.opc2! & 0x10) !== 0;
      const zero = (f.opc2! & 8) !== 0;
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
    },
  },
  {
    name: "FMOV_IMM", // FMOV (scalar, immediate)
    pattern: "0 0 0 11110 ftype:2 1 imm8:8 100 imm5:5 Rd:5",
    decode: (f) => {
      const N = arithSize(f.ftype!);
      if (N === null || f.imm5 !== 0) return null;
      const [hi, lo] = vfpExpandImm(f.imm8!, N);
      const di = vi(f.Rd!);
      return (c) => {
        c.checkFp();
        wr64(c.r, di, lo, hi);
      };
    },
  },
  {
    name: "FCCMP", // FCCMP, FCCMPE
    pattern: "0 0 0 11110 ftype:2 1 Rm:5 cond:4 01 Rn:5 op:1 nzcv:4",
    decode: (f) => {
      const N = arithSize(f.ftype!);
      if (N === null) return null;
      const ni = vi(f.Rn!);
      const mi = vi(f.Rm!);
      const cond = f.cond!;
      const imm = f.nzcv!;
      const signal = f.op === 1;
      return (c) => {
        c.checkFp();
        const r = c.r;
        if (conditionHolds(c, cond)) {
          fp.flags = 0;
          setNzcv(r, fpCompare(N, r[ni + 1]!, r[ni]!, r[mi + 1]!, r[mi]!, signal, r[I.FPCR]!));
          commitFlags(r);
        } else setNzcv(r, imm);
      };
    },
  },
  {
    name: "FP_DP2", // FMUL, FDIV, FADD, FSUB, FMAX, FMIN, FMAXNM, FMINNM, FNMUL
    pattern: "0 0 0 11110 ftype:2 1 Rm:5 opcode:4 10 Rn:5 Rd:5",
    decode: (f) => {
      const N = arithSize(f.ftype!);
      const op = OPS2[f.opcode!];
      if (N === null || !op) return null;
      return twoSource(N, op, f.opcode === 8, f.Rd!, f.Rn!, f.Rm!);
    },
  },
  {
    name: "FCSEL",
    pattern: "0 0 0 11110 ftype:2 1 Rm:5 cond:4 11 Rn:5 Rd:5",
    decode: (f) => {
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
    },
  },
  {
    name: "FP_DP1", // FMOV, FABS, FNEG, FSQRT, FCVT, FRINT*
    pattern: "0 0 0 11110 ftype:2 1 opcode:6 10000 Rn:5 Rd:5",
    decode: (f) => oneSource(f.ftype!, f.opcode!, f.Rd!, f.Rn!),
  },
  {
    name: "FP_DP3", // FMADD, FMSUB, FNMADD, FNMSUB
    pattern: "0 0 0 11111 ftype:2 o1:1 Rm:5 o0:1 Ra:5 Rn:5 Rd:5",
    decode: (f) => {
      const N = arithSize(f.ftype!);
      if (N === null) return null;
      return threeSource(N, f.o1!, f.o0!, f.Rd!, f.Rn!, f.Rm!, f.Ra!);
    },
  },
];
