/**
 * QMP lines: a real QmpServer over a real LocalVmmHost running a small bare-metal guest
 * (guests/migration/bin/idle.elf, which ticks on its virtual timer and sleeps in WFI), and
 * clients on its Unix socket that send generated lines, many per write.
 *
 * An input is one line. Most are structure-aware: a command of COMMANDS (commands.ts) with
 * valid arguments, then zero to three edits (a member dropped, added or mistyped, huge
 * numbers, odd strings, deep nesting, the request's own members broken, an `id` of every
 * JSON type, a generic JSON edit), sometimes pretty-printed over several lines, several to a
 * line, or with no newline at all. The rest are raw: truncated JSON, bytes edited, NULs,
 * invalid UTF-8, garbage, stray brackets, broken JSON over several lines, and rarely an
 * over-long line (past the 1 MiB limit, with a command smuggled after the limit) or one
 * nested past 1024 (a command smuggled after it). Batches go to the negotiated main
 * connection, to a fresh connection that has not negotiated yet (qmp_capabilities comes
 * somewhere in its lines), to two connections at once, or to a connection closed as soon as
 * it has written.
 *
 * The oracle. A batch's lines are written back to back (a raw line followed by bytes that
 * bring the JSON framing back to the top level without ever completing a valid request)
 * and then a sentinel (`query-status` with an id of ours). An independent model of QMP's
 * JSON framing (Framing, written from the protocol's description) says what the server must
 * answer: each complete value is one request, answered once, in order, echoing its id
 * exactly (or with none when it had none; JSON.parse of the value tells); each framing error
 * (an invalid character, invalid UTF-8, a message over the length or nesting limit) is one
 * error reply, never later than the reply to a request that followed it; nothing smuggled
 * past a limit is answered. A command other than qmp_capabilities never succeeds before
 * negotiation, qmp_capabilities never after it, an unknown command never. Every reply is
 * `{"return"}` or `{"error": {"class", "desc"}}` (plus the id): the class one of QAPI's, the
 * desc one line and free of JavaScript internals (descProblem, tested in
 * test/fuzz-smoke.test.ts). The server never drops a connection or writes a line that is not
 * a JSON object, and the sentinel must answer with a consistent status after every batch
 * (the VM still answers query-status); a sentinel not back within BATCH_MS is a crash.
 * Events (STOP, RESUME, JOB_STATUS_CHANGE, …) are skipped. A line is refused when one of its
 * replies is an error, accepted when all succeeded.
 *
 * Commands that end or replace the VM are exercised with harmless arguments: snapshot-save
 * writes into this target's temporary directory, snapshot-load reads prepared files (a
 * valid snapshot, one of another configuration, garbage, /dev/zero, …), `migrate` goes to
 * `file:` in the temporary directory or to a TCP listener of ours that hangs up; quit and
 * system_powerdown end the VM, after which the host and server are rebuilt (counted).
 * Paths and URIs that edits produce are put back inside the temporary directory, so that
 * the fuzzer never writes elsewhere.
 *
 * Defects this target found, fixed since and crashes again if they come back (commit
 * 0117697): a multi-line JSON text with a syntax error answered with a multi-line desc
 * (V8's message quoting the text); a framing error answered ahead of the replies to earlier
 * requests (QEMU queues it in order); qmp_capabilities with an object in `enable`
 * answered "Capability '[object Object]' not available".
 *
 * Input i belongs to batch floor(i / BATCH); a batch's layout comes from its own seed and
 * each line from the seed of its index, so a replay (`--from I --budget 1`) sends the lines
 * of I's batch before I again; the VM's state from earlier batches is not replayed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { VirtMachine } from "../../../src/machine/virt.ts";
import { OutgoingMigration } from "../../../src/vmm/migration/source.ts";
import { COMMANDS } from "../../../src/vmm/qmp/commands.ts";
import { LocalVmmHost } from "../../../src/vmm/qmp/host.ts";
import { QmpServer } from "../../../src/vmm/qmp/server.ts";
import type { RunResult } from "../../../src/vmm/runner.ts";
import { encodeSnapshot } from "../../../src/vmm/snapshot/format.ts";
import { captureSections, snapshotHeader } from "../../../src/vmm/snapshot/machine-state.ts";
import { caseSeed, Rng } from "../../difftest/prng.ts";
import { type Chunk, type FuzzTarget, messageProblem, type Recorder } from "../core.ts";
import { guestFile } from "../corpus.ts";
import { interestingJson, mutateBytes, mutateJson } from "../mutate.ts";

/** QMP's longest message (src/vmm/qmp/protocol.ts MAX_MESSAGE) and deepest nesting. */
const MESSAGE_LIMIT = 1 << 20;
const NESTING_LIMIT = 1024;
/** Lines per batch. */
export const BATCH = 128;
/** A batch segment whose sentinel has not come back in this long is a hang. */
const BATCH_MS = 30_000;

// ---------------------------------------------------------------------------------------
// The "no JavaScript internal" check

/** Words of JavaScript's own error messages (a desc may contain them only if the input did). */
const JS_WORDS: RegExp[] = [
  /\bundefined\b/,
  /\bNaN\b/,
  /\b(?:Type|Reference|Range|Syntax|Internal|Eval|URI|Aggregate)Error\b/,
  /Cannot read/,
  /Cannot set/,
  /Cannot convert/,
  /Cannot mix BigInt/,
  /\[object \w+\]/,
  /is not a function/,
  /is not iterable/,
  /is not defined/,
  /is not a constructor/,
  /Maximum call stack/,
  /\bat (?:async )?[\w.<>$]+ \(.*:\d+:\d+\)/,
  /(?:file|node):[\w/.:-]*:\d+:\d+/,
];

/**
 * Why `desc` (an error reply's desc) is not a clean one-line reason, or null when it is one.
 * `input` is the request text: a JavaScript word that the input itself contains (a command
 * named "undefined", an argument "NaN") may be echoed back and is no internal.
 */
export function descProblem(desc: unknown, input = ""): string | null {
  if (typeof desc !== "string") return `desc is ${desc === null ? "null" : typeof desc}, not a string`;
  if (desc.trim() === "") return "desc is empty";
  if (/[\n\r]/.test(desc)) return "desc spans several lines";
  if (/^\s+at /m.test(desc)) return "desc holds a stack trace";
  for (const re of JS_WORDS) {
    const m = re.exec(desc);
    if (m && !input.includes(m[0])) return `desc holds JavaScript's words '${m[0]}'`;
  }
  // core.ts's list of engine messages, unless the input itself holds such words
  const p = messageProblem(desc);
  if (p && !(input && messageProblem(input.replace(/[\n\r]/g, " ")))) return p;
  return null;
}

