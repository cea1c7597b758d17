/**
 * The one table of AArch64 system registers: it drives MRS/MSR decoding, reset values,
 * the KVM register list (hv layer) and save/restore. Registers that live in the core
 * area of the state block (SP_EL0, ELR_EL1, SPSR_EL1, FPCR, FPSR, NZCV, DAIF, ...) are
 * `special`: reached through accessors, and listed by KVM as core registers instead.
 */
import type { Cpu } from "./cpu.ts";
import { I, PSTATE } from "./state.ts";

/** op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2, as in KVM's ARM64_SYS_REG() low bits. */
export function sysregKey(op0: number, op1: number, crn: number, crm: number, op2: number): number {
  return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
}

export interface SysRegAccess {
  /** Read into c.vlo/c.vhi. */
  read(c: Cpu): void;
  write(c: Cpu, lo: number, hi: number): void;
}

export interface SysReg {
  readonly name: string;
  readonly key: number;
  /** Index of its 8-byte storage slot in the SYSREGS area, or -1 for special registers. */
  readonly slot: number;
  /** Reset value as [lo, hi]. */
  readonly reset: readonly [number, number];
  /** Accessible from EL0 (as Linux configures EL0: SCTLR.UCT/UCI=1, CNTKCTL.EL0VCTEN=1). */
  readonly el0: "rw" | "r" | "none";
  readonly readOnly: boolean;
  /** Saved and restored with the vCPU (part of the KVM register list). */
  readonly saved: boolean;
  /** Custom behaviour; default is plain storage in the slot. */
  readonly access?: SysRegAccess;
  /** Bits that a write may change (others keep their value); default all. */
  readonly writeMask?: readonly [number, number];
}

interface Def {
  name: string;
  enc: [number, number, number, number, number];
  reset?: number | bigint;
  el0?: "rw" | "r" | "none";
  ro?: boolean;
  special?: SysRegAccess;
  saved?: boolean;
  writeMask?: bigint;
}

const split = (v: number | bigint): [number, number] => {
  const b = BigInt(v);
  return [Number(b & 0xffffffffn), Number((b >> 32n) & 0xffffffffn)];
};

