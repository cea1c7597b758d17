/**
 * virtio rings: a hostile guest against each virtio-mmio device kind (blk over a small
 * in-memory disk, rng, console), driven directly from the host side: a transport of its own
 * (src/devices/virtio/mmio.ts) over a small RAM, registers written as a driver would and as
 * one should not, rings and descriptors written into RAM by hand.
 *
 * An input is one episode on a fresh device: an initialisation (usually the right one, with
 * random features, queue sizes and ring addresses: misaligned, outside RAM, overlapping,
 * high halves set; sometimes random register writes instead), then one to four rounds of
 * requests: random descriptor tables (loops, addresses outside RAM, zero and huge lengths,
 * chained and nested indirect descriptors, writable buffers where readable ones are needed,
 * buffers over the rings themselves), random available and used indices, random blk request
 * headers, notifies (of unready or missing queues too), register writes between them
 * (queue size changes, QueueReady cleared, a reset in the middle, interrupt acks), console
 * input and a console host that falls behind and drains. A share of the episodes is a
 * deliberate loop: one chain whose descriptors (or indirect table) loop back.
 *
 * The oracle, after every operation that lets the device touch RAM: nothing is thrown; every
 * byte of RAM that changed lies in a device-writable buffer of a descriptor the device read
 * (as it was when read: a used ring laid over the table changes descriptors under the device,
 * legitimately; every 16-byte read is taken for a descriptor) or in a used ring (with
 * avail_event), and was reported dirty through GuestMemory (else a live migration would lose
 * it); the device never has more chains in flight than the queue holds; a reason
 * for DEVICE_NEEDS_RESET is one clean line. A deliberate loop must end with
 * DEVICE_NEEDS_RESET set and nothing in the used ring (VIRTIO 1.2 §2.7.5.3.1 / §2.1.2), in
 * the time of one input. At the end, the transport's state section (with its queues and the
 * device's own) is saved, passed through JSON, loaded into a fresh transport and device of
 * the same kind, and saved again: the two must be equal.
 *
 * Verdicts: refused when the episode ended with DEVICE_NEEDS_RESET (its reason is the
 * refusal), or when the device never went live (features or queue refused); accepted
 * otherwise. Crashes are exceptions and broken invariants above.
 */
import { MemoryBlockBackend, VIRTIO_BLK_T, VirtioBlk } from "../../../src/devices/virtio/blk.ts";
import { VirtioConsole } from "../../../src/devices/virtio/console.ts";
import {
  VIRTIO_F,
  VIRTIO_INT,
  VIRTIO_MMIO,
  VIRTIO_STATUS,
  type VirtioDevice,
  VirtioMmio,
} from "../../../src/devices/virtio/mmio.ts";
import { type GuestMemory, RamGuestMemory, VIRTQ_DESC_F } from "../../../src/devices/virtio/queue.ts";
import { VirtioRng } from "../../../src/devices/virtio/rng.ts";
import { StateError, type StateValue } from "../../../src/lib/state.ts";
import { Rng } from "../../difftest/prng.ts";
import { type Chunk, errorText, type FuzzTarget, messageProblem, type Recorder } from "../core.ts";

const RAM_BASE = 0x4000_0000;
const RAM_SIZE = 32 << 10;
const RAM_END = RAM_BASE + RAM_SIZE;
const QUEUE_MAX = 16;
const DISK_SECTORS = 64;
const { NEXT, WRITE, INDIRECT } = VIRTQ_DESC_F;

type Kind = "blk" | "rng" | "console";
const KINDS: readonly Kind[] = ["blk", "rng", "console"];

/** A console host that falls behind when told to, and drains when the fuzzer says. */
class Sink {
  behind = false;
  bytes = 0;
  private drain: (() => void) | null = null;
  write(b: Uint8Array): boolean {
    this.bytes += b.length;
    return !this.behind;
  }
  onDrain(cb: () => void): void {
    this.drain = cb;
  }
  /** The host caught up: the device is called back (as a sink would, later). */
  release(): void {
    this.behind = false;
    const cb = this.drain;
    this.drain = null;
    cb?.();
  }
}

/** One device behind its own transport, over the shared RAM. */
class Bench {
  readonly dv: DataView;
  readonly mem: RamGuestMemory;
  readonly mmio: VirtioMmio;
  readonly device: VirtioDevice;
  readonly sink = new Sink();
  /** Dirty ranges reported by the device's writes since the last check. */
  dirty: [number, number][] = [];
  /** Device-writable buffers of the descriptors the device read since the last check. */
  given: [number, number][] = [];
  diag: string[] = [];
  queues: number;

