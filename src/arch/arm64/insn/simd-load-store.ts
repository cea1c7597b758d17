/**
 * AdvSIMD structure loads and stores (Arm ARM C3.2.x, "Advanced SIMD load/store multiple
 * structures", "... single structure", with and without post-index):
 * LD1-LD4 / ST1-ST4 (multiple structures, every register count of LD1/ST1), LD1-LD4 /
 * ST1-ST4 to or from one lane, and LD1R-LD4R.
 *
 * Every form touches one contiguous run of memory of at most 64 bytes, made of elements
 * of one size. Decode turns the instruction into a byte plan:
 *   - a load reads the run into a scratch buffer (element by element, so alignment and
 *     faults are checked per element, or in one go when the run lies in one RAM page),
 *     and only then writes register bytes: regOff[i] <- buf[src[i]];
 *   - a store gathers buf[k] <- regOff[k], then writes the run to memory.
 * Since every memory access happens before any register changes, a fault part-way leaves
 * the registers (and the base register) untouched.
 *
 * The table is one pattern per instruction, register count or element size, and offset
 * form; the shared formats (MULT, SINGLE) and rows (MULTIPLES, SELEMS, LANES) are at the
 * end of this file.
 */
import { ACC } from "../access.ts";
import type { Cpu } from "../cpu.ts";
import type { Exec, Fields, Pattern } from "../decoder.ts";
import { EC } from "../exceptions.ts";
import { xr } from "../regs.ts";
import { R64 } from "../ret64.ts";
import { OFF } from "../state.ts";
import { sysregIndex } from "../sysregs.ts";

/** Memory bytes of the access (up to 64), then zeros from ZERO on. */
const buf = new Uint8Array(80);
const buf32 = new Uint32Array(buf.buffer);
const ZERO = 64;

let sctlrIndex = -1;
function sctlr(c: Cpu): number {
  if (sctlrIndex < 0) sctlrIndex = sysregIndex("SCTLR_EL1");
  return c.r[sctlrIndex]!;
}

/** Byte offset of V(n mod 32) inside the vCPU block. */
const vOff = (n: number): number => OFF.V + 16 * (n & 31);

/**
 * CheckSPAlignment (Arm ARM D1.8.2): with SP as the base, SCTLR_EL1.SA0 (EL0) or .SA
 * (EL1) makes a base that is not 16-byte aligned an SP alignment fault.
 */
function checkSpAlignment(c: Cpu, lo: number): void {
  if ((lo & 15) === 0) return;
  const bit = c.el === 0 ? 1 << 4 : 1 << 3;
  if ((sctlr(c) & bit) !== 0) c.syncException(EC.SP_ALIGN, 0);
}

/**
 * True when `total` bytes at (lo, hi) can be moved as one block: inside one 4 KiB page
 * (so one translation, and one fault if any, covers it) and aligned when SCTLR_EL1.A
 * checks alignment.
 */
function oneBlock(c: Cpu, lo: number, total: number, esize: number): boolean {
  if ((lo & 0xfff) + total > 0x1000) return false;
  return (lo & (esize - 1)) === 0 || (sctlr(c) & 2) === 0;
}

function readMem(c: Cpu, lo: number, hi: number, total: number, esize: number): void {
  if (oneBlock(c, lo, total, esize)) {
    const o = c.hostOffset(lo, hi, total, ACC.READ);
    if (o >= 0) {
      if ((o & 3) === 0 && (total & 3) === 0) {
        const m32 = c.m32;
        const w = o >>> 2;
        for (let k = 0; k < total >>> 2; k++) buf32[k] = m32[w + k]!;
      } else {
        const m8 = c.m8;
        for (let k = 0; k < total; k++) buf[k] = m8[o + k]!;
      }
      return;
    }
  }
  for (let k = 0; k < total; k += esize) {
    const a = (lo + k) >>> 0;
    const ah = a < lo ? (hi + 1) >>> 0 : hi;
    switch (esize) {
      case 1:
        buf[k] = c.ld8(a, ah);
        break;
      case 2: {
        const v = c.ld16(a, ah);
        buf[k] = v;
        buf[k + 1] = v >>> 8;
        break;
      }
      case 4: {
        const v = c.ld32(a, ah);
        buf[k] = v;
        buf[k + 1] = v >>> 8;
        buf[k + 2] = v >>> 16;
        buf[k + 3] = v >>> 24;
        break;
      }
      default: {
        c.ld64(a, ah);
        const vl = R64.lo;
        const vh = R64.hi;
        buf[k] = vl;
        buf[k + 1] = vl >>> 8;
        buf[k + 2] = vl >>> 16;
        buf[k + 3] = vl >>> 24;
        buf[k + 4] = vh;
        buf[k + 5] = vh >>> 8;
        buf[k + 6] = vh >>> 16;
        buf[k + 7] = vh >>> 24;
      }
    }
  }
}

