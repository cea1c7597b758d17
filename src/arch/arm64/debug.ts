/**
 * Self-hosted debug (Arm ARM D2): hardware breakpoints (D2.9), watchpoints (D2.10) and
 * software step (D2.12), taken to EL1 as the Breakpoint (EC 0x30/0x31), Watchpoint
 * (0x34/0x35) and Software Step (0x32/0x33) exceptions. There is no EL2, no EL3 and no
 * AArch32, so EL1 is the only debug target and the PE is always Non-secure.
 *
 * The normal path pays nothing while debug is off. `refreshDebug()` keeps two flags on
 * the Cpu, recomputed on every write to a register that configures debug (MDSCR_EL1,
 * DBGBCR/DBGWCR, OSLAR/OSDLR/DBGPRCR) and at the start of every `run()` (restores):
 *  - `debugActive`: software step or a breakpoint might fire. `run()` then runs
 *    one-instruction blocks and calls `debugBefore()`/`debugAfter()` around each;
 *  - `watchActive`: a watchpoint might fire; the memory path calls `checkWatchpoint()`.
 * Both are configuration-level (OS lock, MDSCR_EL1.MDE/SS, some E bit set); whether debug
 * exceptions are enabled right now (the EL, MDSCR_EL1.KDE, PSTATE.D) is decided at each
 * check, so MSR DAIFSet/DAIFClr, exception entry and ERET need no hook of their own.
 */
import type { Cpu } from "./cpu.ts";
import { UNWIND } from "./exceptions.ts";
import { I, PSTATE } from "./state.ts";
import { NUM_BRPS, NUM_CTX_CMPS, NUM_WRPS, sysregIndex } from "./sysregs.ts";

/** Debug exception classes (Arm ARM D17.2.37 ESR_EL1.EC): lower EL, then same EL. */
export const DEBUG_EC = {
  BREAKPOINT_LOWER: 0x30,
  BREAKPOINT_CURRENT: 0x31,
  STEP_LOWER: 0x32,
  STEP_CURRENT: 0x33,
  WATCHPOINT_LOWER: 0x34,
  WATCHPOINT_CURRENT: 0x35,
} as const;

/** IFSC/DFSC 0b100010: "Debug exception" (breakpoints, watchpoints and steps alike). */
const FSC_DEBUG = 0x22;
/** Software step ISS: ISV (bit 24) says EX (bit 6, "the stepped instruction was a load-exclusive") is valid. */
const ISS_ISV = 1 << 24;
const ISS_EX = 1 << 6;
const ISS_WNR = 1 << 6;

/** MDSCR_EL1 fields (Arm ARM D19 MDSCR_EL1). */
export const MDSCR = { SS: 1 << 0, TDCC: 1 << 12, KDE: 1 << 13, MDE: 1 << 15 } as const;

interface Idx {
  mdscr: number;
  oslsr: number;
  osdlr: number;
  prcr: number;
  contextidr: number;
  bvr: number[];
  bcr: number[];
  wvr: number[];
  wcr: number[];
}
let ix: Idx | undefined;
/** Register indices, resolved on first use (sysregs.ts imports this module). */
function idx(): Idx {
  if (ix === undefined) {
    const n = (count: number, f: (k: number) => string) =>
      Array.from({ length: count }, (_, k) => sysregIndex(f(k)));
    ix = {
      mdscr: sysregIndex("MDSCR_EL1"),
      oslsr: sysregIndex("OSLSR_EL1"),
      osdlr: sysregIndex("OSDLR_EL1"),
      prcr: sysregIndex("DBGPRCR_EL1"),
      contextidr: sysregIndex("CONTEXTIDR_EL1"),
      bvr: n(NUM_BRPS, (k) => `DBGBVR${k}_EL1`),
      bcr: n(NUM_BRPS, (k) => `DBGBCR${k}_EL1`),
      wvr: n(NUM_WRPS, (k) => `DBGWVR${k}_EL1`),
      wcr: n(NUM_WRPS, (k) => `DBGWCR${k}_EL1`),
    };
  }
  return ix;
}

/**
 * The OS lock (OSLSR_EL1.OSLK) or the OS double lock (OSDLR_EL1.DLK with
 * DBGPRCR_EL1.CORENPDRQ = 0, DoubleLockStatus()) disable every debug exception.
 */
function locked(r: Uint32Array, x: Idx): boolean {
  return (r[x.oslsr]! & 2) !== 0 || ((r[x.osdlr]! & 1) !== 0 && (r[x.prcr]! & 1) === 0);
}

