/**
 * Boots a Linux kernel with the armbox test initramfs (tools/linux/make-initramfs.sh) under
 * `armbox run` or, as the reference, under qemu-system-aarch64 with the same files and
 * options, and watches the serial console: marker lines are awaited as events on the
 * child's output, never by sleeping. Every boot ends with the child killed (if it is still
 * running), so a failed test leaves no emulator behind.
 *
 * Environment (all optional):
 *   ARMBOX_LINUX_KERNEL   the kernel Image      default $ARMBOX_CACHE/linux/vmlinuz
 *   ARMBOX_LINUX_INITRD   the initramfs         default $ARMBOX_CACHE/linux/initrd.cpio.gz
 *   ARMBOX_CACHE          cache root            default ${XDG_CACHE_HOME:-~/.cache}/armbox
 *   ARMBOX_LINUX_REF=qemu run under qemu-system-aarch64 instead of armbox
 *   ARMBOX_LINUX_TIMEOUT  seconds per boot      default 600 (armbox), 60 (qemu)
 *   ARMBOX_LINUX_STALL    seconds without console output that fail a boot; 0: never
 *                         default 120 (armbox), 30 (qemu)
 *   ARMBOX_LINUX_ARGS     extra arguments for armbox run / qemu (split at spaces)
 *   ARMBOX_LINUX_REALTIME 1: armbox boots in real time (default: --deterministic)
 *   ARMBOX_LINUX_APPEND   extra kernel command line words (e.g. nokaslr), after the test's
 *   ARMBOX_LINUX_LOG_DIR  write each boot's transcript there
 *   CI                    when set (and not "false"/"0"), missing files fail instead of skip
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { initrdPath, kernelPath } from "../../tools/linux/paths.ts";
import { track } from "./children.ts";

export type LinuxEngine = "armbox" | "qemu";

const ARMBOX = fileURLToPath(new URL("../../bin/armbox.js", import.meta.url));
const env = process.env;

export const inCi = env.CI !== undefined && env.CI !== "" && env.CI !== "false" && env.CI !== "0";
export const engine: LinuxEngine = env.ARMBOX_LINUX_REF === "qemu" ? "qemu" : "armbox";

export { initrdPath, kernelPath };

function seconds(name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: not a number of seconds`);
  return n;
}
/** How long one boot may take, in milliseconds. */
export const bootTimeoutMs = seconds("ARMBOX_LINUX_TIMEOUT", engine === "qemu" ? 60 : 600) * 1000;
/** How long the console may stay silent, in milliseconds (0: no limit). */
export const stallTimeoutMs = seconds("ARMBOX_LINUX_STALL", engine === "qemu" ? 30 : 120) * 1000;
/** A node:test timeout that leaves the harness time to kill its child and report first. */
export const testTimeoutMs = bootTimeoutMs + 30_000;

/**
 * Why the Linux tests cannot run here, or false when they can. Outside CI a missing kernel,
 * initramfs or QEMU skips them; in CI it is a failure, so this returns false there and the
 * test meets the missing file itself (see `requireFiles`).
 */
export function missingReason(): string | false {
  const missing: string[] = [];
  for (const f of [kernelPath, initrdPath]) if (!fs.existsSync(f)) missing.push(f);
  let why = "";
  if (missing.length > 0)
    why =
      `Linux boot files not found: ${missing.join(", ")} ` +
      `(bash tools/linux/fetch-debian.sh ${path.dirname(kernelPath)} && ` +
      `bash tools/linux/make-initramfs.sh ${initrdPath} ${path.dirname(kernelPath)}; ` +
      "or set ARMBOX_LINUX_KERNEL / ARMBOX_LINUX_INITRD)";
  else if (engine === "qemu" && spawnSync("qemu-system-aarch64", ["--version"]).status !== 0)
    why = "ARMBOX_LINUX_REF=qemu but qemu-system-aarch64 is not installed";
  return why === "" ? false : why;
}

/** The `skip` option for node:test: the reason outside CI, never in CI. */
export function skipUnlessCi(): string | false {
  const why = missingReason();
  return why !== false && !inCi ? why : false;
}

/** Throws the reason the tests cannot run (used in CI, where a skip would hide it). */
export function requireFiles(): void {
  const why = missingReason();
  if (why !== false) throw new Error(`${why}${inCi ? " [CI is set: this is a failure, not a skip]" : ""}`);
}

export interface BootOptions {
  smp: number;
  /** The kernel command line; console=ttyAMA0 is the caller's to give. */
  append: string;
  memory?: string;
  kernel?: string;
  initrd?: string;
  engine?: LinuxEngine;
  /** Extra emulator arguments, after those ARMBOX_LINUX_ARGS gives. */
  args?: string[];
  /** Name of the transcript file under ARMBOX_LINUX_LOG_DIR. */
  name?: string;
  /** armbox only: run `armbox run ARGS` instead of a boot (e.g. --restore FILE). */
  runArgs?: string[];
}

