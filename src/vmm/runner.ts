/**
 * The VMM's main loop for one machine: runs scheduler rounds, answers semihosting,
 * turns system events into an exit status, sleeps when every vCPU waits (real-time mode),
 * and yields to the host's event loop so console input keeps flowing.
 */

import { DeterministicClock } from "../hv/timer.ts";
import type { VirtMachine } from "../machine/virt.ts";
import { Scheduler } from "./scheduler.ts";
import { Semihosting } from "./semihosting.ts";

export interface RunOptions {
  /** Console output (semihosting writes go here too). */
  output: (bytes: Uint8Array) => void;
  /** Diagnostics (errors, MP-state trace). */
  diag: (line: string) => void;
  /** Stop after this many instructions in total (tests, deterministic runs). */
  maxInstructions?: bigint;
  /** True while console input may still arrive (keeps an all-idle VM alive). */
  inputOpen?: () => boolean;
  quantum?: number;
}

export type RunResult =
  | { kind: "shutdown"; code: number }
  | { kind: "reset" }
  | { kind: "limit" }
  | { kind: "error"; code: number; message: string };

/** Runs until the guest powers off, resets, fails, or the instruction limit is reached. */
export async function runMachine(m: VirtMachine, opts: RunOptions): Promise<RunResult> {
  const sched = new Scheduler(m.vm, opts.quantum);
  const semi = new Semihosting(m.vm, opts.output);
  const deterministic = m.vm.clock instanceof DeterministicClock;
  for (;;) {
    const sliceEnd = performance.now() + 25;
    while (performance.now() < sliceEnd) {
      if (opts.maxInstructions !== undefined && sched.instructions >= opts.maxInstructions)
        return { kind: "limit" };
      const ev = sched.round();
      if (ev) {
        switch (ev.kind) {
          case "system-event":
            return ev.type === "shutdown" ? { kind: "shutdown", code: 0 } : { kind: "reset" };
          case "debug": {
            const r = semi.handle(ev.vcpu, ev.imm);
            if (r.kind === "exit") return { kind: "shutdown", code: r.code };
            continue;
          }
          case "internal-error":
            return { kind: "error", code: 70, message: `vCPU ${ev.vcpu}: internal error: ${ev.message}` };
          case "all-idle":
            if (opts.inputOpen?.()) {
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
      if (!sched.lastRoundRan && !deterministic) {
        // Everybody waits: sleep until the next timer deadline (or a little, for input).
        const ms = sched.msToNextDeadline();
        await sleep(Math.max(0, Math.min(ms ?? 10, 10)));
        break;
      }
    }
    await new Promise((r) => setImmediate(r));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
