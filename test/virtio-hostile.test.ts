/**
 * A hostile guest against the virtio devices (issue 9, item 4): rings with garbage
 * descriptors, loops, addresses outside RAM, oversized requests, bad queue registers and a
 * device reset while a request is in flight, driven through the MMIO registers with rings
 * built by hand. Whatever the guest writes, the VMM does not throw, the device either goes on
 * or sets DEVICE_NEEDS_RESET (or completes the request with an error status), it writes
 * nothing outside the guest's buffers and used rings, and it holds no host buffer of the
 * guest's choosing size. A fresh initialisation after the reset works.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type BlockBackend,
  MemoryBlockBackend,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VirtioBlk,
} from "../src/devices/virtio/blk.ts";
import { CONSOLE_TX, VirtioConsole } from "../src/devices/virtio/console.ts";
import { VIRTIO_F, VIRTIO_INT, VIRTIO_MMIO, VIRTIO_STATUS } from "../src/devices/virtio/mmio.ts";
import { VIRTQ_DESC_F } from "../src/devices/virtio/queue.ts";
import { RNG_MAX_REQUEST, VirtioRng } from "../src/devices/virtio/rng.ts";
import { type DriverQueue, fbit, RAM_BASE, TestBench, VERSION_1 } from "./support/virtio-driver.ts";

const RAM_SIZE = 1 << 20;
const END = RAM_BASE + RAM_SIZE;
const SECTORS = 64;
const { NEXT, WRITE, INDIRECT } = VIRTQ_DESC_F;

type Kind = "blk" | "rng" | "console";
const KINDS: readonly Kind[] = ["blk", "rng", "console"];

interface Rig {
  kind: Kind;
  b: TestBench;
  /** The queue the device takes requests from (console: the transmitq). */
  q: DriverQueue;
  qi: number;
  queues: number;
  disk: MemoryBlockBackend;
  out: Uint8Array[];
}

/** A device of `kind` behind its own transport, initialised with every queue. */
function rig(
  kind: Kind,
  opts: { eventIdx?: boolean; indirect?: boolean; backend?: BlockBackend; ramSize?: number } = {},
): Rig {
  const disk = new MemoryBlockBackend(SECTORS * 512);
  for (let i = 0; i < disk.bytes.length; i++) disk.bytes[i] = (i * 13 + (i >> 9)) & 0xff;
  const out: Uint8Array[] = [];
  const device =
    kind === "blk"
      ? new VirtioBlk({ backend: opts.backend ?? disk, queueSize: 16 })
      : kind === "rng"
        ? new VirtioRng({ fill: (buf) => buf.fill(0xa5) }, { queueSize: 16 })
        : new VirtioConsole({ output: (x) => out.push(x.slice()), queueSize: 16 });
  const b = new TestBench(device, { ramSize: RAM_SIZE, ...opts });
  const queues = kind === "console" ? 2 : 1;
  const qi = kind === "console" ? CONSOLE_TX : 0;
  const qs = b.init(queues);
  return { kind, b, q: qs[qi]!, qi, queues, disk, out };
}

/** Writes descriptor `i` of the table at `table` as raw fields (addr as two 32-bit halves). */
function desc(
  b: TestBench,
  table: number,
  i: number,
  d: { lo: number; hi?: number; len: number; flags?: number; next?: number },
): void {
  const o = b.off(table + 16 * i);
  b.dv.setUint32(o, d.lo >>> 0, true);
  b.dv.setUint32(o + 4, (d.hi ?? 0) >>> 0, true);
  b.dv.setUint32(o + 8, d.len >>> 0, true);
  b.dv.setUint16(o + 12, d.flags ?? 0, true);
  b.dv.setUint16(o + 14, d.next ?? 0, true);
}

const at = (pa: number) => ({ lo: pa % 2 ** 32, hi: Math.floor(pa / 2 ** 32) });

/**
 * A well-formed request for the rig's device on `q`, made available and notified; checks
 * that it completes as it should.
 */
function goodRequest(r: Rig, q: DriverQueue): void {
  const { b } = r;
  const before = q.usedIdx();
  if (r.kind === "blk") {
    const hdr = b.alloc(16);
    b.dv.setUint32(b.off(hdr), VIRTIO_BLK_T.IN, true);
    b.dv.setUint32(b.off(hdr) + 8, 3, true);
    const data = b.alloc(512);
    const status = b.alloc(1);
    b.put(status, Uint8Array.of(0xff));
    const head = q.add([
      { addr: hdr, len: 16 },
      { addr: data, len: 512, write: true },
      { addr: status, len: 1, write: true },
    ]);
    q.kick();
    assert.deepEqual(q.takeUsed(), [[head, 513]]);
    assert.equal(b.get(status, 1)[0], VIRTIO_BLK_S.OK);
    assert.deepEqual(b.get(data, 512), r.disk.bytes.slice(3 * 512, 4 * 512));
  } else if (r.kind === "rng") {
    const buf = b.alloc(32);
    const head = q.add([{ addr: buf, len: 32, write: true }]);
    q.kick();
    assert.deepEqual(q.takeUsed(), [[head, 32]]);
    assert.deepEqual(b.get(buf, 32), new Uint8Array(32).fill(0xa5));
  } else {
    const buf = b.alloc(5);
    b.put(buf, new TextEncoder().encode("hello"));
    const n = r.out.length;
    const head = q.add([{ addr: buf, len: 5 }]);
    q.kick();
    assert.deepEqual(q.takeUsed(), [[head, 0]]);
    assert.equal(new TextDecoder().decode(r.out[n]), "hello");
  }
  assert.equal((before + 1) & 0xffff, q.usedIdx());
}

