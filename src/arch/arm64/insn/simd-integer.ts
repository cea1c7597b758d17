/**
 * AdvSIMD integer data processing (Arm ARM C4.1.95 "Data Processing -- Scalar Floating-Point
 * and Advanced SIMD", integer forms; semantics from the C7.2 instruction pages):
 * three same, three different, two-register misc, across lanes, shift by immediate,
 * modified immediate, by element, and their scalar forms.
 *
 * The floating-point forms that share these encoding groups have no pattern here (or the
 * handler declines their sizes) so that the FP tables (simd-fp.ts, fp-scalar.ts) decode them.
 * The table (SIMD_INTEGER, at the end) is one pattern per instruction, all of feature
 * AdvSIMD: three same (SAME, LOGIC) and modified immediate (MOD_IMMS) build theirs from
 * their own lists; the other groups are lists of [name, U, opcode, handler] (DIFF, MISC,
 * ACROSS, SHIFT, ELEM) over the shared formats FMT, each vector form with its scalar form
 * if any. Each handler builds one instruction (or an S/U pair, signed iff U = 0) over its
 * group's lane shape (`diff`, `misc`, `shift`, `elem`); none switches on the opcode.
 */
import type { Exec, Fields, Pattern } from "../decoder.ts";
import { I } from "../state.ts";
import {
  boundsB,
  boundsN,
  build,
  type KB,
  type KN,
  loadSlot,
  type NumView,
  type Opnd,
  opnd,
  S32,
  satB,
  satN,
  storeR,
  view,
} from "./simd-integer-engine.ts";
import {
  exec64,
  execNarrow64,
  fastAddp64,
  fastAddSub,
  fastCmeq8,
  fastCmp64,
  fastCnt,
  fastLogic,
  fastMull32,
  fastNarrow64,
  fastPair8,
  fastShift64,
  fastShrn16,
  fastWiden32,
  type K64,
  k64AddSat,
  k64Insert,
  k64Neg,
  k64QShlImm,
  k64ShlReg,
  k64ShrImm,
  k64SubSat,
  k64SuqAdd,
  kHighNarrow,
  kNarrowShift,
} from "./simd-integer-fast.ts";

/** Size-mask bits: which `size` values an instruction allows. */
const B = 1,
  H = 2,
  S = 4,
  D = 8;
const BHS = B | H | S;
const HS = H | S;
const ALL = B | H | S | D;

type NF = (e: number, u: boolean) => KN;
type BF = (e: number, u: boolean) => KB;

// ---------------------------------------------------------------------------
// Kernels shared by several groups

/** Carry-less multiply of two 8-bit polynomials (PMUL/PMULL). */
function clmul8(a: number, b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) if ((b >> i) & 1) r ^= a << i;
  return r;
}

/**
 * Shift by a signed register amount (SSHL/USHL/SRSHL/URSHL and the saturating forms,
 * Arm ARM C7.2 SSHL etc.): shift = SInt(op2<7:0>), negative shifts right.
 * Shifts beyond esize+1 give the same result as esize+1, so they are clamped.
 */
const shlRegN =
  (round: boolean, satur: boolean): NF =>
  (e, u) => {
    const [mn, mx] = boundsN(e, u);
    const lim = e + 1;
    return (a, b) => {
      let s = (b << 24) >> 24;
      if (s > lim) s = lim;
      else if (s < -lim) s = -lim;
      let v: number;
      if (s >= 0) v = a * 2 ** s;
      else {
        const p = 2 ** -s;
        v = round ? Math.floor((a + p / 2) / p) : Math.floor(a / p);
      }
      return satur ? satN(v, mn, mx) : v;
    };
  };
const shlRegB =
  (round: boolean, satur: boolean): BF =>
  (e, u) => {
    const [mn, mx] = boundsB(e, u);
    const lim = e + 1;
    return (a, b) => {
      let s = Number(BigInt.asIntN(8, b));
      if (s > lim) s = lim;
      else if (s < -lim) s = -lim;
      let v: bigint;
      if (s >= 0) v = a << BigInt(s);
      else if (round) v = (a + (1n << BigInt(-s - 1))) >> BigInt(-s);
      else v = a >> BigInt(-s);
      return satur ? satB(v, mn, mx) : v;
    };
  };

const sqdmulhN =
  (round: boolean): NF =>
  (e) => {
    const [mn, mx] = boundsN(e, false);
    if (e === 16) {
      const rc = round ? 0x8000 : 0;
      return (a, b) => satN(Math.floor((2 * a * b + rc) / 65536), mn, mx);
    }
    // 32-bit: the doubled product needs 63 bits, beyond a double's exact range, so split
    // a and b into signed high and unsigned low 16-bit halves; every partial sum stays < 2^50.
    const rc = round ? 2 ** 31 : 0;
    return (a, b) => {
      const ah = a >> 16,
        al = a & 0xffff,
        bh = b >> 16,
        bl = b & 0xffff;
      const v = 2 * ah * bh + Math.floor(((ah * bl + al * bh) * 131072 + 2 * al * bl + rc) / 4294967296);
      return satN(v, mn, mx);
    };
  };

const addSatN: NF = (e, u) => {
  const [mn, mx] = boundsN(e, u);
  return (a, b) => satN(a + b, mn, mx);
};
const addSatB: BF = (e, u) => {
  const [mn, mx] = boundsB(e, u);
  return (a, b) => satB(a + b, mn, mx);
};
const subSatN: NF = (e, u) => {
  const [mn, mx] = boundsN(e, u);
  return (a, b) => satN(a - b, mn, mx);
};
const subSatB: BF = (e, u) => {
  const [mn, mx] = boundsB(e, u);
  return (a, b) => satB(a - b, mn, mx);
};

// ---------------------------------------------------------------------------
// Three same (C4.1.95.20) and scalar three same

interface Same {
  name: string;
  u: number;
  opc: number;
  /** Sizes allowed in the vector form (size 3 additionally needs Q=1). */
  vs: number;
  /** Sizes allowed in the scalar form (0: no scalar form). */
  ss: number;
  pair?: boolean;
  acc?: boolean;
  /** Lanes are read signed (default: signed iff U=0). */
  signed?: boolean;
  kn: NF;
  kb?: BF;
}

