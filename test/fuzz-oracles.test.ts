/**
 * The oracles of the instruction fuzzer (tools/fuzz/targets/insn.ts) refuse what they exist
 * to refuse: made-up wrong syndromes (a class the word cannot take, IL clear, the wrong
 * return address or SPSR, an invalid fault status, a FAR left unwritten, the wrong vector),
 * and they check many exceptions in a real run rather than passing vacuously. Plus the
 * defect they found: EL0 traps of DC ZVA, DC CVAC/CIVAC, IC IVAU and MSR DAIFSet/DAIFClr
 * reported EC 0x18 with ISS 0 instead of the instruction's encoding.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, createVmMemory, I, RAM_OFFSET } from "../src/arch/arm64/index.ts";
import { sysregIndex } from "../src/arch/arm64/sysregs.ts";
import { runInProcess } from "../tools/fuzz/engine.ts";
import { insnTarget, syndromeProblem, sysregIssOf, type TakenException } from "../tools/fuzz/targets/insn.ts";

const VBAR = 0xffff_0000_0010_0000n;
const PC = 0x0000_0000_4000_1000n;

/** A sane exception for `word` at EL`el`, then `change` applied (a made-up fault). */
function taken(word: number, el: 0 | 1, esr: number, change: Partial<TakenException> = {}): TakenException {
  const pstate = el === 0 ? 0x6000_0000 : 0x6000_03c5;
  const ec = esr >>> 26;
  return {
    word,
    el,
    pstate,
    pc: PC,
    vbar: VBAR,
    newPc: VBAR + (el === 0 ? 0x400n : 0x200n),
    pstateAfter: 0x6000_03c5,
    esr: BigInt(esr >>> 0),
    elr: ec === 0x15 ? PC + 4n : PC,
    spsr: BigInt(pstate >>> 0),
    far: ec === 0x20 || ec === 0x21 ? PC : ec === 0x24 || ec === 0x25 ? 0x1234n : null,
    ...change,
  };
}

const UDF = 0x0000_0000;
const LDR = 0xf940_0020; // ldr x0, [x1]
const SVC = 0xd400_0021; // svc #1
const DC_ZVA = 0xd50b_7420; // dc zva, x0
const IL = 1 << 25;

test("the syndrome checker accepts sane exceptions", () => {
  assert.equal(syndromeProblem(taken(UDF, 1, IL)), null);
  assert.equal(syndromeProblem(taken(UDF, 0, IL)), null);
  assert.equal(syndromeProblem(taken(SVC, 0, (0x15 << 26) | IL | 1)), null);
  assert.equal(syndromeProblem(taken(LDR, 1, (0x25 << 26) | IL | 0x07)), null, "translation fault L3");
  assert.equal(syndromeProblem(taken(LDR, 0, (0x24 << 26) | IL | 0x21)), null, "alignment");
  assert.equal(syndromeProblem(taken(LDR, 0, (0x20 << 26) | IL | 0x0f)), null, "fetch: permission L3");
  assert.equal(syndromeProblem(taken(DC_ZVA, 0, (0x18 << 26) | IL | sysregIssOf(DC_ZVA))), null);
});

