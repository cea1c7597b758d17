import assert from "node:assert/strict";
import { test } from "node:test";
import { Pl031, PL031_REG as R } from "../src/devices/pl031.ts";
import { StateError } from "../src/lib/state.ts";

function make(start = 1_700_000_000.25) {
  const clk = { t: start };
  const irq = {
    level: false,
    set(l: boolean) {
      this.level = l;
    },
  };
  const rtc = new Pl031({ irq, clock: () => clk.t });
  return { rtc, clk, irq };
}

test("DR counts the injected clock's whole seconds", () => {
  const { rtc, clk } = make();
  assert.equal(rtc.read(R.DR, 4), 1_700_000_000);
  clk.t += 0.7;
  assert.equal(rtc.read(R.DR, 4), 1_700_000_000);
  clk.t += 0.1;
  assert.equal(rtc.read(R.DR, 4), 1_700_000_001);
  assert.equal(rtc.read(R.CR, 4), 1);
});

test("LR sets the counter, which then keeps counting; LR reads back", () => {
  const { rtc, clk } = make();
  rtc.write(R.LR, 4, 1000);
  assert.equal(rtc.read(R.DR, 4), 1000);
  assert.equal(rtc.read(R.LR, 4), 1000);
  clk.t += 5;
  assert.equal(rtc.read(R.DR, 4), 1005);
  rtc.write(R.LR, 4, 0xffff_ffff);
  clk.t += 2;
  assert.equal(rtc.read(R.DR, 4), 1); // wraps at 2^32
});

test("match interrupt: raised when the counter reaches MR, masked by IMSC, cleared by ICR", () => {
  const { rtc, clk, irq } = make();
  rtc.write(R.LR, 4, 100);
  rtc.write(R.MR, 4, 103);
  rtc.write(R.IMSC, 4, 1);
  assert.equal(rtc.nextMatch(), Math.floor(clk.t) + 3);
  clk.t += 2;
  rtc.poll();
  assert.equal(irq.level, false);
  clk.t += 10; // overshoot: a match between two checks is not missed
  rtc.poll();
  assert.equal(irq.level, true);
  assert.equal(rtc.read(R.RIS, 4), 1);
  assert.equal(rtc.read(R.MIS, 4), 1);
  rtc.write(R.IMSC, 4, 0);
  assert.equal(irq.level, false);
  assert.equal(rtc.read(R.MIS, 4), 0);
  rtc.write(R.ICR, 4, 1);
  assert.equal(rtc.read(R.RIS, 4), 0);
  rtc.write(R.IMSC, 4, 1);
  clk.t += 100;
  rtc.poll();
  assert.equal(irq.level, false); // already passed: no new match until it wraps
  rtc.write(R.MR, 4, rtc.read(R.DR, 4)); // MR equal to now matches at once
  assert.equal(irq.level, true);
});

test("PrimeCell IDs as Linux's rtc-pl031 expects", () => {
  const { rtc } = make();
  const id = (b: number) =>
    [0, 4, 8, 12].reduce((v, o, i) => v | ((rtc.read(b + o, 4) & 0xff) << (8 * i)), 0) >>> 0;
  assert.equal(id(0xfe0) & 0x000fffff, 0x00041031);
  assert.equal(id(0xff0), 0xb105f00d);
  assert.equal(rtc.read(0x800, 4), 0);
  assert.equal(rtc.read(R.DR + 1, 1), (1_700_000_000 >>> 8) & 0xff);
});

test("state: deterministic clock gives the same reading after restore; the line is driven", () => {
  const a = make(500);
  a.rtc.write(R.LR, 4, 42);
  a.rtc.write(R.MR, 4, 50);
  a.rtc.write(R.IMSC, 4, 1);
  a.clk.t += 3;
  const s = JSON.parse(JSON.stringify(a.rtc.saveState()));
  const b = make(503);
  b.rtc.loadState(s, 1);
  assert.equal(b.rtc.read(R.DR, 4), 45);
  assert.equal(b.rtc.read(R.MR, 4), 50);
  a.clk.t += 5;
  b.clk.t += 5;
  a.rtc.poll();
  b.rtc.poll();
  assert.equal(b.irq.level, true);
  assert.deepEqual(b.rtc.saveState(), a.rtc.saveState());
  const c = make();
  c.rtc.loadState({ ...s, ris: 1 }, 1);
  assert.equal(c.irq.level, true);
});

test("state: untrusted input is refused with StateError", () => {
  const { rtc } = make();
  const good = rtc.saveState() as Record<string, unknown>;
  for (const s of [
    null,
    "x",
    { ...good, mr: -1 },
    { ...good, imsc: 2 },
    { ...good, delta: 2 ** 32 },
    { ...good, lr: undefined },
  ]) {
    assert.throws(() => rtc.loadState(s as never, 1), StateError, JSON.stringify(s));
  }
  assert.throws(() => rtc.loadState(good as never, 3), /version 3/);
});