/** Status is DEVICE_NEEDS_RESET with a config-change interrupt, the reason matching `why`. */
/**
 * Status is DEVICE_NEEDS_RESET, the reason matching `why`, with a config-change interrupt if
 * the driver was live when it happened (§2.1.2 asks for one only after DRIVER_OK).
 */
function assertNeedsReset(b: TestBench, why: RegExp, label: string, interrupt = true): void {
  const st = b.r(VIRTIO_MMIO.STATUS);
  assert.equal(
    st & VIRTIO_STATUS.DEVICE_NEEDS_RESET,
    VIRTIO_STATUS.DEVICE_NEEDS_RESET,
    `${label}: needs reset`,
  );
  assert.match(b.mmio.lastError ?? "", why, label);
  if (interrupt)
    assert.ok(b.r(VIRTIO_MMIO.INTERRUPT_STATUS) & VIRTIO_INT.CONFIG_CHANGE, `${label}: config interrupt`);
}

/** Resets the device, initialises it again on fresh rings, and runs a good request. */
function reinitWorks(r: Rig): void {
  r.b.w(VIRTIO_MMIO.STATUS, 0);
  assert.equal(r.b.r(VIRTIO_MMIO.STATUS), 0);
  assert.equal(r.b.mmio.lastError, null);
  const qs = r.b.init(r.queues);
  goodRequest(r, qs[r.qi]!);
}

interface RingCase {
  name: string;
  why: RegExp;
  opts?: { indirect?: boolean };
  /** Corrupts the ring of `q` (a chain made available, or a broken available ring). */
  corrupt(b: TestBench, q: DriverQueue): void;
}

/** A buffer in RAM for chains whose contents do not matter. */
const scratch = (b: TestBench, len = 64) => b.alloc(len);

