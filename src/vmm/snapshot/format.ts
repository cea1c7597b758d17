/**
 * The armbox snapshot container: a header, then one checksummed section per component
 * (like QEMU's vmstate sections, with Firecracker's per-file discipline of a magic,
 * a format version and checksums). Everything is little-endian.
 *
 *   magic "ARMBOXVM" | u32 format version (2) | u32 header length | header JSON (UTF-8)
 *              | u32 CRC-32C over (format version, header length, header JSON)
 *   section*:  u16 name length | name | u32 section version | u32 flags | u32 payload length
 *              | payload | u32 CRC-32C over (name, version, flags, payload)
 *   end:       u16 0 (an empty name)
 *
 * The header declares what the file carries: `contents` lists every section in order with
 * its version, payload length and CRC, so a section removed, added, reordered or replaced
 * is refused even where every frame's own CRC is right (docs/SNAPSHOTS.md, "Invariants").
 * Format version 1 (no header CRC, no contents list) is still read.
 *
 * A section's payload is JSON (UTF-8) or binary (RAM); flag bit 0 says it is deflated.
 * The same section framing is what live migration sends over the wire.
 */
import { deflate, deflateSync, Inflate } from "fflate";
import { crc32c } from "../../lib/crc32.ts";
import { MAX_GUEST_RAM } from "../../machine/memory-map.ts";

export const SNAPSHOT_MAGIC = "ARMBOXVM";
/** Version of the container layout this build writes; it reads this one and version 1. */
export const SNAPSHOT_FORMAT_VERSION = 2;
export const FLAG_DEFLATE = 1;
/** Largest payload accepted (a 3 GiB guest's RAM, stored, fits). */
const MAX_PAYLOAD = 0xffff_fff0;

export class SnapshotError extends Error {
  override readonly name = "SnapshotError";
}

export interface Section {
  readonly name: string;
  readonly version: number;
  /** The payload, uncompressed. */
  readonly data: Uint8Array;
}

export interface SnapshotHeader {
  /** Machine configuration (smp, memory, clock, …) the sections belong to. */
  readonly config: Record<string, unknown>;
  /** Wall-clock time of the save (ms since the epoch), for real-time clock continuity. */
  readonly savedAt: number;
  readonly writer: string;
  /** Format 2: every section the file carries, in order (filled in by encodeSnapshot). */
  readonly contents?: readonly SectionEntry[];
}

/** A section as the header declares it: name, version, payload length (as stored) and CRC. */
export interface SectionEntry {
  readonly name: string;
  readonly version: number;
  readonly bytes: number;
  readonly crc: number;
}

// CRC-32C (Castagnoli) of every section frame: the shared slicing-by-8 implementation,
// re-exported so that callers of this module keep importing it from here.
export { crc32c };

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function jsonSection(name: string, version: number, value: unknown): Section {
  return { name, version, data: enc.encode(JSON.stringify(value)) };
}

export function parseJsonSection(s: Section): unknown {
  try {
    return JSON.parse(dec.decode(s.data));
  } catch {
    throw new SnapshotError(`section '${s.name}': payload is not valid JSON`);
  }
}

// ---------------------------------------------------------------------------
// Section framing (shared by snapshot files and the migration stream)

/** Encodes one section frame; `compress` deflates payloads where that pays. */
export function encodeSection(s: Section, compress = false): Uint8Array {
  return sectionFrame(s, compress && s.data.length > 64 ? deflateSync(s.data, { level: 1 }) : undefined);
}

/** Payloads from this size on are deflated on a worker thread by encodeSnapshotAsync. */
const ASYNC_DEFLATE_MIN = 1 << 20;

/** encodeSection with the deflate of a large payload on a worker thread (fflate's async API). */
async function encodeSectionAsync(s: Section, compress: boolean): Promise<Uint8Array> {
  if (!compress || s.data.length < ASYNC_DEFLATE_MIN) return encodeSection(s, compress);
  const z = await new Promise<Uint8Array>((resolve, reject) =>
    deflate(s.data, { level: 1 }, (err, out) => (err ? reject(err) : resolve(out))),
  );
  return sectionFrame(s, z);
}

/** The frame of `s`, holding `deflated` instead of its payload where that is smaller. */
function sectionFrame(s: Section, deflated: Uint8Array | undefined): Uint8Array {
  const name = enc.encode(s.name);
  if (name.length === 0 || name.length > 255) throw new SnapshotError(`bad section name '${s.name}'`);
  let payload = s.data;
  let flags = 0;
  if (deflated && deflated.length < payload.length) {
    payload = deflated;
    flags |= FLAG_DEFLATE;
  }
  const head = new Uint8Array(2 + name.length + 12);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, name.length, true);
  head.set(name, 2);
  dv.setUint32(2 + name.length, s.version, true);
  dv.setUint32(6 + name.length, flags, true);
  dv.setUint32(10 + name.length, payload.length, true);
  const meta = head.subarray(2, 2 + name.length + 8);
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32c([meta, payload]), true);
  return concat([head, payload, crc]);
}