/** Recomputes `debugActive` and `watchActive` from the debug registers. */
export function refreshDebug(c: Cpu): void {
  const x = idx();
  const r = c.r;
  let bp = false;
  let wp = false;
  const mdscr = r[x.mdscr]!;
  const off = locked(r, x);
  if (!off && (mdscr & MDSCR.MDE) !== 0) {
    for (const i of x.bcr) if ((r[i]! & 1) !== 0) bp = true;
    for (const i of x.wcr) if ((r[i]! & 1) !== 0) wp = true;
  }
  c.debugActive = !off && ((mdscr & MDSCR.SS) !== 0 || bp);
  // The TLB's fast tags let accesses bypass the checks: drop them when watching starts.
  if (wp && !c.watchActive) c.flushTlb();
  c.watchActive = wp;
}

/**
 * AArch64.GenerateDebugExceptionsFrom(from, mask) with EL1 the debug target (D2.4
 * "Enabling debug exceptions"): always from EL0; from EL1 only with MDSCR_EL1.KDE set and
 * PSTATE.D (`masked`) clear; never under the OS lock or the double lock.
 */
function enabledFrom(r: Uint32Array, x: Idx, el: number, masked: boolean): boolean {
  if (locked(r, x)) return false;
  if (el === 0) return true;
  return el === 1 && (r[x.mdscr]! & MDSCR.KDE) !== 0 && !masked;
}

/** Whether debug exceptions are enabled at the current EL with the current PSTATE.D. */
export function debugExceptionsEnabled(c: Cpu): boolean {
  return enabledFrom(c.r, idx(), c.el, (c.r[I.PSTATE]! & PSTATE.D) !== 0);
}

/**
 * AArch64.StateMatch for an AArch64-only PE without EL2/EL3 (D2.9.4, D2.10.4, "Execution
 * conditions for which a breakpoint/watchpoint generates debug events"): PMC/PAC bit 0
 * matches EL1, bit 1 EL0. SSC = 0b00 and 0b01 (Non-secure) match; 0b10 (Secure only)
 * never does, and 0b11 and PxC = 0b00 are reserved combinations here: CONSTRAINED
 * UNPREDICTABLE, and this implementation treats them as disabled. HMC only adds EL2.
 * `el` is the EL of the access's privilege (EL0 for LDTR/STTR at EL1).
 */
function stateMatch(ctl: number, el: number): boolean {
  if (((ctl >>> 14) & 3) >= 2) return false;
  return ((ctl >>> 1) & (el === 0 ? 2 : 1)) !== 0;
}

/**
 * A link to breakpoint `lbn` (LBN) holds when that breakpoint is context-aware (one of
 * the last NUM_CTX_CMPS), enabled, of type "linked Context ID match" (BT = 0b0011), and
 * CONTEXTIDR_EL1 equals its DBGBVR[31:0] (AArch64.BreakpointValueMatch with linked_to).
 * A link to anything else never matches (CONSTRAINED UNPREDICTABLE: disabled).
 */
function linkedContextMatch(r: Uint32Array, x: Idx, lbn: number): boolean {
  if (lbn >= NUM_BRPS || lbn < NUM_BRPS - NUM_CTX_CMPS) return false;
  const bcr = r[x.bcr[lbn]!]!;
  return (bcr & 1) !== 0 && ((bcr >>> 20) & 0xf) === 0b0011 && r[x.contextidr] === r[x.bvr[lbn]!];
}

/**
 * AArch64.BreakpointMatch for the instruction at (lo, hi): BT = 0b0000 unlinked address,
 * 0b0001 linked address, 0b0010 unlinked Context ID (context-aware breakpoints only).
 * Addresses compare VA[48:2] with DBGBVR[48:2] (bits 63:49 are RESS copies of bit 48).
 * BAS is RES1 without AArch32, so it selects the whole A64 instruction. Other BT values
 * (address mismatch, VMID) need AArch32 or EL2 and are treated as disabled.
 */
function breakpointMatch(r: Uint32Array, x: Idx, el: number, lo: number, hi: number): boolean {
  for (let n = 0; n < NUM_BRPS; n++) {
    const bcr = r[x.bcr[n]!]!;
    if ((bcr & 1) === 0 || !stateMatch(bcr, el)) continue;
    const bv = x.bvr[n]!;
    const addr = ((r[bv]! ^ lo) & ~3) === 0 && ((r[bv + 1]! ^ hi) & 0x1ffff) === 0;
    switch ((bcr >>> 20) & 0xf) {
      case 0b0000:
        if (addr) return true;
        break;
      case 0b0001:
        if (addr && linkedContextMatch(r, x, (bcr >>> 16) & 0xf)) return true;
        break;
      case 0b0010:
        if (n >= NUM_BRPS - NUM_CTX_CMPS && r[x.contextidr] === r[bv]) return true;
        break;
    }
  }
  return false;
}

