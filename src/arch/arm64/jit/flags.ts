/**
 * PSTATE.NZCV inside a translated block, kept lazily.
 *
 * A flag-setting instruction in the block's straight-line code (ADDS, SUBS, CMP, CMN, ANDS,
 * TST) leaves its operands and result in three locals and computes no flags. A condition
 * (B.cond, CSEL and its kin, CCMP) reads them directly where the kind of the last setter
 * allows (CMP then B.LT is one signed compare), and PSTATE.NZCV is written only when
 * something may read it (`flush`): before a helper call, an executor, a memory access
 * (whose slow path may take an exception, which saves PSTATE in SPSR) and every exit. A
 * setter whose flags a later setter overwrites before any of those is never written.
 *
 * Emission is one pass in program order, as for the registers (jit/registers.ts): pending
 * flags are recorded only in straight-line code (depth equal to the block's base depth);
 * a setter inside a conditional region (CCMP's) writes PSTATE at once, and a flush inside
 * one (the slow path of a guarded fast path) writes PSTATE on that path and keeps the
 * flags pending, which stays true on both paths: their locals still hold them, and
 * writing them again is harmless. Instructions guarded that way never set NZCV.
 */
import { OFF } from "../state.ts";
import { type FuncBody, OP, T } from "./wasm.ts";

/** Kinds of pending flags: of a + b, of a - b (a + NOT b + 1), of a logical result. */
export const FLAGS = { NONE: 0, ADD: 1, SUB: 2, LOGIC: 3 } as const;
type Kind = (typeof FLAGS)[keyof typeof FLAGS];

/** Pushes (v <s 0) << 31 | (v == 0) << 30 for the i64 in local `v`, at width sf. */
function nz(f: FuncBody, v: number, sf: boolean): void {
  if (sf) {
    f.get(v).i64(63n).op(OP.i64_shr_u).op(OP.i32_wrap_i64).i32(31).op(OP.i32_shl);
    f.get(v).op(OP.i64_eqz).i32(30).op(OP.i32_shl).op(OP.i32_or);
  } else {
    f.get(v).op(OP.i32_wrap_i64).i32(0x8000_0000).op(OP.i32_and);
    f.get(v).op(OP.i32_wrap_i64).op(OP.i32_eqz).i32(30).op(OP.i32_shl).op(OP.i32_or);
  }
}

/** Writes NZCV (an i32 with the flags in bits 31:28 and nothing else) into PSTATE. */
export function writeNzcv(f: FuncBody, nzcv: () => void): void {
  f.get(0);
  f.get(0).mem(OP.i32_load, OFF.PSTATE).i32(0x0fff_ffff).op(OP.i32_and);
  nzcv();
  f.op(OP.i32_or).mem(OP.i32_store, OFF.PSTATE);
}

/**
 * Pushes NZCV of the setter `kind` at width sf from locals a, b and res (the operands and
 * the result, truncated for 32 bits): Arm ARM AddWithCarry(), and C = V = 0 for LOGIC.
 */
function nzcvOf(f: FuncBody, kind: Kind, sf: boolean, a: number, b: number, res: number): void {
  nz(f, res, sf);
  if (kind === FLAGS.LOGIC) return;
  const sub = kind === FLAGS.SUB;
  // C: for add, the unsigned sum overflowed (res < a); for sub, no borrow (a >= b).
  if (sf) {
    f.get(sub ? a : res)
      .get(sub ? b : a)
      .op(sub ? OP.i64_ge_u : OP.i64_lt_u);
  } else {
    f.get(sub ? a : res)
      .op(OP.i32_wrap_i64)
      .get(sub ? b : a)
      .op(OP.i32_wrap_i64);
    f.op(sub ? OP.i32_ge_u : OP.i32_lt_u);
  }
  f.i32(29).op(OP.i32_shl).op(OP.i32_or);
  overflow(f, sub, sf, a, b, res);
  f.i32(28).op(OP.i32_shl).op(OP.i32_or);
}

/** Pushes V (0 or 1): the operands' signs agree (add) / differ (sub) and the result's differs from a's. */
function overflow(f: FuncBody, sub: boolean, sf: boolean, a: number, b: number, res: number): void {
  f.get(a).get(b).op(OP.i64_xor);
  if (!sub) f.i64(-1n).op(OP.i64_xor);
  f.get(a).get(res).op(OP.i64_xor).op(OP.i64_and);
  f.i64(sf ? 63n : 31n)
    .op(OP.i64_shr_u)
    .op(OP.i32_wrap_i64)
    .i32(1)
    .op(OP.i32_and);
}

export class LazyFlags {
  private kind: Kind = FLAGS.NONE;
  private sf = false;
  private fa = -1;
  private fb = -1;
  private fr = -1;

  /**
   * @param f the function being emitted
   * @param baseDepth the control depth of the block's straight-line code
   */
  constructor(
    private readonly f: FuncBody,
    private readonly baseDepth: number,
  ) {}

  private get unconditional(): boolean {
    return this.f.depth === this.baseDepth;
  }

  /** The flags are pending (nothing wrote them to PSTATE yet): for tests of the emitters. */
  get pending(): boolean {
    return this.kind !== FLAGS.NONE;
  }

