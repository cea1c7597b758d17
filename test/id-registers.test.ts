/**
 * The ID register space (Arm ARM D19): every op0 = 3, op1 = 0, CRn = 0, CRm = 1..7
 * encoding reads at EL1 (allocated registers with their value, reserved ones as zero),
 * MSR to them is UNDEFINED, EL0 reads trap with EC 0x18 (FEAT_IDST) in system mode and
 * succeed in user mode; CTR_EL0 and the DCC follow SCTLR_EL1.UCT and MDSCR_EL1.TDCC.
 * docs/ID-REGISTERS.md must describe every non-zero bit of the registers it lists.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Cpu, createVmMemory, RAM_OFFSET } from "../src/arch/arm64/index.ts";
import { I } from "../src/arch/arm64/state.ts";
import {
  NUM_BRPS,
  NUM_CTX_CMPS,
  NUM_WRPS,
  SYSREG_BY_KEY,
  SYSREG_BY_NAME,
  sysregIndex,
  sysregKey,
} from "../src/arch/arm64/sysregs.ts";
import { KvmError, sysReg } from "../src/hv/onereg.ts";
import { Vm } from "../src/hv/vm.ts";

const RAM = 1 << 20;
const CODE = 0x10000;
const VBAR = 0x11000;
const TARGET = 0x12000;
const IL = 1 << 25;
const HVC_11 = 0xd4000222;
const HVC_12 = 0xd4000242;
const HVC_13 = 0xd4000262;
const ERET = 0xd69f03e0;
const SVC_0 = 0xd4000001;
/** MRS Xt / MSR Xt for (op0 = 3, op1, CRn, CRm, op2): Arm ARM C6.2.194/C6.2.196. */
const mrs = (op1: number, crn: number, crm: number, op2: number, rt = 0) =>
  (0xd5380000 | (op1 << 16) | (crn << 12) | (crm << 8) | (op2 << 5) | rt) >>> 0;
const msr = (op1: number, crn: number, crm: number, op2: number, rt = 0) =>
  (mrs(op1, crn, crm, op2, rt) & ~(1 << 21)) >>> 0;

function machine(code: readonly number[], userMode = false): Cpu {
  const cpu = new Cpu({ memory: createVmMemory(RAM), index: 0, bus: { ramBase: 0, ramSize: RAM }, userMode });
  const put = (addr: number, words: readonly number[]) =>
    words.forEach((w, i) => {
      cpu.dv.setUint32(RAM_OFFSET + addr + i * 4, w >>> 0, true);
    });
  put(VBAR + 0x200, [HVC_11]);
  put(VBAR + 0x400, [HVC_12]);
  put(CODE, code);
  cpu.r[sysregIndex("VBAR_EL1")] = VBAR;
  cpu.pc = BigInt(CODE);
  return cpu;
}
function put(cpu: Cpu, addr: number, words: readonly number[]): void {
  words.forEach((w, i) => {
    cpu.dv.setUint32(RAM_OFFSET + addr + i * 4, w >>> 0, true);
  });
}
const esr = (cpu: Cpu) => cpu.r[sysregIndex("ESR_EL1")]!;
function hvc(cpu: Cpu): number {
  const exit = cpu.run(1000);
  assert.equal(exit.kind, "hvc", JSON.stringify(exit));
  return exit.kind === "hvc" ? exit.imm : -1;
}
const stored = (name: string) => {
  const s = SYSREG_BY_NAME.get(name)!;
  return (BigInt(s.reset[1]) << 32n) | BigInt(s.reset[0]);
};

