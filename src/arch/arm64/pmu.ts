/**
 * The Performance Monitors Extension, PMUv3 as Armv8.0 defines it (Arm ARM D11 "The
 * Performance Monitors Extension", registers in D19): PMCR_EL0 with N = 6 event counters,
 * the cycle counter PMCCNTR_EL0 with PMCCFILTR_EL0, PMEVTYPER<n>/PMEVCNTR<n>, the
 * enable/overflow/interrupt-enable SET/CLR pairs, PMSELR/PMXEV*, PMSWINC, PMUSERENR and
 * PMCEID0/1, and the overflow interrupt (PPI 23 on the virt board, raised through
 * `Cpu.onPmuIrq`).
 *
 * Events: SW_INCR (0x00), INST_RETIRED (0x08), CPU_CYCLES (0x11) and CHAIN (0x1E), the
 * ones PMCEID0_EL0 lists. One instruction takes one cycle, so INST_RETIRED and CPU_CYCLES
 * both count retired instructions (Cpu.instructionCount): exact and deterministic.
 *
 * Counters are kept lazily. While counting is on (`pmuActive`), `pmuLast` is the
 * instruction count at which the registers were last brought up to date, and every
 * instruction since then ran at the current EL; `pmuSync()` adds them in. It runs before
 * any PMU register is read or written, before every change of EL (exception entry and
 * return, so the P/U filters see the EL each instruction ran at), and at the end of every
 * run(), so the stored registers, and with them the saved ones, are always exact between
 * runs. run() also stops where an enabled overflow interrupt would fire, so the PPI is
 * raised at the instruction where the counter wraps.
 */
import type { Cpu } from "./cpu.ts";
import { PMU_COUNTERS, PMU_EVENT } from "./pmu-events.ts";
import { R64 } from "./ret64.ts";
import { sysregIndex } from "./sysregs.ts";

export { PMCEID0, PMU_COUNTERS, PMU_EVENT, PMU_PPI } from "./pmu-events.ts";

/** PMCR_EL0 fields (Arm ARM D19 PMCR_EL0). */
const PMCR_E = 1 << 0;
const PMCR_P = 1 << 1;
const PMCR_C = 1 << 2;
const PMCR_D = 1 << 3;
const PMCR_LC = 1 << 6;
/** PMEVTYPER/PMCCFILTR filters: P (bit 31) stops counting at EL1, U (bit 30) at EL0. */
const FILTER_P = 1 << 31;
const FILTER_U = 1 << 30;
/** Bit 31 of the enable/overflow/interrupt-enable sets: the cycle counter. */
const CYCLE_BIT = 0x8000_0000;
const TWO32 = 4294967296;

interface Idx {
  pmcr: number;
  cnten: number;
  ovs: number;
  inten: number;
  selr: number;
  ccntr: number;
  ccfiltr: number;
  userenr: number;
  evcntr: number[];
  evtyper: number[];
}
let ix: Idx | undefined;
/** Register indices, resolved on first use (sysregs.ts imports this module). */
function idx(): Idx {
  if (ix === undefined) {
    const n = (f: (k: number) => string) => Array.from({ length: PMU_COUNTERS }, (_, k) => sysregIndex(f(k)));
    ix = {
      pmcr: sysregIndex("PMCR_EL0"),
      cnten: sysregIndex("PMCNTENSET_EL0"),
      ovs: sysregIndex("PMOVSSET_EL0"),
      inten: sysregIndex("PMINTENSET_EL1"),
      selr: sysregIndex("PMSELR_EL0"),
      ccntr: sysregIndex("PMCCNTR_EL0"),
      ccfiltr: sysregIndex("PMCCFILTR_EL0"),
      userenr: sysregIndex("PMUSERENR_EL0"),
      evcntr: n((k) => `PMEVCNTR${k}_EL0`),
      evtyper: n((k) => `PMEVTYPER${k}_EL0`),
    };
  }
  return ix;
}

