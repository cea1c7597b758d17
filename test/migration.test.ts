/**
 * Live migration in process, over loopback TCP: an idle guest and a memory-dirtying guest
 * move with their console continuing (the "tick N" lines of guests/migration read as one
 * gapless, repeat-free sequence across source and destination) and a measured downtime;
 * a paused source arrives paused; a mismatched configuration is refused before any RAM.
 * How long each side runs is counted in the guest's ticks, awaited on its console, never
 * in milliseconds (a slow host prints fewer ticks per second, not fewer ticks).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { type TestContext, test } from "node:test";
import { VirtMachine } from "../src/machine/virt.ts";
import { receiveIncoming } from "../src/vmm/migration/destination.ts";
import { OutgoingMigration } from "../src/vmm/migration/source.ts";
import { MachineRunner, type RunResult } from "../src/vmm/runner.ts";
import { stateDigest } from "../src/vmm/snapshot/machine-state.ts";
import { ConsoleLog } from "./support/events.ts";

const MEM = 64 << 20;

test("idle guest: live migration on loopback, console continues, downtime measured", async (t) => {
  const r = await migrateOnce(t, "idle", { smp: 4 });
  assert.equal(r.info.status, "completed");
  assert.ok(typeof r.info.downtime === "number" && r.info.downtime >= 0, "downtime reported");
  assert.ok(r.info.ram!.transferred > 0 && r.info.ram!["dirty-sync-count"] >= 2);
  console.log(
    `idle: total ${r.info["total-time"]} ms, downtime ${r.info.downtime} ms, ${r.info.ram!.transferred} bytes`,
  );
});

test("memory-dirtying guest: pre-copy rounds, then stop-and-copy; console continues", async (t) => {
  const r = await migrateOnce(t, "dirty", { smp: 4, ticksBefore: 8 });
  assert.equal(r.info.status, "completed");
  assert.ok(r.info.ram!["dirty-sync-count"] >= 2);
  assert.ok(r.info.ram!["dirty-pages-rate"] >= 0);
  console.log(
    `dirty: total ${r.info["total-time"]} ms, downtime ${r.info.downtime} ms, ${r.info.ram!.transferred} bytes, ${r.info.ram!["dirty-sync-count"]} syncs`,
  );
});

test("a paused source arrives paused, with its exact state, and waits for cont", async (t) => {
  const con = new ConsoleLog();
  // Deterministic time, so that the clock does not move while paused and digests compare.
  const src = new VirtMachine({
    kernel: guest("counter"),
    smp: 2,
    memory: MEM,
    deterministic: true,
    serialOutput: con.out,
  });
  const runner = new MachineRunner(src, { output: con.out, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  endWithTest(t, runner, running);
  await con.waitFor((s) => ticks(s) >= 3, "three ticks");
  await new Promise<void>((res) => {
    runner.onPaused = res;
    runner.pause();
  });
  runner.onPaused = null;
  const digest = stateDigest(src);
  let port = 0;
  let incoming!: ReturnType<typeof receiveIncoming>;
  await new Promise<void>((res) => {
    incoming = receiveIncoming(
      "tcp:127.0.0.1:0",
      { smp: 2, memory: MEM, deterministic: true },
      {
        onListening: (a) => {
          port = a.port;
          res();
        },
      },
    );
  });
  const mig = new OutgoingMigration(src, runner);
  mig.start(`tcp:127.0.0.1:${port}`);
  const dst = await incoming;
  assert.equal(await mig.done(), "completed");
  assert.equal(dst.runState, "paused");
  assert.equal(stateDigest(dst.machine), digest, "the destination holds exactly the paused source's state");
  // The source stays paused (QEMU's postmigrate) until it is told to quit.
  assert.equal(runner.isPaused, true);
  runner.finish({ kind: "quit", code: 0 });
  assert.deepEqual(await running, { kind: "quit", code: 0 });
});

test("a configuration that does not match is refused before RAM flows; the source runs on", async (t) => {
  const con = new ConsoleLog();
  const src = new VirtMachine({ kernel: guest("counter"), smp: 2, memory: MEM, serialOutput: con.out });
  const runner = new MachineRunner(src, { output: con.out, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  endWithTest(t, runner, running);
  let port = 0;
  let incoming!: ReturnType<typeof receiveIncoming>;
  await new Promise<void>((res) => {
    incoming = receiveIncoming(
      "tcp:127.0.0.1:0",
      { smp: 4, memory: MEM },
      {
        onListening: (a) => {
          port = a.port;
          res();
        },
      },
    );
  });
  const mig = new OutgoingMigration(src, runner);
  mig.start(`tcp:127.0.0.1:${port}`);
  await assert.rejects(incoming, /--smp 2, this destination --smp 4/);
  assert.equal(await mig.done(), "failed");
  assert.match(mig.info()["error-desc"]!, /refused.*--smp 2, this destination --smp 4/);
  assert.ok(mig.info().ram!.transferred < 4096, "no RAM was sent");
  assert.ok(!runner.isPaused);
  await con.grows(con.length, "the source's console going on");
  runner.finish({ kind: "quit", code: 0 });
  await running;
});

/**
 * Runs guest `name` until it has printed `ticksBefore` ticks, migrates it, and runs the
 * destination until it has printed four more.
 */
