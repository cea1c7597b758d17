/**
 * Exclusives (LDXR/STXR and pairs), load-acquire/store-release (LDAR/STLR, LDLAR/STLLR,
 * LDAPR) and the Armv8.1 LSE atomics (CAS, CASP, SWP, LD<op>, and their ST<op> aliases,
 * which are the LD<op> encodings with Rt = XZR).
 *
 * The table is one pattern per instruction (Arm ARM C6.2 headings, each size and
 * ordering its own pattern); the shared formats (EXCL, ATOMIC) and the size and
 * ordering rows (SIZES, ORDERS) are at the end of this file.
 *
 * Memory model. Read-modify-write operations on RAM use the host's `Atomics` on the
 * shared memory when it is a SharedArrayBuffer (vCPUs on worker threads), so they are
 * single-copy atomic against other vCPUs for 8/16/32/64-bit sizes; 128-bit ones (CASP X,
 * STXP X) have no host primitive and are not atomic against other threads.
 *
 * The exclusive monitor (Arm ARM B2.9) is local: a load-exclusive marks the address,
 * size and the value it read (I.EXCL_*). A store-exclusive succeeds only if the monitor
 * is valid for the same address and size AND memory still holds the marked value,
 * compared and stored in one host compare-exchange. The value check stands in for the
 * global monitor: another vCPU's store to the location (on another thread, or on the
 * same thread between quanta) makes the store-exclusive fail, as in QEMU. Every
 * store-exclusive clears the monitor; its status register is written after the access.
 */
import { ACC, Cpu } from "../cpu.ts";
import type { Exec, Fields, Pattern } from "../decoder.ts";
import { R64 } from "../ret64.ts";
import { I } from "../state.ts";
import { addImm, aHi, aLo, EXT, gprElem, S } from "./load-store-access.ts";

// ---------------------------------------------------------------------------------------
// Host views of the memory, cached per buffer.

let vbuf: ArrayBufferLike | null = null;
let shared = false;
let u8: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
let u16: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
let u32: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
let u64: BigUint64Array<ArrayBufferLike> = new BigUint64Array(0);

function views(c: Cpu): void {
  const buf = c.m8.buffer;
  if (buf === vbuf) return;
  vbuf = buf;
  shared = typeof SharedArrayBuffer !== "undefined" && buf instanceof SharedArrayBuffer;
  u8 = c.m8;
  u16 = new Uint16Array(buf, 0, buf.byteLength >>> 1);
  u32 = c.m32;
  u64 = new BigUint64Array(buf, 0, Math.floor(buf.byteLength / 8));
}

const MASK = [0xff, 0xffff, 0xffffffff, 0xffffffff] as const;

/** Sign-extends the low 8 << sizeLog bits of v (sizeLog < 3) to an int32. */
function sx(v: number, sizeLog: number): number {
  return sizeLog === 0 ? (v << 24) >> 24 : sizeLog === 1 ? (v << 16) >> 16 : v | 0;
}

// ---------------------------------------------------------------------------------------
// Read-modify-write operations: new value = op(old, operand), in R64 (ret64.ts); the
// callers keep the old value in locals meanwhile.

type Op = (aLo: number, aHi: number, bLo: number, bHi: number, sizeLog: number) => void;

const TWO32 = 4294967296;

