/**
 * `npm run fuzz`: every fuzz target at its large budget (or as asked), a table of inputs,
 * refusals, acceptances and crashes per target, a reproducer per crash, exit code 1 when
 * anything crashed (or an accepted input broke an invariant).
 *
 *   npm run fuzz -- [--budget N|smoke|full] [--count NAME=N]... [--target NAME[,NAME]]...
 *                   [--seed S] [--from INDEX] [--jobs J] [--crash-dir DIR] [--out FILE] [--list]
 *
 * --budget N gives every chosen target N inputs; smoke and full use each target's own
 * figures. --count overrides one target. --from starts at input INDEX (a replay:
 * `--target T --seed S --from I --budget 1 --jobs 0`). --jobs 0 runs in this process
 * (no watchdog: a hang is noticed only if the input ends). Crashing inputs are written
 * under --crash-dir (default: a new directory in the system's temporary directory, removed
 * when nothing was written to it).
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import {
  DEFAULT_FULL,
  DEFAULT_SMOKE,
  formatFailures,
  formatReport,
  type LoadedTarget,
  loadTargets,
  type Plan,
  runPlan,
} from "./engine.ts";

class UsageError extends Error {}

interface Options {
  budget: "smoke" | "full" | number;
  counts: Map<string, number>;
  targets: string[];
  seed: number;
  from: number;
  jobs: number;
  crashDir?: string;
  out?: string;
  list: boolean;
}

function count(text: string, what: string): number {
  const n = Number(text.replace(/_/g, ""));
  if (!/^[0-9][0-9_]*(e[0-9]+)?$/i.test(text) || !Number.isSafeInteger(n)) {
    throw new UsageError(`${what} must be a whole number, not '${text}'`);
  }
  return n;
}

export function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    budget: "full",
    counts: new Map(),
    targets: [],
    seed: 1,
    from: 0,
    jobs: Math.min(2, availableParallelism()),
    list: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case "--budget": {
        const v = value();
        o.budget = v === "smoke" || v === "full" ? v : count(v, "--budget");
        break;
      }
      case "--count": {
        const v = value();
        const m = /^([a-z0-9-]+)=(.+)$/.exec(v);
        if (!m) throw new UsageError(`--count takes NAME=N, not '${v}'`);
        o.counts.set(m[1]!, count(m[2]!, `--count ${m[1]}`));
        break;
      }
      case "--target":
        o.targets.push(...value().split(",").filter(Boolean));
        break;
      case "--seed":
        o.seed = count(value(), "--seed") >>> 0;
        break;
      case "--from":
        o.from = count(value(), "--from");
        break;
      case "--jobs":
        o.jobs = count(value(), "--jobs");
        break;
      case "--crash-dir":
        o.crashDir = value();
        break;
      case "--out":
        o.out = value();
        break;
      case "--list":
        o.list = true;
        break;
      default:
        throw new UsageError(`unknown option '${a}' (see tools/fuzz/run.ts)`);
    }
  }
  return o;
}

/** Inputs per target for these options. */
export function planCounts(targets: readonly LoadedTarget[], o: Options): Map<string, number> {
  const known = new Set(targets.map((t) => t.target.name));
  for (const n of [...o.targets, ...o.counts.keys()]) {
    if (!known.has(n)) throw new UsageError(`no fuzz target '${n}' (there are: ${[...known].join(", ")})`);
  }
  const counts = new Map<string, number>();
  for (const { target } of targets) {
    if (o.targets.length > 0 && !o.targets.includes(target.name)) continue;
    const n =
      o.counts.get(target.name) ??
      (o.budget === "full"
        ? (target.full ?? DEFAULT_FULL)
        : o.budget === "smoke"
          ? (target.smoke ?? DEFAULT_SMOKE)
          : o.budget);
    counts.set(target.name, n);
  }
  return counts;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const targets = await loadTargets();
  if (o.list) {
    for (const { target, module } of targets) {
      console.log(
        `${target.name.padEnd(20)} ${target.unit.padEnd(24)} full ${target.full ?? DEFAULT_FULL}, smoke ${target.smoke ?? DEFAULT_SMOKE}  (${module.replace(/^.*\/tools\//, "tools/")})`,
      );
    }
    return 0;
  }
  const counts = planCounts(targets, o);
  const ownDir = o.crashDir === undefined;
  const crashDir = o.crashDir ?? mkdtempSync(join(tmpdir(), "armbox-fuzz-"));
  const plan: Plan = { seed: o.seed, counts, from: o.from, jobs: o.jobs, crashDir };
  const started = new Date();
  const t0 = performance.now();
  console.log(
    `armbox fuzz: seed ${o.seed}, ${o.jobs === 0 ? "in process" : `${o.jobs} worker threads`}, ${[...counts].map(([k, v]) => `${k} ${v.toLocaleString("en-US")}`).join(", ")}`,
  );
  const tallies = await runPlan(targets, plan, (t) =>
    console.log(
      `  ${t.target}: ${t.inputs.toLocaleString("en-US")} inputs, ${t.crashes} crashes, ${t.violations} violations (${(t.ms / 1000).toFixed(1)} CPU s)`,
    ),
  );
  const wall = (performance.now() - t0) / 1000;
  const units = new Map(targets.map((t) => [t.target.name, t.target.unit]));
  const machine = `${cpus()[0]?.model.trim() ?? "unknown CPU"}, ${availableParallelism()} CPUs, Node ${process.version}`;
  const report = [
    `seed ${o.seed}; started ${started.toISOString()}; wall clock ${wall.toFixed(0)} s; ${o.jobs === 0 ? "in process" : `${o.jobs} worker threads`}; ${machine}`,
    "",
    formatReport(tallies, units),
  ].join("\n");
  console.log(`\n${report}`);
  const failures = formatFailures(tallies);
  if (failures) console.log(`\n${failures}`);
  if (o.out) writeFileSync(o.out, `${report}\n${failures ? `\n${failures}\n` : ""}`);
  if (ownDir && readdirSync(crashDir).length === 0) rmSync(crashDir, { recursive: true, force: true });
  else console.log(`\ncrashing inputs saved in ${crashDir}`);
  const bad = tallies.reduce((n, t) => n + t.crashes + t.violations, 0);
  return bad > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`armbox fuzz: ${e instanceof UsageError ? e.message : (e?.stack ?? e)}`);
      process.exit(2);
    },
  );
}