test("the syndrome checker refuses a made-up wrong ESR, ELR, SPSR, FAR or vector", () => {
  const bad: [string, TakenException, RegExp][] = [
    ["SVC class for a load", taken(LDR, 1, (0x15 << 26) | IL, { elr: PC + 4n }), /EC SVC64 for word/],
    ["IL clear", taken(UDF, 1, 0), /IL is 0/],
    ["UNKNOWN with an ISS", taken(UDF, 1, IL | 5), /ISS 0x5 \(RES0\)/],
    [
      "ELR after an UNDEFINED word",
      taken(UDF, 1, IL, { elr: PC + 4n }),
      /ELR_EL1 0x40001004, not 0x40001000/,
    ],
    ["ELR of an SVC at the SVC", taken(SVC, 0, (0x15 << 26) | IL | 1, { elr: PC }), /not 0x40001004/],
    ["SVC imm16 wrong", taken(SVC, 0, (0x15 << 26) | IL | 2), /not the word's imm16 0x1/],
    [
      "SPSR not the PSTATE before",
      taken(UDF, 1, IL, { spsr: 0x3c5n }),
      /SPSR_EL1 0x3c5, not the PSTATE before/,
    ],
    ["an invalid DFSC", taken(LDR, 1, (0x25 << 26) | IL | 0x3f), /DFSC 0x3f is not a valid/],
    [
      "a data abort without FAR",
      taken(LDR, 1, (0x25 << 26) | IL | 0x07, { far: null }),
      /FAR_EL1 not written/,
    ],
    ["an instruction abort's FAR", taken(UDF, 1, (0x21 << 26) | IL | 0x07, { far: PC + 8n }), /not the PC/],
    ["alignment as IFSC", taken(UDF, 1, (0x21 << 26) | IL | 0x21), /IFSC 0x21/],
    [
      "the lower-EL class from EL1",
      taken(LDR, 1, (0x24 << 26) | IL | 0x07),
      /EC DABT_LOWER for word .* at EL1/,
    ],
    [
      "a data abort for an ALU word",
      taken(0x8b02_0020, 1, (0x25 << 26) | IL | 0x07),
      /EC DABT_CURRENT for word/,
    ],
    [
      "a trap for an unallocated group",
      taken(0x0200_0000, 0, (0x18 << 26) | IL),
      /EC SYSREG for word 0x02000000/,
    ],
    [
      "EC 0x18 with ISS 0 (the defect)",
      taken(DC_ZVA, 0, (0x18 << 26) | IL),
      /ISS 0x0, not the word's encoding/,
    ],
    [
      "the current-EL vector from EL0",
      taken(UDF, 0, IL, { newPc: VBAR + 0x200n }),
      /not the vector VBAR \+ 0x400/,
    ],
    [
      "IRQs unmasked after entry",
      taken(UDF, 1, IL, { pstateAfter: 0x6000_0345 }),
      /not EL1h with DAIF masked/,
    ],
    ["ESR high half set", taken(UDF, 1, IL, { esr: (1n << 32n) | BigInt(IL) }), /ESR_EL1\[63:32\]/],
  ];
  for (const [what, x, re] of bad) {
    const p = syndromeProblem(x);
    assert.ok(p !== null, `${what}: accepted`);
    assert.match(p, re, what);
  }
});

/** Runs `word` once at EL0 with the MMU off and SCTLR_EL1 at reset (DZE, UCI, UMA clear). */
function trapAtEl0(word: number, sctlrClear = 0, event = 0): { esr: number; elr: bigint } {
  const RAM_BASE = 0x4000_0000;
  const memory = createVmMemory(1 << 20);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: RAM_BASE, ramSize: 1 << 20 } });
  cpu.dv.setUint32(RAM_OFFSET + 0x100, word, true);
  const vbar = sysregIndex("VBAR_EL1");
  cpu.r[vbar] = RAM_BASE + 0x800;
  cpu.setX(0, BigInt(RAM_BASE + 0x4000));
  cpu.pstate = 0; // EL0t
  const sctlr = sysregIndex("SCTLR_EL1");
  cpu.r[sctlr] = (cpu.r[sctlr]! & ~sctlrClear) >>> 0;
  cpu.r[I.EVENT] = event;
  cpu.pc = BigInt(RAM_BASE + 0x100);
  cpu.run(1);
  assert.equal(cpu.pc, BigInt(RAM_BASE + 0x800 + 0x400), "taken to the lower-EL synchronous vector");
  const elr = (BigInt(cpu.r[I.ELR_EL1 + 1]!) << 32n) | BigInt(cpu.r[I.ELR_EL1]!);
  return { esr: cpu.r[sysregIndex("ESR_EL1")]! >>> 0, elr };
}

test("an EL0 trap of DC ZVA, DC CVAC, DC CIVAC, IC IVAU or MSR DAIFSet/DAIFClr reports ISS 0 instead of the instruction's encoding", () => {
  for (const [name, word] of [
    ["dc zva, x3", 0xd50b_7423],
    ["dc cvac, x0", 0xd50b_7a20],
    ["dc civac, x7", 0xd50b_7e27],
    ["ic ivau, x0", 0xd50b_7520],
    ["msr daifset, #2", 0xd503_42df],
    ["msr daifclr, #15", 0xd503_4fff],
  ] as const) {
    const { esr, elr } = trapAtEl0(word);
    assert.equal(esr >>> 26, 0x18, `${name}: EC`);
    assert.equal(esr & 0x1ffffff, sysregIssOf(word), `${name}: ISS 0x${(esr & 0x1ffffff).toString(16)}`);
    assert.equal(elr, 0x4000_0100n, `${name}: ELR`);
  }
  // The ISS layout itself (Arm ARM D17.2.37): DC ZVA, X3 is Op0 1, Op2 1, Op1 3, CRn 7, Rt 3, CRm 4, write.
  assert.equal(sysregIssOf(0xd50b_7423), (1 << 20) | (1 << 17) | (3 << 14) | (7 << 10) | (3 << 5) | (4 << 1));
});

