/**
 * Console output backpressure (issue 9 item 4): a guest that floods the PL011 or the virtio
 * console while the host does not read must not grow host memory without bound; it waits
 * (TXFF, transmit buffers unused) and nothing is lost or reordered once the host drains.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import type { OutputSink } from "../src/devices/output-sink.ts";
import { FR, PL011_REG, Pl011 } from "../src/devices/pl011.ts";
import { TX_CHUNK, VirtioConsole } from "../src/devices/virtio/console.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { receiveIncoming } from "../src/vmm/migration/destination.ts";
import { OutgoingMigration } from "../src/vmm/migration/source.ts";
import { MachineRunner } from "../src/vmm/runner.ts";
import { until } from "./support/events.ts";
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

test("console output held at a live migration's capture is sent by the destination only, never twice", async () => {
  const kernel = new Uint8Array(
    readFileSync(new URL("../guests/migration/bin/counter.elf", import.meta.url)),
  );
  // The source's host output: open, then shut (the PL011 holds what the guest writes).
  let open = true;
  const srcOut: number[] = [];
  const drains: (() => void)[] = [];
  const sink: OutputSink = {
    write(b) {
      srcOut.push(...b);
      return open;
    },
    onDrain(cb) {
      if (open) queueMicrotask(cb);
      else drains.push(cb);
    },
  };
  const cfg = { smp: 2, memory: 32 << 20, deterministic: false };
  const src = new VirtMachine({ ...cfg, kernel, serialOutput: sink });
  const runner = new MachineRunner(src, { output: () => {}, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  const dstOut: number[] = [];
  let port!: (p: number) => void;
  const listening = new Promise<number>((r) => {
    port = r;
  });
  const incoming = receiveIncoming(
    "tcp:127.0.0.1:0",
    { ...cfg, serialOutput: (b: Uint8Array) => dstOut.push(...b) },
    { onListening: (a) => port(a.port) },
  );
  const text = (a: number[]) => new TextDecoder().decode(Uint8Array.from(a));
  try {
    await until(() => /tick 2 /.test(text(srcOut)), "the source's third tick");
    open = false;
    const pl011 = src.components.find((c) => c.stateName.startsWith("pl011"))!;
    await until(() => (pl011.saveState() as { tx: number[] }).tx.length > 0, "bytes held in the PL011");
    const mig = new OutgoingMigration(src, runner, {});
    mig.start(`tcp:127.0.0.1:${await listening}`);
    assert.equal(await mig.done(), "completed", mig.info()["error-desc"] ?? "");
    const dst = await incoming;
    const sentBefore = srcOut.length;
    // The source's host output drains now: its PL011 must not send what the destination holds.
    open = true;
    for (const cb of drains.splice(0)) cb();
    await new Promise((r) => setImmediate(r));
    assert.equal(srcOut.length, sentBefore, "the source sent held bytes after its state was captured");
    // The destination sends them, then goes on: the ticks read on with no gap and no repeat.
    const dr = new MachineRunner(dst.machine, { output: () => {}, diag: () => {}, controlOpen: () => true });
    const dRunning = dr.run();
    try {
      const last = Number([...text(srcOut).matchAll(/tick (\d+) /g)].at(-1)![1]);
      await until(() => text(dstOut).includes(`tick ${last + 2} `), "the destination's ticks");
      const all = text([...srcOut, ...dstOut]);
      const ticks = [...all.matchAll(/tick (\d+) /g)].map((m) => Number(m[1]));
      assert.deepEqual(
        ticks,
        ticks.map((_, i) => ticks[0]! + i),
        "ticks with a gap or a repeat",
      );
    } finally {
      dr.finish({ kind: "quit", code: 0 });
      await dRunning;
    }
  } finally {
    runner.finish({ kind: "quit", code: 0 });
    await running;
    await incoming.catch(() => {});
  }
});
