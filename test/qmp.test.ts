/**
 * The QMP server's protocol, against a fake VMM host and a fake migration controller:
 * greeting, capabilities negotiation, id echo, QEMU's error classes and messages, events
 * to every negotiated client, migration delegation (and no shell for exec: URIs), robustness
 * against random bytes and random JSON (fast-check), the stream splitter, and `armbox qmp`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import { qmpCommand } from "../src/cli/qmp.ts";
import type { MachineConfig, VirtMachine } from "../src/machine/virt.ts";
import { VERSION } from "../src/version.ts";
import type {
  MigrationController,
  MigrationInfo,
  MigrationParameters,
  MigrationStatus,
} from "../src/vmm/migration/controller.ts";
import { QmpClient, QmpReplyError } from "../src/vmm/qmp/client.ts";
import type { HostEvent, RunState, VmmHost } from "../src/vmm/qmp/host.ts";
import { JsonSplitter, parseQmpAddress, type StreamItem } from "../src/vmm/qmp/protocol.ts";
import { QmpServer } from "../src/vmm/qmp/server.ts";
import { WAIT_MS } from "./support/events.ts";

const dir = mkdtempSync(join(tmpdir(), "armbox-qmp-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let sockN = 0;
const sockPath = () => join(dir, `q${sockN++}.sock`);

class FakeMigration implements MigrationController {
  parameters: MigrationParameters = { "downtime-limit": 300, "max-bandwidth": 0 };
  status: MigrationStatus = "none";
  started: string[] = [];
  onStatus: ((s: MigrationStatus) => void) | null = null;
  start(uri: string): void {
    if (uri.includes("refused")) throw new Error(`${uri}: connection refused`);
    this.started.push(uri);
    this.set("setup");
    this.set("active");
  }
  cancel(): void {
    if (this.status !== "active") return;
    this.set("cancelling");
    this.set("cancelled");
  }
  info(): MigrationInfo {
    return { status: this.status, "total-time": 5 };
  }
  setParameters(p: Partial<MigrationParameters>): void {
    Object.assign(this.parameters, p);
  }
  set(s: MigrationStatus): void {
    this.status = s;
    this.onStatus?.(s);
  }
}

class FakeHost implements VmmHost {
  state: RunState = "running";
  listeners = new Set<(e: HostEvent) => void>();
  quitCode: number | null = null;
  attached = 0;
  readonly machine: VirtMachine | null = null;
  constructor(readonly migration: MigrationController | null = new FakeMigration()) {
    if (migration) migration.onStatus = (status) => this.emit({ kind: "migration", status });
  }
  runState(): RunState {
    return this.state;
  }
  async stop(): Promise<boolean> {
    if (this.state !== "running") return false;
    await new Promise((r) => setTimeout(r, 2));
    this.state = "paused";
    this.emit({ kind: "stop" });
    return true;
  }
  cont(): boolean {
    if (this.state === "running") return false;
    this.state = "running";
    this.emit({ kind: "resume" });
    return true;
  }
  createMachine(_cfg: MachineConfig): VirtMachine {
    throw new Error("no machines here");
  }
  replaceMachine(): void {}
  powerdown(): void {
    this.emit({ kind: "powerdown" });
    this.state = "shutdown";
    this.emit({ kind: "shutdown", guest: false, reason: "host-ui" });
  }
  quit(code: number): void {
    this.quitCode = code;
    this.emit({ kind: "shutdown", guest: false, reason: "host-qmp-quit" });
  }
  resets = 0;
  reset(): void {
    this.resets++;
    this.emit({ kind: "reset", guest: false, reason: "host-qmp-system-reset" });
  }
  incoming: string | null = null;
  migrateIncoming(uri: string): void {
    if (this.incoming !== null) throw new Error("The incoming migration has already been started");
    this.incoming = uri;
  }
  subscribe(l: (e: HostEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  controlAttached(a: boolean): void {
    this.attached += a ? 1 : -1;
  }
  emit(e: HostEvent): void {
    for (const l of this.listeners) l(e);
  }
}

async function withServer(
  fn: (s: QmpServer, host: FakeHost, path: string) => Promise<void>,
  host = new FakeHost(),
): Promise<void> {
  const path = sockPath();
  const s = await QmpServer.listen(`unix:${path}`, host);
  try {
    await fn(s, host, path);
  } finally {
    await s.close();
  }
}

/** A raw connection: everything the server sends, parsed line by line. */
class Raw {
  readonly msgs: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];
  private buf = "";
  private constructor(readonly sock: net.Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let i = this.buf.indexOf("\n");
      while (i >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (line) this.msgs.push(JSON.parse(line) as Record<string, unknown>);
        i = this.buf.indexOf("\n");
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static connect(path: string): Promise<Raw> {
    return new Promise((res, rej) => {
      const s = net.connect(path, () => res(new Raw(s)));
      s.on("error", rej);
    });
  }
  send(s: string | Uint8Array): void {
    this.sock.write(s);
  }
  /** The next `count` messages, awaited as they arrive (the deadline only names a hang). */
  async next(count = 1): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + WAIT_MS;
    while (this.msgs.length < count) {
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.msgs)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.msgs.splice(0, count);
  }
  close(): void {
    this.sock.destroy();
  }
}