const RING_CASES: RingCase[] = [
  {
    name: "next index past the queue size",
    why: /next descriptor 16 is past its table/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(scratch(b)), len: 16, flags: NEXT, next: 16 });
      q.publish(0);
    },
  },
  {
    name: "next index 0xffff",
    why: /next descriptor 65535/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(scratch(b)), len: 16, flags: NEXT, next: 0xffff });
      q.publish(0);
    },
  },
  {
    name: "a descriptor that chains to itself",
    why: /loops/,
    corrupt(b, q) {
      desc(b, q.desc, 5, { ...at(scratch(b)), len: 16, flags: NEXT, next: 5 });
      q.publish(5);
    },
  },
  {
    name: "a loop through two descriptors (a chain longer than the queue)",
    why: /loops/,
    corrupt(b, q) {
      const s = scratch(b);
      desc(b, q.desc, 0, { ...at(s), len: 16, flags: NEXT, next: 1 });
      desc(b, q.desc, 1, { ...at(s), len: 16, flags: NEXT, next: 0 });
      q.publish(0);
    },
  },
  {
    name: "a chain through every descriptor and back to its head",
    why: /loops/,
    corrupt(b, q) {
      const s = scratch(b);
      for (let i = 0; i < q.size; i++) desc(b, q.desc, i, { ...at(s), len: 1, flags: NEXT, next: i + 1 });
      desc(b, q.desc, q.size - 1, { ...at(s), len: 1, flags: NEXT, next: 0 });
      q.publish(0);
    },
  },
  {
    name: "a loop inside an indirect table",
    why: /loops/,
    corrupt(b, q) {
      const s = scratch(b);
      const t = b.alloc(32, 16);
      desc(b, t, 0, { ...at(s), len: 8, flags: NEXT, next: 1 });
      desc(b, t, 1, { ...at(s), len: 8, flags: NEXT, next: 0 });
      desc(b, q.desc, 0, { ...at(t), len: 32, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect table that points back at the descriptor table",
    why: /inside an indirect table/,
    corrupt(b, q) {
      // The "indirect table" is the queue's own table, whose entry 0 is the indirect descriptor.
      desc(b, q.desc, 0, { ...at(q.desc), len: 16 * q.size, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect descriptor inside an indirect table",
    why: /inside an indirect table/,
    corrupt(b, q) {
      const t = b.alloc(16, 16);
      const t2 = b.alloc(16, 16);
      desc(b, t2, 0, { ...at(scratch(b)), len: 8 });
      desc(b, t, 0, { ...at(t2), len: 16, flags: INDIRECT });
      desc(b, q.desc, 0, { ...at(t), len: 16, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect descriptor with NEXT set",
    why: /indirect descriptor with NEXT/,
    corrupt(b, q) {
      const t = b.alloc(16, 16);
      desc(b, t, 0, { ...at(scratch(b)), len: 8 });
      desc(b, q.desc, 0, { ...at(t), len: 16, flags: INDIRECT | NEXT, next: 1 });
      desc(b, q.desc, 1, { ...at(scratch(b)), len: 8 });
      q.publish(0);
    },
  },
  {
    name: "an indirect table of length 0",
    why: /indirect table length 0/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(b.alloc(16, 16)), len: 0, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect table length that is not a multiple of 16",
    why: /indirect table length 40/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(b.alloc(48, 16)), len: 40, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect table of more than 32768 descriptors",
    why: /indirect table length 524304/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(RAM_BASE), len: 16 * 32769, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect table of 2^32 - 16 bytes",
    why: /indirect table length 4294967280/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(RAM_BASE), len: 0xffff_fff0, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect table running past the end of RAM",
    why: /indirect table at 0x400ffff0\+32 is outside guest RAM/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(END - 16), len: 32, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect table whose address + length wraps past 2^64",
    why: /indirect table at 0xfffffffffffff000\+8192 is outside guest RAM/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { lo: 0xffff_f000, hi: 0xffff_ffff, len: 8192, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "a misaligned indirect table",
    why: /misaligned indirect table/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(b.alloc(48, 16) + 8), len: 32, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "an indirect descriptor without VIRTIO_F_INDIRECT_DESC",
    why: /without VIRTIO_F_INDIRECT_DESC/,
    opts: { indirect: false },
    corrupt(b, q) {
      const t = b.alloc(16, 16);
      desc(b, t, 0, { ...at(scratch(b)), len: 8 });
      desc(b, q.desc, 0, { ...at(t), len: 16, flags: INDIRECT });
      q.publish(0);
    },
  },
  {
    name: "a buffer whose address + length wraps past 2^64",
    why: /buffer at 0xfffffffffffff000\+8192 is outside guest RAM/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { lo: 0xffff_f000, hi: 0xffff_ffff, len: 8192, flags: WRITE });
      q.publish(0);
    },
  },
  {
    name: "a buffer running past the end of RAM",
    why: /buffer at 0x400ffff8\+16 is outside guest RAM/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(END - 8), len: 16, flags: WRITE });
      q.publish(0);
    },
  },
  {
    name: "a buffer of 2^32 - 1 bytes",
    why: /buffer at 0x40000000\+4294967295 is outside guest RAM/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(RAM_BASE), len: 0xffff_ffff, flags: WRITE });
      q.publish(0);
    },
  },
  {
    name: "a buffer below RAM",
    why: /buffer at 0x1000\+8 is outside guest RAM/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { lo: 0x1000, len: 8 });
      q.publish(0);
    },
  },
  {
    name: "a buffer in RAM's image 4 GiB higher (address bits above 32)",
    why: /buffer at 0x140000000\+8 is outside guest RAM/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { lo: RAM_BASE, hi: 1, len: 8, flags: WRITE });
      q.publish(0);
    },
  },
  {
    name: "a device-readable buffer after a device-writable one",
    why: /readable buffer after a device-writable/,
    corrupt(b, q) {
      desc(b, q.desc, 0, { ...at(scratch(b)), len: 16, flags: WRITE | NEXT, next: 1 });
      desc(b, q.desc, 1, { ...at(scratch(b)), len: 16 });
      q.publish(0);
    },
  },
  {
    name: "avail.idx more than the queue size ahead",
    why: /avail.idx 17 is 17 entries ahead of 0/,
    corrupt(b, q) {
      b.dv.setUint16(b.off(q.avail + 2), 17, true);
    },
  },
  {
    name: "avail.idx one behind the device (65535 entries ahead)",
    why: /avail.idx 65535 is 65535 entries ahead/,
    corrupt(b, q) {
      b.dv.setUint16(b.off(q.avail + 2), 0xffff, true);
    },
  },
  {
    name: "a head index equal to the queue size",
    why: /head descriptor 16 is past the queue size 16/,
    corrupt(_b, q) {
      q.publish(16);
    },
  },
  {
    name: "a head index of 0xffff",
    why: /head descriptor 65535/,
    corrupt(_b, q) {
      q.publish(0xffff);
    },
  },
];

for (const c of RING_CASES) {
  test(`hostile ring: ${c.name} sets DEVICE_NEEDS_RESET in blk, rng and console, writing nothing`, () => {
    for (const kind of KINDS) {
      const r = rig(kind, c.opts);
      const label = `${kind}: ${c.name}`;
      c.corrupt(r.b, r.q);
      const disk = r.disk.bytes.slice();
      const ram = r.b.ram.slice();
      r.q.kick();
      assertNeedsReset(r.b, c.why, label);
      assert.equal(r.q.usedIdx(), 0, `${label}: nothing used`);
      // Nothing in RAM changed but used.avail_event (the device's own field, with EVENT_IDX).
      const availEvent = r.b.off(r.q.used + 4 + 8 * r.q.size);
      ram.set(r.b.ram.subarray(availEvent, availEvent + 2), availEvent);
      assert.ok(Buffer.from(ram).equals(r.b.ram), `${label}: RAM unchanged`);
      assert.deepEqual(r.disk.bytes, disk, `${label}: disk unchanged`);
      assert.equal(r.out.length, 0, `${label}: no output`);
      // Another notify does nothing more; a driver cannot clear NEEDS_RESET but by a reset.
      r.q.kick();
      r.b.w(VIRTIO_MMIO.STATUS, r.b.r(VIRTIO_MMIO.STATUS) & ~VIRTIO_STATUS.DEVICE_NEEDS_RESET);
      assert.ok(r.b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET);
      reinitWorks(r);
    }
  });
}

