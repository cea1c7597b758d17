/**
 * Migration streams, hostile: a real stream of a small booted bare-metal guest (the
 * counter guest, run a fixed number of instructions on a deterministic clock, then sent
 * by OutgoingMigration to a file: exactly what a source writes) is cut into its frames,
 * and each input is a variant of it: frames removed, duplicated, reordered; the stream
 * truncated; a frame of each kind (header, RAM pages, round marker, device section, run
 * state) corrupted WITH its CRC recomputed; lengths, counts and the declared totals or
 * digest changed; the header's declared frame limit (maxFrame, stream version 4) below
 * the largest frame, above what the destination accepts, or not a number; random bytes
 * flipped (CRC stale). A share are no-op variants (a frame re-encoded, JSON keys
 * reordered, RAM frames deflated or split into other rounds with the declarations
 * recomputed, a page re-sent identically in an extra round, the frame limit lowered to
 * exactly the largest frame sent): the destination must accept those, and load the same
 * machine.
 *
 * Each input goes through the destination's own load() (src/vmm/migration/destination.ts,
 * the code behind `--incoming`) on a fresh machine, from a FrameReader that holds the
 * whole input and has ended, as the file: path does; no socket. Verdicts:
 *  - refused: a MigrationError whose message is one line naming what is wrong;
 *  - accepted: the loaded machine's state digest (every section, RAM included) and run
 *    state must equal the source's. An accepted input that differs is a violation, unless
 *    the mutation only changed content that no declaration of the stream covers (a device
 *    section's payload or the run-state frame's own fields, each with its CRC recomputed:
 *    a stream indistinguishable from one a source could send); those are counted apart
 *    ("accepted-undeclared"), so the report shows how much the protocol leaves uncovered;
 *  - crash: any other throw, a message with JavaScript internals, or no verdict within
 *    HANG_MS.
 *
 * CLI: `npx tsx tools/fuzz/migration-streams.ts --seed S [--count N] [--start K]`.
 */

import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { sha256 } from "@noble/hashes/sha2.js";
import { deflateSync } from "fflate";
import { crc32c } from "../../src/lib/crc32.ts";
import { type MachineConfig, VirtMachine } from "../../src/machine/virt.ts";
import { load } from "../../src/vmm/migration/destination.ts";
import { OutgoingMigration, type RunnerControl } from "../../src/vmm/migration/source.ts";
import {
  FrameReader,
  MAX_FRAME_PAYLOAD,
  MigrationError,
  PREAMBLE_SIZE,
  type RunState,
  ramFramePayload,
  SEC_HEADER,
  SEC_PAGES,
  SEC_ROUND,
  SEC_STATE,
  type SectionEntry,
  sectionEntry,
} from "../../src/vmm/migration/stream.ts";
import { MachineRunner } from "../../src/vmm/runner.ts";
import { decodeSection, END_FRAME, FLAG_DEFLATE, type Section } from "../../src/vmm/snapshot/format.ts";
import { stateDigest } from "../../src/vmm/snapshot/machine-state.ts";
import { Rng } from "../difftest/prng.ts";
import { type Chunk, type FuzzTarget, messageProblem, newTally, Recorder, type Tally } from "./core.ts";
import { concatBytes, mutateBytes, mutateJson } from "./mutate.ts";
import { encodeRam as encodeRamLayout, mutatePayload, parseRam } from "./sections.ts";

/** Longest one input may take before it counts as a hang (a load of a 16 MiB machine takes ms). */
export const HANG_MS = 10_000;
const MEM = 16 << 20;
/** Instructions the guest runs before it is migrated (it has printed and dirtied pages by then). */
const GUEST_INSNS = 3_000_000n;
/** Pages per 'ram.pages' frame in the recorded stream (small: many frames to remove and reorder). */
const BATCH_PAGES = 2;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One frame of the stream as it was sent. */
export interface RawFrame {
  readonly name: string;
  readonly version: number;
  readonly flags: number;
  /** The payload as on the wire (deflated when flags say so). */
  readonly payload: Uint8Array;
  /** The decoded section (payload inflated). */
  readonly section: Section;
}

