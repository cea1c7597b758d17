/**
 * The virtio-mmio transport, version 2 (VIRTIO 1.2 §4.2): the register window QEMU's `virt`
 * board puts at 0x0a000000 + n * 0x200 (SPI 16 + n), in front of one virtio device.
 *
 * Registers (§4.2.2) are 32 bits wide and accessed as such; the device configuration space
 * at 0x100 is read and written at any width up to 4 bytes (Linux reads a u64 field as two
 * 32-bit halves). An empty slot (no device) reads MagicValue, Version, VendorID and a
 * DeviceID of 0, which a driver takes as "nothing here" (§4.2.3.1.1).
 *
 * Feature negotiation follows §3.1.1: the driver's features must be a subset of what was
 * offered and include VIRTIO_F_VERSION_1 (this is a non-legacy device, §6.1), or FEATURES_OK
 * does not stick. Buffers are only processed after DRIVER_OK (§3.1.1 / §2.7.13), all of it
 * synchronously in the QueueNotify write, so that a deterministic run stays deterministic.
 * A driver error found in the rings sets DEVICE_NEEDS_RESET and, the driver being live,
 * raises a configuration change interrupt (§2.1.2); the device then does nothing more until
 * the driver writes 0 to Status.
 *
 * The interrupt line follows InterruptStatus (level high while any bit is set), as QEMU's
 * virtio-mmio drives it; the board describes it edge-rising, as QEMU's does.
 */
import type { IrqLine } from "../../lib/irq.ts";
import type { MmioDevice } from "../../lib/mmio-device.ts";
import { StateError, type Stateful, type StateValue, stateNumber } from "../../lib/state.ts";
import { identity, loadState, type StateOf, saveState, uint, uints, vmstate } from "../../lib/vmstate.ts";
import { type GuestMemory, type QueueHost, Virtqueue } from "./queue.ts";

/** Register offsets (§4.2.2). */
export const VIRTIO_MMIO = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" in little-endian. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
export const VIRTIO_MMIO_VERSION = 2;
/** QEMU's vendor ID ("QEMU"), which Linux shows in /sys/bus/virtio/devices/.../vendor. */
export const VIRTIO_VENDOR_QEMU = 0x554d4551;
/** The window of one transport on virt. */
export const VIRTIO_MMIO_WINDOW = 0x200;

/** Device status bits (§2.1). */
export const VIRTIO_STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/** InterruptStatus bits (§4.2.2). */
export const VIRTIO_INT = { USED_BUFFER: 1, CONFIG_CHANGE: 2 } as const;

/** Reserved feature bits (§6) the transport implements, as bit numbers. */
export const VIRTIO_F = {
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
} as const;

/** Device IDs (§5). */
export const VIRTIO_ID = { BLOCK: 2, CONSOLE: 3, ENTROPY: 4 } as const;

/** What a device sees of its transport. */
export interface VirtioContext {
  readonly mem: GuestMemory;
  /** Virtqueue `i` (always present; `ready` says whether the driver set it up). */
  queue(i: number): Virtqueue;
  /** Whether the driver accepted feature bit `bit` (0..63). */
  hasFeature(bit: number): boolean;
  /** The driver is live: DRIVER_OK, no reset needed. Devices process buffers only then. */
  readonly live: boolean;
  /** Sends a used-buffer notification for queue `i` unless the driver suppressed it. */
  signal(i: number): void;
  /** The device configuration changed: ConfigGeneration moves on, config-change interrupt. */
  configChanged(): void;
  /** A driver error: DEVICE_NEEDS_RESET (§2.1.2). */
  fail(reason: string): void;
}

/**
 * A virtio device behind a transport (Firecracker's VirtioDevice, QEMU's VirtioDeviceClass):
 * its ID, feature bits, queue sizes and configuration space; the transport does the rest.
 */
export interface VirtioDevice extends Stateful {
  readonly deviceId: number;
  /** Device feature bits 0..31 (device-specific bits 0..23); the transport adds its own. */
  readonly features: number;
  /** QueueNumMax of each virtqueue (powers of 2). */
  readonly queueSizes: readonly number[];
  /** Connects the device to its transport (once, from the transport's constructor). */
  attach(ctx: VirtioContext): void;
  /** Reads `size` (1, 2 or 4) bytes of the configuration space at `offset`, little-endian. */
  configRead(offset: number, size: number): number;
  configWrite(offset: number, size: number, value: number): void;
  /** The driver notified queue `i`, or (at DRIVER_OK and after a restore) buffers may be waiting. */
  notify(i: number): void;
  /** Device reset (Status written 0): back to the state before the driver came. */
  reset(): void;
}