// --- the queue registers -------------------------------------------------------------------

/**
 * Negotiates, sets up every queue but the rig's work queue normally, and the work queue with
 * the given registers (an address left undefined is not written: 0). A good chain is made
 * available in RAM rings built at the usual places, so that a queue whose only fault is one
 * register still has work to do at DRIVER_OK.
 */
function badQueue(
  kind: Kind,
  regs: { num?: number; desc?: number; avail?: number; used?: number },
): { r: Rig; ram: Uint8Array } {
  const r = rig(kind);
  const { b } = r;
  b.w(VIRTIO_MMIO.STATUS, 0);
  assert.ok(b.negotiate());
  for (let i = 0; i < r.queues; i++) if (i !== r.qi) b.setupQueue(i);
  const size = 16;
  const descT = b.alloc(16 * size, 16);
  const avail = b.alloc(6 + 2 * size, 2);
  const buf = b.alloc(64);
  b.dv.setUint16(b.off(avail + 2), 1, true);
  desc(b, descT, 0, { ...at(buf), len: 16, flags: WRITE });
  if (kind === "blk") {
    // A header then a status byte.
    desc(b, descT, 0, { ...at(buf), len: 16, flags: NEXT, next: 1 });
    desc(b, descT, 1, { ...at(buf + 32), len: 1, flags: WRITE });
  } else if (kind === "console") desc(b, descT, 0, { ...at(buf), len: 16 });
  b.w(VIRTIO_MMIO.QUEUE_SEL, r.qi);
  if (regs.num !== undefined) b.w(VIRTIO_MMIO.QUEUE_NUM, regs.num);
  const lohi = (lo: number, pa: number | undefined) => {
    if (pa === undefined) return;
    b.w(lo, pa % 2 ** 32);
    b.w(lo + 4, Math.floor(pa / 2 ** 32));
  };
  lohi(VIRTIO_MMIO.QUEUE_DESC_LOW, regs.desc === undefined ? descT : regs.desc);
  lohi(VIRTIO_MMIO.QUEUE_DRIVER_LOW, regs.avail === undefined ? avail : regs.avail);
  lohi(VIRTIO_MMIO.QUEUE_DEVICE_LOW, regs.used);
  const ram = b.ram.slice();
  b.w(VIRTIO_MMIO.QUEUE_READY, 1);
  b.driverOk();
  b.w(VIRTIO_MMIO.QUEUE_NOTIFY, r.qi);
  return { r, ram };
}

test("hostile queue registers: bad QueueNum, rings outside RAM or misaligned set DEVICE_NEEDS_RESET", () => {
  const used = (b: TestBench) => b.alloc(6 + 8 * 16, 4);
  const cases: [string, (b: TestBench) => Parameters<typeof badQueue>[1], RegExp][] = [
    ["QueueNum 0", () => ({ num: 0 }), /QueueNum 0 is not a power of 2/],
    ["QueueNum 3", () => ({ num: 3 }), /QueueNum 3 is not a power of 2/],
    ["QueueNum above QueueNumMax", () => ({ num: 32 }), /QueueNum 32 is not a power of 2 up to 16/],
    ["QueueNum 2^32 - 1", () => ({ num: 0xffff_ffff }), /QueueNum 4294967295/],
    ["QUEUE_READY with no ring address written", () => ({ desc: 0, avail: 0 }), /outside guest RAM/],
    ["the descriptor table outside RAM", (b) => ({ desc: 0x1000, used: used(b) }), /descriptor at 0x1000/],
    [
      "the available ring outside RAM",
      (b) => ({ avail: 2 ** 40, used: used(b) }),
      /avail.idx at 0x10000000002/,
    ],
    ["the used ring outside RAM", () => ({ used: 0x3000 }), /used.* outside guest RAM/],
    ["the used ring across the end of RAM", () => ({ used: END - 8 }), /used.* outside guest RAM/],
    ["the used ring at 2^64 - 4096", () => ({ used: 2 ** 64 - 4096 }), /outside guest RAM/],
    [
      "a misaligned descriptor table",
      (b) => ({ desc: b.alloc(16 * 17, 16) + 8, used: used(b) }),
      /misaligned/,
    ],
    ["a misaligned available ring", (b) => ({ avail: b.alloc(64, 2) + 1, used: used(b) }), /misaligned/],
    ["a misaligned used ring", (b) => ({ used: used(b) + 2 }), /misaligned/],
  ];
  for (const kind of KINDS) {
    for (const [name, regs, why] of cases) {
      // The register values may need RAM of the bench: build once to allocate, then for real.
      const probe = rig(kind).b;
      probe.next = 0x8000;
      const { r } = badQueue(kind, regs(probe));
      // QueueNum is refused at QUEUE_READY, before DRIVER_OK: no interrupt is due then.
      assertNeedsReset(r.b, why, `${kind}: ${name}`, !name.startsWith("QueueNum"));
      reinitWorks(r);
    }
  }
});

