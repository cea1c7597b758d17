/**
 * Waiting in tests without betting on the host's speed. A test waits for the thing it
 * checks — an output line, an event, a condition — never for a number of milliseconds
 * after which it "should" have happened: on a loaded host (a shared core, a busy CI
 * runner) everything takes longer, and a verdict that depends on it is a flake.
 * The waits below have generous deadlines only so that a hang fails with a message
 * naming what was awaited rather than as a bare runner timeout.
 */

/** The deadline of every wait here: far beyond any legitimate wait, a hang when reached. */
export const WAIT_MS = 300_000;

/**
 * Resolves once `cond()` holds, checking it now and then after every short timer turn
 * (for state that changes without an event, e.g. a guest register). Rejects after
 * `timeoutMs`, naming `what`.
 */
export async function until(cond: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Rejects after `ms` with a message naming `what`, unless `p` settles first. */
export async function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Console bytes as they arrive (give `out` as a machine's serialOutput), with waits on
 * what has been printed: `waitFor` resolves on the output event that makes its condition
 * true, never by polling the clock.
 */
export class ConsoleLog {
  private parts: string[] = [];
  private cached = "";
  private dirty = false;
  private readonly waiters = new Set<() => void>();
  /** Bytes received so far. */
  length = 0;

  out = (b: Uint8Array): void => {
    this.parts.push(Buffer.from(b).toString("latin1"));
    this.length += b.length;
    this.dirty = true;
    for (const w of [...this.waiters]) w();
  };

  text(): string {
    if (this.dirty) {
      this.cached = this.parts.join("");
      this.parts = [this.cached];
      this.dirty = false;
    }
    return this.cached;
  }

  /** Resolves once `cond(text)` holds after some output (checked now, then on each write). */
  async waitFor(cond: (text: string) => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    let check = () => {};
    const met = new Promise<void>((resolve) => {
      check = () => {
        if (cond(this.text())) resolve();
      };
    });
    this.waiters.add(check);
    try {
      check();
      await within(met, `console: ${what}`, timeoutMs);
    } finally {
      this.waiters.delete(check);
    }
  }

  /** Resolves once more output has arrived than the `length` given (default: now). */
  grows(from = this.length, what = "more output"): Promise<void> {
    return this.waitFor(() => this.length > from, what);
  }
}
