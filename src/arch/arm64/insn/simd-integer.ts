/**
 * AdvSIMD integer data processing (Arm ARM C4.1.95 "Data Processing -- Scalar Floating-Point
 * and Advanced SIMD", integer forms; semantics from the C7.2 instruction pages):
 * three same, three different, two-register misc, across lanes, shift by immediate,
 * modified immediate, by element, and their scalar forms.
 *
 * The floating-point forms that share these encoding groups return null here so that the
 * FP tables (simd-fp.ts, fp-scalar.ts) decode them.
 * The table (SIMD_INTEGER, at the end) is one pattern per instruction, all of feature
 * AdvSIMD: three same (SAME, LOGIC) and modified immediate (MOD_IMMS) build theirs from
 * their own lists; the other groups are lists of [name, U, opcode] (DIFF, MISC, ACROSS,
 * SHIFT, ELEM) over the shared formats FMT, each vector form with its scalar form if any.
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

function diffDecode(u: number, opc: number, f: Fields, scalar: boolean): Exec | null {
  const size = f.size!;
  if (size === 3) return null; // PMULL 1Q (crypto) is not implemented
  const e = 8 << size;
  const e2 = 2 * e;
  const part = scalar ? 0 : f.q!;
  const signed = u === 0;
  const n = scalar ? 1 : 64 / e;
  const out = scalar ? e2 >> 3 : 16;
  const rn = f.Rn!,
    rm = f.Rm!,
    rd = f.Rd!;
  const big = e2 === 64;
  const A = opnd("A", e, signed, part * n);
  const Bn = opnd("B", e, signed, part * n);
  const R = opnd("R", e2, false);
  const Dw = opnd("D", e2, signed);
  const [mn, mx] = boundsN(e2, false);
  const [mnB, mxB] = boundsB(e2, false);
  if (scalar && (opc & 0b1001) !== 0b1001) return null;
  if (size === 2 && (opc === 8 || opc === 10 || opc === 12)) {
    return fastMull32(signed, opc === 8 ? 1 : opc === 10 ? -1 : 0, part, rn, rm, -1, rd);
  }
  switch (opc) {
    case 0: // SADDL/UADDL
    case 2: // SSUBL/USUBL
    case 7: // SABDL/UABDL
    case 12: {
      // SMULL/UMULL
      const kn: KN =
        opc === 0
          ? (a, b) => a + b
          : opc === 2
            ? (a, b) => a - b
            : opc === 7
              ? (a, b) => Math.abs(a - b)
              : (a, b) => a * b;
      const kb: KB =
        opc === 0
          ? (a, b) => a + b
          : opc === 2
            ? (a, b) => a - b
            : opc === 7
              ? (a, b) => (a > b ? a - b : b - a)
              : (a, b) => a * b;
      if (big && opc !== 12)
        return build({ n, rn, rm, rd, out, a: A, b: Bn, r: R, kn, wide: { acc: 0, from: "D" } });
      return build({ n, rn, rm, rd, out, a: A, b: Bn, r: R, kn, kb: big ? kb : undefined });
    }
    case 1: // SADDW/UADDW
    case 3: {
      // SSUBW/USUBW
      const add = opc === 1;
      if (big) {
        return build({
          n,
          rn,
          rm,
          rd,
          out,
          a: Bn,
          r: R,
          kn: (a) => a,
          wide: { acc: add ? 1 : -1, from: "A" },
        });
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
    }
    case 4: // ADDHN/RADDHN
    case 6: {
      // SUBHN/RSUBHN
      const add = opc === 4;
      const round = u === 1;
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
    }
    case 5: // SABAL/UABAL
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
    case 8: // SMLAL/UMLAL
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
        kn: (a, b, d) => d + a * b,
        kb: (a, b, d) => d + a * b,
      });
    case 10: // SMLSL/UMLSL
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
        kn: (a, b, d) => d - a * b,
        kb: (a, b, d) => d - a * b,
      });
    case 9: // SQDMLAL
    case 11: // SQDMLSL
    case 13: {
      // SQDMULL
      if (u !== 0 || size === 0) return null;
      const sgn = opc === 11 ? -1 : 1;
      const sgnB = opc === 11 ? -1n : 1n;
      const [smn, smx] = boundsN(e2, false);
      void mn;
      void mx;
      const acc = opc !== 13;
      const Ds = opnd("D", e2, true);
      return build({
        n,
        rn,
        rm,
        rd,
        out,
        loadD: acc,
        a: A,
        b: Bn,
        d: Ds,
        r: R,
        kn: acc
          ? (a, b, d) => satN(d + sgn * satN(2 * a * b, smn, smx), smn, smx)
          : (a, b) => satN(2 * a * b, smn, smx),
        kb: acc
          ? (a, b, d) => satB(d + sgnB * satB(2n * a * b, mnB, mxB), mnB, mxB)
          : (a, b) => satB(2n * a * b, mnB, mxB),
      });
    }
    case 14: // PMULL (8-bit)
      if (u !== 0 || size !== 0) return null;
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
    default:
      return null;
  }
}

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

function miscDecode(u: number, opc: number, f: Fields, scalar: boolean): Exec | null {
  const size = f.size!;
  const q = scalar ? 0 : f.q!;
  const rn = f.Rn!,
    rd = f.Rd!;
  const e = 8 << size;
  const n = scalar ? 1 : (q ? 128 : 64) / e;
  const out = scalar ? e >> 3 : q ? 16 : 8;
  const vecOk = scalar || size !== 3 || q === 1;
  /** Element-wise unary op on `e`-bit lanes, vector (any allowed size) or scalar. */
  const unary = (signed: boolean, kn: KN, kb?: KB, acc = false, dSigned = signed): Exec | null => {
    if (!vecOk || (size === 3 && kb === undefined)) return null;
    return build({
      n,
      rn,
      rm: -1,
      rd,
      out,
      loadD: acc,
      a: opnd("A", e, signed),
      d: opnd("D", e, dSigned),
      r: opnd("R", e, false),
      kn,
      kb,
    });
  };
  const scalarOk = (sizes: number): boolean => !scalar || ((sizes >> size) & 1) === 1;
  const key = (u << 5) | opc;
  switch (key) {
    case 0b000000: // REV64
      if (scalar || size === 3) return null;
      return revExec(e, 64, q, rn, rd);
    case 0b100000: // REV32
      if (scalar || size > 1) return null;
      return revExec(e, 32, q, rn, rd);
    case 0b000001: // REV16
      if (scalar || size !== 0) return null;
      return revExec(e, 16, q, rn, rd);
    case 0b000010: // SADDLP
    case 0b100010: // UADDLP
    case 0b000110: // SADALP
    case 0b100110: {
      // UADALP
      if (scalar || size === 3) return null;
      const signed = u === 0;
      const acc = (opc & 4) !== 0;
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
    }
    case 0b000011: // SUQADD: signed accumulator += unsigned operand, signed saturation
    case 0b100011: {
      // USQADD: unsigned accumulator += signed operand, unsigned saturation
      if (!scalarOk(ALL)) return null;
      if (size === 3 && vecOk) return exec64(k64SuqAdd(u === 1), scalar ? 1 : 2, rn, -1, rd);
      const [mn, mx] = boundsN(e, u === 1);
      const [mnB, mxB] = boundsB(e, u === 1);
      return unary(
        u === 1,
        (a, _b, d) => satN(d + a, mn, mx),
        (a, _b, d) => satB(d + a, mnB, mxB),
        true,
        u === 0,
      );
    }
    case 0b000100: // CLS
      if (scalar || size === 3) return null;
      return unary(true, clsN(e));
    case 0b100100: // CLZ
      if (scalar || size === 3) return null;
      return unary(false, clzN(e));
    case 0b000101: // CNT
      if (scalar || size !== 0) return null;
      return fastCnt(q, rn, rd);
    case 0b100101: // NOT (size 0) / RBIT (size 1)
      if (scalar || size > 1) return null;
      return build({
        n: q ? 16 : 8,
        rn,
        rm: -1,
        rd,
        out,
        a: opnd("A", 8, false),
        r: opnd("R", 8, false),
        kn: size === 0 ? (a) => ~a : (a) => RBIT8[a]!,
      });
    case 0b000111: // SQABS
    case 0b100111: {
      // SQNEG
      if (!scalarOk(ALL)) return null;
      if (size === 3 && vecOk) return exec64(k64Neg(u === 0, true), scalar ? 1 : 2, rn, -1, rd);
      const [mn, mx] = boundsN(e, false);
      const [mnB, mxB] = boundsB(e, false);
      return u === 0
        ? unary(
            true,
            (a) => satN(Math.abs(a), mn, mx),
            (a) => satB(a < 0n ? -a : a, mnB, mxB),
          )
        : unary(
            true,
            (a) => satN(-a, mn, mx),
            (a) => satB(-a, mnB, mxB),
          );
    }
    case 0b001000: // CMGT #0
      if (!scalarOk(D)) return null;
      if (size === 3 && vecOk) return fastCmp64("CMGT", scalar ? 1 : 2, rn, -1, rd);
      return unary(
        true,
        (a) => (a > 0 ? -1 : 0),
        (a) => (a > 0n ? -1n : 0n),
      );
    case 0b101000: // CMGE #0
      if (!scalarOk(D)) return null;
      if (size === 3 && vecOk) return fastCmp64("CMGE", scalar ? 1 : 2, rn, -1, rd);
      return unary(
        true,
        (a) => (a >= 0 ? -1 : 0),
        (a) => (a >= 0n ? -1n : 0n),
      );
    case 0b001001: // CMEQ #0
      if (!scalarOk(D)) return null;
      if (size === 3 && vecOk) return fastCmp64("CMEQ", scalar ? 1 : 2, rn, -1, rd);
      if (!scalar && e === 8) return fastCmeq8(q, rn, -1, rd);
      return unary(
        true,
        (a) => (a === 0 ? -1 : 0),
        (a) => (a === 0n ? -1n : 0n),
      );
    case 0b101001: // CMLE #0
      if (!scalarOk(D)) return null;
      if (size === 3 && vecOk) return fastCmp64("CMLE", scalar ? 1 : 2, rn, -1, rd);
      return unary(
        true,
        (a) => (a <= 0 ? -1 : 0),
        (a) => (a <= 0n ? -1n : 0n),
      );
    case 0b001010: // CMLT #0
      if (!scalarOk(D)) return null;
      if (size === 3 && vecOk) return fastCmp64("CMLT", scalar ? 1 : 2, rn, -1, rd);
      return unary(
        true,
        (a) => (a < 0 ? -1 : 0),
        (a) => (a < 0n ? -1n : 0n),
      );
    case 0b001011: // ABS
      if (!scalarOk(D)) return null;
      if (size === 3 && vecOk) return exec64(k64Neg(true, false), scalar ? 1 : 2, rn, -1, rd);
      return unary(
        true,
        (a) => Math.abs(a),
        (a) => (a < 0n ? -a : a),
      );
    case 0b101011: // NEG
      if (!scalarOk(D)) return null;
      if (size === 3 && vecOk) return exec64(k64Neg(false, false), scalar ? 1 : 2, rn, -1, rd);
      return unary(
        true,
        (a) => -a,
        (a) => -a,
      );
    case 0b010010: // XTN
    case 0b110010: // SQXTUN
    case 0b010100: // SQXTN
    case 0b110100: {
      // UQXTN
      if (size === 3) return null;
      if (scalar && key === 0b010010) return null;
      const srcSigned = key !== 0b110100;
      const dstUnsigned = key === 0b110010 || key === 0b110100;
      const e2 = 2 * e;
      const part = q;
      const nn = scalar ? 1 : 64 / e;
      const [mn, mx] = boundsN(e, dstUnsigned);
      const [mnB, mxB] = boundsB(e, dstUnsigned);
      const trunc = key === 0b010010;
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
    }
    case 0b011100: // URECPE
    case 0b111100: {
      // URSQRTE
      if (scalar || size !== 2) return null;
      const table = u === 0 ? URECPE_TABLE : URSQRTE_TABLE;
      const limit = u === 0 ? 0x80000000 : 0x40000000;
      return unary(false, (a) => (a < limit ? 0xffffffff : table[(a >>> 23) & 0x1ff]! * 0x800000));
    }
    case 0b110011: {
      // SHLL/SHLL2: widen and shift left by esize
      if (scalar || size === 3) return null;
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
    }
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------
// Across lanes (C4.1.95.17)

function acrossDecode(u: number, opc: number, f: Fields): Exec | null {
  const size = f.size!;
  const q = f.q!;
  if (size === 3 || (size === 2 && q === 0)) return null;
  const e = 8 << size;
  const n = (q ? 128 : 64) / e;
  const signed = u === 0;
  const v = view(e, signed) as NumView;
  const rn = f.Rn!,
    rd = f.Rd!;
  let mode: number; // 0 add (wrap), 1 add long, 2 max, 3 min
  if (opc === 0b00011)
    mode = 1; // SADDLV/UADDLV
  else if (opc === 0b01010)
    mode = 2; // SMAXV/UMAXV
  else if (opc === 0b11010)
    mode = 3; // SMINV/UMINV
  else if (opc === 0b11011 && u === 0)
    mode = 0; // ADDV
  else return null;
  const outE = mode === 1 ? 2 * e : e;
  return (c) => {
    c.checkFp();
    const r = c.r;
    loadSlot(r, rn, 0);
    let acc = v[0]!;
    for (let i = 1; i < n; i++) {
      const x = v[i]!;
      if (mode <= 1) acc += x;
      else if (mode === 2) {
        if (x > acc) acc = x;
      } else if (x < acc) acc = x;
    }
    const w = I.V + 4 * rd;
    r[w + 1] = outE === 64 ? Math.floor(acc / 4294967296) >>> 0 : 0;
    r[w] = outE === 64 || outE === 32 ? acc >>> 0 : acc & (outE === 16 ? 0xffff : 0xff);
    r[w + 2] = 0;
    r[w + 3] = 0;
  };
}

// ---------------------------------------------------------------------------
// Shift by immediate (C4.1.95.21) and scalar shift by immediate

function shiftDecode(u: number, opc: number, f: Fields, scalar: boolean): Exec | null {
  const immh = f.immh!;
  if (immh === 0) return null; // modified immediate
  const q = scalar ? 0 : f.q!;
  const rn = f.Rn!,
    rd = f.Rd!;
  const hsb = 31 - Math.clz32(immh); // 0..3
  const e = 8 << hsb;
  const immhb = (immh << 3) | f.immb!;
  const rsh = 2 * e - immhb; // right shift amount, 1..e
  const lsh = immhb - e; // left shift amount, 0..e-1
  const n = scalar ? 1 : (q ? 128 : 64) / e;
  const out = scalar ? e >> 3 : q ? 16 : 8;
  const key = (u << 5) | opc;
  // Non-narrowing forms: vector with size 3 needs Q=1; scalar only exists for 64-bit
  // lanes except the saturating left shifts.
  const plainOk = scalar ? e === 64 : e !== 64 || q === 1;
  const big = e === 64;
  const eB = BigInt(e);
  const elem = (signed: boolean, kn: KN, kb: KB, acc = false): Exec =>
    build({
      n,
      rn,
      rm: -1,
      rd,
      out,
      loadD: acc,
      a: opnd("A", e, signed),
      d: opnd("D", e, signed),
      r: opnd("R", e, false),
      kn,
      kb,
    });
  switch (key) {
    case 0b000000: // SSHR
    case 0b100000: // USHR
    case 0b000010: // SSRA
    case 0b100010: // USRA
    case 0b000100: // SRSHR
    case 0b100100: // URSHR
    case 0b000110: // SRSRA
    case 0b100110: {
      // URSRA
      if (!plainOk) return null;
      const round = (opc & 4) !== 0;
      const acc = (opc & 2) !== 0;
      const p = 2 ** rsh;
      const rc = round ? p / 2 : 0;
      const sB = BigInt(rsh);
      const rcB = round ? 1n << (sB - 1n) : 0n;
      if (e === 64 && !round && !acc)
        return fastShift64(u === 0 ? "SSHR" : "USHR", rsh, scalar ? 1 : 2, rn, rd);
      if (e === 64) return exec64(k64ShrImm(rsh, u === 0, round, acc), scalar ? 1 : 2, rn, -1, rd);
      const kn: KN = acc ? (a, _b, d) => d + Math.floor((a + rc) / p) : (a) => Math.floor((a + rc) / p);
      const kb: KB = acc ? (a, _b, d) => d + ((a + rcB) >> sB) : (a) => (a + rcB) >> sB;
      return elem(u === 0, kn, kb, acc);
    }
    case 0b101000: {
      // SRI
      if (!plainOk) return null;
      if (e === 64) return exec64(k64Insert(false, rsh), scalar ? 1 : 2, rn, -1, rd);
      const p = 2 ** rsh;
      const keepN = 2 ** e - 2 ** (e - rsh); // bits of Vd kept
      const sB = BigInt(rsh);
      const keepB = rsh === 64 ? (1n << 64n) - 1n : ((1n << 64n) - 1n) ^ (((1n << 64n) - 1n) >> sB);
      return elem(
        false,
        (a, _b, d) => Math.floor(a / p) + (e === 32 ? (d & keepN) >>> 0 : d & keepN),
        (a, _b, d) => (a >> sB) | (d & keepB),
        true,
      );
    }
    case 0b001010: // SHL
    case 0b101010: {
      // SLI
      if (!plainOk) return null;
      const p = 2 ** lsh;
      const sB = BigInt(lsh);
      const keepN = 2 ** lsh - 1;
      const keepB = (1n << sB) - 1n;
      void p;
      if (u === 0 && e === 64) return fastShift64("SHL", lsh, scalar ? 1 : 2, rn, rd);
      if (e === 64) return exec64(k64Insert(true, lsh), scalar ? 1 : 2, rn, -1, rd);
      if (u === 0)
        return elem(
          false,
          (a) => a << lsh,
          (a) => a << sB,
        );
      return elem(
        false,
        (a, _b, d) => (a << lsh) | (d & keepN),
        (a, _b, d) => (a << sB) | (d & keepB),
        true,
      );
    }
    case 0b101100: // SQSHLU
    case 0b001110: // SQSHL (immediate)
    case 0b101110: {
      // UQSHL (immediate)
      if (scalar ? false : e === 64 && q === 0) return null;
      const srcSigned = key !== 0b101110;
      const dstUnsigned = key !== 0b001110;
      if (e === 64) return exec64(k64QShlImm(lsh, srcSigned, dstUnsigned), scalar ? 1 : 2, rn, -1, rd);
      const [mn, mx] = boundsN(e, dstUnsigned);
      const [mnB, mxB] = boundsB(e, dstUnsigned);
      const p = 2 ** lsh;
      const sB = BigInt(lsh);
      return elem(
        srcSigned,
        (a) => satN(a * p, mn, mx),
        (a) => satB(a << sB, mnB, mxB),
      );
    }
    case 0b010000: // SHRN
    case 0b010001: // RSHRN
    case 0b110000: // SQSHRUN
    case 0b110001: // SQRSHRUN
    case 0b010010: // SQSHRN
    case 0b010011: // SQRSHRN
    case 0b110010: // UQSHRN
    case 0b110011: {
      // UQRSHRN
      if (e === 64) return null;
      if (scalar && (key === 0b010000 || key === 0b010001)) return null;
      const round = (opc & 1) !== 0;
      const trunc = key === 0b010000 || key === 0b010001;
      if (key === 0b010000 && e === 8 && !scalar) return fastShrn16(q, rsh, rn, rd);
      if (key === 0b010000 && e === 32 && !scalar) return fastNarrow64(rsh, q, rn, rd);
      const srcSigned = key !== 0b110010 && key !== 0b110011;
      const dstUnsigned = key === 0b110000 || key === 0b110001 || !srcSigned;
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
    }
    case 0b010100: // SSHLL
    case 0b110100: {
      // USHLL
      if (scalar || e === 64) return null;
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
    }
    default:
      void big;
      void eB;
      return null;
  }
}

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

function elemDecode(u: number, opc: number, f: Fields, scalar: boolean): Exec | null {
  const size = f.size!;
  if (size !== 1 && size !== 2) return null;
  const q = scalar ? 0 : f.q!;
  const e = 8 << size;
  const idx = size === 1 ? (f.H! << 2) | (f.L! << 1) | f.M! : (f.H! << 1) | f.L!;
  const rm = size === 1 ? f.Rm! : (f.M! << 4) | f.Rm!;
  const rn = f.Rn!,
    rd = f.Rd!;
  const key = (u << 4) | opc;
  const signed = u === 0;
  const Bx = opnd("B", e, signed, idx, 0); // the broadcast element
  // Same-width forms: MUL, MLA, MLS, SQDMULH, SQRDMULH.
  const n = scalar ? 1 : (q ? 128 : 64) / e;
  const out = scalar ? e >> 3 : q ? 16 : 8;
  switch (key) {
    case 0b01000: // MUL
    case 0b10000: // MLA
    case 0b10100: {
      // MLS
      if (scalar) return null;
      const kn: KN =
        key === 0b01000
          ? e === 32
            ? (a, b) => Math.imul(a, b)
            : (a, b) => a * b
          : key === 0b10000
            ? e === 32
              ? (a, b, d) => d + Math.imul(a, b)
              : (a, b, d) => d + a * b
            : e === 32
              ? (a, b, d) => d - Math.imul(a, b)
              : (a, b, d) => d - a * b;
      return build({
        n,
        rn,
        rm,
        rd,
        out,
        loadD: key !== 0b01000,
        a: opnd("A", e, false),
        b: opnd("B", e, false, idx, 0),
        d: opnd("D", e, false),
        r: opnd("R", e, false),
        kn,
      });
    }
    case 0b01100: // SQDMULH
    case 0b01101: // SQRDMULH
      return build({
        n,
        rn,
        rm,
        rd,
        out,
        a: opnd("A", e, true),
        b: opnd("B", e, true, idx, 0),
        r: opnd("R", e, false),
        kn: sqdmulhN(opc === 0b1101)(e, false),
      });
    default:
      break;
  }
  // Widening forms: source lanes from the lower or upper half of Vn.
  const e2 = 2 * e;
  const nn = scalar ? 1 : 64 / e;
  const part = q;
  const A = opnd("A", e, signed, part * nn);
  const R = opnd("R", e2, false);
  const Dw = opnd("D", e2, signed);
  const wout = scalar ? e2 >> 3 : 16;
  if (!scalar && size === 2) {
    const k = key & 0b01111;
    if (k === 0b0010 || k === 0b0110 || k === 0b1010) {
      return fastMull32(signed, k === 0b0010 ? 1 : k === 0b0110 ? -1 : 0, part, rn, rm, idx, rd);
    }
  }
  const [mn, mx] = boundsN(e2, false);
  const [mnB, mxB] = boundsB(e2, false);
  switch (key) {
    case 0b00010: // SMLAL
    case 0b10010: // UMLAL
      if (scalar) return null;
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
        kn: (a, b, d) => d + a * b,
        kb: (a, b, d) => d + a * b,
      });
    case 0b00110: // SMLSL
    case 0b10110: // UMLSL
      if (scalar) return null;
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
        kn: (a, b, d) => d - a * b,
        kb: (a, b, d) => d - a * b,
      });
    case 0b01010: // SMULL
    case 0b11010: // UMULL
      if (scalar) return null;
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
    case 0b00011: // SQDMLAL
    case 0b00111: {
      // SQDMLSL
      const sg = opc === 0b0111 ? -1 : 1;
      const sgB = opc === 0b0111 ? -1n : 1n;
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
    }
    case 0b01011: // SQDMULL
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
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------
// Scalar pairwise: ADDP (scalar) Dd, Vn.2D

