/**
 * The outgoing side of live migration: QEMU-style pre-copy driven by the dirty-page log.
 *
 *   setup    connect (tcp:HOST:PORT) or create the file (file:PATH), send the preamble
 *            and the machine configuration; a TCP destination answers ready or refuse.
 *   active   round 1 sends every non-zero page while the guest runs; then rounds of the
 *            pages the dirty log reports, until what is left fits `downtime-limit` at the
 *            measured bandwidth (or MAX_ROUNDS were made: then it stops anyway, as QEMU's
 *            auto-converge would end up doing).
 *   device   pause the runner, send the last dirty pages, every component's section and
 *            the run state, then wait for the destination's ACK.
 *   completed only after the ACK (a file migration has none: once the file is written
 *            and synced). The source stays paused, as QEMU's does (run state postmigrate),
 *            its QMP answering until `quit`; `cont` would run it here again, as in QEMU.
 * Any failure before that (connect refused, connection cut, destination refused or
 * died, timeout) or migrate_cancel: the dirty log is switched off and the source VM runs
 * on if it was running. Except once the whole device state is out on a connection: then
 * only an intact refusal proves the destination does not run the VM, and anything else
 * (the answer lost, cut, garbled, late) leaves the source paused, failed, until `cont`. Two clocks bound a migration: the progress timeout (no byte moved
 * to or from the destination: it stopped reading, or never answers) and the overall
 * deadline (until the device state is out; the ACK wait after it has replyTimeoutMs).
 *
 * The VMM is single-threaded: the migration works in turns of a few milliseconds and
 * yields (setImmediate) between them so that the MachineRunner's rounds keep the guest
 * running; socket writes are asynchronous and honour back-pressure.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import type { VirtMachine } from "../../machine/virt.ts";
import type { MachineRunner } from "../runner.ts";
import { concat, END_FRAME, encodeSection, type Section } from "../snapshot/format.ts";
import { captureSections, encodeRam, PAGE, pageIsZero } from "../snapshot/machine-state.ts";
import type {
  MigrationController,
  MigrationInfo,
  MigrationParameters,
  MigrationStatus,
} from "./controller.ts";
import {
  DEFAULT_DEADLINE_MS,
  DEFAULT_PROGRESS_MS,
  encodePreamble,
  FrameReader,
  failureReason,
  frame,
  MAX_BATCH_PAGES,
  MAX_REPLY_PAYLOAD,
  MigrationError,
  RamLedger,
  type RunState,
  SEC_ACK,
  SEC_HEADER,
  SEC_PAGES,
  SEC_READY,
  SEC_REFUSE,
  SEC_ROUND,
  SEC_STATE,
  STREAM_VERSION,
  sectionEntry,
  sourceFrameLimit,
  streamConfig,
} from "./stream.ts";

/** What the migration needs of the run loop. */
export type RunnerControl = Pick<MachineRunner, "pause" | "resume" | "finish" | "isPaused" | "onPaused">;

export interface OutgoingOptions {
  /** Pages per `ram.pages` frame (at most MAX_BATCH_PAGES, the destination's frame limit). */
  batchPages?: number;
  /** Longest a migration turn keeps the guest from running (ms). */
  turnMs?: number;
  /** Dirty-page rounds before stop-and-copy is forced. */
  maxRounds?: number;
  connectTimeoutMs?: number;
  /** Wait for the destination's ready / ACK. */
  replyTimeoutMs?: number;
  /**
   * The progress timeout: fail when no byte moves to or from the destination for this
   * many ms (it stopped reading, or answers nothing); default DEFAULT_PROGRESS_MS.
   */
  progressTimeoutMs?: number;
  /**
   * The overall deadline: fail when the device state is not out within this many ms of
   * the start (default DEFAULT_DEADLINE_MS); the VM runs on, as on every failure.
   */
  deadlineMs?: number;
  /** Test hook: the frame limit declared in the header (default: what batchPages needs). */
  declareMaxFrame?: number;
  /** Deflate RAM frames (costs CPU; pays on slow links). */
  compress?: boolean;
  /** Test hook: write this stream version instead of ours. */
  streamVersion?: number;
  /** Test hook: called with every chunk about to be written; may return a changed copy. */
  tamper?: (chunk: Uint8Array, offset: number) => Uint8Array;
  diag?: (line: string) => void;
}