  constructor(
    readonly kind: Kind,
    readonly ram: Uint8Array,
    readonly disk: MemoryBlockBackend,
    readonly opts: { eventIdx: boolean; indirect: boolean; readOnly: boolean },
  ) {
    this.dv = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
    this.mem = new RamGuestMemory(ram, RAM_BASE, (pa, len) => this.dirty.push([pa, len]));
    this.device = makeDevice(kind, disk, this.sink, opts.readOnly);
    this.queues = this.device.queueSizes.length;
    // What the device reads 16 bytes at a time may be a descriptor: the writable ones it
    // read are where it may write (as they were when it read them: a used ring written
    // over the table changes descriptors under the device, legitimately).
    const mem = this.mem;
    const traced: GuestMemory = {
      read: (pa, len) => {
        const v = mem.read(pa, len);
        if (v && len === 16) {
          const dv = new DataView(v.buffer, v.byteOffset, 16);
          if (dv.getUint16(12, true) & WRITE) {
            this.given.push([dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32, dv.getUint32(8, true)]);
          }
        }
        return v;
      },
      write: (pa, bytes) => mem.write(pa, bytes),
      markDirty: (pa, len) => mem.markDirty(pa, len),
    };
    this.mmio = new VirtioMmio({
      device: this.device,
      mem: traced,
      irq: { set: () => {} },
      name: "virtio-mmio@a000000",
      eventIdx: opts.eventIdx,
      indirect: opts.indirect,
      diag: (m) => {
        if (this.diag.length < 8) this.diag.push(m);
      },
    });
  }

  w(off: number, v: number, size = 4): void {
    this.mmio.write(off, size, v);
  }
  r(off: number, size = 4): number {
    return this.mmio.read(off, size);
  }
}

function makeDevice(kind: Kind, disk: MemoryBlockBackend, sink: Sink, readOnly: boolean): VirtioDevice {
  if (kind === "blk") return new VirtioBlk({ backend: disk, queueSize: QUEUE_MAX, readOnly, serial: "fuzz" });
  if (kind === "rng") return new VirtioRng({ fill: (b) => b.fill(0xa5) }, { queueSize: QUEUE_MAX });
  return new VirtioConsole({ output: sink, queueSize: QUEUE_MAX });
}

/** Buffers the oracle reuses from check to check. */
const SCRATCH = {
  before: new Uint8Array(RAM_SIZE),
  allowed: new Uint8Array(RAM_SIZE),
  dirty: new Uint8Array(RAM_SIZE),
  fresh: new Uint8Array(RAM_SIZE),
};

/** A broken oracle: the input crashes with this. */
class Broken extends Error {}

// ---------------------------------------------------------------------------------------
// Addresses and values a hostile driver picks

function addrIn(rng: Rng, len: number, align = 1): number {
  const room = Math.max(0, RAM_SIZE - len);
  return RAM_BASE + Math.floor(rng.int(room + 1) / align) * align;
}

/** A buffer address: mostly a free area of RAM, sometimes anywhere, outside RAM, or over a ring. */
function bufferAddr(rng: Rng, len: number, rings: number[]): number {
  const k = rng.int(100);
  if (k < 70) return addrIn(rng, Math.min(len, 4096));
  if (k < 78) return rng.pick(rings);
  if (k < 84) return rng.pick([0, RAM_BASE - 16, RAM_END, RAM_END - 1, RAM_END - 8, 0xffff_fff0]);
  if (k < 88) return rng.pick([2 ** 32 + RAM_BASE, 2 ** 52, 2 ** 64 - 16]);
  return RAM_BASE + rng.int(RAM_SIZE);
}

function bufferLen(rng: Rng): number {
  const k = rng.int(100);
  if (k < 55) return rng.pick([1, 16, 17, 512, 513, 1024, 24, 528]);
  if (k < 75) return rng.range(1, 2048);
  if (k < 83) return 0;
  if (k < 90) return rng.pick([RAM_SIZE, RAM_SIZE + 1, 0xffff_ffff, 0x8000_0000, 2 ** 31 - 1]);
  return rng.range(1, 16);
}

function writeDesc(
  b: Bench,
  pa: number,
  d: { addr: number; len: number; flags: number; next: number },
): void {
  const o = pa - RAM_BASE;
  if (o < 0 || o + 16 > RAM_SIZE) return;
  b.dv.setUint32(o, d.addr % 2 ** 32, true);
  b.dv.setUint32(o + 4, Math.floor(d.addr / 2 ** 32) % 2 ** 32, true);
  b.dv.setUint32(o + 8, d.len >>> 0, true);
  b.dv.setUint16(o + 12, d.flags & 0xffff, true);
  b.dv.setUint16(o + 14, d.next & 0xffff, true);
}

function put16(b: Bench, pa: number, v: number): void {
  const o = pa - RAM_BASE;
  if (o >= 0 && o + 2 <= RAM_SIZE) b.dv.setUint16(o, v & 0xffff, true);
}
function get16(b: Bench, pa: number): number | null {
  const o = pa - RAM_BASE;
  return o >= 0 && o + 2 <= RAM_SIZE ? b.dv.getUint16(o, true) : null;
}