const SAME: Same[] = [
  { name: "SHADD", u: 0, opc: 0, vs: BHS, ss: 0, kn: () => (a, b) => Math.floor((a + b) / 2) },
  { name: "UHADD", u: 1, opc: 0, vs: BHS, ss: 0, kn: () => (a, b) => Math.floor((a + b) / 2) },
  { name: "SQADD", u: 0, opc: 1, vs: ALL, ss: ALL, kn: addSatN, kb: addSatB },
  { name: "UQADD", u: 1, opc: 1, vs: ALL, ss: ALL, kn: addSatN, kb: addSatB },
  { name: "SRHADD", u: 0, opc: 2, vs: BHS, ss: 0, kn: () => (a, b) => Math.floor((a + b + 1) / 2) },
  { name: "URHADD", u: 1, opc: 2, vs: BHS, ss: 0, kn: () => (a, b) => Math.floor((a + b + 1) / 2) },
  { name: "SHSUB", u: 0, opc: 4, vs: BHS, ss: 0, kn: () => (a, b) => Math.floor((a - b) / 2) },
  { name: "UHSUB", u: 1, opc: 4, vs: BHS, ss: 0, kn: () => (a, b) => Math.floor((a - b) / 2) },
  { name: "SQSUB", u: 0, opc: 5, vs: ALL, ss: ALL, kn: subSatN, kb: subSatB },
  { name: "UQSUB", u: 1, opc: 5, vs: ALL, ss: ALL, kn: subSatN, kb: subSatB },
  {
    name: "CMGT",
    u: 0,
    opc: 6,
    vs: ALL,
    ss: D,
    kn: () => (a, b) => (a > b ? -1 : 0),
    kb: () => (a, b) => (a > b ? -1n : 0n),
  },
  {
    name: "CMHI",
    u: 1,
    opc: 6,
    vs: ALL,
    ss: D,
    kn: () => (a, b) => (a > b ? -1 : 0),
    kb: () => (a, b) => (a > b ? -1n : 0n),
  },
  {
    name: "CMGE",
    u: 0,
    opc: 7,
    vs: ALL,
    ss: D,
    kn: () => (a, b) => (a >= b ? -1 : 0),
    kb: () => (a, b) => (a >= b ? -1n : 0n),
  },
  {
    name: "CMHS",
    u: 1,
    opc: 7,
    vs: ALL,
    ss: D,
    kn: () => (a, b) => (a >= b ? -1 : 0),
    kb: () => (a, b) => (a >= b ? -1n : 0n),
  },
  { name: "SSHL", u: 0, opc: 8, vs: ALL, ss: D, kn: shlRegN(false, false), kb: shlRegB(false, false) },
  { name: "USHL", u: 1, opc: 8, vs: ALL, ss: D, kn: shlRegN(false, false), kb: shlRegB(false, false) },
  { name: "SQSHL", u: 0, opc: 9, vs: ALL, ss: ALL, kn: shlRegN(false, true), kb: shlRegB(false, true) },
  { name: "UQSHL", u: 1, opc: 9, vs: ALL, ss: ALL, kn: shlRegN(false, true), kb: shlRegB(false, true) },
  { name: "SRSHL", u: 0, opc: 10, vs: ALL, ss: D, kn: shlRegN(true, false), kb: shlRegB(true, false) },
  { name: "URSHL", u: 1, opc: 10, vs: ALL, ss: D, kn: shlRegN(true, false), kb: shlRegB(true, false) },
  { name: "SQRSHL", u: 0, opc: 11, vs: ALL, ss: ALL, kn: shlRegN(true, true), kb: shlRegB(true, true) },
  { name: "UQRSHL", u: 1, opc: 11, vs: ALL, ss: ALL, kn: shlRegN(true, true), kb: shlRegB(true, true) },
  { name: "SMAX", u: 0, opc: 12, vs: BHS, ss: 0, kn: () => (a, b) => Math.max(a, b) },
  { name: "UMAX", u: 1, opc: 12, vs: BHS, ss: 0, kn: () => (a, b) => Math.max(a, b) },
  { name: "SMIN", u: 0, opc: 13, vs: BHS, ss: 0, kn: () => (a, b) => Math.min(a, b) },
  { name: "UMIN", u: 1, opc: 13, vs: BHS, ss: 0, kn: () => (a, b) => Math.min(a, b) },
  { name: "SABD", u: 0, opc: 14, vs: BHS, ss: 0, kn: () => (a, b) => Math.abs(a - b) },
  { name: "UABD", u: 1, opc: 14, vs: BHS, ss: 0, kn: () => (a, b) => Math.abs(a - b) },
  { name: "SABA", u: 0, opc: 15, vs: BHS, ss: 0, acc: true, kn: () => (a, b, d) => d + Math.abs(a - b) },
  { name: "UABA", u: 1, opc: 15, vs: BHS, ss: 0, acc: true, kn: () => (a, b, d) => d + Math.abs(a - b) },
  { name: "ADD", u: 0, opc: 16, vs: ALL, ss: D, kn: () => (a, b) => a + b, kb: () => (a, b) => a + b },
  { name: "SUB", u: 1, opc: 16, vs: ALL, ss: D, kn: () => (a, b) => a - b, kb: () => (a, b) => a - b },
  {
    name: "CMTST",
    u: 0,
    opc: 17,
    vs: ALL,
    ss: D,
    kn: () => (a, b) => ((a & b) !== 0 ? -1 : 0),
    kb: () => (a, b) => ((a & b) !== 0n ? -1n : 0n),
  },
  {
    name: "CMEQ",
    u: 1,
    opc: 17,
    vs: ALL,
    ss: D,
    kn: () => (a, b) => (a === b ? -1 : 0),
    kb: () => (a, b) => (a === b ? -1n : 0n),
  },
  {
    name: "MLA",
    u: 0,
    opc: 18,
    vs: BHS,
    ss: 0,
    acc: true,
    kn: (e) => (e === 32 ? (a, b, d) => d + Math.imul(a, b) : (a, b, d) => d + a * b),
  },
  {
    name: "MLS",
    u: 1,
    opc: 18,
    vs: BHS,
    ss: 0,
    acc: true,
    kn: (e) => (e === 32 ? (a, b, d) => d - Math.imul(a, b) : (a, b, d) => d - a * b),
  },
  { name: "MUL", u: 0, opc: 19, vs: BHS, ss: 0, kn: (e) => (e === 32 ? Math.imul : (a, b) => a * b) },
  { name: "PMUL", u: 1, opc: 19, vs: B, ss: 0, kn: () => clmul8 },
  { name: "SMAXP", u: 0, opc: 20, vs: BHS, ss: 0, pair: true, kn: () => (a, b) => Math.max(a, b) },
  { name: "UMAXP", u: 1, opc: 20, vs: BHS, ss: 0, pair: true, kn: () => (a, b) => Math.max(a, b) },
  { name: "SMINP", u: 0, opc: 21, vs: BHS, ss: 0, pair: true, kn: () => (a, b) => Math.min(a, b) },
  { name: "UMINP", u: 1, opc: 21, vs: BHS, ss: 0, pair: true, kn: () => (a, b) => Math.min(a, b) },
  { name: "SQDMULH", u: 0, opc: 22, vs: HS, ss: HS, kn: sqdmulhN(false) },
  { name: "SQRDMULH", u: 1, opc: 22, vs: HS, ss: HS, signed: true, kn: sqdmulhN(true) },
  {
    name: "ADDP",
    u: 0,
    opc: 23,
    vs: ALL,
    ss: 0,
    pair: true,
    kn: () => (a, b) => a + b,
    kb: () => (a, b) => a + b,
  },
];

/** 64-bit lane kernels on 32-bit halves for the three-same forms that allow size 3. */
function k64Same(name: string): K64 | null {
  const u = name.startsWith("U");
  switch (name) {
    case "SQADD":
    case "UQADD":
      return k64AddSat(u);
    case "SQSUB":
    case "UQSUB":
      return k64SubSat(u);
    case "SSHL":
    case "USHL":
    case "SRSHL":
    case "URSHL":
    case "SQSHL":
    case "UQSHL":
    case "SQRSHL":
    case "UQRSHL":
      return k64ShlReg(u, name.includes("RSHL"), name.includes("QSHL") || name.includes("QRSHL"));
    default:
      return null;
  }
}

function sameDecode(op: Same, scalar: boolean, f: Fields): Exec | null {
  const size = f.size!;
  const q = scalar ? 0 : f.q!;
  if (scalar) {
    if (((op.ss >> size) & 1) === 0) return null;
  } else {
    if (((op.vs >> size) & 1) === 0) return null;
    if (size === 3 && q === 0) return null;
  }
  const e = 8 << size;
  const signed = op.signed ?? op.u === 0;
  const n = scalar ? 1 : (q ? 128 : 64) / e;
  const out = scalar ? e >> 3 : q ? 16 : 8;
  if (op.name === "ADD" || op.name === "SUB")
    return fastAddSub(op.name === "SUB", e, q, f.Rn!, f.Rm!, f.Rd!, scalar);
  if (e === 64 && op.name.startsWith("CM")) return fastCmp64(op.name, scalar ? 1 : 2, f.Rn!, f.Rm!, f.Rd!);
  if (e === 64) {
    const k = k64Same(op.name);
    if (k !== null) return exec64(k, scalar ? 1 : 2, f.Rn!, f.Rm!, f.Rd!);
  }
  if (e === 64 && op.name === "ADDP") return fastAddp64(false, f.Rn!, f.Rm!, f.Rd!);
  if (!scalar && e === 8) {
    if (op.name === "CMEQ") return fastCmeq8(q, f.Rn!, f.Rm!, f.Rd!);
    const fast = op.pair ? fastPair8(op.name, q, f.Rn!, f.Rm!, f.Rd!) : null;
    if (fast) return fast;
  }
  const kn = op.kn(e, !signed);
  const kb = op.kb?.(e, !signed);
  if (op.pair) {
    return build({
      n,
      rn: f.Rn!,
      rm: f.Rm!,
      rd: f.Rd!,
      out,
      halfConcat: q === 0,
      a: opnd("A", e, signed, 0, 2),
      b: opnd("A", e, signed, 1, 2),
      r: opnd("R", e, false),
      kn,
      kb,
    });
  }
  return build({
    n,
    rn: f.Rn!,
    rm: f.Rm!,
    rd: f.Rd!,
    out,
    loadD: op.acc,
    a: opnd("A", e, signed),
    b: opnd("B", e, signed),
    d: opnd("D", e, signed),
    r: opnd("R", e, false),
    kn,
    kb,
  });
}

const bin = (v: number, width: number): string => v.toString(2).padStart(width, "0");

/** Three-same instructions that also have a zero or an immediate form (C7.2: "(register)"). */
const REGISTER_FORM = new Set(["CMEQ", "CMGE", "CMGT", "SQSHL", "UQSHL"]);

function samePatterns(): Pattern[] {
  const out: Pattern[] = [];
  for (const op of SAME) {
    const by = REGISTER_FORM.has(op.name) ? "register, " : "";
    out.push({
      name: `${op.name} (${by}vector)`,
      pattern: `0 q:1 ${op.u} 01110 size:2 1 Rm:5 ${bin(op.opc, 5)} 1 Rn:5 Rd:5`,
      decode: (f) => sameDecode(op, false, f),
    });
    if (op.ss !== 0) {
      out.push({
        name: `${op.name} (${by}scalar)`,
        pattern: `01 ${op.u} 11110 size:2 1 Rm:5 ${bin(op.opc, 5)} 1 Rn:5 Rd:5`,
        decode: (f) => sameDecode(op, true, f),
      });
    }
  }
  return out;
}

/** Bitwise three-same forms: size is part of the opcode. Operate on 32-bit words. */
const LOGIC: { name: string; u: number; size: number; k: KN }[] = [
  { name: "AND", u: 0, size: 0, k: (a, b) => a & b },
  { name: "BIC", u: 0, size: 1, k: (a, b) => a & ~b },
  { name: "ORR", u: 0, size: 2, k: (a, b) => a | b },
  { name: "ORN", u: 0, size: 3, k: (a, b) => a | ~b },
  { name: "EOR", u: 1, size: 0, k: (a, b) => a ^ b },
  { name: "BSL", u: 1, size: 1, k: (a, b, d) => (d & a) | (~d & b) },
  { name: "BIT", u: 1, size: 2, k: (a, b, d) => (d & ~b) | (a & b) },
  { name: "BIF", u: 1, size: 3, k: (a, b, d) => (d & b) | (a & ~b) },
];

