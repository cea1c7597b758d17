/**
 * The translator against the interpreter on the cases where a translation could go
 * wrong without a single-instruction vector noticing: budgets that cut a block that loops
 * on itself, code rewritten on its own page while it runs, and a fault in the middle of
 * a looping block. Each runs on two CPUs, interpreted and translated, and everything
 * architectural must agree: registers, PC, NZCV, the exit and the retired count.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Cpu, CpuExit } from "../src/arch/arm64/index.ts";
import type { JitOptions } from "../src/arch/arm64/jit/jit.ts";
import { I, RAM_OFFSET } from "../src/arch/arm64/state.ts";
import { sysregIndex } from "../src/arch/arm64/sysregs.ts";
import { ArmboxRunner } from "../tools/difftest/armbox-runner.ts";
import { type Case, WINDOW, WINDOW_SIZE } from "../tools/difftest/layout.ts";
import { PageTables } from "./support/pagetables.ts";
import { CODE_BASE, makeCpu, runWords } from "./support/snippet.ts";

// The bench's tight loop: movz x0,#0x4000,lsl#16; mov x1,#0; mov x2,#7;
// loop: add x1,x1,x2; eor x2,x2,x1,lsl#3; and x3,x1,#0xff; subs x0,x0,#1; b.ne loop
const LOOP = [0xd2a80000, 0xd2800001, 0xd28000e2, 0x8b020021, 0xca010c42, 0x92401c23, 0xf1000400, 0x54ffff81];
// x0 counts loop iterations; at x1 == 100 the loop stores "add x0, x0, #16" over its own
// first instruction (same page, earlier block), then runs on: 100 * 1 + 99 * 16 + 1.
const SMC = [
  0xd2800000, 0xd2801901, 0x10000065, 0x52880006, 0x72b22006, 0x91000400, 0xf101903f, 0x54000041, 0xb90000a6,
  0xf1000421, 0x54ffff61, 0xd4200000,
];
// loop: str w6, [x5] (x5 = target, w6 = "add x0, x0, #1") right before target in the same
// block; target: add x0, x0, #16; cbz x1, done; str w7, [x5] (puts #16 back); sub; b loop.
// Every iteration must run the #1 its own block just stored: x0 = 51.
const SMC_IN_BLOCK = [
  0xd2800000, 0xd2800641, 0x100000c5, 0x52808006, 0x72b22006, 0x52880007, 0x72b22007, 0xb90000a6, 0x91004000,
  0xb4000081, 0xb90000a7, 0xd1000421, 0x17fffffb, 0xd4200000,
];
// x0 = 0x20000; loop: ldr x1, [x0], #8; add x2, x2, x1; b loop — until x0 leaves RAM (1 MiB).
const FAULT = [0xd2a00040, 0xd2800002, 0xf8408401, 0x8b010042, 0x17fffffe];

function load(cpu: Cpu, words: number[]): void {
  words.forEach((w, i) => {
    cpu.dv.setUint32(RAM_OFFSET + CODE_BASE + i * 4, w >>> 0, true);
  });
  cpu.pc = BigInt(CODE_BASE);
  cpu.flushDecodeCache();
}

/** Writes `words` into guest RAM at physical address `pa`. */
function put(cpu: Cpu, pa: number, words: number[]): void {
  words.forEach((w, i) => {
    cpu.dv.setUint32(RAM_OFFSET + pa + i * 4, w >>> 0, true);
  });
}

function state(cpu: Cpu, exit: CpuExit): string {
  const x = Array.from(cpu.r.slice(0, 66), (v) => v.toString(16)).join(",");
  return `${exit.kind}${exit.kind === "exception" ? ` ec=${exit.ec} far=${exit.far}` : ""} pc=${cpu.pc.toString(16)} nzcv=${(cpu.r[I.PSTATE]! >>> 28).toString(16)} n=${cpu.instructionCount} x=${x}`;
}

/**
 * test/jit-tracked.test.ts runs every case again with write tracking on (jit.ts
 * `trackWrites`: stores to code pages drop their translations, which then check their
 * words only when entered from JS), as a VM runs them.
 */
