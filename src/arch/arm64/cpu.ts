/**
 * One AArch64 processing element: the interpreter loop and exception entry/return for
 * EL0 and EL1. The memory-access path (software TLB, stage-1 MMU) is memory.ts.
 *
 * The CPU knows nothing of the hypervisor above it. Whatever it cannot finish by itself
 * (HVC, SMC, WFI, a user-mode SVC, an MMIO access) it reports as a `CpuExit` from `run()`.
 */
import { ACC } from "./access.ts";
import { CodeCache } from "./code-cache.ts";
import { debugAfter, debugBefore, refreshDebug, returnSS, stepAfterReturn } from "./debug.ts";
import type { Exec } from "./decoder.ts";
import { EC, UNWIND, VECTOR } from "./exceptions.ts";
import { isBCond } from "./fusion.ts";
import { getDecoder } from "./isa.ts";
import { Jit, type JitBlock, type JitHost, type JitOptions } from "./jit/jit.ts";
import { MemoryPath, type PhysicalBus } from "./memory.ts";
import { pmuBudget, pmuSync, refreshPmu } from "./pmu.ts";
import { xr, xw } from "./regs.ts";
import { R64 } from "./ret64.ts";
import { I, OFF, PSTATE, VCPU_STRIDE } from "./state.ts";
import { SYSREGS, type SysRegAccess, sysregIndex } from "./sysregs.ts";
import { TLB } from "./tlb.ts";

/** Why `run()` returned. Allocated only when the loop stops, never per instruction. */
export type CpuExit =
  | { kind: "budget" }
  /** A synchronous exception that the owner handles (user mode: everything from EL0). */
  | { kind: "exception"; ec: number; iss: number; far: bigint | null }
  | { kind: "hvc"; imm: number }
  | { kind: "smc"; imm: number }
  | { kind: "hlt"; imm: number }
  | { kind: "wfi" }
  | { kind: "wfe" }
  /** A bug in the emulator, reported instead of thrown so the VMM never crashes. */
  | { kind: "internal-error"; message: string }
  /** The guest takes the same exception at its own vector, over and over. */
  | { kind: "exception-loop"; message: string };

const EXIT_BUDGET: CpuExit = { kind: "budget" };
/** Consecutive identical exceptions taken at the vector before a guest counts as stuck. */
const EXCEPTION_LOOP_LIMIT = 64;
const EXIT_WFI: CpuExit = { kind: "wfi" };
const EXIT_WFE: CpuExit = { kind: "wfe" };

export { ACC, type PhysicalBus };

/** Generic timer, provided by the owner (hv layer) or a simple default. */
export interface TimerProvider {
  readonly frequency: number;
  counter(c: Cpu, virtual: boolean): bigint;
  readReg(c: Cpu, virtual: boolean, reg: "CTL" | "CVAL" | "TVAL"): bigint;
  writeReg(c: Cpu, virtual: boolean, reg: "CTL" | "CVAL" | "TVAL", value: bigint): void;
}

/** Counter derived from retired instructions; used when nobody supplies a timer. */
export class InstructionCountTimer implements TimerProvider {
  readonly frequency = 62_500_000;
  private regs = new Map<string, bigint>();
  counter(c: Cpu): bigint {
    return c.retired;
  }
  readReg(c: Cpu, virtual: boolean, reg: "CTL" | "CVAL" | "TVAL"): bigint {
    if (reg === "TVAL") {
      const cval = this.regs.get(`${virtual}CVAL`) ?? 0n;
      return BigInt.asUintN(64, BigInt.asIntN(32, cval - this.counter(c)));
    }
    return this.regs.get(`${virtual}${reg}`) ?? 0n;
  }
  writeReg(c: Cpu, virtual: boolean, reg: "CTL" | "CVAL" | "TVAL", value: bigint): void {
    if (reg === "TVAL")
      this.regs.set(`${virtual}CVAL`, BigInt.asUintN(64, this.counter(c) + BigInt.asIntN(32, value)));
    else this.regs.set(`${virtual}${reg}`, value);
  }
}

export interface CpuOptions {
  memory: WebAssembly.Memory;
  /** Index of this vCPU: its state block starts at index * VCPU_STRIDE. */
  index: number;
  bus: PhysicalBus;
  /**
   * User mode (qemu-aarch64 style): every exception from EL0 exits to the owner, and
   * EL0-visible registers behave as Linux configures them.
   */
  userMode?: boolean;
  timer?: TimerProvider;
  /**
   * Translate hot blocks to WebAssembly (jit/): options, or true for the defaults, or the
   * code cache of another vCPU of the same memory to share (the VM's).
   */
  jit?: JitOptions | boolean | Jit;
  /** The decoded code of another vCPU of the same memory and translator to share (the VM's). */
  code?: CodeCache;
}

const SCTLR = sysregIndex("SCTLR_EL1");
/** SCTLR_EL1.nTWI / nTWE: EL0 may wait in WFI / WFE without trapping. */
const SCTLR_NTWI = 1 << 16;
const SCTLR_NTWE = 1 << 18;
/** ISS of a trapped WFx from AArch64: CV 1, COND 0b1110 (as QEMU's syn_wfx), TI in bits 1:0. */
const WFX_ISS = (1 << 24) | (0xe << 20);
const ESR = sysregIndex("ESR_EL1");
const FAR = sysregIndex("FAR_EL1");
const VBAR = sysregIndex("VBAR_EL1");
const CPACR = sysregIndex("CPACR_EL1");

