/**
 * A vCPU with KVM's interface (Documentation/virt/kvm/api.rst): KVM_ARM_VCPU_INIT,
 * KVM_RUN, KVM_GET_REG_LIST, KVM_GET/SET_ONE_REG, KVM_GET/SET_MP_STATE. PSCI, WFI/WFE and
 * the arch timer are handled here, as KVM handles them in the kernel.
 */
import { Cpu } from "../arch/arm64/index.ts";
import { I, PSTATE, RAM_OFFSET } from "../arch/arm64/state.ts";
import { SYSREGS, type SysReg } from "../arch/arm64/sysregs.ts";
import { ARM64_MP_STATES, MP_ON_PENDING, MP_STATE, MP_STATE_NAMES } from "./mp-state.ts";
import {
  CORE_BY_ID,
  CORE_REGS,
  hexId,
  KVM_REG_ARM_COPROC_MASK,
  KVM_REG_ARM_CORE,
  KVM_REG_ARM_PSCI_VERSION,
  KVM_REG_ARM_PTIMER_CNT,
  KVM_REG_ARM_PTIMER_CTL,
  KVM_REG_ARM_PTIMER_CVAL,
  KVM_REG_ARM_TIMER_CNT,
  KVM_REG_ARM_TIMER_CTL,
  KVM_REG_ARM_TIMER_CVAL,
  KVM_REG_ARM64,
  KVM_REG_SIZE_U64,
  KVM_REG_SIZE_U128,
  KvmError,
  regSize,
  sysReg,
} from "./onereg.ts";
import {
  AFFINITY,
  MIGRATE_INFO_NOT_REQUIRED,
  PSCI_FN,
  PSCI_IMPLEMENTED,
  PSCI_RET,
  PSCI_VERSION_0_2,
  PSCI_VERSION_1_0,
  SMCCC_VERSION_1_1,
} from "./psci.ts";
import { ArchTimer, DeterministicClock } from "./timer.ts";
import type { Vm } from "./vm.ts";

/** The PMU overflow interrupt's INTID (PPI 7), as QEMU's virt and KVM use. */
export const PMU_PPI = 23;

/** What KVM_RUN returns to the VMM. */
export type VcpuExit =
  /** The time slice ended (KVM_RUN interrupted by a signal, in KVM terms). */
  | { kind: "slice" }
  /** Nothing to run: powered off, suspended, or waiting in WFI/WFE for a wake-up. */
  | { kind: "idle" }
  | { kind: "system-event"; type: "shutdown" | "reset" }
  /** HLT #imm with HLT trapping enabled (semihosting), PC past the HLT. */
  | { kind: "debug"; imm: number }
  | { kind: "internal-error"; message: string }
  /** The guest re-takes one exception at its vector forever (a guest bug, not ours). */
  | { kind: "guest-stuck"; message: string };

const SLICE: VcpuExit = { kind: "slice" };
const IDLE: VcpuExit = { kind: "idle" };
const M64 = (1n << 64n) - 1n;
/** How often (instructions) timers are re-evaluated in real-time mode. */
const REALTIME_CHUNK = 20_000;

/** Saved system registers, in the order KVM_GET_REG_LIST reports them. */
const SAVED_SYSREGS: readonly SysReg[] = SYSREGS.filter((s) => s.saved && s.slot >= 0);
const SYSREG_BY_ID: ReadonlyMap<bigint, SysReg> = new Map(
  SAVED_SYSREGS.map((s) => [
    sysReg(s.key >> 14, (s.key >> 11) & 7, (s.key >> 7) & 15, (s.key >> 3) & 15, s.key & 7),
    s,
  ]),
);
const TIMER_IDS: readonly bigint[] = [
  KVM_REG_ARM_TIMER_CTL,
  KVM_REG_ARM_TIMER_CNT,
  KVM_REG_ARM_TIMER_CVAL,
  KVM_REG_ARM_PTIMER_CTL,
  KVM_REG_ARM_PTIMER_CNT,
  KVM_REG_ARM_PTIMER_CVAL,
];

