/**
 * Shared floating-point arithmetic with the Arm ARM pseudocode semantics (shared/functions/float):
 * FPAdd, FPMul, FPDiv, FPMulAdd, FPSqrt, FPMax/Min(Num), FPCompare*, FPRoundInt, FPToFixed,
 * FixedToFP, FPConvert, the reciprocal (square root) estimates and steps, FPRecpX, FMULX.
 *
 * Conventions
 * - Operands are raw bit patterns. An N-bit operand is passed as (hi, lo): for N = 64 the two
 *   32-bit halves, for N <= 32 `hi` is ignored and `lo` holds the bits.
 * - Results come back in `R64.hi` / `R64.lo` (lo only for N <= 32, hi = 0); the `*32` helpers
 *   return the 32-bit result directly. Nothing allocates on common paths.
 * - Cumulative exception flags are ORed into `fp.flags` (FPSR layout: IOC bit 0, DZC 1, OFC 2,
 *   UFC 3, IXC 4, IDC 7). Callers clear it, run the operation(s), then OR it into FPSR only if
 *   the whole instruction completes.
 * - `fpcr` is the FPCR value: RMode 23:22, FZ 24, DN 25, AHP 26 (FZ16 19 is Armv8.2 FP16
 *   arithmetic, which is not implemented: half precision appears only in conversions, where the
 *   Arm ARM forces FZ16 to 0).
 *
 * Exactness strategy: every non-NaN value of every format is exactly a JS double. Results are
 * computed as a double `s` plus the exact error sign (error-free transforms: TwoSum, Dekker's
 * TwoProduct without FMA), and rounded by `finish()` when that is provably correct (normal
 * result, away from the overflow and underflow thresholds). Everything else takes the exact
 * slow path: the value as a BigInt mantissa and a binary exponent, rounded by `roundBig`,
 * which is a transcription of FPRoundBase.
 */
import { R64 } from "./ret64.ts";

export const FPSR_IOC = 1;
export const FPSR_DZC = 2;
export const FPSR_OFC = 4;
export const FPSR_UFC = 8;
export const FPSR_IXC = 16;
export const FPSR_IDC = 128;

export const FPCR_AHP = 1 << 26;
export const FPCR_DN = 1 << 25;
export const FPCR_FZ = 1 << 24;

/** Rounding modes: 0-3 are FPCR.RMode values; 4 and 5 are used by specific instructions. */
export const RM = { TIEEVEN: 0, POSINF: 1, NEGINF: 2, ZERO: 3, TIEAWAY: 4, ODD: 5 } as const;

/** The FPSR flag accumulator (see header); results are in R64 (ret64.ts). */
export const fp = { flags: 0 };

/** FPRoundingMode(fpcr). */
export function fpcrMode(fpcr: number): number {
  return (fpcr >>> 22) & 3;
}

// -----------------------------------------------------------------------------------------
// Bit conversions

const cvBuf = new ArrayBuffer(8);
const cvF64 = new Float64Array(cvBuf);
const cvF32 = new Float32Array(cvBuf);
const cvU32 = new Uint32Array(cvBuf);

