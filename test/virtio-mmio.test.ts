import assert from "node:assert/strict";
import { test } from "node:test";
import {
  VIRTIO_F,
  VIRTIO_INT,
  VIRTIO_MMIO,
  VIRTIO_STATUS,
  type VirtioContext,
  type VirtioDevice,
} from "../src/devices/virtio/mmio.ts";
import type { DescriptorChain } from "../src/devices/virtio/queue.ts";
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F } from "../src/devices/virtio/queue.ts";
import type { StateValue } from "../src/lib/state.ts";
import { fbit, RAM_BASE, TestBench, VERSION_1 } from "./support/virtio-driver.ts";

/**
 * A device that answers each chain with its readable bytes reversed into the writable
 * buffers, and remembers every chain it saw: enough to see what the transport and the
 * queue hand to a device.
 */
class EchoDevice implements VirtioDevice {
  readonly stateName = "echo";
  readonly stateVersion = 1;
  readonly deviceId = 0x7f;
  readonly features = 1 << 3;
  readonly queueSizes = [16, 8];
  chains: DescriptorChain[] = [];
  notifies: number[] = [];
  resets = 0;
  config = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  private ctx: VirtioContext | null = null;
  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }
  configRead(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.config[offset + i] ?? 0);
    return v;
  }
  configWrite(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.config[offset + i] = (value >>> (8 * i)) & 0xff;
    this.ctx!.configChanged();
  }
  notify(i: number): void {
    this.notifies.push(i);
    const q = this.ctx!.queue(i);
    let n = 0;
    for (let c = q.pop(); c; c = q.pop()) {
      this.chains.push(c);
      const data = c.read(0, c.readableLength).reverse();
      q.push(c.head, c.write(0, data));
      n++;
    }
    if (n) this.ctx!.signal(i);
  }
  reset(): void {
    this.resets++;
  }
  saveState(): StateValue {
    return { resets: this.resets };
  }
  loadState(s: StateValue): void {
    const r = (s as { resets?: unknown }).resets;
    if (typeof r !== "number") throw new Error("bad echo state");
    this.resets = r;
  }
}

const bench = (opts: { eventIdx?: boolean; indirect?: boolean } = {}) => {
  const dev = new EchoDevice();
  return { dev, b: new TestBench(dev, opts) };
};

test("an empty slot answers MagicValue 'virt', Version 2 and DeviceID 0", () => {
  const b = new TestBench(undefined);
  assert.equal(b.r(VIRTIO_MMIO.MAGIC_VALUE), 0x74726976);
  assert.equal(new TextDecoder().decode(Uint32Array.of(b.r(0))), "virt");
  assert.equal(b.r(VIRTIO_MMIO.VERSION), 2);
  assert.equal(b.r(VIRTIO_MMIO.DEVICE_ID), 0);
  assert.equal(b.r(VIRTIO_MMIO.VENDOR_ID), 0x554d4551);
  assert.equal(b.deviceFeatures(), 0n);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_NUM_MAX), 0);
  b.w(VIRTIO_MMIO.STATUS, 1);
  assert.equal(b.r(VIRTIO_MMIO.STATUS), 0, "writes to an empty slot are ignored");
});

test("identification and features: VERSION_1, EVENT_IDX, INDIRECT_DESC added to the device's", () => {
  const { b } = bench();
  assert.equal(b.r(VIRTIO_MMIO.DEVICE_ID), 0x7f);
  const f = b.deviceFeatures();
  assert.equal(f, fbit(3) | VERSION_1 | fbit(VIRTIO_F.EVENT_IDX) | fbit(VIRTIO_F.INDIRECT_DESC));
  b.w(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 2);
  assert.equal(b.r(VIRTIO_MMIO.DEVICE_FEATURES), 0, "feature words past 63 read 0");
  const plain = new TestBench(new EchoDevice(), { eventIdx: false, indirect: false });
  assert.equal(plain.deviceFeatures(), fbit(3) | VERSION_1);
  // Registers are 32-bit; other widths read 0 (§4.2.2.2), the config space any width.
  assert.equal(b.r(VIRTIO_MMIO.MAGIC_VALUE, 2), 0);
  assert.equal(b.r(VIRTIO_MMIO.MAGIC_VALUE + 1, 1), 0);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 1, 1), 2);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 2, 2), 0x0403);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 4, 4), 0x08070605);
  assert.equal(b.r(VIRTIO_MMIO.SHM_LEN_LOW), 0xffffffff, "no shared memory region: length -1");
  assert.equal(b.r(VIRTIO_MMIO.SHM_LEN_HIGH), 0xffffffff);
});

