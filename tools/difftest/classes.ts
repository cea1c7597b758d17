/**
 * Encoding templates of the difftest, as data: one list per instruction class, each
 * template a pattern in the decoder's syntax (fixed bits + named fields, bits 31..0)
 * taken from the Arm ARM encoding tables (DDI 0487, C4.1), plus optional constraints.
 *
 * Field conventions: Rd Rn Rm Ra Rt Rt2 Rs are general registers (0-30; 31 only where
 * `zr` lists the field, i.e. where 31 means XZR, never SP), Vd Vn Vm Va Vt Vt2 are
 * vector registers (0-31); every other field is uniform random unless `f` constrains it.
 * Unallocated combinations are generated on purpose: the reference then says SIGILL.
 */

import { type CaseState, CODE } from "./layout.ts";
import type { Rng } from "./prng.ts";

export type Fields = Record<string, number>;
export type FieldGen = readonly number[] | ((g: Rng, f: Fields) => number);

/** How a load/store forms its address, so the generator can aim it into the window. */
export interface AddrSpec {
  /** Field holding the base register. */
  base: string;
  /** Bytes added to the base before the access (0 for post-index). */
  off: number;
  /** Bytes accessed from the address. */
  size: number;
  /** Natural alignment (the address is aligned with probability alignBias). */
  align: number;
  alignBias?: number;
  index?: { field: string; kind: "uxtw" | "sxtw" | "lsl"; shift: number };
  /** Other register fields that must not alias data registers (e.g. post-index Rm). */
  extra?: string[];
  /** PC-relative (literal) form: this offset field (in words) is aimed at the window. */
  pcrel?: string;
}

export interface Tmpl {
  /** Name (Arm ARM mnemonic or group), for reports. */
  n: string;
  p: string;
  f?: Record<string, FieldGen>;
  zr?: readonly string[] | ((f: Fields) => readonly string[]);
  addr?: (f: Fields) => AddrSpec | null;
  /** Register fields naming a pair (Rn, Rn+1): both must avoid address registers. */
  pairRegs?: readonly string[];
  /** Whether the (non-register) fields form an allocated encoding. */
  ok?: (f: Fields) => boolean;
  /** Encodings never generated, not even as unallocated ones (e.g. allocated on the
   * reference CPU only through a feature we do not implement). */
  never?: (f: Fields) => boolean;
  /** Every encoding of the template is unallocated on the reference (features it lacks). */
  unallocated?: boolean;
  /** Adjusts the initial state once registers are known (winOff: where the access lands, or -1). */
  fix?: (g: Rng, f: Fields, state: CaseState, winOff: number) => void;
  /** Relative weight within the class (default 1). */
  w?: number;
}

export interface ClassSpec {
  t: readonly Tmpl[];
  minLen?: number;
  maxLen?: number;
  /** Share of V registers filled with FP lanes. */
  fpBias?: number;
  /** Registers within one instruction are distinct (load/store: avoids UNPREDICTABLE). */
  distinct?: boolean;
  /** Share of instructions drawn as unallocated encodings (default 0.025). */
  invalidShare?: number;
  /** Whole-sequence generator for classes that need more than templates. */
  custom?: (g: Rng, state: CaseState) => number[];
}

const ALL = ["Rd", "Rn", "Rm", "Ra"] as const;
/** Mostly the valid value `v`, sometimes anything (to reach unallocated encodings). */
const mostly =
  (v: number, p = 0.9) =>
  (g: Rng, _f: Fields): number =>
    g.chance(p) ? v : g.u32();

// ---------------------------------------------------------------------------------------
// Data processing, immediate (C4.1.86)

/** imm6/imms-style fields must be < 32 in the 32-bit forms. */
const fits = (f: Fields, ...names: string[]): boolean => f.sf === 1 || names.every((n) => f[n]! < 32);
/** DecodeBitMasks(immediate = TRUE) accepts N:imms (Arm ARM J1.1.3.41). */
function logicalImmOk(f: Fields): boolean {
  if (!f.sf && f.N) return false;
  const combined = (f.N! << 6) | (~f.imms! & 0x3f);
  if (combined === 0) return false;
  const len = 31 - Math.clz32(combined);
  if (len < 1) return false;
  const levels = (1 << len) - 1;
  return (f.imms! & levels) !== levels;
}

const DP_IMM: Tmpl[] = [
  { n: "ADR/ADRP", p: "op:1 immlo:2 10000 immhi:19 Rd:5", zr: ["Rd"] },
  // Rn = 31 is SP: never generated; Rd = 31 is XZR only for the flag-setting forms.
  {
    n: "ADD/SUB(S) imm",
    p: "sf:1 op:1 S:1 100010 sh:1 imm12:12 Rn:5 Rd:5",
    zr: (f) => (f.S ? ["Rd"] : []),
    w: 3,
  },
  {
    n: "AND/ORR/EOR/ANDS imm",
    p: "sf:1 opc:2 100100 N:1 immr:6 imms:6 Rn:5 Rd:5",
    ok: logicalImmOk,
    zr: (f) => (f.opc === 3 ? ["Rd", "Rn"] : ["Rn"]),
    w: 3,
  },
  {
    n: "MOVN/MOVZ/MOVK",
    p: "sf:1 opc:2 100101 hw:2 imm16:16 Rd:5",
    ok: (f) => f.opc !== 1 && (f.sf === 1 || f.hw! < 2),
    zr: ["Rd"],
    w: 2,
  },
  {
    n: "SBFM/BFM/UBFM",
    p: "sf:1 opc:2 100110 N:1 immr:6 imms:6 Rn:5 Rd:5",
    ok: (f) => f.opc !== 3 && f.N === f.sf && fits(f, "immr", "imms"),
    zr: ["Rd", "Rn"],
    w: 4,
  },
  {
    n: "EXTR",
    p: "sf:1 op21:2 100111 N:1 o0:1 Rm:5 imms:6 Rn:5 Rd:5",
    f: { op21: mostly(0), o0: mostly(0) },
    ok: (f) => f.op21 === 0 && f.o0 === 0 && f.N === f.sf && fits(f, "imms"),
    zr: ["Rd", "Rn", "Rm"],
  },
];

// ---------------------------------------------------------------------------------------
// Data processing, register (C4.1.87)

const DP_REG: Tmpl[] = [
  {
    n: "ADD/SUB(S) shifted",
    p: "sf:1 op:1 S:1 01011 shift:2 0 Rm:5 imm6:6 Rn:5 Rd:5",
    ok: (f) => f.shift !== 3 && fits(f, "imm6"),
    zr: ALL,
    w: 3,
  },
  {
    // Rn and Rd (non-S) = 31 mean SP here: not generated.
    n: "ADD/SUB(S) extended",
    p: "sf:1 op:1 S:1 01011 opt:2 1 Rm:5 option:3 imm3:3 Rn:5 Rd:5",
    f: { opt: mostly(0) },
    ok: (f) => f.opt === 0 && f.imm3! <= 4,
    zr: (f) => (f.S ? ["Rd", "Rm"] : ["Rm"]),
    w: 3,
  },
  {
    n: "AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS shifted",
    p: "sf:1 opc:2 01010 shift:2 N:1 Rm:5 imm6:6 Rn:5 Rd:5",
    ok: (f) => fits(f, "imm6"),
    zr: ALL,
    w: 3,
  },
  {
    n: "ADC/ADCS/SBC/SBCS",
    p: "sf:1 op:1 S:1 11010000 Rm:5 op2:6 Rn:5 Rd:5",
    f: { op2: mostly(0) },
    ok: (f) => f.op2 === 0,
    zr: ALL,
    w: 2,
  },
  {
    n: "CCMN/CCMP reg",
    p: "sf:1 op:1 S:1 11010010 Rm:5 cond:4 0 o2:1 Rn:5 o3:1 nzcv:4",
    f: { S: mostly(1), o2: mostly(0), o3: mostly(0) },
    ok: (f) => f.S === 1 && f.o2 === 0 && f.o3 === 0,
    zr: ALL,
    w: 2,
  },
  {
    n: "CCMN/CCMP imm",
    p: "sf:1 op:1 S:1 11010010 imm5:5 cond:4 1 o2:1 Rn:5 o3:1 nzcv:4",
    f: { S: mostly(1), o2: mostly(0), o3: mostly(0) },
    ok: (f) => f.S === 1 && f.o2 === 0 && f.o3 === 0,
    zr: ALL,
    w: 2,
  },
  {
    n: "CSEL/CSINC/CSINV/CSNEG",
    p: "sf:1 op:1 S:1 11010100 Rm:5 cond:4 0 o2:1 Rn:5 Rd:5",
    f: { S: mostly(0) },
    ok: (f) => f.S === 0,
    zr: ALL,
    w: 3,
  },
  {
    n: "MADD/MSUB/SMADDL/SMSUBL/SMULH/UMADDL/UMSUBL/UMULH",
    p: "sf:1 op54:2 11011 op31:3 Rm:5 o0:1 Ra:5 Rn:5 Rd:5",
    ok: (f) =>
      f.op54 === 0 &&
      (f.op31 === 0 ||
        (f.sf === 1 && [1, 5].includes(f.op31!)) ||
        (f.sf === 1 && [2, 6].includes(f.op31!) && f.o0 === 0)),
    // SMULH/UMULH: Ra is should-be-one.
    f: { op54: mostly(0), Ra: (g, f) => ((f.op31 === 2 || f.op31 === 6) && g.chance(0.95) ? 31 : g.int(32)) },
    zr: ALL,
    w: 4,
  },
  {
    n: "UDIV/SDIV/LSLV/LSRV/ASRV/RORV/CRC32*",
    p: "sf:1 0 S:1 11010110 Rm:5 opcode:6 Rn:5 Rd:5",
    f: {
      S: mostly(0),
      opcode: (g) =>
        g.chance(0.9) ? g.pick([2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23]) : g.bits(6),
    },
    ok: (f) =>
      f.S === 0 &&
      ([2, 3, 8, 9, 10, 11].includes(f.opcode!) ||
        (f.opcode! >= 16 && f.opcode! < 24 && ((f.opcode! & 3) === 3) === (f.sf === 1))),
    zr: ALL,
    w: 4,
  },
  {
    n: "RBIT/REV16/REV32/REV/CLZ/CLS",
    p: "sf:1 1 S:1 11010110 opcode2:5 opcode:6 Rn:5 Rd:5",
    f: { S: mostly(0), opcode2: mostly(0), opcode: (g) => (g.chance(0.9) ? g.int(6) : g.bits(6)) },
    ok: (f) => f.S === 0 && f.opcode2 === 0 && f.opcode! < 6 && (f.opcode !== 3 || f.sf === 1),
    zr: ALL,
    w: 3,
  },
];

