/**
 * The translator's check mode (`armbox run --accel check`): two machines built from one
 * configuration, one interpreted and one translated, run side by side in deterministic
 * mode, the same number of instructions at a time. After every step the vCPUs'
 * architectural registers must be equal, and every few steps guest RAM too. At the first
 * difference both machines are rebuilt and run to the last step that agreed, then single
 * instructions are compared until the one that diverges is found: its vCPU, PC, word,
 * name, and the first register or RAM byte that differs.
 */
import { ACC } from "../arch/arm64/access.ts";
import type { Cpu } from "../arch/arm64/cpu.ts";
import { getDecoder } from "../arch/arm64/isa.ts";
import { OFF } from "../arch/arm64/state.ts";
import { sysregIndex } from "../arch/arm64/sysregs.ts";
import { TLB } from "../arch/arm64/tlb.ts";

const SCTLR = sysregIndex("SCTLR_EL1");

import type { VirtMachine } from "../machine/virt.ts";

export interface LockstepOptions {
  /** Instructions (all vCPUs) to check. */
  instructions: number;
  /** Instructions per step (default 20,000). */
  step?: number;
  /** Compare guest RAM every this many steps (default 50). */
  ramEvery?: number;
  /** Test hook: called on the translated machine after each step (to plant a divergence). */
  afterStep?: (jit: VirtMachine, done: number) => void;
}

export interface Divergence {
  /** Instructions executed by all vCPUs before the diverging one. */
  at: number;
  vcpu: number;
  pc: bigint;
  word: number;
  name: string | null;
  /** What differs, e.g. "X3: interp 0x10 jit 0x11" or "RAM at 0x40001000". */
  what: string;
}

export interface LockstepResult {
  checked: number;
  /** Instructions the translated machine ran in translated blocks. */
  translated: number;
  divergence: Divergence | null;
}

/** Registers compared: X0..X30, SP_EL0, PC, PSTATE, SP_EL1, ELR, SPSR, V0..V31, FPSR, FPCR, system registers. */
const REG_WORDS: readonly [number, number][] = [
  [0, OFF.KVM_REGS_END >> 2],
  [OFF.EXCL_VALID >> 2, (OFF.EVENT >> 2) + 1],
  [OFF.SYSREGS >> 2, OFF.SYSREGS_END >> 2],
];

function regName(word: number): string {
  const b = word * 4;
  if (b < OFF.SP_EL0) return `X${b >> 3}`;
  if (b < OFF.PC) return "SP_EL0";
  if (b < OFF.PSTATE) return "PC";
  if (b < OFF.SP_EL1) return "PSTATE";
  if (b < OFF.ELR_EL1) return "SP_EL1";
  if (b < OFF.SPSR) return "ELR_EL1";
  if (b < OFF.V) return "SPSR";
  if (b < OFF.FPSR) return `V${(b - OFF.V) >> 4}`;
  if (b < OFF.FPCR) return "FPSR";
  if (b < OFF.KVM_REGS_END) return "FPCR";
  if (b >= OFF.SYSREGS) return `system register slot ${(b - OFF.SYSREGS) >> 3}`;
  return `state word ${word}`;
}

/** The first difference between the two machines' vCPUs (or RAM), or null. */
function compare(a: VirtMachine, b: VirtMachine, ram: boolean): { vcpu: number; what: string } | null {
  for (let v = 0; v < a.vcpus.length; v++) {
    const ra = a.vcpus[v]!.cpu.r;
    const rb = b.vcpus[v]!.cpu.r;
    for (const [lo, hi] of REG_WORDS) {
      for (let w = lo; w < hi; w++) {
        if (ra[w] !== rb[w]) {
          const hex = (x: number) => `0x${(x >>> 0).toString(16)}`;
          return { vcpu: v, what: `${regName(w)} (word ${w}): interp ${hex(ra[w]!)} jit ${hex(rb[w]!)}` };
        }
      }
    }
    if (a.vcpus[v]!.cpu.instructionCount !== b.vcpus[v]!.cpu.instructionCount)
      return { vcpu: v, what: "retired-instruction count" };
  }
  if (ram) {
    const x = a.vm.ram;
    const y = b.vm.ram;
    for (let off = 0; off < x.length; off += 4096) {
      const pa = x.subarray(off, off + 4096);
      const pb = y.subarray(off, off + 4096);
      if (!equalBytes(pa, pb)) {
        let i = 0;
        while (pa[i] === pb[i]) i++;
        return { vcpu: -1, what: `RAM at 0x${(a.vm.ramBase + off + i).toString(16)}` };
      }
    }
  }
  return null;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  const wa = new Int32Array(a.buffer, a.byteOffset, a.length >> 2);
  const wb = new Int32Array(b.buffer, b.byteOffset, b.length >> 2);
  for (let i = 0; i < wa.length; i++) if (wa[i] !== wb[i]) return false;
  return true;
}

