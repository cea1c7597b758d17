/**
 * Live differential test: generates `--count` cases of `--class` from `--seed`, runs them
 * on qemu-aarch64 (the harness) and on our CPU, and prints every mismatch with the
 * instruction words, their disassembly and a per-register diff. Exits 1 on mismatch.
 *
 *   npx tsx tools/difftest/run.ts --class dp-reg [--count 500] [--seed 1] [--verbose]
 *        [--cpu cortex-a57] [--max-report 10] [--case SEED]
 */
import { Command } from "commander";
import { ArmboxRunner } from "./armbox-runner.ts";
import { diffDeltas, hex, toDelta } from "./delta.ts";
import { disassemble } from "./disasm.ts";
import { CLASS_NAMES, generateCase } from "./generate.ts";
import { type Case, CODE } from "./layout.ts";
import { caseSeed } from "./prng.ts";
import { defaultCpu, runOnQemu } from "./qemu.ts";

const prog = new Command()
  .option("--class <names>", `comma-separated classes, or 'all' (${CLASS_NAMES.join(", ")})`, "all")
  .option("--count <n>", "cases per class", "500")
  .option("--seed <s>", "master seed", "1")
  .option("--case <seeds>", "run only these case seeds (comma-separated, as printed in reports)")
  .option("--cpu <model>", "qemu -cpu model (default: per class)")
  .option("--max-report <n>", "mismatches printed per class", "10")
  .option("--verbose", "print every case, not only mismatches")
  .option("--jit", "run armbox's side with the translator (every block translated before its first run)")
  .parse();
const o = prog.opts<{
  class: string;
  count: string;
  seed: string;
  case?: string;
  cpu?: string;
  maxReport: string;
  verbose?: boolean;
  jit?: boolean;
}>();

const classes = o.class === "all" ? CLASS_NAMES : o.class.split(",");
const maxReport = Number(o.maxReport);
let failed = false;
const ours = new ArmboxRunner(o.jit ? { threshold: 1, batch: 1 } : undefined);

for (const cls of classes) {
  const seeds = o.case
    ? o.case.split(",").map((s) => Number(s) >>> 0)
    : Array.from({ length: Number(o.count) }, (_, k) => caseSeed(Number(o.seed) >>> 0, cls, k));
  const cases: Case[] = seeds.map((s) => generateCase(cls, s));
  const t0 = Date.now();
  const ref = await runOnQemu(cases, o.cpu ?? defaultCpu(cls));
  const t1 = Date.now();
  let bad = 0;
  const outcomes: Record<string, number> = {};
  const byName = new Map<string, number>();
  for (let k = 0; k < cases.length; k++) {
    const c = cases[k]!;
    const rd = toDelta(c, ref[k]!);
    outcomes[rd.o] = (outcomes[rd.o] ?? 0) + 1;
    const res = ours.run(c);
    const od = toDelta(c, res);
    const diff = diffDeltas(c, rd, od);
    if (diff.length === 0 && !o.verbose) continue;
    if (diff.length) bad++;
    if (diff.length && bad > maxReport) continue;
    const dis = disassemble(c.words, CODE);
    console.log(
      `\n[${cls}] case --case ${c.seed}  ${diff.length ? "MISMATCH" : "ok"}  (ref ${rd.o}@${rd.p})`,
    );
    c.words.forEach((w, i) => {
      const mark =
        i === rd.p || i === od.p
          ? rd.p === od.p
            ? " <-stop"
            : i === rd.p
              ? " <-ref stop"
              : " <-our stop"
          : "";
      console.log(`  ${hex(CODE + 4 * i, 8)}: ${hex(w, 8)}  ${dis[i] ?? ""}${mark}`);
    });
    if (res.note) console.log(`  ours: ${res.note}`);
    if (ref[k]!.note) console.log(`  ref: ${ref[k]!.note}`);
    for (const line of diff) console.log(`  ${line}`);
  }
  const t2 = Date.now();
  const oc = Object.entries(outcomes)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  console.log(
    `${cls}: ${cases.length} cases, ${bad} mismatches (reference outcomes: ${oc}; qemu ${t1 - t0} ms, ours ${t2 - t1} ms)`,
  );
  if (bad) failed = true;
  void byName;
}
process.exit(failed ? 1 : 0);