function addpScalarDecode(f: Fields): Exec | null {
  if (f.size !== 3) return null;
  return fastAddp64(true, f.Rn!, -1, f.Rd!);
}

// ---------------------------------------------------------------------------
// The table. Shared formats (decodetree's @formats), one per encoding group of C4.1.95,
// vector or scalar; then each group's instructions as data, [name, U, opcode, ...].

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
type Handler = (u: number, opcode: number, f: Fields, scalar: boolean) => Exec | null;

/**
 * One instruction of a group: [name of the vector form, U, opcode, name of the scalar
 * form ("": vector only), aliases objdump prints for the vector form].
 */
type Insn = readonly [string, number, number, string, readonly string[]];

/** An instruction with a vector form, "MN (...vector)", and a scalar one, "MN (...scalar)". */
const vecScalar = (mn: string, u: number, opcode: number, by = "", aliases: readonly string[] = []): Insn => [
  `${mn} (${by}vector)`,
  u,
  opcode,
  `${mn} (${by}scalar)`,
  aliases,
];
/** A vector-only instruction. */
const vec = (name: string, u: number, opcode: number, aliases: readonly string[] = []): Insn => [
  name,
  u,
  opcode,
  "",
  aliases,
];
/** objdump's spelling of the upper-half ("2") form, Q = 1, as an alias. */
const two = (name: string): string[] => [`${name.split(" ")[0]!.toLowerCase()}2`];
/** A vector-only instruction whose Q = 1 form objdump spells with a 2. */
const vec2 = (name: string, u: number, opcode: number): Insn => vec(name, u, opcode, two(name));