const TRACKED = (globalThis as { armboxJitTracked?: boolean }).armboxJitTracked === true;

function translating(opts: { threshold: number; batch: number }): Cpu {
  const cpu = makeCpu(opts);
  if (TRACKED) cpu.jit!.trackWrites();
  return cpu;
}

function pair(words: number[], batch = 1): { interp: Cpu; jit: Cpu } {
  const interp = makeCpu();
  const jit = translating({ threshold: 2, batch });
  load(interp, words);
  load(jit, words);
  return { interp, jit };
}

test("a self-looping translated block stops exactly where the budget says, for every budget", () => {
  const { interp, jit } = pair(LOOP);
  // Budgets 1..40 in turn, then large ones: each run() must end in the same state.
  let total = 0;
  for (let round = 0; round < 200; round++) {
    const budget = round < 160 ? (round % 40) + 1 : 10_000 + round;
    total += budget;
    const a = interp.run(budget);
    const b = jit.run(budget);
    assert.equal(state(jit, b), state(interp, a), `round ${round}, budget ${budget}`);
  }
  assert.ok(
    jit.jit!.executed > total * 0.9,
    `only ${jit.jit!.executed} of ${total} instructions ran translated`,
  );
});

test("a block queued for translation when the code cache is flushed (a restore) is translated later", () => {
  const cpu = translating({ threshold: 2, batch: 64 });
  load(cpu, LOOP);
  // The loop block starts a few times: queued (threshold 2), not yet compiled (batch 64,
  // and not yet urgent at four times the threshold).
  cpu.run(3 + 4 * 5);
  assert.equal(cpu.jit!.stats.blocks, 0, "compiled before the flush");
  cpu.flushDecodeCache();
  cpu.run(100_000);
  assert.ok(
    cpu.jit!.executed > 90_000,
    `only ${cpu.jit!.executed} instructions ran translated after the flush`,
  );
});

test("code rewritten on its own page while it loops runs the new instruction, as interpreted", () => {
  const { interp, jit } = pair(SMC);
  const a = interp.run(100_000);
  const b = jit.run(100_000);
  assert.equal(state(jit, b), state(interp, a));
  assert.equal(jit.getX(0), 100n + 99n * 16n + 1n);
  // Dropped as stale at its next entry, or (write tracking) by the store itself.
  const dropped = jit.jit!.stats.stale + jit.jit!.stats.codeWrites;
  assert.ok(dropped >= 1, "the rewritten block's translation was not dropped");
  if (TRACKED) assert.ok(jit.jit!.stats.codeWrites >= 1, "the store did not drop the page's translations");
  assert.ok(jit.jit!.executed > 0);
});

// x0 = 0; x1 = 1000; x5 = data (a doubleword on the loop's page); x6 = loop;
// w7 = "add x0, x0, #16"; loop: add x0, x0, #1; str x0, [x5]; subs x1, x1, #1; b.ne loop;
// then once (x8 = 0): str w7, [x6] over the loop's first word; x1 = 10; x8 = 1; b loop.
// x0 = 1000 + 10 * 16, which the loop's last store left in data too.
const DATA_BESIDE_CODE = [
  0xd2800000, 0xd2807d01, 0x100001c5, 0x10000066, 0x52880007, 0x72b22007, 0x91000400, 0xf90000a0, 0xf1000421,
  0x54ffffa1, 0xb50000a8, 0xb90000c7, 0xd2800141, 0xd2800028, 0x17fffff8, 0xd4200000, 0, 0,
];

test("stores to data beside translated code on its page keep the translation; a store over the code still drops it", () => {
  const { interp, jit } = pair(DATA_BESIDE_CODE);
  const a = interp.run(100_000);
  const b = jit.run(100_000);
  assert.equal(state(jit, b), state(interp, a));
  assert.equal(jit.getX(0), 1160n);
  assert.equal(jit.dv.getUint32(RAM_OFFSET + CODE_BASE + 64, true), 1160);
  assert.ok(jit.jit!.executed > 3000, `only ${jit.jit!.executed} instructions ran translated`);
  if (TRACKED) {
    // The first 256 stores beside the code are checked against it and drop nothing; then
    // the page's translations check themselves (jit.ts MIXED_PAGE_WRITES), which is how the
    // rewritten add is seen. Without the code bitmap each store dropped the translations.
    const s = jit.jit!.stats;
    assert.equal(s.dataWrites, 256, "stores beside the code checked against it");
    assert.equal(s.selfCheckingPages, 1, "the page's translations check themselves from then on");
    assert.equal(s.codeWrites, 1, "the page was dropped once, to be translated self-checking");
    assert.ok(s.blocks <= 8, `${s.blocks} blocks translated`);
  }
});

