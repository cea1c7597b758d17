/**
 * Branches, exception generation and system instructions (Arm ARM C4.1.85):
 * B/BL/B.cond/CBZ/TBZ/BR/BLR/RET/ERET, SVC/HVC/SMC/BRK/HLT, hints (WFI/WFE/SEV/...),
 * barriers, CLREX, MSR (immediate), SYS (DC/IC/TLBI/AT) and MRS/MSR (register).
 */
import { CMO } from "../access.ts";
import { conditionHolds } from "../alu.ts";
import type { Cpu } from "../cpu.ts";
import type { Exec, Fields, Pattern } from "../decoder.ts";
import { EC } from "../exceptions.ts";
import { xr, xw } from "../regs.ts";
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

function branchImm(f: Fields): Exec {
  const off = f.imm26! * 4;
  if (f.op === 1)
    return (c) => {
      link(c);
      jump(c, off);
    };
  return (c) => jump(c, off);
}

function branchCond(f: Fields): Exec {
  const off = f.imm19! * 4;
  const cond = f.cond!;
  return (c) => {
    if (conditionHolds(c, cond)) jump(c, off);
  };
}

function compareBranch(f: Fields): Exec {
  const off = f.imm19! * 4;
  const t = xr(f.Rt!);
  const sf = f.sf === 1;
  const nonZero = f.op === 1;
  return (c) => {
    const zero = (c.r[t]! | (sf ? c.r[t + 1]! : 0)) === 0;
    if (zero !== nonZero) jump(c, off);
  };
}

function testBranch(f: Fields): Exec {
  const off = f.imm14! * 4;
  const bit = (f.b5! << 5) | f.b40!;
  const idx = xr(f.Rt!) + (bit >= 32 ? 1 : 0);
  const mask = (1 << (bit & 31)) >>> 0;
  const ifSet = f.op === 1;
  return (c) => {
    if (((c.r[idx]! & mask) !== 0) === ifSet) jump(c, off);
  };
}

function branchReg(f: Fields): Exec | null {
  if (f.op2 !== 31 || f.op3 !== 0 || f.op4 !== 0) return null;
  const n = xr(f.Rn!);
  switch (f.opc) {
    case 0: // BR
    case 2: // RET
      return (c) => c.branch(c.r[n]!, c.r[n + 1]!);
    case 1: // BLR: read the target before writing X30 (BLR X30 is valid)
      return (c) => {
        const lo = c.r[n]!;
        const hi = c.r[n + 1]!;
        link(c);
        c.branch(lo, hi);
      };
    case 4: // ERET
      if (f.Rn !== 31) return null;
      return (c) => {
        if (c.el === 0) c.undefined();
        c.exceptionReturn();
      };
    default:
      return null;
  }
}

function exceptionGen(f: Fields): Exec | null {
  const imm = f.imm16!;
  const key = (f.opc! << 5) | (f.op2! << 2) | f.LL!;
  switch (key) {
    case 0b000_000_01:
      return (c) => c.svc(imm);
    case 0b000_000_10:
      return (c) => c.hvc(imm);
    case 0b000_000_11:
      return (c) => c.smc(imm);
    case 0b001_000_00:
      return (c) => c.syncException(EC.BRK64, imm);
    case 0b010_000_00: // HLT: UNDEFINED unless the owner traps it (semihosting)
      return (c) => c.hlt(imm);
    // DCPSx are UNDEFINED outside Debug state.
    default:
      return null;
  }
}

function hint(f: Fields): Exec {
  switch ((f.CRm! << 3) | f.op2!) {
    case 2: // WFE
      return (c) => c.wfe();
    case 3: // WFI
      return (c) => c.wfi();
    case 4: // SEV: signal every PE; the owner propagates it (see Cpu.onSendEvent)
      return (c) => {
        c.r[I.EVENT] = 1;
        c.onSendEvent?.(c);
      };
    case 5: // SEVL
      return (c) => {
        c.r[I.EVENT] = 1;
      };
    default: // NOP, YIELD, ESB, PSB, BTI ... and unallocated hints all behave as NOP
      return () => {};
  }
}

function barrier(f: Fields): Exec | null {
  if (f.Rt !== 31) return null;
  switch (f.op2) {
    case 2: // CLREX
      return (c) => {
        c.r[I.EXCL_VALID] = 0;
      };
    case 4: // DSB
    case 5: // DMB
    case 6: // ISB
      return () => {};
    default:
      return null;
  }
}

function msrImm(f: Fields): Exec | null {
  if (f.Rt !== 31) return null;
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
      const iss = sysregIss({ ...f, op0: 0, CRn: 4 }, false);
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
  if (f.L === 1) return null; // SYSL: no allocated encodings in Armv8.0
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
          for (let i = 0; i < size; i += 8) c.st64(lo + i, hi, 0, 0);
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

function mrsMsr(f: Fields): Exec | null {
  const key = sysregKey(f.op0!, f.op1!, f.CRn!, f.CRm!, f.op2!);
  const read = f.L === 1;
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
        c.r[d] = c.vlo >>> 0;
        c.r[d + 1] = c.vhi >>> 0;
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
  const checkEl0 = (c: Cpu) => {
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
        c.r[d] = c.vlo >>> 0;
        c.r[d + 1] = c.vhi >>> 0;
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

export const BRANCH_SYSTEM: Pattern[] = [
  { name: "B_BL", pattern: "op:1 00101 imm26:s26", decode: branchImm },
  { name: "B_cond", pattern: "0101010 0 imm19:s19 0 cond:4", decode: branchCond },
  { name: "CBZ_CBNZ", pattern: "sf:1 011010 op:1 imm19:s19 Rt:5", decode: compareBranch },
  { name: "TBZ_TBNZ", pattern: "b5:1 011011 op:1 b40:5 imm14:s14 Rt:5", decode: testBranch },
  { name: "BR_BLR_RET_ERET", pattern: "1101011 opc:4 op2:5 op3:6 Rn:5 op4:5", decode: branchReg },
  { name: "EXCEPTION", pattern: "11010100 opc:3 imm16:16 op2:3 LL:2", decode: exceptionGen },
  { name: "HINT", pattern: "11010101000000110010 CRm:4 op2:3 11111", decode: hint },
  { name: "BARRIER", pattern: "11010101000000110011 CRm:4 op2:3 Rt:5", decode: barrier },
  { name: "MSR_imm", pattern: "1101010100000 op1:3 0100 CRm:4 op2:3 Rt:5", decode: msrImm },
  { name: "SYS", pattern: "1101010100 L:1 01 op1:3 CRn:4 CRm:4 op2:3 Rt:5", decode: sys },
  {
    name: "MRS_MSR",
    pattern: "1101010100 L:1 1 o0:1 op1:3 CRn:4 CRm:4 op2:3 Rt:5",
    decode: (f) => mrsMsr({ ...f, op0: 2 + f.o0! }),
  },
];
