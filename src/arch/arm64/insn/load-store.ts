/**
 * A64 "Loads and Stores" class (Arm ARM C4.1.88), integer and SIMD&FP register forms:
 * LDR/STR in every addressing mode, LDUR/STUR, LDTR/STTR, literal loads, PRFM/PRFUM,
 * LDP/STP/LDPSW/LDNP/STNP. Exclusives, acquire/release and the Armv8.1 LSE atomics live
 * in load-store-atomic.ts and are appended to this table. The SIMD structure loads
 * (LD1..LD4/ST1..ST4) are in simd-load-store.ts.
 *
 * CONSTRAINED UNPREDICTABLE choices follow qemu-aarch64 (checked with small programs):
 *  - load with writeback and Rn == Rt: the loaded value is written, then the writeback
 *    (the base register ends up holding the updated address);
 *  - store with writeback and Rn == Rt: the value stored is Rt before the writeback;
 *  - LDP with Rt == Rt2: the first element wins for X/W registers (Rt is written last),
 *    the second for SIMD&FP registers.
 */
import { Cpu } from "../cpu.ts";
import type { Exec, Pattern } from "../decoder.ts";
import { add64, addImm, addrImm, aHi, aLo, type Elem, EXT, fpElem, gprElem } from "./load-store-access.ts";
import { ATOMIC_PATTERNS } from "./load-store-atomic.ts";

/** What a (size, V, opc) triple of the single-register forms means. */
interface Kind {
  readonly elem: Elem;
  readonly load: boolean;
  readonly prefetch: boolean;
}

/**
 * Decodes size:V:opc of LDR/STR (immediate, register, unscaled, unprivileged) per the
 * Arm ARM encoding tables; null when unallocated. PRFM is returned as a prefetch kind.
 */
function singleKind(size: number, v: number, opc: number): Kind | null {
  if (v === 1) {
    const sizeLog = (opc & 2) !== 0 ? (size === 0 ? 4 : -1) : size;
    if (sizeLog < 0) return null;
    return { elem: fpElem(sizeLog), load: (opc & 1) !== 0, prefetch: false };
  }
  switch (opc) {
    case 0:
      return { elem: gprElem(size, EXT.ZERO), load: false, prefetch: false };
    case 1:
      return { elem: gprElem(size, EXT.ZERO), load: true, prefetch: false };
    case 2:
      if (size === 3) return { elem: gprElem(3, EXT.ZERO), load: true, prefetch: true };
      return { elem: gprElem(size, EXT.SIGN64), load: true, prefetch: false };
    default:
      if (size >= 2) return null;
      return { elem: gprElem(size, EXT.SIGN32), load: true, prefetch: false };
  }
}

const nop: Exec = () => {};

/** Base register slot: -1 stands for the current SP (resolved at run time). */
function baseSlot(rn: number): number {
  return rn === 31 ? -1 : rn * 2;
}

/**
 * LDTR/STTR and their sized forms (Arm ARM C6.2, "unprivileged"): at EL1 the access is
 * checked with EL0's permissions; the access path switches back on any exception entry.
 */
function unprivileged(ex: Exec): Exec {
  return (c) => {
    c.setUnprivileged(true);
    ex(c);
    c.setUnprivileged(false);
  };
}

/** Writeback modes of the immediate forms. */
const WB = { NONE: 0, PRE: 1, POST: 2 } as const;

