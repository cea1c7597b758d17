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
}

export interface Tmpl {
  /** Name (Arm ARM mnemonic or group), for reports. */
  n: string;
  p: string;
  f?: Record<string, FieldGen>;
  zr?: readonly string[] | ((f: Fields) => readonly string[]);
  addr?: (f: Fields) => AddrSpec | null;
  /** Whether the (non-register) fields form an allocated encoding. */
  ok?: (f: Fields) => boolean;
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

export const CLASSES: Record<string, ClassSpec> = {
  "dp-imm": { t: DP_IMM, fpBias: 0.1 },
  "dp-reg": { t: DP_REG, fpBias: 0.1 },
  branch: { t: BRANCHES, fpBias: 0.1, custom: branchSequence },
};