// ---------------------------------------------------------------------------------------
// The episode

interface QueueLayout {
  size: number;
  desc: number;
  avail: number;
  used: number;
  /** Next avail.idx the driver writes. */
  availIdx: number;
  /** The rings are where a driver puts them (aligned, apart, in RAM). */
  clean: boolean;
}

class Episode {
  readonly layouts: (QueueLayout | null)[] = [];
  checks = 0;
  /** Chains the device put in a used ring. */
  completed = 0;
  wentLive = false;
  /** How likely a chain is garbage rather than a well-formed request (per episode). */
  readonly hostility: number;
  /** Where data buffers go: after the rings the last initialisation laid out. */
  dataStart = RAM_BASE + RAM_SIZE / 2;

  constructor(
    readonly b: Bench,
    readonly rng: Rng,
  ) {
    this.hostility = rng.pick([0.02, 0.1, 0.35, 0.7]);
  }

  /** Runs `op` (which may let the device touch RAM) under the oracle. */
  guarded(what: string, op: () => void): void {
    const b = this.b;
    SCRATCH.before.set(b.ram);
    b.dirty = [];
    b.given = [];
    const rings = this.usedRings();
    const usedBefore = Array.from({ length: b.queues }, (_, i) => b.mmio.queue(i).usedIdx);
    try {
      op();
    } catch (e) {
      throw new Broken(`${what} threw ${e instanceof Error ? (e.stack ?? errorText(e)) : String(e)}`);
    }
    this.checks++;
    for (let i = 0; i < b.queues; i++) {
      const d = b.mmio.queue(i).usedIdx - usedBefore[i]!;
      if (d > 0) this.completed += d;
    }
    this.checkWrites(what, SCRATCH.before, [...rings, ...this.usedRings()]);
    for (let i = 0; i < b.queues; i++) {
      const q = b.mmio.queue(i);
      const inFlight = (q.lastAvail - q.usedIdx) & 0xffff;
      if (q.ready && inFlight > q.size) {
        throw new Broken(
          `${what}: queue ${i} has ${inFlight} chains in flight, more than its ${q.size} entries`,
        );
      }
    }
    if (
      b.mmio.deviceStatus & VIRTIO_STATUS.DRIVER_OK &&
      !(b.mmio.deviceStatus & VIRTIO_STATUS.DEVICE_NEEDS_RESET)
    )
      this.wentLive = true;
    const reason = b.mmio.lastError;
    if (reason !== null) {
      const p = messageProblem(reason);
      if (p) throw new Broken(`${what}: DEVICE_NEEDS_RESET reason: ${p}: ${reason}`);
    }
    for (const d of b.diag) {
      const p = messageProblem(d);
      if (p) throw new Broken(`${what}: diagnostic: ${p}: ${d}`);
    }
  }

