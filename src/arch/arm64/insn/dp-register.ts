/**
 * Data processing — register (Arm ARM C4.1.87): logical and add/subtract (shifted and
 * extended register), add/subtract with carry, conditional compare and select, the
 * 1-, 2- and 3-source groups (bit ops, shifts, divides, CRC32, multiplies).
 * The table (DP_REGISTER, at the end) is one pattern per instruction; the shared formats
 * are the family lists (LOGICAL, ADD_SUB, DP3, DP2, CRC, DP1) and patterns just above it.
 */

import { type CrcValueBytes, crc32cValue, crc32Value } from "../../../lib/crc32.ts";
import {
  add32,
  add64,
  addSub32,
  asr64,
  big,
  clz64,
  conditionHolds,
  lsl64,
  mul64,
  mulHigh64,
  rbit32,
  rev32,
  setBig,
  setNZCV,
  shift32,
  shift64,
  subs64,
} from "../alu.ts";
import type { Cpu } from "../cpu.ts";
import { type Exec, type Fields, type Pattern, withFixedBits } from "../decoder.ts";
import { xr, xw } from "../regs.ts";
import { R64 } from "../ret64.ts";
import { I } from "../state.ts";

function logicalShifted(f: Fields): Exec | null {
  const sf = f.sf === 1;
  if (!sf && f.imm6! >= 32) return null;
  const opc = f.opc!;
  const invert = f.N === 1;
  const type = f.shift!;
  const amt = f.imm6!;
  const n = xr(f.Rn!);
  const m = xr(f.Rm!);
  const d = xw(f.Rd!);
  const setFlags = opc === 3;
  if (!sf) {
    return (c) => {
      const r = c.r;
      let b = shift32(type, r[m]!, amt);
      if (invert) b = ~b;
      const a = r[n]!;
      const v = (opc === 1 ? a | b : opc === 2 ? a ^ b : a & b) >>> 0;
      if (setFlags) setNZCV(c, v >>> 31, v === 0 ? 1 : 0, 0, 0);
      r[d] = v;
      r[d + 1] = 0;
    };
  }
  return (c) => {
    const r = c.r;
    let blo: number;
    let bhi: number;
    if (amt === 0) {
      blo = r[m]!;
      bhi = r[m + 1]!;
    } else {
      shift64(type, r[m]!, r[m + 1]!, amt);
      blo = R64.lo;
      bhi = R64.hi;
    }
    if (invert) {
      blo = ~blo;
      bhi = ~bhi;
    }
    const alo = r[n]!;
    const ahi = r[n + 1]!;
    let lo: number;
    let hi: number;
    if (opc === 1) {
      lo = alo | blo;
      hi = ahi | bhi;
    } else if (opc === 2) {
      lo = alo ^ blo;
      hi = ahi ^ bhi;
    } else {
      lo = alo & blo;
      hi = ahi & bhi;
    }
    lo >>>= 0;
    hi >>>= 0;
    if (setFlags) setNZCV(c, hi >>> 31, (lo | hi) === 0 ? 1 : 0, 0, 0);
    r[d] = lo;
    r[d + 1] = hi;
  };
}

