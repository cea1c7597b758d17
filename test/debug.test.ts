/**
 * Self-hosted debug (Arm ARM D2, src/arch/arm64/debug.ts): the debug registers, the OS
 * lock, hardware breakpoints, watchpoints and software step, each exception with its
 * ESR/ELR/FAR/SPSR, and each rule that enables or disables debug exceptions (OS lock,
 * double lock, MDSCR_EL1.MDE/KDE/SS, PSTATE.D, the EL, PMC/PAC/SSC, links).
 *
 * A system-mode CPU (EL1, MMU off, RAM from 0). Every exception vector holds an HVC that
 * ends the run: #0x10 current EL with SP0, #0x11 current EL with SPx, #0x12 lower EL.
 * Code ends with HVC #0x13 when nothing is expected to trap.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkWatchpoint, DEBUG_EC, MDSCR, refreshDebug } from "../src/arch/arm64/debug.ts";
import { UNWIND } from "../src/arch/arm64/exceptions.ts";
import { Cpu, createVmMemory, RAM_OFFSET } from "../src/arch/arm64/index.ts";
import { I, PSTATE } from "../src/arch/arm64/state.ts";
import { SYSREG_BY_NAME, sysregIndex } from "../src/arch/arm64/sysregs.ts";
import { sysReg } from "../src/hv/onereg.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { captureSections, restoreSections } from "../src/vmm/snapshot/machine-state.ts";

const RAM = 1 << 20;
const CODE = 0x10000;
const TARGET = 0x12000;
const VBAR = 0x11000;
const DATA = 0x20000;

const W = {
  nop: 0xd503201f,
  movX1: 0xd2800021,
  movX2: 0xd2800042,
  movX3: 0xd2800063,
  eret: 0xd69f03e0,
  hvc10: 0xd4000202,
  hvc11: 0xd4000222,
  hvc12: 0xd4000242,
  hvc13: 0xd4000262,
  svc1: 0xd4000021,
  udf: 0x00000000,
  ldaxrX1X2: 0xc85ffc41,
  strX1X2: 0xf9000041,
  ldrX1X2: 0xf9400041,
  daifsetD: 0xd50348df,
  daifclrD: 0xd50348ff,
  bPlus8: 0x14000002,
  msrOslarXzr: 0xd510109f,
  mrsX1Oslsr: 0xd5301181,
  mrsX1Oslar: 0xd5301081,
  msrOslsrX1: 0xd5101181,
  msrMdscrX2: 0xd5100242,
  msrBcr0X1: 0xd51000a1,
  mrsX3Bcr0: 0xd53000a3,
  msrClaimSetX1: 0xd51078c1,
  mrsX3ClaimClr: 0xd53079c3,
  msrClaimClrX1: 0xd51079c1,
  mrsX3ClaimSet: 0xd53078c3,
  mrsX3AuthStatus: 0xd5307ec3,
  mrsX3Mdrar: 0xd5301003,
  msrDtrTxX1: 0xd5130501,
  mrsX3Mdccsr: 0xd5330103,
  mrsX3DtrRx: 0xd5330503,
  msrOsdlrX1: 0xd5101381,
  msrPrcrX1: 0xd5101481,
  mrsX3Wvr3: 0xd53003c3,
  msrWvr3X1: 0xd51003c1,
} as const;

const IL = 1 << 25;
const FSC_DEBUG = 0x22;
/** EL1h with A, I, F masked and D (debug) unmasked; EL1h with everything masked. */
const EL1H_D_CLEAR = 0x1c5;
const EL1H_MASKED = 0x3c5;
const BCR_BAS = 0x1e0; // RES1 without AArch32
const bcr = (o: { pmc?: number; bt?: number; lbn?: number; ssc?: number; e?: number }) =>
  (o.e ?? 1) |
  ((o.pmc ?? 1) << 1) |
  BCR_BAS |
  ((o.ssc ?? 0) << 14) |
  ((o.lbn ?? 0) << 16) |
  ((o.bt ?? 0) << 20);
const wcr = (o: { pac?: number; lsc?: number; bas?: number; wt?: number; lbn?: number; mask?: number }) =>
  1 |
  ((o.pac ?? 1) << 1) |
  ((o.lsc ?? 3) << 3) |
  ((o.bas ?? 0xff) << 5) |
  ((o.lbn ?? 0) << 16) |
  ((o.wt ?? 0) << 20) |
  ((o.mask ?? 0) << 24);

function put(cpu: Cpu, addr: number, words: readonly number[]): void {
  words.forEach((w, i) => {
    cpu.dv.setUint32(RAM_OFFSET + addr + i * 4, w >>> 0, true);
  });
}

