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
import type { Rng } from "./prng.ts";
import { type CaseState, CODE } from "./layout.ts";

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
  /** Whole-sequence generator for classes that need more than templates. */
  custom?: (g: Rng, state: CaseState) => number[];
}

const ALL = ["Rd", "Rn", "Rm", "Ra"] as const;
/** Mostly the valid value `v`, sometimes anything (to reach unallocated encodings). */
const mostly =
  (v: number, p = 0.9) =>
  (g: Rng, _f: Fields): number =>
    g.chance(p) ? v : g.u32();
const mostlyOf =
  (vals: readonly number[], p = 0.9) =>
  (g: Rng, _f: Fields): number =>
    g.chance(p) ? g.pick(vals) : g.u32();

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
  { n: "ADD/SUB(S) imm", p: "sf:1 op:1 S:1 100010 sh:1 imm12:12 Rn:5 Rd:5", zr: (f) => (f.S ? ["Rd"] : []), w: 3 },
  {
    n: "AND/ORR/EOR/ANDS imm",
    p: "sf:1 opc:2 100100 N:1 immr:6 imms:6 Rn:5 Rd:5",
    ok: logicalImmOk,
    zr: (f) => (f.opc === 3 ? ["Rd", "Rn"] : ["Rn"]),
    w: 3,
  },
  { n: "MOVN/MOVZ/MOVK", p: "sf:1 opc:2 100101 hw:2 imm16:16 Rd:5", ok: (f) => f.opc !== 1 && (f.sf === 1 || f.hw! < 2), zr: ["Rd"], w: 2 },
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
  { n: "ADC/ADCS/SBC/SBCS", p: "sf:1 op:1 S:1 11010000 Rm:5 op2:6 Rn:5 Rd:5", f: { op2: mostly(0) }, ok: (f) => f.op2 === 0, zr: ALL, w: 2 },
  { n: "CCMN/CCMP reg", p: "sf:1 op:1 S:1 11010010 Rm:5 cond:4 0 o2:1 Rn:5 o3:1 nzcv:4", f: { S: mostly(1), o2: mostly(0), o3: mostly(0) }, ok: (f) => f.S === 1 && f.o2 === 0 && f.o3 === 0, zr: ALL, w: 2 },
  { n: "CCMN/CCMP imm", p: "sf:1 op:1 S:1 11010010 imm5:5 cond:4 1 o2:1 Rn:5 o3:1 nzcv:4", f: { S: mostly(1), o2: mostly(0), o3: mostly(0) }, ok: (f) => f.S === 1 && f.o2 === 0 && f.o3 === 0, zr: ALL, w: 2 },
  { n: "CSEL/CSINC/CSINV/CSNEG", p: "sf:1 op:1 S:1 11010100 Rm:5 cond:4 0 o2:1 Rn:5 Rd:5", f: { S: mostly(0) }, ok: (f) => f.S === 0, zr: ALL, w: 3 },
  {
    n: "MADD/MSUB/SMADDL/SMSUBL/SMULH/UMADDL/UMSUBL/UMULH",
    p: "sf:1 op54:2 11011 op31:3 Rm:5 o0:1 Ra:5 Rn:5 Rd:5",
    ok: (f) => f.op54 === 0 && (f.op31 === 0 || (f.sf === 1 && [1, 5].includes(f.op31!)) || (f.sf === 1 && [2, 6].includes(f.op31!) && f.o0 === 0)),
    // SMULH/UMULH: Ra is should-be-one.
    f: { op54: mostly(0), Ra: (g, f) => ((f.op31 === 2 || f.op31 === 6) && g.chance(0.95) ? 31 : g.int(32)) },
    zr: ALL,
    w: 4,
  },
  {
    n: "UDIV/SDIV/LSLV/LSRV/ASRV/RORV/CRC32*",
    p: "sf:1 0 S:1 11010110 Rm:5 opcode:6 Rn:5 Rd:5",
    f: { S: mostly(0), opcode: (g) => (g.chance(0.9) ? g.pick([2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23]) : g.bits(6)) },
    ok: (f) => f.S === 0 && ([2, 3, 8, 9, 10, 11].includes(f.opcode!) || (f.opcode! >= 16 && f.opcode! < 24 && ((f.opcode! & 3) === 3) === (f.sf === 1))),
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
  { n: "BR/BLR/RET", p: "1101011 opc:4 op2:5 op3:6 Rn:5 op4:5", f: { opc: [0, 1, 2], op2: [31], op3: [0], op4: [0] }, w: 2 },
];

