import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
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
  u32,
  u64,
} from "../src/machine/fdt.ts";

const hasDtc = spawnSync("dtc", ["--version"]).status === 0;
const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`fixtures/${name}`, import.meta.url)));

/** Runs `dtc -I dtb -O dts` on a blob; returns the source and dtc's warnings. */
function dtc(blob: Uint8Array): { dts: string; stderr: string } {
  const r = spawnSync("dtc", ["-I", "dtb", "-O", "dts", "-"], { input: blob, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return { dts: r.stdout, stderr: r.stderr };
}

const sample = (): FdtNode =>
  node("", { "#address-cells": 2, "#size-cells": 2, compatible: "test,board", model: "x" }, [
    node("memory@40000000", { device_type: "memory", reg: [0, 0x4000_0000, 0, 0x1000_0000] }),
    node("chosen", { bootargs: "console=ttyAMA0", "kaslr-seed": 0x0123_4567_89ab_cdefn }),
    node(
      "intc@8000000",
      {
        "interrupt-controller": true,
        "#interrupt-cells": 3,
        "#address-cells": 2,
        "#size-cells": 2,
        ranges: true,
        reg: [0, 0x800_0000, 0, 0x1_0000],
        phandle: 1,
        compatible: ["arm,gic-v3", "x"],
      },
      [node("its@8080000", { "msi-controller": true, reg: [0, 0x808_0000, 0, 0x2_0000] })],
    ),
  ]);

test("header fields and block layout follow the spec", () => {
  const b = buildFdt(sample(), { bootCpuId: 3, reservations: [{ address: 0x4000_0000n, size: 0x1000n }] });
  const dv = new DataView(b.buffer);
  assert.equal(dv.getUint32(0), 0xd00dfeed);
  assert.equal(dv.getUint32(4), b.length);
  assert.equal(dv.getUint32(20), 17);
  assert.equal(dv.getUint32(24), 16);
  assert.equal(dv.getUint32(28), 3);
  assert.equal(dv.getUint32(16) % 8, 0);
  assert.equal(dv.getUint32(8) % 4, 0);
  assert.equal(dv.getUint32(8) + dv.getUint32(36), dv.getUint32(12)); // struct then strings
  assert.equal(dv.getUint32(12) + dv.getUint32(32), b.length);
  const f = parseFdt(b);
  assert.deepEqual(f.reservations, [{ address: 0x4000_0000n, size: 0x1000n }]);
  assert.equal(f.bootCpuId, 3);
});

test("round trip: parse(build(tree)) gives the tree back", () => {
  const t = sample();
  const f = parseFdt(buildFdt(t));
  assert.deepEqual(f.root, t);
  const chosen = findNode(f.root, "/chosen")!;
  assert.equal(propString(getProp(chosen, "bootargs")!), "console=ttyAMA0");
  assert.equal(propNumber(getProp(chosen, "kaslr-seed")!), 0x0123_4567_89ab_cdefn);
  assert.deepEqual(propStrings(getProp(findNode(f.root, "/intc@8000000")!, "compatible")!), [
    "arm,gic-v3",
    "x",
  ]);
  assert.deepEqual(
    propU32s(getProp(findNode(f.root, "/memory@40000000")!, "reg")!),
    [0, 0x4000_0000, 0, 0x1000_0000],
  );
  assert.ok(findNode(f.root, "/intc@8000000/its@8080000"));
  assert.equal(findNode(f.root, "/nope"), undefined);
});

test("property names are stored once in the strings block", () => {
  const t = node("", { compatible: "a" }, [node("x", { compatible: "b" }), node("y", { compatible: "c" })]);
  const b = buildFdt(t);
  assert.equal(new DataView(b.buffer).getUint32(32), "compatible\0".length);
});

test("builder refuses bad names and duplicates", () => {
  assert.throws(() => buildFdt(node("root")), FdtError);
  assert.throws(() => buildFdt(node("", {}, [node("bad name")])), FdtError);
  assert.throws(() => buildFdt(node("", {}, [node("a"), node("a")])), /duplicate node/);
  assert.throws(
    () =>
      buildFdt(
        node("", [
          ["p", 1],
          ["p", 2],
        ]),
      ),
    /duplicate property/,
  );
  assert.throws(() => buildFdt(node("", { "bad prop!": 1 })), /invalid property name/);
  assert.throws(() => u32(-1), FdtError);
  assert.throws(() => u32(2 ** 32), FdtError);
  assert.throws(() => u64(-1n), FdtError);
  assert.throws(() => node("", { s: "a\0b" }), FdtError);
});

test("dtc reads our blob without warnings and decompiles it as expected", {
  skip: !hasDtc && "dtc not installed",
}, () => {
  const { dts, stderr } = dtc(buildFdt(sample(), { reservations: [{ address: 0x1000n, size: 0x2000n }] }));
  assert.equal(stderr, "");
  assert.match(dts, /\/memreserve\/\s+0x0*1000 0x0*2000;/);
  assert.match(dts, /kaslr-seed = <0x1234567 0x89abcdef>;/);
  assert.match(dts, /compatible = "arm,gic-v3\\0x";/);
  assert.match(dts, /interrupt-controller;/);
});

test("parses dtc's and QEMU's blobs", { skip: !hasDtc && "dtc not installed" }, () => {
  const blob = fixture("qemu-virt-gicv3-smp4.dtb");
  const f = parseFdt(blob);
  assert.ok(findNode(f.root, "/cpus/cpu@3"));
  assert.deepEqual(propStrings(getProp(findNode(f.root, "/psci")!, "compatible")!), [
    "arm,psci-1.0",
    "arm,psci-0.2",
    "arm,psci",
  ]);
  // Rebuilding what we parsed gives a blob dtc decompiles to the same source.
  assert.equal(dtc(buildFdt(f.root)).dts, dtc(blob).dts);
});

test("reads a version 16 blob (no size_dt_struct)", () => {
  const b = buildFdt(sample());
  const dv = new DataView(b.buffer);
  dv.setUint32(20, 16);
  dv.setUint32(36, 0);
  assert.deepEqual(parseFdt(b).root, sample());
});

test("clear errors for broken blobs", () => {
  const good = buildFdt(sample());
  const mut = (f: (dv: DataView, b: Uint8Array) => void): Uint8Array => {
    const b = good.slice();
    f(new DataView(b.buffer), b);
    return b;
  };
  assert.throws(() => parseFdt(new Uint8Array(10)), /shorter than the 40-byte header/);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(0, 0x12345678))), /bad magic/);
  assert.throws(() => parseFdt(good.subarray(0, good.length - 1)), /truncated/);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(20, 15))), /too old/);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(24, 18))), /needs a reader of version 18/);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(8, 0xfffffff0))), /structure block/);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(12, good.length))), /strings block/);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(16, 44))), /8-byte aligned/);
  const offStruct = new DataView(good.buffer).getUint32(8);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(offStruct, 7))), /unknown token 0x7/);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(offStruct, 2))), /unbalanced FDT_END_NODE/);
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(offStruct, 9))), /no root node/);
  // The last token is FDT_END; turn it into a NOP: the block then ends without FDT_END.
  assert.throws(
    () => parseFdt(mut((dv) => dv.setUint32(offStruct + dv.getUint32(36) - 4, 4))),
    /without FDT_END/,
  );
  // Property name offset past the strings block.
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(offStruct + 8 + 8, 0xffff))), /name offset/);
  // Property length past the block.
  assert.throws(() => parseFdt(mut((dv) => dv.setUint32(offStruct + 8 + 4, 0xffffff))), /runs past/);
});

