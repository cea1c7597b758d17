/**
 * The translator's check mode (src/vmm/jit-lockstep.ts): bare-metal guests at 1, 2 and 4
 * vCPUs (MMU, exceptions, timers, SGIs, PSCI) run interpreted and translated in lockstep
 * with no divergence; and a divergence planted in the translated machine is found and
 * named (vCPU, PC, instruction, register), so the check can fail.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { VirtMachine } from "../src/machine/virt.ts";
import { lockstep } from "../src/vmm/jit-lockstep.ts";

const guest = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../guests/baremetal/bin/${name}.elf`, import.meta.url)));

function builder(kernel: Uint8Array, smp: number): (jit: boolean) => VirtMachine {
  return (jit) =>
    new VirtMachine({ kernel, smp, memory: 64 << 20, deterministic: true, jit, serialOutput: () => {} });
}

for (const [name, smp] of [
  ["mmu", 1],
  ["exceptions", 1],
  ["timer", 2],
  ["sgi-pingpong", 4],
  ["hotplug", 4],
] as const) {
  test(`lockstep: ${name} at ${smp} vCPU(s), translated = interpreted`, () => {
    const r = lockstep(builder(guest(name), smp), { instructions: 3_000_000, step: 5_000, ramEvery: 20 });
    assert.equal(
      r.divergence,
      null,
      JSON.stringify(r.divergence, (_k, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)),
    );
    console.log(`# ${name}: ${r.checked} instructions checked, ${r.translated} ran translated`);
    assert.ok(r.checked > 10_000, `only ${r.checked} instructions checked`);
    assert.ok(r.translated > r.checked / 10, `only ${r.translated} of ${r.checked} ran translated`);
  });
}

test("lockstep finds a divergence planted in the translated machine and names the register", () => {
  const r = lockstep(builder(guest("timer"), 2), {
    instructions: 2_000_000,
    step: 5_000,
    afterStep: (m, done) => {
      if (done === 50_000) m.vcpus[1]!.cpu.r[2 * 7] ^= 0x10; // X7 of vCPU 1
    },
  });
  assert.ok(r.divergence !== null, "no divergence reported");
  assert.equal(r.divergence.vcpu, 1);
  assert.match(r.divergence.what, /^X7 /);
  assert.equal(r.divergence.at, 49_999);
});