/**
 * armbox's own registers, in a coprocessor group KVM does not use (0x0fff): the WFE
 * wake-up state, which a deterministic restore needs to repeat a run exactly. KVM has no
 * such registers because every KVM_RUN enters the guest with an ERET, which clears the
 * local monitor and sets the event register anyway.
 * WAKE: bit 0 the event register, bit 1 exclusive monitor valid, bits 15:8 its size in
 * bytes, bit 16 event-stream wake-up armed. EXCL_ADDR, EXCL_DATA (128 bits): the monitor's
 * address and the value its load-exclusive read. STREAM_AT: the virtual count at which an
 * armed event-stream wake-up is due. EXCL_PA: the guest physical address the monitor tags
 * (I.EXCL_HOST, a host offset, as a guest address; all ones: not RAM).
 */
const ARMBOX_REG = KVM_REG_ARM64 | (0x0fffn << 16n);
export const ARMBOX_REG_WAKE = ARMBOX_REG | KVM_REG_SIZE_U64 | 0n;
export const ARMBOX_REG_EXCL_ADDR = ARMBOX_REG | KVM_REG_SIZE_U64 | 1n;
export const ARMBOX_REG_EXCL_DATA = ARMBOX_REG | KVM_REG_SIZE_U128 | 2n;
export const ARMBOX_REG_STREAM_AT = ARMBOX_REG | KVM_REG_SIZE_U64 | 3n;
export const ARMBOX_REG_EXCL_PA = ARMBOX_REG | KVM_REG_SIZE_U64 | 4n;
/** I.EXCL_HOST when the monitor's location is not RAM. */
const NOT_RAM = 0xffffffff;
const WAKE_IDS: readonly bigint[] = [
  ARMBOX_REG_WAKE,
  ARMBOX_REG_EXCL_ADDR,
  ARMBOX_REG_EXCL_DATA,
  ARMBOX_REG_STREAM_AT,
  ARMBOX_REG_EXCL_PA,
];
const EXCL_SIZES = [1, 2, 4, 8, 16];

/**
 * The WFE wake-up sources beside interrupts (Arm ARM D1.6.1, "The Event Register"), each
 * on by default. Tests switch one off to prove that a guest notices when it is missing.
 */
export interface WakeSources {
  /** SEV executed by another vCPU. */
  sev: boolean;
  /** The clearing of this vCPU's global monitor by another agent's store. */
  monitor: boolean;
  /** The generic timer's event stream (CNTKCTL_EL1.EVNTEN). */
  stream: boolean;
}

export class Vcpu {
  readonly cpu: Cpu;
  readonly timer: ArchTimer;
  /** The MP-state word in shared memory (compare-exchanged by CPU_ON). */
  private readonly mpWord: Int32Array;
  /** Waiting in WFI or WFE: not an MP state (a vCPU in WFI is RUNNABLE), but a wait. */
  waiting: "wfi" | "wfe" | null = null;
  private initialized = false;
  /** PSCI version this vCPU reports (KVM_REG_ARM_PSCI_VERSION). */
  psciVersion = PSCI_VERSION_1_0;
  /** Called with (old, new) whenever the MP state changes (for tracing and tests). */
  onMpStateChange: ((vcpu: Vcpu, from: number, to: number) => void) | null = null;
  /** Which WFE wake-up sources reach this vCPU (all; tests turn one off). */
  readonly wakeSources: WakeSources = { sev: true, monitor: true, stream: true };
  /** Guest RAM, for comparing the exclusive monitor's value with memory. */
  private readonly ramView: DataView;

