/**
 * The translator's instruction emitters: WebAssembly for the instructions that dominate
 * compiled code (integer arithmetic and logic, moves, bitfield shifts, multiply, select,
 * loads and stores of general-purpose registers, branches). Every other instruction is
 * run by the interpreter's own executor through a call (`fallback`), so a block can hold
 * anything and the two paths share one semantics.
 *
 * General-purpose registers are read from locals inside a block and written through to
 * the vCPU's state block (state.ts; jit/registers.ts), so that a helper that throws the
 * architected exception sees every register exact.
 * PSTATE.NZCV is kept lazily (jit/flags.ts). Guest memory is reached through the software
 * TLB (tlb.ts), probed inline: a hit is one compare and one add; a miss, MMIO, a page not
 * yet marked dirty, a misaligned access or a watchpoint go to the same JS access path the
 * interpreter uses.
 */
import { decodeBitMasks } from "../alu.ts";
import { OFF, PSTATE } from "../state.ts";
import { SYSREG_BY_KEY, SYSREG_BY_NAME, sysregKey } from "../sysregs.ts";
import { TLB } from "../tlb.ts";
import { FLAGS, type LazyFlags, writeNzcv } from "./flags.ts";
import { type RegisterCache, SP_SLOT } from "./registers.ts";
import { FuncBody, type FuncType, OP, T, VOID } from "./wasm.ts";

/** Indices of the helper functions every translated module imports (jit.ts provides them). */
export const HELPER = {
  /** exec(id, pc) -> stop: run the interpreter's executor `id` for the instruction at pc. */
  EXEC: 0,
  /** load(vaLo, vaHi, size, pc) -> stop: value (zero-extended) in OFF.JIT_SCRATCH. */
  LOAD: 1,
  /** store(vaLo, vaHi, valLo, valHi, size, pc) -> stop. */
  STORE: 2,
} as const;

/** What an emitter knows about the block being translated. */
export interface BlockContext {
  readonly f: FuncBody;
  /** The general-purpose registers held in locals (jit/registers.ts). */
  readonly regs: RegisterCache;
  /** PSTATE.NZCV, kept lazily (jit/flags.ts). */
  readonly flags: LazyFlags;
  /** PC[31:0] of the instruction being emitted, and PC[63:32] (constant in a block). */
  pc: number;
  readonly pcHi: number;
  /** Byte offset of the stack pointer in use (SP_EL0 or SP_EL1): fixed per translation. */
  readonly spOff: number;
  /** Word offset of the TLB regime of ordinary accesses at the block's EL. */
  readonly tlbRegimeBytes: number;
  /** Instructions of the block before this one (the return value after this one: index + 1). */
  index: number;
  /** PC of the block's first instruction (lo) and its length: a branch there loops in wasm. */
  readonly startLo: number;
  readonly len: number;
  /**
   * i32 local: instructions completed before this block's current iteration (by the blocks
   * that chained into it, parameter 2, and by its earlier iterations); parameter 1: budget.
   */
  readonly count: number;
  readonly left: number;
  /**
   * PC[31:2] of the block's first instruction, as an i32: helpers find the instructions
   * completed before the current one as OFF.JIT_COUNT (count - startWord) + PC[31:2].
   */
  readonly startWord: number;
  /** Index of this module's dispatcher (jit/dispatch.ts). */
  readonly dispatch: number;
  /**
   * The function of this module translating the block that starts at PC[31:0] = `lo` on
   * this block's page, for the same EL and stack pointer, or null: a branch there may
   * continue into it with a tail call instead of returning to the interpreter.
   */
  chain(lo: number): { fn: number; len: number } | null;
  /** Emits `return count + k`. */
  ret(k: number): void;
  /**
   * Emits the end of the block after the current instruction, with PC the next one's: a
   * branch to the function's shared exit (translate.ts), which writes PC and returns.
   */
  exitAfter(): void;
  /** Indices of the module's slow-path functions for loads and stores (slowLoadBody, slowStoreBody). */
  readonly slowLoad: number;
  readonly slowStore: number;
  /** Byte offset in the memory of the block's first word. */
  readonly host: number;
  /**
   * Pushes an i32, non-zero when a word of the block after the current instruction is no
   * longer the word translated (the instruction just stored over it): the block must end
   * after this instruction, so that the next one runs as the interpreter would run it.
   */
  laterWordsChanged(): void;
  /** Scratch locals. */
  readonly a: number; // i64
  readonly b: number; // i64
  readonly res: number; // i64
  readonly va: number; // i64
  readonly e: number; // i32
  readonly stop: number; // i32
  readonly v2: number; // i64
  /** i32 scratch locals (host addresses of SIMD&FP accesses). */
  readonly h: number;
  readonly h2: number;
  /** The v128 scratch local number `i` (declared on first use). */
  vtmp(i: number): number;
  /**
   * CPACR_EL1.FPEN bits that must all be set for SIMD&FP instructions to run at the
   * block's EL (1 at EL1, 3 at EL0), or 0 when they always may (`armbox user`).
   */
  readonly fpenMask: number;
  /** The block's exception level (0 or 1). */
  readonly el: number;
  /** Stores to the block's page are tracked (translate.ts BlockSource.tracked): no later-word checks. */
  readonly tracked: boolean;
  /** Emits a call to the interpreter's executor of `insn` (and the stop check). */
  fallback(insn: number): void;
}

export type Emitter = (x: BlockContext, insn: number) => boolean;

// ---------------------------------------------------------------------------
// Registers

/** Pushes Xn (n = 31: XZR). */
export function getX(x: BlockContext, n: number): void {
  if (n === 31) x.f.i64(0n);
  else x.regs.get(n);
}
/** Pushes Xn (n = 31: the current SP). */
export function getXsp(x: BlockContext, n: number): void {
  x.regs.get(n === 31 ? SP_SLOT : n);
}
/** Pushes Wn as an i64, zero-extended (sign-extended when `signed`). */
function getW64(x: BlockContext, n: number, signed = false): void {
  if (n === 31) x.f.i64(0n);
  else {
    x.regs.get32(n);
    x.f.op(signed ? OP.i64_extend_i32_s : OP.i64_extend_i32_u);
  }
}
/** Pushes Wn as an i32 (n = 31: WZR). */
function getW32(x: BlockContext, n: number): void {
  if (n === 31) x.f.i32(0);
  else x.regs.get32(n);
}
/** Stores the i64 that `value` pushes into Xn (31: discarded, `value` still runs for its effects). */
export function setX(x: BlockContext, n: number, value: () => void, sp = false): void {
  if (n === 31 && !sp) {
    value();
    x.f.op(OP.drop);
    return;
  }
  x.regs.set(n === 31 ? SP_SLOT : n, value);
}
/** Operand size: 64-bit values as they are, 32-bit ones truncated to their low half. */
function truncW(x: BlockContext, sf: boolean): void {
  if (!sf) x.f.i64(0xffff_ffffn).op(OP.i64_and);
}

// ---------------------------------------------------------------------------
// Data processing

/** Pushes Xm shifted (LSL 0, LSR 1, ASR 2, ROR 3) by `amount`, at width sf. */
function shifted(x: BlockContext, m: number, sf: boolean, type: number, amount: number): void {
  const f = x.f;
  if (sf) {
    getX(x, m);
    if (amount === 0) return;
    f.i64(BigInt(amount));
    f.op([OP.i64_shl, OP.i64_shr_u, OP.i64_shr_s, OP.i64_rotr][type]!);
    return;
  }
  // 32 bits: operate on the low half, the result zero-extended.
  getW32(x, m);
  if (amount !== 0) {
    if (type === 3) {
      // i32.rotr: 0x78.
      f.i32(amount).op(OP.i32_rotr);
    } else f.i32(amount).op([OP.i32_shl, OP.i32_shr_u, OP.i32_shr_s][type]!);
  }
  f.op(OP.i64_extend_i32_u);
}