function addSubShifted(f: Fields): Exec | null {
  const sf = f.sf === 1;
  const type = f.shift!;
  if (type === 3 || (!sf && f.imm6! >= 32)) return null;
  const amt = f.imm6!;
  const sub = f.op === 1;
  const setFlags = f.S === 1;
  const n = xr(f.Rn!);
  const m = xr(f.Rm!);
  const d = xw(f.Rd!);
  const cin = sub ? 1 : 0;
  if (sf && amt === 0 && !setFlags) {
    // The common ADD/SUB Xd, Xn, Xm: inline 64-bit arithmetic, no helper, no flags.
    if (!sub) {
      return (c) => {
        const r = c.r;
        const lo = r[n]! + r[m]!;
        const hi = r[n + 1]! + r[m + 1]! + (lo > 0xffffffff ? 1 : 0);
        r[d] = lo >>> 0;
        r[d + 1] = hi >>> 0;
      };
    }
    return (c) => {
      const r = c.r;
      const lo = r[n]! - r[m]!;
      const hi = r[n + 1]! - r[m + 1]! - (lo < 0 ? 1 : 0);
      r[d] = lo >>> 0;
      r[d + 1] = hi >>> 0;
    };
  }
  if (sf && amt === 0 && sub) {
    // SUBS / CMP Xn, Xm: the loop test of nearly every compiled loop.
    return (c) => {
      const r = c.r;
      subs64(c, r[n]!, r[n + 1]!, r[m]!, r[m + 1]!);
      r[d] = R64.lo;
      r[d + 1] = R64.hi;
    };
  }
  if (!sf && amt === 0) {
    // ADD(S)/SUB(S)/CMP Wn, Wm.
    return (c) => {
      const r = c.r;
      r[d] = addSub32(c, r[n]!, r[m]!, sub, setFlags);
      r[d + 1] = 0;
    };
  }
  if (!sf) {
    return (c) => {
      const r = c.r;
      let b = shift32(type, r[m]!, amt);
      if (sub) b = ~b >>> 0;
      add32(c, r[n]!, b, cin, setFlags);
      r[d] = R64.lo;
      r[d + 1] = 0;
    };
  }
  return (c) => {
    const r = c.r;
    let blo: number;
    let bhi: number;
    if (amt === 0) {
      blo = r[m]!;
      bhi = r[m + 1]!;
    } else {
      shift64(type, r[m]!, r[m + 1]!, amt);
      blo = R64.lo;
      bhi = R64.hi;
    }
    if (sub) {
      blo = ~blo >>> 0;
      bhi = ~bhi >>> 0;
    }
    add64(c, r[n]!, r[n + 1]!, blo, bhi, cin, setFlags);
    r[d] = R64.lo;
    r[d + 1] = R64.hi;
  };
}

/** ExtendReg (Arm ARM J1.1.3): extend Rm by `option`, then shift left by `amt` (0..4). */
function extendReg(lo: number, hi: number, option: number, amt: number): void {
  switch (option) {
    case 0:
      lo &= 0xff;
      hi = 0;
      break;
    case 1:
      lo &= 0xffff;
      hi = 0;
      break;
    case 2:
      hi = 0;
      break;
    case 3:
      break;
    case 4:
      lo = (lo << 24) >> 24;
      hi = lo >> 31;
      break;
    case 5:
      lo = (lo << 16) >> 16;
      hi = lo >> 31;
      break;
    case 6:
      hi = lo >> 31;
      break;
    default:
      break;
  }
  lsl64(lo >>> 0, hi >>> 0, amt);
}

function addSubExtended(f: Fields): Exec | null {
  if (f.opt !== 0 || f.imm3! > 4) return null;
  const sf = f.sf === 1;
  const sub = f.op === 1;
  const setFlags = f.S === 1;
  const option = f.option!;
  const amt = f.imm3!;
  const nn = f.Rn!;
  const m = xr(f.Rm!);
  const dn = f.Rd!;
  const dSp = !setFlags && dn === 31;
  const dFixed = setFlags ? xw(dn) : dn * 2;
  const cin = sub ? 1 : 0;
  return (c) => {
    const r = c.r;
    const ni = nn === 31 ? c.sp : nn * 2;
    extendReg(r[m]!, r[m + 1]!, option, amt);
    let blo = R64.lo;
    let bhi = R64.hi;
    if (sub) {
      blo = ~blo >>> 0;
      bhi = ~bhi >>> 0;
    }
    const di = dSp ? c.sp : dFixed;
    if (sf) {
      add64(c, r[ni]!, r[ni + 1]!, blo, bhi, cin, setFlags);
      r[di] = R64.lo;
      r[di + 1] = R64.hi;
    } else {
      add32(c, r[ni]!, blo, cin, setFlags);
      r[di] = R64.lo;
      r[di + 1] = 0;
    }
  };
}