export interface VirtioMmioOptions {
  /** The device, or none for an empty slot. */
  device?: VirtioDevice;
  mem: GuestMemory;
  irq: IrqLine;
  /** Section name, e.g. "virtio-mmio@a003e00". */
  name?: string;
  /** Offer VIRTIO_F_EVENT_IDX / VIRTIO_F_INDIRECT_DESC (default: both). */
  eventIdx?: boolean;
  indirect?: boolean;
  /** Told why a device entered DEVICE_NEEDS_RESET. */
  diag?: (message: string) => void;
}

const bit = (n: number): [number, number] => (n < 32 ? [(1 << n) >>> 0, 0] : [0, (1 << (n - 32)) >>> 0]);

/**
 * The transport's registers (section version 1). The slot's device ID is part of the layout
 * and must match, so a section never loads into a slot holding another kind of device.
 */
const TRANSPORT_STATE = vmstate<VirtioMmio>()({
  version: 1,
  minVersion: 1,
  fields: {
    deviceId: identity((t: VirtioMmio) => t.device?.deviceId ?? 0, {
      mismatch: (saved, ours) => `holds device ID ${saved}; this slot has ${ours}`,
    }),
    status: uint(0xff),
    deviceFeaturesSel: uint(),
    driverFeaturesSel: uint(),
    driverFeatures: uints({ length: 2 }),
    queueSel: uint(),
    interruptStatus: uint(3),
    configGeneration: uint(),
  },
  check: (s, t) => {
    const [o0, o1] = t.offeredFeatures;
    const extra = (s.driverFeatures[0]! & ~o0) | (s.driverFeatures[1]! & ~o1);
    return s.status & VIRTIO_STATUS.FEATURES_OK && extra !== 0
      ? "the driver features include bits this device does not offer"
      : null;
  },
});
type TransportState = StateOf<typeof TRANSPORT_STATE.fields>;

export class VirtioMmio implements MmioDevice, VirtioContext, QueueHost {
  readonly stateName: string;
  readonly stateVersion = TRANSPORT_STATE.version;
  readonly windowSize = VIRTIO_MMIO_WINDOW;
  readonly device: VirtioDevice | null;
  readonly mem: GuestMemory;

  private readonly irq: IrqLine;
  private readonly diag: ((message: string) => void) | undefined;
  private readonly queues: Virtqueue[];
  /** Offered features as two 32-bit words. */
  private readonly offered: [number, number];

  /** The transport's registers: everything TRANSPORT_STATE saves (the queues and the device save their own). */
  private r: TransportState = {
    status: 0,
    deviceFeaturesSel: 0,
    driverFeaturesSel: 0,
    driverFeatures: [0, 0],
    queueSel: 0,
    interruptStatus: 0,
    configGeneration: 0,
  };
  private level = false;
  /** Why the device last entered DEVICE_NEEDS_RESET (for diagnostics and tests). */
  lastError: string | null = null;

  constructor(opts: VirtioMmioOptions) {
    this.device = opts.device ?? null;
    this.mem = opts.mem;
    this.irq = opts.irq;
    this.diag = opts.diag;
    this.stateName = opts.name ?? "virtio-mmio";
    this.queues = (this.device?.queueSizes ?? []).map((n) => new Virtqueue(this, n));
    const offered: [number, number] = [0, 0];
    if (this.device) {
      const add = ([lo, hi]: [number, number]) => {
        offered[0] = (offered[0] | lo) >>> 0;
        offered[1] = (offered[1] | hi) >>> 0;
      };
      add([this.device.features >>> 0, 0]);
      add(bit(VIRTIO_F.VERSION_1));
      if (opts.eventIdx ?? true) add(bit(VIRTIO_F.EVENT_IDX));
      if (opts.indirect ?? true) add(bit(VIRTIO_F.INDIRECT_DESC));
    }
    this.offered = offered;
    this.device?.attach(this);
  }

  // --- VirtioContext ----------------------------------------------------------------------

  queue(i: number): Virtqueue {
    const q = this.queues[i];
    if (!q) throw new RangeError(`virtqueue ${i} does not exist`);
    return q;
  }

  hasFeature(n: number): boolean {
    if (!(this.r.status & VIRTIO_STATUS.FEATURES_OK)) return false;
    const [lo, hi] = bit(n);
    return ((this.r.driverFeatures[0]! & lo) | (this.r.driverFeatures[1]! & hi)) !== 0;
  }