export const DEFAULT_PARAMETERS: MigrationParameters = { "downtime-limit": 300, "max-bandwidth": 0 };
const MAX_ROUNDS = 30;
/** Longest turn auto-converge grows to (ms). */
const MAX_TURN_MS = 400;
/** With no bandwidth measured yet, a rest this small (pages) is sent at stop-and-copy. */
const SMALL_REST = 64;
/** Captures run before pre-copy so the one inside the downtime is optimised code. */
const WARM_CAPTURES = 40;
/** Captures run for warming so far in this process. */
let warmCaptures = 0;
/** How long a failed migration waits for the destination's reason before reporting its own. */
const REFUSAL_WAIT_MS = 300;

class Cancelled extends Error {}

/** Where a stream migration goes: a TCP address or a Unix socket. */
type StreamTarget = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

/** Parses a migration URI; only tcp:HOST:PORT, unix:PATH and file:PATH (never a shell command). */
export function parseMigrationUri(uri: string): StreamTarget | { kind: "file"; path: string } {
  const tcp = /^tcp:(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(uri);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port < 1 || port > 65535) throw new MigrationError(`bad port in migration URI '${uri}'`);
    return { kind: "tcp", host: tcp[1]!.replace(/^\[|\]$/g, ""), port };
  }
  if (uri.startsWith("unix:") && uri.length > 5) return { kind: "unix", path: uri.slice(5) };
  if (uri.startsWith("file:") && uri.length > 5) return { kind: "file", path: uri.slice(5) };
  throw new MigrationError(`unsupported migration URI '${uri}' (use tcp:HOST:PORT, unix:PATH or file:PATH)`);
}

interface Transport {
  write(b: Uint8Array): Promise<void>;
  /** Gives up on the transport: pending and later writes fail with `reason`. */
  abort(reason: string): void;
  /** Waits for `p`, a wait on the destination, under the progress timeout. */
  onPeer<T>(p: Promise<T>): Promise<T>;
  /** Replies from the destination (TCP only). */
  readonly replies: FrameReader | null;
  /** Flushes and closes normally. */
  finish(): Promise<void>;
  destroy(): void;
}

/**
 * `progressMs` is read each time a wait on the destination begins (a test may shorten it
 * for one phase).
 */