function addSubCarry(f: Fields): Exec {
  const sf = f.sf === 1;
  const sub = f.op === 1;
  const setFlags = f.S === 1;
  const n = xr(f.Rn!);
  const m = xr(f.Rm!);
  const d = xw(f.Rd!);
  return (c) => {
    const r = c.r;
    const cin = (r[I.PSTATE]! >>> 29) & 1;
    if (sf) {
      const blo = sub ? ~r[m]! >>> 0 : r[m]!;
      const bhi = sub ? ~r[m + 1]! >>> 0 : r[m + 1]!;
      add64(c, r[n]!, r[n + 1]!, blo, bhi, cin, setFlags);
      r[d] = R64.lo;
      r[d + 1] = R64.hi;
    } else {
      const b = sub ? ~r[m]! >>> 0 : r[m]!;
      add32(c, r[n]!, b, cin, setFlags);
      r[d] = R64.lo;
      r[d + 1] = 0;
    }
  };
}

function condCompare(f: Fields, immediate: boolean): Exec | null {
  if (f.o2 !== 0 || f.o3 !== 0) return null;
  const sf = f.sf === 1;
  const sub = f.op === 1;
  const cond = f.cond!;
  const flags = f.nzcv!;
  const n = xr(f.Rn!);
  const m = immediate ? -1 : xr(f.Rm!);
  const imm = immediate ? f.Rm! : 0;
  return (c) => {
    const r = c.r;
    if (!conditionHolds(c, cond)) {
      r[I.PSTATE] = (r[I.PSTATE]! & 0x0fffffff) | (flags << 28);
      return;
    }
    let blo = m < 0 ? imm : r[m]!;
    let bhi = m < 0 || !sf ? 0 : r[m + 1]!;
    if (sub) {
      blo = ~blo >>> 0;
      bhi = ~bhi >>> 0;
    }
    if (sf) add64(c, r[n]!, r[n + 1]!, blo, bhi, sub ? 1 : 0, true);
    else add32(c, r[n]!, blo, sub ? 1 : 0, true);
  };
}

function condSelect(f: Fields): Exec | null {
  if (f.S !== 0 || f.op2! > 1) return null;
  const sf = f.sf === 1;
  const kind = (f.op! << 1) | f.op2!; // 0 CSEL, 1 CSINC, 2 CSINV, 3 CSNEG
  const cond = f.cond!;
  const n = xr(f.Rn!);
  const m = xr(f.Rm!);
  const d = xw(f.Rd!);
  return (c) => {
    const r = c.r;
    if (conditionHolds(c, cond)) {
      r[d] = r[n]!;
      r[d + 1] = sf ? r[n + 1]! : 0;
      return;
    }
    let lo = r[m]!;
    let hi = sf ? r[m + 1]! : 0;
    if (kind === 1) {
      lo = (lo + 1) >>> 0;
      if (lo === 0) hi = (hi + 1) >>> 0;
    } else if (kind === 2) {
      lo = ~lo >>> 0;
      hi = ~hi >>> 0;
    } else if (kind === 3) {
      // Two's complement negation: ~x + 1.
      lo = ~lo >>> 0;
      hi = ~hi >>> 0;
      lo = (lo + 1) >>> 0;
      if (lo === 0) hi = (hi + 1) >>> 0;
    }
    r[d] = lo;
    r[d + 1] = sf ? hi : 0;
  };
}

/** The registers of a 3-source instruction (Rn, Rm, Ra, Rd; sf). */
function regs3(f: Fields) {
  return { sf: f.sf === 1, n: xr(f.Rn!), m: xr(f.Rm!), a: xr(f.Ra!), d: xw(f.Rd!) };
}

