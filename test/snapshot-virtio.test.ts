/**
 * Snapshots of a board with virtio devices: the sections come from the board's component
 * list (each plugged transport by name, e.g. virtio-mmio@a003e00), a machine built with
 * the same devices restores them, and one without them refuses the snapshot naming the
 * section (regression: the restore side once kept its own list of section names).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryBlockBackend } from "../src/devices/virtio/blk.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { decodeSnapshot, encodeSnapshot } from "../src/vmm/snapshot/format.ts";
import {
  captureSections,
  restoreSections,
  snapshotHeader,
  stateDigest,
} from "../src/vmm/snapshot/machine-state.ts";

const kernel = Uint8Array.of(0x7f, 0x20, 0x03, 0xd5, 0xff, 0xff, 0xff, 0x17); // wfi; b .
const MiB = 1 << 20;

test("a snapshot with virtio-blk and virtio-rng restores into a board with the same devices", () => {
  const disk = new MemoryBlockBackend(8 * 512);
  const devices = () => [{ kind: "blk" as const, backend: disk }, { kind: "rng" as const }];
  const m = new VirtMachine({ memory: 64 * MiB, kernel, deterministic: true, virtio: devices() });
  const bytes = encodeSnapshot(snapshotHeader(m), captureSections(m));
  const { sections } = decodeSnapshot(bytes);
  const names = sections.map((s) => s.name);
  assert.ok(names.includes("virtio-mmio@a003e00") && names.includes("virtio-mmio@a003c00"), names.join(" "));
  const empty = new VirtMachine({ memory: 64 * MiB, deterministic: true, virtio: devices() });
  restoreSections(empty, sections);
  assert.equal(stateDigest(empty), stateDigest(m));
  const without = new VirtMachine({ memory: 64 * MiB, deterministic: true });
  assert.throws(
    () => restoreSections(without, sections),
    /section 'virtio-mmio@a003[ce]00' is not part of this machine/,
  );
});
