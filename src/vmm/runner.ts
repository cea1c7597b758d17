/**
 * The VMM's main loop for one machine: runs scheduler rounds, answers semihosting,
 * turns system events into an exit status, sleeps when every vCPU waits (real-time mode),
 * honours stop/cont from the control plane, and yields to the host's event loop so console
 * input, QMP and migration keep flowing.
 */

import { DEFAULT_QUANTUM, type Scheduler } from "../hv/scheduler.ts";
import { DeterministicClock } from "../hv/timer.ts";
import type { VirtMachine } from "../machine/virt.ts";
import { Semihosting } from "./semihosting.ts";

export interface RunOptions {
  /** Console output (semihosting writes go here too). */
  output: (bytes: Uint8Array) => void;
  /** Diagnostics (errors, MP-state trace). */
  diag: (line: string) => void;
  /** Stop after this many instructions in total since the machine was created or restored. */
  maxInstructions?: bigint;
  /** True while console input may still arrive (keeps an all-idle VM alive). */
  inputOpen?: () => boolean;
  /** True while something else (QMP) may still resume or end the VM. */
  controlOpen?: () => boolean;
  quantum?: number;
}

export type RunResult =
  | { kind: "shutdown"; code: number }
  | { kind: "reset" }
  | { kind: "limit" }
  /** The control plane ended the run (quit, or a completed outgoing migration). */
  | { kind: "quit"; code: number }
  | { kind: "error"; code: number; message: string };

/** Runs until the guest powers off, resets, fails, or the instruction limit is reached. */
export async function runMachine(m: VirtMachine, opts: RunOptions): Promise<RunResult> {
  return new MachineRunner(m, opts).run();
}

/**
 * One machine's run loop with a pause switch: the control plane (QMP, migration) calls
 * pause()/resume()/finish() between rounds; every vCPU is stopped at a round or slice
 * boundary whenever `paused` is observed.
 */
export class MachineRunner {
  readonly sched: Scheduler;
  private readonly semi: Semihosting;
  private paused = false;
  private finished: RunResult | null = null;
  private wake: (() => void) | null = null;
  private wakeOutput: (() => void) | null = null;
  /** Called when the loop actually parks after pause() (the vCPUs are stopped). */
  onPaused: (() => void) | null = null;

  constructor(
    readonly machine: VirtMachine,
    readonly opts: RunOptions,
  ) {
    this.sched = machine.scheduler(opts.quantum ?? DEFAULT_QUANTUM);
    this.semi = new Semihosting(machine.vm, opts.output);
  }

  get isPaused(): boolean {
    return this.paused;
  }
  pause(): void {
    this.paused = true;
    this.wakeOutput?.();
  }
  resume(): void {
    this.paused = false;
    // A console frozen for a migration's capture transmits again once the VM runs here.
    this.machine.output.thaw();
    this.wake?.();
  }
  /** Ends run() with `result` at the next opportunity. */
  finish(result: RunResult): void {
    this.finished = result;
    this.wake?.();
    this.wakeOutput?.();
  }

  async run(): Promise<RunResult> {
    const opts = this.opts;
    const sched = this.sched;
    const deterministic = this.machine.vm.clock instanceof DeterministicClock;
    for (;;) {
      if (this.finished) return this.finished;
      if (this.paused) {
        this.onPaused?.();
        await new Promise<void>((r) => {
          this.wake = r;
        });
        this.wake = null;
        continue;
      }
      const output = this.machine.output;
      if (output.held) {
        // Deterministic mode: the host is behind on the console output, which the guest must
        // not observe; its vCPUs (and so its clock) wait between two rounds until it drains.
        await new Promise<void>((r) => {
          this.wakeOutput = r;
          output.onRelease(r);
        });
        this.wakeOutput = null;
        continue;
      }
      const sliceEnd = performance.now() + 25;
      while (performance.now() < sliceEnd && !this.paused && !this.finished && !output.held) {
        let left = Number.POSITIVE_INFINITY;
        if (opts.maxInstructions !== undefined) {
          const l = opts.maxInstructions - sched.instructions;
          if (l <= 0n) return { kind: "limit" };
          left = Number(l);
        }
        const ev = sched.round(left);
        this.machine.rtc.poll(); // the RTC's match interrupt, once per round
        if (ev) {
          switch (ev.kind) {
            case "limit":
              return { kind: "limit" };
            case "system-event":
              return ev.type === "shutdown" ? { kind: "shutdown", code: 0 } : { kind: "reset" };
            case "debug": {
              const r = this.semi.handle(ev.vcpu, ev.imm);
              if (r.kind === "exit") return { kind: "shutdown", code: r.code };
              continue;
            }
            case "internal-error":
              return { kind: "error", code: 70, message: `vCPU ${ev.vcpu}: internal error: ${ev.message}` };
            case "guest-stuck":
              return { kind: "error", code: 1, message: `guest stopped: ${ev.message}` };
            case "all-idle":
              if (opts.inputOpen?.() || opts.controlOpen?.()) {
                await sleep(5);
                break;
              }
              return {
                kind: "error",
                code: 1,
                message: "every vCPU is waiting for an interrupt that nothing will send (guest hung)",
              };
          }
        }
        if (!sched.lastRoundRan && !deterministic && sched.position.pos === 0) {
          // Everybody waits: sleep until the next timer deadline (or a little, for input).
          const ms = sched.msToNextDeadline();
          await sleep(Math.max(0, Math.min(ms ?? 10, 10)));
          break;
        }
      }
      await new Promise((r) => setImmediate(r));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
