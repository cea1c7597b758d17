/**
 * The QMP wire protocol (QEMU's docs/interop/qmp-spec.rst): JSON objects on a byte stream,
 * not necessarily one per line. Like QEMU's json-streamer, the splitter below finds where
 * each top-level value ends by counting brackets outside strings, and recovers from a
 * lexical error by reporting it and starting afresh at the next byte, so a client that
 * sent garbage can go on talking. A message longer than MAX_MESSAGE or nested deeper than
 * MAX_NESTING is different: it is reported once and the rest of its line is discarded up to
 * the next newline (never parsed from the middle, where a string's contents would read as
 * commands). Shared by the server and the client.
 */

import { VERSION } from "../../version.ts";

/**
 * The QEMU version armbox reports: the QEMU whose interface it implements and is checked
 * against (clients such as libvirt gate features on it); armbox's own version is in
 * `package`, where QEMU puts its distribution's ("armbox 0.1.0").
 */
export const QEMU_VERSION = { major: 7, minor: 2, micro: 0 } as const;
export const QMP_PACKAGE = `armbox ${VERSION}`;
/** HMP's `info version` text, the same on the console monitor and through QMP. */
export const HMP_VERSION = `${QEMU_VERSION.major}.${QEMU_VERSION.minor}.${QEMU_VERSION.micro} (${QMP_PACKAGE})`;

/** QEMU's VersionInfo (greeting and query-version). */
export function versionInfo(): { qemu: { major: number; minor: number; micro: number }; package: string } {
  return { qemu: { ...QEMU_VERSION }, package: QMP_PACKAGE };
}

/** QMP error classes (QAPI's QapiErrorClass) that armbox uses. */
export type QmpErrorClass = "GenericError" | "CommandNotFound" | "DeviceNotActive" | "DeviceNotFound";

/** A command failure, turned into `{"error": {"class", "desc"}}`. */
export class QmpError extends Error {
  override readonly name = "QmpError";
  constructor(
    readonly errorClass: QmpErrorClass,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Longest single message accepted: 1 MiB (QEMU's parser allows 64 MiB; no armbox command
 * takes more than a path and a few names). A longer one is discarded to its newline.
 */
export const MAX_MESSAGE = 1 << 20;
/** Deepest nesting accepted (QEMU's json-streamer: MAX_NESTING 1024). */
export const MAX_NESTING = 1024;

export type StreamItem = { kind: "value"; text: string } | { kind: "error"; message: string };

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
/** Bytes that may appear outside strings inside a JSON value (structure, numbers, literals). */
const TOKEN = new Uint8Array(256);
for (const c of '{}[]:,"-+.0123456789eEtrufalsn') TOKEN[c.charCodeAt(0)] = 1;
for (const c of WS) TOKEN[c] = 1;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Splits a byte stream into top-level JSON texts. Feed it chunks; it calls `emit` with each
 * complete value's text (still to be JSON.parse'd) or with a framing error.
 */
export class JsonSplitter {
  private parts: Uint8Array[] = [];
  private start = -1;
  private length = 0;
  private depth = 0;
  private inString = false;
  private escape = false;
  /** Inside a bare top-level scalar (123, "x", true): ends at whitespace or a bracket. */
  private scalar = false;
  /** After an over-long or too deeply nested message: skipping to the end of its line. */
  private discarding = false;

  constructor(private readonly emit: (item: StreamItem) => void) {}