/** QAPI's error classes (QapiErrorClass). */
const ERROR_CLASSES = new Set([
  "GenericError",
  "CommandNotFound",
  "DeviceNotActive",
  "DeviceNotFound",
  "KVMMissingCap",
]);
const RUN_STATES = new Set([
  "running",
  "paused",
  "shutdown",
  "inmigrate",
  "postmigrate",
  "finish-migrate",
  "prelaunch",
  "debug",
  "internal-error",
  "io-error",
  "restore-vm",
  "save-vm",
  "suspended",
  "watchdog",
  "guest-panicked",
  "colo",
]);

type Msg = Record<string, unknown>;

/** What is wrong with a reply's shape (not its id), or null. */
function replyProblem(r: Msg, input: string): string | null {
  const keys = Object.keys(r).filter((k) => k !== "id");
  if (keys.length !== 1 || (keys[0] !== "return" && keys[0] !== "error")) {
    return `a reply must hold 'return' or 'error' (and 'id'), not ${JSON.stringify(Object.keys(r))}`;
  }
  if (keys[0] === "return") return null;
  const e = r.error as Msg;
  if (typeof e !== "object" || e === null || Array.isArray(e)) return "'error' is not an object";
  const ek = Object.keys(e).sort().join(",");
  if (ek !== "class,desc") return `'error' must hold class and desc, not ${ek}`;
  if (typeof e.class !== "string" || !ERROR_CLASSES.has(e.class)) {
    return `error class ${JSON.stringify(e.class)} is not one of QAPI's`;
  }
  return descProblem(e.desc, input);
}

/** Which reported defect a bad desc is, if it is one (see the file's header), else null. */
function knownDescDefect(r: Msg): string | null {
  const d = (r.error as Msg | undefined)?.desc;
  if (typeof d !== "string") return null;
  if (d.startsWith("JSON parse error, ") && /[\n\r]/.test(d))
    return "a JSON parse error's desc spans several lines";
  if (/^Capability '\[object Object\]' not available$/.test(d)) {
    return "qmp_capabilities names an object capability '[object Object]'";
  }
  return null;
}

const FRAMING_ERROR =
  /^JSON parse error, (invalid character|invalid UTF-8|message too long|nesting too deep)/;

// ---------------------------------------------------------------------------------------
// The framing model: what QMP's JSON streamer makes of a byte stream

const WS = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
const OPEN = (b: number) => b === 0x7b || b === 0x5b;
const CLOSE = (b: number) => b === 0x7d || b === 0x5d;
const TOKEN = new Uint8Array(256);
for (const c of '{}[]:,"-+.0123456789eEtrufalsn \t\r\n') TOKEN[c.charCodeAt(0)] = 1;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A framing error's kind, as the end of the server's "JSON parse error, …" names it. */
export type FramingErrorKind =
  | "invalid character"
  | "invalid UTF-8"
  | "message too long"
  | "nesting too deep";

/** What the streamer emits: a complete value (queued as a request) or a framing error (answered at once). */
export type FrameEvent = { kind: "value"; text: string } | { kind: "error"; error: FramingErrorKind };

/**
 * QEMU's json-streamer as docs/interop/qmp-spec.rst describes the stream, written here from
 * the protocol (not from src/vmm/qmp/protocol.ts): top-level values framed by counting
 * brackets outside strings, a bare scalar ended by whitespace or a bracket; a byte that
 * cannot appear outside a string inside a value is an error and the streamer starts afresh
 * at the next byte; a message over the length limit or nested too deep is reported once and
 * the rest of its line discarded; a value whose bytes are not UTF-8 is an error.
 */
export class Framing {
  depth = 0;
  inString = false;
  escape = false;
  scalar = false;
  discarding = false;
  /** The current message's bytes. */
  private buf = new Uint8Array(4096);
  private len = 0;
  readonly events: FrameEvent[] = [];

  feed(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this.step(bytes[i]!);
  }

  private reset(): void {
    this.depth = 0;
    this.inString = false;
    this.escape = false;
    this.scalar = false;
    this.len = 0;
  }

  private error(error: FramingErrorKind, discard = false): void {
    this.reset();
    this.events.push({ kind: "error", error });
    this.discarding = discard;
  }

  private flush(): void {
    const b = this.buf.subarray(0, this.len);
    let text: string | null = null;
    try {
      text = utf8.decode(b);
    } catch {
      // not UTF-8
    }
    this.reset();
    if (text !== null) this.events.push({ kind: "value", text });
    else this.events.push({ kind: "error", error: "invalid UTF-8" });
  }

  private add(b: number): void {
    if (this.len === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.len++] = b;
  }

  private stringByte(b: number): void {
    if (this.escape) this.escape = false;
    else if (b === 0x5c) this.escape = true;
    else if (b === 0x22) this.inString = false;
  }

  step(b: number): void {
    if (this.discarding) {
      if (b === 0x0a) this.discarding = false;
      return;
    }
    if (this.depth === 0 && !this.scalar) {
      if (WS(b)) return;
      this.add(b);
      if (OPEN(b)) this.depth = 1;
      else if (CLOSE(b)) this.flush();
      else {
        this.scalar = true;
        if (b === 0x22) this.inString = true;
      }
      return;
    }
    if (this.scalar) {
      if (this.inString) {
        this.add(b);
        this.stringByte(b);
        if (!this.inString) this.flush();
      } else if (WS(b) || OPEN(b) || CLOSE(b) || b === 0x22) {
        this.flush();
        this.step(b);
      } else this.push(b);
      return;
    }
    if (this.inString) {
      this.stringByte(b);
    } else if (b === 0x22) this.inString = true;
    else if (OPEN(b)) {
      if (++this.depth > NESTING_LIMIT) {
        this.error("nesting too deep", true);
        return;
      }
    } else if (CLOSE(b)) {
      if (--this.depth === 0) {
        this.add(b);
        this.flush();
        return;
      }
    } else if (!TOKEN[b]) {
      this.error("invalid character");
      return;
    }
    this.push(b);
  }

  private push(b: number): void {
    this.add(b);
    if (this.len > MESSAGE_LIMIT) this.error("message too long", true);
  }

  /** At the top level, between values. */
  get idle(): boolean {
    return !this.discarding && this.depth === 0 && !this.scalar;
  }

  /**
   * Bytes that bring the streamer back to the top level and never complete a valid request
   * (a comma before the closing brackets is invalid JSON wherever it falls).
   */
  closer(): string {
    if (this.idle) return "";
    if (this.discarding || (this.scalar && !this.inString)) return "\n";
    let s = "";
    if (this.inString) s += this.escape ? 'x"' : '"';
    if (this.scalar) return `${s}\n`;
    return `${s},${"]".repeat(this.depth)}\n`;
  }
}