test("greeting, capabilities first (CommandNotFound before), id echoed, negotiation only once", async () => {
  await withServer(async (_s, _h, path) => {
    const c = await Raw.connect(path);
    const [greeting] = await c.next();
    assert.deepEqual(greeting, {
      QMP: {
        version: { qemu: { major: 7, minor: 2, micro: 0 }, package: `armbox ${VERSION}` },
        capabilities: [],
      },
    });
    c.send('{"execute": "query-status", "id": "early"}\n');
    assert.deepEqual((await c.next())[0], {
      error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
      id: "early",
    });
    c.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":1}');
    assert.deepEqual((await c.next())[0], {
      error: { class: "GenericError", desc: "Capability 'oob' not available" },
      id: 1,
    });
    // Several objects in one write, no newlines needed (QEMU's streamer does the same).
    c.send('{"execute":"qmp_capabilities","id":{"n":[1,2]}}{"execute":"query-status","id":2}');
    const [neg, st] = await c.next(2);
    assert.deepEqual(neg, { return: {}, id: { n: [1, 2] } });
    assert.deepEqual(st, { return: { running: true, singlestep: false, status: "running" }, id: 2 });
    c.send('{"execute":"qmp_capabilities"}');
    assert.deepEqual((await c.next())[0], {
      error: {
        class: "CommandNotFound",
        desc: "Capabilities negotiation is already complete, command ignored",
      },
    });
    c.close();
  });
});

test("malformed input gets QEMU's error replies, and the connection keeps working", async () => {
  await withServer(async (_s, _h, path) => {
    const c = await Raw.connect(path);
    await c.next();
    c.send('{"execute":"qmp_capabilities"}\n');
    await c.next();
    const cases: [string, Record<string, unknown>][] = [
      ["[1, 2]", { error: { class: "GenericError", desc: "QMP input must be a JSON object" } }],
      ['{"id": 7}', { error: { class: "GenericError", desc: "QMP input lacks member 'execute'" }, id: 7 }],
      [
        '{"execute": 5}',
        { error: { class: "GenericError", desc: "QMP input member 'execute' must be a string" } },
      ],
      [
        '{"execute": "stop", "arguments": [1]}',
        { error: { class: "GenericError", desc: "QMP input member 'arguments' must be an object" } },
      ],
      [
        '{"execute": "stop", "bogus": 1}',
        { error: { class: "GenericError", desc: "QMP input member 'bogus' is unexpected" } },
      ],
      [
        '{"execute": "nope", "id": "x"}',
        { error: { class: "CommandNotFound", desc: "The command nope has not been found" }, id: "x" },
      ],
      [
        '{"execute": "stop", "arguments": {"force": true}}',
        { error: { class: "GenericError", desc: "Parameter 'force' is unexpected" } },
      ],
      ['{"execute": "migrate"}', { error: { class: "GenericError", desc: "Parameter 'uri' is missing" } }],
      [
        '{"execute": "migrate", "arguments": {"uri": 3}}',
        { error: { class: "GenericError", desc: "Invalid parameter type for 'uri', expected: string" } },
      ],
      [
        '{"execute": "__proto__"}',
        { error: { class: "CommandNotFound", desc: "The command __proto__ has not been found" } },
      ],
      [
        '{"execute": "toString"}',
        { error: { class: "CommandNotFound", desc: "The command toString has not been found" } },
      ],
    ];
    for (const [input, want] of cases) {
      c.send(`${input}\n`);
      assert.deepEqual((await c.next())[0], want, input);
    }
    // Lexical garbage: an error, then the next command works.
    c.send('{"execute": @@@}\n');
    const errs = await c.next();
    assert.equal((errs[0]!.error as { class: string }).class, "GenericError");
    assert.match((errs[0]!.error as { desc: string }).desc, /^JSON parse error/);
    // The rest of that line ('}') is also reported; drain until the next reply is ours.
    c.send('{"execute": "query-status", "id": "after"}\n');
    for (;;) {
      const [m] = await c.next();
      if (m!.id !== "after") continue;
      assert.deepEqual(m!.return, { running: true, singlestep: false, status: "running" });
      break;
    }
    c.close();
  });
});

