/**
 * A64 "Loads and Stores" class (Arm ARM C4.1.88), integer and SIMD&FP register forms:
 * LDR/STR in every addressing mode, LDUR/STUR, LDTR/STTR, literal loads, PRFM/PRFUM,
 * LDP/STP/LDPSW/LDNP/STNP. Exclusives, acquire/release and the Armv8.1 LSE atomics live
 * in load-store-atomic.ts and are appended to this table. The SIMD structure loads
 * (LD1..LD4/ST1..ST4) are in simd-load-store.ts.
 *
 * The table is one pattern per instruction and addressing mode (Arm ARM C6.2/C7.2
 * headings); the shared formats (LIT, PAIR, the single-register modes of MODES) and the
 * instruction rows (SINGLES) are at the end of this file.
 *
 * CONSTRAINED UNPREDICTABLE choices follow qemu-aarch64 (checked with small programs):
 *  - load with writeback and Rn == Rt: the loaded value is written, then the writeback
 *    (the base register ends up holding the updated address);
 *  - store with writeback and Rn == Rt: the value stored is Rt before the writeback;
 *  - LDP with Rt == Rt2: the first element wins for X/W registers (Rt is written last),
 *    the second for SIMD&FP registers.
 */
import { Cpu } from "../cpu.ts";
import type { Exec, Fields, Pattern } from "../decoder.ts";
import { R64 } from "../ret64.ts";
import { add64, addImm, addrImm, aHi, aLo, type Elem, EXT, fpElem, gprElem } from "./load-store-access.ts";

/** What the access of a single-register instruction is, fixed by its size, V and opc bits. */
interface Kind {
  readonly elem: Elem;
  /** log2 of the access size (3 for PRFM): the scale of the offsets. */
  readonly size: number;
  readonly load: boolean;
  readonly prefetch: boolean;
  /** LDR/STR{B,H,} of a general-purpose register without sign extension: gprFast's forms. */
  readonly fast: boolean;
}

function gprKind(size: number, ext: number, load: boolean): Kind {
  return { elem: gprElem(size, ext), size, load, prefetch: false, fast: ext === EXT.ZERO };
}

const PREFETCH: Kind = { elem: gprElem(3, EXT.ZERO), size: 3, load: true, prefetch: true, fast: false };

/** SIMD&FP B/H/S/D (q = 0, size 0..3) or Q (q = 1, size 0; other sizes unallocated). */
function fpKind(size: number, q: number, load: boolean): Kind | null {
  const sizeLog = q === 0 ? size : size === 0 ? 4 : -1;
  if (sizeLog < 0) return null;
  return { elem: fpElem(sizeLog), size: sizeLog, load, prefetch: false, fast: false };
}

const nop: Exec = () => {};

/** Base register slot: -1 stands for the current SP (resolved at run time). */
function baseSlot(rn: number): number {
  return rn === 31 ? -1 : rn * 2;
}

/**
 * LDTR/STTR and their sized forms (Arm ARM C6.2, "unprivileged"): at EL1 the access is
 * checked with EL0's permissions; the access path switches back on any exception entry.
 */
function unprivileged(ex: Exec): Exec {
  return (c) => {
    c.setUnprivileged(true);
    ex(c);
    c.setUnprivileged(false);
  };
}

/** Writeback modes of the immediate forms. */
const WB = { NONE: 0, PRE: 1, POST: 2 } as const;

/** LDR/STR with an immediate offset: unsigned scaled, unscaled, pre/post-indexed, unprivileged. */
function immSingle(k: Kind, rt: number, rn: number, off: number, wb: number): Exec {
  const e = k.elem;
  const bi = baseSlot(rn);
  const fp = e.fp;
  if (k.load) {
    if (wb === WB.NONE)
      return (c) => {
        if (fp) c.checkFp();
        addrImm(c.r, bi < 0 ? c.sp : bi, off);
        e.ld(c, aLo, aHi, 0);
        e.put(c, rt, 0);
      };
    const post = wb === WB.POST;
    return (c) => {
      if (fp) c.checkFp();
      const r = c.r;
      const b = bi < 0 ? c.sp : bi;
      addrImm(r, b, off);
      const nlo = aLo;
      const nhi = aHi;
      if (post) e.ld(c, r[b]!, r[b + 1]!, 0);
      else e.ld(c, nlo, nhi, 0);
      e.put(c, rt, 0);
      r[b] = nlo;
      r[b + 1] = nhi;
    };
  }
  if (wb === WB.NONE)
    return (c) => {
      if (fp) c.checkFp();
      addrImm(c.r, bi < 0 ? c.sp : bi, off);
      e.st(c, aLo, aHi, rt);
    };
  const post = wb === WB.POST;
  return (c) => {
    if (fp) c.checkFp();
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    addrImm(r, b, off);
    const nlo = aLo;
    const nhi = aHi;
    if (post) e.st(c, r[b]!, r[b + 1]!, rt);
    else e.st(c, nlo, nhi, rt);
    r[b] = nlo;
    r[b + 1] = nhi;
  };
}