/** Load-exclusive (LDXR/LDAXR/LDXP/LDAXP, any size): size 001000 o2=0 L=1 (Arm ARM C4.1.94). */
function isLoadExclusive(insn: number): boolean {
  return (insn & 0x3fc00000) === 0x08400000;
}

/** Takes a debug exception from the run loop (not inside an executor). */
function take(c: Cpu, ec: number, iss: number, returnToNext: boolean): void {
  try {
    c.syncException(ec, iss, undefined, undefined, returnToNext);
  } catch (e) {
    if (e !== UNWIND) throw e;
  }
}

function stepIss(c: Cpu, stepped: boolean): number {
  return FSC_DEBUG | (stepped ? ISS_ISV | (c.stepEx ? ISS_EX : 0) : 0);
}

/**
 * Before an instruction, with `debugActive`: the Software Step exception of the
 * active-pending state (highest priority, D2.12.4), then breakpoints (after the fetch's
 * own faults: the run loop has translated the fetch page already). Marks the instruction
 * as stepped in the active-not-pending state. Returns true if an exception was taken
 * (at its vector now; the instruction neither ran nor counts).
 */
export function debugBefore(c: Cpu, insn: number): boolean {
  const r = c.r;
  const x = idx();
  c.stepArmed = false;
  if (!enabledFrom(r, x, c.el, (r[I.PSTATE]! & PSTATE.D) !== 0)) return false;
  const mdscr = r[x.mdscr]!;
  const lower = c.el === 0;
  if ((mdscr & MDSCR.SS) !== 0) {
    if ((r[I.PSTATE]! & PSTATE.SS) === 0) {
      // Active-pending: the step exception comes before this instruction. ISV says whether
      // it is the completion of a stepped instruction whose exception was deferred.
      const iss = stepIss(c, c.stepDone);
      take(c, lower ? DEBUG_EC.STEP_LOWER : DEBUG_EC.STEP_CURRENT, iss, false);
      return true;
    }
    c.stepArmed = true;
    c.stepEx = isLoadExclusive(insn);
  }
  if ((mdscr & MDSCR.MDE) !== 0 && breakpointMatch(r, x, c.el, c.pcLo, c.pcHi)) {
    // ELR = the instruction; if it was being stepped, SPSR.SS stays 1 and it is stepped again.
    take(c, lower ? DEBUG_EC.BREAKPOINT_LOWER : DEBUG_EC.BREAKPOINT_CURRENT, FSC_DEBUG, false);
    return true;
  }
  return false;
}

/**
 * After an instruction that began active-not-pending completed (SSAdvance(): PSTATE.SS
 * becomes 0): the Software Step exception is taken now, before the next instruction, with
 * ELR = the next instruction and ISV = 1, if stepping is still enabled where the PE now
 * is. Otherwise the PE stays active-pending until debug exceptions are enabled again.
 * `exiting`: the instruction ends the run (HVC, SMC, WFI...): the owner finishes it
 * first, and the exception is taken before the next instruction.
 */
export function debugAfter(c: Cpu, exiting: boolean): void {
  const r = c.r;
  c.stepArmed = false;
  r[I.PSTATE] = (r[I.PSTATE]! & ~PSTATE.SS) >>> 0;
  c.stepDone = true;
  if (exiting) return;
  const x = idx();
  if ((r[x.mdscr]! & MDSCR.SS) === 0 || !enabledFrom(r, x, c.el, (r[I.PSTATE]! & PSTATE.D) !== 0)) return;
  take(c, c.el === 0 ? DEBUG_EC.STEP_LOWER : DEBUG_EC.STEP_CURRENT, stepIss(c, true), true);
}

/**
 * PSTATE.SS after ERET with `spsr` (DebugExceptionReturnSS(), D2.12.5): SPSR.SS is
 * copied only when MDSCR_EL1.SS is set and debug exceptions are disabled where the ERET
 * executes but enabled at its destination (EL and SPSR.D); otherwise 0. Call before
 * PSTATE changes. `spsr` already holds the current mode for an illegal return.
 */
export function returnSS(c: Cpu, spsr: number): number {
  if (!c.debugActive) return 0;
  const r = c.r;
  const x = idx();
  if ((r[x.mdscr]! & MDSCR.SS) === 0) return 0;
  const atSource = enabledFrom(r, x, c.el, (r[I.PSTATE]! & PSTATE.D) !== 0);
  const atDest = enabledFrom(r, x, (spsr >>> 2) & 3, (spsr & PSTATE.D) !== 0);
  return !atSource && atDest ? spsr & PSTATE.SS : 0;
}

