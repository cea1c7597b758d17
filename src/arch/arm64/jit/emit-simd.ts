/**
 * The translator's emitters for SIMD&FP registers: loads and stores of them (LDR/STR of
 * B, H, S, D and Q registers in every addressing mode, LDP/STP of S, D and Q, LD1R) and
 * the double-precision arithmetic that dominates compiled numeric code (FADD, FSUB,
 * FMUL, FNMUL, FMADD and its kin, FMLA, FMLS; scalar and 2D).
 *
 * Each one is a fast path guarded by the conditions under which WebAssembly's IEEE 754
 * arithmetic provably gives the Arm result, with the interpreter's executor (the exact
 * slow path, fpcore.ts) run otherwise, for the whole instruction:
 * - SIMD&FP access enabled at the block's EL (CPACR_EL1.FPEN; checkFp in cpu.ts);
 * - FPCR: round to nearest, FZ = 0 and DN = 0 (AHP is for half precision only);
 * - memory: a TLB hit of a naturally aligned access (the slow path faults exactly);
 * - arithmetic: every lane's operands and result in the ranges where fpcore.ts's own fast
 *   path holds (normal results away from the overflow and underflow thresholds, or exact
 *   zeros; error-free transforms without overflow), so no NaN, infinity or subnormal
 *   result ever comes from wasm. FPSR.IXC is set from the exact error (TwoSum, Dekker's
 *   TwoProduct), which also proves a fused multiply-add's product exact: then one
 *   rounding of p + c is the fused result. Anything else runs the executor.
 * Nothing is written before every lane has passed, so the slow path starts from the
 * instruction's inputs.
 */

import { OFF } from "../state.ts";
import { sysregIndex } from "../sysregs.ts";
import {
  type BlockContext,
  type Emitter,
  exitIfStopped,
  fastProbe,
  getX,
  getXsp,
  guarded,
  immediateAddress,
  laterWordStored,
  registerOffsetAddress,
  setX,
  tlbEntry,
} from "./emit.ts";
import { OP, SIMD, VOID } from "./wasm.ts";

const CPACR_BYTES = sysregIndex("CPACR_EL1") * 4;
/** FPCR.{AHP, DN, FZ, RMode}: any of them set keeps arithmetic on the slow path. */
const FPCR_SLOW = (1 << 26) | (1 << 25) | (1 << 24) | (3 << 22);

/** Byte offset of Vn in the state block. */
const vOff = (n: number) => OFF.V + n * 16;

/** Bits of the double x, as a BigInt. */
function bitsOf(x: number): bigint {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, x, true);
  return b.getBigUint64(0, true);
}
const MIN_D = bitsOf(2 ** -1022);
const MAX_D = bitsOf(Number.MAX_VALUE);
// fpcore.ts prodSafe(): the range where TwoProduct with the value as a factor is exact.
const PROD_LO = bitsOf(2 ** -960);
const PROD_HI = bitsOf(2 ** 995);
const SPLIT = bitsOf(134217729); // 2^27 + 1, Veltkamp's split

/** Leaves the guard (br_if 0) unless SIMD&FP instructions may run at the block's EL. */
function requireFpEnabled(x: BlockContext): void {
  if (x.fpenMask === 0) return;
  const f = x.f;
  f.get(0)
    .mem(OP.i32_load, CPACR_BYTES)
    .i32(x.fpenMask << 20)
    .op(OP.i32_and);
  f.i32(x.fpenMask << 20)
    .op(OP.i32_ne)
    .byte(OP.br_if)
    .u32(0);
}

// ---------------------------------------------------------------------------
// Loads and stores

/**
 * One access of 1 << sizeLog bytes at the VA in local va: local `h` = its host address,
 * or br_if 0 (the guard's slow path) on a TLB miss or a misaligned VA.
 */
function probe(x: BlockContext, acc: number, sizeLog: number, h: number): void {
  tlbEntry(x);
  // fastProbe leaves through br_if 0: here that is the guard's block.
  fastProbe(x, acc, 1 << sizeLog);
  x.f.set(h);
}

