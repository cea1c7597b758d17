/**
 * Hand-written fast paths for the hottest AdvSIMD integer forms (string/memory routines
 * and hashes: ADD/SUB, CMEQ, bitwise ops, pairwise byte max/min/add, SHRN, 64-bit shifts).
 *
 * The generic lane engine calls a per-lane kernel through one shared call site, which
 * V8 cannot inline once it has seen many kernels; here every executor is its own function
 * literal with the arithmetic inline, working on 32-bit words (SWAR for 8/16-bit lanes).
 * Each is checked against the same qemu-recorded vectors as the generic path.
 *
 * All of these are lane-local per 32-bit word (or read every input word before writing),
 * so Vd may alias Vn/Vm.
 */
import type { Exec } from "../decoder.ts";
import { R64 } from "../ret64.ts";
import { I } from "../state.ts";

const H8 = 0x80808080 | 0;
const L8 = 0x7f7f7f7f;
const H16 = 0x80008000 | 0;
const L16 = 0x7fff7fff;

/** Clears the upper 64 bits of Vd for Q=0 forms. */
function hiZero(r: Uint32Array, d: number, q: number): void {
  if (q === 0) {
    r[d + 2] = 0;
    r[d + 3] = 0;
  }
}

export function fastAddSub(
  sub: boolean,
  e: number,
  q: number,
  rn: number,
  rm: number,
  rd: number,
  scalar: boolean,
): Exec | null {
  const n = I.V + 4 * rn,
    m = I.V + 4 * rm,
    d = I.V + 4 * rd;
  const words = q ? 4 : 2;
  if (e === 64) {
    const lanes = scalar ? 1 : 2;
    if (!sub) {
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < 2 * lanes; i += 2) {
          const lo = r[n + i]! + r[m + i]!;
          const hi = r[n + i + 1]! + r[m + i + 1]! + (lo > 0xffffffff ? 1 : 0);
          r[d + i] = lo;
          r[d + i + 1] = hi;
        }
        if (scalar) {
          r[d + 2] = 0;
          r[d + 3] = 0;
        }
      };
    }
    return (c) => {
      c.checkFp();
      const r = c.r;
      for (let i = 0; i < 2 * lanes; i += 2) {
        const a = r[n + i]!,
          b = r[m + i]!;
        const hi = r[n + i + 1]! - r[m + i + 1]! - (a < b ? 1 : 0);
        r[d + i] = a - b;
        r[d + i + 1] = hi;
      }
      if (scalar) {
        r[d + 2] = 0;
        r[d + 3] = 0;
      }
    };
  }
  if (scalar) return null;
  if (e === 32) {
    return sub
      ? (c) => {
          c.checkFp();
          const r = c.r;
          for (let i = 0; i < words; i++) r[d + i] = r[n + i]! - r[m + i]!;
          hiZero(r, d, q);
        }
      : (c) => {
          c.checkFp();
          const r = c.r;
          for (let i = 0; i < words; i++) r[d + i] = r[n + i]! + r[m + i]!;
          hiZero(r, d, q);
        };
  }
  const hm = e === 8 ? H8 : H16;
  const lm = e === 8 ? L8 : L16;
  return sub
    ? (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) {
          const a = r[n + i]!,
            b = r[m + i]!;
          r[d + i] = ((a | hm) - (b & lm)) ^ ((a ^ ~b) & hm);
        }
        hiZero(r, d, q);
      }
    : (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) {
          const a = r[n + i]!,
            b = r[m + i]!;
          r[d + i] = ((a & lm) + (b & lm)) ^ ((a ^ b) & hm);
        }
        hiZero(r, d, q);
      };
}

/** Per byte: 0xff where the byte of x is zero, else 0. */
function zeroBytes(x: number): number {
  const t = (((x & L8) + L8) | x) & H8; // high bit set in each nonzero byte
  return ((~t & H8) >>> 7) * 0xff;
}

