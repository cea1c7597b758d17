/**
 * Data processing — register (Arm ARM C4.1.87): logical and add/subtract (shifted and
 * extended register), add/subtract with carry, conditional compare and select, the
 * 1-, 2- and 3-source groups (bit ops, shifts, divides, CRC32, multiplies).
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
import type { Exec, Fields, Pattern } from "../decoder.ts";
import { xr, xw } from "../regs.ts";
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
      shift64(c, type, r[m]!, r[m + 1]!, amt);
      blo = c.vlo;
      bhi = c.vhi;
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
      r[d] = c.vlo;
      r[d + 1] = c.vhi;
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
      r[d] = c.vlo;
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
      shift64(c, type, r[m]!, r[m + 1]!, amt);
      blo = c.vlo;
      bhi = c.vhi;
    }
    if (sub) {
      blo = ~blo >>> 0;
      bhi = ~bhi >>> 0;
    }
    add64(c, r[n]!, r[n + 1]!, blo, bhi, cin, setFlags);
    r[d] = c.vlo;
    r[d + 1] = c.vhi;
  };
}

/** ExtendReg (Arm ARM J1.1.3): extend Rm by `option`, then shift left by `amt` (0..4). */
function extendReg(c: Cpu, lo: number, hi: number, option: number, amt: number): void {
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
  lsl64(c, lo >>> 0, hi >>> 0, amt);
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
    extendReg(c, r[m]!, r[m + 1]!, option, amt);
    let blo = c.vlo;
    let bhi = c.vhi;
    if (sub) {
      blo = ~blo >>> 0;
      bhi = ~bhi >>> 0;
    }
    const di = dSp ? c.sp : dFixed;
    if (sf) {
      add64(c, r[ni]!, r[ni + 1]!, blo, bhi, cin, setFlags);
      r[di] = c.vlo;
      r[di + 1] = c.vhi;
    } else {
      add32(c, r[ni]!, blo, cin, setFlags);
      r[di] = c.vlo;
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
      r[d] = c.vlo;
      r[d + 1] = c.vhi;
    } else {
      const b = sub ? ~r[m]! >>> 0 : r[m]!;
      add32(c, r[n]!, b, cin, setFlags);
      r[d] = c.vlo;
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

function dataProc3(f: Fields): Exec | null {
  if (f.op54 !== 0) return null;
  const sf = f.sf === 1;
  const op31 = f.op31!;
  const sub = f.o0 === 1;
  const n = xr(f.Rn!);
  const m = xr(f.Rm!);
  const a = xr(f.Ra!);
  const d = xw(f.Rd!);
  if (op31 === 0) {
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
      mul64(c, r[n]!, r[n + 1]!, r[m]!, r[m + 1]!);
      let plo = c.vlo;
      let phi = c.vhi;
      if (!sub) {
        add64(c, r[a]!, r[a + 1]!, plo, phi, 0, false);
      } else {
        plo = ~plo >>> 0;
        phi = ~phi >>> 0;
        add64(c, r[a]!, r[a + 1]!, plo, phi, 1, false);
      }
      r[d] = c.vlo;
      r[d + 1] = c.vhi;
    };
  }
  if (!sf) return null;
  if (op31 === 1 || op31 === 5) {
    // SMADDL/SMSUBL/UMADDL/UMSUBL: 32x32 -> 64 then accumulate.
    const signed = op31 === 1;
    return (c) => {
      const r = c.r;
      const x = r[n]!;
      const y = r[m]!;
      mul64(c, x, signed ? (x >> 31) >>> 0 : 0, y, signed ? (y >> 31) >>> 0 : 0);
      let plo = c.vlo;
      let phi = c.vhi;
      if (sub) {
        plo = ~plo >>> 0;
        phi = ~phi >>> 0;
      }
      add64(c, r[a]!, r[a + 1]!, plo, phi, sub ? 1 : 0, false);
      r[d] = c.vlo;
      r[d + 1] = c.vhi;
    };
  }
  if ((op31 === 2 || op31 === 6) && !sub) {
    const signed = op31 === 2;
    return (c) => {
      const r = c.r;
      mulHigh64(c, r[n]!, r[n + 1]!, r[m]!, r[m + 1]!, signed);
      r[d] = c.vlo;
      r[d + 1] = c.vhi;
    };
  }
  return null;
}

function dataProc2(f: Fields): Exec | null {
  if (f.S !== 0) return null;
  const sf = f.sf === 1;
  const op = f.opcode!;
  const n = xr(f.Rn!);
  const m = xr(f.Rm!);
  const d = xw(f.Rd!);
  if (op === 2 || op === 3) {
    const signed = op === 3;
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
  if (op >= 8 && op <= 11) {
    const type = op - 8;
    if (!sf) {
      return (c) => {
        const r = c.r;
        r[d] = shift32(type, r[n]!, r[m]! & 31);
        r[d + 1] = 0;
      };
    }
    return (c) => {
      const r = c.r;
      shift64(c, type, r[n]!, r[n + 1]!, r[m]! & 63);
      r[d] = c.vlo;
      r[d + 1] = c.vhi;
    };
  }
  if (op >= 16 && op <= 23) {
    const sz = op & 3;
    if ((sz === 3) !== sf) return null;
    const step = op & 4 ? crc32cValue : crc32Value;
    const bytes = (1 << sz) as CrcValueBytes;
    return (c) => {
      const r = c.r;
      r[d] = step(r[n]!, r[m]!, r[m + 1]!, bytes);
      r[d + 1] = 0;
    };
  }
  return null;
}

function rev16(v: number): number {
  return (((v >>> 8) & 0x00ff00ff) | ((v & 0x00ff00ff) << 8)) >>> 0;
}

function dataProc1(f: Fields): Exec | null {
  if (f.S !== 0 || f.opcode2 !== 0) return null;
  const sf = f.sf === 1;
  const op = f.opcode!;
  const n = xr(f.Rn!);
  const d = xw(f.Rd!);
  const write = (c: Cpu, lo: number, hi: number) => {
    c.r[d] = lo >>> 0;
    c.r[d + 1] = sf ? hi >>> 0 : 0;
  };
  switch (op) {
    case 0: // RBIT
      return sf ? (c) => write(c, rbit32(c.r[n + 1]!), rbit32(c.r[n]!)) : (c) => write(c, rbit32(c.r[n]!), 0);
    case 1: // REV16
      return (c) => write(c, rev16(c.r[n]!), rev16(c.r[n + 1]!));
    case 2: // REV32 (64-bit) / REV (32-bit)
      return (c) => write(c, rev32(c.r[n]!), rev32(c.r[n + 1]!));
    case 3: // REV (64-bit)
      return sf ? (c) => write(c, rev32(c.r[n + 1]!), rev32(c.r[n]!)) : null;
    case 4: // CLZ
      return sf ? (c) => write(c, clz64(c.r[n]!, c.r[n + 1]!), 0) : (c) => write(c, Math.clz32(c.r[n]!), 0);
    case 5: // CLS
      if (!sf) return (c) => write(c, Math.clz32(c.r[n]! ^ (c.r[n]! >> 1)) - 1, 0);
      return (c) => {
        const lo = c.r[n]!;
        const hi = c.r[n + 1]!;
        asr64(c, lo, hi, 1);
        write(c, clz64((lo ^ c.vlo) >>> 0, (hi ^ c.vhi) >>> 0) - 1, 0);
      };
    default:
      return null;
  }
}

/**
 * The table, one pattern per instruction (Arm ARM C6.2 headings). Each family shares one
 * format and one handler; a pattern fixes the opcode bits that make it this instruction
 * and `fixed` hands them to the handler as the fields it reads.
 */
const fixed =
  (handler: (f: Fields) => Exec | null, bits: Fields) =>
  (f: Fields): Exec | null =>
    handler({ ...f, ...bits });
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
/** Data-processing (3 source): [name, op31, o0, aliases]. */
const DP3: readonly [string, number, number, readonly string[]][] = [
  ["MADD", 0, 0, ["mul"]],
  ["MSUB", 0, 1, ["mneg"]],
  ["SMADDL", 1, 0, ["smull"]],
  ["SMSUBL", 1, 1, ["smnegl"]],
  ["SMULH", 2, 0, []],
  ["UMADDL", 5, 0, ["umull"]],
  ["UMSUBL", 5, 1, ["umnegl"]],
  ["UMULH", 6, 0, []],
];
/** Data-processing (2 source): [name, opcode, aliases, feature]. */
const DP2: readonly [string, number, readonly string[]][] = [
  ["UDIV", 2, []],
  ["SDIV", 3, []],
  ["LSLV", 8, ["lsl"]],
  ["LSRV", 9, ["lsr"]],
  ["ASRV", 10, ["asr"]],
  ["RORV", 11, ["ror"]],
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
/** Data-processing (1 source): [name, sf (or "sf:1" for both), opcode]. */
const DP1: readonly [string, string, number][] = [
  ["RBIT", "sf:1", 0],
  ["REV16", "sf:1", 1],
  ["REV (32-bit)", "0", 2],
  ["REV32", "1", 2],
  ["REV (64-bit)", "1", 3],
  ["CLZ", "sf:1", 4],
  ["CLS", "sf:1", 5],
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
  ...DP3.map(([name, op31, o0, aliases]) => ({
    name,
    pattern: `sf:1 00 11011 ${bin(op31, 3)} Rm:5 ${o0} Ra:5 Rn:5 Rd:5`,
    aliases,
    decode: fixed(dataProc3, { op54: 0, op31, o0 }),
  })),
  ...DP2.map(([name, opcode, aliases]) => ({
    name,
    pattern: `sf:1 0 0 11010110 Rm:5 ${bin(opcode, 6)} Rn:5 Rd:5`,
    aliases,
    decode: fixed(dataProc2, { S: 0, opcode }),
  })),
  ...CRC.map(([name, C, sz]) => ({
    name,
    pattern: `${sz === 3 ? 1 : 0} 0 0 11010110 Rm:5 010${C}${bin(sz, 2)} Rn:5 Rd:5`,
    feature: "CRC32" as const,
    decode: fixed(dataProc2, { S: 0, sf: sz === 3 ? 1 : 0, opcode: 0b010000 | (C << 2) | sz }),
  })),
  ...DP1.map(([name, sf, opcode]) => ({
    name,
    pattern: `${sf} 1 0 11010110 00000 ${bin(opcode, 6)} Rn:5 Rd:5`,
    decode: fixed(dataProc1, { S: 0, opcode2: 0, opcode, ...(sf === "sf:1" ? {} : { sf: Number(sf) }) }),
  })),
];