/** Vt = the 1 << sizeLog bytes at host address in local h, zero-extended to 128 bits. */
function loadV(x: BlockContext, sizeLog: number, t: number, h: number): void {
  const f = x.f;
  f.get(0).get(h);
  if (sizeLog >= 2) {
    f.simdMem([SIMD.v128_load32_zero, SIMD.v128_load64_zero, SIMD.v128_load][sizeLog - 2]!, 0);
    f.simdMem(SIMD.v128_store, vOff(t));
    return;
  }
  f.mem(sizeLog === 0 ? OP.i64_load8_u : OP.i64_load16_u, 0).mem(OP.i64_store, vOff(t));
  f.get(0)
    .i64(0n)
    .mem(OP.i64_store, vOff(t) + 8);
}

/** The low 1 << sizeLog bytes of Vt to host address in local h. */
function storeV(x: BlockContext, sizeLog: number, t: number, h: number): void {
  const f = x.f;
  f.get(h);
  if (sizeLog === 4) f.get(0).simdMem(SIMD.v128_load, vOff(t)).simdMem(SIMD.v128_store, 0);
  else {
    f.get(0).mem(OP.i64_load, vOff(t));
    f.mem([OP.i64_store8, OP.i64_store16, OP.i64_store32, OP.i64_store][sizeLog]!, 0);
  }
}

/** The base register's new value (local v2) after a pre- or post-indexed access. */
function writeBack(x: BlockContext, n: number): void {
  setX(x, n, () => x.f.get(x.v2), true);
}

/**
 * LDR/STR (SIMD&FP): unsigned offset, unscaled, pre- and post-indexed, register offset
 * (Arm ARM C4.1.66, C6.2 LDR/STR (immediate, SIMD&FP), (register, SIMD&FP)).
 */
function loadStoreSingleV(x: BlockContext, insn: number): boolean {
  const size = insn >>> 30;
  const opc = (insn >>> 22) & 3;
  if ((opc & 2) !== 0 && size !== 0) return false; // unallocated
  const sizeLog = (opc & 2) !== 0 ? 4 : size;
  const isLoad = (opc & 1) === 1;
  const t = insn & 31;
  const n = (insn >>> 5) & 31;
  if (((insn >>> 24) & 1) === 0) {
    // imm9 forms: mode 2 is unallocated for SIMD&FP; register offset needs option<1>.
    if (((insn >>> 21) & 1) === 0 ? ((insn >>> 10) & 3) === 2 : ((insn >>> 14) & 1) === 0) return false;
  }
  let wb = false;
  guarded(x, insn, () => {
    requireFpEnabled(x);
    if (((insn >>> 24) & 1) === 1 || ((insn >>> 21) & 1) === 0) wb = immediateAddress(x, insn, sizeLog);
    else registerOffsetAddress(x, insn, sizeLog);
    probe(x, isLoad ? 0 : 1, sizeLog, x.h);
    if (isLoad) loadV(x, sizeLog, t, x.h);
    else {
      storeV(x, sizeLog, t, x.h);
      laterWordStored(x, x.h, 1 << sizeLog);
    }
    if (wb) writeBack(x, n);
  });
  exitIfStopped(x);
  return true;
}

