/**
 * A virtio driver for tests, doing what Linux's virtio_mmio and virtio_ring do: the
 * initialization sequence of VIRTIO 1.2 §4.2.3.1 / §3.1.1 through the registers, split
 * rings built in a RAM buffer (§2.7), buffers made available, QueueNotify, used entries read
 * back and InterruptStatus acknowledged.
 */
import assert from "node:assert/strict";
import {
  VIRTIO_F,
  VIRTIO_MMIO,
  VIRTIO_STATUS,
  type VirtioDevice,
  VirtioMmio,
} from "../../src/devices/virtio/mmio.ts";
import { RamGuestMemory, VIRTQ_DESC_F } from "../../src/devices/virtio/queue.ts";

export const RAM_BASE = 0x4000_0000;

/** The device's transport, its RAM, its interrupt line. */
export class TestBench {
  readonly ram: Uint8Array;
  readonly dv: DataView;
  readonly dirty: [number, number][] = [];
  readonly mem: RamGuestMemory;
  /** Interrupt line level and the number of rising edges seen. */
  level = false;
  edges = 0;
  readonly mmio: VirtioMmio;
  /** Next free byte of the bump allocator (copy it with the RAM to carry on after a restore). */
  next = 0x1000;

  private readonly bus: {
    read(off: number, size: number): number;
    write(off: number, size: number, v: number): void;
  };

  /**
   * A transport of its own in front of `device`, or with `board` one that a machine built:
   * its RAM, and register accesses through the machine's MMIO bus.
   */
  constructor(
    readonly device: VirtioDevice | undefined,
    opts: { ramSize?: number; eventIdx?: boolean; indirect?: boolean } = {},
    board?: {
      mmio: VirtioMmio;
      ram: Uint8Array;
      read(off: number, size: number): number;
      write(off: number, size: number, v: number): void;
    },
  ) {
    this.ram = board?.ram ?? new Uint8Array(opts.ramSize ?? 1 << 20);
    this.dv = new DataView(this.ram.buffer, this.ram.byteOffset, this.ram.byteLength);
    this.mem = new RamGuestMemory(this.ram, RAM_BASE, (pa, len) => this.dirty.push([pa, len]));
    this.bus = board ?? {
      read: (off, size) => this.mmio.read(off, size),
      write: (off, size, v) => this.mmio.write(off, size, v),
    };
    this.mmio =
      board?.mmio ??
      new VirtioMmio({
        ...(device ? { device } : {}),
        mem: this.mem,
        irq: {
          set: (l) => {
            if (l && !this.level) this.edges++;
            this.level = l;
          },
        },
        name: "virtio-mmio@a000000",
        ...(opts.eventIdx !== undefined ? { eventIdx: opts.eventIdx } : {}),
        ...(opts.indirect !== undefined ? { indirect: opts.indirect } : {}),
      });
  }

  r(off: number, size = 4): number {
    return this.bus.read(off, size);
  }
  w(off: number, v: number, size = 4): void {
    this.bus.write(off, size, v);
  }

  /** Bump allocation of guest RAM; returns a guest physical address. */
  alloc(len: number, align = 16): number {
    this.next = Math.ceil(this.next / align) * align;
    const pa = RAM_BASE + this.next;
    this.next += len;
    assert.ok(this.next <= this.ram.length, "test RAM exhausted");
    return pa;
  }

  off(pa: number): number {
    return pa - RAM_BASE;
  }
  put(pa: number, bytes: Uint8Array): void {
    this.ram.set(bytes, this.off(pa));
  }
  get(pa: number, len: number): Uint8Array {
    return this.ram.slice(this.off(pa), this.off(pa) + len);
  }