// Special registers that live elsewhere in the state block.
const nzcv: SysRegAccess = {
  read(c) {
    c.vlo = c.r[I.PSTATE]! & PSTATE.NZCV;
    c.vhi = 0;
  },
  write(c, lo) {
    c.r[I.PSTATE] = (c.r[I.PSTATE]! & ~PSTATE.NZCV) | (lo & PSTATE.NZCV);
  },
};
const daif: SysRegAccess = {
  read(c) {
    c.vlo = c.r[I.PSTATE]! & PSTATE.DAIF;
    c.vhi = 0;
  },
  write(c, lo) {
    c.r[I.PSTATE] = (c.r[I.PSTATE]! & ~PSTATE.DAIF) | (lo & PSTATE.DAIF);
    c.interruptsChanged();
  },
};
const core64 = (idx: number): SysRegAccess => ({
  read(c) {
    c.vlo = c.r[idx]!;
    c.vhi = c.r[idx + 1]!;
  },
  write(c, lo, hi) {
    c.r[idx] = lo;
    c.r[idx + 1] = hi;
  },
});
const fpcr: SysRegAccess = {
  read(c) {
    c.vlo = c.r[I.FPCR]!;
    c.vhi = 0;
  },
  // AHP, DN, FZ, RMode, FZ16 (Arm ARM C5.2.8); trap-enable bits are RAZ/WI here
  // because this implementation does not support trapped FP exceptions.
  write(c, lo) {
    c.r[I.FPCR] = lo & 0x07f8_0000;
  },
};
const fpsr: SysRegAccess = {
  read(c) {
    c.vlo = c.r[I.FPSR]!;
    c.vhi = 0;
  },
  write(c, lo) {
    c.r[I.FPSR] = lo & 0xf800_009f;
  },
};
const currentEl: SysRegAccess = {
  read(c) {
    c.vlo = c.r[I.PSTATE]! & 0xc;
    c.vhi = 0;
  },
  write() {},
};
const spsel: SysRegAccess = {
  read(c) {
    c.vlo = c.r[I.PSTATE]! & 1;
    c.vhi = 0;
  },
  write(c, lo) {
    c.r[I.PSTATE] = (c.r[I.PSTATE]! & ~1) | (lo & 1);
    c.pstateChanged();
  },
};
const counter = (virtual: boolean): SysRegAccess => ({
  read(c) {
    const v = c.timer.counter(c, virtual);
    c.vlo = Number(v & 0xffffffffn);
    c.vhi = Number(v >> 32n);
  },
  write() {},
});
const timerReg = (name: "CTL" | "CVAL" | "TVAL", virtual: boolean): SysRegAccess => ({
  read(c) {
    const v = c.timer.readReg(c, virtual, name);
    c.vlo = Number(v & 0xffffffffn);
    c.vhi = Number((v >> 32n) & 0xffffffffn);
  },
  write(c, lo, hi) {
    c.timer.writeReg(c, virtual, name, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  },
});
/** ISR_EL1: which of SError/IRQ/FIQ is pending at the PE's inputs (A=8, I=7, F=6). */
const isr: SysRegAccess = {
  read(c) {
    c.vlo = (c.irqLine ? 1 << 7 : 0) | (c.fiqLine ? 1 << 6 : 0);
    c.vhi = 0;
  },
  write() {},
};
const cntfrq: SysRegAccess = {
  read(c) {
    c.vlo = c.timer.frequency;
    c.vhi = 0;
  },
  write() {},
};

/** MIDR etc. describe a Cortex-A57 r1p0, the CPU QEMU's `virt` examples use. */
const DEFS: Def[] = [
  // Identification (read-only)
  { name: "MIDR_EL1", enc: [3, 0, 0, 0, 0], reset: 0x411fd070, ro: true, el0: "r" },
  { name: "MPIDR_EL1", enc: [3, 0, 0, 0, 5], reset: 0x80000000, ro: true, el0: "r" },
  { name: "REVIDR_EL1", enc: [3, 0, 0, 0, 6], reset: 0, ro: true, el0: "r" },
  { name: "ID_AA64PFR0_EL1", enc: [3, 0, 0, 4, 0], reset: 0x01000011, ro: true, el0: "r" },
  { name: "ID_AA64PFR1_EL1", enc: [3, 0, 0, 4, 1], reset: 0, ro: true, el0: "r" },
  { name: "ID_AA64ZFR0_EL1", enc: [3, 0, 0, 4, 4], reset: 0, ro: true, el0: "r" },
  // Cortex-A57's debug features with PMUVer (bits 11:8) = 0: no PMU is emulated.
  { name: "ID_AA64DFR0_EL1", enc: [3, 0, 0, 5, 0], reset: 0x10305006, ro: true, el0: "r" },
  { name: "ID_AA64DFR1_EL1", enc: [3, 0, 0, 5, 1], reset: 0, ro: true, el0: "r" },
  { name: "ID_AA64AFR0_EL1", enc: [3, 0, 0, 5, 4], reset: 0, ro: true, el0: "r" },
  { name: "ID_AA64AFR1_EL1", enc: [3, 0, 0, 5, 5], reset: 0, ro: true, el0: "r" },
  // CRC32 = 1 (bits 19:16), Atomic = 2 (bits 23:20): LSE passes its recorded vectors
  { name: "ID_AA64ISAR0_EL1", enc: [3, 0, 0, 6, 0], reset: 0x00210000, ro: true, el0: "r" },
  // LRCPC = 1 (bits 23:20): LDAPR
  { name: "ID_AA64ISAR1_EL1", enc: [3, 0, 0, 6, 1], reset: 0x00100000, ro: true, el0: "r" },
  { name: "ID_AA64ISAR2_EL1", enc: [3, 0, 0, 6, 2], reset: 0, ro: true, el0: "r" },
  { name: "ID_AA64MMFR0_EL1", enc: [3, 0, 0, 7, 0], reset: 0x00001124, ro: true, el0: "r" },
  { name: "ID_AA64MMFR1_EL1", enc: [3, 0, 0, 7, 1], reset: 0, ro: true, el0: "r" },
  { name: "ID_AA64MMFR2_EL1", enc: [3, 0, 0, 7, 2], reset: 0, ro: true, el0: "r" },
  { name: "CTR_EL0", enc: [3, 3, 0, 0, 1], reset: 0x8444c004, ro: true, el0: "r" },
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
  // Debug registers Linux touches at boot
  { name: "MDSCR_EL1", enc: [2, 0, 0, 2, 2], reset: 0 },
  { name: "MDCCINT_EL1", enc: [2, 0, 0, 2, 0], reset: 0 },
  { name: "OSLAR_EL1", enc: [2, 0, 1, 0, 4], reset: 0, saved: false },
  { name: "OSLSR_EL1", enc: [2, 0, 1, 1, 4], reset: 0x8, ro: true },
  { name: "OSDLR_EL1", enc: [2, 0, 1, 3, 4], reset: 0 },
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
    const entry: SysReg = {
      name: d.name,
      key,
      slot: d.special ? -1 : slot++,
      reset: split(d.reset ?? 0),
      el0: d.el0 ?? "none",
      readOnly: d.ro ?? false,
      saved: d.saved ?? !d.special,
      ...(d.special ? { access: d.special } : {}),
      ...(d.writeMask !== undefined ? { writeMask: split(d.writeMask) } : {}),
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
