/**
 * Interop: armbox's QMP server driven by an existing QMP client library from npm,
 * node-qemu's QMPClient (typed QMP over a Unix socket or TCP; it negotiates capabilities
 * itself, matches replies by order, and emits events by name), against a real 4-vCPU
 * machine run in process: status, stop/cont with STOP/RESUME events, query-cpus-fast,
 * snapshot-save/-load, migration commands with a fake controller, error classes, quit.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { QMPClient, QmpCommandError } from "node-qemu";
import { VirtMachine } from "../src/machine/virt.ts";
import { VERSION } from "../src/version.ts";
import type {
  MigrationController,
  MigrationInfo,
  MigrationParameters,
  MigrationStatus,
} from "../src/vmm/migration/controller.ts";
import { LocalVmmHost } from "../src/vmm/qmp/host.ts";
import { QmpServer } from "../src/vmm/qmp/server.ts";
import { WAIT_MS } from "./support/events.ts";

const dir = mkdtempSync(join(tmpdir(), "armbox-qmp-interop-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** vCPU 0 counts in x19 for ever (add x19, x19, #1; b .-4). */
const SPIN = new Uint8Array(new Uint32Array([0x91000673, 0x17ffffff]).buffer);

class FakeMigration implements MigrationController {
  parameters: MigrationParameters = { "downtime-limit": 300, "max-bandwidth": 0 };
  status: MigrationStatus = "none";
  onStatus: ((s: MigrationStatus) => void) | null = null;
  start(_uri: string): void {
    this.status = "active";
    this.onStatus?.("active");
  }
  cancel(): void {
    this.status = "cancelled";
    this.onStatus?.("cancelled");
  }
  info(): MigrationInfo {
    return { status: this.status };
  }
  setParameters(p: Partial<MigrationParameters>): void {
    Object.assign(this.parameters, p);
  }
}

function makeHost() {
  const machine = new VirtMachine({ kernel: SPIN, smp: 4, memory: 32 << 20 });
  const host = new LocalVmmHost({
    machine,
    run: { output: () => {}, diag: () => {} },
    makeMachine: (c) => new VirtMachine(c),
    makeMigration: () => new FakeMigration(),
  });
  return { host, done: host.run() };
}

function nextEvent(c: QMPClient, name: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${name} event`)), WAIT_MS);
    c.once(name as "STOP", (data: unknown) => {
      clearTimeout(t);
      resolve(data);
    });
  });
}

for (const transport of ["unix", "tcp"] as const) {
  test(`node-qemu's QMPClient drives armbox over ${transport}`, async () => {
    const { host, done } = makeHost();
    const server = await QmpServer.listen(
      transport === "unix" ? `unix:${join(dir, "interop.sock")}` : "tcp:127.0.0.1:0",
      host,
    );
    const client = new QMPClient(
      server.address.kind === "unix"
        ? { socketPath: server.address.path }
        : { host: server.address.host, port: server.address.port },
    );
    try {
      await client.connect();
      const status = await client.queryStatus();
      assert.equal(status.status, "running");
      assert.equal(status.running, true);

      const stopped = nextEvent(client, "STOP");
      await client.stop();
      await stopped;
      assert.equal((await client.queryStatus()).status, "paused");

      const cpus = await client.queryCpusFast();
      assert.equal(cpus.length, 4);
      assert.equal(cpus[0]!["qom-path"], "/machine/unattached/device[0]");
      assert.equal(cpus[3]!.target, "aarch64");
      assert.deepEqual(
        cpus.map((c) => (c as unknown as Record<string, unknown>)["mp-state"]),
        ["RUNNABLE", "STOPPED", "STOPPED", "STOPPED"],
      );

      const version = (await client.execute("query-version")) as { qemu: { major: number }; package: string };
      assert.equal(version.package, `armbox ${VERSION}`);
      const commands = (await client.execute("query-commands")) as { name: string }[];
      assert.ok(commands.some((c) => c.name === "snapshot-save"));

      const file = join(dir, `interop-${transport}.snap`);
      await client.execute("snapshot-save", { file });
      const resumed = nextEvent(client, "RESUME");
      await client.cont();
      await resumed;
      await new Promise((r) => setTimeout(r, 30));
      const loadStop = nextEvent(client, "STOP");
      const loadResume = nextEvent(client, "RESUME");
      await client.execute("snapshot-load", { file });
      await loadStop;
      await loadResume;
      assert.equal((await client.queryStatus()).status, "running");

      await client.migrateSetParameters({ "downtime-limit": 100 } as never);
      const migEvent = nextEvent(client, "MIGRATION");
      await client.migrate({ uri: "tcp:127.0.0.1:1" } as never);
      assert.deepEqual(await migEvent, { status: "active" });
      assert.equal(((await client.queryMigrate()) as { status?: string }).status, "active");
      await client.migrateCancel();

      await assert.rejects(client.migrate({ uri: "exec:cat" } as never), (e: unknown) => {
        assert.ok(e instanceof QmpCommandError);
        return true;
      });
      await assert.rejects(client.execute("no-such-command"), /has not been found/);

      const shutdown = nextEvent(client, "SHUTDOWN");
      await client.quit();
      assert.deepEqual(await shutdown, { guest: false, reason: "host-qmp-quit" });
      assert.deepEqual(await done, { kind: "quit", code: 0 });
    } finally {
      await client.close();
      if (host.runState() !== "shutdown") host.quit(0);
      await done;
      await server.close();
    }
  });
}
