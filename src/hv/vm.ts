/**
 * A VM with KVM's shape: guest RAM (one memory slot), vCPUs (KVM_CREATE_VCPU), an
 * in-kernel irqchip (the GICv3 device, placed with KVM_DEV_ARM_VGIC_GRP_ADDR), the clock
 * that drives the arch timers, and MMIO devices the VMM registers on its bus.
 */
import type { PhysicalBus } from "../arch/arm64/cpu.ts";
import type { JitOptions } from "../arch/arm64/jit/jit.ts";
import { createVmMemory, MAX_VCPUS, RAM_OFFSET } from "../arch/arm64/state.ts";
import type { SysRegAccess } from "../arch/arm64/sysregs.ts";
import type { MmioDevice } from "../lib/mmio-device.ts";
import type { Stateful } from "../lib/state.ts";
import { MP_STATE } from "./mp-state.ts";
import { KvmError } from "./onereg.ts";
import { AFFINITY, PSCI_RET } from "./psci.ts";
import { DeterministicClock, HOST_CLOCK, type HostClock, RealtimeClock, type VmClock } from "./timer.ts";
import { Vcpu } from "./vcpu.ts";

/** What the VM needs of an in-kernel interrupt controller (implemented by GicV3). */
export interface Irqchip extends Stateful {
  distRead(offset: number, size: number): number;
  distWrite(offset: number, size: number, value: number): void;
  redistRead(cpu: number, offset: number, size: number): number;
  redistWrite(cpu: number, offset: number, size: number, value: number): void;
  setSpi(intid: number, level: boolean): void;
  setPpi(cpu: number, intid: number, level: boolean): void;
  /** The ICC_* system registers of one CPU interface, keyed by sysregKey(). */
  cpuInterface(cpu: number): Map<number, SysRegAccess>;
}

export interface IrqchipOptions {
  vcpus: number;
  mpidrs: number[];
  spis: number;
  onLineChange(cpu: number, irq: boolean, fiq: boolean): void;
}

export interface VmOptions {
  ramBase: number;
  ramSize: number;
  clock?: "deterministic" | "realtime";
  /** The PSCI conduit; the other one is UNDEFINED. */
  psciConduit?: "hvc" | "smc";
  /** HLT traps to the VMM (Arm semihosting). */
  semihosting?: boolean;
  /** A shared memory, so vCPUs may later run on worker threads. */
  shared?: boolean;
  /** Translate hot guest code to WebAssembly (`--accel jit`; options for diagnostics); default: interpret. */
  jit?: boolean | JitOptions;
  /** The host's clocks for real time (default: performance.now() and Date.now()). */
  hostClock?: HostClock;
}

export const PAGE_DIRTY = 1;
export const PAGE_WRITTEN = 2;

interface MmioRegion {
  readonly base: number;
  readonly end: number;
  readonly read: (offset: number, size: number) => number;
  readonly write: (offset: number, size: number, value: number) => void;
}

export class Vm {
  readonly memory: WebAssembly.Memory;
  /** vCPUs translate hot code (VmOptions.jit). */
  readonly jit: boolean | JitOptions;
  /** Where real time comes from (VmOptions.hostClock). */
  readonly hostClock: HostClock;
  readonly ramBase: number;
  readonly ramSize: number;
  /** Guest RAM as bytes (guest physical ramBase + i is ram[i]). */
  readonly ram: Uint8Array;
  readonly clock: VmClock;
  readonly psciConduit: "hvc" | "smc";
  readonly semihosting: boolean;
  readonly vcpus: Vcpu[] = [];
  irqchip: Irqchip | null = null;
  private regions: MmioRegion[] = [];
  readonly bus: PhysicalBus;

  constructor(opts: VmOptions) {
    if (opts.ramSize <= 0 || opts.ramSize % 4096 !== 0)
      throw new KvmError("EINVAL", "RAM size must be a positive multiple of 4 KiB");
    this.memory = createVmMemory(opts.ramSize, opts.shared ?? false);
    this.ramBase = opts.ramBase;
    this.ramSize = opts.ramSize;
    this.ram = new Uint8Array(this.memory.buffer, RAM_OFFSET, opts.ramSize);
    this.pageFlags = new Uint8Array(Math.ceil(opts.ramSize / 4096));
    this.hostClock = opts.hostClock ?? HOST_CLOCK;
    this.clock = opts.clock === "realtime" ? new RealtimeClock(this.hostClock) : new DeterministicClock();
    this.psciConduit = opts.psciConduit ?? "hvc";
    this.semihosting = opts.semihosting ?? false;
    this.jit = opts.jit ?? false;
    this.bus = {
      ramBase: this.ramBase,
      ramSize: this.ramSize,
      mmioRead: (pa, size) => {
        const r = this.findRegion(pa, size);
        if (r) return r.read(pa - r.base, size);
        this.onUnassigned?.("read", pa, size);
        return null;
      },
      mmioWrite: (pa, size, value) => {
        const r = this.findRegion(pa, size);
        if (!r) {
          this.onUnassigned?.("write", pa, size);
          return false;
        }
        r.write(pa - r.base, size, value);
        return true;
      },
    };
  }