/** MADD (sub false) / MSUB (sub true): Rd = Ra +/- Rn * Rm. */
function multiplyAdd(f: Fields, sub: boolean): Exec {
  const { sf, n, m, a, d } = regs3(f);
  if (!sf) {
    return (c) => {
      const r = c.r;
      const p = Math.imul(r[n]!, r[m]!);
      r[d] = (sub ? r[a]! - p : r[a]! + p) >>> 0;
      r[d + 1] = 0;
    };
  }
  return (c) => {
    const r = c.r;
    mul64(r[n]!, r[n + 1]!, r[m]!, r[m + 1]!);
    let plo = R64.lo;
    let phi = R64.hi;
    if (!sub) {
      add64(c, r[a]!, r[a + 1]!, plo, phi, 0, false);
    } else {
      plo = ~plo >>> 0;
      phi = ~phi >>> 0;
      add64(c, r[a]!, r[a + 1]!, plo, phi, 1, false);
    }
    r[d] = R64.lo;
    r[d + 1] = R64.hi;
  };
}

/** SMADDL/SMSUBL/UMADDL/UMSUBL: 32x32 -> 64 then accumulate (the pattern fixes sf = 1). */
function multiplyAddLong(f: Fields, signed: boolean, sub: boolean): Exec {
  const { n, m, a, d } = regs3(f);
  return (c) => {
    const r = c.r;
    const x = r[n]!;
    const y = r[m]!;
    mul64(x, signed ? (x >> 31) >>> 0 : 0, y, signed ? (y >> 31) >>> 0 : 0);
    let plo = R64.lo;
    let phi = R64.hi;
    if (sub) {
      plo = ~plo >>> 0;
      phi = ~phi >>> 0;
    }
    add64(c, r[a]!, r[a + 1]!, plo, phi, sub ? 1 : 0, false);
    r[d] = R64.lo;
    r[d + 1] = R64.hi;
  };
}

/** SMULH / UMULH (the pattern fixes sf = 1, o0 = 0; Ra is ignored). */
function multiplyHigh(f: Fields, signed: boolean): Exec {
  const { n, m, d } = regs3(f);
  return (c) => {
    const r = c.r;
    mulHigh64(r[n]!, r[n + 1]!, r[m]!, r[m + 1]!, signed);
    r[d] = R64.lo;
    r[d + 1] = R64.hi;
  };
}

/** The registers of a 2-source instruction (Rn, Rm, Rd; sf). */
function regs2(f: Fields) {
  return { sf: f.sf === 1, n: xr(f.Rn!), m: xr(f.Rm!), d: xw(f.Rd!) };
}

/** UDIV / SDIV; division by zero gives 0. */
function divide(f: Fields, signed: boolean): Exec {
  const { sf, n, m, d } = regs2(f);
  if (!sf) {
    return (c) => {
      const r = c.r;
      const x = r[n]!;
      const y = r[m]!;
      let q: number;
      if (y === 0) q = 0;
      else if (signed) q = Math.trunc((x | 0) / (y | 0)) | 0;
      else q = Math.floor(x / y);
      r[d] = q >>> 0;
      r[d + 1] = 0;
    };
  }
  return (c) => {
    const r = c.r;
    const yhi = r[m + 1]!;
    const ylo = r[m]!;
    if ((ylo | yhi) === 0) {
      r[d] = 0;
      r[d + 1] = 0;
      return;
    }
    const xhi = r[n + 1]!;
    if (!signed && xhi === 0 && yhi === 0) {
      r[d] = Math.floor(r[n]! / ylo) >>> 0;
      r[d + 1] = 0;
      return;
    }
    let x = big(c, n);
    let y = big(c, m);
    if (signed) {
      x = BigInt.asIntN(64, x);
      y = BigInt.asIntN(64, y);
    }
    setBig(c, d, x / y); // BigInt division truncates toward zero, as SDIV does
  };
}

