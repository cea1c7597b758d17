/**
 * Live migration failing with nothing lost: the destination killed at random points, the
 * connection cut, one byte of the stream corrupted, a stream version the destination does
 * not know. Each time the source VM keeps running, query-migrate says `failed` with a
 * reason, and the destination refuses with a clear message and never runs the half-loaded
 * VM. Property tests (fast-check) mutate a recorded stream: every mutation is refused.
 *
 * The killed destinations are child processes: this file re-runs itself with
 * MIGRATION_CHILD=dest (see the bottom). migrate_cancel: test/migration-cancel.test.ts.
 * Every wait is for an event (a console line, a LISTENING line, an exit); the timeouts
 * given to the migration are far beyond what it needs, so that only the failure each
 * test causes can end it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { type TestContext, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { VirtMachine } from "../src/machine/virt.ts";
import { receiveIncoming } from "../src/vmm/migration/destination.ts";
import { OutgoingMigration, type OutgoingOptions } from "../src/vmm/migration/source.ts";
import { MigrationError } from "../src/vmm/migration/stream.ts";
import { MachineRunner } from "../src/vmm/runner.ts";
import { stateDigest } from "../src/vmm/snapshot/machine-state.ts";
import { start } from "./support/children.ts";
import { ConsoleLog, WAIT_MS } from "./support/events.ts";

const MEM = 32 << 20;
const SELF = fileURLToPath(import.meta.url);
const CHILD = process.env.MIGRATION_CHILD;

function guest(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../guests/migration/bin/${name}.elf`, import.meta.url)));
}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Far beyond any wait a migration here needs: reaching it would be a hang. */
const GENEROUS_MS = WAIT_MS;

/**
 * A running source (machine, runner, console) that has printed its first ticks; it is
 * ended when the test ends, whatever happened (a VM left running keeps the file alive).
 */
