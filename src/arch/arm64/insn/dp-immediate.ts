/**
 * Data processing — immediate (Arm ARM C4.1.86): PC-relative addressing, add/subtract
 * (immediate), logical (immediate), move wide, bitfield, extract.
 * The table (DP_IMMEDIATE, at the end) is one pattern per instruction; the shared formats
 * (ADDSUB, LOGIC, MOVW, BITF) are just above it.
 */
import { add64, addSub32, decodeBitMasks, ror64, setNZCV, subs64 } from "../alu.ts";
import { type Exec, type Fields, type Pattern, withFixedBits } from "../decoder.ts";
import { xr, xw } from "../regs.ts";
import { R64 } from "../ret64.ts";

/** ADR / ADRP: Xd = PC (or PC & ~0xfff) + imm. */
function adr(f: Record<string, number>): Exec {
  const page = f.op === 1;
  const imm = f.immhi! * 4 + f.immlo!; // signed 21-bit
  const off = page ? imm * 4096 : imm;
  const d = xw(f.Rd!);
  return (c) => {
    const base = page ? (c.pcLo & ~0xfff) >>> 0 : c.pcLo;
    // 64-bit add of a signed offset (|off| < 2^33) to (base, pcHi) without BigInt.
    const sum = base + off;
    const carry = Math.floor(sum / 4294967296);
    c.r[d] = sum >>> 0;
    c.r[d + 1] = (c.pcHi + carry) >>> 0;
  };
}

function addSubImm(f: Record<string, number>): Exec | null {
  const sf = f.sf === 1;
  const sub = f.op === 1;
  const setFlags = f.S === 1;
  const imm = f.sh === 1 ? f.imm12! << 12 : f.imm12!;
  const n = f.Rn!;
  const dn = f.Rd!;
  const dSp = !setFlags && dn === 31;
  const dFixed = setFlags ? xw(dn) : dn * 2;
  if (sf && !setFlags) {
    // ADD/SUB Xd|SP, Xn|SP, #imm without flags (address arithmetic, counters): inline.
    const delta = sub ? -imm : imm;
    return (c) => {
      const r = c.r;
      const ni = n === 31 ? c.sp : n * 2;
      const lo = r[ni]! + delta;
      const hi = r[ni + 1]! + (lo > 0xffffffff ? 1 : lo < 0 ? -1 : 0);
      const di = dSp ? c.sp : dFixed;
      r[di] = lo >>> 0;
      r[di + 1] = hi >>> 0;
    };
  }
  if (sf && sub) {
    // SUBS / CMP Xn|SP, #imm (imm < 2^24): inline 64-bit subtraction and flags.
    return (c) => {
      const r = c.r;
      const ni = n === 31 ? c.sp : n * 2;
      subs64(c, r[ni]!, r[ni + 1]!, imm, 0);
      r[dFixed] = R64.lo;
      r[dFixed + 1] = R64.hi;
    };
  }
  if (!sf) {
    // ADD(S)/SUB(S)/CMP Wd|WSP, Wn|WSP, #imm.
    return (c) => {
      const r = c.r;
      const res = addSub32(c, r[n === 31 ? c.sp : n * 2]!, imm, sub, setFlags);
      const di = dSp ? c.sp : dFixed;
      r[di] = res;
      r[di + 1] = 0;
    };
  }
  // ADDS / CMN Xn|SP, #imm.
  return (c) => {
    const r = c.r;
    const ni = n === 31 ? c.sp : n * 2;
    add64(c, r[ni]!, r[ni + 1]!, imm, 0, 0, true);
    r[dFixed] = R64.lo;
    r[dFixed + 1] = R64.hi;
  };
}

function logicalImm(f: Record<string, number>): Exec | null {
  const sf = f.sf === 1;
  if (!sf && f.N === 1) return null;
  const mask = decodeBitMasks(f.N!, f.imms!, f.immr!, sf);
  if (!mask) return null;
  const [mlo, mhi] = mask;
  const opc = f.opc!;
  const n = xr(f.Rn!);
  const setFlags = opc === 3;
  // AND/ORR/EOR write SP for Rd=31; ANDS writes XZR.
  const dSp = !setFlags && f.Rd === 31;
  const dFixed = setFlags ? xw(f.Rd!) : f.Rd! * 2;
  return (c) => {
    const r = c.r;
    const a = r[n]!;
    const ah = sf ? r[n + 1]! : 0;
    let lo: number;
    let hi: number;
    if (opc === 1) {
      lo = a | mlo;
      hi = ah | mhi;
    } else if (opc === 2) {
      lo = a ^ mlo;
      hi = ah ^ mhi;
    } else {
      lo = a & mlo;
      hi = ah & mhi;
    }
    lo >>>= 0;
    hi >>>= 0;
    if (setFlags) {
      if (sf) setNZCV(c, hi >>> 31, (lo | hi) === 0 ? 1 : 0, 0, 0);
      else setNZCV(c, lo >>> 31, lo === 0 ? 1 : 0, 0, 0);
    }
    const di = dSp ? c.sp : dFixed;
    r[di] = lo;
    r[di + 1] = hi;
  };
}