  constructor(
    readonly vm: Vm,
    readonly id: number,
  ) {
    // One code cache for the VM's vCPUs (jit/jit.ts): they take turns, and a translation
    // runs on any vCPU's state block; each vCPU would otherwise translate the same kernel.
    const shared = vm.vcpus.find((v) => v?.cpu.jit)?.cpu.jit ?? null;
    this.cpu = new Cpu({
      memory: vm.memory,
      index: id,
      bus: vm.bus,
      jit: vm.jit === false ? false : (shared ?? vm.jit),
      // Their decoded code too (code-cache.ts).
      code: vm.vcpus.find((v) => v)?.cpu.code,
    });
    this.timer = new ArchTimer(() => this.cpu, vm.clock, {
      setPpi: (intid, level) => vm.irqchip?.setPpi(id, intid, level),
    });
    this.cpu.timer = this.timer;
    // The PMU's overflow interrupt: a PPI, KVM's default INTID 23 (KVM_ARM_VCPU_PMU_V3_IRQ).
    this.cpu.onPmuIrq = (_c, level) => vm.irqchip?.setPpi(id, PMU_PPI, level);
    // SEV signals an event to every PE of the VM (Arm ARM C6.2, SEV); hint() has already
    // set the sender's own event register.
    this.cpu.onSendEvent = () => {
      for (const v of vm.vcpus) if (v && v !== this) v.sendEvent();
    };
    this.mpWord = new Int32Array(vm.memory.buffer, this.cpu.r.byteOffset + I.MP_STATE * 4, 1);
    this.mpWord[0] = MP_STATE.STOPPED;
    this.ramView = new DataView(vm.ram.buffer, vm.ram.byteOffset, vm.ram.byteLength);
  }

  /** MPIDR_EL1 value of this vCPU (bit 31 RES1). */
  get mpidr(): number {
    return (0x8000_0000 | this.cpu.mpidrAffinity()) >>> 0;
  }

  /**
   * KVM_ARM_VCPU_INIT: resets the vCPU to its architectural reset state (EL1h, DAIF
   * masked, MMU off) and powers it on, or leaves it STOPPED with `powerOff`
   * (KVM_ARM_VCPU_POWER_OFF), as QEMU does for secondaries.
   */
  init(opts: { powerOff?: boolean } = {}): void {
    this.resetRegisters();
    this.initialized = true;
    this.setMp(opts.powerOff ? MP_STATE.STOPPED : MP_STATE.RUNNABLE);
  }

  private resetRegisters(resetTimers = true): void {
    this.cpu.reset();
    if (resetTimers) {
      this.timer.virt.ctl = 0;
      this.timer.phys.ctl = 0;
      this.timer.update();
    }
    this.waiting = null;
    this.timer.streamArmed = false;
    this.timer.streamAt = 0n;
    this.cpu.trapHlt = this.vm.semihosting;
  }

  private setMp(state: number): void {
    const word = this.mpWord[0]!;
    const from = word === MP_ON_PENDING ? MP_STATE.STOPPED : word;
    this.mpWord[0] = state;
    if (from !== state) this.onMpStateChange?.(this, from, state);
  }

  // ---------------------------------------------------------------------------
  // KVM_GET/SET_MP_STATE

  getMpState(): number {
    const s = this.mpWord[0]!;
    return s === MP_ON_PENDING ? MP_STATE.RUNNABLE : s;
  }

  /** KVM_SET_MP_STATE: arm64 accepts RUNNABLE, STOPPED and SUSPENDED only (else EINVAL). */
  setMpState(state: number): void {
    if (!ARM64_MP_STATES.includes(state)) {
      throw new KvmError(
        "EINVAL",
        `MP state ${state} (${MP_STATE_NAMES[state] ?? "unknown"}) is not valid on arm64`,
      );
    }
    if (!this.initialized)
      throw new KvmError("ENOEXEC", `vCPU ${this.id} has not been initialised (KVM_ARM_VCPU_INIT)`);
    this.waiting = null;
    this.setMp(state);
  }

  // ---------------------------------------------------------------------------
  // KVM_GET_REG_LIST / KVM_GET_ONE_REG / KVM_SET_ONE_REG

  getRegList(): bigint[] {
    return [
      ...CORE_REGS.map((r) => r.id),
      KVM_REG_ARM_PSCI_VERSION,
      ...TIMER_IDS,
      ...SYSREG_BY_ID.keys(),
      ...WAKE_IDS,
    ];
  }