/** LD<op> opc 000..111 then SWP (index 8). Operands and results are unsigned halves. */
const OPS: Op[] = [
  // LDADD
  (al, ah, bl, bh) => {
    const s = al + bl;
    R64.lo = s >>> 0;
    R64.hi = (ah + bh + (s >= TWO32 ? 1 : 0)) >>> 0;
  },
  // LDCLR: old AND NOT operand
  (al, ah, bl, bh) => {
    R64.lo = (al & ~bl) >>> 0;
    R64.hi = (ah & ~bh) >>> 0;
  },
  // LDEOR
  (al, ah, bl, bh) => {
    R64.lo = (al ^ bl) >>> 0;
    R64.hi = (ah ^ bh) >>> 0;
  },
  // LDSET
  (al, ah, bl, bh) => {
    R64.lo = (al | bl) >>> 0;
    R64.hi = (ah | bh) >>> 0;
  },
  // LDSMAX
  (al, ah, bl, bh, s) => pick(signedLess(al, ah, bl, bh, s), bl, bh, al, ah),
  // LDSMIN
  (al, ah, bl, bh, s) => pick(signedLess(al, ah, bl, bh, s), al, ah, bl, bh),
  // LDUMAX
  (al, ah, bl, bh, s) => pick(unsignedLess(al, ah, bl, bh, s), bl, bh, al, ah),
  // LDUMIN
  (al, ah, bl, bh, s) => pick(unsignedLess(al, ah, bl, bh, s), al, ah, bl, bh),
  // SWP
  (_al, _ah, bl, bh) => {
    R64.lo = bl;
    R64.hi = bh;
  },
];

function pick(cond: boolean, xl: number, xh: number, yl: number, yh: number): void {
  if (cond) {
    R64.lo = xl;
    R64.hi = xh;
  } else {
    R64.lo = yl;
    R64.hi = yh;
  }
}

/** a < b as signed integers of 8 << sizeLog bits. */
function signedLess(al: number, ah: number, bl: number, bh: number, s: number): boolean {
  if (s < 3) return sx(al, s) < sx(bl, s);
  return (ah | 0) !== (bh | 0) ? (ah | 0) < (bh | 0) : al < bl;
}

function unsignedLess(al: number, ah: number, bl: number, bh: number, s: number): boolean {
  if (s < 3) return (al & MASK[s]!) >>> 0 < (bl & MASK[s]!) >>> 0;
  return ah !== bh ? ah < bh : al < bl;
}

/** Host offset of an aligned atomic access of 2^sizeLog bytes (write permission), or -1 for MMIO. */
function rmwOffset(c: Cpu, lo: number, hi: number, bytes: number): number {
  c.requireAligned(lo, hi, bytes, ACC.WRITE);
  return c.hostOffset(lo, hi, bytes, ACC.WRITE);
}

function plainLoad(c: Cpu, lo: number, hi: number, sizeLog: number): void {
  R64.hi = 0;
  if (sizeLog === 0) R64.lo = c.ld8(lo, hi);
  else if (sizeLog === 1) R64.lo = c.ld16(lo, hi);
  else if (sizeLog === 2) R64.lo = c.ld32(lo, hi);
  else c.ld64(lo, hi);
}

function plainStore(c: Cpu, lo: number, hi: number, sizeLog: number, vlo: number, vhi: number): void {
  if (sizeLog === 0) c.st8(lo, hi, vlo & 0xff);
  else if (sizeLog === 1) c.st16(lo, hi, vlo & 0xffff);
  else if (sizeLog === 2) c.st32(lo, hi, vlo);
  else c.st64(lo, hi, vlo, vhi);
}

