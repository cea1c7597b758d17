/**
 * KVM's MP states (Documentation/virt/kvm/api.rst, KVM_GET_MP_STATE), with KVM's numbers.
 * An arm64 vCPU accepts RUNNABLE, STOPPED and SUSPENDED; the rest belong to x86/s390.
 */
export const MP_STATE = {
  RUNNABLE: 0,
  UNINITIALIZED: 1,
  INIT_RECEIVED: 2,
  HALTED: 3,
  SIPI_RECEIVED: 4,
  STOPPED: 5,
  CHECK_STOP: 6,
  OPERATING: 7,
  LOAD: 8,
  AP_RESET_HOLD: 9,
  SUSPENDED: 10,
} as const;

export type MpState = (typeof MP_STATE)[keyof typeof MP_STATE];

export const MP_STATE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(MP_STATE).map(([k, v]) => [v, k]),
);

/** The states an arm64 vCPU accepts in KVM_SET_MP_STATE. */
export const ARM64_MP_STATES: readonly number[] = [MP_STATE.RUNNABLE, MP_STATE.STOPPED, MP_STATE.SUSPENDED];

/**
 * Internal, transient value of the MP-state word while a CPU_ON is initialising the
 * target's registers (PSCI's ON_PENDING). Never saved: CPU_ON completes within one call.
 */
export const MP_ON_PENDING = 0x7fff;