  getOneReg(id: bigint): bigint {
    const core = this.coreReg(id);
    if (core) {
      const dv = this.cpu.dvState;
      if (core.bytes === 4) return BigInt(dv.getUint32(core.offset, true));
      if (core.bytes === 8) return dv.getBigUint64(core.offset, true);
      return dv.getBigUint64(core.offset, true) | (dv.getBigUint64(core.offset + 8, true) << 64n);
    }
    if (id === KVM_REG_ARM_PSCI_VERSION) return BigInt(this.psciVersion);
    const t = this.timer;
    switch (id) {
      case KVM_REG_ARM_TIMER_CTL:
        return t.readReg(this.cpu, true, "CTL");
      case KVM_REG_ARM_TIMER_CVAL:
        return t.virt.cval;
      case KVM_REG_ARM_TIMER_CNT:
        return t.virtualCount();
      case KVM_REG_ARM_PTIMER_CTL:
        return t.readReg(this.cpu, false, "CTL");
      case KVM_REG_ARM_PTIMER_CVAL:
        return t.phys.cval;
      case KVM_REG_ARM_PTIMER_CNT:
        return t.physicalCount();
    }
    const wake = this.getWakeReg(id);
    if (wake !== null) return wake;
    const s = this.sysreg(id);
    const i = I.SYSREGS + s.slot * 2;
    return (BigInt(this.cpu.r[i + 1]!) << 32n) | BigInt(this.cpu.r[i]!);
  }

  setOneReg(id: bigint, value: bigint): void {
    const bytes = regSize(id);
    if (value < 0n || value >= 1n << BigInt(bytes * 8)) {
      throw new KvmError("EINVAL", `value does not fit the ${bytes}-byte register ${hexId(id)}`);
    }
    const core = this.coreReg(id);
    if (core) {
      if (core.name === "PSTATE") {
        // KVM refuses PSTATE with a mode this vCPU cannot be in (api.rst: set_core_reg).
        const m = Number(value & 0x1fn);
        if ((m !== 0 && m !== 4 && m !== 5) || value >> 32n !== 0n) {
          throw new KvmError("EINVAL", `PSTATE ${value.toString(16)} has an invalid mode`);
        }
      }
      const dv = this.cpu.dvState;
      if (core.bytes === 4) dv.setUint32(core.offset, Number(value), true);
      else if (core.bytes === 8) dv.setBigUint64(core.offset, value, true);
      else {
        dv.setBigUint64(core.offset, value & M64, true);
        dv.setBigUint64(core.offset + 8, value >> 64n, true);
      }
      if (core.name === "PSTATE") this.cpu.pstateChanged();
      return;
    }
    if (id === KVM_REG_ARM_PSCI_VERSION) {
      if (value !== BigInt(PSCI_VERSION_1_0) && value !== BigInt(PSCI_VERSION_0_2)) {
        throw new KvmError("EINVAL", `PSCI version 0x${value.toString(16)} is not supported`);
      }
      this.psciVersion = Number(value);
      return;
    }
    const t = this.timer;
    switch (id) {
      case KVM_REG_ARM_TIMER_CTL:
        t.virt.ctl = Number(value & 3n);
        t.update();
        return;
      case KVM_REG_ARM_TIMER_CVAL:
        t.virt.cval = value;
        t.update();
        return;
      case KVM_REG_ARM_TIMER_CNT:
        // The virtual counter continues from `value`: CNTVOFF absorbs the difference.
        t.cntvoff = (t.clockCount() - value) & M64;
        t.update();
        return;
      case KVM_REG_ARM_PTIMER_CTL:
        t.phys.ctl = Number(value & 3n);
        t.update();
        return;
      case KVM_REG_ARM_PTIMER_CVAL:
        t.phys.cval = value;
        t.update();
        return;
      case KVM_REG_ARM_PTIMER_CNT:
        t.cntpoff = (t.clockCount() - value) & M64;
        t.update();
        return;
    }
    if (this.setWakeReg(id, value)) return;
    const s = this.sysreg(id);
    const i = I.SYSREGS + s.slot * 2;
    const lo = Number(value & 0xffffffffn);
    const hi = Number(value >> 32n);
    if (s.readOnly) {
      if (this.cpu.r[i] !== lo || this.cpu.r[i + 1] !== hi) {
        throw new KvmError("EINVAL", `${s.name} is read-only and holds a different value`);
      }
      return;
    }
    this.cpu.r[i] = lo;
    this.cpu.r[i + 1] = hi;
    this.cpu.sysregWritten(s);
  }

