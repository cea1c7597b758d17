/**
 * The QMP control server, speaking QEMU's protocol (docs/interop/qmp-spec.rst) so that
 * existing QMP clients work: a greeting, `qmp_capabilities` first, `{"execute", "arguments",
 * "id"}` in, `{"return"}` or `{"error": {"class", "desc"}}` out with the id echoed, and
 * events with timestamps to every client past negotiation. Several clients at once, over a
 * Unix socket (`unix:PATH`) or TCP (`tcp:HOST:PORT`). Commands run one at a time, in
 * arrival order, as QEMU's main loop runs them. The command set is in ./commands.ts.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { COMMANDS, checkArguments, type QmpContext } from "./commands.ts";
import type { VmmHost } from "./host.ts";
import {
  frame,
  JsonSplitter,
  parseJsonText,
  parseQmpAddress,
  type QmpAddress,
  QmpError,
  qmpTimestamp,
  versionInfo,
} from "./protocol.ts";

/** Requests a client may have queued before its socket stops being read (QEMU: 8). */
const MAX_QUEUED = 8;

class Client {
  negotiated = false;
  closed = false;
  queued = 0;
  constructor(readonly socket: net.Socket) {}
  send(msg: unknown): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(frame(msg));
  }
}

export class QmpServer {
  private readonly clients = new Set<Client>();
  private readonly unsubscribe: () => void;
  /** Commands from every client run in one queue, like QEMU's main loop. */
  private queue: Promise<void> = Promise.resolve();
  private closing = false;

  private constructor(
    private readonly server: net.Server,
    readonly address: QmpAddress,
    private readonly host: VmmHost,
  ) {
    this.unsubscribe = host.subscribe((e) => {
      switch (e.kind) {
        case "stop":
          return this.event("STOP");
        case "resume":
          return this.event("RESUME");
        case "powerdown":
          return this.event("POWERDOWN");
        case "shutdown":
          return this.event("SHUTDOWN", { guest: e.guest, reason: e.reason });
        case "reset":
          return this.event("RESET", { guest: e.guest, reason: e.reason });
        case "migration":
          return this.event("MIGRATION", { status: e.status });
      }
    });
    host.controlAttached(true);
    server.on("connection", (s) => this.accept(s));
  }

