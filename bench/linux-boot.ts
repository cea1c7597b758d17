/**
 * Linux boot time to /init (the test initramfs prints ARMBOX-INIT-READY first thing):
 * Debian's arm64 kernel under `armbox run` and under qemu-system-aarch64 -M
 * virt,gic-version=3 -cpu cortex-a57, same files, same command line, in the same run.
 * Files: ARMBOX_LINUX_KERNEL / ARMBOX_LINUX_INITRD or the cache tools/linux/ fills.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { initrdPath, kernelPath } from "../tools/linux/paths.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const kernel = kernelPath;
const initrd = initrdPath;
const APPEND = "console=ttyAMA0 panic=-1";
const MARK = "ARMBOX-INIT-READY";
const LIMIT_MS = 15 * 60_000;

/** Starts `cmd`, resolves with the ms until MARK appears on its output, then kills it. */
function timeToInit(cmd: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let seen = "";
    let done = false;
    const finish = (v: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), LIMIT_MS);
    child.stdout.on("data", (d: Buffer) => {
      seen = (seen + d.toString("latin1")).slice(-4096);
      if (seen.includes(MARK)) finish(performance.now() - t0);
    });
    child.on("exit", () => finish(null));
    child.on("error", () => finish(null));
  });
}

export async function runLinuxBootBench(line: (name: string, value: string) => void): Promise<void> {
  if (!existsSync(kernel) || !existsSync(initrd)) {
    line(
      "Linux boot",
      `skipped: no ${kernel} / ${initrd} (bash tools/linux/fetch-debian.sh; make-initramfs.sh)`,
    );
    return;
  }
  for (const smp of [1, 4]) {
    const common = [
      "-kernel",
      kernel,
      "-initrd",
      initrd,
      "-append",
      APPEND,
      "-smp",
      String(smp),
      "-m",
      "512M",
    ];
    const q = await timeToInit("qemu-system-aarch64", [
      "-M",
      "virt,gic-version=3",
      "-cpu",
      "cortex-a57",
      "-nographic",
      "-no-reboot",
      ...common,
    ]);
    const armbox = (accel: string) =>
      timeToInit(process.execPath, [
        path.join(root, "bin/armbox.js"),
        "run",
        "--accel",
        accel,
        ...["--kernel", kernel, "--initrd", initrd, "--append", APPEND],
        ...["--smp", String(smp), "--memory", "512M"],
      ]);
    const a = await armbox("interp");
    const j = await armbox("jit");
    const s = (ms: number | null) => (ms === null ? "did not reach /init" : `${(ms / 1000).toFixed(1)} s`);
    const cpus = `${smp} vCPU${smp > 1 ? "s" : ""}`;
    line(`Linux to /init, ${cpus}: armbox --accel interp`, s(a));
    line(`Linux to /init, ${cpus}: armbox --accel jit`, s(j));
    line(`Linux to /init, ${cpus}: qemu-system-aarch64`, s(q));
    if (a !== null && q !== null) line(`  ratio armbox interp / qemu`, `${(a / q).toFixed(1)}x`);
    if (j !== null && q !== null) line(`  ratio armbox jit / qemu (target <= 2)`, `${(j / q).toFixed(1)}x`);
  }
}