/** CMEQ (register or #0) on bytes; rm < 0 compares with zero. */
export function fastCmeq8(q: number, rn: number, rm: number, rd: number): Exec {
  const n = I.V + 4 * rn,
    m = I.V + 4 * rm,
    d = I.V + 4 * rd;
  const words = q ? 4 : 2;
  if (rm < 0) {
    return (c) => {
      c.checkFp();
      const r = c.r;
      for (let i = 0; i < words; i++) r[d + i] = zeroBytes(r[n + i]!);
      hiZero(r, d, q);
    };
  }
  return (c) => {
    c.checkFp();
    const r = c.r;
    for (let i = 0; i < words; i++) r[d + i] = zeroBytes(r[n + i]! ^ r[m + i]!);
    hiZero(r, d, q);
  };
}

/** Bitwise three-same forms, one literal each. */
export function fastLogic(name: string, q: number, rn: number, rm: number, rd: number): Exec | null {
  const n = I.V + 4 * rn,
    m = I.V + 4 * rm,
    d = I.V + 4 * rd;
  const words = q ? 4 : 2;
  switch (name) {
    case "AND":
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) r[d + i] = r[n + i]! & r[m + i]!;
        hiZero(r, d, q);
      };
    case "BIC":
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) r[d + i] = r[n + i]! & ~r[m + i]!;
        hiZero(r, d, q);
      };
    case "ORR":
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) r[d + i] = r[n + i]! | r[m + i]!;
        hiZero(r, d, q);
      };
    case "ORN":
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) r[d + i] = r[n + i]! | ~r[m + i]!;
        hiZero(r, d, q);
      };
    case "EOR":
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) r[d + i] = r[n + i]! ^ r[m + i]!;
        hiZero(r, d, q);
      };
    case "BSL":
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) {
          const x = r[d + i]!;
          r[d + i] = (x & r[n + i]!) | (~x & r[m + i]!);
        }
        hiZero(r, d, q);
      };
    case "BIT":
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) {
          const b = r[m + i]!;
          r[d + i] = (r[d + i]! & ~b) | (r[n + i]! & b);
        }
        hiZero(r, d, q);
      };
    case "BIF":
      return (c) => {
        c.checkFp();
        const r = c.r;
        for (let i = 0; i < words; i++) {
          const b = r[m + i]!;
          r[d + i] = (r[d + i]! & b) | (r[n + i]! & ~b);
        }
        hiZero(r, d, q);
      };
    default:
      return null;
  }
}

const PB = new Uint8Array(32);
const PB32 = new Uint32Array(PB.buffer);

/** Gathers Vn (low `bytes`) then Vm (low `bytes`) into PB: the pairwise operand. */
function gather(r: Uint32Array, n: number, m: number, words: number): void {
  for (let i = 0; i < words; i++) PB32[i] = r[n + i]!;
  for (let i = 0; i < words; i++) PB32[words + i] = r[m + i]!;
}

/** ADDP / UMAXP / UMINP on bytes. */
export function fastPair8(name: string, q: number, rn: number, rm: number, rd: number): Exec | null {
  const n = I.V + 4 * rn,
    m = I.V + 4 * rm,
    d = I.V + 4 * rd;
  const words = q ? 4 : 2;
  const lanes = q ? 16 : 8;
  const db = 336 + 16 * rd;
  switch (name) {
    case "ADDP":
      return (c) => {
        c.checkFp();
        const r = c.r;
        gather(r, n, m, words);
        const r8 = c.r8;
        for (let i = 0; i < lanes; i++) r8[db + i] = PB[2 * i]! + PB[2 * i + 1]!;
        hiZero(r, d, q);
      };
    case "UMAXP":
      return (c) => {
        c.checkFp();
        const r = c.r;
        gather(r, n, m, words);
        const r8 = c.r8;
        for (let i = 0; i < lanes; i++) {
          const a = PB[2 * i]!,
            b = PB[2 * i + 1]!;
          r8[db + i] = Math.max(a, b);
        }
        hiZero(r, d, q);
      };
    case "UMINP":
      return (c) => {
        c.checkFp();
        const r = c.r;
        gather(r, n, m, words);
        const r8 = c.r8;
        for (let i = 0; i < lanes; i++) {
          const a = PB[2 * i]!,
            b = PB[2 * i + 1]!;
          r8[db + i] = Math.min(a, b);
        }
        hiZero(r, d, q);
      };
    default:
      return null;
  }
}

