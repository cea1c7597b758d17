/**
 * QMP end to end: real machines run in process by LocalVmmHost (what `armbox run --qmp`
 * uses), driven over a Unix socket: stop/cont with their events, query-status,
 * query-cpus-fast with each vCPU's MP state, snapshot-save/snapshot-load (state digest
 * identical after the load; corrupt files refused by section name with the VM running on),
 * a bare-metal guest loaded from a snapshot into a VMM started for another configuration,
 * and system_powerdown. That the VM ran is awaited as a register changing (until), never
 * assumed after a sleep; the sleeps left only give a stopped VM the chance to move.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type MachineConfig, VirtMachine } from "../src/machine/virt.ts";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import { LocalVmmHost } from "../src/vmm/qmp/host.ts";
import { QmpServer } from "../src/vmm/qmp/server.ts";
import type { RunResult } from "../src/vmm/runner.ts";
import { stateDigest } from "../src/vmm/snapshot/machine-state.ts";
import { until, WAIT_MS } from "./support/events.ts";

const dir = mkdtempSync(join(tmpdir(), "armbox-qmp-e2e-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const BIN = new URL("../guests/baremetal/bin/", import.meta.url);

/**
 * A raw-binary guest that never ends: vCPU 0 CPU_ONs vCPU 1 (PSCI 0xC4000003 over HVC),
 * keeps its result in x21 and counts in x19; vCPU 1 counts in x20; vCPUs 2 and 3 stay off.
 * (aarch64-linux-gnu-as of:  movz x0,#3; movk x0,#0xc400,lsl #16; mov x1,#1; adr x2,sec;
 *  mov x3,#0; hvc #0; mov x21,x0; 1: add x19,x19,#1; b 1b; sec: add x20,x20,#1; b sec)
 */
const SPIN = new Uint8Array(
  new Uint32Array([
    0xd2800060, 0xf2b88000, 0xd2800021, 0x100000c2, 0xd2800003, 0xd4000002, 0xaa0003f5, 0x91000673,
    0x17ffffff, 0x91000694, 0x17ffffff,
  ]).buffer,
);

interface Rig {
  host: LocalVmmHost;
  server: QmpServer;
  client: QmpClient;
  done: Promise<RunResult>;
  console: () => string;
  close: () => Promise<void>;
}

