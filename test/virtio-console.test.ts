import assert from "node:assert/strict";
import { test } from "node:test";
import { CONSOLE_RX, CONSOLE_TX, MAX_BACKLOG, VirtioConsole } from "../src/devices/virtio/console.ts";
import { VIRTIO_INT, VIRTIO_MMIO } from "../src/devices/virtio/mmio.ts";
import { type DriverQueue, TestBench } from "./support/virtio-driver.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function setup() {
  const out: Uint8Array[] = [];
  let spaces = 0;
  const con = new VirtioConsole({
    output: (b) => out.push(b.slice()),
    onRxSpace: () => {
      spaces++;
    },
  });
  const b = new TestBench(con);
  const [rx, tx] = b.init(2);
  return { con, b, rx: rx!, tx: tx!, out, spaces: () => spaces };
}

/** Makes `n` receive buffers of `len` bytes available, as virtio_console's fill_queue does. */
function fillRx(b: TestBench, rx: DriverQueue, n: number, len: number): number[] {
  const addrs: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = b.alloc(len);
    addrs.push(a);
    rx.add([{ addr: a, len, write: true }]);
  }
  rx.kick();
  return addrs;
}

test("virtio-console: DeviceID 3, receiveq and transmitq, one port in the config space", () => {
  const { b } = setup();
  assert.equal(b.r(VIRTIO_MMIO.DEVICE_ID), 3);
  assert.equal(b.deviceFeatures() & 0xff_ffffn, 0n, "no SIZE, MULTIPORT or EMERG_WRITE");
  for (const i of [CONSOLE_RX, CONSOLE_TX]) {
    b.w(VIRTIO_MMIO.QUEUE_SEL, i);
    assert.equal(b.r(VIRTIO_MMIO.QUEUE_NUM_MAX), 128);
  }
  b.w(VIRTIO_MMIO.QUEUE_SEL, 2);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_NUM_MAX), 0);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 4), 1, "max_nr_ports");
});

test("transmitted buffers go to the output sink at the notify, and come back used", () => {
  const { b, tx, out } = setup();
  const a = b.alloc(6);
  const c = b.alloc(7);
  b.put(a, enc("hello "));
  b.put(c, enc("world\r\n"));
  const h = tx.add([
    { addr: a, len: 6 },
    { addr: c, len: 7 },
  ]);
  tx.kick();
  assert.equal(dec(Buffer.concat(out)), "hello world\r\n");
  assert.deepEqual(tx.takeUsed(), [[h, 0]]);
  assert.equal(b.ack(), VIRTIO_INT.USED_BUFFER);
});

test("input waits for receive buffers, fills them in order, and nothing is dropped", () => {
  const { con, b, rx, spaces } = setup();
  con.input(enc("early"));
  assert.equal(con.pending(), 5);
  assert.equal(b.level, false);
  const addrs = fillRx(b, rx, 2, 4);
  // The notify that made buffers available delivers what was waiting.
  assert.deepEqual(rx.takeUsed(), [
    [0, 4],
    [1, 1],
  ]);
  assert.equal(dec(b.get(addrs[0]!, 4)) + dec(b.get(addrs[1]!, 1)), "early");
  assert.equal(con.pending(), 0);
  assert.equal(spaces(), 1);
  assert.equal(b.ack(), VIRTIO_INT.USED_BUFFER);
  // Input with no buffer left waits; the next buffers take it.
  con.input(enc("abcdefgh"));
  assert.equal(con.pending(), 8);
  assert.equal(b.level, false);
  const more = fillRx(b, rx, 3, 3);
  assert.deepEqual(
    rx.takeUsed().map(([, len]) => len),
    [3, 3, 2],
  );
  assert.equal(more.map((a, i) => dec(b.get(a, i < 2 ? 3 : 2))).join(""), "abcdefgh");
  assert.equal(b.level, true);
  // Input arriving while buffers are available is delivered at once.
  b.ack();
  const [spare] = fillRx(b, rx, 1, 16);
  con.input(enc("x"));
  assert.deepEqual(rx.takeUsed(), [[5, 1]]);
  assert.equal(dec(b.get(spare!, 1)), "x");
  assert.equal(b.level, true);
});

test("input for a guest that never reads is bounded", () => {
  const con = new VirtioConsole({ output: () => {} });
  con.input(new Uint8Array(MAX_BACKLOG - 1));
  con.input(enc("abc"));
  assert.equal(con.pending(), MAX_BACKLOG);
});

test("no input is delivered before DRIVER_OK or after the device needs a reset", () => {
  const con = new VirtioConsole({ output: () => {} });
  const b = new TestBench(con);
  assert.ok(b.negotiate());
  const rx = b.setupQueue(0);
  b.setupQueue(1);
  const a = b.alloc(8);
  rx.add([{ addr: a, len: 8, write: true }]);
  con.input(enc("hi"));
  assert.deepEqual(rx.takeUsed(), []);
  b.driverOk();
  assert.deepEqual(rx.takeUsed(), [[0, 2]], "DRIVER_OK delivers it");
  // A broken receive ring: NEEDS_RESET, and input waits rather than being lost.
  rx.add([{ addr: 0x10, len: 8, write: true }]);
  con.input(enc("lost?"));
  assert.ok(b.r(VIRTIO_MMIO.STATUS) & 0x40);
  assert.equal(con.pending(), 5);
});

test("save/restore mid-operation keeps undelivered input and the rings' positions", () => {
  const { con, b, rx, tx, out } = setup();
  fillRx(b, rx, 1, 2);
  con.input(enc("123456"));
  rx.takeUsed();
  assert.equal(con.pending(), 4);
  const saved = JSON.parse(JSON.stringify(b.mmio.saveState()));
  assert.deepEqual(saved.device, { backlog: [...enc("3456")], txHeld: false, txOffset: 0 });
  const out2: Uint8Array[] = [];
  const con2 = new VirtioConsole({ output: (x) => out2.push(x.slice()) });
  const b2 = new TestBench(con2);
  b2.ram.set(b.ram);
  b2.next = b.next;
  b2.mmio.loadState(saved, 1);
  assert.equal(con2.pending(), 4);
  Object.assign(rx, { bench: b2 });
  Object.assign(tx, { bench: b2 });
  const [a] = fillRx(b2, rx, 1, 8);
  assert.equal(dec(b2.get(a!, 4)), "3456");
  assert.deepEqual(rx.takeUsed(), [[1, 4]]);
  const t = b2.alloc(2);
  b2.put(t, enc("ok"));
  tx.add([{ addr: t, len: 2 }]);
  tx.kick();
  assert.equal(dec(Buffer.concat(out2)), "ok");
  assert.equal(out.length, 0);
  // Corrupt device state is refused by the transport's load, unchanged.
  const before = JSON.stringify(b2.mmio.saveState());
  for (const bad of [
    { backlog: [256] },
    { backlog: "abc" },
    {},
    { backlog: new Array((1 << 20) + 1).fill(0) },
  ]) {
    assert.throws(() => b2.mmio.loadState({ ...saved, device: bad }, 1), /backlog|pending input/);
    assert.equal(JSON.stringify(b2.mmio.saveState()), before);
  }
  assert.throws(
    () => b2.mmio.loadState({ ...saved, deviceVersion: con2.stateVersion + 1 }, 1),
    /deviceVersion/,
  );
});
