/**
 * Console output backpressure (issue 9 item 4): a guest that floods the PL011 or the virtio
 * console while the host does not read must not grow host memory without bound; it waits
 * (TXFF, transmit buffers unused) and nothing is lost or reordered once the host drains.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { OutputSink } from "../src/devices/output-sink.ts";
import { FR, PL011_REG, Pl011 } from "../src/devices/pl011.ts";
import { TX_CHUNK, VirtioConsole } from "../src/devices/virtio/console.ts";
import { TestBench } from "./support/virtio-driver.ts";

const BOUND = 4096;

/** A host output nobody reads until drain() is called: it holds what it is given. */
class BlockedSink implements OutputSink {
  held: Uint8Array[] = [];
  heldBytes = 0;
  maxHeld = 0;
  received: number[] = [];
  private waiters: (() => void)[] = [];
  write(bytes: Uint8Array): boolean {
    this.held.push(bytes.slice());
    this.heldBytes += bytes.length;
    this.maxHeld = Math.max(this.maxHeld, this.heldBytes);
    return this.heldBytes < BOUND;
  }
  onDrain(cb: () => void): void {
    this.waiters.push(cb);
  }
  /** The reader takes everything; the drain callbacks run. */
  drain(): void {
    for (const b of this.held) for (const x of b) this.received.push(x);
    this.held = [];
    this.heldBytes = 0;
    const w = this.waiters;
    this.waiters = [];
    for (const cb of w) cb();
  }
}

const byteAt = (i: number) => (i * 7 + (i >> 9)) & 0xff;

test("a guest flooding the UART grows host memory without bound", () => {
  const sink = new BlockedSink();
  const u = new Pl011({ irq: { set() {} }, output: sink });
  u.write(PL011_REG.LCR_H, 4, 0x70); // FIFOs on, 8 bits
  const total = 200_000;
  let written = 0;
  let sawFull = 0;
  // The guest polls TXFF before every byte, as a driver must; the host drains only when the
  // guest is stuck on a full FIFO.
  while (written < total) {
    if (u.read(PL011_REG.FR, 4) & FR.TXFF) {
      sawFull++;
      assert.ok(sink.heldBytes <= BOUND + 1, `host holds ${sink.heldBytes} bytes`);
      sink.drain();
      continue;
    }
    u.write(PL011_REG.DR, 4, byteAt(written++));
  }
  sink.drain();
  assert.ok(sawFull > 10, "the guest saw TXFF while the host was behind");
  assert.ok(sink.maxHeld <= BOUND + 1, `host memory bounded (held at most ${sink.maxHeld})`);
  assert.equal(sink.received.length, total, "nothing lost");
  for (let i = 0; i < total; i++) assert.equal(sink.received[i], byteAt(i), `byte ${i}`);
  assert.equal(u.txDropped, 0);
  assert.ok(u.read(PL011_REG.FR, 4) & FR.TXFE, "the FIFO is empty once drained");
});

test("a guest flooding the virtio console waits with its buffers unused; nothing lost once drained", () => {
  const sink = new BlockedSink();
  const con = new VirtioConsole({ output: sink });
  const b = new TestBench(con, { ramSize: 4 << 20 });
  const [, tx] = b.init(2);
  const len = 3000;
  const bufs = Array.from({ length: 8 }, () => b.alloc(len));
  let sent = 0;
  const expected: number[] = [];
  let stalls = 0;
  const inFlight = new Set<number>();
  for (let round = 0; round < 40; round++) {
    for (const a of bufs) {
      if (inFlight.has(a)) continue;
      const bytes = Uint8Array.from({ length: len }, (_, k) => byteAt(sent + k));
      for (const x of bytes) expected.push(x);
      sent += len;
      b.put(a, bytes);
      tx!.add([{ addr: a, len }]);
      inFlight.add(a);
    }
    tx!.kick();
    const used = tx!.takeUsed().length;
    assert.ok(sink.heldBytes <= BOUND + TX_CHUNK, `host holds ${sink.heldBytes} bytes`);
    if (used < bufs.length) stalls++;
    sink.drain();
    // Everything returned is free again (the driver reuses buffers in order here).
    for (;;) {
      const more = tx!.takeUsed();
      if (more.length === 0) break;
    }
    if (sink.heldBytes === 0) inFlight.clear();
  }
  while (sink.heldBytes > 0) sink.drain();
  assert.ok(stalls > 0, "transmit buffers stayed unused while the host was behind");
  assert.deepEqual(sink.received.slice(0, 1000), expected.slice(0, 1000));
  assert.ok(sink.received.length <= expected.length);
});
