/**
 * What every fuzz target shares: a verdict per input (refused, accepted, or crash), the
 * tally a target keeps, and the test that tells a refusal from a crash.
 *
 * A refusal is an error of one of the classes the target's interface documents
 * (SnapshotError, MigrationError, LoaderError, …) whose message is one non-empty line
 * that says what is wrong, without JavaScript's own words. Anything else that escapes
 * is a crash: another error class, a message such as "Cannot read properties of
 * undefined", a CPU internal-error exit, a hang. A crash is recorded with the seed and
 * the index of the input, which regenerate it (`npm run fuzz -- --replay T:SEED:INDEX`),
 * and the input itself where it is small.
 *
 * A violation is an accepted input that breaks an invariant the target checks after
 * accepting (a restored machine's state that does not survive a save, a stream the
 * mutator made incomplete that was loaded anyway): the input was not refused, but
 * should have been, or was loaded wrongly.
 */
import { caseSeed } from "../difftest/prng.ts";

/** Text of JavaScript engine errors, never acceptable in a message meant for a user. */
const JS_INTERNAL =
  /Cannot read propert|Cannot set propert|is not a function|is not iterable|is not defined|is not a constructor|cannot be converted to a BigInt|Cannot convert .* to a BigInt|Cannot mix BigInt|Maximum call stack|Invalid array length|Invalid typed array length|Invalid string length|Array buffer allocation failed|Offset is outside the bounds|out of bounds access|Cannot access '.*' before initialization|undefined \(reading|null \(reading|\bat .*\.ts:\d+/;

/** Why a message is not a clear one-line reason, or null when it is one. */
export function messageProblem(message: string): string | null {
  if (message.trim() === "") return "empty message";
  if (message.includes("\n")) return "message spans several lines";
  if (JS_INTERNAL.test(message)) return "message is JavaScript's, not a reason";
  return null;
}

// biome-ignore lint/suspicious/noExplicitAny: error classes with any constructor signature
export type ErrorClass = abstract new (...args: any[]) => Error;

/** Null when `e` is a clean refusal (one of `allowed`, with a clear message), else what is wrong. */
export function refusalProblem(e: unknown, allowed: readonly ErrorClass[]): string | null {
  if (!(e instanceof Error)) return `threw a non-Error value: ${String(e)}`;
  if (!allowed.some((c) => e instanceof c)) return `${e.name}: ${e.message}`;
  const p = messageProblem(e.message);
  return p ? `${p}: ${e.name}: ${e.message}` : null;
}

/** A reproducible failure. */
export interface Crash {
  target: string;
  seed: number;
  index: number;
  kind: "crash" | "violation";
  what: string;
  /** The input (hex, or text for QMP lines), when it is small enough to print. */
  input?: string;
  /** Where the whole input was written, when it was. */
  file?: string;
}

/** Counts for one target (or one chunk of it; chunks add up with mergeTally). */
export interface Tally {
  target: string;
  inputs: number;
  refused: number;
  accepted: number;
  crashes: number;
  violations: number;
  /** Target-specific counters (instructions run after accepted restores, per-kind counts, …). */
  extra: Record<string, number>;
  /** Refusal messages with numbers blanked, and how often each came (bounded). */
  reasons: Record<string, number>;
  failures: Crash[];
  ms: number;
}

export function newTally(target: string): Tally {
  return {
    target,
    inputs: 0,
    refused: 0,
    accepted: 0,
    crashes: 0,
    violations: 0,
    extra: {},
    reasons: {},
    failures: [],
    ms: 0,
  };
}

const MAX_REASONS = 400;
const MAX_FAILURES = 20;

export function mergeTally(into: Tally, t: Tally): void {
  into.inputs += t.inputs;
  into.refused += t.refused;
  into.accepted += t.accepted;
  into.crashes += t.crashes;
  into.violations += t.violations;
  into.ms = Math.max(into.ms, t.ms);
  for (const [k, v] of Object.entries(t.extra)) into.extra[k] = (into.extra[k] ?? 0) + v;
  for (const [k, v] of Object.entries(t.reasons)) addReason(into, k, v);
  for (const f of t.failures) if (into.failures.length < MAX_FAILURES) into.failures.push(f);
}

function addReason(t: Tally, key: string, n: number): void {
  if (t.reasons[key] !== undefined || Object.keys(t.reasons).length < MAX_REASONS) {
    t.reasons[key] = (t.reasons[key] ?? 0) + n;
  } else t.reasons["(other reasons)"] = (t.reasons["(other reasons)"] ?? 0) + n;
}

/** A refusal message with its numbers and quoted values blanked, so that kinds of reasons group. */
export function reasonKey(message: string): string {
  return message
    .replace(/'[^']*'/g, "'…'")
    .replace(/0x[0-9a-f]+/gi, "N")
    .replace(/\d+/g, "N")
    .slice(0, 160);
}

/** Per-input bookkeeping for a target's loop. */
export class Recorder {
  /** The index of the next input to get a verdict (inputs come in order). */
  next: number;
  /** Inputs that took longest, in ms (the slowest one is reported). */
  slowestMs = 0;
  private last = -1;
  /**
   * Where the runner's watchdog reads progress: [0] the next input's index, [1] 1 once
   * ready() was called (a worker thread's view of a SharedArrayBuffer; none in process).
   */
  progress: Int32Array | null = null;

  constructor(
    readonly tally: Tally,
    readonly seed: number,
    start = 0,
    readonly perInputMs = 2000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.next = start;
  }

  /** The seed of input `index` (every input is generated from its own seed). */
  inputSeed(index: number): number {
    return caseSeed(this.seed, this.tally.target, index);
  }

  /** Setup is over: the per-input clock starts now. */
  ready(): void {
    this.last = this.now();
    if (this.progress) Atomics.store(this.progress, 1, 1);
  }

  /** Time since the previous verdict; a hang (past perInputMs) is turned into a crash. */
  private timed(): boolean {
    const t = this.now();
    const index = this.next++;
    if (this.progress) Atomics.store(this.progress, 0, this.next);
    if (this.last < 0) {
      this.last = t;
      return true;
    }
    const ms = t - this.last;
    this.last = t;
    if (ms > this.slowestMs) this.slowestMs = ms;
    if (ms <= this.perInputMs) return true;
    this.tally.inputs++;
    this.tally.crashes++;
    this.fail("crash", index, `hang: the input took ${Math.round(ms)} ms (budget ${this.perInputMs} ms)`);
    return false;
  }

  refused(message: string): void {
    if (!this.timed()) return;
    this.tally.inputs++;
    this.tally.refused++;
    addReason(this.tally, reasonKey(message), 1);
  }

  accepted(): void {
    if (!this.timed()) return;
    this.tally.inputs++;
    this.tally.accepted++;
  }

  /** An input that crashed (it counts as an input, neither refused nor accepted). */
  crash(index: number, what: string, input?: { text?: string; bytes?: Uint8Array; file?: string }): void {
    this.last = this.now();
    this.next = index + 1;
    if (this.progress) Atomics.store(this.progress, 0, this.next);
    this.tally.inputs++;
    this.tally.crashes++;
    this.fail("crash", index, what, input);
  }

  /** An accepted input that broke an invariant (counted as accepted too). */
  violation(index: number, what: string, input?: { text?: string; bytes?: Uint8Array; file?: string }): void {
    this.tally.violations++;
    this.fail("violation", index, what, input);
  }

  count(key: string, n = 1): void {
    this.tally.extra[key] = (this.tally.extra[key] ?? 0) + n;
  }

  private fail(
    kind: Crash["kind"],
    index: number,
    what: string,
    input?: { text?: string; bytes?: Uint8Array; file?: string },
  ): void {
    if (this.tally.failures.length >= MAX_FAILURES) return;
    const c: Crash = { target: this.tally.target, seed: this.seed, index, kind, what: what.slice(0, 600) };
    if (input?.text !== undefined) c.input = input.text.slice(0, 2000);
    else if (input?.bytes && input.bytes.length <= 256) c.input = Buffer.from(input.bytes).toString("hex");
    if (input?.file) c.file = input.file;
    this.tally.failures.push(c);
  }
}

/** What a target runs: inputs [start, start + count) of the stream `seed` defines. */
export interface Chunk {
  target: string;
  seed: number;
  start: number;
  count: number;
  /** Where a crashing input too large to print is written (none: not written). */
  crashDir?: string;
}

/**
 * THE TARGET INTERFACE (stable from 2026-12-03 04:40 UTC: tools/fuzz/migration-streams.ts
 * and tools/fuzz/fault-matrix.ts are written against it; add only optional members).
 *
 * A module under tools/fuzz contributes targets by exporting them: `export const
 * targets: FuzzTarget[]`, or any named export that has the shape below (a string `name`
 * and a function `run`). tools/fuzz/run.ts imports tools/fuzz/targets/*.ts and, when they
 * exist, tools/fuzz/migration-streams.ts and tools/fuzz/fault-matrix.ts.
 *
 * `run(chunk, rec)` handles inputs chunk.start .. chunk.start + chunk.count - 1, in order,
 * and for each one calls exactly one of `rec.refused(message)`, `rec.accepted()` or
 * `rec.crash(index, what, input)`; it may also call `rec.violation(...)` (an accepted input
 * that should not have been) and `rec.count(key, n)` (target-specific figures, printed
 * under the target's row). Input `index` must be a function of (chunk.seed, index) alone,
 * e.g. `new Rng(rec.inputSeed(index))`, so that `--seed S --target T --from INDEX
 * --budget 1` regenerates it; a target with per-input state carried over (the insn
 * target's environments) regenerates that state from the seed too. Setup (building
 * corpora, booting base guests) happens inside run(), before `rec.ready()`; run() should
 * not throw (whatever it throws is counted by the runner as a crash of the input after
 * the last verdict). The runner checks the time each input takes: one past
 * `perInputMs` (measured between verdicts, from `rec.ready()` on) is a crash ("hang").
 * Write crashing inputs larger than a line to `chunk.crashDir` when it is set.
 */
export interface FuzzTarget {
  /** Unique, short, for --target and the table ("snapshot", "qmp", "migration-streams"). */
  readonly name: string;
  /** What one input is, for the table ("snapshot files", "QMP lines", …). */
  readonly unit: string;
  /** Inputs in the large budget (`npm run fuzz`); default 100,000. */
  readonly full?: number;
  /** Inputs in the CI smoke budget (test/fuzz-smoke.test.ts), a second or so; default 50. */
  readonly smoke?: number;
  /** An input taking longer than this is a hang (a crash); default 2,000 ms. */
  readonly perInputMs?: number;
  run(chunk: Chunk, rec: Recorder): Promise<void>;
}

/** True when `x` has the shape of a FuzzTarget (how the runner finds a module's targets). */
export function isFuzzTarget(x: unknown): x is FuzzTarget {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as FuzzTarget).name === "string" &&
    typeof (x as FuzzTarget).run === "function"
  );
}

/** Every FuzzTarget a module exports (its `targets` array and any target-shaped export). */
export function targetsOf(mod: Record<string, unknown>): FuzzTarget[] {
  const out: FuzzTarget[] = [];
  const add = (t: unknown) => {
    if (isFuzzTarget(t) && !out.some((o) => o.name === t.name)) out.push(t);
  };
  if (Array.isArray(mod.targets)) mod.targets.forEach(add);
  for (const v of Object.values(mod)) add(v);
  return out;
}

/** The message of whatever was thrown, first line only. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
