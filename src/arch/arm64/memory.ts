/**
 * The memory-access path of a PE: every guest load, store, fetch, atomic, SIMD structure
 * access, AT and cache maintenance by VA goes through `hostOffset()`, which probes the
 * software TLB (tlb.ts) inline and falls back to the stage-1 walk (mmu.ts) on a miss.
 * Cpu extends this class; the interpreter loop and exceptions live in cpu.ts.
 */
import { ACC, CMO } from "./access.ts";
import { checkWatchpoint } from "./debug.ts";
import { EC, FSC } from "./exceptions.ts";
import { currentAsid, FAULT, type MmuRegs, W, type WalkContext, walk } from "./mmu.ts";
import { R64 } from "./ret64.ts";
import { RAM_OFFSET, VCPU_STRIDE } from "./state.ts";
import { SYSREG_BY_NAME, type SysReg, sysregIndex } from "./sysregs.ts";
import {
  LargeEntries,
  TLB,
  TLB_INFO,
  tlbDropNonGlobalTags,
  tlbDropWriteTags,
  tlbFlushAll,
  tlbInvalidateAll,
  tlbInvalidateVa,
  untag,
} from "./tlb.ts";

/** Non-global entries listed for the next ASID change before it scans the whole TLB instead. */
const NG_TAGGED_MAX = 256;

/**
 * Physical memory as the CPU sees it: RAM is one window of the shared memory; any other
 * physical address goes to `mmioRead`/`mmioWrite` (absent in user mode: a data abort).
 */
export interface PhysicalBus {
  readonly ramBase: number;
  readonly ramSize: number;
  mmioRead?(pa: number, size: number): number | null;
  mmioWrite?(pa: number, size: number, value: number): boolean;
}

const SCTLR = sysregIndex("SCTLR_EL1");
const PAR = sysregIndex("PAR_EL1");
const MMU_REGS: MmuRegs = {
  sctlr: SCTLR,
  tcr: sysregIndex("TCR_EL1"),
  ttbr0: sysregIndex("TTBR0_EL1"),
  ttbr1: sysregIndex("TTBR1_EL1"),
  mair: sysregIndex("MAIR_EL1"),
  mmfr0: sysregIndex("ID_AA64MMFR0_EL1"),
};
/** Writes to these invalidate cached translations (all, or only non-global for TTBRs). */
const FLUSH_ALL_ON_WRITE = new Set(["SCTLR_EL1", "TCR_EL1", "MAIR_EL1"].map((n) => SYSREG_BY_NAME.get(n)!));
const FLUSH_NG_ON_WRITE = new Set(["TTBR0_EL1", "TTBR1_EL1"].map((n) => SYSREG_BY_NAME.get(n)!));

/** hostOffset() result for an access that crosses into a page that is not contiguous. */
const SPLIT = -2;
/** Cache maintenance faults report CM = 1 and WnR = 1 (Arm ARM D17.2.40). */
const ISS_CM = 1 << 8;
const ISS_WNR = 1 << 6;

export abstract class MemoryPath implements WalkContext {
  readonly index: number;
  readonly memory: WebAssembly.Memory;
  /** This vCPU's state block as 32-bit words (see state.ts for the layout). */
  readonly r: Uint32Array;
  /** The whole memory, for guest RAM access. */
  readonly m8: Uint8Array;
  readonly m32: Uint32Array;
  readonly dv: DataView;
  readonly bus: PhysicalBus;
  readonly ramBase: number;
  readonly ramSize: number;
  readonly ramHost = RAM_OFFSET;
  /** The software TLB of this vCPU (signed and unsigned views of the same words). */
  readonly tlb: Int32Array;
  readonly tlbU: Uint32Array;
  /** Word index of the TLB regime in force for ordinary accesses (EL0 or EL1 permissions). */
  protected tlbBase = 0;
  /** The ASID in force (TTBR0/TTBR1 per TCR_EL1.A1): non-global entries must match it. */
  private curAsid = 0;
  /**
   * The non-global entries given fast tags since the ASID last changed (word indices), so
   * that the next change takes the tags off those instead of scanning all 8,192 entries;
   * past NG_TAGGED_MAX of them, the scan. On a CPU without PAN (Armv8.0) Linux's software
   * PAN switches TTBR1's ASID to the reserved one and back around every user access and
   * every exception from EL0: two ASID changes per system call.
   */
  private readonly ngTagged: number[] = [];
  private ngTaggedOverflow = false;
  /** The TLB entries of translations larger than 4 KiB (tlb.ts LargeEntries, for TLBI by VA). */
  private readonly tlbLarge = new LargeEntries();
  /** EL whose permissions apply to the access in progress (0 inside LDTR/STTR). */
  private accessEl = 0;
  /** Scratch outputs of 64-bit helpers (value low/high halves). */