/** Atomic RMW of 2^sizeLog bytes at (lo, hi); the old value ends in R64.lo/R64.hi (zero-extended). */
function rmw(c: Cpu, lo: number, hi: number, sizeLog: number, op: Op, bl: number, bh: number): void {
  const o = rmwOffset(c, lo, hi, 1 << sizeLog);
  if (o < 0) {
    plainLoad(c, lo, hi, sizeLog);
    const ol = R64.lo;
    const oh = R64.hi;
    op(ol, oh, bl, bh, sizeLog);
    plainStore(c, lo, hi, sizeLog, R64.lo, R64.hi);
    R64.lo = ol;
    R64.hi = oh;
    return;
  }
  views(c);
  if (sizeLog === 3) {
    const i = o >>> 2;
    if (!shared) {
      const ol = u32[i]!;
      const oh = u32[i + 1]!;
      op(ol, oh, bl, bh, 3);
      u32[i] = R64.lo;
      u32[i + 1] = R64.hi;
      R64.lo = ol;
      R64.hi = oh;
      return;
    }
    for (;;) {
      const old = Atomics.load(u64, o >>> 3);
      const ol = Number(old & 0xffffffffn);
      const oh = Number(old >> 32n);
      op(ol, oh, bl, bh, 3);
      const nv = (BigInt(R64.hi) << 32n) | BigInt(R64.lo);
      if (Atomics.compareExchange(u64, o >>> 3, old, nv) === old) {
        R64.lo = ol;
        R64.hi = oh;
        return;
      }
    }
  }
  const arr = sizeLog === 0 ? u8 : sizeLog === 1 ? u16 : u32;
  const i = o >>> sizeLog;
  if (!shared) {
    const ol = arr[i]!;
    op(ol, 0, bl, bh, sizeLog);
    arr[i] = R64.lo;
    R64.lo = ol;
    R64.hi = 0;
    return;
  }
  for (;;) {
    const ol = Atomics.load(arr, i);
    op(ol, 0, bl, bh, sizeLog);
    if (Atomics.compareExchange(arr, i, ol, R64.lo & MASK[sizeLog]!) === ol) {
      R64.lo = ol;
      R64.hi = 0;
      return;
    }
  }
}

/**
 * Compare-and-swap of 2^sizeLog bytes (sizeLog <= 3): if memory equals (el, eh) store
 * (wl, wh). Old value in R64.lo/R64.hi; returns whether the store happened. Write
 * permission is required even when the comparison fails (as an atomic access).
 */
function cas(
  c: Cpu,
  lo: number,
  hi: number,
  sizeLog: number,
  el: number,
  eh: number,
  wl: number,
  wh: number,
): boolean {
  const o = rmwOffset(c, lo, hi, 1 << sizeLog);
  const m = MASK[sizeLog]!;
  el = (el & m) >>> 0;
  if (sizeLog < 3) eh = 0;
  if (o < 0) {
    plainLoad(c, lo, hi, sizeLog);
    const eq = R64.lo === el && R64.hi === eh;
    if (eq) {
      const ol = R64.lo;
      const oh = R64.hi;
      plainStore(c, lo, hi, sizeLog, wl, wh);
      R64.lo = ol;
      R64.hi = oh;
    }
    return eq;
  }
  views(c);
  if (sizeLog === 3) {
    const i = o >>> 2;
    if (!shared) {
      const ol = u32[i]!;
      const oh = u32[i + 1]!;
      const eq = ol === el && oh === eh;
      if (eq) {
        u32[i] = wl;
        u32[i + 1] = wh;
      }
      R64.lo = ol;
      R64.hi = oh;
      return eq;
    }
    const exp = (BigInt(eh) << 32n) | BigInt(el);
    const old = Atomics.compareExchange(u64, o >>> 3, exp, (BigInt(wh >>> 0) << 32n) | BigInt(wl >>> 0));
    R64.lo = Number(old & 0xffffffffn);
    R64.hi = Number(old >> 32n);
    return old === exp;
  }
  const arr = sizeLog === 0 ? u8 : sizeLog === 1 ? u16 : u32;
  const i = o >>> sizeLog;
  R64.hi = 0;
  if (!shared) {
    const ol = arr[i]!;
    if (ol === el) arr[i] = wl;
    R64.lo = ol;
    return ol === el;
  }
  const ol = Atomics.compareExchange(arr, i, el, (wl & m) >>> 0);
  R64.lo = ol;
  return ol === el;
}

/** Old 128-bit value of cas128, as four little-endian words. */
const OLD = new Uint32Array(4);

/**
 * 128-bit compare-and-swap (CASP X, STXP X): E/W are 4 words each, little-endian.
 * Not atomic against other threads (no host primitive).
 */
