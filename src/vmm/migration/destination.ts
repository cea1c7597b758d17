/**
 * The incoming side of live migration (`armbox run --incoming tcp:HOST:PORT`, or
 * `--incoming file:PATH` for a stream a `file:` migration wrote): listen, accept one
 * connection, check the stream version, the source's declared frame limit against this
 * destination's, and that the machine configuration (virtio devices included) equals this
 * destination's own, load RAM pages as they come into a fresh machine that has no
 * kernel, then the component sections through restoreSections, and only when all of it
 * loaded send the ACK. The machine is handed to the caller only then: a stream that is
 * corrupt, truncated, of an unknown version, or cut before its end marker makes
 * receiveIncoming reject with a MigrationError that says what was wrong, and the
 * half-loaded machine is dropped without ever running. A source that stops sending (the
 * progress timeout) or does not finish within the overall deadline is given up on the same
 * way.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { type VirtConfig, VirtMachine } from "../../machine/virt.ts";
import { InputFileError, readInputFileAsync, SNAPSHOT_LIMIT } from "../host/input-file.ts";
import {
  concat,
  decodeSection,
  END_FRAME,
  encodeSection,
  type Section,
  SnapshotError,
} from "../snapshot/format.ts";
import { captureSections, decodeRamInto, restoreSections } from "../snapshot/machine-state.ts";
import {
  checkConfig,
  checkFrameLimit,
  DEFAULT_DEADLINE_MS,
  DEFAULT_PROGRESS_MS,
  FrameReader,
  failureReason,
  frame,
  jsonObject,
  MAX_FRAME_PAYLOAD,
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
  sectionEntry,
  streamConfig,
} from "./stream.ts";

export interface IncomingOptions {
  diag?: (line: string) => void;
  /** Called once the listening socket is bound (the actual port, for `tcp:HOST:0`). */
  onListening?: (address: { host: string; port: number }) => void;
  /** Give up when no source connects within this many ms (default: wait for ever). */
  acceptTimeoutMs?: number;
  /**
   * The progress timeout: give up when no byte moves to or from the connected source for
   * this many ms (default DEFAULT_PROGRESS_MS).
   */
  idleTimeoutMs?: number;
  /**
   * The overall deadline: give up when the migration has not arrived whole within this
   * many ms of the connection (default DEFAULT_DEADLINE_MS), so that a source dripping a
   * byte now and then cannot hold the destination for ever.
   */
  deadlineMs?: number;
  /** The largest frame payload this destination accepts (default MAX_FRAME_PAYLOAD). */
  maxFramePayload?: number;
  /** Test hook: called after each frame is loaded (to kill the destination mid-way). */
  onFrame?: (name: string, count: number) => void;
  /** Fuzzing hook: skip the warm-up restores (they only shorten the downtime). */
  warmUp?: boolean;
  /**
   * Refuse a paused VM with this reason, before the ACK, so that the source keeps it: a
   * destination with no control socket could never continue it (issue 9: it exited with
   * code 13 after the source had quit, and the VM was lost).
   */
  refusePaused?: string;
}

export interface IncomingResult {
  machine: VirtMachine;
  /** The run state the source had: "paused" waits for QMP `cont`. */
  runState: RunState;
  /** Bytes received, and ms from the connection to the ACK. */
  bytes: number;
  ms: number;
}

export function parseIncomingUri(
  uri: string,
):
  | { kind: "tcp"; host: string; port: number }
  | { kind: "unix"; path: string }
  | { kind: "file"; path: string } {
  const tcp = /^tcp:(\[[0-9a-fA-F:.]+\]|[^:[\]]*):(\d{1,5})$/.exec(uri);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port > 65535) throw new MigrationError(`bad port in --incoming '${uri}'`);
    return { kind: "tcp", host: tcp[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0", port };
  }
  if (uri.startsWith("unix:") && uri.length > 5) return { kind: "unix", path: uri.slice(5) };
  if (uri.startsWith("file:") && uri.length > 5) return { kind: "file", path: uri.slice(5) };
  throw new MigrationError(`unsupported --incoming URI '${uri}' (use tcp:HOST:PORT, unix:PATH or file:PATH)`);
}

/**
 * Receives one incoming migration into a fresh machine built from `config` (its kernel,
 * initrd and dtb are ignored: everything comes from the stream).
 */