/** LSLV/LSRV/ASRV/RORV: shift type 0-3 by Rm modulo the width. */
function shiftVariable(f: Fields, type: number): Exec {
  const { sf, n, m, d } = regs2(f);
  if (!sf) {
    return (c) => {
      const r = c.r;
      r[d] = shift32(type, r[n]!, r[m]! & 31);
      r[d + 1] = 0;
    };
  }
  return (c) => {
    const r = c.r;
    shift64(type, r[n]!, r[n + 1]!, r[m]! & 63);
    r[d] = R64.lo;
    r[d + 1] = R64.hi;
  };
}

/** CRC32B..CRC32X (castagnoli false), CRC32CB..CRC32CX (true): 1 << sz bytes of Rm. */
function crc32(f: Fields, castagnoli: boolean, sz: number): Exec {
  const { n, m, d } = regs2(f);
  const step = castagnoli ? crc32cValue : crc32Value;
  const bytes = (1 << sz) as CrcValueBytes;
  return (c) => {
    const r = c.r;
    r[d] = step(r[n]!, r[m]!, r[m + 1]!, bytes);
    r[d + 1] = 0;
  };
}

function rev16(v: number): number {
  return (((v >>> 8) & 0x00ff00ff) | ((v & 0x00ff00ff) << 8)) >>> 0;
}

/** Writes a 1-source result to Rd (the upper half zero for a W result). */
type Write1 = (c: Cpu, lo: number, hi: number) => void;
/** A 1-source instruction's executor from sf, Rn's index and the write to Rd. */
type Body1 = (sf: boolean, n: number, write: Write1) => Exec;

/**
 * Data-processing (1 source): the shared operand set of RBIT, REV*, CLZ, CLS; `fixedSf`
 * for the patterns whose sf bit is fixed (REV (32-bit), REV32, REV (64-bit)).
 */
function dataProc1(body: Body1, fixedSf?: boolean) {
  return (f: Fields): Exec => {
    const sf = fixedSf ?? f.sf === 1;
    const n = xr(f.Rn!);
    const d = xw(f.Rd!);
    const write = (c: Cpu, lo: number, hi: number) => {
      c.r[d] = lo >>> 0;
      c.r[d + 1] = sf ? hi >>> 0 : 0;
    };
    return body(sf, n, write);
  };
}

const RBIT: Body1 = (sf, n, write) =>
  sf ? (c) => write(c, rbit32(c.r[n + 1]!), rbit32(c.r[n]!)) : (c) => write(c, rbit32(c.r[n]!), 0);
const REV16: Body1 = (_sf, n, write) => (c) => write(c, rev16(c.r[n]!), rev16(c.r[n + 1]!));
/** REV32 (64-bit) and REV (32-bit): each word reversed in place. */
const REV_WORDS: Body1 = (_sf, n, write) => (c) => write(c, rev32(c.r[n]!), rev32(c.r[n + 1]!));
/** REV (64-bit, the pattern fixes sf = 1). */
const REV64: Body1 = (_sf, n, write) => (c) => write(c, rev32(c.r[n + 1]!), rev32(c.r[n]!));
const CLZ: Body1 = (sf, n, write) =>
  sf ? (c) => write(c, clz64(c.r[n]!, c.r[n + 1]!), 0) : (c) => write(c, Math.clz32(c.r[n]!), 0);
const CLS: Body1 = (sf, n, write) => {
  if (!sf) return (c) => write(c, Math.clz32(c.r[n]! ^ (c.r[n]! >> 1)) - 1, 0);
  return (c) => {
    const lo = c.r[n]!;
    const hi = c.r[n + 1]!;
    asr64(lo, hi, 1);
    write(c, clz64((lo ^ R64.lo) >>> 0, (hi ^ R64.hi) >>> 0) - 1, 0);
  };
};

/**
 * The table, one pattern per instruction (Arm ARM C6.2 headings). Each family shares one
 * format and one handler; a pattern fixes the opcode bits that make it this instruction
 * and `fixed` hands them to the handler as the fields it reads.
 */
const fixed = withFixedBits;
const bin = (v: number, width: number) => v.toString(2).padStart(width, "0");