/**
 * LDR/STR (register): address = Xn|SP + (extend(Rm) << shift). option: 010 UXTW,
 * 011 LSL (UXTX), 110 SXTW, 111 SXTX; option<1> == 0 is unallocated.
 */
function regSingle(k: Kind, rt: number, rn: number, rm: number, option: number, shift: number): Exec | null {
  if ((option & 2) === 0) return null;
  if (k.prefetch) return nop;
  const e = k.elem;
  const bi = baseSlot(rn);
  const mi = Cpu.xr(rm);
  const fp = e.fp;
  const is64 = (option & 1) !== 0; // UXTX/SXTX use all of Xm
  const signed = (option & 4) !== 0;
  const load = k.load;
  return (c) => {
    if (fp) c.checkFp();
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    let olo = r[mi]!;
    let ohi = is64 ? r[mi + 1]! : signed ? (olo >> 31) >>> 0 : 0;
    if (shift !== 0) {
      ohi = ((ohi << shift) | (olo >>> (32 - shift))) >>> 0;
      olo = (olo << shift) >>> 0;
    }
    add64(r[b]!, r[b + 1]!, olo, ohi);
    if (load) {
      e.ld(c, aLo, aHi, 0);
      e.put(c, rt, 0);
    } else e.st(c, aLo, aHi, rt);
  };
}

/** Addressing of the fast GPR forms (gprFast). */
const AM = { IMM: 0, REG_LSL: 1, REG_UXTW: 2, REG_SXTW: 3 } as const;

/**
 * Address of a fast GPR load/store into aLo/aHi: base slot `bi` (-1 = SP) plus an
 * immediate `x` (AM.IMM) or register `mi` extended by `am` and shifted left by `x`.
 * One plain function, so that every executor's call to it is monomorphic and inlined.
 */
function fastAddress(c: Cpu, am: number, bi: number, mi: number, x: number): void {
  const r = c.r;
  const b = bi < 0 ? c.sp : bi;
  if (am === AM.IMM) {
    addrImm(r, b, x);
    return;
  }
  let olo = r[mi]!;
  let ohi = am === AM.REG_LSL ? r[mi + 1]! : am === AM.REG_SXTW ? (olo >> 31) >>> 0 : 0;
  if (x !== 0) {
    ohi = ((ohi << x) | (olo >>> (32 - x))) >>> 0;
    olo = (olo << x) >>> 0;
  }
  add64(r[b]!, r[b + 1]!, olo, ohi);
}

/**
 * LDR/STR{B,H,} of a general-purpose register without sign extension and without
 * writeback: the most frequent loads and stores, given executors of their own so that
 * their calls stay monomorphic (the generic path goes through Elem closures).
 */
function gprFast(
  load: boolean,
  size: number,
  rt: number,
  am: number,
  rn: number,
  mi: number,
  x: number,
): Exec {
  const bi = baseSlot(rn);
  const t = load ? Cpu.xw(rt) : Cpu.xr(rt);
  if (load) {
    switch (size) {
      case 0:
        return (c) => {
          fastAddress(c, am, bi, mi, x);
          const v = c.ld8(aLo, aHi);
          c.r[t] = v;
          c.r[t + 1] = 0;
        };
      case 1:
        return (c) => {
          fastAddress(c, am, bi, mi, x);
          const v = c.ld16(aLo, aHi);
          c.r[t] = v;
          c.r[t + 1] = 0;
        };
      case 2:
        return (c) => {
          fastAddress(c, am, bi, mi, x);
          const v = c.ld32(aLo, aHi);
          c.r[t] = v;
          c.r[t + 1] = 0;
        };
      default:
        return (c) => {
          fastAddress(c, am, bi, mi, x);
          c.ld64(aLo, aHi);
          c.r[t] = R64.lo;
          c.r[t + 1] = R64.hi;
        };
    }
  }
  switch (size) {
    case 0:
      return (c) => {
        fastAddress(c, am, bi, mi, x);
        c.st8(aLo, aHi, c.r[t]! & 0xff);
      };
    case 1:
      return (c) => {
        fastAddress(c, am, bi, mi, x);
        c.st16(aLo, aHi, c.r[t]! & 0xffff);
      };
    case 2:
      return (c) => {
        fastAddress(c, am, bi, mi, x);
        c.st32(aLo, aHi, c.r[t]!);
      };
    default:
      return (c) => {
        fastAddress(c, am, bi, mi, x);
        c.st64(aLo, aHi, c.r[t]!, c.r[t + 1]!);
      };
  }
}

