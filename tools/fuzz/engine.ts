/**
 * How targets are run: in process (the CI smoke test, --jobs 0) or in worker threads under
 * a watchdog (npm run fuzz), and how their tallies are printed.
 *
 * In process, a hang is caught only after the fact (the Recorder times every input). In a
 * worker, the thread reports the index of its next input through a SharedArrayBuffer; an
 * index that stops moving past the target's hang budget gets the worker terminated, the
 * input counted as a crash ("hang"), and a new worker started at the input after it. A
 * worker that dies (out of memory, a throw outside the target) is handled the same way.
 */
import { existsSync, readdirSync } from "node:fs";
import { Worker } from "node:worker_threads";
import {
  type Chunk,
  errorText,
  type FuzzTarget,
  mergeTally,
  newTally,
  Recorder,
  type Tally,
  targetsOf,
} from "./core.ts";

export const DEFAULT_FULL = 100_000;
export const DEFAULT_SMOKE = 50;
export const DEFAULT_PER_INPUT_MS = 2000;

/** A target and the module that exports it (a worker imports the module again). */
export interface LoadedTarget {
  target: FuzzTarget;
  module: string;
}

/** The modules targets come from: tools/fuzz/targets/*.ts, then the migration fuzzers when present. */
export function targetModules(): string[] {
  const dir = new URL("./targets/", import.meta.url);
  const own = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".ts"))
        .sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b) || a.localeCompare(b))
        .map((f) => new URL(f, dir).href)
    : [];
  const migration = ["./migration-streams.ts", "./fault-matrix.ts"]
    .map((f) => new URL(f, import.meta.url))
    .filter((u) => existsSync(u))
    .map((u) => u.href);
  return [...own, ...migration];
}
const ORDER = ["snapshot.ts", "qmp.ts", "loaders.ts", "virtio.ts", "insn.ts"];

export async function loadTargets(): Promise<LoadedTarget[]> {
  const out: LoadedTarget[] = [];
  for (const module of targetModules()) {
    const mod = (await import(module)) as Record<string, unknown>;
    for (const target of targetsOf(mod)) {
      if (!out.some((o) => o.target.name === target.name)) out.push({ target, module });
    }
  }
  return out;
}

/**
 * Runs `chunk` of `target` here, to its end whatever the target does: a throw out of
 * run() is a crash of the input it was on, and the run goes on after it (three throws
 * before any input got a verdict end the chunk: the target cannot set up).
 */
export async function runInProcess(target: FuzzTarget, chunk: Chunk, progress?: Int32Array): Promise<Tally> {
  const tally = newTally(target.name);
  const rec = new Recorder(tally, chunk.seed, chunk.start, target.perInputMs ?? DEFAULT_PER_INPUT_MS);
  if (progress) rec.progress = progress;
  const t0 = performance.now();
  const end = chunk.start + chunk.count;
  let setupThrows = 0;
  while (rec.next < end) {
    const before = rec.next;
    try {
      await target.run({ ...chunk, start: rec.next, count: end - rec.next }, rec);
    } catch (e) {
      if (rec.next === before) setupThrows++;
      rec.crash(
        rec.next,
        `thrown out of the target: ${e instanceof Error ? (e.stack ?? errorText(e)) : String(e)}`,
      );
      if (setupThrows >= 3) break;
      continue;
    }
    if (rec.next < end) {
      tally.extra["inputs the target gave no verdict (a bug of the target)"] = end - rec.next;
      break;
    }
  }
  tally.ms = performance.now() - t0;
  if (rec.slowestMs > 0) tally.extra["slowest input (ms)"] = Math.round(rec.slowestMs);
  return tally;
}

interface Job {
  loaded: LoadedTarget;
  chunk: Chunk;
}

/** Time a worker may spend before its first verdict (booting base guests, recording a stream). */
const SETUP_MS = 300_000;

/** Runs one chunk in a worker thread, restarting past hangs and deaths; resolves with its tally. */
function runInWorker(job: Job): Promise<Tally> {
  const { loaded, chunk } = job;
  const total = newTally(loaded.target.name);
  const perInput = loaded.target.perInputMs ?? DEFAULT_PER_INPUT_MS;
  const hangMs = Math.max(10 * perInput, 20_000);
  const end = chunk.start + chunk.count;
  return new Promise((resolve) => {
    const start = (from: number) => {
      if (from >= end) {
        resolve(total);
        return;
      }
      const sab = new SharedArrayBuffer(8);
      const progress = new Int32Array(sab);
      progress[0] = from;
      const w = new Worker(new URL("./worker.mjs", import.meta.url), {
        workerData: {
          module: loaded.module,
          target: loaded.target.name,
          chunk: { ...chunk, start: from, count: end - from },
          sab,
        },
      });
      let last = from;
      let lastChange = performance.now();
      let done = false;
      const t0 = performance.now();
      const lost = (why: string) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        void w.terminate();
        const at = Atomics.load(progress, 0);
        const rec = new Recorder(total, chunk.seed, at);
        rec.crash(at, why);
        total.ms += performance.now() - t0;
        start(at + 1);
      };
      const timer = setInterval(() => {
        const at = Atomics.load(progress, 0);
        const now = performance.now();
        if (at !== last) {
          last = at;
          lastChange = now;
          return;
        }
        const ready = Atomics.load(progress, 1) === 1;
        if (now - lastChange > (ready ? hangMs : SETUP_MS)) {
          lost(`hang: no verdict for ${Math.round((now - lastChange) / 1000)} s (worker terminated)`);
        }
      }, 500);
      w.on("message", (t: Tally) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        // mergeTally keeps the larger time (parallel parts); one worker's parts run in turn.
        const ms = total.ms;
        mergeTally(total, t);
        total.ms = ms + t.ms;
        void w.terminate();
        resolve(total);
      });
      w.on("error", (e) => lost(`the worker died: ${errorText(e)}`));
      w.on("exit", (code) => lost(`the worker exited (code ${code}) without a tally`));
    };
    start(chunk.start);
  });
}