  feed(chunk: Uint8Array): void {
    this.start = this.depth > 0 || this.scalar ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.discarding) {
        if (b === 0x0a) this.discarding = false;
        continue;
      }
      if (this.depth === 0 && !this.scalar) {
        if (WS.has(b)) continue;
        this.start = i;
        if (b === 0x7b || b === 0x5b) {
          this.depth = 1;
          continue;
        }
        if (b === 0x7d || b === 0x5d) {
          this.flushTo(chunk, i + 1);
          continue;
        }
        this.scalar = true;
        if (b === 0x22) this.inString = true;
        continue;
      }
      if (this.scalar) {
        if (this.inString) {
          this.stringByte(b);
          if (!this.inString) this.flushTo(chunk, i + 1);
          continue;
        }
        if (WS.has(b) || b === 0x7b || b === 0x5b || b === 0x7d || b === 0x5d || b === 0x22) {
          this.flushTo(chunk, i);
          i--; // look at the delimiter again at top level
          continue;
        }
      } else if (this.inString) {
        this.stringByte(b);
      } else if (b === 0x22) {
        this.inString = true;
      } else if (b === 0x7b || b === 0x5b) {
        if (++this.depth > MAX_NESTING) {
          this.failLine("JSON parse error, nesting too deep");
          continue;
        }
      } else if (b === 0x7d || b === 0x5d) {
        if (--this.depth === 0) {
          this.flushTo(chunk, i + 1);
          continue;
        }
      } else if (!TOKEN[b]) {
        this.fail(`JSON parse error, invalid character 0x${b.toString(16).padStart(2, "0")}`);
        continue;
      }
      if (this.length + (i - this.start) > MAX_MESSAGE) this.failLine("JSON parse error, message too long");
    }
    if (this.start >= 0 && (this.depth > 0 || this.scalar)) {
      const rest = chunk.subarray(this.start);
      this.length += rest.length;
      if (this.length > MAX_MESSAGE) this.failLine("JSON parse error, message too long");
      else this.parts.push(rest.slice());
    }
  }

  private stringByte(b: number): void {
    if (this.escape) this.escape = false;
    else if (b === 0x5c) this.escape = true;
    else if (b === 0x22) this.inString = false;
  }

  private flushTo(chunk: Uint8Array, end: number): void {
    const last = chunk.subarray(this.start, end);
    let bytes: Uint8Array;
    if (this.parts.length === 0) bytes = last;
    else {
      bytes = new Uint8Array(this.length + last.length);
      let o = 0;
      for (const p of this.parts) {
        bytes.set(p, o);
        o += p.length;
      }
      bytes.set(last, o);
    }
    this.reset();
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      this.emit({ kind: "error", message: "JSON parse error, invalid UTF-8 sequence" });
      return;
    }
    this.emit({ kind: "value", text });
  }

  /** A lexical error: report it, drop what was gathered, start again at the next byte. */
  private fail(message: string): void {
    this.reset();
    this.emit({ kind: "error", message });
  }

  /** A message over a limit: report it once, discard the rest of its line. */
  private failLine(message: string): void {
    this.fail(message);
    this.discarding = true;
  }

  private reset(): void {
    this.parts = [];
    this.length = 0;
    this.depth = 0;
    this.inString = false;
    this.escape = false;
    this.scalar = false;
    this.start = -1;
  }
}

/** Parses one framed text; a syntax error becomes QEMU's "JSON parse error, …". */
export function parseJsonText(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, message: `JSON parse error, ${jsonReason((e as Error).message)}` };
  }
}

/**
 * JSON.parse's reason in one short line: V8 quotes the input back ('Unexpected token
 * '}', "{\n"a":\n}" is not valid JSON'), newlines and control characters included.
 */
function jsonReason(message: string): string {
  const r = message
    .replace(/, ".*" is not valid JSON$/s, "")
    .split("")
    .map((ch) => {
      const c = ch.charCodeAt(0);
      return c < 0x20 || c === 0x7f ? `\\u${c.toString(16).padStart(4, "0")}` : ch;
    })
    .join("");
  return r.length > 200 ? `${r.slice(0, 200)}…` : r;
}

/** QMP's event timestamp: wall-clock time split in seconds and microseconds. */
export function qmpTimestamp(): { seconds: number; microseconds: number } {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
}

const enc = new TextEncoder();
/** One message on the wire: compact JSON and CRLF, as QEMU's monitor writes it. */
export function frame(msg: unknown): Uint8Array {
  return enc.encode(`${JSON.stringify(msg)}\r\n`);
}

// ---------------------------------------------------------------------------
// Addresses

export type QmpAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/**
 * Whether QEMU would wait for a client on this QMP address before starting the guest: a
 * listening chardev (`,server` or `,server=on`) waits unless `,nowait` or `,wait=off`.
 */
export function qmpWaits(spec: string): boolean {
  const opts = spec.split(",").slice(1);
  const server = opts.some((o) => o === "server" || o === "server=on");
  const nowait = opts.some((o) => o === "nowait" || o === "wait=off");
  return server && !nowait;
}

/**
 * Parses `unix:PATH` or `tcp:HOST:PORT` (HOST may be `[v6]`), ignoring QEMU's chardev
 * suffixes `,server`, `,nowait`, `,server=on`, `,wait=on|off` (see qmpWaits). With `bareIsUnix`, a plain
 * path is a Unix socket (the client's `armbox qmp PATH`).
 */
export function parseQmpAddress(spec: string, bareIsUnix = false): QmpAddress {
  let s = spec;
  const comma = s.indexOf(",");
  if (comma >= 0) {
    const opts = s.slice(comma + 1).split(",");
    for (const o of opts) {
      if (!/^(server(=on)?|nowait|wait(=on|=off)?)$/.test(o))
        throw new Error(`QMP address '${spec}': unsupported option '${o}'`);
    }
    s = s.slice(0, comma);
  }
  if (s.startsWith("unix:")) {
    const path = s.slice(5);
    if (path === "") throw new Error(`QMP address '${spec}': empty socket path`);
    return { kind: "unix", path };
  }
  if (s.startsWith("tcp:")) {
    const m = /^tcp:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
    const port = m ? Number(m[3]) : -1;
    if (!m || port > 65535) throw new Error(`QMP address '${spec}': use tcp:HOST:PORT`);
    return { kind: "tcp", host: m[1] ?? (m[2] || "127.0.0.1"), port };
  }
  if (bareIsUnix && s !== "" && !/^[a-z]+:/.test(s)) return { kind: "unix", path: s };
  throw new Error(`QMP address '${spec}': use unix:PATH or tcp:HOST:PORT`);
}