// ---------------------------------------------------------------------------------------
// Branches (C4.1.85): forward only, inside the sequence, mixed with marker instructions

/** Branches; the offset field is fixed up by branchSequence. */
const BRANCHES: Tmpl[] = [
  { n: "B.cond", p: "0101010 o1:1 imm19:19 o0:1 cond:4", ok: (f) => f.o1 === 0 && f.o0 === 0, w: 4 },
  { n: "CBZ/CBNZ", p: "sf:1 011010 op:1 imm19:19 Rt:5", zr: ["Rt"], w: 3 },
  { n: "TBZ/TBNZ", p: "b5:1 011011 op:1 b40:5 imm14:14 Rt:5", zr: ["Rt"], w: 3 },
  { n: "B/BL", p: "op:1 00101 imm26:26", w: 2 },
  // BR/BLR/RET Xn (the register is set to the target's absolute address)
  {
    n: "BR/BLR/RET",
    p: "1101011 opc:4 op2:5 op3:6 Rn:5 op4:5",
    f: { opc: [0, 1, 2], op2: [31], op3: [0], op4: [0] },
    w: 2,
  },
];

/** Marker instructions between branches: their results show which path was taken. */
const MARKERS: Tmpl[] = [
  { n: "ADD imm", p: "sf:1 0 S:1 100010 sh:1 imm12:12 Rn:5 Rd:5", zr: (f) => (f.S ? ["Rd"] : []) },
  {
    n: "MOVZ/MOVK",
    p: "sf:1 opc:2 100101 hw:2 imm16:16 Rd:5",
    ok: (f) => f.opc !== 1 && (f.sf === 1 || f.hw! < 2),
    zr: ["Rd"],
  },
  { n: "SUBS/ADDS shifted", p: "sf:1 op:1 1 01011 00 0 Rm:5 000000 Rn:5 Rd:5", zr: ["Rd", "Rn", "Rm"] },
  { n: "CSINC", p: "sf:1 0 0 11010100 Rm:5 cond:4 0 1 Rn:5 Rd:5", zr: ["Rd", "Rn", "Rm"] },
];

const NOP: Tmpl = { n: "NOP", p: "11010101000000110010000000011111" };

/** Fixes up branch offsets so every branch goes forward inside the sequence (or to its end). */
export interface BranchHooks {
  fill(g: Rng, t: Tmpl): { t: Tmpl; f: Fields };
  assign(g: Rng, slots: { t: Tmpl; f: Fields }[], spec: ClassSpec, state: CaseState): void;
  encode(t: Tmpl, f: Fields): number;
  seq(g: Rng, spec: ClassSpec, state: CaseState): number[];
}
let hooks: BranchHooks | null = null;
export function setHooks(h: BranchHooks): void {
  hooks = h;
}

function branchSequence(g: Rng, state: CaseState): number[] {
  const h = hooks!;
  const n = g.range(2, 8);
  const slots: { t: Tmpl; f: Fields }[] = [];
  for (let i = 0; i < n; i++) {
    const isBranch = i < n - 1 && g.chance(0.45);
    slots.push(h.fill(g, pickW(g, isBranch ? BRANCHES : MARKERS)));
  }
  const spec: ClassSpec = { t: [] };
  h.assign(g, slots, spec, state);
  // A register branch's target register is one that no other instruction of the sequence
  // names at all (so no marker overwrites it and no CBZ/TBZ set-up clears it), that no
  // other register branch uses, and not X30 (which BL/BLR write). Without one, the
  // register branch is dropped (replaced by a marker).
  const named = new Set<number>([30]);
  for (const s of slots) {
    if (s.t.n === "BR/BLR/RET") continue;
    for (const k of ["Rd", "Rn", "Rm", "Rt"]) if (s.f[k] !== undefined) named.add(s.f[k]!);
  }
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    if (s.t.n !== "BR/BLR/RET") continue;
    let r = g.int(30);
    for (let k = 0; k < 30 && named.has(r); k++) r = (r + 1) % 30;
    if (named.has(r)) {
      slots[i] = { t: NOP, f: {} };
      continue;
    }
    s.f.Rn = r;
    named.add(r);
  }
  // Branch targets: forward, inside the sequence or its end.
  slots.forEach((s, i) => {
    const target = g.range(i + 1, n); // n = the end of the sequence
    const off = target - i;
    const f = s.f;
    if ("imm19" in f) f.imm19 = off;
    else if ("imm14" in f) f.imm14 = off;
    else if ("imm26" in f) f.imm26 = off;
    else if (s.t.n === "BR/BLR/RET") {
      const a = CODE + 4 * target;
      state.x[2 * f.Rn!] = a >>> 0;
      state.x[2 * f.Rn! + 1] = 0;
    }
    if (s.t.n === "CBZ/CBNZ" || s.t.n === "TBZ/TBNZ") {
      // make the tested register/bit zero half of the time
      const r = f.Rt!;
      if (r !== 31 && g.chance(0.4)) {
        if (s.t.n === "CBZ/CBNZ") {
          state.x[2 * r] = 0;
          if (f.sf || g.chance(0.5)) state.x[2 * r + 1] = 0;
        }
      }
    }
  });
  return slots.map((s) => h.encode(s.t, s.f));
}

function pickW(g: Rng, ts: readonly Tmpl[]): Tmpl {
  let total = 0;
  for (const t of ts) total += t.w ?? 1;
  let x = g.int(total);
  for (const t of ts) {
    x -= t.w ?? 1;
    if (x < 0) return t;
  }
  return ts[ts.length - 1]!;
}

// ---------------------------------------------------------------------------------------
// Loads and stores, general registers (C4.1.88)

const sx = (v: number, bits: number): number => (v >= 2 ** (bits - 1) ? v - 2 ** bits : v);
/** Access size of LDR/STR (register) forms: size:opc (opc<1> = 1 means sign-extending). */
const ldrOk = (f: Fields): boolean => !(f.size === 3 && f.opc! >= 2) && !(f.size === 2 && f.opc === 3);
/** Unscaled/pre/post forms: size 3 with opc 2 is PRFUM only for op = 00. */
const ldurOk = (f: Fields): boolean => ldrOk(f) || (f.size === 3 && f.opc === 2 && f.op === 0);

