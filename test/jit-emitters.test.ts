/**
 * The translator's emitters (jit/emit.ts, jit/emit-simd.ts) against the interpreter, whose
 * semantics the recorded qemu-aarch64 vectors prove: every case runs once interpreted
 * and once translated (threshold 1), from the same random state, and must end in the
 * same registers, flags, FPSR, memory and outcome; on ordinary operands the translated
 * case must not have run the instruction's executor (the emitter did it).
 *
 * The recorded vectors draw FPCR at random, so they seldom reach the FP fast paths (round
 * to nearest, FZ = DN = 0); here FPCR is mostly zero and the operands are drawn around
 * every boundary the fast paths test (zeros, subnormals, the edges of the normal range and
 * of the error-free transforms' ranges, infinities, NaNs) as well as the small integers
 * and fractions of ordinary code. Integer operands include 0, -1, 1 and the sign bits.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu } from "../src/arch/arm64/cpu.ts";
import { getDecoder } from "../src/arch/arm64/isa.ts";
import { EMITTED_NAMES } from "../src/arch/arm64/jit/translate.ts";
import { createVmMemory, I, RAM_OFFSET } from "../src/arch/arm64/state.ts";
import { sysregIndex } from "../src/arch/arm64/sysregs.ts";
import { ArmboxRunner } from "../tools/difftest/armbox-runner.ts";
import { hex } from "../tools/difftest/delta.ts";
import { type Case, type CaseResult, WINDOW, WINDOW_SIZE } from "../tools/difftest/layout.ts";
import { Rng } from "../tools/difftest/prng.ts";

const interp = new ArmboxRunner();
const jit = new ArmboxRunner({ threshold: 1, batch: 1, countFallbacks: true });

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** A double drawn from the classes the fast paths must tell apart. */
function double(r: Rng, simple: boolean): number {
  const sign = r.chance(0.5) ? -1 : 1;
  if (simple) return r.chance(0.5) ? r.range(-20, 20) : (sign * r.range(0, 4096)) / 2 ** r.range(0, 12);
  switch (r.int(12)) {
    case 0:
      return sign * 0;
    case 1:
      return sign * Number.POSITIVE_INFINITY;
    case 2:
      u32[1] = r.chance(0.5) ? 0x7ff80000 : 0x7ff00000 | r.bits(19) | 1;
      u32[0] = r.u32();
      return f64[0]!;
    case 3:
      return sign * r.u32() * 2 ** -1074; // subnormal (or just above)
    case 4:
      return sign * (1 + r.u32() / 2 ** 32) * 2 ** r.range(-1024, -1018); // around MIN_NORMAL
    case 5:
      return sign * (1 + r.u32() / 2 ** 32) * 2 ** r.range(1018, 1023); // around MAX
    case 6:
      return sign * (1 + r.u32() / 2 ** 32) * 2 ** r.range(-964, -956); // prodSafe's low edge
    case 7:
      return sign * (1 + r.u32() / 2 ** 32) * 2 ** r.range(990, 998); // prodSafe's high edge
    case 8:
      return sign * (1 + r.u32() / 2 ** 32) * 2 ** r.range(-60, 60);
    case 9:
      u32[1] = r.u32();
      u32[0] = r.u32();
      return f64[0]!;
    default:
      return double(r, true);
  }
}

/** A 32-bit half of an X register: random, or one of the values at the edges. */
function xHalf(r: Rng): number {
  return r.chance(0.5) ? r.u32() : [0, 0xffffffff, 1, 0x80000000, 0x7fffffff, 0xff, 0x8000][r.int(7)]!;
}

function makeCase(r: Rng, words: number[], simple: boolean, fpcrZero: boolean): Case {
  const x = new Uint32Array(62);
  for (let i = 0; i < 62; i++) x[i] = xHalf(r);
  const v = new Uint8Array(512);
  const dv = new DataView(v.buffer);
  for (let i = 0; i < 64; i++) dv.setFloat64(i * 8, double(r, simple), true);
  const mem = new Uint8Array(WINDOW_SIZE);
  for (let i = 0; i < WINDOW_SIZE; i += 8) {
    f64[0] = double(r, simple);
    mem.set(new Uint8Array(f64.buffer), i);
  }
  // X2: a base inside the window (misaligned now and then), or in the unmapped page 0
  // (whose VA[31:12] is 0, as the TLB's invalid tag once was); X4: a small index.
  x[4] = r.chance(0.1) ? r.int(4096) : WINDOW + 1024 + (r.chance(0.8) ? r.int(128) * 16 : r.int(2048));
  x[5] = 0;
  x[8] = r.int(64);
  x[9] = 0;
  const rmode = r.int(4);
  const fpcr = fpcrZero ? 0 : ((r.int(2) << 25) | (r.int(2) << 24) | (rmode << 22)) >>> 0;
  const fpsr = r.chance(0.5) ? 0 : r.chance(0.5) ? 0x10 : r.bits(5) | (r.bits(1) << 7);
  return { cls: "jit-emitters", seed: 0, words, state: { x, v, nzcv: r.bits(4) << 28, fpcr, fpsr, mem } };
}