  /** The used rings (with avail_event) of the ready queues, as [address, length]. */
  private usedRings(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.b.queues; i++) {
      const q = this.b.mmio.queue(i);
      if (q.ready) out.push([q.device, 6 + 8 * q.size]);
    }
    return out;
  }

  /**
   * Every changed byte lies in a device-writable buffer of a descriptor the device read, or
   * in a used ring, and was marked dirty.
   */
  private checkWrites(what: string, before: Uint8Array, rings: [number, number][]): void {
    const b = this.b;
    const after = b.ram;
    if (Buffer.from(before.buffer, before.byteOffset, RAM_SIZE).equals(after)) return;
    let first = 0;
    while (before[first] === after[first]) first++;
    const allowed = SCRATCH.allowed.fill(0);
    for (const [pa, len] of b.given) mark(allowed, pa, len);
    for (const [pa, len] of rings) mark(allowed, pa, len);
    const dirty = SCRATCH.dirty.fill(0);
    for (const [pa, len] of b.dirty) mark(dirty, pa, len);
    for (let o = first; o < RAM_SIZE; o++) {
      if (before[o] === after[o]) continue;
      const pa = `0x${(RAM_BASE + o).toString(16)}`;
      if (!allowed[o])
        throw new Broken(`${what}: the device wrote guest RAM at ${pa}, outside the buffers it was given`);
      if (!dirty[o])
        throw new Broken(`${what}: the device wrote guest RAM at ${pa} without marking it dirty`);
    }
  }

  // --- the driver -------------------------------------------------------------------------

  /** §3.1.1 with random choices (features, sizes, addresses); some steps left out or wrong. */
  init(): void {
    const { b, rng } = this;
    b.w(VIRTIO_MMIO.STATUS, 0);
    b.w(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE);
    b.w(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER);
    b.w(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 0);
    const lo = b.r(VIRTIO_MMIO.DEVICE_FEATURES);
    b.w(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 1);
    const hi = b.r(VIRTIO_MMIO.DEVICE_FEATURES);
    let flo = lo;
    let fhi = hi;
    if (rng.chance(0.4)) flo &= rng.u32();
    if (rng.chance(0.02)) fhi &= ~(1 << (VIRTIO_F.VERSION_1 - 32));
    if (rng.chance(0.02)) flo |= 1 << rng.int(32);
    if (rng.chance(0.3)) flo &= ~(1 << rng.pick([VIRTIO_F.INDIRECT_DESC, VIRTIO_F.EVENT_IDX]));
    b.w(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 1);
    b.w(VIRTIO_MMIO.DRIVER_FEATURES, fhi >>> 0);
    b.w(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 0);
    b.w(VIRTIO_MMIO.DRIVER_FEATURES, flo >>> 0);
    if (rng.chance(0.03)) b.w(VIRTIO_MMIO.DRIVER_FEATURES_SEL, rng.pick([2, 0xffffffff]));
    b.w(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER | VIRTIO_STATUS.FEATURES_OK);
    // Queue areas: laid out one after the other from a random start, or thrown anywhere.
    let next = RAM_BASE + 16 * rng.int(64);
    for (let i = 0; i < b.queues; i++) {
      if (rng.chance(0.05)) {
        this.layouts.push(null);
        continue;
      }
      const size = rng.chance(0.96) ? rng.pick([1, 2, 4, 8, 16, 16, 16]) : rng.pick([0, 3, 32, 5, 65535, 17]);
      const valid = size > 0 && (size & (size - 1)) === 0 && size <= QUEUE_MAX;
      const n = valid ? size : QUEUE_MAX;
      let desc = next;
      let avail = desc + 16 * n;
      let used = Math.ceil((avail + 6 + 2 * n) / 4) * 4;
      next = Math.ceil((used + 6 + 8 * n) / 16) * 16 + 16 * rng.int(4);
      const clean = next <= RAM_END && rng.chance(0.8);
      if (!clean) {
        if (rng.chance(0.4))
          desc = rng.pick([desc + 8, RAM_END - 16, RAM_END, 0, 2 ** 32 + desc, 2 ** 64 - 16]);
        if (rng.chance(0.4)) avail = rng.pick([avail + 1, RAM_END - 2, RAM_END, desc]);
        if (rng.chance(0.4)) used = rng.pick([used + 2, RAM_END - 4, RAM_END, avail, desc]);
      }
      b.w(VIRTIO_MMIO.QUEUE_SEL, i);
      b.w(VIRTIO_MMIO.QUEUE_NUM, size);
      const lohi = (lo: number, hi: number, pa: number) => {
        b.w(lo, pa % 2 ** 32);
        b.w(hi, Math.floor(pa / 2 ** 32));
      };
      lohi(VIRTIO_MMIO.QUEUE_DESC_LOW, VIRTIO_MMIO.QUEUE_DESC_HIGH, desc);
      lohi(VIRTIO_MMIO.QUEUE_DRIVER_LOW, VIRTIO_MMIO.QUEUE_DRIVER_HIGH, avail);
      lohi(VIRTIO_MMIO.QUEUE_DEVICE_LOW, VIRTIO_MMIO.QUEUE_DEVICE_HIGH, used);
      if (rng.chance(0.97)) b.w(VIRTIO_MMIO.QUEUE_READY, 1);
      this.layouts.push({ size: valid ? size : n, desc, avail, used, availIdx: 0, clean });
    }
    this.dataStart = Math.min(Math.max(next, RAM_BASE + 4096), RAM_END - 8192);
    if (rng.chance(0.98)) {
      this.guarded("DRIVER_OK", () =>
        b.w(
          VIRTIO_MMIO.STATUS,
          VIRTIO_STATUS.ACKNOWLEDGE |
            VIRTIO_STATUS.DRIVER |
            VIRTIO_STATUS.FEATURES_OK |
            VIRTIO_STATUS.DRIVER_OK,
        ),
      );
    }
  }

  /** Random register writes (status transitions, queue registers, notifies, acks). */
  randomRegisters(n: number): void {
    const { b, rng } = this;
    const regs = Object.values(VIRTIO_MMIO);
    for (let k = 0; k < n; k++) {
      const off = rng.chance(0.9) ? rng.pick(regs) : rng.int(0x200);
      const v = rng.chance(0.5)
        ? rng.pick([0, 1, 2, 3, 4, 7, 8, 15, 16, 0x40, 0x80, 0xff, 0xffffffff, RAM_BASE, RAM_BASE + 0x100])
        : rng.u32();
      const size = rng.chance(0.92) ? 4 : rng.pick([1, 2, 8]);
      this.guarded(`write 0x${v.toString(16)} to register 0x${off.toString(16)} (size ${size})`, () =>
        b.w(off, v, size),
      );
      if (rng.chance(0.3)) b.r(rng.pick(regs), 4);
    }
  }

  /** One round: descriptors and indirect tables, avail entries, blk headers; then notifies and register writes. */
  round(): void {
    const { b, rng } = this;
    for (let i = 0; i < b.queues; i++) {
      const l = this.layouts[i];
      if (!l || rng.chance(0.15)) continue;
      this.fillQueue(i, l);
    }
    const ops = rng.range(1, 4);
    for (let k = 0; k < ops; k++) {
      const op = rng.int(100);
      if (op < 60) {
        const qi = rng.chance(0.9) ? rng.int(b.queues) : rng.pick([b.queues, 7, 0xffff, 0xffffffff]);
        this.guarded(`notify queue ${qi}`, () => b.w(VIRTIO_MMIO.QUEUE_NOTIFY, qi));
      } else if (op < 68) {
        this.guarded("reset (Status 0) mid-request", () => b.w(VIRTIO_MMIO.STATUS, 0));
        if (rng.chance(0.6)) {
          this.layouts.length = 0;
          this.init();
        }
      } else if (op < 74) {
        const qi = rng.int(b.queues);
        b.w(VIRTIO_MMIO.QUEUE_SEL, qi);
        this.guarded("QueueReady cleared / QueueNum changed", () => {
          if (rng.chance(0.5)) b.w(VIRTIO_MMIO.QUEUE_READY, 0);
          b.w(VIRTIO_MMIO.QUEUE_NUM, rng.pick([0, 1, 3, 8, 32, 65535]));
          if (rng.chance(0.5)) b.w(VIRTIO_MMIO.QUEUE_READY, 1);
        });
      } else if (op < 80) {
        this.guarded("interrupt ack", () =>
          b.w(VIRTIO_MMIO.INTERRUPT_ACK, rng.pick([1, 2, 3, VIRTIO_INT.USED_BUFFER, 0xffffffff])),
        );
      } else if (op < 86 && b.kind === "console") {
        const n = rng.pick([1, 10, 100, 5000]);
        this.guarded(`console input of ${n} bytes`, () =>
          (b.device as VirtioConsole).input(Uint8Array.from({ length: n }, (_, j) => (j * 31) & 0xff)),
        );
      } else if (op < 92 && b.kind === "console") {
        if (rng.chance(0.5)) b.sink.behind = true;
        else this.guarded("console host drains", () => b.sink.release());
      } else if (op < 96) {
        this.randomRegisters(rng.range(1, 4));
      } else {
        this.guarded("DRIVER_OK again", () =>
          b.w(VIRTIO_MMIO.STATUS, b.r(VIRTIO_MMIO.STATUS) | VIRTIO_STATUS.DRIVER_OK),
        );
      }
    }
  }

  private fillQueue(i: number, l: QueueLayout): void {
    const { b, rng } = this;
    const n = l.size;
    // Chains from free slots: mostly well-formed requests of the device's kind, some garbage.
    const heads: number[] = [];
    let slot = 0;
    while (slot < n && heads.length < 4 && rng.chance(0.85)) {
      const used = rng.chance(1 - this.hostility) ? this.goodChain(i, l, slot) : this.garbage(l, slot);
      if (used === 0) break;
      heads.push(slot);
      slot += used;
    }
    // Some other slots garbage too (a chain may run into them).
    for (let k = slot; k < n; k++) if (rng.chance(this.hostility / 2)) this.garbage(l, k);
    // Avail entries: the heads, then avail.idx moved on (sometimes too far, or anywhere).
    const count = rng.chance(0.95) ? heads.length : rng.pick([n, n + 1, 0x8000, rng.int(0x10000)]);
    for (let k = 0; k < Math.min(count, n); k++) {
      const head = k < heads.length && rng.chance(0.95) ? heads[k]! : rng.pick([rng.int(n), n, 0xffff]);
      put16(b, l.avail + 4 + 2 * ((l.availIdx + k) % n), head);
    }
    l.availIdx = (l.availIdx + count) & 0xffff;
    put16(b, l.avail + 2, l.availIdx);
    put16(b, l.avail, rng.chance(0.8) ? 0 : rng.pick([1, 0xffff]));
    put16(b, l.avail + 4 + 2 * n, rng.chance(0.5) ? l.availIdx : rng.int(0x10000)); // used_event
    if (rng.chance(0.05)) put16(b, l.used + 2, rng.int(0x10000));
  }

  /** A data buffer of `len` bytes in the area after the rings (or, rarely, anywhere). */
  private data(len: number, l: QueueLayout): number {
    const { rng } = this;
    if (rng.chance(0.05)) return bufferAddr(rng, len, [l.desc, l.avail, l.used]);
    const start = Math.min(this.dataStart, RAM_END - 4096);
    return start + rng.int(Math.max(1, RAM_END - start - len));
  }

  /**
   * A well-formed request for queue `i` at descriptor `slot` (in the table, or in an
   * indirect table with one slot): blk header, data and status; rng writable buffers;
   * console receive (writable) or transmit (readable) buffers. Returns the slots used.
   */
  private goodChain(i: number, l: QueueLayout, slot: number): number {
    const { b, rng } = this;
    const parts: { len: number; write: boolean }[] = [];
    if (b.kind === "blk") {
      const type = rng.pick([
        VIRTIO_BLK_T.IN,
        VIRTIO_BLK_T.IN,
        VIRTIO_BLK_T.OUT,
        VIRTIO_BLK_T.OUT,
        VIRTIO_BLK_T.FLUSH,
        VIRTIO_BLK_T.GET_ID,
      ]);
      const sectors = rng.pick([0, 1, 1, 2, 4]);
      parts.push({ len: 16, write: false });
      const pieces = sectors > 0 && rng.chance(0.3) ? 2 : 1;
      const bytes =
        type === VIRTIO_BLK_T.GET_ID ? 20 : sectors * 512 + (rng.chance(0.1) ? rng.pick([1, -1, 100]) : 0);
      for (let k = 0; k < pieces && bytes > 0; k++) {
        parts.push({ len: Math.max(1, Math.floor(bytes / pieces)), write: type !== VIRTIO_BLK_T.OUT });
      }
      parts.push({ len: 1, write: true });
      if (rng.chance(0.1)) parts.reverse(); // status first: out of order
      const addrs = parts.map((p) => this.data(p.len, l));
      this.header(
        addrs[0]!,
        type,
        rng.chance(0.9) ? rng.int(DISK_SECTORS - 4) : rng.pick([DISK_SECTORS, 2 ** 32 - 1, 2 ** 52]),
      );
      return this.lay(l, slot, parts, addrs);
    }
    const write = b.kind === "rng" || i === 0;
    for (let k = rng.range(1, 3); k > 0; k--)
      parts.push({ len: rng.pick([1, 16, 64, 512, 4096, rng.range(1, 3000)]), write });
    if (rng.chance(0.05)) parts.push({ len: 8, write: !write });
    return this.lay(
      l,
      slot,
      parts,
      parts.map((p) => this.data(p.len, l)),
    );
  }

  /** Writes a chain's descriptors at `slot` on (or in an indirect table); returns the slots used. */
  private lay(
    l: QueueLayout,
    slot: number,
    parts: { len: number; write: boolean }[],
    addrs: number[],
  ): number {
    const { b, rng } = this;
    const n = l.size;
    const negotiated = this.b.mmio.queue(l === this.layouts[0] ? 0 : 1).indirect;
    const indirect = parts.length > 1 && rng.chance(negotiated ? 0.25 : 0.01);
    if (!indirect && slot + parts.length > n) return 0;
    const base = indirect ? this.data(16 * parts.length, l) & ~15 : l.desc + 16 * slot;
    parts.forEach((p, k) => {
      const last = k === parts.length - 1;
      writeDesc(b, base + 16 * k, {
        addr: addrs[k]!,
        len: p.len,
        flags: (p.write ? WRITE : 0) | (last ? 0 : NEXT),
        next: last ? 0 : indirect ? k + 1 : slot + k + 1,
      });
    });
    if (!indirect) return parts.length;
    writeDesc(b, l.desc + 16 * slot, { addr: base, len: 16 * parts.length, flags: INDIRECT, next: 0 });
    return 1;
  }

  /** Garbage at descriptor `slot`: random lengths, flags, next links, addresses; indirect tables of garbage. */
  private garbage(l: QueueLayout, k: number): number {
    const { b, rng } = this;
    const rings = [l.desc, l.avail, l.used, l.used + 4];
    const n = l.size;
    const len = bufferLen(rng);
    let flags = 0;
    if (rng.chance(0.45)) flags |= NEXT;
    if (rng.chance(0.5)) flags |= WRITE;
    if (rng.chance(0.1)) flags |= INDIRECT;
    if (rng.chance(0.02)) flags = rng.int(0x10000);
    const next = rng.chance(0.8) ? (k + 1) % n : rng.chance(0.5) ? rng.int(n) : rng.pick([n, 0xffff, k]);
    const addr = bufferAddr(rng, len, rings);
    if (!(flags & INDIRECT)) {
      writeDesc(b, l.desc + 16 * k, { addr, len, flags, next });
      if (!(flags & WRITE) && len >= 16) this.blkHeader(addr, rng);
      return 1;
    }
    const entries = rng.pick([1, 2, 3, 4, 8]);
    const table = addrIn(rng, 16 * entries, 16);
    for (let j = 0; j < entries; j++) {
      let f = 0;
      if (j < entries - 1 && rng.chance(0.8)) f |= NEXT;
      if (rng.chance(0.5)) f |= WRITE;
      if (rng.chance(0.05)) f |= INDIRECT;
      const ilen = bufferLen(rng);
      writeDesc(b, table + 16 * j, {
        addr: bufferAddr(rng, ilen, rings),
        len: ilen,
        flags: f,
        next: rng.chance(0.85) ? j + 1 : rng.int(entries + 2),
      });
    }
    writeDesc(b, l.desc + 16 * k, {
      addr: rng.chance(0.9) ? table : table + 8,
      len: rng.chance(0.9) ? 16 * entries : rng.pick([0, 8, 16 * entries + 3, 16 * 40000]),
      flags: (flags & ~NEXT) | (rng.chance(0.05) ? NEXT : 0),
      next,
    });
    this.blkHeader(table, rng);
    return 1;
  }

  private header(pa: number, type: number, sector: number): void {
    if (pa < RAM_BASE || pa + 16 > RAM_END) return;
    const o = pa - RAM_BASE;
    this.b.dv.setUint32(o, type >>> 0, true);
    this.b.dv.setUint32(o + 8, sector % 2 ** 32, true);
    this.b.dv.setUint32(o + 12, Math.floor(sector / 2 ** 32) % 2 ** 32, true);
  }

  /** A blk request header at `pa` (any kind of request, valid sectors or not). */
  private blkHeader(pa: number, rng: Rng): void {
    if (this.b.kind !== "blk" || pa < RAM_BASE || pa + 16 > RAM_END) return;
    const o = pa - RAM_BASE;
    const type = rng.chance(0.85)
      ? rng.pick([VIRTIO_BLK_T.IN, VIRTIO_BLK_T.OUT, VIRTIO_BLK_T.FLUSH, VIRTIO_BLK_T.GET_ID])
      : rng.pick([2, 3, 11, 0xffffffff, rng.u32()]);
    const sector = rng.chance(0.8)
      ? rng.int(DISK_SECTORS)
      : rng.pick([DISK_SECTORS, DISK_SECTORS - 1, 2 ** 32 - 1, 2 ** 52]);
    this.b.dv.setUint32(o, type >>> 0, true);
    this.b.dv.setUint32(o + 8, sector % 2 ** 32, true);
    this.b.dv.setUint32(o + 12, Math.floor(sector / 2 ** 32) % 2 ** 32, true);
  }

  /**
   * A deliberate loop on queue `i`: a chain of in-RAM buffers whose last descriptor points
   * back into it (or an indirect table that loops), made available alone, then notified.
   * The device must set DEVICE_NEEDS_RESET and use nothing.
   */
  loop(): boolean {
    const { b, rng } = this;
    const i = b.kind === "console" ? 1 : 0;
    const l = this.layouts[i];
    const q = b.mmio.queue(i);
    if (!l?.clean || !q.ready || !b.mmio.live || q.size < 2 || q.lastAvail !== q.usedIdx) return false;
    const indirect = q.indirect && rng.chance(0.4);
    const len = rng.pick([16, 64, 512]);
    const buf = () => addrIn(rng, len);
    // readable header first, then (for blk/rng) writable ones, so nothing but the loop is wrong
    const flagsAt = (j: number) => (b.kind === "console" || j === 0 ? 0 : WRITE);
    const head = rng.int(q.size);
    if (indirect) {
      const entries = rng.range(2, 6);
      const table = addrIn(rng, 16 * entries, 16);
      for (let j = 0; j < entries; j++) {
        writeDesc(b, table + 16 * j, {
          addr: buf(),
          len,
          flags: NEXT | flagsAt(j),
          next: j + 1 < entries ? j + 1 : rng.int(entries),
        });
      }
      writeDesc(b, q.desc + 16 * head, { addr: table, len: 16 * entries, flags: INDIRECT, next: 0 });
    } else {
      const k = rng.range(2, q.size);
      const ids = [head];
      while (ids.length < k) {
        const x = rng.int(q.size);
        if (!ids.includes(x)) ids.push(x);
      }
      ids.forEach((id, j) => {
        const next = j + 1 < ids.length ? ids[j + 1]! : ids[rng.int(ids.length)]!;
        writeDesc(b, q.desc + 16 * id, { addr: buf(), len, flags: NEXT | flagsAt(j), next });
      });
    }
    put16(b, l.avail + 4 + 2 * (q.lastAvail % q.size), head);
    l.availIdx = (q.lastAvail + 1) & 0xffff;
    put16(b, l.avail + 2, l.availIdx);
    const usedBefore = get16(b, q.device + 2);
    this.guarded(`notify a looping ${indirect ? "indirect table" : "chain"}`, () =>
      b.w(VIRTIO_MMIO.QUEUE_NOTIFY, i),
    );
    if (!(b.mmio.deviceStatus & VIRTIO_STATUS.DEVICE_NEEDS_RESET)) {
      throw new Broken(
        `a looping ${indirect ? "indirect table" : "descriptor chain"} did not set DEVICE_NEEDS_RESET (status 0x${b.mmio.deviceStatus.toString(16)})`,
      );
    }
    if (get16(b, q.device + 2) !== usedBefore) throw new Broken("a looping chain was put in the used ring");
    return true;
  }
}