const LDST: Tmpl[] = [
  {
    n: "LDR/STR/LDRS*/PRFM (unsigned imm)",
    p: "size:2 111 0 01 opc:2 imm12:12 Rn:5 Rt:5",
    f: { imm12: (g) => (g.chance(0.7) ? g.int(64) : g.bits(12)) },
    ok: (f) => ldrOk(f) || (f.size === 3 && f.opc === 2),
    addr: (f) => ({ base: "Rn", off: f.imm12! << f.size!, size: 1 << f.size!, align: 1 << f.size! }),
    zr: ["Rt"],
    w: 4,
  },
  {
    n: "LDUR/STUR, post/pre-index, LDTR/STTR",
    p: "size:2 111 0 00 opc:2 0 imm9:9 op:2 Rn:5 Rt:5",
    ok: ldurOk,
    addr: (f) => ({
      base: "Rn",
      off: f.op === 1 ? 0 : sx(f.imm9!, 9),
      size: 1 << f.size!,
      align: 1 << f.size!,
    }),
    zr: ["Rt"],
    w: 5,
  },
  {
    n: "LDR/STR (register offset)",
    p: "size:2 111 0 00 opc:2 1 Rm:5 option:3 S:1 10 Rn:5 Rt:5",
    f: { option: (g) => (g.chance(0.95) ? g.pick([2, 3, 6, 7]) : g.bits(3)) },
    ok: (f) => (ldrOk(f) || (f.size === 3 && f.opc === 2)) && (f.option! & 2) !== 0,
    addr: (f) => ({
      base: "Rn",
      off: 0,
      size: 1 << f.size!,
      align: 1 << f.size!,
      index: {
        field: "Rm",
        kind: f.option === 2 ? "uxtw" : f.option === 6 ? "sxtw" : "lsl",
        shift: f.S ? f.size! : 0,
      },
    }),
    zr: ["Rt"],
    w: 4,
  },
  {
    n: "LDP/STP/LDNP/STNP/LDPSW",
    p: "opc:2 101 0 mode:3 L:1 imm7:7 Rt2:5 Rn:5 Rt:5",
    f: {
      opc: (g) => (g.chance(0.95) ? g.pick([0, 1, 2]) : 3),
      mode: (g) => (g.chance(0.95) ? g.int(4) : g.bits(3)),
    },
    ok: (f) => f.opc !== 3 && f.mode! < 4 && !(f.opc === 1 && (f.L === 0 || f.mode === 0)),
    addr: (f) => {
      const scale = f.opc === 2 ? 8 : 4;
      return { base: "Rn", off: f.mode === 1 ? 0 : sx(f.imm7!, 7) * scale, size: 2 * scale, align: scale };
    },
    zr: ["Rt", "Rt2"],
    w: 4,
  },
  {
    n: "LDR (literal)/LDRSW/PRFM literal",
    p: "opc:2 011 0 00 imm19:19 Rt:5",
    addr: (f) => ({
      base: "",
      pcrel: "imm19",
      off: 0,
      size: f.opc === 1 ? 8 : 4,
      align: f.opc === 1 ? 8 : 4,
    }),
    zr: ["Rt"],
  },
  {
    // o2:o1 = 00 exclusive, 10 acquire/release (01 pair exclusive; 11 is CAS: lse class)
    n: "LDXR/STXR/LDAXR/STLXR/LDXP/STXP/LDAR/STLR",
    p: "size:2 001000 o2:1 L:1 o1:1 Rs:5 o0:1 Rt2:5 Rn:5 Rt:5",
    f: {
      o1: (g, f) => (f.o2 ? 0 : g.chance(0.3) ? 1 : 0),
      o0: (g, f) => (f.o2 ? (g.chance(0.95) ? 1 : 0) : g.bits(1)),
      Rs: (g, f) => (f.L && g.chance(0.95) ? 31 : g.int(31)),
      Rt2: (g, f) => (!f.o1 && g.chance(0.95) ? 31 : g.int(31)),
    },
    ok: (f) => !(f.o1 === 1 && f.size! < 2),
    addr: (f) => {
      const sz = (1 << f.size!) * (f.o1 ? 2 : 1);
      // QEMU checks a store-exclusive's monitor before its alignment (the Arm ARM faults
      // first): unaligned store-exclusives are not generated.
      return { base: "Rn", off: 0, size: sz, align: sz, alignBias: f.o2 || f.L ? 0.92 : 1 };
    },
    zr: ["Rt", "Rt2"],
    w: 3,
  },
];

/** Exclusive load then store to the same address: the store can succeed. */
function exclusivePair(g: Rng, state: CaseState): number[] {
  const size = g.int(4);
  const pair = size >= 2 && g.chance(0.3);
  const acq = g.bits(1);
  const rel = g.bits(1);
  const regs: number[] = [];
  while (regs.length < 6) {
    const r = g.chance(0.5) ? g.int(8) : g.int(31);
    if (!regs.includes(r)) regs.push(r);
  }
  const [n, t1, t2, s, u1, u2] = regs as [number, number, number, number, number, number];
  const o1 = pair ? 1 : 0;
  const ld =
    ((size << 30) |
      (0b001000 << 24) |
      (1 << 22) |
      (o1 << 21) |
      (31 << 16) |
      (acq << 15) |
      ((pair ? t2 : 31) << 10) |
      (n << 5) |
      t1) >>>
    0;
  const st =
    ((size << 30) |
      (0b001000 << 24) |
      (o1 << 21) |
      (s << 16) |
      (rel << 15) |
      ((pair ? u2 : 31) << 10) |
      (n << 5) |
      u1) >>>
    0;
  const bytes = (1 << size) * (pair ? 2 : 1);
  let slot = g.int(4096 - bytes + 1);
  slot -= slot % bytes;
  state.x[2 * n] = (WINDOW_ADDR + slot) >>> 0;
  state.x[2 * n + 1] = 0;
  const words = [ld];
  const k = g.int(10);
  if (k === 0)
    words.push(0xd503305f); // CLREX: the store must fail
  else if (k === 1) words.push((0x8b000000 | (t1 << 16) | (t1 << 5) | u1) >>> 0); // ADD u1, t1, t1
  words.push(st);
  if (g.chance(0.3)) words.push(g.chance(0.5) ? st : ld);
  return words;
}

const WINDOW_ADDR = CODE + 0x800;

/** CAS: half of the time the compare value equals memory, so the swap happens. */
function casFix(sizeOf: (f: Fields) => number, pair: boolean) {
  return (g: Rng, f: Fields, state: CaseState, off: number): void => {
    if (off < 0 || !g.chance(0.5)) return;
    const bytes = sizeOf(f);
    const s = f.Rs!;
    for (let k = 0; k < (pair ? 2 : 1); k++) {
      const r = (s + k) % 32;
      if (r === 31) continue;
      const o = off + k * bytes;
      const rd = (i: number): number => (i < bytes ? state.mem[o + i]! : 0);
      const lo = (rd(0) | (rd(1) << 8) | (rd(2) << 16) | (rd(3) << 24)) >>> 0;
      const hi = (rd(4) | (rd(5) << 8) | (rd(6) << 16) | (rd(7) << 24)) >>> 0;
      state.x[2 * r] = lo;
      if (bytes === 8 || g.chance(0.5)) state.x[2 * r + 1] = hi;
    }
  };
}

const LSE: Tmpl[] = [
  {
    n: "CAS/CASA/CASL/CASAL(B/H)",
    p: "size:2 001000 1 L:1 1 Rs:5 o0:1 Rt2:5 Rn:5 Rt:5",
    f: { Rt2: (g) => (g.chance(0.98) ? 31 : g.int(31)) },
    addr: (f) => ({ base: "Rn", off: 0, size: 1 << f.size!, align: 1 << f.size!, alignBias: 0.96 }),
    fix: casFix((f) => 1 << f.size!, false),
    zr: ["Rs", "Rt"],
    w: 3,
  },
  {
    n: "CASP/CASPA/CASPL/CASPAL",
    p: "0 sz:1 001000 0 L:1 1 Rs:5 o0:1 Rt2:5 Rn:5 Rt:5",
    f: {
      Rt2: (g) => (g.chance(0.98) ? 31 : g.int(31)),
      Rs: (g) => (g.chance(0.95) ? 2 * g.int(15) : g.int(31)),
      Rt: (g) => (g.chance(0.95) ? 2 * g.int(15) : g.int(31)),
    },
    addr: (f) => ({ base: "Rn", off: 0, size: f.sz ? 16 : 8, align: f.sz ? 16 : 8, alignBias: 0.96 }),
    fix: casFix((f) => (f.sz ? 8 : 4), true),
    pairRegs: ["Rs", "Rt"],
    w: 2,
  },
  {
    n: "LDADD/LDCLR/LDEOR/LDSET/LDSMAX/LDSMIN/LDUMAX/LDUMIN/SWP (+A/L/B/H)",
    p: "size:2 111 0 00 A:1 R:1 1 Rs:5 o3:1 opc:3 00 Rn:5 Rt:5",
    f: { o3: (g) => (g.chance(0.2) ? 1 : 0), opc: (g, f) => (f.o3 && g.chance(0.95) ? 0 : g.bits(3)) },
    ok: (f) => f.o3 === 0 || f.opc === 0,
    addr: (f) => ({ base: "Rn", off: 0, size: 1 << f.size!, align: 1 << f.size!, alignBias: 0.96 }),
    zr: ["Rs", "Rt"],
    w: 6,
  },
];

