/**
 * The armbox live-migration stream (both directions), built on the snapshot section
 * framing (src/vmm/snapshot/format.ts) so every frame carries its own CRC-32C:
 *
 *   source → destination
 *     preamble   "ARMBOXMG" | u32 stream version (4)
 *     frame      'migration.header' v1  JSON { config, maxFrame, writer }: the machine
 *                configuration with its virtio devices (StreamConfig), and the largest
 *                frame payload the source will send
 *     (destination answers 'migration.ready' or 'migration.refuse' before RAM flows)
 *     per round: frame* 'ram.pages' v1  binary encodeRam(ram, pages): the pages of one batch
 *                frame  'migration.round' v1  JSON { round, pages }: what the round sent
 *     frame*     the component sections of captureSections(m), but 'ram' carries no page
 *                (the last round, sent with the VM stopped, comes before them)
 *     frame      'migration.state' v1  JSON { runState, savedAt, rounds, pages, digest,
 *                sections }: the totals, a SHA-256 of every page frame's payload in the
 *                order sent, and the names of the sections
 *     END_FRAME
 *   destination → source
 *     frame      'migration.ready' | 'migration.refuse' {error}
 *     frame      'migration.ack' {} only once everything was loaded and checked against
 *                what the source declared; or 'migration.refuse'
 *
 * Before it answers ready, a destination refuses a source whose declared frame limit is
 * larger than its own, or whose configuration (any field, any virtio device) differs from
 * its own; from then on every frame announcing more than the declared limit is refused
 * from its header. It checks each round's page count when its 'migration.round' frame
 * arrives and the totals, the digest and the section list at the end, before it ACKs: a
 * stream that lost, repeated or reordered a frame (each frame's own CRC intact) is refused.
 * A `file:` migration is the source half alone, written to a file (no replies).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { crc32c } from "../../lib/crc32.ts";
import type { MachineConfig, VirtioDeviceInfo } from "../../machine/virt.ts";
import {
  decodeSection,
  encodeSection,
  jsonSection,
  parseJsonSection,
  type Section,
  SnapshotError,
} from "../snapshot/format.ts";

export const STREAM_MAGIC = "ARMBOXMG";
/**
 * The stream version this build writes and reads (1 had no round frames, totals or digest;
 * 2 declared section names only; 3 had no frame limit or devices in the header).
 */
export const STREAM_VERSION = 4;

/**
 * What the run-state frame declares of each section (version 3): a section frame corrupted
 * with its own CRC recomputed (a faulty relay, a buggy peer) no longer matches it. Version 2
 * declared only the names: 593 of 10^5 fuzzed streams loaded into a different machine.
 */
export interface SectionEntry {
  name: string;
  version: number;
  crc: number;
}

export function sectionEntry(s: Section): SectionEntry {
  return { name: s.name, version: s.version, crc: crc32c([s.data]) };
}

/** The most pages the source puts in one 'ram.pages' frame (its batchPages is clamped to this). */
export const MAX_BATCH_PAGES = 4096;
/** The payload of a 'ram.pages' frame of `pages` pages: the encodeRam header, then a u32 index and a 4 KiB page each. */
export const ramFramePayload = (pages: number): number => 8 + pages * (4 + 4096);
/**
 * The largest frame payload a destination accepts by default: one full batch of RAM
 * pages, the largest legitimate frame. A source declares its own maximum in the header
 * (SourceFrameLimit below); a destination refuses a source declaring more than it accepts,
 * then every frame header announcing more than the source declared, before anything of
 * its payload is buffered.
 */
export const MAX_FRAME_PAYLOAD = ramFramePayload(MAX_BATCH_PAGES);
/**
 * The most a device section (or any non-RAM frame) may hold: the largest today is the
 * GIC's with 32 vCPUs, about 20 KiB; vCPU sections are about 4 KiB.
 */
export const MAX_SECTION_PAYLOAD = 256 * 1024;
/** The frame limit a source sending `batchPages` pages per frame declares. */
export const sourceFrameLimit = (batchPages: number): number =>
  Math.max(ramFramePayload(batchPages), MAX_SECTION_PAYLOAD);
/**
 * The progress timeout of both sides: no byte moved to or from the peer for this long
 * (a source that stops sending, a destination that stops reading or never answers).
 */
export const DEFAULT_PROGRESS_MS = 30_000;
/**
 * The overall deadline of both sides (`armbox run --migration-deadline`): a whole
 * migration, connection to acknowledgement. 15 minutes carries the largest guest RAM
 * (3 GiB) at under 4 MB/s; a peer dripping a byte every few seconds no longer holds the
 * other side for ever.
 */
