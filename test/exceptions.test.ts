/**
 * The EL0/EL1 exception model in system mode: VBAR_EL1 vectors, ESR/ELR/SPSR, ERET,
 * SVC/UNDEF/trapped MRS from EL0, HVC exiting to the owner, IRQ masking by PSTATE.I.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, createVmMemory, RAM_OFFSET } from "../src/arch/arm64/index.ts";

const RAM = 1 << 20;
function systemCpu(code: Record<number, number[]>): Cpu {
  const memory = createVmMemory(RAM);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: 0, ramSize: RAM } });
  for (const [addr, words] of Object.entries(code)) {
    words.forEach((w, i) => {
      cpu.dv.setUint32(RAM_OFFSET + Number(addr) + i * 4, w, true);
    });
  }
  cpu.pc = 0x10000n;
  return cpu;
}

// ex.s: set VBAR_EL1=0x11000, ERET to EL0; EL0 runs SVC #0x77, UDF, MRS SCTLR_EL1, BRK #1.
const MAIN = [
  0xd2a00020, 0x91400400, 0xd518c000, 0x100000e1, 0xd5184021, 0xd2800002, 0xd5184002, 0xd2a00063, 0xd5184103,
  0xd69f03e0, 0xd280054a, 0xd4000ee1, 0xd280056b, 0x00000000, 0xd280058c, 0xd538100d, 0xd28005ae, 0xd4200020,
];
// vec.s at VBAR+0x400: x23 counts exceptions, x25 ORs the ESRs of SVCs, faults skip the
// instruction, BRK ends with HVC #0x11.
const VECTOR = [
  0xd5385214, 0xd5384035, 0xd5384016, 0x910006f7, 0xd35afe98, 0xf100571f, 0x540000a0, 0xf100f31f, 0x540000a0,
  0x910012b5, 0xd5184035, 0xaa140339, 0xd69f03e0, 0xd4000222,
];

test("exceptions from EL0 reach the EL1 vector with the architected syndrome", () => {
  const cpu = systemCpu({ 65536: MAIN, 70656: VECTOR });
  const exit = cpu.run(1000);
  assert.deepEqual(exit, { kind: "hvc", imm: 0x11 });
  assert.equal(cpu.getX(10), 42n);
  assert.equal(cpu.getX(11), 43n, "SVC returns to the next instruction");
  assert.equal(cpu.getX(12), 44n, "UNDEF handler skipped the UDF");
  assert.equal(cpu.getX(13), 0n, "trapped MRS did not write its register");
  assert.equal(cpu.getX(14), 45n);
  assert.equal(cpu.getX(23), 4n, "SVC, UNDEF, MRS trap, BRK");
  // x25 ORs the ESRs of SVC #0x77, UNDEF (EC 0) and the MRS trap (EC 0x18, ISS: op0=3,
  // CRn=1, Rt=13, read).
  const svc = (0x15n << 26n) | (1n << 25n) | 0x77n;
  const undef = 1n << 25n;
  const mrs = (0x18n << 26n) | (1n << 25n) | (3n << 20n) | (1n << 10n) | (13n << 5n) | 1n;
  assert.equal(cpu.getX(25), svc | undef | mrs);
  assert.equal(cpu.getX(20), (0x3cn << 26n) | (1n << 25n) | 1n, "ESR of BRK #1");
  assert.equal(cpu.getX(21), 0x10044n, "ELR of BRK is the BRK itself");
  assert.equal(cpu.getX(22), 0n, "SPSR: EL0t");
  assert.equal(cpu.pstate & 0xf, 5, "handler runs in EL1h");
  assert.equal((cpu.pstate >>> 6) & 0xf, 0xf, "DAIF masked on entry");
});

test("an IRQ is held while PSTATE.I is set and taken once unmasked", () => {
  // msr daifclr, #2 at 0x10004 after a nop; IRQ vector (current EL, SPx) at 0x200+0x80.
  const cpu = systemCpu({
    65536: [0xd503201f, 0xd50342ff, 0xd503201f, 0xd503201f],
    640: [0xd4000022], // hvc #1 at VBAR_EL1 (0) + current EL with SPx + IRQ
  });
  cpu.setIrqLine(true);
  const exit = cpu.run(100);
  assert.deepEqual(exit, { kind: "hvc", imm: 1 });
  // Taken right after DAIFClr retired: ELR points at the instruction after it.
  const elr = cpu.dvState.getBigUint64(280, true);
  assert.equal(elr, 0x10008n);
});

test("garbage never escapes as a JavaScript exception", () => {
  const words = Array.from({ length: 4096 }, (_, i) => (Math.imul(i + 1, 0x9e3779b1) ^ (i << 7)) >>> 0);
  const cpu = systemCpu({ 65536: words });
  for (let k = 0; k < 50; k++) {
    const exit = cpu.run(1000);
    assert.notEqual(exit.kind, "internal-error", JSON.stringify(exit));
  }
});