export interface Recorded {
  readonly stream: Uint8Array;
  readonly frames: readonly RawFrame[];
  /** The destination's configuration (the source's, without its kernel). */
  readonly config: MachineConfig;
  /** stateDigest of the source at the moment it was captured, and its run state. */
  readonly digest: string;
  readonly runState: RunState;
}

/** Encodes a frame; the CRC is recomputed unless `crc` is given. */
export function encodeFrame(
  f: { name: string; version: number; flags: number; payload: Uint8Array },
  crc?: number,
): Uint8Array {
  const name = enc.encode(f.name);
  const head = new Uint8Array(2 + name.length + 12);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, name.length & 0xffff, true);
  head.set(name, 2);
  dv.setUint32(2 + name.length, f.version >>> 0, true);
  dv.setUint32(6 + name.length, f.flags >>> 0, true);
  dv.setUint32(10 + name.length, f.payload.length, true);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(
    0,
    crc ?? crc32c([head.subarray(2, 2 + name.length + 8), f.payload]),
    true,
  );
  return concatBytes(head, f.payload, tail);
}

/** A stream's frames (after the preamble, before the end marker). */
export function parseFrames(stream: Uint8Array): RawFrame[] {
  const out: RawFrame[] = [];
  let off = PREAMBLE_SIZE;
  const dv = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  for (;;) {
    const r = decodeSection(stream, off);
    if (!r) break;
    const nameLen = dv.getUint16(off, true);
    const p = off + 2 + nameLen;
    const flags = dv.getUint32(p + 4, true);
    const len = dv.getUint32(p + 8, true);
    out.push({
      name: r.section.name,
      version: r.section.version,
      flags,
      payload: stream.subarray(p + 12, p + 12 + len),
      section: r.section,
    });
    off = r.next;
  }
  return out;
}

const control = (): RunnerControl => ({
  isPaused: true,
  pause() {},
  resume() {},
  finish() {},
  onPaused: null,
});

/**
 * Records the stream a source sends for the counter guest after GUEST_INSNS instructions
 * (deterministic: the same bytes every run but for the run-state frame's savedAt).
 */
export async function recordStream(): Promise<Recorded> {
  const kernel = new Uint8Array(
    readFileSync(new URL("../../guests/migration/bin/counter.elf", import.meta.url)),
  );
  const m = new VirtMachine({ kernel, smp: 2, memory: MEM, deterministic: true });
  const runner = new MachineRunner(m, { output: () => {}, diag: () => {}, maxInstructions: GUEST_INSNS });
  const r = await runner.run();
  if (r.kind !== "limit") throw new Error(`the counter guest ended early: ${JSON.stringify(r)}`);
  const file = join(tmpdir(), `armbox-migfuzz-${process.pid}-${Date.now()}.bin`);
  try {
    const mig = new OutgoingMigration(m, control(), { batchPages: BATCH_PAGES });
    mig.start(`file:${file}`);
    const status = await mig.done();
    if (status !== "completed") throw new Error(`recording the stream failed: ${mig.info()["error-desc"]}`);
    const stream = new Uint8Array(readFileSync(file));
    const frames = parseFrames(stream);
    return { stream, frames, config: { ...m.config }, digest: stateDigest(m), runState: "paused" };
  } finally {
    rmSync(file, { force: true });
  }
}

/** What feeding one input to a destination gave. */
export type Outcome =
  | { kind: "refused"; reason: string }
  | { kind: "accepted"; digest: string; runState: RunState }
  | { kind: "crash"; what: string };