function translated(m: VirtMachine): number {
  // One code cache serves every vCPU (jit/jit.ts): count each cache once.
  const caches = new Set(m.vcpus.map((v) => v.cpu.jit).filter((j) => j !== null));
  return [...caches].reduce((n, j) => n + j.executed, 0);
}

/** Runs `m` until `count` instructions (all vCPUs) have been executed in total, or it stops. */
function advance(m: VirtMachine, count: number): void {
  const sched = m.scheduler();
  for (;;) {
    const left = count - Number(sched.instructions);
    if (left <= 0) return;
    const ev = sched.round(left);
    if (ev !== null && ev.kind !== "limit") return; // shutdown, reset, all idle, an error
  }
}

/**
 * Checks `opts.instructions` of a machine that `build` makes (deterministic, translating
 * when asked). Both machines run the same budgets, so the translated one runs whole
 * translated blocks wherever the budget leaves room, as it would in a normal run.
 */
export function lockstep(build: (jit: boolean) => VirtMachine, opts: LockstepOptions): LockstepResult {
  const step = opts.step ?? 20_000;
  const ramEvery = opts.ramEvery ?? 50;
  const a = build(false);
  const b = build(true);
  let good = 0;
  let steps = 0;
  while (good < opts.instructions) {
    const target = Math.min(good + step, opts.instructions);
    advance(a, target);
    advance(b, target);
    opts.afterStep?.(b, target);
    steps++;
    const diff = compare(a, b, steps % ramEvery === 0 || target === opts.instructions);
    if (diff === null) {
      const done = Number(a.scheduler().instructions);
      if (done < target) return { checked: done, translated: translated(b), divergence: null }; // the guest stopped
      good = target;
      continue;
    }
    return { checked: good, translated: translated(b), divergence: narrow(build, opts, good, target) };
  }
  return { checked: good, translated: translated(b), divergence: null };
}

/**
 * The first instruction count in (good, bad] after which the two machines differ, found
 * by bisection: each probe rebuilds both and runs them from the start to the probe in the
 * same chunks as the check did up to `good`, then one chunk to the probe.
 */
function narrow(
  build: (jit: boolean) => VirtMachine,
  opts: LockstepOptions,
  good: number,
  bad: number,
): Divergence {
  const step = opts.step ?? 20_000;
  const probe = (at: number): { a: VirtMachine; diff: { vcpu: number; what: string } | null } => {
    const a = build(false);
    const b = build(true);
    for (let done = 0; done < good; ) {
      done = Math.min(done + step, good);
      advance(a, done);
      advance(b, done);
      opts.afterStep?.(b, done);
    }
    advance(a, at);
    advance(b, at);
    if (at === bad) opts.afterStep?.(b, at);
    return { a, diff: compare(a, b, true) };
  };
  let lo = good; // agrees
  let hi = bad; // differs
  let last = probe(hi);
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const p = probe(mid);
    if (p.diff === null) lo = mid;
    else {
      hi = mid;
      last = p;
    }
  }
  // The vCPU and instruction that ran last before the first differing state.
  const before = probe(lo).a;
  const sched = before.scheduler();
  const v = before.vcpus[Math.min(sched.position.pos, before.vcpus.length - 1)]!;
  const pc = v.cpu.pc;
  const word = fetchWord(v.cpu, pc);
  const d = last.diff ?? { vcpu: v.id, what: "state" };
  return {
    at: lo,
    vcpu: d.vcpu < 0 ? v.id : d.vcpu,
    pc,
    word,
    name: word < 0 ? null : getDecoder().nameOf(word),
    what: d.what,
  };
}

/** The word at `pc` if the vCPU's TLB holds its fetch translation (read-only probe), else -1. */
function fetchWord(c: Cpu, pc: bigint): number {
  const lo = Number(pc & 0xffff_ffffn);
  const hi = Number(pc >> 32n);
  const e = (c.el === 0 ? 0 : TLB.REGIME_WORDS) + ((lo >>> 12) & TLB.INDEX_MASK) * TLB.ENTRY_WORDS;
  const k = e + TLB.TAG + 2 * ACC.FETCH;
  if (c.tlb[k] === (lo & -4096) && c.tlb[k + 1] === (hi | 0))
    return c.m32[(c.tlbU[e + TLB.HOST]! + (lo & 0xfff)) >>> 2]!;
  const off = lo - c.ramBase;
  if (hi === 0 && off >= 0 && off + 4 <= c.ramSize && (c.r[SCTLR]! & 1) === 0)
    return c.m32[(c.ramHost + off) >>> 2]!;
  return -1;
}