  /** The device features as a 64-bit bigint. */
  deviceFeatures(): bigint {
    this.w(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 1);
    const hi = this.r(VIRTIO_MMIO.DEVICE_FEATURES);
    this.w(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 0);
    const lo = this.r(VIRTIO_MMIO.DEVICE_FEATURES);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, read the features, write `accept` (all
   * offered by default), FEATURES_OK, re-read the status. Returns whether FEATURES_OK stuck.
   */
  negotiate(accept?: bigint): boolean {
    this.w(VIRTIO_MMIO.STATUS, 0);
    assert.equal(this.r(VIRTIO_MMIO.STATUS), 0);
    this.w(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE);
    this.w(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER);
    const f = accept ?? this.deviceFeatures();
    this.w(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 1);
    this.w(VIRTIO_MMIO.DRIVER_FEATURES, Number(f >> 32n) >>> 0);
    this.w(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 0);
    this.w(VIRTIO_MMIO.DRIVER_FEATURES, Number(f & 0xffff_ffffn) >>> 0);
    this.w(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER | VIRTIO_STATUS.FEATURES_OK);
    return (this.r(VIRTIO_MMIO.STATUS) & VIRTIO_STATUS.FEATURES_OK) !== 0;
  }

  /** §4.2.3.2: sets up virtqueue `index` with `size` entries (default QueueNumMax). */
  setupQueue(index: number, size?: number): DriverQueue {
    this.w(VIRTIO_MMIO.QUEUE_SEL, index);
    assert.equal(this.r(VIRTIO_MMIO.QUEUE_READY), 0);
    const max = this.r(VIRTIO_MMIO.QUEUE_NUM_MAX);
    assert.ok(max > 0, `queue ${index} exists`);
    const n = size ?? max;
    const q = new DriverQueue(this, index, n);
    this.w(VIRTIO_MMIO.QUEUE_NUM, n);
    const lohi = (lo: number, hi: number, pa: number) => {
      this.w(lo, pa % 2 ** 32);
      this.w(hi, Math.floor(pa / 2 ** 32));
    };
    lohi(VIRTIO_MMIO.QUEUE_DESC_LOW, VIRTIO_MMIO.QUEUE_DESC_HIGH, q.desc);
    lohi(VIRTIO_MMIO.QUEUE_DRIVER_LOW, VIRTIO_MMIO.QUEUE_DRIVER_HIGH, q.avail);
    lohi(VIRTIO_MMIO.QUEUE_DEVICE_LOW, VIRTIO_MMIO.QUEUE_DEVICE_HIGH, q.used);
    this.w(VIRTIO_MMIO.QUEUE_READY, 1);
    assert.equal(this.r(VIRTIO_MMIO.QUEUE_READY), 1);
    return q;
  }

  /** §3.1.1 step 8. */
  driverOk(): void {
    this.w(
      VIRTIO_MMIO.STATUS,
      VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER | VIRTIO_STATUS.FEATURES_OK | VIRTIO_STATUS.DRIVER_OK,
    );
  }

  /** The whole initialization with `queues` virtqueues; returns them. */
  init(queues: number, accept?: bigint): DriverQueue[] {
    assert.ok(this.negotiate(accept), "FEATURES_OK accepted");
    const qs = Array.from({ length: queues }, (_, i) => this.setupQueue(i));
    this.driverOk();
    return qs;
  }

  /** What an interrupt handler does (vm_interrupt): read InterruptStatus, acknowledge it. */
  ack(): number {
    const s = this.r(VIRTIO_MMIO.INTERRUPT_STATUS);
    this.w(VIRTIO_MMIO.INTERRUPT_ACK, s);
    return s;
  }
}

export interface Buf {
  addr: number;
  len: number;
  write?: boolean;
}

/** The driver's side of one split virtqueue. */
export class DriverQueue {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  private freeNext = 0;
  availIdx = 0;
  lastUsed = 0;

  constructor(
    readonly bench: TestBench,
    readonly index: number,
    readonly size: number,
  ) {
    this.desc = bench.alloc(16 * size, 16);
    this.avail = bench.alloc(6 + 2 * size, 2);
    this.used = bench.alloc(6 + 8 * size, 4);
  }