/** A system-mode CPU with the vectors in place and the OS lock clear (reset sets it). */
function machine(code: readonly number[] = [], opts: { keepOsLock?: boolean } = {}): Cpu {
  const memory = createVmMemory(RAM);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: 0, ramSize: RAM } });
  put(cpu, VBAR + 0x000, [W.hvc10]);
  put(cpu, VBAR + 0x200, [W.hvc11]);
  put(cpu, VBAR + 0x400, [W.hvc12]);
  setReg(cpu, "VBAR_EL1", BigInt(VBAR));
  if (!opts.keepOsLock) setReg(cpu, "OSLSR_EL1", 0x8n);
  put(cpu, CODE, code);
  cpu.pc = BigInt(CODE);
  return cpu;
}

function setReg(cpu: Cpu, name: string, v: bigint | number): void {
  const i = sysregIndex(name);
  const b = BigInt(v);
  cpu.r[i] = Number(b & 0xffffffffn);
  cpu.r[i + 1] = Number((b >> 32n) & 0xffffffffn);
  refreshDebug(cpu);
}
function reg(cpu: Cpu, name: string): bigint {
  const i = sysregIndex(name);
  return (BigInt(cpu.r[i + 1]!) << 32n) | BigInt(cpu.r[i]!);
}
const core = (cpu: Cpu, idx: number) => (BigInt(cpu.r[idx + 1]!) << 32n) | BigInt(cpu.r[idx]!);
const elr = (cpu: Cpu) => core(cpu, I.ELR_EL1);
const spsr = (cpu: Cpu) => cpu.r[I.SPSR_EL1]!;
const esr = (cpu: Cpu) => Number(reg(cpu, "ESR_EL1"));
const ec = (cpu: Cpu) => esr(cpu) >>> 26;
/** An ESR value: EC, IL = 1 (A64), ISS. */
const syn = (cls: number, iss: number) => ((cls << 26) | IL | iss) >>> 0;

/** Runs until an HVC exit and returns its immediate. */
function runToHvc(cpu: Cpu, budget = 1000): number {
  const exit = cpu.run(budget);
  assert.equal(exit.kind, "hvc", JSON.stringify(exit));
  return exit.kind === "hvc" ? exit.imm : -1;
}

/** Prepares an ERET (at CODE) to `target` with `spsrValue`, from EL1 with PSTATE.D set. */
function eretTo(cpu: Cpu, target: number, spsrValue: number): void {
  put(cpu, CODE, [W.eret]);
  cpu.pc = BigInt(CODE);
  cpu.pstate = EL1H_MASKED;
  cpu.r[I.ELR_EL1] = target;
  cpu.r[I.ELR_EL1 + 1] = 0;
  cpu.r[I.SPSR_EL1] = spsrValue;
  cpu.flushDecodeCache();
}

// ---------------------------------------------------------------------------
// Registers

test("OS lock: OSLK is set after reset, OSLAR_EL1 writes it, OSLSR_EL1 reports it (OSLM = 0b10)", () => {
  const cpu = machine([W.mrsX1Oslsr, W.msrOslarXzr, W.mrsX3Bcr0, W.hvc13], { keepOsLock: true });
  put(cpu, CODE + 8, [0xd5301183]); // mrs x3, oslsr_el1
  assert.equal(reg(cpu, "OSLSR_EL1"), 0xan);
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(cpu.getX(1), 0xan, "locked at reset");
  assert.equal(cpu.getX(3), 0x8n, "unlocked by OSLAR_EL1 = 0");
  // OSLAR is write-only and OSLSR read-only: the other direction is UNDEFINED.
  for (const w of [W.mrsX1Oslar, W.msrOslsrX1]) {
    const c = machine([w]);
    assert.equal(runToHvc(c), 0x11);
    assert.equal(esr(c), IL, `EC 0 for ${w.toString(16)}`);
  }
});

test("claim tags, authentication status, ROM address, DCC with no debugger attached", () => {
  const cpu = machine([
    W.msrClaimSetX1,
    W.mrsX3ClaimClr,
    0xaa0303e4, // mov x4, x3
    W.mrsX3ClaimSet,
    0xaa0303e5, // mov x5, x3
    0xd2800061, // mov x1, #3
    W.msrClaimClrX1,
    W.mrsX3ClaimClr,
    0xaa0303e6, // mov x6, x3
    W.mrsX3AuthStatus,
    0xaa0303e7, // mov x7, x3
    W.mrsX3Mdrar,
    0xaa0303e8, // mov x8, x3
    W.mrsX3Mdccsr,
    0xaa0303e9, // mov x9, x3
    W.msrDtrTxX1,
    W.mrsX3Mdccsr,
    0xaa0303ea, // mov x10, x3
    W.mrsX3DtrRx,
    W.hvc13,
  ]);
  cpu.setX(1, 0x1a5n);
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(cpu.getX(4), 0xa5n, "CLAIMCLR reads the tags CLAIMSET set (8 bits)");
  assert.equal(cpu.getX(5), 0xffn, "CLAIMSET reads the implemented tags");
  assert.equal(cpu.getX(6), 0xa4n, "CLAIMCLR clears the tags written as 1");
  assert.equal(cpu.getX(7), 0x0fn, "Non-secure invasive and non-invasive debug enabled; no Secure state");
  assert.equal(cpu.getX(8), 0n, "no ROM table");
  assert.equal(cpu.getX(9), 0n, "DCC empty");
  assert.equal(cpu.getX(10), 1n << 29n, "DTRTX stays full: nobody drains it");
  assert.equal(cpu.getX(3), 0n);
});