/** SHRN/SHRN2 from 16-bit lanes to bytes (memchr/strlen's "shrn v.8b, v.8h, #4"). */
export function fastShrn16(part: number, sh: number, rn: number, rd: number): Exec {
  const n = I.V + 4 * rn,
    d = I.V + 4 * rd;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const w0 = r[n]!,
      w1 = r[n + 1]!,
      w2 = r[n + 2]!,
      w3 = r[n + 3]!;
    const b = (w: number): number => (((w & 0xffff) >>> sh) & 0xff) | ((((w >>> 16) >>> sh) & 0xff) << 8);
    const lo = (b(w0) | (b(w1) << 16)) >>> 0;
    const hi = (b(w2) | (b(w3) << 16)) >>> 0;
    if (part === 0) {
      r[d] = lo;
      r[d + 1] = hi;
      r[d + 2] = 0;
      r[d + 3] = 0;
    } else {
      r[d + 2] = lo;
      r[d + 3] = hi;
    }
  };
}

/**
 * 64-bit lane shifts by immediate without BigInt: USHR/SSHR (sh 1..64), SHL (sh 0..63).
 * `lanes` is 2 (vector .2D) or 1 (scalar D, upper half zeroed).
 */
export function fastShift64(
  kind: "USHR" | "SSHR" | "SHL",
  sh: number,
  lanes: number,
  rn: number,
  rd: number,
): Exec {
  const n = I.V + 4 * rn,
    d = I.V + 4 * rd;
  const one = (lo: number, hi: number, out: Uint32Array, k: number): void => {
    let rl: number;
    let rh: number;
    if (kind === "SHL") {
      if (sh === 0) {
        rl = lo;
        rh = hi;
      } else if (sh < 32) {
        rl = lo << sh;
        rh = (hi << sh) | (lo >>> (32 - sh));
      } else {
        rl = 0;
        rh = lo << (sh - 32);
      }
    } else {
      const fill = kind === "SSHR" ? hi >> 31 : 0;
      if (sh < 32) {
        rl = (lo >>> sh) | (hi << (32 - sh));
        rh = kind === "SSHR" ? hi >> sh : hi >>> sh;
      } else if (sh < 64) {
        rl = kind === "SSHR" ? hi >> (sh - 32) : hi >>> (sh - 32);
        rh = fill;
      } else {
        rl = fill;
        rh = fill;
      }
    }
    out[k] = rl;
    out[k + 1] = rh;
  };
  return (c) => {
    c.checkFp();
    const r = c.r;
    const l0 = r[n]!,
      h0 = r[n + 1]!,
      l1 = r[n + 2]!,
      h1 = r[n + 3]!;
    one(l0, h0, r, d);
    if (lanes === 2) one(l1, h1, r, d + 2);
    else {
      r[d + 2] = 0;
      r[d + 3] = 0;
    }
  };
}

const POP8 = new Uint8Array(256).map((_, i) => {
  let k = 0;
  for (let x = i; x; x &= x - 1) k++;
  return k;
});

/** CNT on bytes. */
export function fastCnt(q: number, rn: number, rd: number): Exec {
  const nb = 336 + 16 * rn,
    db = 336 + 16 * rd,
    d = I.V + 4 * rd;
  const lanes = q ? 16 : 8;
  return (c) => {
    c.checkFp();
    const r8 = c.r8;
    for (let i = 0; i < lanes; i++) r8[db + i] = POP8[r8[nb + i]!]!;
    hiZero(c.r, d, q);
  };
}

