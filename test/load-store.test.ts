/**
 * Integer and SIMD&FP loads/stores, exclusives, acquire/release and LSE atomics.
 * Every encoding below was produced by aarch64-linux-gnu-as (see the key) and the
 * CONSTRAINED UNPREDICTABLE cases were checked against qemu-aarch64 7.2.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Cpu } from "../src/arch/arm64/cpu.ts";
import { getDecoder } from "../src/arch/arm64/isa.ts";
import { I, OFF, RAM_OFFSET } from "../src/arch/arm64/state.ts";
import { CODE_BASE, DATA_BASE, runWords, type Snippet } from "./support/snippet.ts";

/** Encodings from `aarch64-linux-gnu-as -march=armv8.4-a+lse+rcpc` + objdump. */
const E = {
  "ldrb w1, [x0, #1]": 0x39400401,
  "ldrh w1, [x0, #2]": 0x79400401,
  "ldr w1, [x0, #4]": 0xb9400401,
  "ldr x1, [x0, #8]": 0xf9400401,
  "ldrsb w1, [x0, #1]": 0x39c00401,
  "ldrsb x1, [x0, #1]": 0x39800401,
  "ldrsh w1, [x0, #2]": 0x79c00401,
  "ldrsh x1, [x0, #2]": 0x79800401,
  "ldrsw x1, [x0, #4]": 0xb9800401,
  "strb w1, [x0, #1]": 0x39000401,
  "strh w1, [x0, #2]": 0x79000401,
  "str w1, [x0, #4]": 0xb9000401,
  "str x1, [x0, #8]": 0xf9000401,
  "str xzr, [x0]": 0xf900001f,
  "ldr xzr, [x0]": 0xf940001f,
  "ldr x1, [sp, #16]": 0xf9400be1,
  "str x1, [sp, #-16]!": 0xf81f0fe1,
  "ldur x1, [x0, #-8]": 0xf85f8001,
  "ldur w1, [x0, #3]": 0xb8403001,
  "ldursb x1, [x0, #-1]": 0x389ff001,
  "ldursh w1, [x0, #-2]": 0x78dfe001,
  "ldursw x1, [x0, #-4]": 0xb89fc001,
  "stur x1, [x0, #-8]": 0xf81f8001,
  "sturb w1, [x0, #-1]": 0x381ff001,
  "sturh w1, [x0, #-3]": 0x781fd001,
  "ldr x1, [x0, #8]!": 0xf8408c01,
  "ldr x1, [x0], #8": 0xf8408401,
  "ldrsb x1, [x0, #-1]!": 0x389ffc01,
  "ldrh w1, [x0], #-2": 0x785fe401,
  "str w1, [x0, #-4]!": 0xb81fcc01,
  "str x1, [x0], #16": 0xf8010401,
  "ldr x0, [x0], #8": 0xf8408400,
  "str x0, [x0, #8]!": 0xf8008c00,
  "ldtr x1, [x0, #8]": 0xf8408801,
  "ldtrb w1, [x0, #-1]": 0x385ff801,
  "ldtrsh x1, [x0, #2]": 0x78802801,
  "ldtrsw x1, [x0, #4]": 0xb8804801,
  "sttr w1, [x0, #4]": 0xb8004801,
  "sttrh w1, [x0, #2]": 0x78002801,
  "ldr x1, [x0, x2]": 0xf8626801,
  "ldr x1, [x0, x2, lsl #3]": 0xf8627801,
  "ldr w1, [x0, w2, uxtw]": 0xb8624801,
  "ldr w1, [x0, w2, uxtw #2]": 0xb8625801,
  "ldrsw x1, [x0, w2, sxtw #2]": 0xb8a2d801,
  "ldrh w1, [x0, x2, sxtx #1]": 0x7862f801,
  "ldrsb w1, [x0, x2]": 0x38e26801,
  "strb w1, [x0, w2, sxtw]": 0x3822c801,
  "str x1, [x0, x2, lsl #3]": 0xf8227801,
  "ldr q1, [x0, x2, lsl #4]": 0x3ce27801,
  "ldr x1, .+16": 0x58000081,
  "ldr w1, .+16": 0x18000081,
  "ldrsw x1, .+16": 0x98000081,
  "ldr s1, .+16": 0x1c000081,
  "ldr d1, .+16": 0x5c000081,
  "ldr q1, .+16": 0x9c000081,
  "ldr x1, .-8": 0x58ffffc1,
  "prfm pldl1keep, .+16": 0xd8000080,
  "prfm pldl1keep, [x0, #8]": 0xf9800400,
  "prfm pstl2strm, [x0, x2]": 0xf8a26813,
  "prfum pldl1keep, [x0, #-1]": 0xf89ff000,
  "prfm #0x1f, [x0]": 0xf980001f,
  "ldp x1, x2, [x0, #16]": 0xa9410801,
  "ldp w1, w2, [x0, #-8]": 0x297f0801,
  "ldpsw x1, x2, [x0, #8]": 0x69410801,
  "ldp x1, x2, [x0, #16]!": 0xa9c10801,
  "ldp x1, x2, [x0], #-16": 0xa8ff0801,
  "stp x1, x2, [x0, #16]": 0xa9010801,
  "stp w1, w2, [x0, #8]!": 0x29810801,
  "stp x1, x2, [x0], #16": 0xa8810801,
  "stp x29, x30, [sp, #-16]!": 0xa9bf7bfd,
  "ldnp x1, x2, [x0, #16]": 0xa8410801,
  "stnp w1, w2, [x0, #8]": 0x28010801,
  "ldpsw x1, x2, [x0], #8": 0x68c10801,
  "ldp x0, x0, [x1]": 0xa9400020,
  "ldp s1, s2, [x0, #4]": 0x2d408801,
  "ldp d1, d2, [x0, #8]!": 0x6dc08801,
  "ldp q1, q2, [x0], #32": 0xacc10801,
  "stp q1, q2, [x0, #32]": 0xad010801,
  "stp s1, s2, [x0]": 0x2d000801,
  "ldnp d1, d2, [x0]": 0x6c400801,
  "ldr b1, [x0, #1]": 0x3d400401,
  "ldr h1, [x0, #2]": 0x7d400401,
  "ldr s1, [x0, #4]": 0xbd400401,
  "ldr d1, [x0, #8]": 0xfd400401,
  "ldr q1, [x0, #16]": 0x3dc00401,
  "str b1, [x0, #1]": 0x3d000401,
  "str h1, [x0, #2]": 0x7d000401,
  "str s1, [x0, #4]": 0xbd000401,
  "str d1, [x0, #8]": 0xfd000401,
  "str q1, [x0, #16]": 0x3d800401,
  "ldur q1, [x0, #-1]": 0x3cdff001,
  "ldr q1, [x0, #16]!": 0x3cc10c01,
  "str d1, [x0], #-8": 0xfc1f8401,
  "ldxr x1, [x0]": 0xc85f7c01,
  "ldxr w1, [x0]": 0x885f7c01,
  "ldxrb w1, [x0]": 0x085f7c01,
  "ldxrh w1, [x0]": 0x485f7c01,
  "ldaxr x1, [x0]": 0xc85ffc01,
  "stxr w3, x1, [x0]": 0xc8037c01,
  "stxr w3, w1, [x0]": 0x88037c01,
  "stxrb w3, w1, [x0]": 0x08037c01,
  "stxrh w3, w1, [x0]": 0x48037c01,
  "stlxr w3, x1, [x0]": 0xc803fc01,
  "ldxp x1, x2, [x0]": 0xc87f0801,
  "ldxp w1, w2, [x0]": 0x887f0801,
  "ldaxp x1, x2, [x0]": 0xc87f8801,
  "stxp w3, x1, x2, [x0]": 0xc8230801,
  "stxp w3, w1, w2, [x0]": 0x88230801,
  "stlxp w3, x1, x2, [x0]": 0xc8238801,
  "ldar x1, [x0]": 0xc8dffc01,
  "ldar w1, [x0]": 0x88dffc01,
  "ldarb w1, [x0]": 0x08dffc01,
  "ldarh w1, [x0]": 0x48dffc01,
  "stlr x1, [x0]": 0xc89ffc01,
  "stlr w1, [x0]": 0x889ffc01,
  "stlrb w1, [x0]": 0x089ffc01,
  "stlrh w1, [x0]": 0x489ffc01,
  "ldlar x1, [x0]": 0xc8df7c01,
  "stllr w1, [x0]": 0x889f7c01,
  "ldapr x1, [x0]": 0xf8bfc001,
  "ldaprb w1, [x0]": 0x38bfc001,
  "cas x1, x2, [x0]": 0xc8a17c02,
  "casa w1, w2, [x0]": 0x88e17c02,
  "casl w1, w2, [x0]": 0x88a1fc02,
  "casal x1, x2, [x0]": 0xc8e1fc02,
  "casb w1, w2, [x0]": 0x08a17c02,
  "cash w1, w2, [x0]": 0x48a17c02,
  "casab w1, w2, [x0]": 0x08e17c02,
  "casp x2, x3, x4, x5, [x0]": 0x48227c04,
  "casp w2, w3, w4, w5, [x0]": 0x08227c04,
  "caspal x2, x3, x4, x5, [x0]": 0x4862fc04,
  "swp x1, x2, [x0]": 0xf8218002,
  "swpb w1, w2, [x0]": 0x38218002,
  "swpal w1, w2, [x0]": 0xb8e18002,
  "ldadd x1, x2, [x0]": 0xf8210002,
  "ldadd w1, w2, [x0]": 0xb8210002,
  "ldaddb w1, w2, [x0]": 0x38210002,
  "ldaddh w1, w2, [x0]": 0x78210002,
  "ldaddal x1, x2, [x0]": 0xf8e10002,
  "ldclr x1, x2, [x0]": 0xf8211002,
  "ldeor w1, w2, [x0]": 0xb8212002,
  "ldset x1, x2, [x0]": 0xf8213002,
  "ldsmax x1, x2, [x0]": 0xf8214002,
  "ldsmax w1, w2, [x0]": 0xb8214002,
  "ldsmaxb w1, w2, [x0]": 0x38214002,
  "ldsmin x1, x2, [x0]": 0xf8215002,
  "ldsminh w1, w2, [x0]": 0x78215002,
  "ldumax x1, x2, [x0]": 0xf8216002,
  "ldumaxb w1, w2, [x0]": 0x38216002,
  "ldumin w1, w2, [x0]": 0xb8217002,
  "lduminh w1, w2, [x0]": 0x78217002,
  "stadd x1, [x0]": 0xf821001f,
  "staddl w1, [x0]": 0xb861001f,
  "stsetb w1, [x0]": 0x3821301f,
  "ldclrh w1, w2, [x0]": 0x78211002,
  "ldeorb w1, w2, [x0]": 0x38212002,
} as const;
type Asm = keyof typeof E;

