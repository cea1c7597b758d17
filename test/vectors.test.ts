/**
 * Replays the instruction vectors recorded from qemu-aarch64 (tools/difftest/record.ts)
 * on our CPU: one test per instruction class, with a per-class summary and the first
 * mismatches. Re-run a reported case live with
 *   npx tsx tools/difftest/run.ts --class CLASS --case SEED
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ArmboxRunner } from "../tools/difftest/armbox-runner.ts";
import { diffDeltas, hex, toDelta } from "../tools/difftest/delta.ts";
import { generateCase } from "../tools/difftest/generate.ts";
import { readVectors, vectorFiles } from "../tools/difftest/vectors.ts";

const DIR = join(import.meta.dirname, "vectors");
const SHOW = 5;
const runner = new ArmboxRunner();

for (const file of vectorFiles(DIR)) {
  const { header, vectors } = readVectors(file);
  test(`vectors ${header.cls} (${vectors.length} cases from ${header.qemu.replace(/ \(.*/, "")} -cpu ${header.cpu})`, () => {
    let bad = 0;
    let drift = 0;
    const firsts: string[] = [];
    const byOutcome: Record<string, number> = {};
    for (const v of vectors) {
      const c = generateCase(header.cls, v.s);
      const words = c.words.map((w) => hex(w, 8));
      if (words.join() !== v.w.join()) {
        drift++;
        continue;
      }
      const diff = diffDeltas(c, v, toDelta(c, runner.run(c)));
      if (diff.length === 0) continue;
      bad++;
      byOutcome[v.o] = (byOutcome[v.o] ?? 0) + 1;
      if (firsts.length < SHOW)
        firsts.push(`  case ${v.s} [${v.w.join(" ")}]\n    ${diff.slice(0, 4).join("\n    ")}`);
    }
    const summary =
      `${header.cls}: ${vectors.length - bad - drift}/${vectors.length} pass` +
      (bad ? `, ${bad} mismatch (by reference outcome: ${JSON.stringify(byOutcome)})` : "") +
      (drift ? `, ${drift} generator drift (regenerated words differ: re-record)` : "");
    console.log(summary);
    if (firsts.length) console.log(firsts.join("\n"));
    assert.equal(bad + drift, 0, summary);
  });
}