test("stop/cont: events to every negotiated client, none to an unnegotiated one", async () => {
  await withServer(async (_s, _h, path) => {
    const a = await QmpClient.connect(path);
    const b = await QmpClient.connect(path);
    const raw = await Raw.connect(path);
    await raw.next(); // greeting only, no negotiation
    assert.deepEqual(await a.execute("stop"), {});
    const [ea, eb] = await Promise.all([a.waitEvent("STOP"), b.waitEvent("STOP")]);
    assert.equal(ea.data, undefined); // QEMU's STOP has no data member
    assert.ok(Number.isInteger(ea.timestamp.seconds) && ea.timestamp.microseconds < 1e6);
    assert.ok(Math.abs(ea.timestamp.seconds - Date.now() / 1000) < 60);
    assert.equal(eb.event, "STOP");
    assert.deepEqual(await b.execute("query-status"), {
      running: false,
      singlestep: false,
      status: "paused",
    });
    // stop while stopped: no second event
    await a.execute("stop");
    await b.execute("cont");
    await a.waitEvent("RESUME");
    assert.equal(a.events.filter((e) => e.event === "STOP").length, 0);
    assert.deepEqual(await a.execute("query-status"), {
      running: true,
      singlestep: false,
      status: "running",
    });
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(raw.msgs.length, 0, "no events before qmp_capabilities");
    raw.close();
    await a.close();
    await b.close();
  });
});

test("query-version, query-commands, query-cpus-fast without a machine", async () => {
  await withServer(async (_s, _h, path) => {
    const c = await QmpClient.connect(path);
    assert.deepEqual(await c.execute("query-version"), {
      qemu: { major: 7, minor: 2, micro: 0 },
      package: `armbox ${VERSION}`,
    });
    const names = ((await c.execute("query-commands")) as { name: string }[]).map((x) => x.name);
    for (const n of [
      "qmp_capabilities",
      "query-status",
      "stop",
      "cont",
      "query-cpus-fast",
      "snapshot-save",
      "snapshot-load",
      "migrate",
      "migrate-set-parameters",
      "query-migrate",
      "migrate_cancel",
      "system_powerdown",
      "quit",
      "query-version",
      "query-commands",
    ]) {
      assert.ok(names.includes(n), n);
    }
    assert.deepEqual(await c.execute("query-cpus-fast"), []);
    await assert.rejects(
      c.execute("snapshot-save", { file: join(dir, "x.snap") }),
      /waiting for an incoming migration/,
    );
    await c.close();
  });
});