test("register masks: BCR's BAS is RES1, WVR[1:0] are RES0, MDSCR keeps SS/TDCC/KDE/MDE only", () => {
  const cpu = machine([W.msrBcr0X1, W.mrsX3Bcr0, W.msrMdscrX2, W.msrWvr3X1, W.hvc13]);
  cpu.setX(1, 0xffff_ffff_ffff_ffffn);
  cpu.setX(2, 0xffff_ffffn);
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(cpu.getX(3), 0x00ff_e1e7n);
  assert.equal(reg(cpu, "MDSCR_EL1"), 0xb001n);
  assert.equal(reg(cpu, "DBGWVR3_EL1"), 0xffff_ffff_ffff_fffcn);
  assert.ok(cpu.debugActive, "MDSCR_EL1.SS and BCR0.E make the run loop check each instruction");
  assert.equal(cpu.watchActive, false, "no watchpoint enabled");
});

test("nothing configured: debugActive and watchActive stay false and blocks run whole", () => {
  const cpu = machine([W.nop, W.nop, W.hvc13]);
  setReg(cpu, "MDSCR_EL1", MDSCR.KDE | MDSCR.MDE); // enabled, but no breakpoint or step
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(cpu.debugActive, false);
  assert.equal(cpu.watchActive, false);
  setReg(cpu, "DBGWCR0_EL1", wcr({}));
  assert.equal(cpu.watchActive, true);
  setReg(cpu, "OSLSR_EL1", 0xan);
  assert.equal(cpu.watchActive, false, "the OS lock disables them all");
});

// ---------------------------------------------------------------------------
// Breakpoints

/** Breakpoint 0 on CODE+4 (EL1 by default); returns the HVC the run ended on. */
function bpRun(o: { bcr?: number; pstate?: number; mdscr?: number; setup?: (c: Cpu) => void }): {
  cpu: Cpu;
  imm: number;
} {
  const cpu = machine([W.movX1, W.movX2, W.movX3, W.hvc13]);
  cpu.pstate = o.pstate ?? EL1H_D_CLEAR;
  setReg(cpu, "MDSCR_EL1", o.mdscr ?? MDSCR.KDE | MDSCR.MDE);
  setReg(cpu, "DBGBVR0_EL1", CODE + 4);
  setReg(cpu, "DBGBCR0_EL1", o.bcr ?? bcr({}));
  o.setup?.(cpu);
  return { cpu, imm: runToHvc(cpu) };
}

test("an EL1 breakpoint: EC 0x31, IFSC 0x22, ELR = the instruction, which did not run", () => {
  const { cpu, imm } = bpRun({});
  assert.equal(imm, 0x11);
  assert.equal(esr(cpu), syn(DEBUG_EC.BREAKPOINT_CURRENT, FSC_DEBUG));
  assert.equal(elr(cpu), BigInt(CODE + 4));
  assert.equal(cpu.getX(1), 1n);
  assert.equal(cpu.getX(2), 0n, "the breakpointed instruction did not execute");
  assert.equal(spsr(cpu), EL1H_D_CLEAR);
  assert.equal(cpu.pstate & PSTATE.D, PSTATE.D, "entry masks debug exceptions");
});