// ---------------------------------------------------------------------------------------
// Scalar floating point (C4.1.96-C4.1.103). ftype 3 (half) is FEAT_FP16: unallocated on the
// reference cortex-a57, so it stays in the small unfiltered share.

const ft = (g: Rng): number => (g.chance(0.97) ? g.int(2) : g.bits(2));
const FP: Tmpl[] = [
  {
    n: "FMUL/FDIV/FADD/FSUB/FMAX/FMIN/FMAXNM/FMINNM/FNMUL",
    p: "M:1 0 S:1 11110 ftype:2 1 Vm:5 opcode:4 10 Vn:5 Vd:5",
    f: { M: mostly(0), S: mostly(0), ftype: ft },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype! < 2 && f.opcode! <= 8,
    w: 6,
  },
  {
    n: "FMADD/FMSUB/FNMADD/FNMSUB",
    p: "M:1 0 S:1 11111 ftype:2 o1:1 Vm:5 o0:1 Va:5 Vn:5 Vd:5",
    f: { M: mostly(0), S: mostly(0), ftype: ft },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype! < 2,
    w: 4,
  },
  {
    n: "FMOV/FABS/FNEG/FSQRT (register)",
    p: "M:1 0 S:1 11110 ftype:2 1 0000 opc:2 10000 Vn:5 Vd:5",
    f: { M: mostly(0), S: mostly(0), ftype: ft },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype! < 2,
    w: 4,
  },
  {
    // opc: the destination precision (0 single, 1 double, 3 half); ftype: the source.
    n: "FCVT (between single, double and half)",
    p: "M:1 0 S:1 11110 ftype:2 1 0001 opc:2 10000 Vn:5 Vd:5",
    f: { M: mostly(0), S: mostly(0) },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype !== 2 && f.opc !== 2 && f.opc !== f.ftype,
    w: 4,
  },
  {
    n: "FRINTN/P/M/Z/A/X/I",
    p: "M:1 0 S:1 11110 ftype:2 1 001 rm:3 10000 Vn:5 Vd:5",
    f: { M: mostly(0), S: mostly(0), ftype: ft },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype! < 2 && f.rm !== 5,
    w: 5,
  },
  {
    n: "FCMP/FCMPE",
    p: "M:1 0 S:1 11110 ftype:2 1 Vm:5 op:2 1000 Vn:5 opcode2:5",
    f: {
      M: mostly(0),
      S: mostly(0),
      ftype: ft,
      op: mostly(0),
      opcode2: (g) => (g.chance(0.95) ? g.pick([0, 8, 16, 24]) : g.bits(5)),
      Vm: (g) => (g.chance(0.3) ? 0 : g.int(32)),
    },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype! < 2 && f.op === 0 && (f.opcode2! & 7) === 0,
    w: 3,
  },
  {
    n: "FCCMP/FCCMPE",
    p: "M:1 0 S:1 11110 ftype:2 1 Vm:5 cond:4 01 Vn:5 op:1 nzcv:4",
    f: { M: mostly(0), S: mostly(0), ftype: ft },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype! < 2,
    w: 2,
  },
  {
    n: "FCSEL",
    p: "M:1 0 S:1 11110 ftype:2 1 Vm:5 cond:4 11 Vn:5 Vd:5",
    f: { M: mostly(0), S: mostly(0), ftype: ft },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype! < 2,
  },
  {
    n: "FMOV (scalar, immediate)",
    p: "M:1 0 S:1 11110 ftype:2 1 imm8:8 100 imm5:5 Vd:5",
    f: { M: mostly(0), S: mostly(0), ftype: ft, imm5: mostly(0) },
    ok: (f) => f.M === 0 && f.S === 0 && f.ftype! < 2 && f.imm5 === 0,
  },
  {
    n: "FCVT[NPMZA][SU]/FMOV to general",
    p: "sf:1 0 S:1 11110 ftype:2 1 rmode:2 opcode:3 000000 Vn:5 Rd:5",
    f: {
      S: mostly(0),
      ftype: (g) => (g.chance(0.95) ? g.int(3) : 3),
      opcode: (g) => (g.chance(0.9) ? g.pick([0, 1, 4, 5, 6]) : g.bits(3)),
    },
    ok: (f) => {
      if (f.S) return false;
      const o = f.opcode!;
      if (o === 6)
        return (f.rmode === 0 && f.ftype === f.sf) || (f.sf === 1 && f.ftype === 2 && f.rmode === 1);
      if (f.ftype! > 1) return false;
      if (o <= 1) return true;
      return (o === 4 || o === 5) && f.rmode === 0;
    },
    zr: ["Rd"],
    w: 5,
  },
  {
    n: "SCVTF/UCVTF/FMOV from general",
    p: "sf:1 0 S:1 11110 ftype:2 1 rmode:2 opcode:3 000000 Rn:5 Vd:5",
    f: {
      S: mostly(0),
      ftype: (g) => (g.chance(0.95) ? g.int(3) : 3),
      rmode: mostly(0, 0.8),
      opcode: (g) => (g.chance(0.9) ? g.pick([2, 3, 7]) : g.bits(3)),
    },
    ok: (f) => {
      if (f.S) return false;
      const o = f.opcode!;
      if (o === 7)
        return (f.rmode === 0 && f.ftype === f.sf) || (f.sf === 1 && f.ftype === 2 && f.rmode === 1);
      return (o === 2 || o === 3) && f.rmode === 0 && f.ftype! < 2;
    },
    zr: ["Rn"],
    w: 4,
  },
  {
    // FMOV Wd,Sn / Xd,Dn / Xd,Vn.D[1] (op = 0) and Sd,Wn / Dd,Xn / Vd.D[1],Xn (op = 1)
    n: "FMOV (general, incl. top half) to general",
    p: "sf:1 0 S:1 11110 ftype:2 1 rmode:2 11 0 000000 Vn:5 Rd:5",
    f: { S: mostly(0), ftype: (g) => g.pick([0, 1, 2, 2]), rmode: (_g, f) => (f.ftype === 2 ? 1 : 0) },
    ok: (f) =>
      f.S === 0 && ((f.rmode === 0 && f.ftype === f.sf) || (f.sf === 1 && f.ftype === 2 && f.rmode === 1)),
    zr: ["Rd"],
    w: 2,
  },
  {
    n: "FMOV (general, incl. top half) from general",
    p: "sf:1 0 S:1 11110 ftype:2 1 rmode:2 11 1 000000 Rn:5 Vd:5",
    f: { S: mostly(0), ftype: (g) => g.pick([0, 1, 2, 2]), rmode: (_g, f) => (f.ftype === 2 ? 1 : 0) },
    ok: (f) =>
      f.S === 0 && ((f.rmode === 0 && f.ftype === f.sf) || (f.sf === 1 && f.ftype === 2 && f.rmode === 1)),
    zr: ["Rn"],
    w: 2,
  },
  {
    n: "FCVTZS/FCVTZU/SCVTF/UCVTF (fixed-point)",
    p: "sf:1 0 S:1 11110 ftype:2 0 rmode:2 opcode:3 scale:6 Vn:5 Rd:5",
    f: {
      S: mostly(0),
      ftype: ft,
      rmode: mostly(3),
      opcode: (g) => (g.chance(0.95) ? g.int(2) : g.bits(3)),
      scale: (g, f) => (f.sf ? g.bits(6) : 32 + g.bits(5)),
    },
    ok: (f) => f.S === 0 && f.ftype! < 2 && f.rmode === 3 && f.opcode! < 2 && (f.sf === 1 || f.scale! >= 32),
    zr: ["Rd"],
    w: 2,
  },
  {
    n: "SCVTF/UCVTF (fixed-point)",
    p: "sf:1 0 S:1 11110 ftype:2 0 rmode:2 opcode:3 scale:6 Rn:5 Vd:5",
    f: {
      S: mostly(0),
      ftype: ft,
      rmode: mostly(0),
      opcode: (g) => (g.chance(0.95) ? 2 + g.int(2) : g.bits(3)),
      scale: (g, f) => (f.sf ? g.bits(6) : 32 + g.bits(5)),
    },
    ok: (f) =>
      f.S === 0 &&
      f.ftype! < 2 &&
      f.rmode === 0 &&
      (f.opcode === 2 || f.opcode === 3) &&
      (f.sf === 1 || f.scale! >= 32),
    zr: ["Rn"],
    w: 2,
  },
];

