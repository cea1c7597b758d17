/**
 * The interpreter runs straight-line blocks (src/arch/arm64/cpu.ts, run()): these cases
 * check that nothing a per-instruction loop would see is seen late — code rewritten
 * inside the running block, an interrupt raised by a store in the middle of a block, the
 * counter read mid-block, and PC carrying past a 4 GiB boundary.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, createVmMemory, RAM_OFFSET, type TimerProvider } from "../src/arch/arm64/index.ts";
import { PageTables } from "./support/pagetables.ts";
import { CODE_BASE, runWords } from "./support/snippet.ts";

const NOP = 0xd503201f;
const ADD = 0x91000421; // add x1, x1, #1
const BRK0 = 0xd4200000;
const RAM = 1 << 20;

function systemCpu(code: Record<number, number[]>, bus: Partial<Cpu["bus"]> = {}): Cpu {
  const memory = createVmMemory(RAM);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: 0, ramSize: RAM, ...bus } });
  for (const [addr, words] of Object.entries(code))
    words.forEach((w, i) => {
      cpu.dv.setUint32(RAM_OFFSET + Number(addr) + i * 4, w >>> 0, true);
    });
  cpu.pc = 0x10000n;
  return cpu;
}

test("a store that rewrites a later instruction of the running block takes effect", () => {
  // str w1, [x0] (x0 -> the movz two instructions on); add; movz x2, #1
  const words = [0xb9000001, ADD, 0xd2800022];
  const setup = (value: number) => (c: Cpu) => {
    c.setX(0, BigInt(CODE_BASE + 8));
    c.setX(1, BigInt(value));
  };
  // First pass stores the same word, so the block and its decoded movz are cached.
  const first = runWords(words, setup(0xd2800022));
  assert.equal(first.cpu.getX(2), 1n);
  // Second pass, decode cache warm: the store turns the movz into movz x2, #2.
  const { cpu } = first;
  setup(0xd2800042)(cpu);
  cpu.pc = BigInt(CODE_BASE);
  const exit = cpu.run(100);
  assert.equal(exit.kind, "exception");
  assert.equal(cpu.getX(2), 2n, "the rewritten instruction ran");
});

test("an interrupt raised by a store mid-block is taken before the next instruction", () => {
  const mmio = 0x0900_0000;
  let raise = false;
  let cpu!: Cpu;
  cpu = systemCpu(
    {
      // msr daifclr, #2; add; str w1, [x0] (MMIO: raises the IRQ line); add; add; hvc #2
      65536: [0xd50342ff, ADD, 0xb9000001, ADD, ADD, 0xd4000042],
      640: [0xd4000022], // IRQ vector (current EL, SPx): hvc #1
    },
    {
      mmioRead: () => 0,
      mmioWrite: () => {
        if (raise) cpu.setIrqLine(true);
        return true;
      },
    },
  );
  cpu.setX(0, BigInt(mmio));
  // A first pass without the interrupt decodes everything: the second runs warm blocks.
  const initial = cpu.pstate;
  assert.deepEqual(cpu.run(100), { kind: "hvc", imm: 2 });
  cpu.pstate = initial;
  cpu.pc = 0x10000n;
  raise = true;
  assert.deepEqual(cpu.run(100), { kind: "hvc", imm: 1 });
  const elr = cpu.dvState.getBigUint64(280, true);
  assert.equal(elr, 0x1000cn, "ELR is the instruction right after the store");
});

test("the counter read in the middle of a run counts every earlier instruction", () => {
  // Counter = instructions retired; code starts mid-page so the block is not at slot 0.
  const timer: TimerProvider = {
    frequency: 62_500_000,
    counter: (c) => c.instructionCount,
    readReg: () => 0n,
    writeReg: () => {},
  };
  // 5 x add (NOP would end the block: it is a system instruction);
  // mrs x0, cntvct_el0; hvc #1
  const code = [ADD, ADD, ADD, ADD, ADD, 0xd53be040, 0xd4000022];
  for (const budgets of [[100], [2, 2, 100], [1, 1, 1, 1, 1, 100], [3, 100]]) {
    const cpu = systemCpu({ 67392: code });
    cpu.timer = timer;
    // Twice: cold (every instruction decoded on the way), then warm (whole blocks).
    for (const pass of [0, 1]) {
      cpu.pc = 0x10740n;
      let exit = cpu.run(budgets[0]!);
      for (const b of budgets.slice(1)) if (exit.kind === "budget") exit = cpu.run(b);
      assert.deepEqual(exit, { kind: "hvc", imm: 1 }, `budgets ${budgets}`);
      const before = BigInt(pass * 7 + 5);
      assert.equal(cpu.getX(0), before, `budgets ${budgets}, pass ${pass}: instructions before the read`);
      assert.equal(cpu.instructionCount, BigInt(pass * 7 + 7));
    }
  }
});

test("falling through the last instruction below a 4 GiB boundary carries into PC[63:32]", () => {
  const memory = createVmMemory(RAM);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: 0, ramSize: RAM }, userMode: true });
  // VA 0x0_ffff_f000 -> PA 0x20000; VA 0x1_0000_0000 -> PA 0x30000; VA 0 -> PA 0x40000.
  const pt = new PageTables(cpu, { tableArea: 0x80000 });
  pt.map(0xfffff000n, 0x20000);
  pt.map(0x1_0000_0000n, 0x30000);
  pt.map(0n, 0x40000);
  pt.enable();
  cpu.dv.setUint32(RAM_OFFSET + 0x20ff8, NOP, true);
  cpu.dv.setUint32(RAM_OFFSET + 0x20ffc, NOP, true);
  cpu.dv.setUint32(RAM_OFFSET + 0x30000, BRK0, true);
  cpu.pc = 0xfffffff8n;
  const exit = cpu.run(100);
  assert.equal(exit.kind, "exception");
  assert.equal(exit.kind === "exception" && exit.ec, 0x3c, "BRK at the far side");
  assert.equal(cpu.pc, 0x1_0000_0000n);

  // A BR from that last slot to 0x0_0000_0000 is a branch, not a fall-through: no carry.
  cpu.dv.setUint32(RAM_OFFSET + 0x20ffc, 0xd61f0060, true); // br x3
  cpu.dv.setUint32(RAM_OFFSET + 0x40000, 0xd4200020, true); // brk #1
  cpu.setX(3, 0n);
  cpu.pc = 0xfffffff8n;
  const exit2 = cpu.run(100);
  assert.equal(exit2.kind === "exception" && exit2.iss, 1, "BRK #1 at 0x0");
  assert.equal(cpu.pc, 0n);
});

test("a branch written into a block whose end was computed before, never decoded, ends the block", () => {
  // mov x0, #1; add x0, x0, #1; nop (later: b +8, over the next); mov x0, #99; brk #0
  const cpu = systemCpu({ 65536: [0xd2800020, 0x91000400, NOP, 0xd2800c60, BRK0] });
  // One instruction: the block [mov .. brk] has its end computed, only its first word decoded.
  assert.equal(cpu.run(1).kind, "budget");
  cpu.dv.setUint32(RAM_OFFSET + 0x10008, 0x14000002, true); // b +8, as a DMA write would
  cpu.pc = 0x10000n;
  cpu.run(4);
  // mov, add, b, brk (taken to EL1's vector): x0 = 2; running on past the branch in the
  // same block would have run the mov x0, #99 as the fourth instruction.
  assert.equal(cpu.getX(0), 2n);
});
