/**
 * Builds VMSAv8-64 stage-1 translation tables in a CPU's RAM for tests, with the
 * descriptor formats of the Arm ARM (D8.3) written out by hand, so that the MMU under
 * test is checked against the rules, not against itself.
 */

import type { Cpu } from "../../src/arch/arm64/index.ts";
import { RAM_OFFSET } from "../../src/arch/arm64/state.ts";
import { sysregIndex } from "../../src/arch/arm64/sysregs.ts";

export interface MapAttrs {
  /** AP[2:1]: 0 EL1 RW, 1 EL0+EL1 RW, 2 EL1 RO, 3 EL0+EL1 RO. Default 1. */
  ap?: number;
  uxn?: boolean;
  pxn?: boolean;
  ng?: boolean;
  /** Access flag; default set. */
  af?: boolean;
  attrIndx?: number;
  /** Level of the leaf descriptor (3 = page; 1 or 2 = block). Default 3. */
  level?: number;
  /** Table attributes applied to the table descriptor leading to this level (bits 63:59). */
  apTable?: number;
  uxnTable?: boolean;
  pxnTable?: boolean;
  contiguous?: boolean;
}

const TWO32 = 2 ** 32;

export class PageTables {
  readonly granuleLog: number;
  readonly stride: number;
  /** Physical address of the next free table. */
  private next: number;
  /** Root tables (TTBR0 and TTBR1) PAs. */
  readonly root0: number;
  readonly root1: number;
  readonly startLevel: number;
  readonly inputSize: number;

  constructor(
    readonly cpu: Cpu,
    opts: { granuleKiB?: 4 | 16 | 64; tableArea: number; vaBits?: number },
  ) {
    const gk = opts.granuleKiB ?? 4;
    this.granuleLog = gk === 4 ? 12 : gk === 16 ? 14 : 16;
    this.stride = this.granuleLog - 3;
    this.inputSize = opts.vaBits ?? 48;
    const levels = Math.ceil((this.inputSize - this.granuleLog) / this.stride);
    this.startLevel = 4 - levels;
    this.next = opts.tableArea;
    this.root0 = this.alloc();
    this.root1 = this.alloc();
  }

  private alloc(): number {
    const pa = this.next;
    this.next += 2 ** this.granuleLog;
    const host = RAM_OFFSET + pa - this.cpu.bus.ramBase;
    this.cpu.m8.fill(0, host, host + 2 ** this.granuleLog);
    return pa;
  }

  private readDesc(pa: number): [number, number] {
    const host = RAM_OFFSET + pa - this.cpu.bus.ramBase;
    return [this.cpu.dv.getUint32(host, true), this.cpu.dv.getUint32(host + 4, true)];
  }
  writeDesc(pa: number, lo: number, hi: number): void {
    const host = RAM_OFFSET + pa - this.cpu.bus.ramBase;
    this.cpu.dv.setUint32(host, lo >>> 0, true);
    this.cpu.dv.setUint32(host + 4, hi >>> 0, true);
  }

  private shift(level: number): number {
    return this.granuleLog + (3 - level) * this.stride;
  }

  /** PA of the descriptor for `va` at `level` (creating tables on the way). */
  descriptorAddress(va: bigint, level: number, tableAttrs: MapAttrs = {}): number {
    const upper = ((va >> 55n) & 1n) === 1n;
    let table = upper ? this.root1 : this.root0;
    const vaN = Number(va & ((1n << BigInt(this.inputSize)) - 1n));
    for (let l = this.startLevel; ; l++) {
      const sh = this.shift(l);
      const bits = l === this.startLevel ? this.inputSize - sh : this.stride;
      const idx = Math.floor(vaN / 2 ** sh) % 2 ** bits;
      const d = table + idx * 8;
      if (l === level) return d;
      let [lo, hi] = this.readDesc(d);
      if ((lo & 3) !== 3) {
        const t = this.alloc();
        lo = (t % TWO32) | 3;
        hi = Math.floor(t / TWO32);
      }
      // Table attributes: APTable 62:61, UXNTable 60, PXNTable 59.
      if (l === level - 1) {
        hi |=
          ((tableAttrs.apTable ?? 0) << 29) |
          (tableAttrs.uxnTable ? 1 << 28 : 0) |
          (tableAttrs.pxnTable ? 1 << 27 : 0);
      }
      this.writeDesc(d, lo, hi);
      table = (hi & 0xffff) * TWO32 + ((lo >>> 0) - ((lo >>> 0) % 2 ** this.granuleLog));
    }
  }