export const DEFAULT_DEADLINE_MS = 15 * 60_000;
/** The replies (ready, refuse, ack) are small JSON frames: a source reads no larger one. */
export const MAX_REPLY_PAYLOAD = 64 * 1024;
export const PREAMBLE_SIZE = 12;

export const SEC_HEADER = "migration.header";
export const SEC_READY = "migration.ready";
export const SEC_REFUSE = "migration.refuse";
export const SEC_ACK = "migration.ack";
export const SEC_STATE = "migration.state";
export const SEC_PAGES = "ram.pages";
export const SEC_ROUND = "migration.round";

export type RunState = "running" | "paused";

/** A migration that cannot go on; the message says what was wrong. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

const enc = new TextEncoder();

export function encodePreamble(version = STREAM_VERSION): Uint8Array {
  const b = new Uint8Array(PREAMBLE_SIZE);
  b.set(enc.encode(STREAM_MAGIC), 0);
  new DataView(b.buffer).setUint32(8, version, true);
  return b;
}

export function checkPreamble(b: Uint8Array): void {
  const magic = enc.encode(STREAM_MAGIC);
  if (b.length < PREAMBLE_SIZE || magic.some((x, i) => b[i] !== x)) {
    throw new MigrationError("not an armbox migration stream (bad magic)");
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(8, true);
  if (v !== STREAM_VERSION) {
    throw new MigrationError(
      `migration stream version ${v} is not supported (this build reads version ${STREAM_VERSION}): the source is ${v < STREAM_VERSION ? "older" : "newer"} than this destination`,
    );
  }
}

/**
 * What the RAM part of a stream carried, kept the same way on both sides: pages per round,
 * the total, and a SHA-256 over every 'ram.pages' payload (uncompressed) in order.
 */
export class RamLedger {
  private readonly hash = sha256.create();
  /** Rounds completed (each closed by a 'migration.round' frame). */
  rounds = 0;
  /** Pages in the round not yet closed. */
  roundPages = 0;
  totalPages = 0;

  /** One 'ram.pages' payload of `pages` pages. */
  add(payload: Uint8Array, pages: number): void {
    this.hash.update(payload);
    this.roundPages += pages;
    this.totalPages += pages;
  }

  /** Closes the current round: the 'migration.round' frame's contents. */
  endRound(): { round: number; pages: number } {
    this.rounds++;
    const r = { round: this.rounds, pages: this.roundPages };
    this.roundPages = 0;
    return r;
  }

  /** The digest so far, as hex (the ledger may go on afterwards). */
  digest(): string {
    return Array.from(this.hash.clone().digest(), (b) => b.toString(16).padStart(2, "0")).join("");
  }
}

export function frame(name: string, value: unknown): Uint8Array {
  return encodeSection(jsonSection(name, 1, value));
}

/**
 * The machine configuration as the stream carries it: MachineConfig and the virtio
 * devices (kind; a disk's size and read-only flag), which must agree between source and
 * destination.
 */
export interface StreamConfig extends MachineConfig {
  devices: readonly VirtioDeviceInfo[];
}

export function streamConfig(m: {
  config: MachineConfig;
  devices: readonly VirtioDeviceInfo[];
}): StreamConfig {
  return { ...m.config, devices: m.devices.map((d) => ({ ...d })) };
}

/** Each MachineConfig field: what it is, and the command-line spelling of a value. */
const CONFIG_FIELDS: Record<keyof MachineConfig, { field: string; flag: (v: unknown) => string }> = {
  smp: { field: "vCPU count", flag: (v) => `--smp ${String(v)}` },
  memory: {
    field: "memory size",
    flag: (v) => `--memory ${typeof v === "number" ? `${v / (1024 * 1024)}M` : String(v)}`,
  },
  deterministic: { field: "clock", flag: (v) => (v ? "--deterministic" : "no --deterministic") },
  psciConduit: { field: "PSCI conduit", flag: (v) => `--psci ${String(v)}` },
  semihosting: { field: "semihosting", flag: (v) => (v ? "--semihosting" : "no --semihosting") },
};

const deviceName = (d: VirtioDeviceInfo): string =>
  d.kind === "blk" ? "a disk" : d.kind === "rng" ? "an entropy device" : "a console";

function isDeviceInfo(d: unknown): d is VirtioDeviceInfo {
  if (typeof d !== "object" || d === null) return false;
  const o = d as Record<string, unknown>;
  if (o.kind === "rng" || o.kind === "console") return true;
  return (
    o.kind === "blk" &&
    Number.isSafeInteger(o.bytes) &&
    (o.bytes as number) >= 0 &&
    typeof o.readOnly === "boolean"
  );
}