// --- snapshots of a hostile guest ----------------------------------------------------------

// --- virtio-blk requests -------------------------------------------------------------------

/** A blk request framed from raw parts; returns its status byte and used length. */
function blkRequest(
  r: Rig,
  parts: { len: number; write?: boolean; fill?: Uint8Array }[],
): { status: number | undefined; len: number | undefined; addrs: number[] } {
  const { b, q } = r;
  const addrs = parts.map((p) => {
    const a = b.alloc(Math.max(1, p.len));
    b.put(a, p.fill ?? new Uint8Array(p.len).fill(0xee));
    return a;
  });
  q.add(parts.map((p, i) => ({ addr: addrs[i]!, len: p.len, ...(p.write ? { write: true } : {}) })));
  q.kick();
  const used = q.takeUsed();
  const last = parts.length - 1;
  return {
    status: parts[last]?.write ? b.get(addrs[last]!, 1)[0] : undefined,
    len: used[0]?.[1],
    addrs,
  };
}

function header(type: number, sector: number | bigint): Uint8Array {
  const h = new Uint8Array(16);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, type, true);
  dv.setBigUint64(8, BigInt(sector), true);
  return h;
}

test("virtio-blk: a header shorter than 16 bytes or no status byte is DEVICE_NEEDS_RESET", () => {
  const cases: [string, { len: number; write?: boolean; fill?: Uint8Array }[]][] = [
    [
      "an 8-byte header",
      [
        { len: 8, fill: header(VIRTIO_BLK_T.IN, 0).subarray(0, 8) },
        { len: 1, write: true },
      ],
    ],
    ["a 15-byte header", [{ len: 15 }, { len: 1, write: true }]],
    ["an empty readable buffer only", [{ len: 0 }, { len: 1, write: true }]],
    ["no status byte", [{ len: 16, fill: header(VIRTIO_BLK_T.FLUSH, 0) }]],
    [
      "a zero-length status buffer",
      [
        { len: 16, fill: header(VIRTIO_BLK_T.FLUSH, 0) },
        { len: 0, write: true },
      ],
    ],
    [
      "only writable buffers",
      [
        { len: 512, write: true },
        { len: 1, write: true },
      ],
    ],
  ];
  for (const [name, parts] of cases) {
    const r = rig("blk");
    const disk = r.disk.bytes.slice();
    const res = blkRequest(r, parts);
    assertNeedsReset(r.b, /without a header or a status byte/, name);
    assert.equal(res.len, undefined, `${name}: not used`);
    assert.deepEqual(r.disk.bytes, disk);
    reinitWorks(r);
  }
  // A header split over two buffers is a header.
  const r = rig("blk");
  const h = header(VIRTIO_BLK_T.IN, 2);
  const res = blkRequest(r, [
    { len: 5, fill: h.subarray(0, 5) },
    { len: 11, fill: h.subarray(5) },
    { len: 512, write: true },
    { len: 1, write: true },
  ]);
  assert.equal(res.status, VIRTIO_BLK_S.OK);
  assert.deepEqual(r.b.get(res.addrs[2]!, 512), r.disk.bytes.slice(1024, 1536));
});

test("virtio-blk: sectors past the capacity, partial sectors and unknown types complete with an error status", () => {
  const r = rig("blk");
  const disk = r.disk.bytes.slice();
  const cases: [string, Uint8Array, { len: number; write?: boolean }[], number][] = [
    ["IN at the capacity", header(VIRTIO_BLK_T.IN, SECTORS), [{ len: 512, write: true }], VIRTIO_BLK_S.IOERR],
    [
      "IN across the end",
      header(VIRTIO_BLK_T.IN, SECTORS - 1),
      [{ len: 1024, write: true }],
      VIRTIO_BLK_S.IOERR,
    ],
    [
      "IN at sector 2^64 - 1",
      header(VIRTIO_BLK_T.IN, 2n ** 64n - 1n),
      [{ len: 512, write: true }],
      VIRTIO_BLK_S.IOERR,
    ],
    ["IN of 513 bytes", header(VIRTIO_BLK_T.IN, 0), [{ len: 513, write: true }], VIRTIO_BLK_S.IOERR],
    ["OUT at the capacity", header(VIRTIO_BLK_T.OUT, SECTORS), [{ len: 512 }], VIRTIO_BLK_S.IOERR],
    ["OUT at 2^63", header(VIRTIO_BLK_T.OUT, 2n ** 63n), [{ len: 512 }], VIRTIO_BLK_S.IOERR],
    ["OUT of 100 bytes", header(VIRTIO_BLK_T.OUT, 0), [{ len: 100 }], VIRTIO_BLK_S.IOERR],
    ["DISCARD (not offered)", header(11, 0), [{ len: 16 }], VIRTIO_BLK_S.UNSUPP],
    ["WRITE_ZEROES (not offered)", header(13, 0), [{ len: 16 }], VIRTIO_BLK_S.UNSUPP],
    ["SECURE_ERASE (not offered)", header(14, 0), [{ len: 16 }], VIRTIO_BLK_S.UNSUPP],
    ["type 2^32 - 1", header(0xffff_ffff, 0), [], VIRTIO_BLK_S.UNSUPP],
    ["FLUSH with data", header(VIRTIO_BLK_T.FLUSH, 7), [{ len: 512 }], VIRTIO_BLK_S.OK],
    ["GET_ID into 3 bytes", header(VIRTIO_BLK_T.GET_ID, 0), [{ len: 3, write: true }], VIRTIO_BLK_S.OK],
    ["IN of nothing", header(VIRTIO_BLK_T.IN, SECTORS), [], VIRTIO_BLK_S.OK],
  ];
  for (const [name, h, data, want] of cases) {
    const res = blkRequest(r, [{ len: 16, fill: h }, ...data, { len: 1, write: true }]);
    assert.equal(res.status, want, name);
    assert.equal(r.b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET, 0, name);
    // A failed IN leaves the guest's buffers as they were.
    if (want !== VIRTIO_BLK_S.OK && h[0] === VIRTIO_BLK_T.IN) {
      for (let i = 1; i < res.addrs.length - 1; i++) {
        assert.ok(
          r.b.get(res.addrs[i]!, data[i - 1]!.len).every((x) => x === 0xee),
          `${name}: buffer untouched`,
        );
      }
    }
  }
  assert.deepEqual(r.disk.bytes, disk, "no write reached the disk");
});