test("EL1 breakpoints need MDE, KDE, PSTATE.D clear, E, a PMC with EL1, a Non-secure SSC and no lock", () => {
  const cases: [string, Parameters<typeof bpRun>[0]][] = [
    ["PSTATE.D", { pstate: EL1H_MASKED }],
    ["KDE = 0", { mdscr: MDSCR.MDE }],
    ["MDE = 0", { mdscr: MDSCR.KDE }],
    ["E = 0", { bcr: bcr({ e: 0 }) }],
    ["PMC = EL0 only", { bcr: bcr({ pmc: 2 }) }],
    ["PMC = 0b00 (reserved)", { bcr: bcr({ pmc: 0 }) }],
    ["SSC = Secure only", { bcr: bcr({ ssc: 2 }) }],
    ["OS lock", { setup: (c) => setReg(c, "OSLSR_EL1", 0xan) }],
    ["double lock", { setup: (c) => setReg(c, "OSDLR_EL1", 1) }],
    ["not context-aware: context type on breakpoint 0", { bcr: bcr({ bt: 2 }) }],
    ["address mismatch (AArch32 only)", { bcr: bcr({ bt: 4 }) }],
  ];
  for (const [what, o] of cases) {
    const { cpu, imm } = bpRun(o);
    assert.equal(imm, 0x13, what);
    assert.equal(cpu.getX(3), 3n, what);
  }
  // Still firing: PMC = both ELs, SSC = Non-secure, the double lock with CORENPDRQ set.
  for (const o of [
    { bcr: bcr({ pmc: 3 }) },
    { bcr: bcr({ ssc: 1 }) },
    {
      setup: (c: Cpu) => {
        setReg(c, "OSDLR_EL1", 1);
        setReg(c, "DBGPRCR_EL1", 1);
      },
    },
  ]) {
    assert.equal(bpRun(o).imm, 0x11, JSON.stringify(o));
  }
});

test("an EL0 breakpoint fires without KDE and whatever PSTATE.D: EC 0x30", () => {
  const cpu = machine();
  put(cpu, TARGET, [W.movX1, W.movX2, W.hvc13]);
  eretTo(cpu, TARGET, 0x3c0); // EL0t with DAIF masked: D does not mask lower-EL debug
  setReg(cpu, "MDSCR_EL1", MDSCR.MDE);
  setReg(cpu, "DBGBVR0_EL1", TARGET + 4);
  setReg(cpu, "DBGBCR0_EL1", bcr({ pmc: 2 }));
  assert.equal(runToHvc(cpu), 0x12);
  assert.equal(esr(cpu), syn(DEBUG_EC.BREAKPOINT_LOWER, FSC_DEBUG));
  assert.equal(elr(cpu), BigInt(TARGET + 4));
  assert.equal(spsr(cpu) & 0xf, 0, "taken from EL0t");
  // PMC = EL1 only does not match at EL0.
  const c2 = machine();
  put(c2, TARGET, [W.movX1, W.movX2, W.svc1]);
  eretTo(c2, TARGET, 0x3c0);
  setReg(c2, "MDSCR_EL1", MDSCR.MDE);
  setReg(c2, "DBGBVR0_EL1", TARGET + 4);
  setReg(c2, "DBGBCR0_EL1", bcr({ pmc: 1 }));
  assert.equal(runToHvc(c2), 0x12);
  assert.equal(ec(c2), 0x15, "ran on to the SVC");
});

test("context-aware breakpoints: unlinked Context ID match, and an address breakpoint linked to one", () => {
  // Breakpoint 5 (context-aware) matching CONTEXTIDR_EL1 = 0x42 fires at the first instruction.
  const ctx = (id: number, n = 5) =>
    bpRun({
      bcr: bcr({ e: 0 }),
      setup: (c) => {
        setReg(c, "CONTEXTIDR_EL1", id);
        setReg(c, `DBGBVR${n}_EL1`, 0x42);
        setReg(c, `DBGBCR${n}_EL1`, bcr({ bt: 2, pmc: 3 }));
      },
    });
  let r = ctx(0x42);
  assert.equal(r.imm, 0x11);
  assert.equal(elr(r.cpu), BigInt(CODE));
  assert.equal(ec(r.cpu), DEBUG_EC.BREAKPOINT_CURRENT);
  assert.equal(ctx(0x43).imm, 0x13, "another context ID");
  assert.equal(ctx(0x42, 4).imm, 0x11, "breakpoint 4 is context-aware too (CTX_CMPs = 1)");
  assert.equal(ctx(0x42, 3).imm, 0x13, "breakpoint 3 is not");
  // Breakpoint 0 (linked address, LBN = 5) fires only while breakpoint 5's context matches.
  const linked = (id: number, bt5 = 3) =>
    bpRun({
      bcr: bcr({ bt: 1, lbn: 5 }),
      setup: (c) => {
        setReg(c, "CONTEXTIDR_EL1", id);
        setReg(c, "DBGBVR5_EL1", 0x42);
        setReg(c, "DBGBCR5_EL1", bcr({ bt: bt5, pmc: 3 }));
      },
    });
  r = linked(0x42);
  assert.equal(r.imm, 0x11);
  assert.equal(elr(r.cpu), BigInt(CODE + 4), "the linked context breakpoint does not fire by itself");
  assert.equal(linked(0x41).imm, 0x13);
  assert.equal(linked(0x42, 2).imm, 0x11, "an unlinked context breakpoint fires on its own at CODE");
  assert.equal(elr(linked(0x42, 2).cpu), BigInt(CODE));
  const toNonContext = bpRun({
    bcr: bcr({ bt: 1, lbn: 1 }),
    setup: (c) => {
      setReg(c, "DBGBVR1_EL1", 0);
      setReg(c, "DBGBCR1_EL1", bcr({ bt: 3 }));
    },
  });
  assert.equal(toNonContext.imm, 0x13, "a link to a breakpoint that is not context-aware never matches");
});