test("FEATURES_OK does not stick without VERSION_1 or with a feature not offered (§3.1.1)", () => {
  const { b } = bench();
  assert.equal(b.negotiate(fbit(3)), false, "a legacy driver (no VERSION_1) is refused");
  assert.equal(b.negotiate(VERSION_1 | fbit(4)), false, "bit 4 was not offered");
  assert.equal(b.negotiate(VERSION_1), true, "a subset with VERSION_1 is fine");
  // DRIVER_OK without FEATURES_OK does not stick either.
  b.w(VIRTIO_MMIO.STATUS, 0);
  b.w(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER | VIRTIO_STATUS.DRIVER_OK);
  assert.equal(b.r(VIRTIO_MMIO.STATUS), VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER);
  // Features are frozen once FEATURES_OK is set.
  assert.equal(b.negotiate(VERSION_1), true);
  b.w(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 0);
  b.w(VIRTIO_MMIO.DRIVER_FEATURES, 0xffffffff);
  assert.equal(b.mmio.hasFeature(3), false);
  assert.equal(b.mmio.hasFeature(VIRTIO_F.VERSION_1), true);
});

test("the initialization sequence of §4.2.3.1, a notify, the used ring and the interrupt", () => {
  const { dev, b } = bench();
  const [q0] = b.init(2);
  assert.equal(b.r(VIRTIO_MMIO.STATUS), 0x0f);
  const src = b.alloc(5);
  const dst = b.alloc(8);
  b.put(src, new TextEncoder().encode("hello"));
  const head = q0!.add([
    { addr: src, len: 5 },
    { addr: dst, len: 8, write: true },
  ]);
  assert.equal(b.level, false);
  q0!.kick();
  assert.deepEqual(q0!.takeUsed(), [[head, 5]]);
  assert.equal(new TextDecoder().decode(b.get(dst, 5)), "olleh");
  assert.equal(b.level, true);
  assert.equal(b.edges, 1);
  assert.equal(b.r(VIRTIO_MMIO.INTERRUPT_STATUS), VIRTIO_INT.USED_BUFFER);
  assert.equal(b.ack(), VIRTIO_INT.USED_BUFFER);
  assert.equal(b.level, false);
  assert.deepEqual(dev.notifies, [0, 1, 0], "DRIVER_OK looks at every ready queue once, then the notify");
  // The device wrote the used ring and the data through GuestMemory.write: pages marked.
  assert.ok(b.dirty.some(([pa, len]) => pa === dst && len === 5));
  assert.ok(b.dirty.some(([pa]) => pa === q0!.used + 2));
});

test("no buffer is used before DRIVER_OK; those made available earlier are used at DRIVER_OK", () => {
  const { b } = bench();
  assert.ok(b.negotiate());
  const q = b.setupQueue(0);
  const buf = b.alloc(4);
  q.add([{ addr: buf, len: 4, write: true }]);
  q.kick();
  assert.deepEqual(q.takeUsed(), []);
  assert.equal(b.level, false);
  b.driverOk();
  assert.deepEqual(q.takeUsed(), [[0, 0]]);
  assert.equal(b.level, true);
});