/** The command line a boot runs, for either engine. */
export function bootCommand(o: BootOptions): { file: string; args: string[] } {
  if (o.runArgs) return { file: process.execPath, args: [ARMBOX, "run", ...o.runArgs] };
  const kernel = o.kernel ?? kernelPath;
  const initrd = o.initrd ?? initrdPath;
  const memory = o.memory ?? "512M";
  const extra = (env.ARMBOX_LINUX_ARGS ?? "").split(" ").filter((a) => a !== "");
  const append = env.ARMBOX_LINUX_APPEND ? `${o.append} ${env.ARMBOX_LINUX_APPEND}` : o.append;
  if ((o.engine ?? engine) === "qemu")
    return {
      file: "qemu-system-aarch64",
      args: [
        ...["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-smp", String(o.smp), "-m", memory],
        ...["-nographic", "-kernel", kernel, "-initrd", initrd, "-append", append],
        ...extra,
        ...(o.args ?? []),
      ],
    };
  // armbox boots in deterministic time (ARMBOX_LINUX_REALTIME=1 for real time): the guest's
  // clock follows its own progress, so a slow or busy host makes a boot take longer, never
  // makes the kernel see stalls or lockups (a real-time 8-vCPU boot on 2 busy cores did).
  const clock = env.ARMBOX_LINUX_REALTIME === "1" ? [] : ["--deterministic"];
  return {
    file: process.execPath,
    args: [
      ...[ARMBOX, "run", ...clock, "--kernel", kernel, "--initrd", initrd, "--smp", String(o.smp)],
      ...["--memory", memory, "--append", append],
      ...extra,
      ...(o.args ?? []),
    ],
  };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Lines that end a boot as a failure as soon as they appear. */
const FATAL = /Kernel panic - not syncing[^\n]*\n/;

/** One running boot: its console transcript so far and the means to wait on it. */
export class LinuxBoot {
  readonly child: ChildProcess;
  readonly startedAt = performance.now();
  /** Serial console output (the child's stdout), decoded as latin1. */
  transcript = "";
  /** The emulator's own messages (stderr). */
  stderr = "";
  exit: Exit | null = null;
  readonly exited: Promise<Exit>;
  /** Milliseconds from spawn to the first ARMBOX-INIT-READY, once seen. */
  readyMs: number | null = null;
  private lastOutput = performance.now();
  private readonly listeners = new Set<() => void>();
  private readonly name: string;

  constructor(readonly options: BootOptions) {
    const { file, args } = bootCommand(options);
    this.name = options.name ?? `${options.engine ?? engine}-smp${options.smp}`;
    // Killed with the test process too, however it ends (children.ts).
    this.child = track(spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] }));
    this.child.stdout!.on("data", (d: Buffer) => {
      this.transcript += d.toString("latin1");
      this.lastOutput = performance.now();
      if (this.readyMs === null && this.transcript.includes("ARMBOX-INIT-READY"))
        this.readyMs = performance.now() - this.startedAt;
      this.notify();
    });
    this.child.stderr!.on("data", (d: Buffer) => {
      this.stderr += d.toString("latin1");
      this.notify();
    });
    // A write after the guest is gone is not the test's failure; the exit says what happened.
    this.child.stdin!.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.child.on("error", (e) => {
        this.stderr += `spawn ${file}: ${e.message}\n`;
        this.exit ??= { code: null, signal: null };
        this.notify();
        resolve(this.exit);
      });
      this.child.on("close", (code, signal) => {
        this.exit ??= { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Sends text to the serial console. */
  send(text: string): void {
    if (this.exit === null) this.child.stdin!.write(text);
  }

  /** How many times `marker` occurs in the transcript. */
  count(marker: string): number {
    return this.transcript.split(marker).length - 1;
  }

  /**
   * Resolves with the first match of `pattern` in the transcript after offset `from` (a
   * string is matched literally); rejects when the child exits first, on a kernel panic, when
   * the boot's deadline passes or the console stays silent too long.
   */
  waitFor(pattern: RegExp | string, from = 0): Promise<RegExpExecArray> {
    const re =
      typeof pattern === "string" ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : pattern;
    return this.until(`${re}`, () => {
      const m = re.exec(this.transcript.slice(from));
      if (m) return m;
      if (this.exit) throw this.failure(`the emulator exited before ${re} appeared`);
      return undefined;
    });
  }

  /** Resolves with the exit once the child ends by itself, within the boot's deadline. */
  waitExit(): Promise<Exit> {
    return this.until("the emulator to exit", () => this.exit ?? undefined);
  }

  /**
   * Evaluates `probe` now and after every output or exit event until it returns a value (or
   * throws); a kernel panic, the boot deadline and the stall limit end the wait first.
   */
  private until<T>(what: string, probe: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err: Error | null, v?: T) => {
        this.listeners.delete(check);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(v as T);
      };
      const check = () => {
        let v: T | undefined;
        try {
          v = probe();
        } catch (e) {
          return finish(e as Error);
        }
        if (v !== undefined) return finish(null, v);
        const fatal = FATAL.exec(this.transcript);
        if (fatal) return finish(this.failure(`${fatal[0]} (waiting for ${what})`));
        const now = performance.now();
        const left = bootTimeoutMs - (now - this.startedAt);
        if (left <= 0)
          return finish(this.failure(`no ${what} within ${bootTimeoutMs / 1000} s (ARMBOX_LINUX_TIMEOUT)`));
        const quiet = stallTimeoutMs - (now - this.lastOutput);
        if (stallTimeoutMs > 0 && quiet <= 0)
          return finish(
            this.failure(
              `no console output for ${stallTimeoutMs / 1000} s (ARMBOX_LINUX_STALL), waiting for ${what}`,
            ),
          );
        // Woken by the next event, or by whichever deadline comes first.
        clearTimeout(timer);
        timer = setTimeout(check, Math.max(1, stallTimeoutMs > 0 ? Math.min(left, quiet) : left));
      };
      this.listeners.add(check);
      check();
    });
  }

  /** An error carrying the exit status and the end of the transcript and of stderr. */
  failure(what: string): Error {
    const exit = this.exit
      ? `exit code ${this.exit.code}${this.exit.signal ? ` signal ${this.exit.signal}` : ""}`
      : "still running";
    return new Error(
      `${this.name}: ${what}; ${exit} after ${((performance.now() - this.startedAt) / 1000).toFixed(1)} s\n` +
        `--- console (last 4000 chars)\n${this.transcript.slice(-4000)}\n` +
        `--- stderr (last 2000 chars)\n${this.stderr.slice(-2000)}`,
    );
  }

  /** Kills the child if it still runs, waits for it, writes the transcript log. */
  async stop(): Promise<Exit> {
    if (this.exit === null) {
      this.child.kill("SIGKILL");
    }
    const exit = await this.exited;
    const dir = env.ARMBOX_LINUX_LOG_DIR;
    if (dir) {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(
        path.join(dir, `${this.name}.log`),
        this.transcript + (this.stderr ? `\n--- stderr\n${this.stderr}` : ""),
      );
    }
    return exit;
  }
}

