import assert from "node:assert/strict";
import { test } from "node:test";
import { VIRTIO_INT, VIRTIO_MMIO } from "../src/devices/virtio/mmio.ts";
import { RNG_MAX_REQUEST, SeededEntropy, VirtioRng } from "../src/devices/virtio/rng.ts";
import { TestBench, VERSION_1 } from "./support/virtio-driver.ts";

const seed = () => new Uint8Array(32).map((_, i) => i * 3 + 1);

test("virtio-rng: DeviceID 4, one queue, no device features, no configuration space", () => {
  const b = new TestBench(new VirtioRng({ fill: (buf) => buf.fill(0x5a) }));
  assert.equal(b.r(VIRTIO_MMIO.DEVICE_ID), 4);
  assert.equal(b.deviceFeatures() & 0xff_ffffn, 0n);
  assert.ok(b.deviceFeatures() & VERSION_1);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG), 0);
  b.w(VIRTIO_MMIO.QUEUE_SEL, 1);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_NUM_MAX), 0);
});

test("requests are filled from the source; the used length is what was written", () => {
  const calls: number[] = [];
  const b = new TestBench(
    new VirtioRng({
      fill: (buf) => {
        calls.push(buf.length);
        buf.fill(0xa5);
      },
    }),
  );
  const [q] = b.init(1);
  const a = b.alloc(64);
  const c = b.alloc(16);
  const h1 = q!.add([{ addr: a, len: 64, write: true }]);
  const h2 = q!.add([
    { addr: c, len: 8, write: true },
    { addr: c + 8, len: 8, write: true },
  ]);
  q!.kick();
  assert.deepEqual(q!.takeUsed(), [
    [h1, 64],
    [h2, 16],
  ]);
  assert.ok(b.get(a, 64).every((x) => x === 0xa5));
  assert.ok(b.get(c, 16).every((x) => x === 0xa5));
  assert.deepEqual(calls, [64, 16]);
  assert.equal(b.ack(), VIRTIO_INT.USED_BUFFER);
  // A huge buffer is only partly filled (§5.4.6.1 allows it).
  const big = b.alloc(RNG_MAX_REQUEST + 100);
  const h3 = q!.add([{ addr: big, len: RNG_MAX_REQUEST + 100, write: true }]);
  q!.kick();
  assert.deepEqual(q!.takeUsed(), [[h3, RNG_MAX_REQUEST]]);
  // Readable-only buffers get nothing written.
  const h4 = q!.add([{ addr: a, len: 4 }]);
  q!.kick();
  assert.deepEqual(q!.takeUsed(), [[h4, 0]]);
});

test("SeededEntropy: the same seed gives the same stream, split anywhere; another seed another", () => {
  const one = new SeededEntropy(seed());
  const whole = new Uint8Array(103);
  one.fill(whole);
  const two = new SeededEntropy(seed());
  const parts = [new Uint8Array(40), new Uint8Array(63)];
  for (const p of parts) two.fill(p);
  assert.deepEqual([...parts[0]!, ...parts[1]!], [...whole]);
  assert.equal(one.position, 26);
  const other = new SeededEntropy(seed().map((x) => x ^ 1));
  const o = new Uint8Array(103);
  other.fill(o);
  assert.notDeepEqual(o, whole);
  // Not constant and roughly balanced.
  const big = new Uint8Array(1 << 16);
  new SeededEntropy(seed()).fill(big);
  let ones = 0;
  for (const x of big) for (let v = x; v; v &= v - 1) ones++;
  assert.ok(Math.abs(ones / (big.length * 8) - 0.5) < 0.01, `bit balance ${ones / (big.length * 8)}`);
  assert.ok(new Set(big).size === 256);
});

test("save/restore mid-stream: a restored deterministic rng draws what an unbroken one draws", () => {
  const run = (split: boolean): Uint8Array => {
    let b = new TestBench(new VirtioRng(new SeededEntropy(seed())));
    const [q] = b.init(1);
    const out = b.alloc(32 * 20);
    for (let i = 0; i < 20; i++) {
      if (split && i === 7) {
        const saved = JSON.parse(JSON.stringify(b.mmio.saveState()));
        const nb = new TestBench(new VirtioRng(new SeededEntropy(seed())));
        nb.ram.set(b.ram);
        nb.next = b.next;
        nb.mmio.loadState(saved, 1);
        Object.assign(q!, { bench: nb });
        b = nb;
      }
      q!.add([{ addr: out + 32 * i, len: 32, write: true }]);
      q!.kick();
      q!.takeUsed();
    }
    return b.get(out, 32 * 20);
  };
  const a = run(false);
  assert.deepEqual(run(true), a);
  // And a restore that forgets the position would not be equal: the test can fail.
  const fresh = new SeededEntropy(seed());
  const first = new Uint8Array(32);
  fresh.fill(first);
  assert.notDeepEqual(a.subarray(7 * 32, 8 * 32), first);
});

test("a corrupt rng state is refused", () => {
  const seeded = new VirtioRng(new SeededEntropy(seed()));
  assert.throws(() => seeded.loadState({ position: -1 }, 1), /position/);
  assert.throws(() => seeded.loadState({ position: 1.5 }, 1), /position/);
  assert.throws(() => seeded.loadState({}, 1), /position/);
  assert.throws(() => seeded.loadState(null, 1), /not an object/);
  assert.throws(() => seeded.loadState({ position: 1 }, 2), /version 2/);
  const host = new VirtioRng({ fill: () => {} });
  assert.deepEqual(host.saveState(), {});
  host.loadState({}, 1);
  assert.throws(() => host.loadState({ position: 3 }, 1), /has none/);
});
