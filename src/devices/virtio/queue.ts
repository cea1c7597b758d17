/**
 * Split virtqueues (VIRTIO 1.2 §2.7), the device side: descriptor chains are read from the
 * descriptor table and the available ring in guest RAM, and completions are written to the
 * used ring. Indirect descriptors (§2.7.5.3, VIRTIO_F_INDIRECT_DESC) and event suppression
 * with VIRTIO_F_EVENT_IDX (§2.7.7, §2.7.10) are supported.
 *
 * Everything in guest RAM is untrusted: a descriptor, ring or buffer outside RAM, a loop in
 * a chain, a head index past the queue size or an available index that ran too far ahead
 * never throws out of this module. The queue stops (`failed`) and reports the reason to its
 * transport, which sets DEVICE_NEEDS_RESET (§2.1.1) and tells the driver.
 */
import type { StateValue } from "../../lib/state.ts";
import { bit, loadState, saveState, uint, vmstate, words64 } from "../../lib/vmstate.ts";

/** Guest physical memory as a device sees it for DMA. */
export interface GuestMemory {
  /**
   * The bytes [pa, pa + len): a view or a copy, to read only and not to keep; null when any
   * byte is outside guest RAM.
   */
  read(pa: number, len: number): Uint8Array | null;
  /** Copies `bytes` to guest RAM at `pa` and marks the pages dirty; false (nothing written) outside RAM. */
  write(pa: number, bytes: Uint8Array): boolean;
  /** Records that [pa, pa + len) was written by the device (dirty log, snapshot page list). */
  markDirty(pa: number, len: number): void;
}

/**
 * Guest RAM held as one byte array starting at guest physical `base` (the Vm's `ram` and
 * `ramBase`); `markDirty` is the Vm's, which sets the page's flags to PAGE_DIRTY|PAGE_WRITTEN
 * so that a live migration sends the page again.
 */
export class RamGuestMemory implements GuestMemory {
  constructor(
    private readonly ram: Uint8Array,
    private readonly base: number,
    private readonly dirty: (pa: number, len: number) => void,
  ) {}

  private offset(pa: number, len: number): number {
    const off = pa - this.base;
    return off >= 0 && len >= 0 && off + len <= this.ram.length ? off : -1;
  }

  read(pa: number, len: number): Uint8Array | null {
    const off = this.offset(pa, len);
    return off < 0 ? null : this.ram.subarray(off, off + len);
  }

  write(pa: number, bytes: Uint8Array): boolean {
    const off = this.offset(pa, bytes.length);
    if (off < 0) return false;
    this.ram.set(bytes, off);
    this.dirty(pa, bytes.length);
    return true;
  }

  markDirty(pa: number, len: number): void {
    this.dirty(pa, len);
  }
}

/** Descriptor flags (§2.7.5). */
export const VIRTQ_DESC_F = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
/** virtq_avail.flags (§2.7.6) and virtq_used.flags (§2.7.8). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** The largest split queue (§2.7: Queue Size is a power of 2, at most 32768). */
export const VIRTQ_MAX_SIZE = 32768;

/** One guest buffer of a chain. */
export interface Segment {
  readonly addr: number;
  readonly len: number;
}

/**
 * A descriptor chain popped from the available ring: the device-readable buffers, then the
 * device-writable ones (§2.7.4.2 requires that order), each already checked to lie in RAM.
 */
export class DescriptorChain {
  readonly readableLength: number;
  readonly writableLength: number;

  constructor(
    private readonly mem: GuestMemory,
    /** Index of the head descriptor: the id the used ring reports. */
    readonly head: number,
    readonly readable: readonly Segment[],
    readonly writable: readonly Segment[],
  ) {
    this.readableLength = readable.reduce((n, s) => n + s.len, 0);
    this.writableLength = writable.reduce((n, s) => n + s.len, 0);
  }

  /** Copies `len` device-readable bytes from byte `offset` of the readable part (fewer at its end). */
  read(offset: number, len: number): Uint8Array {
    const out = new Uint8Array(Math.max(0, Math.min(len, this.readableLength - offset)));
    let skip = offset;
    let at = 0;
    for (const s of this.readable) {
      if (at === out.length) break;
      if (skip >= s.len) {
        skip -= s.len;
        continue;
      }
      const n = Math.min(s.len - skip, out.length - at);
      out.set(this.mem.read(s.addr + skip, n)!, at);
      at += n;
      skip = 0;
    }
    return out;
  }

  /**
   * Writes `bytes` to the device-writable part from byte `offset` (what does not fit is
   * dropped); returns how many bytes were written.
   */
  write(offset: number, bytes: Uint8Array): number {
    let skip = offset;
    let at = 0;
    for (const s of this.writable) {
      if (at === bytes.length) break;
      if (skip >= s.len) {
        skip -= s.len;
        continue;
      }
      const n = Math.min(s.len - skip, bytes.length - at);
      this.mem.write(s.addr + skip, bytes.subarray(at, at + n));
      at += n;
      skip = 0;
    }
    return at;
  }
}

