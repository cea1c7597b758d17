/**
 * PSCI 1.0 (Arm DEN 0022) and the SMCCC calls a guest makes through the conduit (HVC or
 * SMC), handled in the hypervisor as KVM does (arch/arm64/kvm/psci.c behaviour; the
 * semantics come from the PSCI specification).
 */
export const PSCI_FN = {
  PSCI_VERSION: 0x8400_0000,
  CPU_SUSPEND_32: 0x8400_0001,
  CPU_SUSPEND_64: 0xc400_0001,
  CPU_OFF: 0x8400_0002,
  CPU_ON_32: 0x8400_0003,
  CPU_ON_64: 0xc400_0003,
  AFFINITY_INFO_32: 0x8400_0004,
  AFFINITY_INFO_64: 0xc400_0004,
  MIGRATE_INFO_TYPE: 0x8400_0006,
  SYSTEM_OFF: 0x8400_0008,
  SYSTEM_RESET: 0x8400_0009,
  PSCI_FEATURES: 0x8400_000a,
  SYSTEM_SUSPEND_32: 0x8400_000e,
  SYSTEM_SUSPEND_64: 0xc400_000e,
  SMCCC_VERSION: 0x8000_0000,
  SMCCC_ARCH_FEATURES: 0x8000_0001,
} as const;

export const PSCI_RET = {
  SUCCESS: 0,
  NOT_SUPPORTED: -1,
  INVALID_PARAMETERS: -2,
  DENIED: -3,
  ALREADY_ON: -4,
  ON_PENDING: -5,
  INTERNAL_FAILURE: -6,
  NOT_PRESENT: -7,
  DISABLED: -8,
  INVALID_ADDRESS: -9,
} as const;

/** AFFINITY_INFO results. */
export const AFFINITY = { ON: 0, OFF: 1, ON_PENDING: 2 } as const;

/** PSCI 1.0 as the FW register KVM_REG_ARM_PSCI_VERSION reports it (major << 16 | minor). */
export const PSCI_VERSION_1_0 = 0x1_0000;
export const PSCI_VERSION_0_2 = 0x2;
/** SMCCC 1.1. */
export const SMCCC_VERSION_1_1 = 0x1_0001;

/** The functions PSCI_FEATURES reports as implemented (PSCI 1.0 §5.1.14). */
export const PSCI_IMPLEMENTED: ReadonlySet<number> = new Set<number>([
  PSCI_FN.PSCI_VERSION,
  PSCI_FN.CPU_SUSPEND_32,
  PSCI_FN.CPU_SUSPEND_64,
  PSCI_FN.CPU_OFF,
  PSCI_FN.CPU_ON_32,
  PSCI_FN.CPU_ON_64,
  PSCI_FN.AFFINITY_INFO_32,
  PSCI_FN.AFFINITY_INFO_64,
  PSCI_FN.MIGRATE_INFO_TYPE,
  PSCI_FN.SYSTEM_OFF,
  PSCI_FN.SYSTEM_RESET,
  PSCI_FN.PSCI_FEATURES,
  PSCI_FN.SYSTEM_SUSPEND_32,
  PSCI_FN.SYSTEM_SUSPEND_64,
  PSCI_FN.SMCCC_VERSION,
]);

/** MIGRATE_INFO_TYPE = 2: no Trusted OS, so nothing needs migrating. */
export const MIGRATE_INFO_NOT_REQUIRED = 2;