test("a store over a later instruction of its own block: the new instruction runs, as interpreted", () => {
  const { interp, jit } = pair(SMC_IN_BLOCK);
  const a = interp.run(100_000);
  const b = jit.run(100_000);
  assert.equal(interp.getX(0), 51n);
  assert.equal(state(jit, b), state(interp, a));
  assert.ok(jit.jit!.entries > 20, `translated blocks entered ${jit.jit!.entries} times`);
});

// A block that loops on itself and stores over its own first word: x0 = 0; x1 = 100;
// x5 = loop; w6 = "add x0, x0, #1"; w7 = "add x0, x0, #16"; loop: add x0, x0, #1;
// cmp x1, #50; csel w8, w7, w6, le; str w8, [x5]; subs x1, x1, #1; b.ne loop; brk #0.
// From x1 = 50 on the loop runs the #16 it stored: 50 * 1 + 1 + 49 * 16.
const SMC_OWN_START = [
  0xd2800000, 0xd2800c81, 0x100000a5, 0x52808006, 0x72b22006, 0x52880007, 0x72b22007, 0x91000400, 0xf100c83f,
  0x1a86d0e8, 0xb90000a8, 0xf1000421, 0x54ffff61, 0xd4200000,
];

test("a looping block that stores over its own first word runs the new word on the next iteration", () => {
  const { interp, jit } = pair(SMC_OWN_START);
  const a = interp.run(100_000);
  const b = jit.run(100_000);
  assert.equal(interp.getX(0), 50n + 1n + 49n * 16n);
  assert.equal(state(jit, b), state(interp, a));
  assert.ok(jit.jit!.executed > 200, `only ${jit.jit!.executed} instructions ran translated`);
});

// The same, rewriting its first word at x1 = 195: after the block was queued for
// translation (2 starts) and before the queue is compiled (8 starts, batch 16): the
// translation must not be made from the words it was queued with. 6 * 1 + 194 * 16.
const SMC_WHILE_QUEUED = [
  0xd2800000, 0xd2801901, 0x100000a5, 0x52808006, 0x72b22006, 0x52880007, 0x72b22007, 0x91000400, 0xf1030c3f,
  0x1a86d0e8, 0xb90000a8, 0xf1000421, 0x54ffff61, 0xd4200000,
];

test("code rewritten while its block waits in the translation queue is translated from the new words", () => {
  const { interp, jit } = pair(SMC_WHILE_QUEUED, 16);
  const a = interp.run(100_000);
  const b = jit.run(100_000);
  assert.equal(interp.getX(0), 6n + 194n * 16n);
  assert.equal(state(jit, b), state(interp, a));
  // With write tracking every store to the page drops its translation again: few run.
  assert.ok(jit.jit!.executed > 50, `only ${jit.jit!.executed} instructions ran translated`);
});

// The same with SIMD&FP stores (jit/emit-simd.ts): s6 = "add x0, x0, #1", s7 = "add x0,
// x0, #16" from literals; loop: str s6, [x5]; target: add x0, x0, #16; cbz x1, done;
// str s7, [x5]; sub x1, x1, #1; b loop; done: brk #0.
const SMC_IN_BLOCK_V = [
  0xd2800000, 0xd2800641, 0x100000c5, 0x1c000166, 0x1c000167, 0xd503201f, 0xd503201f, 0xbd0000a6, 0x91004000,
  0xb4000081, 0xbd0000a7, 0xd1000421, 0x17fffffb, 0xd4200000, 0x91000400, 0x91004000,
];