/** LDR/STR with an immediate offset: unsigned scaled, unscaled, pre/post-indexed, unprivileged. */
function immSingle(k: Kind, rt: number, rn: number, off: number, wb: number): Exec {
  const e = k.elem;
  const bi = baseSlot(rn);
  const fp = e.fp;
  if (k.load) {
    if (wb === WB.NONE)
      return (c) => {
        if (fp) c.checkFp();
        addrImm(c.r, bi < 0 ? c.sp : bi, off);
        e.ld(c, aLo, aHi, 0);
        e.put(c, rt, 0);
      };
    const post = wb === WB.POST;
    return (c) => {
      if (fp) c.checkFp();
      const r = c.r;
      const b = bi < 0 ? c.sp : bi;
      addrImm(r, b, off);
      const nlo = aLo;
      const nhi = aHi;
      if (post) e.ld(c, r[b]!, r[b + 1]!, 0);
      else e.ld(c, nlo, nhi, 0);
      e.put(c, rt, 0);
      r[b] = nlo;
      r[b + 1] = nhi;
    };
  }
  if (wb === WB.NONE)
    return (c) => {
      if (fp) c.checkFp();
      addrImm(c.r, bi < 0 ? c.sp : bi, off);
      e.st(c, aLo, aHi, rt);
    };
  const post = wb === WB.POST;
  return (c) => {
    if (fp) c.checkFp();
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    addrImm(r, b, off);
    const nlo = aLo;
    const nhi = aHi;
    if (post) e.st(c, r[b]!, r[b + 1]!, rt);
    else e.st(c, nlo, nhi, rt);
    r[b] = nlo;
    r[b + 1] = nhi;
  };
}

/**
 * LDR/STR (register): address = Xn|SP + (extend(Rm) << shift). option: 010 UXTW,
 * 011 LSL (UXTX), 110 SXTW, 111 SXTX; option<1> == 0 is unallocated.
 */
function regSingle(k: Kind, rt: number, rn: number, rm: number, option: number, shift: number): Exec | null {
  if ((option & 2) === 0) return null;
  if (k.prefetch) return nop;
  const e = k.elem;
  const bi = baseSlot(rn);
  const mi = Cpu.xr(rm);
  const fp = e.fp;
  const is64 = (option & 1) !== 0; // UXTX/SXTX use all of Xm
  const signed = (option & 4) !== 0;
  const load = k.load;
  return (c) => {
    if (fp) c.checkFp();
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    let olo = r[mi]!;
    let ohi = is64 ? r[mi + 1]! : signed ? (olo >> 31) >>> 0 : 0;
    if (shift !== 0) {
      ohi = ((ohi << shift) | (olo >>> (32 - shift))) >>> 0;
      olo = (olo << shift) >>> 0;
    }
    add64(r[b]!, r[b + 1]!, olo, ohi);
    if (load) {
      e.ld(c, aLo, aHi, 0);
      e.put(c, rt, 0);
    } else e.st(c, aLo, aHi, rt);
  };
}

/** Addressing of the fast GPR forms (gprFast). */
const AM = { IMM: 0, REG_LSL: 1, REG_UXTW: 2, REG_SXTW: 3 } as const;

/**
 * Address of a fast GPR load/store into aLo/aHi: base slot `bi` (-1 = SP) plus an
 * immediate `x` (AM.IMM) or register `mi` extended by `am` and shifted left by `x`.
 * One plain function, so that every executor's call to it is monomorphic and inlined.
 */
function fastAddress(c: Cpu, am: number, bi: number, mi: number, x: number): void {
  const r = c.r;
  const b = bi < 0 ? c.sp : bi;
  if (am === AM.IMM) {
    addrImm(r, b, x);
    return;
  }
  let olo = r[mi]!;
  let ohi = am === AM.REG_LSL ? r[mi + 1]! : am === AM.REG_SXTW ? (olo >> 31) >>> 0 : 0;
  if (x !== 0) {
    ohi = ((ohi << x) | (olo >>> (32 - x))) >>> 0;
    olo = (olo << x) >>> 0;
  }
  add64(r[b]!, r[b + 1]!, olo, ohi);
}

/**
 * LDR/STR{B,H,} of a general-purpose register without sign extension and without
 * writeback: the most frequent loads and stores, given executors of their own so that
 * their calls stay monomorphic (the generic path goes through Elem closures).
 */