/** Whether a filter (PMEVTYPER<n>/PMCCFILTR) lets events at `el` count. NSK/NSU/NSH/M need EL2/EL3. */
function counts(filter: number, el: number): boolean {
  return (filter & (el === 0 ? FILTER_U : FILTER_P)) === 0;
}

function counting(r: Uint32Array, x: Idx, n: number): boolean {
  const ev = r[x.evtyper[n]!]! & 0x3ff;
  return ev === PMU_EVENT.INST_RETIRED || ev === PMU_EVENT.CPU_CYCLES;
}

/** Recomputes `pmuActive` (some enabled counter counts instructions) and the IRQ line. */
export function refreshPmu(c: Cpu): void {
  const r = c.r;
  const x = idx();
  let active = false;
  if ((r[x.pmcr]! & PMCR_E) !== 0) {
    const en = r[x.cnten]!;
    if ((en & CYCLE_BIT) !== 0) active = true;
    for (let n = 0; n < PMU_COUNTERS && !active; n++)
      if ((en & (1 << n)) !== 0 && counting(r, x, n)) active = true;
  }
  if (active && !c.pmuActive) c.pmuLast = Number(c.instructionCount);
  c.pmuActive = active;
  updateIrq(c);
}

/** The overflow interrupt request: PMCR_EL0.E and an overflow whose interrupt is enabled. */
function updateIrq(c: Cpu): void {
  const r = c.r;
  const x = idx();
  const level = (r[x.pmcr]! & PMCR_E) !== 0 && (r[x.ovs]! & r[x.inten]!) !== 0;
  if (level !== c.pmuIrqLevel) {
    c.pmuIrqLevel = level;
    c.onPmuIrq?.(c, level);
  }
}

/** Adds `d` events to event counter n (32 bits), setting its overflow flag; CHAIN carries on. */
function addEvents(r: Uint32Array, x: Idx, n: number, d: number): void {
  const i = x.evcntr[n]!;
  const v = r[i]! + d;
  r[i] = v >>> 0;
  if (v < TWO32) return;
  r[x.ovs] = (r[x.ovs]! | (1 << n)) >>> 0;
  // The odd counter of a pair counting CHAIN counts the even one's overflows.
  const odd = n + 1;
  if ((n & 1) === 0 && odd < PMU_COUNTERS && (r[x.cnten]! & (1 << odd)) !== 0) {
    if ((r[x.evtyper[odd]!]! & 0x3ff) === PMU_EVENT.CHAIN) addEvents(r, x, odd, Math.floor(v / TWO32));
  }
}

/** Adds `d` cycles to PMCCNTR_EL0 (64 bits; overflow at bit 31 or, with PMCR_EL0.LC, bit 63). */
function addCycles(r: Uint32Array, x: Idx, d: number): void {
  const i = x.ccntr;
  const lo = r[i]! + d;
  r[i] = lo >>> 0;
  if (lo < TWO32) return;
  const hi = r[i + 1]! + Math.floor(lo / TWO32);
  r[i + 1] = hi >>> 0;
  if ((r[x.pmcr]! & PMCR_LC) === 0 || hi >= TWO32) r[x.ovs] = (r[x.ovs]! | CYCLE_BIT) >>> 0;
}

/**
 * Brings the counters up to date: every instruction since `pmuLast` ran at the current EL.
 * `current` = 1 counts the instruction in progress too (ERET, or one taking an exception,
 * just before the EL changes), so that it is attributed to the EL it executed at.
 */
