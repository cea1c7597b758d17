/**
 * CI smoke budget of `npm run fuzz` (tools/fuzz): every target at its small budget, in
 * process. No crash and no violation, and every target both refuses and accepts some of
 * its inputs (a structure-aware mutator whose inputs are all refused at the first byte,
 * or a target that accepts everything, is not fuzzing what it claims to).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_SMOKE, loadTargets, runInProcess } from "../tools/fuzz/engine.ts";
import { descProblem, Framing } from "../tools/fuzz/targets/qmp.ts";

const targets = await loadTargets();

test("fuzz smoke: the snapshot, QMP, virtio and instruction targets are present", () => {
  const names = targets.map((t) => t.target.name);
  for (const n of ["snapshot", "qmp", "virtio", "insn"])
    assert.ok(names.includes(n), `target ${n} missing (have ${names.join(", ")})`);
});

for (const { target } of targets) {
  test(`fuzz smoke: ${target.name}: no crash, some inputs refused and some accepted`, async () => {
    const count = target.smoke ?? DEFAULT_SMOKE;
    const t = await runInProcess(target, { target: target.name, seed: 7, start: 0, count });
    const failures = t.failures.map((f) => `${f.kind} at index ${f.index}: ${f.what}`).join("\n");
    assert.equal(t.crashes, 0, failures);
    assert.equal(t.violations, 0, failures);
    assert.equal(t.inputs, count, "every input got a verdict");
    assert.ok(t.refused > 0, `${target.name} refused nothing of ${count}`);
    assert.ok(t.accepted > 0, `${target.name} accepted nothing of ${count}`);
  });
}

test("qmp target: descProblem passes reasons and catches JavaScript internals", () => {
  for (const ok of [
    "Parameter 'file' is missing",
    "The command query-statu has not been found",
    "Invalid parameter type for 'id', expected: string",
    "JSON parse error, invalid character 0x01",
    "snapshot-load: /dev/zero: a character device, not a regular file",
  ]) {
    assert.equal(descProblem(ok, ""), null, ok);
  }
  for (const [bad, why] of [
    ["Cannot read properties of undefined (reading 'x')", /JavaScript/],
    ["The number NaN cannot be converted to a BigInt", /JavaScript/],
    ["TypeError: x is not a function", /JavaScript/],
    ["snapshot-save: undefined", /'undefined'/],
    ["bad [object Object]", /object Object/],
    ["boom\n    at handle (file:///work/main/src/vmm/qmp/server.ts:12:5)", /several lines|stack/],
    ["at QmpServer.handle (src/vmm/qmp/server.ts:212:9)", /JavaScript|stack/],
    ["two\nlines", /several lines/],
    ["", /empty/],
    ["   ", /empty/],
  ] as const) {
    assert.match(descProblem(bad, "") ?? "(none)", why, bad);
  }
  assert.match(descProblem(undefined, "") ?? "", /not a string/);
  assert.match(descProblem(42, "") ?? "", /not a string/);
  // A word the request itself held may be echoed back.
  const input = '{"execute":"undefined","arguments":{"NaN":1}}';
  assert.equal(descProblem("The command undefined has not been found", input), null);
  assert.equal(descProblem("Parameter 'NaN' is unexpected", input), null);
  assert.match(descProblem("Parameter 'x' is undefined", '{"execute":"x"}') ?? "", /undefined/);
});

test("qmp target: the framing model's closer brings the stream back without completing a request", () => {
  const enc = new TextEncoder();
  const cases: [string, string[]][] = [
    ['{"execute":"quit"', ["value"]],
    ['{"execute":"qu', ["value"]],
    ['{"a":"x\\', ["value"]],
    ['{"a":[[[1', ["value"]],
    ['{"a":\u0001}', ["error", "value"]],
    ['"unterminated', ["value"]],
    ["12", ["value"]],
    ["}", ["value"]],
    [`{"x":${"[".repeat(1100)}`, ["error"]],
  ];
  for (const [text, kinds] of cases) {
    const f = new Framing();
    f.feed(enc.encode(text));
    f.feed(enc.encode(f.closer()));
    assert.ok(f.idle, `${text}: back at the top level`);
    assert.deepEqual(
      f.events.map((e) => e.kind),
      kinds,
      text,
    );
    for (const e of f.events) {
      if (e.kind !== "value") continue;
      let v: unknown = null;
      try {
        v = JSON.parse(e.text);
      } catch {
        // not JSON: refused
      }
      assert.ok(typeof v !== "object" || v === null || Array.isArray(v), `${text}: ${e.text} is a request`);
    }
  }
  // Invalid UTF-8 in a value is a framing error; a complete request stays one value.
  const f = new Framing();
  f.feed(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d));
  f.feed(enc.encode('{"execute":"query-status"}\n'));
  assert.deepEqual(f.events, [
    { kind: "error", error: "invalid UTF-8" },
    { kind: "value", text: '{"execute":"query-status"}' },
  ]);
});
