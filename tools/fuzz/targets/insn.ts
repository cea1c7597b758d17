/**
 * Random instruction words at EL0 and EL1 with the MMU on, on a vCPU of a real virt board
 * (so system registers, the GIC CPU interface, the timer, PSCI over HVC and MMIO to the
 * board's devices are all reachable).
 *
 * An environment is a set of random stage-1 tables (granule, VA size, table attributes,
 * blocks and pages with random permissions and memory types, device pages, garbage
 * descriptors), random TCR/MAIR/SCTLR/CPACR controls and random registers (many of them
 * pointing into what the tables map), built on a vCPU reset and a zeroed RAM. Each word
 * is written at a slot of the mapped code page and executed alone (`Vcpu.run(1)`) at the
 * environment's exception level; the word is then "accepted" (it completed, or exited to
 * the VMM: HVC, WFI, …) or "refused" (it took an exception: UNDEFINED, a fault, a trap).
 * A crash is an internal-error exit (a JavaScript exception inside the CPU, caught by its
 * run loop) or anything thrown out of run(). State drifts from word to word (a word may
 * change registers, system registers, the tables themselves); the environment is rebuilt
 * every ENV_WORDS words and whenever a word changed the translation controls.
 *
 * The oracles (violations): every exception taken must be architecturally sane for its
 * word (syndromeProblem: a class armbox can take for that word from that EL, IL set, the
 * ISS of UNDEFINED, SVC, BRK and trapped system instructions, FAR written and a valid
 * DFSC/IFSC for aborts, ELR the word itself or the one after it for SVC, SPSR the PSTATE
 * before, the right vector, EL1h with DAIF masked after); a word of an unallocated or
 * unimplemented group (op0 0000-0011) must not complete; and one exception in
 * LOOP_CHECK_EVERY is followed into a vector that can only re-take it, which armbox must
 * report as a stuck guest within LOOP_BUDGET instructions instead of spinning. The
 * counts "checked: …" and "checked exceptions: …" say how much each oracle saw.
 *
 * Input index i is word i % ENV_WORDS of environment floor(i / ENV_WORDS), whose seed
 * regenerates the environment and all its words; a chunk starting mid-environment first
 * runs the environment's earlier words without verdicts, so `--from i --budget 1` replays
 * input i with the vCPU and RAM state it had (the GIC and devices excepted).
 */

import { readFileSync } from "node:fs";
import { DEBUG_EC } from "../../../src/arch/arm64/debug.ts";
import { EC } from "../../../src/arch/arm64/exceptions.ts";
import { I } from "../../../src/arch/arm64/state.ts";
import { sysregIndex } from "../../../src/arch/arm64/sysregs.ts";
import { MP_STATE } from "../../../src/hv/mp-state.ts";
import type { Vcpu } from "../../../src/hv/vcpu.ts";
import { parseElf } from "../../../src/machine/elf.ts";
import { VirtMachine } from "../../../src/machine/virt.ts";
import { caseSeed, Rng } from "../../difftest/prng.ts";
import type { Chunk, FuzzTarget, Recorder } from "../core.ts";

const RAM_BASE = 0x4000_0000;
const RAM_SIZE = 8 << 20;
/** Page tables live in the top half of RAM. */
const TABLE_AREA = RAM_BASE + (4 << 20);
const TABLE_END = RAM_BASE + RAM_SIZE;
/** Words per environment. */
export const ENV_WORDS = 512;

const SR = {
  SCTLR: sysregIndex("SCTLR_EL1"),
  TCR: sysregIndex("TCR_EL1"),
  TTBR0: sysregIndex("TTBR0_EL1"),
  TTBR1: sysregIndex("TTBR1_EL1"),
  MAIR: sysregIndex("MAIR_EL1"),
  VBAR: sysregIndex("VBAR_EL1"),
  CPACR: sysregIndex("CPACR_EL1"),
};
/** Translation controls whose change ends an environment (the tables no longer apply). */
const WATCHED = [SR.SCTLR, SR.TCR, SR.TCR + 1, SR.TTBR0, SR.TTBR0 + 1, SR.TTBR1, SR.TTBR1 + 1, SR.VBAR];

const DEVICE_PAGES = [0x0800_0000, 0x080a_0000, 0x0900_0000, 0x0901_0000, 0x0a00_3000, 0x0a00_3e00];

/** Real instruction words (the guests' code), to mutate a few bits of. */
function dictionary(): Uint32Array {
  const words: number[] = [];
  for (const f of ["baremetal/bin/mmu.elf", "seed/bin/seed.elf", "baremetal/bin/exceptions.elf"]) {
    try {
      const data = new Uint8Array(readFileSync(new URL(`../../../guests/${f}`, import.meta.url)));
      const elf = parseElf(data);
      for (const ph of elf.phdrs) {
        if (ph.type !== 1 || !(ph.flags & 1)) continue;
        const dv = new DataView(data.buffer, data.byteOffset + ph.offset, ph.filesz & ~3);
        for (let o = 0; o < dv.byteLength; o += 4) words.push(dv.getUint32(o, true));
      }
    } catch {
      // a missing guest only narrows the dictionary
    }
  }
  if (words.length === 0) words.push(0xd503201f);
  return Uint32Array.from(words);
}

