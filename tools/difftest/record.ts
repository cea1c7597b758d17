/**
 * Records reference vectors from qemu-aarch64 into test/vectors/CLASS.jsonl.gz.
 *
 *   npx tsx tools/difftest/record.ts [--per-class 2000] [--seed 20240601] [--class a,b]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { Command } from "commander";
import { hex, toDelta } from "./delta.ts";
import { CLASS_NAMES, generateCase } from "./generate.ts";
import { caseSeed } from "./prng.ts";
import { defaultCpu, runOnQemu } from "./qemu.ts";
import type { Vector, VectorHeader } from "./vectors.ts";

const o = new Command()
  .option("--per-class <n>", "cases per class", "2000")
  .option("--seed <s>", "master seed", "20240601")
  .option("--class <names>", "classes (comma-separated) or all", "all")
  .option(
    "--out <dir>",
    "output directory",
    join(dirname(fileURLToPath(import.meta.url)), "../../test/vectors"),
  )
  .parse()
  .opts<{ perClass: string; seed: string; class: string; out: string }>();

const qemu = spawnSync("qemu-aarch64", ["--version"], { encoding: "utf8" }).stdout.split("\n")[0] ?? "?";
mkdirSync(o.out, { recursive: true });
const classes = o.class === "all" ? CLASS_NAMES : o.class.split(",");
let total = 0;
for (const cls of classes) {
  const n = Number(o.perClass);
  const master = Number(o.seed) >>> 0;
  const cases = Array.from({ length: n }, (_, k) => generateCase(cls, caseSeed(master, cls, k)));
  const cpu = defaultCpu(cls);
  const ref = await runOnQemu(cases, cpu);
  const header: VectorHeader = { format: "armbox-difftest-1", cls, cpu, seed: master, count: n, qemu };
  const lines = [JSON.stringify(header)];
  const outcomes: Record<string, number> = {};
  for (let k = 0; k < n; k++) {
    const c = cases[k]!;
    const v: Vector = { s: c.seed, w: c.words.map((w) => hex(w, 8)), ...toDelta(c, ref[k]!) };
    outcomes[v.o] = (outcomes[v.o] ?? 0) + 1;
    lines.push(JSON.stringify(v));
  }
  const gz = gzipSync(`${lines.join("\n")}\n`, { level: 9 });
  const file = join(o.out, `${cls}.jsonl.gz`);
  writeFileSync(file, gz);
  total += n;
  const oc = Object.entries(outcomes)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  console.log(`${cls}: ${n} cases (${oc}) -> ${file} (${(gz.length / 1024).toFixed(0)} KiB)`);
}
console.log(`total ${total} cases`);
