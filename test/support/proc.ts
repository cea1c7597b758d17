/**
 * A child process's CPU time, scheduler state and resident memory from /proc (Linux), for
 * tests and bench/ (the soak) that check a VMM's memory stays flat.
 */
import { readFileSync } from "node:fs";
import { runSync } from "./children.ts";

/** Resident set size of `pid` in KiB (VmRSS in /proc/PID/status), null once it is gone. */
export function rssKiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

let clockTicks = 0;
/** Clock ticks per second, the unit of /proc/PID/stat's times (sysconf(_SC_CLK_TCK)). */
export function clkTck(): number {
  if (clockTicks === 0) {
    const r = runSync("getconf", ["CLK_TCK"], { timeout: 10_000 });
    const v = Number(r.stdout.trim());
    clockTicks = Number.isInteger(v) && v > 0 ? v : 100;
  }
  return clockTicks;
}

export interface ProcSample {
  /** User plus system CPU time, in seconds. */
  cpu: number;
  /** The scheduler state letter: R running, S sleeping, ... */
  state: string;
  /** VmRSS in bytes. */
  rss: number;
}

/** The process's CPU time, state and resident memory now (throws if it is gone). */
export function procSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  // pid (comm) state ... : fields after the comm's closing parenthesis, from field 3.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpu = (Number(f[11]) + Number(f[12])) / clkTck(); // fields 14 utime, 15 stime
  const kib = rssKiB(pid);
  if (kib === null) throw new Error(`/proc/${pid}/status has no VmRSS (the process has exited)`);
  return { cpu, state: f[0] ?? "?", rss: kib * 1024 };
}