function bitsF64(hi: number, lo: number): number {
  cvU32[0] = lo;
  cvU32[1] = hi;
  return cvF64[0]!;
}
function bitsF32(b: number): number {
  cvU32[0] = b;
  return cvF32[0]!;
}
/** Writes the bits of double x (not NaN) to R64.hi/R64.lo. */
function outF64(x: number): void {
  cvF64[0] = x;
  R64.lo = cvU32[0]!;
  R64.hi = cvU32[1]!;
}
/** Bits of a float32 value x (exactly representable, not NaN). */
function f32Bits(x: number): number {
  cvF32[0] = x;
  return cvU32[0]!;
}
/** Bits of a half value x (exactly representable as IEEE half, not NaN). */
function f16Bits(x: number): number {
  const s = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return s | 0x7c00;
  if (a < 2 ** -14) return s | (a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return s | ((e + 15) << 10) | ((a / 2 ** e - 1) * 1024);
}

/** Writes the N-bit encoding of x (exactly representable in N bits, not NaN) to fp. */
function outValue(N: number, x: number): void {
  if (N === 64) outF64(x);
  else {
    R64.hi = 0;
    R64.lo = N === 32 ? f32Bits(x) : f16Bits(x);
  }
}

// -----------------------------------------------------------------------------------------
// Constants of the formats

function expBits(N: number): number {
  return N === 64 ? 11 : N === 32 ? 8 : 5;
}
function fracBits(N: number): number {
  return N === 64 ? 52 : N === 32 ? 23 : 10;
}

export function setZero(N: number, sign: number): void {
  R64.hi = 0;
  R64.lo = 0;
  if (sign) {
    if (N === 64) R64.hi = 0x80000000;
    else R64.lo = N === 32 ? 0x80000000 : 0x8000;
  }
}
export function setInf(N: number, sign: number): void {
  if (N === 64) {
    R64.hi = (sign ? 0xfff00000 : 0x7ff00000) >>> 0;
    R64.lo = 0;
  } else {
    R64.hi = 0;
    R64.lo = N === 32 ? (sign ? 0xff800000 : 0x7f800000) >>> 0 : sign ? 0xfc00 : 0x7c00;
  }
}
export function setMaxNormal(N: number, sign: number): void {
  if (N === 64) {
    R64.hi = (sign ? 0xffefffff : 0x7fefffff) >>> 0;
    R64.lo = 0xffffffff;
  } else {
    R64.hi = 0;
    R64.lo = N === 32 ? (sign ? 0xff7fffff : 0x7f7fffff) >>> 0 : sign ? 0xfbff : 0x7bff;
  }
}
export function setDefaultNaN(N: number): void {
  if (N === 64) {
    R64.hi = 0x7ff80000;
    R64.lo = 0;
  } else {
    R64.hi = 0;
    R64.lo = N === 32 ? 0x7fc00000 : 0x7e00;
  }
}
function setValueConst(N: number, sign: number, v: number): void {
  outValue(N, sign ? -v : v);
}

// -----------------------------------------------------------------------------------------
// FPUnpack into three operand slots

export const T_ZERO = 0;
export const T_NONZERO = 1;
export const T_INF = 2;
export const T_QNAN = 3;
export const T_SNAN = 4;

const UT = new Int32Array(3); // type
const US = new Int32Array(3); // sign
const UV = new Float64Array(3); // value (exact, signed; +-0 for zero, +-Infinity)
const UH = new Uint32Array(3); // raw hi
const UL = new Uint32Array(3); // raw lo

/**
 * FPUnpack (FPUnpackBase): classifies operand k. Denormal inputs are flushed to zero with IDC
 * when FPCR.FZ is set (N = 32, 64). Half precision (conversions only) is never flushed; with
 * FPCR.AHP an exponent of all ones is an ordinary number.
 */
function unpack(k: number, N: number, hi: number, lo: number, fpcr: number): number {
  hi >>>= 0;
  lo >>>= 0;
  UH[k] = hi;
  UL[k] = lo;
  let t: number;
  let s: number;
  let v: number;
  if (N === 32) {
    s = lo >>> 31;
    const e = (lo >>> 23) & 0xff;
    const f = lo & 0x7fffff;
    if (e === 0) {
      if (f === 0 || (fpcr & FPCR_FZ) !== 0) {
        if (f !== 0) fp.flags |= FPSR_IDC;
        t = T_ZERO;
        v = s ? -0 : 0;
      } else {
        t = T_NONZERO;
        v = bitsF32(lo);
      }
    } else if (e === 0xff) {
      if (f === 0) {
        t = T_INF;
        v = s ? -Infinity : Infinity;
      } else {
        t = (f & 0x400000) !== 0 ? T_QNAN : T_SNAN;
        v = 0;
      }
    } else {
      t = T_NONZERO;
      v = bitsF32(lo);
    }
  } else if (N === 64) {
    s = hi >>> 31;
    const e = (hi >>> 20) & 0x7ff;
    const fh = hi & 0xfffff;
    if (e === 0) {
      if ((fh | lo) === 0 || (fpcr & FPCR_FZ) !== 0) {
        if ((fh | lo) !== 0) fp.flags |= FPSR_IDC;
        t = T_ZERO;
        v = s ? -0 : 0;
      } else {
        t = T_NONZERO;
        v = bitsF64(hi, lo);
      }
    } else if (e === 0x7ff) {
      if ((fh | lo) === 0) {
        t = T_INF;
        v = s ? -Infinity : Infinity;
      } else {
        t = (fh & 0x80000) !== 0 ? T_QNAN : T_SNAN;
        v = 0;
      }
    } else {
      t = T_NONZERO;
      v = bitsF64(hi, lo);
    }
  } else {
    s = (lo >>> 15) & 1;
    const e = (lo >>> 10) & 0x1f;
    const f = lo & 0x3ff;
    if (e === 0) {
      t = f === 0 ? T_ZERO : T_NONZERO;
      v = f * 2 ** -24;
    } else if (e === 0x1f && (fpcr & FPCR_AHP) === 0) {
      if (f === 0) {
        t = T_INF;
        v = Infinity;
      } else {
        t = (f & 0x200) !== 0 ? T_QNAN : T_SNAN;
        v = 0;
      }
    } else {
      t = T_NONZERO;
      v = (1024 + f) * 2 ** (e - 25);
    }
    if (s) v = -v;
  }
  UT[k] = t;
  US[k] = s;
  UV[k] = v;
  return t;
}

/** FPProcessNaN for slot k: quiets an SNaN (IOC), or returns the default NaN when FPCR.DN. */
function processNaN(N: number, k: number, fpcr: number): void {
  const snan = UT[k] === T_SNAN;
  if (snan) fp.flags |= FPSR_IOC;
  if ((fpcr & FPCR_DN) !== 0) {
    setDefaultNaN(N);
    return;
  }
  if (N === 64) {
    R64.hi = (UH[k]! | 0x80000) >>> 0;
    R64.lo = UL[k]!;
  } else {
    R64.hi = 0;
    R64.lo = N === 32 ? (UL[k]! | 0x400000) >>> 0 : UL[k]! | 0x200;
  }
}

/** FPProcessNaNs for slots 0, 1: true when a NaN result was produced. */
function processNaNs2(N: number, fpcr: number): boolean {
  const t0 = UT[0]!;
  const t1 = UT[1]!;
  if (t0 < T_QNAN && t1 < T_QNAN) return false;
  if (t0 === T_SNAN) processNaN(N, 0, fpcr);
  else if (t1 === T_SNAN) processNaN(N, 1, fpcr);
  else if (t0 === T_QNAN) processNaN(N, 0, fpcr);
  else processNaN(N, 1, fpcr);
  return true;
}

/** FPProcessNaNs3 for slots 0, 1, 2. */
function processNaNs3(N: number, fpcr: number): boolean {
  const t0 = UT[0]!;
  const t1 = UT[1]!;
  const t2 = UT[2]!;
  if (t0 < T_QNAN && t1 < T_QNAN && t2 < T_QNAN) return false;
  if (t0 === T_SNAN) processNaN(N, 0, fpcr);
  else if (t1 === T_SNAN) processNaN(N, 1, fpcr);
  else if (t2 === T_SNAN) processNaN(N, 2, fpcr);
  else if (t0 === T_QNAN) processNaN(N, 0, fpcr);
  else if (t1 === T_QNAN) processNaN(N, 1, fpcr);
  else processNaN(N, 2, fpcr);
  return true;
}

// -----------------------------------------------------------------------------------------
// Rounding

const MIN_D = 2 ** -1022;
const MAX_D = Number.MAX_VALUE;
const MIN_F = 2 ** -126;
const MAX_F = (2 - 2 ** -23) * 2 ** 127;

/** Double one step further from (dir > 0) or closer to (dir < 0) zero; x normal. */
function stepMag64(x: number, dir: number): number {
  cvF64[0] = x;
  let lo = cvU32[0]!;
  let hi = cvU32[1]!;
  if (dir > 0) {
    lo = (lo + 1) >>> 0;
    if (lo === 0) hi = (hi + 1) >>> 0;
  } else {
    if (lo === 0) hi = (hi - 1) >>> 0;
    lo = (lo - 1) >>> 0;
  }
  return bitsF64(hi, lo);
}
function stepMag32(x: number, dir: number): number {
  return bitsF32((f32Bits(x) + (dir > 0 ? 1 : -1)) >>> 0);
}

/** Directed rounding of r (nearest representable to the exact value) given sign(exact - r). */
function directed(r: number, dir: number, mode: number, step: (x: number, d: number) => number): number {
  if (mode === RM.POSINF) return dir > 0 ? step(r, r > 0 ? 1 : -1) : r;
  if (mode === RM.NEGINF) return dir < 0 ? step(r, r < 0 ? 1 : -1) : r;
  // toward zero: step inward when the exact value is closer to zero than r
  return (r > 0 && dir < 0) || (r < 0 && dir > 0) ? step(r, -1) : r;
}

/**
 * Rounds "s + err" to N bits, where s is the double nearest to the exact value (s = RNE53 of
 * it) and err is any number with the sign of (exact - s) (0 when s is exact). Returns false,
 * writing nothing, when the result is near an underflow/overflow threshold or otherwise not
 * provably correct: the caller then takes the exact slow path.
 */
function finish(N: number, s: number, err: number, _fpcr: number, mode: number): boolean {
  if (N === 64) {
    const a = Math.abs(s);
    if (!(a > MIN_D && a < MAX_D)) return false;
    if (err !== 0) {
      fp.flags |= FPSR_IXC;
      if (mode !== RM.TIEEVEN) {
        if (mode > RM.ZERO) return false;
        s = directed(s, err, mode, stepMag64);
      }
    }
    outF64(s);
    return true;
  }
  if (N !== 32) return false;
  let f = Math.fround(s);
  const a = Math.abs(f);
  if (!(a > MIN_F && a < MAX_F)) return false;
  let dir = err;
  if (s !== f) {
    // s may sit exactly halfway between two floats; then err decides and fround's tie break
    // may be wrong.
    if (err !== 0 && mode === RM.TIEEVEN) {
      const g = 2 * s - f;
      if (Math.fround(g) === g) return false;
    }
    dir = s - f;
  }
  if (dir !== 0) {
    fp.flags |= FPSR_IXC;
    if (mode !== RM.TIEEVEN) {
      if (mode > RM.ZERO) return false;
      f = directed(f, dir, mode, stepMag32);
    }
  }
  R64.hi = 0;
  R64.lo = f32Bits(f);
  return true;
}

function bitLen(m: bigint): number {
  const s = m.toString(16);
  return (s.length - 1) * 4 + (32 - Math.clz32(parseInt(s[0]!, 16)));
}

/**
 * FPRoundBase: rounds the exact nonzero value m * 2^e (m signed BigInt) to N bits with
 * `mode`, writing R64.hi/R64.lo and raising OFC/UFC/IXC (IOC for AHP overflow). `fz` says
 * whether flush-to-zero applies (FPCR.FZ for N = 32/64; never for N = 16 in Armv8.0).
 */
export function roundBig(N: number, m: bigint, e: number, fpcr: number, mode: number): void {
  const sign = m < 0n ? 1 : 0;
  if (sign) m = -m;
  const E = expBits(N);
  const F = fracBits(N);
  const minExp = 2 - 2 ** (E - 1);
  const len = bitLen(m);
  const exponent = e + len - 1;
  if (N !== 16 && (fpcr & FPCR_FZ) !== 0 && exponent < minExp) {
    fp.flags |= FPSR_UFC;
    setZero(N, sign);
    return;
  }
  let biased = Math.max(exponent - minExp + 1, 0);
  const q = (biased === 0 ? minExp : exponent) - F;
  const shift = q - e;
  let im: bigint;
  let errc = 0; // 0 exact, 1 below half, 2 half, 3 above half
  if (shift <= 0) im = m << BigInt(-shift);
  else {
    const sh = BigInt(shift);
    im = m >> sh;
    const rem = m & ((1n << sh) - 1n);
    if (rem !== 0n) {
      const half = 1n << (sh - 1n);
      errc = rem < half ? 1 : rem === half ? 2 : 3;
    }
  }
  if (biased === 0 && errc !== 0) fp.flags |= FPSR_UFC;
  let roundUp = false;
  let overflowToInf = false;
  switch (mode) {
    case RM.TIEEVEN:
      roundUp = errc === 3 || (errc === 2 && (im & 1n) === 1n);
      overflowToInf = true;
      break;
    case RM.POSINF:
      roundUp = errc !== 0 && sign === 0;
      overflowToInf = sign === 0;
      break;
    case RM.NEGINF:
      roundUp = errc !== 0 && sign === 1;
      overflowToInf = sign === 1;
      break;
    case RM.TIEAWAY:
      roundUp = errc >= 2;
      overflowToInf = true;
      break;
    default: // ZERO, ODD
      break;
  }
  if (roundUp) {
    im++;
    if (im === 1n << BigInt(F)) biased = 1;
    if (im === 1n << BigInt(F + 1)) {
      biased++;
      im >>= 1n;
    }
  }
  if (errc !== 0 && mode === RM.ODD) im |= 1n;
  let inexact = errc !== 0;
  if (N !== 16 || (fpcr & FPCR_AHP) === 0) {
    if (biased >= 2 ** E - 1) {
      if (overflowToInf) setInf(N, sign);
      else setMaxNormal(N, sign);
      fp.flags |= FPSR_OFC;
      inexact = true;
    } else writeFields(N, sign, biased, im);
  } else if (biased >= 2 ** E) {
    R64.hi = 0;
    R64.lo = sign ? 0xffff : 0x7fff;
    fp.flags |= FPSR_IOC;
    inexact = false;
  } else writeFields(N, sign, biased, im);
  if (inexact) fp.flags |= FPSR_IXC;
}

function writeFields(N: number, sign: number, biased: number, im: bigint): void {
  if (N === 64) {
    const f = im & 0xfffffffffffffn;
    R64.lo = Number(f & 0xffffffffn);
    R64.hi = ((sign << 31) | (biased << 20) | Number(f >> 32n)) >>> 0;
  } else if (N === 32) {
    R64.hi = 0;
    R64.lo = ((sign << 31) | (biased << 23) | (Number(im) & 0x7fffff)) >>> 0;
  } else {
    R64.hi = 0;
    R64.lo = (sign << 15) | (biased << 10) | (Number(im) & 0x3ff);
  }
}

// Exact decomposition of a finite nonzero double into BigInt mantissa (signed) and exponent.
let bm = 0n;
let be = 0;
function dec(x: number): void {
  cvF64[0] = x;
  const lo = cvU32[0]!;
  const hi = cvU32[1]!;
  const ex = (hi >>> 20) & 0x7ff;
  let m = (hi & 0xfffff) * 4294967296 + lo;
  if (ex === 0) be = -1074;
  else {
    m += 2 ** 52;
    be = ex - 1075;
  }
  bm = BigInt(m);
  if (hi >>> 31) bm = -bm;
}

/** Rounds an exact double value (finite, nonzero) to N bits. */
function roundDouble(N: number, x: number, fpcr: number, mode: number): void {
  if (finish(N, x, 0, fpcr, mode)) return;
  dec(x);
  roundBig(N, bm, be, fpcr, mode);
}

function zeroByMode(N: number, mode: number): void {
  setZero(N, mode === RM.NEGINF ? 1 : 0);
}

// -----------------------------------------------------------------------------------------
// Error-free transforms (valid when nothing overflows or underflows; callers check ranges)

let eftErr = 0;
const SPLIT = 134217729; // 2^27 + 1
/** Returns a*b rounded; eftErr = exact error (a*b - result). */
function twoProd(a: number, b: number): number {
  const p = a * b;
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  eftErr = ah * bh - p + ah * bl + al * bh + al * bl;
  return p;
}
/** Returns a+b rounded; eftErr = exact error. */
function twoSum(a: number, b: number): number {
  const s = a + b;
  const bb = s - a;
  eftErr = a - (s - bb) + (b - bb);
  return s;
}
/** True when |x| is inside the range where twoProd with x as a factor is exact. */
function prodSafe(x: number): boolean {
  const a = Math.abs(x);
  return a < 2 ** 995 && a > 2 ** -960;
}

// -----------------------------------------------------------------------------------------
// Arithmetic

function addCore(N: number, v1: number, v2: number, fpcr: number, mode: number): void {
  const s = twoSum(v1, v2);
  if (s === 0 && eftErr === 0) {
    zeroByMode(N, mode);
    return;
  }
  if (Number.isFinite(s) && finish(N, s, eftErr, fpcr, mode)) return;
  dec(v1);
  const m1 = bm;
  const e1 = be;
  dec(v2);
  const e = Math.min(e1, be);
  const m = (m1 << BigInt(e1 - e)) + (bm << BigInt(be - e));
  roundBig(N, m, e, fpcr, mode);
}

/** FPAdd (and FPSub with `negate2`). */
export function fpAdd(
  N: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  fpcr: number,
  negate2 = false,
): void {
  unpack(0, N, ah, al, fpcr);
  unpack(1, N, bh, bl, fpcr);
  if (processNaNs2(N, fpcr)) return;
  if (negate2) {
    // FPSub: NaN operands propagate unchanged; otherwise op1 + (-op2).
    US[1] ^= 1;
    UV[1] = -UV[1]!;
  }
  const t1 = UT[0]!;
  const t2 = UT[1]!;
  const s1 = US[0]!;
  const s2 = US[1]!;
  if (t1 === T_INF && t2 === T_INF && s1 !== s2) {
    setDefaultNaN(N);
    fp.flags |= FPSR_IOC;
  } else if (t1 === T_INF || t2 === T_INF) {
    setInf(N, t1 === T_INF ? s1 : s2);
  } else if (t1 === T_ZERO && t2 === T_ZERO && s1 === s2) {
    setZero(N, s1);
  } else addCore(N, UV[0]!, UV[1]!, fpcr, fpcrMode(fpcr));
}
export function fpSub(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  fpAdd(N, ah, al, bh, bl, fpcr, true);
}

function mulCore(N: number, v1: number, v2: number, fpcr: number, mode: number): void {
  if (N !== 64 || (prodSafe(v1) && prodSafe(v2))) {
    const p = twoProd(v1, v2);
    if ((N !== 64 || prodSafe(p)) && finish(N, p, eftErr, fpcr, mode)) return;
  }
  dec(v1);
  const m1 = bm;
  const e1 = be;
  dec(v2);
  roundBig(N, m1 * bm, e1 + be, fpcr, mode);
}

/** FPMul, or FPMulX (infinity times zero gives +-2.0 without exception) with `mulx`. */
export function fpMul(
  N: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  fpcr: number,
  mulx = false,
): void {
  unpack(0, N, ah, al, fpcr);
  unpack(1, N, bh, bl, fpcr);
  if (processNaNs2(N, fpcr)) return;
  const t1 = UT[0]!;
  const t2 = UT[1]!;
  const sign = US[0]! ^ US[1]!;
  if ((t1 === T_INF && t2 === T_ZERO) || (t1 === T_ZERO && t2 === T_INF)) {
    if (mulx) setValueConst(N, sign, 2);
    else {
      setDefaultNaN(N);
      fp.flags |= FPSR_IOC;
    }
  } else if (t1 === T_INF || t2 === T_INF) setInf(N, sign);
  else if (t1 === T_ZERO || t2 === T_ZERO) setZero(N, sign);
  else mulCore(N, UV[0]!, UV[1]!, fpcr, fpcrMode(fpcr));
}
export function fpMulX(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  fpMul(N, ah, al, bh, bl, fpcr, true);
}

/** FPDiv. */
export function fpDiv(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  unpack(0, N, ah, al, fpcr);
  unpack(1, N, bh, bl, fpcr);
  if (processNaNs2(N, fpcr)) return;
  const t1 = UT[0]!;
  const t2 = UT[1]!;
  const sign = US[0]! ^ US[1]!;
  if ((t1 === T_INF && t2 === T_INF) || (t1 === T_ZERO && t2 === T_ZERO)) {
    setDefaultNaN(N);
    fp.flags |= FPSR_IOC;
  } else if (t1 === T_INF || t2 === T_ZERO) {
    setInf(N, sign);
    if (t1 !== T_INF) fp.flags |= FPSR_DZC;
  } else if (t1 === T_ZERO || t2 === T_INF) setZero(N, sign);
  else {
    const a = UV[0]!;
    const b = UV[1]!;
    const mode = fpcrMode(fpcr);
    const q = a / b;
    if (N !== 64 || (prodSafe(q) && prodSafe(b) && prodSafe(a))) {
      // exact - q has the sign of (a - q*b) * sign(b); a - p is exact (Sterbenz).
      const p = twoProd(q, b);
      const d = a - p;
      const rs = d > eftErr ? 1 : d < eftErr ? -1 : 0;
      if (finish(N, q, b > 0 ? rs : -rs, fpcr, mode)) return;
    }
    dec(a);
    const ma = bm;
    const ea = be;
    dec(b);
    const k = 64 + bitLen(bm < 0n ? -bm : bm);
    let qq = (ma << BigInt(k)) / bm;
    let e = ea - be - k;
    if (qq * bm !== ma << BigInt(k)) {
      qq = qq * 2n + (qq < 0n ? -1n : 1n);
      e--;
    }
    roundBig(N, qq, e, fpcr, mode);
  }
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((bitLen(n) >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/** FPSqrt. */
export function fpSqrt(N: number, h: number, l: number, fpcr: number): void {
  const t = unpack(0, N, h, l, fpcr);
  if (t >= T_QNAN) processNaN(N, 0, fpcr);
  else if (t === T_ZERO) setZero(N, US[0]!);
  else if (t === T_INF && US[0] === 0) setInf(N, 0);
  else if (US[0] === 1) {
    setDefaultNaN(N);
    fp.flags |= FPSR_IOC;
  } else {
    const a = UV[0]!;
    const mode = fpcrMode(fpcr);
    const s = Math.sqrt(a);
    if (N !== 64 || (a > 2 ** -900 && a < 2 ** 990)) {
      const p = twoProd(s, s);
      const d = a - p;
      const rs = d > eftErr ? 1 : d < eftErr ? -1 : 0;
      if (finish(N, s, rs, fpcr, mode)) return;
    }
    dec(a);
    let m = bm;
    let e = be;
    if (e & 1) {
      m <<= 1n;
      e--;
    }
    const k = Math.max(0, Math.ceil((130 - bitLen(m)) / 2));
    m <<= BigInt(2 * k);
    let r = isqrt(m);
    let re = (e - 2 * k) / 2;
    if (r * r !== m) {
      r = r * 2n + 1n;
      re--;
    }
    roundBig(N, r, re, fpcr, mode);
  }
}

/**
 * Exact a*b + c, scaled by 2^scale, rounded to N bits (all finite, the exact result may be 0:
 * then a zero signed by the rounding mode).
 */
function fmaCore(
  N: number,
  a: number,
  b: number,
  c: number,
  scale: number,
  fpcr: number,
  mode: number,
): void {
  // A zero product leaves c exactly (c is non-zero here, so no signed-zero question); this
  // is common (sparse operands) and would otherwise take the exact BigInt path.
  if ((a === 0 || b === 0) && c !== 0 && scale === 0 && finish(N, c, 0, fpcr, mode)) return;
  if (a !== 0 && b !== 0 && (N !== 64 || (prodSafe(a) && prodSafe(b)))) {
    const p = twoProd(a, b);
    if (eftErr !== 0 && N === 64 && scale === 0 && fmaSafe(p) && (c === 0 || fmaSafe(c))) {
      // Boldo & Melquiond's FMA emulation: th + tl = c + p exactly, v = RO(tl + pl) (round
      // to odd), result RN(th + v). The error sign is that of (th + v - r) when nonzero (it
      // is a multiple of ulp(v), larger than the round-to-odd residual), else of the residual.
      const pl = eftErr;
      const th = twoSum(c, p);
      const tl = eftErr;
      let v = twoSum(tl, pl);
      const e2 = eftErr;
      if (e2 !== 0) {
        cvF64[0] = v;
        if ((cvU32[0]! & 1) === 0) v = stepMag64(v, e2 > 0 === v > 0 ? 1 : -1);
      }
      const r = twoSum(th, v);
      const dir = eftErr !== 0 ? eftErr : e2;
      if (Number.isFinite(r) && finish(64, r, dir, fpcr, mode)) return;
    }
    if (eftErr === 0 && (N !== 64 || prodSafe(p))) {
      const s = twoSum(p, c);
      if (s === 0 && eftErr === 0) {
        zeroByMode(N, mode);
        return;
      }
      if (Number.isFinite(s)) {
        const f = scale === 0 ? 1 : 2 ** scale;
        if (finish(N, s * f, eftErr, fpcr, mode)) return;
      }
    }
  }
  let m: bigint;
  let e: number;
  if (a === 0 || b === 0) {
    if (c === 0) {
      zeroByMode(N, mode);
      return;
    }
    dec(c);
    m = bm;
    e = be;
  } else {
    dec(a);
    const ma = bm;
    const ea = be;
    dec(b);
    const mp = ma * bm;
    const ep = ea + be;
    if (c === 0) {
      m = mp;
      e = ep;
    } else {
      dec(c);
      e = Math.min(ep, be);
      m = (mp << BigInt(ep - e)) + (bm << BigInt(be - e));
    }
  }
  if (m === 0n) {
    zeroByMode(N, mode);
    return;
  }
  roundBig(N, m, e + scale, fpcr, mode);
}

/** FPMulAdd(addend, op1, op2): addend + op1*op2 with a single rounding. */
export function fpMulAdd(
  N: number,
  ch: number,
  cl: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  fpcr: number,
): void {
  if (N === 64 && (fpcr & FMA_SLOW_FPCR) === 0 && fma64ExactProduct(ch, cl, ah, al, bh, bl)) return;
  fpMulAddFull(N, ch, cl, ah, al, bh, bl, fpcr);
}

/** FPMulAdd by the full path only (the reference fma64ExactProduct is tested against). */
export function fpMulAddFull(
  N: number,
  ch: number,
  cl: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  fpcr: number,
): void {
  const tA = unpack(0, N, ch, cl, fpcr);
  const t1 = unpack(1, N, ah, al, fpcr);
  const t2 = unpack(2, N, bh, bl, fpcr);
  const inf1 = t1 === T_INF;
  const inf2 = t2 === T_INF;
  const zero1 = t1 === T_ZERO;
  const zero2 = t2 === T_ZERO;
  const done = processNaNs3(N, fpcr);
  if (tA === T_QNAN && ((inf1 && zero2) || (zero1 && inf2))) {
    setDefaultNaN(N);
    fp.flags |= FPSR_IOC;
  }
  if (done) return;
  const infA = tA === T_INF;
  const zeroA = tA === T_ZERO;
  const signA = US[0]!;
  const signP = US[1]! ^ US[2]!;
  const infP = inf1 || inf2;
  const zeroP = zero1 || zero2;
  if ((inf1 && zero2) || (zero1 && inf2) || (infA && infP && signA !== signP)) {
    setDefaultNaN(N);
    fp.flags |= FPSR_IOC;
  } else if ((infA && signA === 0) || (infP && signP === 0)) setInf(N, 0);
  else if ((infA && signA === 1) || (infP && signP === 1)) setInf(N, 1);
  else if (zeroA && zeroP && signA === signP) setZero(N, signA);
  else fmaCore(N, UV[1]!, UV[2]!, UV[0]!, 0, fpcr, fpcrMode(fpcr));
}

/** FPCR bits that keep a double FMA off the fast path: AHP, DN, FZ, any RMode but RN. */
const FMA_SLOW_FPCR = FPCR_AHP | FPCR_DN | FPCR_FZ | (3 << 22);
const MIN_NORMAL64 = 2 ** -1022;

/**
 * Double FMA when a*b is exact in a double (small-mantissa operands, as in most
 * arithmetic on integers and simple fractions): then the fused result is the single
 * rounding of p + c, which JavaScript's addition gives in round-to-nearest, and it is
 * inexact exactly when TwoSum's error is non-zero. Anything else — an inexact product,
 * NaN, infinity, zero factors, overflow, a tiny result — returns false for the full path.
 */
function fma64ExactProduct(ch: number, cl: number, ah: number, al: number, bh: number, bl: number): boolean {
  const a = bitsF64(ah, al);
  const b = bitsF64(bh, bl);
  if (!prodSafe(a) || !prodSafe(b)) return false;
  const p = twoProd(a, b);
  if (eftErr !== 0 || Math.abs(p) < MIN_NORMAL64) return false;
  const c = bitsF64(ch, cl);
  if (!Number.isFinite(c)) return false;
  const s = twoSum(p, c);
  if (!Number.isFinite(s) || (s !== 0 && Math.abs(s) < MIN_NORMAL64)) return false;
  outF64(s);
  if (eftErr !== 0) fp.flags |= FPSR_IXC;
  return true;
}

/** FPRecipStepFused (FRECPS): 2 - op1*op2, fused. */
export function fpRecipStep(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  stepFused(N, ah, al, bh, bl, fpcr, 2, 0);
}
/** FPRSqrtStepFused (FRSQRTS): (3 - op1*op2) / 2, fused. */
export function fpRSqrtStep(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  stepFused(N, ah, al, bh, bl, fpcr, 3, -1);
}
function stepFused(
  N: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  fpcr: number,
  k: number,
  scale: number,
): void {
  // op1 = FPNeg(op1) first: a NaN op1 propagates with its sign flipped.
  if (N === 64) ah ^= 0x80000000;
  else al ^= N === 32 ? 0x80000000 : 0x8000;
  unpack(0, N, ah, al, fpcr);
  unpack(1, N, bh, bl, fpcr);
  if (processNaNs2(N, fpcr)) return;
  const t1 = UT[0]!;
  const t2 = UT[1]!;
  if ((t1 === T_INF && t2 === T_ZERO) || (t1 === T_ZERO && t2 === T_INF))
    setValueConst(N, 0, k === 2 ? 2 : 1.5);
  else if (t1 === T_INF || t2 === T_INF) setInf(N, US[0]! ^ US[1]!);
  else fmaCore(N, UV[0]!, UV[1]!, k, scale, fpcr, fpcrMode(fpcr));
}

// -----------------------------------------------------------------------------------------
// Max / min / compare

function maxMin(
  N: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  fpcr: number,
  isMax: boolean,
): void {
  unpack(0, N, ah, al, fpcr);
  unpack(1, N, bh, bl, fpcr);
  if (processNaNs2(N, fpcr)) return;
  const v1 = UV[0]!;
  const v2 = UV[1]!;
  const k = (isMax ? v1 > v2 : v1 < v2) ? 0 : 1;
  const t = UT[k]!;
  if (t === T_INF) setInf(N, US[k]!);
  else if (t === T_ZERO) setZero(N, isMax ? US[0]! & US[1]! : US[0]! | US[1]!);
  else {
    R64.hi = N === 64 ? UH[k]! : 0;
    R64.lo = UL[k]!;
  }
}
export function fpMax(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  maxMin(N, ah, al, bh, bl, fpcr, true);
}
export function fpMin(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  maxMin(N, ah, al, bh, bl, fpcr, false);
}
/** FPMaxNum / FPMinNum: a single quiet NaN operand loses (treated as -inf / +inf). */
function maxMinNum(
  N: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  fpcr: number,
  isMax: boolean,
): void {
  const t1 = unpack(0, N, ah, al, fpcr);
  const t2 = unpack(1, N, bh, bl, fpcr);
  if (t1 === T_QNAN && t2 !== T_QNAN) {
    setInf(N, isMax ? 1 : 0);
    ah = R64.hi;
    al = R64.lo;
  } else if (t1 !== T_QNAN && t2 === T_QNAN) {
    setInf(N, isMax ? 1 : 0);
    bh = R64.hi;
    bl = R64.lo;
  }
  maxMin(N, ah, al, bh, bl, fpcr, isMax);
}
export function fpMaxNum(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  maxMinNum(N, ah, al, bh, bl, fpcr, true);
}
export function fpMinNum(N: number, ah: number, al: number, bh: number, bl: number, fpcr: number): void {
  maxMinNum(N, ah, al, bh, bl, fpcr, false);
}

/** FPCompare: returns NZCV as a 4-bit number (N=8, Z=4, C=2, V=1). */
export function fpCompare(
  N: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  signalNaNs: boolean,
  fpcr: number,
): number {
  const t1 = unpack(0, N, ah, al, fpcr);
  const t2 = unpack(1, N, bh, bl, fpcr);
  if (t1 >= T_QNAN || t2 >= T_QNAN) {
    if (t1 === T_SNAN || t2 === T_SNAN || signalNaNs) fp.flags |= FPSR_IOC;
    return 0b0011;
  }
  const v1 = UV[0]!;
  const v2 = UV[1]!;
  return v1 === v2 ? 0b0110 : v1 < v2 ? 0b1000 : 0b0010;
}

/** FPCompareEQ / GE / GT (vector compares): op 0 = EQ, 1 = GE, 2 = GT. */
export function fpCompareOp(
  N: number,
  ah: number,
  al: number,
  bh: number,
  bl: number,
  op: number,
  fpcr: number,
): boolean {
  const t1 = unpack(0, N, ah, al, fpcr);
  const t2 = unpack(1, N, bh, bl, fpcr);
  if (t1 >= T_QNAN || t2 >= T_QNAN) {
    if (op !== 0 || t1 === T_SNAN || t2 === T_SNAN) fp.flags |= FPSR_IOC;
    return false;
  }
  const v1 = UV[0]!;
  const v2 = UV[1]!;
  return op === 0 ? v1 === v2 : op === 1 ? v1 >= v2 : v1 > v2;
}

// -----------------------------------------------------------------------------------------
// Integer rounding and conversions

/** Rounds the real value (double, finite) down to an integer and applies `mode`'s increment. */
let riErr = 0;
function roundIntValue(v: number, mode: number): number {
  let t = Math.floor(v);
  const err = v - t;
  riErr = err;
  if (err === 0) return t;
  let up: boolean;
  switch (mode) {
    case RM.TIEEVEN:
      up = err > 0.5 || (err === 0.5 && t % 2 !== 0);
      break;
    case RM.POSINF:
      up = true;
      break;
    case RM.NEGINF:
      up = false;
      break;
    case RM.ZERO:
      up = t < 0;
      break;
    default: // TIEAWAY
      up = err > 0.5 || (err === 0.5 && t >= 0);
  }
  if (up) t += 1;
  return t;
}

/** FPRoundInt (FRINT*): `exact` raises IXC when the value changes (FRINTX). */
export function fpRoundInt(
  N: number,
  h: number,
  l: number,
  fpcr: number,
  mode: number,
  exact: boolean,
): void {
  const t = unpack(0, N, h, l, fpcr);
  if (t >= T_QNAN) processNaN(N, 0, fpcr);
  else if (t === T_INF) setInf(N, US[0]!);
  else if (t === T_ZERO) setZero(N, US[0]!);
  else {
    const v = UV[0]!;
    const r = roundIntValue(v, mode);
    if (r === 0) setZero(N, US[0]!);
    else outValue(N, r);
    if (riErr !== 0 && exact) fp.flags |= FPSR_IXC;
  }
}

/**
 * FPToFixed: N-bit FP to an M-bit (32/64) integer scaled by 2^fbits, saturating (IOC on
 * overflow or NaN, IXC when inexact). Result in R64.lo (M = 32) or R64.hi/R64.lo.
 */
export function fpToFixed(
  N: number,
  h: number,
  l: number,
  fbits: number,
  unsigned: boolean,
  M: number,
  fpcr: number,
  mode: number,
): void {
  const t = unpack(0, N, h, l, fpcr);
  let v: number;
  if (t >= T_QNAN) {
    fp.flags |= FPSR_IOC;
    v = 0;
  } else v = UV[0]! * 2 ** fbits;
  let r = t === T_INF ? v : roundIntValue(v, mode);
  const err = t === T_INF ? 0 : riErr;
  const min = unsigned ? 0 : -(2 ** (M - 1));
  const max = unsigned ? 2 ** M : 2 ** (M - 1); // exclusive
  let ovf = false;
  if (r < min) {
    r = min;
    ovf = true;
  } else if (r >= max) {
    ovf = true;
    r = -1; // all ones below the sign / value bits; fixed below
  }
  if (ovf) fp.flags |= FPSR_IOC;
  else if (err !== 0) fp.flags |= FPSR_IXC;
  if (ovf && r === -1) {
    // Saturate to the maximum.
    if (M === 32) {
      R64.hi = 0;
      R64.lo = unsigned ? 0xffffffff : 0x7fffffff;
    } else {
      R64.hi = unsigned ? 0xffffffff : 0x7fffffff;
      R64.lo = 0xffffffff;
    }
    return;
  }
  if (M === 32) {
    R64.hi = 0;
    R64.lo = r >>> 0;
  } else {
    const hi = Math.floor(r / 4294967296);
    R64.lo = (r - hi * 4294967296) >>> 0;
    R64.hi = hi >>> 0;
  }
}

/**
 * FixedToFP: the M-bit integer (hi, lo) (signed unless `unsigned`) divided by 2^fbits,
 * rounded to N bits.
 */
export function fixedToFp(
  N: number,
  h: number,
  l: number,
  M: number,
  fbits: number,
  unsigned: boolean,
  fpcr: number,
  mode: number,
): void {
  let x: number;
  if (M === 32) x = unsigned ? l >>> 0 : l | 0;
  else {
    const hi = unsigned ? h >>> 0 : h | 0;
    x = hi * 4294967296 + (l >>> 0);
    if (Math.abs(x) >= 2 ** 53) {
      let m = (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0);
      if (!unsigned) m = BigInt.asIntN(64, m);
      roundBig(N, m, -fbits, fpcr, mode);
      return;
    }
  }
  if (x === 0) {
    setZero(N, 0);
    return;
  }
  roundDouble(N, x * 2 ** -fbits, fpcr, mode);
}

/** FPConvertNaN from an N-bit NaN in slot 0 to M bits (quiet bit set, payload kept). */
function convertNaN(N: number, M: number): void {
  // Payload as the top bits of a 51-bit field below the quiet bit.
  let sign: number;
  let ph: number; // payload bits 50..32 (19 bits)
  let pl: number; // payload bits 31..0
  if (N === 64) {
    sign = UH[0]! >>> 31;
    ph = UH[0]! & 0x7ffff;
    pl = UL[0]!;
  } else if (N === 32) {
    sign = UL[0]! >>> 31;
    const p = UL[0]! & 0x3fffff; // 22 bits -> bits 50..29
    ph = p >>> 3;
    pl = (p << 29) >>> 0;
  } else {
    sign = (UL[0]! >>> 15) & 1;
    const p = UL[0]! & 0x1ff; // 9 bits -> bits 50..42
    ph = p << 10;
    pl = 0;
  }
  if (M === 64) {
    R64.hi = ((sign << 31) | 0x7ff80000 | ph) >>> 0;
    R64.lo = pl;
  } else if (M === 32) {
    R64.hi = 0;
    R64.lo = ((sign << 31) | 0x7fc00000 | (ph << 3) | (pl >>> 29)) >>> 0;
  } else {
    R64.hi = 0;
    R64.lo = (sign << 15) | 0x7e00 | (ph >>> 10);
  }
}

/** FPConvert: N-bit operand to M bits (16/32/64) with `mode`. */
export function fpConvert(N: number, M: number, h: number, l: number, fpcr: number, mode: number): void {
  const t = unpack(0, N, h, l, fpcr);
  const altHp = M === 16 && (fpcr & FPCR_AHP) !== 0;
  const sign = US[0]!;
  if (t >= T_QNAN) {
    if (altHp) setZero(M, sign);
    else if ((fpcr & FPCR_DN) !== 0) setDefaultNaN(M);
    else convertNaN(N, M);
    if (t === T_SNAN || altHp) fp.flags |= FPSR_IOC;
  } else if (t === T_INF) {
    if (altHp) {
      R64.hi = 0;
      R64.lo = sign ? 0xffff : 0x7fff;
      fp.flags |= FPSR_IOC;
    } else setInf(M, sign);
  } else if (t === T_ZERO) setZero(M, sign);
  else {
    const v = UV[0]!;
    // Widening is exact; narrowing rounds (FPRoundCV: FZ applies except to half results).
    if (M === 64 || (M === 32 && N === 16)) outValue(M, v);
    else roundDouble(M, v, fpcr, mode);
  }
}

// -----------------------------------------------------------------------------------------
// Estimates

/** RecipEstimate(a): a in 256..511, result in 256..511. */
export function recipEstimate(a: number): number {
  a = a * 2 + 1;
  const b = Math.floor(2 ** 19 / a);
  return (b + 1) >> 1;
}
/** RecipSqrtEstimate(a): a in 128..511, result in 256..511. */
export function recipSqrtEstimate(a: number): number {
  if (a < 256) a = a * 2 + 1;
  else {
    a = (a >> 1) << 1;
    a = (a + 1) * 2;
  }
  let b = 512;
  while (a * (b + 1) * (b + 1) < 2 ** 28) b++;
  return (b + 1) >> 1;
}

/** FPRecipEstimate (FRECPE), N = 32 or 64. */
export function fpRecipEstimate(N: number, h: number, l: number, fpcr: number): void {
  const t = unpack(0, N, h, l, fpcr);
  const sign = US[0]!;
  const v = Math.abs(UV[0]!);
  if (t >= T_QNAN) processNaN(N, 0, fpcr);
  else if (t === T_INF) setZero(N, sign);
  else if (t === T_ZERO) {
    setInf(N, sign);
    fp.flags |= FPSR_DZC;
  } else if ((N === 32 && v < 2 ** -128) || (N === 64 && v < 2 ** -1024)) {
    const mode = fpcrMode(fpcr);
    const toInf =
      mode === RM.TIEEVEN || (mode === RM.POSINF && sign === 0) || (mode === RM.NEGINF && sign === 1);
    if (toInf) setInf(N, sign);
    else setMaxNormal(N, sign);
    fp.flags |= FPSR_OFC | FPSR_IXC;
  } else if ((fpcr & FPCR_FZ) !== 0 && ((N === 32 && v >= 2 ** 126) || (N === 64 && v >= 2 ** 1022))) {
    setZero(N, sign);
    fp.flags |= FPSR_UFC;
  } else {
    let exp: number;
    let top: number; // fraction<51:42>
    if (N === 32) {
      exp = (l >>> 23) & 0xff;
      top = (l >>> 13) & 0x3ff;
    } else {
      exp = (h >>> 20) & 0x7ff;
      top = (h >>> 10) & 0x3ff;
    }
    let sh = 2;
    if (exp === 0) {
      if ((top & 0x200) === 0) {
        exp = -1;
        sh = 0;
      } else sh = 1;
    }
    const scaled = 256 | ((top >> sh) & 0xff);
    let rexp = (N === 32 ? 253 : 2045) - exp;
    const est = recipEstimate(scaled) & 0xff;
    let rtop = est << 2; // result fraction<51:42>
    if (rexp === 0) rtop = (0x100 | est) << 1;
    else if (rexp === -1) {
      rtop = 0x100 | est;
      rexp = 0;
    }
    if (N === 32) {
      R64.hi = 0;
      R64.lo = ((sign << 31) | (rexp << 23) | (rtop << 13)) >>> 0;
    } else {
      R64.hi = ((sign << 31) | (rexp << 20) | (rtop << 10)) >>> 0;
      R64.lo = 0;
    }
  }
}

/** FPRSqrtEstimate (FRSQRTE), N = 32 or 64. */
export function fpRSqrtEstimate(N: number, h: number, l: number, fpcr: number): void {
  const t = unpack(0, N, h, l, fpcr);
  const sign = US[0]!;
  if (t >= T_QNAN) processNaN(N, 0, fpcr);
  else if (t === T_ZERO) {
    setInf(N, sign);
    fp.flags |= FPSR_DZC;
  } else if (sign === 1) {
    setDefaultNaN(N);
    fp.flags |= FPSR_IOC;
  } else if (t === T_INF) setZero(N, 0);
  else {
    let exp: number;
    let frac: number; // 52-bit fraction as a Number
    if (N === 32) {
      exp = (l >>> 23) & 0xff;
      frac = (l & 0x7fffff) * 2 ** 29;
    } else {
      exp = (h >>> 20) & 0x7ff;
      frac = (h & 0xfffff) * 4294967296 + (l >>> 0);
    }
    if (exp === 0) {
      while (frac < 2 ** 51) {
        frac *= 2;
        exp--;
      }
      frac = (frac * 2) % 2 ** 52;
    }
    // An odd biased exponent is an even unbiased one: scale into [0.25, 0.5), else [0.5, 1).
    const scaled = (exp & 1) !== 0 ? 128 | Math.floor(frac / 2 ** 45) : 256 | Math.floor(frac / 2 ** 44);
    const rexp = Math.floor(((N === 32 ? 380 : 3068) - exp) / 2);
    const est = recipSqrtEstimate(scaled) & 0xff;
    if (N === 32) {
      R64.hi = 0;
      R64.lo = ((rexp << 23) | (est << 15)) >>> 0;
    } else {
      R64.hi = ((rexp << 20) | (est << 12)) >>> 0;
      R64.lo = 0;
    }
  }
}

/** FPRecpX (FRECPX), N = 32 or 64. */
export function fpRecpX(N: number, h: number, l: number, fpcr: number): void {
  const t = unpack(0, N, h, l, fpcr);
  if (t >= T_QNAN) {
    processNaN(N, 0, fpcr);
    return;
  }
  if (N === 32) {
    const e = (l >>> 23) & 0xff;
    R64.hi = 0;
    R64.lo = ((l & 0x80000000) | ((e === 0 ? 0xfe : ~e & 0xff) << 23)) >>> 0;
  } else {
    const e = (h >>> 20) & 0x7ff;
    R64.hi = ((h & 0x80000000) | ((e === 0 ? 0x7fe : ~e & 0x7ff) << 20)) >>> 0;
    R64.lo = 0;
  }
}

/** UnsignedRecipEstimate (URECPE). */
export function unsignedRecipEstimate(x: number): number {
  if (x >>> 31 === 0) return 0xffffffff;
  return ((recipEstimate((x >>> 23) & 0x1ff) & 0x1ff) << 23) >>> 0;
}
/** UnsignedRSqrtEstimate (URSQRTE). */
export function unsignedRSqrtEstimate(x: number): number {
  if (x >>> 30 === 0) return 0xffffffff;
  return ((recipSqrtEstimate((x >>> 23) & 0x1ff) & 0x1ff) << 23) >>> 0;
}

// -----------------------------------------------------------------------------------------
// 32-bit conveniences (single precision): return the result bits.

export function add32(a: number, b: number, fpcr: number): number {
  fpAdd(32, 0, a, 0, b, fpcr);
  return R64.lo;
}
export function sub32(a: number, b: number, fpcr: number): number {
  fpAdd(32, 0, a, 0, b, fpcr, true);
  return R64.lo;
}
export function mul32(a: number, b: number, fpcr: number): number {
  fpMul(32, 0, a, 0, b, fpcr);
  return R64.lo;
}
export function div32(a: number, b: number, fpcr: number): number {
  fpDiv(32, 0, a, 0, b, fpcr);
  return R64.lo;
}
export function mulAdd32(c: number, a: number, b: number, fpcr: number): number {
  fpMulAdd(32, 0, c, 0, a, 0, b, fpcr);
  return R64.lo;
}
export function sqrt32(a: number, fpcr: number): number {
  fpSqrt(32, 0, a, fpcr);
  return R64.lo;
}

/** BigInt conveniences for tests and slow callers: 64-bit ops on bigint bit patterns. */
export function bits64(): bigint {
  return (BigInt(R64.hi >>> 0) << 32n) | BigInt(R64.lo >>> 0);
}
export function hi64(x: bigint): number {
  return Number((x >> 32n) & 0xffffffffn);
}
export function lo64(x: bigint): number {
  return Number(x & 0xffffffffn);
}

/** Range where every intermediate of the FMA emulation stays normal and finite. */
function fmaSafe(x: number): boolean {
  const a = Math.abs(x);
  return a > 2 ** -900 && a < 2 ** 990;
}