/** Move wide: Rd, imm16 << hw * 16 as two halves; null for hw >= 2 in a W form. */
function wideImm(f: Fields): { sf: boolean; d: number; vlo: number; vhi: number } | null {
  const sf = f.sf === 1;
  const hw = f.hw!;
  if (!sf && hw >= 2) return null;
  const imm = f.imm16!;
  const shift = hw * 16;
  const vlo = shift < 32 ? (imm << shift) >>> 0 : 0;
  const vhi = shift >= 32 ? (imm << (shift - 32)) >>> 0 : 0;
  return { sf, d: xw(f.Rd!), vlo, vhi };
}

function movn(f: Fields): Exec | null {
  const w = wideImm(f);
  if (!w) return null;
  const d = w.d;
  const lo = ~w.vlo >>> 0;
  const hi = w.sf ? ~w.vhi >>> 0 : 0;
  return (c) => {
    c.r[d] = lo;
    c.r[d + 1] = hi;
  };
}

function movz(f: Fields): Exec | null {
  const w = wideImm(f);
  if (!w) return null;
  const { d, vlo, vhi } = w;
  return (c) => {
    c.r[d] = vlo;
    c.r[d + 1] = vhi;
  };
}

/** MOVK: replace 16 bits, keep the rest. */
function movk(f: Fields): Exec | null {
  const w = wideImm(f);
  if (!w) return null;
  const { sf, d } = w;
  const shift = f.hw! * 16;
  const imm = f.imm16!;
  const inHi = shift >= 32;
  const s = shift & 31;
  const keep = ~(0xffff << s) >>> 0;
  const ins = (imm << s) >>> 0;
  const src = xr(f.Rd!);
  return (c) => {
    const r = c.r;
    const lo = r[src]!;
    const hi = sf ? r[src + 1]! : 0;
    if (inHi) {
      r[d] = lo;
      r[d + 1] = ((hi & keep) | ins) >>> 0;
    } else {
      r[d] = ((lo & keep) | ins) >>> 0;
      r[d + 1] = hi;
    }
  };
}

/** DecodeBitMasks with immediate=FALSE (Arm ARM J1.1.3.41): returns wmask and tmask. */
function bitfieldMasks(n: number, imms: number, immr: number, bits: number): [bigint, bigint] | null {
  const combined = (n << 6) | (~imms & 0x3f);
  if (combined === 0) return null;
  const len = 31 - Math.clz32(combined);
  if (len < 1 || 1 << len > bits) return null;
  const levels = (1 << len) - 1;
  const s = imms & levels;
  const r = immr & levels;
  const diff = (s - r) & levels;
  const esize = 1 << len;
  const emask = (1n << BigInt(esize)) - 1n;
  const ones = (k: number) => (1n << BigInt(k)) - 1n;
  let welem = ones(s + 1);
  welem = ((welem >> BigInt(r)) | (welem << BigInt(esize - r))) & emask;
  const telem = ones(diff + 1);
  let w = 0n;
  let t = 0n;
  for (let i = 0; i < bits; i += esize) {
    w |= welem << BigInt(i);
    t |= telem << BigInt(i);
  }
  return [w, t];
}

function bitfield(f: Record<string, number>): Exec | null {
  const sf = f.sf === 1;
  const opc = f.opc!;
  if (opc === 3 || f.N !== f.sf) return null;
  if (!sf && (f.immr! >= 32 || f.imms! >= 32)) return null;
  const bits = sf ? 64 : 32;
  const masks = bitfieldMasks(f.N!, f.imms!, f.immr!, bits);
  if (!masks) return null;
  const [w, t] = masks;
  const wlo = Number(w & 0xffffffffn);
  const whi = Number(w >> 32n);
  const tlo = Number(t & 0xffffffffn);
  const thi = Number(t >> 32n);
  const R = f.immr!;
  const S = f.imms!;
  const inzero = opc !== 1; // SBFM, UBFM start from zero; BFM keeps Rd
  const extend = opc === 0; // SBFM replicates the sign bit
  const n = xr(f.Rn!);
  const dr = xr(f.Rd!);
  const d = xw(f.Rd!);
  if (!sf) {
    return (c) => {
      const r = c.r;
      const src = r[n]!;
      const dst = inzero ? 0 : r[dr]!;
      const rot = R === 0 ? src : (src >>> R) | (src << (32 - R));
      const bot = (dst & ~wlo) | (rot & wlo);
      const top = extend ? -((src >>> S) & 1) : dst;
      r[d] = ((top & ~tlo) | (bot & tlo)) >>> 0;
      r[d + 1] = 0;
    };
  }
  return (c) => {
    const r = c.r;
    const slo = r[n]!;
    const shi = r[n + 1]!;
    const dlo = inzero ? 0 : r[dr]!;
    const dhi = inzero ? 0 : r[dr + 1]!;
    ror64(slo, shi, R);
    const blo = (dlo & ~wlo) | (R64.lo & wlo);
    const bhi = (dhi & ~whi) | (R64.hi & whi);
    let toplo = dlo;
    let tophi = dhi;
    if (extend) {
      const bit = S >= 32 ? (shi >>> (S - 32)) & 1 : (slo >>> S) & 1;
      toplo = tophi = -bit;
    }
    r[d] = ((toplo & ~tlo) | (blo & tlo)) >>> 0;
    r[d + 1] = ((tophi & ~thi) | (bhi & thi)) >>> 0;
  };
}

