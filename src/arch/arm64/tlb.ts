/**
 * The software TLB: a cache of stage-1 translations held in the vCPU's state block, so
 * that the interpreter and (later) translated WebAssembly probe it with plain loads.
 *
 * Layout (byte offsets from the start of the vCPU block; docs/STATE.md repeats it):
 *
 *   OFF.TLB + regime * REGIME_BYTES + set * ENTRY_BYTES + word * 4
 *
 * Two regimes, indexed by the exception level whose permissions apply (0: EL0, including
 * LDTR/STTR and AT S1E0* at EL1; 1: EL1), each a direct-mapped table of TLB_SETS (4096)
 * entries indexed by VA[23:12]. Every entry maps one 4 KiB page whatever the granule or block
 * size (a larger translation fills one entry per 4 KiB page touched).
 *
 * Entry words (32 bits each):
 *   0,1  read tag   VA[31:12]<<12 and VA[63:32] of the page when a read may take the fast
 *   2,3  write tag  path; word 0 = NO_TAG (0x800) when it may not: translated code compares
 *                   the tag with the VA's page and its low alignment bits (an access of up
 *                   to 16 bytes), which bit 11 is never part of
 *   4,5  fetch tag
 *   6    host byte offset of the page in the memory (RAM pages only)
 *   7    PA[43:12]
 *   8    INFO bits: VALID, R, W, X (permitted at this regime's EL), DEVICE, MMIO, NG
 *   9    ASID the entry was filled under (non-global entries)
 *   10,11 canonical VA of the page (low 12 bits zero; top byte after TBI)
 *   12   log2 of the size of the translation (block or page) it came from, for TLBI by VA
 *   13   memory attributes: MAIR byte | SH << 8 (for AT and alignment)
 *   14   level of the final descriptor (for a permission fault found on a hit)
 *   15   word 6 minus VA[31:12]<<12 (mod 2^32): translated code's host address of a hit
 *        is this plus VA[31:0], one add (QEMU's addend)
 *
 * A fast hit for an access of `acc` (0 read, 1 write, 2 fetch) is: tag words equal the
 * address's page, the access stays inside the page, and the page address is word 6 plus
 * VA[11:0]. Everything else (MMIO and Device pages, tagged addresses, a first write to a
 * page that is not marked dirty yet, code pages of a future translator) leaves the tag
 * invalid and goes through the slow path, which looks at the INFO word before walking.
 */
import { OFF, TLB_SETS } from "./state.ts";

export const TLB = {
  /** Byte offset of the TLB in the vCPU block. */
  OFFSET: OFF.TLB,
  ENTRIES: TLB_SETS,
  /** The set index of a VA is (VA >>> 12) & INDEX_MASK. */
  INDEX_MASK: TLB_SETS - 1,
  ENTRY_WORDS: 16,
  ENTRY_BYTES: 64,
  REGIMES: 2,
  REGIME_WORDS: TLB_SETS * 16,
  /** Bytes of the whole TLB (both regimes). */
  BYTES: 2 * TLB_SETS * 64,
  // Word offsets inside an entry.
  TAG: 0, // + 2 * acc (ACC.READ 0, WRITE 1, FETCH 2)
  HOST: 6,
  PA_PAGE: 7,
  INFO: 8,
  ASID: 9,
  VA_LO: 10,
  VA_HI: 11,
  SIZE_LOG: 12,
  ATTR: 13,
  LEVEL: 14,
  ADDEND: 15,
  /**
   * Tag word 0 of an entry (or access kind) that may not take the fast path: no page
   * address, and no page address with alignment bits 3:0 set (translated code's probe,
   * jit/emit.ts fastProbe), equals it. (It was 1, which a misaligned access to a page
   * whose VA[31:12] is 0 matched: test/jit-simd.test.ts.)
   */
  NO_TAG: 0x800,
} as const;

