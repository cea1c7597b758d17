import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  buildFdt,
  FdtError,
  type FdtNode,
  findNode,
  getProp,
  node,
  parseFdt,
  propNumber,
  propString,
  propStrings,
  propU32s,
} from "../src/machine/fdt.ts";
import { buildVirtFdt, fixupUserDtb, type VirtFdtConfig } from "../src/machine/virt-fdt.ts";

const hasDtc = spawnSync("dtc", ["--version"]).status === 0;

const cfg = (over: Partial<VirtFdtConfig> = {}): VirtFdtConfig => ({
  cpus: 4,
  mpidrs: [0, 1, 2, 3],
  ramBase: 0x4000_0000,
  ramSize: 256 * 1024 * 1024,
  bootargs: "console=ttyAMA0 earlycon",
  psciMethod: "hvc",
  kaslrSeed: 0x1122_3344_5566_7788n,
  rngSeed: new Uint8Array(32).map((_, i) => i),
  ...over,
});

/** Runs `dtc -I dtb -O dts` on a blob; returns the source and dtc's warnings. */
function dtc(blob: Uint8Array): { dts: string; stderr: string } {
  const r = spawnSync("dtc", ["-I", "dtb", "-O", "dts", "-"], { input: blob, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return { dts: r.stdout, stderr: r.stderr };
}

/** Every node path with its property names, e.g. "/psci: compatible,cpu_off,...". */
function shape(n: FdtNode, path = ""): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (m: FdtNode, p: string): void => {
    out.set(p || "/", m.props.map((x) => x.name).sort());
    for (const c of m.children) walk(c, `${p}/${c.name}`);
  };
  walk(n, path);
  return out;
}

const fixture = (name: string) =>
  parseFdt(new Uint8Array(readFileSync(new URL(`fixtures/${name}`, import.meta.url))));

test("node and property names match QEMU's virt for the devices we have", () => {
  const ours = shape(parseFdt(buildVirtFdt(cfg())).root);
  const qemu = shape(fixture("qemu-virt-gicv3-smp4.dtb").root);
  // Nodes QEMU has that we do not emulate.
  const absent = /^\/(platform-bus|fw-cfg|virtio_mmio|gpio-keys|pl061|pcie|flash)|^\/intc@8000000\/its/;
  for (const [path, props] of qemu) {
    if (absent.test(path)) {
      assert.equal(ours.has(path), false, `unexpected ${path}`);
      continue;
    }
    assert.ok(ours.has(path), `missing node ${path}`);
    let mine = ours.get(path)!;
    // Differences on purpose: the maintenance interrupt on the GIC; bootargs in /chosen.
    if (path === "/intc@8000000") mine = mine.filter((p) => p !== "interrupts");
    if (path === "/chosen") mine = mine.filter((p) => p !== "bootargs");
    assert.deepEqual(mine, props, `properties of ${path}`);
  }
  for (const path of ours.keys()) assert.ok(qemu.has(path), `extra node ${path}`);
});

test("property values match QEMU's where they do not depend on the configuration", () => {
  const ours = parseFdt(buildVirtFdt(cfg())).root;
  const qemu = fixture("qemu-virt-gicv3-smp4.dtb").root;
  const same = [
    ["/", "model"],
    ["/", "compatible"],
    ["/", "#address-cells"],
    ["/", "#size-cells"],
    ["/psci", "migrate"],
    ["/psci", "cpu_on"],
    ["/psci", "cpu_off"],
    ["/psci", "cpu_suspend"],
    ["/psci", "method"],
    ["/psci", "compatible"],
    ["/memory@40000000", "reg"],
    ["/memory@40000000", "device_type"],
    ["/pl011@9000000", "reg"],
    ["/pl011@9000000", "interrupts"],
    ["/pl011@9000000", "compatible"],
    ["/pl011@9000000", "clock-names"],
    ["/pl031@9010000", "reg"],
    ["/pl031@9010000", "interrupts"],
    ["/pl031@9010000", "compatible"],
    ["/pl031@9010000", "clock-names"],
    ["/intc@8000000", "compatible"],
    ["/intc@8000000", "#interrupt-cells"],
    ["/intc@8000000", "#redistributor-regions"],
    ["/timer", "interrupts"],
    ["/timer", "compatible"],
    ["/apb-pclk", "clock-frequency"],
    ["/apb-pclk", "clock-output-names"],
    ["/apb-pclk", "compatible"],
    ["/chosen", "stdout-path"],
    ...[0, 1, 2, 3].flatMap((i) =>
      ["reg", "enable-method", "compatible", "device_type"].map((p) => [`/cpus/cpu@${i}`, p]),
    ),
  ];
  for (const [path, prop] of same) {
    const a = getProp(findNode(ours, path!)!, prop!);
    const b = getProp(findNode(qemu, path!)!, prop!);
    assert.deepEqual(a, b, `${path} ${prop}`);
  }
  // Phandle references resolve to the right nodes.
  const gic = propU32s(getProp(findNode(ours, "/intc@8000000")!, "phandle")!)[0];
  assert.deepEqual(propU32s(getProp(ours, "interrupt-parent")!), [gic]);
  const clk = propU32s(getProp(findNode(ours, "/apb-pclk")!, "phandle")!)[0];
  assert.deepEqual(propU32s(getProp(findNode(ours, "/pl011@9000000")!, "clocks")!), [clk, clk]);
  const core2 = propU32s(getProp(findNode(ours, "/cpus/cpu-map/socket0/cluster0/core2")!, "cpu")!)[0];
  assert.deepEqual(propU32s(getProp(findNode(ours, "/cpus/cpu@2")!, "phandle")!), [core2]);
});

test("configuration: memory, redistributors, PSCI method, chosen", () => {
  const t = parseFdt(
    buildVirtFdt(
      cfg({
        cpus: 2,
        mpidrs: [0, 1],
        ramSize: 0x8000_0000,
        psciMethod: "smc",
        initrd: { start: 0x4800_0000, end: 0x4800_03e8 },
      }),
    ),
  ).root;
  assert.deepEqual(
    propU32s(getProp(findNode(t, "/memory@40000000")!, "reg")!),
    [0, 0x4000_0000, 0, 0x8000_0000],
  );
  assert.deepEqual(propU32s(getProp(findNode(t, "/intc@8000000")!, "reg")!), [
    0,
    0x800_0000,
    0,
    0x1_0000,
    0,
    0x80a_0000,
    0,
    2 * 0x2_0000,
  ]);
  assert.equal(propString(getProp(findNode(t, "/psci")!, "method")!), "smc");
  const chosen = findNode(t, "/chosen")!;
  assert.equal(propString(getProp(chosen, "bootargs")!), "console=ttyAMA0 earlycon");
  assert.equal(propNumber(getProp(chosen, "linux,initrd-start")!), 0x4800_0000n);
  assert.equal(propNumber(getProp(chosen, "linux,initrd-end")!), 0x4800_03e8n);
  assert.equal(propNumber(getProp(chosen, "kaslr-seed")!), 0x1122_3344_5566_7788n);
  assert.deepEqual(
    getProp(chosen, "rng-seed"),
    new Uint8Array(32).map((_, i) => i),
  );
  assert.equal(findNode(t, "/cpus/cpu@2"), undefined);
  // QEMU writes one cell for the initrd addresses, as here.
  const q = findNode(fixture("qemu-virt-gicv3-smp1-kernel-initrd.dtb").root, "/chosen")!;
  assert.equal(getProp(q, "linux,initrd-start")!.length, getProp(chosen, "linux,initrd-start")!.length);
  assert.deepEqual(propStrings(getProp(q, "bootargs")!), ["console=ttyAMA0 foo"]);
});

test("cpu nodes are named and addressed by MPIDR affinity", () => {
  const t = parseFdt(buildVirtFdt(cfg({ cpus: 2, mpidrs: [0x8000_0000, 0x8000_0101] }))).root;
  assert.deepEqual(propU32s(getProp(findNode(t, "/cpus/cpu@101")!, "reg")!), [0x101]);
  assert.deepEqual(propU32s(getProp(findNode(t, "/cpus/cpu@0")!, "reg")!), [0]);
});

test("virtio-mmio transports as QEMU describes them", () => {
  const t = parseFdt(buildVirtFdt(cfg({ virtio: [0, 31] }))).root;
  const q = fixture("qemu-virt-gicv3-smp4.dtb").root;
  for (const p of ["/virtio_mmio@a000000", "/virtio_mmio@a003e00"]) {
    assert.deepEqual(findNode(t, p), findNode(q, p), p);
  }
  assert.throws(() => buildVirtFdt(cfg({ virtio: [32] })), /does not exist/);
});

test("bad configurations are refused", () => {
  assert.throws(() => buildVirtFdt(cfg({ cpus: 0, mpidrs: [] })), RangeError);
  assert.throws(() => buildVirtFdt(cfg({ cpus: 124, mpidrs: new Array(124).fill(0) })), RangeError);
  assert.throws(() => buildVirtFdt(cfg({ cpus: 2 })), /MPIDRs/);
});

test("dtc decompiles our virt tree without a single warning", {
  skip: !hasDtc && "dtc not installed",
}, () => {
  for (const c of [
    cfg(),
    cfg({ cpus: 1, mpidrs: [0], bootargs: "", initrd: { start: 0x4800_0000, end: 0x4900_0000 } }),
    cfg({ virtio: [0, 1, 2] }),
  ]) {
    const { dts, stderr } = dtc(buildVirtFdt(c));
    assert.equal(stderr, "");
    assert.match(dts, /compatible = "arm,pl011\\0arm,primecell";/);
  }
});

test("--dtb: a user tree gets /memory and /chosen as QEMU's arm_load_dtb sets them", () => {
  const blob = new Uint8Array(readFileSync(new URL("fixtures/qemu-virt-gicv3-smp4.dtb", import.meta.url)));
  const out = parseFdt(
    fixupUserDtb(blob, {
      ramBase: 0x4000_0000,
      ramSize: 0x2000_0000,
      bootargs: "console=ttyAMA0",
      initrd: { start: 0x4800_0000, end: 0x4810_0000 },
    }),
  ).root;
  assert.deepEqual(
    propU32s(getProp(findNode(out, "/memory@40000000")!, "reg")!),
    [0, 0x4000_0000, 0, 0x2000_0000],
  );
  const chosen = findNode(out, "/chosen")!;
  assert.equal(propString(getProp(chosen, "bootargs")!), "console=ttyAMA0");
  assert.equal(propNumber(getProp(chosen, "linux,initrd-start")!), 0x4800_0000n);
  assert.equal(propNumber(getProp(chosen, "linux,initrd-end")!), 0x4810_0000n);
  // Everything else is untouched.
  assert.deepEqual(findNode(out, "/pcie@10000000"), findNode(parseFdt(blob).root, "/pcie@10000000"));
  if (hasDtc) assert.equal(dtc(buildFdt(out)).stderr, "");
  // A minimal tree with one-cell addresses and no /chosen or /memory.
  const small = buildFdt(node("", { "#address-cells": 1, "#size-cells": 1 }));
  const t = parseFdt(fixupUserDtb(small, { ramBase: 0x4000_0000, ramSize: 0x1000_0000, bootargs: "" })).root;
  assert.deepEqual(propU32s(getProp(findNode(t, "/memory@40000000")!, "reg")!), [0x4000_0000, 0x1000_0000]);
  assert.ok(findNode(t, "/chosen"));
  assert.throws(
    () => fixupUserDtb(small, { ramBase: 0x4000_0000, ramSize: 0x1_0000_0000, bootargs: "" }),
    /#address-cells = 1 cannot describe/,
  );
  assert.throws(() => fixupUserDtb(new Uint8Array(100), { ramBase: 0, ramSize: 1, bootargs: "" }), FdtError);
});
