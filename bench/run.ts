/**
 * `npm run bench`: speed figures, printed, never asserted (tests must not flake on a
 * shared machine). Compares `armbox user` with `qemu-aarch64` on the same CPU-bound
 * program (guests/user/bench.c, -O2 static) in the same run.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";
import { runCrcBench } from "./crc.ts";
import { runInterpreterLoopBench } from "./interpreter-loop.ts";
import { runLinuxBootBench } from "./linux-boot.ts";
import { runMigrationBench } from "./migration.ts";
import { runRepresentationBench } from "./representation.ts";
import { runSnapshotBench } from "./snapshot.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const BENCH = `${root}guests/user/bin/bench`;

interface JitReport {
  blocks: number;
  instructions: number;
  inlineInstructions: number;
  modules: number;
  compileMs: number;
  fraction: number;
}

function line(name: string, value: string): void {
  console.log(`${name.padEnd(44)} ${value}`);
}

function armboxUser(accel = "interp"): { ms: number; insns: bigint; stdout: string; jit?: JitReport } {
  // Bundled with esbuild and run by plain node: measured 1.6x faster than under the tsx
  // loader (source-map and per-module transform overheads).
  const out = join(mkdtempSync(join(tmpdir(), "armbox-bench-")), "child.mjs");
  buildSync({
    entryPoints: [fileURLToPath(new URL("./user-bench-child.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: out,
    logLevel: "error",
  });
  const r = spawnSync(process.execPath, [out, BENCH, accel], {
    encoding: "utf8",
    cwd: root,
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  const o = JSON.parse(r.stdout) as { ms: number; insns: string; stdout: string; jit?: JitReport };
  return { ms: o.ms, insns: BigInt(o.insns), stdout: o.stdout, ...(o.jit ? { jit: o.jit } : {}) };
}

function qemuUser(): { ms: number; stdout: string } | null {
  const probe = spawnSync("qemu-aarch64", ["--version"]);
  if (probe.status !== 0) return null;
  const t0 = performance.now();
  const r = spawnSync("qemu-aarch64", [BENCH], { encoding: "utf8" });
  return { ms: performance.now() - t0, stdout: r.stdout };
}

// The guest program first, in a fresh process: the micro-benchmarks' type feedback
// would otherwise slow the interpreter's hot loop.
if (existsSync(BENCH)) {
  console.log("== guests/user/bench (gcc -O2 -static): armbox user vs qemu-aarch64");
  // Three runs, each in a fresh process; the best and the median are printed (a shared
  // host is noisy: on this 2-vCPU VM one core runs the same program up to 1.4x slower).
  const runs = [armboxUser(), armboxUser(), armboxUser()].sort((x, y) => x.ms - y.ms);
  const a = runs[0]!;
  const mips = Number(a.insns) / a.ms / 1000;
  const median = Number(runs[1]!.insns) / runs[1]!.ms / 1000;
  line(
    "armbox user",
    `${(a.ms / 1000).toFixed(2)} s, ${a.insns} instructions, ${mips.toFixed(1)} guest MIPS (median of 3: ${median.toFixed(1)})`,
  );
  const jruns = [armboxUser("jit"), armboxUser("jit"), armboxUser("jit")].sort((x, y) => x.ms - y.ms);
  const j = jruns[0]!;
  line(
    "armbox user --accel jit",
    `${(j.ms / 1000).toFixed(2)} s, ${(Number(j.insns) / j.ms / 1000).toFixed(1)} guest MIPS (median of 3: ${(Number(jruns[1]!.insns) / jruns[1]!.ms / 1000).toFixed(1)})`,
  );
  if (j.jit)
    line(
      "  translator",
      `${j.jit.blocks} blocks, ${j.jit.instructions} instructions (${j.jit.inlineInstructions} inline) in ${j.jit.modules} modules, compiled in ${j.jit.compileMs.toFixed(1)} ms; ${(j.jit.fraction * 100).toFixed(1)}% of instructions ran translated`,
    );
  const q = qemuUser();
  if (q) {
    line("qemu-aarch64", `${(q.ms / 1000).toFixed(2)} s`);
    line("time ratio armbox interp / qemu", `${(a.ms / q.ms).toFixed(2)}x`);
    line("time ratio armbox jit / qemu (target <= 3)", `${(j.ms / q.ms).toFixed(2)}x`);
    line("same output", String(q.stdout === a.stdout && q.stdout === j.stdout));
  } else line("qemu-aarch64", "not installed (apt-get install qemu-user)");
}

console.log("== Linux boot (Debian arm64 kernel + test initramfs): armbox vs qemu-system-aarch64");
await runLinuxBootBench(line);

console.log("== register representation (docs/STATE.md)");
for (const [k, v] of Object.entries(runRepresentationBench())) line(k, `${v.toFixed(1)} M ops/s`);

console.log("== interpreter");
line("tight integer loop", `${runInterpreterLoopBench().mips.toFixed(1)} guest MIPS`);
line(
  "tight integer loop, translated (target >= 500)",
  `${runInterpreterLoopBench(200_000_000, true).mips.toFixed(1)} guest MIPS`,
);

console.log("== checksums (CRC-32C of snapshot sections and migration frames)");
runCrcBench();

console.log("== snapshots (idle 4-vCPU guest)");
await runSnapshotBench();

console.log("== live migration (loopback TCP, destination in a child process)");
await runMigrationBench();