test("migration commands are delegated; exec: and other URIs are refused; MIGRATION events", async () => {
  const mig = new FakeMigration();
  await withServer(async (_s, _h, path) => {
    const c = await QmpClient.connect(path);
    assert.deepEqual(await c.execute("query-migrate"), {}); // QEMU: {} before any migration
    for (const uri of [
      "exec:cat > /tmp/x",
      "exec:rm -rf /",
      "unix:",
      "rdma:1.2.3.4:5",
      "tcp:",
      "tcp:host",
      "tcp:h:99999",
      "file:",
    ]) {
      const e = await c.execute("migrate", { uri }).then(
        () => null,
        (x: unknown) => x,
      );
      assert.ok(e instanceof QmpReplyError, uri);
      assert.equal(e.errorClass, "GenericError");
    }
    await assert.rejects(c.execute("migrate", { uri: "exec:true" }), /never runs a shell/);
    assert.deepEqual(mig.started, []);
    await assert.rejects(c.execute("migrate", { uri: "tcp:127.0.0.1:1-refused" }), QmpReplyError);
    await assert.rejects(c.execute("migrate", { uri: "file:/refused" }), /connection refused/);

    assert.deepEqual(
      await c.execute("migrate-set-parameters", { "downtime-limit": 50, "max-bandwidth": 1e9 }),
      {},
    );
    assert.deepEqual(mig.parameters, { "downtime-limit": 50, "max-bandwidth": 1e9 });
    assert.deepEqual(await c.execute("query-migrate-parameters"), {
      "downtime-limit": 50,
      "max-bandwidth": 1e9,
    });
    await assert.rejects(c.execute("migrate-set-parameters", { "downtime-limit": -1 }), /downtime_limit/);
    await assert.rejects(c.execute("migrate-set-parameters", { "downtime-limit": 1.5 }), /expected: integer/);
    await assert.rejects(c.execute("migrate-set-parameters", { "xbzrle-cache-size": 1 }), /unexpected/);

    assert.deepEqual(await c.execute("migrate", { uri: "tcp:127.0.0.1:4444" }), {});
    assert.deepEqual(mig.started, ["tcp:127.0.0.1:4444"]);
    assert.deepEqual((await c.waitEvent("MIGRATION")).data, { status: "setup" });
    assert.deepEqual((await c.waitEvent("MIGRATION")).data, { status: "active" });
    assert.deepEqual(await c.execute("query-migrate"), { status: "active", "total-time": 5 });
    await assert.rejects(
      c.execute("migrate", { uri: "file:/tmp/again" }),
      /There's a migration process in progress/,
    );
    assert.deepEqual(await c.execute("migrate_cancel"), {});
    assert.deepEqual((await c.waitEvent("MIGRATION")).data, { status: "cancelling" });
    assert.deepEqual((await c.waitEvent("MIGRATION")).data, { status: "cancelled" });
    assert.deepEqual(await c.execute("migrate", { uri: "file:/tmp/vm.mig" }), {});
    assert.deepEqual(
      await c.execute("migrate", { uri: "tcp:[::1]:5555" }).catch((e: Error) => e.message),
      "There's a migration process in progress",
    );
    await c.close();
  }, new FakeHost(mig));
});

test("system_powerdown: reply, then POWERDOWN and SHUTDOWN; quit: reply, then SHUTDOWN host-qmp-quit", async () => {
  await withServer(async (_s, host, path) => {
    const c = await QmpClient.connect(path);
    const order: string[] = [];
    c.onEvent = (e) => order.push(e.event);
    assert.deepEqual(await c.execute("system_powerdown"), {});
    assert.deepEqual((await c.waitEvent("SHUTDOWN")).data, { guest: false, reason: "host-ui" });
    assert.deepEqual(order, ["POWERDOWN", "SHUTDOWN"]);
    assert.deepEqual(await c.execute("query-status"), {
      running: false,
      singlestep: false,
      status: "shutdown",
    });
    await assert.rejects(c.execute("cont"), /Resetting the Virtual Machine is required/);
    assert.deepEqual(await c.execute("quit"), {});
    assert.equal(host.quitCode, 0);
    await c.close();
  });
});

test("several clients at once, commands serialised, and close() ends every connection", async () => {
  const host = new FakeHost();
  const path = sockPath();
  const s = await QmpServer.listen(`unix:${path}`, host);
  assert.equal(host.attached, 1);
  const clients = await Promise.all(Array.from({ length: 8 }, () => QmpClient.connect(path)));
  const results = await Promise.all(
    clients.flatMap((c, i) => [c.execute(i % 2 ? "stop" : "cont"), c.execute("query-status")]),
  );
  assert.equal(results.length, 16);
  assert.equal(s.clientCount, 8);
  const closed = clients.map((c) => c.execute("query-status").catch(() => "closed"));
  await s.close();
  await Promise.all(closed);
  assert.equal(host.attached, 0);
  await assert.rejects(QmpClient.connect(path, true, 1000));
});

test("a flood of pipelined commands is answered in order, one reply each", async () => {
  await withServer(async (_s, _h, path) => {
    const c = await Raw.connect(path);
    await c.next();
    c.send('{"execute":"qmp_capabilities"}');
    await c.next();
    const n = 3000;
    let text = "";
    for (let i = 0; i < n; i++) text += `{"execute":"query-status","id":${i}}`;
    for (let o = 0; o < text.length; o += 4096) c.send(text.slice(o, o + 4096));
    const replies = await c.next(n);
    assert.deepEqual(
      replies.map((r) => r.id),
      Array.from({ length: n }, (_, i) => i),
    );
    c.close();
  });
});

test("TCP: listens on tcp:127.0.0.1:0 and answers", async () => {
  const s = await QmpServer.listen("tcp:127.0.0.1:0", new FakeHost());
  try {
    assert.equal(s.address.kind, "tcp");
    const port = (s.address as { port: number }).port;
    assert.ok(port > 0);
    const c = await QmpClient.connect(`tcp:127.0.0.1:${port}`);
    assert.equal(((await c.execute("query-status")) as { status: string }).status, "running");
    await c.close();
  } finally {
    await s.close();
  }
});

