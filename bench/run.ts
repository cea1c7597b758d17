/**
 * `npm run bench`: speed figures, printed, never asserted (tests must not flake on a
 * shared machine). Compares `armbox user` with `qemu-aarch64` on the same CPU-bound
 * program (guests/user/bench.c, -O2 static) in the same run.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { UserProcess } from "../src/user/process.ts";
import { runInterpreterLoopBench } from "./interpreter-loop.ts";
import { runRepresentationBench } from "./representation.ts";
import { runSnapshotBench } from "./snapshot.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const BENCH = `${root}guests/user/bin/bench`;

function line(name: string, value: string): void {
  console.log(`${name.padEnd(44)} ${value}`);
}

function armboxUser(): { ms: number; insns: bigint; stdout: string } {
  let stdout = "";
  const p = new UserProcess({
    stdout: {
      write: (b: Uint8Array) => {
        stdout += Buffer.from(b).toString();
      },
    },
  });
  p.exec(BENCH, ["bench"], []);
  const t0 = performance.now();
  p.run();
  const ms = performance.now() - t0;
  return { ms, insns: p.cpu.instructionCount, stdout };
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
  const a = armboxUser();
  const mips = Number(a.insns) / a.ms / 1000;
  line(
    "armbox user",
    `${(a.ms / 1000).toFixed(2)} s, ${a.insns} instructions, ${mips.toFixed(1)} guest MIPS`,
  );
  const q = qemuUser();
  if (q) {
    line("qemu-aarch64", `${(q.ms / 1000).toFixed(2)} s`);
    line("time ratio armbox / qemu", `${(a.ms / q.ms).toFixed(2)}x`);
    line("same output", String(q.stdout === a.stdout));
  } else line("qemu-aarch64", "not installed (apt-get install qemu-user)");
}

console.log("== register representation (docs/STATE.md)");
for (const [k, v] of Object.entries(runRepresentationBench())) line(k, `${v.toFixed(1)} M ops/s`);

console.log("== interpreter");
line("tight integer loop", `${runInterpreterLoopBench().mips.toFixed(1)} guest MIPS`);

console.log("== snapshots (idle 4-vCPU guest)");
await runSnapshotBench();