/** Logical (shifted register): [name, opc, N, aliases]. */
const LOGICAL: readonly [string, number, number, readonly string[]][] = [
  ["AND (shifted register)", 0, 0, []],
  ["BIC (shifted register)", 0, 1, []],
  ["ORR (shifted register)", 1, 0, ["mov"]],
  ["ORN (shifted register)", 1, 1, ["mvn"]],
  ["EOR (shifted register)", 2, 0, []],
  ["EON (shifted register)", 2, 1, []],
  ["ANDS (shifted register)", 3, 0, ["tst"]],
  ["BICS (shifted register)", 3, 1, []],
];
/** The add/subtract families: [mnemonic, op, S, aliases (shifted), aliases (extended)]. */
const ADD_SUB: readonly [string, number, number, readonly string[], readonly string[]][] = [
  ["ADD", 0, 0, [], ["mov"]],
  ["ADDS", 0, 1, ["cmn"], ["cmn"]],
  ["SUB", 1, 0, ["neg"], []],
  ["SUBS", 1, 1, ["cmp", "negs"], ["cmp"]],
];
/** Data-processing (3 source): [name, op31, o0, aliases, handler]. */
const DP3: readonly [string, number, number, readonly string[], (f: Fields) => Exec][] = [
  ["MADD", 0, 0, ["mul"], (f) => multiplyAdd(f, false)],
  ["MSUB", 0, 1, ["mneg"], (f) => multiplyAdd(f, true)],
  ["SMADDL", 1, 0, ["smull"], (f) => multiplyAddLong(f, true, false)],
  ["SMSUBL", 1, 1, ["smnegl"], (f) => multiplyAddLong(f, true, true)],
  ["SMULH", 2, 0, [], (f) => multiplyHigh(f, true)],
  ["UMADDL", 5, 0, ["umull"], (f) => multiplyAddLong(f, false, false)],
  ["UMSUBL", 5, 1, ["umnegl"], (f) => multiplyAddLong(f, false, true)],
  ["UMULH", 6, 0, [], (f) => multiplyHigh(f, false)],
];
/** Data-processing (2 source): [name, opcode, aliases, handler]. */
const DP2: readonly [string, number, readonly string[], (f: Fields) => Exec][] = [
  ["UDIV", 2, [], (f) => divide(f, false)],
  ["SDIV", 3, [], (f) => divide(f, true)],
  ["LSLV", 8, ["lsl"], (f) => shiftVariable(f, 0)],
  ["LSRV", 9, ["lsr"], (f) => shiftVariable(f, 1)],
  ["ASRV", 10, ["asr"], (f) => shiftVariable(f, 2)],
  ["RORV", 11, ["ror"], (f) => shiftVariable(f, 3)],
];
/** CRC32 (Arm ARM C6.2.7x): [name, C, sz]; CRC32X/CX need sf = 1, the others sf = 0. */
const CRC: readonly [string, number, number][] = [
  ["CRC32B", 0, 0],
  ["CRC32H", 0, 1],
  ["CRC32W", 0, 2],
  ["CRC32X", 0, 3],
  ["CRC32CB", 1, 0],
  ["CRC32CH", 1, 1],
  ["CRC32CW", 1, 2],
  ["CRC32CX", 1, 3],
];
/** Data-processing (1 source): [name, sf (or "sf:1" for both), opcode, executor]. */
const DP1: readonly [string, string, number, Body1][] = [
  ["RBIT", "sf:1", 0, RBIT],
  ["REV16", "sf:1", 1, REV16],
  ["REV (32-bit)", "0", 2, REV_WORDS],
  ["REV32", "1", 2, REV_WORDS],
  ["REV (64-bit)", "1", 3, REV64],
  ["CLZ", "sf:1", 4, CLZ],
  ["CLS", "sf:1", 5, CLS],
];