  get live(): boolean {
    return (
      (this.r.status & (VIRTIO_STATUS.DRIVER_OK | VIRTIO_STATUS.DEVICE_NEEDS_RESET)) ===
      VIRTIO_STATUS.DRIVER_OK
    );
  }

  signal(i: number): void {
    if (this.queue(i).needsInterrupt()) this.raise(VIRTIO_INT.USED_BUFFER);
  }

  configChanged(): void {
    this.r.configGeneration = (this.r.configGeneration + 1) >>> 0;
    if (this.r.status & VIRTIO_STATUS.DRIVER_OK) this.raise(VIRTIO_INT.CONFIG_CHANGE);
  }

  fail(reason: string): void {
    this.lastError = reason;
    this.diag?.(`${this.stateName}: ${reason}; the device needs a reset`);
    if (this.r.status & VIRTIO_STATUS.DEVICE_NEEDS_RESET) return;
    this.r.status |= VIRTIO_STATUS.DEVICE_NEEDS_RESET;
    for (const q of this.queues) q.failed = true;
    if (this.r.status & VIRTIO_STATUS.DRIVER_OK) this.raise(VIRTIO_INT.CONFIG_CHANGE);
  }

  /** Whether the interrupt line is asserted. */
  get irqLevel(): boolean {
    return this.level;
  }

  /** The Status register (for the host side and tests). */
  get deviceStatus(): number {
    return this.r.status;
  }

  private raise(bits: number): void {
    this.r.interruptStatus |= bits;
    this.update();
  }

  private update(): void {
    const level = this.r.interruptStatus !== 0;
    if (level !== this.level) {
      this.level = level;
      this.irq.set(level);
    }
  }

  /** Device reset (§2.4): what writing 0 to Status does. */
  reset(): void {
    this.r.status = 0;
    this.r.deviceFeaturesSel = 0;
    this.r.driverFeaturesSel = 0;
    this.r.driverFeatures = [0, 0];
    this.r.queueSel = 0;
    this.r.interruptStatus = 0;
    this.lastError = null;
    for (const q of this.queues) q.reset();
    this.device?.reset();
    this.update();
  }

  // --- MMIO -------------------------------------------------------------------------------

