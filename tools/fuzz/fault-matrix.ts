/**
 * The migration fault matrix (fuzz target "fault-matrix"): a running source VM (the
 * counter guest of guests/migration, which prints "tick N" lines) migrates over TCP to a
 * real destination (receiveIncoming, in this process) through a proxy that injects one
 * fault per input, chosen by the input's seed:
 *
 *   cut-stream     the source's stream is cut at a byte offset (log-uniform, or a random
 *                  byte of the k-th frame of a kind: preamble, header, RAM pages, round
 *                  marker, a device section, the run state, the end mark); the destination
 *                  sees the prefix then EOF, or both sides are reset at once
 *   stall-stream   the proxy stops reading the source there and answers nothing more; with
 *                  RAM ballast (8 MiB of random pages written into unused guest RAM first)
 *                  the source's writes block on a full socket, so only a progress timeout
 *                  can end its migration
 *   cut-reply      the destination's replies (ready, then ACK or refusal) are cut at a byte
 *   corrupt-reply  one reply gets a flipped bit, is truncated (then closed or held open),
 *                  replaced by another protocol's bytes (HTTP, QMP, SSH, a snapshot file,
 *                  random bytes) or by the wrong armbox frame
 *   stall-reply    the replies are withheld from a byte on (the stream itself flows on)
 *   refuse         the destination refuses at its n-th frame (a reason in a refusal frame),
 *                  which is sometimes cut on its way back
 *   clean          nothing (every 8th input: the proxy itself must be transparent)
 *
 * After every input that made the migration fail, the VM must be in exactly one place. The
 * source runs on (dirty log off, its guest printing a new tick) -- or, once its whole
 * device state was out and no intact refusal came back, it stays paused saying that the
 * destination may be running the VM: then either the destination holds the VM (its ACK was
 * damaged: the chain goes on there) or it does not (the matrix resumes the source, as
 * QMP cont would); two running copies are a violation. A source still running then makes a
 * LATER good migration (straight to a new destination) that must complete, with the
 * destination going on printing ticks. A stalled destination must be given up by the
 * source's progress timeout (3 s here). The ticks on the one console all machines share must read 0, 1, 2, …
 * with no gap and no repeat over the whole chain: each destination becomes the next
 * input's source. A destination must never accept a stream the proxy did not forward to
 * its end, and a source must never complete unless its destination holds the VM.
 *
 * Verdicts: "refused" the faulty migration failed and everything above held; "accepted"
 * it completed anyway (the fault came too late to matter, or the control input); a
 * "violation" any invariant broken; a "crash" a JavaScript error or a message that is not
 * a clear one-line reason. Every choice of input i comes from `rec.inputSeed(i)` (the
 * machine's state when the input starts depends on the run before it, as on any host).
 */
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { VirtMachine } from "../../src/machine/virt.ts";
import { receiveIncoming } from "../../src/vmm/migration/destination.ts";
import { OutgoingMigration } from "../../src/vmm/migration/source.ts";
import { frame, MigrationError, SEC_ACK, SEC_READY } from "../../src/vmm/migration/stream.ts";
import { MachineRunner, type RunResult } from "../../src/vmm/runner.ts";
import { concat } from "../../src/vmm/snapshot/format.ts";
import { Rng } from "../difftest/prng.ts";
import { type Chunk, type FuzzTarget, messageProblem, type Recorder, type Tally } from "./core.ts";

const MEMORY = 16 << 20;
const SMP = 2;
const RAM_BASE = 0x4000_0000;
/** Guest RAM the counter guest never touches (it lives below RAM + 1 MiB), for ballast. */
const BALLAST_AT = RAM_BASE + (4 << 20);
const BALLAST_BYTES = 8 << 20;
/** How long a faulty migration may wait for a reply (its source option replyTimeoutMs). */
const REPLY_TIMEOUT_MS = 2000;
/** The source's progress timeout in a faulty migration (no byte moved to or from the destination). */
const PROGRESS_TIMEOUT_MS = 3000;
/**
 * A faulty migration that has not ended this long after it started is stuck (its progress
 * timeout did not fire): a violation; the matrix cancels it. A hang guard, not
 * synchronisation: every other wait here is on an event.
 */
const STALL_GUARD_MS = 15_000;
/** The longest any awaited event may take before the input is declared hung. */
const EVENT_GUARD_MS = 60_000;
/** Ticks the destination of a good migration must print before the input ends. */
const TICKS_AFTER = 2;

// ---------------------------------------------------------------------------
// The shared console: every machine of the chain prints here, one at a time.