/**
 * Rd = a + b or a - b (locals a and b, the operands at width sf), with the flags when
 * `flags`; Rd 31 is SP when `dSp` (the forms without flags), else XZR.
 */
function addSub(x: BlockContext, d: number, sf: boolean, sub: boolean, flags: boolean, dSp: boolean): void {
  const f = x.f;
  setX(
    x,
    d,
    () => {
      f.get(x.a)
        .get(x.b)
        .op(sub ? OP.i64_sub : OP.i64_add);
      truncW(x, sf);
      f.tee(x.res);
    },
    dSp,
  );
  if (flags) x.flags.set(sub ? FLAGS.SUB : FLAGS.ADD, sf, x.a, x.b, x.res);
}

function addSubImm(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const sub = ((insn >>> 30) & 1) === 1;
  const s = ((insn >>> 29) & 1) === 1;
  const imm = ((insn >>> 22) & 1) === 1 ? ((insn >>> 10) & 0xfff) * 4096 : (insn >>> 10) & 0xfff;
  const n = (insn >>> 5) & 31;
  const d = insn & 31;
  const f = x.f;
  getXsp(x, n);
  truncW(x, sf);
  f.set(x.a);
  f.i64(BigInt(imm)).set(x.b);
  addSub(x, d, sf, sub, s, !s);
  return true;
}

function addSubShifted(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const sub = ((insn >>> 30) & 1) === 1;
  const s = ((insn >>> 29) & 1) === 1;
  const type = (insn >>> 22) & 3;
  const amount = (insn >>> 10) & 63;
  if (type === 3 || (!sf && amount >= 32)) return false;
  const f = x.f;
  getX(x, (insn >>> 5) & 31);
  truncW(x, sf);
  f.set(x.a);
  shifted(x, (insn >>> 16) & 31, sf, type, amount);
  f.set(x.b);
  addSub(x, insn & 31, sf, sub, s, false);
  return true;
}

/** Logical ops by opc (AND, ORR, EOR, ANDS) on locals a and b (b already inverted for N). */
function logical(x: BlockContext, insn: number, sf: boolean, opc: number, d: number, dSp: boolean): void {
  const f = x.f;
  setX(
    x,
    d,
    () => {
      f.get(x.a).get(x.b).op([OP.i64_and, OP.i64_or, OP.i64_xor, OP.i64_and][opc]!);
      truncW(x, sf);
      f.tee(x.res);
    },
    dSp,
  );
  if (opc === 3) x.flags.set(FLAGS.LOGIC, sf, x.a, x.b, x.res);
  void insn;
}

function logicalShifted(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const amount = (insn >>> 10) & 63;
  if (!sf && amount >= 32) return false;
  const f = x.f;
  getX(x, (insn >>> 5) & 31);
  f.set(x.a);
  shifted(x, (insn >>> 16) & 31, sf, (insn >>> 22) & 3, amount);
  if (((insn >>> 21) & 1) === 1) f.i64(-1n).op(OP.i64_xor); // BIC, ORN, EON, BICS
  f.set(x.b);
  logical(x, insn, sf, (insn >>> 29) & 3, insn & 31, false);
  return true;
}

function logicalImm(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const nBit = (insn >>> 22) & 1;
  if (!sf && nBit === 1) return false;
  const mask = decodeBitMasks(nBit, (insn >>> 10) & 63, (insn >>> 16) & 63, sf);
  if (mask === null) return false;
  const opc = (insn >>> 29) & 3;
  const f = x.f;
  getX(x, (insn >>> 5) & 31);
  f.set(x.a);
  f.i64((BigInt(mask[1] >>> 0) << 32n) | BigInt(mask[0] >>> 0)).set(x.b);
  logical(x, insn, sf, opc, insn & 31, opc !== 3);
  return true;
}

function moveWide(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const opc = (insn >>> 29) & 3;
  const hw = (insn >>> 21) & 3;
  if (opc === 1 || (!sf && hw >= 2)) return false;
  const imm = BigInt((insn >>> 5) & 0xffff) << BigInt(hw * 16);
  const d = insn & 31;
  const f = x.f;
  const width = sf ? 64 : 32;
  if (opc === 3) {
    // MOVK: keep the other bits.
    setX(x, d, () => {
      getX(x, d);
      f.i64(BigInt.asIntN(64, ~(0xffffn << BigInt(hw * 16))))
        .op(OP.i64_and)
        .i64(imm)
        .op(OP.i64_or);
      truncW(x, sf);
    });
    return true;
  }
  const v = opc === 0 ? BigInt.asUintN(width, ~imm) : imm;
  setX(x, d, () => f.i64(BigInt.asIntN(64, v)));
  return true;
}

function adr(x: BlockContext, insn: number): boolean {
  const page = insn >>> 31 === 1;
  const imm = BigInt((((insn << 8) >> 13) << 2) | ((insn >>> 29) & 3)); // immhi:immlo, signed 21 bits
  const pc = (BigInt(x.pcHi >>> 0) << 32n) | BigInt(x.pc >>> 0);
  const v = page ? (pc & ~0xfffn) + imm * 4096n : pc + imm;
  setX(x, insn & 31, () => x.f.i64(BigInt.asIntN(64, v)));
  return true;
}

/** UBFM/SBFM (LSL, LSR, ASR, UBFX, SBFX, UBFIZ, SBFIZ, UXTB, SXTW, ...) and BFM (BFI, BFXIL, BFC). */
function bitfield(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const opc = (insn >>> 29) & 3;
  const nBit = (insn >>> 22) & 1;
  const r = (insn >>> 16) & 63;
  const s = (insn >>> 10) & 63;
  if (opc === 3 || nBit !== (sf ? 1 : 0)) return false;
  if (!sf && (r >= 32 || s >= 32)) return false;
  const w = sf ? 64 : 32;
  const f = x.f;
  if (opc === 1) {
    // BFM: BFXIL (s >= r) moves bits s..r of Xn to the bottom of Xd, BFI (s < r) bits
    // s..0 to bit w - r; Xd's other bits stay (C6.2.29).
    const width = s >= r ? s - r + 1 : s + 1;
    const pos = s >= r ? 0 : w - r;
    const field = ((1n << BigInt(width)) - 1n) << BigInt(pos);
    const d = insn & 31;
    setX(x, d, () => {
      getX(x, d);
      f.i64(BigInt.asIntN(64, ~field)).op(OP.i64_and);
      getX(x, (insn >>> 5) & 31);
      if (s >= r) f.i64(BigInt(r)).op(OP.i64_shr_u);
      else f.i64(BigInt(pos)).op(OP.i64_shl);
      f.i64(BigInt.asIntN(64, field)).op(OP.i64_and).op(OP.i64_or);
      truncW(x, sf);
    });
    return true;
  }
  const signed = opc === 0;
  setX(x, insn & 31, () => {
    getX(x, (insn >>> 5) & 31);
    // Place bit s at the top of the 64-bit value, shift back with sign or zero fill.
    if (s >= r) {
      // Extract bits s..r to the bottom: (v << (63 - s)) >> (63 - s + r).
      f.i64(BigInt(63 - s - (64 - w))).op(OP.i64_shl);
      if (!sf) f.i64(32n).op(OP.i64_shl);
      f.i64(BigInt(63 - s + r)).op(signed ? OP.i64_shr_s : OP.i64_shr_u);
    } else {
      // Insert bits s..0 at position w - r: (v << (63 - s)) >> (63 - s) << (w - r).
      f.i64(BigInt(63 - s)).op(OP.i64_shl);
      f.i64(BigInt(63 - s)).op(signed ? OP.i64_shr_s : OP.i64_shr_u);
      f.i64(BigInt(w - r)).op(OP.i64_shl);
    }
    truncW(x, sf);
  });
  return true;
}