// ---------------------------------------------------------------------------------------
// Files and addresses the commands may use

interface Places {
  dir: string;
  /** snapshot-load sources. */
  loads: string[];
  /** snapshot-save destinations (all inside dir, or refused before anything is written). */
  saves: string[];
  /** migrate URIs. */
  uris: string[];
  sinkPort: number;
}

/** Arguments that are never paths or URIs (any other string argument is taken for a path). */
const NOT_PATHS = new Set([
  "tag",
  "job-id",
  "id",
  "compress",
  "detach",
  "enable",
  "devices",
  "downtime-limit",
  "max-bandwidth",
]);

/**
 * Puts every path or URI an edit produced back among the harmless ones: any string
 * argument but the known non-path ones must be one of our snapshot-save destinations (or,
 * for snapshot-load, one of our sources), a URI one of ours. So no edit ever makes armbox
 * write outside the temporary directory (a new path argument included, as `vmstate` was).
 */
function sanitize(req: unknown, p: Places, rng: Rng): void {
  if (typeof req !== "object" || req === null || Array.isArray(req)) return;
  const args = (req as Msg).arguments;
  if (typeof args !== "object" || args === null || Array.isArray(args)) return;
  const a = args as Msg;
  const reads = (req as Msg).execute === "snapshot-load";
  for (const key of Object.keys(a)) {
    const v = a[key];
    if (typeof v !== "string" || NOT_PATHS.has(key)) continue;
    if (key === "uri") {
      if (!p.uris.includes(v)) a[key] = rng.pick(p.uris);
    } else if (!p.saves.includes(v) && !(reads && p.loads.includes(v))) {
      a[key] = rng.pick(reads ? p.loads : p.saves);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Structure-aware requests

const IDS = (rng: Rng, i: number): unknown => {
  switch (rng.int(16)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, -0, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, 5e-324, 123456789012]);
    case 3:
      return [];
    case 4:
      return [i, `x${i}`, null, { a: [1, { b: true }] }];
    case 5:
      return {};
    case 6:
      return { n: i, nested: { deep: [[[i]]] }, "": "" };
    case 7:
      return rng.pick(["", "\u0000", "💥", "\ud800", "\u2028\u2029", "\\", '"', "a\nb", "é".repeat(40)]);
    case 8:
      return "i".repeat(rng.chance(0.05) ? 70_000 : rng.pick([100, 1000]));
    case 9: {
      const o = {};
      Object.defineProperty(o, "__proto__", {
        value: i,
        enumerable: true,
        configurable: true,
        writable: true,
      });
      return o;
    }
    case 10:
      return interestingJson(rng);
    default:
      return rng.chance(0.5) ? i : `id-${i}`;
  }
};

const ODD_STRINGS = [
  "",
  "\u0000",
  "a\u0000b",
  "💥",
  "\ud800",
  "\udfff\ud800",
  "\u2028",
  "NaN",
  "undefined",
  "null",
  "__proto__",
  "constructor",
  "toString",
  "../../etc/passwd",
  "%s%n%x",
  "$\u007bx}",
  "\\u0000",
  " ",
  "\t",
];
const HUGE = [
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  2 ** 63,
  2 ** 64,
  1e308,
  -1e308,
  1.5,
  -1,
  2 ** 31,
  2 ** 32,
  -0,
  5e-324,
];
const ODD_NAMES = [
  "",
  "QUERY-STATUS",
  "query-statu",
  "query-status ",
  " query-status",
  "query_status",
  "quit\u0000",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "x".repeat(1000),
  "snapshot-save\u0000",
  "exec",
  "query-jobs",
  "job-dismiss",
  "device_add",
  "human-monitor-command",
  "💥",
];

/** Weights of the commands a request names (end-the-VM ones rarely). */
function commandWeight(name: string): number {
  switch (name) {
    case "quit":
    case "system_powerdown":
      return 0.15;
    case "migrate":
      return 1.5;
    case "snapshot-save":
    case "snapshot-load":
      return 2;
    case "stop":
    case "cont":
      return 3;
    case "qmp_capabilities":
      return 1;
    default:
      return 6;
  }
}

function pickCommand(rng: Rng, preNegotiation: boolean): string {
  if (preNegotiation && rng.chance(0.25)) return "qmp_capabilities";
  const names = Object.keys(COMMANDS);
  const total = names.reduce((n, k) => n + commandWeight(k), 0);
  let x = (rng.u32() / 4294967296) * total;
  for (const k of names) {
    x -= commandWeight(k);
    if (x < 0) return k;
  }
  return names[names.length - 1]!;
}

function validValue(rng: Rng, cmd: string, key: string, type: string, p: Places): unknown {
  switch (key) {
    case "file":
    case "vmstate":
      return cmd === "snapshot-load" ? rng.pick(p.loads) : rng.pick(p.saves);
    case "devices":
      return rng.chance(0.9) ? [] : [rng.pick(["disk0", "", "virtio0"])];
    case "uri":
      return rng.pick(p.uris);
    case "tag":
      return rng.pick(["fuzz", "boot", "", "t".repeat(300)]);
    case "id":
    case "job-id":
      return rng.pick(["job0", "j", "fuzz-job"]);
    case "enable":
      return rng.chance(0.8) ? [] : [rng.pick(["oob", "x", ""])];
    case "downtime-limit":
      return rng.pick([0, 1, 300, 2_000_000, 2_000_001, -1]);
    case "max-bandwidth":
      return rng.pick([0, 1, 1 << 20, 2 ** 53 - 1, -5]);
  }
  switch (type) {
    case "string":
      return rng.pick(["x", "fuzz", ""]);
    case "integer":
      return rng.pick([0, 1, 100]);
    case "boolean":
      return rng.chance(0.5);
    case "array":
      return [];
    case "object":
      return {};
    default:
      return null;
  }
}

function nested(rng: Rng, depth: number): unknown {
  let v: unknown = rng.chance(0.5) ? 1 : "x";
  for (let d = 0; d < depth; d++) v = rng.chance(0.5) ? [v] : { a: v };
  return v;
}

function defineKey(o: Msg, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true });
}