function mark(mask: Uint8Array, pa: number, len: number): void {
  const from = Math.max(0, pa - RAM_BASE);
  const to = Math.min(RAM_SIZE, pa - RAM_BASE + len);
  if (to > from) mask.fill(1, from, to);
}

/** The transport's section through JSON into a fresh transport and device, saved again: equal. */
function roundTrip(b: Bench, ram: Uint8Array, disk: MemoryBlockBackend): string | null {
  let saved: StateValue;
  try {
    saved = b.mmio.saveState();
  } catch (e) {
    return `saveState threw ${errorText(e)}`;
  }
  let text = JSON.stringify(saved);
  // A RAM of its own: a restored console may transmit later, from a microtask.
  SCRATCH.fresh.set(ram);
  const fresh = new Bench(b.kind, SCRATCH.fresh, disk, b.opts);
  try {
    fresh.mmio.loadState(JSON.parse(text) as StateValue, b.mmio.stateVersion);
  } catch (e) {
    if (e instanceof StateError) return `its own state section was refused: ${e.message}`;
    return `loadState threw ${errorText(e)}`;
  }
  // A restored console starts with the host not behind (it looks at its transmitq again
  // after the restore, console.ts): txHeld is not carried over, by design.
  if (b.kind === "console") (saved as { device: { txHeld: boolean } }).device.txHeld = false;
  const again = JSON.stringify(fresh.mmio.saveState());
  text = JSON.stringify(saved);
  if (again === text) return null;
  let k = 0;
  while (k < text.length && text[k] === again[k]) k++;
  const at = (t: string) => t.slice(Math.max(0, k - 80), k + 40);
  return `the state differs after a round trip: saved …${at(text)}…, loaded and saved again …${at(again)}…`;
}