test("every encoding of CRm = 1..7 reads at EL1: allocated ones their value, reserved ones zero", () => {
  let reserved = 0;
  for (let crm = 1; crm <= 7; crm++) {
    for (let op2 = 0; op2 < 8; op2++) {
      const reg = SYSREG_BY_KEY.get(sysregKey(3, 0, 0, crm, op2));
      assert.ok(reg, `S3_0_C0_C${crm}_${op2} is in the table`);
      if (reg.name.startsWith("S3_")) {
        reserved++;
        assert.deepEqual(reg.reset, [0, 0], reg.name);
      }
      const cpu = machine([mrs(0, 0, crm, op2, 5), HVC_13]);
      cpu.setX(5, 0xdeadn);
      assert.equal(hvc(cpu), 0x13, reg.name);
      assert.equal(cpu.getX(5), (BigInt(reg.reset[1]) << 32n) | BigInt(reg.reset[0]), reg.name);
      // Writes are UNDEFINED.
      const w = machine([msr(0, 0, crm, op2, 5)]);
      assert.equal(hvc(w), 0x11, `MSR ${reg.name}`);
      assert.equal(esr(w), IL, `MSR ${reg.name}: EC 0`);
    }
  }
  assert.equal(reserved, 56 - 36, "36 allocated (Linux 6.1 names), 20 reserved");
  // CRm = 0: only MIDR (0), MPIDR (5), REVIDR (6); the rest stay unallocated.
  for (const op2 of [1, 2, 3, 4, 7]) {
    const cpu = machine([mrs(0, 0, 0, op2)]);
    assert.equal(hvc(cpu), 0x11);
    assert.equal(esr(cpu), IL, `S3_0_C0_C0_${op2} is UNDEFINED`);
  }
});

test("the AArch32 ID registers read as zero: AArch32 is implemented at no EL", () => {
  const names = [
    "ID_PFR0_EL1",
    "ID_PFR1_EL1",
    "ID_PFR2_EL1",
    "ID_DFR0_EL1",
    "ID_DFR1_EL1",
    "ID_AFR0_EL1",
    ...[0, 1, 2, 3, 4, 5].map((n) => `ID_MMFR${n}_EL1`),
    ...[0, 1, 2, 3, 4, 5, 6].map((n) => `ID_ISAR${n}_EL1`),
    "MVFR0_EL1",
    "MVFR1_EL1",
    "MVFR2_EL1",
  ];
  for (const n of names) assert.equal(stored(n), 0n, n);
  assert.equal(stored("ID_AA64PFR0_EL1") & 0xffn, 0x11n, "EL0 and EL1: AArch64 only");
});

test("EL0 reads of the ID space trap with EC 0x18 and the MRS syndrome; user mode reads them", () => {
  for (const [crm, op2, name] of [
    [0, 0, "MIDR_EL1"],
    [4, 0, "ID_AA64PFR0_EL1"],
    [7, 0, "ID_AA64MMFR0_EL1"],
    [4, 5, "ID_AA64SMFR0_EL1"],
    [3, 7, "S3_0_C0_C3_7"],
  ] as const) {
    const cpu = machine([ERET]);
    put(cpu, TARGET, [mrs(0, 0, crm, op2, 7), SVC_0]);
    cpu.r[I.ELR_EL1] = TARGET;
    cpu.r[I.SPSR_EL1] = 0; // EL0t
    assert.equal(hvc(cpu), 0x12, name);
    // ISS: op0 [21:20], op2 [19:17], op1 [16:14], CRn [13:10], Rt [9:5], CRm [4:1], read.
    const iss = (3 << 20) | (op2 << 17) | (7 << 5) | (crm << 1) | 1;
    assert.equal(esr(cpu), ((0x18 << 26) | IL | iss) >>> 0, name);
    const user = machine([mrs(0, 0, crm, op2, 7), 0xd4200000], true);
    const exit = user.run(100);
    assert.equal(exit.kind === "exception" && exit.ec, 0x3c, `${name}: user mode reaches the BRK`);
    const reg = SYSREG_BY_KEY.get(sysregKey(3, 0, 0, crm, op2))!;
    if (name !== "MIDR_EL1") assert.equal(user.getX(7), (BigInt(reg.reset[1]) << 32n) | BigInt(reg.reset[0]));
  }
});