/** What a queue needs of its transport. */
export interface QueueHost {
  readonly mem: GuestMemory;
  /** The queue hit a driver error: the device needs a reset (§2.1.1). */
  fail(reason: string): void;
}

/** Raised inside this module for a driver error; never escapes a public method. */
class RingError extends Error {}

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/**
 * A virtqueue's state, part of its transport's section (the queue's public fields are the
 * state object). The ring addresses are checked against RAM when the queue is next used,
 * as after a driver's writes. QueueNum holds whatever the driver wrote until the queue is
 * made ready (only then is it checked, §4.2.2.3): a queue that is not ready may have any
 * size in its state, a ready one only a power of 2 up to QueueNumMax.
 */
const VIRTQ_STATE = vmstate<{ readonly maxSize: number }>()({
  version: 1,
  minVersion: 1,
  check: (s, q) =>
    s.ready && !(isPow2(s.size) && s.size <= q.maxSize)
      ? `field 'size' ${s.size} is not a power of 2 up to ${q.maxSize} (the queue is ready)`
      : null,
  fields: {
    size: uint(),
    ready: bit(),
    desc: words64(),
    driver: words64(),
    device: words64(),
    eventIdx: bit(),
    indirect: bit(),
    lastAvail: uint(0xffff),
    usedIdx: uint(0xffff),
    signalledUsed: uint(0xffff),
    signalledValid: bit(),
    failed: bit(),
  },
});

/**
 * One split virtqueue. The transport sets its size and ring addresses from the driver's
 * register writes and `ready`; the device pops chains and pushes completions.
 */
export class Virtqueue {
  /** QueueNum: the size the driver chose. */
  size: number;
  ready = false;
  /** Guest physical addresses of the descriptor table, the available ring, the used ring. */
  desc = 0;
  driver = 0;
  device = 0;
  /** Negotiated VIRTIO_F_EVENT_IDX / VIRTIO_F_INDIRECT_DESC (set at FEATURES_OK). */
  eventIdx = false;
  indirect = false;
  /** Next available-ring entry to pop. */
  lastAvail = 0;
  /** Next used-ring entry to fill (mirrors virtq_used.idx). */
  usedIdx = 0;
  /** The used index at the last interrupt decision (for VIRTIO_F_EVENT_IDX). */
  signalledUsed = 0;
  signalledValid = false;
  /** Stopped by a driver error until the device is reset. */
  failed = false;

