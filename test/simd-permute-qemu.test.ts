/**
 * Differential test of the AdvSIMD permute/copy and structure load/store classes against
 * qemu-aarch64 (user mode), run live: random encodings of each class are executed once
 * under QEMU (one static program, one run) and once on armbox from the same initial state,
 * and every X0-X27, V0-V31 and 512 bytes of data memory must agree.
 *
 * Encodings that binutils' disassembler calls undefined must UNDEF on armbox instead.
 * Skipped when aarch64-linux-gnu-gcc or qemu-aarch64 is not installed.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { I, RAM_OFFSET } from "../src/arch/arm64/state.ts";
import { SYNC_TIMEOUT_MS } from "./support/children.ts";
import { DATA_BASE, makeCpu, runWords } from "./support/snippet.ts";

const MEM = 512;
const NX = 28; // X0..X27; X28 is the harness's pointer, X29/X30/SP untouched
const STATE = MEM + NX * 8 + 32 * 16;

function have(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const TOOLS = have("aarch64-linux-gnu-gcc") && have("qemu-aarch64") && have("aarch64-linux-gnu-objdump");

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export interface Case {
  word: number;
  /** Initial state: MEM bytes of data, X0..X27 (8 bytes each, LE), V0..V31. */
  init: Uint8Array;
}

/** Random initial state; `bases` maps X registers to addresses inside the data area. */
function makeInit(rnd: () => number, bases: Map<number, number>, smallBytes: boolean): Uint8Array {
  const s = new Uint8Array(STATE);
  for (let i = 0; i < STATE; i++) s[i] = rnd() & 0xff;
  if (smallBytes) for (let i = MEM + NX * 8; i < STATE; i++) s[i]! &= 0x4f; // TBL indices often in range
  const dv = new DataView(s.buffer);
  for (const [reg, addr] of bases) {
    dv.setUint32(MEM + reg * 8, addr, true);
    dv.setUint32(MEM + reg * 8 + 4, 0, true);
  }
  return s;
}