/** An exception a vCPU has just taken to EL1 (Cpu.onException). */
export interface ExceptionTaken {
  vcpu: number;
  kind: "sync" | "irq" | "fiq" | "serror";
  fromEl: number;
  /** ESR_EL1 and FAR_EL1 as they now are (FAR meaningful for aborts only). */
  esr: number;
  far: bigint;
  elr: bigint;
  spsr: number;
  /** The vector, and PSTATE at it. */
  pc: bigint;
  pstate: number;
}

export class Cpu extends MemoryPath implements JitHost {
  /** This vCPU's state block as bytes / float views, for FP and SIMD lanes. */
  readonly r8: Uint8Array;
  readonly f32: Float32Array;
  readonly f64: Float64Array;
  readonly dvState: DataView;
  readonly userMode: boolean;
  timer: TimerProvider;
  /** Decoded code, by word and by physical page (code-cache.ts). */
  readonly code: CodeCache;
  /** The translator, when on (null: interpret everything). */
  readonly jit: Jit | null;
  /** Byte offset of this vCPU's state block in the memory (translated code's base). */
  readonly stateBase: number;

  /** Address of the instruction being executed. */
  pcLo = 0;
  pcHi = 0;
  /** Instructions executed, including those that ended in a synchronous exception. */
  retired = 0n;
  private retiredSmall = 0;
  /**
   * Instructions executed so far in the run() in progress, so that a counter read in the
   * middle of a run sees exact time whatever the chunking of runs.
   */
  private runN = 0;
  /**
   * While a block runs, instructions completed in this run() are runBias + pcLo / 4
   * (saves a store per instruction); `inBlock` says whether that formula applies.
   */
  private runBias = 0;
  private inBlock = false;
  /**
   * n at the entry of the translated code running now: with the translation's count
   * (OFF.JIT_COUNT: completed instructions minus PC[31:2] of the current block's start) it
   * gives runBias, for helpers and exceptions inside chained blocks.
   */
  private jitBias = 0;
  /** u32 index of the current stack pointer (SP_EL0 or SP_EL1). */
  sp: number = I.SP_EL0;
  /** Set when a level-sensitive interrupt line is asserted (by the GIC / owner). */
  irqLine = false;
  fiqLine = false;
  /** True when IRQ/FIQ must be examined before the next instruction. */
  private irqCheck = false;
  private exit: CpuExit | null = null;
  /** Leave the inner interpreter loop after this instruction (exit requested, fetch state changed). */
  private stop = false;
  /** HLT traps to the owner (Arm semihosting uses HLT #0xF000) instead of being UNDEFINED. */
  trapHlt = false;
  /** SEV: the owner sets the event register of every other PE. */
  onSendEvent: ((c: Cpu) => void) | null = null;
  /** System registers the owner adds (e.g. the GIC CPU interface), by sysregKey(). */
  extraSysregs: Map<number, SysRegAccess> | null = null;
  /**
   * Self-hosted debug (debug.ts keeps these): a breakpoint or software step may fire, so
   * run() checks around every instruction; a watchpoint may fire, so the memory path calls
   * checkWatchpoint(). Recomputed from the debug registers, never saved.
   */
  debugActive = false;
  watchActive = false;
  /** The instruction in progress is being software-stepped (and is a load-exclusive). */
  stepArmed = false;
  stepEx = false;
  /** A stepped instruction completed and its Software Step exception is still due. */
  stepDone = false;
  /**
   * PMU (pmu.ts): some enabled counter counts instructions; the instruction count its
   * registers are up to date with; PMCR_EL0.D's cycle remainder; the overflow IRQ level.
   */
  pmuActive = false;
  pmuLast = 0;
  pmuDivider = 0;
  pmuIrqLevel = false;
  /** The PMU overflow interrupt request changed (the hv connects it to PPI 23). */
  onPmuIrq: ((c: Cpu, level: boolean) => void) | null = null;

  constructor(opts: CpuOptions) {
    super(opts.memory, opts.index, opts.bus);
    const buf = opts.memory.buffer;
    const base = opts.index * VCPU_STRIDE;
    this.r8 = new Uint8Array(buf, base, VCPU_STRIDE);
    this.f32 = new Float32Array(buf, base, VCPU_STRIDE / 4);
    this.f64 = new Float64Array(buf, base, VCPU_STRIDE / 8);
    this.dvState = new DataView(buf, base, VCPU_STRIDE);
    this.userMode = opts.userMode ?? false;
    this.timer = opts.timer ?? new InstructionCountTimer();
    this.stateBase = base;
    this.jit =
      opts.jit instanceof Jit ? opts.jit : opts.jit ? new Jit(this, opts.jit === true ? {} : opts.jit) : null;
    // A page's translations live in the translator's pages: sharing one's decoded pages
    // means sharing its translator.
    if (opts.code !== undefined && opts.code.jit !== this.jit)
      throw new Error("a shared code cache needs the translator it was made with");
    this.code = opts.code ?? new CodeCache(getDecoder(), this.jit, undefinedInstruction);
    this.jit?.attach(this);
    this.reset();
  }

