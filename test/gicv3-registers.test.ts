/**
 * The GIC's register tables (src/hv/gicv3/gicv3.ts DIST_FRAME / REDIST_FRAME, dispatched by
 * src/hv/gicv3/register-frame.ts): every offset reaches the register the table names, the
 * rest is RAZ/WI, every saved field is shown by a register or accounted for elsewhere, and
 * a save/load round trip gives the same register image.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { GIC_STATE, GIC_STATE_OUTSIDE_FRAMES, GicV3 } from "../src/hv/gicv3/gicv3.ts";
import { type FrameRegister, RegisterFrame } from "../src/hv/gicv3/register-frame.ts";
import { GICD, GICR, GICR_SGI, ICC, ICC_STATE_REGS } from "../src/hv/gicv3/registers.ts";
import type { StateValue } from "../src/lib/state.ts";

const gic = (vcpus = 3, spis = 64) =>
  new GicV3({
    vcpus,
    mpidrs: Array.from({ length: vcpus }, (_, i) => 0x8000_0000 + ((i >> 2) << 8) + (i & 3)),
    spis,
    onLineChange() {},
  });

test("GIC tables: each register's words dispatch to it, named as in IHI 0069", () => {
  const named: [RegisterFrame<GicV3, string>, number, string][] = [
    [GicV3.DIST_FRAME, GICD.CTLR, "GICD_CTLR"],
    [GicV3.DIST_FRAME, GICD.ISENABLER + 4, "GICD_ISENABLER"],
    [GicV3.DIST_FRAME, GICD.ICACTIVER + 0x7c, "GICD_ICACTIVER"],
    [GicV3.DIST_FRAME, GICD.IPRIORITYR + 0x3ff, "GICD_IPRIORITYR"],
    [GicV3.DIST_FRAME, GICD.ICFGR + 0xfc, "GICD_ICFGR"],
    [GicV3.DIST_FRAME, GICD.IROUTER + 32 * 8 + 4, "GICD_IROUTER"],
    [GicV3.DIST_FRAME, 0xffe8, "PIDR/CIDR"],
    [GicV3.REDIST_FRAME, GICR.WAKER, "GICR_WAKER"],
    [GicV3.REDIST_FRAME, GICR.TYPER + 4, "GICR_TYPER"],
    [GicV3.REDIST_FRAME, GICR.SGI_BASE + GICR_SGI.ICFGR1, "GICR_ICFGR1"],
    [GicV3.REDIST_FRAME, GICR.SGI_BASE + GICR_SGI.IPRIORITYR + 31, "GICR_IPRIORITYR"],
  ];
  for (const [frame, off, name] of named) assert.equal(frame.at(off)?.register.name, name, off.toString(16));
  for (const frame of [GicV3.DIST_FRAME, GicV3.REDIST_FRAME]) {
    for (const r of frame.registers) {
      for (let w = 0; w < r.words; w++) {
        const at = frame.at(r.offset + 4 * w)!;
        assert.equal(at.register, r, `${frame.name} +${(r.offset + 4 * w).toString(16)}`);
        assert.equal(at.index, w);
      }
    }
  }
  // IROUTER<0..31> do not exist with ARE (the private INTIDs have no route): reserved.
  assert.equal(GicV3.DIST_FRAME.at(GICD.IROUTER), null);
});

test("GIC tables: a table with overlapping or out-of-frame registers is refused", () => {
  const r = (name: string, offset: number, words: number): FrameRegister<null, string> => ({
    name,
    offset,
    words,
    read: () => 0,
  });
  assert.throws(() => new RegisterFrame("X", 0x100, [r("A", 0, 4), r("B", 12, 1)]), /B overlaps A/);
  assert.throws(() => new RegisterFrame("X", 0x100, [r("A", 0xfc, 2)]), /outside the frame/);
});

test("GIC tables: every offset no register claims is RAZ/WI in both frames", () => {
  const g = gic();
  // Some state, so that a stray write that lands anywhere shows.
  g.distWrite(GICD.CTLR, 4, 3);
  g.distWrite(GICD.ISENABLER + 4, 4, 0xffff_0000);
  g.redistWrite(1, GICR.WAKER, 4, 0);
  const before = JSON.stringify(g.saveState());
  let reserved = 0;
  for (const [frame, write, read] of [
    [GicV3.DIST_FRAME, (o: number, v: number) => g.distWrite(o, 4, v), (o: number) => g.distRead(o, 4)],
    [
      GicV3.REDIST_FRAME,
      (o: number, v: number) => g.redistWrite(1, o, 4, v),
      (o: number) => g.redistRead(1, o, 4),
    ],
  ] as const) {
    for (let off = 0; off < frame.size; off += 4) {
      if (frame.at(off)) continue;
      reserved++;
      write(off, 0xffff_ffff);
      assert.equal(read(off), 0, `${frame.name} +${off.toString(16)} reads as zero`);
    }
  }
  assert.ok(reserved > 40000, `${reserved} reserved words`);
  assert.equal(JSON.stringify(g.saveState()), before, "no reserved write changed the state");
});

test("GIC tables: every saved field is shown by a frame register or accounted for outside the frames", () => {
  const shown = new Set<string>();
  for (const frame of [GicV3.DIST_FRAME, GicV3.REDIST_FRAME]) {
    for (const r of frame.registers) for (const f of r.state ?? []) shown.add(f);
  }
  const fields = Object.entries(GIC_STATE.fields)
    .filter(([, f]) => !f.identity)
    .map(([name]) => name);
  for (const f of fields) {
    assert.ok(
      shown.has(f) || f in GIC_STATE_OUTSIDE_FRAMES,
      `GIC_STATE field '${f}' is shown by no register`,
    );
  }
  for (const f of [...shown, ...Object.keys(GIC_STATE_OUTSIDE_FRAMES)]) assert.ok(fields.includes(f), f);
  // The CPU interface fields are exactly what KVM saves through its CPU sysreg group.
  assert.equal(Object.values(GIC_STATE_OUTSIDE_FRAMES).filter((v) => v.startsWith("ICC_")).length, 8);
  assert.ok(ICC_STATE_REGS.includes(ICC.PMR_EL1) && ICC_STATE_REGS.includes(ICC.AP1R0_EL1));
});

/** A random guest action on the GIC: an MMIO write to a stateful register, an ICC write, an input. */
const action = fc.oneof(
  fc.record({
    kind: fc.constant("dist" as const),
    reg: fc.integer({ min: 0, max: 1000 }),
    word: fc.nat(),
    size: fc.constantFrom(1, 4, 8),
    value: fc.nat({ max: 0xffff_ffff }),
  }),
  fc.record({
    kind: fc.constant("redist" as const),
    cpu: fc.nat({ max: 2 }),
    reg: fc.integer({ min: 0, max: 1000 }),
    size: fc.constantFrom(1, 4),
    value: fc.nat({ max: 0xffff_ffff }),
  }),
  fc.record({
    kind: fc.constant("icc" as const),
    cpu: fc.nat({ max: 2 }),
    key: fc.constantFrom(...ICC_STATE_REGS, ICC.IAR1_EL1, ICC.EOIR1_EL1, ICC.SGI1R_EL1),
    value: fc.nat({ max: 0xffff_ffff }),
  }),
  fc.record({
    kind: fc.constant("input" as const),
    cpu: fc.nat({ max: 2 }),
    intid: fc.integer({ min: 16, max: 95 }),
    level: fc.boolean(),
  }),
);