/** LDP/STP/LDNP/STNP (SIMD&FP) of S, D and Q registers. */
function loadStorePairV(x: BlockContext, insn: number): boolean {
  const opc = insn >>> 30;
  if (opc === 3) return false;
  const sizeLog = opc + 2;
  const idx = (insn >>> 23) & 3; // 0 no-allocate, 1 post, 2 offset, 3 pre
  const isLoad = ((insn >>> 22) & 1) === 1;
  const off = BigInt(((insn << 10) >> 25) << sizeLog);
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  if (isLoad && t === t2) return false; // CONSTRAINED UNPREDICTABLE: the executor's choice
  const wb = idx === 1 || idx === 3;
  const f = x.f;
  guarded(x, insn, () => {
    requireFpEnabled(x);
    getXsp(x, n);
    if (idx !== 1) f.i64(off).op(OP.i64_add);
    f.set(x.va);
    if (wb) {
      getXsp(x, n);
      f.i64(off).op(OP.i64_add).set(x.v2);
    }
    const acc = isLoad ? 0 : 1;
    probe(x, acc, sizeLog, x.h);
    f.get(x.va)
      .i64(BigInt(1 << sizeLog))
      .op(OP.i64_add)
      .set(x.va);
    probe(x, acc, sizeLog, x.h2);
    if (isLoad) {
      loadV(x, sizeLog, t, x.h);
      loadV(x, sizeLog, t2, x.h2);
    } else {
      storeV(x, sizeLog, t, x.h);
      storeV(x, sizeLog, t2, x.h2);
      laterWordStored(x, x.h, 1 << sizeLog);
      laterWordStored(x, x.h2, 1 << sizeLog);
    }
    if (wb) writeBack(x, n);
  });
  exitIfStopped(x);
  return true;
}

/** LD1R (single structure, replicate to all lanes), no offset or post-indexed. */
function ld1r(x: BlockContext, insn: number): boolean {
  const q = (insn >>> 30) & 1;
  const size = (insn >>> 10) & 3;
  const post = ((insn >>> 23) & 1) === 1;
  const m = (insn >>> 16) & 31;
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  const f = x.f;
  guarded(x, insn, () => {
    requireFpEnabled(x);
    getXsp(x, n);
    f.set(x.va);
    if (post) {
      getXsp(x, n);
      if (m === 31) f.i64(BigInt(1 << size));
      else getX(x, m);
      f.op(OP.i64_add).set(x.v2);
    }
    probe(x, 0, size, x.h);
    f.get(0).get(x.h);
    f.simdMem([0x07, 0x08, SIMD.v128_load32_splat, SIMD.v128_load64_splat][size]!, 0);
    if (q === 0) f.v128(-1n, 0n).simd(SIMD.v128_and);
    f.simdMem(SIMD.v128_store, vOff(t));
    if (post) writeBack(x, n);
  });
  exitIfStopped(x);
  return true;
}

// ---------------------------------------------------------------------------
// Double-precision arithmetic

/** Operands of one shape: the whole register (2D) or its low double, the rest zero. */
function loadD(x: BlockContext, n: number, vector: boolean): void {
  x.f.get(0).simdMem(vector ? SIMD.v128_load : SIMD.v128_load64_zero, vOff(n));
}

/** Pushes v128 with both lanes the double whose bits are `b`. */
function splat(x: BlockContext, b: bigint): void {
  x.f.v128(b, b);
}

/** Pushes the lane mask lo < |v| < hi (v in local `v`; lo, hi as bits). NaN lanes: 0. */
function absBetween(x: BlockContext, v: number, lo: bigint, hi: bigint): void {
  const f = x.f;
  f.get(v).simd(SIMD.f64x2_abs).tee(x.vtmp(TMP));
  splat(x, lo);
  f.simd(SIMD.f64x2_gt);
  f.get(x.vtmp(TMP));
  splat(x, hi);
  f.simd(SIMD.f64x2_lt).simd(SIMD.v128_and);
}

/** Pushes the lane mask v == 0 (either sign). */
function isZero(x: BlockContext, v: number): void {
  x.f.get(v).v128(0n, 0n).simd(SIMD.f64x2_eq);
}

/** Pushes the lane mask of lanes where the result in local v is fpcore.ts finish()-safe or an exact zero. */
function resultOk(x: BlockContext, v: number): void {
  absBetween(x, v, MIN_D, MAX_D);
  isZero(x, v);
  x.f.simd(SIMD.v128_or);
}

/** Leaves the guard unless every lane of the mask on the stack is set. */
function requireAll(x: BlockContext): void {
  x.f.simd(SIMD.i64x2_all_true).op(OP.i32_eqz).byte(OP.br_if).u32(0);
}

