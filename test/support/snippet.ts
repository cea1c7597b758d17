/**
 * Runs a few raw A64 instruction words on a fresh user-mode CPU: the building block of
 * unit tests. Code is placed at CODE_BASE, followed by a BRK #0 that ends the run.
 */

import { Cpu, type CpuExit, createVmMemory, RAM_OFFSET } from "../../src/arch/arm64/index.ts";
import type { JitOptions } from "../../src/arch/arm64/jit/jit.ts";

export const CODE_BASE = 0x10000;
export const DATA_BASE = 0x20000;
const RAM = 1 << 20;

export interface Snippet {
  cpu: Cpu;
  exit: CpuExit;
}

export function makeCpu(jit?: JitOptions): Cpu {
  const memory = createVmMemory(RAM);
  return new Cpu({
    memory,
    index: 0,
    bus: { ramBase: 0, ramSize: RAM },
    userMode: true,
    ...(jit ? { jit } : {}),
  });
}

/** Writes `words` at CODE_BASE followed by BRK #0, applies `setup`, runs to the BRK. */
export function runWords(words: number[], setup?: (c: Cpu) => void, cpu = makeCpu()): Snippet {
  const all = [...words, 0xd4200000];
  all.forEach((w, i) => {
    cpu.dv.setUint32(RAM_OFFSET + CODE_BASE + i * 4, w >>> 0, true);
  });
  cpu.pc = BigInt(CODE_BASE);
  cpu.flushDecodeCache();
  setup?.(cpu);
  const exit = cpu.run(10_000);
  return { cpu, exit };
}