  private u64At(i: number): bigint {
    return (BigInt(this.cpu.r[i + 1]!) << 32n) | BigInt(this.cpu.r[i]!);
  }
  private setU64At(i: number, v: bigint): void {
    this.cpu.r[i] = Number(v & 0xffffffffn);
    this.cpu.r[i + 1] = Number((v >> 32n) & 0xffffffffn);
  }

  /** armbox's wake-up registers (ARMBOX_REG_*), or null for any other ID. */
  private getWakeReg(id: bigint): bigint | null {
    const r = this.cpu.r;
    switch (id) {
      case ARMBOX_REG_WAKE:
        return BigInt(
          (r[I.EVENT] !== 0 ? 1 : 0) |
            (r[I.EXCL_VALID] !== 0 ? 2 : 0) |
            ((r[I.EXCL_SIZE]! & 0xff) << 8) |
            (this.timer.streamArmed ? 1 << 16 : 0),
        );
      case ARMBOX_REG_EXCL_ADDR:
        return this.u64At(I.EXCL_ADDR);
      case ARMBOX_REG_EXCL_DATA:
        return this.u64At(I.EXCL_DATA) | (this.u64At(I.EXCL_DATA + 2) << 64n);
      case ARMBOX_REG_STREAM_AT:
        return this.timer.streamAt;
      case ARMBOX_REG_EXCL_PA: {
        // Any offset outside RAM (also the stale one of a monitor never set) reads as "not RAM".
        const o = r[I.EXCL_HOST]! - RAM_OFFSET;
        return o < 0 || o >= this.vm.ramSize ? M64 : BigInt(this.vm.ramBase + o);
      }
    }
    return null;
  }

  private setWakeReg(id: bigint, value: bigint): boolean {
    const r = this.cpu.r;
    switch (id) {
      case ARMBOX_REG_WAKE: {
        const v = Number(value & 0xffffffffn);
        const size = (v >>> 8) & 0xff;
        if (value >> 17n !== 0n || (v & 0xfc) !== 0 || (size !== 0 && !EXCL_SIZES.includes(size))) {
          throw new KvmError("EINVAL", `wake-up state 0x${value.toString(16)} is not valid`);
        }
        r[I.EVENT] = v & 1;
        r[I.EXCL_VALID] = (v >>> 1) & 1;
        r[I.EXCL_SIZE] = size;
        this.timer.streamArmed = (v & (1 << 16)) !== 0;
        return true;
      }
      case ARMBOX_REG_EXCL_ADDR:
        this.setU64At(I.EXCL_ADDR, value);
        return true;
      case ARMBOX_REG_EXCL_DATA:
        this.setU64At(I.EXCL_DATA, value & M64);
        this.setU64At(I.EXCL_DATA + 2, value >> 64n);
        return true;
      case ARMBOX_REG_STREAM_AT:
        this.timer.streamAt = value;
        return true;
      case ARMBOX_REG_EXCL_PA: {
        const o = value - BigInt(this.vm.ramBase);
        if (value !== M64 && (o < 0n || o >= BigInt(this.vm.ramSize))) {
          throw new KvmError("EINVAL", `exclusive monitor address 0x${value.toString(16)} is not RAM`);
        }
        r[I.EXCL_HOST] = value === M64 ? NOT_RAM : RAM_OFFSET + Number(o);
        return true;
      }
    }
    return false;
  }

  private coreReg(id: bigint) {
    if ((id & KVM_REG_ARM_COPROC_MASK) !== KVM_REG_ARM_CORE) return undefined;
    const core = CORE_BY_ID.get(id);
    if (core) return core;
    // A core offset with the wrong size is EINVAL; an offset that is no field is ENOENT.
    const off = Number(id & 0xffffn) * 4;
    if (CORE_REGS.some((r) => r.offset === off)) {
      throw new KvmError("EINVAL", `core register ${hexId(id)} has the wrong size`);
    }
    throw new KvmError("ENOENT", `no core register at offset ${off} (${hexId(id)})`);
  }