test("addresses: unix/tcp/IPv6/QEMU's server,nowait suffix; bad ones refused", () => {
  assert.deepEqual(parseQmpAddress("unix:/tmp/a.sock,server,nowait"), { kind: "unix", path: "/tmp/a.sock" });
  assert.deepEqual(parseQmpAddress("tcp:localhost:4444,server=on,wait=off"), {
    kind: "tcp",
    host: "localhost",
    port: 4444,
  });
  assert.deepEqual(parseQmpAddress("tcp:[::1]:4444"), { kind: "tcp", host: "::1", port: 4444 });
  assert.deepEqual(parseQmpAddress("tcp::4444"), { kind: "tcp", host: "127.0.0.1", port: 4444 });
  assert.deepEqual(parseQmpAddress("/run/vm.qmp", true), { kind: "unix", path: "/run/vm.qmp" });
  for (const bad of ["/run/vm.qmp", "tcp:h", "tcp:h:70000", "unix:", "exec:sh", "tcp:h:1,reconnect=1"]) {
    assert.throws(() => parseQmpAddress(bad), /QMP address/, bad);
  }
});

// ---------------------------------------------------------------------------
// The splitter and robustness

function split(chunks: Uint8Array[]): StreamItem[] {
  const out: StreamItem[] = [];
  const s = new JsonSplitter((i) => out.push(i));
  for (const c of chunks) s.feed(c);
  return out;
}

test("splitter: any chunking of a stream of JSON values gives the same values", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.array(fc.jsonValue())), {
        maxLength: 6,
      }),
      fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 30 }),
      fc.constantFrom("", "\n", "\r\n", "  "),
      (values, cuts, sep) => {
        const bytes = new TextEncoder().encode(values.map((v) => JSON.stringify(v)).join(sep));
        const chunks: Uint8Array[] = [];
        let o = 0;
        for (const c of cuts) {
          if (o >= bytes.length) break;
          chunks.push(bytes.subarray(o, o + c));
          o += c;
        }
        chunks.push(bytes.subarray(o));
        const items = split(chunks);
        assert.deepEqual(
          items.map((i) => (i.kind === "value" ? JSON.parse(i.text) : i)),
          values.map((v) => JSON.parse(JSON.stringify(v))),
        );
      },
    ),
  );
});

test("splitter: nesting and length limits reset instead of growing without bound", () => {
  const deep = split([new TextEncoder().encode(`${"[".repeat(5000)}`)]);
  assert.equal(deep.length, 1); // reported once; the rest of the line is discarded
  for (const d of deep) assert.match((d as { message: string }).message, /nesting too deep/);
  const long = split([new TextEncoder().encode(`{"a":"${"x".repeat(2 << 20)}"}`)]);
  assert.ok(long.some((i) => i.kind === "error" && /too long/.test(i.message)));
  const bad = split([new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])]);
  assert.deepEqual(bad, [{ kind: "error", message: "JSON parse error, invalid UTF-8 sequence" }]);
});

async function probe(c: Raw, id: string): Promise<void> {
  c.send(`{"execute":"qmp_capabilities","id":"${id}-neg"}\n{"execute":"query-version","id":"${id}"}\n`);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const [m] = await c.next();
    assert.ok("error" in m! || "return" in m! || "event" in m!, JSON.stringify(m));
    if (m!.id === id) {
      assert.ok("return" in m!);
      return;
    }
    assert.ok(Date.now() < deadline);
  }
}

test("property: random bytes never crash the server; it serves the next connection", async () => {
  await withServer(async (_s, _h, path) => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (payload) => {
        const c = await Raw.connect(path);
        await c.next(); // greeting
        c.send(payload);
        await new Promise((r) => setTimeout(r, 1));
        // Whatever came back is well-formed QMP (errors, or replies to accidental commands).
        for (const m of c.msgs) assert.ok("error" in m || "return" in m || "event" in m, JSON.stringify(m));
        c.close();
        const d = await Raw.connect(path);
        await d.next();
        await probe(d, "next");
        d.close();
      }),
      { numRuns: 150 },
    );
  });
});