export function pmuSync(c: Cpu, current = 0): void {
  if (!c.pmuActive) return;
  const now = Number(c.instructionCount) + current;
  const d = now - c.pmuLast;
  c.pmuLast = now;
  if (d <= 0) return;
  const r = c.r;
  const x = idx();
  const en = r[x.cnten]!;
  const el = c.el;
  for (let n = 0; n < PMU_COUNTERS; n++) {
    if ((en & (1 << n)) !== 0 && counting(r, x, n) && counts(r[x.evtyper[n]!]!, el)) addEvents(r, x, n, d);
  }
  if ((en & CYCLE_BIT) !== 0 && counts(r[x.ccfiltr]!, el)) {
    if ((r[x.pmcr]! & PMCR_D) === 0) addCycles(r, x, d);
    else {
      // PMCR_EL0.D: one count every 64 cycles (the remainder is not architectural state).
      const t = c.pmuDivider + d;
      c.pmuDivider = t % 64;
      if (t >= 64) addCycles(r, x, Math.floor(t / 64));
    }
  }
  updateIrq(c);
}

/**
 * Instructions run() may execute before an enabled overflow interrupt could fire (each
 * instruction counted by every counting counter), at most `budget` and at least 1.
 */
export function pmuBudget(c: Cpu, budget: number): number {
  const r = c.r;
  const x = idx();
  const armed = r[x.cnten]! & r[x.inten]!;
  if (armed === 0) return budget;
  let left = budget;
  for (let n = 0; n < PMU_COUNTERS; n++) {
    if ((armed & (1 << n)) !== 0 && counting(r, x, n)) left = Math.min(left, TWO32 - r[x.evcntr[n]!]!);
  }
  if ((armed & CYCLE_BIT) !== 0 && (r[x.pmcr]! & PMCR_LC) === 0) {
    const per = (r[x.pmcr]! & PMCR_D) !== 0 ? 64 : 1;
    left = Math.min(left, (TWO32 - r[x.ccntr]!) * per - c.pmuDivider);
  }
  return Math.max(1, left);
}

/** PMSWINC_EL0: each bit set increments its counter if it is enabled and counts SW_INCR. */
function softwareIncrement(c: Cpu, bits: number): void {
  const r = c.r;
  const x = idx();
  if ((r[x.pmcr]! & PMCR_E) === 0) return;
  for (let n = 0; n < PMU_COUNTERS; n++) {
    if ((bits & (1 << n)) === 0 || (r[x.cnten]! & (1 << n)) === 0) continue;
    const t = r[x.evtyper[n]!]!;
    if ((t & 0x3ff) === PMU_EVENT.SW_INCR && counts(t, c.el)) addEvents(r, x, n, 1);
  }
}

/** PMSELR_EL0.SEL as an event counter index, 31 for the cycle counter, or UNDEFINED. */
function selected(c: Cpu, cycleOk: boolean): number {
  const sel = c.r[idx().selr]! & 0x1f;
  if (sel < PMU_COUNTERS || (sel === 31 && cycleOk)) return sel;
  return c.undefined();
}

/**
 * MRS of a PMU register (sysregs.ts routes every PMU accessor here by name): counters
 * are brought up to date first, so a read sees every instruction before it.
 */
export function pmuRead(c: Cpu, name: string): void {
  pmuSync(c);
  const r = c.r;
  const x = idx();
  R64.hi = 0;
  switch (name) {
    case "PMCR_EL0":
      R64.lo = r[x.pmcr]! & ~(PMCR_P | PMCR_C);
      return;
    case "PMCNTENSET_EL0":
    case "PMCNTENCLR_EL0":
      R64.lo = r[x.cnten]!;
      return;
    case "PMOVSSET_EL0":
    case "PMOVSCLR_EL0":
      R64.lo = r[x.ovs]!;
      return;
    case "PMINTENSET_EL1":
    case "PMINTENCLR_EL1":
      R64.lo = r[x.inten]!;
      return;
    case "PMCCNTR_EL0":
      R64.lo = r[x.ccntr]!;
      R64.hi = r[x.ccntr + 1]!;
      return;
    case "PMXEVTYPER_EL0": {
      const n = selected(c, true);
      R64.lo = r[n === 31 ? x.ccfiltr : x.evtyper[n]!]!;
      return;
    }
    case "PMXEVCNTR_EL0":
      R64.lo = r[x.evcntr[selected(c, false)]!]!;
      return;
    case "PMSWINC_EL0":
      R64.lo = 0;
      return;
  }
  throw new Error(`pmuRead: ${name}`);
}

