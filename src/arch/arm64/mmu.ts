/**
 * Stage-1 translation of the EL1&0 regime (VMSAv8-64, Arm ARM DDI 0487 chapter D8), as
 * an Armv8.0 PE without EL2/EL3 does it: TTBR0/TTBR1 selected by the VA's top bits, 4,
 * 16 and 64 KiB granules, 25- to 48-bit VAs, output addresses checked against the
 * implemented PA size, hierarchical permissions, no hardware Access flag or dirty state
 * (ID_AA64MMFR1_EL1.HAFDBS = 0: AF = 0 is an Access flag fault).
 *
 * The walk is the slow path behind the software TLB (tlb.ts): `walk()` resolves one VA
 * into the scratch result `W` and returns -1, or returns the fault status code (FSC,
 * Arm ARM D17.2.40 "ISS encoding for an exception from a Data Abort") including the level.
 * Permission checks against an access kind are the caller's (they need the level too).
 */
import { TLB_INFO } from "./tlb.ts";

/** What the walk needs of the PE: its registers, the memory and where RAM is. */
export interface WalkContext {
  readonly r: Uint32Array;
  readonly m32: Uint32Array;
  readonly ramBase: number;
  readonly ramSize: number;
  /** Host byte offset of guest RAM in the memory. */
  readonly ramHost: number;
}

/** The result of a successful walk (scratch; valid until the next walk). */
export const W = {
  /** Output address of the page holding the VA (4 KiB aligned). */
  pa: 0,
  /** TLB_INFO R/W/X bits for the EL the walk was asked about, plus DEVICE and NG. */
  info: 0,
  /** MAIR attribute byte. */
  attr: 0,
  /** Shareability (descriptor SH[1:0]). */
  sh: 0,
  /** log2 of the size of the page or block that translated the VA. */
  sizeLog: 12,
  /** Level of the final descriptor, for permission faults. */
  level: 0,
  /** ASID of the translation (non-global entries). */
  asid: 0,
};

/** Fault status codes by kind; add the level (Arm ARM D17.2.40, DFSC/IFSC). */
export const FAULT = {
  ADDR_SIZE: 0x00,
  TRANSLATION: 0x04,
  ACCESS: 0x08,
  PERMISSION: 0x0c,
  /** Synchronous External abort on a translation table walk. */
  WALK_EXTERNAL: 0x14,
} as const;

/** SCTLR_EL1 / TCR_EL1 bits used here (Arm ARM D17.2.118, D17.2.131). */
const SCTLR_M = 1 << 0;
const SCTLR_WXN = 1 << 19;

/** PARange / IPS encodings (Arm ARM D17.2.64). */
const PA_BITS = [32, 36, 40, 42, 44, 48, 48, 48] as const;

/** Indices (u32 into the vCPU view) of the registers the walk reads; set by the CPU once. */
export interface MmuRegs {
  sctlr: number;
  tcr: number;
  ttbr0: number;
  ttbr1: number;
  mair: number;
  mmfr0: number;
}

/** The PA size in bits this PE implements (ID_AA64MMFR0_EL1.PARange). */
export function paBits(ctx: WalkContext, regs: MmuRegs): number {
  return PA_BITS[Math.min(ctx.r[regs.mmfr0]! & 0xf, 5)]!;
}

/** True when bits [top:n] of the VA are all zero (ones = false) or all one (ones = true). */
function topBits(lo: number, hi: number, n: number, top: number, ones: boolean): boolean {
  const hiMask = top === 63 ? 0xffffffff : 0x00ffffff;
  const h = (ones ? ~hi : hi) & hiMask;
  const l = ones ? ~lo : lo;
  if (n >= 32) return h >>> (n - 32) === 0;
  return h === 0 && l >>> n === 0;
}

const TWO32 = 4294967296;

/** The ASID in force for non-global entries (TCR_EL1.A1 selects the TTBR, AS its width). */
export function currentAsid(ctx: WalkContext, regs: MmuRegs): number {
  const r = ctx.r;
  const tcrLo = r[regs.tcr]!;
  const tcrHi = r[regs.tcr + 1]!;
  const ttbrHi = r[(tcrLo & (1 << 22)) !== 0 ? regs.ttbr1 + 1 : regs.ttbr0 + 1]!;
  const asid = ttbrHi >>> 16;
  return (tcrHi & (1 << 4)) !== 0 ? asid : asid & 0xff;
}