  /** Maps one page or block of `va` to `pa`. */
  map(va: bigint, pa: number, attrs: MapAttrs = {}): void {
    const level = attrs.level ?? 3;
    const d = this.descriptorAddress(va, level, attrs);
    const type = level === 3 ? 3 : 1;
    const lo =
      (pa % TWO32) |
      type |
      ((attrs.attrIndx ?? 0) << 2) |
      ((attrs.ap ?? 1) << 6) |
      (3 << 8) | // inner shareable
      (attrs.af === false ? 0 : 1 << 10) |
      (attrs.ng ? 1 << 11 : 0);
    const hi =
      Math.floor(pa / TWO32) |
      (attrs.contiguous ? 1 << 20 : 0) |
      (attrs.pxn ? 1 << 21 : 0) |
      (attrs.uxn ? 1 << 22 : 0);
    this.writeDesc(d, lo, hi);
  }

  /** Writes raw descriptor words for `va` at `level`. */
  rawLeaf(va: bigint, level: number, lo: number, hi: number): void {
    this.writeDesc(this.descriptorAddress(va, level), lo, hi);
  }

  /**
   * Turns the MMU on: MAIR (attr 0 Normal WB, 1 Device-nGnRnE), TCR with this granule and
   * VA size for both halves, IPS 40 bits, 16-bit ASIDs, TTBRs with `asid`.
   */
  enable(
    opts: { asid?: number; tbi0?: boolean; tbi1?: boolean; a1?: boolean; wxn?: boolean; as8?: boolean } = {},
  ): void {
    const r = this.cpu.r;
    const g = this.granuleLog;
    const tg0 = g === 12 ? 0 : g === 16 ? 1 : 2;
    const tg1 = g === 12 ? 2 : g === 16 ? 3 : 1;
    const tsz = 64 - this.inputSize;
    const tcrLo = tsz | (tsz << 16) | (tg0 << 14) | (tg1 << 30) | (opts.a1 ? 1 << 22 : 0);
    const tcrHi = 2 | (opts.as8 ? 0 : 1 << 4) | (opts.tbi0 ? 1 << 5 : 0) | (opts.tbi1 ? 1 << 6 : 0);
    const set = (name: string, lo: number, hi: number) => {
      const i = sysregIndex(name);
      r[i] = lo >>> 0;
      r[i + 1] = hi >>> 0;
    };
    set("MAIR_EL1", 0x000000ff, 0);
    set("TCR_EL1", tcrLo, tcrHi);
    const asid = (opts.asid ?? 0) << 16;
    set("TTBR0_EL1", this.root0 % TWO32, Math.floor(this.root0 / TWO32) | asid);
    set("TTBR1_EL1", this.root1 % TWO32, Math.floor(this.root1 / TWO32));
    const sctlr = sysregIndex("SCTLR_EL1");
    r[sctlr] = (r[sctlr]! | 1 | (opts.wxn ? 1 << 19 : 0)) >>> 0;
    this.cpu.flushTlb();
  }

  setAsid(asid: number): void {
    const i = sysregIndex("TTBR0_EL1");
    this.cpu.r[i + 1] = ((this.cpu.r[i + 1]! & 0xffff) | (asid << 16)) >>> 0;
  }
}