function cas128(c: Cpu, lo: number, hi: number, e: Uint32Array, w: Uint32Array): boolean {
  const o = rmwOffset(c, lo, hi, 16);
  if (o < 0) {
    c.ld64(lo, hi);
    OLD[0] = R64.lo;
    OLD[1] = R64.hi;
    addImm(lo, hi, 8);
    const l2 = aLo;
    const h2 = aHi;
    c.ld64(l2, h2);
    OLD[2] = R64.lo;
    OLD[3] = R64.hi;
  } else {
    views(c);
    const i = o >>> 2;
    OLD[0] = u32[i]!;
    OLD[1] = u32[i + 1]!;
    OLD[2] = u32[i + 2]!;
    OLD[3] = u32[i + 3]!;
  }
  const eq = OLD[0] === e[0] && OLD[1] === e[1] && OLD[2] === e[2] && OLD[3] === e[3];
  if (!eq) return false;
  if (o < 0) {
    c.st64(lo, hi, w[0]!, w[1]!);
    addImm(lo, hi, 8);
    c.st64(aLo, aHi, w[2]!, w[3]!);
  } else {
    const i = o >>> 2;
    u32[i] = w[0]!;
    u32[i + 1] = w[1]!;
    u32[i + 2] = w[2]!;
    u32[i + 3] = w[3]!;
  }
  return true;
}

const E128 = new Uint32Array(4);
const W128 = new Uint32Array(4);

// ---------------------------------------------------------------------------------------
// Executors

/** Base register slot (-1 = current SP). */
function baseSlot(rn: number): number {
  return rn === 31 ? -1 : rn * 2;
}

function writeW(c: Cpu, t: number, v: number): void {
  const i = Cpu.xw(t);
  c.r[i] = v;
  c.r[i + 1] = 0;
}

/** LDXR/LDAXR (B/H/W/X): aligned load that marks the monitor. */
function loadExclusive(sizeLog: number, rn: number, rt: number): Exec {
  const e = gprElem(sizeLog, EXT.ZERO);
  const bytes = 1 << sizeLog;
  const bi = baseSlot(rn);
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    const lo = r[b]!;
    const hi = r[b + 1]!;
    c.requireAligned(lo, hi, bytes, ACC.READ);
    e.ld(c, lo, hi, 0);
    r[I.EXCL_HOST] = c.hostOffset(lo, hi, bytes, ACC.READ);
    r[I.EXCL_ADDR] = lo;
    r[I.EXCL_ADDR + 1] = hi;
    r[I.EXCL_SIZE] = bytes;
    r[I.EXCL_VALID] = 1;
    r[I.EXCL_DATA] = S[0]!;
    r[I.EXCL_DATA + 1] = S[1]!;
    r[I.EXCL_DATA + 2] = 0;
    r[I.EXCL_DATA + 3] = 0;
    e.put(c, rt, 0);
  };
}