  private sysreg(id: bigint): SysReg {
    const s = SYSREG_BY_ID.get(id);
    if (!s) {
      const sizeMismatch = SYSREG_BY_ID.has((id & ~0x00f0_0000_0000_0000n) | 0x0030_0000_0000_0000n);
      throw new KvmError(sizeMismatch ? "EINVAL" : "ENOENT", `no register ${hexId(id)}`);
    }
    return s;
  }

  // ---------------------------------------------------------------------------
  // KVM_RUN

  /** True if an interrupt would wake a WFI now (the GIC signals it, PSTATE masks ignored). */
  private interruptSignalled(): boolean {
    return this.cpu.irqLine || this.cpu.fiqLine;
  }

  /** Whether run() would execute instructions now. */
  get canRun(): boolean {
    const mp = this.mpWord[0]!;
    if (mp === MP_STATE.STOPPED) return false;
    if (mp === MP_STATE.SUSPENDED || this.waiting === "wfi") return this.interruptSignalled();
    if (this.waiting === "wfe") return this.wfeWakes() || this.streamDue();
    return true;
  }

  // ---------------------------------------------------------------------------
  // WFE wake-up events (Arm ARM D1.6.1). The event register is set by SEV on any PE, SEVL,
  // an exception return, the clearing of the PE's global monitor, and the generic timer's
  // event stream; a WFE that finds it set clears it and completes, otherwise it waits for
  // one of these or an interrupt. Spurious wake-ups are allowed: software re-checks.

  /** Another vCPU's SEV: sets the event register (and so wakes a WFE wait). */
  sendEvent(): void {
    if (this.wakeSources.sev) Atomics.store(this.cpu.r, I.EVENT, 1);
  }

  /** A WFE ends now: an interrupt is signalled, the event register is set, or the monitor was cleared. */
  private wfeWakes(): boolean {
    return this.interruptSignalled() || this.cpu.r[I.EVENT] !== 0 || this.monitorCleared();
  }

  private streamDue(): boolean {
    return this.wakeSources.stream && this.timer.ticksToStreamWake() === 0n;
  }

  /**
   * Whether the global monitor of this vCPU has been cleared since its load-exclusive
   * (Arm ARM B2.9: "the clearing of the global monitor for the PE generates an event").
   * The monitor is value-based (see load-store-atomic.ts): a store-exclusive succeeds iff
   * memory still holds the value the load-exclusive read, so the reservation counts as
   * cleared as soon as memory at its granule differs from that value.
   */
  private monitorCleared(): boolean {
    const r = this.cpu.r;
    if (r[I.EXCL_VALID] === 0 || !this.wakeSources.monitor) return false;
    const size = r[I.EXCL_SIZE]!;
    // The monitor tags the location (the host offset the load-exclusive's translation
    // gave, load-store-atomic.ts), so this holds with the MMU on, through any alias.
    const h = r[I.EXCL_HOST]!;
    const o = h === NOT_RAM ? -1 : h - RAM_OFFSET;
    // Outside RAM no store of ours can reach the granule (MMIO): nothing to watch.
    if (o < 0 || o + size > this.vm.ramSize) return false;
    const m = this.ramView;
    const d = I.EXCL_DATA;
    switch (size) {
      case 1:
        return m.getUint8(o) !== (r[d]! & 0xff);
      case 2:
        return m.getUint16(o, true) !== (r[d]! & 0xffff);
      case 4:
        return m.getUint32(o, true) !== r[d];
      case 8:
        return m.getUint32(o, true) !== r[d] || m.getUint32(o + 4, true) !== r[d + 1];
      default:
        for (let k = 0; k < 4; k++) if (m.getUint32(o + 4 * k, true) !== r[d + k]) return true;
        return false;
    }
  }

