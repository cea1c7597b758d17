/**
 * The armbox live-migration stream (both directions), built on the snapshot section
 * framing (src/vmm/snapshot/format.ts) so every frame carries its own CRC-32C:
 *
 *   source → destination
 *     preamble   "ARMBOXMG" | u32 stream version (2)
 *     frame      'migration.header' v1  JSON { config, writer }
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
 * A destination checks each round's page count when its 'migration.round' frame arrives
 * and the totals, the digest and the section list at the end, before it ACKs: a stream
 * that lost, repeated or reordered a frame (each frame's own CRC intact) is refused.
 * A `file:` migration is the source half alone, written to a file (no replies).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { crc32c } from "../../lib/crc32.ts";
import type { MachineConfig } from "../../machine/virt.ts";
import {
  decodeSection,
  encodeSection,
  jsonSection,
  parseJsonSection,
  type Section,
  SnapshotError,
} from "../snapshot/format.ts";

export const STREAM_MAGIC = "ARMBOXMG";
/** The stream version this build writes and reads (1 had no round frames, totals or digest). */
export const STREAM_VERSION = 3;

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
/**
 * The largest frame payload either side accepts: one full batch of RAM pages (the
 * encodeRam header, then a u32 index and a 4 KiB page each), the largest legitimate
 * frame; vCPU and device sections are a few KiB of JSON or registers. A header
 * announcing more is refused before anything of its payload is buffered.
 */
export const MAX_FRAME_PAYLOAD = 8 + MAX_BATCH_PAGES * (4 + 4096);
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
      `migration stream version ${v} is not supported (this build reads version ${STREAM_VERSION})`,
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

/** The machine configuration fields that must agree between source and destination. */
const CONFIG_FLAGS: Record<keyof MachineConfig, (v: unknown) => string> = {
  smp: (v) => `--smp ${String(v)}`,
  memory: (v) => `--memory ${typeof v === "number" ? `${v / (1024 * 1024)}M` : String(v)}`,
  deterministic: (v) => (v ? "--deterministic" : "no --deterministic"),
  psciConduit: (v) => `--psci ${String(v)}`,
  semihosting: (v) => (v ? "--semihosting" : "no --semihosting"),
};

/** Throws a MigrationError naming every flag on which the incoming machine differs. */
export function checkConfig(incoming: unknown, mine: MachineConfig): void {
  if (typeof incoming !== "object" || incoming === null) {
    throw new MigrationError("the stream header has no machine configuration");
  }
  const inc = incoming as Record<string, unknown>;
  const diffs: string[] = [];
  for (const k of Object.keys(CONFIG_FLAGS) as (keyof MachineConfig)[]) {
    if (inc[k] !== mine[k])
      diffs.push(`source has ${CONFIG_FLAGS[k](inc[k])}, this destination ${CONFIG_FLAGS[k](mine[k])}`);
  }
  if (diffs.length > 0) {
    throw new MigrationError(`the machine configuration does not match: ${diffs.join("; ")}`);
  }
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

  /** `maxPayload`: the largest frame payload accepted (refused at its header). */
  constructor(private readonly maxPayload = MAX_FRAME_PAYLOAD) {}

  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.buffered += b.length;
    this.wake();
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
        `frame '${name}' at byte ${at} announces ${payloadLen} bytes, more than the ${this.maxPayload} a frame may have`,
      );
    const total = headLen + payloadLen + 4;
    await this.need(total, () => `inside frame '${name}' at byte ${at} (truncated stream)`);
    const bytes = this.take(total);
    try {
      const r = decodeSection(bytes, 0);
      if (!r) throw new MigrationError(`corrupt frame at byte ${at}`);
      return r.section;
    } catch (e) {
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