async function migrateOnce(
  t: TestContext,
  name: string,
  o: { smp: number; ticksBefore?: number; memory?: number; maxRounds?: number },
): Promise<{ info: ReturnType<OutgoingMigration["info"]>; text: string }> {
  const memory = o.memory ?? MEM;
  const con = new ConsoleLog();
  const src = new VirtMachine({ kernel: guest(name), smp: o.smp, memory, serialOutput: con.out });
  const runner = new MachineRunner(src, { output: con.out, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  endWithTest(t, runner, running);
  const before = o.ticksBefore ?? 4;
  await con.waitFor((s) => ticks(s) >= before, `${before} ticks on the source`);
  let port = 0;
  let incoming!: ReturnType<typeof receiveIncoming>;
  await new Promise<void>((res) => {
    incoming = receiveIncoming(
      "tcp:127.0.0.1:0",
      { smp: o.smp, memory, serialOutput: con.out },
      {
        onListening: (a) => {
          port = a.port;
          res();
        },
      },
    );
  });
  const mig = new OutgoingMigration(src, runner, { maxRounds: o.maxRounds ?? 8 });
  mig.start(`tcp:127.0.0.1:${port}`);
  const dst = await incoming;
  const status = await mig.done();
  assert.equal(status, "completed", mig.info()["error-desc"] ?? "");
  // The source stays paused (QEMU's postmigrate) until it is told to quit.
  assert.equal(runner.isPaused, true);
  runner.finish({ kind: "quit", code: 0 });
  const srcResult: RunResult = await running;
  assert.deepEqual(srcResult, { kind: "quit", code: 0 });
  const atSwitch = con.text();
  assert.equal(dst.runState, "running");
  const dRunner = new MachineRunner(dst.machine, {
    output: con.out,
    diag: () => {},
    controlOpen: () => true,
  });
  const dRunning = dRunner.run();
  endWithTest(t, dRunner, dRunning);
  const atDst = ticks(atSwitch);
  await con.waitFor((s) => ticks(s) >= atDst + 4, "four more ticks on the destination");
  dRunner.finish({ kind: "quit", code: 0 });
  await dRunning;
  const text = con.text();
  assert.ok(text.length > atSwitch.length, "the destination printed more");
  const n = checkTicks(text);
  assert.ok(n > 3, `ticks: ${n}`);
  return { info: mig.info(), text };
}

// ---------------------------------------------------------------------------

function guest(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../guests/migration/bin/${name}.elf`, import.meta.url)));
}

/** Whole "tick N" lines printed so far. */
function ticks(text: string): number {
  return text.match(/(?:^|\n)tick \d+ [0-9a-f]+\r?\n/g)?.length ?? 0;
}

/** Ends a run loop when the test ends, so that a failed assertion leaves no VM running. */
function endWithTest(t: TestContext, runner: MachineRunner, running: Promise<RunResult>): void {
  t.after(async () => {
    runner.finish({ kind: "quit", code: 0 });
    await running;
  });
}

/** Checks that the "tick N" lines run 0, 1, 2, … with no gap or repeat; returns the count. */
function checkTicks(text: string): number {
  const lines = text.split(/\r?\n/).filter((l) => l.startsWith("tick "));
  // The last line may be cut short by the end of the run.
  const whole = text.endsWith("\n") ? lines : lines.slice(0, -1);
  whole.forEach((l, i) => {
    assert.match(l, /^tick \d+ [0-9a-f]+\r?$/, `line ${i} is whole`);
    assert.equal(
      Number(l.split(" ")[1] ?? "x"),
      i,
      `tick line ${i} (gap or repeat): ${JSON.stringify(whole.slice(Math.max(0, i - 2), i + 2))}`,
    );
  });
  return whole.length;
}