test("a SIMD&FP store over a later instruction of its own block: the new instruction runs, as interpreted", () => {
  const { interp, jit } = pair(SMC_IN_BLOCK_V);
  const a = interp.run(100_000);
  const b = jit.run(100_000);
  assert.equal(interp.getX(0), 51n);
  assert.equal(state(jit, b), state(interp, a));
  assert.ok(jit.jit!.entries > 20, `translated blocks entered ${jit.jit!.entries} times`);
});

// x0 = 0; x1 = 200; x9 = func (the next page); loop: blr x9; subs x1, x1, #1; b.ne loop;
// brk #0. func: add x0, x0, #3; ret. BLR and RET leave for PCs known only at run time.
const CALLS = [0xd2800000, 0xd2801901, 0x10007fc9, 0xd63f0120, 0xf1000421, 0x54ffffc1, 0xd4200000];
const CALLS_AND_FUNC = [...CALLS, ...new Array<number>(1024 - CALLS.length).fill(0), 0x91000c00, 0xd65f03c0];

test("indirect branches continue through the jump cache inside wasm, exact at every budget", () => {
  const { interp, jit } = pair(CALLS_AND_FUNC, 16);
  for (let round = 0; round < 120; round++) {
    const budget = round < 100 ? (round % 25) + 1 : 100_000;
    const a = interp.run(budget);
    const b = jit.run(budget);
    assert.equal(state(jit, b), state(interp, a), `round ${round}, budget ${budget}`);
  }
  assert.equal(jit.getX(0), 600n);
  // 200 calls are 600 block transitions: nearly all of them must stay in wasm.
  assert.ok(jit.jit!.executed > 900, `only ${jit.jit!.executed} instructions ran translated`);
  assert.ok(jit.jit!.entries < 150, `translated code was entered from JS ${jit.jit!.entries} times`);
});

test("a store over a later instruction of its own block, blocks sharing a module (dispatched)", () => {
  const { interp, jit } = pair(SMC_IN_BLOCK, 16);
  const a = interp.run(100_000);
  const b = jit.run(100_000);
  assert.equal(interp.getX(0), 51n);
  assert.equal(state(jit, b), state(interp, a));
});

test("code rewritten on its own page while it loops, blocks sharing a module (dispatched)", () => {
  const { interp, jit } = pair(SMC, 16);
  const a = interp.run(100_000);
  const b = jit.run(100_000);
  assert.equal(state(jit, b), state(interp, a));
  assert.equal(jit.getX(0), 100n + 99n * 16n + 1n);
});

test("a fault in the middle of a looping translated block: same PC, registers, FAR and count", () => {
  const { interp, jit } = pair(FAULT);
  const a = interp.run(10_000_000);
  const b = jit.run(10_000_000);
  assert.equal(a.kind, "exception");
  assert.equal(state(jit, b), state(interp, a));
  // The loop ran translated until the fault unwound it (so it never returned a count).
  assert.equal(jit.jit!.stats.inlineInstructions, 3);
  assert.equal(jit.jit!.executed, 0);
  assert.equal(jit.jit!.entries, 1);
});

// x0 = 0x20000; x9 = func (the next page); loop: blr x9; b loop. func: ldr x2, [x0], #8;
// add x3, x3, x2; ret — until x0 leaves RAM. One block per module: every call and return
// crosses modules, so the hub (jit/hub.ts) runs each next block its dispatcher found
// (OFF.JIT_NEXT), and the fault comes from a block entered that way, deep in one chain.
const CROSS_FAULT = [
  0xd2a00040,
  0x10007fe9,
  0xd63f0120,
  0x17ffffff,
  ...new Array<number>(1020).fill(0),
  0xf8408402,
  0x8b020063,
  0xd65f03c0,
];

test("a fault in a block entered after another module's dispatcher: same PC, registers, FAR and count", () => {
  const { interp, jit } = pair(CROSS_FAULT, 1);
  const a = interp.run(10_000_000);
  const b = jit.run(10_000_000);
  assert.equal(a.kind, "exception");
  assert.equal(state(jit, b), state(interp, a));
  // Some 500,000 instructions: all but the first few hundred in one call of the hub,
  // which the fault unwound (so it never returned a count).
  assert.ok(jit.instructionCount > 400_000n);
  assert.ok(jit.jit!.entries < 20, `translated code was entered from JS ${jit.jit!.entries} times`);
  assert.ok(jit.jit!.stats.blocks >= 2);
});