/** Each instruction's vector pattern and, when it has one, its scalar pattern. */
function forms(
  fmt: (s: boolean, u: number, opcode: number) => string,
  handler: Handler,
  list: readonly Insn[],
) {
  return list.flatMap(([name, u, opcode, scalar, aliases]): Entry[] => {
    const vector: Entry = {
      name,
      pattern: fmt(false, u, opcode),
      ...(aliases.length === 0 ? {} : { aliases }),
      decode: (f) => handler(u, opcode, f, false),
    };
    if (scalar === "") return [vector];
    return [
      vector,
      { name: scalar, pattern: fmt(true, u, opcode), decode: (f) => handler(u, opcode, f, true) },
    ];
  });
}

/** Three different (C4.1.95.19); the scalar forms are the saturating doubling ones. */
const DIFF: readonly Insn[] = [
  vec2("SADDL", 0, 0b0000),
  vec2("UADDL", 1, 0b0000),
  vec2("SADDW", 0, 0b0001),
  vec2("UADDW", 1, 0b0001),
  vec2("SSUBL", 0, 0b0010),
  vec2("USUBL", 1, 0b0010),
  vec2("SSUBW", 0, 0b0011),
  vec2("USUBW", 1, 0b0011),
  vec2("ADDHN", 0, 0b0100),
  vec2("RADDHN", 1, 0b0100),
  vec2("SABAL", 0, 0b0101),
  vec2("UABAL", 1, 0b0101),
  vec2("SUBHN", 0, 0b0110),
  vec2("RSUBHN", 1, 0b0110),
  vec2("SABDL", 0, 0b0111),
  vec2("UABDL", 1, 0b0111),
  vec2("SMLAL (vector)", 0, 0b1000),
  vec2("UMLAL (vector)", 1, 0b1000),
  vecScalar("SQDMLAL", 0, 0b1001, "", two("SQDMLAL")),
  vec2("SMLSL (vector)", 0, 0b1010),
  vec2("UMLSL (vector)", 1, 0b1010),
  vecScalar("SQDMLSL", 0, 0b1011, "", two("SQDMLSL")),
  vec2("SMULL (vector)", 0, 0b1100),
  vec2("UMULL (vector)", 1, 0b1100),
  vecScalar("SQDMULL", 0, 0b1101, "", two("SQDMULL")),
  vec2("PMULL", 0, 0b1110),
];