/** Console bytes of the chain, with its "tick N" lines checked as they arrive. */
export class TickConsole {
  private line = "";
  /** The last tick number seen (-1: none yet). */
  last = -1;
  /** Whole tick lines seen. */
  ticks = 0;
  /** The first gap or repeat, once there is one. */
  error: string | null = null;
  private readonly waiters = new Set<() => void>();

  out = (b: Uint8Array): void => {
    for (const c of b) {
      if (c === 10) {
        this.onLine(this.line.replace(/\r$/, ""));
        this.line = "";
      } else if (this.line.length < 200) this.line += String.fromCharCode(c);
    }
    for (const w of [...this.waiters]) w();
  };

  private onLine(l: string): void {
    if (!l.startsWith("tick ")) return;
    const m = /^tick (\d+) [0-9a-f]+$/.exec(l);
    const n = m ? Number(m[1]) : Number.NaN;
    if (this.error === null) {
      if (!m) this.error = `a tick line is garbled: '${l}'`;
      else if (n !== this.last + 1)
        this.error = `tick ${n} after tick ${this.last} (${n <= this.last ? "a repeat" : "a gap"})`;
    }
    if (m) this.last = n;
    this.ticks++;
  }

  /** Resolves once the console holds `n` whole tick lines; rejects after `ms`. */
  waitTicks(n: number, what: string, ms = EVENT_GUARD_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.ticks < n) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`${what}: the console printed ${this.ticks} ticks, not ${n}, within ${ms / 1000} s`),
        );
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}

// ---------------------------------------------------------------------------
// Faults

/** Frame kinds a stream position can be chosen in. */
const FRAME_KINDS = ["preamble", "header", "pages", "round", "section", "state", "end"] as const;
type FrameKind = (typeof FRAME_KINDS)[number];

/** A position in a byte stream: an absolute offset, or a byte of the k-th frame of a kind. */
type Position = { at: number } | { kind: FrameKind; k: number; frac: number };

/** A position in the destination's replies: an absolute offset, or a byte of reply `index` (0 ready, 1 the last). */
type ReplyPosition = { at: number } | { index: 0 | 1; frac: number };

