/**
 * migrate_cancel, at a point the test chooses rather than after a sleep. The destination
 * is a fake TCP peer driven by the test: it reads the stream and stops where the test
 * wants the migration to be when the cancel arrives —
 *   - in setup: it reads the handshake and never answers it;
 *   - in pre-copy: it answers, reads the first RAM pages and then stops reading, so the
 *     source blocks on a full socket with most of the first round still to send (the
 *     guest's RAM is filled with more data than the host's TCP buffers can hold).
 * The cancel goes through QMP to a VMM host as `armbox run --qmp` builds it; then the
 * MIGRATION events read setup, (active,) cancelling, cancelled, query-migrate says
 * cancelled, the VM is running with dirty logging off, and its console keeps going.
 * Nothing here waits for time to pass: every step awaits an event.
 */
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { VirtMachine } from "../src/machine/virt.ts";
import { OutgoingMigration } from "../src/vmm/migration/source.ts";
import { FrameReader, frame, SEC_HEADER, SEC_PAGES, SEC_READY } from "../src/vmm/migration/stream.ts";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import { LocalVmmHost } from "../src/vmm/qmp/host.ts";
import { QmpServer } from "../src/vmm/qmp/server.ts";
import { MachineRunner } from "../src/vmm/runner.ts";
import { ConsoleLog, within } from "./support/events.ts";

const MiB = 1 << 20;
/** RAM the counter guest leaves alone (it lives below 0x400B0000; see guests/baremetal/lib/link.ld). */
const FREE_AT = 16 * MiB;
/** Longer than any test here may run: the source never gives up on a reply by itself. */
const NEVER_MS = 24 * 3600_000;

const counter = new Uint8Array(readFileSync(new URL("../guests/migration/bin/counter.elf", import.meta.url)));

/**
 * The most a loopback TCP connection can hold unread: the largest send buffer plus the
 * largest receive buffer autotuning may reach (Linux's tcp_wmem and tcp_rmem maxima).
 */
function socketBufferLimit(): number {
  let total = 0;
  for (const f of ["/proc/sys/net/ipv4/tcp_wmem", "/proc/sys/net/ipv4/tcp_rmem"]) {
    let max = 32 * MiB; // elsewhere: a generous guess
    try {
      max = Number(readFileSync(f, "utf8").trim().split(/\s+/)[2]) || max;
    } catch {}
    total += max;
  }
  return total;
}

type Stop = "handshake" | "first-pages";

/** A destination that reads the stream and stops at `stop` (see the header comment). */
class FakeDestination {
  /** Resolves when the peer has reached its stop. */
  readonly stopped: Promise<void>;
  /** Resolves when the source's connection has closed. */
  readonly closed: Promise<void>;
  received = 0;
  private reachStop!: () => void;
  private connClosed!: () => void;
  private sock: net.Socket | null = null;

  private constructor(
    readonly server: net.Server,
    readonly stop: Stop,
  ) {
    this.stopped = new Promise((r) => {
      this.reachStop = r;
    });
    this.closed = new Promise((r) => {
      this.connClosed = r;
    });
    server.on("connection", (sock) => this.serve(sock));
  }