// mov x1, #50; loop: add x0, x0, #STEP; subs x1, x1, #1; b.ne loop; adr x2, .; brk #0
const remapCode = (step: number) => [
  0xd2800641,
  0x91000000 | (step << 10),
  0xf1000421,
  0x54ffffc1,
  0x10000002,
  0xd4200000,
];

test("a code page remapped to another physical page, and one physical page at two VAs, run what is mapped", () => {
  const results: string[][] = [];
  for (const jit of [false, true]) {
    const cpu = jit ? translating({ threshold: 2, batch: 1 }) : makeCpu();
    const pt = new PageTables(cpu, { tableArea: 0x80000 });
    put(cpu, 0x20000, remapCode(1));
    put(cpu, 0x30000, remapCode(100));
    const VA = 0x40_0000n;
    const VA2 = 0x50_0000n;
    pt.map(VA, 0x20000);
    pt.map(VA2, 0x20000);
    pt.enable();
    const seen: string[] = [];
    const go = (pc: bigint) => {
      cpu.setX(0, 0n);
      cpu.pc = pc;
      const e = cpu.run(10_000);
      seen.push(`${e.kind} x0=${cpu.getX(0)} x2=0x${cpu.getX(2).toString(16)} n=${cpu.instructionCount}`);
    };
    go(VA); // the x0 += 1 code
    go(VA2); // the same physical page at another VA: ADR sees the other address
    pt.map(VA, 0x30000); // remapped: now the x0 += 100 code
    cpu.flushTlb();
    go(VA);
    results.push(seen);
    if (jit) assert.ok(cpu.jit!.entries >= 3, `translated code entered ${cpu.jit!.entries} times`);
  }
  assert.deepEqual(results[1], results[0]);
  assert.match(results[0]![0]!, /x0=50 x2=0x400010/);
  assert.match(results[0]![1]!, /x0=50 x2=0x500010/);
  assert.match(results[0]![2]!, /x0=5000 x2=0x400010/);
});

// x1 = 1000; loop: add x0, x0, #1; subs x1, x1, #1; b.ne loop; adr x2, .; brk #0.
const ALIAS_LOOP = [0xd2807d01, 0x91000400, 0xf1000421, 0x54ffffc1, 0x10000002, 0xd4200000];

test("code hot at one VA and then at another VA of the same physical page runs translated at both", () => {
  const cpu = translating({ threshold: 2, batch: 1 });
  const pt = new PageTables(cpu, { tableArea: 0x80000 });
  put(cpu, 0x20000, ALIAS_LOOP);
  const VA = 0x40_0000n;
  const VA2 = 0x50_0000n;
  pt.map(VA, 0x20000);
  pt.map(VA2, 0x20000);
  pt.enable();
  const go = (pc: bigint): { x2: bigint; ran: number; translated: number } => {
    const n0 = cpu.instructionCount;
    const t0 = cpu.jit!.executed;
    cpu.pc = pc;
    const e = cpu.run(100_000);
    assert.equal(e.kind, "exception");
    return { x2: cpu.getX(2), ran: Number(cpu.instructionCount - n0), translated: cpu.jit!.executed - t0 };
  };
  go(VA);
  const first = go(VA);
  assert.equal(first.x2, VA + 16n);
  assert.ok(
    first.translated > first.ran * 0.9,
    `at the first VA ${first.translated} of ${first.ran} ran translated`,
  );
  // The loop's translation is for VA: at VA2 it is translated again (before the fix it was
  // interpreted there for good, as the kernel's string functions were after the boot left
  // its identity map).
  go(VA2);
  const second = go(VA2);
  assert.equal(second.x2, VA2 + 16n);
  assert.ok(
    second.translated > second.ran * 0.9,
    `at the second VA ${second.translated} of ${second.ran} ran translated`,
  );
  assert.ok(cpu.jit!.stats.aliases >= 1);
});

