/**
 * Issue 9, defect 4: a destination that refused an incoming migration never exited while its
 * stdin stayed open (a terminal, the normal case): the serial console's stdin listener kept
 * the event loop alive. It must exit non-zero at once, whatever stdin is.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { type TestContext, test } from "node:test";
import { VirtMachine } from "../src/machine/virt.ts";
import { receiveIncoming } from "../src/vmm/migration/destination.ts";
import { OutgoingMigration } from "../src/vmm/migration/source.ts";
import { MachineRunner } from "../src/vmm/runner.ts";
import { runSync, start } from "./support/children.ts";
import { WAIT_MS } from "./support/events.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;

/** A source VM (the counter guest on 2 vCPUs, 32 MiB) running in this process until the test ends. */
function counterSource(t: TestContext): { m: VirtMachine; runner: MachineRunner } {
  const m = new VirtMachine({
    kernel: new Uint8Array(readFileSync(new URL("../guests/migration/bin/counter.elf", import.meta.url))),
    smp: 2,
    memory: 32 << 20,
    serialOutput: () => {},
  });
  const runner = new MachineRunner(m, { output: () => {}, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  t.after(async () => {
    runner.finish({ kind: "quit", code: 0 });
    await running;
  });
  return { m, runner };
}

test("after a refused incoming migration the destination never exits when stdin is open", async (t) => {
  // stdin is a pipe the test holds open for the whole test (never ended).
  const dst = start(t, process.execPath, [ARMBOX, "run", "--incoming", "tcp:127.0.0.1:0"]);
  const m = await dst.waitFor(/waiting for an incoming migration on [\d.]+:(\d+)/, 0, "stderr");
  const sock = net.connect(Number(m[1]), "127.0.0.1");
  sock.on("error", () => {}); // the destination closes it after its refusal
  sock.end(Buffer.from("NOT-A-MIGRATION-STREAM, just bytes\n"));
  const exit = await dst.exited;
  sock.destroy();
  assert.equal(exit.code, 1, dst.stderr);
  assert.match(dst.stderr, /incoming migration failed: .*magic/i);
  assert.equal(dst.proc.stdin?.writableEnded, false, "stdin was still open when it exited");
});

test("a destination receiving a paused VM without --qmp prints 'the VM is paused' and exits with code 13 after the source has quit", async (t) => {
  const { m, runner } = counterSource(t);
  runner.pause(); // QMP `stop` on the source
  const dst = start(t, process.execPath, [
    ...[ARMBOX, "run", "--incoming", "tcp:127.0.0.1:0", "--smp", "2", "--memory", "32M"],
  ]);
  const port = (await dst.waitFor(/waiting for an incoming migration on [\d.]+:(\d+)/, 0, "stderr"))[1];
  const mig = new OutgoingMigration(m, runner, { replyTimeoutMs: WAIT_MS });
  mig.start(`tcp:127.0.0.1:${port}`);
  // Refused before the ACK: the source keeps its VM, still paused, ready to go elsewhere.
  assert.equal(await mig.done(), "failed");
  assert.match(mig.info()["error-desc"] ?? "", /paused .*no control socket.*--qmp/);
  assert.equal(runner.isPaused, true);
  const exit = await dst.exited;
  assert.equal(exit.code, 1, dst.stderr);
  assert.match(dst.stderr, /incoming migration failed: the source's VM is paused/);
});

test("armbox run --paused without --qmp exits through an unsettled promise (code 13)", (t) => {
  const r = runSync(process.execPath, [ARMBOX, "run", "--paused"], { stdio: ["ignore", "pipe", "pipe"] });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), /^armbox: --paused needs --qmp: only QMP cont can start the vCPUs$/);
  t.diagnostic("refused as a usage error before the VM is built");
});

test("a second connection to a destination is refused explicitly; the first goes on", async (t) => {
  let diag = "";
  const seen = new Set<() => void>();
  const onDiag = (l: string) => {
    diag += `${l}\n`;
    for (const f of [...seen]) f();
  };
  const logged = (re: RegExp) =>
    new Promise<void>((res) => {
      const f = () => {
        if (re.test(diag)) {
          seen.delete(f);
          res();
        }
      };
      seen.add(f);
      f();
    });
  let incoming!: ReturnType<typeof receiveIncoming>;
  const port = await new Promise<number>((res) => {
    incoming = receiveIncoming(
      "tcp:127.0.0.1:0",
      { smp: 2, memory: 32 << 20 },
      {
        onListening: (a) => res(a.port),
        idleTimeoutMs: WAIT_MS,
        diag: onDiag,
      },
    );
  });
  incoming.catch(() => {});
  const first = net.connect(port, "127.0.0.1");
  first.on("error", () => {});
  t.after(() => first.destroy());
  await logged(/incoming migration from/);
  // The second source: a real one, whose VM must keep running after the refusal.
  const { m, runner } = counterSource(t);
  const mig = new OutgoingMigration(m, runner, { replyTimeoutMs: WAIT_MS });
  mig.start(`tcp:127.0.0.1:${port}`);
  assert.equal(await mig.done(), "failed");
  assert.match(mig.info()["error-desc"] ?? "", /already receiving a migration \(from 127\.0\.0\.1:\d+\)/);
  assert.equal(runner.isPaused, false, "the refused source runs on");
  // The first connection is still the one being read: its bytes decide the outcome.
  first.end(Buffer.from("NOT-A-MIGRATION-STREAM\n"));
  await assert.rejects(incoming, /magic/i);
});
