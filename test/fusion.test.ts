/**
 * Fused compare + B.cond (src/arch/arm64/fusion.ts) against the two ordinary executors
 * run in turn: same registers, flags and PC, for random operands, register numbers,
 * conditions and offsets — and through the interpreter loop, cold and warm.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { fuseCompareBranch } from "../src/arch/arm64/fusion.ts";
import { type Cpu, RAM_OFFSET } from "../src/arch/arm64/index.ts";
import { getDecoder } from "../src/arch/arm64/isa.ts";
import { I } from "../src/arch/arm64/state.ts";
import { makeCpu } from "./support/snippet.ts";

const compare = fc.oneof(
  // SUBS/CMP (shifted register, LSL #0): sf 11 01011 000 Rm 000000 Rn Rd
  fc
    .tuple(fc.integer({ min: 0, max: 1 }), fc.nat(31), fc.nat(31), fc.nat(31))
    .map(([sf, rm, rn, rd]) => ((sf << 31) | 0x6b000000 | (rm << 16) | (rn << 5) | rd) >>> 0),
  // SUBS/CMP (immediate): sf 11 100010 sh imm12 Rn Rd
  fc
    .tuple(
      fc.integer({ min: 0, max: 1 }),
      fc.integer({ min: 0, max: 1 }),
      fc.nat(4095),
      fc.nat(31),
      fc.nat(31),
    )
    .map(
      ([sf, sh, imm, rn, rd]) => ((sf << 31) | 0x71000000 | (sh << 22) | (imm << 10) | (rn << 5) | rd) >>> 0,
    ),
);
const bcond = fc
  .tuple(fc.integer({ min: -(1 << 18), max: (1 << 18) - 1 }), fc.nat(15))
  .map(([imm19, cond]) => (0x54000000 | ((imm19 & 0x7ffff) << 5) | cond) >>> 0);
const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Values near the edges that flags care about, and random ones. */
const half = fc.oneof(u32, fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff));

function state(cpu: Cpu): number[] {
  return [...cpu.r.subarray(0, I.PSTATE + 1), cpu.r[I.SP_EL1]!];
}

test("a fused compare + B.cond does what the two instructions do in turn", () => {
  const dec = getDecoder();
  fc.assert(
    fc.property(
      compare,
      bcond,
      fc.array(half, { minLength: 66, maxLength: 66 }),
      fc.nat(15),
      u32,
      (a, b, regs, nzcv, pcOff) => {
        const fx = fuseCompareBranch(a, b);
        assert.ok(fx, `fusable ${a.toString(16)}`);
        const pcLo = (0x10000 + (pcOff & 0xff8)) >>> 0; // not a page's last slot
        const setup = (cpu: Cpu) => {
          regs.forEach((v, i) => {
            if (i < 64) cpu.r[i] = v; // X0-X30, SP_EL0
          });
          cpu.r[I.PSTATE] = (nzcv << 28) >>> 0;
          cpu.pcHi = 0x12;
          cpu.pcLo = pcLo;
          cpu.r[I.PC] = pcLo + 4;
          cpu.r[I.PC + 1] = 0x12;
        };
        const one = makeCpu();
        setup(one);
        dec.decode(a)!(one);
        one.pcLo = pcLo + 4;
        one.r[I.PC] = pcLo + 8;
        dec.decode(b)!(one);
        const two = makeCpu();
        setup(two);
        fx(two);
        assert.deepEqual(state(two), state(one), `${a.toString(16)} ${b.toString(16)}`);
      },
    ),
    { numRuns: 5000 },
  );
});

test("other pairs are not fused", () => {
  assert.equal(fuseCompareBranch(0xab02001f, 0x54000001), null, "ADDS is not fused");
  assert.equal(fuseCompareBranch(0xeb02041f, 0x54000001), null, "a shifted operand is not fused");
  assert.equal(fuseCompareBranch(0xeb02001f, 0x14000001), null, "B is not B.cond");
});

test("through the interpreter, warm fused pairs that differ only in the branch offset keep their own targets", () => {
  // 0x10000: cmp w1, #0; b.le 0x10100      0x10008: cmp w1, #0; b.le 0x1010c
  // 0x10100: movz x5, #1; brk #0            0x1010c: movz x5, #2; brk #0
  const cpu = makeCpu();
  const put = (addr: number, w: number) => cpu.dv.setUint32(RAM_OFFSET + addr, w >>> 0, true);
  const bcondTo = (from: number, to: number, cond: number) =>
    0x54000000 | ((((to - from) >> 2) & 0x7ffff) << 5) | cond;
  put(0x10000, 0x7100003f);
  put(0x10004, bcondTo(0x10004, 0x10100, 13));
  put(0x10008, 0x7100003f);
  put(0x1000c, bcondTo(0x1000c, 0x1010c, 13));
  put(0x10100, 0xd2800025);
  put(0x10104, 0xd4200000);
  put(0x1010c, 0xd2800045);
  put(0x10110, 0xd4200000);
  cpu.setX(1, 0n);
  for (let pass = 0; pass < 3; pass++) {
    for (const [start, x5, brkAt] of [
      [0x10000, 1n, 0x10104n],
      [0x10008, 2n, 0x10110n],
    ] as const) {
      cpu.setX(5, 0n);
      cpu.pc = BigInt(start);
      const exit = cpu.run(100);
      assert.equal(exit.kind, "exception");
      assert.equal(cpu.getX(5), x5, `pass ${pass}, from ${start.toString(16)}`);
      assert.equal(cpu.pc, brkAt);
    }
  }
  // Four instructions per run (cmp, b.le, movz, brk), fused or not.
  assert.equal(cpu.instructionCount, 3n * 2n * 4n);
});