test("property: any complete JSON value (random, or command-shaped) gets a reply and the connection goes on", async () => {
  await withServer(async (_s, _h, path) => {
    const enc = new TextEncoder();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc
            .record(
              {
                execute: fc.oneof(
                  fc.constantFrom(
                    "query-status",
                    "migrate",
                    "snapshot-load",
                    "qmp_capabilities",
                    "query-cpus-fast",
                  ),
                  fc.string(),
                ),
                arguments: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue()),
                id: fc.jsonValue(),
                extra: fc.jsonValue(),
              },
              { requiredKeys: [] },
            )
            .map((v) => JSON.stringify(v)),
        ),
        fc.boolean(),
        async (text, negotiated) => {
          const c = await Raw.connect(path);
          await c.next();
          if (negotiated) {
            c.send('{"execute":"qmp_capabilities"}');
            await c.next();
          }
          c.send(enc.encode(`${text}\n`));
          await probe(c, "probe");
          c.close();
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------
// armbox qmp

function capture() {
  const io = {
    outText: "",
    errText: "",
    out: (s: string) => void (io.outText += s),
    err: (s: string) => void (io.errText += s),
  };
  return io;
}

test("armbox qmp: prints the return (0), the error desc (1), usage/connection errors (2)", async () => {
  await withServer(async (_s, _h, path) => {
    let io = capture();
    assert.equal(await qmpCommand(path, "query-status", undefined, {}, io), 0);
    assert.deepEqual(JSON.parse(io.outText), { running: true, singlestep: false, status: "running" });
    io = capture();
    assert.equal(await qmpCommand(`unix:${path}`, "migrate", '{"uri":"exec:sh"}', {}, io), 1);
    assert.match(io.errText, /never runs a shell/);
    io = capture();
    assert.equal(await qmpCommand(path, "no-such", undefined, {}, io), 1);
    assert.equal(io.errText, "The command no-such has not been found\n");
    io = capture();
    assert.equal(await qmpCommand(path, "migrate", "{nope", {}, io), 2);
    assert.match(io.errText, /not valid JSON/);
    io = capture();
    assert.equal(await qmpCommand(path, "migrate", "[1]", {}, io), 2);
    io = capture();
    assert.equal(await qmpCommand(join(dir, "absent.sock"), "query-status", undefined, {}, io), 2);
    assert.match(io.errText, /cannot connect/);
    io = capture();
    assert.equal(await qmpCommand("exec:foo", "query-status", undefined, {}, io), 2);
  });
});

test("armbox qmp through main(): registered as a command", async () => {
  const { main } = await import("../src/cli/main.ts");
  await withServer(async (_s, _h, path) => {
    const writes: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => {
      writes.push(String(s));
      return true;
    }) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(["qmp", path, "query-version"]);
    } finally {
      process.stdout.write = orig;
    }
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(writes.join("")), {
      qemu: { major: 7, minor: 2, micro: 0 },
      package: `armbox ${VERSION}`,
    });
  });
});

test("fuzzer findings: a framing error answers in its place, parse errors are one line, a non-string capability is named by type", async () => {
  await withServer(async (_s, _h, path) => {
    const c = await Raw.connect(path);
    await c.next();
    c.send('{"execute":"qmp_capabilities"}\n');
    await c.next();
    // The error reply came ahead of the earlier request's (53,317 times in 10^6 lines).
    c.send('{"execute":"query-status","id":1}\n{"a":\u0001}\n{"execute":"query-status","id":2}\n');
    // (The lexer resynchronises after the bad byte: the stray '}' is a second error.)
    const [a, b, x, d] = await c.next(4);
    assert.equal(a!.id, 1);
    for (const m of [b, x]) assert.ok(m!.error && !("id" in m!), JSON.stringify(m));
    assert.equal(d!.id, 2);
    // V8's message quoted the input back, newlines included.
    c.send('{\n"a":\n}\n');
    const [e] = await c.next();
    const desc = (e!.error as { desc: string }).desc;
    assert.match(desc, /^JSON parse error, /);
    assert.doesNotMatch(desc, /[\n\r]|is not valid JSON/);
    c.send('{"execute":"qmp_capabilities","arguments":{"enable":[{"a":1}]},"id":3}\n');
    const [f] = await c.next();
    assert.deepEqual(f, {
      error: {
        class: "CommandNotFound",
        desc: "Capabilities negotiation is already complete, command ignored",
      },
      id: 3,
    });
    c.close();
    const c2 = await Raw.connect(path);
    await c2.next();
    c2.send('{"execute":"qmp_capabilities","arguments":{"enable":[{"a":1}]},"id":4}\n');
    const [g] = await c2.next();
    assert.deepEqual(g, {
      error: { class: "GenericError", desc: "Invalid parameter type for 'enable[0]', expected: string" },
      id: 4,
    });
    c2.close();
  });
});