/**
 * Throws a MigrationError naming every field on which the incoming machine differs from
 * `mine`: each MachineConfig field (with both sides' flags), the number of virtio devices,
 * and each device's kind, disk size and read-only flag.
 */
export function checkConfig(incoming: unknown, mine: StreamConfig): void {
  if (typeof incoming !== "object" || incoming === null) {
    throw new MigrationError("the stream header has no machine configuration");
  }
  const inc = incoming as Record<string, unknown>;
  const diffs: string[] = [];
  for (const k of Object.keys(CONFIG_FIELDS) as (keyof MachineConfig)[]) {
    const f = CONFIG_FIELDS[k];
    if (inc[k] !== mine[k])
      diffs.push(`source has ${f.flag(inc[k])}, this destination ${f.flag(mine[k])} (${f.field})`);
  }
  const devices = inc.devices;
  if (!Array.isArray(devices) || devices.length > 64 || !devices.every(isDeviceInfo)) {
    diffs.push("the source's virtio device list is missing or corrupt");
  } else {
    if (devices.length !== mine.devices.length)
      diffs.push(
        `virtio devices: the source has ${devices.length}, this machine ${mine.devices.length} (--drive, --device)`,
      );
    const n = Math.min(devices.length, mine.devices.length);
    for (let i = 0; i < n; i++) {
      const a = devices[i]!;
      const b = mine.devices[i]!;
      const at = `virtio device ${i + 1}`;
      if (a.kind !== b.kind) diffs.push(`${at}: ${deviceName(a)}, this machine's is ${deviceName(b)}`);
      else if (a.kind === "blk" && b.kind === "blk") {
        if (a.bytes !== b.bytes) diffs.push(`${at}: disk of ${a.bytes} bytes, this machine's is ${b.bytes}`);
        if (a.readOnly !== b.readOnly)
          diffs.push(
            `${at}: disk ${a.readOnly ? "read-only" : "read-write"}, this machine's is ${b.readOnly ? "read-only" : "read-write"} (readonly=)`,
          );
      }
    }
  }
  if (diffs.length > 0) {
    throw new MigrationError(`the machine configuration does not match: ${diffs.join("; ")}`);
  }
}

/**
 * The header's declared frame limit against what this destination accepts: a positive
 * integer no larger than `accepted`, and at least one page's frame. Returns it.
 */
export function checkFrameLimit(declared: unknown, accepted: number): number {
  if (!Number.isSafeInteger(declared) || (declared as number) < ramFramePayload(1)) {
    throw new MigrationError(
      `the stream header declares no valid frame limit ('maxFrame' is ${JSON.stringify(declared) ?? "missing"})`,
    );
  }
  const d = declared as number;
  if (d > accepted) {
    throw new MigrationError(
      `the source sends frames of up to ${d} bytes, more than the ${accepted} this destination accepts`,
    );
  }
  return d;
}

/**
 * A failure's one-line reason for the user. Expected failures are typed (MigrationError,
 * SnapshotError: their message is the reason); anything else is an armbox bug, labelled
 * as one, with its stack given to `diag` rather than shown as a reason.
 */
export function failureReason(e: unknown, diag?: (line: string) => void): string {
  if (e instanceof MigrationError || e instanceof SnapshotError) return e.message;
  const err = e instanceof Error ? e : new Error(String(e));
  const log = diag ?? ((line: string) => console.error(`armbox: ${line}`));
  log(`armbox bug: ${err.stack ?? `${err.name}: ${err.message}`}`);
  return `armbox bug (unexpected ${err.name}); its stack trace is in this side's log`;
}