/** Feeds `bytes` to a fresh destination machine through load(); never throws. */
export async function feed(config: MachineConfig, bytes: Uint8Array, hangMs = HANG_MS): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome>((res) => {
    timer = setTimeout(() => res({ kind: "crash", what: `no verdict within ${hangMs} ms (hang)` }), hangMs);
  });
  const attempt = (async (): Promise<Outcome> => {
    const machine = new VirtMachine(config);
    const reader = new FrameReader();
    reader.push(bytes);
    reader.end("the input ended");
    try {
      const runState = await load(machine, reader, null, { warmUp: false });
      return { kind: "accepted", digest: stateDigest(machine), runState };
    } catch (e) {
      if (!(e instanceof MigrationError)) {
        return { kind: "crash", what: e instanceof Error ? `${e.name}: ${e.message}` : `threw ${String(e)}` };
      }
      const p = messageProblem(e.message);
      return p ? { kind: "crash", what: `${p}: ${e.message}` } : { kind: "refused", reason: e.message };
    }
  })();
  try {
    return await Promise.race([attempt, hang]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------
// Mutations

/** A frame being edited (payload as on the wire). */
interface Edit {
  name: string;
  version: number;
  flags: number;
  payload: Uint8Array;
  /** Set: these exact bytes are sent instead (a raw edit, CRC stale or length wrong). */
  raw?: Uint8Array;
}

export interface Variant {
  bytes: Uint8Array;
  /** Mutation class, for the per-kind counts. */
  kind: string;
  what: string;
  /** Meant to change nothing: must be accepted, with the same machine. */
  noop?: boolean;
  /** Changed only content that no declaration covers (see the file comment). */
  undeclared?: boolean;
}

const fromRaw = (f: RawFrame): Edit => ({
  name: f.name,
  version: f.version,
  flags: f.flags,
  payload: f.payload,
});
const bytesOf = (e: Edit) => e.raw ?? encodeFrame(e);

function assemble(rec: Recorded, edits: readonly Edit[], end = true): Uint8Array {
  return concatBytes(
    rec.stream.subarray(0, PREAMBLE_SIZE),
    ...edits.map(bytesOf),
    ...(end ? [END_FRAME] : []),
  );
}

const json = (e: Edit): Record<string, unknown> =>
  JSON.parse(dec.decode(e.payload)) as Record<string, unknown>;
const setJson = (e: Edit, v: unknown): Edit => ({
  ...e,
  flags: 0,
  payload: enc.encode(JSON.stringify(v) ?? "null"),
});

/** Which frame kind a frame is, for the per-kind counts. */
function frameKind(name: string): string {
  if (name === SEC_HEADER) return "header";
  if (name === SEC_PAGES) return "ram.pages";
  if (name === SEC_ROUND) return "round";
  if (name === SEC_STATE) return "state";
  return name.replace(/@.*/, "");
}

/**
 * The declarations recomputed from the frames as they now stand (round markers numbered
 * and counted, the run-state frame's rounds, pages, digest and sections): a consistent
 * stream whatever was moved. Used by the no-op variants only.
 */
function redeclare(edits: Edit[]): Edit[] {
  let round = 0;
  let roundPages = 0;
  let total = 0;
  const names: SectionEntry[] = [];
  const hashParts: Uint8Array[] = [];
  return edits.map((e) => {
    if (e.name === SEC_PAGES) {
      const s = decodeSection(encodeFrame(e), 0)!.section;
      const n = (s.data.length - 8) / (4096 + 4);
      roundPages += n;
      total += n;
      hashParts.push(s.data);
      return e;
    }
    if (e.name === SEC_ROUND) {
      round++;
      const out = setJson(e, { round, pages: roundPages });
      roundPages = 0;
      return out;
    }
    if (e.name === SEC_STATE) {
      return setJson(e, {
        ...json(e),
        rounds: round,
        pages: total,
        digest: sha256Hex(hashParts),
        sections: names,
      });
    }
    if (e.name !== SEC_HEADER) names.push(sectionEntry(decodeSection(encodeFrame(e), 0)!.section));
    return e;
  });
}

function sha256Hex(parts: readonly Uint8Array[]): string {
  const h = sha256.create();
  for (const p of parts) h.update(p);
  return Array.from(h.digest(), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Indices of the frames whose kind satisfies `f`. */
const where = (rec: Recorded, f: (name: string) => boolean) =>
  rec.frames.flatMap((x, i) => (f(x.name) ? [i] : []));

const isDevice = (n: string) => n !== SEC_HEADER && n !== SEC_PAGES && n !== SEC_ROUND && n !== SEC_STATE;

/** One hostile (or no-op) variant of the recorded stream, from `rng`. */
export function mutateStream(rec: Recorded, rng: Rng): Variant {
  const edits = rec.frames.map(fromRaw);
  const n = edits.length;
  const any = () => rng.int(n);
  const k = rng.int(100);
  if (k < 10) {
    // frames removed: one, several, or every frame of a kind
    if (rng.chance(0.3)) {
      const kind = rng.pick([SEC_PAGES, SEC_ROUND, SEC_HEADER, SEC_STATE, "device"]);
      const keep = edits.filter((e) => (kind === "device" ? !isDevice(e.name) : e.name !== kind));
      return { bytes: assemble(rec, keep), kind: "remove", what: `every '${kind}' frame removed` };
    }
    const drop = new Set<number>();
    for (let j = rng.chance(0.7) ? 1 : rng.range(2, 4); j > 0; j--) drop.add(any());
    return {
      bytes: assemble(
        rec,
        edits.filter((_, i) => !drop.has(i)),
      ),
      kind: "remove",
      what: `frames ${[...drop].join(",")} removed`,
    };
  }
  if (k < 18) {
    const i = any();
    const to = rng.chance(0.5) ? i + 1 : rng.int(n + 1);
    const out = [...edits.slice(0, to), edits[i]!, ...edits.slice(to)];
    return {
      bytes: assemble(rec, out),
      kind: "duplicate",
      what: `frame ${i} (${edits[i]!.name}) repeated at ${to}`,
    };
  }
  if (k < 26) {
    const i = any();
    const j = rng.chance(0.5) ? Math.min(n - 1, i + 1) : any();
    if (i === j)
      return { bytes: assemble(rec, edits), kind: "noop", what: "a frame swapped with itself", noop: true };
    const out = edits.slice();
    if (rng.chance(0.5)) [out[i], out[j]] = [out[j]!, out[i]!];
    else out.splice(j, 0, ...out.splice(i, 1));
    const same = out.every((e, x) => bytesOf(e) === bytesOf(edits[x]!) || sameFrame(e, edits[x]!));
    return same
      ? {
          bytes: assemble(rec, out),
          kind: "noop",
          what: `frames ${i} and ${j} (alike) reordered`,
          noop: true,
        }
      : { bytes: assemble(rec, out), kind: "reorder", what: `frames ${i} and ${j} reordered` };
  }
  if (k < 32) {
    const full = rec.stream;
    const at = rng.chance(0.2) ? full.length - rng.range(1, 3) : rng.int(full.length);
    return { bytes: full.subarray(0, at), kind: "truncate", what: `cut at byte ${at} of ${full.length}` };
  }
  if (k < 62) return corruptFrame(rec, edits, rng);
  if (k < 68) return declared(rec, edits, rng);
  if (k < 73) {
    // a frame's length or name-length field changed (CRC as it was)
    const i = any();
    const b = encodeFrame(edits[i]!).slice();
    const dv = new DataView(b.buffer);
    const nl = dv.getUint16(0, true);
    let what: string;
    if (rng.chance(0.7)) {
      const len = dv.getUint32(10 + nl, true);
      const v =
        rng.pick([0, 1, len - 1, len + 1, len + 4, len * 2, 0x7fff_0000, 0xffff_ffff, rng.u32()]) >>> 0;
      dv.setUint32(10 + nl, v, true);
      what = `frame ${i} (${edits[i]!.name}) length ${len} -> ${v}`;
    } else {
      const v = rng.pick([0, 1, nl - 1, nl + 1, 255, 0xffff]) & 0xffff;
      dv.setUint16(0, v, true);
      what = `frame ${i} (${edits[i]!.name}) name length ${nl} -> ${v}`;
    }
    edits[i] = { ...edits[i]!, raw: b };
    return { bytes: assemble(rec, edits), kind: "length", what };
  }
  if (k < 81) {
    const out = rec.stream.slice();
    const flips = rng.range(1, 8);
    for (let j = 0; j < flips; j++) out[rng.int(out.length)]! ^= 1 << rng.int(8);
    return { bytes: out, kind: "flip", what: `${flips} bits flipped` };
  }
  if (k < 85) return { bytes: mutateBytes(rec.stream, rng), kind: "bytes", what: "raw byte edit" };
  if (k < 87) {
    const out = rec.stream.slice();
    const at = rng.chance(0.5) ? rng.int(8) : 8 + rng.int(4);
    out[at] = rng.int(256);
    if (out[at] === rec.stream[at]) out[at]! ^= 1;
    return { bytes: out, kind: "preamble", what: `preamble byte ${at} changed` };
  }
  if (k < 89) {
    // something after the end marker, or no end marker
    return rng.chance(0.5)
      ? { bytes: assemble(rec, edits, false), kind: "truncate", what: "no end marker" }
      : {
          bytes: concatBytes(rec.stream, encodeFrame(edits[any()]!)),
          kind: "trailing",
          what: "a frame after the end marker",
          // The destination stops reading at the end marker; what follows is not the stream.
          noop: true,
        };
  }
  return noop(rec, edits, rng);
}

function sameFrame(a: Edit, b: Edit): boolean {
  const x = bytesOf(a);
  const y = bytesOf(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** A frame of one kind corrupted, its CRC recomputed. */
function corruptFrame(rec: Recorded, edits: Edit[], rng: Rng): Variant {
  const kind = rng.pick(["header", "ram.pages", "round", "state", "device", "device", "meta"] as const);
  const pool =
    kind === "header"
      ? where(rec, (x) => x === SEC_HEADER)
      : kind === "ram.pages"
        ? where(rec, (x) => x === SEC_PAGES)
        : kind === "round"
          ? where(rec, (x) => x === SEC_ROUND)
          : kind === "state"
            ? where(rec, (x) => x === SEC_STATE)
            : kind === "device"
              ? where(rec, isDevice)
              : rec.frames.map((_, i) => i);
  const i = rng.pick(pool);
  const e = edits[i]!;
  const label = frameKind(e.name);
  if (kind === "meta") {
    // name, version or flags of any frame (CRC covers them: recomputed)
    const c = rng.int(3);
    const names = [...new Set(rec.frames.map((f) => f.name)), "migration.ready", "migration.ack", "ram", "x"];
    const changed: Edit =
      c === 0
        ? { ...e, name: rng.pick(names.filter((x) => x !== e.name)) }
        : c === 1
          ? { ...e, version: rng.pick([0, 2, 3, 0xffff_ffff, e.version + 1]) }
          : { ...e, flags: rng.pick([1, 2, 0x8000_0000, 0xffff_ffff]) };
    edits[i] = changed;
    return {
      bytes: assemble(rec, edits),
      kind: `corrupt:meta`,
      what: `frame ${i} (${e.name}) ${c === 0 ? `renamed '${changed.name}'` : c === 1 ? `version ${changed.version}` : `flags ${changed.flags}`}`,
    };
  }
  const section = rec.frames[i]!.section;
  let payload: Uint8Array;
  let what: string;
  let undeclared = false;
  if (label === "header" || label === "round" || label === "state") {
    const v = mutateJson(json(e), rng) as Record<string, unknown>;
    payload = enc.encode(JSON.stringify(v) ?? "null");
    what = `frame ${i} (${e.name}) JSON ${dec.decode(payload).slice(0, 200)}`;
    if (label === "state") {
      // runState and savedAt are the stream's last word: nothing declares them.
      const o = json(e);
      undeclared =
        typeof v === "object" &&
        v !== null &&
        ["rounds", "pages", "digest", "sections"].every((f) => JSON.stringify(v[f]) === JSON.stringify(o[f]));
    }
    if (label === "header") {
      const o = json(e);
      undeclared =
        typeof v === "object" && v !== null && JSON.stringify(v.config) === JSON.stringify(o.config);
    }
  } else {
    const r = mutatePayload(section, rng);
    payload = r.data;
    what = `frame ${i}: ${r.m.what}`;
    undeclared = label !== "ram.pages";
  }
  edits[i] = { ...e, flags: 0, payload };
  return { bytes: assemble(rec, edits), kind: `corrupt:${label}`, what, undeclared };
}

/** The largest frame payload of the recorded stream, as on the wire (what maxFrame bounds). */
const largestFrame = (rec: Recorded) => Math.max(...rec.frames.map((f) => f.payload.length));

/**
 * The declarations changed: the header's frame limit, a round's count or number, the
 * totals, the digest, the section list.
 */
function declared(rec: Recorded, edits: Edit[], rng: Rng): Variant {
  if (rng.chance(0.15)) {
    const i = where(rec, (x) => x === SEC_HEADER)[0]!;
    const v = json(edits[i]!);
    const old = v.maxFrame;
    const big = largestFrame(rec);
    v.maxFrame = rng.pick([
      big - 1,
      Math.floor(big / 2),
      ramFramePayload(1) - 1,
      0,
      -1,
      MAX_FRAME_PAYLOAD + 1,
      2 ** 31,
      2 ** 53,
      1.5,
      String(old),
      null,
    ]);
    if (rng.chance(0.2)) delete v.maxFrame;
    edits[i] = setJson(edits[i]!, v);
    return {
      bytes: assemble(rec, edits),
      kind: "declared:maxFrame",
      what: `header: maxFrame ${String(old)} -> ${JSON.stringify(v.maxFrame) ?? "removed"}`,
    };
  }
  const rounds = where(rec, (x) => x === SEC_ROUND);
  if (rng.chance(0.35)) {
    const i = rng.pick(rounds);
    const v = json(edits[i]!);
    const f = rng.pick(["round", "pages"]);
    const old = v[f] as number;
    v[f] = rng.pick([old + 1, old - 1, 0, -1, 1.5, "1", null, 2 ** 53, old * 2]);
    edits[i] = setJson(edits[i]!, v);
    return {
      bytes: assemble(rec, edits),
      kind: "declared:round",
      what: `round marker ${i}: ${f} ${old} -> ${String(v[f])}`,
    };
  }
  const i = where(rec, (x) => x === SEC_STATE)[0]!;
  const v = json(edits[i]!);
  const f = rng.pick(["rounds", "pages", "digest", "sections", "sections"]);
  const old = v[f];
  if (f === "digest") {
    const d = String(old);
    const at = rng.int(d.length);
    v[f] = rng.pick([
      `${d.slice(0, at)}${d[at] === "0" ? "1" : "0"}${d.slice(at + 1)}`,
      d.toUpperCase(),
      "",
      d.slice(1),
      null,
    ]);
  } else if (f === "sections") {
    const s = (old as string[]).slice();
    const c = rng.int(4);
    if (c === 0) s.splice(rng.int(s.length), 1);
    else if (c === 1) s.push(rng.pick(s));
    else if (c === 2) s.reverse();
    else s.push("pl011@9000001");
    v[f] = s;
  } else {
    const o = old as number;
    v[f] = rng.pick([o + 1, o - 1, 0, -1, 0.5, String(o), null]);
  }
  edits[i] = setJson(edits[i]!, v);
  return {
    bytes: assemble(rec, edits),
    kind: `declared:${f}`,
    what: `run state: ${f} ${JSON.stringify(old)?.slice(0, 80)} -> ${JSON.stringify(v[f])?.slice(0, 80)}`,
  };
}

/** A variant that changes nothing the destination loads: it must be accepted. */
function noop(rec: Recorded, edits: Edit[], rng: Rng): Variant {
  const c = rng.int(7);
  const v = (what: string, out: Edit[]): Variant => ({
    bytes: assemble(rec, out),
    kind: "noop",
    what,
    noop: true,
  });
  switch (c) {
    case 0:
      return v("the stream as sent", edits);
    case 1: {
      // JSON keys reordered in the header, a round marker or the run state
      const i = rng.pick(where(rec, (x) => x === SEC_HEADER || x === SEC_ROUND || x === SEC_STATE));
      const o = json(edits[i]!);
      edits[i] = setJson(edits[i]!, Object.fromEntries(Object.entries(o).reverse()));
      return v(`frame ${i} (${edits[i]!.name}) keys reordered`, edits);
    }
    case 2: {
      // the header's writer string changed (informational)
      const i = where(rec, (x) => x === SEC_HEADER)[0]!;
      edits[i] = setJson(edits[i]!, {
        ...json(edits[i]!),
        writer: rng.pick(["", "qemu", "armbox 9.9.9", "ü"]),
      });
      return v("the header's writer changed", edits);
    }
    case 3: {
      // RAM frames deflated (the digest is over the inflated payloads)
      const out = edits.map((e) => {
        if (e.name !== SEC_PAGES || !rng.chance(0.6)) return e;
        return {
          ...e,
          flags: FLAG_DEFLATE,
          payload: deflateSync(e.payload, {
            level: rng.range(0, 9) as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9,
          }),
        };
      });
      return v("RAM frames deflated", out);
    }
    case 4: {
      // RAM frames split or merged and rounds re-cut, the declarations recomputed
      const out: Edit[] = [];
      for (const e of edits) {
        if (e.name === SEC_PAGES && rng.chance(0.5)) {
          const r = parseRam(e.payload);
          if (r && r.pages.length > 1) {
            const cut = rng.range(1, r.pages.length - 1);
            out.push({ ...e, payload: encodeRamLayout({ ...r, pages: r.pages.slice(0, cut) }) });
            if (rng.chance(0.5))
              out.push({ name: SEC_ROUND, version: 1, flags: 0, payload: enc.encode("{}") });
            out.push({ ...e, payload: encodeRamLayout({ ...r, pages: r.pages.slice(cut) }) });
            continue;
          }
        }
        out.push(e);
      }
      return v("RAM frames split into more frames and rounds, declarations recomputed", redeclare(out));
    }
    case 5: {
      // the declared frame limit lowered to exactly the largest frame sent (or one page's)
      const i = where(rec, (x) => x === SEC_HEADER)[0]!;
      const maxFrame = Math.max(largestFrame(rec), ramFramePayload(1));
      edits[i] = setJson(edits[i]!, { ...json(edits[i]!), maxFrame });
      return v(`the header's frame limit lowered to ${maxFrame}, the largest frame`, edits);
    }
    default: {
      // a page re-sent, identical, in an extra round before the last (declarations recomputed)
      const pages = where(rec, (x) => x === SEC_PAGES);
      const src = edits[rng.pick(pages)]!;
      const lastRound = where(rec, (x) => x === SEC_ROUND).at(-1)!;
      const out = [
        ...edits.slice(0, lastRound),
        src,
        { name: SEC_ROUND, version: 1, flags: 0, payload: enc.encode("{}") },
        ...edits.slice(lastRound),
      ];
      return v("RAM pages re-sent identically in an extra round, declarations recomputed", redeclare(out));
    }
  }
}

// ---------------------------------------------------------------------------------------
// The loop

let recorded: Promise<Recorded> | null = null;
/** The recorded stream, made once per process. */
export function baseStream(): Promise<Recorded> {
  recorded ??= recordStream();
  return recorded;
}

/** Inputs [start, start + count) of seed `rec.seed`'s sequence, counted into `rec.tally`. */
export async function runStreams(base: Recorded, start: number, count: number, r: Recorder): Promise<void> {
  for (let index = start; index < start + count; index++) {
    const rng = new Rng(r.inputSeed(index));
    let variant: Variant;
    try {
      variant = mutateStream(base, rng);
    } catch (e) {
      r.crash(index, `the mutator itself failed: ${(e as Error).message}`);
      continue;
    }
    r.count(`kind ${variant.kind}`);
    const out = await feed(base.config, variant.bytes);
    if (out.kind === "crash") {
      r.crash(index, `${variant.what}: ${out.what}`, { bytes: variant.bytes });
    } else if (out.kind === "refused") {
      r.refused(out.reason);
      if (variant.noop) {
        r.count("noop refused");
        r.violation(index, `a no-op variant was refused (${variant.what}): ${out.reason}`);
      }
    } else {
      r.accepted();
      const same = out.digest === base.digest && out.runState === base.runState;
      if (same) r.count(variant.noop ? "accepted identical (no-op)" : "accepted identical (mutated)");
      else if (variant.undeclared) {
        r.count("accepted-undeclared (differs: content no declaration covers)");
        r.count(`accepted-undeclared ${variant.kind}`);
      } else {
        r.count("accepted different");
        r.violation(
          index,
          `accepted a ${variant.kind} variant that loads another machine (${variant.what}${out.runState !== base.runState ? `; run state ${out.runState}` : ""})`,
          { bytes: variant.bytes },
        );
      }
    }
  }
}

export const migrationStreams: FuzzTarget = {
  name: "migration-streams",
  unit: "migration streams",
  async run(chunk: Chunk, rec: Recorder): Promise<void> {
    await runStreams(await baseStream(), chunk.start, chunk.count, rec);
  },
};

/** Runs `count` inputs of `seed` and returns the tally (the CLI, and the CI test). */
export async function fuzzStreams(seed: number, count: number, start = 0): Promise<Tally> {
  const t0 = performance.now();
  const tally = newTally(migrationStreams.name);
  const base = await baseStream();
  await runStreams(base, start, count, new Recorder(tally, seed));
  tally.ms = performance.now() - t0;
  tally.extra["frames in the recorded stream"] = base.frames.length;
  tally.extra["bytes in the recorded stream"] = base.stream.length;
  return tally;
}

export function printTally(t: Tally, out: (line: string) => void = console.log): void {
  out(`${t.target}: ${t.inputs} inputs in ${(t.ms / 1000).toFixed(1)} s`);
  out(`  refused ${t.refused}, accepted ${t.accepted}, crashes ${t.crashes}, violations ${t.violations}`);
  for (const [k, v] of Object.entries(t.extra).sort()) out(`  ${k}: ${v}`);
  const top = Object.entries(t.reasons)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15);
  out("  top refusal reasons:");
  for (const [k, v] of top) out(`    ${String(v).padStart(7)}  ${k}`);
  for (const f of t.failures) out(`  ${f.kind} #${f.index} (seed ${f.seed}): ${f.what}`);
}

/** `--name value` from argv, as an integer. */
export function intArg(argv: readonly string[], name: string, dflt: number): number {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`);
  return v;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const seed = intArg(argv, "--seed", 1);
  const count = intArg(argv, "--count", 100_000);
  const start = intArg(argv, "--start", 0);
  const t = await fuzzStreams(seed, count, start);
  printTally(t);
  process.exitCode = t.crashes > 0 || t.violations > 0 ? 1 : 0;
}
