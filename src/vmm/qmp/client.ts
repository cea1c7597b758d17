/**
 * A small QMP client: connects, reads the greeting, negotiates capabilities, runs commands
 * (matched to replies by id) and collects events. Used by `armbox qmp` and the tests.
 */
import * as net from "node:net";
import { frame, JsonSplitter, parseQmpAddress, type QmpAddress } from "./protocol.ts";

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** An `{"error": …}` reply. */
export class QmpReplyError extends Error {
  override readonly name = "QmpReplyError";
  constructor(
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(desc);
  }
}

export class QmpClient {
  greeting: unknown = null;
  readonly events: QmpEvent[] = [];
  onEvent: ((e: QmpEvent) => void) | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private greeted: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private closedError: Error | null = null;
  private markClosed = () => {};
  /** Resolves once the connection has closed (never rejects). */
  readonly closed = new Promise<void>((resolve) => {
    this.markClosed = resolve;
  });

  private constructor(private readonly socket: net.Socket) {
    const splitter = new JsonSplitter((item) => {
      if (item.kind === "value") this.dispatch(item.text);
    });
    socket.on("data", (d: Buffer) => splitter.feed(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    const closed = (e?: Error) => {
      this.closedError ??= e ?? new Error("the QMP connection closed");
      this.greeted?.reject(this.closedError);
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
      this.markClosed();
    };
    socket.on("error", closed);
    socket.on("close", () => closed());
  }

  /** Connects and waits for the greeting; with `negotiate` (default) also sends qmp_capabilities. */
  static async connect(spec: string | QmpAddress, negotiate = true, timeoutMs = 10_000): Promise<QmpClient> {
    const addr = typeof spec === "string" ? parseQmpAddress(spec, true) : spec;
    const socket = addr.kind === "unix" ? net.connect(addr.path) : net.connect(addr.port, addr.host);
    const c = new QmpClient(socket);
    const timer = setTimeout(
      () => socket.destroy(new Error("timed out waiting for the QMP greeting")),
      timeoutMs,
    );
    try {
      await new Promise<void>((resolve, reject) => {
        c.greeted = { resolve, reject };
      });
    } finally {
      clearTimeout(timer);
      c.greeted = null;
    }
    if (negotiate) await c.execute("qmp_capabilities");
    return c;
  }

  /** Runs `command`; resolves with its `return`, rejects with QmpReplyError on an error reply. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const msg: Record<string, unknown> = { execute: command };
    if (args !== undefined) msg.arguments = args;
    msg.id = id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(frame(msg));
    });
  }

  /** Sends raw bytes (tests of the server's robustness). */
  sendRaw(bytes: Uint8Array | string): void {
    this.socket.write(bytes);
  }

  /** Resolves with the first event named `name` (already received or still to come). */
  waitEvent(name: string, timeoutMs = 10_000): Promise<QmpEvent> {
    const seen = this.events.find((e) => e.event === name);
    if (seen) {
      this.events.splice(this.events.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const prev = this.onEvent;
      const timer = setTimeout(() => {
        this.onEvent = prev;
        reject(new Error(`no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.onEvent = (e) => {
        prev?.(e);
        if (e.event !== name) return;
        clearTimeout(timer);
        this.onEvent = prev;
        this.events.splice(this.events.indexOf(e), 1);
        resolve(e);
      };
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once("close", () => resolve());
      this.socket.end();
    });
  }

  private dispatch(text: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof msg !== "object" || msg === null) return;
    if (Object.hasOwn(msg, "QMP")) {
      this.greeting = msg.QMP;
      this.greeted?.resolve();
      return;
    }
    if (typeof msg.event === "string") {
      const e = msg as unknown as QmpEvent;
      this.events.push(e);
      this.onEvent?.(e);
      return;
    }
    const p = typeof msg.id === "number" ? this.pending.get(msg.id) : undefined;
    if (!p) return;
    this.pending.delete(msg.id as number);
    if (Object.hasOwn(msg, "error")) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpReplyError(String(err?.class ?? "GenericError"), String(err?.desc ?? "error")));
    } else p.resolve(msg.return);
  }
}
