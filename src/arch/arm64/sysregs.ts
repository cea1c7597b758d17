/**
 * The one table of AArch64 system registers: it drives MRS/MSR decoding, reset values,
 * the KVM register list (hv layer) and save/restore. Registers that live in the core
 * area of the state block (SP_EL0, ELR_EL1, SPSR_EL1, FPCR, FPSR, NZCV, DAIF, ...) are
 * `special`: reached through accessors, and listed by KVM as core registers instead.
 */
import type { Cpu } from "./cpu.ts";
import { refreshDebug } from "./debug.ts";
import { pmuEl0, pmuRead, pmuSync, pmuWrite, refreshPmu } from "./pmu.ts";
import { PMCEID0, PMU_COUNTERS } from "./pmu-events.ts";
import { R64 } from "./ret64.ts";
import { I, PSTATE } from "./state.ts";

/** op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2, as in KVM's ARM64_SYS_REG() low bits. */
export function sysregKey(op0: number, op1: number, crn: number, crm: number, op2: number): number {
  return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
}

export interface SysRegAccess {
  /** Read into R64.lo/R64.hi. */
  read(c: Cpu): void;
  write(c: Cpu, lo: number, hi: number): void;
}

/**
 * Who may use the register from EL0: "rw", "r" or "none" (trapped, EC 0x18), or a check
 * made at run time (`write` tells MSR from MRS) for registers whose EL0 access another
 * register controls (SCTLR_EL1.UCT, MDSCR_EL1.TDCC, PMUSERENR_EL0, ...).
 */
export type El0Access = "rw" | "r" | "none" | ((c: Cpu, write: boolean) => boolean);

export interface SysReg {
  readonly name: string;
  readonly key: number;
  /** Index of its 8-byte storage slot in the SYSREGS area, or -1 for special registers. */
  readonly slot: number;
  /** Reset value as [lo, hi]. */
  readonly reset: readonly [number, number];
  /** Accessible from EL0 (as Linux configures EL0: SCTLR.UCT/UCI=1, CNTKCTL.EL0VCTEN=1). */
  readonly el0: El0Access;
  /**
   * A constant of this CPU model: MSR is UNDEFINED and KVM_SET_ONE_REG accepts only the
   * value it holds. Registers the guest cannot write but userspace may restore (the ID
   * registers, OSLSR_EL1) have `readOnly` false and `writable` false.
   */
  readonly readOnly: boolean;
  /** MRS is allocated for this encoding (false: write-only, e.g. OSLAR_EL1). */
  readonly readable: boolean;
  /** MSR is allocated for this encoding. */
  readonly writable: boolean;
  /** Saved and restored with the vCPU (part of the KVM register list). */
  readonly saved: boolean;
  /** Custom behaviour; default is plain storage in the slot. */
  readonly access?: SysRegAccess;
  /** Bits that a write may change (others keep their value); default all. */
  readonly writeMask?: readonly [number, number];
  /** Called after an MSR stored the new value (plain storage only). */
  readonly onWrite?: (c: Cpu) => void;
}

interface Def {
  name: string;
  enc: [number, number, number, number, number];
  reset?: number | bigint;
  el0?: El0Access;
  /** Read-only for the guest (MSR UNDEFINED) and a constant for KVM (see SysReg.readOnly). */
  ro?: boolean;
  /** With `ro`: userspace may still set it (KVM's writable ID registers). */
  userWritable?: boolean;
  /** Write-only (MRS UNDEFINED). */
  wo?: boolean;
  /** Custom accessors, no storage slot. */
  special?: SysRegAccess;
  /** Custom accessors over the register's own storage slot. */
  access?: SysRegAccess;
  saved?: boolean;
  writeMask?: bigint;
  onWrite?: (c: Cpu) => void;
}

const split = (v: number | bigint): [number, number] => {
  const b = BigInt(v);
  return [Number(b & 0xffffffffn), Number((b >> 32n) & 0xffffffffn)];
};