/** One request as a value (before serialising), and what it is about. */
function request(
  rng: Rng,
  index: number,
  p: Places,
  preNegotiation: boolean,
): { req: unknown; what: string } {
  const odd = rng.chance(0.06);
  const name = odd ? rng.pick(ODD_NAMES) : pickCommand(rng, preNegotiation);
  const spec = Object.hasOwn(COMMANDS, name) ? COMMANDS[name]!.args : {};
  const args: Msg = {};
  for (const [k, s] of Object.entries(spec)) {
    if (!s.optional || rng.chance(0.5)) args[k] = validValue(rng, name, k, s.type, p);
  }
  const req: Msg = { execute: name };
  if (Object.keys(args).length > 0 || rng.chance(0.2)) req.arguments = args;
  if (rng.chance(0.75)) req.id = IDS(rng, index);
  const whats: string[] = [odd ? "odd command name" : name];
  const edits = rng.chance(0.4) ? 0 : rng.range(1, 3);
  let out: unknown = req;
  for (let e = 0; e < edits; e++) {
    const keys = Object.keys(args);
    const k = rng.int(11);
    if (k === 0 && keys.length > 0) {
      delete args[rng.pick(keys)];
      whats.push("member dropped");
    } else if (k === 1) {
      defineKey(
        args,
        rng.pick(["extra", "x", "__proto__", "constructor", "", "file", "id"]),
        interestingJson(rng),
      );
      req.arguments = args;
      whats.push("member added");
    } else if (k === 2 && keys.length > 0) {
      args[rng.pick(keys)] = interestingJson(rng);
      whats.push("member mistyped");
    } else if (k === 3) {
      const key = keys.length > 0 && rng.chance(0.7) ? rng.pick(keys) : "n";
      args[key] = rng.pick(HUGE);
      req.arguments = args;
      whats.push("huge number");
    } else if (k === 4) {
      const key = keys.length > 0 && rng.chance(0.7) ? rng.pick(keys) : "s";
      args[key] = rng.pick(ODD_STRINGS);
      req.arguments = args;
      whats.push("odd string");
    } else if (k === 5) {
      const key = keys.length > 0 && rng.chance(0.5) ? rng.pick(keys) : "deep";
      args[key] = nested(rng, rng.chance(0.03) ? rng.pick([500, 1000]) : rng.pick([3, 10, 30, 100]));
      req.arguments = args;
      whats.push("deep nesting");
    } else if (k === 6) {
      // the request's own members
      const j = rng.int(7);
      if (j === 0) delete req.execute;
      else if (j === 1) req.execute = interestingJson(rng);
      else if (j === 2) req.arguments = rng.pick([null, [], "x", 1, true, [args]]);
      else if (j === 3)
        defineKey(
          req,
          rng.pick(["exec-oob", "control", "__proto__", "", "ID", "Execute"]),
          interestingJson(rng),
        );
      else if (j === 4) delete req.arguments;
      else if (j === 5) req.id = interestingJson(rng);
      else defineKey(req, "exec-oob", name);
      whats.push("request member edited");
    } else if (k === 7) {
      req.id = IDS(rng, index);
      whats.push("id of another type");
    } else if (k === 8 && keys.length > 0) {
      args[rng.pick(keys)] = nested(rng, rng.range(1, 4));
      whats.push("member made a container");
    } else {
      out = mutateJson(out, rng);
      whats.push("JSON edit");
    }
  }
  if (rng.chance(0.02)) {
    out = rng.pick<unknown>([[req], "x", 42, -1.5, true, null, [], [1, 2, 3]]);
    whats.push("not an object");
  }
  sanitize(out, p, rng);
  return { req: out, what: whats.join(", ") };
}

// ---------------------------------------------------------------------------------------
// Lines

/**
 * A line as generated: structure-aware (JSON.stringify output) or raw. Its bytes are written
 * with whatever brings the framing back to the top level after them (Framing.closer).
 */
interface Line {
  bytes: Uint8Array;
  what: string;
  raw: boolean;
  /** Ids that must never be answered (commands smuggled past a limit). */
  forbidden?: string[];
}

const enc = new TextEncoder();

function maxDepth(text: string): number {
  let d = 0;
  let max = 0;
  let inStr = false;
  let esc = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inStr) {
      if (esc) esc = false;
      else if (c === 0x5c) esc = true;
      else if (c === 0x22) inStr = false;
    } else if (c === 0x22) inStr = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++d);
    else if (c === 0x7d || c === 0x5d) d--;
  }
  return max;
}

function invalidUtf8(rng: Rng): number[] {
  return rng.pick([
    [0xff],
    [0xfe, 0xff],
    [0xc0, 0xaf],
    [0xc3, 0x28],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0x80],
    [0xe2, 0x82],
  ]);
}

/** Line `index` (a function of its seed alone, and of whether its connection has negotiated). */
export function makeLine(seed: number, index: number, p: Places, preNegotiation: boolean): Line {
  const rng = new Rng(seed);
  const rawKind = rng.int(1000);
  if (rawKind < 120) return rawLine(rng, rawKind, index, p);
  const n = rng.chance(0.04) ? rng.range(2, 4) : 1;
  const texts: string[] = [];
  const whats: string[] = [];
  for (let k = 0; k < n; k++) {
    const { req, what } = request(rng, index, p, preNegotiation);
    const style = rng.int(100);
    let t: string;
    t = JSON.stringify(req) ?? "null";
    // Pretty-printed over several lines (not when deep: the indentation grows with the square).
    if (style < 4 && t.length < 20_000 && maxDepth(t) < 40)
      t = JSON.stringify(req, null, rng.pick([1, 2, "\t"]));
    if (style >= 4 && style < 7) t = rng.pick([" ", "\t", "  \r\n", "\n\n"]) + t;
    texts.push(t);
    whats.push(what);
  }
  const sep = rng.pick(["", " ", "\n"]);
  let text = texts.join(sep);
  // A bare scalar needs a delimiter after it; an object may end the line without one.
  const lastIsObject = text.endsWith("}") || text.endsWith("]");
  text += lastIsObject && rng.chance(0.05) ? "" : rng.chance(0.05) ? "\r\n" : "\n";
  const what = (n > 1 ? `${n} requests on a line: ` : "") + whats.join("; ");
  return { bytes: enc.encode(text), what, raw: false };
}

/** A base request for raw edits: never one that writes a file (an edit could move its path). */
function rawBase(rng: Rng, index: number, p: Places): string {
  for (let k = 0; k < 8; k++) {
    const { req } = request(rng, index, p, false);
    const t = JSON.stringify(req) ?? "null";
    if (!/snapshot-save|"migrate"|"file"|"uri"|"vmstate"/.test(t)) return t;
  }
  return `{"execute":"query-status","id":${index}}`;
}