/** SSHLL/USHLL(2) from 32-bit to 64-bit lanes (includes SXTL/UXTL), shift 0..31. */
export function fastWiden32(signed: boolean, sh: number, part: number, rn: number, rd: number): Exec {
  const n = I.V + 4 * rn + 2 * part,
    d = I.V + 4 * rd;
  const hiOf = (v: number): number =>
    sh === 0 ? (signed ? v >> 31 : 0) : signed ? (v | 0) >> (32 - sh) : v >>> (32 - sh);
  return (c) => {
    c.checkFp();
    const r = c.r;
    const a = r[n]!,
      b = r[n + 1]!;
    r[d] = a << sh;
    r[d + 1] = hiOf(a);
    r[d + 2] = b << sh;
    r[d + 3] = hiOf(b);
  };
}

/** XTN(2) / SHRN(2) from 64-bit to 32-bit lanes (sh 0 = XTN, else 1..32). */
export function fastNarrow64(sh: number, part: number, rn: number, rd: number): Exec {
  const n = I.V + 4 * rn,
    d = I.V + 4 * rd;
  const lane = (lo: number, hi: number): number =>
    sh === 0 ? lo : sh === 32 ? hi : (lo >>> sh) | (hi << (32 - sh));
  return (c) => {
    c.checkFp();
    const r = c.r;
    const x = lane(r[n]!, r[n + 1]!),
      y = lane(r[n + 2]!, r[n + 3]!);
    if (part === 0) {
      r[d] = x;
      r[d + 1] = y;
      r[d + 2] = 0;
      r[d + 3] = 0;
    } else {
      r[d + 2] = x;
      r[d + 3] = y;
    }
  };
}

/**
 * 64-bit lane compares: CMEQ, CMGT, CMGE, CMHI, CMHS, CMTST (register), and against
 * zero (rm < 0). `lanes` 2 (.2D) or 1 (scalar D).
 */
export function fastCmp64(kind: string, lanes: number, rn: number, rm: number, rd: number): Exec | null {
  const n = I.V + 4 * rn,
    m = I.V + 4 * rm,
    d = I.V + 4 * rd;
  const zero = rm < 0;
  let f: (al: number, ah: number, bl: number, bh: number) => boolean;
  switch (kind) {
    case "CMEQ":
      f = (al, ah, bl, bh) => al === bl && ah === bh;
      break;
    case "CMTST":
      f = (al, ah, bl, bh) => (al & bl) !== 0 || (ah & bh) !== 0;
      break;
    case "CMGT":
      f = (al, ah, bl, bh) => ((ah | 0) !== (bh | 0) ? (ah | 0) > (bh | 0) : al > bl);
      break;
    case "CMGE":
      f = (al, ah, bl, bh) => ((ah | 0) !== (bh | 0) ? (ah | 0) > (bh | 0) : al >= bl);
      break;
    case "CMHI":
      f = (al, ah, bl, bh) => (ah !== bh ? ah > bh : al > bl);
      break;
    case "CMHS":
      f = (al, ah, bl, bh) => (ah !== bh ? ah > bh : al >= bl);
      break;
    case "CMLE": // zero forms: a <= 0 is 0 >= a
      f = (al, ah, bl, bh) => ((bh | 0) !== (ah | 0) ? (bh | 0) > (ah | 0) : bl >= al);
      break;
    case "CMLT":
      f = (_al, ah) => (ah | 0) < 0;
      break;
    default:
      return null;
  }
  return (c) => {
    c.checkFp();
    const r = c.r;
    const a0 = r[n]!,
      a1 = r[n + 1]!,
      a2 = r[n + 2]!,
      a3 = r[n + 3]!;
    const b0 = zero ? 0 : r[m]!,
      b1 = zero ? 0 : r[m + 1]!,
      b2 = zero ? 0 : r[m + 2]!,
      b3 = zero ? 0 : r[m + 3]!;
    const x = f(a0, a1, b0, b1) ? 0xffffffff : 0;
    r[d] = x;
    r[d + 1] = x;
    if (lanes === 2) {
      const y = f(a2, a3, b2, b3) ? 0xffffffff : 0;
      r[d + 2] = y;
      r[d + 3] = y;
    } else {
      r[d + 2] = 0;
      r[d + 3] = 0;
    }
  };
}