/** LDXP/LDAXP: W pair (8 bytes, one 64-bit access) or X pair (16 bytes). */
function loadExclusivePair(is64: boolean, rn: number, rt: number, rt2: number): Exec {
  const bi = baseSlot(rn);
  const ti = Cpu.xw(rt);
  const t2 = Cpu.xw(rt2);
  if (!is64)
    return (c) => {
      const r = c.r;
      const b = bi < 0 ? c.sp : bi;
      const lo = r[b]!;
      const hi = r[b + 1]!;
      c.requireAligned(lo, hi, 8, ACC.READ);
      c.ld64(lo, hi);
      const v0 = R64.lo;
      const v1 = R64.hi;
      r[I.EXCL_HOST] = c.hostOffset(lo, hi, 8, ACC.READ);
      r[I.EXCL_ADDR] = lo;
      r[I.EXCL_ADDR + 1] = hi;
      r[I.EXCL_SIZE] = 8;
      r[I.EXCL_VALID] = 1;
      r[I.EXCL_DATA] = v0;
      r[I.EXCL_DATA + 1] = v1;
      r[I.EXCL_DATA + 2] = 0;
      r[I.EXCL_DATA + 3] = 0;
      r[ti] = v0;
      r[ti + 1] = 0;
      r[t2] = v1;
      r[t2 + 1] = 0;
    };
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    const lo = r[b]!;
    const hi = r[b + 1]!;
    c.requireAligned(lo, hi, 16, ACC.READ);
    c.ld64(lo, hi);
    const v0 = R64.lo;
    const v1 = R64.hi;
    addImm(lo, hi, 8);
    c.ld64(aLo, aHi);
    const v2 = R64.lo;
    const v3 = R64.hi;
    r[I.EXCL_HOST] = c.hostOffset(lo, hi, 16, ACC.READ);
    r[I.EXCL_ADDR] = lo;
    r[I.EXCL_ADDR + 1] = hi;
    r[I.EXCL_SIZE] = 16;
    r[I.EXCL_VALID] = 1;
    r[I.EXCL_DATA] = v0;
    r[I.EXCL_DATA + 1] = v1;
    r[I.EXCL_DATA + 2] = v2;
    r[I.EXCL_DATA + 3] = v3;
    r[ti] = v0;
    r[ti + 1] = v1;
    r[t2] = v2;
    r[t2 + 1] = v3;
  };
}

/**
 * True (and the monitor cleared) when the local monitor covers the location of (lo, hi)
 * with `bytes`. The monitor tags the physical location (Arm ARM B2.9.2): another VA
 * mapping the same memory passes. The store's translation (and its faults) comes first.
 */
function monitorPass(c: Cpu, lo: number, hi: number, bytes: number): boolean {
  const r = c.r;
  const host = c.hostOffset(lo, hi, bytes, ACC.WRITE);
  const pass =
    r[I.EXCL_VALID] !== 0 && r[I.EXCL_HOST] === host >>> 0 && host >= 0 && r[I.EXCL_SIZE] === bytes;
  r[I.EXCL_VALID] = 0;
  return pass;
}

/** STXR/STLXR (B/H/W/X). */
function storeExclusive(sizeLog: number, rs: number, rn: number, rt: number): Exec {
  const bytes = 1 << sizeLog;
  const bi = baseSlot(rn);
  const ti = Cpu.xr(rt);
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    const lo = r[b]!;
    const hi = r[b + 1]!;
    c.requireAligned(lo, hi, bytes, ACC.WRITE);
    let status = 1;
    if (monitorPass(c, lo, hi, bytes)) {
      if (cas(c, lo, hi, sizeLog, r[I.EXCL_DATA]!, r[I.EXCL_DATA + 1]!, r[ti]!, r[ti + 1]!)) status = 0;
    }
    writeW(c, rs, status);
  };
}

/** STXP/STLXP: W pair (Rt at the lower address) or X pair. */
function storeExclusivePair(is64: boolean, rs: number, rn: number, rt: number, rt2: number): Exec {
  const bi = baseSlot(rn);
  const ti = Cpu.xr(rt);
  const t2 = Cpu.xr(rt2);
  const bytes = is64 ? 16 : 8;
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    const lo = r[b]!;
    const hi = r[b + 1]!;
    c.requireAligned(lo, hi, bytes, ACC.WRITE);
    let status = 1;
    if (monitorPass(c, lo, hi, bytes)) {
      let ok: boolean;
      if (!is64) ok = cas(c, lo, hi, 3, r[I.EXCL_DATA]!, r[I.EXCL_DATA + 1]!, r[ti]!, r[t2]!);
      else {
        for (let k = 0; k < 4; k++) E128[k] = r[I.EXCL_DATA + k]!;
        W128[0] = r[ti]!;
        W128[1] = r[ti + 1]!;
        W128[2] = r[t2]!;
        W128[3] = r[t2 + 1]!;
        ok = cas128(c, lo, hi, E128, W128);
      }
      if (ok) status = 0;
    }
    writeW(c, rs, status);
  };
}