async function startSource(t: TestContext, opts: { deterministic?: boolean } = {}) {
  const con = new ConsoleLog();
  const m = new VirtMachine({
    kernel: guest("counter"),
    smp: 2,
    memory: MEM,
    deterministic: opts.deterministic ?? false,
    serialOutput: con.out,
  });
  const runner = new MachineRunner(m, { output: () => {}, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  t.after(async () => {
    runner.finish({ kind: "quit", code: 0 });
    await running;
  });
  await con.waitFor((s) => /tick 2 /.test(s), "the source's third tick");
  return { m, runner, running, con };
}

/**
 * After a failure once the whole device state was out, the source may stay paused (the
 * destination could be running the VM; here the test knows it is not): it must say so,
 * then run on when continued, as an operator's `cont` would.
 */
async function assertSourceSurvives(
  src: Awaited<ReturnType<typeof startSource>>,
  mig: OutgoingMigration,
  reason: RegExp,
) {
  if (src.runner.isPaused) {
    assert.match(
      mig.info()["error-desc"] ?? "",
      /the destination may be running the VM, so this one stays paused/,
    );
    src.runner.resume();
  }
  await assertSourceRunsOn(src, mig, reason);
}

/** The source must still run: not paused, console still growing, then it is stopped. */
async function assertSourceRunsOn(
  src: Awaited<ReturnType<typeof startSource>>,
  mig: OutgoingMigration,
  reason: RegExp,
) {
  const info = mig.info();
  assert.equal(info.status, "failed");
  assert.match(info["error-desc"] ?? "", reason);
  assert.ok(!src.runner.isPaused, "the source is not left paused");
  await src.con.grows(src.con.length, "the source's console going on");
  src.runner.finish({ kind: "quit", code: 0 });
  await src.running;
}

function listenIncoming(cfg: { smp: number; memory: number; deterministic?: boolean }) {
  let incoming!: Promise<Awaited<ReturnType<typeof receiveIncoming>>>;
  const port = new Promise<number>((res) => {
    incoming = receiveIncoming("tcp:127.0.0.1:0", cfg, {
      onListening: (a) => res(a.port),
      idleTimeoutMs: GENEROUS_MS,
    });
  });
  incoming.catch(() => {});
  return { port, incoming };
}

async function failingMigration(
  t: TestContext,
  opts: OutgoingOptions,
  destErr: RegExp,
  srcErr: RegExp,
): Promise<void> {
  const src = await startSource(t);
  try {
    const dst = listenIncoming({ smp: 2, memory: MEM });
    const mig = new OutgoingMigration(src.m, src.runner, { replyTimeoutMs: GENEROUS_MS, ...opts });
    mig.start(`tcp:127.0.0.1:${await dst.port}`);
    await assert.rejects(dst.incoming, (e: Error) => e instanceof MigrationError && destErr.test(e.message));
    assert.equal(await mig.done(), "failed");
    await assertSourceRunsOn(src, mig, srcErr);
  } finally {
    // A failed assertion must not leave the source VM running: it would keep the test
    // file's event loop alive and the runner waiting for ever.
    src.runner.finish({ kind: "quit", code: 0 });
    await src.running;
  }
}

/** This file as the destination child (MIGRATION_CHILD=dest), killed when the test ends. */
async function startDestination(t: TestContext, env: Record<string, string>) {
  const child = start(t, process.execPath, ["--import", "tsx", SELF], {
    env: { ...process.env, MIGRATION_CHILD: "dest", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const port = Number((await child.waitFor(/LISTENING (\d+)/))[1]);
  return { child, port };
}

if (!CHILD) {
  test("an unknown stream version is refused by name; the source runs on", async (t) => {
    await failingMigration(
      t,
      { streamVersion: 99 },
      /stream version 99 is not supported \(this build reads version 4\)/,
      /refused: migration stream version 99/,
    );
  });

  test("one corrupted byte (in RAM pages, in the device state) is detected; the source runs on", async (t) => {
    // A byte early in the RAM stream, and a byte inside the frame of vCPU 1's state.
    const pickers: ((chunk: Uint8Array, off: number) => number)[] = [
      (chunk, off) => (5000 >= off && 5000 < off + chunk.length ? 5000 - off : -1),
      // The device state goes in one write: flip a byte of vCPU 1's payload inside it.
      (chunk) => {
        const at = Buffer.from(chunk).indexOf("vcpu@1");
        return at < 0 ? -1 : at + 6 + 12 + 40;
      },
    ];
    for (const pick of pickers) {
      let done = false;
      await failingMigration(
        t,
        {
          tamper: (chunk, off) => {
            const i = done ? -1 : pick(chunk, off);
            if (i < 0) return chunk;
            done = true;
            const c = chunk.slice();
            c[i]! ^= 0x40;
            return c;
          },
        },
        /corrupt|checksum/,
        /refused: .*(corrupt|checksum)/,
      );
      assert.ok(done, "a byte was flipped");
    }
  });

  test("the connection cut at random points: the source runs on, the destination refuses", async (t) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 50_000 }), async (cutAt) => {
        const src = await startSource(t);
        const dst = listenIncoming({ smp: 2, memory: MEM });
        const dport = await dst.port;
        // A proxy that forwards cutAt bytes of the stream, then cuts both sides.
        let seen = 0;
        let cut = false;
        const proxy = net.createServer((client) => {
          const up = net.connect(dport, "127.0.0.1");
          up.on("data", (d) => client.write(d));
          client.on("data", (d: Buffer) => {
            if (seen + d.length >= cutAt) {
              up.write(d.subarray(0, cutAt - seen));
              seen = cutAt;
              cut = true;
              client.destroy();
              up.destroy();
              return;
            }
            seen += d.length;
            up.write(d);
          });
          client.on("error", () => up.destroy());
          up.on("error", () => client.destroy());
        });
        await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
        const mig = new OutgoingMigration(src.m, src.runner, { replyTimeoutMs: GENEROUS_MS });
        mig.start(`tcp:127.0.0.1:${(proxy.address() as net.AddressInfo).port}`);
        const st = await mig.done();
        proxy.close();
        if (!cut) {
          // The whole stream (shorter than cutAt) went through: a normal migration.
          assert.equal(st, "completed");
          assert.equal((await dst.incoming).runState, "running");
          assert.equal(src.runner.isPaused, true, "the source stays in postmigrate");
          return;
        }
        await assert.rejects(dst.incoming, /truncated|connection|closed|ended/);
        assert.equal(st, "failed");
        await assertSourceSurvives(src, mig, /connection|closed|destination/);
      }),
      { numRuns: 6, examples: [[171]] },
    );
  });

  test("the destination's acknowledgement lost after it accepted: the source stays paused, never two running VMs", async (t) => {
    const src = await startSource(t);
    const dst = listenIncoming({ smp: 2, memory: MEM });
    const dport = await dst.port;
    // The stream goes through whole; the destination's answers only until RAM flows (its
    // ready answer comes right after the header), then none: its ACK is lost, and the
    // source sees the connection close before any acknowledgement.
    let streamed = 0;
    const proxy = net.createServer((client) => {
      const up = net.connect(dport, "127.0.0.1");
      up.on("data", (d) => {
        if (streamed < 4096) client.write(d);
      });
      up.on("close", () => client.destroy());
      client.on("data", (d: Buffer) => {
        streamed += d.length;
        up.write(d);
      });
      client.on("error", () => up.destroy());
      up.on("error", () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    t.after(() => proxy.close());
    const mig = new OutgoingMigration(src.m, src.runner, { replyTimeoutMs: GENEROUS_MS });
    mig.start(`tcp:127.0.0.1:${(proxy.address() as net.AddressInfo).port}`);
    const d = await dst.incoming;
    assert.equal(d.runState, "running", "the destination accepted the VM");
    assert.equal(await mig.done(), "failed");
    assert.match(
      mig.info()["error-desc"] ?? "",
      /the destination may be running the VM, so this one stays paused/,
    );
    assert.ok(src.runner.isPaused, "the source must not run beside the destination");
    // An operator who knows the destination died may resume the source (QMP cont).
    src.runner.resume();
    await src.con.grows(src.con.length, "the source's console after cont");
    src.runner.finish({ kind: "quit", code: 0 });
    await src.running;
  });

  test("the destination process killed at random points: the source runs on; it never ran", async (t) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 14 }), async (killAt) => {
        const src = await startSource(t);
        const { child, port } = await startDestination(t, { KILL_AT: String(killAt) });
        const mig = new OutgoingMigration(src.m, src.runner, { replyTimeoutMs: GENEROUS_MS });
        mig.start(`tcp:127.0.0.1:${port}`);
        const status = await mig.done();
        const exit = await child.exited;
        const code = exit.signal ? -1 : exit.code;
        const out = child.stdout;
        if (status === "completed") {
          // Killed too late to matter (after the ACK): the destination ran, the source is
          // paused in postmigrate.
          assert.match(out, /RUNNING/);
          assert.equal(src.runner.isPaused, true, "the source stays in postmigrate");
        } else {
          assert.equal(code, -1, "the destination was killed");
          assert.doesNotMatch(out, /RUNNING/, "the half-loaded destination never ran");
          await assertSourceSurvives(src, mig, /connection|closed|destination/);
        }
      }),
      { numRuns: 5 },
    );
  });

  test("a destination that dies after refusing: clear message and non-zero exit, never runs", async (t) => {
    const src = await startSource(t);
    const { child, port } = await startDestination(t, { DEST_SMP: "4" });
    const mig = new OutgoingMigration(src.m, src.runner, { replyTimeoutMs: GENEROUS_MS });
    mig.start(`tcp:127.0.0.1:${port}`);
    assert.equal(await mig.done(), "failed");
    assert.equal((await child.exited).code, 1);
    const out = child.stdout;
    assert.match(
      child.stderr,
      /incoming migration failed: the machine configuration does not match: source has --smp 2, this destination --smp 4/,
    );
    assert.doesNotMatch(out, /RUNNING/);
    await assertSourceRunsOn(src, mig, /refused/);
  });

  test("connection refused (no destination): failed with the reason, the source runs on", async (t) => {
    const src = await startSource(t);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const mig = new OutgoingMigration(src.m, src.runner);
    mig.start(`tcp:127.0.0.1:${port}`);
    assert.equal(await mig.done(), "failed");
    await assertSourceRunsOn(src, mig, /ECONNREFUSED/);
  });

  test("bad URIs are rejected at once, never run as commands", () => {
    const src = new VirtMachine({ kernel: guest("counter"), smp: 1, memory: MEM });
    const runner = new MachineRunner(src, { output: () => {}, diag: () => {} });
    const mig = new OutgoingMigration(src, runner);
    for (const uri of ["exec:cat > /tmp/x", "tcp:host", "tcp:h:99999", "unix:", "", "file:"]) {
      assert.throws(() => mig.start(uri), MigrationError, uri);
    }
    assert.equal(mig.info().status, "none");
  });

  // -------------------------------------------------------------------------
  // Property tests on a recorded stream (a file: migration of a paused machine)

  test("file: migration round-trips exactly; every mutated or truncated stream is refused", async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), "armbox-mig-"));
    try {
      const src = await startSource(t, { deterministic: true });
      await new Promise<void>((parked) => {
        src.runner.onPaused = parked;
        src.runner.pause();
      });
      src.runner.onPaused = null;
      const file = path.join(dir, "stream.bin");
      const mig = new OutgoingMigration(src.m, src.runner);
      mig.start(`file:${file}`);
      assert.equal(await mig.done(), "completed", mig.info()["error-desc"] ?? "");
      assert.ok(src.runner.isPaused, "a file migration leaves the source paused");
      const digest = stateDigest(src.m);
      src.runner.finish({ kind: "quit", code: 0 });
      await src.running;
      const stream = new Uint8Array(readFileSync(file));
      const cfg = { smp: 2, memory: MEM, deterministic: true };
      const back = await receiveIncoming(`file:${file}`, cfg);
      assert.equal(back.runState, "paused");
      assert.equal(stateDigest(back.machine), digest);

      const mutated = path.join(dir, "mutated.bin");
      const refused = async (bytes: Uint8Array) => {
        writeFileSync(mutated, bytes);
        await assert.rejects(receiveIncoming(`file:${mutated}`, cfg), MigrationError);
      };
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: stream.length - 1 }),
          fc.integer({ min: 1, max: 255 }),
          async (at, x) => {
            const b = stream.slice();
            b[at]! ^= x;
            await refused(b);
          },
        ),
        { numRuns: 60 },
      );
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: stream.length - 1 }), async (len) => {
          await refused(stream.slice(0, len));
        }),
        { numRuns: 30 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
} else {
  // The destination as a child process (what `armbox run --incoming` does).
  const killAt = process.env.KILL_AT === undefined ? -1 : Number(process.env.KILL_AT);
  receiveIncoming(
    "tcp:127.0.0.1:0",
    { smp: Number(process.env.DEST_SMP ?? 2), memory: MEM },
    {
      onListening: (a) => process.stdout.write(`LISTENING ${a.port}\n`),
      onFrame: (_name, n) => {
        if (n === killAt) process.kill(process.pid, "SIGKILL");
      },
      idleTimeoutMs: GENEROUS_MS,
    },
  ).then(
    async (r) => {
      process.stdout.write(`RUNNING ${r.runState}\n`);
      const runner = new MachineRunner(r.machine, {
        output: () => {},
        diag: () => {},
        controlOpen: () => true,
      });
      const p = runner.run();
      await sleep(100);
      runner.finish({ kind: "quit", code: 0 });
      await p;
      process.exit(0);
    },
    (e: Error) => {
      process.stderr.write(`armbox: incoming migration failed: ${e.message}\n`);
      process.exit(1);
    },
  );
}