/** EXTR (and ROR (immediate), its alias with Rn == Rm): bits lsb.. of Xn:Xm, at width sf. */
function extract(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const lsb = (insn >>> 10) & 63;
  if (((insn >>> 29) & 3) !== 0 || ((insn >>> 21) & 1) !== 0 || ((insn >>> 22) & 1) !== (sf ? 1 : 0))
    return false;
  if (!sf && lsb >= 32) return false;
  const n = (insn >>> 5) & 31;
  const m = (insn >>> 16) & 31;
  const f = x.f;
  setX(x, insn & 31, () => {
    if (sf) {
      getX(x, m);
      if (lsb === 0) return;
      f.i64(BigInt(lsb)).op(OP.i64_shr_u);
      getX(x, n);
      f.i64(BigInt(64 - lsb))
        .op(OP.i64_shl)
        .op(OP.i64_or);
      return;
    }
    // 32 bits: (Wn:Wm) as one 64-bit value, shifted right by lsb, low half.
    getW64(x, n);
    f.i64(32n).op(OP.i64_shl);
    getW64(x, m);
    f.op(OP.i64_or).i64(BigInt(lsb)).op(OP.i64_shr_u).i64(0xffff_ffffn).op(OP.i64_and);
  });
  return true;
}

/**
 * MADD/MSUB (MUL, MNEG) and the long forms SMADDL/SMSUBL/UMADDL/UMSUBL (SMULL, UMULL: Xa
 * plus or minus the 64-bit product of Wn and Wm, sign- or zero-extended). The high
 * multiplies (SMULH, UMULH) fall back.
 */
function mulAdd(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const op31 = (insn >>> 21) & 7;
  if (((insn >>> 29) & 3) !== 0) return false;
  const long = op31 === 1 || op31 === 5;
  if (op31 !== 0 && !(long && sf)) return false;
  const sub = ((insn >>> 15) & 1) === 1;
  const f = x.f;
  const operand = (n: number) => (long ? getW64(x, n, op31 === 1) : getX(x, n));
  setX(x, insn & 31, () => {
    getX(x, (insn >>> 10) & 31);
    operand((insn >>> 5) & 31);
    operand((insn >>> 16) & 31);
    f.op(OP.i64_mul).op(sub ? OP.i64_sub : OP.i64_add);
    truncW(x, sf);
  });
  return true;
}

/**
 * UDIV, SDIV (C6.2.x): a zero divisor gives 0 and the one overflowing quotient (the most
 * negative value divided by -1) is the dividend, where WebAssembly would trap. The 32-bit
 * forms divide the 64-bit extensions of the W registers, whose quotient is the same.
 */
function divide(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const signed = ((insn >>> 10) & 1) === 1;
  const f = x.f;
  const operand = (n: number) => (sf ? getX(x, n) : getW64(x, n, signed));
  setX(x, insn & 31, () => {
    operand((insn >>> 16) & 31);
    f.tee(x.b).op(OP.i64_eqz).op(OP.if).byte(T.i64);
    f.i64(0n);
    f.op(OP.else);
    operand((insn >>> 5) & 31);
    f.set(x.a);
    if (signed && sf) {
      // MIN / -1: the dividend (the quotient wraps to it).
      f.get(x.b).i64(-1n).op(OP.i64_eq).op(OP.if).byte(T.i64);
      f.i64(0n).get(x.a).op(OP.i64_sub);
      f.op(OP.else);
      f.get(x.a).get(x.b).op(OP.i64_div_s);
      f.op(OP.end);
    } else
      f.get(x.a)
        .get(x.b)
        .op(signed ? OP.i64_div_s : OP.i64_div_u);
    f.op(OP.end);
    truncW(x, sf);
  });
  return true;
}

/**
 * UMULH, SMULH: bits 127:64 of the 128-bit product, from four 32x32-bit products
 * (WebAssembly has no wide multiply); the signed one corrects the unsigned high half by
 * subtracting each operand where the other is negative.
 */
function multiplyHigh(x: BlockContext, insn: number): boolean {
  const signed = ((insn >>> 23) & 1) === 0;
  const f = x.f;
  const n = (insn >>> 5) & 31;
  const m = (insn >>> 16) & 31;
  const M32 = 0xffff_ffffn;
  getX(x, n);
  f.set(x.a);
  getX(x, m);
  f.set(x.b);
  setX(x, insn & 31, () => {
    // t = aH*bL + (aL*bL >> 32); w = (t & M32) + aL*bH; high = aH*bH + (t >> 32) + (w >> 32).
    f.get(x.a).i64(32n).op(OP.i64_shr_u).get(x.b).i64(M32).op(OP.i64_and).op(OP.i64_mul);
    f.get(x.a).i64(M32).op(OP.i64_and).get(x.b).i64(M32).op(OP.i64_and).op(OP.i64_mul);
    f.i64(32n).op(OP.i64_shr_u).op(OP.i64_add).set(x.res);
    f.get(x.res).i64(M32).op(OP.i64_and);
    f.get(x.a).i64(M32).op(OP.i64_and).get(x.b).i64(32n).op(OP.i64_shr_u).op(OP.i64_mul);
    f.op(OP.i64_add).set(x.v2);
    f.get(x.a).i64(32n).op(OP.i64_shr_u).get(x.b).i64(32n).op(OP.i64_shr_u).op(OP.i64_mul);
    f.get(x.res).i64(32n).op(OP.i64_shr_u).op(OP.i64_add);
    f.get(x.v2).i64(32n).op(OP.i64_shr_u).op(OP.i64_add);
    if (signed) {
      // - (a < 0 ? b : 0) - (b < 0 ? a : 0), as masks of the sign bits.
      f.get(x.a).i64(63n).op(OP.i64_shr_s).get(x.b).op(OP.i64_and).op(OP.i64_sub);
      f.get(x.b).i64(63n).op(OP.i64_shr_s).get(x.a).op(OP.i64_and).op(OP.i64_sub);
    }
  });
  return true;
}

/** ADC/SBC (NGC): Xn + Xm (SBC: NOT Xm) + PSTATE.C, at width sf. ADCS/SBCS fall back. */
function addCarry(x: BlockContext, insn: number): boolean {
  if (((insn >>> 29) & 1) === 1) return false;
  const sf = insn >>> 31 === 1;
  const sub = ((insn >>> 30) & 1) === 1;
  const f = x.f;
  setX(x, insn & 31, () => {
    getX(x, (insn >>> 5) & 31);
    getX(x, (insn >>> 16) & 31);
    if (sub) f.i64(-1n).op(OP.i64_xor);
    f.op(OP.i64_add);
    x.flags.flush();
    f.get(0).mem(OP.i32_load, OFF.PSTATE).i32(29).op(OP.i32_shr_u).i32(1).op(OP.i32_and);
    f.op(OP.i64_extend_i32_u).op(OP.i64_add);
    truncW(x, sf);
  });
  return true;
}

/** LSLV, LSRV, ASRV, RORV: the shift amount is Rm modulo the width (wasm shifts the same way). */
function shiftVariable(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const type = (insn >>> 10) & 3;
  const n = (insn >>> 5) & 31;
  const m = (insn >>> 16) & 31;
  const f = x.f;
  setX(x, insn & 31, () => {
    if (sf) {
      getX(x, n);
      getX(x, m);
      f.op([OP.i64_shl, OP.i64_shr_u, OP.i64_shr_s, OP.i64_rotr][type]!);
      return;
    }
    getW64(x, n);
    f.op(OP.i32_wrap_i64);
    getW64(x, m);
    f.op(OP.i32_wrap_i64);
    f.op([OP.i32_shl, OP.i32_shr_u, OP.i32_shr_s, OP.i32_rotr][type]!).op(OP.i64_extend_i32_u);
  });
  return true;
}