function rawLine(rng: Rng, kind: number, index: number, p: Places): Line {
  const base = () => enc.encode(rawBase(rng, index, p));
  if (kind < 25) {
    const b = base();
    return { raw: true, bytes: b.subarray(0, rng.int(b.length)), what: "truncated JSON" };
  }
  if (kind < 55) {
    let b: Uint8Array = base();
    for (let k = rng.chance(0.6) ? 1 : rng.range(2, 4); k > 0; k--) b = mutateBytes(b, rng);
    return { raw: true, bytes: concat(b, [0x0a]), what: "bytes edited" };
  }
  if (kind < 65) {
    const b = base();
    const at = rng.int(b.length + 1);
    return { raw: true, bytes: concat(b.subarray(0, at), [0], b.subarray(at), [0x0a]), what: "NUL byte" };
  }
  if (kind < 75) {
    const t = rawBase(rng, index, p);
    const q = t.indexOf('"', t.indexOf(":") + 1);
    const at = q > 0 ? q + 1 : 1;
    const b = enc.encode(t);
    return {
      raw: true,
      bytes: concat(b.subarray(0, at), invalidUtf8(rng), b.subarray(at), [0x0a]),
      what: "invalid UTF-8",
    };
  }
  if (kind < 83) {
    const n = rng.range(1, 40);
    const b = new Uint8Array(n + 1);
    for (let i = 0; i < n; i++) b[i] = rng.int(256);
    b[n] = 0x0a;
    return { raw: true, bytes: b, what: "random bytes" };
  }
  if (kind < 88) {
    const s = Array.from({ length: rng.range(1, 6) }, () =>
      rng.pick(["}", "]", "{", "[", '"', ",", ":", "\\"]),
    ).join("");
    return { raw: true, bytes: enc.encode(`${s}\n`), what: "stray brackets" };
  }
  if (kind < 94) {
    // Broken JSON over several lines (pretty-printed, then edited).
    const t = rawBase(rng, index, p);
    const pretty = t.length < 20_000 && maxDepth(t) < 40 ? JSON.stringify(JSON.parse(t), null, 1) : t;
    const b = enc.encode(pretty);
    const cut = rng.chance(0.5)
      ? b.subarray(0, Math.max(1, b.length - rng.range(1, 3)))
      : mutateBytes(b, rng);
    return { raw: true, bytes: concat(cut, [0x0a]), what: "broken JSON over several lines" };
  }
  if (kind < 100) {
    // A request, then a framing error, in one write: the request's reply comes first.
    const id = `o-${index}`;
    const bad = rng.pick([`{"execute":"query-status","arguments":{"a":\u0001}}`, `{"a":"`]);
    const b = enc.encode(`{"execute":"query-status","id":"${id}"}\n${bad}`);
    const tail = bad.endsWith('"') ? concat(invalidUtf8(rng), enc.encode('"}\n')) : enc.encode("\n");
    return { raw: true, bytes: concat(b, tail), what: "request then framing error" };
  }
  if (kind < 110) {
    // Several requests on a line with a broken one among them.
    const parts = [rawBase(rng, index, p), rawBase(rng, index, p), rawBase(rng, index, p)];
    const j = rng.int(parts.length);
    parts[j] = new TextDecoder().decode(mutateBytes(enc.encode(parts[j]!), rng));
    return { raw: true, bytes: enc.encode(`${parts.join("")}\n`), what: "several objects, one broken" };
  }
  if (kind < 113) {
    // Nested past the limit, with a command after it on the same line.
    const depth = NESTING_LIMIT + rng.range(1, 50);
    const smuggled = JSON.stringify(`smuggled-${index}`);
    const t = `{"execute":"query-status","id":"deep-${index}","arguments":{"x":${"[".repeat(depth)}${"]".repeat(depth)}}}{"execute":"stop","id":${smuggled}}\n`;
    return {
      raw: true,
      bytes: enc.encode(t),
      what: "nesting past the limit",
      forbidden: [smuggled],
    };
  }
  if (kind < 114 && rng.chance(0.1)) {
    // Over the length limit (rare: a megabyte each), a command smuggled past it.
    const smuggled = JSON.stringify(`smuggled-${index}`);
    const t = `{"execute":"query-status","id":"long-${index}","arguments":{"pad":"${"A".repeat(MESSAGE_LIMIT + rng.range(100, 5000))}{"execute":"stop","id":${smuggled}}"}}\n`;
    return {
      raw: true,
      bytes: enc.encode(t),
      what: "over-long line",
      forbidden: [smuggled],
    };
  }
  if (kind < 115 && rng.chance(0.1)) {
    // Just under the limit: an ordinary request.
    const pad = "B".repeat(MESSAGE_LIMIT - 8192);
    const text = `{"execute":"query-status","id":"near-${index}","arguments":{"pad":"${pad}"}}\n`;
    return { raw: true, bytes: enc.encode(text), what: "line just under the length limit" };
  }
  // Whitespace, empty lines, a lone scalar.
  return {
    raw: true,
    bytes: enc.encode(
      rng.pick(["\n", "   \n", "\r\n", "42\n", '"x"\n', "null\n", "tru\n", "-\n", "1e999\n"]),
    ),
    what: "blank or scalar",
  };
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const n = parts.reduce((s, x) => s + x.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// A raw QMP connection

class Conn {
  private buf = "";
  private readonly decoder = new StringDecoder("utf8");
  private got: Msg[] = [];
  private waiter: { id: string; resolve: (r: Msg[] | null) => void; timer: NodeJS.Timeout } | null = null;
  negotiated = false;
  closed = false;
  /** Set when we close it ourselves (or the server is being rebuilt). */
  expectClose = false;
  greeting: Msg | null = null;
  onGreeting: (() => void) | null = null;
  events = 0;
  /** What went wrong on the wire (a line that is not JSON, a close we did not ask for). */
  problem: string | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => this.data(this.decoder.write(d)));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      if (!this.expectClose) this.problem ??= "the server closed the connection";
      this.wake();
    });
  }

  static connect(path: string): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const c = new Conn(net.connect(path));
      const timer = setTimeout(() => {
        c.expectClose = true;
        c.socket.destroy();
        reject(new Error("no QMP greeting in 10 s"));
      }, 10_000);
      c.onGreeting = () => {
        clearTimeout(timer);
        resolve(c);
      };
      c.socket.once("close", () => {
        clearTimeout(timer);
        reject(new Error(`the connection closed before the greeting: ${c.problem}`));
      });
    });
  }

  private data(text: string): void {
    this.buf += text;
    for (let i = this.buf.indexOf("\n"); i >= 0; i = this.buf.indexOf("\n")) {
      const line = this.buf.slice(0, i).replace(/\r$/, "");
      this.buf = this.buf.slice(i + 1);
      if (line === "") continue;
      let m: unknown;
      try {
        m = JSON.parse(line);
      } catch {
        this.problem ??= `the server wrote a line that is not JSON: ${line.slice(0, 200)}`;
        continue;
      }
      if (typeof m !== "object" || m === null || Array.isArray(m)) {
        this.problem ??= `the server wrote a JSON value that is not an object: ${line.slice(0, 200)}`;
        continue;
      }
      const o = m as Msg;
      if (Object.hasOwn(o, "QMP")) {
        this.greeting = o;
        this.onGreeting?.();
        continue;
      }
      if (Object.hasOwn(o, "event")) {
        this.events++;
        if (typeof o.event !== "string" || typeof o.timestamp !== "object") {
          this.problem ??= `malformed event ${line.slice(0, 200)}`;
        }
        continue;
      }
      this.got.push(o);
      if (this.waiter && Object.hasOwn(o, "id") && JSON.stringify(o.id) === this.waiter.id) this.wake();
    }
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = null;
    clearTimeout(w.timer);
    const last = this.got[this.got.length - 1];
    const done = last && Object.hasOwn(last, "id") && JSON.stringify(last.id) === w.id;
    const got = this.got;
    this.got = [];
    w.resolve(done ? got : null);
  }

  send(data: string | Uint8Array): void {
    if (!this.closed) this.socket.write(data);
  }

  /**
   * Writes `data` and resolves with every reply since the last call up to the one whose id
   * is the JSON text `id`; null when the connection closed or BATCH_MS passed first.
   */
  exchange(data: string | Uint8Array, id: string): Promise<Msg[] | null> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(null);
      this.waiter = { id, resolve, timer: setTimeout(() => this.wake(), BATCH_MS) };
      this.send(data);
    });
  }

  /** Replies received so far and not yet returned (after a timeout, for the report). */
  pendingCount(): number {
    return this.got.length;
  }

  close(): Promise<void> {
    this.expectClose = true;
    if (this.closed) return Promise.resolve();
    return new Promise((res) => {
      this.socket.once("close", () => res());
      this.socket.destroy();
    });
  }
}