/** LDAR/LDLAR/LDAPR (B/H/W/X): a load that must be naturally aligned. */
function loadAcquire(sizeLog: number, rn: number, rt: number): Exec {
  const e = gprElem(sizeLog, EXT.ZERO);
  const bytes = 1 << sizeLog;
  const bi = baseSlot(rn);
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    const lo = r[b]!;
    const hi = r[b + 1]!;
    c.requireAligned(lo, hi, bytes, ACC.READ);
    e.ld(c, lo, hi, 0);
    e.put(c, rt, 0);
  };
}

/** STLR/STLLR (B/H/W/X). */
function storeRelease(sizeLog: number, rn: number, rt: number): Exec {
  const e = gprElem(sizeLog, EXT.ZERO);
  const bytes = 1 << sizeLog;
  const bi = baseSlot(rn);
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    const lo = r[b]!;
    const hi = r[b + 1]!;
    c.requireAligned(lo, hi, bytes, ACC.WRITE);
    e.st(c, lo, hi, rt);
  };
}

/** CAS/CASA/CASL/CASAL (B/H/W/X): Rs receives the old value (zero-extended). */
function casSingle(sizeLog: number, rs: number, rn: number, rt: number): Exec {
  const bi = baseSlot(rn);
  const si = Cpu.xr(rs);
  const sw = Cpu.xw(rs);
  const ti = Cpu.xr(rt);
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    cas(c, r[b]!, r[b + 1]!, sizeLog, r[si]!, r[si + 1]!, r[ti]!, r[ti + 1]!);
    r[sw] = R64.lo;
    r[sw + 1] = R64.hi;
  };
}

/** CASP family: (Rs, Rs+1) compared with memory, (Rt, Rt+1) stored; Rs, Rt even. */
function casPair(is64: boolean, rs: number, rn: number, rt: number): Exec | null {
  if ((rs & 1) !== 0 || (rt & 1) !== 0) return null;
  const bi = baseSlot(rn);
  const s0 = Cpu.xr(rs);
  const s1 = Cpu.xr(rs + 1);
  const t0 = Cpu.xr(rt);
  const t1 = Cpu.xr(rt + 1);
  const w0 = Cpu.xw(rs);
  const w1 = Cpu.xw(rs + 1);
  if (!is64)
    return (c) => {
      const r = c.r;
      const b = bi < 0 ? c.sp : bi;
      cas(c, r[b]!, r[b + 1]!, 3, r[s0]!, r[s1]!, r[t0]!, r[t1]!);
      const v0 = R64.lo;
      const v1 = R64.hi;
      r[w0] = v0;
      r[w0 + 1] = 0;
      r[w1] = v1;
      r[w1 + 1] = 0;
    };
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    E128[0] = r[s0]!;
    E128[1] = r[s0 + 1]!;
    E128[2] = r[s1]!;
    E128[3] = r[s1 + 1]!;
    W128[0] = r[t0]!;
    W128[1] = r[t0 + 1]!;
    W128[2] = r[t1]!;
    W128[3] = r[t1 + 1]!;
    cas128(c, r[b]!, r[b + 1]!, E128, W128);
    r[w0] = OLD[0]!;
    r[w0 + 1] = OLD[1]!;
    r[w1] = OLD[2]!;
    r[w1 + 1] = OLD[3]!;
  };
}

/** LD<op>/SWP (and the ST<op> aliases): Rt receives the old value (zero-extended). */
function atomicOp(sizeLog: number, opIndex: number, rs: number, rn: number, rt: number): Exec {
  const op = OPS[opIndex]!;
  const bi = baseSlot(rn);
  const si = Cpu.xr(rs);
  const tw = Cpu.xw(rt);
  const is64 = sizeLog === 3;
  return (c) => {
    const r = c.r;
    const b = bi < 0 ? c.sp : bi;
    const bl = sizeLog < 2 ? r[si]! & MASK[sizeLog]! : r[si]!;
    rmw(c, r[b]!, r[b + 1]!, sizeLog, op, bl, is64 ? r[si + 1]! : 0);
    r[tw] = R64.lo;
    r[tw + 1] = R64.hi;
  };
}

