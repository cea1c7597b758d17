/**
 * The QMP control server, speaking QEMU's protocol (docs/interop/qmp-spec.rst) so that
 * existing QMP clients work: a greeting, `qmp_capabilities` first, `{"execute", "arguments",
 * "id"}` in, `{"return"}` or `{"error": {"class", "desc"}}` out with the id echoed, and
 * events with timestamps to every client past negotiation. Several clients at once, over a
 * Unix socket (`unix:PATH`) or TCP (`tcp:HOST:PORT`). Each client's commands run in its
 * order, one at a time, and commands run one at a time on one queue, in arrival order, as
 * QEMU's main loop runs them; snapshot-save and snapshot-load do their long I/O off that
 * queue (or as jobs, ./jobs.ts), so they never hold up another client. A client that does
 * not read what it is sent is dropped once MAX_PENDING_WRITE bytes wait for it. The command
 * set is in ./commands.ts.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { formatBytes } from "../host/input-file.ts";
import { COMMANDS, checkArguments, type QmpContext } from "./commands.ts";
import type { VmmHost } from "./host.ts";
import { JobRegistry } from "./jobs.ts";
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

/**
 * Bytes of replies and events that may wait, unsent, for one client (8 MiB: some thousand
 * replies, far beyond what a client that reads ever leaves behind). A client that sends
 * commands but never reads would otherwise make the VMM buffer without bound; past this it
 * is dropped, with a one-line diagnostic.
 */
export const MAX_PENDING_WRITE = 8 << 20;

export interface QmpServerOptions {
  /** One-line diagnostics (a dropped client); default: stderr, prefixed "armbox: ". */
  diag?: (line: string) => void;
  /** Called once, when the first client connects (QEMU's `,server` without `nowait` waits for it). */
  onFirstClient?: () => void;
}

class Client {
  negotiated = false;
  closed = false;
  queued = 0;
  /** This client's commands, one after the other (QEMU runs a client's commands in order). */
  chain: Promise<void> = Promise.resolve();
  constructor(
    readonly socket: net.Socket,
    readonly name: string,
    private readonly overflow: (c: Client) => void,
  ) {}
  send(msg: unknown): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(frame(msg));
    if (this.socket.writableLength > MAX_PENDING_WRITE) this.overflow(this);
  }
}

export class QmpServer {
  private readonly clients = new Set<Client>();
  private readonly unsubscribe: () => void;
  /** Commands from every client run in one queue, like QEMU's main loop. */
  private queue: Promise<void> = Promise.resolve();
  private closing = false;
  private accepted = 0;
  private onFirstClient: (() => void) | null;
  private readonly diag: (line: string) => void;
  /** The files of the tagged snapshots saved through this server, by tag (snapshot-delete {tag}). */
  private readonly snapshots = new Map<string, string>();
  /** snapshot-save / snapshot-load jobs (QEMU's job list), shared by every client. */
  readonly jobs = new JobRegistry(
    (id, status) => this.event("JOB_STATUS_CHANGE", { id, status }),
    (desc) => new QmpError("GenericError", desc),
  );

  private constructor(
    private readonly server: net.Server,
    readonly address: QmpAddress,
    private readonly host: VmmHost,
    options: QmpServerOptions,
  ) {
    this.diag = options.diag ?? ((line) => process.stderr.write(`armbox: ${line}\n`));
    this.onFirstClient = options.onFirstClient ?? null;
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
  static async listen(
    spec: string | QmpAddress,
    host: VmmHost,
    options: QmpServerOptions = {},
  ): Promise<QmpServer> {
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
    return new QmpServer(server, bound, host, options);
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
    // What was asked before the close is done and answered: every client's commands, the
    // queue, and the jobs (their I/O is bounded).
    await Promise.all([...this.clients].map((c) => c.chain));
    await this.queue.catch(() => {});
    await this.jobs.settled();
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
    const c = new Client(socket, `${++this.accepted} (${this.describe(socket)})`, (x) => this.overflow(x));
    this.clients.add(c);
    socket.setNoDelay?.(true);
    const splitter = new JsonSplitter((item) => {
      // A framing error is answered in its place among the client's requests, as QEMU
      // queues it (an earlier command still running answers first).
      if (item.kind === "error")
        this.enqueue(c, () => c.send({ error: { class: "GenericError", desc: item.message } }));
      else this.enqueue(c, () => this.handle(c, item.text));
    });
    socket.on("data", (d: Buffer) => splitter.feed(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    const drop = () => {
      c.closed = true;
      this.clients.delete(c);
    };
    socket.on("error", drop);
    socket.on("close", drop);
    c.send({ QMP: { version: versionInfo(), capabilities: [] } });
    // The greeting is out first: a guest started here may end armbox before it could be.
    const first = this.onFirstClient;
    this.onFirstClient = null;
    first?.();
  }

  private describe(socket: net.Socket): string {
    if (this.address.kind === "unix") return `unix:${this.address.path}`;
    return `tcp:${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
  }

  /** A client that left more than MAX_PENDING_WRITE bytes unread: dropped, the others go on. */
  private overflow(c: Client): void {
    if (c.closed) return;
    const pending = c.socket.writableLength;
    c.closed = true;
    this.clients.delete(c);
    c.socket.destroy();
    this.diag(
      `QMP client ${c.name} dropped: ${formatBytes(pending)} of replies and events unread, more than the ${formatBytes(MAX_PENDING_WRITE)} allowed`,
    );
  }

  /** Runs `fn` on the command queue, after everything queued before it. */
  private exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  private enqueue(c: Client, work: () => unknown): void {
    // Like QEMU's monitor, stop reading from a client that has too many requests queued.
    if (++c.queued >= MAX_QUEUED) c.socket.pause();
    c.chain = c.chain
      .then(work)
      .catch(() => {})
      .then(() => {
        if (--c.queued < MAX_QUEUED && c.socket.isPaused() && !c.closed) c.socket.resume();
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
      jobs: this.jobs,
      snapshots: this.snapshots,
      exclusive: (fn) => this.exclusive(fn),
      negotiate: () => {
        c.negotiated = true;
      },
      afterReply: [],
    };
    try {
      checkArguments(cmd.args, args);
      const ret = cmd.concurrent ? await cmd.run(args, ctx) : await this.exclusive(() => cmd.run(args, ctx));
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
export function startQmp(spec: string, host: VmmHost, options: QmpServerOptions = {}): Promise<QmpServer> {
  return QmpServer.listen(spec, host, options);
}

/** QEMU removes a leftover socket file before binding; anything else at the path is kept. */
function removeStaleSocket(path: string): void {
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  } catch {
    // nothing there
  }
}