function apply(g: GicV3, a: typeof action extends fc.Arbitrary<infer T> ? T : never): void {
  const pick = (frame: RegisterFrame<GicV3, string>, n: number) => {
    const stateful = frame.registers.filter((r) => r.state?.length && r.write);
    return stateful[n % stateful.length]!;
  };
  switch (a.kind) {
    case "dist": {
      const r = pick(GicV3.DIST_FRAME, a.reg);
      const off = r.offset + 4 * (a.word % r.words);
      g.distWrite(off, a.size, a.size === 8 ? a.value * 3 : a.value);
      break;
    }
    case "redist": {
      const r = pick(GicV3.REDIST_FRAME, a.reg);
      g.redistWrite(a.cpu, r.offset, a.size, a.value);
      break;
    }
    case "icc":
      if (a.key === ICC.IAR1_EL1) g.iccRead(a.cpu, a.key);
      else g.iccWrite(a.cpu, a.key, a.value, 0);
      break;
    case "input":
      if (a.intid < 32) g.setPpi(a.cpu, a.intid, a.level);
      else g.setSpi(a.intid, a.level);
      break;
  }
}

test("GIC save/load: the loaded GIC shows the same registers, outputs and state, over random guest histories", () => {
  fc.assert(
    fc.property(fc.array(action, { maxLength: 60 }), (actions) => {
      const a = gic();
      for (const x of actions) apply(a, x);
      const saved = JSON.parse(JSON.stringify(a.saveState())) as StateValue;
      const b = gic();
      b.loadState(saved, GIC_STATE.version);
      assert.deepEqual(b.registerDump(), a.registerDump());
      assert.deepEqual(b.saveState(), saved);
      for (let c = 0; c < 3; c++) {
        assert.equal(b.irqLine(c), a.irqLine(c));
        assert.equal(b.fiqLine(c), a.fiqLine(c));
        for (const key of ICC_STATE_REGS) assert.deepEqual(b.iccRead(c, key), a.iccRead(c, key));
      }
    }),
    { numRuns: 150, seed: 8 },
  );
});