/**
 * Translates VA (lo, hi) in the EL1&0 regime, with the permissions of `el` (0 or 1)
 * reported in W.info. Returns -1 on success, else the FSC (level included).
 */
export function walk(ctx: WalkContext, regs: MmuRegs, lo: number, hi: number, el: number): number {
  const r = ctx.r;
  const sctlr = r[regs.sctlr]!;
  const pa = paBits(ctx, regs);
  const tcrLo = r[regs.tcr]!;
  const tcrHi = r[regs.tcr + 1]!;
  // Top-byte-ignore decides which bits must be zero, with stage 1 on or off (Arm ARM
  // D8.8, AddrTop()); bit 55 selects the half.
  const upper = (hi & 0x00800000) !== 0;
  const tbi = (tcrHi & (upper ? 1 << 6 : 1 << 5)) !== 0;
  const top = tbi ? 55 : 63;
  if ((sctlr & SCTLR_M) === 0) {
    // Stage 1 disabled (AArch64.TranslateAddressS1Off): flat mapping; VA[top:PAsize] must
    // be zero, else an Address size fault at level 0. Data accesses are Device-nGnRnE
    // architecturally; as QEMU 7.2 (the reference) does, unaligned ones are not faulted.
    W.level = 0;
    if (!topBits(lo, hi, pa, top, false)) return FAULT.ADDR_SIZE;
    W.pa = (hi & 0xffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
    W.info = TLB_INFO.VALID | TLB_INFO.R | TLB_INFO.W | TLB_INFO.X;
    W.attr = 0;
    W.sh = 2;
    W.sizeLog = 12;
    W.level = 0;
    W.asid = 0;
    return -1;
  }
  // Which half: TTBR0 for VAs whose bits [top:inputsize] are zero, TTBR1 for ones.
  let tsz = upper ? (tcrLo >>> 16) & 0x3f : tcrLo & 0x3f;
  // Out-of-range TxSZ is CONSTRAINED UNPREDICTABLE: use the nearest legal value (D8.1.7).
  if (tsz < 16) tsz = 16;
  else if (tsz > 39) tsz = 39;
  const inputSize = 64 - tsz;
  W.level = 0;
  if (!topBits(lo, hi, inputSize, top, upper)) return FAULT.TRANSLATION;
  if ((tcrLo & (upper ? 1 << 23 : 1 << 7)) !== 0) return FAULT.TRANSLATION; // EPD1 / EPD0
  // Granule: TG0 00 4K, 01 64K, 10 16K; TG1 01 16K, 10 4K, 11 64K. A reserved value
  // behaves as an implemented size (D17.2.131): 4 KiB here.
  let g = 12;
  if (upper) {
    const tg1 = tcrLo >>> 30;
    g = tg1 === 1 ? 14 : tg1 === 3 ? 16 : 12;
  } else {
    const tg0 = (tcrLo >>> 14) & 3;
    g = tg0 === 1 ? 16 : tg0 === 2 ? 14 : 12;
  }
  const stride = g - 3;
  const levels = Math.ceil((inputSize - g) / stride);
  let level = 4 - levels;
  const ips = PA_BITS[tcrHi & 7]!;
  const outBits = Math.min(ips, pa);
  const outLimit = 2 ** outBits;

  // VA[47:32] (inputSize <= 48); the walk takes each level's index from (vaHi, lo) with
  // integer shifts: with doubles, divisions and remainders it took 7x as long.
  const vaHi = hi & 0xffff;
  const ttbrI = upper ? regs.ttbr1 : regs.ttbr0;
  const ttbrLo = r[ttbrI]!;
  const ttbrHi = r[ttbrI + 1]!;
  // Bits resolved at the start level and the alignment of its table (D8.2.7).
  const firstBits = inputSize - g - (levels - 1) * stride;
  // At most 2^16 (64 KiB granule, 13 bits): the alignment clears bits of TTBR[31:0] only.
  const tableAlign = 1 << Math.max(firstBits + 3, 6);
  let tableBase = (ttbrHi & 0xffff) * TWO32 + (ttbrLo >>> 0);
  if (tableBase >= outLimit) {
    W.level = 0;
    return FAULT.ADDR_SIZE; // TTBR above the output size: level 0 (AArch64.TranslationTableWalk)
  }
  tableBase -= (ttbrLo >>> 0) & (tableAlign - 1);

  let apTable = 0;
  let xnTable = false;
  let pxnTable = false;
  let bits = firstBits;
  for (;;) {
    const shift = g + (3 - level) * stride;
    // VA[shift + bits - 1 : shift] (shift >= 12, shift + bits <= 48, bits <= 13).
    const field = shift >= 32 ? vaHi >>> (shift - 32) : (lo >>> shift) | (vaHi << (32 - shift));
    const index = field & ((1 << bits) - 1);
    const descPa = tableBase + index * 8;
    const rel = descPa - ctx.ramBase;
    if (rel < 0 || rel + 8 > ctx.ramSize) return FAULT.WALK_EXTERNAL + level;
    const wi = (ctx.ramHost + rel) >>> 2;
    const dLo = ctx.m32[wi]!;
    const dHi = ctx.m32[wi + 1]!;
    if ((dLo & 1) === 0) return FAULT.TRANSLATION + level;
    const isTable = (dLo & 2) !== 0 && level < 3;
    // Output address bits [47:g] of a table or page descriptor, [47:shift] of a block.
    const oaHigh = (dHi & 0xffff) * TWO32;
    if (isTable) {
      // Aligned to the granule (g <= 16 clears bits of the low word only).
      const nextBase = oaHigh + (((dLo >>> g) << g) >>> 0);
      if (nextBase >= outLimit) return FAULT.ADDR_SIZE + level;
      // Hierarchical controls (D8.4.2): APTable[62:61], UXNTable[60], PXNTable[59].
      apTable |= (dHi >>> 29) & 3;
      if ((dHi & (1 << 28)) !== 0) xnTable = true;
      if ((dHi & (1 << 27)) !== 0) pxnTable = true;
      tableBase = nextBase;
      level++;
      bits = stride;
      continue;
    }
    if (level < 3) {
      // A block: 4K granule at levels 1 and 2, 16K and 64K at level 2 only (Armv8.0,
      // no 52-bit addresses); anything else is a translation fault at that level.
      const legal = level === 2 || (level === 1 && g === 12);
      if (!legal) return FAULT.TRANSLATION + level;
    } else if ((dLo & 2) === 0) {
      return FAULT.TRANSLATION + 3; // level-3 descriptor 0b01 is reserved
    }
    // A page or block of 2^shift bytes, shift <= 30 (a 1 GiB block at most in Armv8.0).
    const sizeMask = (1 << shift) - 1;
    const base = oaHigh + ((dLo & 0xfffff000 & ~sizeMask) >>> 0);
    if (base >= outLimit) return FAULT.ADDR_SIZE + level;
    W.level = level;
    if ((dLo & (1 << 10)) === 0) return FAULT.ACCESS + level; // AF = 0, no hardware update
    // VA[shift-1:12]: the page's offset in its block.
    W.pa = base + ((lo & sizeMask & ~0xfff) >>> 0);
    W.sizeLog = shift;
    W.sh = (dLo >>> 8) & 3;
    const attrIndx = (dLo >>> 2) & 7;
    const mairWord = r[regs.mair + (attrIndx >>> 2)]!;
    W.attr = (mairWord >>> ((attrIndx & 3) * 8)) & 0xff;
    const ng = (dLo & (1 << 11)) !== 0;
    W.asid = ng ? currentAsid(ctx, regs) : 0;
    // Permissions (D8.4.1, AArch64.CheckPermission): AP[2:1] with APTable, XN/PXN with
    // the table controls; EL0-writable memory is never executable at EL1; WXN.
    let ap = (dLo >>> 6) & 3;
    if ((apTable & 1) !== 0) ap &= 2; // no EL0 access below
    if ((apTable & 2) !== 0) ap |= 2; // read-only below
    const uxn = (dHi & (1 << 22)) !== 0 || xnTable;
    const pxn = (dHi & (1 << 21)) !== 0 || pxnTable;
    const wxn = (sctlr & SCTLR_WXN) !== 0;
    const userW = ap === 1;
    let info = TLB_INFO.VALID;
    if (el === 0) {
      if ((ap & 1) !== 0) info |= TLB_INFO.R;
      if (userW) info |= TLB_INFO.W;
      if (!(uxn || (userW && wxn))) info |= TLB_INFO.X;
    } else {
      info |= TLB_INFO.R;
      const privW = (ap & 2) === 0;
      if (privW) info |= TLB_INFO.W;
      if (!(pxn || userW || (privW && wxn))) info |= TLB_INFO.X;
    }
    if ((W.attr & 0xf0) === 0) info |= TLB_INFO.DEVICE;
    if (ng) info |= TLB_INFO.NG;
    W.info = info;
    return -1;
  }
}