/** FPSR.IXC |= any lane of the mask on the stack set. */
function inexactIf(x: BlockContext): void {
  const f = x.f;
  f.simd(SIMD.v128_any_true).op(OP.if).byte(VOID);
  f.get(0).get(0).mem(OP.i32_load, OFF.FPSR).i32(16).op(OP.i32_or).mem(OP.i32_store, OFF.FPSR);
  f.op(OP.end);
}

/** Pushes the lane mask err != 0 of TwoSum's error for s = a + b (locals). */
function sumInexact(x: BlockContext, a: number, b: number, s: number): void {
  const f = x.f;
  const bb = x.vtmp(TMP);
  f.get(s).get(a).simd(SIMD.f64x2_sub).set(bb);
  // err = (a - (s - bb)) + (b - bb)
  f.get(a).get(s).get(bb).simd(SIMD.f64x2_sub).simd(SIMD.f64x2_sub);
  f.get(b).get(bb).simd(SIMD.f64x2_sub).simd(SIMD.f64x2_add);
  f.v128(0n, 0n).simd(SIMD.f64x2_ne);
}

/** Local `hi` = the high half of local `v` by Veltkamp's split, `lo` = v - hi. */
function split(x: BlockContext, v: number, hi: number, lo: number): void {
  const f = x.f;
  const t = x.vtmp(TMP);
  f.get(v);
  splat(x, SPLIT);
  f.simd(SIMD.f64x2_mul).set(t);
  // hi = t - (t - v)
  f.get(t).get(t).get(v).simd(SIMD.f64x2_sub).simd(SIMD.f64x2_sub).set(hi);
  f.get(v).get(hi).simd(SIMD.f64x2_sub).set(lo);
}

// v128 locals of the arithmetic emitters.
const A = 0;
const B = 1;
const C = 2;
const P = 3;
const S = 4;
const AH = 5;
const AL = 6;
const BH = 7;
const BL = 8;
const TMP = 9;
const OK = 10;

/**
 * Pushes the lane mask where p = a*b (locals A, B, P) is the exact product, as fpcore.ts
 * twoProd() proves it: both factors and p in prodSafe()'s range. With `exact`, also the
 * error ah*bh - p + ah*bl + al*bh + al*bl is zero; without, local OK = the range mask and
 * the stack gets the mask of lanes in range with a non-zero error (inexact).
 */
function productMask(x: BlockContext, exact: boolean): void {
  const f = x.f;
  const v = (i: number) => x.vtmp(i);
  absBetween(x, v(A), PROD_LO, PROD_HI);
  absBetween(x, v(B), PROD_LO, PROD_HI);
  f.simd(SIMD.v128_and);
  absBetween(x, v(P), PROD_LO, PROD_HI);
  f.simd(SIMD.v128_and);
  if (!exact) f.tee(v(OK));
  split(x, v(A), v(AH), v(AL));
  split(x, v(B), v(BH), v(BL));
  f.get(v(AH)).get(v(BH)).simd(SIMD.f64x2_mul).get(v(P)).simd(SIMD.f64x2_sub);
  f.get(v(AH)).get(v(BL)).simd(SIMD.f64x2_mul).simd(SIMD.f64x2_add);
  f.get(v(AL)).get(v(BH)).simd(SIMD.f64x2_mul).simd(SIMD.f64x2_add);
  f.get(v(AL)).get(v(BL)).simd(SIMD.f64x2_mul).simd(SIMD.f64x2_add);
  f.v128(0n, 0n)
    .simd(exact ? SIMD.f64x2_eq : SIMD.f64x2_ne)
    .simd(SIMD.v128_and);
}

