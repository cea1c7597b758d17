/**
 * virtio-blk (VIRTIO 1.2 §5.2): one request queue; IN, OUT, FLUSH and GET_ID requests on a
 * `BlockBackend` of 512-byte sectors. The device has no Node API: a disk image file is one
 * backend (src/vmm/block-file.ts), a byte array another.
 *
 * A request is a header (type, reserved, sector: 16 device-readable bytes), data, and a
 * status byte at the very end of the device-writable part (§5.2.6). The descriptors may be
 * framed any way (§2.7.4.2, no VIRTIO_F_ANY_LAYOUT needed in 1.x): the readable and the
 * writable parts are each read as one byte stream. A request too short to hold a header and a
 * status is a driver error (DEVICE_NEEDS_RESET); a bad sector range, a length that is not a
 * whole number of sectors, a write to a read-only disk or a backend failure complete the
 * request with VIRTIO_BLK_S_IOERR, as QEMU does.
 */
import type { StateValue } from "../../lib/state.ts";
import { identity, loadState, saveState, vmstate } from "../../lib/vmstate.ts";
import { configBytesRead, VIRTIO_ID, type VirtioContext, type VirtioDevice } from "./mmio.ts";
import type { DescriptorChain } from "./queue.ts";

/** Where the disk's bytes live. Errors are thrown; the device turns them into IOERR. */
export interface BlockBackend {
  /** Size in bytes (the capacity is the whole 512-byte sectors in it). */
  readonly size: number;
  read(offset: number, buf: Uint8Array): void;
  write(offset: number, buf: Uint8Array): void;
  /** Makes completed writes durable. */
  flush(): void;
}

/** A disk held in memory (tests, the browser). */
export class MemoryBlockBackend implements BlockBackend {
  readonly bytes: Uint8Array;
  flushes = 0;
  constructor(bytes: Uint8Array | number) {
    this.bytes = typeof bytes === "number" ? new Uint8Array(bytes) : bytes;
  }
  get size(): number {
    return this.bytes.length;
  }
  read(offset: number, buf: Uint8Array): void {
    buf.set(this.bytes.subarray(offset, offset + buf.length));
  }
  write(offset: number, buf: Uint8Array): void {
    this.bytes.set(buf, offset);
  }
  flush(): void {
    this.flushes++;
  }
}

export const SECTOR_SIZE = 512;

/** Feature bits (§5.2.3). */
export const VIRTIO_BLK_F = { SIZE_MAX: 1, SEG_MAX: 2, GEOMETRY: 4, RO: 5, BLK_SIZE: 6, FLUSH: 9 } as const;
/** Request types (§5.2.6). */
export const VIRTIO_BLK_T = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8 } as const;
/** Request status (§5.2.6). */
export const VIRTIO_BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
/** GET_ID answers with up to 20 bytes of serial number (§5.2.6). */
export const VIRTIO_BLK_ID_BYTES = 20;

const HEADER = 16;

export interface VirtioBlkOptions {
  backend: BlockBackend;
  readOnly?: boolean;
  /** Serial number for GET_ID (at most 20 bytes; none reads as zeros, as QEMU's default). */
  serial?: string;
  /** QueueNumMax (default 256, QEMU's virtio-blk queue-size). */
  queueSize?: number;
}

/**
 * The disk's contents are not device state (as in QEMU, the image stays where it is); the
 * section records the disk it belongs to, which a restore must present again.
 */
const BLK_STATE = vmstate<VirtioBlk>()({
  version: 1,
  minVersion: 1,
  fields: {
    capacity: identity((b: VirtioBlk) => b.capacity, {
      mismatch: (saved, ours) => `says the disk has ${saved} sectors; this one has ${ours}`,
    }),
    readOnly: identity((b: VirtioBlk) => (b.readOnly ? 1 : 0), {
      mismatch: (saved) => `says the disk was ${saved === 1 ? "read-only" : "writable"}; this one is not`,
    }),
  },
});

export class VirtioBlk implements VirtioDevice {
  readonly stateName = "virtio-blk";
  readonly stateVersion = BLK_STATE.version;
  readonly deviceId = VIRTIO_ID.BLOCK;
  readonly features: number;
  readonly queueSizes: readonly number[];
  readonly readOnly: boolean;
  /** Capacity in 512-byte sectors. */
  readonly capacity: number;

  private readonly backend: BlockBackend;
  private readonly id: Uint8Array;
  private readonly config: Uint8Array;
  private ctx: VirtioContext | null = null;