const word = (k: number): number =>
  (buf[k]! | (buf[k + 1]! << 8) | (buf[k + 2]! << 16) | (buf[k + 3]! << 24)) >>> 0;

function writeMem(c: Cpu, lo: number, hi: number, total: number, esize: number): void {
  if (oneBlock(c, lo, total, esize)) {
    const o = c.hostOffset(lo, hi, total, ACC.WRITE);
    if (o >= 0) {
      if ((o & 3) === 0 && (total & 3) === 0) {
        const m32 = c.m32;
        const w = o >>> 2;
        for (let k = 0; k < total >>> 2; k++) m32[w + k] = buf32[k]!;
      } else {
        const m8 = c.m8;
        for (let k = 0; k < total; k++) m8[o + k] = buf[k]!;
      }
      return;
    }
  }
  for (let k = 0; k < total; k += esize) {
    const a = (lo + k) >>> 0;
    const ah = a < lo ? (hi + 1) >>> 0 : hi;
    switch (esize) {
      case 1:
        c.st8(a, ah, buf[k]!);
        break;
      case 2:
        c.st16(a, ah, buf[k]! | (buf[k + 1]! << 8));
        break;
      case 4:
        c.st32(a, ah, word(k));
        break;
      default:
        c.st64(a, ah, word(k), word(k + 4));
    }
  }
}

/** A decoded structure access, as byte moves. */
interface Plan {
  load: boolean;
  /** Bytes of memory touched, and the size of each element access. */
  total: number;
  esize: number;
  /** Loads: register byte offsets written, each from buf[src[i]]. Stores: buf[k] <- regOff[k]. */
  regOff: number[];
  src: number[];
}

/**
 * Builds the executor. `rm` is the post-index register field, or -1 for no writeback;
 * rm = 31 means an immediate post-index of `total` bytes.
 */
/**
 * The plan in 32-bit words when every group of 4 entries moves one aligned word (LD1/ST1,
 * 32/64-bit elements, the zeroed upper halves): then regOff/4 indexes c.r, src/4 buf32.
 */
function wordPlan(p: Plan): { regOff: number[]; src: number[] } | null {
  const n = p.regOff.length;
  if (n % 4 !== 0) return null;
  const regOff: number[] = [];
  const src: number[] = [];
  for (let i = 0; i < n; i += 4) {
    const ro = p.regOff[i]!;
    const s = p.load ? p.src[i]! : i;
    if ((ro & 3) !== 0 || (s & 3) !== 0) return null;
    for (let k = 1; k < 4; k++) {
      if (p.regOff[i + k] !== ro + k) return null;
      if (p.load && p.src[i + k] !== (s === ZERO ? ZERO : s + k)) return null;
    }
    regOff.push(ro >>> 2);
    src.push(s >>> 2);
  }
  return { regOff, src };
}

