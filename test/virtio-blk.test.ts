import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  type BlockBackend,
  MemoryBlockBackend,
  VIRTIO_BLK_F,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VirtioBlk,
} from "../src/devices/virtio/blk.ts";
import { VIRTIO_F, VIRTIO_INT, VIRTIO_MMIO, VIRTIO_STATUS } from "../src/devices/virtio/mmio.ts";
import { openBlockFile } from "../src/vmm/block-file.ts";
import { type DriverQueue, fbit, TestBench, VERSION_1 } from "./support/virtio-driver.ts";

const SECTORS = 64;

function setup(opts: { readOnly?: boolean; serial?: string; backend?: BlockBackend } = {}) {
  const disk = new MemoryBlockBackend(SECTORS * 512);
  for (let i = 0; i < disk.bytes.length; i++) disk.bytes[i] = (i * 7 + (i >> 9)) & 0xff;
  const blk = new VirtioBlk({ backend: opts.backend ?? disk, ...opts });
  const b = new TestBench(blk);
  const [q] = b.init(1);
  return { disk, blk, b, q: q! };
}

/** A request as Linux's virtio_blk frames it: header, data buffers, status byte. */
function request(
  b: TestBench,
  q: DriverQueue,
  type: number,
  sector: number,
  data: { len: number; write: boolean; fill?: Uint8Array }[],
  opts: { indirect?: boolean } = {},
) {
  const hdr = b.alloc(16);
  b.dv.setUint32(b.off(hdr), type, true);
  b.dv.setUint32(b.off(hdr) + 8, sector % 2 ** 32, true);
  b.dv.setUint32(b.off(hdr) + 12, Math.floor(sector / 2 ** 32), true);
  const bufs = data.map((d) => {
    const addr = b.alloc(d.len);
    if (d.fill) b.put(addr, d.fill);
    return { addr, len: d.len, write: d.write };
  });
  const status = b.alloc(1);
  b.put(status, Uint8Array.of(0xff));
  const head = q.add([{ addr: hdr, len: 16 }, ...bufs, { addr: status, len: 1, write: true }], opts);
  q.kick();
  const used = q.takeUsed();
  assert.equal(used.length, 1);
  assert.equal(used[0]![0], head);
  return {
    status: b.get(status, 1)[0],
    len: used[0]![1],
    data: bufs.map((x) => b.get(x.addr, x.len)),
  };
}

test("virtio-blk identifies itself: DeviceID 2, features, capacity and limits in the config space", () => {
  const { b } = setup();
  assert.equal(b.r(VIRTIO_MMIO.DEVICE_ID), 2);
  const f = b.deviceFeatures();
  for (const bit of [VIRTIO_BLK_F.SEG_MAX, VIRTIO_BLK_F.BLK_SIZE, VIRTIO_BLK_F.FLUSH, VIRTIO_F.VERSION_1]) {
    assert.ok(f & fbit(bit), `bit ${bit}`);
  }
  assert.equal(f & fbit(VIRTIO_BLK_F.RO), 0n);
  // capacity (u64, read as two 32-bit halves as Linux does), seg_max, blk_size.
  assert.equal(b.r(VIRTIO_MMIO.CONFIG), SECTORS);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 4), 0);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 12), 254);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 20), 512);
  assert.equal(b.r(VIRTIO_MMIO.CONFIG + 20, 2), 512);
  b.w(VIRTIO_MMIO.QUEUE_SEL, 0);
  assert.equal(b.r(VIRTIO_MMIO.QUEUE_NUM_MAX), 256);
  const big = new VirtioBlk({ backend: { size: 2 ** 41 + 500, read() {}, write() {}, flush() {} } });
  const bb = new TestBench(big);
  assert.equal(bb.r(VIRTIO_MMIO.CONFIG), 0);
  assert.equal(bb.r(VIRTIO_MMIO.CONFIG + 4), 1, "2^41 bytes = 2^32 sectors; a partial sector is not counted");
});