function gprFast(
  load: boolean,
  size: number,
  rt: number,
  am: number,
  rn: number,
  mi: number,
  x: number,
): Exec {
  const bi = baseSlot(rn);
  const t = load ? Cpu.xw(rt) : Cpu.xr(rt);
  if (load) {
    switch (size) {
      case 0:
        return (c) => {
          fastAddress(c, am, bi, mi, x);
          const v = c.ld8(aLo, aHi);
          c.r[t] = v;
          c.r[t + 1] = 0;
        };
      case 1:
        return (c) => {
          fastAddress(c, am, bi, mi, x);
          const v = c.ld16(aLo, aHi);
          c.r[t] = v;
          c.r[t + 1] = 0;
        };
      case 2:
        return (c) => {
          fastAddress(c, am, bi, mi, x);
          const v = c.ld32(aLo, aHi);
          c.r[t] = v;
          c.r[t + 1] = 0;
        };
      default:
        return (c) => {
          fastAddress(c, am, bi, mi, x);
          c.ld64(aLo, aHi);
          c.r[t] = c.vlo;
          c.r[t + 1] = c.vhi;
        };
    }
  }
  switch (size) {
    case 0:
      return (c) => {
        fastAddress(c, am, bi, mi, x);
        c.st8(aLo, aHi, c.r[t]! & 0xff);
      };
    case 1:
      return (c) => {
        fastAddress(c, am, bi, mi, x);
        c.st16(aLo, aHi, c.r[t]! & 0xffff);
      };
    case 2:
      return (c) => {
        fastAddress(c, am, bi, mi, x);
        c.st32(aLo, aHi, c.r[t]!);
      };
    default:
      return (c) => {
        fastAddress(c, am, bi, mi, x);
        c.st64(aLo, aHi, c.r[t]!, c.r[t + 1]!);
      };
  }
}

/** LDR (literal) and PRFM (literal): PC-relative, offset imm19 * 4. */
function literal(opc: number, v: number, imm19: number, rt: number): Exec | null {
  let e: Elem;
  if (v === 1) {
    if (opc === 3) return null;
    e = fpElem(opc + 2);
  } else if (opc === 3) return nop;
  else e = opc === 0 ? gprElem(2, EXT.ZERO) : opc === 1 ? gprElem(3, EXT.ZERO) : gprElem(2, EXT.SIGN64);
  const off = imm19 * 4;
  const fp = e.fp;
  return (c) => {
    if (fp) c.checkFp();
    addImm(c.pcLo, c.pcHi, off);
    e.ld(c, aLo, aHi, 0);
    e.put(c, rt, 0);
  };
}

/**
 * LDP/STP/LDPSW/LDNP/STNP. idx: 00 no-allocate offset, 01 post-index, 10 offset, 11 pre-index.
 * Both accesses happen before any register is written.
 */
function pair(
  opc: number,
  v: number,
  idx: number,
  l: number,
  imm7: number,
  rt2: number,
  rn: number,
  rt: number,
): Exec | null {
  let e: Elem;
  if (v === 1) {
    if (opc === 3) return null;
    e = fpElem(opc + 2);
  } else if (opc === 0) e = gprElem(2, EXT.ZERO);
  else if (opc === 2) e = gprElem(3, EXT.ZERO);
  else if (opc === 1 && l === 1 && idx !== 0)
    e = gprElem(2, EXT.SIGN64); // LDPSW
  else return null; // opc 11; STGP (MTE) and LDNP with opc 01 are not implemented
  const bytes = e.bytes;
  const off = imm7 * bytes;
  const bi = baseSlot(rn);
  const fp = e.fp;
  const wb = idx === 1 ? WB.POST : idx === 3 ? WB.PRE : WB.NONE;
  const post = wb === WB.POST;
  if (l === 1)
    return (c) => {
      if (fp) c.checkFp();
      const r = c.r;
      const b = bi < 0 ? c.sp : bi;
      addrImm(r, b, off);
      const nlo = aLo;
      const nhi = aHi;
      const lo = post ? r[b]! : nlo;
      const hi = post ? r[b + 1]! : nhi;
      e.ld(c, lo, hi, 0);
      addImm(lo, hi, bytes);
      e.ld(c, aLo, aHi, 4);
      if (fp) {
        e.put(c, rt, 0);
        e.put(c, rt2, 4);
      } else {
        e.put(c, rt2, 4);
        e.put(c, rt, 0);
      }
      if (wb !== WB.NONE) {
        r[b] = nlo;
        r[b + 1] = nhi;
      }
    };
  return (c) => {
    if (fp) c.checkFp();
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    addrImm(r, b, off);
    const nlo = aLo;
    const nhi = aHi;
    const lo = post ? r[b]! : nlo;
    const hi = post ? r[b + 1]! : nhi;
    e.st(c, lo, hi, rt);
    addImm(lo, hi, bytes);
    e.st(c, aLo, aHi, rt2);
    if (wb !== WB.NONE) {
      r[b] = nlo;
      r[b + 1] = nhi;
    }
  };
}