// ---------------------------------------------------------------------------
// Software step

const STEP_ISS = (isv: boolean, ex = false) => (isv ? 1 << 24 : 0) | (ex ? 1 << 6 : 0) | FSC_DEBUG;

function stepper(target: readonly number[], spsrValue = 0x5 | PSTATE.SS, mdscr = MDSCR.SS | MDSCR.KDE): Cpu {
  const cpu = machine();
  put(cpu, TARGET, target);
  eretTo(cpu, TARGET, spsrValue);
  setReg(cpu, "MDSCR_EL1", mdscr);
  return cpu;
}

test("stepping at EL1: one instruction, then EC 0x33 with ISV, ELR = the next instruction, SPSR.SS = 0", () => {
  const cpu = stepper([W.movX1, W.bPlus8, W.movX2, W.movX3, W.hvc13]);
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(esr(cpu), syn(DEBUG_EC.STEP_CURRENT, STEP_ISS(true)));
  assert.equal(elr(cpu), BigInt(TARGET + 4));
  assert.equal(cpu.getX(1), 1n);
  assert.equal(spsr(cpu) & PSTATE.SS, 0, "active-pending when the exception was taken");
  assert.equal(spsr(cpu) & 0x3ff, 0x5, "EL1h, D clear");
  // The handler re-arms (SPSR.SS = 1) and returns: each ERET steps exactly one more.
  const rearm = () => {
    cpu.r[I.SPSR_EL1] = (spsr(cpu) | PSTATE.SS) >>> 0;
    put(cpu, CODE, [W.eret]);
    cpu.pc = BigInt(CODE);
  };
  const elrs: bigint[] = [];
  for (let k = 0; k < 2; k++) {
    rearm();
    assert.equal(runToHvc(cpu), 0x11);
    elrs.push(elr(cpu));
  }
  assert.deepEqual(elrs, [BigInt(TARGET + 12), BigInt(TARGET + 16)], "the branch, then MOV X3");
  assert.equal(cpu.getX(2), 0n, "the branch skipped it");
  assert.equal(cpu.getX(3), 3n);
  // A stepped HVC exits to the hypervisor first; the step exception (ISV = 1) is taken
  // before the next instruction.
  rearm();
  assert.equal(runToHvc(cpu), 0x13);
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(esr(cpu), syn(DEBUG_EC.STEP_CURRENT, STEP_ISS(true)));
  assert.equal(elr(cpu), BigInt(TARGET + 20));
});

test("ERET with SPSR.SS = 0 to an enabled destination: the step exception comes first (ISV = 0)", () => {
  const cpu = stepper([W.movX1, W.hvc13], 0x5);
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(esr(cpu), syn(DEBUG_EC.STEP_CURRENT, STEP_ISS(false)));
  assert.equal(elr(cpu), BigInt(TARGET));
  assert.equal(cpu.getX(1), 0n);
});

test("a stepped load-exclusive reports EX = 1", () => {
  const cpu = stepper([W.ldaxrX1X2, W.hvc13]);
  cpu.setX(2, BigInt(DATA));
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(esr(cpu) & 0x1ffffff, STEP_ISS(true, true));
});

test("a stepped SVC completes: its exception has SPSR.SS = 0, the step exception follows the return", () => {
  const cpu = stepper([W.svc1, W.movX1, W.hvc13]);
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(ec(cpu), 0x15);
  assert.equal(elr(cpu), BigInt(TARGET + 4));
  assert.equal(spsr(cpu) & PSTATE.SS, 0);
  // Return from the SVC handler (PSTATE.D set): straight into the step exception.
  put(cpu, CODE, [W.eret]);
  cpu.pc = BigInt(CODE);
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(esr(cpu), syn(DEBUG_EC.STEP_CURRENT, STEP_ISS(false)));
  assert.equal(elr(cpu), BigInt(TARGET + 4));
  assert.equal(cpu.getX(1), 0n);
});

test("a stepped instruction that faults leaves the step pending (SPSR.SS = 1): it is stepped again", () => {
  const cpu = stepper([W.udf, W.hvc13]);
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(esr(cpu), IL, "the UNDEFINED exception, not a step");
  assert.equal(elr(cpu), BigInt(TARGET));
  assert.equal(spsr(cpu) & PSTATE.SS, PSTATE.SS);
});

