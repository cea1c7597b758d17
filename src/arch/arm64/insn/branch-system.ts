/**
 * Branches, exception generation and system instructions (Arm ARM C4.1.85):
 * B/BL/B.cond/CBZ/TBZ/BR/BLR/RET/ERET, SVC/HVC/SMC/BRK/HLT, hints (WFI/WFE/SEV/...),
 * barriers, CLREX, MSR (immediate), SYS (DC/IC/TLBI/AT) and MRS/MSR (register).
 * The table (BRANCH_SYSTEM, at the end) is one pattern per instruction; the shared formats
 * (COND_BRANCH, BRANCH_REG, EXCEPTION, HINT, BARRIER, SYSREG_MOVE, ...) are just above it.
 */
import { ACC, CMO } from "../access.ts";
import { conditionHolds } from "../alu.ts";
import type { Cpu } from "../cpu.ts";
import type { Exec, Fields, Pattern } from "../decoder.ts";
import { EC } from "../exceptions.ts";
import { xr, xw } from "../regs.ts";
import { R64 } from "../ret64.ts";
import { I } from "../state.ts";
import { SYSREG_BY_KEY, type SysReg, sysregIndex, sysregKey } from "../sysregs.ts";

const TWO32 = 4294967296;

/** PC-relative branch target: current PC + signed byte offset. */
export function jump(c: Cpu, off: number): void {
  const sum = c.pcLo + off;
  if (sum >= 0 && sum < TWO32) c.branch(sum, c.pcHi);
  else c.branch(sum >>> 0, (c.pcHi + (sum < 0 ? -1 : 1)) >>> 0);
}

/** Writes the return address (PC + 4) to X30. */
function link(c: Cpu): void {
  const lo = (c.pcLo + 4) >>> 0;
  c.r[60] = lo;
  c.r[61] = lo < 4 ? (c.pcHi + 1) >>> 0 : c.pcHi;
}

/** B, BL: imm26 words from PC. */
function branch(f: Fields): Exec {
  const off = f.imm26! * 4;
  return (c) => jump(c, off);
}

function branchLink(f: Fields): Exec {
  const off = f.imm26! * 4;
  return (c) => {
    link(c);
    jump(c, off);
  };
}

function branchCond(f: Fields): Exec {
  const off = f.imm19! * 4;
  const cond = f.cond!;
  return (c) => {
    if (conditionHolds(c, cond)) jump(c, off);
  };
}

/** CBZ (nonZero false) / CBNZ (nonZero true). */
function compareBranch(f: Fields, nonZero: boolean): Exec {
  const off = f.imm19! * 4;
  const t = xr(f.Rt!);
  const sf = f.sf === 1;
  return (c) => {
    const zero = (c.r[t]! | (sf ? c.r[t + 1]! : 0)) === 0;
    if (zero !== nonZero) jump(c, off);
  };
}

/** TBZ (ifSet false) / TBNZ (ifSet true). */
function testBranch(f: Fields, ifSet: boolean): Exec {
  const off = f.imm14! * 4;
  const bit = (f.b5! << 5) | f.b40!;
  const idx = xr(f.Rt!) + (bit >= 32 ? 1 : 0);
  const mask = (1 << (bit & 31)) >>> 0;
  return (c) => {
    if (((c.r[idx]! & mask) !== 0) === ifSet) jump(c, off);
  };
}

/** BR and RET: branch to Xn. */
function branchReg(f: Fields): Exec {
  const n = xr(f.Rn!);
  return (c) => c.branch(c.r[n]!, c.r[n + 1]!);
}

/** BLR: reads the target before writing X30 (BLR X30 is valid). */
function branchLinkReg(f: Fields): Exec {
  const n = xr(f.Rn!);
  return (c) => {
    const lo = c.r[n]!;
    const hi = c.r[n + 1]!;
    link(c);
    c.branch(lo, hi);
  };
}

function eret(): Exec {
  return (c) => {
    if (c.el === 0) c.undefined();
    c.exceptionReturn();
  };
}

/** Exception generation, imm16 passed on (the ISS of SVC/HVC/SMC/BRK). */
const svc =
  (imm: number): Exec =>
  (c) =>
    c.svc(imm);
const hvc =
  (imm: number): Exec =>
  (c) =>
    c.hvc(imm);