/** Pushes the i64 on the stack with the bytes of each 2^k-byte unit swapped pairwise (one bswap step). */
function swapUnits(x: BlockContext, v: number, bits: number): void {
  const f = x.f;
  let mask = 0n;
  for (let i = 0; i < 64; i += 2 * bits) mask |= ((1n << BigInt(bits)) - 1n) << BigInt(i);
  f.set(v);
  f.get(v).i64(BigInt(bits)).op(OP.i64_shr_u).i64(BigInt.asIntN(64, mask)).op(OP.i64_and);
  f.get(v).i64(BigInt.asIntN(64, mask)).op(OP.i64_and).i64(BigInt(bits)).op(OP.i64_shl);
  f.op(OP.i64_or);
}

/** RBIT, REV16, REV32, REV (32 and 64 bits), CLZ, CLS (data processing, one source). */
function dataProc1(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const opc = (insn >>> 10) & 63;
  const n = (insn >>> 5) & 31;
  const f = x.f;
  if (opc > 5 || (opc === 3 && !sf)) return false;
  setX(x, insn & 31, () => {
    if (opc >= 4) {
      // CLZ; CLS = CLZ((x ^ (x >> 1, arithmetic)) << 1 | 1) at the width.
      if (sf) getX(x, n);
      else {
        getW64(x, n);
        f.i64(32n).op(OP.i64_shl);
      }
      if (opc === 5) {
        f.tee(x.a).get(x.a).i64(63n).op(OP.i64_shr_s).op(OP.i64_xor);
        f.i64(1n)
          .op(OP.i64_shl)
          .i64(sf ? 1n : 1n << 32n)
          .op(OP.i64_or);
      } else if (!sf) f.i64(0xffff_ffffn).op(OP.i64_or); // a zero W register counts 32
      f.op(OP.i64_clz);
      return;
    }
    if (opc === 0) {
      // RBIT: the 64 bits reversed by swapping ever larger units; a W register's reversed
      // bits are then the top half.
      getX(x, n);
      for (const bits of [1, 2, 4, 8, 16, 32]) swapUnits(x, x.a, bits);
      if (!sf) f.i64(32n).op(OP.i64_shr_u);
      return;
    }
    // Byte reversal within 2-byte (REV16), 4-byte (REV32, REV of W) or 8-byte units.
    getX(x, n);
    swapUnits(x, x.a, 8);
    if (opc >= 2) swapUnits(x, x.a, 16);
    if (opc === 3) swapUnits(x, x.a, 32);
    truncW(x, sf);
  });
  return true;
}

/** CCMP, CCMN (register and immediate): the flags of Rn - op (+ op) if cond holds, else #nzcv. */
function condCompare(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const sub = ((insn >>> 30) & 1) === 1;
  const imm = ((insn >>> 11) & 1) === 1;
  const m = (insn >>> 16) & 31;
  const f = x.f;
  x.flags.condition((insn >>> 12) & 15);
  f.op(OP.if).byte(VOID);
  getX(x, (insn >>> 5) & 31);
  truncW(x, sf);
  f.set(x.a);
  if (imm) f.i64(BigInt(m));
  else {
    getX(x, m);
    truncW(x, sf);
  }
  f.set(x.b);
  f.get(x.a)
    .get(x.b)
    .op(sub ? OP.i64_sub : OP.i64_add);
  truncW(x, sf);
  f.set(x.res);
  x.flags.set(sub ? FLAGS.SUB : FLAGS.ADD, sf, x.a, x.b, x.res);
  f.op(OP.else);
  writeNzcv(f, () => f.i32((insn & 15) << 28));
  f.op(OP.end);
  x.flags.written();
  return true;
}

/** ADD, ADDS, SUB, SUBS (extended register): Rn|SP op extend(Rm) << imm3. */
function addSubExtended(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const sub = ((insn >>> 30) & 1) === 1;
  const s = ((insn >>> 29) & 1) === 1;
  const option = (insn >>> 13) & 7;
  const shift = (insn >>> 10) & 7;
  if (shift > 4 || ((insn >>> 22) & 3) !== 0) return false;
  const m = (insn >>> 16) & 31;
  const f = x.f;
  getXsp(x, (insn >>> 5) & 31);
  truncW(x, sf);
  f.set(x.a);
  // extend(Rm): the low 8, 16, 32 or 64 bits, zero- or sign-extended (option<2>).
  const width = 8 << (option & 3);
  getX(x, m);
  if (width < 64) {
    const sh = BigInt(64 - width);
    f.i64(sh)
      .op(OP.i64_shl)
      .i64(sh)
      .op(option & 4 ? OP.i64_shr_s : OP.i64_shr_u);
  }
  if (shift !== 0) f.i64(BigInt(shift)).op(OP.i64_shl);
  truncW(x, sf);
  f.set(x.b);
  addSub(x, insn & 31, sf, sub, s, !s);
  return true;
}

/** CSEL, CSINC, CSINV, CSNEG. */
function condSelect(x: BlockContext, insn: number): boolean {
  const sf = insn >>> 31 === 1;
  const op = (insn >>> 30) & 1;
  const o2 = (insn >>> 10) & 1;
  if (((insn >>> 29) & 1) === 1 || ((insn >>> 11) & 1) === 1) return false;
  const f = x.f;
  setX(x, insn & 31, () => {
    getX(x, (insn >>> 5) & 31);
    getX(x, (insn >>> 16) & 31);
    if (op === 1) f.i64(-1n).op(OP.i64_xor); // CSINV / CSNEG: NOT Xm
    if (o2 === 1) f.i64(1n).op(OP.i64_add); // CSINC / CSNEG: + 1
    x.flags.condition((insn >>> 12) & 15);
    f.op(OP.select);
    truncW(x, sf);
  });
  return true;
}

// ---------------------------------------------------------------------------
// Loads and stores

/** Load opcodes by size log2, zero-extending to i64. */
export const LOAD_U = [OP.i64_load8_u, OP.i64_load16_u, OP.i64_load32_u, OP.i64_load];
export const STORE = [OP.i64_store8, OP.i64_store16, OP.i64_store32, OP.i64_store];

/**
 * The slow paths of loads and stores, one function of each per module (jit.ts) so that
 * each access site only pushes its operands and calls: `slowLoad(state, va, size, pc) ->
 * (value, stop)` and `slowStore(state, va, value, size, pc) -> stop` call the `load` and
 * `store` imports, the interpreter's access path, which faults exactly as it does.
 */
export const SLOW_LOAD_TYPE: FuncType = { params: [T.i32, T.i64, T.i32, T.i32], results: [T.i64, T.i32] };
export const SLOW_STORE_TYPE: FuncType = { params: [T.i32, T.i64, T.i64, T.i32, T.i32], results: [T.i32] };

/** Pushes the low and the high half of the i64 in local `l`, as two i32. */
function halves(f: FuncBody, l: number): void {
  f.get(l).op(OP.i32_wrap_i64);
  f.get(l).i64(32n).op(OP.i64_shr_u).op(OP.i32_wrap_i64);
}

export function slowLoadBody(): FuncBody {
  const f = new FuncBody(4);
  const stop = f.local(T.i32);
  halves(f, 1);
  f.get(2).get(3).call(HELPER.LOAD).set(stop);
  f.get(0).mem(OP.i64_load, OFF.JIT_SCRATCH).get(stop);
  return f;
}

export function slowStoreBody(): FuncBody {
  const f = new FuncBody(5);
  halves(f, 1);
  halves(f, 2);
  f.get(3).get(4).call(HELPER.STORE);
  return f;
}