// x0 = 0; x1 = 200; x7 = 100; loop: blr x5; cmp x1, x7; b.ne skip; str x4, [x3] (the
// callee's page descriptor: now the other callee); dsb ish; tlbi vae1is, x6; dsb ish; isb;
// skip: tlbi vaae1is, x8 (a page nothing uses); subs x1, x1, #1; b.ne loop; b . (at EL1).
const TLBI_LOOP = [
  0xd2800000, 0xd2801901, 0xd2800c87, 0xd63f00a0, 0xeb07003f, 0x540000c1, 0xf9000064, 0xd5033b9f, 0xd5088326,
  0xd5033b9f, 0xd5033fdf, 0xd5088368, 0xf1000421, 0x54fffec1, 0x14000000,
];
const CALLEE_1 = [0x91000400, 0xd65f03c0]; // add x0, x0, #1; ret
const CALLEE_100 = [0x91019000, 0xd65f03c0]; // add x0, x0, #100; ret

test("a TLBI by VA of another page leaves translated code running; one of a page remapped takes effect at once", () => {
  const results: string[] = [];
  for (const jit of [false, true]) {
    const cpu = jit ? translating({ threshold: 2, batch: 1 }) : makeCpu();
    const pt = new PageTables(cpu, { tableArea: 0x80000 });
    put(cpu, 0x20000, TLBI_LOOP);
    put(cpu, 0x30000, CALLEE_1);
    put(cpu, 0x31000, CALLEE_100);
    const CODE = 0x40_0000n;
    const CALLEE = 0x41_0000n;
    const TABLE = 0x42_0000n;
    // EL1 only (a page writable at EL0 is never executable at EL1).
    const EL1 = { ap: 0 };
    pt.map(CODE, 0x20000, EL1);
    const pte = pt.descriptorAddress(CALLEE, 3);
    pt.map(CALLEE, 0x31000, EL1);
    const remapped = cpu.dv.getBigUint64(RAM_OFFSET + pte, true);
    pt.map(CALLEE, 0x30000, EL1);
    pt.map(TABLE, pte & ~0xfff, EL1);
    pt.enable();
    cpu.setX(3, TABLE + BigInt(pte & 0xfff));
    cpu.setX(4, remapped);
    cpu.setX(5, CALLEE);
    cpu.setX(6, CALLEE >> 12n);
    cpu.setX(8, 0x43_0000n >> 12n);
    cpu.pstate = 0x3c5; // EL1h: TLBI is UNDEFINED at EL0
    cpu.pc = CODE;
    const e = cpu.run(20_000);
    results.push(`${e.kind} x0=${cpu.getX(0)} pc=0x${cpu.pc.toString(16)} n=${cpu.instructionCount}`);
    // Before, every TLBI ended the translated chain: 200 returns to the interpreter or more.
    if (jit) assert.ok(cpu.jit!.entries < 60, `translated code entered ${cpu.jit!.entries} times from JS`);
  }
  assert.equal(results[1], results[0]);
  // 101 calls before the remap (x1 = 200 .. 100), 99 after it.
  assert.match(results[0]!, /x0=10001 /);
});

// At EL1: ldr x9, [x2]; x1 = 100; loop: dc cvau, x2; ic ivau, x2; dc civac, x2;
// dc cvac, x2; add x0, x0, #1; subs x1, x1, #1; b.ne loop; dc cvau, x3 (X3 unmapped: a
// data abort with CM = 1, taken to VBAR_EL1 0 + 0x200, where b . waits).
const CACHE_BY_VA = [
  0xf9400049, 0xd2800c81, 0xd50b7b22, 0xd50b7522, 0xd50b7e22, 0xd50b7a22, 0x91000400, 0xf1000421, 0x54ffff41,
  0xd50b7b23, 0x14000000,
];