// --- virtio-rng and virtio-console ----------------------------------------------------------

test("virtio-rng: a huge writable buffer gets at most RNG_MAX_REQUEST bytes", () => {
  let asked = 0;
  const rng = new VirtioRng({
    fill: (buf) => {
      asked = Math.max(asked, buf.length);
      buf.fill(0x5a);
    },
  });
  const b = new TestBench(rng, { ramSize: RAM_SIZE });
  const [q] = b.init(1);
  // 64 descriptors of the upper half of RAM through an indirect table: 32 MiB writable.
  const half = RAM_SIZE / 2;
  const bufs = Array.from({ length: 64 }, () => ({ addr: RAM_BASE + half, len: half, write: true }));
  q!.add(bufs, { indirect: true });
  q!.kick();
  assert.ok(asked <= RNG_MAX_REQUEST, `asked the source for ${asked} bytes`);
  assert.deepEqual(q!.takeUsed(), [[0, RNG_MAX_REQUEST]]);
  assert.ok(b.ram.subarray(half, half + RNG_MAX_REQUEST).every((x) => x === 0x5a));
  assert.ok(b.ram.subarray(half + RNG_MAX_REQUEST).every((x) => x === 0));
  assert.equal(b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET, 0);
});

// --- a reset while a request is in flight ---------------------------------------------------

test("requests made available before a reset are not used after it", () => {
  for (const kind of KINDS) {
    const r = rig(kind);
    const { b, q } = r;
    // Available but not notified; then the driver resets and sets up new rings.
    const buf = b.alloc(64);
    if (kind === "blk") {
      b.put(buf, header(VIRTIO_BLK_T.IN, 0));
      q.add([
        { addr: buf, len: 16 },
        { addr: buf + 16, len: 1, write: true },
      ]);
    } else q.add([{ addr: buf, len: 16, ...(kind === "rng" ? { write: true } : {}) }]);
    const before = b.ram.slice();
    b.w(VIRTIO_MMIO.STATUS, 0);
    const qs = b.init(r.queues);
    const nq = qs[r.qi]!;
    nq.kick();
    assert.equal(q.usedIdx(), 0);
    assert.equal(nq.usedIdx(), 0);
    assert.ok(
      b.get(buf, 64).every((x, i) => x === before[b.off(buf) + i]),
      `${kind}: the old buffers are untouched`,
    );
    goodRequest(r, nq);
  }
});

// --- a transport with a broken memory contract does not crash --------------------------------

test("a QueueNotify for a queue that does not exist, or before DRIVER_OK, does nothing", () => {
  for (const kind of KINDS) {
    const r = rig(kind);
    const ram = r.b.ram.slice();
    for (const v of [2, 3, 0xffff, 0xffff_ffff]) r.b.w(VIRTIO_MMIO.QUEUE_NOTIFY, v);
    assert.ok(Buffer.from(ram).equals(r.b.ram));
    assert.equal(r.b.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.DEVICE_NEEDS_RESET, 0);
    goodRequest(r, r.q);
  }
  // Every register, every width, every offset of the window: no throw.
  for (const kind of KINDS) {
    const r = rig(kind);
    for (let off = 0; off < 0x200; off++) {
      for (const size of [1, 2, 4, 8]) {
        if (off === VIRTIO_MMIO.STATUS) continue;
        assert.doesNotThrow(() => r.b.w(off, 0xffff_ffff, size));
        assert.doesNotThrow(() => r.b.r(off, size));
      }
    }
  }
});

// --- property: random rings on a live device -------------------------------------------------

const P_RAM = 1 << 18;
const P_END = RAM_BASE + P_RAM;
const ARENA = 1 << 16;
/** The arena: the last 64 KiB of RAM, where every in-RAM address of the random rings points. */
const ARENA_BASE = P_END - ARENA;
const SIZE = 8;

/**
 * 16 bytes of a descriptor that, if its address falls in RAM at all, points into the arena
 * at the end of RAM: any buffer it describes lies in the arena or runs past RAM's end.
 */