  read(offset: number, size: number): number {
    if (offset >= VIRTIO_MMIO.CONFIG) {
      if (!this.device || size > 4) return 0;
      return this.device.configRead(offset - VIRTIO_MMIO.CONFIG, size) >>> 0;
    }
    // §4.2.2.2: the driver uses 32-bit accesses for the registers; anything else reads 0.
    if (size !== 4 || offset & 3) return 0;
    const q = this.queues[this.r.queueSel];
    switch (offset) {
      case VIRTIO_MMIO.MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
      case VIRTIO_MMIO.VERSION:
        return VIRTIO_MMIO_VERSION;
      case VIRTIO_MMIO.DEVICE_ID:
        return this.device?.deviceId ?? 0;
      case VIRTIO_MMIO.VENDOR_ID:
        return VIRTIO_VENDOR_QEMU;
      case VIRTIO_MMIO.DEVICE_FEATURES:
        return this.r.deviceFeaturesSel < 2 ? this.offered[this.r.deviceFeaturesSel]! : 0;
      case VIRTIO_MMIO.QUEUE_NUM_MAX:
        return q?.maxSize ?? 0;
      case VIRTIO_MMIO.QUEUE_READY:
        return q?.ready ? 1 : 0;
      case VIRTIO_MMIO.INTERRUPT_STATUS:
        return this.r.interruptStatus;
      case VIRTIO_MMIO.STATUS:
        return this.r.status;
      case VIRTIO_MMIO.QUEUE_DESC_LOW:
        return q ? q.desc % 0x1_0000_0000 : 0;
      case VIRTIO_MMIO.QUEUE_DESC_HIGH:
        return q ? Math.floor(q.desc / 0x1_0000_0000) : 0;
      case VIRTIO_MMIO.QUEUE_DRIVER_LOW:
        return q ? q.driver % 0x1_0000_0000 : 0;
      case VIRTIO_MMIO.QUEUE_DRIVER_HIGH:
        return q ? Math.floor(q.driver / 0x1_0000_0000) : 0;
      case VIRTIO_MMIO.QUEUE_DEVICE_LOW:
        return q ? q.device % 0x1_0000_0000 : 0;
      case VIRTIO_MMIO.QUEUE_DEVICE_HIGH:
        return q ? Math.floor(q.device / 0x1_0000_0000) : 0;
      // No shared memory regions: a region that does not exist has length -1 (§4.2.2).
      case VIRTIO_MMIO.SHM_LEN_LOW:
      case VIRTIO_MMIO.SHM_LEN_HIGH:
      case VIRTIO_MMIO.SHM_BASE_LOW:
      case VIRTIO_MMIO.SHM_BASE_HIGH:
        return 0xffffffff;
      case VIRTIO_MMIO.CONFIG_GENERATION:
        return this.r.configGeneration;
      default:
        return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    if (offset >= VIRTIO_MMIO.CONFIG) {
      if (this.device && size <= 4) {
        const v = size === 4 ? value >>> 0 : value & ((1 << (size * 8)) - 1);
        this.device.configWrite(offset - VIRTIO_MMIO.CONFIG, size, v);
      }
      return;
    }
    if (size !== 4 || offset & 3 || !this.device) return;
    value >>>= 0;
    const q = this.queues[this.r.queueSel];
    // §4.2.2.3: QueueNum and the ring addresses are not written while the queue is ready.
    const setup = q && !q.ready ? q : undefined;
    // A ring address at or above 2^53 lies outside any guest RAM: it is kept as the highest
    // one a number holds exactly (high half 0x1fffff), so that it stays outside RAM, keeps
    // its low half exact and saves as a guest physical address (vmstate words64).
    const lo = (a: number) => Math.floor(a / 0x1_0000_0000) * 0x1_0000_0000 + value;
    const hi = (a: number) => Math.min(value, 0x1f_ffff) * 0x1_0000_0000 + (a % 0x1_0000_0000);
    switch (offset) {
      case VIRTIO_MMIO.DEVICE_FEATURES_SEL:
        this.r.deviceFeaturesSel = value;
        break;
      case VIRTIO_MMIO.DRIVER_FEATURES:
        // Features are fixed once FEATURES_OK is set (§3.1.1).
        if (this.r.driverFeaturesSel < 2 && !(this.r.status & VIRTIO_STATUS.FEATURES_OK)) {
          this.r.driverFeatures[this.r.driverFeaturesSel] = value;
        }
        break;
      case VIRTIO_MMIO.DRIVER_FEATURES_SEL:
        this.r.driverFeaturesSel = value;
        break;
      case VIRTIO_MMIO.QUEUE_SEL:
        this.r.queueSel = value;
        break;
      case VIRTIO_MMIO.QUEUE_NUM:
        if (setup) setup.size = value;
        break;
      case VIRTIO_MMIO.QUEUE_READY:
        if (q) this.setQueueReady(q, value & 1);
        break;
      case VIRTIO_MMIO.QUEUE_NOTIFY:
        if (value < this.queues.length && this.live && this.queues[value]!.ready) this.device.notify(value);
        break;
      case VIRTIO_MMIO.INTERRUPT_ACK:
        this.r.interruptStatus &= ~value;
        this.update();
        break;
      case VIRTIO_MMIO.STATUS:
        this.setStatus(value & 0xff);
        break;
      case VIRTIO_MMIO.QUEUE_DESC_LOW:
        if (setup) setup.desc = lo(setup.desc);
        break;
      case VIRTIO_MMIO.QUEUE_DESC_HIGH:
        if (setup) setup.desc = hi(setup.desc);
        break;
      case VIRTIO_MMIO.QUEUE_DRIVER_LOW:
        if (setup) setup.driver = lo(setup.driver);
        break;
      case VIRTIO_MMIO.QUEUE_DRIVER_HIGH:
        if (setup) setup.driver = hi(setup.driver);
        break;
      case VIRTIO_MMIO.QUEUE_DEVICE_LOW:
        if (setup) setup.device = lo(setup.device);
        break;
      case VIRTIO_MMIO.QUEUE_DEVICE_HIGH:
        if (setup) setup.device = hi(setup.device);
        break;
      default:
        break;
    }
  }

  private setQueueReady(q: Virtqueue, ready: number): void {
    if (!ready) {
      q.ready = false;
      return;
    }
    if (q.ready) return;
    if (!q.sizeValid()) {
      this.fail(`QueueNum ${q.size} is not a power of 2 up to ${q.maxSize}`);
      return;
    }
    q.ready = true;
    q.failed = (this.r.status & VIRTIO_STATUS.DEVICE_NEEDS_RESET) !== 0;
  }

  private setStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.r.status;
    let next = value | (old & VIRTIO_STATUS.DEVICE_NEEDS_RESET);
    if (next & VIRTIO_STATUS.FEATURES_OK && !(old & VIRTIO_STATUS.FEATURES_OK)) {
      // §3.1.1 step 5-6: the device refuses a feature set it cannot run with by leaving
      // FEATURES_OK clear; a driver without VIRTIO_F_VERSION_1 is a legacy one (§6.1).
      const [dlo, dhi] = this.r.driverFeatures;
      const [vlo, vhi] = bit(VIRTIO_F.VERSION_1);
      const subset = (dlo & ~this.offered[0]) === 0 && (dhi & ~this.offered[1]) === 0;
      if (!subset || ((dlo & vlo) | (dhi & vhi)) === 0) next &= ~VIRTIO_STATUS.FEATURES_OK;
      else {
        for (const q of this.queues) {
          q.eventIdx = this.driverHas(VIRTIO_F.EVENT_IDX);
          q.indirect = this.driverHas(VIRTIO_F.INDIRECT_DESC);
        }
      }
    }
    // DRIVER_OK needs accepted features (§3.1.1 step 8 comes after step 6).
    if (!(next & VIRTIO_STATUS.FEATURES_OK)) next &= ~VIRTIO_STATUS.DRIVER_OK;
    this.r.status = next;
    if (next & VIRTIO_STATUS.DRIVER_OK && !(old & VIRTIO_STATUS.DRIVER_OK)) this.kick();
  }