/**
 * After ERET has set PSTATE: if the destination is active-pending (step enabled there,
 * PSTATE.SS = 0), the Software Step exception is taken at once, before the first
 * instruction there (ELR = that instruction). ISV = 1 only if the ERET itself was the
 * stepped instruction. Throws (the ERET's executor unwinds) when it takes the exception.
 */
export function stepAfterReturn(c: Cpu, eretStepped: boolean): void {
  const r = c.r;
  const x = idx();
  if ((r[x.mdscr]! & MDSCR.SS) === 0 || (r[I.PSTATE]! & PSTATE.SS) !== 0) return;
  if (!enabledFrom(r, x, c.el, (r[I.PSTATE]! & PSTATE.D) !== 0)) return;
  c.stepEx = false;
  c.syncException(
    c.el === 0 ? DEBUG_EC.STEP_LOWER : DEBUG_EC.STEP_CURRENT,
    stepIss(c, eretStepped),
    undefined,
    undefined,
    true,
  );
}

/**
 * AArch64.WatchpointByteMatch over the bytes [lo, lo + size): DBGWVR[48:3] (or [48:2]
 * when DBGWVR[2] is set: a word) selects the doubleword, BAS its bytes; a MASK of 3..31
 * watches the aligned 2^MASK-byte block instead (BAS should then be all ones; other BAS
 * values are CONSTRAINED UNPREDICTABLE and ignored here). MASK 1 and 2 are reserved:
 * disabled.
 */
function watchValueMatch(
  wvLo: number,
  wvHi: number,
  wcr: number,
  lo: number,
  hi: number,
  size: number,
): boolean {
  const bas = (wcr >>> 5) & 0xff;
  const mask = (wcr >>> 24) & 0x1f;
  if (mask === 1 || mask === 2) return false;
  const bottom = (wvLo & 4) !== 0 ? 2 : 3;
  for (let b = 0; b < size; b++) {
    const s = lo + b;
    const vlo = s >>> 0;
    const vhi = s > 0xffffffff ? (hi + 1) >>> 0 : hi;
    if (((vhi ^ wvHi) & 0x1ffff) !== 0) continue;
    if (mask > bottom) {
      if ((vlo ^ wvLo) >>> mask === 0) return true;
      continue;
    }
    if ((vlo ^ wvLo) >>> bottom !== 0) continue;
    if (((bas >>> (vlo & ((1 << bottom) - 1))) & 1) !== 0) return true;
  }
  return false;
}

/** What checkWatchpoint needs of the PE: MemoryPath (memory.ts) has all of it. */
export interface WatchContext {
  readonly r: Uint32Array;
  readonly el: number;
  syncException(ec: number, iss: number, farLo?: number, farHi?: number, returnToNext?: boolean): never;
}

/**
 * The memory path calls this, when `c.watchActive`, for every data access of `size`
 * bytes at virtual address (lo, hi) that translated without a fault, before the access
 * is performed (AArch64.CheckDebug after translation: MMU faults have priority, D1.13.2).
 * `accessEl` is the EL whose privilege the access uses (0 for LDTR/STTR). A match takes
 * the Watchpoint exception: EC 0x34/0x35, ISS WnR | DFSC 0x22, FAR = (lo, hi), ELR = the
 * instruction; it throws like every synchronous exception.
 */
export function checkWatchpoint(
  c: WatchContext,
  lo: number,
  hi: number,
  size: number,
  isWrite: boolean,
  accessEl: number = c.el,
): void {
  const r = c.r;
  const x = idx();
  if ((r[x.mdscr]! & MDSCR.MDE) === 0) return;
  if (!enabledFrom(r, x, c.el, (r[I.PSTATE]! & PSTATE.D) !== 0)) return;
  lo >>>= 0;
  for (let n = 0; n < NUM_WRPS; n++) {
    const wcr = r[x.wcr[n]!]!;
    if ((wcr & 1) === 0) continue;
    if (((wcr >>> 3) & 3 & (isWrite ? 2 : 1)) === 0) continue; // LSC
    if (!stateMatch(wcr, accessEl)) continue;
    if (((wcr >>> 20) & 1) !== 0 && !linkedContextMatch(r, x, (wcr >>> 16) & 0xf)) continue; // WT
    const wv = x.wvr[n]!;
    if (!watchValueMatch(r[wv]!, r[wv + 1]!, wcr, lo, hi, size)) continue;
    const ec = c.el === 0 ? DEBUG_EC.WATCHPOINT_LOWER : DEBUG_EC.WATCHPOINT_CURRENT;
    c.syncException(ec, (isWrite ? ISS_WNR : 0) | FSC_DEBUG, lo, hi);
  }
}