test("writing 0 to Status resets the device: status, features, queues, interrupt", () => {
  const { dev, b } = bench();
  const [q] = b.init(2);
  q!.add([{ addr: b.alloc(1), len: 1, write: true }]);
  q!.kick();
  assert.equal(b.level, true);
  b.w(VIRTIO_MMIO.STATUS, 0);
  assert.equal(b.r(VIRTIO_MMIO.STATUS), 0);
  assert.equal(b.r(VIRTIO_MMIO.INTERRUPT_STATUS), 0);
  assert.equal(b.level, false);
  assert.equal(dev.resets, 2, "negotiate() reset once, this is the second");
  for (const i of [0, 1]) {
    b.w(VIRTIO_MMIO.QUEUE_SEL, i);
    assert.equal(b.r(VIRTIO_MMIO.QUEUE_READY), 0);
    assert.equal(b.r(VIRTIO_MMIO.QUEUE_DESC_LOW), 0);
  }
  assert.equal(b.mmio.hasFeature(VIRTIO_F.VERSION_1), false);
  // And it comes up again from scratch.
  const [q2] = b.init(1);
  q2!.add([{ addr: b.alloc(1), len: 1, write: true }]);
  q2!.kick();
  assert.equal(q2!.takeUsed().length, 1);
});

test("queue registers: QueueNumMax per queue, none past the last, no changes while ready", () => {
  const { b } = bench();
  assert.ok(b.negotiate());
  b.w(VIRTIO_MMIO.QUEUE_SEL, 1);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_NUM_MAX), 8);
  b.w(VIRTIO_MMIO.QUEUE_SEL, 2);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_NUM_MAX), 0);
  b.w(VIRTIO_MMIO.QUEUE_READY, 1);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_READY), 0);
  const q = b.setupQueue(0, 4);
  b.w(VIRTIO_MMIO.QUEUE_DESC_LOW, 0x1234);
  b.w(VIRTIO_MMIO.QUEUE_NUM, 2);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_DESC_LOW), q.desc % 2 ** 32);
  assert.equal(b.mmio.queue(0).size, 4);
  // QueueReady 0 takes it down; the driver may then reprogram it.
  b.w(VIRTIO_MMIO.QUEUE_READY, 0);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_READY), 0);
  b.w(VIRTIO_MMIO.QUEUE_DESC_HIGH, 1);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_DESC_HIGH), 1);
  assert.equal(b.mmio.queue(0).desc, 2 ** 32 + q.desc);
});

test("a QueueNum that is not a power of 2 up to QueueNumMax is a driver error", () => {
  for (const n of [0, 3, 32]) {
    const { b } = bench();
    assert.ok(b.negotiate());
    b.w(VIRTIO_MMIO.QUEUE_SEL, 0);
    b.w(VIRTIO_MMIO.QUEUE_NUM, n);
    b.w(VIRTIO_MMIO.QUEUE_READY, 1);
    assert.equal(b.r(VIRTIO_MMIO.QUEUE_READY), 0, `QueueNum ${n}`);
    assert.ok(b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET);
  }
});

test("scatter-gather: readable and writable buffers in any framing, indirect tables", () => {
  const { dev, b } = bench();
  const [q] = b.init(1);
  const a = b.alloc(3);
  const c = b.alloc(2);
  b.put(a, Uint8Array.of(1, 2, 3));
  b.put(c, Uint8Array.of(4, 5));
  const w1 = b.alloc(1);
  const w2 = b.alloc(10);
  const h = q!.add(
    [
      { addr: a, len: 3 },
      { addr: c, len: 2 },
      { addr: w1, len: 1, write: true },
      { addr: w2, len: 10, write: true },
    ],
    { indirect: true },
  );
  q!.kick();
  assert.deepEqual(q!.takeUsed(), [[h, 5]]);
  assert.deepEqual([...b.get(w1, 1), ...b.get(w2, 4)], [5, 4, 3, 2, 1]);
  const chain = dev.chains[0]!;
  assert.equal(chain.readableLength, 5);
  assert.equal(chain.writableLength, 11);
  assert.deepEqual([...chain.read(2, 10)], [3, 4, 5], "reads stop at the end of the readable part");
});