class TableBuilder {
  readonly granuleLog: number;
  readonly stride: number;
  readonly startLevel: number;
  private next = TABLE_AREA;
  readonly root0: number;
  readonly root1: number;
  full = false;

  constructor(
    private readonly ram: DataView,
    granuleKiB: 4 | 16 | 64,
    readonly vaBits: number,
  ) {
    this.granuleLog = granuleKiB === 4 ? 12 : granuleKiB === 16 ? 14 : 16;
    this.stride = this.granuleLog - 3;
    this.startLevel = Math.max(0, 4 - Math.ceil((vaBits - this.granuleLog) / this.stride));
    this.root0 = this.alloc();
    this.root1 = this.alloc();
  }

  private alloc(): number {
    const size = 2 ** this.granuleLog;
    this.next = Math.ceil(this.next / size) * size;
    if (this.next + size > TABLE_END) {
      this.full = true;
      return TABLE_AREA; // reuse (and so corrupt) the first table: still inside RAM
    }
    const pa = this.next;
    this.next += size;
    for (let o = 0; o < size; o += 4) this.ram.setUint32(pa - RAM_BASE + o, 0, true);
    return pa;
  }

  private shift(level: number): number {
    return this.granuleLog + (3 - level) * this.stride;
  }

  private get(pa: number): [number, number] {
    return [this.ram.getUint32(pa - RAM_BASE, true), this.ram.getUint32(pa - RAM_BASE + 4, true)];
  }
  set(pa: number, lo: number, hi: number): void {
    this.ram.setUint32(pa - RAM_BASE, lo >>> 0, true);
    this.ram.setUint32(pa - RAM_BASE + 4, hi >>> 0, true);
  }

  /** The descriptor slot for `va` at `level`, creating tables on the way (table attributes `th`). */
  slot(va: bigint, level: number, th = 0): number {
    let table = (va >> 55n) & 1n ? this.root1 : this.root0;
    const vaN = Number(va & ((1n << BigInt(this.vaBits)) - 1n));
    for (let l = this.startLevel; ; l++) {
      const sh = this.shift(l);
      const bits = l === this.startLevel ? this.vaBits - sh : this.stride;
      const idx = Math.floor(vaN / 2 ** sh) % 2 ** Math.max(0, bits);
      const d = table + idx * 8;
      if (l >= level || l >= 3) return d;
      let [lo, hi] = this.get(d);
      if ((lo & 3) !== 3 || (hi & 0xffff) !== 0 || lo >>> 0 < TABLE_AREA || lo >>> 0 >= TABLE_END) {
        const t = this.alloc();
        lo = t | 3;
        hi = th;
        this.set(d, lo, hi);
      }
      table = (lo >>> 0) - ((lo >>> 0) % 2 ** this.granuleLog);
    }
  }

  /** A leaf mapping `va` to `pa` at `level` (3 = page), with descriptor attribute bits. */
  map(va: bigint, pa: number, level: number, loAttrs: number, hiAttrs: number, th = 0): void {
    const d = this.slot(va, level, th);
    const size = 2 ** this.shift(level);
    const out = pa - (pa % size);
    const type = level === 3 ? 3 : 1;
    this.set(d, ((out % 2 ** 32) | type | (loAttrs & 0xffc)) >>> 0, Math.floor(out / 2 ** 32) | hiAttrs);
  }

  blockSize(level: number): number {
    return 2 ** this.shift(level);
  }
}

export interface Env {
  el: 0 | 1;
  pstate: number;
  code: bigint;
  /** Where the code page is in guest RAM (the words are written there). */
  codePa: number;
  codeSlots: number;
  vbar: bigint;
  watched: number[];
}

