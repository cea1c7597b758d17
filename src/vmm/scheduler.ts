/**
 * Runs all vCPUs of a VM on one thread, round-robin in fixed quanta (deterministic in
 * deterministic-clock mode). Each vCPU's KVM_RUN is a slice; nothing here prevents giving
 * each vCPU a worker thread later, since every vCPU's state lives in the shared memory.
 */
import { DeterministicClock } from "../hv/timer.ts";
import type { Vcpu, VcpuExit } from "../hv/vcpu.ts";
import type { Vm } from "../hv/vm.ts";

/** Instructions per vCPU per round. */
export const DEFAULT_QUANTUM = 10_000;

export type SchedulerEvent =
  | { kind: "system-event"; type: "shutdown" | "reset"; vcpu: number }
  | { kind: "debug"; imm: number; vcpu: Vcpu }
  | { kind: "internal-error"; message: string; vcpu: number }
  /** Every vCPU waits and no timer will ever wake one: only outside input can help. */
  | { kind: "all-idle" };

export class Scheduler {
  /** Rounds run so far. */
  rounds = 0;
  /** Whether the last round executed any instruction (a real-time VMM sleeps if not). */
  lastRoundRan = false;
  /** Called after every KVM_RUN returns (tracing, tests that sample state at each exit). */
  onExit: ((vcpu: Vcpu, exit: VcpuExit) => void) | null = null;

  constructor(
    readonly vm: Vm,
    readonly quantum = DEFAULT_QUANTUM,
  ) {}

  /** Total instructions executed by every vCPU. */
  get instructions(): bigint {
    let n = 0n;
    for (const v of this.vm.vcpus) n += v.cpu.instructionCount;
    return n;
  }

  /**
   * Runs one round (each vCPU gets one slice). Returns the first event that needs the
   * VMM, or null. A vCPU that raised an event keeps its state; the round stops there.
   */
  round(): SchedulerEvent | null {
    let ran = false;
    for (const v of this.vm.vcpus) {
      const before = v.cpu.instructionCount;
      const exit: VcpuExit = v.run(this.quantum);
      this.onExit?.(v, exit);
      if (v.cpu.instructionCount !== before) ran = true;
      switch (exit.kind) {
        case "slice":
        case "idle":
          break;
        case "system-event":
          this.rounds++;
          return { kind: "system-event", type: exit.type, vcpu: v.id };
        case "debug":
          this.rounds++;
          return { kind: "debug", imm: exit.imm, vcpu: v };
        case "internal-error":
          return { kind: "internal-error", message: exit.message, vcpu: v.id };
      }
    }
    this.rounds++;
    this.lastRoundRan = ran;
    return this.advanceTime(ran);
  }

  /** Deterministic time: one quantum per round, or a jump to the next deadline when idle. */
  private advanceTime(ran: boolean): SchedulerEvent | null {
    const clock = this.vm.clock;
    if (ran) {
      if (clock instanceof DeterministicClock) clock.roundStart += BigInt(this.quantum);
      return null;
    }
    if (this.vm.vcpus.some((v) => v.canRun)) return null;
    let next: bigint | null = null;
    for (const v of this.vm.vcpus) {
      const d = v.timer.ticksToDeadline();
      if (d !== null && (next === null || d < next)) next = d;
    }
    if (next === null) return { kind: "all-idle" };
    if (clock instanceof DeterministicClock) clock.roundStart += next;
    return null;
  }

  /** Milliseconds until the earliest timer deadline (real-time mode), or null. */
  msToNextDeadline(): number | null {
    let next: bigint | null = null;
    for (const v of this.vm.vcpus) {
      const d = v.timer.ticksToDeadline();
      if (d !== null && (next === null || d < next)) next = d;
    }
    return next === null ? null : Number(next) / 62_500;
  }
}