function build(p: Plan, rn: number, rm: number): Exec {
  const { load, total, esize } = p;
  const words = wordPlan(p);
  const regOff = Uint16Array.from(words ? words.regOff : p.regOff);
  const src = Uint8Array.from(words ? words.src : p.src);
  const count = regOff.length;
  const isSp = rn === 31;
  const mi = rm >= 0 && rm !== 31 ? xr(rm) : -1;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const bi = isSp ? c.sp : rn * 2;
    const lo = r[bi]!;
    const hi = r[bi + 1]!;
    if (isSp) checkSpAlignment(c, lo);
    // The offset is read before any write (Rm may be the base register).
    let olo = total;
    let ohi = 0;
    if (mi >= 0) {
      olo = r[mi]!;
      ohi = r[mi + 1]!;
    }
    if (load) {
      readMem(c, lo, hi, total, esize);
      if (words) for (let i = 0; i < count; i++) r[regOff[i]!] = buf32[src[i]!]!;
      else {
        const r8 = c.r8;
        for (let i = 0; i < count; i++) r8[regOff[i]!] = buf[src[i]!]!;
      }
    } else {
      if (words) for (let k = 0; k < count; k++) buf32[k] = r[regOff[k]!]!;
      else {
        const r8 = c.r8;
        for (let k = 0; k < count; k++) buf[k] = r8[regOff[k]!]!;
      }
      writeMem(c, lo, hi, total, esize);
    }
    if (rm >= 0) {
      const s = lo + olo;
      r[bi] = s >>> 0;
      r[bi + 1] = (hi + ohi + (s > 0xffffffff ? 1 : 0)) >>> 0;
    }
  };
}

// ---------------------------------------------------------------------------
// Multiple structures: 0 Q 0011000 L 000000 opcode size Rn Rt (post-index: 0011001 L 0 Rm)

/** LDn/STn (multiple structures): `rpt` registers repeated, `selem` elements per structure. */
function multiple(f: Fields, rpt: number, selem: number, rm: number): Exec | null {
  const { Q, size, L, Rt } = f as { Q: number; size: number; L: number; Rt: number };
  if (size === 3 && Q === 0 && selem !== 1) return null;
  const esize = 1 << size;
  const bytes = Q ? 16 : 8;
  const elements = bytes / esize;
  const regOff: number[] = [];
  const src: number[] = [];
  // Memory order (Arm ARM shared/functions "LoadStoreMultiple"): for each repetition, for
  // each element index, for each structure member: register t + r + s, element e.
  let k = 0;
  for (let r = 0; r < rpt; r++) {
    for (let e = 0; e < elements; e++) {
      for (let s = 0; s < selem; s++) {
        const base = vOff(Rt + r + s) + e * esize;
        for (let b = 0; b < esize; b++) {
          regOff.push(base + b);
          src.push(k++);
        }
      }
    }
  }
  // A load with Q = 0 clears the upper 64 bits of every register it writes.
  if (L && Q === 0) {
    for (let t = 0; t < rpt * selem; t++)
      for (let b = 8; b < 16; b++) {
        regOff.push(vOff(Rt + t) + b);
        src.push(ZERO);
      }
  }
  return build({ load: L === 1, total: k, esize, regOff, src }, f.Rn!, rm);
}

// ---------------------------------------------------------------------------
// Single structure: 0 Q 0011010 L R 00000 opcode S size Rn Rt (post-index: 0011011 L R Rm)

/** LDn/STn (single structure): lane `index` of elements of 2^scale bytes; the other lanes keep their contents. */
function single(f: Fields, scale: number, selem: number, index: number, rm: number): Exec {
  const esize = 1 << scale;
  const regOff: number[] = [];
  const src: number[] = [];
  for (let s = 0; s < selem; s++) {
    const v = vOff(f.Rt! + s);
    for (let b = 0; b < esize; b++) {
      regOff.push(v + index * esize + b);
      src.push(s * esize + b);
    }
  }
  return build({ load: f.L === 1, total: selem * esize, esize, regOff, src }, f.Rn!, rm);
}

/** LDnR: the element fills the whole vector of Q ? 128 : 64 bits; the rest is zeroed. */
function replicate(f: Fields, selem: number, rm: number): Exec {
  const esize = 1 << f.size!;
  const regOff: number[] = [];
  const src: number[] = [];
  for (let s = 0; s < selem; s++) {
    const v = vOff(f.Rt! + s);
    for (let b = 0; b < 16; b++) {
      regOff.push(v + b);
      src.push(b < (f.Q ? 16 : 8) ? s * esize + (b & (esize - 1)) : ZERO);
    }
  }
  return build({ load: true, total: selem * esize, esize, regOff, src }, f.Rn!, rm);
}