test("indirect descriptors are a driver error unless VIRTIO_F_INDIRECT_DESC was negotiated", () => {
  const { b } = bench();
  const [q] = b.init(1, VERSION_1);
  q!.add([{ addr: b.alloc(1), len: 1, write: true }], { indirect: true });
  q!.kick();
  assert.ok(b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET);
  assert.match(b.mmio.lastError!, /indirect/);
});

/** Runs one bad chain through a fresh device and checks the NEEDS_RESET path of §2.1.2. */
function expectNeedsReset(
  corrupt: (b: TestBench, q: ReturnType<TestBench["setupQueue"]>) => void,
  reason: RegExp,
): void {
  const { dev, b } = bench();
  const [q] = b.init(1);
  corrupt(b, q!);
  q!.kick();
  const st = b.r(VIRTIO_MMIO.STATUS);
  assert.equal(st & VIRTIO_STATUS.DEVICE_NEEDS_RESET, VIRTIO_STATUS.DEVICE_NEEDS_RESET, String(reason));
  assert.match(b.mmio.lastError!, reason);
  assert.equal(b.r(VIRTIO_MMIO.INTERRUPT_STATUS) & VIRTIO_INT.CONFIG_CHANGE, VIRTIO_INT.CONFIG_CHANGE);
  assert.equal(b.level, true);
  assert.deepEqual(q!.takeUsed(), [], "nothing is used");
  // The device stays stopped: a good chain after it is not used either ...
  const seen = dev.chains.length;
  q!.add([{ addr: b.alloc(1), len: 1, write: true }]);
  q!.kick();
  assert.equal(dev.chains.length, seen);
  // ... until the driver resets it; the driver cannot clear NEEDS_RESET otherwise.
  b.w(VIRTIO_MMIO.STATUS, st & ~VIRTIO_STATUS.DEVICE_NEEDS_RESET);
  assert.ok(b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET);
  const [q2] = b.init(1);
  q2!.add([{ addr: b.alloc(1), len: 1, write: true }]);
  q2!.kick();
  assert.equal(q2!.takeUsed().length, 1);
  assert.equal(b.r(VIRTIO_MMIO.STATUS), 0x0f);
}

test("out-of-range and malformed rings set DEVICE_NEEDS_RESET with a config-change interrupt", () => {
  const END = RAM_BASE + (1 << 20);
  expectNeedsReset((_, q) => {
    q.add([{ addr: END - 4, len: 8, write: true }]);
  }, /outside guest RAM/);
  expectNeedsReset((_, q) => {
    q.add([{ addr: 0x1000, len: 8 }]);
  }, /outside guest RAM/);
  expectNeedsReset((_, q) => {
    q.add([{ addr: 2 ** 52, len: 1 }]);
  }, /outside guest RAM/);
  expectNeedsReset((b, q) => {
    // A chain whose NEXT points back at itself.
    const h = q.build([{ addr: b.alloc(1), len: 1 }]);
    const o = b.off(q.desc + 16 * h);
    b.dv.setUint16(o + 12, VIRTQ_DESC_F.NEXT, true);
    b.dv.setUint16(o + 14, h, true);
    q.publish(h);
  }, /loops/);
  expectNeedsReset((_, q) => {
    q.publish(16);
  }, /head descriptor 16/);
  expectNeedsReset((b, q) => {
    b.dv.setUint16(b.off(q.avail + 2), 17, true);
  }, /ahead/);
  expectNeedsReset((b, q) => {
    q.add([
      { addr: b.alloc(1), len: 1, write: true },
      { addr: b.alloc(1), len: 1 },
    ]);
  }, /readable buffer after a device-writable/);
  expectNeedsReset((b, q) => {
    q.add([{ addr: b.alloc(1), len: 1 }], { indirect: true });
    const o = b.off(q.desc);
    b.dv.setUint32(o + 8, 24, true); // not a whole number of descriptors
  }, /indirect table length/);
  expectNeedsReset((b, q) => {
    const h = q.add([{ addr: b.alloc(1), len: 1 }], { indirect: true });
    // An indirect descriptor inside the indirect table.
    const table = b.dv.getUint32(b.off(q.desc + 16 * h), true);
    b.dv.setUint16(b.off(table + 12), VIRTQ_DESC_F.INDIRECT, true);
  }, /inside an indirect table/);
  expectNeedsReset((b, q) => {
    const h = q.build([{ addr: b.alloc(1), len: 1 }]);
    b.dv.setUint16(b.off(q.desc + 16 * h + 12), VIRTQ_DESC_F.NEXT, true);
    b.dv.setUint16(b.off(q.desc + 16 * h + 14), 99, true);
    q.publish(h);
  }, /next descriptor 99/);
});