/** ADDP (scalar) Dd, Vn.2D and ADDP Vd.2D, Vn.2D, Vm.2D. */
export function fastAddp64(scalar: boolean, rn: number, rm: number, rd: number): Exec {
  const n = I.V + 4 * rn,
    m = I.V + 4 * rm,
    d = I.V + 4 * rd;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const l0 = r[n]! + r[n + 2]!;
    const h0 = r[n + 1]! + r[n + 3]! + (l0 > 0xffffffff ? 1 : 0);
    if (scalar) {
      r[d] = l0;
      r[d + 1] = h0;
      r[d + 2] = 0;
      r[d + 3] = 0;
      return;
    }
    const l1 = r[m]! + r[m + 2]!;
    const h1 = r[m + 1]! + r[m + 3]! + (l1 > 0xffffffff ? 1 : 0);
    r[d] = l0;
    r[d + 1] = h0;
    r[d + 2] = l1;
    r[d + 3] = h1;
  };
}

/** Exact 32x32 -> 64-bit multiply into R64 (ret64.ts) (u32 halves), without BigInt. */
function mul32(a: number, b: number, signed: boolean): void {
  const au = a >>> 0;
  const bu = b >>> 0;
  const al = au & 0xffff;
  const ah = au >>> 16;
  const bl = bu & 0xffff;
  const bh = bu >>> 16;
  const mid = al * bh + ah * bl; // < 2^33
  const low = al * bl + (mid % 65536) * 65536; // < 2^33
  let hi = ah * bh + Math.floor(mid / 65536) + Math.floor(low / 4294967296);
  if (signed) {
    // (a - 2^32*sa)(b - 2^32*sb) = ab_u - 2^32*(sa*b_u + sb*a_u) mod 2^64
    if ((a | 0) < 0) hi -= bu;
    if ((b | 0) < 0) hi -= au;
  }
  R64.lo = low >>> 0;
  R64.hi = hi >>> 0;
}

/**
 * SMULL/UMULL/SMLAL/UMLAL/SMLSL/UMLSL(2) producing 64-bit lanes (32-bit sources), by
 * vector (idx < 0) or by element. acc: 0 = none, 1 = add, -1 = subtract.
 */
export function fastMull32(
  signed: boolean,
  acc: number,
  part: number,
  rn: number,
  rm: number,
  idx: number,
  rd: number,
): Exec {
  const n = I.V + 4 * rn + 2 * part;
  const m = I.V + 4 * rm + (idx < 0 ? 2 * part : idx);
  const ms = idx < 0 ? 1 : 0;
  const d = I.V + 4 * rd;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const a0 = r[n]!,
      a1 = r[n + 1]!,
      b0 = r[m]!,
      b1 = r[m + ms]!;
    for (let i = 0; i < 2; i++) {
      mul32(i === 0 ? a0 : a1, i === 0 ? b0 : b1, signed);
      const k = d + 2 * i;
      if (acc === 0) {
        r[k] = R64.lo;
        r[k + 1] = R64.hi;
      } else if (acc > 0) {
        const lo = r[k]! + R64.lo;
        r[k + 1] = r[k + 1]! + R64.hi + (lo > 0xffffffff ? 1 : 0);
        r[k] = lo;
      } else {
        const x = r[k]!;
        r[k + 1] = r[k + 1]! - R64.hi - (x < R64.lo ? 1 : 0);
        r[k] = x - R64.lo;
      }
    }
  };
}

// ---------------------------------------------------------------------------
// 64-bit lanes on 32-bit halves: a kernel reads (a, b, d) as lo/hi pairs and leaves its
// result in R64 (ret64.ts), setting SAT when it saturates (FPSR.QC).

let SAT = false;

export type K64 = (al: number, ah: number, bl: number, bh: number, dl: number, dh: number) => void;

