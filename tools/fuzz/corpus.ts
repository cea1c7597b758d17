/**
 * The valid inputs the mutators start from, made by armbox itself at the start of every
 * run (never checked in: when a format changes, the seeds change with it): snapshots of
 * small guests in several situations, a migration stream, the guests' ELF files, an arm64
 * Image, a device tree.
 */
import { readFileSync } from "node:fs";
import { MemoryBlockBackend } from "../../src/devices/virtio/blk.ts";
import { type MachineConfig, type VirtioDeviceConfig, VirtMachine } from "../../src/machine/virt.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  type Section,
  type SnapshotHeader,
} from "../../src/vmm/snapshot/format.ts";
import { captureSections, snapshotHeader } from "../../src/vmm/snapshot/machine-state.ts";

export function guestFile(path: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../../guests/${path}`, import.meta.url)));
}

/** The virtio devices a base machine has (its snapshot's restore machine must have the same). */
export type VirtioKind = "blk" | "rng" | "console";

export function virtioDevices(kinds: readonly VirtioKind[]): VirtioDeviceConfig[] {
  return kinds.map((k) =>
    k === "blk" ? { kind: "blk", backend: new MemoryBlockBackend(64 * 1024) } : { kind: k },
  );
}

export interface BaseSnapshot {
  readonly name: string;
  readonly header: SnapshotHeader;
  readonly sections: readonly Section[];
  readonly bytes: Uint8Array;
  readonly virtio: readonly VirtioKind[];
}

interface BaseSpec {
  name: string;
  guest: string;
  smp: number;
  memory: number;
  deterministic: boolean;
  virtio: VirtioKind[];
  instructions: number;
}

const SPECS: BaseSpec[] = [
  // Two busy vCPUs, deterministic clock.
  {
    name: "counter-smp2",
    guest: "migration/bin/counter.elf",
    smp: 2,
    memory: 1 << 20,
    deterministic: true,
    virtio: [],
    instructions: 200_000,
  },
  // Four vCPUs: one powered off by CPU_OFF, one in WFI, one counting (the seed scenario).
  {
    name: "seed-smp4",
    guest: "seed/bin/seed.elf",
    smp: 4,
    memory: 1 << 20,
    deterministic: true,
    virtio: [],
    instructions: 3_000_000,
  },
  // Real-time clock, one vCPU, every kind of virtio device plugged.
  {
    name: "idle-virtio-realtime",
    guest: "migration/bin/idle.elf",
    smp: 1,
    memory: 2 << 20,
    deterministic: false,
    virtio: ["blk", "rng", "console"],
    instructions: 100_000,
  },
];

/** Boots each base guest, runs it a while, and saves it. */
export function baseSnapshots(): BaseSnapshot[] {
  return SPECS.map((s) => {
    const m = new VirtMachine({
      kernel: guestFile(s.guest),
      smp: s.smp,
      memory: s.memory,
      deterministic: s.deterministic,
      virtio: virtioDevices(s.virtio),
    });
    const sched = m.scheduler();
    for (let left = s.instructions, guard = 0; left > 0 && guard < 10_000; guard++) {
      const before = sched.instructions;
      sched.round(left);
      left -= Number(sched.instructions - before);
    }
    const bytes = encodeSnapshot(snapshotHeader(m), captureSections(m), false);
    const { header, sections } = decodeSnapshot(bytes);
    return { name: s.name, header, sections, bytes, virtio: s.virtio };
  });
}

/** A machine to restore into, built as `armbox run --restore` builds it. */
export function restoreMachine(config: MachineConfig, virtio: readonly VirtioKind[]): VirtMachine {
  return new VirtMachine({ ...config, virtio: virtioDevices(virtio) });
}
