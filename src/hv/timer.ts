/**
 * The Armv8 generic timer of one vCPU (Arm ARM D11): the physical and virtual counters,
 * the EL1 physical and virtual timers (CNTP_*, CNTV_*), and the clocks that drive them.
 *
 * The virtual counter is `clock - CNTVOFF`, the physical one `clock - CNTPOFF`. KVM exposes the virtual count as
 * KVM_REG_ARM_TIMER_CNT; writing it sets CNTVOFF so the counter continues from the written
 * value (this is how a restored guest's clock continues rather than jumps).
 */
import type { Cpu, TimerProvider } from "../arch/arm64/cpu.ts";
import { sysregIndex } from "../arch/arm64/sysregs.ts";

/**
 * The timers' PPIs as INTIDs (PPI n = INTID 16 + n): KVM's defaults (the vCPU device
 * attributes KVM_ARM_VCPU_TIMER_IRQ_VTIMER/PTIMER), which QEMU's virt puts in its FDT.
 */
export const TIMER_PPI = { SECURE_PHYS: 29, PHYS: 30, VIRT: 27, HYP: 26 } as const;

/** 62.5 MHz, as QEMU's virt and KVM report in CNTFRQ_EL0. */
export const TIMER_FREQUENCY = 62_500_000;

const M64 = (1n << 64n) - 1n;

/** CNTKCTL_EL1 (its register description in the Arm ARM): the EL1 event stream's controls. */
const CNTKCTL = sysregIndex("CNTKCTL_EL1");
const EVNTEN = 1 << 2;
const EVNTDIR = 1 << 3;

/**
 * The count at which the EL1 event stream next generates an event after `count` (Arm ARM
 * D11, Generic Timer, "Event streams"): each time bit EVNTI (7:4) of the virtual count
 * changes 0 to 1 (EVNTDIR = 0) or 1 to 0 (EVNTDIR = 1), i.e. at k * 2^(EVNTI+1) + 2^EVNTI
 * or at k * 2^(EVNTI+1). Null when EVNTEN (bit 2) is 0. Always > count, at most one
 * period (2^(EVNTI+1)) later.
 */
export function nextStreamEvent(cntkctl: number, count: bigint): bigint | null {
  if ((cntkctl & EVNTEN) === 0) return null;
  const n = BigInt((cntkctl >>> 4) & 0xf);
  const period = 1n << (n + 1n);
  const phase = (cntkctl & EVNTDIR) !== 0 ? 0n : 1n << n;
  // The last transition at or before `count` (the shift floors, also below `phase`), plus a period.
  return (((count - phase) >> (n + 1n)) << (n + 1n)) + phase + period;
}

/** Where the physical count comes from. */
export interface VmClock {
  readonly kind: "deterministic" | "realtime";
  /** The physical counter as vCPU `cpu` sees it now. */
  now(cpu: Cpu): bigint;
}

/**
 * Deterministic time: the VM's physical count advances with retired instructions, one
 * tick per instruction, round-robin in quanta. `roundStart` is the time at which the
 * current round began; a vCPU's local time is that plus what it has executed in the round.
 */
export class DeterministicClock implements VmClock {
  readonly kind = "deterministic";
  roundStart = 0n;
  /** Instruction count of each vCPU when its slice of the current round began. */
  private sliceStart: bigint[] = [];
  /** Starts (used = 0) or resumes a slice of `cpu` that has already run `used` instructions. */
  resumeSlice(cpu: Cpu, used: number): void {
    this.sliceStart[cpu.index] = cpu.instructionCount - BigInt(used);
  }
  /** Instructions `cpu` has executed in its current slice (saved with the machine). */
  sliceUsed(cpu: Cpu): number {
    const start = this.sliceStart[cpu.index];
    return start === undefined ? 0 : Number(cpu.instructionCount - start);
  }
  now(cpu: Cpu): bigint {
    const start = this.sliceStart[cpu.index] ?? cpu.instructionCount;
    return this.roundStart + (cpu.instructionCount - start);
  }
}

/**
 * Where real time comes from: the host's monotonic clock (the VM's counter) and its wall
 * clock (a snapshot's save time, the downtime at a restore). Tests give a clock they move
 * themselves, so that what they check does not hinge on the host's speed.
 */
export interface HostClock {
  monotonicMs(): number;
  wallMs(): number;
}

export const HOST_CLOCK: HostClock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

/** Real time: the host's monotonic clock scaled to 62.5 MHz, plus an offset for restores. */
export class RealtimeClock implements VmClock {
  readonly kind = "realtime";
  private readonly origin: number;
  constructor(private readonly host: HostClock = HOST_CLOCK) {
    this.origin = host.monotonicMs();
  }
  /** Added to the host-derived count (set on restore so the counter never goes back). */
  offset = 0n;
  hostTicks(): bigint {
    return BigInt(Math.floor((this.host.monotonicMs() - this.origin) * (TIMER_FREQUENCY / 1000)));
  }
  now(): bigint {
    return this.hostTicks() + this.offset;
  }
}

export interface TimerOutputs {
  /** Level of the virtual timer's PPI (INTID 27) and the physical one's (INTID 30). */
  setPpi(intid: number, level: boolean): void;
}

/** One timer (virtual or physical): CTL and CVAL. */
interface TimerRegs {
  ctl: number;
  cval: bigint;
}

