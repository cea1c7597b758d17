/**
 * armbox as a library (`import { VirtMachine } from "armbox"`): the virt board with its
 * vCPUs, GICv3, timers and devices, the scheduler that runs it, and its snapshots. Nothing
 * here uses a Node-only API: the same module runs in a browser bundle (the package's
 * build checks it, bundling this entry for a neutral platform).
 *
 *   const m = new VirtMachine({ kernel, initrd, append: "console=ttyAMA0", smp: 2,
 *                               memory: 256 << 20, serialOutput: (b) => write(b) });
 *   const s = m.scheduler();
 *   for (;;) { const e = s.round(); if (e?.kind === "system-event") break; }
 *   const snap = encodeSnapshot(snapshotHeader(m), captureSections(m));
 */

export { ARM64_MP_STATES, MP_STATE, MP_STATE_NAMES, type MpState } from "./hv/mp-state.ts";
export { KvmError } from "./hv/onereg.ts";
export { DEFAULT_QUANTUM, Scheduler, type SchedulerEvent } from "./hv/scheduler.ts";
export {
  type MachineConfig,
  type VirtConfig,
  type VirtioDeviceConfig,
  type VirtioDeviceInfo,
  VirtMachine,
} from "./machine/virt.ts";
export { VERSION } from "./version.ts";
export {
  decodeSnapshot,
  encodeSnapshot,
  type Section,
  SnapshotError,
  type SnapshotHeader,
} from "./vmm/snapshot/format.ts";
export {
  captureSections,
  configFromHeader,
  restoreSections,
  snapshotHeader,
  stateDigest,
} from "./vmm/snapshot/machine-state.ts";
