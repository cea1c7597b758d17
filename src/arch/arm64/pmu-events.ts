/**
 * The PMU's constants (pmu.ts), in a module that imports nothing: sysregs.ts builds its
 * table from them when it loads, and pmu.ts imports sysregs.ts, so they cannot live in
 * pmu.ts without making the order of first imports matter.
 */

/** PMCR_EL0.N: event counters implemented. */
export const PMU_COUNTERS = 6;
/** The overflow interrupt's PPI on QEMU's virt board (INTID 23: PPI 7). */
export const PMU_PPI = 23;

export const PMU_EVENT = { SW_INCR: 0x00, INST_RETIRED: 0x08, CPU_CYCLES: 0x11, CHAIN: 0x1e } as const;
/** PMCEID0_EL0: bit n set for each common event n < 32 that is implemented. */
export const PMCEID0 =
  (1 << PMU_EVENT.SW_INCR) |
  (1 << PMU_EVENT.INST_RETIRED) |
  (1 << PMU_EVENT.CPU_CYCLES) |
  (1 << PMU_EVENT.CHAIN);