test("GIC load: bad values and versions are refused naming the field or the versions, and change nothing", () => {
  const g = gic();
  g.distWrite(GICD.ISENABLER + 4, 4, 0xff);
  const good = g.saveState() as Record<string, Record<string, StateValue>>;
  const before = JSON.stringify(good);
  const irq = good.irq!;
  const cpuif = good.cpuif!;
  const withIrq = (k: string, f: (a: number[]) => void) => {
    const a = [...(irq[k] as number[])];
    f(a);
    return { ...good, irq: { ...irq, [k]: a } };
  };
  const bad: [StateValue, RegExp][] = [
    [withIrq("priority", (a) => (a[40] = 0x81)), /'irq\.priority' has unimplemented low bits set/],
    [withIrq("edge", (a) => (a[32 + 3] = 0)), /'irq\.edge' makes an SGI level-sensitive/],
    [withIrq("enabled", (a) => (a[0] = 2)), /'irq\.enabled' holds a bad value/],
    [withIrq("level", (a) => a.pop()), /'irq\.level' has \d+ entries, not \d+/],
    [
      { ...good, irouterLo: (good.irouterLo as unknown as number[]).map(() => 0x100_0000) },
      /'irouterLo' has reserved bits/,
    ],
    [{ ...good, cpuif: { ...cpuif, bpr0: [1, 2, 2] } }, /'cpuif\.bpr0' holds a bad value/],
    [{ ...good, vcpus: 4 }, /'vcpus' is 4; this machine's is 3/],
    [{ ...good, mpidrs: [0, 1, 2] }, /'mpidrs' is/],
  ];
  for (const [s, re] of bad) {
    assert.throws(() => g.loadState(s, 1), re);
    assert.equal(JSON.stringify(g.saveState()), before);
  }
  assert.throws(
    () => g.loadState(good, 2),
    /gicv3: unsupported version 2 \(this build reads versions 1 to 1\)/,
  );
  assert.throws(() => g.loadState(good, 0), /unsupported version 0/);
});