  /**
   * A flag-setting instruction: NZCV of `kind` at width sf from locals a, b, res (see
   * nzcvOf). Pending in straight-line code; written at once in a conditional region.
   */
  set(kind: Kind, sf: boolean, a: number, b: number, res: number): void {
    const f = this.f;
    if (!this.unconditional) {
      writeNzcv(f, () => nzcvOf(f, kind, sf, a, b, res));
      return;
    }
    if (this.fa < 0) {
      this.fa = f.local(T.i64);
      this.fb = f.local(T.i64);
      this.fr = f.local(T.i64);
    }
    if (kind !== FLAGS.LOGIC) {
      f.get(a).set(this.fa);
      f.get(b).set(this.fb);
    }
    f.get(res).set(this.fr);
    this.kind = kind;
    this.sf = sf;
  }

  /** NZCV was written to PSTATE on every path (CCMP's two arms): nothing is pending. */
  written(): void {
    this.kind = FLAGS.NONE;
  }

  /** Writes pending flags to PSTATE, before anything that may read them there. */
  flush(): void {
    if (this.kind === FLAGS.NONE) return;
    const { f, kind, sf, fa, fb, fr } = this;
    writeNzcv(f, () => nzcvOf(f, kind, sf, fa, fb, fr));
    if (this.unconditional) this.kind = FLAGS.NONE;
  }

  /** Pushes an i32: condition `cond` (Arm ARM C1.2.4) holds for the current NZCV. */
  condition(cond: number): void {
    if (this.kind !== FLAGS.NONE && this.direct(cond)) return;
    this.flush();
    fromPstate(this.f, cond);
  }

  /**
   * Pushes condition `cond` computed from the pending setter's operands, where that is one
   * comparison or two (returns false, pushing nothing, otherwise).
   */
  private direct(cond: number): boolean {
    const { f, kind, sf, fa, fb, fr } = this;
    const base = cond >> 1;
    const invert = (cond & 1) === 1 && base !== 7;
    // Operands at width: 64-bit values, or the low halves as i32 (signed compares need them).
    const w = (l: number) => {
      f.get(l);
      if (!sf) f.op(OP.i32_wrap_i64);
    };
    const cmp = (l: number, r: number | null, op64: number, op32: number) => {
      w(l);
      if (r === null) {
        if (sf) f.i64(0n);
        else f.i32(0);
      } else w(r);
      f.op(sf ? op64 : op32);
    };
    if (base === 7) {
      f.i32(1); // AL, NV
      return true;
    }
    if (kind === FLAGS.SUB) {
      // CMP a, b: each condition is the comparison it names.
      const ops: [number, number][] = [
        [OP.i64_eq, OP.i32_eq], // EQ
        [OP.i64_ge_u, OP.i32_ge_u], // CS
        [-1, -1], // MI
        [-1, -1], // VS
        [OP.i64_gt_u, OP.i32_gt_u], // HI
        [OP.i64_ge_s, OP.i32_ge_s], // GE
        [OP.i64_gt_s, OP.i32_gt_s], // GT
      ];
      if (base === 2) cmp(fr, null, OP.i64_lt_s, OP.i32_lt_s);
      else if (base === 3) overflow(f, true, sf, fa, fb, fr);
      else cmp(fa, fb, ops[base]![0], ops[base]![1]);
    } else if (kind === FLAGS.ADD) {
      // ADDS / CMN: Z, N and C only.
      if (base === 0) cmp(fr, null, OP.i64_eq, OP.i32_eq);
      else if (base === 1) cmp(fr, fa, OP.i64_lt_u, OP.i32_lt_u);
      else if (base === 2) cmp(fr, null, OP.i64_lt_s, OP.i32_lt_s);
      else return false;
    } else {
      // ANDS / TST: C = V = 0, so CS, VS and HI never hold, GE is N clear, GT also Z clear.
      if (base === 0) cmp(fr, null, OP.i64_eq, OP.i32_eq);
      else if (base === 2 || base === 5) cmp(fr, null, OP.i64_lt_s, OP.i32_lt_s);
      else if (base === 6) cmp(fr, null, OP.i64_gt_s, OP.i32_gt_s);
      else f.i32(0); // CS, VS, HI
      if (base === 5) f.op(OP.i32_eqz);
    }
    if (invert) f.op(OP.i32_eqz);
    return true;
  }
}

/** Pushes an i32: condition `cond` holds for PSTATE.NZCV. */
function fromPstate(f: FuncBody, cond: number): void {
  const p = () => f.get(0).mem(OP.i32_load, OFF.PSTATE);
  const bit = (n: number) => {
    p();
    f.i32(n).op(OP.i32_shr_u).i32(1).op(OP.i32_and);
  };
  /** Pushes N ^ V (bit 31 moved onto bit 28 and XORed there). */
  const nXorV = () => {
    p();
    p();
    f.i32(3).op(OP.i32_shr_u).op(OP.i32_xor).i32(28).op(OP.i32_shr_u).i32(1).op(OP.i32_and);
  };
  const base = cond >> 1;
  if (base < 4) {
    bit([30, 29, 31, 28][base]!); // EQ: Z, CS: C, MI: N, VS: V
  } else if (base === 4) {
    // HI: C && !Z
    bit(29);
    bit(30);
    f.i32(1).op(OP.i32_xor).op(OP.i32_and);
  } else if (base === 5) {
    nXorV(); // GE: N == V
    f.op(OP.i32_eqz);
  } else if (base === 6) {
    nXorV(); // GT: !Z && N == V
    bit(30);
    f.op(OP.i32_or).op(OP.i32_eqz);
  } else {
    f.i32(1); // AL, NV
    return;
  }
  if ((cond & 1) === 1) f.op(OP.i32_eqz);
}
