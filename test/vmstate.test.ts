import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryBlockBackend } from "../src/devices/virtio/blk.ts";
import { StateError, type StateValue } from "../src/lib/state.ts";
import {
  bool,
  identity,
  list,
  loadState,
  oneOf,
  saveState,
  struct,
  typed,
  uint,
  uints,
  vmstate,
} from "../src/lib/vmstate.ts";
import { VirtMachine } from "../src/machine/virt.ts";

interface Ctx {
  n: number;
}

const DESC = vmstate<Ctx>()({
  version: 3,
  minVersion: 1,
  fields: {
    n: identity((c: Ctx) => c.n),
    a: uint(0xff),
    flags: typed(Uint8Array, { length: (c: Ctx) => c.n, max: 1 }, { key: "nested.flags" }),
    mode: oneOf(["wfi", "wfe", null] as const),
    fifo: uints({ maxLength: 4, max: 0xfff }),
    on: bool({ since: 2, absent: () => true }),
    queues: list(
      struct({ size: uint(256), ready: bool() }),
      { maxLength: 2 },
      { since: 3, absent: () => [] },
    ),
  },
  check: (s) => (s.a === 7 && s.on ? "a is 7 while on" : null),
});

const ctx = { n: 3 };
const sample = () => ({
  a: 5,
  flags: Uint8Array.of(1, 0, 1),
  mode: "wfe" as const,
  fifo: [1, 2],
  on: false,
  queues: [{ size: 128, ready: true }],
});

test("vmstate: save writes every field at its key, load reads it back equal", () => {
  const saved = saveState(DESC, sample(), ctx);
  assert.deepEqual(saved, {
    n: 3,
    a: 5,
    nested: { flags: [1, 0, 1] },
    mode: "wfe",
    fifo: [1, 2],
    on: false,
    queues: [{ size: 128, ready: true }],
  });
  const back = loadState(DESC, "dev", JSON.parse(JSON.stringify(saved)), 3, ctx);
  assert.deepEqual(back, sample());
  assert.ok(back.flags instanceof Uint8Array);
  assert.equal("n" in back, false, "identity fields are not part of the state");
});

test("vmstate: every field of the layout is required, and its absence is refused by name", () => {
  const saved = saveState(DESC, sample(), ctx) as Record<string, StateValue>;
  for (const key of ["n", "a", "mode", "fifo", "on", "queues"]) {
    const s = { ...saved };
    delete s[key];
    assert.throws(
      () => loadState(DESC, "dev", s, 3, ctx),
      new RegExp(`^StateError: dev: field '${key}' `),
      key,
    );
  }
  const s = { ...saved, nested: {} };
  assert.throws(() => loadState(DESC, "dev", s, 3, ctx), /field 'nested\.flags' is missing/);
});

