/**
 * CI smoke budget of `npm run fuzz` (tools/fuzz): every target at its small budget, in
 * process. No crash and no violation, and every target both refuses and accepts some of
 * its inputs (a structure-aware mutator whose inputs are all refused at the first byte,
 * or a target that accepts everything, is not fuzzing what it claims to).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_SMOKE, loadTargets, runInProcess } from "../tools/fuzz/engine.ts";

const targets = await loadTargets();

test("fuzz smoke: the snapshot and instruction targets are present", () => {
  const names = targets.map((t) => t.target.name);
  for (const n of ["snapshot", "insn"])
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