  /** Architectural reset: registers zero, EL1h with DAIF masked (or EL0t in user mode). */
  reset(): void {
    // Everything the CPU owns; the MP-state word after EVENT belongs to the hv layer.
    this.r.fill(0, 0, (OFF.EVENT >> 2) + 1);
    this.r.fill(0, OFF.SYSREGS >> 2, OFF.SYSREGS_END >> 2);
    for (const s of SYSREGS) {
      if (s.slot < 0) continue;
      this.r[I.SYSREGS + s.slot * 2] = s.reset[0];
      this.r[I.SYSREGS + s.slot * 2 + 1] = s.reset[1];
    }
    if (this.userMode) {
      // Linux's EL0 view: SCTLR_EL1 with UCI, UCT, DZE, nTWE, nTWI set.
      this.r[SCTLR] = (this.r[SCTLR]! | (1 << 26) | (1 << 15) | (1 << 14) | (1 << 18) | (1 << 16)) >>> 0;
      this.r[I.PSTATE] = 0;
    } else {
      this.r[I.PSTATE] = PSTATE.DAIF | 0x5; // EL1h
    }
    this.r[sysregIndex("MPIDR_EL1")] = (0x8000_0000 | this.mpidrAffinity()) >>> 0;
    this.pstateChanged();
    this.flushTlb();
  }

  /**
   * MPIDR affinity as QEMU's virt assigns it with GICv3: clusters of 16, so that one
   * ICC_SGI1R_EL1 target list (16 bits of Aff0) covers a cluster.
   */
  mpidrAffinity(): number {
    return ((this.index >> 4) << 8) | (this.index & 15);
  }

  // ---------------------------------------------------------------------------
  // Registers

  /** u32 index of Xn for reads where 31 means XZR. */
  static xr(n: number): number {
    return xr(n);
  }
  /** u32 index of Xn for writes where 31 means XZR (the write is discarded). */
  static xw(n: number): number {
    return xw(n);
  }
  /** u32 index of Xn where 31 means the current SP. */
  xs(n: number): number {
    return n === 31 ? this.sp : n * 2;
  }
  /** Reads Xn (31 = XZR) as a BigInt, for slow paths and tests. */
  getX(n: number): bigint {
    const i = Cpu.xr(n);
    return (BigInt(this.r[i + 1]!) << 32n) | BigInt(this.r[i]!);
  }
  setX(n: number, v: bigint): void {
    const i = Cpu.xw(n);
    this.r[i] = Number(v & 0xffffffffn);
    this.r[i + 1] = Number((v >> 32n) & 0xffffffffn);
  }
  get pc(): bigint {
    return (BigInt(this.r[I.PC + 1]!) << 32n) | BigInt(this.r[I.PC]!);
  }
  set pc(v: bigint) {
    this.r[I.PC] = Number(v & 0xffffffffn);
    this.r[I.PC + 1] = Number((v >> 32n) & 0xffffffffn);
  }
  get pstate(): number {
    return this.r[I.PSTATE]!;
  }
  set pstate(v: number) {
    this.r[I.PSTATE] = v >>> 0;
    this.pstateChanged();
  }
  /** Sets PC (branch target). */
  branch(lo: number, hi: number): void {
    this.r[I.PC] = lo;
    this.r[I.PC + 1] = hi;
  }
  /** Must be called whenever PSTATE.M or DAIF change outside the usual paths. */
  pstateChanged(): void {
    const p = this.r[I.PSTATE]!;
    const el = (p >>> 2) & 3;
    if (el !== this.el) {
      // Fetch permissions differ per EL (UXN/PXN): look the fetch page up again.
      this.el = el;
      this.invalidateFetch();
    }
    this.accessElChanged();
    this.sp = this.el !== 0 && (p & 1) !== 0 ? I.SP_EL1 : I.SP_EL0;
    this.interruptsChanged();
  }
  /** Re-evaluate whether an interrupt might be taken before the next instruction. */
  interruptsChanged(): void {
    this.irqCheck = this.irqLine || this.fiqLine;
    // Ends the current block so the line is examined before the next instruction.
    if (this.irqCheck) this.stop = true;
  }
  setIrqLine(irq: boolean, fiq = this.fiqLine): void {
    this.irqLine = irq;
    this.fiqLine = fiq;
    this.interruptsChanged();
  }

  // ---------------------------------------------------------------------------
  // The interpreter loop