test("rings placed outside RAM are a driver error, not a crash", () => {
  const { b } = bench();
  assert.ok(b.negotiate());
  b.w(VIRTIO_MMIO.QUEUE_SEL, 0);
  b.w(VIRTIO_MMIO.QUEUE_NUM, 16);
  b.w(VIRTIO_MMIO.QUEUE_DESC_LOW, 0x1000);
  b.w(VIRTIO_MMIO.QUEUE_DRIVER_LOW, 0x2000);
  b.w(VIRTIO_MMIO.QUEUE_DEVICE_LOW, 0x3000);
  b.w(VIRTIO_MMIO.QUEUE_READY, 1);
  b.driverOk();
  assert.ok(b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET);
  assert.match(b.mmio.lastError!, /avail.idx at 0x2002/);
  assert.ok(b.r(VIRTIO_MMIO.INTERRUPT_STATUS) & VIRTIO_INT.CONFIG_CHANGE);
});

test("VIRTQ_AVAIL_F_NO_INTERRUPT suppresses the used-buffer interrupt without EVENT_IDX", () => {
  const { b } = bench({ eventIdx: false });
  const [q] = b.init(1);
  q!.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  q!.add([{ addr: b.alloc(1), len: 1, write: true }]);
  q!.kick();
  assert.equal(q!.takeUsed().length, 1);
  assert.equal(b.level, false);
  q!.setAvailFlags(0);
  q!.add([{ addr: b.alloc(1), len: 1, write: true }]);
  q!.kick();
  assert.equal(b.level, true);
});

test("VIRTIO_F_EVENT_IDX: interrupts when used.idx passes used_event; avail_event follows the device", () => {
  const { b } = bench();
  const [q] = b.init(1);
  const buf = () => [{ addr: b.alloc(1), len: 1, write: true }];
  q!.setUsedEvent(0); // interrupt when the first used entry (index 0) is written
  q!.add(buf());
  q!.kick();
  assert.equal(q!.usedIdx(), 1);
  assert.equal(b.ack(), VIRTIO_INT.USED_BUFFER);
  assert.equal(q!.availEvent(), 1, "the device asks for a notify at the next entry");
  q!.setUsedEvent(3); // only after the 4th completion
  for (let i = 0; i < 2; i++) {
    q!.add(buf());
    q!.kick();
    assert.equal(b.level, false, `completion ${i + 2} is suppressed`);
  }
  q!.add(buf());
  q!.kick();
  assert.equal(q!.usedIdx(), 4);
  assert.equal(b.ack(), VIRTIO_INT.USED_BUFFER, "used.idx went past used_event 3");
  // The flag is ignored when EVENT_IDX is negotiated (§2.7.7.2).
  q!.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  q!.setUsedEvent(4);
  q!.add(buf());
  q!.kick();
  assert.equal(b.level, true);
});

test("a configuration change moves ConfigGeneration on and raises the config interrupt", () => {
  const { b } = bench();
  b.init(1);
  const g = b.r(VIRTIO_MMIO.CONFIG_GENERATION);
  b.w(VIRTIO_MMIO.CONFIG + 2, 0xbeef, 2);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 2, 2), 0xbeef);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG_GENERATION), g + 1);
  assert.equal(b.ack(), VIRTIO_INT.CONFIG_CHANGE);
});