// Special registers that live elsewhere in the state block.
const nzcv: SysRegAccess = {
  read(c) {
    R64.lo = c.r[I.PSTATE]! & PSTATE.NZCV;
    R64.hi = 0;
  },
  write(c, lo) {
    c.r[I.PSTATE] = (c.r[I.PSTATE]! & ~PSTATE.NZCV) | (lo & PSTATE.NZCV);
  },
};
const daif: SysRegAccess = {
  read(c) {
    R64.lo = c.r[I.PSTATE]! & PSTATE.DAIF;
    R64.hi = 0;
  },
  write(c, lo) {
    c.r[I.PSTATE] = (c.r[I.PSTATE]! & ~PSTATE.DAIF) | (lo & PSTATE.DAIF);
    c.interruptsChanged();
  },
};
const core64 = (idx: number): SysRegAccess => ({
  read(c) {
    R64.lo = c.r[idx]!;
    R64.hi = c.r[idx + 1]!;
  },
  write(c, lo, hi) {
    c.r[idx] = lo;
    c.r[idx + 1] = hi;
  },
});
const fpcr: SysRegAccess = {
  read(c) {
    R64.lo = c.r[I.FPCR]!;
    R64.hi = 0;
  },
  // AHP, DN, FZ, RMode, FZ16 (Arm ARM C5.2.8); trap-enable bits are RAZ/WI here
  // because this implementation does not support trapped FP exceptions.
  write(c, lo) {
    c.r[I.FPCR] = lo & 0x07f8_0000;
  },
};
const fpsr: SysRegAccess = {
  read(c) {
    R64.lo = c.r[I.FPSR]!;
    R64.hi = 0;
  },
  write(c, lo) {
    c.r[I.FPSR] = lo & 0xf800_009f;
  },
};
const currentEl: SysRegAccess = {
  read(c) {
    R64.lo = c.r[I.PSTATE]! & 0xc;
    R64.hi = 0;
  },
  write() {},
};
const spsel: SysRegAccess = {
  read(c) {
    R64.lo = c.r[I.PSTATE]! & 1;
    R64.hi = 0;
  },
  write(c, lo) {
    c.r[I.PSTATE] = (c.r[I.PSTATE]! & ~1) | (lo & 1);
    c.pstateChanged();
  },
};
const counter = (virtual: boolean): SysRegAccess => ({
  read(c) {
    const v = c.timer.counter(c, virtual);
    R64.lo = Number(v & 0xffffffffn);
    R64.hi = Number(v >> 32n);
  },
  write() {},
});
const timerReg = (name: "CTL" | "CVAL" | "TVAL", virtual: boolean): SysRegAccess => ({
  read(c) {
    const v = c.timer.readReg(c, virtual, name);
    R64.lo = Number(v & 0xffffffffn);
    R64.hi = Number((v >> 32n) & 0xffffffffn);
  },
  write(c, lo, hi) {
    c.timer.writeReg(c, virtual, name, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  },
});
/** ISR_EL1: which of SError/IRQ/FIQ is pending at the PE's inputs (A=8, I=7, F=6). */
const isr: SysRegAccess = {
  read(c) {
    R64.lo = (c.irqLine ? 1 << 7 : 0) | (c.fiqLine ? 1 << 6 : 0);
    R64.hi = 0;
  },
  write() {},
};
const cntfrq: SysRegAccess = {
  read(c) {
    R64.lo = c.timer.frequency;
    R64.hi = 0;
  },
  write() {},
};

/**
 * Breakpoints, watchpoints and context-aware breakpoints (the last NUM_CTX_CMPS
 * breakpoints), as ID_AA64DFR0_EL1 advertises them (BRPs, WRPs, CTX_CMPs are each the
 * number minus one).
 */
export const NUM_BRPS = 6;
export const NUM_WRPS = 4;
export const NUM_CTX_CMPS = 2;

/** u32 index of a stored register, looked up once on first use (accessors run after build()). */
function lazyIndex(name: string): () => number {
  let i = -1;
  return () => (i >= 0 ? i : (i = sysregIndex(name)));
}
const SCTLR_AT = lazyIndex("SCTLR_EL1");
const MDSCR_AT = lazyIndex("MDSCR_EL1");
const OSLSR_AT = lazyIndex("OSLSR_EL1");
const CLAIM_AT = lazyIndex("DBGCLAIMCLR_EL1");
const MDCCSR_AT = lazyIndex("MDCCSR_EL0");

/**
 * EL0 reads of the ID register space (op0 = 3, op1 = 0, CRn = 0, CRm = 0..7). With
 * FEAT_IDST (ID_AA64MMFR2_EL1.IDS = 1) they trap to EL1 with EC 0x18 (Arm ARM D13.2.?
 * "ID_AA64MMFR2_EL1.IDS", and the MIDR_EL1/ID_* access pseudocode), which is what Linux
 * emulates (arch/arm64 traps.c mrs_handler). User mode plays that kernel: the read
 * succeeds, as under qemu-aarch64.
 */
const idEl0: El0Access = (c) => c.userMode;
/** CTR_EL0 at EL0: SCTLR_EL1.UCT (bit 15), else trapped (EC 0x18). */
const ctrEl0: El0Access = (c) => (c.r[SCTLR_AT()]! & (1 << 15)) !== 0;
/** The debug communications channel at EL0 unless MDSCR_EL1.TDCC (bit 12) traps it (Arm ARM D2.?). */
const dccEl0: El0Access = (c) => (c.r[MDSCR_AT()]! & (1 << 12)) === 0;

/**
 * OSLAR_EL1 (write-only): bit 0 sets or clears the OS lock, which OSLSR_EL1.OSLK (bit 1)
 * reports (Arm ARM D2.5 "The OS lock", D19 OSLAR_EL1). While locked no debug exception
 * is generated (AArch64.GenerateDebugExceptionsFrom).
 */
const oslar: SysRegAccess = {
  read() {},
  write(c, lo) {
    const i = OSLSR_AT();
    c.r[i] = ((c.r[i]! & ~2) | ((lo & 1) << 1)) >>> 0;
    refreshDebug(c);
  },
};
/** OSLSR_EL1: OSLM = 0b10 (OS lock implemented, bits 3 and 0), nTT = 0, OSLK from storage. */
const oslsr: SysRegAccess = {
  read(c) {
    R64.lo = (c.r[OSLSR_AT()]! & 2) | 8;
    R64.hi = 0;
  },
  write() {},
};
/**
 * Claim tags (Arm ARM D19 DBGCLAIMSET_EL1/DBGCLAIMCLR_EL1): eight tags, stored in
 * DBGCLAIMCLR_EL1's slot. CLAIMSET reads as the implemented tags (0xff) and sets the
 * ones written as 1; CLAIMCLR reads the current tags and clears the ones written as 1.
 */
const claimSet: SysRegAccess = {
  read() {
    R64.lo = 0xff;
    R64.hi = 0;
  },
  write(c, lo) {
    c.r[CLAIM_AT()] = (c.r[CLAIM_AT()]! | (lo & 0xff)) >>> 0;
  },
};
const claimClr: SysRegAccess = {
  read(c) {
    R64.lo = c.r[CLAIM_AT()]! & 0xff;
    R64.hi = 0;
  },
  write(c, lo) {
    c.r[CLAIM_AT()] = c.r[CLAIM_AT()]! & ~(lo & 0xff) & 0xff;
  },
};
/**
 * The debug communications channel with no external debugger attached: nothing ever
 * drains DTRTX, so the first write leaves MDCCSR_EL0.TXfull (bit 29) set for good, and
 * DTRRX stays empty (RXfull = 0, reads return 0). Linux's hvc_dcc probe therefore finds
 * no DCC console.
 */
const dtr: SysRegAccess = {
  read() {
    R64.lo = 0;
    R64.hi = 0;
  },
  write(c) {
    c.r[MDCCSR_AT()] = (c.r[MDCCSR_AT()]! | (1 << 29)) >>> 0;
  },
};

/**
 * The ID register space, op0 = 3, op1 = 0, CRn = 0, CRm = 1..7 (Arm ARM D19.? "ID
 * registers"; unallocated encodings here are RAZ at EL1, the "reserved ID registers").
 * AArch32 is implemented at no Exception level (ID_AA64PFR0_EL1.EL0 = EL1 = 1), so the
 * AArch32 ID registers (CRm = 1..3) hold UNKNOWN values: zero here, as KVM shows them on
 * hosts without AArch32. docs/ID-REGISTERS.md says why each non-zero field is set.
 */
const ID_REGS: Record<string, [name: string, value: number | bigint]> = {
  "1,0": ["ID_PFR0_EL1", 0],
  "1,1": ["ID_PFR1_EL1", 0],
  "1,2": ["ID_DFR0_EL1", 0],
  "1,3": ["ID_AFR0_EL1", 0],
  "1,4": ["ID_MMFR0_EL1", 0],
  "1,5": ["ID_MMFR1_EL1", 0],
  "1,6": ["ID_MMFR2_EL1", 0],
  "1,7": ["ID_MMFR3_EL1", 0],
  "2,0": ["ID_ISAR0_EL1", 0],
  "2,1": ["ID_ISAR1_EL1", 0],
  "2,2": ["ID_ISAR2_EL1", 0],
  "2,3": ["ID_ISAR3_EL1", 0],
  "2,4": ["ID_ISAR4_EL1", 0],
  "2,5": ["ID_ISAR5_EL1", 0],
  "2,6": ["ID_MMFR4_EL1", 0],
  "2,7": ["ID_ISAR6_EL1", 0],
  "3,0": ["MVFR0_EL1", 0],
  "3,1": ["MVFR1_EL1", 0],
  "3,2": ["MVFR2_EL1", 0],
  "3,4": ["ID_PFR2_EL1", 0],
  "3,5": ["ID_DFR1_EL1", 0],
  "3,6": ["ID_MMFR5_EL1", 0],
  // EL0 = EL1 = 1 (AArch64 only), EL2 = EL3 = 0, FP = AdvSIMD = 0 (implemented, no FP16
  // arithmetic), GIC = 1 (GICv3 system register interface).
  "4,0": ["ID_AA64PFR0_EL1", 0x01000011],
  "4,1": ["ID_AA64PFR1_EL1", 0],
  "4,4": ["ID_AA64ZFR0_EL1", 0],
  "4,5": ["ID_AA64SMFR0_EL1", 0],
  // DebugVer = 6 (Armv8.0 debug), PMUVer = 1 (PMUv3, pmu.ts), BRPs = 5 (6 breakpoints),
  // WRPs = 3 (4 watchpoints), CTX_CMPs = 1 (breakpoints 4 and 5 are context-aware),
  // DoubleLock = 0 (OSDLR_EL1 implemented). All of it is implemented by debug.ts.
  "5,0": ["ID_AA64DFR0_EL1", 0x10305106],
  "5,1": ["ID_AA64DFR1_EL1", 0],
  "5,4": ["ID_AA64AFR0_EL1", 0],
  "5,5": ["ID_AA64AFR1_EL1", 0],
  // CRC32 = 1 (bits 19:16), Atomic = 2 (bits 23:20): LSE passes its recorded vectors
  "6,0": ["ID_AA64ISAR0_EL1", 0x00210000],
  // LRCPC = 1 (bits 23:20): LDAPR
  "6,1": ["ID_AA64ISAR1_EL1", 0x00100000],
  "6,2": ["ID_AA64ISAR2_EL1", 0],
  // PARange = 2 (40-bit PAs), ASIDBits = 2 (16-bit ASIDs), BigEnd = BigEndEL0 = 0 (little
  // endian only), SNSMem = 0 (no Secure state), TGran16 = 1, TGran64 = TGran4 = 0: the
  // 4 KiB, 16 KiB and 64 KiB granules (mmu.ts).
  "7,0": ["ID_AA64MMFR0_EL1", 0x00100022],
  "7,1": ["ID_AA64MMFR1_EL1", 0],
  // IDS = 1 (bits 39:36, FEAT_IDST): EL0 reads of the ID space trap with EC 0x18.
  "7,2": ["ID_AA64MMFR2_EL1", 1n << 36n],
};

function idSpace(): Def[] {
  const out: Def[] = [];
  for (let crm = 1; crm <= 7; crm++) {
    for (let op2 = 0; op2 < 8; op2++) {
      const known = ID_REGS[`${crm},${op2}`];
      out.push({
        name: known?.[0] ?? `S3_0_C0_C${crm}_${op2}`,
        enc: [3, 0, 0, crm, op2],
        reset: known?.[1] ?? 0,
        ro: true,
        // Allocated ID registers may be restored with the values the guest booted with
        // (older snapshots; KVM's writable ID registers). The reserved ones stay zero.
        userWritable: known !== undefined,
        el0: idEl0,
      });
    }
  }
  return out;
}

/** A PMU register whose accesses pmu.ts implements (counters brought up to date first). */
const pmuReg = (name: string): SysRegAccess => ({
  read(c) {
    pmuRead(c, name);
  },
  write(c, lo, hi) {
    pmuWrite(c, name, lo, hi);
  },
});
/** A stored PMU register (counter, event type, filter): synchronised before each access. */
const pmuStored = (name: string, mask: number): SysRegAccess => {
  const at = lazyIndex(name);
  return {
    read(c) {
      pmuSync(c);
      R64.lo = c.r[at()]!;
      R64.hi = 0;
    },
    write(c, lo) {
      pmuSync(c);
      c.r[at()] = (lo & mask) >>> 0;
      refreshPmu(c);
    },
  };
};
const pmuAll: El0Access = (c, w) => pmuEl0(c, "all", w);

/**
 * PMUv3 (Arm ARM D11; pmu.ts): PMCR_EL0.N = 6 event counters, the cycle counter, and the
 * SET/CLR pairs, each pair stored once in its SET register's slot.
 */
function pmuRegs(): Def[] {
  const out: Def[] = [
    // IMP = 0x41, IDCODE = 0x01, N = 6 (Cortex-A57's PMCR_EL0 reset value, as QEMU's).
    { name: "PMCR_EL0", enc: [3, 3, 9, 12, 0], reset: 0x41013000, access: pmuReg("PMCR_EL0"), el0: pmuAll },
    {
      name: "PMCNTENSET_EL0",
      enc: [3, 3, 9, 12, 1],
      reset: 0,
      access: pmuReg("PMCNTENSET_EL0"),
      el0: pmuAll,
    },
    {
      name: "PMCNTENCLR_EL0",
      enc: [3, 3, 9, 12, 2],
      special: pmuReg("PMCNTENCLR_EL0"),
      el0: pmuAll,
      saved: false,
    },
    {
      name: "PMOVSCLR_EL0",
      enc: [3, 3, 9, 12, 3],
      special: pmuReg("PMOVSCLR_EL0"),
      el0: pmuAll,
      saved: false,
    },
    {
      name: "PMSWINC_EL0",
      enc: [3, 3, 9, 12, 4],
      special: pmuReg("PMSWINC_EL0"),
      wo: true,
      el0: (c, w) => pmuEl0(c, "swinc", w),
      saved: false,
    },
    {
      name: "PMSELR_EL0",
      enc: [3, 3, 9, 12, 5],
      reset: 0,
      writeMask: 0x1fn,
      el0: (c, w) => pmuEl0(c, "selr", w),
    },
    // Exactly the events implemented: SW_INCR, INST_RETIRED, CPU_CYCLES, CHAIN.
    { name: "PMCEID0_EL0", enc: [3, 3, 9, 12, 6], reset: PMCEID0, ro: true, el0: pmuAll },
    { name: "PMCEID1_EL0", enc: [3, 3, 9, 12, 7], reset: 0, ro: true, el0: pmuAll },
    {
      name: "PMCCNTR_EL0",
      enc: [3, 3, 9, 13, 0],
      reset: 0,
      access: pmuReg("PMCCNTR_EL0"),
      el0: (c, w) => pmuEl0(c, "ccntr", w),
    },
    {
      name: "PMXEVTYPER_EL0",
      enc: [3, 3, 9, 13, 1],
      special: pmuReg("PMXEVTYPER_EL0"),
      el0: pmuAll,
      saved: false,
    },
    {
      name: "PMXEVCNTR_EL0",
      enc: [3, 3, 9, 13, 2],
      special: pmuReg("PMXEVCNTR_EL0"),
      el0: (c, w) => pmuEl0(c, "evcntr", w),
      saved: false,
    },
    // EN, SW, CR, ER; read-only at EL0.
    { name: "PMUSERENR_EL0", enc: [3, 3, 9, 14, 0], reset: 0, writeMask: 0xfn, el0: (_c, w) => !w },
    { name: "PMINTENSET_EL1", enc: [3, 0, 9, 14, 1], reset: 0, access: pmuReg("PMINTENSET_EL1") },
    { name: "PMINTENCLR_EL1", enc: [3, 0, 9, 14, 2], special: pmuReg("PMINTENCLR_EL1"), saved: false },
    { name: "PMOVSSET_EL0", enc: [3, 3, 9, 14, 3], reset: 0, access: pmuReg("PMOVSSET_EL0"), el0: pmuAll },
  ];
  for (let n = 0; n < PMU_COUNTERS; n++) {
    const cntr = `PMEVCNTR${n}_EL0`;
    const typer = `PMEVTYPER${n}_EL0`;
    out.push({
      name: cntr,
      enc: [3, 3, 14, 8 | (n >> 3), n & 7],
      reset: 0,
      access: pmuStored(cntr, 0xffffffff),
      el0: (c, w) => pmuEl0(c, "evcntr", w),
    });
    // P, U, NSK, NSU, NSH, M and a 10-bit event number (PMUv3 for Armv8.0).
    out.push({
      name: typer,
      enc: [3, 3, 14, 12 | (n >> 3), n & 7],
      reset: 0,
      access: pmuStored(typer, 0xfc0003ff),
      el0: pmuAll,
    });
  }
  out.push({
    name: "PMCCFILTR_EL0",
    enc: [3, 3, 14, 15, 7],
    reset: 0,
    access: pmuStored("PMCCFILTR_EL0", 0xfc000000),
    el0: pmuAll,
  });
  return out;
}

/** Breakpoint and watchpoint registers (Arm ARM D2.9, D2.10; D19 DBGBVR<n>_EL1 ...). */
function breakWatch(): Def[] {
  const out: Def[] = [];
  for (let n = 0; n < 16; n++) {
    if (n < NUM_BRPS) {
      // BVR: the whole value (an address for address types, CONTEXTIDR for context types).
      out.push({ name: `DBGBVR${n}_EL1`, enc: [2, 0, 0, n, 4], reset: 0 });
      // BCR: E, PMC, HMC, SSC, LBN, BT; BAS (bits 8:5) is RES1 without AArch32.
      out.push({
        name: `DBGBCR${n}_EL1`,
        enc: [2, 0, 0, n, 5],
        reset: 0x1e0,
        writeMask: 0x00ffe007n,
        onWrite: refreshDebug,
      });
    }
    if (n < NUM_WRPS) {
      out.push({
        name: `DBGWVR${n}_EL1`,
        enc: [2, 0, 0, n, 6],
        reset: 0,
        writeMask: ~3n & ((1n << 64n) - 1n),
      });
      // WCR: E, PAC, LSC, BAS, HMC, SSC, LBN, WT, MASK.
      out.push({
        name: `DBGWCR${n}_EL1`,
        enc: [2, 0, 0, n, 7],
        reset: 0,
        writeMask: 0x1f1fffffn,
        onWrite: refreshDebug,
      });
    }
  }
  return out;
}

/** MIDR etc. describe a Cortex-A57 r1p0, the CPU QEMU's `virt` examples use. */
const DEFS: Def[] = [
  // Identification (read-only)
  { name: "MIDR_EL1", enc: [3, 0, 0, 0, 0], reset: 0x411fd070, ro: true, el0: idEl0 },
  { name: "MPIDR_EL1", enc: [3, 0, 0, 0, 5], reset: 0x80000000, ro: true, el0: idEl0 },
  { name: "REVIDR_EL1", enc: [3, 0, 0, 0, 6], reset: 0, ro: true, el0: idEl0 },
  ...idSpace(),
  { name: "CTR_EL0", enc: [3, 3, 0, 0, 1], reset: 0x8444c004, ro: true, el0: ctrEl0 },
  { name: "DCZID_EL0", enc: [3, 3, 0, 0, 7], reset: 4, ro: true, el0: "r" },
  { name: "CLIDR_EL1", enc: [3, 1, 0, 0, 1], reset: 0x0a200023, ro: true },
  { name: "CCSIDR_EL1", enc: [3, 1, 0, 0, 0], reset: 0x701fe00a, ro: true },
  { name: "AIDR_EL1", enc: [3, 1, 0, 0, 7], reset: 0, ro: true },
  { name: "CSSELR_EL1", enc: [3, 2, 0, 0, 0], reset: 0, writeMask: 0xfn },
  // EL1 system control
  { name: "SCTLR_EL1", enc: [3, 0, 1, 0, 0], reset: 0x00c50838 },
  { name: "ACTLR_EL1", enc: [3, 0, 1, 0, 1], reset: 0 },
  { name: "CPACR_EL1", enc: [3, 0, 1, 0, 2], reset: 0, writeMask: 0x00300000n },
  { name: "TTBR0_EL1", enc: [3, 0, 2, 0, 0], reset: 0 },
  { name: "TTBR1_EL1", enc: [3, 0, 2, 0, 1], reset: 0 },
  { name: "TCR_EL1", enc: [3, 0, 2, 0, 2], reset: 0 },
  { name: "AFSR0_EL1", enc: [3, 0, 5, 1, 0], reset: 0 },
  { name: "AFSR1_EL1", enc: [3, 0, 5, 1, 1], reset: 0 },
  { name: "ESR_EL1", enc: [3, 0, 5, 2, 0], reset: 0 },
  { name: "FAR_EL1", enc: [3, 0, 6, 0, 0], reset: 0 },
  { name: "PAR_EL1", enc: [3, 0, 7, 4, 0], reset: 0 },
  { name: "MAIR_EL1", enc: [3, 0, 10, 2, 0], reset: 0 },
  { name: "AMAIR_EL1", enc: [3, 0, 10, 3, 0], reset: 0 },
  { name: "VBAR_EL1", enc: [3, 0, 12, 0, 0], reset: 0, writeMask: 0xfffffffffffff800n },
  { name: "CONTEXTIDR_EL1", enc: [3, 0, 13, 0, 1], reset: 0, writeMask: 0xffffffffn },
  { name: "TPIDR_EL1", enc: [3, 0, 13, 0, 4], reset: 0 },
  { name: "TPIDR_EL0", enc: [3, 3, 13, 0, 2], reset: 0, el0: "rw" },
  { name: "TPIDRRO_EL0", enc: [3, 3, 13, 0, 3], reset: 0, el0: "r" },
  { name: "ISR_EL1", enc: [3, 0, 12, 1, 0], special: isr, ro: true, saved: false },
  { name: "CNTKCTL_EL1", enc: [3, 0, 14, 1, 0], reset: 0, writeMask: 0x3ffn },
  // Debug (Arm ARM D2, registers in D19; debug.ts implements the exceptions). MDSCR_EL1:
  // SS, TDCC, KDE, MDE are writable; the other fields save/restore external debug state,
  // which does not exist here (RAZ/WI).
  { name: "MDSCR_EL1", enc: [2, 0, 0, 2, 2], reset: 0, writeMask: 0xb001n, onWrite: refreshDebug },
  { name: "MDCCINT_EL1", enc: [2, 0, 0, 2, 0], reset: 0, writeMask: 0x60000000n },
  // OS save/restore registers: plain storage without external debug.
  { name: "OSDTRRX_EL1", enc: [2, 0, 0, 0, 2], reset: 0, writeMask: 0xffffffffn },
  { name: "OSDTRTX_EL1", enc: [2, 0, 0, 3, 2], reset: 0, writeMask: 0xffffffffn },
  { name: "OSECCR_EL1", enc: [2, 0, 0, 6, 2], reset: 0, writeMask: 0xffffffffn },
  ...breakWatch(),
  // MDRAR_EL1.Valid = 0b00: no memory-mapped debug ROM table.
  { name: "MDRAR_EL1", enc: [2, 0, 1, 0, 0], reset: 0, ro: true },
  { name: "OSLAR_EL1", enc: [2, 0, 1, 0, 4], special: oslar, wo: true, saved: false },
  // OSLK is 1 after a cold reset (Arm ARM D19 OSLSR_EL1); Linux clears it at boot
  // (debug-monitors.c clear_os_lock). Restorable, as KVM's set_oslsr_el1 lets OSLK be set.
  { name: "OSLSR_EL1", enc: [2, 0, 1, 1, 4], reset: 0xa, ro: true, userWritable: true, access: oslsr },
  // OSDLR_EL1.DLK: the OS double lock, effective while DBGPRCR_EL1.CORENPDRQ = 0.
  { name: "OSDLR_EL1", enc: [2, 0, 1, 3, 4], reset: 0, writeMask: 1n, onWrite: refreshDebug },
  { name: "DBGPRCR_EL1", enc: [2, 0, 1, 4, 4], reset: 0, writeMask: 1n, onWrite: refreshDebug },
  { name: "DBGCLAIMSET_EL1", enc: [2, 0, 7, 8, 6], special: claimSet, saved: false },
  { name: "DBGCLAIMCLR_EL1", enc: [2, 0, 7, 9, 6], reset: 0, access: claimClr },
  // NSID = NSNID = 0b11 (Non-secure invasive and non-invasive debug implemented and
  // enabled), SID = SNID = 0b00 (no Secure state).
  { name: "DBGAUTHSTATUS_EL1", enc: [2, 0, 7, 14, 6], reset: 0x0f, ro: true },
  {
    name: "MDCCSR_EL0",
    enc: [2, 3, 0, 1, 0],
    reset: 0,
    ro: true,
    userWritable: true,
    el0: (c, write) => !write && dccEl0(c, write),
  },
  { name: "DBGDTR_EL0", enc: [2, 3, 0, 4, 0], special: dtr, el0: dccEl0, saved: false },
  // DBGDTRRX_EL0 (MRS) and DBGDTRTX_EL0 (MSR) share one encoding.
  { name: "DBGDTRRX_EL0", enc: [2, 3, 0, 5, 0], special: dtr, el0: dccEl0, saved: false },
  ...pmuRegs(),
  // Special registers that live in the core area or elsewhere
  { name: "NZCV", enc: [3, 3, 4, 2, 0], special: nzcv, el0: "rw", saved: false },
  { name: "DAIF", enc: [3, 3, 4, 2, 1], special: daif, saved: false },
  { name: "FPCR", enc: [3, 3, 4, 4, 0], special: fpcr, el0: "rw", saved: false },
  { name: "FPSR", enc: [3, 3, 4, 4, 1], special: fpsr, el0: "rw", saved: false },
  { name: "SPSR_EL1", enc: [3, 0, 4, 0, 0], special: core64(I.SPSR_EL1), saved: false },
  { name: "ELR_EL1", enc: [3, 0, 4, 0, 1], special: core64(I.ELR_EL1), saved: false },
  { name: "SP_EL0", enc: [3, 0, 4, 1, 0], special: core64(I.SP_EL0), saved: false },
  { name: "SPSel", enc: [3, 0, 4, 2, 0], special: spsel, saved: false },
  { name: "CurrentEL", enc: [3, 0, 4, 2, 2], special: currentEl, ro: true, saved: false },
  // Generic timer: state owned by the timer provider, saved through its own KVM IDs.
  { name: "CNTFRQ_EL0", enc: [3, 3, 14, 0, 0], special: cntfrq, el0: "r", saved: false },
  { name: "CNTPCT_EL0", enc: [3, 3, 14, 0, 1], special: counter(false), el0: "r", ro: true, saved: false },
  { name: "CNTVCT_EL0", enc: [3, 3, 14, 0, 2], special: counter(true), el0: "r", ro: true, saved: false },
  { name: "CNTP_TVAL_EL0", enc: [3, 3, 14, 2, 0], special: timerReg("TVAL", false), saved: false },
  { name: "CNTP_CTL_EL0", enc: [3, 3, 14, 2, 1], special: timerReg("CTL", false), saved: false },
  { name: "CNTP_CVAL_EL0", enc: [3, 3, 14, 2, 2], special: timerReg("CVAL", false), saved: false },
  { name: "CNTV_TVAL_EL0", enc: [3, 3, 14, 3, 0], special: timerReg("TVAL", true), saved: false },
  { name: "CNTV_CTL_EL0", enc: [3, 3, 14, 3, 1], special: timerReg("CTL", true), saved: false },
  { name: "CNTV_CVAL_EL0", enc: [3, 3, 14, 3, 2], special: timerReg("CVAL", true), saved: false },
];

function build(): SysReg[] {
  let slot = 0;
  return DEFS.map((d) => {
    const key = sysregKey(...d.enc);
    const ro = d.ro ?? false;
    const acc = d.special ?? d.access;
    const entry: SysReg = {
      name: d.name,
      key,
      slot: d.special ? -1 : slot++,
      reset: split(d.reset ?? 0),
      el0: d.el0 ?? "none",
      readOnly: ro && !d.userWritable,
      readable: !d.wo,
      writable: !ro,
      saved: d.saved ?? !d.special,
      ...(acc ? { access: acc } : {}),
      ...(d.writeMask !== undefined ? { writeMask: split(d.writeMask) } : {}),
      ...(d.onWrite ? { onWrite: d.onWrite } : {}),
    };
    return entry;
  });
}

export const SYSREGS: readonly SysReg[] = build();
export const SYSREG_BY_KEY: ReadonlyMap<number, SysReg> = new Map(SYSREGS.map((s) => [s.key, s]));
export const SYSREG_BY_NAME: ReadonlyMap<string, SysReg> = new Map(SYSREGS.map((s) => [s.name, s]));

/** u32 index (into the vCPU view) of a stored system register's low half. */
export function sysregIndex(name: string): number {
  const s = SYSREG_BY_NAME.get(name);
  if (!s || s.slot < 0) throw new Error(`no stored system register ${name}`);
  return I.SYSREGS + s.slot * 2;
}