// ---------------------------------------------------------------------------------------
// Advanced SIMD (C4.1.95). Fields are drawn (mostly) uniformly and filtered by precise
// validity rules from the encoding tables; features the reference cortex-a57 lacks
// (FP16, RDM, dot product, FHM, FCMA, crypto) are unallocated there.
//
// Conventions: `size` is bits 23:22; for FP operations a = size<1> and sz = size<0>.
// Q = 0 with 64-bit elements (size = 3, or sz = 1 for FP) is reserved wherever the
// element count would be 1.

const has = (list: readonly number[], v: number | undefined): boolean => list.includes(v!);
/** Element size of a copy instruction's imm5 (index of its lowest set bit; 4 = none). */
const imm5Size = (imm5: number): number => (imm5 & 1 ? 0 : imm5 & 2 ? 1 : imm5 & 4 ? 2 : imm5 & 8 ? 3 : 4);

/** Three same, integer (opcode 0-23; 24-31 are FP). */
function sameIntOk(f: Fields): boolean {
  const { Q, U, size: s, opcode: o } = f;
  if (o! >= 24) return false;
  if (o === 3) return true; // AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF: size selects the operation
  if (s === 3) return Q === 1 && (has([1, 5, 6, 7, 8, 9, 10, 11, 16, 17], o) || (o === 23 && U === 0));
  if (o === 19) return U === 0 || s === 0; // MUL / PMUL (bytes only)
  if (o === 22) return s === 1 || s === 2; // SQDMULH/SQRDMULH
  if (o === 23) return U === 0; // ADDP
  return true;
}

/** Three same, FP (opcode 24-31): by U:a:opcode. */
const SAME_FP: Record<string, readonly number[]> = {
  "00": [24, 25, 26, 27, 28, 30, 31], // FMAXNM FMLA FADD FMULX FCMEQ FMAX FRECPS
  "01": [24, 25, 26, 30, 31], // FMINNM FMLS FSUB FMIN FRSQRTS
  "10": [24, 26, 27, 28, 29, 30, 31], // FMAXNMP FADDP FMUL FCMGE FACGE FMAXP FDIV
  "11": [24, 26, 28, 29, 30], // FMINNMP FABD FCMGT FACGT FMINP
};
const sameFpOk = (f: Fields): boolean =>
  has(SAME_FP[`${f.U}${f.size! >> 1}`]!, f.opcode) && !((f.size! & 1) === 1 && f.Q === 0);

/** Three different (size 3: only PMULL.1Q, a crypto feature: never generated). */
function diffOk(f: Fields): boolean {
  const { U, size: s, opcode: o } = f;
  if (o === 15 || s === 3) return false;
  if (o === 9 || o === 11 || o === 13) return U === 0 && (s === 1 || s === 2); // SQDMLAL/SQDMLSL/SQDMULL
  if (o === 14) return U === 0 && s === 0; // PMULL
  return true;
}

/** Two-register misc, integer. */
function miscIntOk(f: Fields): boolean {
  const { Q, U, size: s, opcode: o } = f;
  const all = s !== 3 || Q === 1;
  if (U === 0) {
    switch (o) {
      case 0: // REV64
      case 2: // SADDLP
      case 4: // CLS
      case 6: // SADALP
      case 18: // XTN
      case 20: // SQXTN
        return s !== 3;
      case 1: // REV16
      case 5: // CNT
        return s === 0;
      case 3: // SUQADD
      case 7: // SQABS
      case 8: // CMGT #0
      case 9: // CMEQ #0
      case 10: // CMLT #0
      case 11: // ABS
        return all;
      default:
        return false;
    }
  }
  switch (o) {
    case 0: // REV32
    case 5: // NOT/RBIT
      return s < 2;
    case 2: // UADDLP
    case 4: // CLZ
    case 6: // UADALP
    case 18: // SQXTUN
    case 19: // SHLL
    case 20: // UQXTN
      return s !== 3;
    case 3: // USQADD
    case 7: // SQNEG
    case 8: // CMGE #0
    case 9: // CMLE #0
    case 11: // NEG
      return all;
    default:
      return false;
  }
}

/** Two-register misc, FP (and URECPE/URSQRTE): by U:a, the opcodes (sz, Q rules below). */
const MISC_FP: Record<string, readonly number[]> = {
  "00": [22, 23, 24, 25, 26, 27, 28, 29], // FCVTN FCVTL FRINTN FRINTM FCVTNS FCVTMS FCVTAS SCVTF
  "01": [12, 13, 14, 15, 24, 25, 26, 27, 28, 29], // FCMGT/FCMEQ/FCMLT #0 FABS FRINTP FRINTZ FCVTPS FCVTZS URECPE FRECPE
  "10": [22, 24, 25, 26, 27, 28, 29], // FCVTXN FRINTA FRINTX FCVTNU FCVTMU FCVTAU UCVTF
  "11": [12, 13, 15, 25, 26, 27, 28, 29, 31], // FCMGE/FCMLE #0 FNEG FRINTI FCVTPU FCVTZU URSQRTE FRSQRTE FSQRT
};
function miscFpOk(f: Fields): boolean {
  const { Q, U, size, opcode: o } = f;
  const a = size! >> 1;
  const sz = size! & 1;
  if (!has(MISC_FP[`${U}${a}`]!, o)) return false;
  if (o === 22 || o === 23) return U === 0 || sz === 1; // FCVTN/FCVTL (Q: lower/upper half); FCVTXN: D to S only
  if (o === 28 && a === 1) return sz === 0; // URECPE/URSQRTE: 32-bit lanes only
  return !(sz === 1 && Q === 0);
}

/** Across lanes, integer: SADDLV/UADDLV SMAXV/UMAXV SMINV/UMINV ADDV. */
const acrossIntOk = (f: Fields): boolean =>
  (has([3, 10, 26], f.opcode) || (f.opcode === 27 && f.U === 0)) &&
  (f.size! < 2 || (f.size === 2 && f.Q === 1));
/** Across lanes, FP (single precision, 4S only without FP16): FMAXNMV/FMINNMV FMAXV/FMINV. */
const acrossFpOk = (f: Fields): boolean =>
  (f.opcode === 12 || f.opcode === 15) && f.U === 1 && f.Q === 1 && (f.size! & 1) === 0;

/** Shift by immediate, integer (immh = 0 is modified immediate; 1xxx = 64-bit lanes). */
function shiftOk(f: Fields): boolean {
  const { Q, U, immh: h, opcode: o } = f;
  if (h === 0) return false;
  const wide = h! >= 8;
  switch (o) {
    case 0: // SSHR/USHR
    case 2: // SSRA/USRA
    case 4: // SRSHR/URSHR
    case 6: // SRSRA/URSRA
    case 10: // SHL/SLI
    case 14: // SQSHL/UQSHL (immediate)
      return !wide || Q === 1;
    case 8: // SRI
    case 12: // SQSHLU
      return U === 1 && (!wide || Q === 1);
    case 16: // SHRN/SQSHRUN
    case 17: // RSHRN/SQRSHRUN
    case 18: // SQSHRN/UQSHRN
    case 19: // SQRSHRN/UQRSHRN
    case 20: // SSHLL/USHLL
      return !wide;
    default:
      return false;
  }
}
/** Shift by immediate, FP fixed point: SCVTF/UCVTF FCVTZS/FCVTZU (immh 001x is FP16). */
const fixedVecOk = (f: Fields): boolean =>
  (f.opcode === 28 || f.opcode === 31) && f.immh! >= 4 && (f.immh! < 8 || f.Q === 1);

/** Modified immediate: o2 = 1 is FP16 FMOV; FMOV (double) needs Q = 1. */
const modImmOk = (f: Fields): boolean => f.o2 === 0 && !(f.op === 1 && f.cmode === 15 && f.Q === 0);

/** Vector x indexed element, integer (H and S lanes only). */
const elemIntOk = (f: Fields): boolean =>
  (f.size === 1 || f.size === 2) &&
  (f.U === 0 ? has([2, 3, 6, 7, 8, 10, 11, 12, 13], f.opcode) : has([0, 2, 4, 6, 10], f.opcode));
/** Vector x indexed element, FP: FMLA FMLS FMUL FMULX (S or D; D: index H only, Q = 1). */
const elemFpOk = (f: Fields): boolean =>
  f.size! >= 2 &&
  (f.U === 0 ? has([1, 5, 9], f.opcode) : f.opcode === 9) &&
  !((f.size! & 1) === 1 && (f.L === 1 || f.Q === 0));