/** MSR of a PMU register: counters first brought up to date, then the write, then the flags. */
export function pmuWrite(c: Cpu, name: string, lo: number, hi: number): void {
  pmuSync(c);
  const r = c.r;
  const x = idx();
  switch (name) {
    case "PMCR_EL0":
      // P resets the event counters, C the cycle counter (write-only, read as 0).
      if ((lo & PMCR_P) !== 0) for (const i of x.evcntr) r[i] = 0;
      if ((lo & PMCR_C) !== 0) {
        r[x.ccntr] = 0;
        r[x.ccntr + 1] = 0;
        c.pmuDivider = 0;
      }
      r[x.pmcr] = ((r[x.pmcr]! & ~0x79) | (lo & 0x79)) >>> 0; // E, D, X, DP, LC
      break;
    case "PMCNTENSET_EL0":
      r[x.cnten] = (r[x.cnten]! | (lo & implemented())) >>> 0;
      break;
    case "PMCNTENCLR_EL0":
      r[x.cnten] = (r[x.cnten]! & ~lo) >>> 0;
      break;
    case "PMOVSSET_EL0":
      r[x.ovs] = (r[x.ovs]! | (lo & implemented())) >>> 0;
      break;
    case "PMOVSCLR_EL0":
      r[x.ovs] = (r[x.ovs]! & ~lo) >>> 0;
      break;
    case "PMINTENSET_EL1":
      r[x.inten] = (r[x.inten]! | (lo & implemented())) >>> 0;
      break;
    case "PMINTENCLR_EL1":
      r[x.inten] = (r[x.inten]! & ~lo) >>> 0;
      break;
    case "PMCCNTR_EL0":
      r[x.ccntr] = lo >>> 0;
      r[x.ccntr + 1] = hi >>> 0;
      break;
    case "PMXEVTYPER_EL0": {
      const n = selected(c, true);
      if (n === 31) r[x.ccfiltr] = (lo & 0xfc000000) >>> 0;
      else r[x.evtyper[n]!] = (lo & 0xfc0003ff) >>> 0;
      break;
    }
    case "PMXEVCNTR_EL0":
      r[x.evcntr[selected(c, false)]!] = lo >>> 0;
      break;
    case "PMSWINC_EL0":
      softwareIncrement(c, lo);
      break;
    default:
      throw new Error(`pmuWrite: ${name}`);
  }
  refreshPmu(c);
}

/** After a plain store to PMEVTYPER/PMEVCNTR/PMCCFILTR/PMSELR: the flags may change. */
export function pmuStored(c: Cpu): void {
  refreshPmu(c);
}

/** Bits of the enable/overflow/interrupt sets that exist: the event counters and C. */
function implemented(): number {
  return ((1 << PMU_COUNTERS) - 1) | CYCLE_BIT;
}

/**
 * EL0 access (PMUSERENR_EL0, Arm ARM D11.?): EN (bit 0) opens every PMU register; SW (bit
 * 1) PMSWINC writes; CR (bit 2) PMCCNTR reads; ER (bit 3) event counter reads and PMSELR.
 * `kind`: "all" (EN only), "swinc", "ccntr", "evcntr", "selr".
 */
export function pmuEl0(c: Cpu, kind: "all" | "swinc" | "ccntr" | "evcntr" | "selr", write: boolean): boolean {
  const u = c.r[idx().userenr]!;
  if ((u & 1) !== 0) return true;
  switch (kind) {
    case "swinc":
      return write && (u & 2) !== 0;
    case "ccntr":
      return !write && (u & 4) !== 0;
    case "evcntr":
      return !write && (u & 8) !== 0;
    case "selr":
      return (u & 8) !== 0;
    default:
      return false;
  }
}