async function rig(kernel: Uint8Array | null, cfg: Partial<MachineConfig> & { smp: number }): Promise<Rig> {
  let text = "";
  const output = (b: Uint8Array) => {
    text += new TextDecoder().decode(b);
  };
  const base = { memory: 32 << 20, deterministic: false, ...cfg, serialOutput: output };
  const machine = new VirtMachine(kernel ? { ...base, kernel } : base);
  const host = new LocalVmmHost({
    machine,
    run: { output, diag: () => {} },
    makeMachine: (c) => new VirtMachine({ ...c, serialOutput: output }),
    startPaused: true,
  });
  const done = host.run();
  const path = join(dir, `vm${Math.random().toString(36).slice(2)}.sock`);
  const server = await QmpServer.listen(`unix:${path}`, host);
  const client = await QmpClient.connect(path);
  return {
    host,
    server,
    client,
    done,
    console: () => text,
    close: async () => {
      await client.close();
      if (host.runState() !== "shutdown") host.quit(0);
      await done;
      await server.close();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const x = (h: LocalVmmHost, cpu: number, n: number) => h.machine!.vcpus[cpu]!.cpu.getX(n);
const mpStates = async (c: QmpClient) =>
  ((await c.execute("query-cpus-fast")) as { "mp-state": string }[]).map((v) => v["mp-state"]);

for (const deterministic of [true, false]) {
  test(`stop/cont/query-cpus-fast/snapshot-save/snapshot-load on a running 4-vCPU VM (${deterministic ? "deterministic" : "real-time"} clock)`, async () => {
    const r = await rig(SPIN, { smp: 4, deterministic });
    const { client: c, host } = r;
    try {
      assert.deepEqual(await c.execute("query-status"), {
        running: false,
        singlestep: false,
        status: "prelaunch",
      });
      const cpus = (await c.execute("query-cpus-fast")) as Record<string, unknown>[];
      assert.equal(cpus.length, 4);
      assert.deepEqual(cpus[2], {
        "cpu-index": 2,
        "qom-path": "/machine/unattached/device[2]",
        "thread-id": process.pid,
        props: { "core-id": 2, "thread-id": 0, "cluster-id": 0, "socket-id": 0 },
        target: "aarch64",
        "mp-state": "STOPPED",
      });
      assert.deepEqual(await mpStates(c), ["RUNNABLE", "STOPPED", "STOPPED", "STOPPED"]);

      // A snapshot taken before the first instruction: no STOP/RESUME (the VM is not running).
      const boot = join(dir, `boot-${deterministic}.snap`);
      assert.deepEqual(await c.execute("snapshot-save", { file: boot, tag: "boot" }), {});

      assert.deepEqual(await c.execute("cont"), {});
      await c.waitEvent("RESUME");
      assert.equal(((await c.execute("query-status")) as { status: string }).status, "running");
      await until(() => x(host, 1, 20) > 0n, "vCPU 1 counting (started by CPU_ON)");
      assert.deepEqual(await mpStates(c), ["RUNNABLE", "RUNNABLE", "STOPPED", "STOPPED"]);

      await c.execute("stop");
      await c.waitEvent("STOP");
      assert.deepEqual(await c.execute("query-status"), {
        running: false,
        singlestep: false,
        status: "paused",
      });
      const a19 = x(host, 0, 19);
      const a20 = x(host, 1, 20);
      assert.ok(a19 > 0n && a20 > 0n, "both vCPUs ran");
      assert.equal(x(host, 0, 21), 0n, "CPU_ON returned SUCCESS");
      await sleep(40);
      assert.equal(x(host, 0, 19), a19, "stopped means stopped");

      const mid = join(dir, `mid-${deterministic}.snap`);
      await c.execute("snapshot-save", { file: mid });
      const digestAtSave = deterministic ? stateDigest(host.machine!) : "";
      assert.equal(c.events.length, 0, "no events for a save while stopped");

      await c.execute("cont");
      await c.waitEvent("RESUME");
      await until(() => x(host, 0, 19) > a19, "vCPU 0 counting on after cont");
      // A save while running: the VM stops for the capture and runs on (STOP, RESUME).
      await c.execute("snapshot-save", { file: join(dir, `running-${deterministic}.snap`), compress: false });
      await c.waitEvent("STOP");
      await c.waitEvent("RESUME");
      assert.equal(((await c.execute("query-status")) as { status: string }).status, "running");
      const atSave = x(host, 0, 19);
      await until(() => x(host, 0, 19) > atSave, "vCPU 0 counting on after the save");
      await c.execute("stop");
      await c.waitEvent("STOP");
      assert.ok(x(host, 0, 19) > a19);

      // Load the mid-run snapshot while stopped: the VM stays stopped, with the saved state.
      const before = host.machine;
      assert.deepEqual(await c.execute("snapshot-load", { file: mid }), {});
      assert.notEqual(host.machine, before, "a fresh machine");
      assert.equal(x(host, 0, 19), a19);
      assert.equal(x(host, 1, 20), a20);
      if (deterministic) assert.equal(stateDigest(host.machine!), digestAtSave);
      assert.deepEqual(await mpStates(c), ["RUNNABLE", "RUNNABLE", "STOPPED", "STOPPED"]);
      assert.equal(((await c.execute("query-status")) as { status: string }).status, "paused");
      await c.execute("cont");
      await c.waitEvent("RESUME");
      await until(() => x(host, 0, 19) > a19 && x(host, 1, 20) > a20, "the loaded VM running");

      // Load while running: STOP, RESUME, and it runs on from the boot state.
      await c.execute("snapshot-load", { file: boot, tag: "boot" });
      await c.waitEvent("STOP");
      await c.waitEvent("RESUME");
      assert.deepEqual(await mpStates(c).then((s) => s.slice(2)), ["STOPPED", "STOPPED"]);
      await assert.rejects(
        c.execute("snapshot-load", { file: boot, tag: "other" }),
        /holds snapshot 'boot', not 'other'/,
      );

      // Corrupt and truncated files are refused, naming what is wrong; the VM runs on.
      const running = host.machine;
      const bytes = readFileSync(mid);
      const corrupt = new Uint8Array(bytes);
      corrupt[corrupt.length - 100]! ^= 0x40;
      writeFileSync(join(dir, "corrupt.snap"), corrupt);
      await assert.rejects(c.execute("snapshot-load", { file: join(dir, "corrupt.snap") }), /section/);
      writeFileSync(join(dir, "short.snap"), bytes.subarray(0, Math.floor(bytes.length / 2)));
      await assert.rejects(
        c.execute("snapshot-load", { file: join(dir, "short.snap") }),
        /snapshot-load: .*short\.snap: /,
      );
      await assert.rejects(
        c.execute("snapshot-load", { file: join(dir, "absent.snap") }),
        /absent\.snap: no such file/,
      );
      assert.equal(host.machine, running);
      assert.equal(((await c.execute("query-status")) as { status: string }).status, "running");
      const n = x(host, 0, 19);
      await until(() => x(host, 0, 19) > n, "still running after the refused loads");

      // system_powerdown: POWERDOWN, SHUTDOWN, and the run ends with status 0.
      await c.execute("system_powerdown");
      await c.waitEvent("POWERDOWN", WAIT_MS);
      assert.deepEqual((await c.waitEvent("SHUTDOWN")).data, { guest: false, reason: "host-ui" });
      assert.deepEqual(await r.done, { kind: "shutdown", code: 0 });
      assert.equal(((await c.execute("query-status")) as { status: string }).status, "shutdown");
    } finally {
      await r.close();
    }
  });
}

test("a bare-metal guest saved at boot and loaded into a VMM started with another configuration runs to RESULT: PASS", async () => {
  const kernel = new Uint8Array(readFileSync(new URL("timer.elf", BIN)));
  const first = await rig(kernel, { smp: 4 });
  const snap = join(dir, "timer-boot.snap");
  try {
    await first.client.execute("snapshot-save", { file: snap });
    await first.client.execute("cont");
    const ev = await first.client.waitEvent("SHUTDOWN", WAIT_MS);
    assert.deepEqual(ev.data, { guest: true, reason: "guest-shutdown" });
    assert.deepEqual(await first.done, { kind: "shutdown", code: 0 });
    assert.match(first.console(), /RESULT: PASS/);
  } finally {
    await first.close();
  }

  // An empty 1-vCPU machine, then the 4-vCPU snapshot: the machine comes from its header.
  const second = await rig(null, { smp: 1, memory: 16 << 20 });
  try {
    await second.client.execute("snapshot-load", { file: snap });
    assert.equal(second.host.machine!.vcpus.length, 4);
    assert.deepEqual(await mpStates(second.client), ["RUNNABLE", "STOPPED", "STOPPED", "STOPPED"]);
    assert.equal(((await second.client.execute("query-status")) as { status: string }).status, "prelaunch");
    await second.client.execute("cont");
    assert.deepEqual((await second.client.waitEvent("SHUTDOWN", WAIT_MS)).data, {
      guest: true,
      reason: "guest-shutdown",
    });
    assert.deepEqual(await second.done, { kind: "shutdown", code: 0 });
    assert.match(second.console(), /RESULT: PASS/);
    assert.doesNotMatch(second.console(), /FAIL/);
  } finally {
    await second.close();
  }
});

test("quit: the reply arrives, then SHUTDOWN host-qmp-quit, and the run ends with status 0", async () => {
  const r = await rig(SPIN, { smp: 2 });
  try {
    await r.client.execute("cont");
    await sleep(20);
    assert.deepEqual(await r.client.execute("quit"), {});
    assert.deepEqual((await r.client.waitEvent("SHUTDOWN")).data, { guest: false, reason: "host-qmp-quit" });
    assert.deepEqual(await r.done, { kind: "quit", code: 0 });
  } finally {
    await r.close();
  }
});

test("incoming: inmigrate until the machine arrives; `stop` meanwhile keeps it stopped, as QEMU's autostart", async () => {
  for (const [stopFirst, sourceRunning, want] of [
    [false, true, "running"],
    [true, true, "paused"],
    [false, false, "paused"],
    [false, true, "failed"],
  ] as const) {
    const host = new LocalVmmHost({
      machine: null,
      run: { output: () => {}, diag: () => {} },
      makeMachine: (c) => new VirtMachine(c),
    });
    const done = host.run();
    const path = join(dir, `in${Math.random().toString(36).slice(2)}.sock`);
    const server = await QmpServer.listen(`unix:${path}`, host);
    const c = await QmpClient.connect(path);
    try {
      assert.deepEqual(await c.execute("query-status"), {
        running: false,
        singlestep: false,
        status: "inmigrate",
      });
      assert.deepEqual(await c.execute("query-cpus-fast"), []);
      await assert.rejects(
        c.execute("snapshot-load", { file: join(dir, "x.snap") }),
        /waiting for an incoming migration/,
      );
      if (stopFirst) await c.execute("stop");
      if (want === "failed") {
        host.abort({ kind: "error", code: 1, message: "incoming migration failed" });
        assert.deepEqual(await done, { kind: "error", code: 1, message: "incoming migration failed" });
        assert.equal(((await c.execute("query-status")) as { status: string }).status, "shutdown");
        continue;
      }
      host.start(new VirtMachine({ kernel: SPIN, smp: 2, memory: 16 << 20 }), sourceRunning);
      assert.equal(((await c.execute("query-status")) as { status: string }).status, want);
      assert.equal((await mpStates(c))[0], "RUNNABLE");
      if (want === "paused") {
        await c.execute("cont");
        await c.waitEvent("RESUME");
        await until(() => x(host, 0, 19) > 0n, "the arrived machine running after cont");
      }
    } finally {
      await c.close();
      host.quit(0);
      await done;
      await server.close();
    }
  }
});