/** LDR (literal), LDRSW (literal), LDR (literal, SIMD&FP): PC-relative, offset imm19 * 4. */
function literal(e: Elem, imm19: number, rt: number): Exec {
  const off = imm19 * 4;
  const fp = e.fp;
  return (c) => {
    if (fp) c.checkFp();
    addImm(c.pcLo, c.pcHi, off);
    e.ld(c, aLo, aHi, 0);
    e.put(c, rt, 0);
  };
}

/**
 * LDP/STP/LDPSW/LDNP/STNP of elements `e`, with writeback mode `wb`.
 * Both accesses happen before any register is written.
 */
function pair(e: Elem, wb: number, l: number, imm7: number, rt2: number, rn: number, rt: number): Exec {
  const bytes = e.bytes;
  const off = imm7 * bytes;
  const bi = baseSlot(rn);
  const fp = e.fp;
  const post = wb === WB.POST;
  if (l === 1)
    return (c) => {
      if (fp) c.checkFp();
      const r = c.r;
      const b = bi < 0 ? c.sp : bi;
      addrImm(r, b, off);
      const nlo = aLo;
      const nhi = aHi;
      const lo = post ? r[b]! : nlo;
      const hi = post ? r[b + 1]! : nhi;
      e.ld(c, lo, hi, 0);
      addImm(lo, hi, bytes);
      e.ld(c, aLo, aHi, 4);
      if (fp) {
        e.put(c, rt, 0);
        e.put(c, rt2, 4);
      } else {
        e.put(c, rt2, 4);
        e.put(c, rt, 0);
      }
      if (wb !== WB.NONE) {
        r[b] = nlo;
        r[b + 1] = nhi;
      }
    };
  return (c) => {
    if (fp) c.checkFp();
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    addrImm(r, b, off);
    const nlo = aLo;
    const nhi = aHi;
    const lo = post ? r[b]! : nlo;
    const hi = post ? r[b + 1]! : nhi;
    e.st(c, lo, hi, rt);
    addImm(lo, hi, bytes);
    e.st(c, aLo, aHi, rt2);
    if (wb !== WB.NONE) {
      r[b] = nlo;
      r[b + 1] = nhi;
    }
  };
}

// ---------------------------------------------------------------------------------------
// The table: one pattern per instruction and addressing mode.

/** Formats (decodetree's @...): the fields after the opcode bits of each family. */
const LIT = "imm19:s19 Rt:5";
const PAIR = "imm7:s7 Rt2:5 Rn:5 Rt:5";

const X = gprElem(3, EXT.ZERO);
const W = gprElem(2, EXT.ZERO);

/** LDR (literal) and friends: opc, V and what is loaded. */
const LITERALS: Pattern[] = [
  {
    name: "LDR (literal)",
    pattern: `0 sf:1 011 0 00 ${LIT}`,
    decode: (f) => literal(f.sf ? X : W, f.imm19!, f.Rt!),
  },
  {
    name: "LDRSW (literal)",
    pattern: `10 011 0 00 ${LIT}`,
    decode: (f) => literal(gprElem(2, EXT.SIGN64), f.imm19!, f.Rt!),
  },
  { name: "PRFM (literal)", pattern: `11 011 0 00 ${LIT}`, decode: () => nop },
  {
    name: "LDR (literal, SIMD&FP)",
    pattern: `opc:2 011 1 00 ${LIT}`,
    feature: "FP",
    decode: (f) => (f.opc === 3 ? null : literal(fpElem(f.opc! + 2), f.imm19!, f.Rt!)),
  },
];

/** Pair addressing modes: idx bits, the name's qualifier, writeback. */
const PAIR_MODES = [
  ["001", "post-index", WB.POST],
  ["011", "pre-index", WB.PRE],
  ["010", "signed offset", WB.NONE],
] as const;

/**
 * The pair instructions: name, the opc bits (with the sf or opc field of the element
 * size), V, L, and the element of each form (null: unallocated).
 */