/** Marker instructions between branches: their results show which path was taken. */
const MARKERS: Tmpl[] = [
  { n: "ADD imm", p: "sf:1 0 S:1 100010 sh:1 imm12:12 Rn:5 Rd:5", zr: (f) => (f.S ? ["Rd"] : []) },
  { n: "MOVZ/MOVK", p: "sf:1 opc:2 100101 hw:2 imm16:16 Rd:5", ok: (f) => f.opc !== 1 && (f.sf === 1 || f.hw! < 2), zr: ["Rd"] },
  { n: "SUBS/ADDS shifted", p: "sf:1 op:1 1 01011 00 0 Rm:5 000000 Rn:5 Rd:5", zr: ["Rd", "Rn", "Rm"] },
  { n: "CSINC", p: "sf:1 0 0 11010100 Rm:5 cond:4 0 1 Rn:5 Rd:5", zr: ["Rd", "Rn", "Rm"] },
];

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
  // A register branch's target register is one that no marker writes (and not X30, which BL writes).
  const written = new Set(slots.map((s) => s.f.Rd).filter((r) => r !== undefined));
  for (const s of slots) {
    if (s.t.n !== "BR/BLR/RET") continue;
    let r = g.int(30);
    while (written.has(r)) r = (r + 1) % 30;
    s.f.Rn = r;
  }
  // Target registers of BR/BLR/RET: set after assignment (may be overwritten by a marker:
  // then the branch goes wild and both sides fault identically).
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
    addr: (f) => ({ base: "Rn", off: f.op === 1 ? 0 : sx(f.imm9!, 9), size: 1 << f.size!, align: 1 << f.size! }),
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
      index: { field: "Rm", kind: f.option === 2 ? "uxtw" : f.option === 6 ? "sxtw" : "lsl", shift: f.S ? f.size! : 0 },
    }),
    zr: ["Rt"],
    w: 4,
  },
  {
    n: "LDP/STP/LDNP/STNP/LDPSW",
    p: "opc:2 101 0 mode:3 L:1 imm7:7 Rt2:5 Rn:5 Rt:5",
    f: { opc: (g) => (g.chance(0.95) ? g.pick([0, 1, 2]) : 3), mode: (g) => (g.chance(0.95) ? g.int(4) : g.bits(3)) },
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
    addr: (f) => ({ base: "", pcrel: "imm19", off: 0, size: f.opc === 1 ? 8 : 4, align: f.opc === 1 ? 8 : 4 }),
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
  const ld = ((size << 30) | (0b001000 << 24) | (1 << 22) | (o1 << 21) | (31 << 16) | (acq << 15) | ((pair ? t2 : 31) << 10) | (n << 5) | t1) >>> 0;
  const st = ((size << 30) | (0b001000 << 24) | (o1 << 21) | (s << 16) | (rel << 15) | ((pair ? u2 : 31) << 10) | (n << 5) | u1) >>> 0;
  const bytes = (1 << size) * (pair ? 2 : 1);
  let slot = g.int(4096 - bytes + 1);
  slot -= slot % bytes;
  state.x[2 * n] = (WINDOW_ADDR + slot) >>> 0;
  state.x[2 * n + 1] = 0;
  const words = [ld];
  const k = g.int(10);
  if (k === 0) words.push(0xd503305f); // CLREX: the store must fail
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

export const CLASSES: Record<string, ClassSpec> = {
  "dp-imm": { t: DP_IMM, fpBias: 0.1 },
  "dp-reg": { t: DP_REG, fpBias: 0.1 },
  branch: { t: BRANCHES, fpBias: 0.1, custom: branchSequence },
  ldst: {
    t: LDST,
    fpBias: 0.1,
    distinct: true,
    custom: (g, state) => (g.chance(0.2) ? exclusivePair(g, state) : hooks!.seq(g, { t: LDST, distinct: true }, state)),
  },
  lse: { t: LSE, fpBias: 0.1, distinct: true },
};