test("deep nesting is refused, not a stack overflow", () => {
  let n = node("leaf");
  for (let i = 0; i < 100; i++) n = node(`n${i}`, {}, [n]);
  assert.throws(() => parseFdt(buildFdt(node("", {}, [n]))), /nested deeper/);
});

// --- properties -----------------------------------------------------------------------

const nameArb = fc.stringMatching(/^[a-z][a-z0-9,._+-]{0,15}(@[0-9a-f]{1,8})?$/);
const propNameArb = fc.stringMatching(/^#?[a-z][a-z0-9,._+?#-]{0,20}$/);
const treeArb: fc.Arbitrary<FdtNode> = fc.letrec((tie) => ({
  node: fc
    .record({
      name: nameArb,
      props: fc.uniqueArray(fc.record({ name: propNameArb, value: fc.uint8Array({ maxLength: 24 }) }), {
        selector: (p) => p.name,
        maxLength: 5,
      }),
      children: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.constant([]),
        fc.uniqueArray(tie("node") as fc.Arbitrary<FdtNode>, { selector: (n) => n.name, maxLength: 4 }),
      ),
    })
    .map((r) => ({
      name: r.name,
      props: r.props.map((p) => ({ name: p.name, value: p.value })),
      children: [...r.children] as FdtNode[],
    })),
})).node;

test("property: any tree survives build -> parse unchanged", () => {
  fc.assert(
    fc.property(
      treeArb,
      fc.array(
        fc.record({
          address: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          size: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        }),
        { maxLength: 3 },
      ),
      (t, rsv) => {
        const reservations = rsv
          .filter((r) => r.address !== 0n || r.size !== 0n)
          .map((r) => ({ address: r.address, size: r.size }));
        const root: FdtNode = { ...t, name: "" };
        const f = parseFdt(buildFdt(root, { reservations }));
        assert.deepEqual(f.root, root);
        assert.deepEqual(f.reservations, reservations);
      },
    ),
    { numRuns: 300 },
  );
});

test("property: arbitrary bytes never crash the parser (FdtError or a tree)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
      try {
        parseFdt(b);
      } catch (e) {
        assert.ok(e instanceof FdtError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});

test("property: corrupting a valid blob gives FdtError or a tree, never a crash", () => {
  const good = buildFdt(sample(), { reservations: [{ address: 1n, size: 2n }] });
  fc.assert(
    fc.property(
      fc.array(fc.record({ at: fc.nat(good.length - 1), v: fc.integer({ min: 0, max: 255 }) }), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.nat(good.length),
      (edits, cut) => {
        const b = good.slice();
        for (const e of edits) b[e.at] = e.v;
        for (const blob of [b, b.subarray(0, cut)]) {
          try {
            parseFdt(blob);
          } catch (e) {
            assert.ok(e instanceof FdtError, String(e));
          }
        }
      },
    ),
    { numRuns: 3000 },
  );
});

test("property: a parsed tree that dtc also accepts round-trips through dtc", {
  skip: !hasDtc && "dtc not installed",
}, () => {
  fc.assert(
    fc.property(treeArb, (t) => {
      const blob = buildFdt({ ...t, name: "" });
      const back = execFileSync("dtc", ["-q", "-f", "-I", "dts", "-O", "dtb"], { input: dtc(blob).dts });
      assert.deepEqual(parseFdt(new Uint8Array(back)).root, { ...t, name: "" });
    }),
    { numRuns: 25 },
  );
});