test("OUT then IN: sectors written and read back through scatter-gather buffers", () => {
  const { disk, b, q } = setup();
  const payload = new Uint8Array(3 * 512).map((_, i) => (i * 13) & 0xff);
  const w = request(b, q, VIRTIO_BLK_T.OUT, 5, [
    { len: 1024, write: false, fill: payload.subarray(0, 1024) },
    { len: 512, write: false, fill: payload.subarray(1024) },
  ]);
  assert.equal(w.status, VIRTIO_BLK_S.OK);
  assert.equal(w.len, 1, "a write only writes the status byte");
  assert.deepEqual(disk.bytes.subarray(5 * 512, 8 * 512), payload);
  assert.equal(b.ack(), VIRTIO_INT.USED_BUFFER);
  const r = request(b, q, VIRTIO_BLK_T.IN, 4, [
    { len: 512, write: true },
    { len: 2048, write: true },
  ]);
  assert.equal(r.status, VIRTIO_BLK_S.OK);
  assert.equal(r.len, 2561);
  assert.deepEqual(r.data[0], disk.bytes.subarray(4 * 512, 5 * 512));
  assert.deepEqual(r.data[1]!.subarray(0, 1536), payload);
  assert.equal(b.level, true);
});

test("any framing: header and data in one buffer, data and status in one, indirect tables", () => {
  const { disk, b, q } = setup();
  const buf = b.alloc(16 + 512);
  b.dv.setUint32(b.off(buf), VIRTIO_BLK_T.OUT, true);
  b.dv.setUint32(b.off(buf) + 8, 2, true);
  b.put(buf + 16, new Uint8Array(512).fill(0xab));
  const st = b.alloc(1);
  q.add([
    { addr: buf, len: 528 },
    { addr: st, len: 1, write: true },
  ]);
  q.kick();
  assert.equal(b.get(st, 1)[0], VIRTIO_BLK_S.OK);
  assert.ok(disk.bytes.subarray(1024, 1536).every((x) => x === 0xab));
  const hdr = b.alloc(16);
  b.dv.setUint32(b.off(hdr), VIRTIO_BLK_T.IN, true);
  b.dv.setUint32(b.off(hdr) + 8, 2, true);
  const out = b.alloc(513);
  q.add(
    [
      { addr: hdr, len: 16 },
      { addr: out, len: 513, write: true },
    ],
    { indirect: true },
  );
  q.kick();
  const got = b.get(out, 513);
  assert.ok(got.subarray(0, 512).every((x) => x === 0xab));
  assert.equal(got[512], VIRTIO_BLK_S.OK, "the status is the last writable byte");
  assert.equal(q.takeUsed().at(-1)![1], 513);
});

test("a read-only disk offers VIRTIO_BLK_F_RO and fails writes with IOERR, writing nothing", () => {
  const { disk, b, q } = setup({ readOnly: true });
  assert.ok(b.deviceFeatures() & fbit(VIRTIO_BLK_F.RO));
  const before = disk.bytes.slice();
  const w = request(b, q, VIRTIO_BLK_T.OUT, 0, [{ len: 512, write: false, fill: new Uint8Array(512) }]);
  assert.equal(w.status, VIRTIO_BLK_S.IOERR);
  assert.deepEqual(disk.bytes, before);
  const r = request(b, q, VIRTIO_BLK_T.IN, 0, [{ len: 512, write: true }]);
  assert.equal(r.status, VIRTIO_BLK_S.OK);
  assert.deepEqual(r.data[0], before.subarray(0, 512));
  assert.equal(request(b, q, VIRTIO_BLK_T.FLUSH, 0, []).status, VIRTIO_BLK_S.OK);
});