/**
 * Runs `fast` inside a block that it leaves (br 0) to run the executor instead; `fast`
 * falls through when it has done the instruction. Pushes nothing.
 */
export function guarded(x: BlockContext, insn: number, fast: () => void): void {
  const f = x.f;
  f.op(OP.block).byte(VOID);
  f.op(OP.block).byte(VOID);
  fast();
  f.byte(OP.br).u32(1);
  f.op(OP.end);
  x.fallback(insn);
  f.op(OP.end);
}

/** The slow path of a load of `size` bytes at the VA in local `va`: pushes the value, stop |= its result. */
function slowLoad(x: BlockContext, size: number): void {
  const f = x.f;
  f.get(0).get(x.va).i32(size).i32(x.pc).call(x.slowLoad);
  f.get(x.stop).op(OP.i32_or).set(x.stop);
}

/**
 * The slow path of a store of local `value`: stop |= its result, and with `later` whether
 * it reached a later word of the block.
 */
function slowStore(x: BlockContext, size: number, value: number, later: boolean): void {
  const f = x.f;
  f.get(0).get(x.va).get(value).i32(size).i32(x.pc).call(x.slowStore);
  if (later) {
    x.laterWordsChanged();
    f.op(OP.i32_or);
  }
  f.get(x.stop).op(OP.i32_or).set(x.stop);
}

/**
 * The skeleton of every GPR access: local e = the VA's TLB entry, then `fast` (which
 * probes the TLB, leaving through br 0 on a miss, and does the access) inside a block that
 * `slow` follows; `result` is the block type (VOID, or T.i64 for a loaded value).
 */
function tlbAccess(x: BlockContext, result: number, fast: () => void, slow: () => void): void {
  const f = x.f;
  tlbEntry(x);
  f.op(OP.block).byte(result);
  f.op(OP.block).byte(VOID);
  fast();
  f.byte(OP.br).u32(1);
  f.op(OP.end);
  slow();
  f.op(OP.end);
}

/**
 * Pushes the i64 loaded from the VA in local `va` (size 1 << sizeLog, zero-extended).
 * Fast path: the TLB's read tag equals the aligned page of the VA (a misaligned VA never
 * matches, so alignment needs no test of its own), then the host offset plus the page
 * offset. Slow path: the interpreter's access path, which faults exactly as it does.
 */
function load(x: BlockContext, sizeLog: number): void {
  const size = 1 << sizeLog;
  tlbAccess(
    x,
    T.i64,
    () => {
      fastProbe(x, 0, size);
      x.f.mem(LOAD_U[sizeLog]!, 0);
    },
    () => slowLoad(x, size),
  );
}

/** Stores the i64 in local `value` (its low 1 << sizeLog bytes) at the VA in local `va`. */
function store(x: BlockContext, sizeLog: number, value: number): void {
  const f = x.f;
  const size = 1 << sizeLog;
  const later = x.tracked ? 0 : x.len - x.index - 1;
  tlbAccess(
    x,
    VOID,
    () => {
      fastProbe(x, 1, size);
      if (later > 0) f.tee(x.e);
      f.get(value).mem(STORE[sizeLog]!, 0);
      if (later > 0) laterWordStored(x, x.e, size);
    },
    () => {
      slowStore(x, size, value, later > 0);
    },
  );
}

/**
 * Locals a and b = the two registers' worth (1 << sizeLog bytes each) at the VA in local
 * va, for LDP: one TLB probe when the pair is aligned to its element size and within one
 * page (the fast path), else two accesses through the slow path, the second at va + size.
 */
function loadPair(x: BlockContext, sizeLog: number): void {
  const f = x.f;
  const size = 1 << sizeLog;
  tlbAccess(
    x,
    VOID,
    () => {
      pairProbe(x, 0, size);
      f.tee(x.h).mem(LOAD_U[sizeLog]!, 0).set(x.a);
      f.get(x.h).mem(LOAD_U[sizeLog]!, size).set(x.b);
    },
    () => {
      slowLoad(x, size);
      f.set(x.a);
      f.get(x.va).i64(BigInt(size)).op(OP.i64_add).set(x.va);
      slowLoad(x, size);
      f.set(x.b);
    },
  );
}

/** STP: the low 1 << sizeLog bytes of locals a and b at the VA in local va (as loadPair). */
function storePair(x: BlockContext, sizeLog: number): void {
  const f = x.f;
  const size = 1 << sizeLog;
  const later = x.tracked ? 0 : x.len - x.index - 1;
  tlbAccess(
    x,
    VOID,
    () => {
      pairProbe(x, 1, size);
      f.tee(x.h).get(x.a).mem(STORE[sizeLog]!, 0);
      f.get(x.h).get(x.b).mem(STORE[sizeLog]!, size);
      if (later > 0) laterWordStored(x, x.h, 2 * size);
    },
    () => {
      slowStore(x, size, x.a, false);
      f.get(x.va).i64(BigInt(size)).op(OP.i64_add).set(x.va);
      slowStore(x, size, x.b, later > 0);
    },
  );
}

/**
 * stop |= a store of `size` bytes at the host address in local `h` reached a later word of
 * this block ([h, h + size) meets the words after the current instruction): the block
 * then ends after the instruction, so the next one runs as the interpreter would run it.
 * Nothing with write tracking (such a store ends the block itself) or at the block's end.
 */
export function laterWordStored(x: BlockContext, h: number, size: number): void {
  const later = x.len - x.index - 1;
  if (later <= 0 || x.tracked) return;
  const first = x.host + (x.index + 1) * 4;
  x.f
    .get(h)
    .i32(size - 1 - first)
    .op(OP.i32_add)
    .i32(later * 4 + size - 1)
    .op(OP.i32_lt_u)
    .get(x.stop)
    .op(OP.i32_or)
    .set(x.stop);
}

/**
 * The TLB hit test of an access of kind `acc` (0 read, 1 write) and `size` bytes, inside
 * the block it leaves (br 0) on a miss: the tag must equal the VA's page with its low
 * alignment bits (a misaligned VA never matches). On a hit, pushes the host address.
 */
export function fastProbe(x: BlockContext, acc: number, size: number): void {
  const f = x.f;
  f.get(x.e).mem(OP.i64_load, x.tlbRegimeBytes + TLB.OFFSET + acc * 8);
  f.get(x.va)
    .i64(BigInt.asIntN(64, ~0xfffn | BigInt(size - 1)))
    .op(OP.i64_and);
  f.op(OP.i64_ne).byte(OP.br_if).u32(0);
  f.get(x.e).mem(OP.i32_load, x.tlbRegimeBytes + TLB.OFFSET + TLB.ADDEND * 4);
  f.get(x.va).op(OP.i32_wrap_i64).op(OP.i32_add);
}

/**
 * fastProbe for a pair of `size`-byte accesses at va and va + size: also leaves (br 0)
 * when the second one would cross into the next page.
 */
function pairProbe(x: BlockContext, acc: number, size: number): void {
  const f = x.f;
  f.get(x.va)
    .op(OP.i32_wrap_i64)
    .i32(0xfff)
    .op(OP.i32_and)
    .i32(4096 - 2 * size)
    .op(OP.i32_gt_u);
  f.byte(OP.br_if).u32(0);
  fastProbe(x, acc, size);
}

/**
 * Local e = byte offset of the TLB entry for the VA in local va: the set index
 * VA[..:12] & TLB.INDEX_MASK times the entry's 64 bytes, as (VA >>> 6) & (INDEX_MASK << 6).
 */
export function tlbEntry(x: BlockContext): void {
  const f = x.f;
  f.get(x.va)
    .op(OP.i32_wrap_i64)
    .i32(12 - 6)
    .op(OP.i32_shr_u)
    .i32(TLB.INDEX_MASK << 6)
    .op(OP.i32_and);
  f.get(0).op(OP.i32_add).set(x.e);
}