  /** Current exception level (0 or 1). */
  el = 0;
  mmioPa = 0;
  /** Page flags set by the VM: byte per guest page; writes set PAGE_DIRTY | PAGE_WRITTEN (3). */
  dirtyLog: Uint8Array | null = null;
  /**
   * Pages of the memory (host offset >>> 12) holding translated code (the translator's,
   * with write tracking on), and what a store to one must do first: drop them.
   */
  translatedPages: Uint8Array | null = null;
  /** A store of `size` bytes at `offset` in the page: drops the translations it overlaps. */
  codeWritten: (hostPage: number, offset: number, size: number) => void = () => {};

  /** Takes the write tags off this PE's TLB entries of the page at host offset `hostPage` << 12. */
  dropWriteTagsOf(hostPage: number): void {
    const t = this.tlb;
    const u = this.tlbU;
    const base = hostPage * 4096;
    for (let e = 0; e < t.length; e += TLB.ENTRY_WORDS) if (u[e + TLB.HOST] === base) t[e + 2] = TLB.NO_TAG;
  }
  /**
   * The PEs of this PE's Inner Shareable domain (itself included): TLBI …IS reaches all
   * of them. The VM fills it; alone by default.
   */
  innerShareable: MemoryPath[] = [this];

  constructor(memory: WebAssembly.Memory, index: number, bus: PhysicalBus) {
    this.index = index;
    this.memory = memory;
    const buf = memory.buffer;
    const base = index * VCPU_STRIDE;
    this.r = new Uint32Array(buf, base, VCPU_STRIDE / 4);
    this.m8 = new Uint8Array(buf);
    this.m32 = new Uint32Array(buf, 0, buf.byteLength >>> 2);
    this.dv = new DataView(buf);
    this.bus = bus;
    this.ramBase = bus.ramBase;
    this.ramSize = bus.ramSize;
    this.tlb = new Int32Array(buf, base + TLB.OFFSET, TLB.BYTES / 4);
    this.tlbU = new Uint32Array(buf, base + TLB.OFFSET, TLB.BYTES / 4);
    tlbFlushAll(this.tlb);
  }

  /** A watchpoint may match (debug.ts): every data access takes the slow path and is checked. */
  abstract watchActive: boolean;
  abstract syncException(
    ec: number,
    iss: number,
    farLo?: number,
    farHi?: number,
    returnToNext?: boolean,
  ): never;
  /** The instruction-fetch translation cached by the interpreter must be looked up again. */
  abstract invalidateFetch(): void;
  /** After a TLBI by VA: invalidateFetch() unless the TLB still holds the fetch translation in use. */
  abstract invalidateFetchIfLost(): void;

  /** The EL changed: ordinary accesses now use that EL's TLB regime. */
  protected accessElChanged(): void {
    this.accessEl = this.el;
    this.tlbBase = this.el === 0 ? 0 : TLB.REGIME_WORDS;
  }

  /** LDTR/STTR and friends (Arm ARM C3.2.5): at EL1, access with EL0's permissions. */
  setUnprivileged(on: boolean): void {
    if (this.el === 0) return;
    this.accessEl = on ? 0 : this.el;
    this.tlbBase = on ? 0 : TLB.REGIME_WORDS;
  }

  // ---------------------------------------------------------------------------
  // The access path

  /**
   * Host byte offset of guest virtual address (lo, hi) for an access of `size` bytes;
   * throws the architected abort on a fault. Returns -1 when the physical address is
   * not RAM (MMIO; the physical address is left in `mmioPa`), and SPLIT (-2) when the
   * access crosses into a page that is not the next one in the memory (both pages have
   * been translated and checked: the caller moves it a byte at a time).
   */
  hostOffset(lo: number, hi: number, size: number, acc: number): number {
    const t = this.tlb;
    const e = this.tlbBase + (((lo >>> 12) & TLB.INDEX_MASK) << 4);
    const k = e + (acc << 1);
    if (t[k] === (lo & -4096) && t[k + 1] === (hi | 0) && (lo & 0xfff) <= 4096 - size) {
      return this.tlbU[e + TLB.HOST]! + (lo & 0xfff);
    }
    return this.slowOffset(lo, hi, size, acc);
  }

