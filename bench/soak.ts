/**
 * `npm run soak` (issue 9 item 7): the default Linux guest (the built-in one `armbox run`
 * boots, or ARMBOX_SOAK_KERNEL / ARMBOX_SOAK_INITRD) with an ext4 virtio disk runs a shell
 * loop that appends a counter to a file on the disk, syncs, and prints it on the console,
 * in guest time (`usleep`, the clock --deterministic: the pace follows the guest, not the
 * host). Every STEP counter values the soak alternately
 *   (a) snapshots it through QMP (stop, snapshot-save) and restores the snapshot: in the
 *       same process (snapshot-load, cont) or, every other time, in a new one (quit,
 *       `armbox run --restore`), and
 *   (b) live-migrates it over TCP to a new `armbox run --incoming` process,
 * until MIGRATIONS migrations have been done. Then the loop is stopped, the disk unmounted,
 * the guest powered off, and the file read back from the image with debugfs.
 * Verdict: the counter on the console (every process's output, concatenated in order) and
 * the lines of the file are 1..N, each once, in order; RSS of every process at its start and
 * end and of the soak itself is printed. Exits 1 on a gap, a repeat or any failure.
 *
 * Environment: SOAK_MIGRATIONS (default 50), SOAK_STEP (counter values between two
 * operations, default 20), SOAK_SMP (default 2), SOAK_MEMORY (default 256M),
 * ARMBOX_SOAK_KERNEL / ARMBOX_SOAK_INITRD (default: the built-in guest), SOAK_KEEP=1 keeps
 * the temporary directory (transcripts are written there) for a post-mortem.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import { Child, kill } from "../test/support/children.ts";
import { freePort } from "../test/support/net.ts";
import { rssKiB } from "../test/support/proc.ts";

const ARMBOX = fileURLToPath(new URL("../bin/armbox.js", import.meta.url));
const env = process.env;

function count(name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${v}: not a positive whole number`);
  return n;
}
const MIGRATIONS = count("SOAK_MIGRATIONS", 50);
const STEP = count("SOAK_STEP", 20);
const SMP = String(count("SOAK_SMP", 2));
const MEMORY = env.SOAK_MEMORY ?? "256M";
/** A wait longer than this is a hang (no wait here is a bet on the host's speed). */
const HANG_MS = 600_000;

const guestFiles = [
  ...(env.ARMBOX_SOAK_KERNEL ? ["--kernel", env.ARMBOX_SOAK_KERNEL] : []),
  ...(env.ARMBOX_SOAK_INITRD ? ["--initrd", env.ARMBOX_SOAK_INITRD] : []),
];

const mib = (kib: number | null) => (kib === null ? "?" : `${(kib / 1024).toFixed(0)} MiB`);

type Role = "boot" | "migration destination" | "restore (new process)";

/** One armbox process of the chain: its console (stdout), its messages, waits on both. */
class Vmm extends Child {
  rssStart: number | null = null;
  rssEnd: number | null = null;

  constructor(
    readonly index: number,
    readonly role: Role,
    readonly qmpPath: string,
    args: string[],
  ) {
    super(process.execPath, [ARMBOX, "run", ...args, "--qmp", `unix:${qmpPath}`]);
  }

  get name(): string {
    return `process ${this.index} (${this.role}, pid ${this.proc.pid})`;
  }

  /** The last counter value this process has printed in full, 0 if none. */
  lastCount(): number {
    const all = [...this.stdout.matchAll(/CNT=(\d+)\./g)];
    return all.length === 0 ? 0 : Number(all.at(-1)![1]);
  }

  /**
   * Resolves with `probe`'s value once it has one, checked now and on every output or
   * exit event; rejects when the process exits first (unless `exitOk`) or after HANG_MS.
   */
  wait<T>(what: string, probe: () => T | undefined, exitOk = false): Promise<T> {
    return this.until(probe, {
      ...(exitOk ? {} : { exited: () => this.failure(`exited before ${what}`) }),
      timeoutMs: HANG_MS,
      timedOut: () => this.failure(`no ${what} within ${HANG_MS / 1000} s`),
    });
  }