// ---------------------------------------------------------------------------------------
// Patterns

/**
 * FEAT_LOR (LDLAR/STLLR). Off while ID_AA64MMFR1_EL1.LO reads 0; with a single
 * whole-memory LORegion they would behave exactly as LDAR/STLR.
 */
const FEAT_LOR = false;

/** Formats (decodetree's @...): the fields after the opcode bits of each family. */
const EXCL = "Rs:5 o0:1 Rt2:5 Rn:5 Rt:5";
const ATOMIC = "Rs:5 o3:1 opc:3 00 Rn:5 Rt:5";

/**
 * Size bits of the B, H and W/X forms, the name suffix, and the size from the fields
 * (sz = size<0> of the W/X form).
 */
const SIZES = [
  ["00", "B", () => 0],
  ["01", "H", () => 1],
  ["1 sz:1", "", (f: Fields) => 2 | f.sz!],
] as const;

/** Ordering suffixes of CAS and the atomics: A = acquire, L = release. */
const ORDERS = [
  ["", 0, 0],
  ["A", 1, 0],
  ["AL", 1, 1],
  ["L", 0, 1],
] as const;

/** A pattern with the format's o0 (release/acquire) bit fixed. */
function excl(name: string, bits: string, o0: number, decode: Pattern["decode"]): Pattern {
  return { name, pattern: `${bits} ${EXCL.replace("o0:1", String(o0))}`, decode };
}

/** STXR/STLXR, LDXR/LDAXR, STLR/STLLR, LDAR/LDLAR for B, H and W/X. */
const EXCLUSIVES: Pattern[] = SIZES.flatMap(([size, sfx, sz]) => [
  excl(`STXR${sfx}`, `${size} 001000 0 0 0`, 0, (f) => storeExclusive(sz(f), f.Rs!, f.Rn!, f.Rt!)),
  excl(`STLXR${sfx}`, `${size} 001000 0 0 0`, 1, (f) => storeExclusive(sz(f), f.Rs!, f.Rn!, f.Rt!)),
  excl(`LDXR${sfx}`, `${size} 001000 0 1 0`, 0, (f) => loadExclusive(sz(f), f.Rn!, f.Rt!)),
  excl(`LDAXR${sfx}`, `${size} 001000 0 1 0`, 1, (f) => loadExclusive(sz(f), f.Rn!, f.Rt!)),
  excl(`STLR${sfx}`, `${size} 001000 1 0 0`, 1, (f) => storeRelease(sz(f), f.Rn!, f.Rt!)),
  // STLLR and LDLAR belong to FEAT_LOR, which ID_AA64MMFR1_EL1.LO does not advertise:
  // UNDEFINED, as on the reference Cortex-A57 (they would be STLR and LDAR otherwise).
  excl(`STLLR${sfx}`, `${size} 001000 1 0 0`, 0, (f) =>
    FEAT_LOR ? storeRelease(sz(f), f.Rn!, f.Rt!) : null,
  ),
  excl(`LDAR${sfx}`, `${size} 001000 1 1 0`, 1, (f) => loadAcquire(sz(f), f.Rn!, f.Rt!)),
  excl(`LDLAR${sfx}`, `${size} 001000 1 1 0`, 0, (f) => (FEAT_LOR ? loadAcquire(sz(f), f.Rn!, f.Rt!) : null)),
]);

