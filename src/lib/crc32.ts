/**
 * CRC-32 (ISO-HDLC / zlib, reflected polynomial 0xEDB88320) and CRC-32C (Castagnoli,
 * reflected 0x82F63B78), table-driven with slicing-by-8: one step folds 8 input bytes
 * through 8 tables of 256 entries (the technique of Intel's "slicing-by-8", Kounavis and
 * Berry 2005). Dependency-free and browser-safe: every layer may import it.
 *
 * Two kinds of entry point:
 * - `crc32Update` / `crc32cUpdate` advance a raw CRC register over a buffer, with NO
 *   pre/post inversion; `crc32` / `crc32c` are the conventional checksums (start at
 *   0xFFFFFFFF, invert at the end) over a list of parts.
 * - `crc32Value` / `crc32cValue` are the A64 CRC32{B,H,W,X} / CRC32C{B,H,W,X} step: the
 *   accumulator is folded with the low 1, 2, 4 or 8 bytes of a value, least significant
 *   byte first, without inversion (Arm ARM C6.2 CRC32B: the BitReverse of operands and
 *   result makes the MSB-first definition equal to this reflected table form).
 */

export const CRC32_POLY = 0xedb88320;
export const CRC32C_POLY = 0x82f63b78;

/**
 * The 8 slicing tables of one polynomial in one array: entry k*256 + i is the CRC
 * register after feeding byte i followed by k zero bytes. Table 0 is the classic one.
 */
function makeTables(poly: number): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let v = i;
    for (let k = 0; k < 8; k++) v = v & 1 ? (v >>> 1) ^ poly : v >>> 1;
    t[i] = v >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    let v = t[i]!;
    for (let k = 1; k < 8; k++) {
      v = t[v & 0xff]! ^ (v >>> 8);
      t[k * 256 + i] = v;
    }
  }
  return t;
}

const CRC32_TABLES = makeTables(CRC32_POLY);
const CRC32C_TABLES = makeTables(CRC32C_POLY);

/** The word loop reads little-endian u32s through a Uint32Array: only on LE hosts. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Below this many bytes a Uint32Array view costs more than it saves. */
const WORD_VIEW_MIN = 64;

/** Folds 8 bytes (as two little-endian words, `a` first) into `crc`. */
function step8(t: Uint32Array, crc: number, a: number, b: number): number {
  a ^= crc;
  return (
    t[0x700 + (a & 0xff)]! ^
    t[0x600 + ((a >>> 8) & 0xff)]! ^
    t[0x500 + ((a >>> 16) & 0xff)]! ^
    t[0x400 + (a >>> 24)]! ^
    t[0x300 + (b & 0xff)]! ^
    t[0x200 + ((b >>> 8) & 0xff)]! ^
    t[0x100 + ((b >>> 16) & 0xff)]! ^
    t[b >>> 24]!
  );
}

function update(t: Uint32Array, crc: number, p: Uint8Array): number {
  return LITTLE_ENDIAN && p.length >= WORD_VIEW_MIN
    ? updateWords(t, crc, p.buffer, p.byteOffset, p.length)
    : updateBytes(t, crc, p);
}

/**
 * The word loop works on views it makes itself, never on the caller's array: a Node
 * Buffer (a socket's data) and a plain Uint8Array have different hidden classes, and
 * a loop optimised for one deoptimises on the other (measured: 12 ms for one 32 KiB
 * migration frame inside the downtime, against 0.02 ms once optimised).
 */
function updateWords(t: Uint32Array, crc: number, buf: ArrayBufferLike, off: number, n: number): number {
  const p = new Uint8Array(buf, off, n);
  // Bytes up to a 4-byte boundary of the underlying buffer, then whole words.
  const head = (4 - (off & 3)) & 3;
  let i = 0;
  for (; i < head; i++) crc = t[(crc ^ p[i]!) & 0xff]! ^ (crc >>> 8);
  const pairs = (n - head) >>> 3;
  const w = new Uint32Array(buf, off + head, pairs * 2);
  for (let j = 0; j < w.length; j += 2) crc = step8(t, crc, w[j]!, w[j + 1]!);
  for (i = head + pairs * 8; i < n; i++) crc = t[(crc ^ p[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

/** Short or big-endian-host input: the same 8-byte step on words assembled from bytes. */
function updateBytes(t: Uint32Array, crc: number, p: Uint8Array): number {
  const n = p.length;
  let i = 0;
  for (const end = n - 7; i < end; i += 8) {
    crc = step8(
      t,
      crc,
      p[i]! | (p[i + 1]! << 8) | (p[i + 2]! << 16) | (p[i + 3]! << 24),
      p[i + 4]! | (p[i + 5]! << 8) | (p[i + 6]! << 16) | (p[i + 7]! << 24),
    );
  }
  for (; i < n; i++) crc = t[(crc ^ p[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

/** Advances a raw CRC-32 register over `bytes` (no inversion). */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  return update(CRC32_TABLES, crc, bytes);
}

/** Advances a raw CRC-32C register over `bytes` (no inversion). */
export function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  return update(CRC32C_TABLES, crc, bytes);
}

/** CRC-32 (zlib, PNG, Ethernet) of the concatenation of `parts`. */
export function crc32(parts: readonly Uint8Array[]): number {
  let crc = 0xffffffff;
  for (const p of parts) crc = update(CRC32_TABLES, crc, p);
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC-32C (iSCSI, ext4) of the concatenation of `parts`. */
export function crc32c(parts: readonly Uint8Array[]): number {
  let crc = 0xffffffff;
  for (const p of parts) crc = update(CRC32C_TABLES, crc, p);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Operand size of the A64 CRC instructions: B, H, W, X. */
export type CrcValueBytes = 1 | 2 | 4 | 8;

function value(t: Uint32Array, acc: number, lo: number, hi: number, bytes: CrcValueBytes): number {
  switch (bytes) {
    case 1:
      return (t[(acc ^ lo) & 0xff]! ^ (acc >>> 8)) >>> 0;
    case 2: {
      const x = acc ^ lo;
      return (t[0x100 + (x & 0xff)]! ^ t[(x >>> 8) & 0xff]! ^ (acc >>> 16)) >>> 0;
    }
    case 4: {
      const x = acc ^ lo;
      return (
        (t[0x300 + (x & 0xff)]! ^
          t[0x200 + ((x >>> 8) & 0xff)]! ^
          t[0x100 + ((x >>> 16) & 0xff)]! ^
          t[x >>> 24]!) >>>
        0
      );
    }
    default:
      return step8(t, acc, lo, hi) >>> 0;
  }
}

/**
 * The A64 CRC32B/H/W/X step: `acc` folded with the low `bytes` bytes of the value
 * (`lo`, and `hi` as bytes 4-7 for X; ignored otherwise). No inversion.
 */
export function crc32Value(acc: number, lo: number, hi: number, bytes: CrcValueBytes): number {
  return value(CRC32_TABLES, acc, lo, hi, bytes);
}

/** The A64 CRC32CB/H/W/X step (see `crc32Value`). */
export function crc32cValue(acc: number, lo: number, hi: number, bytes: CrcValueBytes): number {
  return value(CRC32C_TABLES, acc, lo, hi, bytes);
}
