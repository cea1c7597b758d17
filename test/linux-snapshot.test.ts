/**
 * A running Linux with a CPU hot-unplugged keeps that state across a snapshot: Debian's
 * kernel at --smp 4 takes cpu2 offline through sysfs; its vCPU's MP state (QMP
 * query-cpus-fast, i.e. the Vcpu API) is STOPPED; a QMP snapshot-save restored in a fresh
 * process shows /sys/devices/system/cpu/online = 0-1,3, the shell still answers, and
 * cpu2 comes back online there. Typed commands print computed markers ($((…))) so the
 * console's echo of the command line never matches them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import {
  boot,
  engine,
  requireFiles,
  restoreWithCpu2Offline,
  skipUnlessCi,
  testTimeoutMs,
} from "./support/linux.ts";

const skip = engine === "qemu" ? "armbox only (QMP snapshot of a running Linux)" : skipUnlessCi();

interface CpuInfo {
  "cpu-index": number;
  "mp-state": string;
}

test("Linux: cpu2 offline, snapshot over QMP, restored in a fresh process: still offline, shell alive, cpu2 back", {
  skip,
  timeout: testTimeoutMs * 2,
}, async (t) => {
  requireFiles();
  const dir = mkdtempSync(join(tmpdir(), "armbox-linux-snap-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, "qmp.sock");
  const snap = join(dir, "linux.snap");
  await boot(
    {
      smp: 4,
      append: "console=ttyAMA0 panic=-1 armbox.test=shell",
      args: ["--qmp", `unix:${sock}`],
      name: "snap-src",
    },
    async (b) => {
      await b.waitFor("ARMBOX-SHELL");
      b.send(
        "echo 0 > /sys/devices/system/cpu/cpu2/online; cat /sys/devices/system/cpu/online; echo OFF-$((40+2))\n",
      );
      await b.waitFor(/\nOFF-42/);
      assert.match(b.transcript, /\n0-1,3\r?\n/);
      const q = await QmpClient.connect(`unix:${sock}`);
      try {
        const cpus = (await q.execute("query-cpus-fast")) as CpuInfo[];
        assert.deepEqual(
          cpus.map((c) => c["mp-state"]),
          ["RUNNABLE", "RUNNABLE", "STOPPED", "RUNNABLE"],
          "cpu2's vCPU is powered off (PSCI CPU_OFF)",
        );
        await q.execute("snapshot-save", { file: snap });
        await q.execute("quit").catch(() => {});
      } finally {
        await q.close();
      }
      return "stop";
    },
  );
  await restoreWithCpu2Offline(snap, "snap-dst");
});
