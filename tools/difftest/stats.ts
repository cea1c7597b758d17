/**
 * Validity statistics of the templates: draws single instructions of a class (with the
 * class's template weights), runs each alone on qemu-aarch64 and reports, per template,
 * how many the reference found UNDEFINED, split by what the template's `ok` said.
 * "ok but undef" lines mean an `ok` rule is too loose; "!ok but valid" too strict.
 *
 *   npx tsx tools/difftest/stats.ts --class simd-int [--count 4000] [--seed 1] [--show 5]
 */
import { Command } from "commander";
import { disassemble } from "./disasm.ts";
import {
  assignRegisters,
  CLASS_NAMES,
  CLASSES,
  encode,
  fillFields,
  pickTmpl,
  randomState,
} from "./generate.ts";
import type { Case } from "./layout.ts";
import { caseSeed, Rng } from "./prng.ts";
import { defaultCpu, runOnQemu } from "./qemu.ts";

const o = new Command()
  .option("--class <names>", "classes (comma-separated) or all", "all")
  .option("--count <n>", "instructions per class", "4000")
  .option("--seed <s>", "master seed", "1")
  .option("--show <n>", "examples printed per template and kind", "4")
  .option("--quiet", "only the per-class totals")
  .parse()
  .opts<{ class: string; count: string; seed: string; show: string; quiet?: boolean }>();

// branch: single random branches would leave the sequence.
const classes = o.class === "all" ? CLASS_NAMES.filter((c) => c !== "branch") : o.class.split(",");
for (const cls of classes) {
  const spec = CLASSES[cls]!;
  const cases: Case[] = [];
  const meta: { n: string; ok: boolean }[] = [];
  for (let k = 0; k < Number(o.count); k++) {
    const seed = caseSeed(Number(o.seed) >>> 0, `stats-${cls}`, k);
    const g = new Rng(seed);
    const state = randomState(g, spec.fpBias ?? 0.3);
    const t = pickTmpl(g, spec.t);
    const slot = fillFields(g, t, spec.invalidShare);
    assignRegisters(g, [slot], spec, state);
    cases.push({ cls, seed, words: [encode(slot.t, slot.f)], state });
    meta.push({ n: t.n, ok: !t.unallocated && (!t.ok || t.ok(slot.f)) });
  }
  const ref = await runOnQemu(cases, defaultCpu(cls));
  interface Row {
    total: number;
    undef: number;
    okUndef: number[];
    notOkValid: number[];
    notOk: number;
  }
  const rows = new Map<string, Row>();
  let undef = 0;
  cases.forEach((c, k) => {
    const m = meta[k]!;
    let r = rows.get(m.n);
    if (!r) rows.set(m.n, (r = { total: 0, undef: 0, okUndef: [], notOkValid: [], notOk: 0 }));
    r.total++;
    const u = ref[k]!.outcome === "undef";
    if (u) {
      r.undef++;
      undef++;
    }
    if (!m.ok) r.notOk++;
    if (m.ok && u) r.okUndef.push(c.words[0]!);
    if (!m.ok && !u) r.notOkValid.push(c.words[0]!);
  });
  const n = cases.length;
  console.log(
    `${cls}: ${n} instructions, ${n - undef} valid (${((100 * (n - undef)) / n).toFixed(1)}%), ${undef} undef`,
  );
  if (o.quiet) continue;
  const show = Number(o.show);
  for (const [name, r] of rows) {
    console.log(
      `  ${name}: ${r.total}, undef ${r.undef} (${((100 * r.undef) / r.total).toFixed(0)}%), !ok ${r.notOk}, ok-but-undef ${r.okUndef.length}, !ok-but-valid ${r.notOkValid.length}`,
    );
    for (const [label, ws] of [
      ["ok-but-undef", r.okUndef],
      ["!ok-but-valid", r.notOkValid],
    ] as const) {
      if (!ws.length || !show) continue;
      const sample = ws.slice(0, show);
      const dis = disassemble(sample);
      sample.forEach((w, i) => {
        console.log(`      ${label} ${w.toString(16).padStart(8, "0")} ${dis[i]}`);
      });
    }
  }
}