const smc =
  (imm: number): Exec =>
  (c) =>
    c.smc(imm);
const brk =
  (imm: number): Exec =>
  (c) =>
    c.syncException(EC.BRK64, imm);
/** HLT: UNDEFINED unless the owner traps it (semihosting). */
const hlt =
  (imm: number): Exec =>
  (c) =>
    c.hlt(imm);

/** The closures of the hints with an effect; every other hint is a NOP. */
const wfe = (): Exec => (c) => c.wfe();
const wfi = (): Exec => (c) => c.wfi();
/** SEV: signal every PE; the owner propagates it (see Cpu.onSendEvent). */
const sev = (): Exec => (c) => {
  c.r[I.EVENT] = 1;
  c.onSendEvent?.(c);
};
const sevl = (): Exec => (c) => {
  c.r[I.EVENT] = 1;
};
const nop = (): Exec => () => {};

function clrex(): Exec {
  return (c) => {
    c.r[I.EXCL_VALID] = 0;
  };
}

/** MSR (immediate): the PSTATE field op1:op2 names (SPSel, DAIFSet, DAIFClr). */
function msrImm(f: Fields): Exec | null {
  const imm = f.CRm!;
  const sel = (f.op1! << 3) | f.op2!;
  switch (sel) {
    case 0b000_101: // SPSel
      return (c) => {
        if (c.el === 0) c.undefined();
        c.r[I.PSTATE] = ((c.r[I.PSTATE]! & ~1) | (imm & 1)) >>> 0;
        c.pstateChanged();
      };
    case 0b011_110: // DAIFSet
    case 0b011_111: {
      // DAIFClr
      const bits = imm << 6;
      const set = sel === 0b011_110;
      // Trapped by SCTLR_EL1.UMA: the ISS names the instruction (Op0 0, CRn 4, Rt 31).
      const iss = sysregIss({ ...f, op0: 0, CRn: 4, Rt: 31 }, false);
      return (c) => {
        if (c.el === 0 && !uma(c)) c.syncException(EC.SYSREG, iss);
        const p = c.r[I.PSTATE]!;
        c.r[I.PSTATE] = (set ? p | bits : p & ~bits) >>> 0;
        c.interruptsChanged();
      };
    }
    default:
      return null;
  }
}

const SCTLR = sysregIndex("SCTLR_EL1");
const DCZID = sysregIndex("DCZID_EL0");
/** SCTLR_EL1.UMA: EL0 access to DAIF. */
function uma(c: Cpu): boolean {
  return (c.r[SCTLR]! & (1 << 9)) !== 0;
}

/**
 * SYS / SYSL: cache maintenance, TLB maintenance and address translation (Arm ARM C5.3).
 * Only the encodings an Armv8.0 PE without EL2/EL3 has are allocated; the rest (the EL2
 * forms with op1 = 4, AT S1E1RP/WP without PAN, DC CVAP without DPB, ...) are UNDEFINED.
 */