  static async listen(t: TestContext, stop: Stop): Promise<FakeDestination> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const d = new FakeDestination(server, stop);
    t.after(() => d.close());
    return d;
  }

  get uri(): string {
    return `tcp:127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  private async serve(sock: net.Socket): Promise<void> {
    this.sock = sock;
    const reader = new FrameReader();
    sock.on("data", (d: Buffer) => {
      this.received += d.length;
      reader.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    });
    sock.on("close", () => {
      reader.end("closed");
      this.connClosed();
    });
    sock.on("error", () => {});
    try {
      await reader.preamble();
      await reader.expectJson([SEC_HEADER]);
      if (this.stop === "handshake") return this.reachStop(); // and never answer
      sock.write(frame(SEC_READY, {}));
      for (;;) {
        const s = await reader.next();
        if (s?.name === SEC_PAGES) break;
      }
      sock.pause(); // read no more: the source's writes back up from here
      this.reachStop();
    } catch {
      // The source went away first; the test sees it through `stopped` never resolving.
    }
  }

  /** Reads on (to the end of what the source sent, then its close). */
  drain(): void {
    this.sock?.resume();
  }

  close(): Promise<void> {
    this.sock?.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A running source VM behind a QMP server, as `armbox run --qmp` sets it up. */
async function source(t: TestContext, memory: number) {
  const con = new ConsoleLog();
  const machine = new VirtMachine({ kernel: counter, smp: 2, memory, serialOutput: con.out });
  const host = new LocalVmmHost({
    machine,
    run: { output: con.out, diag: () => {} },
    makeMachine: (c) => new VirtMachine({ ...c, serialOutput: con.out }),
    makeMigration: (m, r) => new OutgoingMigration(m, r, { replyTimeoutMs: NEVER_MS }),
  });
  const done = host.run();
  const dir = mkdtempSync(join(tmpdir(), "armbox-mig-cancel-"));
  const server = await QmpServer.listen(`unix:${join(dir, "qmp.sock")}`, host);
  const client = await QmpClient.connect(join(dir, "qmp.sock"));
  t.after(async () => {
    await client.close();
    if (host.runState() !== "shutdown") host.quit(0);
    await done;
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // The guest runs before the migration starts.
  await con.waitFor((s) => /tick 3 /.test(s), "the guest's fourth tick");
  return { con, host, client };
}

/** The statuses of the MIGRATION events from now up to and including `last`. */
function migrationEvents(c: QmpClient, last: string): Promise<string[]> {
  return new Promise((resolve) => {
    const seen: string[] = [];
    const prev = c.onEvent;
    c.onEvent = (e) => {
      prev?.(e);
      if (e.event !== "MIGRATION") return;
      seen.push((e.data as { status: string }).status);
      if (seen.at(-1) !== last) return;
      c.onEvent = prev;
      resolve(seen);
    };
  });
}

/** After the cancel: cancelled, running, dirty logging off, console going, connection closed. */
async function assertCancelled(
  src: Awaited<ReturnType<typeof source>>,
  peer: FakeDestination,
  events: Promise<string[]>,
  want: string[],
): Promise<void> {
  const c = src.client;
  assert.deepEqual(await within(events, "the MIGRATION events up to cancelled"), want);
  assert.equal(((await c.execute("query-migrate")) as { status: string }).status, "cancelled");
  assert.deepEqual(await c.execute("query-status"), { running: true, singlestep: false, status: "running" });
  assert.ok(!c.events.some((e) => e.event === "STOP"), "the source was never stopped");
  assert.throws(() => src.host.machine!.vm.getDirtyLog(), /dirty logging is not enabled/);
  peer.drain();
  await within(peer.closed, "the source closes the migration connection");
  const at = src.con.length;
  await src.con.grows(at, "the source's console after the cancel");
}

test("migrate_cancel while the destination has not answered the handshake: cancelled in setup, the source runs on", async (t) => {
  const src = await source(t, 32 * MiB);
  const peer = await FakeDestination.listen(t, "handshake");
  const events = migrationEvents(src.client, "cancelled");
  assert.deepEqual(await src.client.execute("migrate", { uri: peer.uri }), {});
  await within(peer.stopped, "the source's handshake reaching the destination");
  assert.equal(((await src.client.execute("query-migrate")) as { status: string }).status, "setup");
  assert.deepEqual(await src.client.execute("migrate_cancel"), {});
  await assertCancelled(src, peer, events, ["setup", "cancelling", "cancelled"]);
});

test("migrate_cancel in pre-copy, the destination stalled after the first RAM pages: cancelled, the source runs on", async (t) => {
  // More RAM to send in the first round than the connection can hold unread, so the
  // source is still in that round, blocked on the socket, whatever the host's speed.
  const fill = Math.ceil((socketBufferLimit() + 8 * MiB) / (16 * MiB)) * 16 * MiB;
  const src = await source(t, FREE_AT + fill);
  const vm = src.host.machine!.vm;
  vm.writeRam(vm.ramBase + FREE_AT, new Uint8Array(fill).fill(0xa5));
  const peer = await FakeDestination.listen(t, "first-pages");
  const events = migrationEvents(src.client, "cancelled");
  assert.deepEqual(await src.client.execute("migrate", { uri: peer.uri }), {});
  await within(peer.stopped, "the first RAM pages reaching the destination");
  const info = (await src.client.execute("query-migrate")) as {
    status: string;
    ram: { transferred: number };
  };
  assert.equal(info.status, "active");
  assert.ok(info.ram.transferred < fill, "the first round is not all sent");
  assert.deepEqual(await src.client.execute("migrate_cancel"), {});
  await assertCancelled(src, peer, events, ["setup", "active", "cancelling", "cancelled"]);
  assert.ok(peer.received < fill, `the destination got ${peer.received} of ${fill}+ bytes`);
});

test("migrate to file: cancelled at once never writes into the next file opened under the same descriptor", async (t) => {
  const con = new ConsoleLog();
  const machine = new VirtMachine({ kernel: counter, smp: 2, memory: 32 * MiB, serialOutput: con.out });
  const runner = new MachineRunner(machine, { output: con.out, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  const dir = mkdtempSync(join(tmpdir(), "armbox-mig-fd-"));
  t.after(async () => {
    runner.finish({ kind: "quit", code: 0 });
    await running;
    rmSync(dir, { recursive: true, force: true });
  });
  await con.waitFor((s) => /tick 1 /.test(s), "the guest's second tick");
  for (let i = 0; i < 20; i++) {
    const mig = new OutgoingMigration(machine, runner, {});
    mig.start(`file:${join(dir, `stream-${i}`)}`);
    mig.cancel();
    // Opened at once: the descriptor the migration's file just gave back, if it was closed.
    const other = join(dir, `other-${i}`);
    const fd = openSync(other, "w");
    assert.notEqual(await within(mig.done(), "the cancelled migration's end"), "completed");
    closeSync(fd);
    assert.equal(statSync(other).size, 0, `round ${i}: the stream went into another file`);
  }
});