const PAIRS: readonly (readonly [string, string, number, number, (f: Fields) => Elem | null])[] = [
  ["STP", "sf:1 0", 0, 0, (f) => (f.sf ? X : W)],
  ["LDP", "sf:1 0", 0, 1, (f) => (f.sf ? X : W)],
  ["LDPSW", "01", 0, 1, () => gprElem(2, EXT.SIGN64)],
  ["STP (SIMD&FP", "opc:2", 1, 0, (f) => (f.opc === 3 ? null : fpElem(f.opc! + 2))],
  ["LDP (SIMD&FP", "opc:2", 1, 1, (f) => (f.opc === 3 ? null : fpElem(f.opc! + 2))],
];

/** "STP (SIMD&FP" + ", post-index" + ")" or "STP" + " (post-index)". */
function qualified(name: string, q: string): string {
  return name.endsWith(")") || !name.includes("(") ? `${name} (${q})` : `${name}, ${q})`;
}

function pairPattern(
  name: string,
  opc: string,
  v: number,
  idx: string,
  l: number,
  wb: number,
  elem: (f: Fields) => Elem | null,
): Pattern {
  return {
    name,
    pattern: `${opc} 101 ${v} ${idx} ${l} ${PAIR}`,
    ...(v === 1 ? { feature: "FP" as const } : {}),
    decode: (f) => {
      const e = elem(f);
      return e === null ? null : pair(e, wb, l, f.imm7!, f.Rt2!, f.Rn!, f.Rt!);
    },
  };
}

const PAIR_PATTERNS: Pattern[] = PAIRS.flatMap(([name, opc, v, l, elem]) => {
  const out = PAIR_MODES.map(([idx, q, wb]) => pairPattern(qualified(name, q), opc, v, idx, l, wb, elem));
  // LDNP/STNP: the no-allocate hint of the signed-offset form (no LDPSW form).
  if (name !== "LDPSW") {
    const np = name.replace("P", "NP");
    out.push(pairPattern(np.includes("(") ? `${np})` : np, opc, v, "000", l, WB.NONE, elem));
  }
  return out;
});

/**
 * The single-register instructions (Arm ARM C4.1.88, "Load/store register"): name (of
 * the immediate/register forms), the size bits, V, the opc bits (fields: sz = size<0>,
 * opc0 = opc<0>, q = opc<1>) and the access, from the fields those bits leave open.
 */
interface Single {
  readonly name: string;
  readonly size: string;
  readonly v: number;
  readonly opc: string;
  readonly kind: (f: Fields) => Kind | null;
}

const STRB = gprKind(0, EXT.ZERO, false);
const LDRB = gprKind(0, EXT.ZERO, true);
const STRH = gprKind(1, EXT.ZERO, false);
const LDRH = gprKind(1, EXT.ZERO, true);
const LDRSW = gprKind(2, EXT.SIGN64, true);
const STR = [gprKind(2, EXT.ZERO, false), gprKind(3, EXT.ZERO, false)] as const;
const LDR = [gprKind(2, EXT.ZERO, true), gprKind(3, EXT.ZERO, true)] as const;
/** LDRSB/LDRSH: opc<0> = 0 sign-extends to X, 1 to W. */
const LDRSB = [gprKind(0, EXT.SIGN64, true), gprKind(0, EXT.SIGN32, true)] as const;
const LDRSH = [gprKind(1, EXT.SIGN64, true), gprKind(1, EXT.SIGN32, true)] as const;

const SINGLES: readonly Single[] = [
  { name: "STRB", size: "00", v: 0, opc: "00", kind: () => STRB },
  { name: "LDRB", size: "00", v: 0, opc: "01", kind: () => LDRB },
  { name: "LDRSB", size: "00", v: 0, opc: "1 opc0:1", kind: (f) => LDRSB[f.opc0!]! },
  { name: "STRH", size: "01", v: 0, opc: "00", kind: () => STRH },
  { name: "LDRH", size: "01", v: 0, opc: "01", kind: () => LDRH },
  { name: "LDRSH", size: "01", v: 0, opc: "1 opc0:1", kind: (f) => LDRSH[f.opc0!]! },
  { name: "STR", size: "1 sz:1", v: 0, opc: "00", kind: (f) => STR[f.sz!]! },
  { name: "LDR", size: "1 sz:1", v: 0, opc: "01", kind: (f) => LDR[f.sz!]! },
  { name: "LDRSW", size: "10", v: 0, opc: "10", kind: () => LDRSW },
  { name: "PRFM", size: "11", v: 0, opc: "10", kind: () => PREFETCH },
  { name: "STR", size: "size:2", v: 1, opc: "q:1 0", kind: (f) => fpKind(f.size!, f.q!, false) },
  { name: "LDR", size: "size:2", v: 1, opc: "q:1 1", kind: (f) => fpKind(f.size!, f.q!, true) },
];

/** The handler of one addressing mode, given the access. */
type ModeHandler = (k: Kind, f: Fields) => Exec | null;

