/**
 * The translator in a VM, where write tracking is on (src/arch/arm64/jit/jit.ts): code the
 * VMM itself rewrites (a DMA, a loader: Vm.writeRam and markDirty) while its translation is
 * hot must run as rewritten, even when the translation is reached from another block of
 * its module without returning to JS.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { coreReg, KVM_REG_SIZE_U64 } from "../src/hv/onereg.ts";
import { Vm } from "../src/hv/vm.ts";

const RAM_BASE = 0x4000_0000;
const PC = coreReg(256, KVM_REG_SIZE_U64);
const X0 = coreReg(0, KVM_REG_SIZE_U64);

// x0 = 0; x1 = 200; x9 = func (the next page); loop: blr x9; subs x1, x1, #1; b.ne loop;
// b . — func: add x0, x0, #3; ret. Then the VMM rewrites func's add to #5.
const CALLER = [0xd2800000, 0xd2801901, 0x10007fc9, 0xd63f0120, 0xf1000421, 0x54ffffc1, 0x14000000];
const FUNC = [0x91000c00, 0xd65f03c0];
const ADD5 = 0x91001400;

function words(ws: number[]): Uint8Array {
  const b = new Uint8Array(ws.length * 4);
  ws.forEach((w, i) => {
    new DataView(b.buffer).setUint32(i * 4, w >>> 0, true);
  });
  return b;
}

function run(jit: boolean): bigint {
  // Batch 3: the loop's three blocks share one module, so the call reaches func's
  // translation through the dispatcher, inside wasm.
  const vm = new Vm({
    ramBase: RAM_BASE,
    ramSize: 1 << 20,
    clock: "deterministic",
    ...(jit ? { jit: { threshold: 2, batch: 3 } } : {}),
  });
  vm.writeRam(RAM_BASE, words(CALLER));
  vm.writeRam(RAM_BASE + 0x1000, words(FUNC));
  const v = vm.createVcpu(0);
  v.init({ powerOff: false });
  v.setOneReg(PC, BigInt(RAM_BASE));
  v.run(3 + 100 * 5); // 100 calls: hot, translated
  vm.writeRam(RAM_BASE + 0x1000, words([ADD5]));
  v.run(100 * 5 + 10);
  if (jit) {
    const j = v.cpu.jit!;
    assert.ok(j.tracking, "write tracking is on in a VM");
    assert.ok(j.executed > 500, `only ${j.executed} instructions ran translated`);
    assert.ok(j.stats.codeWrites >= 1, "the VMM's write did not drop the translation");
  }
  return v.getOneReg(X0);
}

test("code the VMM rewrites under a hot translation runs as rewritten (write tracking)", () => {
  const interpreted = run(false);
  assert.equal(interpreted, 100n * 3n + 100n * 5n);
  assert.equal(run(true), interpreted);
});