/** Scalar three same, integer. */
function scalarSameOk(f: Fields): boolean {
  const { size: s, opcode: o } = f;
  if (has([1, 5, 9, 11], o)) return true; // SQADD SQSUB SQSHL SQRSHL (and U forms)
  if (has([6, 7, 8, 10, 16, 17], o)) return s === 3; // CMGT CMGE SSHL SRSHL ADD CMTST (and U forms)
  if (o === 22) return s === 1 || s === 2; // SQDMULH/SQRDMULH
  return false;
}
/** Scalar three same, FP: by U:a. */
const SCALAR_SAME_FP: Record<string, readonly number[]> = {
  "00": [27, 28, 31], // FMULX FCMEQ FRECPS
  "01": [31], // FRSQRTS
  "10": [28, 29], // FCMGE FACGE
  "11": [26, 28, 29], // FABD FCMGT FACGT
};
const scalarSameFpOk = (f: Fields): boolean => has(SCALAR_SAME_FP[`${f.U}${f.size! >> 1}`]!, f.opcode);

const scalarDiffOk = (f: Fields): boolean =>
  f.U === 0 && has([9, 11, 13], f.opcode) && (f.size === 1 || f.size === 2);

/** Scalar two-register misc, integer. */
function scalarMiscIntOk(f: Fields): boolean {
  const { U, size: s, opcode: o } = f;
  if (o === 3 || o === 7) return true; // SUQADD/USQADD SQABS/SQNEG
  if (has(U === 0 ? [8, 9, 10, 11] : [8, 9, 11], o)) return s === 3; // CMxx #0, ABS/NEG
  if (has(U === 0 ? [20] : [18, 20], o)) return s !== 3; // SQXTN, SQXTUN/UQXTN
  return false;
}
/** Scalar two-register misc, FP: by U:a. */
const SCALAR_MISC_FP: Record<string, readonly number[]> = {
  "00": [26, 27, 28, 29], // FCVTNS FCVTMS FCVTAS SCVTF
  "01": [12, 13, 14, 26, 27, 29, 31], // FCMGT/FCMEQ/FCMLT #0 FCVTPS FCVTZS FRECPE FRECPX
  "10": [22, 26, 27, 28, 29], // FCVTXN FCVTNU FCVTMU FCVTAU UCVTF
  "11": [12, 13, 26, 27, 29], // FCMGE/FCMLE #0 FCVTPU FCVTZU FRSQRTE
};
const scalarMiscFpOk = (f: Fields): boolean =>
  has(SCALAR_MISC_FP[`${f.U}${f.size! >> 1}`]!, f.opcode) && !(f.opcode === 22 && (f.size! & 1) === 0);

/** Scalar pairwise: ADDP (D), and the FP ones (U = 1; U = 0 is FP16). */
const scalarPairOk = (f: Fields): boolean =>
  f.U === 0
    ? f.opcode === 27 && f.size === 3
    : f.opcode === 12 || f.opcode === 15 || (f.opcode === 13 && f.size! < 2);

/** Scalar shift by immediate, integer. */
function scalarShiftOk(f: Fields): boolean {
  const { U, immh: h, opcode: o } = f;
  if (h === 0) return false;
  const wide = h! >= 8;
  if (has([0, 2, 4, 6, 10], o)) return wide; // SSHR SSRA SRSHR SRSRA SHL/SLI: D only
  if (o === 8) return U === 1 && wide; // SRI
  if (o === 12) return U === 1; // SQSHLU
  if (o === 14) return true; // SQSHL/UQSHL
  if (o === 16 || o === 17) return U === 1 && !wide; // SQSHRUN SQRSHRUN
  if (o === 18 || o === 19) return !wide; // SQSHRN/UQSHRN SQRSHRN/UQRSHRN
  return false;
}
const scalarFixedOk = (f: Fields): boolean => (f.opcode === 28 || f.opcode === 31) && f.immh! >= 4;

const scalarElemIntOk = (f: Fields): boolean =>
  f.U === 0 && has([3, 7, 11, 12, 13], f.opcode) && (f.size === 1 || f.size === 2);
const scalarElemFpOk = (f: Fields): boolean =>
  f.size! >= 2 &&
  (f.U === 0 ? has([1, 5, 9], f.opcode) : f.opcode === 9) &&
  !((f.size! & 1) === 1 && f.L === 1);

/** Opcode generators: mostly the allocated ones. */
const ops =
  (list: readonly number[], bits = 5) =>
  (g: Rng): number =>
    g.chance(0.97) ? g.pick(list) : g.bits(bits);

const SIMD_INT: Tmpl[] = [
  {
    n: "three same (integer)",
    p: "0 Q:1 U:1 01110 size:2 1 Vm:5 opcode:5 1 Vn:5 Vd:5",
    f: { opcode: (g) => g.int(24) },
    ok: sameIntOk,
    w: 12,
  },
  {
    n: "three different",
    p: "0 Q:1 U:1 01110 size:2 1 Vm:5 opcode:4 00 Vn:5 Vd:5",
    ok: diffOk,
    never: (f) => f.size === 3 && f.opcode === 14,
    w: 7,
  },
  {
    n: "two-reg misc (integer)",
    p: "0 Q:1 U:1 01110 size:2 10000 opcode:5 10 Vn:5 Vd:5",
    f: { opcode: ops([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 18, 19, 20]) },
    ok: miscIntOk,
    w: 7,
  },
  {
    n: "across lanes (integer)",
    p: "0 Q:1 U:1 01110 size:2 11000 opcode:5 10 Vn:5 Vd:5",
    f: { opcode: ops([3, 10, 26, 27]) },
    ok: acrossIntOk,
    w: 3,
  },
  {
    n: "shift by immediate (integer)",
    p: "0 Q:1 U:1 011110 immh:4 immb:3 opcode:5 1 Vn:5 Vd:5",
    f: { opcode: ops([0, 2, 4, 6, 8, 10, 12, 14, 16, 17, 18, 19, 20]) },
    ok: shiftOk,
    w: 7,
  },
  {
    n: "modified immediate",
    p: "0 Q:1 op:1 0111100000 a:1 b:1 c:1 cmode:4 o2:1 1 d:1 e:1 f:1 g:1 h:1 Vd:5",
    ok: modImmOk,
    w: 4,
  },
  {
    n: "by element (integer)",
    p: "0 Q:1 U:1 01111 size:2 L:1 M:1 Vm4:4 opcode:4 H:1 0 Vn:5 Vd:5",
    ok: elemIntOk,
    w: 5,
  },
  {
    n: "scalar three same (integer)",
    p: "01 U:1 11110 size:2 1 Vm:5 opcode:5 1 Vn:5 Vd:5",
    f: { opcode: ops([1, 5, 6, 7, 8, 9, 10, 11, 16, 17, 22]) },
    ok: scalarSameOk,
    w: 4,
  },
  {
    n: "scalar three different",
    p: "01 U:1 11110 size:2 1 Vm:5 opcode:4 00 Vn:5 Vd:5",
    f: { opcode: ops([9, 11, 13], 4) },
    ok: scalarDiffOk,
    w: 2,
  },
  {
    n: "scalar two-reg misc (integer)",
    p: "01 U:1 11110 size:2 10000 opcode:5 10 Vn:5 Vd:5",
    f: { opcode: ops([3, 7, 8, 9, 10, 11, 18, 20]) },
    ok: scalarMiscIntOk,
    w: 3,
  },
  {
    n: "scalar pairwise (ADDP)",
    p: "01 U:1 11110 size:2 11000 opcode:5 10 Vn:5 Vd:5",
    f: { U: [0], opcode: [27] },
    ok: (f) => f.U === 0 && scalarPairOk(f),
    w: 1,
  },
  {
    n: "scalar shift by immediate (integer)",
    p: "01 U:1 111110 immh:4 immb:3 opcode:5 1 Vn:5 Vd:5",
    f: { opcode: ops([0, 2, 4, 6, 8, 10, 12, 14, 16, 17, 18, 19]) },
    ok: scalarShiftOk,
    w: 4,
  },
  {
    n: "scalar by element (integer)",
    p: "01 U:1 11111 size:2 L:1 M:1 Vm4:4 opcode:4 H:1 0 Vn:5 Vd:5",
    f: { opcode: ops([3, 7, 11, 12, 13], 4) },
    ok: scalarElemIntOk,
    w: 2,
  },
  // SQRDMLAH/SQRDMLSH (RDM), SDOT/UDOT, FCMLA/FCADD: later features, unallocated on the reference
  {
    n: "three same extra (not in Armv8.0)",
    p: "0 Q:1 U:1 01110 size:2 0 Vm:5 1 opcode:4 1 Vn:5 Vd:5",
    unallocated: true,
  },
];