const descriptorBytes = fc
  .record({
    addr: fc.oneof(
      fc.nat(ARENA - 1).map((o) => at(ARENA_BASE + o)),
      fc.nat(0xffff).map((o) => at(P_END - o)),
      fc.constantFrom(at(0), at(0x1000), at(RAM_BASE - 8), { lo: 0xffff_fff8, hi: 0xffff_ffff }),
      fc.record({ lo: fc.nat(0xffff_ffff), hi: fc.integer({ min: 1, max: 0xffff_ffff }) }),
    ),
    len: fc.oneof(fc.nat(1100), fc.constantFrom(16, 512, 1024, ARENA, 0xffff_fff0, 0xffff_ffff), fc.nat()),
    flags: fc.oneof(fc.nat(7), fc.nat(0xffff)),
    next: fc.oneof(fc.nat(SIZE + 1), fc.nat(0xffff)),
  })
  .map(({ addr, len, flags, next }) => {
    const d = new Uint8Array(16);
    const dv = new DataView(d.buffer);
    dv.setUint32(0, addr.lo >>> 0, true);
    dv.setUint32(4, addr.hi >>> 0, true);
    dv.setUint32(8, len >>> 0, true);
    dv.setUint16(12, flags, true);
    dv.setUint16(14, next, true);
    return d;
  });

/** Random bytes for the arena, each 16-byte slot's address kept off the RAM before the arena. */
function confineArena(bytes: Uint8Array): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let o = 0; o + 16 <= bytes.length; o += 16) {
    if (dv.getUint32(o + 4, true) !== 0) continue;
    const lo = dv.getUint32(o, true);
    if (lo >= RAM_BASE && lo < ARENA_BASE) dv.setUint32(o, ARENA_BASE + (lo % ARENA), true);
  }
  return bytes;
}

type Op =
  | { k: "desc"; q: number; i: number; bytes: Uint8Array }
  | { k: "avail"; q: number; slot: number; head: number }
  | { k: "idx"; q: number; idx: number }
  | { k: "flags"; q: number; v: number }
  | { k: "arena"; off: number; bytes: Uint8Array }
  | { k: "notify"; q: number }
  | { k: "input"; n: number }
  | { k: "reset" }
  | { k: "chain"; q: number; chain: Chain };

/** A chain that is mostly well-formed: buffers in the arena, perhaps an indirect table, a blk header. */
interface Chain {
  slots: number[];
  bufs: { off: number; len: number; write: boolean }[];
  indirect: boolean;
  header: { type: number; sector: number } | null;
}
const chainArb: fc.Arbitrary<Chain> = fc.record({
  slots: fc.uniqueArray(fc.nat(SIZE - 1), { minLength: 4, maxLength: 4 }),
  bufs: fc.array(
    fc.record({
      off: fc.nat(ARENA / 2 - 1),
      len: fc.oneof(fc.nat(40), fc.constantFrom(16, 512, 1024), fc.nat(4096)),
      write: fc.boolean(),
    }),
    { minLength: 1, maxLength: 4 },
  ),
  indirect: fc.boolean(),
  header: fc.option(
    fc.record({ type: fc.oneof(fc.constantFrom(0, 1, 4, 8), fc.nat()), sector: fc.nat(SECTORS + 2) }),
  ),
});

/**
 * Writes `c` into queue `q` and publishes it. Indirect tables go in the upper half of the
 * arena, buffers in the lower; a header, if any, is written at the first buffer.
 */
function writeChain(b: TestBench, q: DriverQueue, c: Chain): void {
  const bufs = c.bufs.map((x) => ({ ...x, addr: ARENA_BASE + x.off }));
  if (c.header) {
    const h = header(c.header.type, c.header.sector);
    const room = Math.min(16, P_END - bufs[0]!.addr);
    b.put(bufs[0]!.addr, h.subarray(0, room));
  }
  const link = (i: number) => (i + 1 < bufs.length ? NEXT : 0);
  let head: number;
  if (c.indirect) {
    const t = ARENA_BASE + ARENA / 2 + 16 * (c.slots[0]! * 8);
    bufs.forEach((x, i) => {
      desc(b, t, i, { ...at(x.addr), len: x.len, flags: link(i) | (x.write ? WRITE : 0), next: i + 1 });
    });
    head = c.slots[0]!;
    desc(b, q.desc, head, { ...at(t), len: 16 * bufs.length, flags: INDIRECT });
  } else {
    const ids = c.slots.slice(0, bufs.length);
    bufs.forEach((x, i) => {
      desc(b, q.desc, ids[i]!, {
        ...at(x.addr),
        len: x.len,
        flags: link(i) | (x.write ? WRITE : 0),
        next: ids[i + 1] ?? 0,
      });
    });
    head = ids[0]!;
  }
  q.publish(head);
}