test("translated DC CVAU/CVAC/CIVAC and IC IVAU at EL1: no executor on a mapped page, the same abort on an unmapped one", () => {
  const results: string[] = [];
  for (const jit of [false, true]) {
    const cpu = jit ? makeCpu({ threshold: 2, batch: 1, countFallbacks: true }) : makeCpu();
    if (jit && TRACKED) cpu.jit!.trackWrites();
    const pt = new PageTables(cpu, { tableArea: 0x80000 });
    put(cpu, 0x20000, CACHE_BY_VA);
    pt.map(0x40_0000n, 0x20000, { ap: 0 });
    pt.map(0x41_0000n, 0x30000, { ap: 0 });
    put(cpu, 0x40200, [0x14000000]);
    pt.map(0n, 0x40000, { ap: 0 });
    pt.enable();
    cpu.setX(2, 0x41_0008n);
    cpu.setX(3, 0x7_0000n);
    cpu.pstate = 0x3c5;
    cpu.pc = 0x40_0000n;
    const e = cpu.run(2_000);
    const esr = cpu.r[sysregIndex("ESR_EL1")]!;
    const far = cpu.r[sysregIndex("FAR_EL1")]!;
    results.push(
      `${e.kind} x0=${cpu.getX(0)} pc=0x${cpu.pc.toString(16)} esr=${esr.toString(16)} far=${far.toString(16)}`,
    );
    if (jit) {
      const fb = cpu.jit!.fallbacks!;
      for (const w of CACHE_BY_VA.slice(2, 6))
        assert.ok((fb.get(w) ?? 0) === 0, `${w.toString(16)} ran its executor`);
      assert.ok(cpu.jit!.executed > 500, `only ${cpu.jit!.executed} instructions ran translated`);
    }
  }
  assert.equal(results[1], results[0]);
  // ESR: EC 0x25 (data abort, current EL), IL, ISS CM (bit 8) and WnR (bit 6), a translation fault; FAR = X3.
  assert.match(results[0]!, /^budget x0=100 pc=0x200 esr=9600014[4-7] far=70000$/);
});

// At VA 0x40_1000 (TLB set 1; the callee's page is in set 0): x0 = 0; x1 = 100; x9 = 1 << 32; loop: blr x9; subs x1, x1, #1; b.ne loop;
// brk #0. At VA 1 << 32 (PC[63:32] = 1): ldr x2, lit; add x0, x0, x2; ret; lit: .quad 7.
const CALLER_LOW = [0xd2800000, 0xd2800c81, 0xd2c00029, 0xd63f0120, 0xf1000421, 0x54ffffc1, 0xd4200000];
const CALLEE_HIGH = [0x58000062, 0x8b020000, 0xd65f03c0, 7, 0];

test("a chain into a block whose PC[63:32] differs: its helpers see the whole PC (a literal load)", () => {
  const results: string[] = [];
  for (const jit of [false, true]) {
    // Batch 3: the three blocks of the loop share one module, so every transition can stay in wasm.
    const cpu = jit ? translating({ threshold: 2, batch: 3 }) : makeCpu();
    const pt = new PageTables(cpu, { tableArea: 0x80000 });
    put(cpu, 0x20000, CALLER_LOW);
    put(cpu, 0x30000, CALLEE_HIGH);
    pt.map(0x40_1000n, 0x20000);
    pt.map(1n << 32n, 0x30000);
    pt.enable();
    cpu.pc = 0x40_1000n;
    const e = cpu.run(100_000);
    results.push(`${e.kind} x0=${cpu.getX(0)} pc=0x${cpu.pc.toString(16)} n=${cpu.instructionCount}`);
    if (jit) assert.ok(cpu.jit!.entries < 30, `translated code entered ${cpu.jit!.entries} times from JS`);
  }
  assert.equal(results[1], results[0]);
  assert.match(results[0]!, /x0=700 /);
});