/** Pushes the lane mask where a or b (locals A, B) is a zero and the other finite: p is that zero, exactly. */
function zeroProduct(x: BlockContext): void {
  const f = x.f;
  const FINITE_LO = bitsOf(-1);
  const FINITE_HI = bitsOf(Number.POSITIVE_INFINITY);
  isZero(x, x.vtmp(A));
  absBetween(x, x.vtmp(B), FINITE_LO, FINITE_HI);
  f.simd(SIMD.v128_and);
  isZero(x, x.vtmp(B));
  absBetween(x, x.vtmp(A), FINITE_LO, FINITE_HI);
  f.simd(SIMD.v128_and).simd(SIMD.v128_or);
}

/** Vd = the v128 on the stack; a scalar result keeps only its low double (the rest is zero). */
function storeResult(x: BlockContext, d: number, vector: boolean): void {
  const f = x.f;
  if (!vector) f.v128(-1n, 0n).simd(SIMD.v128_and);
  f.set(x.vtmp(TMP));
  f.get(0).get(x.vtmp(TMP)).simdMem(SIMD.v128_store, vOff(d));
}

type Arith = "add" | "sub" | "mul" | "nmul";

/** FADD, FSUB, FMUL, FNMUL of doubles: scalar or 2D. */
function arith(x: BlockContext, insn: number, op: Arith, vector: boolean): void {
  const f = x.f;
  const v = (i: number) => x.vtmp(i);
  const d = insn & 31;
  guarded(x, insn, () => {
    requireFpEnabled(x);
    f.get(0).mem(OP.i32_load, OFF.FPCR).i32(FPCR_SLOW).op(OP.i32_and).byte(OP.br_if).u32(0);
    loadD(x, (insn >>> 5) & 31, vector);
    f.set(v(A));
    loadD(x, (insn >>> 16) & 31, vector);
    if (op === "sub") f.simd(SIMD.f64x2_neg); // a - b is a + (-b), one rounding
    f.set(v(B));
    if (op === "add" || op === "sub") {
      f.get(v(A)).get(v(B)).simd(SIMD.f64x2_add).set(v(S));
      resultOk(x, v(S));
      requireAll(x);
      sumInexact(x, v(A), v(B), v(S));
      inexactIf(x);
      f.get(v(S));
    } else {
      f.get(v(A)).get(v(B)).simd(SIMD.f64x2_mul).set(v(P));
      productMask(x, false); // local OK: in range; stack: inexact
      f.get(v(OK));
      zeroProduct(x);
      f.simd(SIMD.v128_or);
      requireAll(x);
      inexactIf(x);
      f.get(v(P));
      if (op === "nmul") f.simd(SIMD.f64x2_neg);
    }
    storeResult(x, d, vector);
  });
}

/**
 * c + a*b fused (FMADD and kin, FMLA, FMLS) of doubles, `negA`/`negC` negating a factor
 * and the addend first (FPNeg, exact), when the product is exact: then the one rounding
 * of c + p is FPMulAdd's.
 */
function fused(
  x: BlockContext,
  insn: number,
  regs: { n: number; m: number; c: number; d: number },
  negA: boolean,
  negC: boolean,
  vector: boolean,
): void {
  const f = x.f;
  const v = (i: number) => x.vtmp(i);
  guarded(x, insn, () => {
    requireFpEnabled(x);
    f.get(0).mem(OP.i32_load, OFF.FPCR).i32(FPCR_SLOW).op(OP.i32_and).byte(OP.br_if).u32(0);
    loadD(x, regs.n, vector);
    if (negA) f.simd(SIMD.f64x2_neg);
    f.set(v(A));
    loadD(x, regs.m, vector);
    f.set(v(B));
    loadD(x, regs.c, vector);
    if (negC) f.simd(SIMD.f64x2_neg);
    f.set(v(C));
    f.get(v(A)).get(v(B)).simd(SIMD.f64x2_mul).set(v(P));
    productMask(x, true);
    zeroProduct(x);
    f.simd(SIMD.v128_or);
    f.get(v(C)).get(v(P)).simd(SIMD.f64x2_add).set(v(S));
    resultOk(x, v(S));
    f.simd(SIMD.v128_and);
    requireAll(x);
    sumInexact(x, v(C), v(P), v(S));
    inexactIf(x);
    f.get(v(S));
    storeResult(x, regs.d, vector);
  });
}

