/**
 * PMUv3 (Arm ARM D11, src/arch/arm64/pmu.ts): identification, the cycle counter and the
 * event counters counting retired instructions exactly, the P/U filters by EL, CHAIN,
 * SW_INCR, PMCR_EL0.P/C/D/LC, the overflow interrupt at the instruction where a counter
 * wraps, PMSELR indirection, EL0 access through PMUSERENR_EL0, and save/restore.
 *
 * A system-mode CPU (EL1, MMU off, RAM from 0); every exception vector holds an HVC:
 * #0x11 current EL sync, #0x12 lower EL sync, #0x14 current EL IRQ.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, createVmMemory, RAM_OFFSET } from "../src/arch/arm64/index.ts";
import { PMCEID0, PMU_EVENT, refreshPmu } from "../src/arch/arm64/pmu.ts";
import { I } from "../src/arch/arm64/state.ts";
import { sysregIndex } from "../src/arch/arm64/sysregs.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { captureSections, restoreSections } from "../src/vmm/snapshot/machine-state.ts";

const RAM = 1 << 20;
const CODE = 0x10000;
const VBAR = 0x11000;
const TARGET = 0x12000;
const NOP = 0xd503201f;
const W = {
  msrPmcrX1: 0xd51b9c01,
  mrsX3Pmcr: 0xd53b9c03,
  msrCntensetX2: 0xd51b9c22,
  mrsX3Ccntr: 0xd53b9d03,
  msrSwincX2: 0xd51b9c82,
  mrsX3Swinc: 0xd53b9c83,
  mrsX3Ceid0: 0xd53b9cc3,
  mrsX4Ceid1: 0xd53b9ce4,
  msrSelrX1: 0xd51b9ca1,
  mrsX3Xevtyper: 0xd53b9d23,
  msrXevtyperX2: 0xd51b9d22,
  mrsX3Xevcntr: 0xd53b9d43,
  msrXevcntrX2: 0xd51b9d42,
  mrsX3Userenr: 0xd53b9e03,
  msrUserenrX1: 0xd51b9e01,
  msrIntensetX2: 0xd5189e22,
  mrsX3Ovsset: 0xd53b9e63,
  msrOvsclrX2: 0xd51b9c62,
  mrsX3Ccfiltr: 0xd53befe3,
  mrsX3Dfr0: 0xd5380503,
  mrsX3Evcntr6: 0xd53be8c3,
  mrsX3Evtyper6: 0xd53becc3,
  mrsX4Evcntr0: 0xd53be804,
  eret: 0xd69f03e0,
  svc0: 0xd4000001,
  daifclrI: 0xd50342ff,
  hvc11: 0xd4000222,
  hvc12: 0xd4000242,
  hvc13: 0xd4000262,
  hvc14: 0xd4000282,
} as const;
const IL = 1 << 25;
const E = 1;
const CYCLES = 0x8000_0000;
const FILTER_P = 0x8000_0000; // not at EL1
const FILTER_U = 0x4000_0000; // not at EL0

function put(cpu: Cpu, addr: number, words: readonly number[]): void {
  words.forEach((w, i) => {
    cpu.dv.setUint32(RAM_OFFSET + addr + i * 4, w >>> 0, true);
  });
}
function machine(code: readonly number[]): Cpu {
  const cpu = new Cpu({ memory: createVmMemory(RAM), index: 0, bus: { ramBase: 0, ramSize: RAM } });
  put(cpu, VBAR + 0x200, [W.hvc11]);
  put(cpu, VBAR + 0x280, [W.hvc14]);
  put(cpu, VBAR + 0x400, [W.hvc12]);
  setReg(cpu, "VBAR_EL1", VBAR);
  put(cpu, CODE, code);
  cpu.pc = BigInt(CODE);
  return cpu;
}
function setReg(cpu: Cpu, name: string, v: bigint | number): void {
  const i = sysregIndex(name);
  const b = BigInt(v);
  cpu.r[i] = Number(b & 0xffffffffn);
  cpu.r[i + 1] = Number((b >> 32n) & 0xffffffffn);
  refreshPmu(cpu);
}
function reg(cpu: Cpu, name: string): bigint {
  const i = sysregIndex(name);
  return (BigInt(cpu.r[i + 1]!) << 32n) | BigInt(cpu.r[i]!);
}
const esr = (cpu: Cpu) => Number(reg(cpu, "ESR_EL1"));
const elr = (cpu: Cpu) => (BigInt(cpu.r[I.ELR_EL1 + 1]!) << 32n) | BigInt(cpu.r[I.ELR_EL1]!);
function runToHvc(cpu: Cpu, budget = 10_000): number {
  for (;;) {
    const exit = cpu.run(budget);
    if (exit.kind === "budget") continue; // run() stops early where an overflow IRQ is due
    assert.equal(exit.kind, "hvc", JSON.stringify(exit));
    return exit.kind === "hvc" ? exit.imm : -1;
  }
}
const nops = (n: number) => Array.from({ length: n }, () => NOP);

test("identification: PMUVer = 1 (PMUv3), PMCR_EL0.N = 6, PMCEID0 lists exactly the events implemented", () => {
  const cpu = machine([
    W.mrsX3Dfr0,
    0xaa0303e5,
    W.mrsX3Pmcr,
    0xaa0303e6,
    W.mrsX3Ceid0,
    W.mrsX4Ceid1,
    W.hvc13,
  ]);
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal((cpu.getX(5) >> 8n) & 0xfn, 1n);
  assert.equal(cpu.getX(6), 0x41013000n, "IMP 0x41, IDCODE 1, N = 6, counting off");
  assert.equal((cpu.getX(6) >> 11n) & 0x1fn, 6n);
  assert.equal(cpu.getX(3), BigInt(PMCEID0));
  assert.equal(PMCEID0, (1 << 0x00) | (1 << 0x08) | (1 << 0x11) | (1 << 0x1e));
  assert.equal(cpu.getX(4), 0n);
  // Counters past N are UNDEFINED; PMSWINC is write-only.
  for (const w of [W.mrsX3Evcntr6, W.mrsX3Evtyper6, W.mrsX3Swinc]) {
    const c = machine([w]);
    assert.equal(runToHvc(c), 0x11);
    assert.equal(esr(c), IL, w.toString(16));
  }
});

test("the cycle counter counts retired instructions, one cycle each, exactly", () => {
  const cpu = machine([W.msrPmcrX1, W.msrCntensetX2, ...nops(10), W.mrsX3Ccntr, W.hvc13]);
  cpu.setX(1, 5n); // E | C
  cpu.setX(2, BigInt(CYCLES));
  const before = cpu.instructionCount;
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(cpu.getX(3), 11n, "the enabling MSR and ten NOPs");
  // After the run the stored register is exact too: the MRS and the HVC as well.
  assert.equal(reg(cpu, "PMCCNTR_EL0"), 13n);
  assert.equal(cpu.instructionCount - before, 14n);
});

test("P and U filters: each instruction counts at the EL it executed at (ERET at EL1, SVC at EL0)", () => {
  // EL1: 5 NOPs, ERET; EL0: 7 NOPs, SVC; EL1 (vector): HVC.
  const cpu = machine([...nops(5), W.eret]);
  put(cpu, TARGET, [...nops(7), W.svc0]);
  cpu.r[I.ELR_EL1] = TARGET;
  cpu.r[I.SPSR_EL1] = 0x3c0; // EL0t
  setReg(cpu, "PMEVTYPER0_EL0", FILTER_U | PMU_EVENT.INST_RETIRED); // EL1 only
  setReg(cpu, "PMEVTYPER1_EL0", FILTER_P | PMU_EVENT.INST_RETIRED); // EL0 only
  setReg(cpu, "PMEVTYPER2_EL0", PMU_EVENT.CPU_CYCLES);
  setReg(cpu, "PMCCFILTR_EL0", FILTER_P); // EL0 only
  setReg(cpu, "PMCNTENSET_EL0", 0b111 | CYCLES);
  setReg(cpu, "PMCR_EL0", 0x41013000 | E);
  assert.equal(runToHvc(cpu), 0x12);
  assert.equal(reg(cpu, "PMEVCNTR0_EL0"), 7n, "5 NOPs, ERET, HVC");
  assert.equal(reg(cpu, "PMEVCNTR1_EL0"), 8n, "7 NOPs, SVC");
  assert.equal(reg(cpu, "PMEVCNTR2_EL0"), 15n);
  assert.equal(reg(cpu, "PMCCNTR_EL0"), 8n);
});

test("the overflow interrupt is raised at the instruction where the counter wraps", () => {
  const cpu = machine([W.daifclrI, ...nops(100), W.hvc13]);
  const levels: [boolean, bigint][] = [];
  cpu.onPmuIrq = (c, level) => {
    levels.push([level, c.instructionCount]);
    c.setIrqLine(level);
  };
  setReg(cpu, "PMEVTYPER0_EL0", PMU_EVENT.INST_RETIRED);
  setReg(cpu, "PMEVCNTR0_EL0", 0xffff_fff0);
  setReg(cpu, "PMINTENSET_EL1", 1);
  setReg(cpu, "PMCNTENSET_EL0", 1);
  setReg(cpu, "PMCR_EL0", 0x41013000 | E);
  assert.equal(runToHvc(cpu), 0x14, "the IRQ vector");
  assert.deepEqual(levels, [[true, 16n]]);
  assert.equal(elr(cpu), BigInt(CODE + 16 * 4), "taken after exactly 16 instructions");
  assert.equal(reg(cpu, "PMOVSSET_EL0"), 1n);
  assert.equal(reg(cpu, "PMEVCNTR0_EL0") < 4n, true);
  // PMOVSCLR lowers the request.
  put(cpu, CODE, [W.msrOvsclrX2, W.hvc13]);
  cpu.pc = BigInt(CODE);
  cpu.setX(2, 1n);
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(levels.at(-1)![0], false);
  assert.equal(reg(cpu, "PMOVSSET_EL0"), 0n);
});

test("CHAIN: the odd counter counts the even counter's overflows (a 64-bit count)", () => {
  const cpu = machine([...nops(4), W.hvc13]);
  setReg(cpu, "PMEVTYPER0_EL0", PMU_EVENT.INST_RETIRED);
  setReg(cpu, "PMEVTYPER1_EL0", PMU_EVENT.CHAIN);
  setReg(cpu, "PMEVCNTR0_EL0", 0xffff_fffe);
  setReg(cpu, "PMEVCNTR1_EL0", 41);
  setReg(cpu, "PMCNTENSET_EL0", 0b11);
  setReg(cpu, "PMCR_EL0", 0x41013000 | E);
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(reg(cpu, "PMEVCNTR0_EL0"), 3n);
  assert.equal(reg(cpu, "PMEVCNTR1_EL0"), 42n);
  assert.equal(reg(cpu, "PMOVSSET_EL0"), 1n);
});

test("SW_INCR: PMSWINC increments enabled SW_INCR counters only", () => {
  const cpu = machine([W.msrSwincX2, W.msrSwincX2, W.hvc13]);
  cpu.setX(2, 0b111n);
  setReg(cpu, "PMEVTYPER0_EL0", PMU_EVENT.SW_INCR);
  setReg(cpu, "PMEVTYPER1_EL0", PMU_EVENT.SW_INCR); // not enabled
  setReg(cpu, "PMEVTYPER2_EL0", FILTER_P | PMU_EVENT.SW_INCR); // filtered out at EL1
  setReg(cpu, "PMCNTENSET_EL0", 0b101);
  setReg(cpu, "PMCR_EL0", 0x41013000 | E);
  assert.equal(runToHvc(cpu), 0x13);
  assert.deepEqual(
    [0, 1, 2].map((n) => reg(cpu, `PMEVCNTR${n}_EL0`)),
    [2n, 0n, 0n],
  );
});

test("PMCR_EL0: P and C reset the counters (and read as 0), D divides by 64, LC moves the overflow to bit 63", () => {
  let cpu = machine([W.msrPmcrX1, W.mrsX3Pmcr, W.hvc13]);
  setReg(cpu, "PMEVCNTR3_EL0", 99);
  setReg(cpu, "PMCCNTR_EL0", 77);
  cpu.setX(1, 0b110n); // P | C, E = 0
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(reg(cpu, "PMEVCNTR3_EL0"), 0n);
  assert.equal(reg(cpu, "PMCCNTR_EL0"), 0n);
  assert.equal(cpu.getX(3), 0x41013000n);
  // D: one count per 64 cycles.
  cpu = machine([...nops(130), W.hvc13]);
  setReg(cpu, "PMCNTENSET_EL0", CYCLES);
  setReg(cpu, "PMCR_EL0", 0x41013000 | E | (1 << 3));
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(reg(cpu, "PMCCNTR_EL0"), 2n);
  // Cycle counter overflow: at bit 31 without LC, at bit 63 with it.
  for (const [lc, ovs] of [
    [0, 1n],
    [1 << 6, 0n],
  ] as const) {
    cpu = machine([NOP, NOP, W.hvc13]);
    setReg(cpu, "PMCCNTR_EL0", 0xffff_ffff);
    setReg(cpu, "PMCNTENSET_EL0", CYCLES);
    setReg(cpu, "PMCR_EL0", 0x41013000 | E | lc);
    assert.equal(runToHvc(cpu), 0x13);
    assert.equal(reg(cpu, "PMCCNTR_EL0"), 0x1_0000_0002n);
    assert.equal(reg(cpu, "PMOVSSET_EL0") >> 31n, ovs);
  }
});

test("PMSELR_EL0 selects the counter PMXEVTYPER/PMXEVCNTR reach; 31 is PMCCFILTR; others UNDEFINED", () => {
  const cpu = machine([
    W.msrSelrX1,
    W.msrXevtyperX2,
    W.msrXevcntrX2,
    W.mrsX3Xevcntr,
    0xd2800be1, // mov x1, #95 (SEL = 31 after the mask)
    W.msrSelrX1,
    W.msrXevtyperX2,
    W.mrsX3Ccfiltr,
    W.hvc13,
  ]);
  cpu.setX(1, 4n);
  cpu.setX(2, 0xc000_0011n);
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(reg(cpu, "PMEVTYPER4_EL0"), 0xc000_0011n);
  assert.equal(reg(cpu, "PMEVCNTR4_EL0"), 0xc000_0011n);
  assert.equal(reg(cpu, "PMCCFILTR_EL0"), 0xc000_0000n, "PMCCFILTR has no event field");
  const bad = machine([W.msrSelrX1, W.mrsX3Xevcntr]);
  bad.setX(1, 6n);
  assert.equal(runToHvc(bad), 0x11);
  assert.equal(esr(bad), IL);
});

test("EL0 access: PMUSERENR_EL0 EN/CR/ER/SW open it, otherwise EC 0x18; PMINTEN is EL1 only", () => {
  const atEl0 = (insn: number, userenr: number) => {
    const cpu = machine([W.eret]);
    put(cpu, TARGET, [insn, W.svc0]); // HVC is UNDEFINED at EL0: an SVC says "done"
    cpu.r[I.ELR_EL1] = TARGET;
    cpu.r[I.SPSR_EL1] = 0x3c0;
    setReg(cpu, "PMUSERENR_EL0", userenr);
    setReg(cpu, "PMCCNTR_EL0", 5);
    assert.equal(runToHvc(cpu), 0x12);
    const cls = esr(cpu) >>> 26;
    return cls === 0x15 ? "ok" : cls.toString(16);
  };
  assert.equal(atEl0(W.mrsX3Ccntr, 0), "18");
  assert.equal(atEl0(W.mrsX3Ccntr, 0b100), "ok", "CR");
  assert.equal(atEl0(W.mrsX3Ccntr, 0b1), "ok", "EN");
  assert.equal(atEl0(W.mrsX4Evcntr0, 0b100), "18");
  assert.equal(atEl0(W.mrsX4Evcntr0, 0b1000), "ok", "ER");
  assert.equal(atEl0(W.msrSwincX2, 0b10), "ok", "SW");
  assert.equal(atEl0(W.msrSwincX2, 0b1000), "18");
  assert.equal(atEl0(W.mrsX3Pmcr, 0b1110), "18");
  assert.equal(atEl0(W.mrsX3Pmcr, 0b1), "ok");
  assert.equal(atEl0(W.msrIntensetX2, 0b1), "18", "EL1 only");
  assert.equal(atEl0(W.mrsX3Userenr, 0), "ok", "PMUSERENR is readable at EL0");
  assert.equal(atEl0(W.msrUserenrX1, 0b1), "18", "and not writable");
});

test("the PMU registers are saved: N + save/restore + M instructions count as N + M", () => {
  const loop = [0xd1000400, 0xb5ffffe0, W.hvc13]; // 1: sub x0, x0, #1; cbnz x0, 1b; hvc
  const boot = () => {
    const m = new VirtMachine({ smp: 1, memory: 16 << 20, deterministic: true });
    const v = m.vcpus[0]!;
    v.init();
    return { m, c: v.cpu };
  };
  const program = (c: Cpu) =>
    loop.forEach((w, i) => {
      c.dv.setUint32(RAM_OFFSET + i * 4, w, true);
    });
  const setup = (c: Cpu) => {
    c.pc = BigInt(c.ramBase);
    c.setX(0, 1000n);
    setReg(c, "PMEVTYPER0_EL0", PMU_EVENT.INST_RETIRED);
    setReg(c, "PMEVTYPER5_EL0", FILTER_P | PMU_EVENT.CPU_CYCLES);
    setReg(c, "PMEVCNTR1_EL0", 0x1234);
    setReg(c, "PMSELR_EL0", 3);
    setReg(c, "PMUSERENR_EL0", 0b1010);
    setReg(c, "PMINTENSET_EL1", 0b10);
    setReg(c, "PMCNTENSET_EL0", 0b100001 | CYCLES);
    setReg(c, "PMCR_EL0", 0x41013000 | E);
  };
  const whole = boot();
  program(whole.c);
  setup(whole.c);
  assert.deepEqual(whole.c.run(700), { kind: "budget" });
  assert.deepEqual(whole.c.run(10_000), { kind: "hvc", imm: 0x13 });
  const first = boot();
  program(first.c);
  setup(first.c);
  assert.deepEqual(first.c.run(700), { kind: "budget" });
  const second = new VirtMachine(first.m.config);
  // The program was written past the dirty log: mark its page so the snapshot carries it.
  first.m.vm.markDirty(first.c.ramBase, 4096);
  restoreSections(second, captureSections(first.m));
  const c2 = second.vcpus[0]!.cpu;
  program(c2);
  assert.deepEqual(c2.run(10_000), { kind: "hvc", imm: 0x13 });
  for (const name of [
    "PMCR_EL0",
    "PMCNTENSET_EL0",
    "PMINTENSET_EL1",
    "PMSELR_EL0",
    "PMUSERENR_EL0",
    "PMCCNTR_EL0",
    "PMEVCNTR0_EL0",
    "PMEVCNTR1_EL0",
    "PMEVTYPER5_EL0",
  ]) {
    assert.equal(reg(c2, name), reg(whole.c, name), name);
  }
  assert.equal(reg(c2, "PMCCNTR_EL0"), 2001n, "1000 SUBs, 1000 CBNZs and the HVC");
});