function sys(f: Fields): Exec | null {
  const op1 = f.op1!;
  const crn = f.CRn!;
  const crm = f.CRm!;
  const op2 = f.op2!;
  const t = xr(f.Rt!);
  // The ISS of an EL0 trap (DZE, UCI): the instruction's encoding, as for MSR/MRS (Op0 1).
  const iss = sysregIss({ ...f, op0: 1 }, false);
  if (crn === 7) {
    if (op1 === 3) {
      // DC ZVA: zero a naturally aligned block of 4 << DCZID.BS bytes; a store for faults.
      if (crm === 4 && op2 === 1) {
        return (c) => {
          if (c.el === 0 && (c.r[SCTLR]! & (1 << 14)) === 0) c.syncException(EC.SYSREG, iss);
          const size = 4 << (c.r[DCZID]! & 0xf);
          const lo = (c.r[t]! & ~(size - 1)) >>> 0;
          const hi = c.r[t + 1]!;
          // One translation for the block, which is aligned and so within a page (BS <= 9,
          // D19.2.x DCZID_EL0); RAM is filled at once, MMIO gets the stores one at a time.
          const o = c.hostOffset(lo, hi, size, ACC.WRITE);
          if (o >= 0) c.m8.fill(0, o, o + size);
          else for (let i = 0; i < size; i += 8) c.st64(lo + i, hi, 0, 0);
        };
      }
      // EL0-permitted with SCTLR_EL1.UCI: DC CVAC (10,1), DC CVAU (11,1), DC CIVAC (14,1),
      // IC IVAU (5,1). Cache maintenance is architecturally invisible here (coherent
      // caches); what remains is the translation and its faults.
      if (op2 === 1 && (crm === 10 || crm === 11 || crm === 14 || crm === 5)) {
        return (c) => {
          if (c.el === 0 && (c.r[SCTLR]! & (1 << 26)) === 0) c.syncException(EC.SYSREG, iss);
          c.cacheMaintenance(c.r[t]!, c.r[t + 1]!, CMO.CLEAN);
        };
      }
      return null;
    }
    if (op1 !== 0) return null;
    // AT S1E1R (0), S1E1W (1), S1E0R (2), S1E0W (3).
    if (crm === 8 && op2 <= 3) {
      return (c) => {
        if (c.el === 0) c.undefined();
        c.addressTranslate(op2, c.r[t]!, c.r[t + 1]!);
      };
    }
    // DC IVAC (6,1): by VA, needs write permission.
    if (crm === 6 && op2 === 1) {
      return (c) => {
        if (c.el === 0) c.undefined();
        c.cacheMaintenance(c.r[t]!, c.r[t + 1]!, CMO.INVALIDATE);
      };
    }
    // IC IALLUIS (1,0), IC IALLU (5,0), DC ISW (6,2), DC CSW (10,2), DC CISW (14,2):
    // set/way and whole-cache operations, no address.
    const setWay =
      (op2 === 0 && (crm === 1 || crm === 5)) || (op2 === 2 && (crm === 6 || crm === 10 || crm === 14));
    if (setWay) {
      return (c) => {
        if (c.el === 0) c.undefined();
      };
    }
    return null;
  }
  if (crn === 8 && op1 === 0 && (crm === 3 || crm === 7)) {
    // TLBI VMALLE1 (0), VAE1 (1), ASIDE1 (2), VAAE1 (3), VALE1 (5), VAALE1 (7); CRm = 3
    // are the Inner Shareable forms, which reach every PE of the domain.
    if (op2 === 4 || op2 === 6) return null;
    const broadcast = crm === 3;
    return (c) => {
      if (c.el === 0) c.undefined();
      c.tlbi(op2, c.r[t]!, c.r[t + 1]!, broadcast);
    };
  }
  return null;
}

/** The ISS of a trapped MSR/MRS (EC 0x18, Arm ARM D17.2.37). */
function sysregIss(f: Fields, read: boolean): number {
  return (
    (f.op0! << 20) |
    (f.op2! << 17) |
    (f.op1! << 14) |
    (f.CRn! << 10) |
    (f.Rt! << 5) |
    (f.CRm! << 1) |
    (read ? 1 : 0)
  );
}