function logicPatterns(): Pattern[] {
  return LOGIC.map((op) => ({
    name: op.name === "ORR" || op.name === "BIC" ? `${op.name} (vector, register)` : `${op.name} (vector)`,
    // ORR Vd, Vn, Vn is MOV (vector).
    ...(op.name === "ORR" ? { aliases: ["mov"] } : {}),
    pattern: `0 q:1 ${op.u} 01110 ${op.size.toString(2).padStart(2, "0")} 1 Rm:5 00011 1 Rn:5 Rd:5`,
    decode: (f: Fields) =>
      fastLogic(op.name, f.q!, f.Rn!, f.Rm!, f.Rd!) ??
      logicExec(op.k, f.q!, f.Rn!, f.Rm!, f.Rd!, op.u === 1 && op.size !== 0),
  }));
}

function logicExec(k: KN, q: number, rn: number, rm: number, rd: number, useD: boolean): Exec {
  const words = q ? 4 : 2;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const nb = I.V + 4 * rn,
      mb = I.V + 4 * rm,
      db = I.V + 4 * rd;
    if (useD) for (let i = 0; i < words; i++) S32[i] = k(r[nb + i]!, r[mb + i]!, r[db + i]!);
    else for (let i = 0; i < words; i++) S32[i] = k(r[nb + i]!, r[mb + i]!, 0);
    for (let i = 0; i < words; i++) r[db + i] = S32[i]!;
    if (!q) {
      r[db + 2] = 0;
      r[db + 3] = 0;
    }
  };
}

// ---------------------------------------------------------------------------
// Three different (C4.1.95.19) and scalar three different

/**
 * A handler: the executor for this encoding, or null when it is unallocated; `u` is the
 * pattern's U bit (lanes are signed iff U = 0), `scalar` whether it is the scalar form.
 */
type Handler = (f: Fields, scalar: boolean, u: number) => Exec | null;

/** The lanes of a three-different encoding: e-bit sources (lower or upper half), 2e-bit results. */
interface Diff {
  readonly size: number;
  readonly e: number;
  readonly e2: number;
  readonly part: number;
  readonly signed: boolean;
  readonly n: number;
  readonly out: number;
  readonly rn: number;
  readonly rm: number;
  readonly rd: number;
  /** 64-bit results: the BigInt or wide paths. */
  readonly big: boolean;
  readonly A: Opnd;
  readonly Bn: Opnd;
  readonly R: Opnd;
  readonly Dw: Opnd;
}

/** A three-different handler over the encoding's lanes; size 3 is unallocated. */
function diff(h: (d: Diff) => Exec | null): Handler {
  return (f, scalar, u) => {
    const size = f.size!;
    if (size === 3) return null; // PMULL 1Q (crypto) is not implemented
    const e = 8 << size;
    const e2 = 2 * e;
    const part = scalar ? 0 : f.q!;
    const signed = u === 0;
    const n = scalar ? 1 : 64 / e;
    return h({
      size,
      e,
      e2,
      part,
      signed,
      n,
      out: scalar ? e2 >> 3 : 16,
      rn: f.Rn!,
      rm: f.Rm!,
      rd: f.Rd!,
      big: e2 === 64,
      A: opnd("A", e, signed, part * n),
      Bn: opnd("B", e, signed, part * n),
      R: opnd("R", e2, false),
      Dw: opnd("D", e2, signed),
    });
  };
}

/** SADDL/UADDL, SSUBL/USUBL, SABDL/UABDL: Vd = op(widen(Vn), widen(Vm)). */
const longOp = (kn: KN): Handler =>
  diff(({ n, rn, rm, rd, out, A, Bn, R, big }) => {
    if (big) return build({ n, rn, rm, rd, out, a: A, b: Bn, r: R, kn, wide: { acc: 0, from: "D" } });
    return build({ n, rn, rm, rd, out, a: A, b: Bn, r: R, kn });
  });

/** SMULL/UMULL (vector). */
const mullVector: Handler = diff(({ size, signed, part, n, rn, rm, rd, out, A, Bn, R, big }) => {
  if (size === 2) return fastMull32(signed, 0, part, rn, rm, -1, rd);
  return build({
    n,
    rn,
    rm,
    rd,
    out,
    a: A,
    b: Bn,
    r: R,
    kn: (a, b) => a * b,
    kb: big ? (a, b) => a * b : undefined,
  });
});

/** SADDW/UADDW, SSUBW/USUBW: Vd = Vn +/- widen(Vm). */
const wideOp = (add: boolean): Handler =>
  diff(({ e2, signed, n, rn, rm, rd, out, Bn, R, big }) => {
    if (big) {
      return build({ n, rn, rm, rd, out, a: Bn, r: R, kn: (a) => a, wide: { acc: add ? 1 : -1, from: "A" } });
    }
    return build({
      n,
      rn,
      rm,
      rd,
      out,
      a: opnd("A", e2, signed),
      b: Bn,
      r: R,
      kn: add ? (a, b) => a + b : (a, b) => a - b,
      kb: add ? (a, b) => a + b : (a, b) => a - b,
    });
  });

/** ADDHN/RADDHN, SUBHN/RSUBHN: the high halves of Vn +/- Vm, rounded for U = 1. */
const highNarrow = (add: boolean, round: boolean): Handler =>
  diff(({ e, e2, part, n, rn, rm, rd, big }) => {
    if (big) return execNarrow64(kHighNarrow(!add, round), false, part, rn, rm, rd);
    const p = 2 ** e;
    const rc = round ? p / 2 : 0;
    const pB = BigInt(e);
    const rcB = round ? 1n << (pB - 1n) : 0n;
    return build({
      n,
      rn,
      rm,
      rd,
      out: part ? 16 : 8,
      preR: part === 1,
      a: opnd("A", e2, false),
      b: opnd("B", e2, false),
      r: opnd("R", e, false, part * n),
      kn: add ? (a, b) => Math.floor((a + b + rc) / p) : (a, b) => Math.floor((a - b + rc) / p),
      kb: add ? (a, b) => (a + b + rcB) >> pB : (a, b) => (a - b + rcB) >> pB,
    });
  });

/** SABAL/UABAL: Vd += |widen(Vn) - widen(Vm)|. */
const abal: Handler = diff(({ n, rn, rm, rd, out, A, Bn, R, Dw, big }) => {
  if (big) {
    return build({
      n,
      rn,
      rm,
      rd,
      out,
      loadD: true,
      a: A,
      b: Bn,
      r: R,
      kn: (a, b) => Math.abs(a - b),
      wide: { acc: 1, from: "D" },
    });
  }
  return build({
    n,
    rn,
    rm,
    rd,
    out,
    loadD: true,
    a: A,
    b: Bn,
    d: Dw,
    r: R,
    kn: (a, b, d) => d + Math.abs(a - b),
    kb: (a, b, d) => d + (a > b ? a - b : b - a),
  });
});

/** SMLAL/UMLAL, SMLSL/UMLSL (vector): Vd += / -= widen(Vn) * widen(Vm). */
const mlalVector = (sub: boolean): Handler =>
  diff(({ size, signed, part, n, rn, rm, rd, out, A, Bn, R, Dw }) => {
    if (size === 2) return fastMull32(signed, sub ? -1 : 1, part, rn, rm, -1, rd);
    return build({
      n,
      rn,
      rm,
      rd,
      out,
      loadD: true,
      a: A,
      b: Bn,
      d: Dw,
      r: R,
      kn: sub ? (a, b, d) => d - a * b : (a, b, d) => d + a * b,
      kb: sub ? (a, b, d) => d - a * b : (a, b, d) => d + a * b,
    });
  });

/** SQDMLAL, SQDMLSL, SQDMULL (vector and scalar): saturating doubled products, `acc` +1/-1/0. */
const sqdmlVector = (acc: number): Handler =>
  diff(({ size, e2, n, rn, rm, rd, out, A, Bn, R }) => {
    if (size === 0) return null;
    const [smn, smx] = boundsN(e2, false);
    const [mnB, mxB] = boundsB(e2, false);
    const sgn = acc;
    const sgnB = BigInt(acc);
    return build({
      n,
      rn,
      rm,
      rd,
      out,
      loadD: acc !== 0,
      a: A,
      b: Bn,
      d: opnd("D", e2, true),
      r: R,
      kn:
        acc !== 0
          ? (a, b, d) => satN(d + sgn * satN(2 * a * b, smn, smx), smn, smx)
          : (a, b) => satN(2 * a * b, smn, smx),
      kb:
        acc !== 0
          ? (a, b, d) => satB(d + sgnB * satB(2n * a * b, mnB, mxB), mnB, mxB)
          : (a, b) => satB(2n * a * b, mnB, mxB),
    });
  });

/** PMULL (8-bit polynomials; the 64-bit 1Q form is crypto, not implemented). */
const pmull: Handler = diff(({ size, part, n, rn, rm, rd, out, R }) => {
  if (size !== 0) return null;
  return build({
    n,
    rn,
    rm,
    rd,
    out,
    a: opnd("A", 8, false, part * n),
    b: opnd("B", 8, false, part * n),
    r: R,
    kn: clmul8,
  });
});

// ---------------------------------------------------------------------------
// Two-register misc (C4.1.95.22) and scalar two-register misc

function clsN(e: number): KN {
  const mask = 2 ** e - 1;
  return (a) => Math.clz32(((a ^ (a >> 1)) & mask) >>> 0) - (32 - e) - 1;
}
function clzN(e: number): KN {
  return (a) => Math.clz32(a) - (32 - e);
}
const RBIT8 = new Uint8Array(256).map((_, i) => {
  let r = 0;
  for (let k = 0; k < 8; k++) if ((i >> k) & 1) r |= 0x80 >> k;
  return r;
});