const FOREIGN: readonly { name: string; bytes: () => Uint8Array }[] = [
  {
    name: "HTTP",
    bytes: () => text("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
  },
  {
    name: "QMP greeting",
    bytes: () =>
      text('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\r\n'),
  },
  { name: "SSH banner", bytes: () => text("SSH-2.0-OpenSSH_9.6\r\n") },
  { name: "armbox snapshot file", bytes: () => text("ARMBOXVM\x02\x00\x00\x00\x10\x00\x00\x00{}") },
  { name: "migration preamble", bytes: () => text("ARMBOXMG\x03\x00\x00\x00") },
];

export type Fault =
  | { kind: "clean" }
  | { kind: "cut-stream"; pos: Position; reset: boolean }
  | { kind: "stall-stream"; pos: Position; ballast: boolean }
  | { kind: "cut-reply"; pos: ReplyPosition }
  | {
      kind: "corrupt-reply";
      index: 0 | 1;
      how:
        | { what: "flip"; frac: number; bit: number }
        | { what: "truncate"; frac: number; close: boolean }
        | { what: "foreign"; name: string; close: boolean }
        | { what: "random"; length: number; seed: number; close: boolean }
        | { what: "wrong-frame" };
    }
  | { kind: "stall-reply"; pos: ReplyPosition }
  /** The destination refuses at its n-th frame; `cut`: its refusal is cut on the way back. */
  | { kind: "refuse"; atFrame: number; cut: { frac: number } | null };

function text(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function position(rng: Rng): Position {
  // Log-uniform in [0, 2^19): the handshake's few bytes as likely as the RAM's many.
  if (rng.chance(0.3)) return { at: Math.floor(2 ** ((rng.u32() / 2 ** 32) * 19)) - 1 };
  const kind = rng.pick(FRAME_KINDS);
  const k =
    kind === "pages" ? rng.int(12) : kind === "round" ? rng.int(3) : kind === "section" ? rng.int(10) : 0;
  return { kind, k, frac: rng.u32() / 2 ** 32 };
}

function replyPosition(rng: Rng): ReplyPosition {
  if (rng.chance(0.2)) return { at: rng.int(2 * frame(SEC_READY, {}).length) };
  return { index: rng.chance(0.5) ? 0 : 1, frac: rng.u32() / 2 ** 32 };
}

/** The fault of input `index`, from its seed alone. */
export function chooseFault(seed: number, index: number): Fault {
  if (index % 8 === 0) return { kind: "clean" };
  const rng = new Rng(seed);
  switch (rng.int(7)) {
    case 0:
    case 1:
      return { kind: "cut-stream", pos: position(rng), reset: rng.chance(0.5) };
    case 2: {
      // With ballast the stall comes early in RAM, so that megabytes are still to be written.
      if (rng.chance(0.2))
        return { kind: "stall-stream", pos: { kind: "pages", k: rng.int(4), frac: 0 }, ballast: true };
      return { kind: "stall-stream", pos: position(rng), ballast: false };
    }
    case 3:
      return { kind: "cut-reply", pos: replyPosition(rng) };
    case 4: {
      const index = rng.chance(0.5) ? 0 : 1;
      const k = rng.int(5);
      const how =
        k === 0
          ? { what: "flip" as const, frac: rng.u32() / 2 ** 32, bit: rng.int(8) }
          : k === 1
            ? { what: "truncate" as const, frac: rng.u32() / 2 ** 32, close: rng.chance(0.5) }
            : k === 2
              ? { what: "foreign" as const, name: rng.pick(FOREIGN).name, close: rng.chance(0.5) }
              : k === 3
                ? {
                    what: "random" as const,
                    length: rng.range(1, 64),
                    seed: rng.u32(),
                    close: rng.chance(0.5),
                  }
                : { what: "wrong-frame" as const };
      return { kind: "corrupt-reply", index, how };
    }
    case 5:
      return { kind: "stall-reply", pos: replyPosition(rng) };
    default:
      return {
        kind: "refuse",
        atFrame: rng.range(1, 40),
        cut: rng.chance(0.3) ? { frac: rng.u32() / 2 ** 32 } : null,
      };
  }
}

// ---------------------------------------------------------------------------
// The stream's frames, as they pass the proxy

interface FrameSpan {
  kind: FrameKind;
  name: string;
  start: number;
  end: number;
}

/** Splits the source's stream into frames as its bytes pass (no copy beyond frame headers). */
export class StreamScanner {
  readonly frames: FrameSpan[] = [];
  /** Where the frame being parsed starts. */
  private next = 12;
  private head: number[] = [];
  ended = false;

  constructor() {
    this.frames.push({ kind: "preamble", name: "preamble", start: 0, end: 12 });
  }

  /** `b` arrived at absolute offset `at`. */
  feed(b: Uint8Array, at: number): void {
    let i = Math.max(0, this.next - at);
    while (!this.ended && i < b.length) {
      this.head.push(b[i]!);
      i++;
      const h = this.head;
      if (h.length < 2) continue;
      const nameLen = h[0]! | (h[1]! << 8);
      if (nameLen === 0) {
        this.frames.push({ kind: "end", name: "end", start: this.next, end: this.next + 2 });
        this.ended = true;
        break;
      }
      if (h.length < 2 + nameLen + 12) continue;
      const name = String.fromCharCode(...h.slice(2, 2 + nameLen));
      const o = 2 + nameLen + 8;
      const payload = (h[o]! | (h[o + 1]! << 8) | (h[o + 2]! << 16) | (h[o + 3]! << 24)) >>> 0;
      const end = this.next + 2 + nameLen + 12 + payload + 4;
      this.frames.push({ kind: kindOf(name), name, start: this.next, end });
      this.next = end;
      this.head = [];
      i = Math.max(i, end - at);
    }
  }

  /** The absolute offset of `p`, once the frame it names has been seen (null: not yet, or never). */
  resolve(p: Position): number | null {
    if ("at" in p) return p.at;
    const f = this.frames.filter((s) => s.kind === p.kind)[p.k];
    if (!f) return null;
    return f.start + Math.floor(p.frac * (f.end - f.start));
  }

  /** Bytes from `from` on that may be forwarded before `p` is known (the header of the frame it may be in). */
  safeUntil(p: Position, received: number): number {
    if ("at" in p || this.ended) return received;
    return Math.min(received, this.next);
  }
}

function kindOf(name: string): FrameKind {
  if (name === "migration.header") return "header";
  if (name === "ram.pages") return "pages";
  if (name === "migration.round") return "round";
  if (name === "migration.state") return "state";
  return "section";
}

// ---------------------------------------------------------------------------
// The proxy

interface ProxyOutcome {
  /** The proxy forwarded the source's whole stream, its end mark included. */
  forwardedAll: boolean;
  /** The fault was applied (false: the stream or replies ended before its position). */
  applied: boolean;
  /** The frames of the source's stream, as far as they passed. */
  frames: FrameSpan[];
  /** The proxy stalls: it reads nothing more from the source (so it cannot see it close). */
  stalled: boolean;
}

interface Proxy {
  port: number;
  outcome: ProxyOutcome;
  /** Resolves once both of its connections are closed. */
  closed: Promise<void>;
  close(): void;
}

/** A proxy from the source to `destPort` that applies `fault`. */
function proxy(destPort: number, fault: Fault): Promise<Proxy> {
  return new Promise((resolve, reject) => {
    const outcome: ProxyOutcome = { forwardedAll: false, applied: false, frames: [], stalled: false };
    let srcSock: net.Socket | null = null;
    let dstSock: net.Socket | null = null;
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => {
      closedResolve = r;
    });
    const server = net.createServer((src) => {
      if (srcSock !== null) {
        src.destroy();
        return;
      }
      server.close();
      srcSock = src;
      src.setNoDelay(true);
      const dst = net.connect({ host: "127.0.0.1", port: destPort });
      dstSock = dst;
      dst.setNoDelay(true);
      let open = 2;
      const oneClosed = () => {
        if (--open === 0) closedResolve();
      };
      src.on("error", () => {});
      dst.on("error", () => {});
      // A cut that ends the destination's side gracefully lets it read the prefix to its EOF
      // (and refuse on its own); any other end of the source's side resets the other side.
      let dstEnding = false;
      src.on("close", () => {
        oneClosed();
        if (!dstEnding) dst.destroy();
      });
      // A stall holds the source's side open whatever the destination does: only the
      // source's own timeout (or the matrix's guard) may end it.
      let stalled = false;
      dst.on("close", () => {
        oneClosed();
        if (!stalled) src.destroy();
      });
      const killBoth = () => {
        src.destroy();
        dst.destroy();
      };

      const replies: Uint8Array[] = [];
      let replySent = 0;
      let repliesStopped = false;

      // -- source → destination --
      const scan = new StreamScanner();
      outcome.frames = scan.frames;
      const pending: Uint8Array[] = [];
      let received = 0;
      let forwarded = 0;
      let streamStopped = false; // a cut or a stall: nothing more goes to the destination
      const streamPos =
        fault.kind === "cut-stream" || fault.kind === "stall-stream" ? (fault.pos as Position) : null;
      const forward = (upTo: number) => {
        while (forwarded < upTo && pending.length > 0) {
          const c = pending[0]!;
          const n = Math.min(c.length, upTo - forwarded);
          dst.write(c.subarray(0, n));
          forwarded += n;
          if (n === c.length) pending.shift();
          else pending[0] = c.subarray(n);
        }
        if (scan.ended && forwarded === scan.frames[scan.frames.length - 1]!.end) outcome.forwardedAll = true;
      };
      const pumpStream = () => {
        if (streamStopped) return;
        if (!streamPos) return forward(received);
        const at = scan.resolve(streamPos);
        if (at === null) return forward(scan.safeUntil(streamPos, received));
        forward(Math.min(at, received));
        if (forwarded < at) return;
        if (scan.ended && at >= scan.frames[scan.frames.length - 1]!.end) return forward(received); // past the end: no fault
        streamStopped = true;
        outcome.applied = true;
        if (fault.kind === "cut-stream") {
          if (fault.reset) killBoth();
          else {
            dstEnding = true;
            dst.end();
            src.destroy();
          }
        } else {
          src.pause(); // stall: read nothing more, answer nothing more
          repliesStopped = true;
          stalled = true;
          outcome.stalled = true;
        }
      };
      src.on("data", (d: Buffer) => {
        const b = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
        scan.feed(b, received);
        received += b.length;
        pending.push(b);
        pumpStream();
      });
      src.on("end", () => {
        if (!streamStopped) {
          forward(received);
          dstEnding = true;
          dst.end();
        }
      });

      // -- destination → source --
      const readyLen = frame(SEC_READY, {}).length;
      const replyAt = (p: ReplyPosition, lastLen: number): number =>
        "at" in p
          ? p.at
          : p.index === 0
            ? Math.floor(p.frac * readyLen)
            : readyLen + Math.floor(p.frac * lastLen);
      const pumpReplies = (ended: boolean) => {
        if (repliesStopped) return;
        const all = concat(replies);
        // The last reply's length is known once its frame header has arrived (ACK and
        // refusal differ); until then hold what is past the ready frame.
        const lastLen = frameLength(all.subarray(readyLen));
        const cutAt: ReplyPosition | null =
          fault.kind === "cut-reply" || fault.kind === "stall-reply"
            ? fault.pos
            : fault.kind === "refuse" && fault.cut
              ? { index: 1, frac: fault.cut.frac }
              : null;
        if (cutAt) {
          const needLast = !("at" in cutAt) && cutAt.index === 1;
          if (needLast && lastLen === null) return sendReplies(Math.min(all.length, readyLen), all);
          const at = replyAt(cutAt, lastLen ?? 0);
          sendReplies(Math.min(at, all.length), all);
          if (replySent < at) return;
          repliesStopped = true;
          outcome.applied = true;
          if (fault.kind !== "stall-reply") killBoth();
          else {
            stalled = true;
            outcome.stalled = true;
          }
          return;
        }
        if (fault.kind === "corrupt-reply") {
          const start = fault.index === 0 ? 0 : readyLen;
          if (all.length < start) return;
          const len = fault.index === 0 ? frameLength(all) : lastLen;
          if (len === null || all.length < start + len) {
            if (ended) sendReplies(all.length, all);
            return sendReplies(start, all);
          }
          sendReplies(start, all);
          repliesStopped = true;
          outcome.applied = true;
          const original = all.subarray(start, start + len);
          const how = fault.how;
          let bytes: Uint8Array;
          let close = true;
          if (how.what === "flip") {
            bytes = original.slice();
            const i = Math.floor(how.frac * bytes.length);
            bytes[i]! ^= 1 << how.bit;
            close = false;
          } else if (how.what === "truncate") {
            bytes = original.subarray(0, Math.floor(how.frac * original.length));
            close = how.close;
          } else if (how.what === "foreign") {
            bytes = FOREIGN.find((f) => f.name === how.name)!.bytes();
            close = how.close;
          } else if (how.what === "random") {
            const r = new Rng(how.seed);
            bytes = Uint8Array.from({ length: how.length }, () => r.int(256));
            close = how.close;
          } else {
            // The wrong armbox frame: an ACK in place of the ready, a ready in place of the ACK.
            bytes = frame(fault.index === 0 ? SEC_ACK : SEC_READY, {});
            close = false;
          }
          src.write(bytes);
          if (close) {
            src.end();
            dst.destroy();
          }
          return;
        }
        sendReplies(all.length, all);
      };
      const sendReplies = (upTo: number, all: Uint8Array) => {
        if (upTo > replySent) {
          src.write(all.subarray(replySent, upTo));
          replySent = upTo;
        }
      };
      dst.on("data", (d: Buffer) => {
        replies.push(new Uint8Array(d));
        pumpReplies(false);
      });
      dst.on("end", () => {
        pumpReplies(true);
        if (!repliesStopped) src.end();
      });
    });
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        outcome,
        closed,
        close: () => {
          server.close();
          srcSock?.destroy();
          dstSock?.destroy();
          if (srcSock === null) closedResolve();
        },
      }),
    );
  });
}

