/**
 * Robustness of the decoder and executors against arbitrary instruction words:
 *  - words in the top-level encoding space that Armv8.0 leaves unallocated (op0 = bits
 *    28:25 in 0b0000 reserved / 0b0001 unallocated / 0b0010 SVE, absent in v8.0 /
 *    0b0011 unallocated) must take the UNDEF exception (EC 0);
 *  - no word at all may make the emulator itself fail (CpuExit 'internal-error').
 * Arm ARM C4.1 "A64 instruction set encoding".
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Cpu, CpuExit } from "../src/arch/arm64/cpu.ts";
import { xorshift32 as xorshift } from "../tools/difftest/prng.ts";
import { makeCpu, runWords } from "./support/snippet.ts";

const COUNT = Number(process.env.ARMBOX_UNDEF_COUNT ?? 200_000);
const SEED = Number(process.env.ARMBOX_SEED ?? 0x5eed);

const hex = (w: number) => w.toString(16).padStart(8, "0");

function runOne(cpu: Cpu, word: number): CpuExit {
  cpu.reset();
  return runWords([word], undefined, cpu).exit;
}

test(`${COUNT} random words with op0 = 00xx take the UNDEF exception`, () => {
  const rnd = xorshift(SEED);
  const cpu = makeCpu();
  const bad: string[] = [];
  for (let i = 0; i < COUNT && bad.length < 10; i++) {
    const word = (rnd() & ~(3 << 27)) >>> 0; // bits 28:27 = 00
    const exit = runOne(cpu, word);
    if (exit.kind !== "exception" || exit.ec !== 0 || cpu.pc !== 0x10000n) {
      bad.push(
        `${hex(word)}: ${exit.kind === "internal-error" ? exit.message.split("\n").slice(0, 2).join(" ") : JSON.stringify(exit, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v))}`,
      );
    }
  }
  assert.deepEqual(bad, []);
});

/** Fully random words can loop until runWords' budget, so this batch is smaller. */
const ANY_COUNT = Math.ceil(COUNT / 4);

test(`${ANY_COUNT} random words never raise an internal error`, () => {
  const rnd = xorshift(SEED ^ 0x9e3779b9);
  const cpu = makeCpu();
  const bad: string[] = [];
  for (let i = 0; i < ANY_COUNT && bad.length < 10; i++) {
    const word = rnd();
    const exit = runOne(cpu, word);
    if (exit.kind === "internal-error") {
      // Re-run on a fresh CPU so the report does not depend on earlier words.
      const again = runOne(makeCpu(), word);
      const msg = again.kind === "internal-error" ? again.message : exit.message;
      bad.push(`${hex(word)}: ${msg.split("\n").slice(0, 3).join(" | ")}`);
    }
  }
  assert.deepEqual(bad, []);
});