function connectStream(
  target: StreamTarget,
  timeoutMs: number,
  progressMs: () => number,
): Promise<Transport> {
  const where = target.kind === "tcp" ? `${target.host}:${target.port}` : `unix:${target.path}`;
  return new Promise((resolve, reject) => {
    const sock =
      target.kind === "tcp"
        ? net.connect({ host: target.host, port: target.port })
        : net.connect({ path: target.path });
    if (target.kind === "tcp") sock.setNoDelay(true);
    const replies = new FrameReader(MAX_REPLY_PAYLOAD);
    let error: Error | null = null;
    /** Why we gave up on the connection (progress timeout, deadline), for every pending write. */
    let aborted: string | null = null;
    const abort = (reason: string) => {
      aborted ??= reason;
      replies.end(reason);
      sock.destroy();
    };
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new MigrationError(`connecting to ${where} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("data", (d: Buffer) => replies.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    sock.on("close", () => replies.end("the destination closed the connection"));
    sock.on("error", (e) => {
      error ??= e;
      replies.end(`the connection failed (${e.message})`);
      clearTimeout(timer);
      reject(new MigrationError(`cannot connect to ${where}: ${e.message}`));
    });
    sock.once("connect", () => {
      clearTimeout(timer);
      // Progress: armed only while the source waits on the destination (a write it has not
      // taken, a reply), never while the source itself is busy; Node's socket timeout fires
      // when no byte moved either way for that long (a write the kernel is still taking
      // counts as moving).
      let waits = 0;
      let armedMs = 0;
      sock.on("timeout", () =>
        abort(`no byte moved to or from the destination for ${armedMs} ms (it stopped reading or answering)`),
      );
      const onPeer = async <T>(p: Promise<T>): Promise<T> => {
        if (waits++ === 0) {
          armedMs = progressMs();
          sock.setTimeout(armedMs);
        }
        try {
          return await p;
        } finally {
          if (--waits === 0) sock.setTimeout(0);
        }
      };
      resolve({
        replies,
        abort,
        onPeer,
        write: (b) =>
          new Promise<void>((res, rej) => {
            if (aborted !== null) return rej(new MigrationError(aborted));
            if (error) return rej(new MigrationError(`the connection failed (${error.message})`));
            if (sock.destroyed || !sock.writable) return rej(new MigrationError("the connection was closed"));
            const ok = sock.write(b, (e) => {
              if (e) rej(new MigrationError(`the connection failed (${e.message})`));
            });
            if (ok) res();
            else {
              // The drain wait is a wait on the destination: under the progress timeout.
              let settle!: () => void;
              void onPeer(
                new Promise<void>((r) => {
                  settle = r;
                }),
              );
              const onDrain = () => {
                sock.off("close", onClose);
                settle();
                res();
              };
              const onClose = () => {
                sock.off("drain", onDrain);
                settle();
                rej(
                  new MigrationError(
                    aborted ?? `the connection failed (${error?.message ?? "closed by the destination"})`,
                  ),
                );
              };
              sock.once("drain", onDrain);
              sock.once("close", onClose);
            }
          }),
        finish: () =>
          new Promise<void>((res) => {
            sock.setTimeout(0);
            // Settles however the close goes (the callback may not run on an error).
            sock.once("close", () => res());
            sock.end(() => res());
          }),
        destroy: () => sock.destroy(),
      });
    });
  });
}

/** A file-system failure as a one-line reason: "file:PATH: no such directory". */
function fileError(path: string, doing: string, e: unknown): MigrationError {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === "ENOENT"
      ? "no such directory"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "EISDIR"
          ? "a directory"
          : code === "ENOSPC"
            ? "no space left on the device"
            : (code ?? "failed");
  return new MigrationError(`${doing} ${path}: ${why}`);
}

function openFile(path: string): Transport {
  let fd: number;
  try {
    fd = fs.openSync(path, "w");
  } catch (e) {
    throw fileError(path, "cannot create", e);
  }
  let closed = false;
  let aborted: string | null = null;
  // A write may still be in the thread pool when the migration is cancelled: the
  // descriptor is closed only once none is, or the stream's bytes would go to whatever
  // file or socket is opened next under the same number.
  let inflight = 0;
  let closeWhenIdle = false;
  const closeFd = () => {
    try {
      fs.closeSync(fd);
    } catch {
      // already failed; nothing more to tell
    }
  };
  return {
    replies: null,
    abort: (reason) => {
      aborted ??= reason;
    },
    onPeer: (p) => p,
    write: (b) =>
      new Promise<void>((res, rej) => {
        if (aborted !== null) return rej(new MigrationError(aborted));
        if (closed) return rej(new MigrationError(`writing ${path}: the migration was ended`));
        inflight++;
        // fs.write may write less than asked: go on from where it stopped.
        const step = (off: number) =>
          fs.write(fd, b, off, b.length - off, null, (e, n) => {
            const at = off + (e ? 0 : n);
            if (!e && at < b.length && !closed) return step(at);
            if (--inflight === 0 && closeWhenIdle) closeFd();
            if (e) rej(fileError(path, "writing", e));
            else if (at < b.length)
              rej(new MigrationError(aborted ?? `writing ${path}: the migration was ended`));
            else res();
          });
        step(0);
      }),
    finish: async () => {
      try {
        fs.fsyncSync(fd);
        fs.closeSync(fd);
      } catch (e) {
        throw fileError(path, "writing", e);
      } finally {
        closed = true;
      }
    },
    destroy: () => {
      if (closed) return;
      closed = true;
      if (inflight === 0) closeFd();
      else closeWhenIdle = true;
    },
  };
}

const now = () => performance.now();
const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Outgoing live migration for one machine and its run loop (QMP's `migrate`). */
export class OutgoingMigration implements MigrationController {
  readonly parameters: MigrationParameters = { ...DEFAULT_PARAMETERS };
  onStatus: ((status: MigrationStatus) => void) | null = null;
  /** Called with progress after every turn (the CLI's progress bar). */
  onProgress: ((info: MigrationInfo) => void) | null = null;

  private status: MigrationStatus = "none";
  private error: string | undefined;
  private cancelRequested = false;
  private transport: Transport | null = null;
  private pending: Promise<void> | null = null;

  private startTime = 0;
  private endTime = 0;
  private setupTime = 0;
  private pauseTime = 0;
  private downtime: number | undefined;
  private expectedDowntime = 0;
  private transferred = 0;
  private normalPages = 0;
  /** What the stream's RAM part carried, declared to the destination at the end. */
  private ledger = new RamLedger();
  private zeroPages = 0;
  private remainingPages = 0;
  private dirtySyncs = 0;
  private dirtyRate = 0;
  /** Bytes per ms measured over the last round. */
  private bandwidth = 0;
  private throttleStart = 0;
  private throttleBytes = 0;
  private turnMs = 10;
  /** Why the migration was given up (progress timeout, deadline): the reason reported. */
  private abortReason: string | null = null;
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly machine: VirtMachine,
    readonly runner: RunnerControl,
    readonly opts: OutgoingOptions = {},
  ) {}

  setParameters(p: Partial<MigrationParameters>): void {
    for (const k of ["downtime-limit", "max-bandwidth"] as const) {
      const v = p[k];
      if (v === undefined) continue;
      if (!Number.isFinite(v) || v < 0)
        throw new MigrationError(`parameter '${k}' must be a non-negative number`);
      this.parameters[k] = v;
    }
  }

  get active(): boolean {
    return (
      this.status === "setup" ||
      this.status === "active" ||
      this.status === "device" ||
      this.status === "cancelling"
    );
  }

  start(uri: string): void {
    if (this.active) throw new MigrationError("a migration is already in progress");
    const target = parseMigrationUri(uri);
    this.reset();
    this.setStatus("setup");
    this.pending = this.migrate(target);
  }

  /** Resolves when the current migration has ended (completed, failed or cancelled). */
  async done(): Promise<MigrationStatus> {
    await this.pending;
    return this.status;
  }

  cancel(): void {
    // Once the end marker is out the destination may already run: too late (QEMU also
    // cannot cancel a migration whose device state has been sent).
    if (this.status === "setup" || this.status === "active") {
      this.cancelRequested = true;
      this.setStatus("cancelling");
      this.transport?.destroy();
    }
  }

  info(): MigrationInfo {
    if (this.status === "none") return { status: "none" };
    const end = this.active ? now() : this.endTime;
    const elapsed = Math.max(1, end - this.startTime);
    const info: MigrationInfo = {
      status: this.status,
      ram: {
        transferred: this.transferred,
        remaining: this.remainingPages * PAGE,
        total: this.machine.vm.ram.length,
        duplicate: this.zeroPages,
        normal: this.normalPages,
        "normal-bytes": this.normalPages * PAGE,
        "dirty-pages-rate": Math.round(this.dirtyRate),
        mbps: Math.round(((this.transferred * 8) / 1e6 / (elapsed / 1000)) * 1000) / 1000,
        "dirty-sync-count": this.dirtySyncs,
      },
      "total-time": Math.round(elapsed),
      "expected-downtime": Math.round(this.expectedDowntime),
      "setup-time": Math.round(this.setupTime),
    };
    if (this.downtime !== undefined) info.downtime = Math.round(this.downtime * 1000) / 1000;
    if (this.error !== undefined) info["error-desc"] = this.error;
    return info;
  }

  // -------------------------------------------------------------------------

  private reset(): void {
    this.error = undefined;
    this.abortReason = null;
    this.cancelRequested = false;
    this.startTime = now();
    this.endTime = 0;
    this.setupTime = 0;
    this.pauseTime = 0;
    this.downtime = undefined;
    this.expectedDowntime = 0;
    this.transferred = 0;
    this.normalPages = 0;
    this.ledger = new RamLedger();
    this.zeroPages = 0;
    this.remainingPages = this.machine.vm.ram.length / PAGE;
    this.dirtySyncs = 0;
    this.dirtyRate = 0;
    this.bandwidth = 0;
    this.turnMs = this.opts.turnMs ?? 10;
  }

  private setStatus(s: MigrationStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.onStatus?.(s);
  }

  private diag(line: string): void {
    this.opts.diag?.(line);
  }

  private checkCancel(): void {
    if (this.cancelRequested) throw new Cancelled();
    if (this.abortReason !== null) throw new MigrationError(this.abortReason);
  }

  /** Ends the migration with `reason` wherever it is waiting (the transport fails). */
  private giveUp(reason: string): void {
    this.abortReason ??= reason;
    this.transport?.abort(reason);
  }

  /** Pages per 'ram.pages' frame. */
  private get batch(): number {
    return Math.max(1, Math.min(this.opts.batchPages ?? 256, MAX_BATCH_PAGES));
  }

  private async send(b: Uint8Array): Promise<void> {
    this.checkCancel();
    const t = this.transport!;
    // The destination says nothing mid-stream unless it refuses: stop sending at once.
    if (t.replies && t.replies.available > 0 && this.status !== "setup") {
      const refusal = await this.pendingRefusal();
      if (refusal !== null) throw new MigrationError(`the destination refused: ${refusal}`);
    }
    const data = this.opts.tamper ? this.opts.tamper(b, this.transferred) : b;
    await t.write(data);
    this.transferred += b.length;
    // max-bandwidth: keep the average rate since the start of the round under the cap.
    const cap = this.parameters["max-bandwidth"];
    if (cap > 0) {
      this.throttleBytes += b.length;
      const due = this.throttleStart + (this.throttleBytes / cap) * 1000;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
    }
  }

  private async migrate(target: ReturnType<typeof parseMigrationUri>): Promise<void> {
    const m = this.machine;
    const opts = this.opts;
    let pausedByUs = false;
    let logging = false;
    /** The device state is out on a connection: a destination may be running the VM now. */
    let stateOut = false;
    const deadlineMs = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.deadlineTimer = setTimeout(
      () => this.giveUp(`the migration did not complete within the ${deadlineMs} ms deadline`),
      deadlineMs,
    );
    const maxFrame = opts.declareMaxFrame ?? sourceFrameLimit(this.batch);
    try {
      // -- setup --
      this.transport =
        target.kind !== "file"
          ? await connectStream(
              target,
              opts.connectTimeoutMs ?? 5000,
              () => opts.progressTimeoutMs ?? DEFAULT_PROGRESS_MS,
            )
          : openFile(target.path);
      this.checkCancel();
      this.throttleStart = now();
      this.throttleBytes = 0;
      await this.send(encodePreamble(opts.streamVersion ?? STREAM_VERSION));
      await this.send(frame(SEC_HEADER, { config: streamConfig(m), maxFrame, writer: "armbox 0.1.0" }));
      const replies = this.transport.replies;
      if (replies) {
        const r = await this.reply(replies, [SEC_READY, SEC_REFUSE], "its handshake answer");
        if (r.name === SEC_REFUSE)
          throw new MigrationError(`the destination refused: ${String(r.value.error)}`);
      }
      this.setupTime = now() - this.startTime;
      this.setStatus("active");

      // -- pre-copy --
      // Capture and encode a few times now (read-only) so that the capture inside the
      // downtime runs as optimised code: it runs once per migration, cold otherwise.
      // One capture per event-loop turn, so the guest runs on in between.
      // The optimised code stays for the process: only its first migrations warm up.
      for (; warmCaptures < WARM_CAPTURES; warmCaptures++) {
        encodeDeviceState(captureWithoutRam(m), "running", 0, new RamLedger());
        await tick();
        this.checkCancel();
      }
      m.vm.enableDirtyLog();
      logging = true;
      // Round 1: every page ever written (the others are still zero), zero pages skipped.
      const written = m.vm.writtenPages();
      this.zeroPages += m.vm.ram.length / PAGE - written.length;
      this.remainingPages = written.length;
      await this.sendPages(written, true);
      await this.send(frame(SEC_ROUND, this.ledger.endRound()));
      const limit = () => this.parameters["downtime-limit"];
      let dirty: number[] = [];
      for (let round = 1; ; round++) {
        const t0 = now();
        const bytes0 = this.transferred;
        dirty = this.syncDirty();
        this.remainingPages = dirty.length;
        this.expectedDowntime = this.bandwidth > 0 ? (dirty.length * (PAGE + 4)) / this.bandwidth : 0;
        const fits =
          dirty.length === 0 ||
          (limit() > 0 &&
            (this.bandwidth > 0 ? this.expectedDowntime <= limit() : dirty.length <= SMALL_REST));
        if (fits || round > (opts.maxRounds ?? MAX_ROUNDS)) break;
        // Auto-converge (as QEMU's): each round that did not fit gives the migration a
        // longer share of the time, which throttles the guest's dirtying.
        if (round >= 2) this.turnMs = Math.min(MAX_TURN_MS, this.turnMs * 2);
        await this.sendPages(dirty, false);
        await this.send(frame(SEC_ROUND, this.ledger.endRound()));
        this.measure(t0, bytes0);
        dirty = [];
      }

      // -- stop and copy --
      // After pause() no scheduler round runs again (rounds are synchronous and the loop
      // checks the flag before each one), so the state is frozen from here on; the
      // runner's own acknowledgement (onPaused, which an idle loop gives only when its
      // sleep ends) is awaited before completion, not inside the downtime.
      this.pauseTime = now();
      const wasPaused = this.runner.isPaused;
      let parked: Promise<void> = Promise.resolve();
      if (!wasPaused) {
        parked = this.pauseRunner();
        parked.catch(() => {});
        pausedByUs = true;
      }
      this.checkCancel();
      this.setStatus("device");
      const runState: RunState = wasPaused ? "paused" : "running";
      const last = new Set(dirty);
      for (const p of this.syncDirty()) last.add(p);
      const lastPages = [...last].sort((a, b) => a - b);
      this.remainingPages = lastPages.length;
      const savedAt = Date.now();
      // The consoles' held output travels in the device state: the source must not send it
      // too (a drain would, even with the vCPUs stopped).
      m.output.freeze();
      const sections = captureWithoutRam(m);
      for (const s of sections) {
        if (s.data.length > maxFrame)
          throw new MigrationError(
            `section '${s.name}' holds ${s.data.length} bytes, more than the ${maxFrame} this source declared for its frames`,
          );
      }
      await this.sendPagesNow(lastPages);
      // Every section, the run state and the end mark in one write: one syscall, one
      // segment train, no event-loop turn between them.
      await this.send(encodeDeviceState(sections, runState, savedAt, this.ledger));
      stateOut = replies !== null;
      // The device state is out: from here only the ACK wait (replyTimeoutMs) bounds it. A
      // deadline firing now could give up on a destination that is already running.
      clearTimeout(this.deadlineTimer);
      const sentAt = now();
      this.remainingPages = 0;
      if (replies) {
        const r = await this.reply(replies, [SEC_ACK, SEC_REFUSE], "its acknowledgement");
        if (r.name === SEC_REFUSE)
          throw new MigrationError(`the destination refused: ${String(r.value.error)}`);
      }
      this.downtime = now() - this.pauseTime;
      await parked; // the run loop has acknowledged the pause (it may have been asleep)
      await this.transport.finish();
      m.vm.disableDirtyLog();
      logging = false;
      this.endTime = now();
      this.setStatus("completed");
      this.diag(
        `migration completed: ${this.transferred} bytes in ${Math.round(this.endTime - this.startTime)} ms, downtime ${this.downtime.toFixed(1)} ms (${lastPages.length} last pages and the device state sent in ${(sentAt - this.pauseTime).toFixed(1)} ms, acknowledged ${(this.pauseTime + this.downtime - sentAt).toFixed(1)} ms later)`,
      );
    } catch (thrown) {
      // Failed already: the deadline must not replace the reason while the refusal is awaited.
      clearTimeout(this.deadlineTimer);
      let e = thrown;
      if (logging) m.vm.disableDirtyLog();
      // A destination that refuses the stream says why and closes: our next write may fail
      // before we have read its reason. Prefer the reason when it arrives.
      const refused = e instanceof MigrationError && e.message.startsWith("the destination refused");
      const refusal = e instanceof MigrationError && !refused ? await this.pendingRefusal() : null;
      this.transport?.destroy();
      if (refusal !== null) e = new MigrationError(`the destination refused: ${refusal}`);
      // Once the whole device state is out, only an intact refusal proves the destination
      // does not run the VM: a lost, cut or garbled answer leaves it unknown, and two
      // running copies (one disk under both) are worse than a paused one. The source then
      // stays paused, as QEMU's does after every migration, until `cont` resumes it here.
      const unknown = stateOut && !refused && refusal === null;
      // thaw() is a no-op unless the capture froze the consoles.
      if (!unknown) m.output.thaw();
      if (pausedByUs && !unknown) this.runner.resume();
      this.endTime = now();
      if (unknown) {
        this.error = `${this.abortReason ?? failureReason(e, (l) => this.diag(l))}, after the whole device state was sent: the destination may be running the VM, so this one stays paused ('cont' resumes it here)`;
        this.setStatus("failed");
        this.diag(`migration failed: ${this.error}`);
      } else if (e instanceof Cancelled || this.cancelRequested) {
        this.setStatus("cancelled");
        this.diag("migration cancelled; the VM runs on");
      } else {
        this.error = this.abortReason ?? failureReason(e, (l) => this.diag(l));
        this.setStatus("failed");
        this.diag(`migration failed: ${this.error}; the VM runs on`);
      }
    } finally {
      clearTimeout(this.deadlineTimer);
      this.transport = null;
    }
  }

  /** Waits for a reply frame; a connection that breaks first may still hold a refusal. */
  /** The destination's refusal reason, if it sends one within a short wait. */
  private async pendingRefusal(): Promise<string | null> {
    const replies = this.transport?.replies;
    if (!replies) return null;
    const refused = replies.expectJson([SEC_REFUSE]).then(
      (r) => String(r.value.error),
      () => null,
    );
    return Promise.race([refused, sleep(REFUSAL_WAIT_MS).then(() => null)]);
  }

  private async reply(replies: FrameReader, names: string[], what: string) {
    const ms = this.opts.replyTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(
        () => rej(new MigrationError(`the destination did not send ${what} within ${ms} ms`)),
        ms,
      );
    });
    try {
      const wait = Promise.race([replies.expectJson(names), timeout]);
      return await (this.transport ? this.transport.onPeer(wait) : wait);
    } catch (e) {
      if (replies.endReason !== null && e instanceof MigrationError && /truncated/.test(e.message)) {
        throw new MigrationError(`${replies.endReason} before sending ${what}`);
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private syncDirty(): number[] {
    const bitmap = this.machine.vm.getDirtyLog();
    this.dirtySyncs++;
    const pages: number[] = [];
    for (let i = 0; i < bitmap.length; i++) {
      const b = bitmap[i]!;
      if (b === 0) continue;
      for (let k = 0; k < 8; k++) if (b & (1 << k)) pages.push(i * 8 + k);
    }
    return pages;
  }

  private measure(t0: number, bytes0: number): void {
    const dt = now() - t0;
    if (dt > 0 && this.transferred - bytes0 >= 256 * 1024) {
      const bw = (this.transferred - bytes0) / dt;
      if (bw > 0) this.bandwidth = this.bandwidth > 0 ? (this.bandwidth + bw) / 2 : bw;
    }
  }

  /** Sends `pages` in batches, yielding to the guest between turns. */
  private async sendPages(pages: Iterable<number>, skipZero: boolean): Promise<void> {
    const ram = this.machine.vm.ram;
    const batch = this.batch;
    const turn = this.turnMs;
    let list: number[] = [];
    let turnStart = now();
    const t0 = now();
    const bytes0 = this.transferred;
    let seen = 0;
    for (const p of pages) {
      seen++;
      if (skipZero && pageIsZero(ram, p * PAGE)) {
        this.zeroPages++;
        this.remainingPages--;
        continue;
      }
      list.push(p);
      if (list.length >= batch) {
        await this.sendBatch(list);
        list = [];
        if (now() - turnStart >= turn) {
          this.onProgress?.(this.info());
          await tick();
          turnStart = now();
        }
      } else if ((seen & 4095) === 0 && now() - turnStart >= turn) {
        this.checkCancel();
        await tick();
        turnStart = now();
      }
    }
    if (list.length > 0) await this.sendBatch(list);
    if (skipZero) this.measure(t0, bytes0);
    this.onProgress?.(this.info());
    await tick();
  }

  /** Sends pages without yielding (the VM is paused). */
  private async sendPagesNow(pages: number[]): Promise<void> {
    const batch = this.batch;
    for (let i = 0; i < pages.length; i += batch) await this.sendBatch(pages.slice(i, i + batch));
  }

  private async sendBatch(list: number[]): Promise<void> {
    const data = encodeRam(this.machine.vm.ram, list);
    this.ledger.add(data, list.length);
    await this.send(encodeSection({ name: SEC_PAGES, version: 1, data }, this.opts.compress ?? false));
    this.normalPages += list.length;
    this.remainingPages = Math.max(0, this.remainingPages - list.length);
  }

  private pauseRunner(): Promise<void> {
    const r = this.runner;
    const prev = r.onPaused;
    return new Promise<void>((res, rej) => {
      const timer = setTimeout(() => {
        r.onPaused = prev;
        rej(new MigrationError("the VM did not stop within 5 s"));
      }, 5000);
      r.onPaused = () => {
        clearTimeout(timer);
        r.onPaused = prev;
        prev?.();
        res();
      };
      r.pause();
    });
  }
}

/**
 * The device-state part of the stream: the last round's marker, the sections, the
 * run-state frame with what the whole stream carried, the end mark.
 */
function encodeDeviceState(
  sections: readonly Section[],
  runState: RunState,
  savedAt: number,
  ledger: RamLedger,
): Uint8Array {
  const last = frame(SEC_ROUND, ledger.endRound());
  return concat([
    last,
    ...sections.map((s) => encodeSection(s, false)),
    frame(SEC_STATE, {
      runState,
      savedAt,
      rounds: ledger.rounds,
      pages: ledger.totalPages,
      digest: ledger.digest(),
      sections: sections.map(sectionEntry),
    }),
    END_FRAME,
  ]);
}

/** captureSections(m) with a RAM section that lists no page: the pages travel as 'ram.pages' frames. */
export function captureWithoutRam(m: VirtMachine): Section[] {
  return captureSections(m, { ram: false });
}