/**
 * After an instruction's accesses: a helper asked the block to end (an interrupt line
 * moved), or a store reached a later word of the block. `stop` only accumulates: it is
 * zero before every instruction, since any non-zero value returns here.
 */
export function exitIfStopped(x: BlockContext): void {
  const f = x.f;
  f.get(x.stop).op(OP.if).byte(VOID);
  x.exitAfter();
  f.op(OP.end);
}

/** Writes the loaded i64 on the stack to Xt / Wt with the extension `ext`. */
export function putLoaded(
  x: BlockContext,
  t: number,
  sizeLog: number,
  ext: "zero" | "sign64" | "sign32",
): void {
  const f = x.f;
  f.set(x.res);
  setX(x, t, () => {
    f.get(x.res);
    if (ext !== "zero") {
      const sh = BigInt(64 - 8 * (1 << sizeLog));
      f.i64(sh).op(OP.i64_shl).i64(sh).op(OP.i64_shr_s);
      if (ext === "sign32") f.i64(0xffff_ffffn).op(OP.i64_and);
    }
  });
}

/**
 * Local va = the address of the immediate forms of LDR/STR: unsigned offset (imm12 <<
 * sizeLog) or imm9 (mode 0 unscaled, 1 post-indexed, 3 pre-indexed; the caller declined
 * mode 2). Returns true, with the written-back base in local v2, for pre and post.
 */
export function immediateAddress(x: BlockContext, insn: number, sizeLog: number): boolean {
  const f = x.f;
  const n = (insn >>> 5) & 31;
  getXsp(x, n);
  if (((insn >>> 24) & 1) === 1) {
    f.i64(BigInt(((insn >>> 10) & 0xfff) << sizeLog))
      .op(OP.i64_add)
      .set(x.va);
    return false;
  }
  const mode = (insn >>> 10) & 3;
  const imm9 = BigInt((insn << 11) >> 23);
  if (mode !== 1) f.i64(imm9).op(OP.i64_add);
  f.set(x.va);
  if (mode === 0) return false;
  getXsp(x, n);
  f.i64(imm9).op(OP.i64_add).set(x.v2);
  return true;
}

/**
 * Local va = Xn|SP + (extend(Rm) << (S ? sizeLog : 0)) for the register-offset form of
 * LDR/STR (option: 010 UXTW, 011 LSL/UXTX, 110 SXTW, 111 SXTX; the caller checked option<1>).
 */
export function registerOffsetAddress(x: BlockContext, insn: number, sizeLog: number): void {
  const f = x.f;
  const option = (insn >>> 13) & 7;
  const m = (insn >>> 16) & 31;
  getXsp(x, (insn >>> 5) & 31);
  if ((option & 1) === 1) getX(x, m);
  else {
    getW32(x, m);
    f.op((option & 4) !== 0 ? OP.i64_extend_i32_s : OP.i64_extend_i32_u);
  }
  if (((insn >>> 12) & 1) === 1 && sizeLog !== 0) f.i64(BigInt(sizeLog)).op(OP.i64_shl);
  f.op(OP.i64_add).set(x.va);
}

/**
 * LDR/STR (immediate: unsigned offset, unscaled, pre- and post-indexed; register) of
 * general-purpose registers, with the interpreter's CONSTRAINED UNPREDICTABLE choices
 * (load-store.ts): a load with writeback and Rn == Rt writes the value, then the base.
 */
function loadStoreSingle(x: BlockContext, insn: number): boolean {
  const size = insn >>> 30;
  const opc = (insn >>> 22) & 3;
  const t = insn & 31;
  const n = (insn >>> 5) & 31;
  let ext: "zero" | "sign64" | "sign32" = "zero";
  let isLoad = opc !== 0;
  if (opc === 2) {
    if (size === 3) {
      // PRFM (immediate, register) and PRFUM: hints that do nothing here and never fault,
      // as the interpreter's executors (load-store.ts); the other forms are unallocated.
      const unsigned = ((insn >>> 24) & 1) === 1;
      const reg = ((insn >>> 21) & 1) === 1;
      if (
        unsigned ||
        (reg ? ((insn >>> 10) & 3) === 2 && ((insn >>> 14) & 1) === 1 : ((insn >>> 10) & 3) === 0)
      )
        return true;
      return false;
    }
    ext = "sign64";
  } else if (opc === 3) {
    if (size >= 2) return false;
    ext = "sign32";
  }
  isLoad = opc !== 0;
  const f = x.f;
  let wb = false;
  if (((insn >>> 24) & 1) === 1 || ((insn >>> 21) & 1) === 0) {
    if (((insn >>> 24) & 1) === 0 && ((insn >>> 10) & 3) === 2) return false; // unprivileged (LDTR/STTR)
    wb = immediateAddress(x, insn, size);
  } else {
    if (((insn >>> 10) & 3) !== 2) return false;
    const option = (insn >>> 13) & 7;
    if ((option & 2) === 0) return false;
    registerOffsetAddress(x, insn, size);
  }
  if (isLoad) {
    load(x, size);
    putLoaded(x, t, size, ext);
  } else {
    getX(x, t);
    f.set(x.res);
    store(x, size, x.res);
  }
  if (wb) setX(x, n, () => f.get(x.v2), true);
  exitIfStopped(x);
  return true;
}

/** LDP/STP of X or W registers (offset, pre- and post-indexed; LDNP/STNP). LDPSW falls back. */
function loadStorePair(x: BlockContext, insn: number): boolean {
  const opc = insn >>> 30;
  if (opc === 1 || opc === 3) return false;
  const sizeLog = opc === 2 ? 3 : 2;
  const idx = (insn >>> 23) & 3;
  const isLoad = ((insn >>> 22) & 1) === 1;
  const off = ((insn << 10) >> 25) << sizeLog;
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  const wb = idx === 1 || idx === 3;
  if (isLoad && t === t2) return false;
  const f = x.f;
  getXsp(x, n);
  if (idx !== 1) f.i64(BigInt(off)).op(OP.i64_add);
  f.set(x.va);
  if (wb) {
    getXsp(x, n);
    f.i64(BigInt(off)).op(OP.i64_add).set(x.v2);
  }
  if (isLoad) {
    loadPair(x, sizeLog);
    setX(x, t2, () => f.get(x.b));
    setX(x, t, () => f.get(x.a));
  } else {
    getX(x, t);
    f.set(x.a);
    getX(x, t2);
    f.set(x.b);
    storePair(x, sizeLog);
  }
  if (wb) setX(x, n, () => f.get(x.v2), true);
  exitIfStopped(x);
  return true;
}

// ---------------------------------------------------------------------------
// Branches (the last instruction of a block)

function target(x: BlockContext, off: number): bigint {
  return BigInt.asIntN(64, (BigInt(x.pcHi >>> 0) << 32n) + BigInt(x.pc >>> 0) + BigInt(off));
}

function link(x: BlockContext): void {
  setX(x, 30, () => x.f.i64(target(x, 4)));
}

function branchTo(x: BlockContext, off: number): void {
  x.f.get(0).i64(target(x, off)).mem(OP.i64_store, OFF.PC);
}

/**
 * Leaves the block after its current instruction, PC written: through the dispatcher
 * (jit/dispatch.ts), which continues into PC's translation when the jump cache has one
 * that may run, or returns the count.
 */
export function leave(x: BlockContext): void {
  const f = x.f;
  f.get(0)
    .get(x.left)
    .get(x.count)
    .i32(x.index + 1)
    .op(OP.i32_add);
  f.op(OP.return_call).u32(x.dispatch);
}

/**
 * Leaves the block after its current instruction for PC + off: PC is written, then the
 * translation of the block there is entered directly (a tail call, the count carried
 * along) when this module has one and the budget holds it whole, else through the
 * dispatcher.
 */
