/**
 * Random instruction words at EL0 and EL1 with the MMU on, on a vCPU of a real virt board
 * (so system registers, the GIC CPU interface, the timer, PSCI over HVC and MMIO to the
 * board's devices are all reachable).
 *
 * An environment is a set of random stage-1 tables (granule, VA size, table attributes,
 * blocks and pages with random permissions and memory types, device pages, garbage
 * descriptors), random TCR/MAIR/SCTLR/CPACR controls and random registers (many of them
 * pointing into what the tables map). Each word is written at a slot of the mapped code
 * page and executed alone (`Vcpu.run(1)`) at the environment's exception level; the word
 * is then "accepted" (it completed, or exited to the VMM: HVC, WFI, …) or "refused" (it
 * took an exception: UNDEFINED, a fault, a trap). A crash is an internal-error exit (a
 * JavaScript exception inside the CPU, caught by its run loop) or anything thrown out of
 * run(). State drifts from word to word (a word may change registers, system registers,
 * the tables themselves); the environment is rebuilt every ENV_WORDS words and whenever
 * a word changed the translation controls.
 *
 * Input index i is word i % ENV_WORDS of environment floor(i / ENV_WORDS), whose seed
 * regenerates the environment and all its words (--replay insn:SEED:INDEX replays the
 * environment up to that word).
 */

import { readFileSync } from "node:fs";
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

const EC_NAMES = new Map<number, string>(Object.entries(EC).map(([k, v]) => [v, k]));

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
  let w = rng.pick(dict as unknown as number[]);
  for (let b = rng.range(1, 3); b > 0; b--) w ^= 1 << rng.int(32);
  return w >>> 0;
}

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
    for (let i = chunk.start; i < end; i++) {
      const e = Math.floor(i / ENV_WORDS);
      if (env === null || e !== envIndex) {
        envIndex = e;
        rng = new Rng(caseSeed(chunk.seed, "insn", e));
        // Fast-forward to word i of this environment (a chunk may start mid-way).
        env = buildEnv(m, v, rng, dataVas);
        for (let k = e * ENV_WORDS; k < i; k++) randomWord(rng, dict);
        rec.count(`environments (EL${env.el})`);
      }
      const word = randomWord(rng, dict);
      const slot = rng.int(env.codeSlots);
      const pc = env.code + BigInt(slot * 4);
      ramView.setUint32(env.codePa - RAM_BASE + slot * 4, word, true);
      if (v.getMpState() !== MP_STATE.RUNNABLE) v.setMpState(MP_STATE.RUNNABLE);
      v.waiting = null;
      c.pstate = env.pstate;
      c.pc = pc;
      let exit: ReturnType<Vcpu["run"]>;
      try {
        exit = v.run(1);
      } catch (err) {
        rec.crash(i, `thrown out of Vcpu.run: ${(err as Error)?.stack ?? String(err)}`, {
          text: `word 0x${word.toString(16).padStart(8, "0")} at EL${env.el}, pc 0x${pc.toString(16)}`,
        });
        env = null;
        continue;
      }
      rec.count(`EL${env.el} words`);
      if (exit.kind === "internal-error") {
        rec.crash(i, `internal error: ${exit.message.split("\n").slice(0, 4).join(" | ")}`, {
          text: `word 0x${word.toString(16).padStart(8, "0")} at EL${env.el}, pc 0x${pc.toString(16)}`,
        });
        env = null;
        continue;
      }
      const newPc = c.pc;
      const took = (c.pstate & 0xc) === 4 && newPc >= env.vbar && newPc < env.vbar + 0x800n;
      if (took) {
        const ec = r[sysregIndex("ESR_EL1")]! >>> 26;
        rec.refused(`exception: ${EC_NAMES.get(ec) ?? `EC ${ec.toString(2).padStart(6, "0")}b`}`);
      } else {
        rec.accepted();
        if (exit.kind !== "slice") rec.count(`exit ${exit.kind}`);
      }
      // A word that changed the translation controls ends the environment.
      if (WATCHED.some((w, k) => r[w] !== env!.watched[k])) {
        rec.count("environments ended by a control write");
        envIndex = -1;
        env = null;
      }
    }
  },
};
