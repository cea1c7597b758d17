/**
 * Runs difftest cases on our CPU (user mode, like qemu-aarch64): the code and the memory
 * window sit at the same absolute addresses as in the harness, in one RAM region.
 */
import { Cpu, type CpuExit } from "../../src/arch/arm64/cpu.ts";
import { EC } from "../../src/arch/arm64/exceptions.ts";
import type { JitOptions } from "../../src/arch/arm64/jit/jit.ts";
import { createVmMemory, I, RAM_OFFSET } from "../../src/arch/arm64/state.ts";
import {
  type Case,
  type CaseResult,
  CODE,
  CODE_PAGE,
  type Outcome,
  RAM_SIZE,
  WINDOW,
  WINDOW_SIZE,
} from "./layout.ts";

const BRK0 = 0xd4200000;
const FSC_ALIGNMENT = 0x21;

export class ArmboxRunner {
  readonly cpu: Cpu;
  /** `jit`: run the cases with the translator (threshold 1: every block translated at once). */
  constructor(jit?: JitOptions) {
    const memory = createVmMemory(RAM_SIZE);
    this.cpu = new Cpu({
      memory,
      index: 0,
      bus: { ramBase: CODE_PAGE, ramSize: RAM_SIZE },
      userMode: true,
      ...(jit ? { jit } : {}),
    });
  }

  run(c: Case): CaseResult {
    const cpu = this.cpu;
    cpu.reset();
    const ram = RAM_OFFSET;
    cpu.m8.fill(0, ram, ram + RAM_SIZE);
    const words = [...c.words, BRK0];
    words.forEach((w, i) => {
      cpu.dv.setUint32(ram + (CODE - CODE_PAGE) + 4 * i, w >>> 0, true);
    });
    cpu.m8.set(c.state.mem, ram + (WINDOW - CODE_PAGE));
    const s = c.state;
    cpu.r.set(s.x, 0);
    cpu.r8.set(s.v, I.V * 4);
    cpu.r[I.PSTATE] = s.nzcv >>> 0; // EL0t
    cpu.pstateChanged();
    cpu.r[I.FPCR] = s.fpcr;
    cpu.r[I.FPSR] = s.fpsr;
    cpu.pc = BigInt(CODE);
    let exit: CpuExit;
    try {
      exit = cpu.run(1000);
    } catch (e) {
      exit = { kind: "internal-error", message: String(e) };
    }
    const pcLo = cpu.r[I.PC]!;
    const pcIndex = (pcLo - CODE) / 4;
    let outcome: Outcome;
    let note: string | undefined;
    if (exit.kind === "exception") {
      if (exit.ec === EC.BRK64 && pcIndex === c.words.length) outcome = "ok";
      else if (exit.ec === EC.UNKNOWN) outcome = "undef";
      else if (exit.ec === EC.DABT_LOWER || exit.ec === EC.DABT_CURRENT || exit.ec === EC.IABT_LOWER) {
        outcome = (exit.iss & 0x3f) === FSC_ALIGNMENT ? "bus" : "segv";
      } else if (exit.ec === EC.PC_ALIGN || exit.ec === EC.SP_ALIGN) outcome = "bus";
      else {
        outcome = "other";
        note = `exception ec=0x${exit.ec.toString(16)} iss=0x${exit.iss.toString(16)}`;
      }
    } else if (exit.kind === "budget") outcome = "timeout";
    else if (exit.kind === "internal-error") {
      outcome = "error";
      note = exit.message.split("\n").slice(0, 3).join(" | ");
    } else {
      outcome = "other";
      note = `exit ${exit.kind}`;
    }
    return {
      outcome,
      pcIndex,
      x: cpu.r.slice(0, 62),
      v: cpu.r8.slice(I.V * 4, I.V * 4 + 512),
      nzcv: cpu.r[I.PSTATE]! & 0xf0000000,
      fpsr: cpu.r[I.FPSR]!,
      mem: cpu.m8.slice(ram + (WINDOW - CODE_PAGE), ram + (WINDOW - CODE_PAGE) + WINDOW_SIZE),
      note,
    };
  }
}