/** The end marker: a section with an empty name. */
export const END_FRAME = new Uint8Array(2);

/**
 * Reads one frame at `off`. Returns null for the end marker, or the section and the
 * offset after it. Throws a SnapshotError naming the section for anything wrong.
 */
export function decodeSection(
  buf: Uint8Array,
  off: number,
  maxInflated: (name: string) => number = () => MAX_PAYLOAD,
): { section: Section; next: number } | null {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (off + 2 > buf.length) throw new SnapshotError("truncated: the end marker is missing");
  const nameLen = dv.getUint16(off, true);
  if (nameLen === 0) return null;
  if (off + 2 + nameLen + 12 > buf.length)
    throw new SnapshotError(`truncated inside a section header at byte ${off}`);
  let name: string;
  try {
    name = dec.decode(buf.subarray(off + 2, off + 2 + nameLen));
  } catch {
    throw new SnapshotError(`corrupt section name at byte ${off}`);
  }
  if (!/^[A-Za-z0-9_.@-]+$/.test(name)) throw new SnapshotError(`corrupt section name at byte ${off}`);
  const p = off + 2 + nameLen;
  const version = dv.getUint32(p, true);
  const flags = dv.getUint32(p + 4, true);
  const len = dv.getUint32(p + 8, true);
  if (len > MAX_PAYLOAD || p + 12 + len + 4 > buf.length) {
    throw new SnapshotError(
      `section '${name}' is truncated (${len} bytes announced, ${buf.length - p - 12} left)`,
    );
  }
  const payload = buf.subarray(p + 12, p + 12 + len);
  const stored = dv.getUint32(p + 12 + len, true);
  if (crc32c([buf.subarray(off + 2, p + 8), payload]) !== stored) {
    throw new SnapshotError(`section '${name}' is corrupt (checksum mismatch)`);
  }
  if ((flags & ~FLAG_DEFLATE) !== 0)
    throw new SnapshotError(`section '${name}' has unknown flags 0x${flags.toString(16)}`);
  let data = payload;
  if (flags & FLAG_DEFLATE) data = inflateBounded(name, payload, maxInflated(name));
  return { section: { name, version, data }, next: p + 12 + len + 4 };
}

class InflateLimit extends Error {}

/**
 * Inflates `payload`, refusing it once it grows past `limit` bytes: a few KiB of deflate
 * can expand a thousandfold, so a stored length says nothing of the memory it needs.
 */
function inflateBounded(name: string, payload: Uint8Array, limit: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const inf = new Inflate((chunk) => {
    total += chunk.length;
    if (total > limit) throw new InflateLimit();
    chunks.push(chunk);
  });
  try {
    inf.push(payload, true);
  } catch (e) {
    if (e instanceof InflateLimit)
      throw new SnapshotError(`section '${name}': compressed payload inflates to more than ${limit} bytes`);
    throw new SnapshotError(`section '${name}': compressed payload is corrupt`);
  }
  return chunks.length === 1 ? chunks[0]! : concat(chunks);
}

/** Largest RAM section of a machine with `memory` bytes (a page count, then index + page each). */
function ramSectionLimit(memory: unknown): number {
  const m =
    Number.isSafeInteger(memory) && (memory as number) > 0
      ? Math.min(memory as number, MAX_GUEST_RAM)
      : MAX_GUEST_RAM;
  return 8 + Math.ceil(m / 4096) * (4 + 4096);
}

/** Largest payload of any section but RAM, inflated (vCPUs, GIC, devices: KiB each). */
export const MAX_DEVICE_SECTION = 64 << 20;

// ---------------------------------------------------------------------------
// Whole files

export function encodeSnapshot(
  header: SnapshotHeader,
  sections: readonly Section[],
  compress = true,
): Uint8Array {
  return snapshotOfFrames(
    header,
    sections,
    sections.map((s) => encodeSection(s, compress)),
  );
}

/**
 * encodeSnapshot, the same bytes, with the deflate of large sections (RAM) on a worker
 * thread, so that a VMM saving a big guest keeps answering its clients meanwhile (pure-JS
 * deflate runs at 10-40 MB/s: seconds for a few hundred MiB).
 */
export async function encodeSnapshotAsync(
  header: SnapshotHeader,
  sections: readonly Section[],
  compress = true,
): Promise<Uint8Array> {
  const frames: Uint8Array[] = [];
  for (const s of sections) frames.push(await encodeSectionAsync(s, compress));
  return snapshotOfFrames(header, sections, frames);
}