/** TBL/TBX: most index bytes in range, some out of range. */
function tblFix(g: Rng, f: Fields, state: CaseState): void {
  const limit = 16 * (f.len! + 1);
  for (let i = 0; i < 16; i++) state.v[16 * f.Vm! + i] = g.chance(0.8) ? g.int(limit) : g.bits(8);
}

const SIMD_PERM: Tmpl[] = [
  {
    n: "DUP (element)",
    p: "0 Q:1 0 01110000 imm5:5 0 0000 1 Vn:5 Vd:5",
    ok: (f) => imm5Size(f.imm5!) < 3 || (imm5Size(f.imm5!) === 3 && f.Q === 1),
    w: 2,
  },
  {
    n: "DUP (general)",
    p: "0 Q:1 0 01110000 imm5:5 0 0001 1 Rn:5 Vd:5",
    ok: (f) => imm5Size(f.imm5!) < 3 || (imm5Size(f.imm5!) === 3 && f.Q === 1),
    zr: ["Rn"],
    w: 2,
  },
  {
    n: "INS (general)",
    p: "0 Q:1 0 01110000 imm5:5 0 0011 1 Rn:5 Vd:5",
    ok: (f) => f.Q === 1 && imm5Size(f.imm5!) < 4,
    zr: ["Rn"],
    w: 2,
  },
  {
    n: "SMOV/UMOV",
    p: "0 Q:1 0 01110000 imm5:5 0 01 u:1 1 1 Vn:5 Rd:5",
    ok: (f) => {
      const s = imm5Size(f.imm5!);
      return f.u === 0 ? s < 2 + f.Q! : f.Q === 0 ? s < 3 : s === 3;
    },
    zr: ["Rd"],
    w: 3,
  },
  {
    n: "INS (element)",
    p: "0 Q:1 1 01110000 imm5:5 0 imm4:4 1 Vn:5 Vd:5",
    f: { Q: mostly(1, 0.95) },
    ok: (f) => f.Q === 1 && imm5Size(f.imm5!) < 4,
    w: 2,
  },
  {
    n: "DUP (scalar element)",
    p: "01 0 11110000 imm5:5 0 0000 1 Vn:5 Vd:5",
    ok: (f) => imm5Size(f.imm5!) < 4,
  },
  {
    n: "EXT",
    p: "0 Q:1 101110 op2:2 0 Vm:5 0 imm4:4 0 Vn:5 Vd:5",
    f: { op2: mostly(0) },
    ok: (f) => f.op2 === 0 && (f.Q === 1 || f.imm4! < 8),
    w: 2,
  },
  {
    n: "UZP1/TRN1/ZIP1/UZP2/TRN2/ZIP2",
    p: "0 Q:1 001110 size:2 0 Vm:5 0 opcode:3 10 Vn:5 Vd:5",
    ok: (f) => (f.opcode! & 3) !== 0 && !(f.size === 3 && f.Q === 0),
    w: 4,
  },
  {
    n: "TBL/TBX",
    p: "0 Q:1 001110 op2:2 0 Vm:5 0 len:2 op:1 00 Vn:5 Vd:5",
    f: { op2: mostly(0) },
    ok: (f) => f.op2 === 0,
    fix: tblFix,
    w: 3,
  },
];

/** FP vector operands: lanes of the element size the instruction reads look like FP numbers
 * (the initial V registers already mix FP lanes of every width: see values.ts). */
const SIMD_FP: Tmpl[] = [
  {
    n: "three same (FP)",
    p: "0 Q:1 U:1 01110 size:2 1 Vm:5 opcode:5 1 Vn:5 Vd:5",
    f: { opcode: (g) => 24 + g.int(8) },
    ok: sameFpOk,
    w: 10,
  },
  {
    n: "two-reg misc (FP)",
    p: "0 Q:1 U:1 01110 size:2 10000 opcode:5 10 Vn:5 Vd:5",
    f: { opcode: ops([12, 13, 14, 15, 22, 23, 24, 25, 26, 27, 28, 29, 31]) },
    ok: miscFpOk,
    w: 9,
  },
  {
    n: "FCVTN/FCVTXN/FCVTL",
    p: "0 Q:1 U:1 01110 0 sz:1 10000 1011 o:1 10 Vn:5 Vd:5",
    ok: (f) => (f.U === 0 ? true : f.o === 0 && f.sz === 1),
    w: 3,
  },
  {
    n: "FRECPE/FRSQRTE/URECPE/URSQRTE (vector)",
    p: "0 Q:1 U:1 01110 1 sz:1 10000 1110 o:1 10 Vn:5 Vd:5",
    ok: (f) => (f.o === 1 ? !(f.sz === 1 && f.Q === 0) : f.sz === 0),
    w: 3,
  },
  {
    n: "FRECPS/FRSQRTS (vector)",
    p: "0 Q:1 0 01110 a:1 sz:1 1 Vm:5 11111 1 Vn:5 Vd:5",
    ok: (f) => !(f.sz === 1 && f.Q === 0),
    w: 2,
  },
  {
    n: "across lanes (FP)",
    p: "0 Q:1 U:1 01110 size:2 11000 opcode:5 10 Vn:5 Vd:5",
    f: { opcode: ops([12, 15]) },
    ok: acrossFpOk,
    w: 2,
  },
  {
    n: "fixed-point conversion (vector)",
    p: "0 Q:1 U:1 011110 immh:4 immb:3 opcode:5 1 Vn:5 Vd:5",
    f: { opcode: ops([28, 31]) },
    ok: fixedVecOk,
    w: 3,
  },
  {
    n: "by element (FP)",
    p: "0 Q:1 U:1 01111 size:2 L:1 M:1 Vm4:4 opcode:4 H:1 0 Vn:5 Vd:5",
    f: { opcode: ops([1, 5, 9], 4) },
    ok: elemFpOk,
    w: 4,
  },
  {
    n: "FMOV (vector, immediate)",
    p: "0 Q:1 op:1 0111100000 a:1 b:1 c:1 1111 o2:1 1 d:1 e:1 f:1 g:1 h:1 Vd:5",
    ok: (f) => f.o2 === 0 && (f.op === 0 || f.Q === 1),
    w: 1,
  },
  {
    n: "scalar three same (FP)",
    p: "01 U:1 11110 size:2 1 Vm:5 opcode:5 1 Vn:5 Vd:5",
    f: { opcode: (g) => 24 + g.int(8) },
    ok: scalarSameFpOk,
    w: 5,
  },
  {
    n: "scalar two-reg misc (FP)",
    p: "01 U:1 11110 size:2 10000 opcode:5 10 Vn:5 Vd:5",
    f: { opcode: ops([12, 13, 14, 22, 26, 27, 28, 29, 31]) },
    ok: scalarMiscFpOk,
    w: 5,
  },
  {
    n: "FRECPE/FRSQRTE/FRECPX (scalar)",
    p: "01 U:1 11110 1 sz:1 10000 111 op:2 10 Vn:5 Vd:5",
    ok: (f) => f.op === 1 || (f.op === 3 && f.U === 0),
    w: 2,
  },
  { n: "FRECPS/FRSQRTS (scalar)", p: "01 0 11110 a:1 sz:1 1 Vm:5 11111 1 Vn:5 Vd:5", w: 1 },
  {
    n: "scalar pairwise (FP)",
    p: "01 U:1 11110 size:2 11000 opcode:5 10 Vn:5 Vd:5",
    f: { U: mostly(1, 0.97), opcode: ops([12, 13, 15]) },
    ok: (f) => f.U === 1 && scalarPairOk(f),
    w: 2,
  },
  {
    n: "scalar by element (FP)",
    p: "01 U:1 11111 size:2 L:1 M:1 Vm4:4 opcode:4 H:1 0 Vn:5 Vd:5",
    f: { opcode: ops([1, 5, 9], 4) },
    ok: scalarElemFpOk,
    w: 3,
  },
  {
    n: "scalar fixed-point conversion",
    p: "01 U:1 111110 immh:4 immb:3 opcode:5 1 Vn:5 Vd:5",
    f: { opcode: ops([28, 31]) },
    ok: scalarFixedOk,
    w: 2,
  },
  // FEAT_FP16 vector forms: unallocated on the reference
  {
    n: "three same (FP16, not in Armv8.0)",
    p: "0 Q:1 U:1 01110 a:1 10 Vm:5 00 opcode:3 1 Vn:5 Vd:5",
    unallocated: true,
  },
];