// ---------------------------------------------------------------------------------------
// The VMM under test

interface Rig {
  host: LocalVmmHost;
  server: QmpServer;
  done: Promise<RunResult>;
  ended: RunResult | null;
  path: string;
}

async function startRig(places: Places, generation: number): Promise<Rig> {
  const kernel = guestFile("migration/bin/idle.elf");
  const make = (cfg: ConstructorParameters<typeof VirtMachine>[0]) =>
    new VirtMachine({ ...cfg, serialOutput: () => {} });
  const machine = make({ kernel, smp: 1, memory: 1 << 20 });
  const host = new LocalVmmHost({
    machine,
    run: { output: () => {}, diag: () => {} },
    makeMachine: (c) => make(c),
    makeMigration: (m, r) => new OutgoingMigration(m, r, { diag: () => {} }),
  });
  const rig: Rig = { host, server: null as unknown as QmpServer, done: host.run(), ended: null, path: "" };
  rig.done.then(
    (r) => {
      rig.ended = r;
    },
    (e: unknown) => {
      rig.ended = { kind: "error", code: 1, message: String(e) };
    },
  );
  rig.path = join(places.dir, `qmp-${generation}.sock`);
  rig.server = await QmpServer.listen(`unix:${rig.path}`, host);
  return rig;
}

async function stopRig(rig: Rig): Promise<void> {
  if (!rig.ended) rig.host.quit(0);
  await rig.done.catch(() => {});
  await rig.server.close();
}

function preparePlaces(dir: string, sinkPort: number): Places {
  const snap = (smp: number, memory: number) => {
    const m = new VirtMachine({
      kernel: guestFile("migration/bin/idle.elf"),
      smp,
      memory,
      serialOutput: () => {},
    });
    m.scheduler().round(20_000);
    return encodeSnapshot(snapshotHeader(m), captureSections(m), true);
  };
  const good = snap(1, 1 << 20);
  const files: [string, Uint8Array][] = [
    ["good.snap", good],
    ["other-config.snap", snap(2, 2 << 20)],
    ["truncated.snap", good.subarray(0, good.length >> 1)],
    ["garbage.bin", Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)],
    ["empty.snap", new Uint8Array(0)],
  ];
  for (const [f, b] of files) writeFileSync(join(dir, f), b);
  mkdirSync(join(dir, "subdir"));
  const loads = [
    ...files.map(([f]) => join(dir, f)),
    join(dir, "save-0.snap"),
    join(dir, "subdir"),
    join(dir, "missing", "x.snap"),
    "/dev/zero",
    "/dev/null",
    "",
    "a\u0000b",
  ];
  const saves = [
    join(dir, "save-0.snap"),
    join(dir, "save-1.snap"),
    join(dir, "save-2.snap"),
    join(dir, "subdir"),
    join(dir, "missing", "x.snap"),
    "",
    "\u0000",
  ];
  const uris = [
    `file:${join(dir, "migration-0")}`,
    `file:${join(dir, "migration-1")}`,
    `file:${join(dir, "subdir")}`,
    `tcp:127.0.0.1:${sinkPort}`,
    `tcp:[::1]:${sinkPort}`,
    "tcp:",
    "file:",
    "exec:true",
    "unix:/nonexistent",
    "fd:3",
    "rdma:x",
    "",
  ];
  return { dir, loads, saves, uris, sinkPort };
}

// ---------------------------------------------------------------------------------------
// The target

type BatchKind = "main" | "fresh" | "pair" | "drop";

function batchKind(seed: number, b: number): BatchKind {
  const rng = new Rng(caseSeed(seed, "qmp-batch", b));
  const k = rng.int(100);
  return k < 78 ? "main" : k < 90 ? "fresh" : k < 97 ? "pair" : "drop";
}

/** What one line produced, before its verdict is recorded (verdicts are recorded in order). */
interface Outcome {
  index: number;
  /** A broken oracle: the input crashes. */
  problem: string | null;
  /** A defect found before (fixed since): a crash if it is seen again. */
  known: string | null;
  /** The first error reply's desc (a refusal), or null when everything succeeded. */
  refusal: string | null;
  /** The line as text (what a desc may quote), and as shown in a crash report. */
  input: string;
  shown: string;
  what: string;
  raw: boolean;
  /** Commands this line ran successfully. */
  ran: string[];
}

/** One reply the framing model says a line must get. */
interface Expect {
  /** Position in the stream (framing errors may not be answered after a later value's reply). */
  pos: number;
  /** The line's place in its batch. */
  line: number;
  kind: "value" | "error";
  /** value: JSON text of the id to echo, null for none; the command named, if any. */
  id: string | null;
  execute: string | null;
  /** error: the framing error's kind. */
  error: FramingErrorKind | null;
}

/** A batch's lines on one connection, as written, with the replies they must get. */
interface Stream {
  bytes: Uint8Array;
  expects: Expect[];
}