/** MRS (read true) / MSR (register) (read false): op0 = 2 + o0. */
function mrsMsr(f: Fields, read: boolean): Exec | null {
  const key = sysregKey(f.op0!, f.op1!, f.CRn!, f.CRm!, f.op2!);
  const iss = sysregIss(f, read);
  const reg: SysReg | undefined = SYSREG_BY_KEY.get(key);
  if (!reg) {
    // Registers supplied by the owner (e.g. the GIC CPU interface) are looked up at run time.
    return (c) => {
      const ext = c.extraSysregs?.get(key);
      if (!ext || c.el === 0) return c.undefined();
      if (read) {
        ext.read(c);
        const d = xw(f.Rt!);
        c.r[d] = R64.lo >>> 0;
        c.r[d + 1] = R64.hi >>> 0;
      } else {
        const s = xr(f.Rt!);
        ext.write(c, c.r[s]!, c.r[s + 1]!);
      }
    };
  }
  // An encoding allocated for one direction only is UNDEFINED in the other (MSR to an ID
  // register, MRS of OSLAR_EL1).
  if (read ? !reg.readable : !reg.writable) return null;
  const el0 = reg.el0;
  const el0Allowed = typeof el0 === "function" ? false : read ? el0 !== "none" : el0 === "rw";
  const spEl0 = reg.name === "SP_EL0";
  const checkEl0 = (c: Cpu) => {
    // SP_EL0 while it is the stack pointer in use (PSTATE.SP == 0) is UNDEFINED at EL1
    // (Arm ARM C5.2.x, SP_EL0: "if PSTATE.SP == '0' then UNDEFINED").
    if (spEl0 && c.el === 1 && (c.r[I.PSTATE]! & 1) === 0) c.undefined(); // M[0], SPSel
    if (c.el === 0 && !el0Allowed) {
      // Registers that exist but are EL1-only: trapped (EC 0x18) in Linux's configuration
      // when EL0 may not touch them; DAIF follows SCTLR_EL1.UMA, others a control register
      // (SCTLR_EL1.UCT, MDSCR_EL1.TDCC, ...) through their el0 check.
      if (reg.name === "DAIF" && uma(c)) return;
      if (typeof el0 === "function" && el0(c, !read)) return;
      c.syncException(EC.SYSREG, iss);
    }
  };
  if (reg.access) {
    const acc = reg.access;
    if (read) {
      const d = xw(f.Rt!);
      return (c) => {
        checkEl0(c);
        acc.read(c);
        c.r[d] = R64.lo >>> 0;
        c.r[d + 1] = R64.hi >>> 0;
      };
    }
    const s = xr(f.Rt!);
    return (c) => {
      checkEl0(c);
      acc.write(c, c.r[s]!, c.r[s + 1]!);
    };
  }
  const slot = I.SYSREGS + reg.slot * 2;
  if (read) {
    const d = xw(f.Rt!);
    return (c) => {
      checkEl0(c);
      c.r[d] = c.r[slot]!;
      c.r[d + 1] = c.r[slot + 1]!;
    };
  }
  const s = xr(f.Rt!);
  const [mlo, mhi] = reg.writeMask ?? [0xffffffff, 0xffffffff];
  const after = reg.onWrite;
  if (after)
    return (c) => {
      checkEl0(c);
      c.r[slot] = ((c.r[slot]! & ~mlo) | (c.r[s]! & mlo)) >>> 0;
      c.r[slot + 1] = ((c.r[slot + 1]! & ~mhi) | (c.r[s + 1]! & mhi)) >>> 0;
      after(c);
    };
  return (c) => {
    checkEl0(c);
    c.r[slot] = ((c.r[slot]! & ~mlo) | (c.r[s]! & mlo)) >>> 0;
    c.r[slot + 1] = ((c.r[slot + 1]! & ~mhi) | (c.r[s + 1]! & mhi)) >>> 0;
    c.sysregWritten(reg);
  };
}

/**
 * Formats (the fields after the fixed bits of each family, as decodetree's `@` formats):
 * each pattern of the table below is one instruction built from one of these.
 */
const COND_BRANCH = (op: 0 | 1) => `sf:1 011010 ${op} imm19:s19 Rt:5`;
const TEST_BRANCH = (op: 0 | 1) => `b5:1 011011 ${op} b40:5 imm14:s14 Rt:5`;
/** Unconditional branch (register): opc, then op2 = 11111, op3 = 000000, Rn, op4 = 00000. */
const BRANCH_REG = (opc: string, rn = "Rn:5") => `1101011 ${opc} 11111 000000 ${rn} 00000`;
/** Exception generation: opc, imm16, op2 = 000, LL. */
const EXCEPTION = (opc: string, ll: string) => `11010100 ${opc} imm16:16 000 ${ll}`;
/** Hints: CRm:op2 (7 bits), Rt = 11111. */
const HINT = (crmOp2: string) => `11010101000000110010 ${crmOp2} 11111`;
/** Barriers and CLREX: CRm, op2, Rt = 11111. */
const BARRIER = (op2: string) => `11010101000000110011 CRm:4 ${op2} 11111`;
/** System register move: L, o0 (op0 = 2 + o0), op1, CRn, CRm, op2, Rt. */
const SYSREG_MOVE = (L: 0 | 1) => `1101010100 ${L} 1 o0:1 op1:3 CRn:4 CRm:4 op2:3 Rt:5`;

/** What objdump prints for B.cond, by cond. */
const CONDITIONS = "eq ne cs cc mi pl vs vc hi ls ge lt gt le al nv".split(" ");
/**
 * The names objdump gives hint encodings that later architecture versions allocated
 * (PAuth, RAS, SPE, BTI, CSDB, ...); on this Armv8.0 PE they execute as HINT, a NOP.
 */