/**
 * Reads frames from a byte stream that arrives in pieces (a socket, or a file read at
 * once). `push` data as it comes; `next()` resolves with the next whole frame (null for
 * the end marker) or rejects when the stream ends early or a frame is corrupt.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended: string | null = null;
  private waiter: (() => void) | null = null;
  /** Bytes consumed so far (for messages). */
  offset = 0;

  private limitWhat: string;

  /** `maxPayload`: the largest frame payload accepted (refused at its header). */
  constructor(private maxPayload = MAX_FRAME_PAYLOAD) {
    this.limitWhat = "a frame may have";
  }

  /** Lowers the limit (the source's declared one); `what` says whose it is, for the message. */
  limit(maxPayload: number, what: string): void {
    if (maxPayload < this.maxPayload) {
      this.maxPayload = maxPayload;
      this.limitWhat = what;
    }
  }

  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.buffered += b.length;
    if (this.flowCtl && !this.flowCtl.paused && this.buffered > this.flowCtl.high) {
      this.flowCtl.paused = true;
      this.flowCtl.pause();
    }
    this.wake();
  }

  private flowCtl: { high: number; pause: () => void; resume: () => void; paused: boolean } | null = null;

  /**
   * Flow control for a source faster than the loading: `pause` (the socket) once more than
   * `high` bytes wait unread, `resume` once they are down to half. `high` is at least two
   * largest frames, so a frame being awaited is never held back by the pause. Without it
   * a peer resending valid pages faster than they load would grow the buffer without end.
   */
  flow(pause: () => void, resume: () => void): { high: number } {
    const high = 2 * (this.maxPayload + 64 * 1024);
    this.flowCtl = { high, pause, resume, paused: false };
    return { high };
  }

  /** Bytes received and not yet consumed as frames. */
  get available(): number {
    return this.buffered;
  }

  /** Why the stream ended, once it has. */
  get endReason(): string | null {
    return this.ended;
  }

  /** No more data will come; `why` says how the stream ended (for messages). */
  end(why = "the stream ended"): void {
    this.ended ??= why;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The first `n` buffered bytes (copied only when they span chunks). */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (o === n) break;
    }
    return out;
  }

  private take(n: number): Uint8Array {
    const b = this.peek(n);
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        this.chunks.shift();
        left -= c.length;
      } else {
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
    this.offset += n;
    if (this.flowCtl?.paused && this.buffered <= this.flowCtl.high / 2) {
      this.flowCtl.paused = false;
      this.flowCtl.resume();
    }
    return b;
  }

  private async need(n: number, what: () => string): Promise<void> {
    while (this.buffered < n) {
      if (this.ended !== null) throw new MigrationError(`${this.ended} ${what()}`);
      await new Promise<void>((r) => {
        this.waiter = r;
      });
    }
  }

  async preamble(): Promise<void> {
    await this.need(PREAMBLE_SIZE, () => "before the stream preamble");
    checkPreamble(this.take(PREAMBLE_SIZE));
  }

  /** The next frame, decoded and checked; null for the end marker. */
  async next(): Promise<Section | null> {
    const at = this.offset;
    await this.need(
      2,
      () => `at byte ${at}, where a frame or the end marker was expected (truncated stream)`,
    );
    const nameLen = new DataView(this.peek(2).buffer, this.peek(2).byteOffset).getUint16(0, true);
    if (nameLen === 0) {
      this.take(2);
      return null;
    }
    const headLen = 2 + nameLen + 12;
    await this.need(headLen, () => `inside a frame header at byte ${at} (truncated stream)`);
    const head = this.peek(headLen);
    const payloadLen = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(
      2 + nameLen + 8,
      true,
    );
    const name = safeName(head.subarray(2, 2 + nameLen));
    if (payloadLen > this.maxPayload)
      throw new MigrationError(
        `frame '${name}' at byte ${at} announces ${payloadLen} bytes, more than the ${this.maxPayload} ${this.limitWhat}`,
      );
    const total = headLen + payloadLen + 4;
    await this.need(total, () => `inside frame '${name}' at byte ${at} (truncated stream)`);
    const bytes = this.take(total);
    try {
      // The limit holds for the inflated payload too (a few KiB of deflate can expand a
      // thousandfold): decodeSection stops inflating past it.
      const r = decodeSection(bytes, 0, () => this.maxPayload);
      if (!r) throw new MigrationError(`corrupt frame at byte ${at}`);
      return r.section;
    } catch (e) {
      if (e instanceof SnapshotError && /inflates to more than/.test(e.message))
        throw new MigrationError(
          `frame '${name}' at byte ${at} inflates to more than the ${this.maxPayload} ${this.limitWhat}`,
        );
      if (e instanceof SnapshotError) throw new MigrationError(`frame at byte ${at}: ${e.message}`);
      throw e;
    }
  }

  /** The next frame, which must be a JSON frame named one of `names`. */
  async expectJson(names: readonly string[]): Promise<{ name: string; value: Record<string, unknown> }> {
    const s = await this.next();
    if (s === null) throw new MigrationError(`the stream ended where '${names.join("' or '")}' was expected`);
    if (!names.includes(s.name)) {
      throw new MigrationError(`unexpected frame '${s.name}' where '${names.join("' or '")}' was expected`);
    }
    return { name: s.name, value: jsonObject(s) };
  }
}

export function jsonObject(s: Section): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseJsonSection(s);
  } catch (e) {
    throw new MigrationError((e as Error).message);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new MigrationError(`frame '${s.name}': payload is not a JSON object`);
  }
  return v as Record<string, unknown>;
}

function safeName(b: Uint8Array): string {
  const s = Array.from(b, (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?")).join("");
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
