import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  CRC32_POLY,
  CRC32C_POLY,
  type CrcValueBytes,
  crc32,
  crc32c,
  crc32cUpdate,
  crc32cValue,
  crc32Update,
  crc32Value,
} from "../src/lib/crc32.ts";
import { crc32c as formatCrc32c } from "../src/vmm/snapshot/format.ts";

/** The definition, one bit at a time (reflected, LSB first), no tables. */
function bitwise(poly: number, crc: number, bytes: Uint8Array): number {
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ poly : crc >>> 1;
  }
  return crc >>> 0;
}

function bitwiseValue(poly: number, acc: number, lo: number, hi: number, bytes: number): number {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, lo >>> 0, true);
  dv.setUint32(4, hi >>> 0, true);
  return bitwise(poly, acc, b.subarray(0, bytes));
}

const ascii = (s: string) => new TextEncoder().encode(s);

test("check values of '123456789' (CRC catalogue: CRC-32/ISO-HDLC, CRC-32/ISCSI)", () => {
  assert.equal(crc32([ascii("123456789")]), 0xcbf43926);
  assert.equal(crc32c([ascii("123456789")]), 0xe3069283);
  assert.equal(formatCrc32c([ascii("123456789")]), 0xe3069283);
  // Split anywhere, including empty parts.
  assert.equal(crc32c([ascii("1234"), new Uint8Array(0), ascii("56789")]), 0xe3069283);
  assert.equal(crc32([ascii("1"), ascii("23456789")]), 0xcbf43926);
});

test("empty input", () => {
  assert.equal(crc32c([]), 0);
  assert.equal(crc32([new Uint8Array(0)]), 0);
  assert.equal(crc32cUpdate(0x12345678, new Uint8Array(0)), 0x12345678);
});

test("known vectors: 32 bytes of zeros / 0xff (RFC 3720 B.4) and a long buffer", () => {
  assert.equal(crc32c([new Uint8Array(32)]), 0x8a9136aa);
  assert.equal(crc32c([new Uint8Array(32).fill(0xff)]), 0x62a8ab43);
  const inc = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(crc32c([inc]), 0x46dd794e);
  // 1 MiB of a pattern, through the word loop, against the bitwise definition.
  const big = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 2654435761) >>> 24);
  assert.equal(crc32cUpdate(0xffffffff, big), bitwise(CRC32C_POLY, 0xffffffff, big));
  assert.equal(crc32Update(0xffffffff, big), bitwise(CRC32_POLY, 0xffffffff, big));
});

test("every length 0..200 at every byte offset 0..7 (head, word loop, tail; both 8-byte paths)", () => {
  const buf = Uint8Array.from({ length: 256 }, (_, i) => (i * 37 + 11) & 0xff);
  for (let off = 0; off < 8; off++) {
    for (let len = 0; len <= 200; len++) {
      const p = buf.subarray(off, off + len);
      assert.equal(
        crc32cUpdate(0x9abcdef0, p),
        bitwise(CRC32C_POLY, 0x9abcdef0, p),
        `c off ${off} len ${len}`,
      );
      assert.equal(crc32Update(0x9abcdef0, p), bitwise(CRC32_POLY, 0x9abcdef0, p), `off ${off} len ${len}`);
    }
  }
});

test("property: equals the bitwise reference on random subarrays (odd byteOffset) and random splits", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 3000 }),
      fc.nat(7),
      fc.array(fc.nat(), { maxLength: 5 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (raw, shift, cuts, init) => {
        // Copy into a larger buffer so the data starts at byteOffset `shift` (often odd).
        const backing = new Uint8Array(raw.length + 16);
        backing.set(raw, shift);
        const data = backing.subarray(shift, shift + raw.length);
        assert.equal(crc32cUpdate(init, data), bitwise(CRC32C_POLY, init, data));
        assert.equal(crc32Update(init, data), bitwise(CRC32_POLY, init, data));
        const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        const parts: Uint8Array[] = [];
        let prev = 0;
        for (const p of [...points, data.length]) {
          parts.push(data.subarray(prev, p));
          prev = p;
        }
        const expectC = (bitwise(CRC32C_POLY, 0xffffffff, data) ^ 0xffffffff) >>> 0;
        const expect = (bitwise(CRC32_POLY, 0xffffffff, data) ^ 0xffffffff) >>> 0;
        assert.equal(crc32c(parts), expectC);
        assert.equal(formatCrc32c(parts), expectC);
        assert.equal(crc32(parts), expect);
      },
    ),
    { numRuns: 500 },
  );
});

test("works on a SharedArrayBuffer and on a buffer whose length is not a multiple of 4", () => {
  const sab = new Uint8Array(new SharedArrayBuffer(1027));
  for (let i = 0; i < sab.length; i++) sab[i] = (i * 7) & 0xff;
  assert.equal(crc32cUpdate(1, sab.subarray(3)), bitwise(CRC32C_POLY, 1, sab.subarray(3)));
  const odd = new Uint8Array(new ArrayBuffer(1023)).fill(0x5a);
  assert.equal(crc32Update(0, odd.subarray(1)), bitwise(CRC32_POLY, 0, odd.subarray(1)));
});

test("A64 value step: CRC32B/H/W/X semantics (low bytes of the value, LSB first, no inversion)", () => {
  const sizes: CrcValueBytes[] = [1, 2, 4, 8];
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(...sizes),
      (acc, lo, hi, bytes) => {
        assert.equal(crc32Value(acc, lo, hi, bytes), bitwiseValue(CRC32_POLY, acc, lo, hi, bytes));
        assert.equal(crc32cValue(acc, lo, hi, bytes), bitwiseValue(CRC32C_POLY, acc, lo, hi, bytes));
      },
    ),
    { numRuns: 2000 },
  );
  // Bits above the operand size are ignored.
  assert.equal(crc32Value(0, 0xffffff00, 0xffffffff, 1), crc32Value(0, 0, 0, 1));
  assert.equal(crc32cValue(7, 0xabcd1234, 0xffffffff, 2), crc32cValue(7, 0x1234, 0, 2));
  // A classic identity: the step over "1234" with inversion by hand.
  const w = 0x34333231; // "1234" little-endian
  assert.equal((crc32cValue(0xffffffff, w, 0, 4) ^ 0xffffffff) >>> 0, crc32c([ascii("1234")]));
});

test("A64 CRC32CX / CRC32B through the instruction decoder", async () => {
  const { runWords } = await import("./support/snippet.ts");
  // crc32cx w0, w1, x2 = 0x9ac25c20 ; crc32b w3, w4, w5 = 0x1ac54083
  const { cpu } = runWords([0x9ac25c20, 0x1ac54083], (c) => {
    c.r[2] = 0xffffffff;
    c.r[3] = 0xdeadbeef; // high half of X1: must be ignored (W operand)
    c.r[4] = 0x34333231;
    c.r[5] = 0x38373635;
    c.r[8] = 0x12345678;
    c.r[9] = 0xffffffff;
    c.r[10] = 0x1ff;
  });
  assert.equal(cpu.r[0], crc32cValue(0xffffffff, 0x34333231, 0x38373635, 8));
  assert.equal(cpu.r[0], bitwise(CRC32C_POLY, 0xffffffff, ascii("12345678")));
  assert.equal(cpu.r[1], 0);
  assert.equal(cpu.r[6], bitwiseValue(CRC32_POLY, 0x12345678, 0xff, 0, 1));
  assert.equal(cpu.r[7], 0);
});
