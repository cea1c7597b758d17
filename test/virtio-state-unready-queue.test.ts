/**
 * Found by the virtio ring fuzzer (tools/fuzz/targets/virtio.ts, the state round trip):
 * a driver may write any QueueNum and any ring address while a queue is not ready (they are
 * only checked when it is made ready, or used), but the transport's own state section then
 * could not be loaded again: a snapshot or a live migration of such a VM was refused by its
 * destination ("field 'size' 3 is not a power of 2 up to 16", "field 'desc' is out of
 * range"). The section now loads, and the device then reacts as the original would.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { VIRTIO_MMIO, VIRTIO_STATUS } from "../src/devices/virtio/mmio.ts";
import { VirtioRng } from "../src/devices/virtio/rng.ts";
import type { StateValue } from "../src/lib/state.ts";
import { TestBench } from "./support/virtio-driver.ts";

const bench = () => new TestBench(new VirtioRng({ fill: (b) => b.fill(1) }, { queueSize: 16 }));

/** Saves `b`'s transport, loads the section (through JSON) into a fresh one; returns it. */
function restored(b: TestBench): TestBench {
  const saved = JSON.parse(JSON.stringify(b.mmio.saveState())) as StateValue;
  const fresh = bench();
  fresh.ram.set(b.ram);
  fresh.mmio.loadState(saved, b.mmio.stateVersion);
  assert.deepEqual(fresh.mmio.saveState(), saved, "saved again, the same section");
  return fresh;
}

test("a queue whose QueueNum the driver set to a size it may not use yet could not be restored", () => {
  for (const n of [0, 3, 17, 32, 65535, 0xffff_ffff]) {
    const b = bench();
    assert.ok(b.negotiate());
    b.w(VIRTIO_MMIO.QUEUE_SEL, 0);
    b.w(VIRTIO_MMIO.QUEUE_NUM, n);
    const r = restored(b);
    // Made ready, the restored queue is refused as the original is.
    for (const x of [b, r]) {
      x.w(VIRTIO_MMIO.QUEUE_SEL, 0);
      x.w(VIRTIO_MMIO.QUEUE_READY, 1);
      assert.equal(x.r(VIRTIO_MMIO.QUEUE_READY), 0, `QueueNum ${n}`);
      assert.ok(x.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET, `QueueNum ${n}: needs reset`);
    }
  }
});

test("a ready queue with a size that is not a power of 2 is still refused in a saved state", () => {
  const b = bench();
  b.init(1);
  const saved = b.mmio.saveState() as { queues: Record<string, StateValue>[] };
  saved.queues[0]!.size = 3;
  assert.throws(() => bench().mmio.loadState(saved, 1), /field 'size' 3 is not a power of 2 up to 16/);
});

test("a ring address whose high half puts it past 2^53 made the state unloadable", () => {
  for (const reg of [
    VIRTIO_MMIO.QUEUE_DESC_HIGH,
    VIRTIO_MMIO.QUEUE_DRIVER_HIGH,
    VIRTIO_MMIO.QUEUE_DEVICE_HIGH,
  ]) {
    const b = bench();
    assert.ok(b.negotiate());
    const q = b.setupQueue(0);
    b.w(VIRTIO_MMIO.QUEUE_READY, 0);
    b.w(reg, 0xffff_ffff);
    b.dv.setUint16(b.off(q.avail + 2), 1, true); // one chain (descriptor 0) made available
    const r = restored(b);
    // Both keep the low half exactly, and the ring is outside RAM: using it needs a reset.
    for (const x of [b, r]) {
      x.w(VIRTIO_MMIO.QUEUE_SEL, 0);
      assert.equal(
        x.r(reg - 4),
        (reg === VIRTIO_MMIO.QUEUE_DESC_HIGH
          ? q.desc
          : reg === VIRTIO_MMIO.QUEUE_DRIVER_HIGH
            ? q.avail
            : q.used) %
          2 ** 32,
      );
      x.w(VIRTIO_MMIO.QUEUE_READY, 1);
      x.driverOk();
      x.w(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
      assert.ok(
        x.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET,
        "a ring outside RAM needs a reset",
      );
      assert.match(x.mmio.lastError ?? "", /outside guest RAM/);
    }
  }
});