/** Two-register miscellaneous (C4.1.95.22); NOT and RBIT (U=1, opcode 00101) follow the table. */
const MISC: readonly Insn[] = [
  vec("REV64", 0, 0b00000),
  vec("REV32 (vector)", 1, 0b00000),
  vec("REV16 (vector)", 0, 0b00001),
  vec("SADDLP", 0, 0b00010),
  vec("UADDLP", 1, 0b00010),
  vecScalar("SUQADD", 0, 0b00011),
  vecScalar("USQADD", 1, 0b00011),
  vec("CLS (vector)", 0, 0b00100),
  vec("CLZ (vector)", 1, 0b00100),
  vec("CNT", 0, 0b00101),
  vec("SADALP", 0, 0b00110),
  vec("UADALP", 1, 0b00110),
  vecScalar("SQABS", 0, 0b00111),
  vecScalar("SQNEG", 1, 0b00111),
  vecScalar("CMGT", 0, 0b01000, "zero, "),
  vecScalar("CMGE", 1, 0b01000, "zero, "),
  vecScalar("CMEQ", 0, 0b01001, "zero, "),
  vecScalar("CMLE", 1, 0b01001, "zero, "),
  vecScalar("CMLT", 0, 0b01010, "zero, "),
  vecScalar("ABS", 0, 0b01011),
  vecScalar("NEG", 1, 0b01011),
  vec2("XTN", 0, 0b10010),
  vecScalar("SQXTUN", 1, 0b10010, "", two("SQXTUN")),
  vec2("SHLL", 1, 0b10011),
  vecScalar("SQXTN", 0, 0b10100, "", two("SQXTN")),
  vecScalar("UQXTN", 1, 0b10100, "", two("UQXTN")),
  vec("URECPE", 0, 0b11100),
  vec("URSQRTE", 1, 0b11100),
];