test("vmstate: values out of range, wrong lengths, types and machine mismatches are refused, naming the field", () => {
  const saved = saveState(DESC, sample(), ctx) as Record<string, StateValue>;
  const bad: [Record<string, StateValue>, RegExp][] = [
    [{ a: 256 }, /field 'a' is out of range/],
    [{ a: 1.5 }, /field 'a' is out of range/],
    [{ a: "5" }, /field 'a' is out of range/],
    [{ nested: { flags: [1, 0] } }, /field 'nested\.flags' has 2 entries, not 3/],
    [{ nested: { flags: [1, 2, 0] } }, /field 'nested\.flags' holds a bad value/],
    [{ mode: "run" }, /field 'mode' is not one of/],
    [{ fifo: [1, 2, 3, 4, 5] }, /field 'fifo' has 5 entries; at most 4 fit/],
    [{ fifo: [0x1000] }, /field 'fifo' holds a bad value/],
    [{ on: 1 }, /field 'on' is not a boolean/],
    [{ queues: [{ size: 1 }] }, /field 'queues' entry 0 'ready' is missing/],
    [{ n: 4 }, /field 'n' is 4; this machine's is 3/],
    [{ a: 7, on: true }, /^StateError: dev: a is 7 while on$/],
  ];
  for (const [over, re] of bad) {
    assert.throws(() => loadState(DESC, "dev", { ...saved, ...over }, 3, ctx), re, JSON.stringify(over));
  }
  assert.throws(
    () => loadState(DESC, "dev", [1, 2] as StateValue, 3, ctx),
    /dev: the state is not an object/,
  );
});

test("vmstate: versions from minVersion to version are read; older ones imply the newer fields", () => {
  const saved = saveState(DESC, sample(), ctx) as Record<string, StateValue>;
  const v1 = { ...saved };
  delete v1.on;
  delete v1.queues;
  const s1 = loadState(DESC, "dev", v1, 1, ctx);
  assert.equal(s1.on, true);
  assert.deepEqual(s1.queues, []);
  const s2 = loadState(DESC, "dev", { ...v1, on: false }, 2, ctx);
  assert.equal(s2.on, false);
  assert.deepEqual(s2.queues, []);
  for (const v of [0, 4]) {
    assert.throws(
      () => loadState(DESC, "dev", saved, v, ctx),
      new RegExp(`dev: unsupported version ${v} \\(this build reads versions 1 to 3\\)`),
    );
  }
});

test("vmstate: a description is refused when a field is newer than it or lacks what older sections imply", () => {
  assert.throws(
    () => vmstate()({ version: 1, minVersion: 1, fields: { a: uint(1, { since: 2 }) } }),
    /newer/,
  );
  assert.throws(
    () => vmstate()({ version: 2, minVersion: 1, fields: { a: uint(1, { since: 2 }) } }),
    /needs an 'absent' value/,
  );
  assert.throws(() => vmstate()({ version: 1, minVersion: 2, fields: {} }), /bad versions/);
  // A field introduced at the oldest version still read needs nothing.
  vmstate()({ version: 2, minVersion: 2, fields: { a: uint(1, { since: 2 }) } });
});

/** Every leaf path of a saved state ("irq.enabled", "queues"). Lists are leaves. */
function leafPaths(v: StateValue, prefix = ""): string[] {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return [prefix];
  return Object.entries(v).flatMap(([k, x]) => leafPaths(x, prefix ? `${prefix}.${k}` : k));
}

function withoutPath(v: StateValue, path: string): StateValue {
  const copy = JSON.parse(JSON.stringify(v)) as Record<string, StateValue>;
  const parts = path.split(".");
  let at = copy;
  for (const p of parts.slice(0, -1)) at = at[p] as Record<string, StateValue>;
  delete at[parts[parts.length - 1]!];
  return copy;
}

test("every component of the board: save, load into a fresh board, save again is identical, and each saved field is required", () => {
  const kernel = Uint8Array.of(0x7f, 0x20, 0x03, 0xd5, 0xff, 0xff, 0xff, 0x17);
  const board = () =>
    new VirtMachine({
      memory: 16 << 20,
      kernel,
      virtio: [{ kind: "rng" }, { kind: "blk", backend: new MemoryBlockBackend(4096) }, { kind: "console" }],
    });
  const a = board();
  // Some state off the reset values.
  a.uart.write(0x38, 4, 0x50);
  a.uart.input(Uint8Array.of(65, 66, 67));
  a.rtc.write(0x04, 4, 1234);
  a.gic.distWrite(0x100 + 4, 4, 0xf0);
  for (const c of a.components) {
    const saved = JSON.parse(JSON.stringify(c.saveState())) as StateValue;
    const b = board();
    const peer = b.components.find((x) => x.stateName === c.stateName)!;
    peer.loadState(saved, c.stateVersion);
    assert.deepEqual(peer.saveState(), saved, c.stateName);
    for (const path of leafPaths(saved)) {
      assert.throws(
        () =>
          board()
            .components.find((x) => x.stateName === c.stateName)!
            .loadState(withoutPath(saved, path), c.stateVersion),
        (e: unknown) => e instanceof StateError && e.message.includes(c.stateName),
        `${c.stateName}: '${path}' removed was accepted`,
      );
    }
  }
});