/** Builds a random environment on `v` (tables in its RAM, controls, registers). */
export function buildEnv(m: VirtMachine, v: Vcpu, rng: Rng, dataVas: bigint[]): Env {
  const c = v.cpu;
  const r = c.r;
  const ram = new DataView(m.vm.ram.buffer, m.vm.ram.byteOffset, m.vm.ram.byteLength);
  const g = rng.chance(0.7) ? 4 : rng.chance(0.5) ? 16 : 64;
  const vaBits = rng.chance(0.6) ? rng.pick([48, 39, 42, 36]) : rng.range(25, 48);
  const tb = new TableBuilder(ram, g, vaBits);
  const page = 2 ** tb.granuleLog;
  const vaMask = (1n << BigInt(vaBits)) - 1n;
  const randomVa = (): bigint => {
    const low = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
    const va = low & vaMask & ~BigInt(page - 1);
    return rng.chance(0.3) ? BigInt.asUintN(64, va | ~vaMask) : va; // upper half (TTBR1)
  };
  // Code: one granule of RAM below the tables, executable at the chosen EL.
  const el: 0 | 1 = rng.chance(0.5) ? 0 : 1;
  const codePa = RAM_BASE + page * rng.int(Math.floor((2 << 20) / page));
  const code = randomVa();
  const ap = el === 0 ? rng.pick([1, 3]) : rng.pick([0, 2]);
  const codeHi = (el === 0 ? 0 : 1 << 22) | (rng.chance(0.05) ? 1 << 21 : 0); // UXN at EL1; PXN rarely
  const codeLo = (ap << 6) | (3 << 8) | (1 << 10) | (rng.chance(0.2) ? 1 << 11 : 0);
  const vbar = randomVa();
  // Data: pages and blocks of RAM and device pages, random permissions and attributes.
  dataVas.length = 0;
  const n = rng.range(4, 20);
  for (let i = 0; i < n && !tb.full; i++) {
    const near = rng.chance(0.3);
    const va = near ? BigInt.asUintN(64, code + BigInt(page * rng.range(-4, 4))) : randomVa();
    if (near && va === code) continue;
    const level = rng.chance(0.8) ? 3 : rng.pick([1, 2]);
    if (level < tb.startLevel) continue;
    const device = rng.chance(0.1);
    const pa = device ? rng.pick(DEVICE_PAGES) : RAM_BASE + rng.int(RAM_SIZE);
    const lo =
      (rng.int(8) << 2) | // AttrIndx
      (rng.int(4) << 6) | // AP
      (rng.int(4) << 8) | // SH
      (rng.chance(0.9) ? 1 << 10 : 0) | // AF
      (rng.chance(0.3) ? 1 << 11 : 0); // nG
    const hi =
      (rng.chance(0.3) ? 1 << 22 : 0) | (rng.chance(0.3) ? 1 << 21 : 0) | (rng.chance(0.05) ? 1 << 20 : 0);
    const th = rng.chance(0.1) ? rng.int(32) << 27 : 0; // APTable, UXNTable, PXNTable
    tb.map(va, pa, level, lo, hi, th);
    dataVas.push(BigInt.asUintN(64, va + BigInt(rng.int(page))));
  }
  // The code and the vectors last, so that no block or table of the data replaced their path.
  tb.map(code, codePa, 3, codeLo, codeHi);
  tb.map(vbar, RAM_BASE + (3 << 20), 3, (0 << 6) | (3 << 8) | (1 << 10), 1 << 22);
  // Garbage: random descriptors in random table slots (the code's own path may be hit).
  for (let k = rng.chance(0.3) ? rng.range(1, 4) : 0; k > 0 && !tb.full; k--) {
    const d = tb.slot(randomVa(), rng.range(tb.startLevel, 3));
    tb.set(d, rng.u32(), rng.u32());
  }
  const set = (i: number, lo: number, hi: number) => {
    r[i] = lo >>> 0;
    r[i + 1] = hi >>> 0;
  };
  // MAIR: attr 0 Normal write-back, attr 1 Device-nGnRnE, the rest random.
  set(SR.MAIR, 0x00ff | (rng.u32() & 0xffff0000), rng.u32());
  const tsz = 64 - vaBits;
  const tg0 = g === 4 ? 0 : g === 64 ? 1 : 2;
  const tg1 = g === 4 ? 2 : g === 16 ? 1 : 3;
  const tcrLo =
    tsz |
    (tsz << 16) |
    (tg0 << 14) |
    (tg1 << 30) |
    (rng.chance(0.2) ? 1 << 22 : 0) | // A1
    (rng.chance(0.03) ? 1 << 7 : 0) | // EPD0
    (rng.chance(0.03) ? 1 << 23 : 0); // EPD1
  const tcrHi =
    (rng.chance(0.9) ? 2 : rng.int(8)) | // IPS
    (rng.chance(0.5) ? 1 << 4 : 0) | // AS
    (rng.chance(0.3) ? 1 << 5 : 0) | // TBI0
    (rng.chance(0.3) ? 1 << 6 : 0); // TBI1
  set(SR.TCR, tcrLo, tcrHi);
  const asid = rng.chance(0.5) ? rng.int(256) << 16 : 0;
  set(SR.TTBR0, tb.root0, asid);
  set(SR.TTBR1, tb.root1, 0);
  set(SR.VBAR, Number(vbar & 0xffff_f800n), Number(vbar >> 32n));
  // SCTLR: M on, the rest random (alignment checks, WXN, EL0 traps and controls).
  let sctlr = 1 | (rng.u32() & 0x0cdcf9be & (rng.chance(0.5) ? 0xffffffff : 0x0000000e));
  if (rng.chance(0.95)) sctlr &= ~((1 << 25) | (1 << 24)); // little-endian data, mostly
  if (rng.chance(0.9)) sctlr &= ~(1 << 19); // WXN (no EL1-writable code), sometimes
  set(SR.SCTLR, sctlr | 0x30d00800, 0);
  set(SR.CPACR, rng.chance(0.85) ? 3 << 20 : rng.int(4) << 20, 0);
  // Registers: pointers into mapped memory, around it, or anything.
  const value = (): bigint => {
    const k = rng.int(10);
    if (k < 4 && dataVas.length > 0)
      return BigInt.asUintN(64, rng.pick(dataVas) + BigInt(rng.range(-64, 64)));
    if (k === 4) return code + BigInt(4 * rng.int(page / 4));
    if (k === 5) return BigInt(rng.range(0, 64));
    if (k === 6) return BigInt.asUintN(64, BigInt(-rng.range(1, 64)));
    return (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
  };
  for (let x = 0; x < 31; x++) c.setX(x, value());
  const sp = () => value() & ~15n;
  const sp0 = sp();
  const sp1 = sp();
  r[I.SP_EL0] = Number(sp0 & 0xffffffffn);
  r[I.SP_EL0 + 1] = Number(sp0 >> 32n);
  r[I.SP_EL1] = Number(sp1 & 0xffffffffn);
  r[I.SP_EL1 + 1] = Number(sp1 >> 32n);
  for (let k = 0; k < 128; k++) r[I.V + k] = rng.u32();
  r[I.FPCR] = rng.chance(0.7) ? 0 : rng.u32() & 0x07f79f00;
  r[I.FPSR] = 0;
  const daif = rng.chance(0.5) ? 0x3c0 : 0;
  const nzcv = rng.u32() & 0xf000_0000;
  const pstate = (el === 0 ? 0 : rng.chance(0.8) ? 5 : 4) | daif | nzcv;
  c.pstate = pstate;
  c.flushTlb();
  return {
    el,
    pstate,
    code,
    codePa,
    codeSlots: page / 4,
    vbar: vbar & ~0x7ffn,
    watched: WATCHED.map((i) => r[i]!),
  };
}

// ---------------------------------------------------------------------------
// The exception oracle: what an exception taken by one word must look like.

/** Every exception class armbox takes to EL1 (Arm ARM D17.2.37), by its number. */
const ALL_EC: Record<number, string> = Object.fromEntries(
  [...Object.entries(EC), ...Object.entries(DEBUG_EC)].map(([k, v]) => [v, k]),
);

/** Valid DFSC/IFSC values (Arm ARM D17.2.37): address size, translation, access flag and permission by level, external aborts, alignment, debug, TLB conflict. */
const VALID_FSC = new Set([
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0a, 0x0b, 0x0d, 0x0e, 0x0f, 0x10, 0x14, 0x15, 0x16,
  0x17, 0x21, 0x22, 0x30,
]);

/** Word classes, from the A64 top-level encoding table (Arm ARM C4.1). */
export const wordClass = {
  /** op0 (bits 28:25) 0000 reserved (UDF), 0001 and 0011 unallocated, 0010 SVE (not implemented): UNDEFINED. */
  undefinedGroup: (w: number) => ((w >>> 25) & 0xf) <= 0b0011,
  loadStore: (w: number) => ((w >>> 25) & 0b0101) === 0b0100,
  /** System instructions: MSR (immediate), hints, barriers, SYS/SYSL, MSR/MRS (register). */
  system: (w: number) => (w & 0xffc00000) >>> 0 === 0xd5000000,
  branchRegister: (w: number) => (w & 0xfe000000) >>> 0 === 0xd6000000,
  svc: (w: number) => (w & 0xffe0001f) >>> 0 === 0xd4000001,
  brk: (w: number) => (w & 0xffe0001f) >>> 0 === 0xd4200000,
  wfx: (w: number) => w >>> 0 === 0xd503205f || w >>> 0 === 0xd503207f,
  /** Data processing SIMD and FP, SIMD and FP loads and stores (V = 1), or a system register access (FPCR, FPSR). */
  fp: (w: number) =>
    ((w >>> 25) & 0b0111) === 0b0111 ||
    (wordClass.loadStore(w) && ((w >>> 26) & 1) === 1) ||
    (w & 0xffc00000) >>> 0 === 0xd5000000,
};

/** The ISS of EC 0x18 for a system instruction word (Arm ARM D17.2.37: Op0, Op2, Op1, CRn, Rt, CRm, Direction). */
export function sysregIssOf(w: number): number {
  const op0 = (w >>> 19) & 3;
  const op1 = (w >>> 16) & 7;
  const crn = (w >>> 12) & 0xf;
  const crm = (w >>> 8) & 0xf;
  const op2 = (w >>> 5) & 7;
  const rt = w & 0x1f;
  const read = (w >>> 21) & 1;
  return ((op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | read) >>> 0;
}

/** An exception one word took, as seen in the registers afterwards. */
export interface TakenException {
  word: number;
  el: 0 | 1;
  /** PSTATE before the word. */
  pstate: number;
  /** The word's address. */
  pc: bigint;
  /** VBAR_EL1 (bits 10:0 clear). */
  vbar: bigint;
  /** PC after: the vector. */
  newPc: bigint;
  pstateAfter: number;
  esr: bigint;
  elr: bigint;
  spsr: bigint;
  /** FAR_EL1, or null when it still holds the sentinel written before the word. */
  far: bigint | null;
}

/** What `checked` tells the caller was checked, for counts (so that no oracle passes vacuously). */
export type Checked = "EC" | "IL" | "ISS" | "ELR" | "SPSR" | "FAR" | "FSC" | "vector" | "PSTATE";

/**
 * Null when the exception is architecturally sane for the word, else what is wrong. `checked`
 * is called with the name of each check made.
 */
export function syndromeProblem(x: TakenException, checked: (c: Checked) => void = () => {}): string | null {
  const w = x.word >>> 0;
  const esrLo = Number(x.esr & 0xffffffffn);
  const ec = esrLo >>> 26;
  const iss = esrLo & 0x1ffffff;
  const name = ALL_EC[ec] ?? `0x${ec.toString(16)}`;
  const lower = x.el === 0;
  // The vector: the synchronous entry of the table for where the exception came from.
  const base = lower ? 0x400n : (x.pstate & 1) !== 0 ? 0x200n : 0n;
  checked("vector");
  if (x.newPc !== x.vbar + base)
    return `EC ${name}: PC 0x${x.newPc.toString(16)}, not the vector VBAR + 0x${base.toString(16)}`;
  checked("PSTATE");
  if ((x.pstateAfter & 0x3cf) !== 0x3c5)
    return `EC ${name}: PSTATE 0x${x.pstateAfter.toString(16)} after entry is not EL1h with DAIF masked`;
  checked("IL");
  if ((esrLo & (1 << 25)) === 0) return `EC ${name}: IL is 0 for an A64 instruction`;
  if (x.esr >> 32n !== 0n) return `EC ${name}: ESR_EL1[63:32] is not 0`;
  // The class: one armbox can take for this word, from this exception level.
  const ecFromEl = (l: number, c: number) => (lower ? l : c);
  const allowed = new Set<number>([
    EC.UNKNOWN,
    ecFromEl(EC.IABT_LOWER, EC.IABT_CURRENT),
    ecFromEl(DEBUG_EC.BREAKPOINT_LOWER, DEBUG_EC.BREAKPOINT_CURRENT),
    ecFromEl(DEBUG_EC.STEP_LOWER, DEBUG_EC.STEP_CURRENT),
  ]);
  if (!wordClass.undefinedGroup(w)) {
    if (wordClass.svc(w)) allowed.add(EC.SVC64);
    if (wordClass.brk(w)) allowed.add(EC.BRK64);
    if (wordClass.wfx(w)) allowed.add(EC.WFX);
    if (wordClass.system(w)) allowed.add(EC.SYSREG);
    if (wordClass.fp(w)) {
      allowed.add(EC.FP_ACCESS);
      allowed.add(EC.FP_EXC64);
    }
    if (wordClass.branchRegister(w)) allowed.add(EC.PC_ALIGN);
    if (wordClass.loadStore(w) && ((w >>> 5) & 31) === 31) allowed.add(EC.SP_ALIGN);
    if (wordClass.loadStore(w) || wordClass.system(w)) {
      allowed.add(ecFromEl(EC.DABT_LOWER, EC.DABT_CURRENT));
      allowed.add(ecFromEl(DEBUG_EC.WATCHPOINT_LOWER, DEBUG_EC.WATCHPOINT_CURRENT));
    }
  }
  checked("EC");
  if (!allowed.has(ec))
    return `EC ${name} for word 0x${w.toString(16).padStart(8, "0")} at EL${x.el} (possible: ${[...allowed].map((e) => ALL_EC[e]).join(", ")})`;
  const step = ec === DEBUG_EC.STEP_LOWER || ec === DEBUG_EC.STEP_CURRENT;
  // The return address: the word itself, the one after it for SVC (a step: wherever the word went).
  if (!step) {
    checked("ELR");
    const want = ec === EC.SVC64 ? x.pc + 4n : x.pc;
    if (x.elr !== want) return `EC ${name}: ELR_EL1 0x${x.elr.toString(16)}, not 0x${want.toString(16)}`;
    checked("SPSR");
    if (x.spsr !== BigInt(x.pstate >>> 0))
      return `EC ${name}: SPSR_EL1 0x${x.spsr.toString(16)}, not the PSTATE before, 0x${(x.pstate >>> 0).toString(16)}`;
  }
  // The syndrome proper.
  const imm16 = (w >>> 5) & 0xffff;
  const fsc = iss & 0x3f;
  switch (ec) {
    case EC.UNKNOWN:
      checked("ISS");
      if (iss !== 0) return `EC UNKNOWN with ISS 0x${iss.toString(16)} (RES0)`;
      break;
    case EC.SVC64:
    case EC.BRK64:
      checked("ISS");
      if (iss !== imm16)
        return `EC ${name}: ISS 0x${iss.toString(16)}, not the word's imm16 0x${imm16.toString(16)}`;
      break;
    case EC.SYSREG: {
      checked("ISS");
      const want = sysregIssOf(w);
      if (iss !== want)
        return `EC SYSREG: ISS 0x${iss.toString(16)}, not the word's encoding 0x${want.toString(16)}`;
      break;
    }
    case EC.IABT_LOWER:
    case EC.IABT_CURRENT:
      checked("FAR");
      if (x.far !== x.pc)
        return `EC ${name}: FAR_EL1 ${x.far === null ? "not written" : `0x${x.far.toString(16)}`}, not the PC 0x${x.pc.toString(16)}`;
      checked("FSC");
      if (!VALID_FSC.has(fsc) || fsc === 0x21 || fsc === 0x22)
        return `EC ${name}: IFSC 0x${fsc.toString(16)} is not a valid instruction fault status`;
      break;
    case EC.DABT_LOWER:
    case EC.DABT_CURRENT:
      checked("FAR");
      if (x.far === null && (iss & (1 << 10)) === 0) return `EC ${name}: FAR_EL1 not written (FnV 0)`;
      checked("FSC");
      if (!VALID_FSC.has(fsc) || fsc === 0x22)
        return `EC ${name}: DFSC 0x${fsc.toString(16)} is not a valid data fault status`;
      if ((iss & (1 << 8)) !== 0 && !wordClass.system(w))
        return `EC ${name}: CM set for a word that is no cache maintenance`;
      break;
    case DEBUG_EC.WATCHPOINT_LOWER:
    case DEBUG_EC.WATCHPOINT_CURRENT:
      checked("FAR");
      if (x.far === null) return `EC ${name}: FAR_EL1 not written`;
      checked("FSC");
      if (fsc !== 0x22) return `EC ${name}: DFSC 0x${fsc.toString(16)}, not 0x22 (debug)`;
      break;
    case EC.WFX: {
      checked("ISS");
      // CV 1 and COND 0b1110 from AArch64; TI 0 for WFI, 1 for WFE.
      const want = (1 << 24) | (0xe << 20) | (w >>> 0 === 0xd503205f ? 1 : 0);
      if (iss !== want) return `EC WFX: ISS 0x${iss.toString(16)}, not 0x${want.toString(16)}`;
      break;
    }
    case EC.PC_ALIGN:
      checked("FAR");
      if (x.far === null || (x.far & 3n) === 0n) return "EC PC_ALIGN: FAR_EL1 is not a misaligned PC";
      break;
  }
  return null;
}

/** [base, random bits]: system instructions with EL0 traps, and the exception-generating ones. */
const TEMPLATES: readonly (readonly [number, number])[] = [
  [0xd50340df, 0x0f00], // MSR DAIFSet, #imm (SCTLR_EL1.UMA)
  [0xd50340ff, 0x0f00], // MSR DAIFClr, #imm
  [0xd50b7420, 0x1f], // DC ZVA, Xt (SCTLR_EL1.DZE)
  [0xd50b7a20, 0x1f], // DC CVAC, Xt (SCTLR_EL1.UCI)
  [0xd50b7e20, 0x1f], // DC CIVAC, Xt
  [0xd50b7520, 0x1f], // IC IVAU, Xt
  [0xd53b4220, 0x1f], // MRS Xt, DAIF
  [0xd51b4220, 0x1f], // MSR DAIF, Xt
  [0xd53b0020, 0x1f], // MRS Xt, CTR_EL0 (SCTLR_EL1.UCT)
  [0xd53be040, 0x1f], // MRS Xt, CNTVCT_EL0
  [0xd5380000, 0x1f], // MRS Xt, MIDR_EL1 (EL1 only)
  [0xd5181000, 0x1f], // MSR SCTLR_EL1, Xt (EL1 only)
  [0xd503207f, 0], // WFI
  [0xd503205f, 0], // WFE
  [0xd4000001, 0x1fffe0], // SVC #imm
  [0xd4200000, 0x1fffe0], // BRK #imm
  [0xd4000002, 0x1fffe0], // HVC #imm
  [0xd4000003, 0x1fffe0], // SMC #imm
  [0xd69f03e0, 0], // ERET
];

/** A random word: fully random, from a major encoding group, a system instruction, or a real one mutated. */
function randomWord(rng: Rng, dict: Uint32Array): number {
  const k = rng.int(100);
  if (k < 35) return rng.u32();
  if (k < 75) {
    // op0 (bits 28:25) from the allocated groups: DP immediate, branches/system, loads and
    // stores, DP register, SIMD/FP.
    const op0 = rng.pick([
      0b1000, 0b1001, 0b1010, 0b1011, 0b0100, 0b0110, 0b1100, 0b1110, 0b0101, 0b1101, 0b0111, 0b1111,
    ]);
    return ((rng.u32() & ~(0xf << 25)) | (op0 << 25)) >>> 0;
  }
  if (k < 82) return (0xd5000000 | (rng.u32() & 0x003fffff)) >>> 0; // MSR/MRS/SYS/hints/barriers
  if (k < 88) {
    // A system instruction EL0 may be trapped on, or an exception-generating one, with a
    // random register or immediate: each of them is rare among random words.
    const [base, mask] = rng.pick(TEMPLATES);
    return (base | (rng.u32() & mask)) >>> 0;
  }
  let w = rng.pick(dict as unknown as number[]);
  for (let b = rng.range(1, 3); b > 0; b--) w ^= 1 << rng.int(32);
  return w >>> 0;
}

/** One word's draws (the same in a run and in the fast-forward of a replay). */
function drawWord(rng: Rng, dict: Uint32Array, env: Env): { word: number; slot: number; loopCheck: boolean } {
  const word = randomWord(rng, dict);
  const slot = rng.int(env.codeSlots);
  const loopCheck = rng.int(LOOP_CHECK_EVERY) === 0;
  return { word, slot, loopCheck };
}

/** One exception in this many is followed on from its vector, to check the loop report. */
const LOOP_CHECK_EVERY = 32;
/**
 * Instructions a vCPU may spend re-taking one exception at its vector before armbox must
 * have reported it (the CPU's limit is 64 identical exceptions; a few more for the way in).
 */
const LOOP_BUDGET = 80;
/**
 * Written to ESR, ELR, SPSR and FAR before each word: an exception entry overwrites them.
 * It changes from word to word: an earlier word may have read one into a register, and
 * used it as an address (a fault there would leave FAR equal to that word's sentinel).
 */
const sentinelOf = (i: number): [number, number] => [
  (0x5a5a5a5a ^ Math.imul(i, 0x9e3779b1)) >>> 0,
  (0xa5a5a5a5 ^ Math.imul(i, 0x85ebca6b)) >>> 0,
];
const ESR = sysregIndex("ESR_EL1");
const FAR = sysregIndex("FAR_EL1");
const u64 = (r: Uint32Array, i: number) => (BigInt(r[i + 1]! >>> 0) << 32n) | BigInt(r[i]! >>> 0);
const hex8 = (w: number) => `0x${(w >>> 0).toString(16).padStart(8, "0")}`;

export const insnTarget: FuzzTarget = {
  name: "insn",
  unit: "instruction words",
  full: 10_000_000,
  smoke: 3000,
  perInputMs: 1000,
  async run(chunk: Chunk, rec: Recorder): Promise<void> {
    const dict = dictionary();
    const m = new VirtMachine({ smp: 2, memory: RAM_SIZE, deterministic: true });
    m.vcpus.forEach((v, i) => {
      v.init({ powerOff: i !== 0 });
    });
    const v = m.vcpus[0]!;
    const c = v.cpu;
    const r = c.r;
    const ramView = new DataView(m.vm.ram.buffer, m.vm.ram.byteOffset, m.vm.ram.byteLength);
    const dataVas: bigint[] = [];
    const end = chunk.start + chunk.count;
    let env: Env | null = null;
    let envIndex = -1;
    let rng = new Rng(0);
    let mark = sentinelOf(0);
    const sentinel = (i: number) => {
      r[i] = mark[0];
      r[i + 1] = mark[1];
    };
    const isSentinel = (i: number) => r[i] === mark[0] && r[i + 1] === mark[1];
    // A chunk that starts inside an environment first runs that environment's earlier words
    // without verdicts, so that input i sees the state it saw in the run that found it.
    const quiet = {
      refused: () => {},
      accepted: () => {},
      crash: () => {},
      violation: () => {},
      count: () => {},
    };
    const first = Math.floor(chunk.start / ENV_WORDS) * ENV_WORDS;
    for (let i = first; i < end; i++) {
      const out = i < chunk.start ? quiet : rec;
      const e = Math.floor(i / ENV_WORDS);
      if (env === null || e !== envIndex) {
        // Each environment starts from the vCPU's reset state and zeroed RAM (the GIC and
        // the other devices keep what earlier words did to them).
        v.init();
        m.vm.ram.fill(0);
        envIndex = e;
        rng = new Rng(caseSeed(chunk.seed, "insn", e));
        // Rebuilt after a control write: the words already run are skipped.
        env = buildEnv(m, v, rng, dataVas);
        for (let k = e * ENV_WORDS; k < i; k++) drawWord(rng, dict, env);
        out.count(`environments (EL${env.el})`);
      }
      const { word, slot, loopCheck } = drawWord(rng, dict, env);
      const pc = env.code + BigInt(slot * 4);
      const where = () => ({ text: `word ${hex8(word)} at EL${env!.el}, pc 0x${pc.toString(16)}` });
      ramView.setUint32(env.codePa - RAM_BASE + slot * 4, word, true);
      if (v.getMpState() !== MP_STATE.RUNNABLE) v.setMpState(MP_STATE.RUNNABLE);
      v.waiting = null;
      c.pstate = env.pstate;
      c.pc = pc;
      mark = sentinelOf(i);
      sentinel(ESR);
      sentinel(I.ELR_EL1);
      sentinel(I.SPSR_EL1);
      sentinel(FAR);
      const eventBefore = r[I.EVENT]!;
      let exit: ReturnType<Vcpu["run"]>;
      try {
        exit = v.run(1);
      } catch (err) {
        out.crash(i, `thrown out of Vcpu.run: ${(err as Error)?.stack ?? String(err)}`, where());
        env = null;
        continue;
      }
      out.count(`EL${env.el} words`);
      if (exit.kind === "internal-error") {
        out.crash(i, `internal error: ${exit.message.split("\n").slice(0, 4).join(" | ")}`, where());
        env = null;
        continue;
      }
      const newPc = c.pc;
      const vbar = u64(r, SR.VBAR) & ~0x7ffn;
      const off = newPc - vbar;
      // An exception entry: PC at one of the 16 vectors and ELR_EL1 written.
      const took =
        (c.pstate & 0xc) === 4 && off >= 0n && off < 0x800n && (off & 0x7fn) === 0n && !isSentinel(I.ELR_EL1);
      if (!took) {
        // WFI/WFE at EL0 with SCTLR_EL1.nTWI/nTWE clear that would wait must trap (EC 0x01).
        const sctlr = r[SR.SCTLR]!;
        const wouldWait =
          word === 0xd503207f ? !c.irqLine && !c.fiqLine : word === 0xd503205f && eventBefore === 0;
        if (env.el === 0 && wouldWait && (sctlr & (word === 0xd503207f ? 1 << 16 : 1 << 18)) === 0)
          out.violation(
            i,
            `${word === 0xd503207f ? "WFI" : "WFE"} at EL0 with SCTLR_EL1.nTW${word === 0xd503207f ? "I" : "E"} clear did not trap (${exit.kind})`,
            where(),
          );
        if (wordClass.undefinedGroup(word) && exit.kind !== "guest-stuck")
          out.violation(
            i,
            `word ${hex8(word)} of an unallocated or unimplemented group completed (${exit.kind})`,
            where(),
          );
        out.accepted();
        if (exit.kind !== "slice") out.count(`exit ${exit.kind}`);
      } else if ((off & 0x180n) !== 0n) {
        // An interrupt (IRQ or FIQ) came first; an SError is never taken here.
        if ((off & 0x180n) === 0x180n)
          out.violation(i, `an SError was taken at 0x${newPc.toString(16)}`, where());
        out.count("interrupts taken before the word");
        out.accepted();
      } else {
        const esr = u64(r, ESR);
        const x: TakenException = {
          word,
          el: env.el,
          pstate: env.pstate,
          pc,
          vbar,
          newPc,
          pstateAfter: c.pstate,
          esr,
          elr: u64(r, I.ELR_EL1),
          spsr: u64(r, I.SPSR_EL1),
          far: isSentinel(FAR) ? null : u64(r, FAR),
        };
        const problem = syndromeProblem(x, (k) => out.count(`checked: ${k}`));
        const ec = Number(esr & 0xffffffffn) >>> 26;
        const ecName = ALL_EC[ec] ?? `EC ${ec.toString(2).padStart(6, "0")}b`;
        out.count(`checked exceptions: ${ecName}`);
        if (problem)
          out.violation(
            i,
            `syndrome: ${problem} (ESR 0x${esr.toString(16)}, FAR ${x.far === null ? "not written" : `0x${x.far.toString(16)}`}, ELR 0x${x.elr.toString(16)})`,
            where(),
          );
        out.refused(`exception: ${ecName}`);
        // Now and then, follow the exception into a vector that can only re-take it (the
        // vector table zeroed: UDF, or not executable): armbox must report the loop.
        if (loopCheck && env.vbar === vbar && WATCHED.every((w, k) => r[w] === env!.watched[k])) {
          const at = 3 << 20; // where buildEnv maps the vector page
          for (let o = 0; o < 0x800; o += 4) ramView.setUint32(at + o, 0, true);
          const before = c.instructionCount;
          let loop: ReturnType<Vcpu["run"]>;
          try {
            loop = v.run(LOOP_BUDGET);
          } catch (err) {
            out.crash(
              i,
              `thrown out of Vcpu.run in the exception loop: ${(err as Error)?.stack ?? String(err)}`,
              where(),
            );
            env = null;
            continue;
          }
          out.count("exception loops followed");
          if (loop.kind === "guest-stuck" && /stuck re-taking the same exception/.test(loop.message)) {
            out.count("exception loops reported by armbox");
          } else {
            out.violation(
              i,
              `an exception loop at the vector was not reported: ${loop.kind} after ${c.instructionCount - before} instructions, PC 0x${c.pc.toString(16)}, ESR ${hex8(r[ESR]!)}`,
              where(),
            );
          }
        }
      }
      // A word that changed the translation controls ends the environment.
      if (WATCHED.some((w, k) => r[w] !== env!.watched[k])) {
        out.count("environments ended by a control write");
        envIndex = -1;
        env = null;
      }
    }
  },
};