function exitTo(x: BlockContext, off: number): void {
  const f = x.f;
  branchTo(x, off);
  const lo = (x.pc + off) >>> 0;
  const c = Math.abs(off) < 4096 && (lo & ~0xfff) === (x.startLo & ~0xfff) ? x.chain(lo) : null;
  if (c !== null) {
    f.get(x.count)
      .i32(x.index + 1)
      .op(OP.i32_add)
      .tee(x.e);
    f.i32(c.len).op(OP.i32_add).get(x.left).op(OP.i32_le_u);
    f.op(OP.if).byte(VOID);
    f.get(0).get(x.left).get(x.e).op(OP.return_call).u32(c.fn);
    f.op(OP.end);
    x.ret(x.index + 1);
    return;
  }
  leave(x);
}

/**
 * A branch taken when the i32 on the stack is non-zero (null: always). A branch back to
 * the block's own start loops inside the function while the budget allows another whole
 * iteration (nothing outside can change between two iterations: only a helper could, and
 * a helper that must be seen ends the block), with the iterations' count in state memory
 * for helpers that read the instruction count. Returns after writing PC otherwise.
 */
function condBranch(x: BlockContext, off: number | null, always = false): void {
  const f = x.f;
  if (off === null) return;
  const self = (x.pc + off) >>> 0 === x.startLo && Math.abs(off) < 1 << 30;
  if (!self) {
    if (always) {
      exitTo(x, off);
      return;
    }
    f.op(OP.if).byte(VOID);
    exitTo(x, off);
    f.op(OP.end);
    exitTo(x, 4);
    return;
  }
  if (always) f.i32(1);
  f.op(OP.if).byte(VOID);
  f.get(x.count).i32(x.len).op(OP.i32_add).tee(x.count);
  // For the helpers (a block that calls none needs no count in state memory).
  if (f.calls) f.get(0).get(x.count).i32(x.startWord).op(OP.i32_sub).mem(OP.i32_store, OFF.JIT_COUNT);
  x.regs.atBackEdge();
  f.get(x.count).i32(x.len).op(OP.i32_add).get(x.left).op(OP.i32_le_u).byte(OP.br_if).u32(1);
  branchTo(x, off);
  x.ret(0);
  f.op(OP.end);
  exitTo(x, 4);
}

/**
 * The byte offset of a direct branch (B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ: imm26, imm19 or
 * imm14 words, signed), or null for any other instruction.
 */
export function directBranchOffset(insn: number): number | null {
  if ((insn & 0x7c00_0000) === 0x1400_0000) return ((insn << 6) >> 6) * 4;
  if ((insn & 0xff00_0010) >>> 0 === 0x5400_0000 || (insn & 0x7e00_0000) === 0x3400_0000) {
    return ((insn << 8) >> 13) * 4;
  }
  if ((insn & 0x7e00_0000) === 0x3600_0000) return ((insn << 13) >> 18) * 4;
  return null;
}

function branch(x: BlockContext, insn: number): boolean {
  const f = x.f;
  if ((insn & 0xff00_0010) >>> 0 !== 0x5400_0000) x.flags.flush();
  const off = directBranchOffset(insn) ?? 0;
  if ((insn & 0x7c00_0000) === 0x1400_0000) {
    // B, BL
    if (insn >>> 31 === 1) {
      link(x);
      exitTo(x, off);
      return true;
    } else {
      condBranch(x, off, true);
      return true;
    }
  } else if ((insn & 0xff00_0010) >>> 0 === 0x5400_0000) {
    // The condition from the pending flags, then PSTATE written for the blocks that follow.
    x.flags.condition(insn & 15);
    x.flags.flush();
    condBranch(x, off);
    return true;
  } else if ((insn & 0x7e00_0000) === 0x3400_0000) {
    // CBZ, CBNZ
    const sf = insn >>> 31 === 1;
    if (sf) getX(x, insn & 31);
    else getW64(x, insn & 31);
    f.op(OP.i64_eqz);
    if (((insn >>> 24) & 1) === 1) f.op(OP.i32_eqz);
    condBranch(x, off);
    return true;
  } else if ((insn & 0x7e00_0000) === 0x3600_0000) {
    // TBZ, TBNZ
    const bit = ((insn >>> 31) << 5) | ((insn >>> 19) & 31);
    getX(x, insn & 31);
    f.i64(BigInt(bit)).op(OP.i64_shr_u).i64(1n).op(OP.i64_and).op(OP.i32_wrap_i64);
    if (((insn >>> 24) & 1) === 0) f.op(OP.i32_eqz);
    condBranch(x, off);
    return true;
  } else if ((insn & 0xff9f_fc1f) >>> 0 === 0xd61f_0000) {
    // BR (opc 0000), BLR (0001), RET (0010) without pointer authentication.
    const opc = (insn >>> 21) & 3;
    const n = (insn >>> 5) & 31;
    if (opc === 3) return false;
    getX(x, n);
    f.set(x.a);
    if (opc === 1) link(x);
    f.get(0).get(x.a).mem(OP.i64_store, OFF.PC);
  } else return false;
  leave(x);
  return true;
}

/** The emitter of each instruction of the decode table (isa.ts) by its name; jit/translate.ts. */
const each = (names: readonly string[], em: Emitter): [string, Emitter][] => names.map((n) => [n, em]);
const sizes = (form: string) => ["B", "H", "", "SB", "SH", "SW"].map((s) => form.replace("#", s));
export const GPR_EMITTERS: ReadonlyMap<string, Emitter> = new Map<string, Emitter>([
  ...each(["ADR", "ADRP"], adr),
  ...each(["ADD (immediate)", "ADDS (immediate)", "SUB (immediate)", "SUBS (immediate)"], addSubImm),
  ...each(["AND (immediate)", "ORR (immediate)", "EOR (immediate)", "ANDS (immediate)"], logicalImm),
  ...each(["MOVN", "MOVZ", "MOVK"], moveWide),
  ...each(["SBFM", "BFM", "UBFM"], bitfield),
  ["EXTR", extract],
  ...each(
    ["AND", "BIC", "ORR", "ORN", "EOR", "EON", "ANDS", "BICS"].map((m) => `${m} (shifted register)`),
    logicalShifted,
  ),
  ...each(
    ["ADD", "ADDS", "SUB", "SUBS"].map((m) => `${m} (shifted register)`),
    addSubShifted,
  ),
  ...each(
    ["ADD", "ADDS", "SUB", "SUBS"].map((m) => `${m} (extended register)`),
    addSubExtended,
  ),
  ...each(["ADC", "SBC"], addCarry),
  ...each(["CCMN (register)", "CCMN (immediate)", "CCMP (register)", "CCMP (immediate)"], condCompare),
  ...each(["CSEL", "CSINC", "CSINV", "CSNEG"], condSelect),
  ...each(["MADD", "MSUB", "SMADDL", "SMSUBL", "UMADDL", "UMSUBL"], mulAdd),
  ...each(["LSLV", "LSRV", "ASRV", "RORV"], shiftVariable),
  ...each(["UDIV", "SDIV"], divide),
  ...each(["UMULH", "SMULH"], multiplyHigh),
  ...each(["RBIT", "REV16", "REV (32-bit)", "REV32", "REV (64-bit)", "CLZ", "CLS"], dataProc1),
  // Loads and stores of general-purpose registers (byte, halfword, word or doubleword,
  // signed or not) in every addressing mode, and the prefetches.
  ...each(
    [
      "STR# (immediate, post-index)",
      "STR# (immediate, pre-index)",
      "STR# (immediate, unsigned offset)",
      "STR# (register)",
      "STUR#",
    ].flatMap((f) => sizes(f).slice(0, 3)),
    loadStoreSingle,
  ),
  ...each(
    [
      "LDR# (immediate, post-index)",
      "LDR# (immediate, pre-index)",
      "LDR# (immediate, unsigned offset)",
      "LDR# (register)",
      "LDUR#",
    ].flatMap(sizes),
    loadStoreSingle,
  ),
  ...each(["PRFM (immediate)", "PRFM (register)", "PRFUM"], loadStoreSingle),
  ...each(
    ["STP", "LDP"].flatMap((m) => [`${m} (post-index)`, `${m} (pre-index)`, `${m} (signed offset)`]),
    loadStorePair,
  ),
  ...each(["STNP", "LDNP"], loadStorePair),
  ...each(["B", "BL", "B.cond", "CBZ", "CBNZ", "TBZ", "TBNZ", "BR", "BLR", "RET"], branch),
  // The hints that are NOPs here (HINT: every one but WFE, WFI, SEV, SEVL, which have
  // their own names), and DSB, DMB, ISB, which order nothing in a machine whose vCPUs take
  // turns and whose translations check their words on entry.
  ...each(["NOP", "YIELD", "HINT", "DSB", "DMB", "ISB"], systemNop),
  ["MRS", mrs],
  ["SYS", (x, insn) => (isDcZva(insn) ? dcZva(x, insn) : isCacheByVa(insn) && cacheByVa(x, insn))],
]);