/**
 * RecipEstimate / RecipSqrtEstimate on 9-bit inputs (Arm ARM J1, shared pseudocode), as
 * used by URECPE and URSQRTE: entry i is the 9-bit estimate for input bits <31:23> = i.
 */
const URECPE_TABLE = new Uint16Array(512).map((_, i) => {
  if (i < 256) return 0;
  const a = i * 2 + 1;
  const b = Math.floor(2 ** 19 / a);
  return Math.floor((b + 1) / 2) & 0x1ff;
});
const URSQRTE_TABLE = new Uint16Array(512).map((_, i) => {
  if (i < 128) return 0;
  const a = i < 256 ? i * 2 + 1 : ((i >> 1) << 1) * 2 + 2;
  let b = 512;
  while (a * (b + 1) * (b + 1) < 2 ** 28) b++;
  return Math.floor((b + 1) / 2) & 0x1ff;
});

/** REV16/REV32/REV64: reverse `e`-bit elements within each `cont`-bit container. */
function revExec(e: number, cont: number, q: number, rn: number, rd: number): Exec {
  const n = (q ? 128 : 64) / e;
  const flip = cont / e - 1;
  const v = view(e, false) as NumView;
  const rb = 48 / (e >> 3);
  return (c) => {
    c.checkFp();
    const r = c.r;
    loadSlot(r, rn, 0);
    for (let i = 0; i < n; i++) v[rb + i] = v[i ^ flip]!;
    storeR(r, rd, q ? 16 : 8);
  };
}

/** The lanes of a two-register misc encoding, vector (Q, size) or scalar (size). */
interface Misc {
  readonly scalar: boolean;
  readonly size: number;
  readonly q: number;
  readonly rn: number;
  readonly rd: number;
  readonly e: number;
  readonly n: number;
  readonly out: number;
  /** Not the vector form with size 3 and Q = 0 (unallocated for the element-wise forms). */
  readonly vecOk: boolean;
}

/** A two-register misc handler over the encoding's lanes. */
function misc(h: (m: Misc, u: number) => Exec | null): Handler {
  return (f, scalar, u) => {
    const size = f.size!;
    const q = scalar ? 0 : f.q!;
    const e = 8 << size;
    return h(
      {
        scalar,
        size,
        q,
        rn: f.Rn!,
        rd: f.Rd!,
        e,
        n: scalar ? 1 : (q ? 128 : 64) / e,
        out: scalar ? e >> 3 : q ? 16 : 8,
        vecOk: scalar || size !== 3 || q === 1,
      },
      u,
    );
  };
}

/** Whether a scalar form allows this size (`sizes`: a size mask); vector forms: true. */
const scalarOk = (m: Misc, sizes: number): boolean => !m.scalar || ((sizes >> m.size) & 1) === 1;

/** Element-wise unary op on `e`-bit lanes, vector (any allowed size) or scalar. */
function unary(m: Misc, signed: boolean, kn: KN, kb?: KB, acc = false, dSigned = signed): Exec | null {
  if (!m.vecOk || (m.size === 3 && kb === undefined)) return null;
  return build({
    n: m.n,
    rn: m.rn,
    rm: -1,
    rd: m.rd,
    out: m.out,
    loadD: acc,
    a: opnd("A", m.e, signed),
    d: opnd("D", m.e, dSigned),
    r: opnd("R", m.e, false),
    kn,
    kb,
  });
}

/** REV16/REV32/REV64 (vector): `cont`-bit containers, elements of at most `maxSize`. */
const rev = (cont: number, maxSize: number): Handler =>
  misc(({ size, e, q, rn, rd }) => (size > maxSize ? null : revExec(e, cont, q, rn, rd)));

/** SADDLP/UADDLP, SADALP/UADALP (`acc`): pairs of lanes added into double-width lanes. */
const addPairwise = (acc: boolean): Handler =>
  misc(({ size, e, n, rn, rd, out }, u) => {
    if (size === 3) return null;
    const signed = u === 0;
    const e2 = 2 * e;
    if (e2 === 64) {
      return build({
        n: n / 2,
        rn,
        rm: -1,
        rd,
        out,
        loadD: acc,
        a: opnd("A", e, signed, 0, 2),
        b: opnd("A", e, signed, 1, 2),
        r: opnd("R", e2, false),
        kn: (a, b) => a + b,
        wide: { acc: acc ? 1 : 0, from: "D" },
      });
    }
    return build({
      n: n / 2,
      rn,
      rm: -1,
      rd,
      out,
      loadD: acc,
      a: opnd("A", e, signed, 0, 2),
      b: opnd("A", e, signed, 1, 2),
      d: opnd("D", e2, signed),
      r: opnd("R", e2, false),
      kn: acc ? (a, b, d) => d + a + b : (a, b) => a + b,
      kb: acc ? (a, b, d) => d + a + b : (a, b) => a + b,
    });
  });

/**
 * SUQADD (U = 0: signed accumulator += unsigned operand, signed saturation) and USQADD
 * (U = 1: unsigned accumulator += signed operand, unsigned saturation).
 */
const satAccumulate: Handler = misc((m, u) => {
  if (m.size === 3 && m.vecOk) return exec64(k64SuqAdd(u === 1), m.scalar ? 1 : 2, m.rn, -1, m.rd);
  const [mn, mx] = boundsN(m.e, u === 1);
  const [mnB, mxB] = boundsB(m.e, u === 1);
  return unary(
    m,
    u === 1,
    (a, _b, d) => satN(d + a, mn, mx),
    (a, _b, d) => satB(d + a, mnB, mxB),
    true,
    u === 0,
  );
});

/** CLS, CLZ (vector). */
const countLeading = (signed: boolean, k: (e: number) => KN): Handler =>
  misc((m) => (m.size === 3 ? null : unary(m, signed, k(m.e))));

/** CNT: bytes only. */
const cnt: Handler = misc(({ size, q, rn, rd }) => (size !== 0 ? null : fastCnt(q, rn, rd)));

/** NOT, RBIT (vector): a byte-wise op (their pattern fixes the size). */
const bytewise =
  (kn: KN) =>
  (f: Fields): Exec =>
    build({
      n: f.q ? 16 : 8,
      rn: f.Rn!,
      rm: -1,
      rd: f.Rd!,
      out: f.q ? 16 : 8,
      a: opnd("A", 8, false),
      r: opnd("R", 8, false),
      kn,
    });

/** SQABS, SQNEG (`neg`). */
const satAbsNeg = (neg: boolean): Handler =>
  misc((m) => {
    if (m.size === 3 && m.vecOk) return exec64(k64Neg(!neg, true), m.scalar ? 1 : 2, m.rn, -1, m.rd);
    const [mn, mx] = boundsN(m.e, false);
    const [mnB, mxB] = boundsB(m.e, false);
    return neg
      ? unary(
          m,
          true,
          (a) => satN(-a, mn, mx),
          (a) => satB(-a, mnB, mxB),
        )
      : unary(
          m,
          true,
          (a) => satN(Math.abs(a), mn, mx),
          (a) => satB(a < 0n ? -a : a, mnB, mxB),
        );
  });

/** CMGT, CMGE, CMEQ, CMLE, CMLT (zero): `name` picks the 64-bit fast path. */
const compareZero = (name: string, kn: KN, kb: KB): Handler =>
  misc((m) => {
    if (!scalarOk(m, D)) return null;
    if (m.size === 3 && m.vecOk) return fastCmp64(name, m.scalar ? 1 : 2, m.rn, -1, m.rd);
    if (name === "CMEQ" && !m.scalar && m.e === 8) return fastCmeq8(m.q, m.rn, -1, m.rd);
    return unary(m, true, kn, kb);
  });

/** ABS, NEG (`neg`). */
const absNeg = (neg: boolean, kn: KN, kb: KB): Handler =>
  misc((m) => {
    if (!scalarOk(m, D)) return null;
    if (m.size === 3 && m.vecOk) return exec64(k64Neg(!neg, false), m.scalar ? 1 : 2, m.rn, -1, m.rd);
    return unary(m, true, kn, kb);
  });

/**
 * XTN (`trunc`), SQXTN, UQXTN, SQXTUN: 2e-bit lanes narrowed to e bits into the lower or
 * upper half (Q), saturating unless truncating.
 */
const extractNarrow = (trunc: boolean, srcSigned: boolean, dstUnsigned: boolean): Handler =>
  misc(({ size, e, q, scalar, rn, rd }) => {
    if (size === 3) return null;
    const e2 = 2 * e;
    const part = q;
    const nn = scalar ? 1 : 64 / e;
    const [mn, mx] = boundsN(e, dstUnsigned);
    const [mnB, mxB] = boundsB(e, dstUnsigned);
    if (trunc && e === 32) return fastNarrow64(0, part, rn, rd);
    if (e === 32)
      return execNarrow64(kNarrowShift(0, false, srcSigned, true, dstUnsigned), scalar, part, rn, -1, rd);
    return build({
      n: nn,
      rn,
      rm: -1,
      rd,
      out: scalar ? e >> 3 : part ? 16 : 8,
      preR: part === 1,
      a: opnd("A", e2, srcSigned),
      r: opnd("R", e, false, part * nn),
      kn: trunc ? (a) => a : (a) => satN(a, mn, mx),
      kb: trunc ? (a) => a : (a) => satB(a, mnB, mxB),
    });
  });