  private slowOffset(lo: number, hi: number, size: number, acc: number): number {
    const off = lo & 0xfff;
    if (off + size <= 4096) {
      const page = this.translatePage(lo, hi, size, acc);
      // Watchpoints after the translation: MMU faults take priority (Arm ARM D1.13.2).
      if (this.watchActive && acc !== ACC.FETCH) this.watch(lo, hi, size, acc);
      if (page >= 0) return page + off;
      this.mmioPa += off;
      return -1;
    }
    // Crosses a page boundary: translate both pages (the first one's fault comes first),
    // so that nothing is written before a fault on the second (Arm ARM B2.5.2).
    const first = this.translatePage(lo, hi, size, acc);
    const firstMmio = this.mmioPa;
    const lo2 = ((lo | 0xfff) + 1) >>> 0;
    const second = this.translatePage(lo2, lo2 === 0 ? (hi + 1) >>> 0 : hi, size, acc);
    if (this.watchActive && acc !== ACC.FETCH) this.watch(lo, hi, size, acc);
    if (first >= 0 && second === first + 4096) return first + off;
    if (first < 0 && second < 0 && this.mmioPa === firstMmio + 4096) {
      this.mmioPa = firstMmio + off;
      return -1;
    }
    return SPLIT;
  }

  /**
   * Translates the page of (lo, hi) for `acc` at the access EL, filling the TLB, and
   * returns the host offset of the page (RAM), or -1 with `mmioPa` = the page's PA.
   */
  private translatePage(lo: number, hi: number, size: number, acc: number): number {
    const t = this.tlb;
    const e = this.tlbBase + (((lo >>> 12) & TLB.INDEX_MASK) << 4);
    // Top-byte-ignore: compare the canonical address (TBI0/TBI1, Arm ARM D8.8).
    const chi = this.canonicalHi(hi);
    const pageLo = lo & -4096;
    let info = t[e + TLB.INFO]!;
    if (
      (info & TLB_INFO.VALID) === 0 ||
      t[e + TLB.VA_LO] !== pageLo ||
      t[e + TLB.VA_HI] !== (chi | 0) ||
      ((info & TLB_INFO.NG) !== 0 && t[e + TLB.ASID] !== this.curAsid)
    ) {
      const fsc = walk(this, MMU_REGS, lo, hi, this.accessEl);
      if (fsc >= 0) this.abort(lo, hi, acc, fsc);
      this.fill(e, pageLo, chi);
      info = t[e + TLB.INFO]!;
    }
    const need = acc === ACC.READ ? TLB_INFO.R : acc === ACC.WRITE ? TLB_INFO.W : TLB_INFO.X;
    // The level of the descriptor the entry came from, not of a fresh walk of tables that
    // may have changed since (the fault is against the translation in use).
    if ((info & need) === 0) this.abort(lo, hi, acc, FAULT.PERMISSION + t[e + TLB.LEVEL]!);
    if ((info & TLB_INFO.DEVICE) !== 0 && (lo & (size - 1)) !== 0 && acc !== ACC.FETCH) {
      this.abort(lo, hi, acc, FSC.ALIGNMENT);
    }
    if ((info & TLB_INFO.MMIO) !== 0) {
      if (acc === ACC.FETCH || this.bus.mmioRead === undefined) this.abort(lo, hi, acc, FSC.SYNC_EXTERNAL);
      this.mmioPa = (t[e + TLB.PA_PAGE]! >>> 0) * 4096;
      return -1;
    }
    const host = this.tlbU[e + TLB.HOST]!;
    // The fast tags hold the address as used (a tagged one too: any top byte that
    // canonicalises to this page translates alike); Device pages need the alignment check.
    const fast = (info & TLB_INFO.DEVICE) === 0 && !this.watchActive;
    if (acc === ACC.WRITE) {
      // Page write tracking: the first store to a page after the dirty log was read takes
      // this path and marks it; then the page's write tag lets stores through.
      if (this.dirtyLog !== null) this.dirtyLog[(host - RAM_OFFSET) >>> 12] = 3;
      // A page with translated code has no write tag (jit/jit.ts): each store to it is
      // checked against the words translated; one over them drops the page's translations,
      // and then the page may have a write tag again.
      const code = this.translatedPages;
      if (code !== null && code[host >>> 12] === 1) this.codeWritten(host >>> 12, lo & 0xfff, size);
      if (fast && (code === null || code[host >>> 12] !== 1)) {
        t[e + 2] = pageLo;
        t[e + 3] = hi | 0;
      }
    } else if (fast) {
      t[e + acc * 2] = pageLo;
      t[e + acc * 2 + 1] = hi | 0;
    }
    if (fast && (info & TLB_INFO.NG) !== 0) {
      if (this.ngTagged.length < NG_TAGGED_MAX) this.ngTagged.push(e);
      else this.ngTaggedOverflow = true;
    }
    return host;
  }

