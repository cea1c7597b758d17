/**
 * Live migration of a running Linux: Debian's kernel at --smp 4 with cpu2 offline runs a
 * shell loop printing a counter; QMP migrate over TCP moves it to a destination process
 * (`armbox run --incoming`), where the count continues with no gap and no repeat and cpu2
 * is still offline (and its vCPU STOPPED).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import { until } from "./support/events.ts";
import { boot, engine, LinuxBoot, requireFiles, skipUnlessCi, testTimeoutMs } from "./support/linux.ts";
import { freePort } from "./support/net.ts";

const skip = engine === "qemu" ? "armbox only" : skipUnlessCi();

const counts = (text: string) => [...text.matchAll(/(?:^|\n)C-(\d+)(?=\r?\n)/g)].map((m) => Number(m[1]));

test("Linux: live migration mid counter loop, cpu2 offline: the count continues exactly on the destination", {
  skip,
  timeout: testTimeoutMs * 2,
}, async (t) => {
  requireFiles();
  const dir = mkdtempSync(join(tmpdir(), "armbox-linux-mig-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, "src.sock");
  const dsock = join(dir, "dst.sock");
  const port = await freePort();
  // The destination starts once the source has booted, shortly before the migrate: its
  // boot deadline and its limit on a silent console count from its start, and it prints
  // nothing until the VM arrives (started with the source, it failed on a loaded host:
  // the source's boot alone outlasted the 120 s stall limit).
  const started: { dst: LinuxBoot | null } = { dst: null };
  const startDestination = async (): Promise<LinuxBoot> => {
    const d = new LinuxBoot({
      smp: 4,
      append: "",
      // The source's machine configuration (the boots run in deterministic time).
      runArgs: [
        ...["--incoming", `tcp:127.0.0.1:${port}`, "--qmp", `unix:${dsock}`],
        ...["--smp", "4", "--memory", "512M", "--deterministic"],
      ],
      name: "mig-dst",
    });
    started.dst = d;
    await until(
      () => d.exit !== null || /waiting for an incoming migration/.test(d.stderr),
      "the destination listening",
    );
    assert.equal(d.exit, null, d.stderr);
    return d;
  };
  try {
    let srcText = "";
    await boot(
      {
        smp: 4,
        append: "console=ttyAMA0 panic=-1 armbox.test=shell",
        args: ["--qmp", `unix:${sock}`],
        name: "mig-src",
      },
      async (b) => {
        await b.waitFor("ARMBOX-SHELL");
        await startDestination();
        b.send("echo 0 > /sys/devices/system/cpu/cpu2/online; echo OFF-$((40+2))\n");
        await b.waitFor(/\nOFF-42/);
        // A bounded loop in the foreground: the shell reads the next command once it ends.
        b.send("i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo C-$i; usleep 20000; done\n");
        await b.waitFor(/\nC-30\r?\n/);
        const q = await QmpClient.connect(`unix:${sock}`);
        try {
          await q.execute("migrate", { uri: `tcp:127.0.0.1:${port}` });
          for (;;) {
            const s = (await q.execute("query-migrate")) as { status?: string };
            if (s.status === "completed") break;
            assert.notEqual(s.status, "failed", JSON.stringify(s));
            await new Promise((r) => setTimeout(r, 200));
          }
          // As QEMU's: the source stays, paused in postmigrate, its QMP answering until quit.
          assert.deepEqual(await q.execute("query-status"), {
            running: false,
            singlestep: false,
            status: "postmigrate",
          });
          await q.execute("quit");
          assert.equal((await b.waitExit()).code, 0, b.stderr);
        } finally {
          await q.close().catch(() => {});
        }
        srcText = b.transcript;
        return "stop";
      },
    );
    // The destination runs on to the end of the loop; then look.
    const dst = started.dst;
    assert.ok(dst, "the destination was started");
    const last = counts(srcText).at(-1)!;
    assert.ok(last < 270, `the source counted to ${last} before it stopped`);
    await dst.waitFor(/\nC-300\r?\n/);
    const q = await QmpClient.connect(`unix:${dsock}`);
    try {
      const cpus = (await q.execute("query-cpus-fast")) as { "mp-state": string }[];
      assert.equal(cpus[2]?.["mp-state"], "STOPPED");
    } finally {
      await q.close();
    }
    dst.send("cat /sys/devices/system/cpu/online; echo D-$((9*9))\n");
    await dst.waitFor(/\nD-81/);
    assert.match(dst.transcript, /\n0-1,3\r?\n/, "cpu2 still offline on the destination");
    // The destination's console continues the source's byte stream (a line may straddle).
    const all = counts(srcText + dst.transcript);
    assert.ok(all.length > 60, `${all.length} counts`);
    for (let i = 1; i < all.length; i++)
      assert.equal(all[i], all[i - 1]! + 1, `count ${all[i - 1]} then ${all[i]}`);
    assert.equal(all[0], 1);
    dst.send("poweroff -f\n");
    const exit = await dst.waitExit();
    assert.equal(exit.code, 0, dst.stderr);
  } finally {
    await started.dst?.stop();
  }
});
