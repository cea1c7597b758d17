/**
 * Raw interpreter speed on a tight integer loop (add / eor shifted / and imm / subs /
 * b.ne), independent of any toolchain: prints guest MIPS.
 */
import { makeCpu, runWords } from "../test/support/snippet.ts";

// movz x0,#0x4000,lsl#16 (2^30 iterations max; the budget stops it first)
const LOOP = [0xd2a80000, 0xd2800001, 0xd28000e2, 0x8b020021, 0xca010c42, 0x92401c23, 0xf1000400, 0x54ffff81];

export function runInterpreterLoopBench(insns = 50_000_000, jit = false): { mips: number } {
  const cpu = makeCpu(jit ? {} : undefined);
  runWords(LOOP, undefined, cpu); // warm-up: the budget of runWords ends it early
  cpu.pc = 0x10000n;
  const t0 = performance.now();
  let left = insns;
  while (left > 0) {
    const n = Math.min(left, 1_000_000);
    cpu.run(n);
    left -= n;
  }
  const ms = performance.now() - t0;
  return { mips: insns / ms / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`interpreter loop: ${runInterpreterLoopBench().mips.toFixed(1)} guest MIPS`);
  console.log(`translated loop: ${runInterpreterLoopBench(200_000_000, true).mips.toFixed(1)} guest MIPS`);
}