/** The bytes of `lines` as written (each followed by its closer) and what the server must answer. */
function stream(lines: readonly { line: Line }[], offset: number): Stream {
  const f = new Framing();
  const parts: Uint8Array[] = [];
  const expects: Expect[] = [];
  lines.forEach(({ line }, j) => {
    f.feed(line.bytes);
    const closer = enc.encode(f.closer());
    f.feed(closer);
    parts.push(line.bytes, closer);
    for (const ev of f.events.splice(0)) {
      const pos = expects.length;
      if (ev.kind === "error") {
        expects.push({ pos, line: offset + j, kind: "error", id: null, execute: null, error: ev.error });
        continue;
      }
      let id: string | null = null;
      let execute: string | null = null;
      try {
        const v: unknown = JSON.parse(ev.text);
        if (typeof v === "object" && v !== null && !Array.isArray(v)) {
          const o = v as Msg;
          if (Object.hasOwn(o, "id")) id = JSON.stringify(o.id);
          if (typeof o.execute === "string") execute = o.execute;
        }
      } catch {
        // a JSON parse error: answered without an id
      }
      expects.push({ pos, line: offset + j, kind: "value", id, execute, error: null });
    }
  });
  return { bytes: concat(...parts), expects };
}

function framingKind(r: Msg): FramingErrorKind | null {
  const d = (r.error as Msg | undefined)?.desc;
  if (Object.hasOwn(r, "id") || typeof d !== "string") return null;
  const m = FRAMING_ERROR.exec(d);
  return m ? (m[1] === "invalid UTF-8" ? "invalid UTF-8" : (m[1] as FramingErrorKind)) : null;
}

type Numbered = { index: number; line: Line };

export class QmpFuzzer {
  rig!: Rig;
  main!: Conn;
  aux!: Conn;
  private generation = 0;
  private marker = 0;

  constructor(
    readonly places: Places,
    readonly rec: Recorder,
  ) {}

  async up(): Promise<void> {
    this.rig = await startRig(this.places, this.generation++);
    this.main = await this.negotiated();
    this.aux = await this.negotiated();
  }

  async negotiated(): Promise<Conn> {
    const c = await Conn.connect(this.rig.path);
    const id = JSON.stringify(`cap-${this.marker++}`);
    const r = await c.exchange(`{"execute":"qmp_capabilities","id":${id}}\n`, id);
    if (!r || !Object.hasOwn(r[r.length - 1]!, "return")) {
      throw new Error(`qmp_capabilities failed: ${JSON.stringify(r)}`);
    }
    c.negotiated = true;
    return c;
  }

  async down(): Promise<void> {
    this.main.expectClose = true;
    this.aux.expectClose = true;
    await stopRig(this.rig);
    await this.main.close();
    await this.aux.close();
  }

  /** The host's VM ended (quit, powerdown): a new host and server, counted. */
  async rebuildIfEnded(): Promise<void> {
    if (!this.rig.ended) return;
    this.rec.count(`VM rebuilt after it ended (${this.rig.ended.kind})`);
    await this.down();
    await this.up();
  }

  private sentinel(): { text: string; id: string } {
    const id = JSON.stringify(`§s-${this.marker++}`);
    return { text: `{"execute":"query-status","id":${id}}\n`, id };
  }

  /** Checks a sentinel's reply: a consistent query-status (or, before negotiation, a refusal). */
  private sentinelProblem(r: Msg, negotiated: boolean): string | null {
    if (!negotiated) {
      const e = r.error as Msg | undefined;
      return e?.class === "CommandNotFound"
        ? null
        : `query-status before negotiation answered ${JSON.stringify(r).slice(0, 300)}`;
    }
    const ret = r.return as Msg | undefined;
    if (
      !ret ||
      typeof ret.running !== "boolean" ||
      typeof ret.status !== "string" ||
      !RUN_STATES.has(ret.status) ||
      ret.running !== (ret.status === "running")
    ) {
      return `the VM no longer answers query-status: ${JSON.stringify(r).slice(0, 300)}`;
    }
    return null;
  }

  private lost(c: Conn): string {
    return (
      c.problem ??
      `no reply to the sentinel within ${BATCH_MS / 1000} s (${c.pendingCount()} replies before it)`
    );
  }

  /**
   * Runs lines [from, to) of batch `b`, whose lines start at `first`; lines before `from`
   * are sent too (the context of a replay), without a verdict. Throws OracleFailure.
   */
  async batch(seed: number, b: number, first: number, from: number, to: number): Promise<void> {
    const kind = batchKind(seed, b);
    const lines: Numbered[] = [];
    for (let i = first; i < to; i++) {
      lines.push({ index: i, line: makeLine(this.rec.inputSeed(i), i, this.places, kind === "fresh") });
    }
    const outcomes: Outcome[] = lines.map(({ index, line }) => ({
      index,
      problem: null,
      known: null,
      refusal: null,
      input: new TextDecoder().decode(line.bytes),
      // for a report: raw bytes one character each (Latin-1), control bytes escaped
      shown: line.raw
        ? `bytes ${JSON.stringify(String.fromCharCode(...line.bytes.subarray(0, 600)))}`
        : new TextDecoder().decode(line.bytes.subarray(0, 2000)),
      what: line.what,
      raw: line.raw,
      ran: [],
    }));
    const conn = kind === "fresh" || kind === "drop" ? await Conn.connect(this.rig.path) : this.main;
    try {
      if (kind === "drop") {
        // Everything in one write, and the connection gone before any reply.
        conn.send(stream(lines, 0).bytes);
        await conn.close();
        this.rec.count("lines on connections closed at once", lines.length);
      } else if (kind === "pair" && lines.length > 1) {
        // Two connections at once, half the lines each.
        const half = lines.length >> 1;
        await Promise.all([
          this.exchange(conn, lines.slice(0, half), 0, outcomes),
          this.exchange(this.aux, lines.slice(half), half, outcomes),
        ]);
      } else await this.exchange(conn, lines, 0, outcomes);
      if (kind !== "main" && !outcomes.some((o) => o.problem)) {
        if (conn !== this.main) await conn.close();
        const p = await this.check(this.main);
        if (p) outcomes[outcomes.length - 1]!.problem = p;
      }
    } finally {
      if (conn !== this.main) await conn.close();
    }
    this.record(outcomes, from);
  }

  /** Verdicts in index order; the first broken oracle throws (the rest of the batch is unchecked). */
  private record(outcomes: Outcome[], from: number): void {
    for (const o of outcomes) {
      if (o.index < from) {
        if (o.problem)
          throw new OracleFailure(from, `(line ${o.index} before it) ${o.what}: ${o.problem}`, o.shown);
        continue;
      }
      if (o.problem) throw new OracleFailure(o.index, `${o.what}: ${o.problem}`, o.shown);
      if (o.known) throw new OracleFailure(o.index, `${o.what}: ${o.known}`, o.shown);
      if (o.raw) this.rec.count(`raw: ${o.what}`);
      for (const name of o.ran) this.rec.count(`succeeded: ${name}`);
      if (o.refusal !== null) this.rec.refused(o.refusal);
      else this.rec.accepted();
    }
  }