  /**
   * Latches the wake-up of a vCPU waiting in WFE whose monitor another vCPU's stores have
   * cleared: its event register is set and its monitor closed, at that moment, so that a
   * later store of the old value (ABA) does not undo the event. The scheduler calls this
   * for every vCPU whenever a slice ends.
   */
  noteMonitorEvent(): void {
    if (this.waiting !== "wfe" || !this.monitorCleared()) return;
    this.cpu.r[I.EXCL_VALID] = 0;
    Atomics.store(this.cpu.r, I.EVENT, 1);
  }

  /** Ticks until the earliest wake-up by time: a timer deadline or, in WFE, the event stream. */
  ticksToWake(): bigint | null {
    const t = this.timer.ticksToDeadline();
    if (this.waiting !== "wfe" || !this.wakeSources.stream) return t;
    const s = this.timer.ticksToStreamWake();
    return s !== null && (t === null || s < t) ? s : t;
  }

  /** A WFE completes (woken, or the event register was set): consumes the event. */
  private completeWfe(): void {
    const r = this.cpu.r;
    if (this.monitorCleared()) r[I.EXCL_VALID] = 0;
    r[I.EVENT] = 0;
    this.timer.streamArmed = false;
  }

  /**
   * KVM_RUN for one time slice of at most `quantum` instructions. Returns `idle` when the
   * vCPU cannot run (STOPPED, SUSPENDED or waiting with no wake-up event).
   */
  run(quantum: number): VcpuExit {
    const clock = this.vm.clock;
    this.timer.update();
    if (!this.initialized)
      return { kind: "internal-error", message: `vCPU ${this.id} was never initialised` };
    if (!this.canRun) return IDLE;
    if (this.mpWord[0] === MP_STATE.SUSPENDED) this.setMp(MP_STATE.RUNNABLE);
    if (this.waiting === "wfe") this.completeWfe();
    this.waiting = null;
    const deterministic = clock instanceof DeterministicClock;
    let executed = 0;
    while (executed < quantum) {
      let budget = quantum - executed;
      if (deterministic) {
        const d = this.timer.ticksToDeadline();
        if (d !== null && d < BigInt(budget)) budget = Math.max(1, Number(d));
      } else budget = Math.min(budget, REALTIME_CHUNK);
      const exit = this.cpu.run(budget);
      executed += this.cpu.lastRun;
      this.timer.update();
      switch (exit.kind) {
        case "budget":
          continue;
        case "hvc":
        case "smc": {
          if (exit.kind !== this.vm.psciConduit) {
            this.injectUndef();
            continue;
          }
          const r = this.smccc();
          if (r) return r;
          continue;
        }
        case "wfi":
          if (this.interruptSignalled()) continue; // wakes at once
          this.waiting = "wfi";
          return IDLE;
        case "wfe":
          // The CPU found the event register clear; an event it cannot see (a monitor
          // cleared by another vCPU's store since the load-exclusive) still ends the WFE.
          if (this.wfeWakes()) {
            this.completeWfe();
            continue;
          }
          this.waiting = "wfe";
          if (this.wakeSources.stream) this.timer.armStreamWake();
          return IDLE;
        case "hlt":
          return { kind: "debug", imm: exit.imm };
        case "internal-error":
          return exit;
        case "exception-loop":
          return { kind: "guest-stuck", message: exit.message };
        case "exception":
          return {
            kind: "internal-error",
            message: `unexpected user-mode exception exit (EC 0x${exit.ec.toString(16)})`,
          };
      }
    }
    return SLICE;
  }

  /** The conduit that the board did not choose is UNDEFINED, as with no EL2/EL3 firmware. */
  private injectUndef(): void {
    // The HVC/SMC has retired with PC past it; the UNDEF is reported at the instruction.
    const lo = (this.cpu.r[I.PC]! - 4) >>> 0;
    this.cpu.r[I.PC] = lo;
    if (lo === 0xfffffffc) this.cpu.r[I.PC + 1] = (this.cpu.r[I.PC + 1]! - 1) >>> 0;
    this.cpu.takeUndefinedAtPc();
  }

  // ---------------------------------------------------------------------------
  // PSCI / SMCCC (the function ID is in W0, arguments in X1-X3, the result in X0)

  private setX0(v: number): void {
    this.cpu.setX(0, BigInt.asUintN(64, BigInt(v)));
  }