test("a breakpoint on the stepped instruction is taken first, with SPSR.SS = 1", () => {
  const cpu = stepper([W.movX1, W.hvc13], 0x5 | PSTATE.SS, MDSCR.SS | MDSCR.KDE | MDSCR.MDE);
  setReg(cpu, "DBGBVR0_EL1", TARGET);
  setReg(cpu, "DBGBCR0_EL1", bcr({}));
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(ec(cpu), DEBUG_EC.BREAKPOINT_CURRENT);
  assert.equal(spsr(cpu) & PSTATE.SS, PSTATE.SS);
});

test("stepping at EL0 needs neither KDE nor PSTATE.D clear: EC 0x32", () => {
  const cpu = stepper([W.movX1, W.movX2, W.svc1], 0x3c0 | PSTATE.SS, MDSCR.SS);
  assert.equal(runToHvc(cpu), 0x12);
  assert.equal(esr(cpu), syn(DEBUG_EC.STEP_LOWER, STEP_ISS(true)));
  assert.equal(elr(cpu), BigInt(TARGET + 4));
});

test("no stepping where debug exceptions are disabled: ERET leaves PSTATE.SS = 0 and code runs on", () => {
  const cases: [string, Cpu][] = [
    ["KDE = 0 at EL1", stepper([W.movX1, W.hvc13], 0x5 | PSTATE.SS, MDSCR.SS)],
    ["SPSR.D = 1 at EL1", stepper([W.movX1, W.hvc13], 0x205 | PSTATE.SS)],
    ["MDSCR.SS = 0", stepper([W.movX1, W.hvc13], 0x5 | PSTATE.SS, MDSCR.KDE)],
  ];
  const locked = stepper([W.movX1, W.hvc13]);
  setReg(locked, "OSLSR_EL1", 0xan);
  cases.push(["OS lock", locked]);
  for (const [what, cpu] of cases) {
    assert.equal(runToHvc(cpu), 0x13, what);
    assert.equal(cpu.getX(1), 1n, what);
    assert.equal(cpu.pstate & PSTATE.SS, 0, what);
  }
});

test("masking PSTATE.D while stepping leaves the step pending until DAIFClr unmasks it", () => {
  // Step the DAIFSet: it completes, the step exception is due but disabled; the code runs
  // on to the DAIFClr, after which the pending exception is taken (ISV = 1: deferred).
  const cpu = stepper([W.daifsetD, W.movX1, W.daifclrD, W.movX2, W.hvc13]);
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(ec(cpu), DEBUG_EC.STEP_CURRENT);
  assert.equal(elr(cpu), BigInt(TARGET + 12));
  assert.equal(cpu.getX(1), 1n);
  assert.equal(cpu.getX(2), 0n);
});

// ---------------------------------------------------------------------------
// Watchpoints (checkWatchpoint, which the memory path calls for every data access)

/** Calls checkWatchpoint as the memory path does; returns the ESR taken, or null. */
function watch(
  cpu: Cpu,
  lo: number,
  size: number,
  isWrite: boolean,
  accessEl?: number,
): { esr: number; far: bigint; elr: bigint } | null {
  cpu.pcLo = CODE + 0x40;
  cpu.pcHi = 0;
  const pstate = cpu.pstate;
  try {
    checkWatchpoint(cpu, lo, 0, size, isWrite, accessEl);
    return null;
  } catch (e) {
    if (e !== UNWIND) throw e;
    const taken = { esr: esr(cpu), far: reg(cpu, "FAR_EL1"), elr: elr(cpu) };
    cpu.pstate = pstate; // back from the exception, for the next check
    return taken;
  }
}

function watcher(w: number, wvr = DATA, mdscr = MDSCR.KDE | MDSCR.MDE, pstate = EL1H_D_CLEAR): Cpu {
  const cpu = machine();
  cpu.pstate = pstate;
  setReg(cpu, "MDSCR_EL1", mdscr);
  setReg(cpu, "DBGWVR1_EL1", wvr);
  setReg(cpu, "DBGWCR1_EL1", w);
  return cpu;
}

test("a store watchpoint: EC 0x35, WnR = 1, DFSC 0x22, FAR = the access, ELR = the instruction", () => {
  const cpu = watcher(wcr({ lsc: 2 }));
  assert.ok(cpu.watchActive);
  assert.equal(watch(cpu, DATA, 8, false), null, "LSC = store: loads pass");
  const hit = watch(cpu, DATA + 2, 4, true);
  assert.deepEqual(hit, {
    esr: syn(DEBUG_EC.WATCHPOINT_CURRENT, (1 << 6) | FSC_DEBUG),
    far: BigInt(DATA + 2),
    elr: BigInt(CODE + 0x40),
  });
  const load = watch(watcher(wcr({ lsc: 1 })), DATA, 1, false);
  assert.equal(load?.esr, syn(DEBUG_EC.WATCHPOINT_CURRENT, FSC_DEBUG), "load: WnR = 0");
  assert.equal(watch(watcher(wcr({ lsc: 1 })), DATA, 1, true), null);
});