// Four programs at CODE, each ending in BRK, run in turn on one CPU (as the differential
// runner does, writing the code without the guest's stores): the second caches B.LT at
// CODE in the interpreter; the third's block from CODE has its extent computed from memory
// (up to the BRK) and then runs translated, so the interpreter never sees its words; the
// fourth holds the second's B.LT again, which the cache then took for checked, running on
// past the taken branch into an ANDS. (Found by the lazy-flags test; Linux patches NOPs
// to branches and back, which can do the same.)
test("the interpreter's block extent stays true to memory when translated code ran words it never cached", () => {
  const interp = new ArmboxRunner();
  const jit = new ArmboxRunner({ threshold: 1, batch: 1 });
  const run = (words: number[], nzcv: number) => {
    const x = new Uint32Array(62);
    x[4] = WINDOW + 1024;
    const c: Case = {
      cls: "t",
      seed: 0,
      words,
      state: { x, v: new Uint8Array(512), nzcv, fpcr: 0, fpsr: 0, mem: new Uint8Array(WINDOW_SIZE) },
    };
    return [interp.run(c), jit.run(c)] as const;
  };
  run([0x9a85c081, 0x6a000040, 0x9a82b406, 0xf10e5be7, 0x910003e7], 0x8000_0000);
  run([0x5400004b, 0xf12c90c3, 0x910003e7], 0x3000_0000);
  run([0xeb0708ff, 0x6a0200c4, 0x9a828422, 0x910003e7], 0xa000_0000);
  const [a, b] = run(
    [0x5400004b, 0xf25820a1, 0xf9400041, 0xf9400041, 0x1a050025, 0x54000044, 0x910003e7],
    0x1000_0000,
  );
  assert.equal(b.nzcv, a.nzcv);
  assert.equal(a.nzcv, 0x1000_0000);
  assert.deepEqual(b.x, a.x);
});

// x4 = data: (0x10, 0x20); x5 = 0; x8 = 6; x2:x3 = (1, 2); x6:x7 = (0x30, 0x40);
// loop: add x5, x5, x2; casp x2, x3, x6, x7, [x4]; subs x8, x8, #1; b.ne loop. CASP runs by
// its executor and writes x2 after the loop's last read of it: the next iteration must
// read what it wrote (x5 = 1 + 0x10 + 0x10 + 3 * 0x30), not the value the translation
// loaded before its loop.
const LOOP_EXECUTOR_WRITES = [
  0xd2a00044, 0xd2800005, 0xd28000c8, 0xd2800022, 0xd2800043, 0xd2800606, 0xd2800807, 0x8b0200a5, 0x48227c86,
  0xf1000508, 0x54ffffa1, 0xd4200000,
];

test("a register an executor writes inside a self-looping block is read back on the next iteration", () => {
  const { interp, jit } = pair(LOOP_EXECUTOR_WRITES);
  for (const cpu of [interp, jit]) put(cpu, 0x20000, [0x10, 0, 0x20, 0]);
  const a = interp.run(1000);
  const b = jit.run(1000);
  assert.equal(state(jit, b), state(interp, a));
  assert.equal(jit.getX(5), 1n + 0x10n + 0x10n + 3n * 0x30n);
  assert.ok(jit.jit!.executed >= 8, `only ${jit.jit!.executed} instructions ran translated`);
});

test("ARMBOX_JIT_NAMES (JitOptions.names) names each translated function after its block, for profilers", () => {
  const made: WebAssembly.Module[] = [];
  const Original = WebAssembly.Module;
  // Catch the modules the translator makes (it compiles synchronously).
  const Spy = function (this: unknown, bytes: BufferSource) {
    const m = new Original(bytes);
    made.push(m);
    return m;
  } as unknown as typeof WebAssembly.Module;
  Spy.customSections = Original.customSections;
  Spy.exports = Original.exports;
  Spy.imports = Original.imports;
  const names = (jit: JitOptions) => {
    made.length = 0;
    (WebAssembly as { Module: typeof WebAssembly.Module }).Module = Spy;
    try {
      // add x0, x0, #1; add x1, x1, #2; (BRK)
      runWords([0x91000400, 0x91000821], undefined, makeCpu(jit));
    } finally {
      (WebAssembly as { Module: typeof WebAssembly.Module }).Module = Original;
    }
    return made
      .flatMap((m) => WebAssembly.Module.customSections(m, "name"))
      .map((b) => new TextDecoder().decode(b));
  };
  const named = names({ threshold: 1, batch: 1, names: true });
  assert.ok(
    named.some((s) => s.includes(`pc_0_${CODE_BASE.toString(16)}_3`)),
    JSON.stringify(named),
  );
  assert.deepEqual(names({ threshold: 1, batch: 1 }), []);
});