function extract(f: Record<string, number>): Exec | null {
  const sf = f.sf === 1;
  if (f.N !== f.sf) return null;
  const lsb = f.imms!;
  if (!sf && lsb >= 32) return null;
  const n = xr(f.Rn!);
  const m = xr(f.Rm!);
  const d = xw(f.Rd!);
  if (!sf) {
    return (c) => {
      const r = c.r;
      const hi = r[n]!;
      const lo = r[m]!;
      r[d] = lsb === 0 ? lo : ((lo >>> lsb) | (hi << (32 - lsb))) >>> 0;
      r[d + 1] = 0;
    };
  }
  // EXTR Xd = (Xn:Xm)<lsb+63:lsb>
  return (c) => {
    const r = c.r;
    const mlo = r[m]!;
    const mhi = r[m + 1]!;
    const nlo = r[n]!;
    const nhi = r[n + 1]!;
    let lo: number;
    let hi: number;
    if (lsb === 0) {
      lo = mlo;
      hi = mhi;
    } else if (lsb < 32) {
      lo = (mlo >>> lsb) | (mhi << (32 - lsb));
      hi = (mhi >>> lsb) | (nlo << (32 - lsb));
    } else if (lsb === 32) {
      lo = mhi;
      hi = nlo;
    } else {
      const s = lsb - 32;
      lo = (mhi >>> s) | (nlo << (32 - s));
      hi = (nlo >>> s) | (nhi << (32 - s));
    }
    r[d] = lo >>> 0;
    r[d + 1] = hi >>> 0;
  };
}

/**
 * The table, one pattern per instruction (Arm ARM C6.2 headings). Each family shares one
 * format (the field layout) and one handler; the pattern fixes the opcode bits that make
 * it this instruction, and `fixed` passes them to the handler as the fields it reads.
 */
const fixed = withFixedBits;

/** Formats: the fields after the opcode bits of each family. */
const ADDSUB = "100010 sh:1 imm12:12 Rn:5 Rd:5";
const LOGIC = "100100 N:1 immr:6 imms:6 Rn:5 Rd:5";
const MOVW = "100101 hw:2 imm16:16 Rd:5";
const BITF = "100110 N:1 immr:6 imms:6 Rn:5 Rd:5";

const BFM_ALIASES: Record<string, readonly string[]> = {
  SBFM: ["asr", "sbfiz", "sbfx", "sxtb", "sxth", "sxtw"],
  BFM: ["bfi", "bfxil", "bfc"],
  UBFM: ["lsl", "lsr", "ubfiz", "ubfx", "uxtb", "uxth"],
};

export const DP_IMMEDIATE: Pattern[] = [
  { name: "ADR", pattern: "0 immlo:2 10000 immhi:s19 Rd:5", decode: fixed(adr, { op: 0 }) },
  { name: "ADRP", pattern: "1 immlo:2 10000 immhi:s19 Rd:5", decode: fixed(adr, { op: 1 }) },
  ...(
    [
      ["ADD (immediate)", 0, 0, ["mov"]],
      ["ADDS (immediate)", 0, 1, ["cmn"]],
      ["SUB (immediate)", 1, 0, []],
      ["SUBS (immediate)", 1, 1, ["cmp"]],
    ] as const
  ).map(([name, op, S, aliases]) => ({
    name,
    pattern: `sf:1 ${op}${S} ${ADDSUB}`,
    aliases,
    decode: fixed(addSubImm, { op, S }),
  })),
  ...(
    [
      ["AND (immediate)", 0, []],
      ["ORR (immediate)", 1, ["mov"]],
      ["EOR (immediate)", 2, []],
      ["ANDS (immediate)", 3, ["tst"]],
    ] as const
  ).map(([name, opc, aliases]) => ({
    name,
    pattern: `sf:1 ${opc.toString(2).padStart(2, "0")} ${LOGIC}`,
    aliases,
    decode: fixed(logicalImm, { opc }),
  })),
  ...(
    [
      ["MOVN", 0, ["mov"], movn],
      ["MOVZ", 2, ["mov"], movz],
      ["MOVK", 3, [], movk],
    ] as const
  ).map(([name, opc, aliases, decode]) => ({
    name,
    pattern: `sf:1 ${opc.toString(2).padStart(2, "0")} ${MOVW}`,
    aliases,
    decode,
  })),
  ...(["SBFM", "BFM", "UBFM"] as const).map((name, opc) => ({
    name,
    pattern: `sf:1 ${opc.toString(2).padStart(2, "0")} ${BITF}`,
    aliases: BFM_ALIASES[name]!,
    decode: fixed(bitfield, { opc }),
  })),
  { name: "EXTR", pattern: "sf:1 00 100111 N:1 0 Rm:5 imms:6 Rn:5 Rd:5", aliases: ["ror"], decode: extract },
];