/** URECPE, URSQRTE: 32-bit lanes only; inputs below `limit` give all ones. */
const unsignedEstimate = (table: Uint16Array, limit: number): Handler =>
  misc((m) =>
    m.size !== 2
      ? null
      : unary(m, false, (a) => (a < limit ? 0xffffffff : table[(a >>> 23) & 0x1ff]! * 0x800000)),
  );

/** SHLL/SHLL2: widen and shift left by esize. */
const shll: Handler = misc(({ size, e, q, rn, rd }) => {
  if (size === 3) return null;
  const nn = 64 / e;
  const p = 2 ** e;
  const pB = BigInt(e);
  if (e === 32) {
    return build({
      n: nn,
      rn,
      rm: -1,
      rd,
      out: 16,
      a: opnd("A", e, false, q * nn),
      r: opnd("R", 64, false),
      kn: (a) => a * p,
      wide: { acc: 0, from: "D" },
    });
  }
  return build({
    n: nn,
    rn,
    rm: -1,
    rd,
    out: 16,
    a: opnd("A", e, false, q * nn),
    r: opnd("R", 2 * e, false),
    kn: (a) => a * p,
    kb: (a) => a << pB,
  });
});

// ---------------------------------------------------------------------------
// Across lanes (C4.1.95.17)

/** What an across-lanes instruction does with the lanes. */
const REDUCE_ADD = 0;
const REDUCE_ADD_LONG = 1;
const REDUCE_MAX = 2;
const REDUCE_MIN = 3;
type Reduce = typeof REDUCE_ADD | typeof REDUCE_ADD_LONG | typeof REDUCE_MAX | typeof REDUCE_MIN;

/** ADDV, SADDLV/UADDLV (double-width result), SMAXV/UMAXV, SMINV/UMINV. */
const acrossLanes =
  (mode: Reduce): Handler =>
  (f, _scalar, u) => {
    const size = f.size!;
    const q = f.q!;
    if (size === 3 || (size === 2 && q === 0)) return null;
    const e = 8 << size;
    const n = (q ? 128 : 64) / e;
    const v = view(e, u === 0) as NumView;
    const rn = f.Rn!,
      rd = f.Rd!;
    const outE = mode === REDUCE_ADD_LONG ? 2 * e : e;
    return (c) => {
      c.checkFp();
      const r = c.r;
      loadSlot(r, rn, 0);
      let acc = v[0]!;
      for (let i = 1; i < n; i++) {
        const x = v[i]!;
        if (mode <= REDUCE_ADD_LONG) acc += x;
        else if (mode === REDUCE_MAX) {
          if (x > acc) acc = x;
        } else if (x < acc) acc = x;
      }
      const w = I.V + 4 * rd;
      r[w + 1] = outE === 64 ? Math.floor(acc / 4294967296) >>> 0 : 0;
      r[w] = outE === 64 || outE === 32 ? acc >>> 0 : acc & (outE === 16 ? 0xffff : 0xff);
      r[w + 2] = 0;
      r[w + 3] = 0;
    };
  };

// ---------------------------------------------------------------------------
// Shift by immediate (C4.1.95.21) and scalar shift by immediate

/** The lanes and shift amounts of a shift-by-immediate encoding (immh:immb). */
interface Shift {
  readonly scalar: boolean;
  readonly q: number;
  readonly rn: number;
  readonly rd: number;
  readonly e: number;
  /** Right shift amount, 1..e. */
  readonly rsh: number;
  /** Left shift amount, 0..e-1. */
  readonly lsh: number;
  readonly n: number;
  readonly out: number;
  /**
   * Non-narrowing forms: vector with size 3 needs Q=1; scalar only exists for 64-bit
   * lanes except the saturating left shifts.
   */
  readonly plainOk: boolean;
}

/** A shift-by-immediate handler; immh 0000 is modified immediate, not this group. */
function shift(h: (s: Shift, u: number) => Exec | null): Handler {
  return (f, scalar, u) => {
    const immh = f.immh!;
    if (immh === 0) return null; // modified immediate
    const q = scalar ? 0 : f.q!;
    const hsb = 31 - Math.clz32(immh); // 0..3
    const e = 8 << hsb;
    const immhb = (immh << 3) | f.immb!;
    return h(
      {
        scalar,
        q,
        rn: f.Rn!,
        rd: f.Rd!,
        e,
        rsh: 2 * e - immhb,
        lsh: immhb - e,
        n: scalar ? 1 : (q ? 128 : 64) / e,
        out: scalar ? e >> 3 : q ? 16 : 8,
        plainOk: scalar ? e === 64 : e !== 64 || q === 1,
      },
      u,
    );
  };
}

/** Element-wise op on the shift's `e`-bit lanes, `acc`: reads Vd. */
function shiftLanes(s: Shift, signed: boolean, kn: KN, kb: KB, acc = false): Exec {
  return build({
    n: s.n,
    rn: s.rn,
    rm: -1,
    rd: s.rd,
    out: s.out,
    loadD: acc,
    a: opnd("A", s.e, signed),
    d: opnd("D", s.e, signed),
    r: opnd("R", s.e, false),
    kn,
    kb,
  });
}

/** SSHR/USHR, SSRA/USRA (`acc`), SRSHR/URSHR (`round`), SRSRA/URSRA; signed iff U = 0. */
const shiftRight = (round: boolean, acc: boolean): Handler =>
  shift((s, u) => {
    if (!s.plainOk) return null;
    const { e, rsh, scalar, rn, rd } = s;
    const p = 2 ** rsh;
    const rc = round ? p / 2 : 0;
    const sB = BigInt(rsh);
    const rcB = round ? 1n << (sB - 1n) : 0n;
    if (e === 64 && !round && !acc)
      return fastShift64(u === 0 ? "SSHR" : "USHR", rsh, scalar ? 1 : 2, rn, rd);
    if (e === 64) return exec64(k64ShrImm(rsh, u === 0, round, acc), scalar ? 1 : 2, rn, -1, rd);
    const kn: KN = acc ? (a, _b, d) => d + Math.floor((a + rc) / p) : (a) => Math.floor((a + rc) / p);
    const kb: KB = acc ? (a, _b, d) => d + ((a + rcB) >> sB) : (a) => (a + rcB) >> sB;
    return shiftLanes(s, u === 0, kn, kb, acc);
  });

/** SRI: shift right and insert, keeping Vd's top `rsh` bits. */
const sri: Handler = shift((s) => {
  if (!s.plainOk) return null;
  const { e, rsh, scalar, rn, rd } = s;
  if (e === 64) return exec64(k64Insert(false, rsh), scalar ? 1 : 2, rn, -1, rd);
  const p = 2 ** rsh;
  const keepN = 2 ** e - 2 ** (e - rsh); // bits of Vd kept
  const sB = BigInt(rsh);
  const keepB = rsh === 64 ? (1n << 64n) - 1n : ((1n << 64n) - 1n) ^ (((1n << 64n) - 1n) >> sB);
  return shiftLanes(
    s,
    false,
    (a, _b, d) => Math.floor(a / p) + (e === 32 ? (d & keepN) >>> 0 : d & keepN),
    (a, _b, d) => (a >> sB) | (d & keepB),
    true,
  );
});

/** SHL, SLI (`insert`: keeps Vd's low `lsh` bits). */
const shiftLeft = (insert: boolean): Handler =>
  shift((s) => {
    if (!s.plainOk) return null;
    const { e, lsh, scalar, rn, rd } = s;
    const sB = BigInt(lsh);
    const keepN = 2 ** lsh - 1;
    const keepB = (1n << sB) - 1n;
    if (!insert && e === 64) return fastShift64("SHL", lsh, scalar ? 1 : 2, rn, rd);
    if (e === 64) return exec64(k64Insert(true, lsh), scalar ? 1 : 2, rn, -1, rd);
    if (!insert)
      return shiftLanes(
        s,
        false,
        (a) => a << lsh,
        (a) => a << sB,
      );
    return shiftLanes(
      s,
      false,
      (a, _b, d) => (a << lsh) | (d & keepN),
      (a, _b, d) => (a << sB) | (d & keepB),
      true,
    );
  });

/** SQSHL, UQSHL, SQSHLU (immediate): saturating shift left. */
const satShiftLeft = (srcSigned: boolean, dstUnsigned: boolean): Handler =>
  shift((s) => {
    const { e, lsh, scalar, q, rn, rd } = s;
    if (scalar ? false : e === 64 && q === 0) return null;
    if (e === 64) return exec64(k64QShlImm(lsh, srcSigned, dstUnsigned), scalar ? 1 : 2, rn, -1, rd);
    const [mn, mx] = boundsN(e, dstUnsigned);
    const [mnB, mxB] = boundsB(e, dstUnsigned);
    const p = 2 ** lsh;
    const sB = BigInt(lsh);
    return shiftLanes(
      s,
      srcSigned,
      (a) => satN(a * p, mn, mx),
      (a) => satB(a << sB, mnB, mxB),
    );
  });

/**
 * SHRN/RSHRN (`trunc`), SQSHRN/SQRSHRN, UQSHRN/UQRSHRN, SQSHRUN/SQRSHRUN: 2e-bit lanes
 * shifted right (`round`ed) and narrowed to e bits into the lower or upper half (Q).
 */