  /** A sentinel on `c`: the server still answers, the VM too. */
  private async check(c: Conn): Promise<string | null> {
    const s = this.sentinel();
    const r = await c.exchange(s.text, s.id);
    return !r ? this.lost(c) : (c.problem ?? this.sentinelProblem(r[r.length - 1]!, c.negotiated));
  }

  /**
   * Writes `lines` (outcomes[offset..] are theirs) and a sentinel on `c` in one write and
   * matches the replies against the framing model: one reply per value, in order, with its
   * id; one error per framing error, never after the reply to a value that followed it.
   */
  private async exchange(c: Conn, lines: Numbered[], offset: number, outcomes: Outcome[]): Promise<void> {
    const s = this.sentinel();
    const st = stream(lines, offset);
    const replies = await c.exchange(concat(st.bytes, enc.encode(s.text)), s.id);
    const lastLine = outcomes[offset + lines.length - 1]!;
    if (!replies || c.problem) {
      outcomes[offset]!.problem = this.lost(c);
      return;
    }
    const sentinel = replies.pop()!;
    const values = st.expects.filter((e) => e.kind === "value");
    const errors = st.expects.filter((e) => e.kind === "error");
    const forbidden = new Set(lines.flatMap(({ line }) => line.forbidden ?? []));
    let vp = 0;
    let ep = 0;
    for (const r of replies) {
      const fk = framingKind(r);
      const next = values[vp];
      const nextError = errors[ep];
      let e: Expect;
      if (fk && nextError && (!next || next.kind === "value")) {
        e = nextError;
        ep++;
        const o = outcomes[e.line]!;
        if (fk !== e.error) {
          o.problem = `a framing error '${e.error}' expected, the server answered ${JSON.stringify(r).slice(0, 300)}`;
          return;
        }
        if (next && next.pos < e.pos)
          o.known = "a framing error's reply overtakes the replies to earlier requests";
      } else {
        if (!next) {
          lastLine.problem = `a reply more than the requests and framing errors: ${JSON.stringify(r).slice(0, 300)}`;
          return;
        }
        e = next;
        vp++;
        const o = outcomes[e.line]!;
        if (nextError && nextError.pos < e.pos) {
          o.problem = `the framing error '${nextError.error}' of line ${outcomes[nextError.line]!.index} was not answered before this reply: ${JSON.stringify(r).slice(0, 300)}`;
          return;
        }
        if (Object.hasOwn(r, "id") && forbidden.has(JSON.stringify(r.id))) {
          o.problem = `the command smuggled past a limit ran: ${JSON.stringify(r).slice(0, 200)}`;
          return;
        }
        const hasId = Object.hasOwn(r, "id");
        if (e.id === null ? hasId : !hasId || JSON.stringify(r.id) !== e.id) {
          o.problem = `reply ${JSON.stringify(r).slice(0, 300)} does not echo id ${e.id ?? "(none)"}`;
          return;
        }
        if (Object.hasOwn(r, "return")) {
          if (e.execute === null || !Object.hasOwn(COMMANDS, e.execute)) {
            o.problem = `a request naming no known command succeeded: ${JSON.stringify(r).slice(0, 200)}`;
          } else if (!c.negotiated && e.execute !== "qmp_capabilities") {
            o.problem = `${e.execute} ran before capabilities negotiation`;
          } else if (c.negotiated && e.execute === "qmp_capabilities") {
            o.problem = "qmp_capabilities succeeded twice";
          } else if (e.execute === "qmp_capabilities") c.negotiated = true;
          if (o.problem) return;
          o.ran.push(e.execute!);
        }
      }
      const o = outcomes[e.line]!;
      const shape = replyProblem(r, o.input);
      if (shape) {
        const known = knownDescDefect(r);
        if (known) o.known = known;
        else {
          o.problem = `${shape}: ${JSON.stringify(r).slice(0, 300)}`;
          return;
        }
      }
      if (Object.hasOwn(r, "error")) o.refusal ??= String((r.error as Msg).desc);
    }
    if (vp < values.length || ep < errors.length) {
      const missing = vp < values.length ? values[vp]! : errors[ep]!;
      outcomes[missing.line]!.problem =
        `no reply to ${missing.kind === "value" ? `the request (id ${missing.id ?? "none"})` : `the framing error '${missing.error}'`} before the sentinel's`;
      return;
    }
    lastLine.problem = this.sentinelProblem(sentinel, c.negotiated);
  }
}

class OracleFailure extends Error {
  constructor(
    readonly index: number,
    what: string,
    readonly input?: string,
  ) {
    super(what);
  }
}

/** A TCP listener that hangs up on every connection: migrations to it fail. */
function sink(): Promise<net.Server> {
  const s = net.createServer((c) => c.destroy());
  return new Promise((res, rej) => {
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => res(s));
  });
}

export const qmpTarget: FuzzTarget = {
  name: "qmp",
  unit: "QMP lines",
  full: 1_000_000,
  smoke: 2000,
  perInputMs: 10_000,
  async run(chunk: Chunk, rec: Recorder): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "armbox-fuzz-qmp-"));
    const tcp = await sink();
    const port = (tcp.address() as net.AddressInfo).port;
    const f = new QmpFuzzer(preparePlaces(dir, port), rec);
    try {
      await f.up();
      rec.ready();
      const t0 = performance.now();
      const end = chunk.start + chunk.count;
      let i = chunk.start;
      while (i < end) {
        const b = Math.floor(i / BATCH);
        const first = b * BATCH;
        const to = Math.min(end, first + BATCH);
        try {
          await f.batch(chunk.seed, b, first, i, to);
        } catch (e) {
          if (!(e instanceof OracleFailure)) throw e;
          const at = Math.max(e.index, rec.next);
          rec.crash(at, e.message, e.input !== undefined ? { text: e.input } : undefined);
          // Lines of the batch after the failure: not checked (the stream is out of step).
          while (rec.next < to) rec.refused("not checked: an earlier line of its batch broke the oracle");
          await f.down().catch(() => {});
          await f.up();
        }
        i = rec.next;
        await f.rebuildIfEnded();
      }
      rec.count(
        "lines per second (summed over workers)",
        Math.round((end - chunk.start) / ((performance.now() - t0) / 1000)),
      );
    } finally {
      await f.down().catch(() => {});
      await new Promise<void>((res) => tcp.close(() => res()));
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
