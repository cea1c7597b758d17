/**
 * The recorded qemu-aarch64 vectors (test/vectors.test.ts) with the translator on: every
 * block is translated before its first run (threshold 1, one block per module), so each
 * case runs translated code, with the interpreter's executors only where an instruction
 * has no emitter. Also checks that the translator did translate (not a silent fallback).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ArmboxRunner } from "../tools/difftest/armbox-runner.ts";
import { diffDeltas, hex, toDelta } from "../tools/difftest/delta.ts";
import { generateCase } from "../tools/difftest/generate.ts";
import { readVectors, vectorFiles } from "../tools/difftest/vectors.ts";

const DIR = join(import.meta.dirname, "vectors");
const runner = new ArmboxRunner({ threshold: 1, batch: 1 });

for (const file of vectorFiles(DIR)) {
  const { header, vectors } = readVectors(file);
  test(`translated: vectors ${header.cls} (${vectors.length} cases)`, () => {
    const before = runner.cpu.jit!.stats.blocks;
    let bad = 0;
    const firsts: string[] = [];
    for (const v of vectors) {
      const c = generateCase(header.cls, v.s);
      if (c.words.map((w) => hex(w, 8)).join() !== v.w.join()) continue; // vectors.test reports drift
      const diff = diffDeltas(c, v, toDelta(c, runner.run(c)));
      if (diff.length === 0) continue;
      bad++;
      if (firsts.length < 5)
        firsts.push(`  case ${v.s} [${v.w.join(" ")}]\n    ${diff.slice(0, 4).join("\n    ")}`);
    }
    const compiled = runner.cpu.jit!.stats.blocks - before;
    console.log(
      `${header.cls}: ${vectors.length - bad}/${vectors.length} pass translated, ${compiled} blocks compiled`,
    );
    if (firsts.length) console.log(firsts.join("\n"));
    assert.ok(compiled >= vectors.length / 2, `only ${compiled} blocks were translated`);
    assert.equal(bad, 0, `${bad} mismatches`);
  });
}