/** Across lanes (C4.1.95.17). */
const ACROSS: readonly Insn[] = [
  vec("SADDLV", 0, 0b00011),
  vec("UADDLV", 1, 0b00011),
  vec("SMAXV", 0, 0b01010),
  vec("UMAXV", 1, 0b01010),
  vec("SMINV", 0, 0b11010),
  vec("UMINV", 1, 0b11010),
  vec("ADDV", 0, 0b11011),
];

/** Shift by immediate (C4.1.95.21); SHL #0 of SSHLL/USHLL is objdump's SXTL/UXTL. */
const SHIFT: readonly Insn[] = [
  vecScalar("SSHR", 0, 0b00000),
  vecScalar("USHR", 1, 0b00000),
  vecScalar("SSRA", 0, 0b00010),
  vecScalar("USRA", 1, 0b00010),
  vecScalar("SRSHR", 0, 0b00100),
  vecScalar("URSHR", 1, 0b00100),
  vecScalar("SRSRA", 0, 0b00110),
  vecScalar("URSRA", 1, 0b00110),
  vecScalar("SRI", 1, 0b01000),
  vecScalar("SHL", 0, 0b01010),
  vecScalar("SLI", 1, 0b01010),
  vecScalar("SQSHLU", 1, 0b01100),
  vecScalar("SQSHL", 0, 0b01110, "immediate, "),
  vecScalar("UQSHL", 1, 0b01110, "immediate, "),
  vec2("SHRN", 0, 0b10000),
  vecScalar("SQSHRUN", 1, 0b10000, "", two("SQSHRUN")),
  vec2("RSHRN", 0, 0b10001),
  vecScalar("SQRSHRUN", 1, 0b10001, "", two("SQRSHRUN")),
  vecScalar("SQSHRN", 0, 0b10010, "", two("SQSHRN")),
  vecScalar("UQSHRN", 1, 0b10010, "", two("UQSHRN")),
  vecScalar("SQRSHRN", 0, 0b10011, "", two("SQRSHRN")),
  vecScalar("UQRSHRN", 1, 0b10011, "", two("UQRSHRN")),
  vec("SSHLL", 0, 0b10100, ["sshll2", "sxtl", "sxtl2"]),
  vec("USHLL", 1, 0b10100, ["ushll2", "uxtl", "uxtl2"]),
];