const shiftRightNarrow = (
  round: boolean,
  trunc: boolean,
  srcSigned: boolean,
  dstUnsigned: boolean,
): Handler =>
  shift(({ e, rsh, scalar, q, rn, rd }) => {
    if (e === 64) return null;
    if (trunc && !round && e === 8 && !scalar) return fastShrn16(q, rsh, rn, rd);
    if (trunc && !round && e === 32 && !scalar) return fastNarrow64(rsh, q, rn, rd);
    if (e === 32)
      return execNarrow64(kNarrowShift(rsh, round, srcSigned, !trunc, dstUnsigned), scalar, q, rn, -1, rd);
    const e2 = 2 * e;
    const nn = scalar ? 1 : 64 / e;
    const part = q;
    const [mn, mx] = boundsN(e, dstUnsigned);
    const [mnB, mxB] = boundsB(e, dstUnsigned);
    const p = 2 ** rsh;
    const rc = round ? p / 2 : 0;
    const sB = BigInt(rsh);
    const rcB = round ? 1n << (sB - 1n) : 0n;
    return build({
      n: nn,
      rn,
      rm: -1,
      rd,
      out: scalar ? e >> 3 : part ? 16 : 8,
      preR: part === 1,
      a: opnd("A", e2, srcSigned),
      r: opnd("R", e, false, part * nn),
      kn: trunc ? (a) => Math.floor((a + rc) / p) : (a) => satN(Math.floor((a + rc) / p), mn, mx),
      kb: trunc ? (a) => (a + rcB) >> sB : (a) => satB((a + rcB) >> sB, mnB, mxB),
    });
  });

/** SSHLL/USHLL (vector only): widen the lower or upper half and shift left; signed iff U = 0. */
const shiftLeftLong: Handler = shift(({ e, lsh, q, rn, rd }, u) => {
  if (e === 64) return null;
  if (e === 32) return fastWiden32(u === 0, lsh, q, rn, rd);
  const nn = 64 / e;
  const p = 2 ** lsh;
  const sB = BigInt(lsh);
  return build({
    n: nn,
    rn,
    rm: -1,
    rd,
    out: 16,
    a: opnd("A", e, u === 0, q * nn),
    r: opnd("R", 2 * e, false),
    kn: (a) => a * p,
    kb: (a) => a << sB,
  });
});

// ---------------------------------------------------------------------------
// Modified immediate (C4.1.95.18): MOVI, MVNI, ORR, BIC (vector, immediate)

/** AdvSIMDExpandImm (Arm ARM J1): the 64-bit pattern as [lo, hi] words, or null for FMOV. */
function expandImm(op: number, cmode: number, imm8: number): [number, number] | null {
  let w: number;
  switch (cmode >> 1) {
    case 0:
    case 1:
    case 2:
    case 3:
      w = imm8 << (8 * (cmode >> 1));
      break;
    case 4:
    case 5: {
      const h = imm8 << (8 * ((cmode >> 1) & 1));
      w = h | (h << 16);
      break;
    }
    case 6:
      w = (cmode & 1) === 0 ? (imm8 << 8) | 0xff : (imm8 << 16) | 0xffff;
      break;
    default: {
      if ((cmode & 1) === 1) return null; // FMOV (vector, immediate)
      if (op === 0) {
        w = imm8 * 0x01010101;
        break;
      }
      let lo = 0,
        hi = 0;
      for (let i = 0; i < 4; i++) if ((imm8 >> i) & 1) lo |= 0xff << (8 * i);
      for (let i = 0; i < 4; i++) if ((imm8 >> (i + 4)) & 1) hi |= 0xff << (8 * i);
      return [lo >>> 0, hi >>> 0];
    }
  }
  return [w >>> 0, w >>> 0];
}

/** What a modified-immediate instruction does with the expanded immediate. */
const MOVI = 0;
const MVNI = 1;
const ORR = 2;
const BIC = 3;
type ModImm = typeof MOVI | typeof MVNI | typeof ORR | typeof BIC;

/**
 * The handler of one modified-immediate instruction: `op` is the pattern's fixed op bit,
 * `q` its Q (a field, or fixed for the 64-bit MOVI forms); cmode is read from the word,
 * since each pattern fixes some of its bits and the expansion needs all four.
 */
function modImm(kind: ModImm, op: number, q: number | undefined) {
  return (f: Fields, insn: number): Exec | null => {
    const imm = expandImm(op, (insn >>> 12) & 15, (f.abc! << 5) | f.defgh!);
    if (imm === null) return null;
    return modImmExec(q ?? f.q!, f.Rd!, kind, imm[0], imm[1]);
  };
}

function modImmExec(q: number, rd: number, kind: ModImm, lo: number, hi: number): Exec {
  if (kind === MVNI) {
    lo = ~lo >>> 0;
    hi = ~hi >>> 0;
  }
  const words = q ? 4 : 2;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const w = I.V + 4 * rd;
    for (let i = 0; i < words; i += 2) {
      if (kind <= MVNI) {
        r[w + i] = lo;
        r[w + i + 1] = hi;
      } else if (kind === ORR) {
        r[w + i] = r[w + i]! | lo;
        r[w + i + 1] = r[w + i + 1]! | hi;
      } else {
        r[w + i] = r[w + i]! & ~lo;
        r[w + i + 1] = r[w + i + 1]! & ~hi;
      }
    }
    if (!q) {
      r[w + 2] = 0;
      r[w + 3] = 0;
    }
  };
}

/** Advanced SIMD modified immediate (o2 = 0; o2 = 1 is FMOV half precision, not here). */
const MOD_IMM = (q: string, op: number, cmode: string): string =>
  `0 ${q} ${op} 0111100000 abc:3 ${cmode} 0 1 defgh:5 Rd:5`;

/** The modified-immediate instructions: [name, op, cmode bits, Q (undefined: a field), kind]. */
const MOD_IMMS: readonly [string, number, string, number | undefined, ModImm][] = [
  ["MOVI (32-bit shifted immediate)", 0, "0xx0", undefined, MOVI],
  ["MOVI (16-bit shifted immediate)", 0, "10x0", undefined, MOVI],
  ["MOVI (32-bit shifting ones)", 0, "110x", undefined, MOVI],
  ["MOVI (8-bit)", 0, "1110", undefined, MOVI],
  ["MOVI (64-bit scalar)", 1, "1110", 0, MOVI],
  ["MOVI (64-bit vector)", 1, "1110", 1, MOVI],
  ["MVNI (32-bit shifted immediate)", 1, "0xx0", undefined, MVNI],
  ["MVNI (16-bit shifted immediate)", 1, "10x0", undefined, MVNI],
  ["MVNI (32-bit shifting ones)", 1, "110x", undefined, MVNI],
  ["ORR (vector, immediate, 32-bit)", 0, "0xx1", undefined, ORR],
  ["ORR (vector, immediate, 16-bit)", 0, "10x1", undefined, ORR],
  ["BIC (vector, immediate, 32-bit)", 1, "0xx1", undefined, BIC],
  ["BIC (vector, immediate, 16-bit)", 1, "10x1", undefined, BIC],
];

// ---------------------------------------------------------------------------
// By element (C4.1.95.24) and scalar by element

/** The lanes of a by-element encoding: element `idx` of Vm broadcast (H:L:M or H:L). */
interface Elem {
  readonly scalar: boolean;
  readonly size: number;
  readonly q: number;
  readonly e: number;
  readonly idx: number;
  readonly rm: number;
  readonly rn: number;
  readonly rd: number;
  readonly signed: boolean;
}

/** A by-element handler; only 16- and 32-bit elements are allocated. */
function elem(h: (x: Elem) => Exec | null): Handler {
  return (f, scalar, u) => {
    const size = f.size!;
    if (size !== 1 && size !== 2) return null;
    return h({
      scalar,
      size,
      q: scalar ? 0 : f.q!,
      e: 8 << size,
      idx: size === 1 ? (f.H! << 2) | (f.L! << 1) | f.M! : (f.H! << 1) | f.L!,
      rm: size === 1 ? f.Rm! : (f.M! << 4) | f.Rm!,
      rn: f.Rn!,
      rd: f.Rd!,
      signed: u === 0,
    });
  };
}

/** MUL, MLA, MLS (by element, vector only): same-width lanes. */
const mulElem = (kn16: KN, kn32: KN, acc: boolean): Handler =>
  elem(({ q, e, idx, rn, rm, rd }) =>
    build({
      n: (q ? 128 : 64) / e,
      rn,
      rm,
      rd,
      out: q ? 16 : 8,
      loadD: acc,
      a: opnd("A", e, false),
      b: opnd("B", e, false, idx, 0),
      d: opnd("D", e, false),
      r: opnd("R", e, false),
      kn: e === 32 ? kn32 : kn16,
    }),
  );

/** SQDMULH, SQRDMULH (`round`) by element, vector and scalar. */
const sqdmulhElem = (round: boolean): Handler =>
  elem(({ scalar, q, e, idx, rn, rm, rd }) =>
    build({
      n: scalar ? 1 : (q ? 128 : 64) / e,
      rn,
      rm,
      rd,
      out: scalar ? e >> 3 : q ? 16 : 8,
      a: opnd("A", e, true),
      b: opnd("B", e, true, idx, 0),
      r: opnd("R", e, false),
      kn: sqdmulhN(round)(e, false),
    }),
  );

/** The operands of the widening by-element forms: lanes of Vn's lower or upper half (Q). */
function widening({ scalar, q, e, idx, signed }: Elem) {
  const e2 = 2 * e;
  const nn = scalar ? 1 : 64 / e;
  return {
    e2,
    nn,
    A: opnd("A", e, signed, q * nn),
    Bx: opnd("B", e, signed, idx, 0), // the broadcast element
    R: opnd("R", e2, false),
    Dw: opnd("D", e2, signed),
    wout: scalar ? e2 >> 3 : 16,
  };
}