export const virtioTarget: FuzzTarget = {
  name: "virtio",
  unit: "virtio episodes",
  full: 1_000_000,
  smoke: 1500,
  perInputMs: 2000,
  async run(chunk: Chunk, rec: Recorder): Promise<void> {
    const ram = new Uint8Array(RAM_SIZE);
    const disk = new MemoryBlockBackend(DISK_SECTORS * 512);
    rec.ready();
    for (let i = chunk.start; i < chunk.start + chunk.count; i++) {
      const rng = new Rng(rec.inputSeed(i));
      const kind = rng.pick(KINDS);
      ram.fill(0);
      for (let k = 0; k < disk.bytes.length; k += 97) disk.bytes[k] = k & 0xff;
      const b = new Bench(kind, ram, disk, {
        eventIdx: rng.chance(0.7),
        indirect: rng.chance(0.8),
        readOnly: kind === "blk" && rng.chance(0.15),
      });
      const ep = new Episode(b, rng);
      let what = `${kind}: `;
      try {
        if (rng.chance(0.92)) ep.init();
        else {
          what += "random registers; ";
          ep.randomRegisters(rng.range(5, 40));
        }
        if (rng.chance(0.12)) {
          what += "loop; ";
          if (ep.loop()) rec.count(`${kind}: deliberate loops that set DEVICE_NEEDS_RESET`);
        } else {
          for (let r = rng.range(1, 4); r > 0; r--) ep.round();
        }
        const rt = roundTrip(b, ram, disk);
        if (rt) throw new Broken(`state section: ${rt}`);
      } catch (e) {
        const msg = e instanceof Broken ? e.message : `the fuzzer's episode threw ${errorText(e)}`;
        rec.crash(i, `${what}${msg}`);
        continue;
      }
      rec.count(`${kind}: oracle checks`, ep.checks);
      rec.count(`${kind}: chains completed (used ring entries)`, ep.completed);
      if (kind === "console") rec.count("console: bytes transmitted", b.sink.bytes);
      const status = b.mmio.deviceStatus;
      if (status & VIRTIO_STATUS.DEVICE_NEEDS_RESET)
        rec.refused(`${kind}: ${b.mmio.lastError ?? "DEVICE_NEEDS_RESET"}`);
      else if (!ep.wentLive) rec.refused(`${kind}: never live (status 0x${status.toString(16)})`);
      else rec.accepted();
    }
  },
};