test("bad ranges and lengths complete with IOERR; unknown requests with UNSUPP", () => {
  const { disk, b, q } = setup();
  const before = disk.bytes.slice();
  const cases: [number, number, { len: number; write: boolean }[], number][] = [
    [VIRTIO_BLK_T.IN, SECTORS, [{ len: 512, write: true }], VIRTIO_BLK_S.IOERR],
    [VIRTIO_BLK_T.IN, SECTORS - 1, [{ len: 1024, write: true }], VIRTIO_BLK_S.IOERR],
    [VIRTIO_BLK_T.IN, 2 ** 53, [{ len: 512, write: true }], VIRTIO_BLK_S.IOERR],
    [VIRTIO_BLK_T.IN, 0, [{ len: 100, write: true }], VIRTIO_BLK_S.IOERR],
    [VIRTIO_BLK_T.OUT, SECTORS, [{ len: 512, write: false }], VIRTIO_BLK_S.IOERR],
    [VIRTIO_BLK_T.OUT, 0, [{ len: 511, write: false }], VIRTIO_BLK_S.IOERR],
    [VIRTIO_BLK_T.IN, SECTORS - 1, [{ len: 512, write: true }], VIRTIO_BLK_S.OK],
    [11, 0, [], VIRTIO_BLK_S.UNSUPP], // DISCARD: not offered
    [0x1234, 0, [], VIRTIO_BLK_S.UNSUPP],
  ];
  for (const [type, sector, data, want] of cases) {
    const r = request(b, q, type, sector, data);
    assert.equal(r.status, want, `type ${type} sector ${sector}`);
  }
  assert.deepEqual(disk.bytes, before);
});

test("FLUSH reaches the backend; GET_ID answers the serial (20 bytes, zero-padded)", () => {
  const { disk, b, q } = setup({ serial: "armbox-disk0" });
  assert.equal(request(b, q, VIRTIO_BLK_T.FLUSH, 0, []).status, VIRTIO_BLK_S.OK);
  assert.equal(disk.flushes, 1);
  const id = request(b, q, VIRTIO_BLK_T.GET_ID, 0, [{ len: 20, write: true }]);
  assert.equal(id.status, VIRTIO_BLK_S.OK);
  assert.equal(id.len, 21);
  assert.equal(new TextDecoder().decode(id.data[0]).replace(/\0+$/, ""), "armbox-disk0");
  const short = request(b, q, VIRTIO_BLK_T.GET_ID, 0, [{ len: 6, write: true }]);
  assert.equal(new TextDecoder().decode(short.data[0]), "armbox");
  assert.equal(short.len, 7);
  const none = setup();
  assert.deepEqual(
    request(none.b, none.q, VIRTIO_BLK_T.GET_ID, 0, [{ len: 20, write: true }]).data[0],
    new Uint8Array(20),
  );
  assert.throws(() => new VirtioBlk({ backend: disk, serial: "x".repeat(21) }), /20 bytes/);
});

test("a backend that fails turns into IOERR for that request only", () => {
  let fail = true;
  const inner = new MemoryBlockBackend(SECTORS * 512);
  const flaky: BlockBackend = {
    size: inner.size,
    read: (o, buf) => {
      if (fail) throw new Error("EIO");
      inner.read(o, buf);
    },
    write: (o, buf) => inner.write(o, buf),
    flush: () => {
      throw new Error("EIO");
    },
  };
  const { b, q } = setup({ backend: flaky });
  assert.equal(request(b, q, VIRTIO_BLK_T.IN, 0, [{ len: 512, write: true }]).status, VIRTIO_BLK_S.IOERR);
  assert.equal(request(b, q, VIRTIO_BLK_T.FLUSH, 0, []).status, VIRTIO_BLK_S.IOERR);
  fail = false;
  assert.equal(request(b, q, VIRTIO_BLK_T.IN, 0, [{ len: 512, write: true }]).status, VIRTIO_BLK_S.OK);
});

test("a request without header or status byte is a driver error (DEVICE_NEEDS_RESET)", () => {
  for (const bufs of [
    (b: TestBench) => [
      { addr: b.alloc(8), len: 8 },
      { addr: b.alloc(1), len: 1, write: true },
    ],
    (b: TestBench) => [{ addr: b.alloc(16), len: 16 }],
  ]) {
    const { b, q } = setup();
    q.add(bufs(b));
    q.kick();
    assert.ok(b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET);
    assert.ok(b.r(VIRTIO_MMIO.INTERRUPT_STATUS) & VIRTIO_INT.CONFIG_CHANGE);
  }
});