test("save/restore mid-operation: the restored transport goes on exactly as the original", () => {
  const run = (split: boolean) => {
    let { dev, b } = bench();
    const [q] = b.init(2);
    const out = b.alloc(64);
    const step = (i: number) => {
      const src = b.alloc(2);
      b.put(src, Uint8Array.of(i, i + 1));
      q!.add([
        { addr: src, len: 2 },
        { addr: out + 2 * (i % 32), len: 2, write: true },
      ]);
      q!.kick();
    };
    for (let i = 0; i < 5; i++) step(i);
    // Leave an interrupt pending and a chain available but not notified.
    q!.add([{ addr: b.alloc(1), len: 1, write: true }]);
    if (split) {
      const saved = JSON.parse(JSON.stringify(b.mmio.saveState()));
      const ram = b.ram.slice();
      const fresh = bench();
      fresh.b.ram.set(ram);
      fresh.b.next = b.next;
      fresh.b.mmio.loadState(saved, 1);
      assert.equal(fresh.b.level, true, "the pending interrupt is driven after the load");
      assert.deepEqual(fresh.b.mmio.saveState(), saved);
      // The driver's queue object stays valid: the rings are in the (copied) RAM.
      Object.assign(q!, { bench: fresh.b });
      ({ dev, b } = fresh);
    }
    b.ack();
    for (let i = 5; i < 40; i++) step(i);
    return { used: q!.takeUsed(), state: b.mmio.saveState(), ram: b.ram.slice(), chains: dev.chains.length };
  };
  const a = run(false);
  const c = run(true);
  assert.deepEqual(c.state, a.state);
  assert.deepEqual(c.used.slice(-30), a.used.slice(-30));
  assert.ok(Buffer.from(c.ram).equals(Buffer.from(a.ram)), "guest RAM is the same byte for byte");
});

test("a corrupt or mismatched state is refused and leaves the device as it was", () => {
  const { b } = bench();
  b.init(2);
  const good = b.mmio.saveState() as Record<string, StateValue>;
  const before = JSON.stringify(good);
  const q0 = (good.queues as Record<string, StateValue>[])[0]!;
  const bad: [string, StateValue, RegExp][] = [
    ["wrong device", { ...good, deviceId: 2 }, /device ID 2/],
    ["status > 8 bits", { ...good, status: 0x100 }, /status/],
    ["interrupt bits", { ...good, interruptStatus: 4 }, /interruptStatus/],
    ["features not offered", { ...good, driverFeatures: [1 << 4, 1] }, /does not offer/],
    ["queue count", { ...good, queues: [q0] }, /2 queues/],
    ["queue size", { ...good, queues: [{ ...q0, size: 3 }, q0] }, /power of 2/],
    ["queue too big", { ...good, queues: [{ ...q0, size: 32 }, q0] }, /size/],
    ["index", { ...good, queues: [{ ...q0, usedIdx: 65536 }, q0] }, /usedIdx/],
    ["address", { ...good, queues: [{ ...q0, desc: [0, 2 ** 32] }, q0] }, /desc/],
    ["address shape", { ...good, queues: [{ ...q0, desc: 5 }, q0] }, /desc/],
    ["missing field", { ...good, queueSel: null }, /queueSel/],
    ["not an object", [1, 2, 3], /not an object/],
  ];
  for (const [what, s, re] of bad) {
    assert.throws(() => b.mmio.loadState(s, 1), re, what);
    assert.equal(JSON.stringify(b.mmio.saveState()), before, `${what}: unchanged`);
  }
  assert.throws(() => b.mmio.loadState(good, 2), /unsupported version 2/);
  const { device: _d, ...noDevice } = good;
  assert.throws(() => b.mmio.loadState(noDevice, 1), /device/);
  const emptySlot = new TestBench(undefined);
  assert.throws(() => emptySlot.mmio.loadState(good, 1), /device ID 127; this slot has 0/);
  emptySlot.mmio.loadState(emptySlot.mmio.saveState(), 1);
});