export async function receiveIncoming(
  uri: string,
  config: VirtConfig,
  opts: IncomingOptions = {},
): Promise<IncomingResult> {
  const target = parseIncomingUri(uri);
  const { kernel: _k, initrd: _i, dtb: _d, ...rest } = config;
  const machine = new VirtMachine(rest);
  if (target.kind === "file") {
    const reader = new FrameReader();
    let data: Uint8Array;
    try {
      data = await readInputFileAsync("migration stream", target.path, SNAPSHOT_LIMIT);
    } catch (e) {
      if (e instanceof InputFileError) throw new MigrationError(e.message);
      throw new MigrationError(failureReason(e, opts.diag));
    }
    reader.push(data);
    reader.end("the file ended");
    const t0 = performance.now();
    let runState: RunState;
    try {
      runState = await load(machine, reader, null, opts);
    } catch (e) {
      throw new MigrationError(failureReason(e, opts.diag));
    }
    return { machine, runState, bytes: data.length, ms: performance.now() - t0 };
  }

  const sock = await accept(target, opts);
  const t0 = performance.now();
  const reader = new FrameReader(opts.maxFramePayload ?? MAX_FRAME_PAYLOAD);
  // What arrived and is not loaded yet stays bounded: the socket pauses while it piles up.
  reader.flow(
    () => sock.pause(),
    () => sock.resume(),
  );
  let bytes = 0;
  sock.on("data", (d: Buffer) => {
    bytes += d.length;
    reader.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  });
  sock.on("end", () => reader.end("the source closed the connection"));
  sock.on("close", () => reader.end("the connection was lost"));
  sock.on("error", (e) => reader.end(`the connection failed (${e.message})`));
  // Progress: Node's socket timeout fires when no byte moved either way for `idle` ms.
  const idle = opts.idleTimeoutMs ?? DEFAULT_PROGRESS_MS;
  sock.setTimeout(idle, () => {
    reader.end(`no data from the source for ${idle} ms`);
    sock.destroy();
  });
  const deadlineMs = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const deadline = setTimeout(() => {
    reader.end(
      `the migration did not arrive whole within ${deadlineMs} ms of the connection (${bytes} bytes received)`,
    );
    sock.destroy();
  }, deadlineMs);
  try {
    const runState = await load(machine, reader, sock, opts);
    // Loaded and checked: no timeout may end it now (the ACK below is its last step).
    sock.setTimeout(0);
    clearTimeout(deadline);
    // The ACK is what tells the source it may end: the VM may only run after it is out.
    await new Promise<void>((res, rej) => {
      const failed = (why: string) => rej(new MigrationError(`sending the acknowledgement failed: ${why}`));
      sock.once("error", (e) => failed(e.message));
      sock.once("close", () => failed("the connection was closed"));
      sock.end(frame(SEC_ACK, {}), () => res());
    });
    return { machine, runState, bytes, ms: performance.now() - t0 };
  } catch (e) {
    clearTimeout(deadline);
    const msg = failureReason(e, opts.diag);
    // Tell the source why (it reports it in query-migrate), then drop everything.
    if (!sock.destroyed && sock.writable) {
      await new Promise<void>((res) => {
        const t = setTimeout(res, 200);
        sock.end(frame(SEC_REFUSE, { error: msg }), () => {
          clearTimeout(t);
          res();
        });
      });
      // Closing with unread data would reset the connection, and a reset can discard the
      // refusal before the source reads it: drain (and drop) what still comes for a
      // moment, until the source closes.
      sock.removeAllListeners("data");
      sock.on("data", () => {});
      sock.resume(); // flow control may have paused it
      await new Promise<void>((res) => {
        const t = setTimeout(res, REFUSAL_LINGER_MS);
        sock.once("close", () => {
          clearTimeout(t);
          res();
        });
      });
    }
    sock.destroy();
    throw new MigrationError(msg);
  }
}