  private watch(lo: number, hi: number, size: number, acc: number): void {
    checkWatchpoint(this, lo, hi, size, acc === ACC.WRITE, this.accessEl);
  }

  /** Bits [63:32] of the VA as the translation sees them (top byte replaced under TBI). */
  private canonicalHi(hi: number): number {
    const upper = (hi & 0x00800000) !== 0;
    const tcrHi = this.r[MMU_REGS.tcr + 1]!;
    const tbi = (tcrHi & (upper ? 1 << 6 : 1 << 5)) !== 0;
    if (!tbi) return hi >>> 0;
    return upper ? (hi | 0xff000000) >>> 0 : hi & 0x00ffffff;
  }

  /** Fills TLB entry `e` from the walk result W (read and fetch tags; write on demand). */
  private fill(e: number, pageLo: number, chi: number): void {
    const t = this.tlb;
    const pa = W.pa;
    const rel = pa - this.ramBase;
    let info = W.info;
    untag(t, e);
    if (rel >= 0 && rel + 4096 <= this.ramSize) t[e + TLB.HOST] = RAM_OFFSET + rel;
    else {
      info |= TLB_INFO.MMIO;
      t[e + TLB.HOST] = 0;
    }
    t[e + TLB.PA_PAGE] = Math.floor(pa / 4096);
    t[e + TLB.INFO] = info;
    t[e + TLB.ASID] = W.asid;
    t[e + TLB.VA_LO] = pageLo;
    t[e + TLB.VA_HI] = chi | 0;
    t[e + TLB.SIZE_LOG] = W.sizeLog;
    this.tlbLarge.filled(t, e, pageLo, chi, W.sizeLog);
    t[e + TLB.ATTR] = W.attr | (W.sh << 8);
    t[e + TLB.LEVEL] = W.level;
    t[e + TLB.ADDEND] = (t[e + TLB.HOST]! - pageLo) | 0;
  }

  /** Raises the abort for a failed access to (lo, hi). */
  abort(lo: number, hi: number, acc: number, fsc: number, extra = 0): never {
    if (acc === ACC.FETCH) {
      const ec = this.el === 0 ? EC.IABT_LOWER : EC.IABT_CURRENT;
      this.syncException(ec, fsc, lo, hi);
    }
    const wnr = acc === ACC.WRITE ? ISS_WNR : 0;
    const ec = this.el === 0 ? EC.DABT_LOWER : EC.DABT_CURRENT;
    this.syncException(ec, wnr | extra | fsc, lo, hi);
  }

  /** SCTLR_EL1.A: alignment checking of ordinary loads and stores. */
  private checkAlignment(lo: number, hi: number, size: number, acc: number): void {
    if ((lo & (size - 1)) !== 0 && (this.r[SCTLR]! & 2) !== 0) this.abort(lo, hi, acc, FSC.ALIGNMENT);
  }
  /** Exclusives, atomics and acquire/release require natural alignment regardless of SCTLR.A. */
  requireAligned(lo: number, hi: number, size: number, acc: number): void {
    if ((lo & (size - 1)) !== 0) this.abort(lo, hi, acc, FSC.ALIGNMENT);
  }

