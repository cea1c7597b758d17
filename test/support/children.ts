/**
 * Child processes of the tests, never left behind. Every child started through here is
 * killed with SIGKILL
 *   - when the test that started it ends, passed, failed or timed out (node:test runs a
 *     test's `after` hooks after its timeout too);
 *   - when the test process exits (`npm test` passes --test-force-exit, so a file ends once
 *     its tests are done even if a timed-out test left a handle open);
 *   - when the runner stops the file with a signal (Node 20 applies --test-timeout to each
 *     whole file and ends it with SIGTERM, which would otherwise skip 'exit' handlers and
 *     orphan the emulators the file started).
 * Synchronous runs (`runSync`) always carry a timeout: a blocked spawnSync also blocks
 * the signal handlers, so its own timeout is what bounds it.
 */
import {
  type ChildProcess,
  type SpawnOptions,
  type SpawnSyncOptionsWithStringEncoding,
  type SpawnSyncReturns,
  spawn,
  spawnSync,
} from "node:child_process";
import { constants } from "node:os";
import type { TestContext } from "node:test";

/**
 * How long a synchronous child may run before it is killed: far beyond what any of them
 * needs on a loaded host (seconds), so that reaching it means a hang, not a slow machine.
 */
export const SYNC_TIMEOUT_MS = 600_000;

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const c of live) c.kill("SIGKILL");
}

process.on("exit", killAll);
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(128 + constants.signals[sig]);
  });
}

/** Registers `child` so that it is killed when the test process ends (see above). */
export function track<C extends ChildProcess>(child: C): C {
  if (child.exitCode !== null || child.signalCode !== null) return child;
  live.add(child);
  const forget = () => live.delete(child);
  child.once("exit", forget);
  child.once("error", forget);
  return child;
}

/** Kills `child` (SIGKILL) if it is still running. */
export function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface UntilOptions {
  /** The error when the child exits before the probe has a value; absent: an exit is no failure. */
  exited?: () => Error;
  /** A deadline in milliseconds (absent: none, the caller's own timeout bounds the wait). */
  timeoutMs?: number;
  /** The error at the deadline. */
  timedOut?: () => Error;
}

/** A running child with its output collected and waited on as events, never by sleeping. */
export class Child {
  readonly proc: ChildProcess;
  stdout = "";
  stderr = "";
  exit: Exit | null = null;
  /** Resolves when the child has exited and its output is read to the end. */
  readonly exited: Promise<Exit>;
  private readonly listeners = new Set<() => void>();

  constructor(file: string, args: readonly string[], opts: SpawnOptions = {}) {
    this.proc = track(spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], ...opts }));
    this.proc.stdout?.on("data", (d: Buffer) => {
      this.stdout += d.toString("latin1");
      this.notify();
    });
    this.proc.stderr?.on("data", (d: Buffer) => {
      this.stderr += d.toString("latin1");
      this.notify();
    });
    // A write after the child is gone is not the test's failure; its exit says what happened.
    this.proc.stdin?.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.proc.once("error", (e) => {
        this.stderr += `spawn ${file}: ${e.message}\n`;
        this.exit ??= { code: null, signal: null };
        this.notify();
        resolve(this.exit);
      });
      this.proc.once("close", (code, signal) => {
        this.exit ??= { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Writes to the child's stdin (ignored once it has exited). */
  send(text: string): void {
    if (this.exit === null) this.proc.stdin?.write(text);
  }

  /**
   * The first match of `re` in the child's stdout (or stderr) after offset `from`, checked
   * again on every output event; rejects if the child exits first. No deadline: the test's
   * timeout bounds the wait, and its `after` hook kills the child.
   */
  waitFor(re: RegExp, from = 0, stream: "stdout" | "stderr" = "stdout"): Promise<RegExpExecArray> {
    return this.until(
      () => re.exec((stream === "stdout" ? this.stdout : this.stderr).slice(from)) ?? undefined,
      {
        exited: () =>
          new Error(
            `the child exited (code ${this.exit?.code}, signal ${this.exit?.signal}) before ${re} appeared\n` +
              `--- stdout (end)\n${this.stdout.slice(-2000)}\n--- stderr (end)\n${this.stderr.slice(-2000)}`,
          ),
      },
    );
  }

  /**
   * Resolves with `probe()`'s value once it returns one, checked now and again on every
   * output or exit event. Rejects with `o.exited()` if the child has exited and the probe
   * still has nothing (without `o.exited`, an exit is no failure: the probe may be waiting for
   * it), and with `o.timedOut()` after `o.timeoutMs` (without it, no deadline).
   */
  until<T>(probe: () => T | undefined, o: UntilOptions = {}): Promise<T> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err: Error | null, v?: T) => {
        this.listeners.delete(check);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(v as T);
      };
      const check = () => {
        const v = probe();
        if (v !== undefined) return finish(null, v);
        if (this.exit !== null && o.exited) return finish(o.exited());
      };
      if (o.timeoutMs !== undefined) {
        const ms = o.timeoutMs;
        timer = setTimeout(() => finish(o.timedOut?.() ?? new Error(`not within ${ms / 1000} s`)), ms);
      }
      this.listeners.add(check);
      check();
    });
  }

  /** Kills the child if it still runs and waits for it. */
  async stop(): Promise<Exit> {
    kill(this.proc);
    return this.exited;
  }
}

/**
 * Starts `file args` for the test `t`: the child is killed when the test ends (its
 * `after` hook, which also runs when the test times out) or the test process does.
 */
export function start(t: TestContext, file: string, args: readonly string[], opts: SpawnOptions = {}): Child {
  const c = new Child(file, args, opts);
  t.after(() => c.stop());
  return c;
}

/**
 * spawnSync with a timeout (SIGKILL at SYNC_TIMEOUT_MS unless the caller gives one) and
 * text output; use it for every child that runs an emulator or a guest.
 */
export function runSync(
  file: string,
  args: readonly string[],
  opts: Partial<SpawnSyncOptionsWithStringEncoding> = {},
): SpawnSyncReturns<string> {
  return spawnSync(file, args, {
    encoding: "utf8",
    timeout: SYNC_TIMEOUT_MS,
    killSignal: "SIGKILL",
    ...opts,
  } as SpawnSyncOptionsWithStringEncoding);
}