/** Runs `k` on 1 (scalar D, rest zeroed) or 2 (.2D) lanes; rm < 0 means no Vm. */
export function exec64(k: K64, lanes: number, rn: number, rm: number, rd: number): Exec {
  const n = I.V + 4 * rn,
    m = I.V + 4 * (rm < 0 ? rn : rm),
    d = I.V + 4 * rd;
  return (c) => {
    c.checkFp();
    const r = c.r;
    const a0 = r[n]!,
      a1 = r[n + 1]!,
      a2 = r[n + 2]!,
      a3 = r[n + 3]!;
    const b0 = r[m]!,
      b1 = r[m + 1]!,
      b2 = r[m + 2]!,
      b3 = r[m + 3]!;
    const d0 = r[d]!,
      d1 = r[d + 1]!,
      d2 = r[d + 2]!,
      d3 = r[d + 3]!;
    SAT = false;
    k(a0, a1, b0, b1, d0, d1);
    const x = R64.lo,
      y = R64.hi;
    if (lanes === 2) {
      k(a2, a3, b2, b3, d2, d3);
      r[d + 2] = R64.lo;
      r[d + 3] = R64.hi;
    } else {
      r[d + 2] = 0;
      r[d + 3] = 0;
    }
    r[d] = x;
    r[d + 1] = y;
    if (SAT) r[I.FPSR] = r[I.FPSR]! | (1 << 27);
  };
}