const qn = fc.nat(1);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("desc" as const),
      q: qn,
      i: fc.nat(SIZE - 1),
      bytes: descriptorBytes,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("avail" as const),
      q: qn,
      slot: fc.nat(SIZE - 1),
      head: fc.oneof(fc.nat(SIZE - 1), fc.nat(0xffff)),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("idx" as const),
      q: qn,
      idx: fc.oneof(fc.nat(SIZE + 2), fc.nat(0xffff)),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("flags" as const), q: qn, v: fc.nat(0xffff) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("arena" as const),
      off: fc.nat(ARENA / 16 - 4).map((x) => x * 16),
      bytes: fc.uint8Array({ minLength: 16, maxLength: 64 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("notify" as const),
      q: fc.oneof({ weight: 4, arbitrary: qn }, { weight: 1, arbitrary: fc.nat(0xffff_ffff) }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("input" as const), n: fc.nat(300) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("reset" as const) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant("chain" as const), q: qn, chain: chainArb }) },
);

test("property: random descriptor tables and available rings never throw, never write outside the arena and the used rings", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...KINDS),
      fc.boolean(),
      fc.uint8Array({ minLength: 1024, maxLength: 1024 }),
      fc.array(op, { minLength: 1, maxLength: 40, size: "max" }),
      (kind, eventIdx, arenaSeed, ops) => {
        const r = rig(kind, { eventIdx, ramSize: P_RAM });
        const { b } = r;
        const accept = VERSION_1 | fbit(VIRTIO_F.INDIRECT_DESC) | (eventIdx ? fbit(VIRTIO_F.EVENT_IDX) : 0n);
        const start = () => {
          assert.ok(b.negotiate(accept));
          const qs = Array.from({ length: r.queues }, (_, i) => b.setupQueue(i, SIZE));
          b.driverOk();
          return qs;
        };
        const qs = start();
        const arena = b.ram.subarray(ARENA_BASE - RAM_BASE);
        for (let i = 0; i < ARENA; i++) arena[i] = arenaSeed[i % arenaSeed.length]!;
        confineArena(arena);
        // What the device must leave alone: all RAM before the arena but the used rings.
        const used = qs
          .map((x) => [b.off(x.used), b.off(x.used) + 6 + 8 * SIZE] as const)
          .sort((x, y) => x[0] - y[0]);
        const kept: [number, number][] = [];
        let from = 0;
        for (const [lo, hi] of used) {
          kept.push([from, lo]);
          from = hi;
        }
        kept.push([from, ARENA_BASE - RAM_BASE]);
        const snapshot = () => kept.map(([lo, hi]) => Buffer.from(b.ram.subarray(lo, hi)));
        let before = snapshot();
        for (const o of ops) {
          const q = qs["q" in o && o.k !== "notify" ? o.q % qs.length : 0]!;
          switch (o.k) {
            case "desc":
              b.put(q.desc + 16 * o.i, o.bytes);
              break;
            case "avail":
              b.dv.setUint16(b.off(q.avail + 4 + 2 * o.slot), o.head, true);
              break;
            case "idx":
              b.dv.setUint16(b.off(q.avail + 2), o.idx, true);
              break;
            case "flags":
              b.dv.setUint16(b.off(q.avail), o.v, true);
              break;
            case "chain":
              writeChain(b, q, o.chain);
              break;
            case "arena":
              b.put(ARENA_BASE + o.off, confineArena(o.bytes.slice(0, o.bytes.length & ~15)));
              break;
            case "input":
              if (b.device instanceof VirtioConsole) b.device.input(new Uint8Array(o.n).fill(0x41));
              break;
            case "notify":
              b.w(VIRTIO_MMIO.QUEUE_NOTIFY, o.q);
              break;
            case "reset":
              // Reset, and the same rings set up again: the device starts again from index 0.
              b.w(VIRTIO_MMIO.STATUS, 0);
              assert.ok(b.negotiate(accept));
              for (const x of qs) {
                b.w(VIRTIO_MMIO.QUEUE_SEL, x.index);
                b.w(VIRTIO_MMIO.QUEUE_NUM, SIZE);
                b.w(VIRTIO_MMIO.QUEUE_DESC_LOW, x.desc);
                b.w(VIRTIO_MMIO.QUEUE_DRIVER_LOW, x.avail);
                b.w(VIRTIO_MMIO.QUEUE_DEVICE_LOW, x.used);
                b.w(VIRTIO_MMIO.QUEUE_READY, 1);
              }
              b.driverOk();
              break;
          }
          if (o.k === "notify" || o.k === "input" || o.k === "reset") {
            const after = snapshot();
            after.forEach((x, i) => {
              if (!x.equals(before[i]!))
                assert.fail(`${kind}: the device wrote RAM it was not given (${o.k})`);
            });
          }
          before = snapshot();
          const st = b.r(VIRTIO_MMIO.STATUS);
          const live =
            (st & (VIRTIO_STATUS.DRIVER_OK | VIRTIO_STATUS.DEVICE_NEEDS_RESET)) === VIRTIO_STATUS.DRIVER_OK;
          assert.ok(live || st & VIRTIO_STATUS.DEVICE_NEEDS_RESET, `status ${st}`);
          if (st & VIRTIO_STATUS.DEVICE_NEEDS_RESET) assert.ok(b.mmio.lastError);
          // Every used entry names a head the device could have popped.
          for (const x of qs) {
            for (let s = 0; s < Math.min(SIZE, x.usedIdx()); s++) {
              assert.ok(b.dv.getUint32(b.off(x.used + 4 + 8 * s), true) < SIZE);
            }
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});