  waitConsole(re: RegExp, from = 0): Promise<RegExpExecArray> {
    return this.wait(`${re} on the console`, () => re.exec(this.stdout.slice(from)) ?? undefined);
  }
  waitStderr(re: RegExp): Promise<RegExpExecArray> {
    return this.wait(`${re} on stderr`, () => re.exec(this.stderr) ?? undefined);
  }
  waitCount(n: number): Promise<number> {
    return this.wait(`counter ${n}`, () => {
      const c = this.lastCount();
      return c >= n ? c : undefined;
    });
  }
  waitExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.wait("exit", () => this.exit ?? undefined, true);
  }

  failure(what: string): Error {
    const exit = this.exit ? `exit code ${this.exit.code} signal ${this.exit.signal}` : "running";
    return new Error(
      `${this.name}: ${what} (${exit})\n--- console (last 2000 chars)\n${this.stdout.slice(-2000)}\n` +
        `--- stderr (last 2000 chars)\n${this.stderr.slice(-2000)}`,
    );
  }

  /** A QMP connection, retried until the socket is up (the process listens soon after it starts). */
  async qmp(): Promise<QmpClient> {
    const t0 = performance.now();
    for (;;) {
      try {
        return await QmpClient.connect(`unix:${this.qmpPath}`);
      } catch (e) {
        if (this.exit) throw this.failure(`QMP connect: ${(e as Error).message}`);
        if (performance.now() - t0 > HANG_MS) throw this.failure("QMP socket never came up");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}

/** Runs a host tool (mkfs, debugfs, fsck) with a timeout; returns its output. */
function tool(file: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(file, args, { encoding: "utf8", timeout: HANG_MS, killSignal: "SIGKILL" });
  if (r.error) throw new Error(`${file}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Checks that `values` is exactly 1..values.length; returns the first problem, or null. */
function sequenceProblem(values: number[]): string | null {
  for (let i = 0; i < values.length; i++) {
    if (values[i] === i + 1) continue;
    const prev = i === 0 ? "the start" : String(values[i - 1]);
    return `after ${prev} comes ${values[i]} (${values[i]! <= (values[i - 1] ?? 0) ? "a repeat" : "a gap"})`;
  }
  return null;
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const soakRssStart = Math.round(process.memoryUsage().rss / 1024);
  const dir = mkdtempSync(join(tmpdir(), "armbox-soak-"));
  const chain: Vmm[] = [];
  const clients: QmpClient[] = [];
  let migrations = 0;
  let restoresSame = 0;
  let restoresNew = 0;
  const downtimes: number[] = [];
  const log = (s: string) =>
    console.log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${s}`);
  const connect = async (v: Vmm) => {
    const q = await v.qmp();
    clients.push(q);
    return q;
  };
  const machine = ["--deterministic", "--smp", SMP, "--memory", MEMORY];
  try {
    for (const t of ["mkfs.ext4", "debugfs", "fsck.ext4"])
      if (spawnSync(t, ["-V"]).error) throw new Error(`${t} not found (install e2fsprogs)`);
    const img = join(dir, "disk.img");
    const mk = tool("mkfs.ext4", ["-q", "-F", img, "16M"]);
    if (mk.status !== 0) throw new Error(`mkfs.ext4: ${mk.stderr}`);
    const drive = ["--drive", `file=${img}`];
    let qmpIndex = 0;
    const spawnVmm = (role: Role, args: string[]) => {
      const v = new Vmm(chain.length, role, join(dir, `qmp${qmpIndex++}.sock`), args);
      chain.push(v);
      return v;
    };

    // Boot, mount the disk, start the loop (in the background: the shell stays free; the
    // console echo is off so that nothing typed later can split a counter line).
    let cur = spawnVmm("boot", [...machine, ...guestFiles, ...drive]);
    await cur.waitConsole(/ARMBOX-SHELL/);
    cur.send(
      "stty -echo; dmesg -n 1; mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo MOUNTED-$((6*7))\n",
    );
    await cur.waitConsole(/MOUNTED-42/);
    cur.send(
      "(i=0; while [ ! -e /stop ]; do i=$((i+1)); echo $i >> /mnt/c; sync; echo CNT=$i.; usleep 100000; done; echo END=$i.; sync; umount /mnt && echo UMOUNTED-$((7*8))) &\n",
    );
    await cur.waitCount(1);
    cur.rssStart = rssKiB(cur.proc.pid);
    log(`booted ${cur.name}, counter running; RSS ${mib(cur.rssStart)}`);
    let q = await connect(cur);
    let mark = cur.lastCount();
    let restoreNext = true;

    while (migrations < MIGRATIONS) {
      mark = await cur.waitCount(mark + STEP);
      if (restoreNext) {
        // (a) snapshot and restore: the VM is stopped for both, so the disk (which a
        // snapshot does not hold) is exactly as the restored RAM expects it.
        const snap = join(dir, "vm.snap");
        await q.execute("stop");
        await q.execute("snapshot-save", { file: snap });
        const at = cur.lastCount();
        if ((restoresSame + restoresNew) % 2 === 0) {
          await q.execute("snapshot-load", { file: snap });
          await q.execute("cont");
          restoresSame++;
          log(`restore ${restoresSame + restoresNew} in the same process at counter ${at}`);
        } else {
          cur.rssEnd = rssKiB(cur.proc.pid);
          await q.execute("quit").catch(() => {});
          await q.close().catch(() => {});
          const e = await cur.waitExit();
          if (e.code !== 0) throw cur.failure("quit did not end armbox with status 0");
          cur = spawnVmm("restore (new process)", ["--restore", snap, ...drive]);
          q = await connect(cur);
          cur.rssStart = rssKiB(cur.proc.pid);
          restoresNew++;
          log(`restore ${restoresSame + restoresNew} in ${cur.name} at counter ${at}`);
        }
        await cur.waitCount(at + 1);
      } else {
        // (b) live migration to a new process.
        const port = await freePort();
        const dst = spawnVmm("migration destination", [
          ...["--incoming", `tcp:127.0.0.1:${port}`],
          ...machine,
          ...drive,
        ]);
        await dst.waitStderr(/waiting for an incoming migration/);
        cur.rssEnd = rssKiB(cur.proc.pid);
        await q.execute("migrate", { uri: `tcp:127.0.0.1:${port}` });
        // The source ends once the destination has confirmed; its QMP connection with it.
        for (;;) {
          let s: { status?: string };
          try {
            s = (await q.execute("query-migrate")) as { status?: string };
          } catch {
            break;
          }
          if (s.status === "completed") break;
          if (s.status === "failed" || s.status === "cancelled")
            throw cur.failure(`migration ${migrations + 1}: ${JSON.stringify(s)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        const done = await cur.wait(
          "migration completed",
          () => /migration completed[^\n]*/.exec(cur.stderr) ?? undefined,
          true,
        );
        const dt = /downtime ([\d.]+) ms/.exec(done[0]);
        if (dt) downtimes.push(Number(dt[1]));
        await q.close().catch(() => {});
        const e = await cur.waitExit();
        if (e.code !== 0) throw cur.failure("the migration source did not end with status 0");
        await dst.waitStderr(/incoming migration complete/);
        const at = cur.lastCount();
        cur = dst;
        cur.rssStart = rssKiB(cur.proc.pid);
        q = await connect(cur);
        migrations++;
        log(`migration ${migrations} to ${cur.name} at counter ${at}; RSS ${mib(cur.rssStart)}`);
        await cur.waitCount(at + 1);
      }
      restoreNext = !restoreNext;
      mark = cur.lastCount();
    }

    // Stop the loop, unmount, power off; then read the file from the image.
    mark = await cur.waitCount(mark + STEP);
    cur.send("touch /stop\n");
    await cur.waitConsole(/END=\d+\./);
    await cur.waitConsole(/UMOUNTED-56/);
    cur.rssEnd = rssKiB(cur.proc.pid);
    await q.close().catch(() => {});
    // With the echo off, busybox ash ends at the next line it reads; init then powers off.
    cur.send("poweroff -f\n");
    const e = await cur.waitExit();
    if (e.code !== 0) throw cur.failure("poweroff did not end armbox with status 0");

    // The verdict.
    const consoleText = chain.map((v) => v.stdout).join("");
    const counts = [...consoleText.matchAll(/CNT=(\d+)\./g)].map((m) => Number(m[1]));
    const end = Number(/END=(\d+)\./.exec(consoleText)![1]);
    const dump = tool("debugfs", ["-R", "cat /c", img]);
    const lines = dump.stdout.split("\n").filter((l) => l !== "");
    const fileValues = lines.map((l) => (/^\d+$/.test(l) ? Number(l) : Number.NaN));
    const fsck = tool("fsck.ext4", ["-n", "-f", img]);
    const problems: string[] = [];
    const cp = sequenceProblem(counts);
    if (cp) problems.push(`console counter: ${cp}`);
    if (counts.at(-1) !== end) problems.push(`console: last counter ${counts.at(-1)}, loop ended at ${end}`);
    const bad = lines.find((l) => !/^\d+$/.test(l));
    if (bad !== undefined) problems.push(`disk file: a line that is not a number: ${JSON.stringify(bad)}`);
    const fp = sequenceProblem(fileValues);
    if (fp) problems.push(`disk file: ${fp}`);
    if (fileValues.length !== counts.length)
      problems.push(`disk file holds ${fileValues.length} values, the console ${counts.length}`);
    if (fsck.status !== 0) problems.push(`fsck.ext4 -n -f: status ${fsck.status}: ${fsck.stdout.trim()}`);
    if (migrations !== MIGRATIONS) problems.push(`${migrations} migrations, not ${MIGRATIONS}`);

    // Figures.
    const soakRssEnd = Math.round(process.memoryUsage().rss / 1024);
    const wall = (performance.now() - t0) / 1000;
    console.log("\n--- soak summary");
    console.log(
      `guest                  ${guestFiles.length ? guestFiles.join(" ") : "the built-in Linux"}, --smp ${SMP} --memory ${MEMORY} --deterministic, ext4 on virtio-blk`,
    );
    console.log(`migrations             ${migrations}`);
    console.log(
      `restores               ${restoresSame + restoresNew} (${restoresSame} in the same process, ${restoresNew} in a new one)`,
    );
    console.log(`processes in the chain ${chain.length}`);
    console.log(`counter values checked ${counts.length} on the console, ${fileValues.length} in the file`);
    console.log(`first/last counter     ${counts[0]}/${counts.at(-1)}`);
    if (downtimes.length > 0)
      console.log(
        `migration downtime     min ${Math.min(...downtimes).toFixed(1)} ms, max ${Math.max(...downtimes).toFixed(1)} ms`,
      );
    const roles: Role[] = ["boot", "migration destination", "restore (new process)"];
    for (const role of roles) {
      const vs = chain.filter((v) => v.role === role);
      if (vs.length === 0) continue;
      const f = vs[0]!;
      const l = vs.at(-1)!;
      const starts = vs.map((v) => v.rssStart ?? 0);
      const ends = vs.map((v) => v.rssEnd ?? 0);
      console.log(
        `RSS ${role.padEnd(22)} first: ${mib(f.rssStart)} -> ${mib(f.rssEnd)}; last: ${mib(l.rssStart)} -> ${mib(l.rssEnd)}; ` +
          `over ${vs.length}: start ${mib(Math.min(...starts))}-${mib(Math.max(...starts))}, end ${mib(Math.min(...ends))}-${mib(Math.max(...ends))}`,
      );
    }
    console.log(`RSS soak (this process) ${mib(soakRssStart)} -> ${mib(soakRssEnd)}`);
    console.log(`wall time              ${wall.toFixed(0)} s`);
    if (problems.length > 0) {
      for (const p of problems) console.log(`FAIL: ${p}`);
      return 1;
    }
    console.log("OK: no gap, no repeat, on the console and on the disk");
    return 0;
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    for (const v of chain) kill(v.proc);
    if (env.SOAK_KEEP === "1") {
      for (const v of chain)
        writeFileSync(join(dir, `process-${v.index}.log`), `${v.stdout}\n--- stderr\n${v.stderr}`);
      console.log(`kept ${dir}`);
    } else rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`soak failed: ${e.message}`);
    process.exit(1);
  },
);