/**
 * SMLAL/UMLAL (`acc` 1), SMLSL/UMLSL (-1), SMULL/UMULL (0) by element, vector only:
 * 32-bit elements take the fast path.
 */
const mullElem = (acc: number): Handler =>
  elem((x) => {
    const { size, signed, q, rn, rm, idx, rd } = x;
    if (size === 2) return fastMull32(signed, acc, q, rn, rm, idx, rd);
    const { nn, A, Bx, R, Dw, wout } = widening(x);
    if (acc === 0) {
      return build({
        n: nn,
        rn,
        rm,
        rd,
        out: wout,
        a: A,
        b: Bx,
        r: R,
        kn: (a, b) => a * b,
        kb: (a, b) => a * b,
      });
    }
    return build({
      n: nn,
      rn,
      rm,
      rd,
      out: wout,
      loadD: true,
      a: A,
      b: Bx,
      d: Dw,
      r: R,
      kn: acc > 0 ? (a, b, d) => d + a * b : (a, b, d) => d - a * b,
      kb: acc > 0 ? (a, b, d) => d + a * b : (a, b, d) => d - a * b,
    });
  });

/** SQDMLAL (`acc` 1), SQDMLSL (-1), SQDMULL (0) by element, vector and scalar. */
const sqdmlElem = (acc: number): Handler =>
  elem((x) => {
    const { rn, rm, rd } = x;
    const { e2, nn, A, Bx, R, Dw, wout } = widening(x);
    const [mn, mx] = boundsN(e2, false);
    const [mnB, mxB] = boundsB(e2, false);
    if (acc === 0) {
      return build({
        n: nn,
        rn,
        rm,
        rd,
        out: wout,
        a: A,
        b: Bx,
        r: R,
        kn: (a, b) => satN(2 * a * b, mn, mx),
        kb: (a, b) => satB(2n * a * b, mnB, mxB),
      });
    }
    const sg = acc;
    const sgB = BigInt(acc);
    return build({
      n: nn,
      rn,
      rm,
      rd,
      out: wout,
      loadD: true,
      a: A,
      b: Bx,
      d: Dw,
      r: R,
      kn: (a, b, d) => satN(d + sg * satN(2 * a * b, mn, mx), mn, mx),
      kb: (a, b, d) => satB(d + sgB * satB(2n * a * b, mnB, mxB), mnB, mxB),
    });
  });

// ---------------------------------------------------------------------------
// Scalar pairwise: ADDP (scalar) Dd, Vn.2D

function addpScalarDecode(f: Fields): Exec | null {
  if (f.size !== 3) return null;
  return fastAddp64(true, f.Rn!, -1, f.Rd!);
}

// ---------------------------------------------------------------------------
// The table. Shared formats (decodetree's @formats), one per encoding group of C4.1.95,
// vector or scalar; then each group's instructions as data, [name, U, opcode, handler, ...].

/** Bits 31..24 of a vector (Q a field) or scalar encoding, U fixed. */
const head = (scalar: boolean, u: number): string => (scalar ? `01 ${u} 1` : `0 q:1 ${u} 0`);

const FMT = {
  /** Three different. */
  diff: (s: boolean, u: number, opcode: number) =>
    `${head(s, u)} 1110 size:2 1 Rm:5 ${bin(opcode, 4)} 00 Rn:5 Rd:5`,
  /** Two-register miscellaneous; `size` fixed where two instructions share an opcode. */
  misc: (s: boolean, u: number, opcode: number, size = "size:2") =>
    `${head(s, u)} 1110 ${size} 10000 ${bin(opcode, 5)} 10 Rn:5 Rd:5`,
  /** Across lanes (vector only). */
  across: (_s: boolean, u: number, opcode: number) =>
    `${head(false, u)} 1110 size:2 11000 ${bin(opcode, 5)} 10 Rn:5 Rd:5`,
  /** Shift by immediate (immh 0000 is modified immediate: the handlers decline it). */
  shift: (s: boolean, u: number, opcode: number) =>
    `${head(s, u)} 11110 immh:4 immb:3 ${bin(opcode, 5)} 1 Rn:5 Rd:5`,
  /** Vector x indexed element. */
  elem: (s: boolean, u: number, opcode: number) =>
    `${head(s, u)} 1111 size:2 L:1 M:1 Rm:4 ${bin(opcode, 4)} H:1 0 Rn:5 Rd:5`,
};

type Entry = Omit<Pattern, "feature">;

/**
 * One instruction of a group: [name of the vector form, U, opcode, handler, name of the
 * scalar form ("": vector only), aliases objdump prints for the vector form].
 */
type Insn = readonly [string, number, number, Handler, string, readonly string[]];

/** An instruction with a vector form, "MN (...vector)", and a scalar one, "MN (...scalar)". */
const vecScalar = (
  mn: string,
  u: number,
  opcode: number,
  decode: Handler,
  by = "",
  aliases: readonly string[] = [],
): Insn => [`${mn} (${by}vector)`, u, opcode, decode, `${mn} (${by}scalar)`, aliases];
/** A vector-only instruction. */
const vec = (
  name: string,
  u: number,
  opcode: number,
  decode: Handler,
  aliases: readonly string[] = [],
): Insn => [name, u, opcode, decode, "", aliases];
/** objdump's spelling of the upper-half ("2") form, Q = 1, as an alias. */
const two = (name: string): string[] => [`${name.split(" ")[0]!.toLowerCase()}2`];
/** A vector-only instruction whose Q = 1 form objdump spells with a 2. */
const vec2 = (name: string, u: number, opcode: number, decode: Handler): Insn =>
  vec(name, u, opcode, decode, two(name));

/** Each instruction's vector pattern and, when it has one, its scalar pattern. */
function forms(fmt: (s: boolean, u: number, opcode: number) => string, list: readonly Insn[]): Entry[] {
  return list.flatMap(([name, u, opcode, decode, scalar, aliases]): Entry[] => {
    const vector: Entry = {
      name,
      pattern: fmt(false, u, opcode),
      ...(aliases.length === 0 ? {} : { aliases }),
      decode: (f) => decode(f, false, u),
    };
    if (scalar === "") return [vector];
    return [vector, { name: scalar, pattern: fmt(true, u, opcode), decode: (f) => decode(f, true, u) }];
  });
}

/** Three different (C4.1.95.19); the scalar forms are the saturating doubling ones. */
const DIFF: readonly Insn[] = [
  vec2(
    "SADDL",
    0,
    0b0000,
    longOp((a, b) => a + b),
  ),
  vec2(
    "UADDL",
    1,
    0b0000,
    longOp((a, b) => a + b),
  ),
  vec2("SADDW", 0, 0b0001, wideOp(true)),
  vec2("UADDW", 1, 0b0001, wideOp(true)),
  vec2(
    "SSUBL",
    0,
    0b0010,
    longOp((a, b) => a - b),
  ),
  vec2(
    "USUBL",
    1,
    0b0010,
    longOp((a, b) => a - b),
  ),
  vec2("SSUBW", 0, 0b0011, wideOp(false)),
  vec2("USUBW", 1, 0b0011, wideOp(false)),
  vec2("ADDHN", 0, 0b0100, highNarrow(true, false)),
  vec2("RADDHN", 1, 0b0100, highNarrow(true, true)),
  vec2("SABAL", 0, 0b0101, abal),
  vec2("UABAL", 1, 0b0101, abal),
  vec2("SUBHN", 0, 0b0110, highNarrow(false, false)),
  vec2("RSUBHN", 1, 0b0110, highNarrow(false, true)),
  vec2(
    "SABDL",
    0,
    0b0111,
    longOp((a, b) => Math.abs(a - b)),
  ),
  vec2(
    "UABDL",
    1,
    0b0111,
    longOp((a, b) => Math.abs(a - b)),
  ),
  vec2("SMLAL (vector)", 0, 0b1000, mlalVector(false)),
  vec2("UMLAL (vector)", 1, 0b1000, mlalVector(false)),
  vecScalar("SQDMLAL", 0, 0b1001, sqdmlVector(1), "", two("SQDMLAL")),
  vec2("SMLSL (vector)", 0, 0b1010, mlalVector(true)),
  vec2("UMLSL (vector)", 1, 0b1010, mlalVector(true)),
  vecScalar("SQDMLSL", 0, 0b1011, sqdmlVector(-1), "", two("SQDMLSL")),
  vec2("SMULL (vector)", 0, 0b1100, mullVector),
  vec2("UMULL (vector)", 1, 0b1100, mullVector),
  vecScalar("SQDMULL", 0, 0b1101, sqdmlVector(0), "", two("SQDMULL")),
  vec2("PMULL", 0, 0b1110, pmull),
];