export interface BootResult {
  transcript: string;
  stderr: string;
  exit: Exit;
  readyMs: number | null;
  totalMs: number;
}

/**
 * Boots, lets `drive` wait on markers and type on the console, then waits for the guest to
 * end the run itself (unless `drive` returns "stop": then the child is killed). The child is
 * always gone when this returns or throws.
 */
export async function boot(
  o: BootOptions,
  drive: (b: LinuxBoot) => Promise<"stop" | undefined> = async () => undefined,
): Promise<BootResult> {
  const b = new LinuxBoot(o);
  try {
    const how = await drive(b);
    if (how !== "stop") await b.waitExit();
  } finally {
    await b.stop();
  }
  return {
    transcript: b.transcript,
    stderr: b.stderr,
    exit: b.exit!,
    readyMs: b.readyMs,
    totalMs: performance.now() - b.startedAt,
  };
}

/** Machine-checkable `KEY=value` lines the initramfs prints, the last one of each key. */
export function markers(transcript: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of transcript.split(/\r?\n/)) {
    const r = /^([A-Z][A-Z0-9-]*)=(.*)$/.exec(line.trim());
    if (r) m.set(r[1]!, r[2]!);
  }
  return m;
}

/** The CPU list Linux prints for `cpus` (sorted ids), e.g. [0, 1, 3] -> "0-1,3". */
export function cpuList(cpus: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j === i ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * Restores a snapshot of a 4-vCPU Linux taken with cpu2 offline in a fresh armbox and
 * checks it: /sys/devices/system/cpu/online is 0-1,3, the shell answers, cpu2 comes back
 * online (0-3), and poweroff -f ends armbox with status 0.
 */
export async function restoreWithCpu2Offline(snap: string, name: string): Promise<void> {
  const r = await boot({ smp: 4, append: "", runArgs: ["--restore", snap], name }, async (b) => {
    b.send("cat /sys/devices/system/cpu/online; echo R-$((2+3))\n");
    await b.waitFor(/\nR-5/);
    assert.match(b.transcript, /\n0-1,3\r?\n/, "restored: cpu2 still offline");
    const at = b.transcript.length;
    b.send(
      "echo 1 > /sys/devices/system/cpu/cpu2/online; cat /sys/devices/system/cpu/online; echo U-$((3+4))\n",
    );
    await b.waitFor(/\nU-7/, at);
    assert.match(b.transcript.slice(at), /\n0-3\r?\n/, "cpu2 back online after the restore");
    b.send("poweroff -f\n");
    return undefined;
  });
  assert.equal(r.exit.code, 0, r.stderr);
}