export interface Plan {
  seed: number;
  /** Inputs per target name. */
  counts: Map<string, number>;
  /** First index (replays). */
  from: number;
  /** Worker threads (0: run in process, one target after the other). */
  jobs: number;
  crashDir?: string;
}

/** Runs every target of `targets` that the plan counts; tallies in the targets' order. */
export async function runPlan(
  targets: readonly LoadedTarget[],
  plan: Plan,
  onDone?: (t: Tally) => void,
): Promise<Tally[]> {
  const chosen = targets.filter((t) => (plan.counts.get(t.target.name) ?? 0) > 0);
  const base = (t: LoadedTarget): Chunk => ({
    target: t.target.name,
    seed: plan.seed,
    start: plan.from,
    count: plan.counts.get(t.target.name)!,
    ...(plan.crashDir ? { crashDir: plan.crashDir } : {}),
  });
  const tallies = new Map<string, Tally>(chosen.map((t) => [t.target.name, newTally(t.target.name)]));
  if (plan.jobs === 0) {
    for (const t of chosen) {
      const tally = await runInProcess(t.target, base(t));
      tallies.set(t.target.name, tally);
      onDone?.(tally);
    }
    return [...tallies.values()];
  }
  // Each target in `jobs` chunks, the biggest targets first, `jobs` workers at a time.
  const queue: Job[] = [];
  const pending = new Map<string, number>();
  for (const t of chosen) {
    const c = base(t);
    const parts = Math.min(plan.jobs, Math.max(1, Math.floor(c.count / 1000)));
    pending.set(t.target.name, parts);
    for (let k = 0; k < parts; k++) {
      const s = c.start + Math.floor((c.count * k) / parts);
      const e = c.start + Math.floor((c.count * (k + 1)) / parts);
      queue.push({ loaded: t, chunk: { ...c, start: s, count: e - s } });
    }
  }
  const wall = new Map<string, number>();
  const runOne = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const name = job.loaded.target.name;
      if (!wall.has(name)) wall.set(name, performance.now());
      const t = await runInWorker(job);
      const into = tallies.get(name)!;
      const ms = into.ms;
      mergeTally(into, t);
      into.ms = ms + t.ms;
      const left = pending.get(name)! - 1;
      pending.set(name, left);
      if (left === 0) {
        into.extra["wall-clock s"] = Math.round((performance.now() - wall.get(name)!) / 100) / 10;
        onDone?.(into);
      }
    }
  };
  await Promise.all(Array.from({ length: plan.jobs }, runOne));
  return [...tallies.values()];
}

const fmt = (n: number) => n.toLocaleString("en-US");

/** The table and the details under it, as printed and as put in the README. */
export function formatReport(tallies: readonly Tally[], units: Map<string, string>, top = 5): string {
  const rows = [
    ["target", "inputs", "refused", "accepted", "crashes", "violations", "CPU s"],
    ...tallies.map((t) => [
      `${t.target} (${units.get(t.target) ?? "inputs"})`,
      fmt(t.inputs),
      fmt(t.refused),
      fmt(t.accepted),
      fmt(t.crashes),
      fmt(t.violations),
      (t.ms / 1000).toFixed(1),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) =>
    `| ${r.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join(" | ")} |`;
  const out = [
    line(rows[0]!),
    `|${widths.map((w, c) => (c === 0 ? "-" : "").padEnd(w + 1, "-") + (c === 0 ? "-" : ":")).join("|")}|`,
  ];
  for (const r of rows.slice(1)) out.push(line(r));
  for (const t of tallies) {
    out.push("", `${t.target}:`);
    const reasons = Object.entries(t.reasons).sort((a, b) => b[1] - a[1]);
    if (reasons.length > 0) {
      out.push(`  top refusals (${fmt(reasons.length)} kinds):`);
      for (const [k, v] of reasons.slice(0, top)) out.push(`    ${fmt(v).padStart(10)}  ${k}`);
    }
    const extra = Object.entries(t.extra).sort((a, b) => a[0].localeCompare(b[0]));
    for (const [k, v] of extra) out.push(`  ${k}: ${fmt(v)}`);
  }
  return out.join("\n");
}

/** How to regenerate each failure. */
export function formatFailures(tallies: readonly Tally[]): string {
  const out: string[] = [];
  for (const t of tallies) {
    for (const f of t.failures) {
      out.push(
        `${f.kind.toUpperCase()} ${f.target} seed ${f.seed} index ${f.index}: ${f.what}`,
        `  replay: npm run fuzz -- --target ${f.target} --seed ${f.seed} --from ${f.index} --budget 1 --jobs 0`,
      );
      if (f.input !== undefined) out.push(`  input: ${f.input}`);
      if (f.file) out.push(`  saved: ${f.file}`);
    }
  }
  return out.join("\n");
}