/** FP data-processing (2 source), double: FMUL, FADD, FSUB, FNMUL. */
function scalar2(x: BlockContext, insn: number): boolean {
  if (((insn >>> 22) & 3) !== 1) return false; // ftype 01: double
  const op = (["mul", null, "add", "sub", null, null, null, null, "nmul"] as const)[(insn >>> 12) & 15];
  if (op === undefined || op === null) return false;
  arith(x, insn, op, false);
  return true;
}

/** FP data-processing (3 source), double: FMADD, FMSUB, FNMADD, FNMSUB. */
function scalar3(x: BlockContext, insn: number): boolean {
  if (((insn >>> 22) & 3) !== 1) return false; // ftype 01: double
  const o1 = ((insn >>> 21) & 1) === 1;
  const o0 = ((insn >>> 15) & 1) === 1;
  const regs = { n: (insn >>> 5) & 31, m: (insn >>> 16) & 31, c: (insn >>> 10) & 31, d: insn & 31 };
  // FMADD: a + n*m; FMSUB: a - n*m; FNMADD: -a - n*m; FNMSUB: -a + n*m.
  fused(x, insn, regs, o1 !== o0, o1, false);
  return true;
}

/** Advanced SIMD three same, 2D: FADD, FSUB, FMUL, FMLA, FMLS. */
function vector3(x: BlockContext, insn: number): boolean {
  if (((insn >>> 22) & 1) !== 1 || ((insn >>> 30) & 1) !== 1) return false; // sz 1, Q 1: 2D
  const u = (insn >>> 29) & 1;
  const a = (insn >>> 23) & 1;
  const opcode = (insn >>> 11) & 31;
  const regs = { n: (insn >>> 5) & 31, m: (insn >>> 16) & 31, c: insn & 31, d: insn & 31 };
  if (u === 0 && opcode === 0x1a) arith(x, insn, a === 0 ? "add" : "sub", true);
  else if (u === 1 && a === 0 && opcode === 0x1b) arith(x, insn, "mul", true);
  else if (u === 0 && opcode === 0x19) fused(x, insn, regs, a === 1, false, true);
  else return false;
  return true;
}

/** By the decode table's names (jit/translate.ts); each emitter declines the forms it lacks. */
export const SIMD_EMITTERS: ReadonlyMap<string, Emitter> = new Map<string, Emitter>([
  ...["STR", "LDR"]
    .flatMap((m) => [
      `${m} (immediate, SIMD&FP, post-index)`,
      `${m} (immediate, SIMD&FP, pre-index)`,
      `${m} (immediate, SIMD&FP, unsigned offset)`,
      `${m} (register, SIMD&FP)`,
    ])
    .map((n): [string, Emitter] => [n, loadStoreSingleV]),
  ["STUR (SIMD&FP)", loadStoreSingleV],
  ["LDUR (SIMD&FP)", loadStoreSingleV],
  ...["STP", "LDP"]
    .flatMap((m) => [
      `${m} (SIMD&FP, post-index)`,
      `${m} (SIMD&FP, pre-index)`,
      `${m} (SIMD&FP, signed offset)`,
    ])
    .map((n): [string, Emitter] => [n, loadStorePairV]),
  ["STNP (SIMD&FP)", loadStorePairV],
  ["LDNP (SIMD&FP)", loadStorePairV],
  ["LD1R", ld1r],
  ["LD1R (post-index)", ld1r],
  ...["FADD", "FSUB", "FMUL", "FNMUL"].map((m): [string, Emitter] => [`${m} (scalar)`, scalar2]),
  ...["FMADD", "FMSUB", "FNMADD", "FNMSUB"].map((m): [string, Emitter] => [m, scalar3]),
  ...["FADD", "FSUB", "FMUL", "FMLA", "FMLS"].map((m): [string, Emitter] => [`${m} (vector)`, vector3]),
]);