  private mmioLoad(lo: number, hi: number, size: number): number {
    const v = this.bus.mmioRead!(this.mmioPa, size);
    if (v === null) this.abort(lo, hi, ACC.READ, FSC.SYNC_EXTERNAL);
    return v;
  }
  private mmioStore(lo: number, hi: number, size: number, v: number): void {
    if (!this.bus.mmioWrite!(this.mmioPa, size, v)) this.abort(lo, hi, ACC.WRITE, FSC.SYNC_EXTERNAL);
  }

  /** A load that crosses into a discontiguous page: byte by byte (both pages checked). */
  private loadSplit(lo: number, hi: number, size: number): number {
    let v = 0;
    for (let i = Math.min(size, 4) - 1; i >= 0; i--) {
      const a = (lo + i) >>> 0;
      v = (v << 8) | this.ld8(a, a < lo ? (hi + 1) >>> 0 : hi);
    }
    if (size === 8) {
      let h = 0;
      for (let i = 7; i >= 4; i--) {
        const a = (lo + i) >>> 0;
        h = (h << 8) | this.ld8(a, a < lo ? (hi + 1) >>> 0 : hi);
      }
      R64.hi = h >>> 0;
    }
    return v >>> 0;
  }
  private storeSplit(lo: number, hi: number, size: number, vlo: number, vhi: number): void {
    for (let i = 0; i < size; i++) {
      const a = (lo + i) >>> 0;
      const b = i < 4 ? vlo >>> (i * 8) : vhi >>> ((i - 4) * 8);
      this.st8(a, a < lo ? (hi + 1) >>> 0 : hi, b & 0xff);
    }
  }

  ld8(lo: number, hi: number): number {
    const o = this.hostOffset(lo, hi, 1, ACC.READ);
    return o >= 0 ? this.m8[o]! : this.mmioLoad(lo, hi, 1);
  }
  ld16(lo: number, hi: number): number {
    this.checkAlignment(lo, hi, 2, ACC.READ);
    const o = this.hostOffset(lo, hi, 2, ACC.READ);
    if (o >= 0) return this.dv.getUint16(o, true);
    return o === SPLIT ? this.loadSplit(lo, hi, 2) : this.mmioLoad(lo, hi, 2);
  }
  ld32(lo: number, hi: number): number {
    this.checkAlignment(lo, hi, 4, ACC.READ);
    const o = this.hostOffset(lo, hi, 4, ACC.READ);
    if (o >= 0) return (o & 3) === 0 ? this.m32[o >>> 2]! : this.dv.getUint32(o, true);
    return o === SPLIT ? this.loadSplit(lo, hi, 4) : this.mmioLoad(lo, hi, 4) >>> 0;
  }
  /** Loads 64 bits into R64 (ret64.ts). */
  ld64(lo: number, hi: number): void {
    this.checkAlignment(lo, hi, 8, ACC.READ);
    const o = this.hostOffset(lo, hi, 8, ACC.READ);
    if ((o & 3) === 0 && o >= 0) {
      R64.lo = this.m32[o >>> 2]!;
      R64.hi = this.m32[(o >>> 2) + 1]!;
    } else if (o >= 0) {
      R64.lo = this.dv.getUint32(o, true);
      R64.hi = this.dv.getUint32(o + 4, true);
    } else if (o === SPLIT) {
      R64.lo = this.loadSplit(lo, hi, 8);
    } else {
      const vlo = this.mmioLoad(lo, hi, 4) >>> 0;
      const nlo = (lo + 4) >>> 0;
      R64.hi = this.ld32(nlo, nlo < 4 ? hi + 1 : hi);
      R64.lo = vlo;
    }
  }
  st8(lo: number, hi: number, v: number): void {
    const o = this.hostOffset(lo, hi, 1, ACC.WRITE);
    if (o >= 0) this.m8[o] = v;
    else this.mmioStore(lo, hi, 1, v & 0xff);
  }
  st16(lo: number, hi: number, v: number): void {
    this.checkAlignment(lo, hi, 2, ACC.WRITE);
    const o = this.hostOffset(lo, hi, 2, ACC.WRITE);
    if (o >= 0) this.dv.setUint16(o, v, true);
    else if (o === SPLIT) this.storeSplit(lo, hi, 2, v, 0);
    else this.mmioStore(lo, hi, 2, v & 0xffff);
  }
  st32(lo: number, hi: number, v: number): void {
    this.checkAlignment(lo, hi, 4, ACC.WRITE);
    const o = this.hostOffset(lo, hi, 4, ACC.WRITE);
    if (o >= 0) {
      if ((o & 3) === 0) this.m32[o >>> 2] = v;
      else this.dv.setUint32(o, v, true);
    } else if (o === SPLIT) this.storeSplit(lo, hi, 4, v, 0);
    else this.mmioStore(lo, hi, 4, v >>> 0);
  }
  st64(lo: number, hi: number, vlo: number, vhi: number): void {
    this.checkAlignment(lo, hi, 8, ACC.WRITE);
    const o = this.hostOffset(lo, hi, 8, ACC.WRITE);
    if (o >= 0) {
      if ((o & 3) === 0) {
        this.m32[o >>> 2] = vlo;
        this.m32[(o >>> 2) + 1] = vhi;
      } else {
        this.dv.setUint32(o, vlo, true);
        this.dv.setUint32(o + 4, vhi, true);
      }
    } else if (o === SPLIT) this.storeSplit(lo, hi, 8, vlo, vhi);
    else {
      this.mmioStore(lo, hi, 4, vlo >>> 0);
      const nlo = (lo + 4) >>> 0;
      this.st32(nlo, nlo < 4 ? hi + 1 : hi, vhi);
    }
  }