  /**
   * Told of every access to a physical address no RAM or device answers (the vCPU takes a
   * synchronous external abort): QEMU's `-d guest_errors`. Null unless a log asked.
   */
  onUnassigned: ((kind: "read" | "write", pa: number, size: number) => void) | null = null;

  private findRegion(pa: number, size: number): MmioRegion | undefined {
    for (const r of this.regions) if (pa >= r.base && pa + size <= r.end) return r;
    return undefined;
  }

  private addRegion(region: MmioRegion): void {
    for (const r of this.regions) {
      if (region.base < r.end && r.base < region.end) {
        throw new KvmError(
          "EEXIST",
          `MMIO region 0x${region.base.toString(16)} overlaps 0x${r.base.toString(16)}`,
        );
      }
    }
    this.regions.push(region);
  }

  /** KVM_CREATE_VCPU. */
  createVcpu(id: number): Vcpu {
    if (!Number.isInteger(id) || id < 0 || id >= MAX_VCPUS) {
      throw new KvmError("EINVAL", `vCPU id ${id} is out of range (at most ${MAX_VCPUS} vCPUs)`);
    }
    if (this.vcpus[id]) throw new KvmError("EEXIST", `vCPU ${id} already exists`);
    if (this.irqchip) throw new KvmError("EBUSY", "vCPUs must be created before the irqchip is initialised");
    const v = new Vcpu(this, id);
    v.cpu.dirtyLog = this.pageFlags;
    // Every write the VMM makes to RAM goes through markDirty, so the translator may track
    // the guest's own stores to code pages instead of checking code on every entry.
    v.cpu.jit?.trackWrites();
    this.vcpus[id] = v;
    // One Inner Shareable domain: TLBI …IS on any vCPU reaches every vCPU's TLB.
    const domain = this.vcpus.filter((x) => x !== undefined).map((x) => x.cpu);
    for (const c of domain) c.innerShareable = domain;
    return v;
  }

  /**
   * Creates the in-kernel GICv3 for the vCPUs created so far (KVM_CREATE_DEVICE +
   * KVM_DEV_ARM_VGIC_CTRL_INIT) with its distributor and redistributor bases.
   */
  createIrqchip(
    factory: (opts: IrqchipOptions) => Irqchip,
    layout: { distBase: number; distSize: number; redistBase: number; redistStride: number; spis: number },
  ): Irqchip {
    if (this.irqchip) throw new KvmError("EEXIST", "the irqchip already exists");
    const n = this.vcpus.length;
    const chip = factory({
      vcpus: n,
      mpidrs: this.vcpus.map((v) => v.mpidr),
      spis: layout.spis,
      onLineChange: (cpu, irq, fiq) => this.vcpus[cpu]?.cpu.setIrqLine(irq, fiq),
    });
    this.irqchip = chip;
    this.addRegion({
      base: layout.distBase,
      end: layout.distBase + layout.distSize,
      read: (o, s) => chip.distRead(o, s),
      write: (o, s, v) => chip.distWrite(o, s, v),
    });
    const stride = layout.redistStride;
    this.addRegion({
      base: layout.redistBase,
      end: layout.redistBase + stride * n,
      read: (o, s) => chip.redistRead(Math.floor(o / stride), o % stride, s),
      write: (o, s, v) => chip.redistWrite(Math.floor(o / stride), o % stride, s, v),
    });
    for (const v of this.vcpus) v.cpu.extraSysregs = chip.cpuInterface(v.id);
    return chip;
  }

  /** Maps a device's registers at `base` (the VMM's devices; accesses are synchronous). */
  registerMmio(base: number, device: MmioDevice): void {
    this.addRegion({
      base,
      end: base + device.windowSize,
      read: (o, s) => device.read(o, s),
      write: (o, s, v) => device.write(o, s, v),
    });
  }

  // ---------------------------------------------------------------------------
  // Page tracking: every RAM page has a byte of flags the vCPUs set on writes.
  // PAGE_WRITTEN: ever written (a snapshot need only look at these pages; never-touched
  // pages of the lazily committed memory stay uncommitted). PAGE_DIRTY: written since the
  // last KVM_GET_DIRTY_LOG while dirty logging is on.

  /** Byte per page of RAM: PAGE_DIRTY | PAGE_WRITTEN bits. */
  readonly pageFlags: Uint8Array;
  private dirtyLogging = false;

  /** Starts logging guest writes to RAM (KVM_MEM_LOG_DIRTY_PAGES); every page starts clean. */
  enableDirtyLog(): void {
    const f = this.pageFlags;
    for (let i = 0; i < f.length; i++) f[i]! &= PAGE_WRITTEN;
    this.dirtyLogging = true;
    this.dropWriteTags();
  }

  disableDirtyLog(): void {
    this.dirtyLogging = false;
  }