// ---------------------------------------------------------------------------
// The table: one pattern per instruction, register count / element size and offset form.

/**
 * Formats (decodetree's @...): bits 24..0 after `0 Q 001100`, without post-index
 * (bit 23 = 0, Rm = 00000) and with it (bit 23 = 1, Rm).
 */
const MULT = (post: boolean, l: number, opcode: string): string =>
  `${post ? `1 ${l} 0 Rm:5` : `0 ${l} 0 00000`} ${opcode} size:2 Rn:5 Rt:5`;
const SINGLE = (post: boolean, l: number, r: number, opcode: string, tail: string): string =>
  `${post ? 1 : 0} ${l} ${r} ${post ? "Rm:5" : "00000"} ${opcode} ${tail} Rn:5 Rt:5`;

/** Multiple structures: mnemonic digit, qualifier, opcode, registers repeated, elements per structure. */
const MULTIPLES = [
  ["1", ", one register", "0111", 1, 1],
  ["1", ", two registers", "1010", 2, 1],
  ["1", ", three registers", "0110", 3, 1],
  ["1", ", four registers", "0010", 4, 1],
  ["2", "", "1000", 1, 2],
  ["3", "", "0100", 1, 3],
  ["4", "", "0000", 1, 4],
] as const;

/** Single structure, by element count: the R bit and opcode<0>. */
const SELEMS = [
  [1, 0, 0],
  [2, 1, 0],
  [3, 0, 1],
  [4, 1, 1],
] as const;

/**
 * Single structure, by element size: qualifier, opcode<2:1>, the format of S and size,
 * the scale, and the lane index from Q, S and size.
 */
const LANES: readonly (readonly [string, string, string, number, (f: Fields) => number])[] = [
  ["8-bit", "00", "S:1 size:2", 0, (f) => (f.Q! << 3) | (f.S! << 2) | f.size!],
  ["16-bit", "01", "S:1 sz:1 0", 1, (f) => (f.Q! << 2) | (f.S! << 1) | f.sz!],
  ["32-bit", "10", "S:1 00", 2, (f) => (f.Q! << 1) | f.S!],
  ["64-bit", "10", "0 01", 3, (f) => f.Q!],
];

function structures(post: boolean, ld: "LD" | "ST", l: number): Pattern[] {
  const rm = (f: Fields): number => (post ? f.Rm! : -1);
  const pi = post ? ", post-index" : "";
  const out: Pattern[] = [];
  for (const [n, qual, opcode, rpt, selem] of MULTIPLES)
    out.push({
      name: `${ld}${n} (multiple structures${pi}${qual})`,
      pattern: `0 Q:1 001100 ${MULT(post, l, opcode)}`,
      feature: "AdvSIMD",
      decode: (f) => multiple({ ...f, L: l }, rpt, selem, rm(f)),
    });
  for (const [selem, r, o0] of SELEMS) {
    for (const [qual, scale, tail, sc, index] of LANES)
      out.push({
        name: `${ld}${selem} (single structure${pi}, ${qual})`,
        pattern: `0 Q:1 001101 ${SINGLE(post, l, r, `${scale}${o0}`, tail)}`,
        feature: "AdvSIMD",
        decode: (f) => single({ ...f, L: l }, sc, selem, index(f), rm(f)),
      });
    if (l === 1)
      out.push({
        name: `LD${selem}R${post ? " (post-index)" : ""}`,
        pattern: `0 Q:1 001101 ${SINGLE(post, 1, r, `11${o0}`, "0 size:2")}`,
        feature: "AdvSIMD",
        decode: (f) => replicate(f, selem, rm(f)),
      });
  }
  return out;
}

export const SIMD_LOAD_STORE: Pattern[] = [false, true].flatMap((post) => [
  ...structures(post, "ST", 0),
  ...structures(post, "LD", 1),
]);