function accept(
  target: { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string },
  opts: IncomingOptions,
): Promise<net.Socket> {
  const where = target.kind === "tcp" ? `${target.host}:${target.port}` : `unix:${target.path}`;
  return new Promise((resolve, reject) => {
    const server = net.createServer({ pauseOnConnect: false });
    let timer: NodeJS.Timeout | undefined;
    server.on("error", (e) => {
      clearTimeout(timer);
      reject(new MigrationError(`cannot listen on ${where}: ${e.message}`));
    });
    let first: net.Socket | null = null;
    server.on("connection", (sock) => {
      if (first !== null) {
        // One migration per destination: a second source is told so, in the stream's own
        // refusal frame, and the first migration goes on unharmed.
        const from = target.kind === "tcp" ? `${first.remoteAddress}:${first.remotePort}` : where;
        sock.on("error", () => {});
        sock.end(
          frame(SEC_REFUSE, { error: `this destination is already receiving a migration (from ${from})` }),
        );
        opts.diag?.(`refused a second connection from ${sock.remoteAddress}:${sock.remotePort}`);
        return;
      }
      first = sock;
      clearTimeout(timer);
      sock.once("close", () => server.close());
      if (target.kind === "tcp") {
        sock.setNoDelay(true);
        opts.diag?.(`incoming migration from ${sock.remoteAddress}:${sock.remotePort}`);
      } else opts.diag?.(`incoming migration on ${where}`);
      resolve(sock);
    });
    const listening = () => {
      if (target.kind === "tcp") {
        const a = server.address() as net.AddressInfo;
        opts.diag?.(`waiting for an incoming migration on ${a.address}:${a.port}`);
        opts.onListening?.({ host: a.address, port: a.port });
      } else opts.diag?.(`waiting for an incoming migration on ${where}`);
      if (opts.acceptTimeoutMs !== undefined) {
        timer = setTimeout(() => {
          server.close();
          reject(new MigrationError(`no source connected within ${opts.acceptTimeoutMs} ms`));
        }, opts.acceptTimeoutMs);
      }
    };
    if (target.kind === "tcp") server.listen(target.port, target.host, listening);
    else {
      // As QEMU, a socket file left by an earlier run is replaced; anything else is kept.
      try {
        if (fs.lstatSync(target.path).isSocket()) fs.unlinkSync(target.path);
      } catch {
        // nothing there
      }
      server.listen(target.path, listening);
      server.once("close", () => fs.rmSync(target.path, { force: true }));
    }
  });
}

/**
 * Reads the whole stream into `machine`; returns the source's run state. Exported for the
 * stream fuzzer (tools/fuzz/migration-streams.ts), which feeds it a FrameReader holding
 * one input, as the file: path does.
 */
export async function load(
  machine: VirtMachine,
  reader: FrameReader,
  sock: net.Socket | null,
  opts: IncomingOptions,
): Promise<RunState> {
  await reader.preamble();
  const header = await reader.expectJson([SEC_HEADER]);
  // Both before the ready answer, so before any page: the largest frame the source will
  // send, then the machine it describes.
  const maxFrame = checkFrameLimit(header.value.maxFrame, opts.maxFramePayload ?? MAX_FRAME_PAYLOAD);
  checkConfig(header.value.config, streamConfig(machine));
  reader.limit(maxFrame, "the source declared for its frames");
  if (opts.warmUp !== false) warmUp(machine);
  sock?.write(frame(SEC_READY, {}));

  const sections: Section[] = [];
  const seen = new Set<string>();
  const ledger = new RamLedger();
  let state: { runState: RunState; savedAt: number } | null = null;
  let count = 0;
  let lastFrameAt = 0;
  let firstDevAt = 0;
  for (;;) {
    const s = await reader.next();
    if (s === null) break;
    lastFrameAt = performance.now();
    if (s.name !== SEC_PAGES && s.name !== SEC_ROUND && firstDevAt === 0) firstDevAt = lastFrameAt;
    count++;
    if (s.name === SEC_PAGES) {
      if (state || sections.length > 0) throw new MigrationError("RAM pages arrived after the device state");
      try {
        const vm = machine.vm;
        const pages = decodeRamInto(s.data, vm.ram);
        for (const p of pages) vm.markDirty(vm.ramBase + p * 4096, 4096);
        ledger.add(s.data, pages.length);
      } catch (e) {
        if (!(e instanceof SnapshotError)) throw e;
        throw new MigrationError(`frame '${SEC_PAGES}': ${e.message.replace(/^section 'ram': /, "")}`);
      }
    } else if (s.name === SEC_ROUND) {
      if (state || sections.length > 0) throw new MigrationError("a RAM round ended after the device state");
      checkRound(jsonObject(s), ledger);
    } else if (s.name === SEC_STATE) {
      if (state) throw new MigrationError(`frame '${SEC_STATE}' appears twice`);
      const v = jsonObject(s);
      if ((v.runState !== "running" && v.runState !== "paused") || !Number.isSafeInteger(v.savedAt)) {
        throw new MigrationError(`frame '${SEC_STATE}': run state is corrupt`);
      }
      checkTotals(v, ledger, sections);
      if (v.runState === "paused" && opts.refusePaused !== undefined)
        throw new MigrationError(opts.refusePaused);
      state = { runState: v.runState, savedAt: v.savedAt as number };
    } else if (s.name.startsWith("migration.")) {
      throw new MigrationError(`unexpected frame '${s.name}'`);
    } else {
      if (state) throw new MigrationError(`section '${s.name}' arrived after the run state`);
      if (seen.has(s.name)) throw new MigrationError(`section '${s.name}' appears twice`);
      seen.add(s.name);
      sections.push(s);
    }
    opts.onFrame?.(s.name, count);
  }
  if (!state) throw new MigrationError(`the stream ended without the run state ('${SEC_STATE}')`);
  const tr0 = performance.now();
  try {
    restoreSections(machine, sections, { savedAt: state.savedAt, ramInSections: false });
    if (process.env.ARMBOX_MIG_TRACE)
      process.stderr.write(
        `TRACE restore ${(performance.now() - tr0).toFixed(2)} ms; last frame->restore start ${(tr0 - lastFrameAt).toFixed(2)} ms, first device frame->end ${(performance.now() - firstDevAt).toFixed(2)} ms\n`,
      );
  } catch (e) {
    if (e instanceof SnapshotError) throw new MigrationError(`loading the device state: ${e.message}`);
    throw e;
  }
  return state.runState;
}