/** (lo, hi) >> s (arithmetic when signed), s >= 0; shifts of 64 or more give the fill. */
function shr64(lo: number, hi: number, s: number, signed: boolean): void {
  if (s === 0) {
    R64.lo = lo;
    R64.hi = hi;
  } else if (s < 32) {
    R64.lo = ((lo >>> s) | (hi << (32 - s))) >>> 0;
    R64.hi = (signed ? hi >> s : hi >>> s) >>> 0;
  } else {
    const fill = signed ? (hi >> 31) >>> 0 : 0;
    R64.lo = s < 64 ? (signed ? hi >> (s - 32) : hi >>> (s - 32)) >>> 0 : fill;
    R64.hi = fill;
  }
}
/** (lo, hi) << s, s >= 0; shifts of 64 or more give 0. */
function shl64(lo: number, hi: number, s: number): void {
  if (s === 0) {
    R64.lo = lo;
    R64.hi = hi;
  } else if (s < 32) {
    R64.lo = (lo << s) >>> 0;
    R64.hi = ((hi << s) | (lo >>> (32 - s))) >>> 0;
  } else {
    R64.lo = 0;
    R64.hi = s < 64 ? (lo << (s - 32)) >>> 0 : 0;
  }
}
/** Bit k of (lo, hi); k >= 64 reads the sign (signed) or 0. */
function bit64(lo: number, hi: number, k: number, signed: boolean): number {
  if (k < 32) return (lo >>> k) & 1;
  if (k < 64) return (hi >>> (k - 32)) & 1;
  return signed ? hi >>> 31 : 0;
}
/** R64 (ret64.ts) += (bl, bh). */
function addTo(bl: number, bh: number): void {
  const lo = R64.lo + bl;
  R64.hi = (R64.hi + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  R64.lo = lo >>> 0;
}
function satTo(unsigned: boolean, negative: boolean): void {
  SAT = true;
  if (unsigned) {
    R64.lo = negative ? 0 : 0xffffffff;
    R64.hi = negative ? 0 : 0xffffffff;
  } else {
    R64.lo = negative ? 0 : 0xffffffff;
    R64.hi = negative ? 0x80000000 : 0x7fffffff;
  }
}

export function k64AddSat(unsigned: boolean): K64 {
  return (al, ah, bl, bh) => {
    const lo = al + bl;
    const hi = ah + bh + (lo > 0xffffffff ? 1 : 0);
    R64.lo = lo >>> 0;
    R64.hi = hi >>> 0;
    if (unsigned) {
      if (hi > 0xffffffff) satTo(true, false);
    } else if (((ah ^ R64.hi) & (bh ^ R64.hi)) >>> 31 !== 0) satTo(false, ah >>> 31 !== 0);
  };
}
export function k64SubSat(unsigned: boolean): K64 {
  return (al, ah, bl, bh) => {
    const lo = al - bl;
    const hi = ah - bh - (lo < 0 ? 1 : 0);
    R64.lo = lo >>> 0;
    R64.hi = hi >>> 0;
    if (unsigned) {
      if (hi < 0) satTo(true, true);
    } else if (((ah ^ bh) & (ah ^ R64.hi)) >>> 31 !== 0) satTo(false, ah >>> 31 !== 0);
  };
}

/** Left shift by s with saturation check (s >= 0), the value read signed or unsigned. */
function qshl64(al: number, ah: number, s: number, srcSigned: boolean, dstUnsigned: boolean): void {
  const neg = srcSigned && ah >>> 31 !== 0;
  if (dstUnsigned && neg) {
    // SQSHLU of a negative value
    satTo(true, true);
    return;
  }
  if (al === 0 && ah === 0) {
    R64.lo = 0;
    R64.hi = 0;
    return;
  }
  if (s >= 64) {
    satTo(dstUnsigned, neg);
    return;
  }
  shl64(al, ah, s);
  const tl = R64.lo,
    th = R64.hi;
  shr64(tl, th, s, !dstUnsigned);
  if (R64.lo !== al || R64.hi !== ah) {
    satTo(dstUnsigned, neg);
    return;
  }
  R64.lo = tl;
  R64.hi = th;
}

/** SSHL/USHL/SRSHL/URSHL and SQSHL/UQSHL/SQRSHL/UQRSHL (register) on 64-bit lanes. */
export function k64ShlReg(unsigned: boolean, round: boolean, saturating: boolean): K64 {
  const signed = !unsigned;
  return (al, ah, bl) => {
    let s = (bl << 24) >> 24;
    if (s >= 0) {
      if (saturating) qshl64(al, ah, s, signed, unsigned);
      else shl64(al, ah, s);
      return;
    }
    s = -s;
    if (s > 65) s = 65;
    const rb = round ? bit64(al, ah, s - 1, signed) : 0;
    shr64(al, ah, s, signed);
    if (rb) addTo(1, 0);
  };
}

export function k64QShlImm(s: number, srcSigned: boolean, dstUnsigned: boolean): K64 {
  return (al, ah) => qshl64(al, ah, s, srcSigned, dstUnsigned);
}

/** SSHR/USHR/SRSHR/URSHR and the accumulating SSRA/USRA/SRSRA/URSRA, s = 1..64. */
export function k64ShrImm(s: number, signed: boolean, round: boolean, acc: boolean): K64 {
  return (al, ah, _bl, _bh, dl, dh) => {
    const rb = round ? bit64(al, ah, s - 1, signed) : 0;
    shr64(al, ah, s, signed);
    if (rb) addTo(1, 0);
    if (acc) addTo(dl, dh);
  };
}

/** SRI (s = 1..64) and SLI (s = 0..63). */
export function k64Insert(left: boolean, s: number): K64 {
  // Bits of Vd that survive: SRI keeps the top s bits, SLI the low s bits.
  shl64(0xffffffff, 0xffffffff, left ? s : 64 - s);
  const ml = left ? ~R64.lo >>> 0 : R64.lo;
  const mh = left ? ~R64.hi >>> 0 : R64.hi;
  return (al, ah, _bl, _bh, dl, dh) => {
    if (left) shl64(al, ah, s);
    else shr64(al, ah, s, false);
    R64.lo = (R64.lo | (dl & ml)) >>> 0;
    R64.hi = (R64.hi | (dh & mh)) >>> 0;
  };
}

/** NEG, ABS, SQNEG, SQABS on 64-bit lanes. */
export function k64Neg(abs: boolean, saturating: boolean): K64 {
  return (al, ah) => {
    if (abs && ah >>> 31 === 0) {
      R64.lo = al;
      R64.hi = ah;
      return;
    }
    if (saturating && al === 0 && ah === 0x80000000) {
      satTo(false, false);
      return;
    }
    R64.lo = -al >>> 0;
    R64.hi = (~ah + (al === 0 ? 1 : 0)) >>> 0;
  };
}

/**
 * Narrowing from 64-bit to 32-bit lanes: the kernel leaves the 32-bit result in R64.lo.
 * Vector: two lanes into the low (part 0, upper half zeroed) or high half (part 1) of Vd;
 * scalar: one lane, the rest of Vd zeroed.
 */
export function execNarrow64(
  k: K64,
  scalar: boolean,
  part: number,
  rn: number,
  rm: number,
  rd: number,
): Exec {
  const n = I.V + 4 * rn,
    m = I.V + 4 * (rm < 0 ? rn : rm),
    d = I.V + 4 * rd;
  return (c) => {
    c.checkFp();
    const r = c.r;
    SAT = false;
    k(r[n]!, r[n + 1]!, r[m]!, r[m + 1]!, 0, 0);
    const x = R64.lo;
    if (scalar) {
      r[d] = x;
      r[d + 1] = 0;
      r[d + 2] = 0;
      r[d + 3] = 0;
    } else {
      k(r[n + 2]!, r[n + 3]!, r[m + 2]!, r[m + 3]!, 0, 0);
      const y = R64.lo;
      if (part === 0) {
        r[d] = x;
        r[d + 1] = y;
        r[d + 2] = 0;
        r[d + 3] = 0;
      } else {
        r[d + 2] = x;
        r[d + 3] = y;
      }
    }
    if (SAT) r[I.FPSR] = r[I.FPSR]! | (1 << 27);
  };
}

/** ADDHN/RADDHN/SUBHN/RSUBHN from 64-bit lanes: high half of (a +/- b + round) mod 2^64. */
export function kHighNarrow(sub: boolean, round: boolean): K64 {
  const rc = round ? 0x80000000 : 0;
  return (al, ah, bl, bh) => {
    if (sub) {
      const lo = al - bl + rc;
      R64.lo = (ah - bh + Math.floor(lo / 4294967296)) >>> 0;
    } else {
      const lo = al + bl + rc;
      R64.lo = (ah + bh + Math.floor(lo / 4294967296)) >>> 0;
    }
  };
}

/**
 * Shift right (s = 0..32, 0 for the plain XTN family) with optional rounding, then
 * truncate or saturate to 32 bits: SHRN/RSHRN, SQ(R)SHRN, UQ(R)SHRN, SQ(R)SHRUN, SQXTN,
 * UQXTN, SQXTUN from 64-bit lanes.
 */
export function kNarrowShift(
  s: number,
  round: boolean,
  srcSigned: boolean,
  saturate: boolean,
  dstUnsigned: boolean,
): K64 {
  return (al, ah) => {
    const rb = round && s > 0 ? bit64(al, ah, s - 1, srcSigned) : 0;
    shr64(al, ah, s, srcSigned);
    if (rb) addTo(1, 0);
    if (!saturate) return;
    const neg = srcSigned && R64.hi >>> 31 !== 0;
    if (dstUnsigned) {
      if (neg) {
        SAT = true;
        R64.lo = 0;
      } else if (R64.hi !== 0) {
        SAT = true;
        R64.lo = 0xffffffff;
      }
    } else if (R64.hi !== (R64.lo >>> 31 !== 0 ? 0xffffffff : 0)) {
      SAT = true;
      R64.lo = neg ? 0x80000000 : 0x7fffffff;
    }
  };
}

/**
 * SUQADD (signed accumulator + unsigned Vn, signed saturation) and USQADD (unsigned
 * accumulator + signed Vn, unsigned saturation) on 64-bit lanes. With R the 64-bit sum of
 * the raw bits and `carry` its carry out, the exact sum is R + 2^64 * (carry - sign),
 * where sign is that of whichever operand is read signed.
 */
export function k64SuqAdd(usq: boolean): K64 {
  return (al, ah, _bl, _bh, dl, dh) => {
    const lo = al + dl;
    const hi = ah + dh + (lo > 0xffffffff ? 1 : 0);
    R64.lo = lo >>> 0;
    R64.hi = hi >>> 0;
    const carry = hi > 0xffffffff ? 1 : 0;
    const k = carry - ((usq ? ah : dh) >>> 31);
    if (usq) {
      if (k !== 0) satTo(true, k < 0);
    } else if (k > 0 || (k === 0 && R64.hi >>> 31 !== 0)) satTo(false, false);
  };
}