/** Two-register miscellaneous (C4.1.95.22); NOT and RBIT (U=1, opcode 00101) follow the table. */
const MISC: readonly Insn[] = [
  vec("REV64", 0, 0b00000, rev(64, 2)),
  vec("REV32 (vector)", 1, 0b00000, rev(32, 1)),
  vec("REV16 (vector)", 0, 0b00001, rev(16, 0)),
  vec("SADDLP", 0, 0b00010, addPairwise(false)),
  vec("UADDLP", 1, 0b00010, addPairwise(false)),
  vecScalar("SUQADD", 0, 0b00011, satAccumulate),
  vecScalar("USQADD", 1, 0b00011, satAccumulate),
  vec("CLS (vector)", 0, 0b00100, countLeading(true, clsN)),
  vec("CLZ (vector)", 1, 0b00100, countLeading(false, clzN)),
  vec("CNT", 0, 0b00101, cnt),
  vec("SADALP", 0, 0b00110, addPairwise(true)),
  vec("UADALP", 1, 0b00110, addPairwise(true)),
  vecScalar("SQABS", 0, 0b00111, satAbsNeg(false)),
  vecScalar("SQNEG", 1, 0b00111, satAbsNeg(true)),
  vecScalar(
    "CMGT",
    0,
    0b01000,
    compareZero(
      "CMGT",
      (a) => (a > 0 ? -1 : 0),
      (a) => (a > 0n ? -1n : 0n),
    ),
    "zero, ",
  ),
  vecScalar(
    "CMGE",
    1,
    0b01000,
    compareZero(
      "CMGE",
      (a) => (a >= 0 ? -1 : 0),
      (a) => (a >= 0n ? -1n : 0n),
    ),
    "zero, ",
  ),
  vecScalar(
    "CMEQ",
    0,
    0b01001,
    compareZero(
      "CMEQ",
      (a) => (a === 0 ? -1 : 0),
      (a) => (a === 0n ? -1n : 0n),
    ),
    "zero, ",
  ),
  vecScalar(
    "CMLE",
    1,
    0b01001,
    compareZero(
      "CMLE",
      (a) => (a <= 0 ? -1 : 0),
      (a) => (a <= 0n ? -1n : 0n),
    ),
    "zero, ",
  ),
  vecScalar(
    "CMLT",
    0,
    0b01010,
    compareZero(
      "CMLT",
      (a) => (a < 0 ? -1 : 0),
      (a) => (a < 0n ? -1n : 0n),
    ),
    "zero, ",
  ),
  vecScalar(
    "ABS",
    0,
    0b01011,
    absNeg(
      false,
      (a) => Math.abs(a),
      (a) => (a < 0n ? -a : a),
    ),
  ),
  vecScalar(
    "NEG",
    1,
    0b01011,
    absNeg(
      true,
      (a) => -a,
      (a) => -a,
    ),
  ),
  vec2("XTN", 0, 0b10010, extractNarrow(true, true, false)),
  vecScalar("SQXTUN", 1, 0b10010, extractNarrow(false, true, true), "", two("SQXTUN")),
  vec2("SHLL", 1, 0b10011, shll),
  vecScalar("SQXTN", 0, 0b10100, extractNarrow(false, true, false), "", two("SQXTN")),
  vecScalar("UQXTN", 1, 0b10100, extractNarrow(false, false, true), "", two("UQXTN")),
  vec("URECPE", 0, 0b11100, unsignedEstimate(URECPE_TABLE, 0x80000000)),
  vec("URSQRTE", 1, 0b11100, unsignedEstimate(URSQRTE_TABLE, 0x40000000)),
];

/** Across lanes (C4.1.95.17). */
const ACROSS: readonly Insn[] = [
  vec("SADDLV", 0, 0b00011, acrossLanes(REDUCE_ADD_LONG)),
  vec("UADDLV", 1, 0b00011, acrossLanes(REDUCE_ADD_LONG)),
  vec("SMAXV", 0, 0b01010, acrossLanes(REDUCE_MAX)),
  vec("UMAXV", 1, 0b01010, acrossLanes(REDUCE_MAX)),
  vec("SMINV", 0, 0b11010, acrossLanes(REDUCE_MIN)),
  vec("UMINV", 1, 0b11010, acrossLanes(REDUCE_MIN)),
  vec("ADDV", 0, 0b11011, acrossLanes(REDUCE_ADD)),
];

/** Shift by immediate (C4.1.95.21); SSHLL/USHLL #0 is objdump's SXTL/UXTL. */
const SHIFT: readonly Insn[] = [
  vecScalar("SSHR", 0, 0b00000, shiftRight(false, false)),
  vecScalar("USHR", 1, 0b00000, shiftRight(false, false)),
  vecScalar("SSRA", 0, 0b00010, shiftRight(false, true)),
  vecScalar("USRA", 1, 0b00010, shiftRight(false, true)),
  vecScalar("SRSHR", 0, 0b00100, shiftRight(true, false)),
  vecScalar("URSHR", 1, 0b00100, shiftRight(true, false)),
  vecScalar("SRSRA", 0, 0b00110, shiftRight(true, true)),
  vecScalar("URSRA", 1, 0b00110, shiftRight(true, true)),
  vecScalar("SRI", 1, 0b01000, sri),
  vecScalar("SHL", 0, 0b01010, shiftLeft(false)),
  vecScalar("SLI", 1, 0b01010, shiftLeft(true)),
  vecScalar("SQSHLU", 1, 0b01100, satShiftLeft(true, true)),
  vecScalar("SQSHL", 0, 0b01110, satShiftLeft(true, false), "immediate, "),
  vecScalar("UQSHL", 1, 0b01110, satShiftLeft(false, true), "immediate, "),
  vec2("SHRN", 0, 0b10000, shiftRightNarrow(false, true, true, false)),
  vecScalar("SQSHRUN", 1, 0b10000, shiftRightNarrow(false, false, true, true), "", two("SQSHRUN")),
  vec2("RSHRN", 0, 0b10001, shiftRightNarrow(true, true, true, false)),
  vecScalar("SQRSHRUN", 1, 0b10001, shiftRightNarrow(true, false, true, true), "", two("SQRSHRUN")),
  vecScalar("SQSHRN", 0, 0b10010, shiftRightNarrow(false, false, true, false), "", two("SQSHRN")),
  vecScalar("UQSHRN", 1, 0b10010, shiftRightNarrow(false, false, false, true), "", two("UQSHRN")),
  vecScalar("SQRSHRN", 0, 0b10011, shiftRightNarrow(true, false, true, false), "", two("SQRSHRN")),
  vecScalar("UQRSHRN", 1, 0b10011, shiftRightNarrow(true, false, false, true), "", two("UQRSHRN")),
  vec("SSHLL", 0, 0b10100, shiftLeftLong, ["sshll2", "sxtl", "sxtl2"]),
  vec("USHLL", 1, 0b10100, shiftLeftLong, ["ushll2", "uxtl", "uxtl2"]),
];

/** Vector x indexed element (C4.1.95.24); the scalar forms are the saturating doubling ones. */
const ELEM: readonly Insn[] = [
  vec(
    "MLA (by element)",
    1,
    0b0000,
    mulElem(
      (a, b, d) => d + a * b,
      (a, b, d) => d + Math.imul(a, b),
      true,
    ),
  ),
  vec2("SMLAL (by element)", 0, 0b0010, mullElem(1)),
  vec2("UMLAL (by element)", 1, 0b0010, mullElem(1)),
  vecScalar("SQDMLAL", 0, 0b0011, sqdmlElem(1), "by element, ", two("SQDMLAL")),
  vec(
    "MLS (by element)",
    1,
    0b0100,
    mulElem(
      (a, b, d) => d - a * b,
      (a, b, d) => d - Math.imul(a, b),
      true,
    ),
  ),
  vec2("SMLSL (by element)", 0, 0b0110, mullElem(-1)),
  vec2("UMLSL (by element)", 1, 0b0110, mullElem(-1)),
  vecScalar("SQDMLSL", 0, 0b0111, sqdmlElem(-1), "by element, ", two("SQDMLSL")),
  vec(
    "MUL (by element)",
    0,
    0b1000,
    mulElem(
      (a, b) => a * b,
      (a, b) => Math.imul(a, b),
      false,
    ),
  ),
  vec2("SMULL (by element)", 0, 0b1010, mullElem(0)),
  vec2("UMULL (by element)", 1, 0b1010, mullElem(0)),
  vecScalar("SQDMULL", 0, 0b1011, sqdmlElem(0), "by element, ", two("SQDMULL")),
  vecScalar("SQDMULH", 0, 0b1100, sqdmulhElem(false), "by element, "),
  vecScalar("SQRDMULH", 0, 0b1101, sqdmulhElem(true), "by element, "),
];

const TABLE: Entry[] = [
  ...logicPatterns(),
  ...samePatterns(),
  ...forms(FMT.diff, DIFF),
  ...forms(FMT.misc, MISC),
  {
    name: "NOT",
    pattern: FMT.misc(false, 1, 0b00101, "00"),
    aliases: ["mvn"],
    decode: bytewise((a) => ~a),
  },
  {
    name: "RBIT (vector)",
    pattern: FMT.misc(false, 1, 0b00101, "01"),
    decode: bytewise((a) => RBIT8[a]!),
  },
  ...forms(FMT.across, ACROSS),
  ...MOD_IMMS.map(([name, op, cmode, q, kind]) => ({
    name,
    pattern: MOD_IMM(q === undefined ? "q:1" : String(q), op, cmode),
    decode: modImm(kind, op, q),
  })),
  ...forms(FMT.shift, SHIFT),
  ...forms(FMT.elem, ELEM),
  {
    name: "ADDP (scalar)",
    pattern: "01 0 11110 size:2 11000 11011 10 Rn:5 Rd:5",
    decode: addpScalarDecode,
  },
];

/** The AdvSIMD integer instructions, one pattern each, all of feature AdvSIMD. */
export const SIMD_INTEGER: Pattern[] = TABLE.map((p) => ({ ...p, feature: "AdvSIMD" }));
