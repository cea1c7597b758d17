/**
 * Runs all vCPUs of a VM on one thread, round-robin in fixed quanta (deterministic in
 * deterministic-clock mode). Each vCPU's KVM_RUN is a slice; nothing here prevents giving
 * each vCPU a worker thread later, since every vCPU's state lives in the shared memory.
 *
 * The scheduler can stop after an exact number of instructions, in the middle of a
 * slice, and its position (which vCPU, how far into its slice) is part of the saved
 * state, so a restored deterministic run continues exactly where the original was.
 *
 * WFE wake-ups between vCPUs: SEV sets the others' event registers directly; a store that
 * clears another vCPU's exclusive monitor is noticed when the storing vCPU's slice ends
 * (Vcpu.noteMonitorEvent); an event-stream wake-up is a deadline like a timer's, so "every
 * vCPU waits" jumps to it.
 */
import { DeterministicClock } from "./timer.ts";
import type { Vcpu, VcpuExit } from "./vcpu.ts";
import type { Vm } from "./vm.ts";

/** Instructions per vCPU per round. */
export const DEFAULT_QUANTUM = 10_000;

export type SchedulerEvent =
  | { kind: "system-event"; type: "shutdown" | "reset"; vcpu: number }
  | { kind: "debug"; imm: number; vcpu: Vcpu }
  | { kind: "internal-error"; message: string; vcpu: number }
  | { kind: "guest-stuck"; message: string; vcpu: number }
  /** Every vCPU waits and no timer will ever wake one: only outside input can help. */
  | { kind: "all-idle" }
  /** The instruction limit given to round() was reached (possibly mid-slice). */
  | { kind: "limit" };

/** The scheduler's position, saved with the machine. */
export interface SchedulerPosition {
  /** vCPU whose slice is in progress or next. */
  pos: number;
  /** Instructions that vCPU has executed in its current slice. */
  sliceUsed: number;
  /** Whether any vCPU executed in the current round so far. */
  roundRan: boolean;
}

export class Scheduler {
  /** Rounds completed so far. */
  rounds = 0;
  /** Whether the last completed round executed any instruction (a real-time VMM sleeps if not). */
  lastRoundRan = false;
  /** Called after every KVM_RUN returns (tracing, tests that sample state at each exit). */
  onExit: ((vcpu: Vcpu, exit: VcpuExit) => void) | null = null;
  private pos = 0;
  private sliceUsed = 0;
  private roundRan = false;

  constructor(
    readonly vm: Vm,
    readonly quantum = DEFAULT_QUANTUM,
  ) {}

  get position(): SchedulerPosition {
    return { pos: this.pos, sliceUsed: this.sliceUsed, roundRan: this.roundRan };
  }
  set position(p: SchedulerPosition) {
    if (!Number.isInteger(p.pos) || p.pos < 0 || p.pos >= Math.max(1, this.vm.vcpus.length)) {
      throw new RangeError(`scheduler position ${p.pos} is not a vCPU`);
    }
    if (!Number.isInteger(p.sliceUsed) || p.sliceUsed < 0 || p.sliceUsed >= this.quantum) {
      throw new RangeError(`scheduler slice position ${p.sliceUsed} is outside the quantum`);
    }
    this.pos = p.pos;
    this.sliceUsed = p.sliceUsed;
    this.roundRan = p.roundRan;
  }

  /** Total instructions executed by every vCPU. */
  get instructions(): bigint {
    let n = 0n;
    for (const v of this.vm.vcpus) n += v.cpu.instructionCount;
    return n;
  }

  /**
   * Runs the rest of the current round (each vCPU's slice in turn). Returns the first
   * event that needs the VMM, or null at the end of the round. With `limit`, stops as
   * soon as that many instructions have been executed in this call ({ kind: "limit" }).
   */
  round(limit = Number.POSITIVE_INFINITY): SchedulerEvent | null {
    const vcpus = this.vm.vcpus;
    const clock = this.vm.clock;
    let done = 0;
    while (this.pos < vcpus.length) {
      const v = vcpus[this.pos]!;
      if (done >= limit) return { kind: "limit" };
      if (clock instanceof DeterministicClock) clock.resumeSlice(v.cpu, this.sliceUsed);
      const budget = Math.min(this.quantum - this.sliceUsed, limit - done);
      const before = v.cpu.instructionCount;
      const exit: VcpuExit = v.run(budget);
      const used = Number(v.cpu.instructionCount - before);
      done += used;
      this.sliceUsed += used;
      if (used > 0) this.roundRan = true;
      this.onExit?.(v, exit);
      const sliceOver = exit.kind === "idle" || this.sliceUsed >= this.quantum;
      if (sliceOver || exit.kind === "internal-error" || exit.kind === "guest-stuck") {
        // Only at real slice ends (never where a limit split one), so that a run saved and
        // restored mid-slice latches the same events as one that never stopped.
        for (const w of vcpus) if (w !== v) w.noteMonitorEvent();
        this.nextSlice();
      }
      switch (exit.kind) {
        case "slice":
        case "idle":
          break;
        case "system-event":
          return { kind: "system-event", type: exit.type, vcpu: v.id };
        case "debug":
          return { kind: "debug", imm: exit.imm, vcpu: v };
        case "internal-error":
        case "guest-stuck":
          return { kind: exit.kind, message: exit.message, vcpu: v.id };
      }
    }
    this.rounds++;
    this.lastRoundRan = this.roundRan;
    const ran = this.roundRan;
    this.pos = 0;
    this.sliceUsed = 0;
    this.roundRan = false;
    return this.advanceTime(ran);
  }

  private nextSlice(): void {
    this.pos++;
    this.sliceUsed = 0;
  }

  /**
   * Deterministic time: a round lasts as long as its longest slice (a quantum unless every
   * vCPU stopped early to wait), or time jumps to the next deadline when every vCPU waits.
   * A vCPU that waits from mid-slice so wakes at its deadline, not at the end of a quantum
   * nobody used. Each vCPU's slice length is the clock's (saved with the machine).
   */
  private advanceTime(ran: boolean): SchedulerEvent | null {
    const clock = this.vm.clock;
    if (ran) {
      if (clock instanceof DeterministicClock) {
        let longest = 0;
        for (const v of this.vm.vcpus) longest = Math.max(longest, clock.sliceUsed(v.cpu));
        clock.roundStart += BigInt(longest);
      }
      return null;
    }
    // Bring every timer up to date first: in real time a deadline may have passed since
    // the vCPUs last ran, and its interrupt is what wakes them.
    for (const v of this.vm.vcpus) v.timer.update();
    if (this.vm.vcpus.some((v) => v.canRun)) return null;
    const next = this.ticksToNextDeadline();
    if (next === null) {
      // An armed timer whose deadline passed a moment ago still counts as a wake-up source.
      const armed = this.vm.vcpus.some((v) => (v.timer.virt.ctl & 3) === 1 || (v.timer.phys.ctl & 3) === 1);
      return armed && !(clock instanceof DeterministicClock) ? null : { kind: "all-idle" };
    }
    if (clock instanceof DeterministicClock) clock.roundStart += next;
    return null;
  }

  private ticksToNextDeadline(): bigint | null {
    let next: bigint | null = null;
    for (const v of this.vm.vcpus) {
      const d = v.ticksToWake();
      if (d !== null && (next === null || d < next)) next = d;
    }
    return next;
  }

  /** Milliseconds until the earliest timer or event-stream deadline (real-time mode), or null. */
  msToNextDeadline(): number | null {
    const next = this.ticksToNextDeadline();
    return next === null ? null : Number(next) / 62_500;
  }
}