function snapshotOfFrames(
  header: SnapshotHeader,
  sections: readonly Section[],
  frames: readonly Uint8Array[],
): Uint8Array {
  const contents = frames.map((f, i) => frameEntry(f, sections[i]!));
  const h = enc.encode(JSON.stringify({ ...header, contents }));
  const pre = new Uint8Array(16 + h.length + 4);
  pre.set(enc.encode(SNAPSHOT_MAGIC), 0);
  const dv = new DataView(pre.buffer);
  dv.setUint32(8, SNAPSHOT_FORMAT_VERSION, true);
  dv.setUint32(12, h.length, true);
  pre.set(h, 16);
  dv.setUint32(16 + h.length, crc32c([pre.subarray(8, 16 + h.length)]), true);
  return concat([pre, ...frames, END_FRAME]);
}

/** What the header says of an encoded frame: its stored payload length and its CRC. */
function frameEntry(f: Uint8Array, s: Section): SectionEntry {
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const nameLen = dv.getUint16(0, true);
  return {
    name: s.name,
    version: s.version,
    bytes: dv.getUint32(2 + nameLen + 8, true),
    crc: dv.getUint32(f.length - 4, true),
  };
}

export function decodeSnapshot(buf: Uint8Array): { header: SnapshotHeader; sections: Section[] } {
  if (buf.length < 16) throw new SnapshotError("not an armbox snapshot (file too short)");
  const magic = enc.encode(SNAPSHOT_MAGIC);
  if (magic.some((b, i) => buf[i] !== b)) throw new SnapshotError("not an armbox snapshot (bad magic)");
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== SNAPSHOT_FORMAT_VERSION && version !== 1) {
    throw new SnapshotError(
      `snapshot format version ${version} is not supported (this build reads versions 1 and ${SNAPSHOT_FORMAT_VERSION})`,
    );
  }
  const hlen = dv.getUint32(12, true);
  const crcLen = version >= 2 ? 4 : 0;
  if (16 + hlen + crcLen > buf.length) throw new SnapshotError("truncated: the header is cut short");
  if (crcLen > 0 && crc32c([buf.subarray(8, 16 + hlen)]) !== dv.getUint32(16 + hlen, true)) {
    throw new SnapshotError("the header is corrupt (checksum mismatch)");
  }
  let header: SnapshotHeader;
  try {
    header = JSON.parse(dec.decode(buf.subarray(16, 16 + hlen))) as SnapshotHeader;
  } catch {
    throw new SnapshotError("corrupt header (not valid JSON)");
  }
  if (
    typeof header !== "object" ||
    header === null ||
    typeof header.config !== "object" ||
    header.config === null
  ) {
    throw new SnapshotError("corrupt header (no machine configuration)");
  }
  if (!Number.isSafeInteger(header.savedAt) || header.savedAt < 0) {
    throw new SnapshotError("corrupt header (savedAt is not a time in ms since the epoch)");
  }
  const declared = version >= 2 ? checkContents(header.contents) : null;
  const sections: Section[] = [];
  const seen = new Set<string>();
  let off = 16 + hlen + crcLen;
  for (;;) {
    const start = off;
    const r = decodeSection(buf, off, (name) =>
      name === "ram" ? ramSectionLimit((header.config as { memory?: unknown }).memory) : MAX_DEVICE_SECTION,
    );
    if (!r) break;
    const name = r.section.name;
    if (seen.has(name)) throw new SnapshotError(`section '${name}' appears twice`);
    seen.add(name);
    if (declared) {
      const want = declared[sections.length];
      if (!want) throw new SnapshotError(`section '${name}' is not in the header's list of contents`);
      const got = frameEntry(buf.subarray(start, r.next), r.section);
      if (got.name !== want.name) {
        throw new SnapshotError(`section '${name}' stands where the header lists '${want.name}'`);
      }
      if (got.version !== want.version || got.bytes !== want.bytes || got.crc !== want.crc) {
        throw new SnapshotError(
          `section '${name}' is not the one the header lists (version, length or checksum differ)`,
        );
      }
    }
    sections.push(r.section);
    off = r.next;
  }
  if (declared && sections.length < declared.length) {
    throw new SnapshotError(
      `section '${declared[sections.length]!.name}' is missing (the header lists ${declared.length} sections, the file has ${sections.length})`,
    );
  }
  if (off + 2 !== buf.length)
    throw new SnapshotError(`${buf.length - off - 2} unexpected bytes after the end marker`);
  return { header, sections };
}

function checkContents(c: unknown): SectionEntry[] {
  const u32 = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffff_ffff;
  const ok =
    Array.isArray(c) &&
    c.every(
      (e) =>
        typeof e === "object" &&
        e !== null &&
        typeof e.name === "string" &&
        u32(e.version) &&
        u32(e.bytes) &&
        u32(e.crc),
    );
  if (!ok) throw new SnapshotError("corrupt header (the list of contents is missing or malformed)");
  return c as SectionEntry[];
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