  private smccc(): VcpuExit | null {
    const c = this.cpu;
    const fn = Number(c.getX(0) & 0xffffffffn);
    const is32 = (fn & 0x4000_0000) === 0;
    const arg = (n: number) => (is32 ? c.getX(n) & 0xffffffffn : c.getX(n));
    const v10 = this.psciVersion === PSCI_VERSION_1_0;
    switch (fn) {
      case PSCI_FN.PSCI_VERSION:
        this.setX0(this.psciVersion);
        return null;
      case PSCI_FN.CPU_SUSPEND_32:
      case PSCI_FN.CPU_SUSPEND_64:
        // Both standby and power-down states are emulated as WFI (as KVM does): the call
        // returns SUCCESS when the vCPU is woken.
        this.setX0(PSCI_RET.SUCCESS);
        if (!this.interruptSignalled()) {
          this.waiting = "wfi";
          return IDLE;
        }
        return null;
      case PSCI_FN.CPU_OFF:
        this.waiting = null;
        this.setMp(MP_STATE.STOPPED);
        return IDLE;
      case PSCI_FN.CPU_ON_32:
      case PSCI_FN.CPU_ON_64:
        this.setX0(this.vm.psciCpuOn(arg(1), arg(2), arg(3)));
        return null;
      case PSCI_FN.AFFINITY_INFO_32:
      case PSCI_FN.AFFINITY_INFO_64:
        this.setX0(this.vm.psciAffinityInfo(arg(1), arg(2)));
        return null;
      case PSCI_FN.MIGRATE_INFO_TYPE:
        this.setX0(MIGRATE_INFO_NOT_REQUIRED);
        return null;
      case PSCI_FN.SYSTEM_OFF:
        return { kind: "system-event", type: "shutdown" };
      case PSCI_FN.SYSTEM_RESET:
        return { kind: "system-event", type: "reset" };
      case PSCI_FN.PSCI_FEATURES: {
        if (!v10) break;
        const f = Number(arg(1) & 0xffffffffn);
        this.setX0(PSCI_IMPLEMENTED.has(f) ? 0 : PSCI_RET.NOT_SUPPORTED);
        return null;
      }
      case PSCI_FN.SYSTEM_SUSPEND_32:
      case PSCI_FN.SYSTEM_SUSPEND_64: {
        if (!v10) break;
        const r = this.vm.psciSystemSuspend(this, arg(1), arg(2));
        if (r !== PSCI_RET.SUCCESS) {
          this.setX0(r);
          return null;
        }
        return IDLE;
      }
      case PSCI_FN.SMCCC_VERSION:
        this.setX0(SMCCC_VERSION_1_1);
        return null;
    }
    this.setX0(PSCI_RET.NOT_SUPPORTED);
    return null;
  }

  /**
   * Powers this vCPU on at `entry` with `context` in X0 (CPU_ON, SYSTEM_SUSPEND resume):
   * EL1h, DAIF masked, MMU and caches off (PSCI 1.0 §6.4), other registers reset.
   * `keepTimers` for SYSTEM_SUSPEND: its wake-up source (often the timer) must keep running.
   */
  resetToEntry(entry: bigint, context: bigint, state: number, keepTimers = false): void {
    this.resetRegisters(!keepTimers);
    this.cpu.pc = entry;
    this.cpu.setX(0, context);
    this.cpu.pstate = PSTATE.DAIF | 0x5;
    this.setMp(state);
  }

  /** Compare-and-swap on the MP-state word: CPU_ON's atomic claim of a STOPPED target. */
  claimForCpuOn(): boolean {
    return Atomics.compareExchange(this.mpWord, 0, MP_STATE.STOPPED, MP_ON_PENDING) === MP_STATE.STOPPED;
  }
  get onPending(): boolean {
    return this.mpWord[0] === MP_ON_PENDING;
  }
  get affinityState(): number {
    const s = this.mpWord[0]!;
    if (s === MP_ON_PENDING) return AFFINITY.ON_PENDING;
    return s === MP_STATE.STOPPED ? AFFINITY.OFF : AFFINITY.ON;
  }
}