/**
 * The single-register addressing modes: name (from the instruction's name and whether
 * it is SIMD&FP), bit 24 and the format of bits 21..0, the handler. PRFM has only the
 * unsigned-offset, register and unscaled forms; SIMD&FP has no unprivileged form.
 */
interface Mode {
  readonly name: (s: Single) => string | null;
  readonly u: number;
  readonly format: string;
  readonly handler: ModeHandler;
}

const simd = (s: Single): boolean => s.v === 1;
/** STRB -> STURB / STTRB, LDRSW -> LDURSW / LDTRSW. */
const infix = (s: Single, x: string): string => s.name.replace(/^(ST|LD)R/, `$1${x}R`);
const imm9 = (op: string): string => `0 imm9:s9 ${op} Rn:5 Rt:5`;

const MODES: readonly Mode[] = [
  {
    name: (s) =>
      s.name === "PRFM" ? null : `${s.name} (immediate, ${simd(s) ? "SIMD&FP, " : ""}post-index)`,
    u: 0,
    format: imm9("01"),
    handler: (k, f) => immSingle(k, f.Rt!, f.Rn!, f.imm9!, WB.POST),
  },
  {
    name: (s) => (s.name === "PRFM" ? null : `${s.name} (immediate, ${simd(s) ? "SIMD&FP, " : ""}pre-index)`),
    u: 0,
    format: imm9("11"),
    handler: (k, f) => immSingle(k, f.Rt!, f.Rn!, f.imm9!, WB.PRE),
  },
  {
    name: (s) =>
      s.name === "PRFM"
        ? "PRFM (immediate)"
        : `${s.name} (immediate, ${simd(s) ? "SIMD&FP, " : ""}unsigned offset)`,
    u: 1,
    format: "imm12:12 Rn:5 Rt:5",
    handler: (k, f) => {
      if (k.fast) return gprFast(k.load, k.size, f.Rt!, AM.IMM, f.Rn!, 0, f.imm12! << k.size);
      if (k.prefetch) return nop;
      return immSingle(k, f.Rt!, f.Rn!, f.imm12! * k.elem.bytes, WB.NONE);
    },
  },
  {
    name: (s) => `${s.name} (register${simd(s) ? ", SIMD&FP" : ""})`,
    u: 0,
    format: "1 Rm:5 option:3 S:1 10 Rn:5 Rt:5",
    handler: (k, f) => {
      // option 011 (LSL/UXTX) and 111 (SXTX) use all of Xm; 010 UXTW; 110 SXTW.
      const opt = f.option!;
      if (k.fast && (opt & 2) !== 0) {
        const am = (opt & 1) !== 0 ? AM.REG_LSL : (opt & 4) !== 0 ? AM.REG_SXTW : AM.REG_UXTW;
        return gprFast(k.load, k.size, f.Rt!, am, f.Rn!, Cpu.xr(f.Rm!), f.S! !== 0 ? k.size : 0);
      }
      return regSingle(k, f.Rt!, f.Rn!, f.Rm!, opt, f.S! !== 0 ? k.size : 0);
    },
  },
  {
    name: (s) => (s.name === "PRFM" ? "PRFUM" : simd(s) ? `${infix(s, "U")} (SIMD&FP)` : infix(s, "U")),
    u: 0,
    format: imm9("00"),
    handler: (k, f) => (k.prefetch ? nop : immSingle(k, f.Rt!, f.Rn!, f.imm9!, WB.NONE)),
  },
  {
    name: (s) => (s.name === "PRFM" || simd(s) ? null : infix(s, "T")),
    u: 0,
    format: imm9("10"),
    handler: (k, f) => unprivileged(immSingle(k, f.Rt!, f.Rn!, f.imm9!, WB.NONE)),
  },
];

const SINGLE_PATTERNS: Pattern[] = MODES.flatMap((m) =>
  SINGLES.flatMap((s): Pattern[] => {
    const name = m.name(s);
    if (name === null) return [];
    return [
      {
        name,
        pattern: `${s.size} 111 ${s.v} 0 ${m.u} ${s.opc} ${m.format}`,
        ...(simd(s) ? { feature: "FP" as const } : {}),
        decode: (f) => {
          const k = s.kind(f);
          return k === null ? null : m.handler(k, f);
        },
      },
    ];
  }),
);

/** The ordinary loads and stores; the exclusive, ordered and atomic ones are ATOMIC_PATTERNS (isa.ts). */
export const LOAD_STORE: Pattern[] = [...LITERALS, ...PAIR_PATTERNS, ...SINGLE_PATTERNS];