  // ---------------------------------------------------------------------------
  // TLB maintenance, AT and cache maintenance by VA

  /** Empties this PE's TLB (reset, restore, and writes that change every translation). */
  flushTlb(): void {
    tlbFlushAll(this.tlb);
    this.ngTagged.length = 0;
    this.ngTaggedOverflow = false;
    this.tlbLarge.clear();
    this.curAsid = currentAsid(this, MMU_REGS);
    this.invalidateFetch();
  }

  /** The dirty log was read: the next store to every page must mark it again. */
  dropWriteTags(): void {
    tlbDropWriteTags(this.tlb);
  }

  /**
   * A stored system register was written (MSR or ONE_REG). Translations cached under the
   * old SCTLR/TCR/MAIR are dropped. Entries stay valid across a TTBR write until a TLBI
   * (Arm ARM D8.13.2); a write that changes the ASID takes the fast tags off non-global
   * entries, which keep their ASID for the slow path.
   */
  sysregWritten(reg: SysReg): void {
    if (FLUSH_ALL_ON_WRITE.has(reg)) this.flushTlb();
    else if (FLUSH_NG_ON_WRITE.has(reg)) {
      // A new ASID: the fast path does not compare ASIDs, so non-global entries lose their
      // fast tags; the slow path finds them again (without a walk) under their own ASID.
      const asid = currentAsid(this, MMU_REGS);
      if (asid !== this.curAsid) {
        this.curAsid = asid;
        if (this.ngTaggedOverflow) tlbDropNonGlobalTags(this.tlb);
        else for (const e of this.ngTagged) untag(this.tlb, e);
        this.ngTagged.length = 0;
        this.ngTaggedOverflow = false;
        this.invalidateFetch();
      }
    }
  }

  /**
   * TLBI <op>{IS}, Xt at EL1 (Arm ARM C5.5): op2 0 VMALLE1, 1 VAE1, 2 ASIDE1, 3 VAAE1,
   * 5 VALE1, 7 VAALE1. `broadcast` for the Inner Shareable forms (CRm = 3).
   */
  tlbi(op2: number, xlo: number, xhi: number, broadcast: boolean): void {
    const as16 = (this.r[MMU_REGS.tcr + 1]! & (1 << 4)) !== 0;
    const asid = as16 ? xhi >>> 16 : (xhi >>> 16) & 0xff;
    // Xt[43:0] holds VA[55:12].
    const vaLo = (xlo << 12) | 0;
    const vaHi = (xlo >>> 20) | ((xhi & 0xfff) << 12) | 0;
    const targets = broadcast ? this.innerShareable : [this];
    for (const pe of targets) {
      const t = pe.tlb;
      switch (op2) {
        case 0:
          tlbFlushAll(t);
          pe.tlbLarge.clear();
          pe.invalidateFetch();
          break;
        case 1:
        case 5:
          tlbInvalidateVa(t, vaLo, vaHi, asid, pe.tlbLarge);
          pe.invalidateFetchIfLost();
          break;
        case 2:
          tlbInvalidateAll(t, asid, false);
          pe.invalidateFetch();
          break;
        default: // 3 VAAE1, 7 VAALE1
          tlbInvalidateVa(t, vaLo, vaHi, null, pe.tlbLarge);
          pe.invalidateFetchIfLost();
      }
    }
  }