  private writeDesc(table: number, i: number, b: Buf, flags: number, next: number): void {
    const dv = this.bench.dv;
    const o = this.bench.off(table + 16 * i);
    dv.setUint32(o, b.addr % 2 ** 32, true);
    dv.setUint32(o + 4, Math.floor(b.addr / 2 ** 32), true);
    dv.setUint32(o + 8, b.len, true);
    dv.setUint16(o + 12, flags | (b.write ? VIRTQ_DESC_F.WRITE : 0), true);
    dv.setUint16(o + 14, next, true);
  }

  /** Writes a chain into the descriptor table (or one indirect table) without publishing it; returns its head. */
  build(bufs: Buf[], opts: { indirect?: boolean } = {}): number {
    const head = this.freeNext % this.size;
    if (opts.indirect) {
      const table = this.bench.alloc(16 * bufs.length, 16);
      bufs.forEach((b, i) => {
        this.writeDesc(table, i, b, i + 1 < bufs.length ? VIRTQ_DESC_F.NEXT : 0, i + 1);
      });
      this.writeDesc(this.desc, head, { addr: table, len: 16 * bufs.length }, VIRTQ_DESC_F.INDIRECT, 0);
      this.freeNext++;
      return head;
    }
    bufs.forEach((b, k) => {
      const i = (this.freeNext + k) % this.size;
      const last = k + 1 === bufs.length;
      this.writeDesc(this.desc, i, b, last ? 0 : VIRTQ_DESC_F.NEXT, (i + 1) % this.size);
    });
    this.freeNext += bufs.length;
    return head;
  }

  /** Puts a chain head in the available ring and publishes avail.idx. */
  publish(head: number): void {
    const dv = this.bench.dv;
    dv.setUint16(this.bench.off(this.avail + 4 + 2 * (this.availIdx % this.size)), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    dv.setUint16(this.bench.off(this.avail + 2), this.availIdx, true);
  }

  add(bufs: Buf[], opts: { indirect?: boolean } = {}): number {
    const head = this.build(bufs, opts);
    this.publish(head);
    return head;
  }

  kick(): void {
    this.bench.w(VIRTIO_MMIO.QUEUE_NOTIFY, this.index);
  }

  /**
   * Used entries since the last call, as [id, len]. Like Linux's virtqueue_enable_cb, it then
   * asks for an interrupt at the next completion (used_event = the last index seen).
   */
  takeUsed(): [number, number][] {
    const dv = this.bench.dv;
    const idx = dv.getUint16(this.bench.off(this.used + 2), true);
    const out: [number, number][] = [];
    while (this.lastUsed !== idx) {
      const o = this.bench.off(this.used + 4 + 8 * (this.lastUsed % this.size));
      out.push([dv.getUint32(o, true), dv.getUint32(o + 4, true)]);
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    this.setUsedEvent(this.lastUsed);
    return out;
  }

  usedIdx(): number {
    return this.bench.dv.getUint16(this.bench.off(this.used + 2), true);
  }

  /** avail.flags (VIRTQ_AVAIL_F_NO_INTERRUPT). */
  setAvailFlags(f: number): void {
    this.bench.dv.setUint16(this.bench.off(this.avail), f, true);
  }
  /** avail.used_event (VIRTIO_F_EVENT_IDX). */
  setUsedEvent(v: number): void {
    this.bench.dv.setUint16(this.bench.off(this.avail + 4 + 2 * this.size), v, true);
  }
  /** used.avail_event (VIRTIO_F_EVENT_IDX). */
  availEvent(): number {
    return this.bench.dv.getUint16(this.bench.off(this.used + 4 + 8 * this.size), true);
  }
}

/** Feature bit as a bigint mask. */
export const fbit = (n: number): bigint => 1n << BigInt(n);
export const VERSION_1 = fbit(VIRTIO_F.VERSION_1);