/** The length of the frame at the start of `b`, once its header has arrived. */
function frameLength(b: Uint8Array): number | null {
  if (b.length < 2) return null;
  const nameLen = b[0]! | (b[1]! << 8);
  if (nameLen === 0) return 2;
  const o = 2 + nameLen + 8;
  if (b.length < o + 4) return null;
  return 2 + nameLen + 12 + ((b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0) + 4;
}

// ---------------------------------------------------------------------------
// The chain of machines

interface Running {
  machine: VirtMachine;
  runner: MachineRunner;
  running: Promise<RunResult>;
}

function startRunner(machine: VirtMachine): Running {
  const runner = new MachineRunner(machine, { output: () => {}, diag: () => {}, controlOpen: () => true });
  return { machine, runner, running: runner.run() };
}

function dirtyLogOff(m: VirtMachine): boolean {
  try {
    m.vm.getDirtyLog();
    return false;
  } catch {
    return true;
  }
}

/** Resolves with `p`'s value, or with `fallback` after `ms` (a hang guard). */
function orAfter<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<F>((r) => {
      timer = setTimeout(() => r(fallback), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

type DestResult =
  | { kind: "accepted"; machine: VirtMachine }
  | { kind: "refused"; message: string; error: unknown };

/** A destination in this process, listening; `result` settles once it accepted or refused. */
function destination(
  con: TickConsole,
  atFrame?: number,
): Promise<{ port: number; result: Promise<DestResult> }> {
  return new Promise((resolve, reject) => {
    let port = 0;
    const result = receiveIncoming(
      "tcp:127.0.0.1:0",
      { smp: SMP, memory: MEMORY, deterministic: true, serialOutput: con.out },
      {
        warmUp: false,
        idleTimeoutMs: 10 * EVENT_GUARD_MS,
        acceptTimeoutMs: EVENT_GUARD_MS,
        onListening: (a) => {
          port = a.port;
          resolve({ port, result: settled });
        },
        ...(atFrame !== undefined
          ? {
              onFrame: (_name: string, count: number) => {
                if (count === atFrame) throw new MigrationError(`the fault matrix refuses at frame ${count}`);
              },
            }
          : {}),
      },
    );
    const settled: Promise<DestResult> = result.then(
      (r) => ({ kind: "accepted" as const, machine: r.machine }),
      (e: unknown) => ({ kind: "refused" as const, message: (e as Error)?.message ?? String(e), error: e }),
    );
    settled.then((r) => {
      if (port === 0)
        reject(r.kind === "refused" ? r.error : new Error("destination accepted before listening"));
    });
  });
}

const faultName = (f: Fault): string =>
  f.kind === "corrupt-reply"
    ? `corrupt-reply (${f.how.what}${f.how.what === "foreign" ? ` ${f.how.name}` : ""}, ${f.index === 0 ? "ready" : "last reply"})`
    : f.kind === "stall-stream" && f.ballast
      ? "stall-stream (writes blocked by RAM ballast)"
      : f.kind === "refuse" && f.cut
        ? "refuse (the refusal cut on its way)"
        : f.kind;

/** State carried from one input to the next: the console and the machine now running. */
interface Chain {
  con: TickConsole;
  src: Running;
}

async function boot(): Promise<Chain> {
  const con = new TickConsole();
  const kernel = new Uint8Array(
    readFileSync(new URL("../../guests/migration/bin/counter.elf", import.meta.url)),
  );
  const m = new VirtMachine({ kernel, smp: SMP, memory: MEMORY, deterministic: true, serialOutput: con.out });
  const src = startRunner(m);
  await con.waitTicks(2, "the counter guest booting");
  return { con, src };
}

async function end(chain: Chain): Promise<void> {
  chain.src.runner.finish({ kind: "quit", code: 0 });
  await chain.src.running;
}

/** Fills the ballast region with pseudo-random pages (or zeroes it again). */
function ballast(m: VirtMachine, on: boolean, seed: number): void {
  const b = new Uint8Array(BALLAST_BYTES);
  if (on) {
    const w = new Uint32Array(b.buffer);
    let x = seed | 1;
    for (let i = 0; i < w.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      w[i] = x;
    }
  }
  m.vm.writeRam(BALLAST_AT, b);
}

/** One input: the faulty migration, the checks, the later good migration. */
async function runCase(chain: Chain, index: number, seed: number, rec: Recorder): Promise<boolean> {
  const fault = chooseFault(seed, index);
  const name = faultName(fault);
  rec.count(`case: ${name}`);
  /** Records a failure; false: the chain may be broken (the caller boots a new one). */
  const fail = (kind: "crash" | "violation", what: string): false => {
    const w = `${name} ${JSON.stringify(fault)}: ${what}`;
    if (kind === "crash") rec.crash(index, w);
    else rec.violation(index, w);
    return false;
  };
  const src = chain.src;
  const withBallast = fault.kind === "stall-stream" && fault.ballast;
  if (withBallast) ballast(src.machine, true, seed);

  const dest = await destination(chain.con, fault.kind === "refuse" ? fault.atFrame : undefined);
  const px = await proxy(dest.port, fault);
  const mig = new OutgoingMigration(src.machine, src.runner, {
    batchPages: 8,
    connectTimeoutMs: EVENT_GUARD_MS,
    replyTimeoutMs: fault.kind === "clean" ? 10 * EVENT_GUARD_MS : REPLY_TIMEOUT_MS,
    progressTimeoutMs: fault.kind === "clean" ? 10 * EVENT_GUARD_MS : PROGRESS_TIMEOUT_MS,
  });
  mig.start(`tcp:127.0.0.1:${px.port}`);
  let status = await orAfter(mig.done(), STALL_GUARD_MS, "stuck" as const);
  if (status === "stuck") {
    fail(
      "violation",
      `the source was still waiting after ${STALL_GUARD_MS / 1000} s (its progress timeout is ${PROGRESS_TIMEOUT_MS} ms): cancelled`,
    );
    mig.cancel();
    status = await orAfter(mig.done(), EVENT_GUARD_MS, "stuck" as const);
    if (status === "stuck") {
      px.close();
      return fail("violation", "the migration did not end even after migrate_cancel");
    }
  }
  // A stalled proxy reads nothing, so it would not see the source close: close it now.
  if (px.outcome.stalled) px.close();
  await orAfter(px.closed, EVENT_GUARD_MS, null);
  px.close();
  const dr = await orAfter(dest.result, EVENT_GUARD_MS, null);
  if (dr === null)
    return fail("violation", "the destination neither accepted nor refused after the connection closed");
  if (dr.kind === "refused") {
    if (!(dr.error instanceof MigrationError))
      return fail("crash", `the destination failed with ${dr.message}`);
    const p = messageProblem(dr.message);
    if (p) return fail("crash", `the destination's reason: ${p}: ${dr.message}`);
  }
  if (dr.kind === "accepted" && !px.outcome.forwardedAll)
    return fail(
      "violation",
      "the destination accepted a stream the proxy did not forward to its end (an incomplete VM)",
    );
  if (fault.kind === "stall-stream" && px.outcome.applied) {
    rec.count(
      `stall: ${withBallast ? "with ballast" : "no ballast"}, source gave up (${status === "cancelled" ? "cancelled" : "by itself"})`,
    );
  }

  if (status === "completed") {
    // The fault came too late to matter (or there was none): the destination holds the VM.
    if (dr.kind !== "accepted")
      return fail(
        "violation",
        `the source completed but the destination refused (${dr.message}): the VM is lost`,
      );
    // As QEMU's, the completed source stays, paused (postmigrate), until told to quit.
    if (!src.runner.isPaused) return fail("violation", "the completed source runs on: two copies of the VM");
    src.runner.finish({ kind: "quit", code: 0 });
    const result = await orAfter(src.running, EVENT_GUARD_MS, null);
    if (result?.kind !== "quit")
      return fail("violation", `the completed source did not quit: ${JSON.stringify(result)}`);
    chain.src = startRunner(dr.machine);
    if (withBallast) ballast(dr.machine, false, 0);
    try {
      await chain.con.waitTicks(chain.con.ticks + TICKS_AFTER, "the destination going on");
    } catch (e) {
      return fail("violation", (e as Error).message);
    }
    if (chain.con.error) return fail("violation", `the console after the migration: ${chain.con.error}`);
    rec.count("completed despite the fault");
    if (fault.kind !== "clean" && px.outcome.applied) rec.count("completed with the fault applied");
    if (fault.kind === "clean") rec.count("clean control migrations completed");
    rec.accepted();
    return true;
  }

  // The migration failed. The VM must be in exactly one place: running at the source, or,
  // once the source's whole device state was out and no intact refusal came back, paused
  // at the source (it cannot know whether the destination runs the VM) -- and then, if the
  // destination does hold it (its ACK was damaged), it goes on there.
  if (fault.kind === "clean")
    return fail("violation", `the clean control migration ${status}: ${mig.info()["error-desc"]}`);
  rec.count("survival: faulty migrations that failed");
  const desc = mig.info()["error-desc"] ?? (status === "cancelled" ? "cancelled by the matrix" : "");
  const p = messageProblem(desc);
  if (p) return fail("crash", `the source's error-desc: ${p}: '${desc}'`);
  const pausedOnPurpose = /the destination may be running the VM/.test(desc);
  if (src.runner.isPaused && !pausedOnPurpose)
    return fail("violation", `the source is paused after the failed migration without saying why: ${desc}`);
  if (!src.runner.isPaused && pausedOnPurpose)
    return fail("violation", `the source says it stays paused but runs: ${desc}`);
  if (dr.kind === "accepted") {
    // Only a reply damaged after the destination sent its ACK can do this (a refusal's cut
    // falls on the ACK when the stream had fewer frames than the refusal's index).
    const replyFault =
      fault.kind === "cut-reply" ||
      fault.kind === "corrupt-reply" ||
      fault.kind === "stall-reply" ||
      (fault.kind === "refuse" && fault.cut !== null);
    if (!replyFault)
      return fail("violation", `the destination accepted the VM while the source failed: ${desc}`);
    if (!src.runner.isPaused)
      return fail("violation", "two running copies: the destination holds the VM and the source resumed it");
    // The operator's choice here: the destination runs the VM, the source quits.
    rec.count("ACK damaged: the source stayed paused, the destination holds the VM and goes on");
    src.runner.finish({ kind: "quit", code: 0 });
    await orAfter(src.running, EVENT_GUARD_MS, null);
    chain.src = startRunner(dr.machine);
    if (withBallast) ballast(dr.machine, false, 0);
    try {
      await chain.con.waitTicks(chain.con.ticks + TICKS_AFTER, "the destination holding the VM going on");
    } catch (e) {
      return fail("violation", (e as Error).message);
    }
    if (chain.con.error) return fail("violation", `the console across the handover: ${chain.con.error}`);
    rec.refused(`migration failed: ${desc}`);
    return true;
  }
  rec.count("survival: VM only at the source (the destination refused or never got it all)");
  if (src.runner.isPaused) {
    // The destination does not hold it: 'cont' resumes it here.
    rec.count("source stayed paused after its device state was out: resumed with cont");
    src.runner.resume();
  }
  if (!dirtyLogOff(src.machine)) return fail("violation", "the source's dirty log is still on");
  try {
    await chain.con.waitTicks(chain.con.ticks + 1, "the source's counter after the failed migration");
  } catch (e) {
    return fail("violation", (e as Error).message);
  }
  if (chain.con.error) return fail("violation", `the source's console: ${chain.con.error}`);
  rec.count("survival: source survived (its counter going on)");
  if (withBallast) ballast(src.machine, false, 0);

  // A later good migration from the same source, straight to a new destination.
  const good = await destination(chain.con);
  const gm = new OutgoingMigration(src.machine, src.runner, {
    batchPages: 8,
    connectTimeoutMs: EVENT_GUARD_MS,
  });
  gm.start(`tcp:127.0.0.1:${good.port}`);
  const gs = await orAfter(gm.done(), EVENT_GUARD_MS, "stuck" as const);
  const gr = await orAfter(good.result, EVENT_GUARD_MS, null);
  if (gs !== "completed" || gr?.kind !== "accepted")
    return fail(
      "violation",
      `the later good migration: source ${gs} (${gm.info()["error-desc"] ?? ""}), destination ${gr === null ? "silent" : gr.kind === "refused" ? `refused: ${gr.message}` : "accepted"}`,
    );
  // As QEMU's, the migrated source stays, paused (postmigrate), until told to quit.
  if (!src.runner.isPaused) return fail("violation", "the migrated source runs on: two copies of the VM");
  src.runner.finish({ kind: "quit", code: 0 });
  const result = await orAfter(src.running, EVENT_GUARD_MS, null);
  if (result?.kind !== "quit")
    return fail("violation", `the migrated source did not quit: ${JSON.stringify(result)}`);
  chain.src = startRunner(gr.machine);
  try {
    await chain.con.waitTicks(
      chain.con.ticks + TICKS_AFTER,
      "the destination of the good migration going on",
    );
  } catch (e) {
    return fail("violation", (e as Error).message);
  }
  if (chain.con.error) return fail("violation", `the console across the good migration: ${chain.con.error}`);
  rec.count("survival: later good migration completed");
  rec.refused(`migration failed: ${desc}`);
  return true;
}

export const faultMatrixTarget: FuzzTarget = {
  name: "fault-matrix",
  unit: "faulty migrations",
  full: 400,
  smoke: 8,
  perInputMs: 2 * STALL_GUARD_MS + 4 * EVENT_GUARD_MS,
  async run(chunk: Chunk, rec: Recorder): Promise<void> {
    let chain = await boot();
    rec.ready();
    let ticks = -chain.con.ticks;
    try {
      for (let i = chunk.start; i < chunk.start + chunk.count; i++) {
        const before = rec.next;
        let healthy = false;
        try {
          healthy = await runCase(chain, i, rec.inputSeed(i), rec);
        } catch (e) {
          if (rec.next === before) rec.crash(i, `thrown: ${(e as Error)?.stack ?? String(e)}`);
        }
        if (rec.next === before) rec.accepted(); // a violation already said what went wrong
        if (!healthy) {
          // Start the chain again from a fresh boot: the failure may have left no runnable VM.
          rec.count("chain rebooted after a failure");
          ticks += chain.con.ticks;
          await orAfter(end(chain), EVENT_GUARD_MS, null);
          chain = await boot();
          ticks -= chain.con.ticks;
        }
      }
    } finally {
      rec.count("survival: ticks checked (no gap, no repeat)", ticks + chain.con.ticks);
      await end(chain);
    }
  },
};

/** Runs inputs [start, start + count) of seed `seed` in process (tests). */
export async function runMatrix(count: number, seed = 1, start = 0): Promise<Tally> {
  const { runInProcess } = await import("./engine.ts");
  return runInProcess(faultMatrixTarget, { target: faultMatrixTarget.name, seed, start, count });
}