/** Bits of the INFO word. */
export const TLB_INFO = {
  VALID: 1,
  R: 2,
  W: 4,
  X: 8,
  /** MAIR says Device memory: unaligned accesses fault (Arm ARM B2.5.2). */
  DEVICE: 16,
  /** Not RAM: accesses go to the bus. */
  MMIO: 32,
  /** Non-global: tagged with the ASID in word 9. */
  NG: 64,
} as const;

/** Takes the read, write and fetch tags off entry `e`: every access to it takes the slow path. */
export function untag(t: Int32Array, e: number): void {
  t[e] = TLB.NO_TAG;
  t[e + 2] = TLB.NO_TAG;
  t[e + 4] = TLB.NO_TAG;
}

/** Empties every entry of both regimes. `t` is the TLB's Int32Array view. */
export function tlbFlushAll(t: Int32Array): void {
  for (let e = 0; e < t.length; e += TLB.ENTRY_WORDS) {
    untag(t, e);
    t[e + TLB.INFO] = 0;
  }
}

/** Takes the fast tags off every non-global entry (the ASID in force changed). */
export function tlbDropNonGlobalTags(t: Int32Array): void {
  for (let e = 0; e < t.length; e += TLB.ENTRY_WORDS) {
    if ((t[e + TLB.INFO]! & TLB_INFO.NG) === 0) continue;
    untag(t, e);
  }
}

/** Drops every write tag, so the next store to each page takes the slow path (dirty log). */
export function tlbDropWriteTags(t: Int32Array): void {
  for (let e = 0; e < t.length; e += TLB.ENTRY_WORDS) t[e + 2] = TLB.NO_TAG;
}

/**
 * Empties the entries selected by a TLBI (Arm ARM D8.13 / C5.5) without an address:
 * `asid` (null: any ASID), and whether global entries are included (VMALLE1 includes
 * them, ASIDE1 does not).
 */
export function tlbInvalidateAll(t: Int32Array, asid: number | null, includeGlobal: boolean): void {
  for (let e = 0; e < t.length; e += TLB.ENTRY_WORDS) invalidateEntry(t, e, null, 0, asid, includeGlobal);
}

/** The index of the aligned 2^sizeLog range holding VA[55:12] = (lo, hi) (the block's number). */
function blockKey(lo: number, hi: number, sizeLog: number): number {
  const top = hi & 0x00ffffff;
  return sizeLog >= 32 ? top >>> (sizeLog - 32) : top * 2 ** (32 - sizeLog) + (lo >>> sizeLog);
}

/**
 * The TLB entries filled from translations larger than 4 KiB (blocks, or the pages of a
 * larger granule), by size and by the block they came from: such an entry can sit in any
 * set of its block's range, and a TLBI by VA must find all of them. Listings of entries
 * refilled since are dropped when their block is looked up, or all at once when they
 * outnumber the entries.
 */
