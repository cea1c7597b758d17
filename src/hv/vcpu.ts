/**
 * A vCPU with KVM's interface (Documentation/virt/kvm/api.rst): KVM_ARM_VCPU_INIT,
 * KVM_RUN, KVM_GET_REG_LIST, KVM_GET/SET_ONE_REG, KVM_GET/SET_MP_STATE. PSCI, WFI/WFE and
 * the arch timer are handled here, as KVM handles them in the kernel.
 */
import { Cpu } from "../arch/arm64/index.ts";
import { I, PSTATE } from "../arch/arm64/state.ts";
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

/** What KVM_RUN returns to the VMM. */
export type VcpuExit =
  /** The time slice ended (KVM_RUN interrupted by a signal, in KVM terms). */
  | { kind: "slice" }
  /** Nothing to run: powered off, suspended, or waiting in WFI/WFE for a wake-up. */
  | { kind: "idle" }
  | { kind: "system-event"; type: "shutdown" | "reset" }
  /** HLT #imm with HLT trapping enabled (semihosting), PC past the HLT. */
  | { kind: "debug"; imm: number }
  | { kind: "internal-error"; message: string };

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

  constructor(
    readonly vm: Vm,
    readonly id: number,
  ) {
    this.cpu = new Cpu({
      memory: vm.memory,
      index: id,
      bus: vm.bus,
    });
    this.timer = new ArchTimer(() => this.cpu, vm.clock, {
      setPpi: (intid, level) => vm.irqchip?.setPpi(id, intid, level),
    });
    this.cpu.timer = this.timer;
    this.mpWord = new Int32Array(vm.memory.buffer, this.cpu.r.byteOffset + I.MP_STATE * 4, 1);
    this.mpWord[0] = MP_STATE.STOPPED;
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
    return [...CORE_REGS.map((r) => r.id), KVM_REG_ARM_PSCI_VERSION, ...TIMER_IDS, ...SYSREG_BY_ID.keys()];
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
    this.cpu.sysregWritten?.(this.cpu, s);
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
    if (this.waiting === "wfe") return this.interruptSignalled() || this.cpu.r[I.EVENT] !== 0;
    return true;
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
    if (this.waiting === "wfe" && this.cpu.r[I.EVENT] !== 0) this.cpu.r[I.EVENT] = 0;
    this.waiting = null;
    const deterministic = clock instanceof DeterministicClock;
    let executed = 0;
    while (executed < quantum) {
      let budget = quantum - executed;
      if (deterministic) {
        const d = this.timer.ticksToDeadline();
        if (d !== null && d < BigInt(budget)) budget = Math.max(1, Number(d));
      } else budget = Math.min(budget, REALTIME_CHUNK);
      const before = this.cpu.instructionCount;
      const exit = this.cpu.run(budget);
      executed += Number(this.cpu.instructionCount - before);
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
          if (this.interruptSignalled() || this.cpu.r[I.EVENT] !== 0) {
            this.cpu.r[I.EVENT] = 0;
            continue;
          }
          this.waiting = "wfe";
          return IDLE;
        case "hlt":
          return { kind: "debug", imm: exit.imm };
        case "internal-error":
          return exit;
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