/** A 'migration.round' frame: the round's number and page count must be what arrived. */
function checkRound(v: Record<string, unknown>, ledger: RamLedger): void {
  const expected = ledger.rounds + 1;
  if (v.round !== expected || !Number.isSafeInteger(v.pages)) {
    throw new MigrationError(
      `frame '${SEC_ROUND}' is out of sequence (round ${String(v.round)}, expected ${expected})`,
    );
  }
  if (v.pages !== ledger.roundPages) {
    throw new MigrationError(
      `RAM round ${expected}: the source sent ${String(v.pages)} pages, ${ledger.roundPages} arrived`,
    );
  }
  ledger.endRound();
}

/** The run-state frame's declaration of the whole stream against what arrived. */
function checkTotals(v: Record<string, unknown>, ledger: RamLedger, sections: readonly Section[]): void {
  if (ledger.roundPages !== 0) {
    throw new MigrationError(`${ledger.roundPages} RAM pages arrived after the last round's end`);
  }
  if (v.rounds !== ledger.rounds) {
    throw new MigrationError(`the source sent ${String(v.rounds)} RAM rounds, ${ledger.rounds} arrived`);
  }
  if (v.pages !== ledger.totalPages) {
    throw new MigrationError(
      `the source sent ${String(v.pages)} RAM pages in all, ${ledger.totalPages} arrived`,
    );
  }
  if (v.digest !== ledger.digest()) {
    throw new MigrationError("the RAM that arrived is not what the source sent (digest mismatch)");
  }
  const names = sections.map((s) => s.name);
  const declared = Array.isArray(v.sections) ? (v.sections as unknown[]) : null;
  const declaredName = (e: unknown) => (e as { name?: unknown } | null)?.name;
  if (
    !declared ||
    declared.length !== names.length ||
    declared.some((e, i) => declaredName(e) !== names[i])
  ) {
    const missing = declared?.map(declaredName).filter((n) => !names.includes(n as string)) ?? [];
    throw new MigrationError(
      missing.length > 0
        ? `section '${String(missing[0])}' that the source sent did not arrive`
        : "the sections that arrived are not the ones the source sent",
    );
  }
  sections.forEach((s, i) => {
    const want = declared[i] as { version?: unknown; crc?: unknown };
    const got = sectionEntry(s);
    if (want.version !== got.version || want.crc !== got.crc) {
      throw new MigrationError(
        `section '${s.name}' is not what the source sent (its declared version and checksum differ)`,
      );
    }
  });
}

/**
 * Runs the capture and restore paths once on two small scratch machines of the same shape,
 * so that the real restore inside the downtime runs as compiled code, not cold.
 */
const WARM_RESTORES = 40;
/** How long a refusing destination keeps reading so that its reason reaches the source. */
const REFUSAL_LINGER_MS = 500;

function warmUp(like: VirtMachine): void {
  try {
    const cfg = { ...like.config, memory: 16 << 20 };
    const a = new VirtMachine(cfg);
    a.vcpus.forEach((v, i) => {
      v.init({ powerOff: i !== 0 });
    });
    const b = new VirtMachine(cfg);
    // Several times: V8 optimises a function only after it has run a few times, and the
    // restore inside the downtime runs once.
    for (let i = 0; i < WARM_RESTORES; i++) {
      const frames = concat([...captureSections(a).map((s) => encodeSection(s, false)), END_FRAME]);
      const sections: Section[] = [];
      for (let off = 0, d = decodeSection(frames, 0); d !== null; d = decodeSection(frames, off)) {
        sections.push(d.section);
        off = d.next;
      }
      restoreSections(b, sections, { ramInSections: false });
    }
  } catch {
    // only an optimisation
  }
}