test("watchpoint byte selection: BAS, word-aligned DBGWVR, accesses that straddle", () => {
  const cpu = watcher(wcr({ bas: 0x10 })); // byte 4 of the doubleword at DATA
  assert.equal(watch(cpu, DATA, 4, true), null);
  assert.equal(watch(cpu, DATA + 5, 3, true), null);
  assert.ok(watch(cpu, DATA + 4, 1, true));
  assert.ok(watch(cpu, DATA, 8, true));
  assert.ok(watch(cpu, DATA + 3, 2, false), "a 2-byte access covering byte 4");
  assert.ok(watch(cpu, DATA - 4, 16, false));
  assert.equal(watch(cpu, DATA + 8, 8, false), null);
  // DBGWVR[2] = 1: a word; BAS[3:0] select its bytes.
  const word = watcher(wcr({ bas: 0x2 }), DATA + 4);
  assert.ok(watch(word, DATA + 5, 1, true));
  assert.equal(watch(word, DATA + 4, 1, true), null);
  assert.equal(watch(word, DATA + 1, 1, true), null, "byte 1 of the doubleword is not watched");
});

test("watchpoint MASK watches an aligned 2^MASK block; reserved masks 1 and 2 never match", () => {
  const cpu = watcher(wcr({ mask: 12 }), DATA);
  assert.ok(watch(cpu, DATA + 0x800, 8, true));
  assert.ok(watch(cpu, DATA + 0xfff, 1, false));
  assert.equal(watch(cpu, DATA + 0x1000, 8, true), null);
  assert.equal(watch(cpu, DATA - 1, 1, true), null);
  assert.equal(watch(watcher(wcr({ mask: 2 }), DATA), DATA, 8, true), null);
});

test("watchpoint enables: PAC against the access's privilege, PSTATE.D/KDE at EL1, EL0 always, locks", () => {
  // PAC = EL0 only: an EL1 access does not match; an unprivileged (LDTR-like) one does.
  const el0only = watcher(wcr({ pac: 2 }));
  assert.equal(watch(el0only, DATA, 8, true), null);
  assert.equal((watch(el0only, DATA, 8, true, 0)?.esr ?? 0) >>> 26, DEBUG_EC.WATCHPOINT_CURRENT);
  assert.equal(watch(watcher(wcr({}), DATA, MDSCR.MDE), DATA, 8, true), null, "KDE = 0 at EL1");
  assert.equal(watch(watcher(wcr({}), DATA, MDSCR.KDE), DATA, 8, true), null, "MDE = 0");
  assert.equal(watch(watcher(wcr({}), DATA, undefined, EL1H_MASKED), DATA, 8, true), null, "PSTATE.D");
  const locked = watcher(wcr({}));
  setReg(locked, "OSLSR_EL1", 0xan);
  assert.equal(watch(locked, DATA, 8, true), null, "OS lock");
  // At EL0: EC 0x34, no KDE needed, PSTATE.D irrelevant.
  const user = watcher(wcr({ pac: 2 }), DATA, MDSCR.MDE, 0x3c0);
  assert.equal((watch(user, DATA, 8, true)?.esr ?? 0) >>> 26, DEBUG_EC.WATCHPOINT_LOWER);
});

test("a watchpoint linked to a context-aware breakpoint matches only in that context", () => {
  const cpu = watcher(wcr({ wt: 1, lbn: 5 }));
  setReg(cpu, "DBGBVR5_EL1", 7);
  setReg(cpu, "DBGBCR5_EL1", bcr({ bt: 3, pmc: 3 }));
  setReg(cpu, "CONTEXTIDR_EL1", 6);
  assert.equal(watch(cpu, DATA, 8, true), null);
  setReg(cpu, "CONTEXTIDR_EL1", 7);
  assert.ok(watch(cpu, DATA, 8, true));
});

test("a watched STR through the memory path: the store is not performed, ELR = the STR", () => {
  const cpu = machine([W.strX1X2, W.hvc13]);
  cpu.pstate = EL1H_D_CLEAR;
  setReg(cpu, "MDSCR_EL1", MDSCR.KDE | MDSCR.MDE);
  setReg(cpu, "DBGWVR0_EL1", DATA);
  setReg(cpu, "DBGWCR0_EL1", wcr({ lsc: 2 }));
  cpu.setX(1, 0x1234n);
  cpu.setX(2, BigInt(DATA));
  assert.equal(runToHvc(cpu), 0x11);
  assert.equal(esr(cpu), syn(DEBUG_EC.WATCHPOINT_CURRENT, (1 << 6) | FSC_DEBUG));
  assert.equal(reg(cpu, "FAR_EL1"), BigInt(DATA));
  assert.equal(elr(cpu), BigInt(CODE));
  assert.equal(cpu.dv.getBigUint64(RAM_OFFSET + DATA, true), 0n);
});