export const LOAD_STORE: Pattern[] = [
  {
    name: "LDR_lit",
    pattern: "opc:2 011 V:1 00 imm19:s19 Rt:5",
    decode: (f) => literal(f.opc!, f.V!, f.imm19!, f.Rt!),
  },
  {
    name: "LDP_STP",
    pattern: "opc:2 101 V:1 0 idx:2 L:1 imm7:s7 Rt2:5 Rn:5 Rt:5",
    decode: (f) => pair(f.opc!, f.V!, f.idx!, f.L!, f.imm7!, f.Rt2!, f.Rn!, f.Rt!),
  },
  {
    name: "LDR_imm9",
    pattern: "size:2 111 V:1 00 opc:2 0 imm9:s9 op:2 Rn:5 Rt:5",
    decode: (f) => {
      const k = singleKind(f.size!, f.V!, f.opc!);
      if (k === null) return null;
      const op = f.op!;
      if (op === 0) return k.prefetch ? nop : immSingle(k, f.Rt!, f.Rn!, f.imm9!, WB.NONE); // LDUR/STUR/PRFUM
      // Pre/post-index and unprivileged forms have no PRFM and (unprivileged) no SIMD&FP.
      if (k.prefetch) return null;
      if (op === 2) return f.V === 1 ? null : unprivileged(immSingle(k, f.Rt!, f.Rn!, f.imm9!, WB.NONE)); // LDTR/STTR
      return immSingle(k, f.Rt!, f.Rn!, f.imm9!, op === 1 ? WB.POST : WB.PRE);
    },
  },
  {
    name: "LDR_reg",
    pattern: "size:2 111 V:1 00 opc:2 1 Rm:5 option:3 S:1 10 Rn:5 Rt:5",
    decode: (f) => {
      // option 011 (LSL/UXTX) and 111 (SXTX) use all of Xm; 010 UXTW; 110 SXTW.
      if (f.V === 0 && f.opc! < 2 && (f.option! & 2) !== 0) {
        const opt = f.option!;
        const am = (opt & 1) !== 0 ? AM.REG_LSL : (opt & 4) !== 0 ? AM.REG_SXTW : AM.REG_UXTW;
        return gprFast(f.opc === 1, f.size!, f.Rt!, am, f.Rn!, Cpu.xr(f.Rm!), f.S! !== 0 ? f.size! : 0);
      }
      const k = singleKind(f.size!, f.V!, f.opc!);
      if (k === null) return null;
      const scale = k.prefetch ? 3 : Math.log2(k.elem.bytes);
      return regSingle(k, f.Rt!, f.Rn!, f.Rm!, f.option!, f.S! !== 0 ? scale : 0);
    },
  },
  {
    name: "LDR_uimm",
    pattern: "size:2 111 V:1 01 opc:2 imm12:12 Rn:5 Rt:5",
    decode: (f) => {
      if (f.V === 0 && f.opc! < 2)
        return gprFast(f.opc === 1, f.size!, f.Rt!, AM.IMM, f.Rn!, 0, f.imm12! << f.size!);
      const k = singleKind(f.size!, f.V!, f.opc!);
      if (k === null) return null;
      if (k.prefetch) return nop;
      return immSingle(k, f.Rt!, f.Rn!, f.imm12! * k.elem.bytes, WB.NONE);
    },
  },
  ...ATOMIC_PATTERNS,
];