  constructor(
    private readonly host: QueueHost,
    /** QueueNumMax. */
    readonly maxSize: number,
  ) {
    if (!isPow2(maxSize) || maxSize > VIRTQ_MAX_SIZE) throw new RangeError(`virtqueue size ${maxSize}`);
    this.size = maxSize;
  }

  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.desc = 0;
    this.driver = 0;
    this.device = 0;
    this.eventIdx = false;
    this.indirect = false;
    this.lastAvail = 0;
    this.usedIdx = 0;
    this.signalledUsed = 0;
    this.signalledValid = false;
    this.failed = false;
  }

  /** Whether QueueNum is a size this queue can run with. */
  sizeValid(): boolean {
    return isPow2(this.size) && this.size <= this.maxSize;
  }

  // --- guest memory helpers (throw RingError) ------------------------------------------

  private bytes(pa: number, len: number, what: string): Uint8Array {
    const b = this.host.mem.read(pa, len);
    if (!b) throw new RingError(`${what} at 0x${pa.toString(16)}+${len} is outside guest RAM`);
    return b;
  }

  private u16(pa: number, what: string): number {
    const b = this.bytes(pa, 2, what);
    return b[0]! | (b[1]! << 8);
  }

  private putU16(pa: number, v: number, what: string): void {
    if (!this.host.mem.write(pa, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff))) {
      throw new RingError(`${what} at 0x${pa.toString(16)} is outside guest RAM`);
    }
  }

  private guard<T>(fn: () => T, fallback: T): T {
    if (this.failed || !this.ready) return fallback;
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof RingError)) throw e;
      this.failed = true;
      this.host.fail(e.message);
      return fallback;
    }
  }

  /** Checks the ring addresses against their alignment (§2.7, table "Virtqueue Part Alignment"). */
  private checkLayout(): void {
    if (this.desc % 16 !== 0 || this.driver % 2 !== 0 || this.device % 4 !== 0) {
      throw new RingError("misaligned ring address");
    }
  }

  // --- the available ring ---------------------------------------------------------------

  /** How many chains the driver has made available and the device has not popped. */
  pending(): number {
    return this.guard(() => {
      this.checkLayout();
      const idx = this.u16(this.driver + 2, "avail.idx");
      const n = (idx - this.lastAvail) & 0xffff;
      if (n > this.size) throw new RingError(`avail.idx ${idx} is ${n} entries ahead of ${this.lastAvail}`);
      return n;
    }, 0);
  }

  /**
   * The next available chain, or null when there is none (or the queue failed). With
   * VIRTIO_F_EVENT_IDX the device asks to be notified of the next entry (avail_event).
   */
  pop(): DescriptorChain | null {
    return this.guard(() => {
      const n = this.pending();
      if (this.failed) return null;
      if (n === 0) {
        this.setAvailEvent();
        return null;
      }
      const head = this.u16(this.driver + 4 + 2 * (this.lastAvail % this.size), "avail.ring");
      this.lastAvail = (this.lastAvail + 1) & 0xffff;
      this.setAvailEvent();
      return this.walk(head);
    }, null);
  }

  /** Puts back the last popped chain (a device that could not use it yet, §2.7.13 allows no-ops). */
  unpop(): void {
    this.lastAvail = (this.lastAvail - 1) & 0xffff;
  }

  private setAvailEvent(): void {
    // virtq_used.avail_event, after the used ring's entries (§2.7.8).
    if (this.eventIdx) this.putU16(this.device + 4 + 8 * this.size, this.lastAvail, "used.avail_event");
  }

  private walk(head: number): DescriptorChain {
    if (head >= this.size) throw new RingError(`head descriptor ${head} is past the queue size ${this.size}`);
    const readable: Segment[] = [];
    const writable: Segment[] = [];
    let table = this.desc;
    let count = this.size;
    let i = head;
    let seen = 0;
    let inIndirect = false;
    const mem = this.host.mem;
    for (;;) {
      if (seen++ >= count) throw new RingError("descriptor chain loops or is longer than its table");
      const d = this.bytes(table + 16 * i, 16, "descriptor");
      const lo = (d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24)) >>> 0;
      const hi = (d[4]! | (d[5]! << 8) | (d[6]! << 16) | (d[7]! << 24)) >>> 0;
      const addr = hi * 0x1_0000_0000 + lo;
      const len = (d[8]! | (d[9]! << 8) | (d[10]! << 16) | (d[11]! << 24)) >>> 0;
      const flags = d[12]! | (d[13]! << 8);
      const next = d[14]! | (d[15]! << 8);
      if (flags & VIRTQ_DESC_F.INDIRECT) {
        // §2.7.5.3: only with the feature, never inside an indirect table, never chained on.
        if (!this.indirect) throw new RingError("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
        if (inIndirect) throw new RingError("indirect descriptor inside an indirect table");
        if (flags & VIRTQ_DESC_F.NEXT) throw new RingError("indirect descriptor with NEXT set");
        if (len === 0 || len % 16 !== 0 || len / 16 > VIRTQ_MAX_SIZE) {
          throw new RingError(`indirect table length ${len}`);
        }
        if (addr % 16 !== 0) throw new RingError("misaligned indirect table");
        this.bytes(addr, len, "indirect table");
        table = addr;
        count = len / 16;
        i = 0;
        seen = 0;
        inIndirect = true;
        continue;
      }
      if (len > 0 && !mem.read(addr, len)) {
        throw new RingError(`buffer at 0x${addr.toString(16)}+${len} is outside guest RAM`);
      }
      if (flags & VIRTQ_DESC_F.WRITE) writable.push({ addr, len });
      else if (writable.length > 0) throw new RingError("device-readable buffer after a device-writable one");
      else readable.push({ addr, len });
      if (!(flags & VIRTQ_DESC_F.NEXT)) break;
      if (next >= count) throw new RingError(`next descriptor ${next} is past its table (${count})`);
      i = next;
    }
    return new DescriptorChain(mem, head, readable, writable);
  }

  // --- the used ring --------------------------------------------------------------------

  /** Returns chain `head` to the driver with `len` bytes written into its buffers (§2.7.8). */
  push(head: number, len: number): void {
    this.guard(() => {
      const slot = this.device + 4 + 8 * (this.usedIdx % this.size);
      const e = new Uint8Array(8);
      new DataView(e.buffer).setUint32(0, head, true);
      new DataView(e.buffer).setUint32(4, len >>> 0, true);
      if (!this.host.mem.write(slot, e)) throw new RingError("used ring is outside guest RAM");
      this.usedIdx = (this.usedIdx + 1) & 0xffff;
      this.putU16(this.device + 2, this.usedIdx, "used.idx");
    }, undefined);
  }

  /**
   * Whether the driver wants a used-buffer notification for what was pushed since the last
   * call: VIRTQ_AVAIL_F_NO_INTERRUPT, or with VIRTIO_F_EVENT_IDX whether used.idx passed
   * used_event (§2.7.10, vring_need_event).
   */
  needsInterrupt(): boolean {
    return this.guard(() => {
      if (!this.eventIdx) {
        return (this.u16(this.driver, "avail.flags") & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
      }
      const event = this.u16(this.driver + 4 + 2 * this.size, "avail.used_event");
      const old = this.signalledUsed;
      const valid = this.signalledValid;
      const now = this.usedIdx;
      this.signalledUsed = now;
      this.signalledValid = true;
      if (!valid) return true;
      return ((now - event - 1) & 0xffff) < ((now - old) & 0xffff);
    }, false);
  }

  // --- state ------------------------------------------------------------------------------

  saveState(): StateValue {
    return saveState(VIRTQ_STATE, this, this);
  }

  /** Loads untrusted state; throws StateError (naming `section`) without changing anything. */
  loadState(section: string, s: StateValue): void {
    Object.assign(this, loadState(VIRTQ_STATE, section, s, VIRTQ_STATE.version, this));
  }
}