// ---------------------------------------------------------------------------------------
// SIMD&FP loads and stores

const MULT_REGS: Record<number, number> = { 0: 4, 2: 4, 4: 3, 6: 3, 7: 1, 8: 2, 10: 2 };
const multBytes = (f: Fields): number => (MULT_REGS[f.opcode!] ?? 1) * (f.Q ? 16 : 8);
function singleBytes(f: Fields): number {
  const selem = (((f.opcode! & 1) << 1) | f.R!) + 1;
  const scale = f.opcode! >> 1;
  const esize = scale === 3 ? 1 << f.size! : scale === 2 ? (f.size! & 1 ? 8 : 4) : 1 << scale;
  return selem * esize;
}
const multOp = (g: Rng): number => (g.chance(0.97) ? g.pick([0, 2, 4, 6, 7, 8, 10]) : g.bits(4));
/** LD1-4/ST1-4 (multiple): LD2/LD3/LD4 of 64-bit elements need Q = 1 (LD1 has a 1D form). */
const multOk = (f: Fields): boolean =>
  has([0, 2, 4, 6, 7, 8, 10], f.opcode) && !(f.size === 3 && f.Q === 0 && has([0, 4, 8], f.opcode));
/** LD1-4/ST1-4 (single structure) and LD1R-LD4R: the size/S combinations of each scale. */
function singleOk(f: Fields): boolean {
  const scale = f.opcode! >> 1;
  if (scale === 3) return f.L === 1 && f.S === 0; // replicate: loads only
  if (scale === 0) return true;
  if (scale === 1) return (f.size! & 1) === 0;
  return f.size === 0 || (f.size === 1 && f.S === 0);
}
/** LDP of one register twice is CONSTRAINED UNPREDICTABLE: not generated. */
const pairFix = (_g: Rng, f: Fields): void => {
  if (f.L === 1 && f.Vt === f.Vt2) f.Vt2 = (f.Vt! + 1) & 31;
};
const fpLdrBytes = (f: Fields): number => (f.opc! & 2 ? (f.size === 0 ? 16 : 0) : 1 << f.size!);

const SIMD_LDST: Tmpl[] = [
  {
    n: "LD1-4/ST1-4 (multiple structures)",
    p: "0 Q:1 0011000 L:1 000000 opcode:4 size:2 Rn:5 Vt:5",
    f: { opcode: multOp },
    ok: multOk,
    addr: (f) => ({ base: "Rn", off: 0, size: multBytes(f), align: 1 << f.size! }),
    w: 4,
  },
  {
    n: "LD1-4/ST1-4 (multiple, post-index imm)",
    p: "0 Q:1 0011001 L:1 0 11111 opcode:4 size:2 Rn:5 Vt:5",
    f: { opcode: multOp },
    ok: multOk,
    addr: (f) => ({ base: "Rn", off: 0, size: multBytes(f), align: 1 << f.size! }),
    w: 2,
  },
  {
    n: "LD1-4/ST1-4 (multiple, post-index reg)",
    p: "0 Q:1 0011001 L:1 0 Rm:5 opcode:4 size:2 Rn:5 Vt:5",
    f: { opcode: multOp },
    ok: multOk,
    addr: (f) => ({ base: "Rn", off: 0, size: multBytes(f), align: 1 << f.size!, extra: ["Rm"] }),
    w: 2,
  },
  {
    n: "LD1-4/ST1-4 (single structure), LD1R-LD4R",
    p: "0 Q:1 0011010 L:1 R:1 00000 opcode:3 S:1 size:2 Rn:5 Vt:5",
    ok: singleOk,
    addr: (f) => ({ base: "Rn", off: 0, size: singleBytes(f), align: 1 }),
    w: 4,
  },
  {
    n: "LD1-4/ST1-4 (single structure, post-index)",
    p: "0 Q:1 0011011 L:1 R:1 Rm:5 opcode:3 S:1 size:2 Rn:5 Vt:5",
    f: { Rm: (g) => (g.chance(0.5) ? 31 : g.int(31)) },
    ok: singleOk,
    addr: (f) => ({ base: "Rn", off: 0, size: singleBytes(f), align: 1 }),
    w: 3,
  },
  {
    n: "LDR/STR (SIMD&FP, unsigned imm)",
    p: "size:2 111 1 01 opc:2 imm12:12 Rn:5 Vt:5",
    f: { imm12: (g) => (g.chance(0.7) ? g.int(64) : g.bits(12)) },
    ok: (f) => fpLdrBytes(f) > 0,
    addr: (f) => ({
      base: "Rn",
      off: f.imm12! * Math.max(fpLdrBytes(f), 1),
      size: Math.max(fpLdrBytes(f), 1),
      align: Math.max(fpLdrBytes(f), 1),
    }),
    w: 3,
  },
  {
    n: "LDUR/STUR/pre/post (SIMD&FP)",
    p: "size:2 111 1 00 opc:2 0 imm9:9 op:2 Rn:5 Vt:5",
    f: { op: (g) => g.pick([0, 1, 3]) },
    ok: (f) => fpLdrBytes(f) > 0 && f.op !== 2,
    addr: (f) => ({
      base: "Rn",
      off: f.op === 1 ? 0 : sx(f.imm9!, 9),
      size: Math.max(fpLdrBytes(f), 1),
      align: Math.max(fpLdrBytes(f), 1),
    }),
    w: 3,
  },
  {
    n: "LDR/STR (SIMD&FP, register offset)",
    p: "size:2 111 1 00 opc:2 1 Rm:5 option:3 S:1 10 Rn:5 Vt:5",
    f: { option: (g) => (g.chance(0.95) ? g.pick([2, 3, 6, 7]) : g.bits(3)) },
    ok: (f) => fpLdrBytes(f) > 0 && (f.option! & 2) !== 0,
    addr: (f) => {
      const b = Math.max(fpLdrBytes(f), 1);
      return {
        base: "Rn",
        off: 0,
        size: b,
        align: b,
        index: {
          field: "Rm",
          kind: f.option === 2 ? "uxtw" : f.option === 6 ? "sxtw" : "lsl",
          shift: f.S ? Math.log2(b) : 0,
        },
      };
    },
    w: 2,
  },
  {
    n: "LDP/STP/LDNP/STNP (SIMD&FP)",
    p: "opc:2 101 1 mode:3 L:1 imm7:7 Vt2:5 Rn:5 Vt:5",
    f: { opc: (g) => (g.chance(0.95) ? g.int(3) : 3), mode: (g) => (g.chance(0.95) ? g.int(4) : g.bits(3)) },
    ok: (f) => f.opc !== 3 && f.mode! < 4,
    fix: pairFix,
    addr: (f) => {
      const scale = 4 << f.opc!;
      return { base: "Rn", off: f.mode === 1 ? 0 : sx(f.imm7!, 7) * scale, size: 2 * scale, align: scale };
    },
    w: 3,
  },
  {
    n: "LDR (literal, SIMD&FP)",
    p: "opc:2 011 1 00 imm19:19 Vt:5",
    f: { opc: (g) => (g.chance(0.97) ? g.int(3) : 3) },
    ok: (f) => f.opc !== 3,
    addr: (f) => ({ base: "", pcrel: "imm19", off: 0, size: 4 << f.opc!, align: 4 }),
  },
];

export const CLASSES: Record<string, ClassSpec> = {
  "dp-imm": { t: DP_IMM, fpBias: 0.1 },
  "dp-reg": { t: DP_REG, fpBias: 0.1 },
  branch: { t: BRANCHES, fpBias: 0.1, custom: branchSequence },
  ldst: {
    t: LDST,
    fpBias: 0.1,
    distinct: true,
    custom: (g, state) =>
      g.chance(0.2) ? exclusivePair(g, state) : hooks!.seq(g, { t: LDST, distinct: true }, state),
  },
  lse: { t: LSE, fpBias: 0.1, distinct: true },
  fp: { t: FP, fpBias: 0.9 },
  "simd-int": { t: SIMD_INT, fpBias: 0.2, invalidShare: 0.01 },
  "simd-perm": { t: SIMD_PERM, fpBias: 0.2 },
  "simd-fp": { t: SIMD_FP, fpBias: 0.9, invalidShare: 0.01 },
  "simd-ldst": { t: SIMD_LDST, fpBias: 0.3, distinct: true },
  // Everything but branches and LSE in one sequence: general and SIMD&FP registers, flags
  // and memory flowing between instruction groups.
  mix: {
    t: [...DP_IMM, ...DP_REG, ...LDST, ...FP, ...SIMD_INT, ...SIMD_PERM, ...SIMD_FP, ...SIMD_LDST],
    fpBias: 0.5,
    distinct: true,
  },
};