const D = BigInt(DATA_BASE);
const M64 = (1n << 64n) - 1n;

function run(asm: Asm[], setup?: (c: Cpu) => void): Snippet {
  return runWords(
    asm.map((a) => E[a]),
    setup,
  );
}
/** Asserts the snippet ran to its final BRK (no fault on the way). */
function completed(s: Snippet, n: number): void {
  assert.equal(
    s.cpu.pc,
    BigInt(CODE_BASE + 4 * n),
    `stopped early: ${JSON.stringify(s.exit, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v))}`,
  );
}
/** Asserts the snippet stopped on instruction `i` with a data abort of fault status `fsc`. */
function aborted(s: Snippet, i: number, fsc: number, far?: bigint): void {
  assert.equal(s.exit.kind, "exception");
  if (s.exit.kind !== "exception") return;
  assert.equal(s.exit.ec, 0x24, `ec ${s.exit.ec.toString(16)}`);
  assert.equal(s.exit.iss & 0x3f, fsc);
  if (far !== undefined) assert.equal(s.exit.far, far);
  assert.equal(s.cpu.pc, BigInt(CODE_BASE + 4 * i));
}
function undef(s: Snippet): void {
  assert.equal(s.exit.kind, "exception");
  if (s.exit.kind === "exception") assert.equal(s.exit.ec, 0);
  assert.equal(s.cpu.pc, BigInt(CODE_BASE));
}
const w64 = (c: Cpu, a: bigint, v: bigint) =>
  c.dv.setBigUint64(RAM_OFFSET + Number(a), BigInt.asUintN(64, v), true);
const r64 = (c: Cpu, a: bigint) => c.dv.getBigUint64(RAM_OFFSET + Number(a), true);
const r32 = (c: Cpu, a: bigint) => c.dv.getUint32(RAM_OFFSET + Number(a), true);
const r8 = (c: Cpu, a: bigint) => c.dv.getUint8(RAM_OFFSET + Number(a));
const x = (c: Cpu, n: number) => c.getX(n);
const setX = (c: Cpu, n: number, v: bigint) => c.setX(n, BigInt.asUintN(64, v));
/** Vn as a 128-bit unsigned BigInt. */
function getV(c: Cpu, n: number): bigint {
  const o = OFF.V + 16 * n;
  return (c.dvState.getBigUint64(o + 8, true) << 64n) | c.dvState.getBigUint64(o, true);
}
function setV(c: Cpu, n: number, v: bigint): void {
  const o = OFF.V + 16 * n;
  c.dvState.setBigUint64(o, v & M64, true);
  c.dvState.setBigUint64(o + 8, (v >> 64n) & M64, true);
}
const ALL_ONES_128 = (1n << 128n) - 1n;
/** 16 distinct bytes 0x10..0x1f starting at DATA_BASE, then 0x20..0x2f, ... (256 bytes). */
function fill(c: Cpu): void {
  for (let i = 0; i < 256; i++) c.dv.setUint8(RAM_OFFSET + DATA_BASE + i, (0x10 + i) & 0xff);
}
/** Little-endian value of `n` bytes of the fill pattern at DATA_BASE + off. */
function pat(off: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt((0x10 + off + i) & 0xff);
  return v;
}

