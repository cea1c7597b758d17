/**
 * The PMU's overflow interrupt reaches the GIC as PPI 7 (INTID 23) of its own vCPU, and
 * the board's FDT describes it as QEMU's virt does (arm,armv8-pmuv3, <1 7 4>).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { findNode, getProp, parseFdt, propU32s } from "../src/machine/fdt.ts";
import { VirtMachine } from "../src/machine/virt.ts";

const kernel = Uint8Array.of(0x7f, 0x20, 0x03, 0xd5, 0xff, 0xff, 0xff, 0x17); // wfi; b .
const GICR_SGI = 0x10000;
const GICR_ISPENDR0 = 0x200;

test("a PMU overflow raises PPI 23 on its own vCPU's redistributor", () => {
  const m = new VirtMachine({ memory: 64 << 20, kernel, smp: 2 });
  const pending = (cpu: number) => m.gic.redistRead(cpu, GICR_SGI + GICR_ISPENDR0, 4);
  assert.equal(pending(1) & (1 << 23), 0);
  const c = m.vcpus[1]!.cpu;
  c.onPmuIrq!(c, true);
  assert.equal(pending(1) & (1 << 23), 1 << 23);
  assert.equal(pending(0) & (1 << 23), 0, "not the other vCPU's");
  c.onPmuIrq!(c, false);
  assert.equal(pending(1) & (1 << 23), 0, "level-sensitive: low again");
});

test("the FDT has QEMU's pmu node", () => {
  const m = new VirtMachine({ memory: 64 << 20, kernel });
  const pmu = findNode(parseFdt(m.dtb).root, "/pmu");
  assert.ok(pmu);
  assert.deepEqual(propU32s(getProp(pmu, "interrupts")!), [1, 7, 4]);
});