test("insn fuzzer: the oracles check exceptions of many classes, and follow exception loops to armbox's report", async () => {
  const t = await runInProcess(insnTarget, { target: "insn", seed: 3, start: 0, count: 6000 });
  const failures = t.failures.map((f) => `${f.kind} at ${f.index}: ${f.what}`).join("\n");
  assert.equal(t.crashes, 0, failures);
  assert.equal(t.violations, 0, failures);
  const n = (k: string) => t.extra[k] ?? 0;
  // Every exception taken went through the checker, and each kind of check ran.
  assert.equal(n("checked: EC"), t.refused);
  for (const k of ["ELR", "SPSR", "ISS", "FAR", "FSC", "vector", "IL"])
    assert.ok(n(`checked: ${k}`) > 50, `checked: ${k} = ${n(`checked: ${k}`)}`);
  for (const ec of ["UNKNOWN", "SYSREG", "SVC64", "BRK64"])
    assert.ok(n(`checked exceptions: ${ec}`) > 0, `no ${ec} checked: ${JSON.stringify(t.extra)}`);
  assert.ok(n("checked exceptions: DABT_CURRENT") + n("checked exceptions: DABT_LOWER") > 0);
  assert.ok(n("exception loops followed") > 10);
  assert.equal(n("exception loops reported by armbox"), n("exception loops followed"));
});

test("insn fuzzer: an input replays alone with the verdict it had in the run (--from mid-environment)", async () => {
  // Input 700 is word 188 of environment 1: alone, the replay first runs words 512..699
  // without verdicts. Its verdict in the run is the difference of two runs' tallies.
  const seed = 5;
  for (const index of [700, 1000, 1023]) {
    const upTo = await runInProcess(insnTarget, { target: "insn", seed, start: 512, count: index - 512 });
    const through = await runInProcess(insnTarget, { target: "insn", seed, start: 512, count: index - 511 });
    const alone = await runInProcess(insnTarget, { target: "insn", seed, start: index, count: 1 });
    const diff = Object.entries(through.reasons)
      .filter(([k, v]) => v !== (upTo.reasons[k] ?? 0))
      .map(([k]) => k);
    const inRun = through.refused > upTo.refused ? diff[0] : "accepted";
    const replayed = alone.refused === 1 ? Object.keys(alone.reasons)[0] : "accepted";
    assert.equal(replayed, inRun, `input ${index}`);
  }
});

test("WFI and WFE at EL0 with SCTLR_EL1.nTWI/nTWE clear wait instead of trapping to EL1 (EC 0x01)", () => {
  const WFI = 0xd503_207f;
  const WFE = 0xd503_205f;
  for (const [name, word, bit, ti] of [
    ["wfi", WFI, 1 << 16, 0],
    ["wfe", WFE, 1 << 18, 1],
  ] as const) {
    const { esr, elr } = trapAtEl0(word, bit);
    assert.equal(esr >>> 0, ((0x01 << 26) | IL | (1 << 24) | (0xe << 20) | ti) >>> 0, `${name}: ESR`);
    assert.equal(elr, 0x4000_0100n, `${name}: ELR is the trapped instruction`);
  }
  // With the bits set (their reset value), or a WFE whose event register is set, no trap.
  const memory = createVmMemory(1 << 20);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: 0x4000_0000, ramSize: 1 << 20 } });
  cpu.dv.setUint32(RAM_OFFSET + 0x100, WFI, true);
  cpu.pstate = 0;
  cpu.pc = 0x4000_0100n;
  assert.equal(cpu.run(1).kind, "wfi");
  const sctlr = sysregIndex("SCTLR_EL1");
  cpu.r[sctlr] = (cpu.r[sctlr]! & ~(1 << 18)) >>> 0;
  cpu.dv.setUint32(RAM_OFFSET + 0x200, WFE, true);
  cpu.r[I.EVENT] = 1;
  cpu.pstate = 0;
  cpu.pc = 0x4000_0200n;
  cpu.run(1);
  assert.equal(cpu.pc, 0x4000_0204n, "a WFE with the event register set completes");
  assert.equal(cpu.r[I.EVENT], 0);
});