const HINT_ALIASES = [
  ..."xpaclri pacia1716 pacib1716 autia1716 autib1716 esb psb tsb csdb clearbhb bti".split(" "),
  ..."paciaz paciasp pacibz pacibsp autiaz autiasp autibz autibsp".split(" "),
];

/**
 * The table, one pattern per instruction (Arm ARM C6.2 headings); the shared layouts are
 * the formats above. Order matters only for HINT, which catches the hints not named
 * before it. Not decoded (UNDEFINED): DCPS1-3 (Debug state only), SYSL (no allocated
 * encoding in Armv8.0), and the later extensions' encodings (BC.cond, BRAA, SB, ...).
 */
export const BRANCH_SYSTEM: Pattern[] = [
  { name: "B", pattern: "0 00101 imm26:s26", decode: branch },
  { name: "BL", pattern: "1 00101 imm26:s26", decode: branchLink },
  {
    name: "B.cond",
    pattern: "0101010 0 imm19:s19 0 cond:4",
    aliases: CONDITIONS.map((cc) => `b.${cc}`),
    decode: branchCond,
  },
  { name: "CBZ", pattern: COND_BRANCH(0), decode: (f) => compareBranch(f, false) },
  { name: "CBNZ", pattern: COND_BRANCH(1), decode: (f) => compareBranch(f, true) },
  { name: "TBZ", pattern: TEST_BRANCH(0), decode: (f) => testBranch(f, false) },
  { name: "TBNZ", pattern: TEST_BRANCH(1), decode: (f) => testBranch(f, true) },
  { name: "BR", pattern: BRANCH_REG("0000"), decode: branchReg },
  { name: "BLR", pattern: BRANCH_REG("0001"), decode: branchLinkReg },
  { name: "RET", pattern: BRANCH_REG("0010"), decode: branchReg },
  { name: "ERET", pattern: BRANCH_REG("0100", "11111"), decode: eret },
  { name: "SVC", pattern: EXCEPTION("000", "01"), decode: (f) => svc(f.imm16!) },
  { name: "HVC", pattern: EXCEPTION("000", "10"), decode: (f) => hvc(f.imm16!) },
  { name: "SMC", pattern: EXCEPTION("000", "11"), decode: (f) => smc(f.imm16!) },
  { name: "BRK", pattern: EXCEPTION("001", "00"), decode: (f) => brk(f.imm16!) },
  { name: "HLT", pattern: EXCEPTION("010", "00"), decode: (f) => hlt(f.imm16!) },
  { name: "NOP", pattern: HINT("0000 000"), decode: nop },
  { name: "YIELD", pattern: HINT("0000 001"), decode: nop },
  { name: "WFE", pattern: HINT("0000 010"), decode: wfe },
  { name: "WFI", pattern: HINT("0000 011"), decode: wfi },
  { name: "SEV", pattern: HINT("0000 100"), decode: sev },
  { name: "SEVL", pattern: HINT("0000 101"), decode: sevl },
  // The rest of the hint space (ESB, PSB, BTI, PAC*SP, ... and unallocated) behaves as NOP.
  { name: "HINT", pattern: HINT("CRm:4 op2:3"), aliases: HINT_ALIASES, decode: nop },
  { name: "CLREX", pattern: BARRIER("010"), decode: clrex },
  // SSBB and PSSBB are DSB with CRm = 0000 and 0100.
  { name: "DSB", pattern: BARRIER("100"), aliases: ["ssbb", "pssbb"], decode: nop },
  { name: "DMB", pattern: BARRIER("101"), decode: nop },
  { name: "ISB", pattern: BARRIER("110"), decode: nop },
  { name: "MSR (immediate)", pattern: "1101010100000 op1:3 0100 CRm:4 op2:3 11111", decode: msrImm },
  {
    name: "SYS",
    pattern: "1101010100 0 01 op1:3 CRn:4 CRm:4 op2:3 Rt:5",
    aliases: ["at", "dc", "ic", "tlbi"],
    decode: sys,
  },
  { name: "MRS", pattern: SYSREG_MOVE(1), decode: (f) => mrsMsr({ ...f, op0: 2 + f.o0! }, true) },
  { name: "MSR (register)", pattern: SYSREG_MOVE(0), decode: (f) => mrsMsr({ ...f, op0: 2 + f.o0! }, false) },
];