  private driverHas(n: number): boolean {
    const [lo, hi] = bit(n);
    return ((this.r.driverFeatures[0]! & lo) | (this.r.driverFeatures[1]! & hi)) !== 0;
  }

  /** Lets the device look at every ready queue (at DRIVER_OK: buffers made available before it). */
  kick(): void {
    if (!this.device || !this.live) return;
    for (let i = 0; i < this.queues.length; i++) if (this.queues[i]!.ready) this.device.notify(i);
  }

  // --- state ------------------------------------------------------------------------------

  /** The transport's registers, then each queue's and the device's own state (with its version). */
  saveState(): StateValue {
    return {
      ...(saveState(TRANSPORT_STATE, this.r, this) as { [k: string]: StateValue }),
      queues: this.queues.map((q) => q.saveState()),
      ...(this.device ? { device: this.device.saveState(), deviceVersion: this.device.stateVersion } : {}),
    };
  }

  loadState(s: StateValue, version: number): void {
    const n = this.stateName;
    const r = loadState(TRANSPORT_STATE, n, s, version, this);
    const obj = s as { [k: string]: StateValue }; // an object: loadState checked it
    const qs = obj.queues;
    if (!Array.isArray(qs) || qs.length !== this.queues.length) {
      throw new StateError(n, `field 'queues' must list ${this.queues.length} queues`);
    }
    // Validate every queue on scratch copies before touching the live ones.
    const scratch = this.queues.map((q) => new Virtqueue(this, q.maxSize));
    scratch.forEach((q, i) => {
      q.loadState(`${n} queue ${i}`, qs[i]!);
    });
    if (this.device) {
      const dv = stateNumber(n, s, "deviceVersion", 1, this.device.stateVersion);
      const ds = obj.device;
      if (ds === undefined) throw new StateError(n, "field 'device' is missing");
      try {
        this.device.loadState(ds, dv);
      } catch (e) {
        // Named by the section first: "virtio-mmio@a003e00: virtio-blk: ...".
        if (e instanceof StateError) throw new StateError(n, e.message);
        throw e;
      }
    } else if (obj.device !== undefined || obj.deviceVersion !== undefined) {
      throw new StateError(n, "holds a device's state, but this slot is empty");
    }
    this.r = r;
    this.lastError = null;
    scratch.forEach((q, i) => {
      this.queues[i]!.loadState(`${n} queue ${i}`, q.saveState());
    });
    this.level = this.r.interruptStatus !== 0;
    this.irq.set(this.level);
  }

  /** Read by TRANSPORT_STATE: the slot's device ID and the features it offers. */
  get offeredFeatures(): readonly [number, number] {
    return this.offered;
  }
}

/** Reads a little-endian field of `size` bytes from a configuration space image (0 past its end). */
export function configBytesRead(config: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (config[offset + i] ?? 0);
  return v >>> 0;
}
