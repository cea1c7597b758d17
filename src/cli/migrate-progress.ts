/**
 * A progress bar for a migration started from the command line: polls query-migrate
 * (through whatever `poll` does: a QMP client, or the controller in process) and draws it
 * with the `cli-progress` package; without a TTY, or if the package is missing, it prints
 * a plain line per second instead. Resolves with the last MigrationInfo seen.
 */
import type { MigrationInfo } from "../vmm/migration/controller.ts";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const MiB = 1024 * 1024;

/** The part of cli-progress used here (typed locally: the package ships no types). */
interface Bar {
  start(total: number, value: number, payload?: Record<string, unknown>): void;
  update(value: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  stop(): void;
}
type BarCtor = new (opts: Record<string, unknown>, preset?: unknown) => Bar;

async function loadBar(): Promise<{ SingleBar: BarCtor; preset: unknown } | null> {
  try {
    const name = "cli-progress";
    const mod = (await import(name)) as { default?: unknown } & Record<string, unknown>;
    const m = (mod.default ?? mod) as { SingleBar: BarCtor; Presets: { shades_classic: unknown } };
    return { SingleBar: m.SingleBar, preset: m.Presets.shades_classic };
  } catch {
    return null;
  }
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  intervalMs?: number;
}

/**
 * Shows progress until the migration ends. `poll` returning null (the source's QMP socket
 * went away, as it does when a completed migration ends the source) ends the display.
 */
export async function showMigrationProgress(
  poll: () => Promise<MigrationInfo | null>,
  opts: ProgressOptions = {},
): Promise<MigrationInfo | null> {
  const stream = opts.stream ?? process.stderr;
  const interval = opts.intervalMs ?? 100;
  const lib = stream.isTTY ? await loadBar() : null;
  const bar = lib
    ? new lib.SingleBar(
        {
          stream,
          format:
            "migrate |{bar}| {percentage}% | {sent} MiB sent, {left} MiB left | {mbps} Mbit/s | expected downtime {edt} ms | round {rounds} | {status}",
          hideCursor: true,
          clearOnComplete: false,
        },
        lib.preset,
      )
    : null;
  let last: MigrationInfo | null = null;
  let lastPlain = 0;
  let started = false;
  for (;;) {
    let info: MigrationInfo | null;
    try {
      info = await poll();
    } catch {
      info = null;
    }
    if (info === null) break;
    last = info;
    const ram = info.ram;
    const total = ram?.total ?? 1;
    const done = Math.max(0, total - (ram?.remaining ?? total));
    const payload = {
      sent: ((ram?.transferred ?? 0) / MiB).toFixed(1),
      left: ((ram?.remaining ?? 0) / MiB).toFixed(1),
      mbps: (ram?.mbps ?? 0).toFixed(0),
      rounds: ram?.["dirty-sync-count"] ?? 0,
      edt: info["expected-downtime"] ?? 0,
      status: info.status + (info.downtime !== undefined ? `, downtime ${info.downtime} ms` : ""),
    };
    if (bar) {
      if (!started) bar.start(total, done, payload);
      else {
        bar.setTotal(total);
        bar.update(TERMINAL.has(info.status) && info.status === "completed" ? total : done, payload);
      }
      started = true;
    } else if (performance.now() - lastPlain >= 1000 || TERMINAL.has(info.status)) {
      lastPlain = performance.now();
      stream.write(
        `migrate: ${info.status}, ${payload.sent} MiB sent, ${payload.left} MiB left, ${payload.mbps} Mbit/s, expected downtime ${payload.edt} ms, round ${payload.rounds}${info.downtime !== undefined ? `, downtime ${info.downtime} ms` : ""}\n`,
      );
    }
    if (TERMINAL.has(info.status)) break;
    await new Promise((r) => setTimeout(r, interval));
  }
  if (bar && started) bar.stop();
  if (last?.status === "failed") stream.write(`migrate: failed: ${last["error-desc"] ?? "unknown reason"}\n`);
  return last;
}
