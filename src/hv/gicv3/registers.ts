/**
 * GICv3 register offsets and CPU interface system register encodings
 * (GICv3/v4 Architecture Specification, IHI 0069, chapters 12.8–12.11 and 12.2).
 */
import { sysregKey } from "../../arch/arm64/sysregs.ts";

/** Distributor (GICD_*) register offsets inside its 64 KiB frame (IHI 0069 12.9). */
export const GICD = {
  CTLR: 0x0000,
  TYPER: 0x0004,
  IIDR: 0x0008,
  TYPER2: 0x000c,
  STATUSR: 0x0010,
  IGROUPR: 0x0080,
  ISENABLER: 0x0100,
  ICENABLER: 0x0180,
  ISPENDR: 0x0200,
  ICPENDR: 0x0280,
  ISACTIVER: 0x0300,
  ICACTIVER: 0x0380,
  IPRIORITYR: 0x0400,
  ITARGETSR: 0x0800,
  ICFGR: 0x0c00,
  IGRPMODR: 0x0d00,
  NSACR: 0x0e00,
  SGIR: 0x0f00,
  IROUTER: 0x6000,
  PIDR2: 0xffe8,
} as const;

/** GICD_CTLR bits as seen with a single Security state (DS == 1). */
export const GICD_CTLR = {
  ENABLE_GRP0: 1 << 0,
  ENABLE_GRP1: 1 << 1,
  ARE: 1 << 4,
  DS: 1 << 6,
  RWP: 1 << 31,
} as const;

/** Redistributor RD_base frame (first 64 KiB) offsets (IHI 0069 12.10). */
export const GICR = {
  CTLR: 0x0000,
  IIDR: 0x0004,
  TYPER: 0x0008,
  STATUSR: 0x0010,
  WAKER: 0x0014,
  PIDR2: 0xffe8,
  /** Start of the SGI_base frame (second 64 KiB). */
  SGI_BASE: 0x10000,
} as const;

/** Offsets inside the SGI_base frame (relative to GICR.SGI_BASE). */
export const GICR_SGI = {
  IGROUPR0: 0x0080,
  ISENABLER0: 0x0100,
  ICENABLER0: 0x0180,
  ISPENDR0: 0x0200,
  ICPENDR0: 0x0280,
  ISACTIVER0: 0x0300,
  ICACTIVER0: 0x0380,
  IPRIORITYR: 0x0400,
  ICFGR0: 0x0c00,
  ICFGR1: 0x0c04,
  IGRPMODR0: 0x0d00,
  NSACR: 0x0e00,
} as const;

export const GICR_WAKER = { PROCESSOR_SLEEP: 1 << 1, CHILDREN_ASLEEP: 1 << 2 } as const;

/** ICC_* system registers (IHI 0069 12.2) as sysregKey(op0, op1, CRn, CRm, op2). */
export const ICC = {
  PMR_EL1: sysregKey(3, 0, 4, 6, 0),
  IAR0_EL1: sysregKey(3, 0, 12, 8, 0),
  EOIR0_EL1: sysregKey(3, 0, 12, 8, 1),
  HPPIR0_EL1: sysregKey(3, 0, 12, 8, 2),
  BPR0_EL1: sysregKey(3, 0, 12, 8, 3),
  AP0R0_EL1: sysregKey(3, 0, 12, 8, 4),
  AP0R1_EL1: sysregKey(3, 0, 12, 8, 5),
  AP0R2_EL1: sysregKey(3, 0, 12, 8, 6),
  AP0R3_EL1: sysregKey(3, 0, 12, 8, 7),
  AP1R0_EL1: sysregKey(3, 0, 12, 9, 0),
  AP1R1_EL1: sysregKey(3, 0, 12, 9, 1),
  AP1R2_EL1: sysregKey(3, 0, 12, 9, 2),
  AP1R3_EL1: sysregKey(3, 0, 12, 9, 3),
  DIR_EL1: sysregKey(3, 0, 12, 11, 1),
  RPR_EL1: sysregKey(3, 0, 12, 11, 3),
  SGI1R_EL1: sysregKey(3, 0, 12, 11, 5),
  ASGI1R_EL1: sysregKey(3, 0, 12, 11, 6),
  SGI0R_EL1: sysregKey(3, 0, 12, 11, 7),
  IAR1_EL1: sysregKey(3, 0, 12, 12, 0),
  EOIR1_EL1: sysregKey(3, 0, 12, 12, 1),
  HPPIR1_EL1: sysregKey(3, 0, 12, 12, 2),
  BPR1_EL1: sysregKey(3, 0, 12, 12, 3),
  CTLR_EL1: sysregKey(3, 0, 12, 12, 4),
  SRE_EL1: sysregKey(3, 0, 12, 12, 5),
  IGRPEN0_EL1: sysregKey(3, 0, 12, 12, 6),
  IGRPEN1_EL1: sysregKey(3, 0, 12, 12, 7),
} as const;

/**
 * The CPU interface registers KVM lists for save/restore through
 * KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS (Documentation/virt/kvm/devices/arm-vgic-v3.rst):
 * the ones with state. Everything else (IAR, EOIR, SGI1R, ...) is an action, not state.
 */
export const ICC_STATE_REGS: readonly number[] = [
  ICC.PMR_EL1,
  ICC.BPR0_EL1,
  ICC.AP0R0_EL1,
  ICC.AP0R1_EL1,
  ICC.AP0R2_EL1,
  ICC.AP0R3_EL1,
  ICC.AP1R0_EL1,
  ICC.AP1R1_EL1,
  ICC.AP1R2_EL1,
  ICC.AP1R3_EL1,
  ICC.BPR1_EL1,
  ICC.CTLR_EL1,
  ICC.SRE_EL1,
  ICC.IGRPEN0_EL1,
  ICC.IGRPEN1_EL1,
];

/** INTIDs 1020–1023 are special; 1023 is "no pending interrupt" (spurious). */
export const INTID_SPURIOUS = 1023;