/** Runs `cases` under qemu-aarch64; returns the final state of each. */
function runQemu(cases: Case[]): Uint8Array[] {
  const dir = mkdtempSync(join(tmpdir(), "armbox-simd-"));
  try {
    const lines: string[] = [
      '.section .scratch,"aw"',
      `data: .space ${MEM}`,
      ".section .rodata",
      ".balign 16",
    ];
    cases.forEach((c, i) => {
      lines.push(`init${i}:`);
      for (let j = 0; j < STATE; j += 16)
        lines.push(`.byte ${Array.from(c.init.subarray(j, j + 16)).join(",")}`);
    });
    lines.push(".bss", ".balign 16", `results: .space ${STATE * cases.length}`, ".text", ".global _start");
    // setup: x28 -> init block. Copies memory, loads V0-V31 then X0-X27.
    lines.push("setup:", "adrp x27, data", "add x27, x27, :lo12:data", `mov x26, #${MEM / 16}`);
    lines.push("1: ldp x0, x1, [x28], #16", "stp x0, x1, [x27], #16", "subs x26, x26, #1", "b.ne 1b");
    lines.push("add x27, x28, #" + NX * 8);
    for (let v = 0; v < 32; v += 4)
      lines.push(`ld1 {v${v}.16b, v${v + 1}.16b, v${v + 2}.16b, v${v + 3}.16b}, [x27], #64`);
    for (let x = 0; x < NX; x += 2) lines.push(`ldp x${x}, x${x + 1}, [x28], #16`);
    lines.push("ret");
    lines.push("_start:");
    cases.forEach((c, i) => {
      lines.push(`adrp x28, init${i}`, `add x28, x28, :lo12:init${i}`, "bl setup");
      lines.push(`.inst 0x${c.word.toString(16)}`);
      // Save the real x27 before dump uses it as a pointer.
      lines.push("mov x28, x27");
      lines.push(`adrp x27, results+${i * STATE}`, `add x27, x27, :lo12:results+${i * STATE}`);
      lines.push(`str x28, [x27, #${MEM + 27 * 8}]`, "mov x28, x27", "bl dump2");
    });
    lines.push("adrp x1, results", "add x1, x1, :lo12:results", `ldr x2, =${STATE * cases.length}`);
    lines.push("mov x0, #1", "mov x8, #64", "svc #0", "mov x0, #0", "mov x8, #93", "svc #0", ".ltorg");
    // dump2: x28 -> result block (its x27 slot already written). Saves X0-X26, V0-V31, memory.
    lines.push("dump2:", "add x27, x28, #" + MEM);
    for (let x = 0; x < NX - 2; x += 2) lines.push(`stp x${x}, x${x + 1}, [x27], #16`);
    lines.push("str x26, [x27]");
    lines.push("add x27, x28, #" + (MEM + NX * 8));
    for (let v = 0; v < 32; v += 4)
      lines.push(`st1 {v${v}.16b, v${v + 1}.16b, v${v + 2}.16b, v${v + 3}.16b}, [x27], #64`);
    lines.push("adrp x0, data", "add x0, x0, :lo12:data", `mov x26, #${MEM / 16}`);
    lines.push("1: ldp x2, x3, [x0], #16", "stp x2, x3, [x28], #16", "subs x26, x26, #1", "b.ne 1b", "ret");
    writeFileSync(join(dir, "t.s"), lines.join("\n") + "\n");
    execFileSync("aarch64-linux-gnu-gcc", [
      "-static",
      "-nostdlib",
      "-Wl,--build-id=none",
      `-Wl,--section-start=.scratch=0x${DATA_BASE.toString(16)}`,
      "-o",
      join(dir, "t"),
      join(dir, "t.s"),
    ]);
    const out = execFileSync("qemu-aarch64", [join(dir, "t")], {
      maxBuffer: 1 << 28,
      timeout: SYNC_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    assert.equal(out.length, STATE * cases.length, "qemu run did not finish (SIGILL on an encoding?)");
    const res: Uint8Array[] = [];
    for (let i = 0; i < cases.length; i++)
      res.push(new Uint8Array(out.buffer, out.byteOffset + i * STATE, STATE));
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** binutils' verdict on each word: mnemonic text, or null when it is undefined. */
function disassemble(words: number[]): (string | null)[] {
  const dir = mkdtempSync(join(tmpdir(), "armbox-dis-"));
  try {
    writeFileSync(join(dir, "d.s"), words.map((w) => `.inst 0x${w.toString(16)}`).join("\n") + "\n");
    execFileSync("aarch64-linux-gnu-as", ["-o", join(dir, "d.o"), join(dir, "d.s")]);
    const text = execFileSync("aarch64-linux-gnu-objdump", ["-d", join(dir, "d.o")], {
      maxBuffer: 1 << 26,
    }).toString();
    const out: (string | null)[] = [];
    for (const line of text.split("\n")) {
      const m = /^\s+[0-9a-f]+:\s+([0-9a-f]{8})\s+(.*)$/.exec(line);
      if (!m) continue;
      const dis = m[2]!.trim();
      out.push(/undefined|^\.inst/.test(dis) ? null : dis);
    }
    assert.equal(out.length, words.length);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cpu = makeCpu();

/** Runs one case on armbox; returns the final state, or the exit if it was not the BRK. */
function runArmbox(k: Case): Uint8Array | string {
  cpu.reset();
  const { exit } = runWords(
    [k.word],
    (c) => {
      c.m8.set(k.init.subarray(0, MEM), RAM_OFFSET + DATA_BASE);
      c.r8.set(k.init.subarray(MEM, MEM + NX * 8), 0);
      c.r8.set(k.init.subarray(MEM + NX * 8), I.V * 4);
    },
    cpu,
  );
  if (exit.kind !== "exception" || exit.ec !== 0x3c)
    return JSON.stringify(exit, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v));
  const s = new Uint8Array(STATE);
  s.set(cpu.m8.subarray(RAM_OFFSET + DATA_BASE, RAM_OFFSET + DATA_BASE + MEM), 0);
  s.set(cpu.r8.subarray(0, NX * 8), MEM);
  s.set(cpu.r8.subarray(I.V * 4, I.V * 4 + 512), MEM + NX * 8);
  return s;
}

function describeDiff(a: Uint8Array, b: Uint8Array): string {
  const parts: string[] = [];
  const name = (i: number) =>
    i < MEM ? `mem+${i}` : i < MEM + NX * 8 ? `x${(i - MEM) >> 3}` : `v${(i - MEM - NX * 8) >> 4}`;
  const seen = new Set<string>();
  for (let i = 0; i < STATE; i++) if (a[i] !== b[i]) seen.add(name(i));
  for (const n of seen) {
    let start: number;
    let len: number;
    if (n.startsWith("mem")) {
      start = Number(n.slice(4)) & ~15;
      len = 16;
    } else if (n.startsWith("x")) {
      start = MEM + Number(n.slice(1)) * 8;
      len = 8;
    } else {
      start = MEM + NX * 8 + Number(n.slice(1)) * 16;
      len = 16;
    }
    const hex = (x: Uint8Array) => Buffer.from(x.subarray(start, start + len)).toString("hex");
    parts.push(`${n}: armbox ${hex(a)} qemu ${hex(b)}`);
    if (parts.length > 6) break;
  }
  return parts.join("; ");
}

/** A class: random encodings to try, and which X registers must hold data addresses. */
export interface ClassSpec {
  name: string;
  count: number;
  gen(rnd: () => number): { word: number; bases: number[] };
  smallBytes?: boolean;
}

/** Returns how many encodings ran under qemu and how many were checked as UNDEF. */
export function runDifferential(spec: ClassSpec, seed: number): { defined: number; undefined: number } {
  const rnd = mulberry32(seed);
  const words: { word: number; bases: number[] }[] = [];
  for (let i = 0; i < spec.count; i++) words.push(spec.gen(rnd));
  const dis = disassemble(words.map((w) => w.word));
  const defined: Case[] = [];
  const failures: string[] = [];
  words.forEach((w, i) => {
    const hex = w.word.toString(16).padStart(8, "0");
    if (dis[i] === null) {
      const r = runArmbox({ word: w.word, init: new Uint8Array(STATE) });
      if (typeof r !== "string" || !r.includes('"ec":0,'))
        failures.push(`${hex} (undefined) did not UNDEF: ${typeof r === "string" ? r : "ran"}`);
      return;
    }
    const bases = new Map<number, number>();
    for (const b of w.bases) bases.set(b, DATA_BASE + 128 + (rnd() & 31));
    defined.push({ word: w.word, init: makeInit(rnd, bases, spec.smallBytes === true && (rnd() & 1) === 0) });
  });
  const ref = defined.length ? runQemu(defined) : [];
  defined.forEach((k, i) => {
    const got = runArmbox(k);
    const hex = k.word.toString(16).padStart(8, "0");
    const name = dis[words.findIndex((w) => w.word === k.word)];
    if (typeof got === "string") failures.push(`${hex} ${name}: ${got}`);
    else if (Buffer.compare(Buffer.from(got), Buffer.from(ref[i]!)) !== 0)
      failures.push(`${hex} ${name}: ${describeDiff(got, ref[i]!)}`);
  });
  assert.deepEqual(
    failures.slice(0, 20),
    [],
    `seed ${seed}: ${failures.length} of ${words.length} ${spec.name} encodings differ`,
  );
  return { defined: defined.length, undefined: words.length - defined.length };
}

/** X registers the harness leaves free (X0-X27). */
const reg = (rnd: () => number) => rnd() % 28;
const vreg = (rnd: () => number) => rnd() % 32;
const bits = (rnd: () => number, n: number) => rnd() & ((1 << n) - 1);

export const PERMUTE_CLASSES: ClassSpec[] = [
  {
    name: "AdvSIMD copy",
    count: 400,
    gen: (rnd) => {
      const q = bits(rnd, 1);
      const op = rnd() % 4 === 0 ? 1 : 0;
      const imm4 = op ? bits(rnd, 4) : [0, 1, 3, 5, 7, 2, 4][rnd() % 7]!;
      const imm5 = rnd() % 16 === 0 ? 16 * bits(rnd, 1) : bits(rnd, 5);
      const word =
        (q << 30) |
        (op << 29) |
        (0b01110000 << 21) |
        (imm5 << 16) |
        (imm4 << 11) |
        (1 << 10) |
        (reg(rnd) << 5) |
        reg(rnd);
      return { word: word >>> 0, bases: [] };
    },
  },
  {
    name: "AdvSIMD scalar copy",
    count: 60,
    gen: (rnd) => {
      const imm5 = bits(rnd, 5);
      const imm4 = rnd() % 4 === 0 ? bits(rnd, 4) : 0;
      const op = rnd() % 8 === 0 ? 1 : 0;
      const word =
        (0b01 << 30) |
        (op << 29) |
        (0b11110000 << 21) |
        (imm5 << 16) |
        (imm4 << 11) |
        (1 << 10) |
        (vreg(rnd) << 5) |
        vreg(rnd);
      return { word: word >>> 0, bases: [] };
    },
  },
  {
    name: "AdvSIMD permute",
    count: 300,
    gen: (rnd) => {
      const word =
        (bits(rnd, 1) << 30) |
        (0b001110 << 24) |
        (bits(rnd, 2) << 22) |
        (vreg(rnd) << 16) |
        (bits(rnd, 3) << 12) |
        (0b10 << 10) |
        (vreg(rnd) << 5) |
        vreg(rnd);
      return { word: word >>> 0, bases: [] };
    },
  },
  {
    name: "AdvSIMD extract",
    count: 100,
    gen: (rnd) => {
      const op2 = rnd() % 8 === 0 ? bits(rnd, 2) : 0;
      const word =
        (bits(rnd, 1) << 30) |
        (0b101110 << 24) |
        (op2 << 22) |
        (vreg(rnd) << 16) |
        (bits(rnd, 4) << 11) |
        (vreg(rnd) << 5) |
        vreg(rnd);
      return { word: word >>> 0, bases: [] };
    },
  },
  {
    name: "AdvSIMD table lookup",
    count: 200,
    smallBytes: true,
    gen: (rnd) => {
      // Rn near 31 too, to check the wrap of the register list.
      const rn = rnd() % 3 === 0 ? 29 + (rnd() % 3) : vreg(rnd);
      const word =
        (bits(rnd, 1) << 30) |
        (0b001110 << 24) |
        (vreg(rnd) << 16) |
        (bits(rnd, 3) << 12) |
        (rn << 5) |
        vreg(rnd);
      return { word: word >>> 0, bases: [] };
    },
  },
];

export const LOAD_STORE_CLASSES: ClassSpec[] = [
  {
    name: "AdvSIMD load/store multiple structures",
    count: 400,
    gen: (rnd) => {
      const post = bits(rnd, 1);
      const rn = reg(rnd);
      const rm = post ? (rnd() % 2 ? 31 : reg(rnd)) : 0;
      const opcode = rnd() % 8 === 0 ? bits(rnd, 4) : [0, 2, 4, 6, 7, 8, 10][rnd() % 7]!;
      const word =
        (bits(rnd, 1) << 30) |
        (0b0011000 << 23) |
        (post << 23) |
        (bits(rnd, 1) << 22) |
        (rm << 16) |
        (opcode << 12) |
        (bits(rnd, 2) << 10) |
        (rn << 5) |
        vreg(rnd);
      return { word: word >>> 0, bases: [rn] };
    },
  },
  {
    name: "AdvSIMD load/store single structure",
    count: 500,
    gen: (rnd) => {
      const post = bits(rnd, 1);
      const rn = reg(rnd);
      const rm = post ? (rnd() % 2 ? 31 : reg(rnd)) : 0;
      const word =
        (bits(rnd, 1) << 30) |
        (0b0011010 << 23) |
        (post << 23) |
        (bits(rnd, 1) << 22) |
        (bits(rnd, 1) << 21) |
        (rm << 16) |
        (bits(rnd, 3) << 13) |
        (bits(rnd, 1) << 12) |
        (bits(rnd, 2) << 10) |
        (rn << 5) |
        vreg(rnd);
      return { word: word >>> 0, bases: [rn] };
    },
  },
];

test("AdvSIMD copy/permute/extract/table lookup agree with qemu-aarch64", {
  skip: !TOOLS && "needs aarch64-linux-gnu-gcc and qemu-aarch64",
}, async (t) => {
  const seed = Number(process.env.ARMBOX_SEED ?? Date.now() % 1e9);
  for (const [i, spec] of PERMUTE_CLASSES.entries()) {
    await t.test(spec.name, (tt) => {
      const n = runDifferential(spec, seed + i);
      tt.diagnostic(`seed ${seed + i}: ${n.defined} compared with qemu, ${n.undefined} checked UNDEF`);
    });
  }
});

test("AdvSIMD structure loads/stores agree with qemu-aarch64", {
  skip: !TOOLS && "needs aarch64-linux-gnu-gcc and qemu-aarch64",
}, async (t) => {
  const seed = Number(process.env.ARMBOX_SEED ?? Date.now() % 1e9);
  for (const [i, spec] of LOAD_STORE_CLASSES.entries()) {
    await t.test(spec.name, (tt) => {
      const n = runDifferential(spec, seed + 100 + i);
      tt.diagnostic(`seed ${seed + 100 + i}: ${n.defined} compared with qemu, ${n.undefined} checked UNDEF`);
    });
  }
});