export class LargeEntries {
  /** sizeLog -> block number -> word indices of entries filled from that block. */
  private readonly bySize = new Map<number, Map<number, number[]>>();
  private listed = 0;
  /** Entry `e` (VA page lo, canonical hi) was just filled from a translation of 2^sizeLog bytes. */
  filled(t: Int32Array, e: number, lo: number, hi: number, sizeLog: number): void {
    if (sizeLog <= 12) return;
    let blocks = this.bySize.get(sizeLog);
    if (blocks === undefined) this.bySize.set(sizeLog, (blocks = new Map()));
    const key = blockKey(lo, hi, sizeLog);
    const list = blocks.get(key);
    if (list === undefined) blocks.set(key, [e]);
    else if (!list.includes(e)) list.push(e);
    else return;
    if (++this.listed > 4 * TLB.REGIMES * TLB.ENTRIES) this.rebuild(t);
  }
  clear(): void {
    this.bySize.clear();
    this.listed = 0;
  }
  /** Lists again only the entries that still hold a large translation. */
  private rebuild(t: Int32Array): void {
    this.clear();
    for (let e = 0; e < t.length; e += TLB.ENTRY_WORDS) {
      if ((t[e + TLB.INFO]! & TLB_INFO.VALID) === 0) continue;
      this.filled(t, e, t[e + TLB.VA_LO]!, t[e + TLB.VA_HI]!, t[e + TLB.SIZE_LOG]!);
    }
  }
  /** Applies invalidateEntry for (lo, hi, asid) to every entry of a large translation holding the VA. */
  invalidate(t: Int32Array, lo: number, hi: number, asid: number | null): void {
    for (const [sizeLog, blocks] of this.bySize) {
      const key = blockKey(lo, hi, sizeLog);
      const list = blocks.get(key);
      if (list === undefined) continue;
      let k = 0;
      for (const e of list) {
        invalidateEntry(t, e, lo, hi, asid, true);
        // Still listed: a valid entry of this block (another ASID's, not selected).
        if (
          (t[e + TLB.INFO]! & TLB_INFO.VALID) !== 0 &&
          t[e + TLB.SIZE_LOG] === sizeLog &&
          blockKey(t[e + TLB.VA_LO]!, t[e + TLB.VA_HI]!, sizeLog) === key
        ) {
          list[k++] = e;
        }
      }
      this.listed -= list.length - k;
      if (k === 0) blocks.delete(key);
      else list.length = k;
    }
  }
}

/**
 * Empties the entries selected by a TLBI by VA (VAE1, VALE1, VAAE1, VAALE1): those of
 * translations holding `va` (VA[55:12] as lo/hi halves of the operand's page), for `asid`
 * (null: any ASID), global entries included. An entry of a 4 KiB translation of `va` is
 * in `va`'s set, one per regime; one of a larger translation is found through `large`.
 * (Linux flushes ranges page by page with VAALE1: 47 k of them in the first 300 M
 * instructions of its boot, which scanned 1024 entries each when the TLB had 1024 sets.)
 */
export function tlbInvalidateVa(
  t: Int32Array,
  vaLo: number,
  vaHi: number,
  asid: number | null,
  large: LargeEntries,
): void {
  const set = (vaLo >>> 12) & TLB.INDEX_MASK;
  for (let regime = 0; regime < TLB.REGIMES; regime++) {
    invalidateEntry(t, regime * TLB.REGIME_WORDS + set * TLB.ENTRY_WORDS, vaLo, vaHi, asid, true);
  }
  large.invalidate(t, vaLo, vaHi, asid);
}

function invalidateEntry(
  t: Int32Array,
  e: number,
  vaLo: number | null,
  vaHi: number,
  asid: number | null,
  includeGlobal: boolean,
): void {
  const info = t[e + TLB.INFO]!;
  if ((info & TLB_INFO.VALID) === 0) return;
  const ng = (info & TLB_INFO.NG) !== 0;
  if (!ng && !includeGlobal) return;
  if (ng && asid !== null && t[e + TLB.ASID] !== asid) return;
  if (vaLo !== null && !sameTranslation(t, e, vaLo, vaHi)) return;
  untag(t, e);
  t[e + TLB.INFO] = 0;
}

/** True when VA[55:12] (lo, hi) lies in the block or page entry `e` was filled from. */
function sameTranslation(t: Int32Array, e: number, vaLo: number, vaHi: number): boolean {
  const s = t[e + TLB.SIZE_LOG]!;
  const eLo = t[e + TLB.VA_LO]!;
  const eHi = t[e + TLB.VA_HI]!;
  // Compare bits [55:s] of the two addresses; TLBI operands carry only VA[55:12].
  if (s >= 32) return ((eHi ^ vaHi) & 0x00ffffff) >>> (s - 32) === 0;
  return ((eHi ^ vaHi) & 0x00ffffff) === 0 && (eLo ^ vaLo) >>> s === 0;
}