// ---------------------------------------------------------------------------
// Save/restore

const DEBUG_REGS = [
  ...[0, 1, 2, 3, 4, 5].flatMap((n) => [`DBGBVR${n}_EL1`, `DBGBCR${n}_EL1`]),
  ...[0, 1, 2, 3].flatMap((n) => [`DBGWVR${n}_EL1`, `DBGWCR${n}_EL1`]),
  "MDSCR_EL1",
  "MDCCINT_EL1",
  "OSLSR_EL1",
  "OSDLR_EL1",
  "DBGPRCR_EL1",
  "DBGCLAIMCLR_EL1",
  "MDCCSR_EL0",
  "OSDTRRX_EL1",
  "OSDTRTX_EL1",
  "OSECCR_EL1",
];

test("the debug registers are in the register list and survive a snapshot; a breakpoint fires after it", () => {
  const m = new VirtMachine({ smp: 1, memory: 16 << 20, deterministic: true });
  const v = m.vcpus[0]!;
  v.init();
  const c = v.cpu;
  const ram = c.ramBase;
  const putPa = (cpu: Cpu, pa: number, words: readonly number[]) =>
    words.forEach((w, i) => {
      cpu.dv.setUint32(RAM_OFFSET + pa - ram + i * 4, w >>> 0, true);
    });
  const values = new Map<string, bigint>();
  DEBUG_REGS.forEach((name, k) => {
    let x = BigInt(k & 1);
    if (name.startsWith("DBGBCR")) x = BigInt(bcr({ e: 0, pmc: 3, lbn: k & 15 }));
    else if (name.startsWith("DBGWCR")) x = BigInt(wcr({ lbn: k & 15 }) & ~1);
    else if (name === "OSLSR_EL1") x = 0x8n;
    else if (name.startsWith("DBGBVR") || name.startsWith("DBGWVR"))
      x = 0xffff_8000_0000_1000n + BigInt(k * 8);
    else if (name === "MDCCSR_EL0") x = 1n << 29n;
    else if (name === "MDCCINT_EL1") x = 1n << 30n;
    else if (name === "DBGPRCR_EL1") x = 1n; // with OSDLR_EL1.DLK = 1: not double-locked
    values.set(name, x);
    setReg(c, name, x);
  });
  // Then a live breakpoint on the second instruction of a program at the start of RAM
  // (written into the restored machine: these writes bypass the dirty log).
  const program = (cpu: Cpu) => {
    putPa(cpu, ram, [W.movX1, W.movX2, W.hvc13]);
    putPa(cpu, ram + 0x1000 + 0x200, [W.hvc11]);
  };
  setReg(c, "VBAR_EL1", ram + 0x1000);
  setReg(c, "MDSCR_EL1", MDSCR.KDE | MDSCR.MDE);
  values.set("MDSCR_EL1", BigInt(MDSCR.KDE | MDSCR.MDE));
  setReg(c, "DBGBVR0_EL1", ram + 4);
  values.set("DBGBVR0_EL1", BigInt(ram + 4));
  setReg(c, "DBGBCR0_EL1", bcr({}));
  values.set("DBGBCR0_EL1", BigInt(bcr({})));
  c.pc = BigInt(ram);
  c.pstate = EL1H_D_CLEAR;
  const ids = new Set(v.getRegList());
  for (const name of DEBUG_REGS) {
    const s = SYSREG_BY_NAME.get(name)!;
    const id = sysReg(s.key >> 14, (s.key >> 11) & 7, (s.key >> 7) & 15, (s.key >> 3) & 15, s.key & 7);
    assert.ok(ids.has(id), `${name} is in KVM_GET_REG_LIST`);
  }
  const again = new VirtMachine(m.config);
  program(c);
  m.vm.markDirty(ram, 0x2000); // written past the dirty log: the snapshot must carry it
  restoreSections(again, captureSections(m));
  const w = again.vcpus[0]!.cpu;
  program(w);
  for (const [name, x] of values) assert.equal(reg(w, name), x, name);
  assert.equal(w.debugActive, false, "flags are recomputed by run(), not restored");
  const exit = w.run(100);
  assert.deepEqual(
    exit,
    { kind: "hvc", imm: 0x11 },
    `ESR ${reg(w, "ESR_EL1").toString(16)} PC ${w.pc.toString(16)}`,
  );
  assert.equal(ec(w), DEBUG_EC.BREAKPOINT_CURRENT);
  assert.equal(elr(w), BigInt(ram + 4));
});