function differences(a: CaseResult, b: CaseResult): string[] {
  const d: string[] = [];
  if (a.outcome !== b.outcome || a.pcIndex !== b.pcIndex)
    d.push(`outcome ${a.outcome}@${a.pcIndex} vs ${b.outcome}@${b.pcIndex}`);
  for (let i = 0; i < 62; i++)
    if (a.x[i] !== b.x[i]) d.push(`x[${i}] ${hex(a.x[i]!, 8)} vs ${hex(b.x[i]!, 8)}`);
  for (let i = 0; i < 512; i += 8) {
    const [p, q] = [Buffer.from(a.v.subarray(i, i + 8)), Buffer.from(b.v.subarray(i, i + 8))];
    if (!p.equals(q)) d.push(`V${i >> 4}.d[${(i >> 3) & 1}] ${p.toString("hex")} vs ${q.toString("hex")}`);
  }
  if (a.fpsr !== b.fpsr) d.push(`fpsr ${hex(a.fpsr, 8)} vs ${hex(b.fpsr, 8)}`);
  if (a.nzcv !== b.nzcv) d.push(`nzcv ${hex(a.nzcv, 8)} vs ${hex(b.nzcv, 8)}`);
  if (!Buffer.from(a.mem).equals(Buffer.from(b.mem))) d.push("memory differs");
  return d;
}

const reg = (r: Rng) => r.int(8);