function systemNop(): boolean {
  return true;
}

/**
 * Emitters that read NZCV only through `x.flags.condition` and call no helper, run no
 * executor and never leave the block (the data-processing ones and MRS), or that write
 * pending flags themselves before they leave (the branches): pending flags need not be
 * written before them (jit/flags.ts).
 */
const FLAGS_SAFE: ReadonlySet<Emitter> = new Set([
  adr,
  addSubImm,
  logicalImm,
  moveWide,
  bitfield,
  extract,
  logicalShifted,
  addSubShifted,
  condSelect,
  mulAdd,
  shiftVariable,
  divide,
  multiplyHigh,
  dataProc1,
  condCompare,
  addSubExtended,
  addCarry,
  mrs,
  systemNop,
  branch,
]);
export function flagsSafe(em: Emitter): boolean {
  return FLAGS_SAFE.has(em);
}

/**
 * MRS of a register that is plain storage in the state block (TPIDR_EL1, ...), or SP_EL0
 * or DAIF, as the interpreter's executor reads them (insn/branch-system.ts mrsMsr), where
 * the block's EL may read it without a trap: Linux reads `current` from SP_EL0 and its
 * per-CPU offset from TPIDR_EL1 everywhere (1.9 M MRS in the first 300 M instructions of
 * its boot). Anything else (counters, the GIC's registers, EL0 checks made at run time)
 * runs the executor.
 */
function mrs(x: BlockContext, insn: number): boolean {
  const key = sysregKey(
    2 + ((insn >>> 19) & 1),
    (insn >>> 16) & 7,
    (insn >>> 12) & 15,
    (insn >>> 8) & 15,
    (insn >>> 5) & 7,
  );
  const reg = SYSREG_BY_KEY.get(key);
  if (reg === undefined || !reg.readable) return false;
  if (x.el === 0 && reg.el0 !== "r" && reg.el0 !== "rw") return false;
  const f = x.f;
  const t = insn & 31;
  if (reg.access === undefined) setX(x, t, () => f.get(0).mem(OP.i64_load, OFF.SYSREGS + reg.slot * 8));
  else if (reg.name === "SP_EL0") {
    // With SP_EL0 the stack pointer in use (EL1t) the read is UNDEFINED: the executor's.
    if (x.spOff === OFF.SP_EL0) return false;
    setX(x, t, () => f.get(0).mem(OP.i64_load, OFF.SP_EL0));
  } else if (reg.name === "DAIF") {
    setX(x, t, () =>
      f.get(0).mem(OP.i32_load, OFF.PSTATE).i32(PSTATE.DAIF).op(OP.i32_and).op(OP.i64_extend_i32_u),
    );
  } else return false;
  return true;
}

/** DC ZVA, Xt (SYS #3, C7, C4, #1). */
/** DC CVAC, DC CVAU, DC CIVAC or IC IVAU (SYS #3, C7, C10/C11/C14/C5, #1, Xt). */
function isCacheByVa(insn: number): boolean {
  const crm = (insn >>> 8) & 15;
  return (insn & 0xffff_f0e0) >>> 0 === 0xd50b_7020 && (crm === 10 || crm === 11 || crm === 14 || crm === 5);
}

/**
 * DC CVAC/CVAU/CIVAC and IC IVAU at EL1: with coherent caches all they do is translate
 * the VA, and fault (memory.ts cacheMaintenance; no permission is needed at EL1). A TLB
 * read tag for its page means the translation is there: nothing to do. Otherwise, and at
 * EL0 (SCTLR_EL1.UCI, read permission), the executor runs. Linux cleans and invalidates
 * every page it writes code to this way: 100 k of them in the first 300 M instructions.
 */
function cacheByVa(x: BlockContext, insn: number): boolean {
  if (x.el === 0) return false;
  const f = x.f;
  getX(x, insn & 31);
  f.set(x.va);
  guarded(x, insn, () => {
    tlbEntry(x);
    fastProbe(x, 0, 1);
    f.op(OP.drop);
  });
  return true;
}

export function isDcZva(insn: number): boolean {
  return (insn & 0xffff_ffe0) >>> 0 === 0xd50b_7420;
}

const DCZID_BYTES = OFF.SYSREGS + SYSREG_BY_NAME.get("DCZID_EL0")!.slot * 8;
const SCTLR_BYTES = OFF.SYSREGS + SYSREG_BY_NAME.get("SCTLR_EL1")!.slot * 8;
/** DCZID_EL0 at reset (BS = 4: blocks of 64 bytes, DZP = 0), the value the fast path assumes. */
const DCZID_RESET = 4;
const ZVA_BYTES = 4 << DCZID_RESET;

/**
 * DC ZVA (Arm ARM C5.3.x): zeroes the aligned 64-byte block holding Xt's address, which
 * never crosses a page. Linux clears the pages it allocates with it (0.8 M in the first
 * 300 M instructions of its boot), which through the executor were eight interpreter
 * stores each. Fast path: DCZID_EL0 as at reset, at EL0 SCTLR_EL1.DZE set, and the TLB's
 * write tag for the block's page (a first store, MMIO, a page with translations or a
 * watchpoint miss it); then one memory.fill. Anything else runs the executor, which traps
 * or faults as the interpreter does.
 */
function dcZva(x: BlockContext, insn: number): boolean {
  const f = x.f;
  const later = x.tracked ? 0 : x.len - x.index - 1;
  getX(x, insn & 31);
  f.i64(BigInt(-ZVA_BYTES)).op(OP.i64_and).set(x.va);
  guarded(x, insn, () => {
    f.get(0).mem(OP.i32_load, DCZID_BYTES).i32(DCZID_RESET).op(OP.i32_ne).byte(OP.br_if).u32(0);
    if (x.el === 0) {
      f.get(0)
        .mem(OP.i32_load, SCTLR_BYTES)
        .i32(1 << 14)
        .op(OP.i32_and)
        .op(OP.i32_eqz);
      f.byte(OP.br_if).u32(0);
    }
    tlbEntry(x);
    fastProbe(x, 1, 1);
    if (later > 0) f.tee(x.h);
    f.i32(0).i32(ZVA_BYTES).memoryFill();
    if (later > 0) laterWordStored(x, x.h, ZVA_BYTES);
  });
  if (later > 0) exitIfStopped(x);
  return true;
}

/** PSTATE bits a translation depends on (besides NZCV, which it reads at run time). */
export const TRANSLATION_MODE_MASK = PSTATE.M;