test("several requests in one notify complete in order with one interrupt", () => {
  const { b, q } = setup();
  const heads: number[] = [];
  for (let i = 0; i < 4; i++) {
    const hdr = b.alloc(16);
    b.dv.setUint32(b.off(hdr), VIRTIO_BLK_T.IN, true);
    b.dv.setUint32(b.off(hdr) + 8, i, true);
    heads.push(
      q.add([
        { addr: hdr, len: 16 },
        { addr: b.alloc(513), len: 513, write: true },
      ]),
    );
  }
  q.kick();
  assert.deepEqual(
    q.takeUsed().map(([id]) => id),
    heads,
  );
  assert.equal(b.edges, 1);
});

test("save/restore mid-operation, and a state for another disk is refused", () => {
  const { disk, blk, b, q } = setup();
  request(b, q, VIRTIO_BLK_T.OUT, 1, [{ len: 512, write: false, fill: new Uint8Array(512).fill(7) }]);
  const saved = JSON.parse(JSON.stringify(b.mmio.saveState()));
  // A machine built again with the same disk, RAM copied, state loaded: requests go on.
  const blk2 = new VirtioBlk({ backend: disk });
  const b2 = new TestBench(blk2);
  b2.ram.set(b.ram);
  b2.next = b.next;
  b2.mmio.loadState(saved, 1);
  assert.equal(b2.r(VIRTIO_MMIO.STATUS), 0x0f);
  assert.equal(b2.level, true, "the completion's interrupt is still pending");
  Object.assign(q, { bench: b2 });
  const r = request(b2, q, VIRTIO_BLK_T.IN, 1, [{ len: 512, write: true }]);
  assert.equal(r.status, VIRTIO_BLK_S.OK);
  assert.ok(r.data[0]!.every((x) => x === 7));
  assert.deepEqual(blk.saveState(), { capacity: SECTORS, readOnly: 0 });
  // Another size, another read-only setting: refused, named.
  const other = new TestBench(new VirtioBlk({ backend: new MemoryBlockBackend(512) }));
  assert.throws(() => other.mmio.loadState(saved, 1), /64 sectors; this one has 1/);
  const ro = new TestBench(new VirtioBlk({ backend: disk, readOnly: true }));
  assert.throws(() => ro.mmio.loadState(saved, 1), /writable/);
  assert.throws(() => blk.loadState({ capacity: -1, readOnly: 0 }, 1), /capacity/);
  assert.throws(() => blk.loadState({ capacity: SECTORS, readOnly: 0 }, 2), /version 2/);
});

test("a legacy driver (no VERSION_1) cannot drive the disk", () => {
  const blk = new VirtioBlk({ backend: new MemoryBlockBackend(512) });
  const b = new TestBench(blk);
  assert.equal(b.negotiate(fbit(VIRTIO_BLK_F.FLUSH)), false);
  assert.equal(b.negotiate(VERSION_1 | fbit(VIRTIO_BLK_F.FLUSH)), true);
});

test("the Node file backend: reads, writes, flushes an image; read-only opens refuse writes", () => {
  const dir = mkdtempSync(join(tmpdir(), "armbox-blk-"));
  try {
    const path = join(dir, "disk.img");
    writeFileSync(path, new Uint8Array(4096).fill(1));
    const f = openBlockFile(path);
    assert.equal(f.size, 4096);
    const buf = new Uint8Array(512);
    f.read(512, buf);
    assert.ok(buf.every((x) => x === 1));
    f.write(1024, new Uint8Array(512).fill(9));
    f.flush();
    f.close();
    assert.equal(readFileSync(path)[1024], 9);
    const ro = openBlockFile(path, { readOnly: true });
    assert.throws(() => ro.write(0, new Uint8Array(1)), /read-only/);
    ro.close();
    // Through the device: a file image as the disk.
    const img = openBlockFile(path);
    const blk = new VirtioBlk({ backend: img });
    const b = new TestBench(blk);
    const [q] = b.init(1);
    const r = request(b, q!, VIRTIO_BLK_T.IN, 2, [{ len: 512, write: true }]);
    assert.ok(r.data[0]!.every((x) => x === 9));
    request(b, q!, VIRTIO_BLK_T.OUT, 7, [{ len: 512, write: false, fill: new Uint8Array(512).fill(5) }]);
    img.close();
    assert.equal(readFileSync(path)[7 * 512], 5);
    assert.throws(() => openBlockFile(join(dir, "missing.img")), /missing.img/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