test("every encoding in the key decodes to a load/store pattern", () => {
  const d = getDecoder();
  const undefined_ = new Set(["ldlar x1, [x0]", "stllr w1, [x0]"]); // FEAT_LOR not implemented
  for (const [asm, w] of Object.entries(E)) if (!undefined_.has(asm)) assert.notEqual(d.nameOf(w), null, asm);
});

test("LDR/STR unsigned offset: sizes, zero and sign extension", () => {
  const s = run(
    ["ldrb w1, [x0, #1]", "ldrh w1, [x0, #2]", "ldr w1, [x0, #4]", "ldr x1, [x0, #8]", "ldrsb x1, [x0, #1]"],
    (c) => {
      fill(c);
      setX(c, 0, D);
      setX(c, 1, M64);
    },
  );
  completed(s, 5);
  assert.equal(x(s.cpu, 1), pat(1, 1)); // 0x11: positive, sign extension gives the same
  const loads: [Asm, bigint, bigint][] = [
    ["ldrb w1, [x0, #1]", 0x80n, 0x80n],
    ["ldrh w1, [x0, #2]", 0x8001n, 0x8001n],
    ["ldr w1, [x0, #4]", 0x80000001n, 0x80000001n],
    ["ldr x1, [x0, #8]", 0x8000000000000001n, 0x8000000000000001n],
    ["ldrsb w1, [x0, #1]", 0x80n, 0xffffff80n],
    ["ldrsb x1, [x0, #1]", 0x80n, 0xffffffffffffff80n],
    ["ldrsh w1, [x0, #2]", 0x8001n, 0xffff8001n],
    ["ldrsh x1, [x0, #2]", 0x8001n, 0xffffffffffff8001n],
    ["ldrsw x1, [x0, #4]", 0x80000001n, 0xffffffff80000001n],
    ["ldrsb w1, [x0, #1]", 0x7fn, 0x7fn],
    ["ldrsw x1, [x0, #4]", 0x7fffffffn, 0x7fffffffn],
  ];
  for (const [asm, mem, want] of loads) {
    const off = Number(/#(\d+)/.exec(asm)![1]);
    const t = run([asm], (c) => {
      w64(c, D + BigInt(off), mem);
      setX(c, 0, D);
      setX(c, 1, M64); // W loads must clear the high half
    });
    completed(t, 1);
    assert.equal(x(t.cpu, 1), want, asm);
  }
  const st = run(["strb w1, [x0, #1]", "strh w1, [x0, #2]", "str w1, [x0, #4]", "str x1, [x0, #8]"], (c) => {
    setX(c, 0, D);
    setX(c, 1, 0x8877665544332211n);
  });
  completed(st, 4);
  assert.equal(r64(st.cpu, D), 0x4433221122111100n); // 00 11 | 11 22 | 11 22 33 44
  assert.equal(r64(st.cpu, D + 8n), 0x8877665544332211n);
});

test("XZR as Rt and SP as base", () => {
  const s = run(["str xzr, [x0]", "ldr xzr, [x0]", "str x1, [sp, #-16]!", "ldr x1, [sp, #16]"], (c) => {
    w64(c, D, -1n);
    w64(c, D + 0x110n, 0x1234n);
    setX(c, 0, D);
    setX(c, 1, 0x55n);
    c.r[I.SP_EL0] = DATA_BASE + 0x100;
  });
  completed(s, 4);
  assert.equal(r64(s.cpu, D), 0n);
  assert.equal(r64(s.cpu, D + 0xf0n), 0x55n);
  assert.equal(s.cpu.r[I.SP_EL0], DATA_BASE + 0xf0);
  assert.equal(x(s.cpu, 1), 0n); // [sp+16] = D+0x100 (never written: zero)
  assert.equal(x(s.cpu, 31), 0n);
});

test("LDUR/STUR unscaled, negative and unaligned offsets", () => {
  const one = (asm: Asm) => {
    const t = run([asm], (c) => {
      fill(c);
      setX(c, 0, D + 0x80n);
      setX(c, 1, M64);
    });
    completed(t, 1);
    assert.equal(x(t.cpu, 0), D + 0x80n);
    return x(t.cpu, 1);
  };
  assert.equal(one("ldur x1, [x0, #-8]"), pat(0x78, 8));
  assert.equal(one("ldur w1, [x0, #3]"), pat(0x83, 4));
  assert.equal(one("ldursb x1, [x0, #-1]"), BigInt.asUintN(64, BigInt.asIntN(8, pat(0x7f, 1))));
  assert.equal(one("ldursh w1, [x0, #-2]"), BigInt.asUintN(32, BigInt.asIntN(16, pat(0x7e, 2))));
  assert.equal(one("ldursw x1, [x0, #-4]"), BigInt.asUintN(64, BigInt.asIntN(32, pat(0x7c, 4))));
  const st = run(["stur x1, [x0, #-8]", "sturb w1, [x0, #-1]", "sturh w1, [x0, #-3]"], (c) => {
    setX(c, 0, D + 0x80n);
    setX(c, 1, 0x8877665544332211n);
  });
  completed(st, 3);
  // stur x1 writes 78..7f = 11 22 33 44 55 66 77 88; sturb 7f = 11; sturh 7d..7e = 11 22
  assert.equal(r64(st.cpu, D + 0x78n), 0x1122115544332211n);
});

test("pre/post-index writeback", () => {
  const cases: [Asm, bigint, bigint][] = [
    // [insn, expected x1, expected x0 after]; x0 starts at D+0x80
    ["ldr x1, [x0, #8]!", pat(0x88, 8), D + 0x88n],
    ["ldr x1, [x0], #8", pat(0x80, 8), D + 0x88n],
    ["ldrsb x1, [x0, #-1]!", BigInt.asUintN(64, BigInt.asIntN(8, pat(0x7f, 1))), D + 0x7fn],
    ["ldrh w1, [x0], #-2", pat(0x80, 2), D + 0x7en],
  ];
  for (const [asm, v1, v0] of cases) {
    const t = run([asm], (c) => {
      fill(c);
      setX(c, 0, D + 0x80n);
    });
    completed(t, 1);
    assert.equal(x(t.cpu, 1), v1, asm);
    assert.equal(x(t.cpu, 0), v0, asm);
  }
  const st = run(["str w1, [x0, #-4]!", "str x1, [x0], #16"], (c) => {
    setX(c, 0, D + 0x80n);
    setX(c, 1, 0x1122334455667788n);
  });
  completed(st, 2);
  assert.equal(r32(st.cpu, D + 0x7cn), 0x55667788);
  assert.equal(r64(st.cpu, D + 0x7cn), 0x1122334455667788n);
  assert.equal(x(st.cpu, 0), D + 0x8cn);
});

test("writeback with Rn == Rt behaves as qemu-aarch64", () => {
  // Load: the writeback wins.
  const l = run(["ldr x0, [x0], #8"], (c) => {
    fill(c);
    setX(c, 0, D);
  });
  completed(l, 1);
  assert.equal(x(l.cpu, 0), D + 8n);
  // Store: the value stored is Rt before the writeback.
  const s = run(["str x0, [x0, #8]!"], (c) => setX(c, 0, D));
  completed(s, 1);
  assert.equal(x(s.cpu, 0), D + 8n);
  assert.equal(r64(s.cpu, D + 8n), D);
  // LDP Rt == Rt2: the first element wins.
  const p = run(["ldp x0, x0, [x1]"], (c) => {
    fill(c);
    setX(c, 1, D);
  });
  completed(p, 1);
  assert.equal(x(p.cpu, 0), pat(0, 8));
});

test("LDTR/STTR unprivileged forms", () => {
  const t = run(["ldtr x1, [x0, #8]"], (c) => {
    fill(c);
    setX(c, 0, D + 0x80n);
  });
  completed(t, 1);
  assert.equal(x(t.cpu, 1), pat(0x88, 8));
  const s = run(["sttr w1, [x0, #4]", "sttrh w1, [x0, #2]", "ldtrb w1, [x0, #-1]"], (c) => {
    fill(c);
    setX(c, 0, D + 0x80n);
    setX(c, 1, 0xaabbccddn);
  });
  completed(s, 3);
  assert.equal(r32(s.cpu, D + 0x84n), 0xaabbccdd);
  assert.equal(r32(s.cpu, D + 0x80n) >>> 16, 0xccdd);
  assert.equal(x(s.cpu, 1), pat(0x7f, 1));
  const sh = run(["ldtrsh x1, [x0, #2]", "ldtrsw x1, [x0, #4]"], (c) => {
    w64(c, D + 0x80n, 0x8000000080000000n);
    setX(c, 0, D + 0x80n);
  });
  completed(sh, 2);
  assert.equal(x(sh.cpu, 1), 0xffffffff80000000n);
});

test("LDR/STR register offset with every extend", () => {
  const one = (asm: Asm, m: bigint): bigint => {
    const t = run([asm], (c) => {
      fill(c);
      setX(c, 0, D + 0x80n);
      setX(c, 2, m);
      setX(c, 1, M64);
    });
    completed(t, 1);
    return x(t.cpu, 1);
  };
  assert.equal(one("ldr x1, [x0, x2]", -8n), pat(0x78, 8));
  assert.equal(one("ldr x1, [x0, x2, lsl #3]", 2n), pat(0x90, 8));
  // UXTW ignores the upper half of X2 and does not sign-extend.
  assert.equal(one("ldr w1, [x0, w2, uxtw]", 0xffffffff00000004n), pat(0x84, 4));
  assert.equal(one("ldr w1, [x0, w2, uxtw #2]", 0x1234_0000_0001n), pat(0x84, 4));
  assert.equal(
    one("ldrsw x1, [x0, w2, sxtw #2]", 0xffffffffn),
    BigInt.asUintN(64, BigInt.asIntN(32, pat(0x7c, 4))),
  );
  assert.equal(one("ldrh w1, [x0, x2, sxtx #1]", -2n), pat(0x7c, 2));
  assert.equal(one("ldrsb w1, [x0, x2]", 0x7fn), BigInt.asUintN(32, BigInt.asIntN(8, pat(0xff, 1))));
  const q = run(["ldr q1, [x0, x2, lsl #4]"], (c) => {
    fill(c);
    setX(c, 0, D + 0x80n);
    setX(c, 2, -1n);
  });
  completed(q, 1);
  assert.equal(getV(q.cpu, 1), pat(0x70, 16));
  const sb = run(["strb w1, [x0, w2, sxtw]"], (c) => {
    setX(c, 0, D + 0x80n);
    setX(c, 1, 0x0102030405060708n);
    setX(c, 2, 0x12345678fffffff8n); // sxtw: -8
  });
  completed(sb, 1);
  assert.equal(r8(sb.cpu, D + 0x78n), 8);
  const sx = run(["str x1, [x0, x2, lsl #3]"], (c) => {
    setX(c, 0, D + 0x80n);
    setX(c, 1, 0x0102030405060708n);
    setX(c, 2, -2n);
  });
  completed(sx, 1);
  assert.equal(r64(sx.cpu, D + 0x70n), 0x0102030405060708n);
});

test("literal loads are PC-relative; PRFM/PRFUM are no-ops even on unmapped addresses", () => {
  // Each literal load at CODE_BASE reads CODE_BASE + 16 (or - 8).
  const lit = CODE_BASE + 16;
  const one = (asm: Asm): Snippet => {
    const t = run([asm], (c) => {
      c.dv.setBigUint64(RAM_OFFSET + lit, 0xfedcba9887654321n, true);
      c.dv.setBigUint64(RAM_OFFSET + lit + 8, 0x0f0e0d0c0b0a0908n, true);
      c.dv.setBigUint64(RAM_OFFSET + CODE_BASE - 8, 0x1122334455667788n, true);
      setX(c, 1, M64);
      setV(c, 1, ALL_ONES_128);
    });
    completed(t, 1);
    return t;
  };
  assert.equal(x(one("ldr x1, .+16").cpu, 1), 0xfedcba9887654321n);
  assert.equal(x(one("ldr w1, .+16").cpu, 1), 0x87654321n);
  assert.equal(x(one("ldrsw x1, .+16").cpu, 1), 0xffffffff87654321n);
  assert.equal(x(one("ldr x1, .-8").cpu, 1), 0x1122334455667788n);
  assert.equal(getV(one("ldr s1, .+16").cpu, 1), 0x87654321n);
  assert.equal(getV(one("ldr d1, .+16").cpu, 1), 0xfedcba9887654321n);
  assert.equal(getV(one("ldr q1, .+16").cpu, 1), 0x0f0e0d0c0b0a0908fedcba9887654321n);
  for (const p of [
    "prfm pldl1keep, .+16",
    "prfm pldl1keep, [x0, #8]",
    "prfm pstl2strm, [x0, x2]",
    "prfum pldl1keep, [x0, #-1]",
    "prfm #0x1f, [x0]",
  ] as Asm[]) {
    const t = run([p], (c) => {
      setX(c, 0, 0xdead_0000_0000n);
      setX(c, 2, 0x1000n);
    });
    completed(t, 1);
    assert.equal(x(t.cpu, 0), 0xdead_0000_0000n, p);
  }
});

test("LDP/STP/LDPSW/LDNP/STNP in every addressing mode", () => {
  const ld = (asm: Asm): Snippet => {
    const t = run([asm], (c) => {
      fill(c);
      setX(c, 0, D + 0x80n);
    });
    completed(t, 1);
    return t;
  };
  let t = ld("ldp x1, x2, [x0, #16]");
  assert.deepEqual([x(t.cpu, 1), x(t.cpu, 2), x(t.cpu, 0)], [pat(0x90, 8), pat(0x98, 8), D + 0x80n]);
  t = ld("ldp w1, w2, [x0, #-8]");
  assert.deepEqual([x(t.cpu, 1), x(t.cpu, 2)], [pat(0x78, 4), pat(0x7c, 4)]);
  t = ld("ldp x1, x2, [x0, #16]!");
  assert.deepEqual([x(t.cpu, 1), x(t.cpu, 2), x(t.cpu, 0)], [pat(0x90, 8), pat(0x98, 8), D + 0x90n]);
  t = ld("ldp x1, x2, [x0], #-16");
  assert.deepEqual([x(t.cpu, 1), x(t.cpu, 2), x(t.cpu, 0)], [pat(0x80, 8), pat(0x88, 8), D + 0x70n]);
  t = ld("ldnp x1, x2, [x0, #16]");
  assert.deepEqual([x(t.cpu, 1), x(t.cpu, 2)], [pat(0x90, 8), pat(0x98, 8)]);
  const sw = run(["ldpsw x1, x2, [x0, #8]"], (c) => {
    w64(c, D + 0x88n, 0x7fffffff80000000n);
    setX(c, 0, D + 0x80n);
  });
  completed(sw, 1);
  assert.deepEqual([x(sw.cpu, 1), x(sw.cpu, 2)], [0xffffffff80000000n, 0x7fffffffn]);
  const swp = run(["ldpsw x1, x2, [x0], #8"], (c) => {
    w64(c, D + 0x80n, 0xfffffffe00000001n);
    setX(c, 0, D + 0x80n);
  });
  completed(swp, 1);
  assert.deepEqual([x(swp.cpu, 1), x(swp.cpu, 2), x(swp.cpu, 0)], [1n, M64 - 1n, D + 0x88n]);

  const st = run(
    ["stp x1, x2, [x0, #16]", "stp w1, w2, [x0, #8]!", "stp x1, x2, [x0], #16", "stnp w1, w2, [x0, #8]"],
    (c) => {
      setX(c, 0, D + 0x80n);
      setX(c, 1, 0x1111111111111111n);
      setX(c, 2, 0x2222222222222222n);
    },
  );
  completed(st, 4);
  // stp x at 0x90; stp w at 0x88 (x0 -> 0x88); stp x at 0x88 (x0 -> 0x98); stnp w at 0xa0
  assert.equal(r64(st.cpu, D + 0x90n), 0x2222222222222222n);
  assert.equal(r64(st.cpu, D + 0x98n), 0x2222222222222222n);
  assert.equal(r64(st.cpu, D + 0x88n), 0x1111111111111111n);
  assert.equal(r64(st.cpu, D + 0xa0n), 0x2222222211111111n);
  assert.equal(x(st.cpu, 0), D + 0x98n);

  const push = run(["stp x29, x30, [sp, #-16]!"], (c) => {
    c.r[I.SP_EL0] = DATA_BASE + 0x40;
    setX(c, 29, 0x29n);
    setX(c, 30, 0x30n);
  });
  completed(push, 1);
  assert.equal(push.cpu.r[I.SP_EL0], DATA_BASE + 0x30);
  assert.equal(r64(push.cpu, D + 0x30n), 0x29n);
  assert.equal(r64(push.cpu, D + 0x38n), 0x30n);
});

test("LDP with writeback and Rn == Rt: the writeback wins (qemu)", () => {
  const t = runWords(
    [0xa8c10821 /* ldp x1, x2, [x1], #16 */, 0xa9c10422 /* ldp x2, x1, [x1, #16]! */],
    (c) => {
      fill(c);
      setX(c, 1, D);
    },
  );
  completed(t, 2);
  assert.equal(x(t.cpu, 1), D + 0x20n);
  assert.equal(x(t.cpu, 2), pat(0x20, 8));
});

test("SIMD&FP LDR/STR/LDP/STP: B/H/S/D/Q, zeroing the rest of the register", () => {
  const one = (asm: Asm): bigint => {
    const t = run([asm], (c) => {
      fill(c);
      setX(c, 0, D + 0x80n);
      setV(c, 1, ALL_ONES_128);
    });
    completed(t, 1);
    return getV(t.cpu, 1);
  };
  assert.equal(one("ldr b1, [x0, #1]"), pat(0x81, 1));
  assert.equal(one("ldr h1, [x0, #2]"), pat(0x82, 2));
  assert.equal(one("ldr s1, [x0, #4]"), pat(0x84, 4));
  assert.equal(one("ldr d1, [x0, #8]"), pat(0x88, 8));
  assert.equal(one("ldr q1, [x0, #16]"), pat(0x90, 16));
  assert.equal(one("ldur q1, [x0, #-1]"), pat(0x7f, 16));
  const V = 0x0f0e0d0c0b0a09080706050403020100n;
  const st = run(
    ["str b1, [x0, #1]", "str h1, [x0, #2]", "str s1, [x0, #4]", "str d1, [x0, #8]", "str q1, [x0, #16]"],
    (c) => {
      setX(c, 0, D);
      setV(c, 1, V);
    },
  );
  completed(st, 5);
  assert.equal(r64(st.cpu, D), 0x0302010001000000n);
  assert.equal(r64(st.cpu, D + 8n), 0x0706050403020100n);
  assert.equal(r64(st.cpu, D + 16n), 0x0706050403020100n);
  assert.equal(r64(st.cpu, D + 24n), 0x0f0e0d0c0b0a0908n);
  const wb = run(["ldr q1, [x0, #16]!", "str d1, [x0], #-8"], (c) => {
    fill(c);
    setX(c, 0, D + 0x80n);
  });
  completed(wb, 2);
  assert.equal(x(wb.cpu, 0), D + 0x88n);
  assert.equal(r64(wb.cpu, D + 0x90n), pat(0x90, 8));
  const pr = run(["ldp s1, s2, [x0, #4]"], (c) => {
    fill(c);
    setX(c, 0, D);
    setV(c, 1, ALL_ONES_128);
    setV(c, 2, ALL_ONES_128);
  });
  completed(pr, 1);
  assert.deepEqual([getV(pr.cpu, 1), getV(pr.cpu, 2)], [pat(4, 4), pat(8, 4)]);
  const pd = run(["ldp d1, d2, [x0, #8]!", "ldnp d1, d2, [x0]"], (c) => {
    fill(c);
    setX(c, 0, D);
  });
  completed(pd, 2);
  assert.equal(x(pd.cpu, 0), D + 8n);
  assert.deepEqual([getV(pd.cpu, 1), getV(pd.cpu, 2)], [pat(8, 8), pat(16, 8)]);
  const pq = run(["ldp q1, q2, [x0], #32", "stp q1, q2, [x0, #32]", "stp s1, s2, [x0]"], (c) => {
    fill(c);
    setX(c, 0, D);
  });
  completed(pq, 3);
  assert.equal(x(pq.cpu, 0), D + 32n);
  assert.deepEqual([getV(pq.cpu, 1), getV(pq.cpu, 2)], [pat(0, 16), pat(16, 16)]);
  assert.equal(r64(pq.cpu, D + 64n), pat(0, 8));
  assert.equal(r64(pq.cpu, D + 88n), pat(24, 8));
  assert.equal(r64(pq.cpu, D + 32n), (pat(16, 4) << 32n) | pat(0, 4));
});

test("faults change no register: single, pair (second half), writeback", () => {
  const BAD = 0x100000n; // just past the 1 MiB of RAM
  const regs = (c: Cpu) => [x(c, 0), x(c, 1), x(c, 2)];
  let t = run(["ldr x1, [x0, #8]!"], (c) => {
    setX(c, 0, BAD);
    setX(c, 1, 7n);
  });
  aborted(t, 0, 0x10, BAD + 8n);
  assert.deepEqual(regs(t.cpu), [BAD, 7n, 0n]);
  // The pair straddles the end of RAM: the first load succeeds, the second faults.
  t = run(["ldp x1, x2, [x0], #-16"], (c) => {
    setX(c, 0, BAD - 8n);
    setX(c, 1, 7n);
    setX(c, 2, 9n);
  });
  aborted(t, 0, 0x10, BAD);
  assert.deepEqual(regs(t.cpu), [BAD - 8n, 7n, 9n]);
  t = run(["ldp q1, q2, [x0], #32"], (c) => {
    setX(c, 0, BAD - 16n);
    setV(c, 1, 5n);
  });
  aborted(t, 0, 0x10, BAD);
  assert.equal(getV(t.cpu, 1), 5n);
  assert.equal(x(t.cpu, 0), BAD - 16n);
  // With stage 1 off a VA below the PA size is a PA: outside RAM and every device, it is
  // an external abort; above the PA size (ID_AA64MMFR0_EL1.PARange) an Address size fault.
  t = run(["str x1, [x0], #16"], (c) => setX(c, 0, 0x1_0000_0000n));
  aborted(t, 0, 0x10);
  assert.equal(x(t.cpu, 0), 0x1_0000_0000n);
  assert.equal(t.exit.kind === "exception" && (t.exit.iss >> 6) & 1, 1); // WnR
  t = run(["str x1, [x0], #16"], (c) => setX(c, 0, 1n << 52n));
  aborted(t, 0, 0x00, 1n << 52n);
  assert.equal(x(t.cpu, 0), 1n << 52n);
});

test("unallocated load/store encodings are UNDEFINED", () => {
  const bad = [
    0xb8800400 | (3 << 22), // size=10 opc=11 (LDRSW to W) post-index
    0xf8e06800 & ~(1 << 14), // LDR (register) option=x0x
    0xfca00400, // SIMD size=11 opc=10 (no 128-bit with size!=00) post-index
    0xf8a00400, // PRFM form in post-index (size=11 opc=10)
    0x3c400800, // LDTR on SIMD&FP (V=1, op=10)
    0xdc000000, // LDR literal V=1 opc=11
    0x68400000, // LDNP opc=01 (no LDNPSW)
    0xe9400000, // pair opc=11
    0x48207c83, // CASP with odd Rt
    0x08a07800, // CAS with Rt2 = 11110
    0x38201000 | (1 << 15) | (1 << 12), // o3=1 opc=001 (unallocated atomic)
  ];
  for (const w of bad) undef(runWords([w]));
});

test("exclusives: LDXR/STXR monitor per Arm ARM B2.9 (all sizes)", () => {
  const sizes: [Asm, Asm, bigint][] = [
    ["ldxr x1, [x0]", "stxr w3, x1, [x0]", M64],
    ["ldxr w1, [x0]", "stxr w3, w1, [x0]", 0xffffffffn],
    ["ldxrb w1, [x0]", "stxrb w3, w1, [x0]", 0xffn],
    ["ldxrh w1, [x0]", "stxrh w3, w1, [x0]", 0xffffn],
  ];
  for (const [ld, st, mask] of sizes) {
    // Load-exclusive then store-exclusive of the same value: succeeds, memory updated, monitor cleared.
    const t = run([ld, st, st], (c) => {
      w64(c, D, 0x8877665544332211n);
      setX(c, 0, D);
      setX(c, 3, M64);
    });
    completed(t, 3);
    assert.equal(x(t.cpu, 1), 0x8877665544332211n & mask, ld);
    assert.equal(x(t.cpu, 3), 1n, `${st}: the second store-exclusive fails (monitor cleared)`);
    assert.equal(t.cpu.r[I.EXCL_VALID], 0);
    // Success status is 0 and the high half of Ws is zeroed.
    const u = run([ld, st], (c) => {
      w64(c, D, 0x8877665544332211n);
      setX(c, 0, D);
      setX(c, 3, M64);
    });
    completed(u, 2);
    assert.equal(x(u.cpu, 3), 0n, st);
  }
  // The store writes the new value (monitor armed as a LDXR of 5 at D would leave it).
  const w = run(["stxr w3, x1, [x0]"], (c) => {
    setX(c, 0, D);
    setX(c, 1, 99n);
    w64(c, D, 5n);
    c.r[I.EXCL_ADDR] = DATA_BASE;
    c.r[I.EXCL_ADDR + 1] = 0;
    c.r[I.EXCL_HOST] = RAM_OFFSET + DATA_BASE; // the monitor tags the location, not the VA
    c.r[I.EXCL_SIZE] = 8;
    c.r[I.EXCL_VALID] = 1;
    c.r[I.EXCL_DATA] = 5;
  });
  completed(w, 1);
  assert.equal(x(w.cpu, 3), 0n);
  assert.equal(r64(w.cpu, D), 99n);
  // Store without a load-exclusive fails and writes nothing.
  const f = run(["stxr w3, x1, [x0]"], (c) => {
    setX(c, 0, D);
    setX(c, 1, 99n);
    w64(c, D, 5n);
  });
  completed(f, 1);
  assert.equal(x(f.cpu, 3), 1n);
  assert.equal(r64(f.cpu, D), 5n);
  // Different address, and different size: fail; then the monitor is gone.
  const d = run(["ldxr x1, [x0]", "stxr w3, w1, [x0]"], (c) => {
    setX(c, 0, D);
  });
  completed(d, 2);
  assert.equal(x(d.cpu, 3), 1n);
  const a = run(["ldxr x1, [x0]", "stlxr w3, x1, [x0]"], (c) => {
    setX(c, 0, D);
    c.r[I.EXCL_VALID] = 0;
  });
  completed(a, 2);
  assert.equal(x(a.cpu, 3), 0n);
  // A monitor cleared in between (as CLREX does) makes the store fail.
  const cl = runWords([E["ldxr x1, [x0]"], E["stxr w3, x1, [x0]"]], (c) => setX(c, 0, D));
  completed(cl, 2);
  assert.equal(x(cl.cpu, 3), 0n);
});

test("exclusives: value changed since the load-exclusive makes the store fail (as qemu)", () => {
  const t = run(["ldxr x1, [x0]", "str x1, [x0, #8]", "stxr w3, x1, [x0]"], (c) => {
    setX(c, 0, D);
    w64(c, D, 5n);
  });
  completed(t, 3);
  assert.equal(x(t.cpu, 3), 0n); // a store elsewhere does not matter
  const u = runWords([E["ldxr x1, [x0]"], E["str xzr, [x0]"], E["stxr w3, x1, [x0]"]], (c) => {
    setX(c, 0, D);
    w64(c, D, 5n);
  });
  completed(u, 3);
  assert.equal(x(u.cpu, 3), 1n);
  assert.equal(r64(u.cpu, D), 0n);
});

test("exclusive pairs: LDXP/STXP W and X, LDAXP/STLXP", () => {
  const t = run(["ldxp x1, x2, [x0]", "stxp w3, x1, x2, [x0]"], (c) => {
    fill(c);
    setX(c, 0, D + 0x10n);
  });
  completed(t, 2);
  assert.deepEqual([x(t.cpu, 1), x(t.cpu, 2), x(t.cpu, 3)], [pat(0x10, 8), pat(0x18, 8), 0n]);
  const w = run(["ldxp w1, w2, [x0]", "stxp w3, w1, w2, [x0]"], (c) => {
    fill(c);
    setX(c, 0, D + 0x8n);
  });
  completed(w, 2);
  assert.deepEqual([x(w.cpu, 1), x(w.cpu, 2), x(w.cpu, 3)], [pat(8, 4), pat(12, 4), 0n]);
  const s = runWords(
    [E["ldaxp x1, x2, [x0]"], 0x9100_0421 /* add x1, x1, #1 */, E["stlxp w3, x1, x2, [x0]"]],
    (c) => {
      setX(c, 0, D);
      w64(c, D, 41n);
      w64(c, D + 8n, 7n);
    },
  );
  // add may not be implemented by the time this runs; check only what is ours.
  if (s.cpu.pc === BigInt(CODE_BASE + 12)) {
    assert.equal(x(s.cpu, 3), 0n);
    assert.equal(r64(s.cpu, D), 42n);
  }
  // Pair alignment is the total size: an X pair at an 8-aligned address faults.
  const al = run(["ldxp x1, x2, [x0]"], (c) => {
    setX(c, 0, D + 8n);
    setX(c, 1, 3n);
  });
  aborted(al, 0, 0x21, D + 8n);
  assert.equal(x(al.cpu, 1), 3n);
  assert.equal(al.cpu.r[I.EXCL_VALID], 0);
  const alw = run(["stxp w3, w1, w2, [x0]"], (c) => setX(c, 0, D + 4n));
  aborted(alw, 0, 0x21, D + 4n);
  assert.equal(alw.exit.kind === "exception" && (alw.exit.iss >> 6) & 1, 1);
  // Different-size pair store fails.
  const ds = run(["ldxp w1, w2, [x0]", "stxp w3, x1, x2, [x0]"], (c) => setX(c, 0, D));
  completed(ds, 2);
  assert.equal(x(ds.cpu, 3), 1n);
});

test("exclusives, acquire/release and atomics require alignment", () => {
  for (const asm of [
    "ldxr x1, [x0]",
    "ldxrh w1, [x0]",
    "stxr w3, w1, [x0]",
    "ldar x1, [x0]",
    "stlrh w1, [x0]",
    "ldapr x1, [x0]",
    "cas x1, x2, [x0]",
    "casp w2, w3, w4, w5, [x0]",
    "swp x1, x2, [x0]",
    "ldaddh w1, w2, [x0]",
  ] as Asm[]) {
    const t = run([asm], (c) => {
      setX(c, 0, D + 1n);
      setX(c, 2, 0x77n);
      setX(c, 3, 0x77n);
    });
    aborted(t, 0, 0x21, D + 1n);
    assert.deepEqual([x(t.cpu, 1), x(t.cpu, 2), x(t.cpu, 3)], [0n, 0x77n, 0x77n], asm);
  }
  // Byte accesses are always aligned.
  completed(
    run(["ldarb w1, [x0]", "stlrb w1, [x0]", "ldaprb w1, [x0]", "ldxrb w1, [x0]"], (c) => setX(c, 0, D + 1n)),
    4,
  );
});

test("LDAR/STLR/LDAPR; LDLAR/STLLR UNDEFINED without FEAT_LOR", () => {
  const t = run(["ldar x1, [x0]", "stlr w1, [x0]"], (c) => {
    fill(c);
    setX(c, 0, D);
  });
  completed(t, 2);
  const one = (asm: Asm): bigint => {
    const u = run([asm], (c) => {
      fill(c);
      setX(c, 0, D + 8n);
      setX(c, 1, M64);
    });
    completed(u, 1);
    return x(u.cpu, 1);
  };
  assert.equal(one("ldar x1, [x0]"), pat(8, 8));
  assert.equal(one("ldar w1, [x0]"), pat(8, 4));
  assert.equal(one("ldarb w1, [x0]"), pat(8, 1));
  assert.equal(one("ldarh w1, [x0]"), pat(8, 2));
  assert.equal(one("ldapr x1, [x0]"), pat(8, 8));
  assert.equal(one("ldaprb w1, [x0]"), pat(8, 1));
  const st = run(["stlr x1, [x0]", "stlr w1, [x0]"], (c) => {
    setX(c, 0, D);
    setX(c, 1, 0x1122334455667788n);
  });
  completed(st, 2);
  const s2 = (asm: Asm): bigint => {
    const u = run([asm], (c) => {
      setX(c, 0, D);
      w64(c, D, M64);
      setX(c, 1, 0x1122334455667788n);
    });
    completed(u, 1);
    return r64(u.cpu, D);
  };
  assert.equal(s2("stlr x1, [x0]"), 0x1122334455667788n);
  assert.equal(s2("stlr w1, [x0]"), 0xffffffff55667788n);
  assert.equal(s2("stlrh w1, [x0]"), 0xffffffffffff7788n);
  assert.equal(s2("stlrb w1, [x0]"), 0xffffffffffffff88n);
  // FEAT_LOR is not advertised (ID_AA64MMFR1_EL1.LO = 0): LDLAR/STLLR are UNDEFINED.
  undef(run(["ldlar x1, [x0]"]));
  undef(run(["stllr w1, [x0]"]));
});

test("CAS family: B/H/W/X, success and failure, Rs gets the old value", () => {
  const one = (asm: Asm, mem: bigint, rs: bigint, rt: bigint) => {
    const t = run([asm], (c) => {
      setX(c, 0, D);
      w64(c, D, mem);
      setX(c, 1, rs);
      setX(c, 2, rt);
    });
    completed(t, 1);
    return [x(t.cpu, 1), r64(t.cpu, D)];
  };
  const MEM = 0x8877665544332211n;
  assert.deepEqual(one("cas x1, x2, [x0]", MEM, MEM, 7n), [MEM, 7n]);
  assert.deepEqual(one("cas x1, x2, [x0]", MEM, MEM + 1n, 7n), [MEM, MEM]);
  assert.deepEqual(one("casal x1, x2, [x0]", MEM, MEM, M64), [MEM, M64]);
  // W: compares the low 32 bits only; Rs written as a W register.
  assert.deepEqual(one("casa w1, w2, [x0]", MEM, 0xffffffff44332211n, 0xaaaaaaaabbbbbbbbn), [
    0x44332211n,
    0x88776655bbbbbbbbn,
  ]);
  assert.deepEqual(one("casl w1, w2, [x0]", MEM, 0x44332212n, 0n), [0x44332211n, MEM]);
  assert.deepEqual(one("casb w1, w2, [x0]", MEM, 0x1211n, 0x1234n), [0x11n, 0x8877665544332234n]);
  assert.deepEqual(one("casab w1, w2, [x0]", MEM, 0x12n, 0x1234n), [0x11n, MEM]);
  assert.deepEqual(one("cash w1, w2, [x0]", MEM, 0xffff2211n, 0xabcdn), [0x2211n, 0x887766554433abcdn]);
});

test("CASP family: W and X pairs", () => {
  const x2 = (mem0: bigint, mem1: bigint, s0: bigint, s1: bigint) => {
    const t = run(["casp x2, x3, x4, x5, [x0]"], (c) => {
      setX(c, 0, D);
      w64(c, D, mem0);
      w64(c, D + 8n, mem1);
      setX(c, 2, s0);
      setX(c, 3, s1);
      setX(c, 4, 0x44n);
      setX(c, 5, 0x55n);
    });
    completed(t, 1);
    return [x(t.cpu, 2), x(t.cpu, 3), r64(t.cpu, D), r64(t.cpu, D + 8n)];
  };
  assert.deepEqual(x2(10n, 11n, 10n, 11n), [10n, 11n, 0x44n, 0x55n]);
  assert.deepEqual(x2(10n, 11n, 10n, 12n), [10n, 11n, 10n, 11n]);
  const w = (s0: bigint, s1: bigint) => {
    const t = run(["casp w2, w3, w4, w5, [x0]"], (c) => {
      setX(c, 0, D);
      w64(c, D, 0x0000000b0000000an);
      setX(c, 2, s0);
      setX(c, 3, s1);
      setX(c, 4, 0xffffffff00000044n);
      setX(c, 5, 0x55n);
    });
    completed(t, 1);
    return [x(t.cpu, 2), x(t.cpu, 3), r64(t.cpu, D)];
  };
  assert.deepEqual(w(0xffff00000000000an, 0xbn), [0xan, 0xbn, 0x0000005500000044n]);
  assert.deepEqual(w(0xan, 0xcn), [0xan, 0xbn, 0x0000000b0000000an]);
  const al = run(["caspal x2, x3, x4, x5, [x0]"], (c) => setX(c, 0, D + 8n));
  aborted(al, 0, 0x21, D + 8n);
});

test("SWP and LD<op> (all operations, sizes and signedness), ST<op> aliases", () => {
  const one = (asm: Asm, mem: bigint, rs: bigint): [bigint, bigint] => {
    const t = run([asm], (c) => {
      setX(c, 0, D);
      w64(c, D, mem);
      setX(c, 1, rs);
      setX(c, 2, M64);
    });
    completed(t, 1);
    return [x(t.cpu, 2), r64(t.cpu, D)];
  };
  const MEM = 0x8000000000000005n;
  const cases: [Asm, bigint, bigint, bigint, bigint][] = [
    // asm, memory, Rs, expected Rt (old), expected memory
    ["swp x1, x2, [x0]", MEM, 9n, MEM, 9n],
    ["swpb w1, w2, [x0]", MEM, 0x1ffn, 5n, 0x80000000000000ffn],
    ["swpal w1, w2, [x0]", 0x1122334455667788n, 0xaabbccddeeff0011n, 0x55667788n, 0x11223344eeff0011n],
    ["ldadd x1, x2, [x0]", 0xffffffffffffffffn, 2n, M64, 1n],
    ["ldadd x1, x2, [x0]", 0x00000000ffffffffn, 1n, 0xffffffffn, 0x100000000n],
    ["ldadd w1, w2, [x0]", 0x12345678ffffffffn, 2n, 0xffffffffn, 0x1234567800000001n],
    ["ldaddb w1, w2, [x0]", 0x12345678000000ffn, 2n, 0xffn, 0x1234567800000001n],
    ["ldaddh w1, w2, [x0]", 0x1234567800ffffffn, 0x10001n, 0xffffn, 0x1234567800ff0000n],
    ["ldaddal x1, x2, [x0]", 5n, -6n, 5n, M64],
    ["ldclr x1, x2, [x0]", 0xffn, 0x0fn, 0xffn, 0xf0n],
    ["ldclrh w1, w2, [x0]", 0xffffn, 0xf00fn, 0xffffn, 0x0ff0n],
    ["ldeor w1, w2, [x0]", 0xff00ff00_0000ffffn, 0xffffffffn, 0xffffn, 0xff00ff00ffff0000n],
    ["ldeorb w1, w2, [x0]", 0x0fn, 0xffn, 0x0fn, 0xf0n],
    ["ldset x1, x2, [x0]", 0xf0n, 0x0f00000000000000n, 0xf0n, 0x0f000000000000f0n],
    ["ldsmax x1, x2, [x0]", MEM, 1n, MEM, 1n], // MEM is negative
    ["ldsmax x1, x2, [x0]", 1n, MEM, 1n, 1n],
    ["ldsmax x1, x2, [x0]", 0x100000000n, 0xffffffffn, 0x100000000n, 0x100000000n],
    ["ldsmax w1, w2, [x0]", 0x80000000n, 0x7fffffffn, 0x80000000n, 0x7fffffffn],
    ["ldsmaxb w1, w2, [x0]", 0x80n, 0x7fn, 0x80n, 0x7fn],
    ["ldsmaxb w1, w2, [x0]", 0x7fn, 0x180n, 0x7fn, 0x7fn],
    ["ldsmin x1, x2, [x0]", 1n, MEM, 1n, MEM],
    [
      "ldsmin x1, x2, [x0]",
      0xffffffff00000000n,
      0x00000000ffffffffn,
      0xffffffff00000000n,
      0xffffffff00000000n,
    ],
    ["ldsminh w1, w2, [x0]", 0x7fffn, 0x8000n, 0x7fffn, 0x8000n],
    ["ldumax x1, x2, [x0]", 1n, MEM, 1n, MEM],
    ["ldumax x1, x2, [x0]", 0x100000000n, 0xffffffffn, 0x100000000n, 0x100000000n],
    ["ldumaxb w1, w2, [x0]", 0x7fn, 0x80n, 0x7fn, 0x80n],
    ["ldumin w1, w2, [x0]", 0x80000000n, 0x7fffffffn, 0x80000000n, 0x7fffffffn],
    ["lduminh w1, w2, [x0]", 0x8000n, 0x17fffn, 0x8000n, 0x7fffn],
  ];
  for (const [asm, mem, rs, rt, after] of cases) {
    assert.deepEqual(one(asm, mem, rs), [rt, after], `${asm} mem=${mem.toString(16)} rs=${rs.toString(16)}`);
  }
  // ST<op> aliases: Rt = XZR, memory updated, no register written.
  const st = run(["stadd x1, [x0]", "staddl w1, [x0]", "stsetb w1, [x0]"], (c) => {
    setX(c, 0, D);
    w64(c, D, 0x100n);
    setX(c, 1, 0x80000001n);
  });
  completed(st, 3);
  // 0x100 + 0x80000001 = 0x80000101; +W 0x80000001 wraps in 32 bits: 0x102; |B 1: 0x103
  assert.equal(r64(st.cpu, D), 0x103n);
  assert.deepEqual([x(st.cpu, 0), x(st.cpu, 1)], [D, 0x80000001n]);
});