/** Double-precision arithmetic with the emitters of jit/emit-simd.ts. */
const ARITH: [string, (r: Rng) => number][] = [
  ["FMUL d", (r) => 0x1e600800 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
  ["FADD d", (r) => 0x1e602800 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
  ["FSUB d", (r) => 0x1e603800 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
  ["FNMUL d", (r) => 0x1e608800 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
  ["FMADD d", (r) => 0x1f400000 | (reg(r) << 16) | (reg(r) << 10) | (reg(r) << 5) | reg(r)],
  ["FMSUB d", (r) => 0x1f408000 | (reg(r) << 16) | (reg(r) << 10) | (reg(r) << 5) | reg(r)],
  ["FNMADD d", (r) => 0x1f600000 | (reg(r) << 16) | (reg(r) << 10) | (reg(r) << 5) | reg(r)],
  ["FNMSUB d", (r) => 0x1f608000 | (reg(r) << 16) | (reg(r) << 10) | (reg(r) << 5) | reg(r)],
  ["FADD 2d", (r) => 0x4e60d400 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
  ["FSUB 2d", (r) => 0x4ee0d400 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
  ["FMUL 2d", (r) => 0x6e60dc00 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
  ["FMLA 2d", (r) => 0x4e60cc00 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
  ["FMLS 2d", (r) => 0x4ee0cc00 | (reg(r) << 16) | (reg(r) << 5) | reg(r)],
];

/** SIMD&FP loads and stores (base X2, index X4). */
const MEMORY: [string, (r: Rng) => number][] = [
  // LDR/STR (unsigned offset), size:opc for B, H, S, D, Q.
  ...(
    [
      [0, 0],
      [1, 0],
      [2, 0],
      [3, 0],
      [0, 2],
    ] as const
  ).flatMap(([size, opc]): [string, (r: Rng) => number][] => [
    [
      `LDR/STR ${size}:${opc} [x2, #imm]`,
      (r) => (size << 30) | 0x3d000000 | ((opc | r.int(2)) << 22) | (r.int(16) << 10) | (2 << 5) | reg(r),
    ],
    [
      `LDUR/STUR/pre/post ${size}:${opc}`,
      (r) =>
        (size << 30) |
        0x3c000000 |
        ((opc | r.int(2)) << 22) |
        ((r.range(-256, 255) & 0x1ff) << 12) |
        ([0, 1, 3][r.int(3)]! << 10) |
        (2 << 5) |
        reg(r),
    ],
    [
      `LDR/STR ${size}:${opc} [x2, x4, lsl]`,
      (r) =>
        (size << 30) |
        0x3c200800 |
        ((opc | r.int(2)) << 22) |
        (4 << 16) |
        ([3, 7][r.int(2)]! << 13) |
        (r.int(2) << 12) |
        (2 << 5) |
        reg(r),
    ],
  ]),
  ...[0, 1, 2].map((opc): [string, (r: Rng) => number] => [
    `LDP/STP ${opc}`,
    (r) =>
      (opc << 30) |
      0x2c000000 |
      ([0, 1, 2, 3][r.int(4)]! << 23) |
      (r.int(2) << 22) |
      ((r.range(-16, 15) & 0x7f) << 15) |
      (reg(r) << 10) |
      (2 << 5) |
      reg(r),
  ]),
  ["LD1R", (r) => 0x0d40c000 | (r.int(2) << 30) | (r.int(4) << 10) | (2 << 5) | reg(r)],
  [
    "LD1R post",
    (r) => 0x0dc0c000 | (r.int(2) << 30) | ([4, 31][r.int(2)]! << 16) | (r.int(4) << 10) | (2 << 5) | reg(r),
  ],
];

function check(
  name: string,
  gen: (r: Rng) => number,
  cases: number,
  seed: number,
  mustBeFast: boolean,
  prefix: number[] = [],
): void {
  const r = new Rng(seed);
  const bad: string[] = [];
  let slow = 0;
  for (let k = 0; k < cases; k++) {
    const simple = mustBeFast || r.chance(0.3);
    const word = gen(r) >>> 0;
    // mov x7, sp after it: SP is not among the registers a case result holds.
    const c = makeCase(r, [...prefix, word, 0x910003e7], simple, mustBeFast || r.chance(0.8));
    const before = jit.cpu.jit!.fallbacks!.get(word) ?? 0;
    const d = differences(interp.run(c), jit.run(c));
    if ((jit.cpu.jit!.fallbacks!.get(word) ?? 0) !== before) slow++;
    if (d.length > 0 && bad.length < 4) bad.push(`${hex(word, 8)}: ${d.slice(0, 4).join("; ")}`);
  }
  assert.deepEqual(bad, [], `${name}: translated differs from interpreted`);
  if (mustBeFast) assert.equal(slow, 0, `${name}: ${slow} of ${cases} simple cases ran the executor`);
}

test("translated double-precision arithmetic equals the interpreter's, at every boundary", () => {
  ARITH.forEach(([name, gen], i) => {
    check(name, gen, 1500, 0x5eed0000 + i, false);
  });
});

/**
 * The same instructions in the other precisions and arrangements (single and half scalar,
 * 4S and 2S vectors), which share the double-precision forms' names in the decode table
 * and must be declined by their emitters (the executor runs them).
 */
const OTHER_PRECISIONS: [string, (r: Rng) => number][] = [
  [
    "FADD/FSUB/FMUL/FNMUL s, h",
    (r) =>
      [0x1e200800, 0x1ee00800][r.int(2)]! |
      ([0, 2, 3, 8][r.int(4)]! << 12) |
      (reg(r) << 16) |
      (reg(r) << 5) |
      reg(r),
  ],
  [
    "FMADD/FMSUB/FNMADD/FNMSUB s",
    (r) =>
      0x1f000000 |
      (r.int(2) << 21) |
      (r.int(2) << 15) |
      (reg(r) << 16) |
      (reg(r) << 10) |
      (reg(r) << 5) |
      reg(r),
  ],
  [
    "FADD/FSUB/FMUL/FMLA/FMLS 4s, 2s, 1d",
    (r) =>
      ([0x4e20d400, 0x4ea0d400, 0x6e20dc00, 0x4e20cc00, 0x4ea0cc00][r.int(5)]! & ~(r.int(2) << 30)) |
      (reg(r) << 16) |
      (reg(r) << 5) |
      reg(r) |
      (r.chance(0.2) ? 0x0040_0000 : 0),
  ],
];

test("translated FP arithmetic of the other precisions equals the interpreter's", () => {
  OTHER_PRECISIONS.forEach(([name, gen], i) => {
    check(name, gen, 1000, 0x5eed0100 + i, false);
  });
});

test("translated double-precision arithmetic takes the fast path on ordinary operands", () => {
  ARITH.forEach(([name, gen], i) => {
    check(name, gen, 100, 0xfa570000 + i, true);
  });
});

test("translated SIMD&FP loads and stores equal the interpreter's", () => {
  MEMORY.forEach(([name, gen], i) => {
    check(name, gen, 400, 0x10ad0000 + i, false);
  });
});

const gpr = (r: Rng) => (r.chance(0.1) ? 31 : r.int(8));
const sf = (r: Rng) => r.int(2) << 31;

/** The integer instructions of jit/emit.ts that the recorded vectors cover least. */
const INTEGER: [string, (r: Rng) => number][] = [
  [
    "LSLV/LSRV/ASRV/RORV",
    (r) => sf(r) | 0x1ac02000 | (gpr(r) << 16) | (r.int(4) << 10) | (gpr(r) << 5) | gpr(r),
  ],
  // RBIT, REV16, REV (W) / REV32, REV (X), CLZ, CLS; opc 3 with sf 0 is unallocated.
  [
    "RBIT/REV16/REV/REV32/CLZ/CLS",
    (r) =>
      (r.chance(0.2) ? 0x8000_0000 | (3 << 10) : sf(r) | ([0, 1, 2, 4, 5][r.int(5)]! << 10)) |
      0x5ac00000 |
      (gpr(r) << 5) |
      gpr(r),
  ],
  [
    "CCMP/CCMN",
    (r) =>
      sf(r) |
      (r.int(2) << 30) |
      0x3a400000 |
      (r.int(32) << 16) |
      (r.int(16) << 12) |
      (r.int(2) << 11) |
      (gpr(r) << 5) |
      r.int(16),
  ],
  [
    "ADD/SUB (extended register)",
    (r) =>
      sf(r) |
      (r.int(2) << 30) |
      (r.int(2) << 29) |
      0x0b200000 |
      (gpr(r) << 16) |
      (r.int(8) << 13) |
      (r.int(5) << 10) |
      (gpr(r) << 5) |
      gpr(r),
  ],
  // BFM (BFI, BFXIL; W with immr or imms >= 32 is unallocated), SBFM, UBFM.
  [
    "SBFM/BFM/UBFM",
    (r) => {
      const x64 = r.chance(0.5);
      const lim = x64 && r.chance(0.9) ? 64 : 32;
      return (
        (x64 ? 0x8040_0000 : 0) |
        0x1300_0000 |
        ([0, 1, 1, 2][r.int(4)]! << 29) |
        (r.int(lim) << 16) |
        (r.int(lim) << 10) |
        (gpr(r) << 5) |
        gpr(r)
      );
    },
  ],
  // MADD/MSUB and SMADDL/SMSUBL/UMADDL/UMSUBL (op31 0, 1, 5), and SMULH/UMULH (2, 6).
  [
    "MADD/MADDL/MULH",
    (r) =>
      (r.chance(0.8) ? 0x8000_0000 : 0) |
      0x1b00_0000 |
      ([0, 1, 5, 1, 5, 2, 6][r.int(7)]! << 21) |
      (gpr(r) << 16) |
      (r.int(2) << 15) |
      (gpr(r) << 10) |
      (gpr(r) << 5) |
      gpr(r),
  ],
  // UDIV, SDIV (X0..X7 hold 0, -1 and the sign bits often: zero divisors, MIN / -1).
  ["UDIV/SDIV", (r) => sf(r) | 0x1ac0_0800 | (gpr(r) << 16) | (r.int(2) << 10) | (gpr(r) << 5) | gpr(r)],
  // ADC, SBC, ADCS, SBCS.
  ["ADC/SBC", (r) => sf(r) | (r.int(4) << 29) | 0x1a00_0000 | (gpr(r) << 16) | (gpr(r) << 5) | gpr(r)],
  // LDAR/STLR (B, H, W, X) at X2 (in the window, misaligned now and then, or in page 0) or X4.
  [
    "LDAR/STLR",
    (r) => (r.int(4) << 30) | 0x089f_fc00 | (r.int(2) << 22) | ([2, 2, 4][r.int(3)]! << 5) | gpr(r),
  ],
  // CAS (B, H, W, X; A, L): after ldr x1, [x2], Rs = X1 mostly matches the memory.
  [
    "CAS",
    (r) =>
      (r.int(4) << 30) |
      0x08a0_7c00 |
      (r.int(2) << 22) |
      ([1, 1, gpr(r)][r.int(3)]! << 16) |
      (r.int(2) << 15) |
      ([2, 2, 4][r.int(3)]! << 5) |
      gpr(r),
  ],
  // LD<op> (every opc, emitted or not), SWP, LDAPR; ST<op> with Rt = 31.
  [
    "LD<op>/SWP",
    (r) =>
      (r.int(4) << 30) |
      0x3820_0000 |
      (r.int(4) << 22) |
      (gpr(r) << 16) |
      (r.int(2) << 15) |
      (r.int(8) << 12) |
      ([2, 2, 4][r.int(3)]! << 5) |
      gpr(r),
  ],
  // LDXR/LDAXR at X2 or X4 (alignment and translation faults); STXR alone fails (no monitor).
  ["LDXR", (r) => (r.int(4) << 30) | 0x085f_7c00 | (r.int(2) << 15) | ([2, 2, 4][r.int(3)]! << 5) | gpr(r)],
  [
    "STXR",
    (r) => (r.int(4) << 30) | 0x0800_7c00 | ([3, 31][r.int(2)]! << 16) | (r.int(2) << 15) | (2 << 5) | gpr(r),
  ],
  // DC ZVA: X2 is in the window, or in the unmapped page 0 (a fault), X4 a small index.
  ["DC ZVA", (r) => 0xd50b7420 | [2, 2, 2, 4][r.int(4)]!],
  // MRS of SP_EL0 (a trap at EL0), TPIDR_EL0, TPIDRRO_EL0, NZCV (its executor), DAIF (EL0 trap).
  ["MRS", (r) => [0xd5384100, 0xd53bd040, 0xd53bd060, 0xd53b4200, 0xd53b4220][r.int(5)]! | r.int(8)],
  [
    "PRFM/PRFUM",
    (r) =>
      [
        0xf9800000 | (r.int(4096) << 10),
        0xf8800000 | (r.int(512) << 12),
        0xf8a04800 | (r.int(8) << 16) | (r.int(4) << 13) | (r.int(2) << 12),
      ][r.int(3)]! |
      (gpr(r) << 5) |
      r.int(32),
  ],
];

test("translated integer instructions equal the interpreter's", () => {
  INTEGER.forEach(([name, gen], i) => {
    check(name, gen, 1500, 0x1a70000 + i, false);
  });
});

test("translated integer instructions run no executor", () => {
  // ADCS/SBCS have no emitter.
  const stateful = [
    "MRS",
    "DC ZVA",
    "LDAR/STLR",
    "CAS",
    "LD<op>/SWP",
    "MADD/MADDL/MULH",
    "ADC/SBC",
    "LDXR",
    "STXR",
  ];
  INTEGER.filter(([name]) => !stateful.includes(name)).forEach(([name, gen], i) => {
    check(name, gen, 200, 0x1a7f000 + i, true);
  });
  // DC ZVA's slow path is its executor, and a page's first store after a reset has no TLB
  // write tag: a store to the window (strb wzr, [x2]) goes first. X2 is in the window or
  // in the unmapped page 0, where the store faults before DC ZVA runs.
  check("DC ZVA", () => 0xd50b7422, 200, 0x1a7f0ff, true, [0x3900005f]);
  // The ordered and atomic accesses take the executor for a misaligned address (the
  // alignment fault): and x2, x2, #~15 first, then the store that sets the write tag.
  const aligned = [0x927cec42, 0x3900005f, 0xf9400041];
  const at = (r: Rng, base: number) => base | (r.int(4) << 30) | (2 << 5) | r.int(8);
  // SDIV by -1 (X2): of MIN, the quotient that overflows (MIN, where WebAssembly would
  // trap), and of a random X1; at both widths.
  for (const [w, movMin] of [
    [0x9ac2_0c23, 0xd2f0_0001],
    [0x1ac2_0c23, 0x52b0_0001],
  ] as const) {
    check(`SDIV ${hex(w, 8)} MIN / -1`, () => w, 10, 0x1a7f140, true, [movMin, 0x9280_0002]);
    check(`SDIV ${hex(w, 8)} / -1`, () => w, 50, 0x1a7f141, true, [0x9280_0002]);
  }
  check(
    "MADDL",
    (r) =>
      0x9b20_0000 |
      (r.int(2) << 23) |
      (gpr(r) << 16) |
      (r.int(2) << 15) |
      (gpr(r) << 10) |
      (gpr(r) << 5) |
      gpr(r),
    200,
    0x1a7f103,
    true,
  );
  check(
    "ADC/SBC",
    (r) => sf(r) | (r.int(2) << 30) | 0x1a00_0000 | (gpr(r) << 16) | (gpr(r) << 5) | gpr(r),
    200,
    0x1a7f104,
    true,
  );
  // LDXR then STXR of each size: the monitor passes (or not, when a store to the location
  // came between: strb wzr there), the store happens or not, Ws says which.
  for (let size = 0; size < 4; size++) {
    const ldxr = (size << 30) | 0x085f_7c41; // ldxr{b,h} w1/x1, [x2]
    const stxr = (r: Rng) =>
      (size << 30) | 0x0800_7c40 | (3 << 16) | (r.int(2) << 15) | [4, 1, 31][r.int(3)]!;
    check(`LDXR/STXR ${size}`, stxr, 300, 0x1a7f110 + size, true, [...aligned, ldxr]);
    check(`LDXR/STXR ${size}, a store between`, stxr, 100, 0x1a7f120 + size, false, [
      ...aligned,
      ldxr,
      0x3900005f,
    ]);
    check(
      `LDXR ${size}`,
      (r) => (size << 30) | 0x085f_7c40 | (r.int(2) << 15) | r.int(8),
      100,
      0x1a7f130 + size,
      true,
      aligned,
    );
  }
  check("LDAR/STLR", (r) => at(r, 0x089f_fc00 | (r.int(2) << 22)), 200, 0x1a7f100, true, aligned);
  check(
    "CAS",
    (r) => at(r, 0x08a0_7c00 | (r.int(2) << 22) | (1 << 16) | (r.int(2) << 15)),
    200,
    0x1a7f101,
    true,
    aligned,
  );
  check(
    "LD<op>/SWP",
    (r) => at(r, 0x3820_0000 | (r.int(4) << 22) | (r.int(8) << 16) | ([0, 1, 2, 3, 8][r.int(5)]! << 12)),
    200,
    0x1a7f102,
    true,
    aligned,
  );
});

// At 0x10000: x1 = 400; loop: ldr q2, [x3]; fadd d0, d0, d1; fmla v4.2d, v2.2d, v1.2d;
// subs x1, x1, #1; b.ne loop; brk #0. The EL1 synchronous vectors (VBAR + 0x200 for EL1,
// + 0x400 for EL0): mrs x5, esr_el1; mrs x6, elr_el1; b .
const FP_LOOP = [0xd2803201, 0x3dc00062, 0x1e612800, 0x4e61cc44, 0xf1000421, 0x54ffff81, 0xd4200000];
const VECTOR = [0xd5385205, 0xd5384026, 0x14000000];

/**
 * Lazy NZCV (jit/flags.ts): a flag-setting instruction, pure data processing, and what
 * reads the flags (B.cond, CSEL, CCMP, ADC from their pending operands or from PSTATE) or
 * makes them be written (a load, whose slow path may fault; MRS NZCV, an executor; the
 * block's end), in random sequences. Each B.cond skips the instruction after it.
 */
const FLAG_SETTERS: ((r: Rng) => number)[] = [
  // ADDS/SUBS (immediate; CMP, CMN with Rd = 31), shifted register, ANDS (TST) immediate and register.
  (r) =>
    sf(r) | (r.int(2) << 30) | 0x3100_0000 | (r.int(4096) << 10) | (gpr(r) << 5) | [31, gpr(r)][r.int(2)]!,
  (r) => sf(r) | (r.int(2) << 30) | 0x2b00_0000 | (gpr(r) << 16) | (r.int(8) << 10) | (gpr(r) << 5) | gpr(r),
  (r) => 0xf200_0000 | (0x1000 << 10) | (r.int(64) << 16) | (r.int(63) << 10) | (gpr(r) << 5) | gpr(r),
  (r) => sf(r) | 0x6a00_0000 | (gpr(r) << 16) | (gpr(r) << 5) | gpr(r),
  (r) => sf(r) | 0x7100_0000 | ([0, 1, 0xfff][r.int(3)]! << 10) | (gpr(r) << 5) | 31, // CMP #0, #1, #4095
];
const FLAG_OTHERS: ((r: Rng) => number)[] = [
  (r) => 0x5400_0000 | (2 << 5) | r.int(16), // B.cond .+8
  (r) => sf(r) | 0x1a80_0000 | (gpr(r) << 16) | (r.int(16) << 12) | (r.int(2) << 10) | (gpr(r) << 5) | gpr(r), // CSEL/CSINC
  (r) =>
    sf(r) |
    (r.int(2) << 30) |
    0x3a40_0800 |
    (r.int(32) << 16) |
    (r.int(16) << 12) |
    (gpr(r) << 5) |
    r.int(16), // CCMP imm
  (r) => sf(r) | 0x1a00_0000 | (gpr(r) << 16) | (gpr(r) << 5) | gpr(r), // ADC
  (r) => sf(r) | 0x0b00_0000 | (gpr(r) << 16) | (gpr(r) << 5) | gpr(r), // ADD
  () => 0xf9400041, // ldr x1, [x2]
  (r) => 0xd53b_4200 | r.int(8), // MRS Xt, NZCV
];

test("translated code keeps NZCV lazily and exactly", () => {
  const r = new Rng(0xf1a65);
  const bad: string[] = [];
  for (let k = 0; k < 3000; k++) {
    const words: number[] = [];
    const n = 2 + r.int(5);
    for (let i = 0; i < n; i++) {
      const g = r.chance(0.45)
        ? FLAG_SETTERS[r.int(FLAG_SETTERS.length)]!
        : FLAG_OTHERS[r.int(FLAG_OTHERS.length)]!;
      words.push(g(r) >>> 0);
    }
    const c = makeCase(r, [...words, 0x910003e7], true, true);
    const d = differences(interp.run(c), jit.run(c));
    if (d.length > 0 && bad.length < 4)
      bad.push(`${words.map((w) => hex(w, 8)).join(" ")}: ${d.slice(0, 3).join("; ")}`);
  }
  assert.deepEqual(bad, [], "translated flags differ from interpreted");
});

test("translated SIMD&FP code traps as interpreted when CPACR_EL1.FPEN stops allowing it (EL1 and EL0)", () => {
  const CPACR = sysregIndex("CPACR_EL1");
  const VBAR = sysregIndex("VBAR_EL1");
  for (const el0 of [false, true]) {
    const seen: string[] = [];
    for (const translated of [false, true]) {
      const cpu = new Cpu({
        memory: createVmMemory(1 << 20),
        index: 0,
        bus: { ramBase: 0, ramSize: 1 << 20 },
        ...(translated ? { jit: { threshold: 2, batch: 1 } } : {}),
      });
      const put = (pa: number, words: number[]) =>
        words.forEach((w, i) => {
          cpu.dv.setUint32(RAM_OFFSET + pa + i * 4, w >>> 0, true);
        });
      put(0x10000, FP_LOOP);
      put(0x8200, VECTOR);
      put(0x8400, VECTOR);
      cpu.r[VBAR] = 0x8000;
      cpu.r[CPACR] = 3 << 20; // FPEN 0b11: no trap at EL0 or EL1
      if (el0) {
        cpu.r[I.PSTATE] = 0; // EL0t
        cpu.pstateChanged();
      }
      cpu.setX(3, 0x20000n);
      cpu.pc = 0x10000n;
      cpu.run(1000); // hot: translated from here on
      // EL1: FPEN 0b00 traps EL1 and EL0; EL0: 0b01 traps EL0 only.
      cpu.r[CPACR] = (el0 ? 1 : 0) << 20;
      cpu.run(200);
      seen.push(
        `pc=${cpu.pc.toString(16)} esr=${cpu.getX(5).toString(16)} elr=${cpu.getX(6).toString(16)} x1=${cpu.getX(1)} n=${cpu.instructionCount}`,
      );
      if (translated)
        assert.ok(cpu.jit!.executed > 500, `only ${cpu.jit!.executed} instructions ran translated`);
    }
    assert.equal(seen[1], seen[0], el0 ? "at EL0" : "at EL1");
    // EC 0x07: access to SIMD&FP trapped by CPACR_EL1.FPEN, at the LDR Q of the loop.
    assert.match(seen[0]!, /esr=1e000000 elr=10004 /);
  }
});

test("every emitter is named after an instruction of the decode table", () => {
  const names = new Set(getDecoder().patterns.map((p) => p.name));
  assert.deepEqual(
    EMITTED_NAMES.filter((n) => !names.has(n)),
    [],
  );
});