/** Vector x indexed element (C4.1.95.24); the scalar forms are the saturating doubling ones. */
const ELEM: readonly Insn[] = [
  vec("MLA (by element)", 1, 0b0000),
  vec2("SMLAL (by element)", 0, 0b0010),
  vec2("UMLAL (by element)", 1, 0b0010),
  vecScalar("SQDMLAL", 0, 0b0011, "by element, ", two("SQDMLAL")),
  vec("MLS (by element)", 1, 0b0100),
  vec2("SMLSL (by element)", 0, 0b0110),
  vec2("UMLSL (by element)", 1, 0b0110),
  vecScalar("SQDMLSL", 0, 0b0111, "by element, ", two("SQDMLSL")),
  vec("MUL (by element)", 0, 0b1000),
  vec2("SMULL (by element)", 0, 0b1010),
  vec2("UMULL (by element)", 1, 0b1010),
  vecScalar("SQDMULL", 0, 0b1011, "by element, ", two("SQDMULL")),
  vecScalar("SQDMULH", 0, 0b1100, "by element, "),
  vecScalar("SQRDMULH", 0, 0b1101, "by element, "),
];

const TABLE: Entry[] = [
  ...logicPatterns(),
  ...samePatterns(),
  ...forms(FMT.diff, (u, opcode, f, scalar) => diffDecode(u, opcode, f, scalar), DIFF),
  ...forms(FMT.misc, miscDecode, MISC),
  {
    name: "NOT",
    pattern: FMT.misc(false, 1, 0b00101, "00"),
    aliases: ["mvn"],
    decode: (f) => miscDecode(1, 0b00101, { ...f, size: 0 }, false),
  },
  {
    name: "RBIT (vector)",
    pattern: FMT.misc(false, 1, 0b00101, "01"),
    decode: (f) => miscDecode(1, 0b00101, { ...f, size: 1 }, false),
  },
  ...forms(FMT.across, (u, opcode, f) => acrossDecode(u, opcode, f), ACROSS),
  ...MOD_IMMS.map(([name, op, cmode, q, kind]) => ({
    name,
    pattern: MOD_IMM(q === undefined ? "q:1" : String(q), op, cmode),
    decode: modImm(kind, op, q),
  })),
  ...forms(FMT.shift, shiftDecode, SHIFT),
  ...forms(FMT.elem, elemDecode, ELEM),
  {
    name: "ADDP (scalar)",
    pattern: "01 0 11110 size:2 11000 11011 10 Rn:5 Rd:5",
    decode: addpScalarDecode,
  },
];

/** The AdvSIMD integer instructions, one pattern each, all of feature AdvSIMD. */
export const SIMD_INTEGER: Pattern[] = TABLE.map((p) => ({ ...p, feature: "AdvSIMD" }));
