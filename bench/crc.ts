/**
 * Checksum throughput: the CRC-32C of every snapshot section and migration frame
 * (src/lib/crc32.ts, slicing-by-8) against the byte-at-a-time table loop it replaced,
 * on a 32 MiB buffer (the dirtying migration bench's working set).
 *
 *   npx tsx bench/crc.ts            (or runCrcBench() from bench/run.ts)
 *
 * Printed, never asserted. Best of several passes (a shared host is noisy).
 */
import { crc32, crc32c } from "../src/lib/crc32.ts";

const MiB = 1024 * 1024;

function line(name: string, value: string): void {
  console.log(`${name.padEnd(44)} ${value}`);
}

/** The previous implementation (src/vmm/snapshot/format.ts before slicing-by-8). */
const BYTE_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let v = i;
    for (let k = 0; k < 8; k++) v = v & 1 ? (v >>> 1) ^ 0x82f63b78 : v >>> 1;
    t[i] = v >>> 0;
  }
  return t;
})();

function crc32cBytewise(parts: readonly Uint8Array[]): number {
  let crc = 0xffffffff;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) crc = BYTE_TABLE[(crc ^ p[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** MB/s (10^6 bytes per second) of `fn` over `bytes` bytes, best of `passes`. */
function mbps(bytes: number, passes: number, fn: () => number): { mbps: number; crc: number } {
  let best = Infinity;
  let crc = 0;
  for (let k = 0; k < passes; k++) {
    const t0 = performance.now();
    crc = fn();
    best = Math.min(best, performance.now() - t0);
  }
  return { mbps: bytes / 1e6 / (best / 1000), crc };
}

export interface CrcFigures {
  bytewise: number;
  sliced: number;
  slicedUnaligned: number;
  sliced1MiBFrames: number;
  sliced4KiBPages: number;
  crc32: number;
}

export function runCrcBench(size = 32 * MiB): CrcFigures {
  const backing = new Uint8Array(size + 8);
  let x = 0x12345678;
  for (let i = 0; i < backing.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    backing[i] = x >>> 24;
  }
  const buf = backing.subarray(0, size);
  const unaligned = backing.subarray(1, size + 1);
  const frames = Array.from({ length: size / MiB }, (_, i) => buf.subarray(i * MiB, (i + 1) * MiB));
  const pages = Array.from({ length: size / 4096 }, (_, i) => buf.subarray(i * 4096, (i + 1) * 4096));

  const before = mbps(size, 3, () => crc32cBytewise([buf]));
  const after = mbps(size, 5, () => crc32c([buf]));
  if (before.crc !== after.crc) throw new Error("crc bench: the two implementations disagree");
  const un = mbps(size, 5, () => crc32c([unaligned]));
  const fr = mbps(size, 5, () => {
    let s = 0;
    for (const f of frames) s ^= crc32c([f]);
    return s;
  });
  const pg = mbps(size, 5, () => {
    let s = 0;
    for (const p of pages) s ^= crc32c([p]);
    return s;
  });
  const z = mbps(size, 5, () => crc32([buf]));
  const r: CrcFigures = {
    bytewise: before.mbps,
    sliced: after.mbps,
    slicedUnaligned: un.mbps,
    sliced1MiBFrames: fr.mbps,
    sliced4KiBPages: pg.mbps,
    crc32: z.mbps,
  };
  const mb = (v: number) => `${v.toFixed(0)} MB/s`;
  line(`crc32c ${size / MiB} MiB, byte at a time (before)`, mb(r.bytewise));
  line(`crc32c ${size / MiB} MiB, slicing-by-8`, `${mb(r.sliced)} (${(r.sliced / r.bytewise).toFixed(1)}x)`);
  line("crc32c slicing-by-8, buffer at byteOffset 1", mb(r.slicedUnaligned));
  line("crc32c slicing-by-8, as 1 MiB frames", mb(r.sliced1MiBFrames));
  line("crc32c slicing-by-8, as 4 KiB pages", mb(r.sliced4KiBPages));
  line("crc32 (zlib polynomial) slicing-by-8", mb(r.crc32));
  return r;
}

if (import.meta.url === `file://${process.argv[1]}`) runCrcBench();