  /**
   * AT S1E1R/W, S1E0R/W (Arm ARM C5.4): translate without taking an exception and write
   * PAR_EL1 in its success or fault format (D17.2.108). op2: 0 S1E1R, 1 S1E1W, 2 S1E0R,
   * 3 S1E0W.
   */
  addressTranslate(op2: number, lo: number, hi: number): void {
    const el = op2 >= 2 ? 0 : 1;
    const write = (op2 & 1) !== 0;
    let fsc = walk(this, MMU_REGS, lo, hi, el);
    if (fsc < 0 && (W.info & (write ? TLB_INFO.W : TLB_INFO.R)) === 0) fsc = FAULT.PERMISSION + W.level;
    const r = this.r;
    if (fsc >= 0) {
      // F = 1, FST, S = 0 (stage 1), PTW = 0; bit 11 is RES1.
      r[PAR] = (1 | (fsc << 1) | (1 << 11)) >>> 0;
      r[PAR + 1] = 0;
      return;
    }
    // Device and Non-cacheable memory report Outer Shareable (SH = 0b10).
    const normalCacheable = (W.attr & 0xf0) !== 0 && (W.attr & 0xf0) !== 0x40 && (W.attr & 0x0f) !== 0x04;
    const sh = normalCacheable ? W.sh : 2;
    const pa = W.pa;
    r[PAR] = ((pa % 4294967296) | (sh << 7) | (1 << 9) | (1 << 11)) >>> 0;
    r[PAR + 1] = ((Math.floor(pa / 4294967296) & 0xffff) | (W.attr << 24)) >>> 0;
  }

  /**
   * DC/IC maintenance by VA: it translates like a load and faults with CM = 1 and
   * WnR = 1; at EL0 it needs read permission, DC IVAC at EL1 write permission; other
   * permission checks do not apply (Arm ARM D7.5.9.3).
   */
  cacheMaintenance(lo: number, hi: number, kind: number): void {
    const need = this.el === 0 ? TLB_INFO.R : kind === CMO.INVALIDATE ? TLB_INFO.W : 0;
    if (this.accessEl === this.el) {
      // The TLB's translation of the page, when it holds one, as a load would use it:
      // maintenance loops mostly run over pages just written (100 k DC CVAU/CVAC in the
      // first 300 M instructions of Linux's boot, each a walk before).
      const t = this.tlb;
      const e = this.tlbBase + (((lo >>> 12) & TLB.INDEX_MASK) << 4);
      const info = t[e + TLB.INFO]!;
      if (
        (info & TLB_INFO.VALID) !== 0 &&
        t[e + TLB.VA_LO] === (lo & -4096) &&
        t[e + TLB.VA_HI] === (this.canonicalHi(hi) | 0) &&
        ((info & TLB_INFO.NG) === 0 || t[e + TLB.ASID] === this.curAsid)
      ) {
        if ((info & need) === need) return;
        this.abort(lo, hi, ACC.READ, FAULT.PERMISSION + t[e + TLB.LEVEL]!, ISS_CM | ISS_WNR);
      }
    }
    let f = walk(this, MMU_REGS, lo, hi, this.el);
    if (f < 0 && (W.info & need) !== need) f = FAULT.PERMISSION + W.level;
    if (f >= 0) this.abort(lo, hi, ACC.READ, f, ISS_CM | ISS_WNR);
  }

  /**
   * The physical address VA (lo, hi) reads from at the current EL, or null when a load
   * there would fault: for a debugger (HMP's `x`, the gdb stub), so it leaves no trace —
   * no TLB fill, no exception, no register written.
   */
  debugTranslate(lo: number, hi: number): number | null {
    const fsc = walk(this, MMU_REGS, lo >>> 0, hi >>> 0, this.el);
    if (fsc >= 0 || (W.info & TLB_INFO.R) === 0) return null;
    return W.pa + (lo & 0xfff);
  }

  /** The ASID in force (for tests and the AT/TLB model). */
  get asid(): number {
    return currentAsid(this, MMU_REGS);
  }
}