  /** Listens on `spec` (`unix:PATH` or `tcp:HOST:PORT`; port 0 picks a free one). */
  static async listen(spec: string | QmpAddress, host: VmmHost): Promise<QmpServer> {
    const addr = typeof spec === "string" ? parseQmpAddress(spec) : spec;
    const server = net.createServer();
    if (addr.kind === "unix") removeStaleSocket(addr.path);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const done = () => {
        server.off("error", reject);
        resolve();
      };
      if (addr.kind === "unix") server.listen(addr.path, done);
      else server.listen(addr.port, addr.host, done);
    });
    let bound: QmpAddress = addr;
    const a = server.address();
    if (addr.kind === "tcp" && a && typeof a === "object")
      bound = { kind: "tcp", host: addr.host, port: a.port };
    return new QmpServer(server, bound, host);
  }

  /** Sends an event to every client past capabilities negotiation. */
  event(name: string, data?: Record<string, unknown>): void {
    const msg: Record<string, unknown> = { event: name };
    if (data !== undefined) msg.data = data;
    msg.timestamp = qmpTimestamp();
    for (const c of this.clients) if (c.negotiated) c.send(msg);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Stops listening, flushes and closes every connection, removes the Unix socket. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.unsubscribe();
    this.host.controlAttached(false);
    await this.queue.catch(() => {});
    const ended = [...this.clients].map(
      (c) =>
        new Promise<void>((res) => {
          c.closed = true;
          if (c.socket.destroyed) return res();
          c.socket.once("close", () => res());
          c.socket.end();
          setTimeout(() => c.socket.destroy(), 500).unref();
        }),
    );
    await Promise.all([...ended, new Promise<void>((res) => this.server.close(() => res()))]);
    if (this.address.kind === "unix") {
      try {
        fs.unlinkSync(this.address.path);
      } catch {
        // already gone
      }
    }
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const c = new Client(socket);
    this.clients.add(c);
    socket.setNoDelay?.(true);
    const splitter = new JsonSplitter((item) => {
      if (item.kind === "error") {
        c.send({ error: { class: "GenericError", desc: item.message } });
        return;
      }
      this.enqueue(c, item.text);
    });
    socket.on("data", (d: Buffer) => splitter.feed(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    const drop = () => {
      c.closed = true;
      this.clients.delete(c);
    };
    socket.on("error", drop);
    socket.on("close", drop);
    c.send({ QMP: { version: versionInfo(), capabilities: [] } });
  }

  private enqueue(c: Client, text: string): void {
    // Like QEMU's monitor, stop reading from a client that has too many requests queued.
    if (++c.queued >= MAX_QUEUED) c.socket.pause();
    this.queue = this.queue
      .then(() => this.handle(c, text))
      .catch(() => {})
      .then(() => {
        if (--c.queued < MAX_QUEUED && c.socket.isPaused()) c.socket.resume();
      });
  }

  private async handle(c: Client, text: string): Promise<void> {
    if (c.closed) return;
    const parsed = parseJsonText(text);
    if (!parsed.ok) {
      c.send({ error: { class: "GenericError", desc: parsed.message } });
      return;
    }
    const req = parsed.value;
    if (typeof req !== "object" || req === null || Array.isArray(req)) {
      c.send({ error: { class: "GenericError", desc: "QMP input must be a JSON object" } });
      return;
    }
    const obj = req as Record<string, unknown>;
    const hasId = Object.hasOwn(obj, "id");
    const reply = (body: Record<string, unknown>) => c.send(hasId ? { ...body, id: obj.id } : body);
    const fail = (cls: string, desc: string) => reply({ error: { class: cls, desc } });

    // The checks of QEMU's qmp_dispatch_check_obj, with its messages.
    for (const key of Object.keys(obj)) {
      if (key === "execute" || key === "exec-oob") {
        if (typeof obj[key] !== "string")
          return fail("GenericError", `QMP input member '${key}' must be a string`);
      } else if (key === "arguments") {
        const a = obj.arguments;
        if (typeof a !== "object" || a === null || Array.isArray(a)) {
          return fail("GenericError", "QMP input member 'arguments' must be an object");
        }
      } else if (key !== "id") {
        return fail("GenericError", `QMP input member '${key}' is unexpected`);
      }
    }
    if (Object.hasOwn(obj, "exec-oob")) {
      // Out-of-band execution is not offered in the greeting.
      return fail("GenericError", "QMP input member 'exec-oob' is unexpected");
    }
    if (!Object.hasOwn(obj, "execute")) return fail("GenericError", "QMP input lacks member 'execute'");
    const name = obj.execute as string;
    const args = (obj.arguments ?? {}) as Record<string, unknown>;

    if (!c.negotiated) {
      if (name !== "qmp_capabilities") {
        return fail("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
      }
    } else if (name === "qmp_capabilities") {
      return fail("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
    }
    const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!cmd) return fail("CommandNotFound", `The command ${name} has not been found`);
    const ctx: QmpContext = {
      host: this.host,
      negotiate: () => {
        c.negotiated = true;
      },
      afterReply: [],
    };
    try {
      checkArguments(cmd.args, args);
      const ret = await cmd.run(args, ctx);
      reply({ return: ret ?? {} });
    } catch (e) {
      if (e instanceof QmpError) fail(e.errorClass, e.message);
      else fail("GenericError", (e as Error)?.message ?? String(e));
      return;
    }
    for (const f of ctx.afterReply) f();
  }
}

/** Starts the QMP server for `armbox run --qmp SPEC`. */
export function startQmp(spec: string, host: VmmHost): Promise<QmpServer> {
  return QmpServer.listen(spec, host);
}

/** QEMU removes a leftover socket file before binding; anything else at the path is kept. */
function removeStaleSocket(path: string): void {
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  } catch {
    // nothing there
  }
}