  constructor(opts: VirtioBlkOptions) {
    this.backend = opts.backend;
    this.readOnly = opts.readOnly ?? false;
    const qsize = opts.queueSize ?? 256;
    this.queueSizes = [qsize];
    this.capacity = Math.floor(opts.backend.size / SECTOR_SIZE);
    this.id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    const serial = new TextEncoder().encode(opts.serial ?? "");
    if (serial.length > VIRTIO_BLK_ID_BYTES)
      throw new RangeError("virtio-blk: the serial is longer than 20 bytes");
    this.id.set(serial);
    // SEG_MAX: the most data buffers a request may have besides header and status (QEMU:
    // queue size - 2). BLK_SIZE: 512-byte logical blocks. FLUSH: the backend has a cache.
    this.features =
      (1 << VIRTIO_BLK_F.SEG_MAX) |
      (1 << VIRTIO_BLK_F.BLK_SIZE) |
      (1 << VIRTIO_BLK_F.FLUSH) |
      (this.readOnly ? 1 << VIRTIO_BLK_F.RO : 0);
    // struct virtio_blk_config (§5.2.4) up to num_queues.
    this.config = new Uint8Array(36);
    const dv = new DataView(this.config.buffer);
    dv.setUint32(0, this.capacity % 0x1_0000_0000, true);
    dv.setUint32(4, Math.floor(this.capacity / 0x1_0000_0000), true);
    dv.setUint32(12, qsize - 2, true); // seg_max
    dv.setUint32(20, SECTOR_SIZE, true); // blk_size
    dv.setUint16(34, 1, true); // num_queues
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }

  configRead(offset: number, size: number): number {
    return configBytesRead(this.config, offset, size);
  }

  configWrite(): void {
    // writeback is only writable with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
  }

  reset(): void {}

  notify(i: number): void {
    const ctx = this.ctx;
    if (!ctx || i !== 0) return;
    const q = ctx.queue(0);
    let done = 0;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      if (chain.readableLength < HEADER || chain.writableLength < 1) {
        ctx.fail("virtio-blk request without a header or a status byte");
        break;
      }
      const written = this.execute(chain);
      q.push(chain.head, written);
      done++;
    }
    if (done > 0) ctx.signal(0);
  }

  /** Runs one request; returns the bytes written into its device-writable buffers. */
  private execute(chain: DescriptorChain): number {
    const h = new DataView(chain.read(0, HEADER).buffer);
    const type = h.getUint32(0, true);
    const sector = h.getUint32(8, true) + h.getUint32(12, true) * 0x1_0000_0000;
    const statusAt = chain.writableLength - 1;
    let status: number = VIRTIO_BLK_S.OK;
    let written = 0;
    const range = (bytes: number): number | null =>
      bytes % SECTOR_SIZE === 0 && sector + bytes / SECTOR_SIZE <= this.capacity
        ? sector * SECTOR_SIZE
        : null;
    try {
      switch (type) {
        case VIRTIO_BLK_T.IN: {
          const at = range(statusAt);
          if (at === null) {
            status = VIRTIO_BLK_S.IOERR;
            break;
          }
          const buf = new Uint8Array(statusAt);
          this.backend.read(at, buf);
          written = chain.write(0, buf);
          break;
        }
        case VIRTIO_BLK_T.OUT: {
          const len = chain.readableLength - HEADER;
          const at = range(len);
          // §5.2.6.2: a read-only device fails writes without writing anything.
          if (this.readOnly || at === null) {
            status = VIRTIO_BLK_S.IOERR;
            break;
          }
          this.backend.write(at, chain.read(HEADER, len));
          break;
        }
        case VIRTIO_BLK_T.FLUSH:
          this.backend.flush();
          break;
        case VIRTIO_BLK_T.GET_ID:
          written = chain.write(0, this.id.subarray(0, Math.min(VIRTIO_BLK_ID_BYTES, statusAt)));
          break;
        default:
          status = VIRTIO_BLK_S.UNSUPP;
      }
    } catch {
      status = VIRTIO_BLK_S.IOERR;
    }
    chain.write(statusAt, Uint8Array.of(status));
    return written + 1;
  }

  // --- state ------------------------------------------------------------------------------

  saveState(): StateValue {
    return saveState(BLK_STATE, {}, this);
  }

  loadState(s: StateValue, version: number): void {
    loadState(BLK_STATE, this.stateName, s, version, this);
  }
}