  /**
   * Executes up to `budget` instructions; returns why it stopped. Never throws.
   *
   * Instructions run in blocks: straight-line runs of one page that end with the first
   * instruction of the "branches, exception generation and system" class (the only class
   * that changes PC or the CPU's mode without throwing). Inside a block the per-instruction
   * work is the decode-cache check, PC and the call; interrupts, page changes and PC
   * alignment are checked between blocks. Anything that would have been seen before the
   * next instruction (an interrupt line raised by an MMIO store, an exit) sets `stop`,
   * which ends the block after the current instruction, so the result is the same as
   * checking before every instruction.
   */
  run(budget: number): CpuExit {
    const r = this.r;
    const m32 = this.m32;
    let n = 0;
    this.exit = null;
    refreshDebug(this);
    // PMU registers may have been restored: re-base, and stop where an overflow IRQ fires.
    this.pmuActive = false;
    refreshPmu(this);
    if (this.pmuActive) budget = pmuBudget(this, budget);
    while (n < budget) {
      // The fetch page lives in locals; anything that may change it (an exception,
      // invalidateFetch) leaves the inner loop through `this.stop`, and it is reloaded here.
      this.stop = false;
      let pageLo = this.fetchPageLo;
      let pageHi = this.fetchPageHi;
      let base = this.fetchBase;
      let execs = this.fetchExecs;
      let words = this.fetchWords;
      let ends = this.fetchEnds;
      let fused = this.fetchFused;
      let jitTable = this.fetchJit;
      let heat = this.fetchHeat;
      const jit = this.jit;
      jit?.use(this);
      try {
        while (n < budget) {
          if (this.irqCheck) {
            if (this.takePendingInterrupt()) {
              // Entering the vector set `stop`; nothing else can have (no instruction ran).
              this.stop = false;
              continue;
            }
          }
          const lo = r[I.PC]!;
          const hi = r[I.PC + 1]!;
          // The address of the next instruction, for a fault taken on its fetch.
          this.pcLo = lo;
          this.pcHi = hi;
          if ((lo & 3) !== 0) this.syncException(EC.PC_ALIGN, 0, lo, hi);
          if ((lo & 0xfffff000) >>> 0 !== pageLo || hi !== pageHi) {
            this.setFetchPage(lo, hi);
            pageLo = this.fetchPageLo;
            pageHi = this.fetchPageHi;
            base = this.fetchBase;
            execs = this.fetchExecs;
            words = this.fetchWords;
            ends = this.fetchEnds;
            fused = this.fetchFused;
            jitTable = this.fetchJit;
            heat = this.fetchHeat;
          }
          let slot = (lo >>> 2) & 1023;
          let end = ends[slot]!;
          if (end === 0) {
            end = ends[slot] = blockEnd(m32, base, slot);
            // The extent comes from memory. A cached word that memory no longer holds is
            // decoded again when it runs (and ends the block there if it branches):
            // translated code may run the words memory holds now without caching them,
            // and memory may later hold the cached ones again (Linux patches NOPs to
            // branches and back), which would then pass for checked.
            for (let k = slot; k < end; k++) if (words[k] !== m32[base + k]) execs[k] = undefined;
          }
          if (this.debugActive) {
            // Breakpoints and software step: one instruction at a time (debug.ts).
            if (debugBefore(this, m32[base + slot]!)) {
              if (this.stop) break;
              continue;
            }
            end = slot + 1;
          }
          const left = budget - n;
          if (jit !== null && !this.debugActive && !this.watchActive && pageLo !== 0xfffff000) {
            let jb = jitTable[slot];
            // What a translation must have been made for to run here (besides this VA).
            const spOff = this.sp * 4;
            const regime = this.el === 0 ? 0 : TLB_REGIME_BYTES;
            // A translation made for another VA of this physical page (the boot's identity
            // map of the kernel, one page mapped twice), another stack pointer or another
            // EL: once the block has started here as often again as it took to become hot,
            // it is translated for this one instead (one translation per slot; an alias in
            // use alternately costs one translation per threshold starts at most).
            if (
              jb != null &&
              (jb.pageLo !== pageLo ||
                jb.pageHi !== pageHi ||
                jb.spOff !== spOff ||
                jb.tlbRegimeBytes !== regime) &&
              ++heat[slot]! >= 2 * jit.threshold
            ) {
              jit.forget(jitTable, slot);
              heat[slot] = jit.threshold - 1;
              jb = undefined;
            }
            if (jb === undefined || jb === null) {
              const h = ++heat[slot]!;
              if (h >= jit.threshold && (jb === undefined || h >= jit.threshold * 4)) {
                heat[slot] = jit.threshold;
                jit.request(
                  {
                    table: jitTable,
                    slot,
                    words: m32.subarray(base + slot, base + end),
                    host: (base + slot) * 4,
                    pageLo,
                    pageHi,
                    spOff,
                    tlbRegimeBytes: regime,
                    mode: r[I.PSTATE]! & PSTATE.M,
                  },
                  jb === null,
                );
                jb = jitTable[slot];
              }
            }
            if (
              jb !== undefined &&
              jb !== null &&
              jb.len <= left &&
              jb.pageLo === pageLo &&
              jb.pageHi === pageHi &&
              jb.spOff === spOff &&
              jb.tlbRegimeBytes === regime
            ) {
              this.jitBias = n;
              this.runBias = n - (lo >>> 2);
              this.inBlock = true;
              jit.entries++;
              jit.noteJump(lo, hi, jb);
              // Through the hub (jit/hub.ts), which also runs the blocks of other modules
              // the dispatchers find next (their page, mode and budget checked); no
              // interrupt can have become takeable without a helper ending the chain.
              const k = jit.enter(this.stateBase, left, jb.jumpWord);
              this.inBlock = false;
              if (k > 0) {
                n += k;
                jit.executed += k;
                this.runN = n;
                if (this.stop) break;
                continue;
              }
              jit.stale(jitTable, slot, lo);
              heat[slot] = 0;
            }
          }
          // A compare and the B.cond that ends the block run fused (fusion.ts), unless the
          // budget cuts the block short.
          let fuseAt = -1;
          if (end - slot > left) end = slot + left;
          else if (end - slot >= 2 && isBCond(words[end - 1]!)) fuseAt = end - 2;
          this.runBias = n - (((pageLo >>> 2) + slot) >>> 0);
          this.inBlock = true;
          for (;;) {
            if (slot === fuseAt) {
              const w0 = m32[base + slot]!;
              const w1 = m32[base + slot + 1]!;
              if (
                words[slot] === w0 &&
                words[slot + 1] === w1 &&
                execs[slot] !== undefined &&
                execs[slot + 1] !== undefined
              ) {
                let fx = fused[slot];
                if (fx === undefined) fx = fused[slot] = this.code.fuse(w0, w1);
                if (fx !== null) {
                  const pc = (pageLo + slot * 4) >>> 0;
                  this.pcLo = pc;
                  r[I.PC] = pc + 4;
                  fx(this);
                  n += 2;
                  break;
                }
              }
            }
            const insn = m32[base + slot]!;
            let ex = execs[slot];
            if (ex === undefined || words[slot] !== insn) {
              const changed = ex !== undefined;
              ex = this.code.executor(insn);
              execs[slot] = ex;
              words[slot] = insn;
              // The fused pairs with this slot were made from the words decoded before.
              if (slot > 0) fused[slot - 1] = undefined;
              fused[slot] = undefined;
              // Block boundaries were computed from memory as it was then. A word that
              // changed may have moved them; so may a word decoded for the first time
              // that ends a block (a block computed before it was written would run past
              // it). Recompute them, and end this block after the instruction unless it
              // ends here anyway. A first word that ends no block can only have made a
              // block end early, which is harmless: cold code runs as whole blocks.
              if (changed || endsBlock(insn)) {
                ends.fill(0);
                if (changed || end > slot + 1) this.stop = true;
              }
            }
            const pc = (pageLo + slot * 4) >>> 0;
            this.pcLo = pc;
            r[I.PC] = pc + 4;
            ex(this);
            ++n;
            if (this.stop || ++slot >= end) break;
          }
          this.inBlock = false;
          this.runN = n;
          if (pageLo === 0xfffff000) this.carryPastPage(hi);
          if (this.stepArmed) debugAfter(this, this.exit !== null);
          if (this.stop) break;
        }
      } catch (e) {
        if (e !== UNWIND) {
          this.inBlock = false;
          this.retire(n);
          return { kind: "internal-error", message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
        }
        // The instruction that took the exception counts as a step, so a guest stuck in
        // an exception loop still runs out of budget. Inside a translated block, n has not
        // counted the block's instructions before the faulting one: PC says how many ran.
        if (this.inBlock) n = this.runBias + (this.pcLo >>> 2);
        this.inBlock = false;
        this.runN = ++n;
        // An exception taken to EL1 carries on at its vector.
      }
      if (this.exit !== null) break;
    }
    this.retire(n);
    if (this.pmuActive) pmuSync(this);
    const ex = this.exit ?? EXIT_BUDGET;
    this.exit = null;
    return ex;
  }

  /**
   * Blocks set only PC[31:0]: after the instruction at xxxx_xxxx_ffff_fffc falls through,
   * carry into PC[63:32]. PC = hi:0 with hi unchanged means a fall-through unless a
   * branch to a register (BR/BLR/RET/ERET) chose exactly that address; immediate
   * branches cannot reach 4 GiB away, and exceptions never get here.
   */
  private carryPastPage(hi: number): void {
    const r = this.r;
    if (this.pcLo !== 0xfffffffc || r[I.PC] !== 0 || r[I.PC + 1] !== hi) return;
    const insn = this.fetchWords[1023]!;
    if ((insn & 0xfe000000) >>> 0 !== 0xd6000000) r[I.PC + 1] = (hi + 1) >>> 0;
  }

  private retire(n: number): void {
    this.lastRun = n;
    this.runN = 0;
    this.retiredSmall += n;
    if (this.retiredSmall > 1e9) {
      this.retired += BigInt(this.retiredSmall);
      this.retiredSmall = 0;
    }
  }

  /** Instructions the last run() retired (instructionCount grew by as many). */
  lastRun = 0;

  /** Retired instructions so far (exact). */
  get instructionCount(): bigint {
    const inRun = this.inBlock ? this.runBias + (this.pcLo >>> 2) : this.runN;
    return this.retired + BigInt(this.retiredSmall + inRun);
  }

  /**
   * Ends the current run() after this instruction with a "budget" exit, so the owner can
   * re-plan (e.g. a timer was reprogrammed and the next deadline moved).
   */
  endChunk(): void {
    if (this.exit === null) this.exit = EXIT_BUDGET;
    this.stop = true;
  }

  /** Stop the loop after the current instruction and report `e`. */
  requestExit(e: CpuExit): void {
    this.exit = e;
    this.stop = true;
  }

  /** Clears the decode cache (self-modifying code is handled here by never caching by address). */
  flushDecodeCache(): void {
    this.code.clear();
    this.fetchPageLo = -1;
    this.jit?.flush();
  }

  // ---------------------------------------------------------------------------
  // Helpers of translated code (JitHost): each runs at the instruction's PC, as the
  // interpreter would, so that an exception it throws is exact.

  jitExec(ex: Exec, pc: number): number {
    this.pcLo = pc;
    // PC[63:32] of the running block: its entry (from JS or a chain) stored the whole PC.
    this.pcHi = this.r[I.PC + 1]!;
    this.runBias = this.jitBias + (this.r[OFF.JIT_COUNT >> 2]! | 0);
    this.r[I.PC] = pc + 4;
    ex(this);
    // Debug switched on (an MSR to MDSCR_EL1 or a breakpoint register): the interpreter
    // must run the next instruction, with its checks.
    return this.stop || this.debugActive || this.watchActive ? 1 : 0;
  }
  jitLoad(lo: number, hi: number, size: number, pc: number): number {
    this.pcLo = pc;
    this.pcHi = this.r[I.PC + 1]!;
    this.runBias = this.jitBias + (this.r[OFF.JIT_COUNT >> 2]! | 0);
    this.r[I.PC] = pc + 4;
    const r = this.r;
    const s = OFF.JIT_SCRATCH >> 2;
    if (size === 8) {
      this.ld64(lo, hi);
      r[s] = R64.lo;
      r[s + 1] = R64.hi;
    } else {
      r[s] = size === 4 ? this.ld32(lo, hi) : size === 2 ? this.ld16(lo, hi) : this.ld8(lo, hi);
      r[s + 1] = 0;
    }
    return this.stop ? 1 : 0;
  }
  jitStore(lo: number, hi: number, vlo: number, vhi: number, size: number, pc: number): number {
    this.pcLo = pc;
    this.pcHi = this.r[I.PC + 1]!;
    this.runBias = this.jitBias + (this.r[OFF.JIT_COUNT >> 2]! | 0);
    this.r[I.PC] = pc + 4;
    if (size === 8) this.st64(lo, hi, vlo, vhi);
    else if (size === 4) this.st32(lo, hi, vlo);
    else if (size === 2) this.st16(lo, hi, vlo & 0xffff);
    else this.st8(lo, hi, vlo & 0xff);
    return this.stop ? 1 : 0;
  }
  stopAfterInstruction(): void {
    this.stop = true;
  }
  executorFor(insn: number): Exec {
    return this.code.executor(insn);
  }

  /**
   * Decoded code is kept per physical page, beside a copy of the words it was decoded
   * from: a word that no longer matches (self-modifying code, a reused page) is simply
   * decoded again, so no write ever has to invalidate anything.
   */
  private fetchPageLo = -1;
  private fetchPageHi = -1;
  private fetchBase = 0;
  /** The fetch page's DecodedPage fields (code-cache.ts), for the interpreter loop. */
  private fetchExecs: (Exec | undefined)[] = [];
  private fetchWords: Uint32Array = new Uint32Array(1024);
  private fetchEnds: Uint16Array = new Uint16Array(1024);
  private fetchFused: (Exec | null | undefined)[] = [];
  private fetchJit: (JitBlock | null | undefined)[] = [];
  private fetchHeat: Uint16Array = new Uint16Array(1024);
  private setFetchPage(lo: number, hi: number): void {
    const pageLo = (lo & 0xfffff000) >>> 0;
    // Translate the PC itself, so that an instruction abort reports it in FAR (D17.2.40).
    const off = this.hostOffset(lo, hi, 4, ACC.FETCH) - (lo & 0xfff);
    const page = this.code.page(off >>> 12);
    this.fetchPageLo = pageLo;
    this.fetchPageHi = hi;
    this.fetchBase = off >>> 2;
    this.fetchExecs = page.execs;
    this.fetchWords = page.words;
    this.fetchEnds = page.ends;
    this.fetchFused = page.fused;
    this.fetchJit = page.jit;
    this.fetchHeat = page.heat;
  }

  /** Forgets the current instruction-fetch translation (after a change of translation regime). */
  invalidateFetch(): void {
    this.fetchPageLo = -1;
    this.stop = true;
  }

  /**
   * A TLBI by VA that left the fetch tag of the running code's page in the TLB did not
   * cover that page: the code, and translated code chained from it (which the dispatcher
   * enters only through fetch tags, jit/dispatch.ts), run on. Linux invalidates ranges
   * with a TLBI in a loop, which otherwise ended the chain every iteration (47 k returns
   * to the interpreter in the first 300 M instructions of its boot).
   */
  invalidateFetchIfLost(): void {
    const lo = this.fetchPageLo;
    if (lo !== -1) {
      const k = this.tlbBase + (((lo >>> 12) & TLB.INDEX_MASK) << 4) + ACC.FETCH * 2;
      if (this.tlb[k] === (lo | 0) && this.tlb[k + 1] === (this.fetchPageHi | 0)) return;
    }
    this.invalidateFetch();
  }

  // ---------------------------------------------------------------------------
  // Exceptions (Arm ARM D1.10)

  /**
   * Takes a synchronous exception. `far` is the faulting address for aborts (lo/hi), or
   * undefined. The preferred return address is the current instruction, except for
   * SVC/HVC/SMC whose callers pass `returnToNext`.
   */
  syncException(ec: number, iss: number, farLo?: number, farHi?: number, returnToNext = false): never {
    if (!returnToNext) this.branch(this.pcLo, this.pcHi);
    const il = 1 << 25; // A64 instructions are 32-bit
    if (this.userMode && this.el === 0) {
      const far = farLo === undefined ? null : (BigInt(farHi! >>> 0) << 32n) | BigInt(farLo >>> 0);
      this.exit = { kind: "exception", ec, iss, far };
      this.stop = true;
      throw UNWIND;
    }
    const esr = ((ec << 26) | il | (iss & 0x1ffffff)) >>> 0;
    this.r[ESR] = esr;
    this.r[ESR + 1] = 0;
    if (farLo !== undefined) {
      this.r[FAR] = farLo;
      this.r[FAR + 1] = farHi!;
    }
    const atVector =
      this.pcLo === this.loopVectorLo && this.pcHi === this.loopVectorHi && esr === this.loopEsr;
    this.loopCount = atVector ? this.loopCount + 1 : 0;
    this.loopEsr = esr;
    this.enterEl1(VECTOR.SYNC);
    this.loopVectorLo = this.r[I.PC]!;
    this.loopVectorHi = this.r[I.PC + 1]!;
    if (this.loopCount >= EXCEPTION_LOOP_LIMIT) this.reportExceptionLoop();
    throw UNWIND;
  }

  /**
   * A guest whose exception vector itself takes the same exception (no VBAR, unmapped
   * vectors) would spin here forever without retiring an instruction of its own: the
   * architecture has no way out, so the VMM is told, with what a person needs to see.
   */
  private loopVectorLo = -1;
  private loopVectorHi = -1;
  private loopEsr = -1;
  private loopCount = 0;
  private reportExceptionLoop(): void {
    const hex = (hi: number, lo: number) =>
      `0x${((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16)}`;
    const r = this.r;
    this.loopCount = 0;
    this.exit = {
      kind: "exception-loop",
      message:
        `vCPU ${this.index} is stuck re-taking the same exception at its vector: ` +
        `PC ${hex(this.pcHi, this.pcLo)}, ESR_EL1 0x${(r[ESR]! >>> 0).toString(16)}, ` +
        `FAR_EL1 ${hex(r[FAR + 1]!, r[FAR]!)}, taken to EL1 from EL1 (VBAR_EL1 ${hex(r[VBAR + 1]!, r[VBAR]!)})`,
    };
    this.stop = true;
  }

  /**
   * Told of every exception this vCPU takes, once it is taken (QEMU's `-d int`): null
   * unless a log asked for it, so taking one costs a test of it and nothing more.
   */
  onException: ((e: ExceptionTaken) => void) | null = null;

  /** Exception entry to EL1 (registers only; the caller unwinds). */
  private enterEl1(kindOffset: number): void {
    const r = this.r;
    const fromEl = this.el;
    let p = r[I.PSTATE]!;
    const base = this.el === 0 ? VECTOR.LOWER_A64 : (p & 1) !== 0 ? VECTOR.CURRENT_SPX : VECTOR.CURRENT_SP0;
    if (this.stepArmed) {
      // A stepped SVC completes before its exception: SPSR.SS = 0, so the step exception
      // follows the return (Arm ARM D2.12.7). Other exceptions leave the step to be redone.
      if (kindOffset === VECTOR.SYNC && r[ESR]! >>> 26 === EC.SVC64) p &= ~PSTATE.SS;
      this.stepArmed = false;
    }
    this.stepDone = false;
    // Count what ran at the old EL, the instruction taking the exception included.
    if (this.pmuActive) pmuSync(this, kindOffset === VECTOR.SYNC && this.inBlock ? 1 : 0);
    r[I.SPSR_EL1] = p;
    r[I.SPSR_EL1 + 1] = 0;
    r[I.ELR_EL1] = r[I.PC]!;
    r[I.ELR_EL1 + 1] = r[I.PC + 1]!;
    // EL1h, DAIF all masked, SS and IL cleared (PAN/UAO not implemented).
    r[I.PSTATE] = ((p & PSTATE.NZCV) | PSTATE.DAIF | 0x5) >>> 0;
    this.pstateChanged();
    // Vector addresses: VBAR_EL1 + offset; VBAR[10:0] are RES0.
    const lo = r[VBAR]! + base + kindOffset;
    r[I.PC] = lo >>> 0;
    r[I.PC + 1] = (r[VBAR + 1]! + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    // Taking an exception clears the local exclusive monitor (Arm ARM B2.9.5).
    r[I.EXCL_VALID] = 0;
    if (this.onException !== null) {
      const u64 = (i: number) => (BigInt(r[i + 1]!) << 32n) | BigInt(r[i]!);
      this.onException({
        vcpu: this.index,
        kind:
          kindOffset === VECTOR.SYNC
            ? "sync"
            : kindOffset === VECTOR.IRQ
              ? "irq"
              : kindOffset === VECTOR.FIQ
                ? "fiq"
                : "serror",
        fromEl,
        esr: r[ESR]! >>> 0,
        far: u64(FAR),
        elr: u64(I.ELR_EL1),
        spsr: p >>> 0,
        pc: u64(I.PC),
        pstate: r[I.PSTATE]! >>> 0,
      });
    }
  }

  /** Checks IRQ/FIQ against PSTATE.DAIF and takes one if unmasked. */
  private takePendingInterrupt(): boolean {
    if (this.userMode) return false;
    const p = this.r[I.PSTATE]!;
    let off = -1;
    if (this.fiqLine && (p & PSTATE.F) === 0) off = VECTOR.FIQ;
    else if (this.irqLine && (p & PSTATE.I) === 0) off = VECTOR.IRQ;
    if (off < 0) {
      this.irqCheck = false;
      return false;
    }
    this.enterEl1(off);
    return true;
  }

  /** ERET (Arm ARM C6.2.75): restore PSTATE from SPSR_EL1 and PC from ELR_EL1. */
  exceptionReturn(): void {
    const r = this.r;
    let spsr = r[I.SPSR_EL1]!;
    const m = spsr & 0x1f;
    // Only AArch64 EL0t, EL1t and EL1h are valid targets here; anything else is an
    // illegal exception return (PSTATE.IL set, mode unchanged).
    if (m !== 0 && m !== 4 && m !== 5) {
      spsr = (r[I.PSTATE]! & 0xf) | (spsr & ~0x1f) | PSTATE.IL;
    }
    // PSTATE.SS is DebugExceptionReturnSS() (debug.ts): 0 unless software step is on.
    const ss = returnSS(this, spsr);
    if (this.pmuActive) pmuSync(this, 1); // what ran at the old EL, this ERET included
    r[I.PSTATE] = ((spsr & (PSTATE.NZCV | PSTATE.DAIF | PSTATE.IL | 0xf)) | ss) >>> 0;
    r[I.PC] = r[I.ELR_EL1]!;
    r[I.PC + 1] = r[I.ELR_EL1 + 1]!;
    // AArch64.ExceptionReturn(): ClearExclusiveLocal(), then SendEventLocal(): an exception
    // return sets the event register (Arm ARM D1.6.1), so a WFE after it completes at once.
    r[I.EXCL_VALID] = 0;
    r[I.EVENT] = 1;
    this.pstateChanged();
    if (this.debugActive) {
      // A destination that is active-pending takes its Software Step exception at once.
      const stepped = this.stepArmed;
      this.stepArmed = false;
      this.stepDone = false;
      stepAfterReturn(this, stepped);
    }
  }

  /** An unallocated or disabled encoding (EC 0, Arm ARM D1.10.4). */
  undefined(): never {
    this.syncException(EC.UNKNOWN, 0);
  }

  /**
   * Takes an UNDEFINED exception at the current PC from outside the interpreter loop
   * (the hv layer refusing an HVC/SMC it does not implement).
   */
  takeUndefinedAtPc(): void {
    this.pcLo = this.r[I.PC]!;
    this.pcHi = this.r[I.PC + 1]!;
    try {
      this.syncException(EC.UNKNOWN, 0);
    } catch (e) {
      if (e !== UNWIND) throw e;
    }
    this.exit = null;
    this.stop = false;
  }

  /** Supervisor/hypervisor/monitor calls. The hv layer decides what HVC/SMC do. */
  svc(imm: number): never {
    this.syncException(EC.SVC64, imm, undefined, undefined, true);
  }
  hvc(imm: number): void {
    if (this.el === 0) this.undefined();
    this.exit = { kind: "hvc", imm };
    this.stop = true;
  }
  smc(imm: number): void {
    if (this.el === 0) this.undefined();
    this.exit = { kind: "smc", imm };
    this.stop = true;
  }
  hlt(imm: number): void {
    if (!this.trapHlt) this.undefined();
    this.exit = { kind: "hlt", imm };
    this.stop = true;
  }
  wfi(): void {
    if (this.userMode) return;
    // SCTLR_EL1.nTWI clear: an EL0 WFI that would wait traps to EL1 (EC 0x01, TI 0).
    if (this.el === 0 && (this.r[SCTLR]! & SCTLR_NTWI) === 0 && !this.irqLine && !this.fiqLine)
      this.syncException(EC.WFX, WFX_ISS);
    this.exit = EXIT_WFI;
    this.stop = true;
  }
  wfe(): void {
    if (this.userMode) return;
    if (this.r[I.EVENT] !== 0) {
      this.r[I.EVENT] = 0;
      return;
    }
    // SCTLR_EL1.nTWE clear: an EL0 WFE that would wait traps to EL1 (EC 0x01, TI 1).
    if (this.el === 0 && (this.r[SCTLR]! & SCTLR_NTWE) === 0) this.syncException(EC.WFX, WFX_ISS | 1);
    this.exit = EXIT_WFE;
    this.stop = true;
  }
  /**
   * Every FP/AdvSIMD instruction calls this first: CPACR_EL1.FPEN traps FP/SIMD access
   * (EC 0x07) unless enabled for the current EL. Always enabled in user mode.
   */
  checkFp(): void {
    if (this.userMode) return;
    const fpen = (this.r[CPACR]! >>> 20) & 3;
    if (fpen === 3 || (fpen === 1 && this.el !== 0)) return;
    this.syncException(EC.FP_ACCESS, 0);
  }

  /** Takes an asynchronous exception from outside (e.g. SError injection by the hv). */
  injectSError(): void {
    this.enterEl1(VECTOR.SERROR);
  }
}

const undefinedInstruction: Exec = (c) => c.undefined();
const TLB_REGIME_BYTES = TLB.REGIME_WORDS * 4;

/**
 * True for the "branches, exception generation and system instructions" class
 * (op0 = x101, Arm ARM C4.1): the only instructions that write PC or change the
 * translation regime or PSTATE.{EL,SP,DAIF} without taking an exception. Except the ones
 * that do none of that, common in kernel code: the hints that are NOPs here (PACIASP,
 * AUTIASP, BTI, NOP, YIELD, ...: every hint but WFE, WFI, SEV and SEVL), DSB, DMB and ISB,
 * and MRS (a read with a side effect, an interrupt acknowledge, moves an interrupt line,
 * which ends the block through `stop` as a store to a device does).
 */
export function endsBlock(insn: number): boolean {
  if (((insn >>> 26) & 7) !== 5) return false;
  if ((insn & 0xfffff01f) >>> 0 === 0xd503201f) {
    const op = (insn >>> 5) & 0x7f; // CRm:op2
    return op >= 2 && op <= 5;
  }
  if ((insn & 0xfffff09f) >>> 0 === 0xd503309f) return false; // DSB, DMB, ISB (op2 1xx)
  if ((insn & 0xfff00000) >>> 0 === 0xd5300000) return false; // MRS
  return true;
}

/** One past the slot of the first block-ending instruction at or after `slot` (max 1024). */
function blockEnd(m32: Uint32Array, base: number, slot: number): number {
  for (let k = slot; k < 1024; k++) if (endsBlock(m32[base + k]!)) return k + 1;
  return 1024;
}
