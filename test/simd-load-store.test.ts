/**
 * AdvSIMD structure loads/stores: hand-computed cases, and the behaviour a differential
 * run against qemu-aarch64 cannot show (faults part-way, SCTLR.A, SP alignment, MMIO
 * element sizes, the FP access trap). Vector and memory contents are written as hex in
 * memory (byte) order: byte 0 first.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu } from "../src/arch/arm64/cpu.ts";
import { getDecoder } from "../src/arch/arm64/isa.ts";
import { createVmMemory, I, OFF, RAM_OFFSET } from "../src/arch/arm64/state.ts";
import { sysregIndex } from "../src/arch/arm64/sysregs.ts";
import { PageTables } from "./support/pagetables.ts";
import { DATA_BASE, runWords } from "./support/snippet.ts";

const RAM_END = 1 << 20;

function setV(c: Cpu, n: number, hex: string): void {
  const b = Buffer.from(hex.padEnd(32, "0"), "hex");
  c.r8.set(b, OFF.V + 16 * n);
}
function getV(c: Cpu, n: number): string {
  return Buffer.from(c.r8.subarray(OFF.V + 16 * n, OFF.V + 16 * n + 16)).toString("hex");
}
function setMem(c: Cpu, addr: number, bytes: Uint8Array | number[]): void {
  c.m8.set(bytes, RAM_OFFSET + addr);
}
function getMem(c: Cpu, addr: number, n: number): string {
  return Buffer.from(c.m8.subarray(RAM_OFFSET + addr, RAM_OFFSET + addr + n)).toString("hex");
}
const iota = (n: number, from = 0) => Array.from({ length: n }, (_, i) => (from + i) & 0xff);
const hexOf = (a: number[]) => Buffer.from(a).toString("hex");
const BRK = { kind: "exception", ec: 0x3c, iss: 0, far: null };

test("LD1 {v0.16b} and ST1 copy 16 bytes", () => {
  const { cpu, exit } = runWords([0x4c407000, 0x4c007020], (c) => {
    setMem(c, DATA_BASE, iota(16, 0x10));
    c.setX(0, BigInt(DATA_BASE));
    c.setX(1, BigInt(DATA_BASE + 0x100));
  });
  assert.deepEqual(exit, BRK);
  assert.equal(getV(cpu, 0), hexOf(iota(16, 0x10)));
  assert.equal(getMem(cpu, DATA_BASE + 0x100, 16), hexOf(iota(16, 0x10)));
});

test("LD4 {v0.4s-v3.4s} de-interleaves 32-bit elements", () => {
  const { cpu } = runWords([0x4c400800], (c) => {
    setMem(c, DATA_BASE, iota(64));
    c.setX(0, BigInt(DATA_BASE));
  });
  // Structure j = words 4j..4j+3; register s gets word 4j+s as element j.
  for (let s = 0; s < 4; s++) {
    const want = [0, 1, 2, 3].flatMap((j) => iota(4, 16 * j + 4 * s));
    assert.equal(getV(cpu, s), hexOf(want), `v${s}`);
  }
});

test("LD3 {v4.8b-v6.8b} (Q=0) clears the upper halves", () => {
  const { cpu } = runWords([0x0c404004], (c) => {
    setMem(c, DATA_BASE, iota(24));
    for (const n of [4, 5, 6]) setV(c, n, "ff".repeat(16));
    c.setX(0, BigInt(DATA_BASE));
  });
  for (let s = 0; s < 3; s++) {
    const want = iota(8).map((j) => 3 * j + s);
    assert.equal(getV(cpu, 4 + s), hexOf(want) + "00".repeat(8));
  }
});

test("LD1 {v1.h}[3] writes one lane and keeps the rest", () => {
  const { cpu } = runWords([0x0d405801], (c) => {
    setMem(c, DATA_BASE, [0xab, 0xcd]);
    setV(c, 1, "ee".repeat(16));
    c.setX(0, BigInt(DATA_BASE));
  });
  assert.equal(getV(cpu, 1), "ee".repeat(6) + "abcd" + "ee".repeat(8));
});

test("LD2R {v0.8h, v1.8h} replicates; LD1R {v2.2s} post-index #4 clears the top", () => {
  const { cpu } = runWords([0x4d60c400, 0x0ddfc802], (c) => {
    setMem(c, DATA_BASE, [1, 2, 3, 4, 5, 6, 7, 8]);
    setV(c, 2, "ff".repeat(16));
    c.setX(0, BigInt(DATA_BASE));
  });
  assert.equal(getV(cpu, 0), "0102".repeat(8));
  assert.equal(getV(cpu, 1), "0304".repeat(8));
  assert.equal(getV(cpu, 2), "01020304".repeat(2) + "00".repeat(8));
  assert.equal(cpu.getX(0), BigInt(DATA_BASE + 4));
});

test("post-index by immediate, by register, and by the base register itself", () => {
  for (const [w, x2, want] of [
    [0x4cdfac00, 0n, DATA_BASE + 32],
    [0x4cc2ac00, 0xfffffffffffffff0n, DATA_BASE - 16],
    [0x4cc0ac00, 0n, 2 * DATA_BASE],
  ] as const) {
    const { cpu } = runWords([w], (c) => {
      setMem(c, DATA_BASE, iota(32));
      c.setX(0, BigInt(DATA_BASE));
      c.setX(2, x2);
    });
    assert.equal(cpu.getX(0), BigInt(want), w.toString(16));
    assert.equal(getV(cpu, 0) + getV(cpu, 1), hexOf(iota(32)));
  }
});

test("register lists wrap from V31 to V0", () => {
  const { cpu } = runWords([0x4c40001e], (c) => {
    setMem(c, DATA_BASE, iota(64));
    c.setX(0, BigInt(DATA_BASE));
  });
  const regs = [30, 31, 0, 1];
  for (const [s, n] of regs.entries()) {
    assert.equal(getV(cpu, n), hexOf(iota(16).map((j) => 4 * j + s)), `v${n}`);
  }
});

test("single-structure LD4 to lane 15 and ST3 from lane 1 with post-index", () => {
  const { cpu } = runWords([0x4dff3c00, 0x0d83b005], (c) => {
    setMem(c, DATA_BASE, [0xa0, 0xa1, 0xa2, 0xa3]);
    setV(c, 5, "00000000" + "11111111");
    setV(c, 6, "00000000" + "22222222");
    setV(c, 7, "00000000" + "33333333");
    c.setX(0, BigInt(DATA_BASE));
    c.setX(3, 100n);
  });
  for (let s = 0; s < 4; s++) assert.equal(getV(cpu, s).slice(30), (0xa0 + s).toString(16));
  // ST3 stored at DATA_BASE + 4 (after the LD4's post-index), then added X3.
  assert.equal(getMem(cpu, DATA_BASE + 4, 12), "111111112222222233333333");
  assert.equal(cpu.getX(0), BigInt(DATA_BASE + 4 + 100));
});

test("SP as base: aligned works, misaligned is an SP alignment fault (SCTLR_EL1.SA0)", () => {
  const ok = runWords([0x4c4073e0], (c) => {
    setMem(c, DATA_BASE, iota(16, 0x40));
    c.r[I.SP_EL0] = DATA_BASE;
  });
  assert.deepEqual(ok.exit, BRK);
  assert.equal(getV(ok.cpu, 0), hexOf(iota(16, 0x40)));
  const bad = runWords([0x4c4073e0], (c) => {
    c.r[I.SP_EL0] = DATA_BASE + 8;
  });
  assert.equal(bad.exit.kind, "exception");
  assert.equal((bad.exit as { ec: number }).ec, 0x26);
  assert.equal(bad.cpu.pc, 0x10000n);
});

test("a load that faults part-way changes no register", () => {
  // LD4 {v0.16b-v3.16b} of 64 bytes starting 32 bytes before the end of RAM.
  const base = RAM_END - 32;
  const { cpu, exit } = runWords([0x4cdf0000], (c) => {
    for (let n = 0; n < 4; n++) setV(c, n, "5a".repeat(16));
    c.setX(0, BigInt(base));
  });
  assert.equal(exit.kind, "exception");
  const e = exit as { ec: number; iss: number; far: bigint };
  assert.equal(e.ec, 0x24);
  assert.equal(e.iss & 0x40, 0, "WnR clear for a load");
  assert.equal(e.far, BigInt(RAM_END));
  for (let n = 0; n < 4; n++) assert.equal(getV(cpu, n), "5a".repeat(16));
  assert.equal(cpu.getX(0), BigInt(base), "no writeback");
  assert.equal(cpu.pc, 0x10000n);
});

test("a store that faults part-way keeps the base register", () => {
  // ST4 {v0.16b-v3.16b}, [x0], #64 — 32 bytes fit, the 33rd faults.
  const base = RAM_END - 32;
  const { cpu, exit } = runWords([0x4c9f0000], (c) => {
    for (let n = 0; n < 4; n++) setV(c, n, hexOf(iota(16, 16 * n)));
    c.setX(0, BigInt(base));
  });
  const e = exit as { ec: number; iss: number; far: bigint };
  assert.equal(e.ec, 0x24);
  assert.equal(e.iss & 0x40, 0x40, "WnR set for a store");
  assert.equal(e.far, BigInt(RAM_END));
  assert.equal(cpu.getX(0), BigInt(base));
  // Memory order: v0[0], v1[0], v2[0], v3[0], v0[1] ...
  assert.equal(getMem(cpu, base, 4), "00102030");
});

test("SCTLR_EL1.A checks each element's alignment, not the whole transfer", () => {
  const sctlr = sysregIndex("SCTLR_EL1");
  const run = (addr: number, w: number) =>
    runWords([w], (c) => {
      c.r[sctlr] = c.r[sctlr]! | 2;
      setMem(c, DATA_BASE, iota(64));
      c.setX(0, BigInt(addr));
    });
  // LD1 {v0.4s}: 4-byte elements.
  assert.deepEqual(run(DATA_BASE + 4, 0x4c407800).exit, BRK);
  const bad = run(DATA_BASE + 2, 0x4c407800);
  assert.equal((bad.exit as { ec: number }).ec, 0x24);
  assert.equal((bad.exit as { iss: number }).iss & 0x3f, 0x21);
  assert.equal((bad.exit as { far: bigint }).far, BigInt(DATA_BASE + 2));
  // Byte elements are never misaligned.
  assert.deepEqual(run(DATA_BASE + 3, 0x4c407000).exit, BRK);
  // ST1 {v0.d}[1] needs 8-byte alignment.
  assert.equal((run(DATA_BASE + 4, 0x4d008400).exit as { ec: number }).ec, 0x24);
});

test("outside RAM each element is one MMIO access of the element size", () => {
  const log: string[] = [];
  const MMIO = 0x0900_0000;
  const memory = createVmMemory(1 << 20);
  const cpu = new Cpu({
    memory,
    index: 0,
    userMode: true,
    bus: {
      ramBase: 0,
      ramSize: 1 << 20,
      mmioRead: (pa, size) => {
        log.push(`r${size}@${(pa - MMIO).toString(16)}`);
        return size === 2 ? 0x1100 + (pa - MMIO) : 0;
      },
      mmioWrite: (pa, size, v) => {
        log.push(`w${size}@${(pa - MMIO).toString(16)}=${v.toString(16)}`);
        return true;
      },
    },
  });
  const { exit } = runWords(
    [0x4c407400, 0x4c007400],
    (c) => {
      c.setX(0, BigInt(MMIO));
    },
    cpu,
  );
  assert.deepEqual(exit, BRK);
  const reads = [0, 2, 4, 6, 8, 10, 12, 14];
  assert.deepEqual(log, [
    ...reads.map((o) => `r2@${o.toString(16)}`),
    ...reads.map((o) => `w2@${o.toString(16)}=${(0x1100 + o).toString(16)}`),
  ]);
});

test("LD1 {v0.1d-v2.1d}: three 64-bit registers", () => {
  const { cpu } = runWords([0x0c406c00], (c) => {
    setMem(c, DATA_BASE, iota(24));
    c.setX(0, BigInt(DATA_BASE));
  });
  for (let n = 0; n < 3; n++) assert.equal(getV(cpu, n), hexOf(iota(8, 8 * n)) + "00".repeat(8));
});

test("FP/SIMD access trap at EL1 when CPACR_EL1.FPEN = 0", () => {
  const memory = createVmMemory(1 << 20);
  const cpu = new Cpu({ memory, index: 0, bus: { ramBase: 0, ramSize: 1 << 20 } });
  const vbar = sysregIndex("VBAR_EL1");
  const { exit } = runWords(
    [0x4c407000],
    (c) => {
      c.r[vbar] = 0x40000;
      // Current EL with SP_ELx, synchronous: HVC #0 ends the run there.
      c.dv.setUint32(RAM_OFFSET + 0x40200, 0xd4000002, true);
      c.setX(0, BigInt(DATA_BASE));
      setV(c, 0, "77".repeat(16));
    },
    cpu,
  );
  assert.equal(exit.kind, "hvc");
  assert.equal(cpu.r[sysregIndex("ESR_EL1")]! >>> 26, 0x07);
  assert.equal(getV(cpu, 0), "77".repeat(16));
});

test("reserved structure load/store encodings are unallocated", () => {
  const d = getDecoder();
  const reserved = [
    0x0c408c00, // ld2 {.1d} (size=11, Q=0, more than one element per structure)
    0x0c401000, // multiple-structure opcode 0001
    0x0c417000, // no-offset form with bits 20:16 non-zero
    0x0d404400, // ld1 {.h}[] with size<0> = 1
    0x0d408800, // ld1 {.s}[] with size = 10
    0x0d409400, // ld1 {.d}[] with S = 1
    0x0d00c000, // "st1r" (replicate with L = 0)
    0x0d40d000, // ld1r with S = 1
  ];
  for (const w of reserved) assert.equal(d.nameOf(w), null, w.toString(16));
  assert.equal(d.nameOf(0x4d40c400), "LD1R"); // ld1r {v0.8h}, [x0]
  assert.equal(d.nameOf(0x0d408400), "LD1 (single structure, 64-bit)"); // ld1 {v0.d}[0], [x0]
});

test("with the MMU on: a run inside one page loads as a block; across pages the fault on the second page leaves every register unchanged", () => {
  // VA = PA for 0x0..0x2ffff (EL0 read/write); 0x30000 unmapped.
  const mapLow = (c: Cpu) => {
    const pt = new PageTables(c, { tableArea: 0x80000 });
    for (let p = 0; p < 0x30000; p += 0x1000) pt.map(BigInt(p), p);
    pt.enable();
  };
  // LD1 {v0.16b-v3.16b}, [x0]: 64 bytes.
  const inPage = runWords([0x4c402000], (c) => {
    mapLow(c);
    setMem(c, 0x2f000, iota(64));
    c.setX(0, 0x2f000n);
  });
  assert.deepEqual(inPage.exit, BRK);
  assert.equal(getV(inPage.cpu, 3), hexOf(iota(16, 48)));
  const across = runWords([0x4c402000], (c) => {
    mapLow(c);
    for (let n = 0; n < 4; n++) setV(c, n, "33".repeat(16));
    c.setX(0, 0x30000n - 32n);
  });
  const e = across.exit as { ec: number; iss: number; far: bigint };
  assert.equal(e.ec, 0x24);
  assert.equal(e.iss & 0x3f, 0x07, "translation fault, level 3");
  assert.equal(e.far, 0x30000n);
  for (let n = 0; n < 4; n++) assert.equal(getV(across.cpu, n), "33".repeat(16));
});