/** STXP/STLXP, LDXP/LDAXP (sz: X pair). */
const EXCLUSIVE_PAIRS: Pattern[] = [
  excl("STXP", "1 sz:1 001000 0 0 1", 0, (f) => storeExclusivePair(f.sz === 1, f.Rs!, f.Rn!, f.Rt!, f.Rt2!)),
  excl("STLXP", "1 sz:1 001000 0 0 1", 1, (f) => storeExclusivePair(f.sz === 1, f.Rs!, f.Rn!, f.Rt!, f.Rt2!)),
  excl("LDXP", "1 sz:1 001000 0 1 1", 0, (f) => loadExclusivePair(f.sz === 1, f.Rn!, f.Rt!, f.Rt2!)),
  excl("LDAXP", "1 sz:1 001000 0 1 1", 1, (f) => loadExclusivePair(f.sz === 1, f.Rn!, f.Rt!, f.Rt2!)),
];

/** CAS{A,AL,L}{B,H} and CASP{A,AL,L} (Armv8.1 LSE); Rt2 must be 11111. */
const CAS_PATTERNS: Pattern[] = ORDERS.flatMap(([ord, a, l]): Pattern[] => [
  ...SIZES.map(([size, sfx, sz]) => ({
    name: `CAS${ord}${sfx}`,
    pattern: `${size} 001000 1 ${a} 1 Rs:5 ${l} 11111 Rn:5 Rt:5`,
    feature: "LSE" as const,
    decode: (f: Fields) => casSingle(sz(f), f.Rs!, f.Rn!, f.Rt!),
  })),
  {
    name: `CASP${ord}`,
    pattern: `0 sz:1 001000 0 ${a} 1 Rs:5 ${l} 11111 Rn:5 Rt:5`,
    feature: "LSE",
    decode: (f) => casPair(f.sz === 1, f.Rs!, f.Rn!, f.Rt!),
  },
]);

/** The LD<op> atomics in OPS order (opc 000..111), then SWP (o3 = 1, opc = 000). */
const ATOMIC_OPS = [
  "LDADD",
  "LDCLR",
  "LDEOR",
  "LDSET",
  "LDSMAX",
  "LDSMIN",
  "LDUMAX",
  "LDUMIN",
  "SWP",
] as const;

/**
 * LD<op>{A,AL,L}{B,H} and SWP{A,AL,L}{B,H} (Armv8.1 LSE, Arm ARM C4.1.94). Without
 * acquire, Rt = XZR is printed as the ST<op>{L}{B,H} alias.
 */
const ATOMIC_OP_PATTERNS: Pattern[] = ATOMIC_OPS.flatMap((op, i) =>
  ORDERS.flatMap(([ord, a, r]) =>
    SIZES.map(([size, sfx, sz]): Pattern => {
      const name = `${op}${ord}${sfx}`;
      const st = op !== "SWP" && a === 0 ? [name.replace("LD", "ST").toLowerCase()] : undefined;
      const bits = ATOMIC.replace("o3:1 opc:3", i.toString(2).padStart(4, "0"));
      return {
        name,
        pattern: `${size} 111 0 00 ${a} ${r} 1 ${bits}`,
        feature: "LSE",
        ...(st ? { aliases: st } : {}),
        decode: (f) => atomicOp(sz(f), i, f.Rs!, f.Rn!, f.Rt!),
      };
    }),
  ),
);

/** LDAPR{B,H} (Armv8.3 RCPC): A = 1, R = 0, Rs = 11111, o3:opc = 1100. */
const LDAPR_PATTERNS: Pattern[] = SIZES.map(([size, sfx, sz]) => ({
  name: `LDAPR${sfx}`,
  pattern: `${size} 111 0 00 1 0 1 11111 1100 00 Rn:5 Rt:5`,
  feature: "LRCPC" as const,
  decode: (f: Fields) => loadAcquire(sz(f), f.Rn!, f.Rt!),
}));

export const ATOMIC_PATTERNS: Pattern[] = [
  ...EXCLUSIVES,
  ...EXCLUSIVE_PAIRS,
  ...CAS_PATTERNS,
  ...ATOMIC_OP_PATTERNS,
  ...LDAPR_PATTERNS,
];