  /**
   * KVM_GET_DIRTY_LOG: a bitmap (bit i = page i of RAM, little-endian 64-bit words as
   * KVM's) of the pages written since the last call, which it clears.
   */
  getDirtyLog(): Uint8Array {
    if (!this.dirtyLogging) throw new KvmError("EINVAL", "dirty logging is not enabled");
    const d = this.pageFlags;
    const bitmap = new Uint8Array(Math.ceil(d.length / 64) * 8);
    for (let i = 0; i < d.length; i++) {
      if ((d[i]! & PAGE_DIRTY) !== 0) {
        bitmap[i >>> 3]! |= 1 << (i & 7);
        d[i]! &= PAGE_WRITTEN;
      }
    }
    this.dropWriteTags();
    return bitmap;
  }

  /**
   * The TLBs let stores through to pages already marked dirty; once marks are cleared,
   * every vCPU's next store to each page must take the slow path and mark it again.
   */
  private dropWriteTags(): void {
    for (const v of this.vcpus) v?.cpu.dropWriteTags();
  }

  /**
   * Marks pages written by the VMM itself (device DMA, loaders, restores). Every write to
   * guest RAM that is not a vCPU's store must come here.
   */
  markDirty(pa: number, length: number): void {
    if (length <= 0) return;
    // Translations made from those pages are gone (jit/jit.ts write tracking).
    this.vcpus
      .find((v) => v !== undefined)
      ?.cpu.jit?.codeWrittenRange(RAM_OFFSET + (pa - this.ramBase), length);
    const first = Math.floor((pa - this.ramBase) / 4096);
    const last = Math.floor((pa - this.ramBase + length - 1) / 4096);
    for (let p = Math.max(0, first); p <= last && p < this.pageFlags.length; p++)
      this.pageFlags[p] = PAGE_DIRTY | PAGE_WRITTEN;
  }

  /** Indices of the RAM pages ever written (by the guest or the VMM). */
  writtenPages(): number[] {
    const out: number[] = [];
    const f = this.pageFlags;
    for (let i = 0; i < f.length; i++) if ((f[i]! & PAGE_WRITTEN) !== 0) out.push(i);
    return out;
  }

  /** Copies bytes into guest RAM at guest physical address `pa`. */
  writeRam(pa: number, bytes: Uint8Array): void {
    const off = pa - this.ramBase;
    if (off < 0 || off + bytes.length > this.ramSize) {
      throw new RangeError(`0x${pa.toString(16)}+${bytes.length} is outside guest RAM`);
    }
    this.ram.set(bytes, off);
    this.markDirty(pa, bytes.length);
  }

  // ---------------------------------------------------------------------------
  // PSCI operations that span vCPUs

  private byMpidr(mpidr: bigint): Vcpu | undefined {
    const aff = Number(mpidr & 0xff00ffffffn);
    return this.vcpus.find((v) => (v.mpidr & 0xffffff) === aff);
  }

  private inRam(addr: bigint): boolean {
    return addr >= BigInt(this.ramBase) && addr < BigInt(this.ramBase + this.ramSize) && (addr & 3n) === 0n;
  }

  /** CPU_ON: atomic on the target's MP-state word, so racing callers get one SUCCESS. */
  psciCpuOn(mpidr: bigint, entry: bigint, context: bigint): number {
    const target = this.byMpidr(mpidr);
    if (!target) return PSCI_RET.INVALID_PARAMETERS;
    if (!this.inRam(entry)) return PSCI_RET.INVALID_ADDRESS;
    if (!target.claimForCpuOn()) return target.onPending ? PSCI_RET.ON_PENDING : PSCI_RET.ALREADY_ON;
    target.resetToEntry(entry, context, MP_STATE.RUNNABLE);
    return PSCI_RET.SUCCESS;
  }

  /** AFFINITY_INFO (PSCI 1.0 §5.1.8), affinity levels 0-3 as KVM supports them. */
  psciAffinityInfo(affinity: bigint, level: bigint): number {
    if (level > 3n) return PSCI_RET.INVALID_PARAMETERS;
    const shifts = [0n, 8n, 16n, 32n];
    let mask = 0xff00ffffffn;
    for (let l = 0; l < Number(level); l++) mask &= ~(0xffn << shifts[l]!);
    const want = affinity & mask;
    let found = false;
    for (const v of this.vcpus) {
      if ((BigInt(v.mpidr) & mask) !== want) continue;
      found = true;
      if (v.affinityState !== AFFINITY.OFF) return v.affinityState;
    }
    return found ? AFFINITY.OFF : PSCI_RET.INVALID_PARAMETERS;
  }

  /**
   * SYSTEM_SUSPEND (PSCI 1.0 §5.1.19): only the last running vCPU may suspend the system;
   * it then waits SUSPENDED and resumes at `entry` with `context` when an interrupt arrives.
   */
  psciSystemSuspend(caller: Vcpu, entry: bigint, context: bigint): number {
    if (this.vcpus.some((v) => v !== caller && v.getMpState() !== MP_STATE.STOPPED)) return PSCI_RET.DENIED;
    if (!this.inRam(entry)) return PSCI_RET.INVALID_ADDRESS;
    // The registers already hold the resume state (entry, context ID); the vCPU waits
    // SUSPENDED, its timers and the GIC still running, until an interrupt wakes it.
    caller.resetToEntry(entry, context, MP_STATE.SUSPENDED, true);
    return PSCI_RET.SUCCESS;
  }
}