test("CTR_EL0 at EL0 follows SCTLR_EL1.UCT; DCZID_EL0 always reads; MDCCSR_EL0 follows MDSCR_EL1.TDCC", () => {
  const atEl0 = (insn: number, setup: (c: Cpu) => void) => {
    const cpu = machine([ERET]);
    put(cpu, TARGET, [insn, SVC_0]);
    cpu.r[I.ELR_EL1] = TARGET;
    cpu.r[I.SPSR_EL1] = 0;
    setup(cpu);
    assert.equal(hvc(cpu), 0x12);
    return esr(cpu) >>> 26;
  };
  const sctlr = sysregIndex("SCTLR_EL1");
  const mdscr = sysregIndex("MDSCR_EL1");
  const ctr = mrs(3, 0, 0, 1);
  assert.equal(
    atEl0(ctr, (c) => {
      c.r[sctlr] = (c.r[sctlr]! | (1 << 15)) >>> 0;
    }),
    0x15,
  );
  assert.equal(
    atEl0(ctr, (c) => {
      c.r[sctlr] = c.r[sctlr]! & ~(1 << 15);
    }),
    0x18,
  );
  assert.equal(
    atEl0(mrs(3, 0, 0, 7), () => {}),
    0x15,
    "DCZID_EL0",
  );
  const mdccsr = 0xd5330100; // mrs x0, mdccsr_el0
  assert.equal(
    atEl0(mdccsr, (c) => {
      c.r[mdscr] = 1 << 12;
    }),
    0x18,
  );
  assert.equal(
    atEl0(mdccsr, () => {}),
    0x15,
  );
});

test("ID_AA64DFR0_EL1 and ID_AA64MMFR0_EL1 say what debug.ts and mmu.ts implement", () => {
  const dfr0 = stored("ID_AA64DFR0_EL1");
  assert.equal(Number((dfr0 >> 12n) & 0xfn) + 1, NUM_BRPS);
  assert.equal(Number((dfr0 >> 20n) & 0xfn) + 1, NUM_WRPS);
  assert.equal(Number((dfr0 >> 28n) & 0xfn) + 1, NUM_CTX_CMPS);
  for (let n = 0; n < 16; n++) {
    assert.equal(SYSREG_BY_NAME.has(`DBGBCR${n}_EL1`), n < NUM_BRPS);
    assert.equal(SYSREG_BY_NAME.has(`DBGWCR${n}_EL1`), n < NUM_WRPS);
  }
  const mmfr0 = stored("ID_AA64MMFR0_EL1");
  assert.equal(mmfr0 & 0xfn, 2n, "40-bit PAs");
  assert.equal((mmfr0 >> 8n) & 0xfn, 0n, "no mixed endian");
});

test("KVM_SET_ONE_REG: allocated ID registers take a snapshot's value, reserved ones only zero", () => {
  const vm = new Vm({ ramBase: 0x4000_0000, ramSize: 1 << 20, clock: "deterministic" });
  const v = vm.createVcpu(0);
  v.init();
  const id = (crm: number, op2: number) => sysReg(3, 0, 0, crm, op2);
  // An older armbox advertised ID_AA64MMFR0_EL1 = 0x1124: a guest saved with it keeps it.
  v.setOneReg(id(7, 0), 0x1124n);
  assert.equal(v.getOneReg(id(7, 0)), 0x1124n);
  assert.ok(v.getRegList().includes(id(3, 7)), "reserved encodings are listed, as KVM lists them");
  v.setOneReg(id(3, 7), 0n);
  assert.throws(
    () => v.setOneReg(id(3, 7), 1n),
    (e: unknown) => e instanceof KvmError && e.errno === "EINVAL",
  );
  assert.throws(
    () => v.setOneReg(sysReg(3, 0, 0, 0, 0), 0x410fd034n),
    (e: unknown) => e instanceof KvmError && e.errno === "EINVAL",
    "MIDR_EL1 stays a constant",
  );
});

/** The table of docs/ID-REGISTERS.md: [register, field, hi, lo, value]. */
function docRows(): [string, string, number, number, bigint][] {
  const md = readFileSync(new URL("../docs/ID-REGISTERS.md", import.meta.url), "utf8");
  const rows: [string, string, number, number, bigint][] = [];
  for (const line of md.split("\n")) {
    const m = /^\| ([A-Z0-9_]+) \| (\w+) \| (\d+):(\d+) \| (0x[0-9a-f]+|\d+) \|/.exec(line);
    if (m) rows.push([m[1]!, m[2]!, Number(m[3]), Number(m[4]), BigInt(m[5]!)]);
  }
  return rows;
}