export class ArchTimer implements TimerProvider {
  readonly frequency = TIMER_FREQUENCY;
  readonly virt: TimerRegs = { ctl: 0, cval: 0n };
  readonly phys: TimerRegs = { ctl: 0, cval: 0n };
  /** CNTVOFF: virtual = physical - cntvoff. */
  cntvoff = 0n;
  /**
   * Physical offset (like FEAT_ECV's CNTPOFF): the guest's physical count is the VM clock
   * minus this, so KVM_REG_ARM_PTIMER_CNT can be written back exactly.
   */
  cntpoff = 0n;
  private vLevel = false;
  private pLevel = false;
  /**
   * A WFE wait's event-stream wake-up: armed when the vCPU starts waiting with
   * CNTKCTL_EL1.EVNTEN set, at the virtual count `streamAt` of the stream's next event.
   * Saved with the vCPU (armbox's wake-up registers), so a restored wait ends when the
   * uninterrupted one does.
   */
  streamArmed = false;
  streamAt = 0n;

  constructor(
    readonly cpu: () => Cpu,
    readonly clock: VmClock,
    private readonly out: TimerOutputs,
  ) {}

  /** The VM clock as this vCPU sees it. */
  clockCount(): bigint {
    return this.clock.now(this.cpu()) & M64;
  }
  physicalCount(): bigint {
    return (this.clockCount() - this.cntpoff) & M64;
  }
  /**
   * Virtual count = VM clock - CNTVOFF. Like KVM's voffset it is relative to the clock,
   * not to the guest's physical count, so the two counters can be restored independently.
   */
  virtualCount(): bigint {
    return (this.clockCount() - this.cntvoff) & M64;
  }

  // TimerProvider (the CPU's MRS/MSR of CNT* registers)
  counter(_c: Cpu, virtual: boolean): bigint {
    return virtual ? this.virtualCount() : this.physicalCount();
  }
  readReg(_c: Cpu, virtual: boolean, reg: "CTL" | "CVAL" | "TVAL"): bigint {
    const t = virtual ? this.virt : this.phys;
    const count = virtual ? this.virtualCount() : this.physicalCount();
    if (reg === "CVAL") return t.cval;
    if (reg === "TVAL") return (t.cval - count) & 0xffffffffn;
    return BigInt(t.ctl | (this.istatus(t, count) ? 4 : 0));
  }
  writeReg(_c: Cpu, virtual: boolean, reg: "CTL" | "CVAL" | "TVAL", value: bigint): void {
    const t = virtual ? this.virt : this.phys;
    if (reg === "CTL") t.ctl = Number(value & 3n);
    else if (reg === "CVAL") t.cval = value & M64;
    else {
      const count = virtual ? this.virtualCount() : this.physicalCount();
      t.cval = (count + BigInt.asIntN(32, value)) & M64;
    }
    this.update();
    // The next deadline may have moved: let the vCPU loop re-plan its chunk so the timer
    // fires at the exact instruction, however the run was split.
    this.cpu().endChunk();
  }

  private istatus(t: TimerRegs, count: bigint): boolean {
    return (t.ctl & 1) !== 0 && count >= t.cval;
  }

  /** Re-evaluates both timer outputs and drives the PPIs on change. */
  update(): void {
    // A timer drives its PPI only when enabled and not masked (CTL.ENABLE 1, IMASK 0; Arm
    // ARM D11.2.4), and only then is its count read: the scheduler calls this around every
    // slice, and each count is a few BigInt operations.
    const vl = (this.virt.ctl & 3) === 1 && this.virtualCount() >= this.virt.cval;
    const pl = (this.phys.ctl & 3) === 1 && this.physicalCount() >= this.phys.cval;
    if (vl !== this.vLevel) {
      this.vLevel = vl;
      this.out.setPpi(TIMER_PPI.VIRT, vl);
    }
    if (pl !== this.pLevel) {
      this.pLevel = pl;
      this.out.setPpi(TIMER_PPI.PHYS, pl);
    }
  }

  /** Arms the event-stream wake-up of a WFE that starts waiting now (no-op if the stream is off). */
  armStreamWake(): void {
    const at = nextStreamEvent(this.cpu().r[CNTKCTL]!, this.virtualCount());
    this.streamArmed = at !== null;
    this.streamAt = at === null ? 0n : at & M64;
  }

  /** Ticks until the armed event-stream wake-up (0 when due), or null if none is armed. */
  ticksToStreamWake(): bigint | null {
    if (!this.streamArmed) return null;
    const d = this.streamAt - this.virtualCount();
    return d > 0n ? d : 0n;
  }

  /**
   * Physical ticks from now until the next enabled, unmasked timer fires, or null if none
   * will (used to end a slice exactly at a deadline and to skip idle time).
   */
  ticksToDeadline(): bigint | null {
    let best: bigint | null = null;
    for (const [t, count] of [
      [this.virt, this.virtualCount()],
      [this.phys, this.physicalCount()],
    ] as const) {
      // Enabled and unmasked, and not already firing (a fired timer needs no deadline).
      if ((t.ctl & 3) !== 1 || t.cval <= count) continue;
      const d = t.cval - count;
      if (best === null || d < best) best = d;
    }
    return best;
  }
}
