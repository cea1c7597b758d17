/**
 * Decoded code is shared by the vCPUs of a VM (src/arch/arm64/code-cache.ts): one decode
 * of the kernel, not one per vCPU, and a word one vCPU rewrites is decoded again by the
 * vCPU that runs it next.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, createVmMemory } from "../src/arch/arm64/index.ts";
import { coreReg, KVM_REG_SIZE_U64 } from "../src/hv/onereg.ts";
import { Vm } from "../src/hv/vm.ts";

const RAM_BASE = 0x4000_0000;
const PC = coreReg(256, KVM_REG_SIZE_U64);
/** Xn: regs.regs[n] of struct kvm_regs, at byte 8n. */
const X = (n: number) => coreReg(8 * n, KVM_REG_SIZE_U64);

function words(ws: number[]): Uint8Array {
  const b = new Uint8Array(ws.length * 4);
  ws.forEach((w, i) => {
    new DataView(b.buffer).setUint32(i * 4, w >>> 0, true);
  });
  return b;
}

for (const jit of [false, true]) {
  const accel = jit ? "translator" : "interpreter";

  test(`the vCPUs of a VM share one code cache, and two VMs do not (${accel})`, () => {
    const make = () => new Vm({ ramBase: RAM_BASE, ramSize: 1 << 20, clock: "deterministic", jit });
    const vm = make();
    const [a, b] = [vm.createVcpu(0), vm.createVcpu(1)];
    assert.equal(a.cpu.code, b.cpu.code);
    assert.equal(a.cpu.jit, b.cpu.jit);
    assert.notEqual(make().createVcpu(0).cpu.code, a.cpu.code);
  });

  test(`code one vCPU rewrites runs as rewritten on another vCPU that decoded it (${accel})`, () => {
    const vm = new Vm({
      ramBase: RAM_BASE,
      ramSize: 1 << 20,
      clock: "deterministic",
      ...(jit ? { jit: { threshold: 2, batch: 1 } } : {}),
    });
    // vCPU 1 loops over `add x0, x0, #3` (at 0x1000) 200 times, then stops at `b .`;
    // vCPU 0 then stores `add x0, x0, #5` over it (str w2, [x3]; b .), and vCPU 1 runs
    // the loop again from the start.
    const LOOP = [0xd2801901, 0x91000c00, 0xf1000421, 0x54ffffc1, 0x14000000];
    vm.writeRam(RAM_BASE + 0x1000, words(LOOP));
    vm.writeRam(RAM_BASE, words([0xb9000062, 0x14000000]));
    const [w, r] = [vm.createVcpu(0), vm.createVcpu(1)];
    for (const v of [w, r]) v.init({ powerOff: false });
    r.setOneReg(PC, BigInt(RAM_BASE + 0x1000));
    r.run(1 + 200 * 3 + 5);
    assert.equal(r.getOneReg(X(0)), 600n);
    if (jit) assert.ok(r.cpu.jit!.executed > 300, "the loop ran translated");
    w.setOneReg(PC, BigInt(RAM_BASE));
    w.setOneReg(X(2), 0x91001400n);
    w.setOneReg(X(3), BigInt(RAM_BASE + 0x1004));
    w.run(5);
    r.setOneReg(PC, BigInt(RAM_BASE + 0x1000));
    r.run(1 + 200 * 3 + 5);
    assert.equal(r.getOneReg(X(0)), 600n + 1000n);
  });
}

test("a vCPU cannot share the decoded code of one with another translator", () => {
  const memory = createVmMemory(1 << 20);
  const bus = { ramBase: 0, ramSize: 1 << 20 };
  const a = new Cpu({ memory, index: 0, bus, jit: true });
  assert.throws(() => new Cpu({ memory, index: 1, bus, jit: false, code: a.code }), /translator/);
  assert.equal(new Cpu({ memory, index: 1, bus, jit: a.jit!, code: a.code }).code, a.code);
});