export const DP_REGISTER: Pattern[] = [
  ...LOGICAL.map(([name, opc, N, aliases]) => ({
    name,
    pattern: `sf:1 ${bin(opc, 2)} 01010 shift:2 ${N} Rm:5 imm6:6 Rn:5 Rd:5`,
    aliases,
    decode: fixed(logicalShifted, { opc, N }),
  })),
  ...ADD_SUB.map(([mn, op, S, aliases]) => ({
    name: `${mn} (shifted register)`,
    pattern: `sf:1 ${op}${S} 01011 shift:2 0 Rm:5 imm6:6 Rn:5 Rd:5`,
    aliases,
    decode: fixed(addSubShifted, { op, S }),
  })),
  ...ADD_SUB.map(([mn, op, S, , aliases]) => ({
    name: `${mn} (extended register)`,
    pattern: `sf:1 ${op}${S} 01011 opt:2 1 Rm:5 option:3 imm3:3 Rn:5 Rd:5`,
    aliases,
    decode: fixed(addSubExtended, { op, S }),
  })),
  ...(
    [
      ["ADC", 0, 0, []],
      ["ADCS", 0, 1, []],
      ["SBC", 1, 0, ["ngc"]],
      ["SBCS", 1, 1, ["ngcs"]],
    ] as const
  ).map(([name, op, S, aliases]) => ({
    name,
    pattern: `sf:1 ${op}${S} 11010000 Rm:5 000000 Rn:5 Rd:5`,
    aliases,
    decode: fixed(addSubCarry, { op, S }),
  })),
  ...(["CCMN", "CCMP"] as const).flatMap((mn, op) => [
    {
      name: `${mn} (register)`,
      pattern: `sf:1 ${op} 1 11010010 Rm:5 cond:4 0 o2:1 Rn:5 o3:1 nzcv:4`,
      decode: (f: Fields) => condCompare({ ...f, op }, false),
    },
    {
      name: `${mn} (immediate)`,
      pattern: `sf:1 ${op} 1 11010010 Rm:5 cond:4 1 o2:1 Rn:5 o3:1 nzcv:4`,
      decode: (f: Fields) => condCompare({ ...f, op }, true),
    },
  ]),
  ...(
    [
      ["CSEL", 0, 0, []],
      ["CSINC", 0, 1, ["cset", "cinc"]],
      ["CSINV", 1, 0, ["csetm", "cinv"]],
      ["CSNEG", 1, 1, ["cneg"]],
    ] as const
  ).map(([name, op, o2, aliases]) => ({
    name,
    pattern: `sf:1 ${op} 0 11010100 Rm:5 cond:4 0${o2} Rn:5 Rd:5`,
    aliases,
    decode: fixed(condSelect, { op, S: 0, op2: o2 }),
  })),
  ...DP3.map(([name, op31, o0, aliases, decode]) => ({
    name,
    // Only MADD/MSUB have a 32-bit form.
    pattern: `${op31 === 0 ? "sf:1" : "1"} 00 11011 ${bin(op31, 3)} Rm:5 ${o0} Ra:5 Rn:5 Rd:5`,
    aliases,
    decode,
  })),
  ...DP2.map(([name, opcode, aliases, decode]) => ({
    name,
    pattern: `sf:1 0 0 11010110 Rm:5 ${bin(opcode, 6)} Rn:5 Rd:5`,
    aliases,
    decode,
  })),
  ...CRC.map(([name, C, sz]) => ({
    name,
    pattern: `${sz === 3 ? 1 : 0} 0 0 11010110 Rm:5 010${C}${bin(sz, 2)} Rn:5 Rd:5`,
    feature: "CRC32" as const,
    decode: (f: Fields) => crc32(f, C === 1, sz),
  })),
  ...DP1.map(([name, sf, opcode, body]) => ({
    name,
    pattern: `${sf} 1 0 11010110 00000 ${bin(opcode, 6)} Rn:5 Rd:5`,
    decode: dataProc1(body, sf === "sf:1" ? undefined : sf === "1"),
  })),
];