test("docs/ID-REGISTERS.md describes every non-zero bit of each register it lists, with the right values", () => {
  const rows = docRows();
  assert.ok(rows.length > 60);
  const built = new Map<string, bigint>();
  for (const [reg, field, hi, lo, value] of rows) {
    assert.ok(SYSREG_BY_NAME.has(reg), `${reg} exists`);
    const width = BigInt(hi - lo + 1);
    assert.ok(value < 1n << width, `${reg}.${field} fits its bits`);
    const actual = (stored(reg) >> BigInt(lo)) & ((1n << width) - 1n);
    assert.equal(actual, value, `${reg}.${field} [${hi}:${lo}]`);
    built.set(reg, (built.get(reg) ?? 0n) | (value << BigInt(lo)));
  }
  for (const [reg, v] of built)
    assert.equal(v, stored(reg), `${reg}: a non-zero field is missing from the table`);
  for (const reg of [
    "ID_AA64PFR0_EL1",
    "ID_AA64DFR0_EL1",
    "ID_AA64ISAR0_EL1",
    "ID_AA64ISAR1_EL1",
    "ID_AA64MMFR0_EL1",
    "ID_AA64MMFR1_EL1",
    "ID_AA64MMFR2_EL1",
  ]) {
    assert.ok(built.has(reg), `${reg} is in the table`);
  }
  // Every other AArch64 feature register is zero.
  for (const reg of [
    "ID_AA64PFR1_EL1",
    "ID_AA64ZFR0_EL1",
    "ID_AA64SMFR0_EL1",
    "ID_AA64DFR1_EL1",
    "ID_AA64ISAR2_EL1",
  ]) {
    assert.equal(stored(reg), 0n, reg);
  }
});

test("MRS and MSR of SP_EL0 are UNDEFINED at EL1 while SP_EL0 is the stack pointer (EL1t), interpreted and translated", () => {
  const MSR_SPSEL_0 = 0xd50040bf;
  const MRS_X5_SP_EL0 = 0xd5384105;
  const MSR_SP_EL0_X5 = 0xd5184105;
  for (const jit of [false, true]) {
    const make = (code: readonly number[]) => {
      const cpu = new Cpu({
        memory: createVmMemory(RAM),
        index: 0,
        bus: { ramBase: 0, ramSize: RAM },
        ...(jit ? { jit: { threshold: 1, batch: 1 } } : {}),
      });
      // The current-EL vectors with SP0 (0x000) and with SPx (0x200).
      put(cpu, VBAR, [HVC_11]);
      put(cpu, VBAR + 0x200, [HVC_12]);
      put(cpu, CODE, code);
      cpu.r[sysregIndex("VBAR_EL1")] = VBAR;
      cpu.pc = BigInt(CODE);
      cpu.r[I.SP_EL0] = 0x1234;
      return cpu;
    };
    // EL1h: SP_EL0 reads and writes as any register.
    const h = make([MRS_X5_SP_EL0, HVC_13]);
    assert.equal(hvc(h), 0x13);
    assert.equal(h.getX(5), 0x1234n, `EL1h read (jit ${jit})`);
    // EL1t (threshold 1: translated from the first run with the translator on).
    for (const insn of [MRS_X5_SP_EL0, MSR_SP_EL0_X5]) {
      const t = make([MSR_SPSEL_0, insn, HVC_13]);
      t.setX(5, 0xdeadn);
      assert.equal(hvc(t), 0x11, `EL1t ${insn.toString(16)} (jit ${jit}): the SP0 vector`);
      assert.equal(esr(t), IL, "EC 0: UNDEFINED");
      assert.equal(t.getX(5), 0xdeadn);
      assert.equal(t.r[I.SP_EL0], 0x1234);
    }
  }
});
