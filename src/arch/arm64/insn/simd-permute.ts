/**
 * AdvSIMD copies and permutes (Arm ARM C4.1.95 "Advanced SIMD copy", "Advanced SIMD
 * scalar copy", "Advanced SIMD permute", "Advanced SIMD extract", "Advanced SIMD table
 * lookup"): DUP, INS, UMOV, SMOV, EXT, ZIP1/2, UZP1/2, TRN1/2, TBL, TBX.
 *
 * Every vector-to-vector form here is a fixed byte shuffle, so decode computes a 16-entry
 * byte map once and the executor only gathers bytes: sources are laid out in a scratch
 * buffer as [first source (16 bytes), second source (16 bytes), zeros (16 bytes)]. The
 * sources are copied out before anything is written, so Vd may alias either source.
 * The table (SIMD_PERMUTE, at the end) is one pattern per instruction; the shared formats
 * are COPY, PERMUTE and TABLE just above it.
 */
import type { Exec, Fields, Pattern } from "../decoder.ts";
import { xr, xw } from "../regs.ts";
import { I, OFF } from "../state.ts";

/** Byte offset of Vn inside the vCPU block. */
const vOff = (n: number): number => OFF.V + 16 * n;

/** Scratch: [src A 0..15][src B 16..31][zeros 32..47][spare]. Index 32 always reads 0. */
const tmp = new Uint8Array(64);
const tmp32 = new Uint32Array(tmp.buffer);
const ZERO_BYTE = 32;

/**
 * Builds the executor for Vd[j] = src[map[j]] (j = 0..15), where src is [Va, Vb, zeros].
 * When the map moves whole aligned 32-bit words it runs as a 4-word shuffle.
 */
function shuffle(d: number, a: number, b: number, map: readonly number[]): Exec {
  const bd = vOff(d);
  const ia = I.V + 4 * a;
  const ib = I.V + 4 * b;
  const id = I.V + 4 * d;
  let wordAligned = true;
  for (let w = 0; w < 4 && wordAligned; w++) {
    const s = map[4 * w]!;
    if ((s & 3) !== 0) wordAligned = false;
    for (let k = 1; k < 4; k++) if (map[4 * w + k] !== s + k) wordAligned = false;
  }
  if (wordAligned) {
    const wm = Uint8Array.from([0, 1, 2, 3], (w) => map[4 * w]! >>> 2);
    const w0 = wm[0]!;
    const w1 = wm[1]!;
    const w2 = wm[2]!;
    const w3 = wm[3]!;
    return (c) => {
      c.checkFp();
      const r = c.r;
      tmp32[0] = r[ia]!;
      tmp32[1] = r[ia + 1]!;
      tmp32[2] = r[ia + 2]!;
      tmp32[3] = r[ia + 3]!;
      tmp32[4] = r[ib]!;
      tmp32[5] = r[ib + 1]!;
      tmp32[6] = r[ib + 2]!;
      tmp32[7] = r[ib + 3]!;
      r[id] = tmp32[w0]!;
      r[id + 1] = tmp32[w1]!;
      r[id + 2] = tmp32[w2]!;
      r[id + 3] = tmp32[w3]!;
    };
  }
  const m = Uint8Array.from(map);
  return (c) => {
    c.checkFp();
    const r = c.r;
    tmp32[0] = r[ia]!;
    tmp32[1] = r[ia + 1]!;
    tmp32[2] = r[ia + 2]!;
    tmp32[3] = r[ia + 3]!;
    tmp32[4] = r[ib]!;
    tmp32[5] = r[ib + 1]!;
    tmp32[6] = r[ib + 2]!;
    tmp32[7] = r[ib + 3]!;
    const r8 = c.r8;
    for (let j = 0; j < 16; j++) r8[bd + j] = tmp[m[j]!]!;
  };
}

/**
 * Decodes imm5 of the copy class: returns log2 of the element size (0..3) and the index,
 * or -1 for the reserved imm5 = x0000.
 */
function imm5Size(imm5: number): number {
  if (imm5 & 1) return 0;
  if (imm5 & 2) return 1;
  if (imm5 & 4) return 2;
  if (imm5 & 8) return 3;
  return -1;
}

/** Byte map that copies bytes [0, n) of source A and zeroes the rest. */
function lanes(n: number, f: (j: number) => number): number[] {
  const map: number[] = [];
  for (let j = 0; j < 16; j++) map.push(j < n ? f(j) : ZERO_BYTE);
  return map;
}

// ---------------------------------------------------------------------------
// Advanced SIMD copy: 0 Q op 01110000 imm5 0 imm4 1 Rn Rd

function dupElement(f: Fields): Exec | null {
  const size = imm5Size(f.imm5!);
  if (size < 0 || (size === 3 && f.Q === 0)) return null;
  const e = 1 << size;
  const index = f.imm5! >>> (size + 1);
  const bytes = f.Q ? 16 : 8;
  return shuffle(
    f.Rd!,
    f.Rn!,
    f.Rn!,
    lanes(bytes, (j) => index * e + (j & (e - 1))),
  );
}

function dupGeneral(f: Fields): Exec | null {
  const size = imm5Size(f.imm5!);
  if (size < 0 || (size === 3 && f.Q === 0)) return null;
  const src = xr(f.Rn!);
  const id = I.V + 4 * f.Rd!;
  const q = f.Q!;
  let pattern: (v: number) => number;
  if (size === 0) pattern = (v) => (v & 0xff) * 0x01010101;
  else if (size === 1) pattern = (v) => ((v & 0xffff) | (v << 16)) >>> 0;
  else pattern = (v) => v;
  if (size === 3) {
    return (c) => {
      c.checkFp();
      const r = c.r;
      const lo = r[src]!;
      const hi = r[src + 1]!;
      r[id] = lo;
      r[id + 1] = hi;
      r[id + 2] = lo;
      r[id + 3] = hi;
    };
  }
  return (c) => {
    c.checkFp();
    const r = c.r;
    const v = pattern(r[src]!);
    r[id] = v;
    r[id + 1] = v;
    r[id + 2] = q ? v : 0;
    r[id + 3] = q ? v : 0;
  };
}

function smov(f: Fields): Exec | null {
  const size = imm5Size(f.imm5!);
  // Q=0: Wd from B or H; Q=1: Xd from B, H or S.
  if (size < 0 || size >= (f.Q ? 3 : 2)) return null;
  const index = f.imm5! >>> (size + 1);
  const boff = vOff(f.Rn!) + (index << size);
  const d = xw(f.Rd!);
  const wide = f.Q === 1;
  return (c) => {
    c.checkFp();
    let v: number;
    if (size === 0) v = (c.r8[boff]! << 24) >> 24;
    else if (size === 1) v = c.dvState.getInt16(boff, true);
    else v = c.dvState.getInt32(boff, true);
    c.r[d] = v;
    c.r[d + 1] = wide && v < 0 ? 0xffffffff : 0;
  };
}

function umov(f: Fields): Exec | null {
  const size = imm5Size(f.imm5!);
  // Q=0: Wd from B, H or S; Q=1: Xd from D only.
  if (size < 0 || (f.Q ? size !== 3 : size === 3)) return null;
  const index = f.imm5! >>> (size + 1);
  const boff = vOff(f.Rn!) + (index << size);
  const d = xw(f.Rd!);
  return (c) => {
    c.checkFp();
    const r = c.r;
    if (size === 3) {
      r[d] = c.dvState.getUint32(boff, true);
      r[d + 1] = c.dvState.getUint32(boff + 4, true);
      return;
    }
    r[d] =
      size === 0
        ? c.r8[boff]!
        : size === 1
          ? c.dvState.getUint16(boff, true)
          : c.dvState.getUint32(boff, true);
    r[d + 1] = 0;
  };
}

function insGeneral(f: Fields): Exec | null {
  const size = imm5Size(f.imm5!);
  if (size < 0) return null;
  const index = f.imm5! >>> (size + 1);
  const boff = vOff(f.Rd!) + (index << size);
  const src = xr(f.Rn!);
  return (c) => {
    c.checkFp();
    const v = c.r[src]!;
    if (size === 0) c.r8[boff] = v;
    else if (size === 1) c.dvState.setUint16(boff, v, true);
    else if (size === 2) c.dvState.setUint32(boff, v, true);
    else {
      c.dvState.setUint32(boff, v, true);
      c.dvState.setUint32(boff + 4, c.r[src + 1]!, true);
    }
  };
}

function insElement(f: Fields): Exec | null {
  const size = imm5Size(f.imm5!);
  if (size < 0) return null;
  const e = 1 << size;
  const dst = (f.imm5! >>> (size + 1)) * e;
  const src = (f.imm4! >>> size) * e;
  // Source A = Vn, source B = Vd (kept lanes).
  const map: number[] = [];
  for (let j = 0; j < 16; j++) map.push(j >= dst && j < dst + e ? src + (j - dst) : 16 + j);
  return shuffle(f.Rd!, f.Rn!, f.Rd!, map);
}

/** Scalar DUP (element), alias MOV: Vd.<T> scalar = Vn[index], rest of Vd zeroed. */
function dupScalar(f: Fields): Exec | null {
  const size = imm5Size(f.imm5!);
  if (size < 0) return null;
  const e = 1 << size;
  const index = f.imm5! >>> (size + 1);
  return shuffle(
    f.Rd!,
    f.Rn!,
    f.Rn!,
    lanes(e, (j) => index * e + j),
  );
}

// ---------------------------------------------------------------------------
// Advanced SIMD permute: 0 Q 001110 size 0 Rm 0 opcode 10 Rn Rd

/**
 * Where result element i of a permute comes from, as an element number of the pair
 * (0 .. elements-1: Vn; elements .. 2*elements-1: Vm); `part` is 0 for *1, 1 for *2.
 */
type PermuteSource = (i: number, elements: number, part: number) => number;

/** UZP: result = even (odd) elements of the concatenation Vm:Vn, Vn lowest. */
const UZP: PermuteSource = (i, _elements, part) => 2 * i + part;
/** TRN: pairs (Vn[2p+part], Vm[2p+part]). */
const TRN: PermuteSource = (i, elements, part) =>
  (i & 1) === 0 ? (i & ~1) + part : elements + (i & ~1) + part;
/** ZIP: interleave the low (high) halves. */
const ZIP: PermuteSource = (i, elements, part) => {
  const k = (i >>> 1) + part * (elements >>> 1);
  return (i & 1) === 0 ? k : elements + k;
};

function permute(f: Fields, source: PermuteSource, part: number): Exec | null {
  const { Q, size } = f as { Q: number; size: number };
  if (size === 3 && Q === 0) return null;
  const e = 1 << size;
  const bytes = Q ? 16 : 8;
  const elements = bytes / e;
  // Source byte of each result element's first byte: Vn is A (base 0), Vm is B (base 16).
  const el: number[] = [];
  for (let i = 0; i < elements; i++) {
    const k = source(i, elements, part);
    el.push(k < elements ? k * e : 16 + (k - elements) * e);
  }
  return shuffle(
    f.Rd!,
    f.Rn!,
    f.Rm!,
    lanes(bytes, (j) => el[Math.floor(j / e)]! + (j % e)),
  );
}

// ---------------------------------------------------------------------------
// Advanced SIMD extract: 0 Q 101110 op2 0 Rm 0 imm4 0 Rn Rd

function ext(f: Fields): Exec | null {
  const { Q, imm4 } = f as { Q: number; imm4: number };
  if (Q === 0 && imm4 >= 8) return null;
  const bytes = Q ? 16 : 8;
  return shuffle(
    f.Rd!,
    f.Rn!,
    f.Rm!,
    lanes(bytes, (j) => (j + imm4 < bytes ? j + imm4 : 16 + j + imm4 - bytes)),
  );
}

// ---------------------------------------------------------------------------
// Advanced SIMD table lookup: 0 Q 001110 00 0 Rm 0 len op 00 Rn Rd

/** Scratch for TBL/TBX: the table (up to 64 bytes), then the indices, then the old Vd. */
const tbl = new Uint8Array(96);

function tableLookup(f: Fields, tbx: boolean): Exec {
  const regs = f.len! + 1;
  const tableBytes = regs * 16;
  const n = f.Rn!;
  const offs: number[] = [];
  for (let i = 0; i < regs; i++) offs.push(vOff((n + i) % 32));
  const bm = vOff(f.Rm!);
  const bd = vOff(f.Rd!);
  const bytes = f.Q ? 16 : 8;
  return (c) => {
    c.checkFp();
    const r8 = c.r8;
    for (let i = 0; i < regs; i++) {
      const o = offs[i]!;
      for (let j = 0; j < 16; j++) tbl[16 * i + j] = r8[o + j]!;
    }
    for (let j = 0; j < 16; j++) {
      tbl[64 + j] = r8[bm + j]!;
      tbl[80 + j] = r8[bd + j]!;
    }
    for (let j = 0; j < bytes; j++) {
      const x = tbl[64 + j]!;
      r8[bd + j] = x < tableBytes ? tbl[x]! : tbx ? tbl[80 + j]! : 0;
    }
    if (bytes === 8) for (let j = 8; j < 16; j++) r8[bd + j] = 0;
  };
}

// ---------------------------------------------------------------------------
// The table. Shared formats (decodetree's @formats): COPY (Advanced SIMD copy, imm5 and
// Rn/Rd), PERMUTE (three registers, size), TABLE (TBL/TBX, len).

/** Advanced SIMD copy: `Q` and `op` fixed or fields, imm4 the instruction's opcode. */
const COPY = (q: string, op: string, imm4: string): string =>
  `0 ${q} ${op} 01110000 imm5:5 0 ${imm4} 1 Rn:5 Rd:5`;
/** Advanced SIMD permute: opcode = [part, kind] with kind 01 UZP, 10 TRN, 11 ZIP. */
const PERMUTE = (opcode: string): string => `0 Q:1 001110 size:2 0 Rm:5 0 ${opcode} 10 Rn:5 Rd:5`;
/** Advanced SIMD table lookup: op 0 TBL, 1 TBX; len + 1 table registers. */
const TABLE = (op: number): string => `0 Q:1 001110 00 0 Rm:5 0 len:2 ${op} 00 Rn:5 Rd:5`;

/** The permutes: [name, opcode kind bits, element source]. */
const PERMUTES: readonly [string, string, PermuteSource][] = [
  ["UZP", "01", UZP],
  ["TRN", "10", TRN],
  ["ZIP", "11", ZIP],
];

export const SIMD_PERMUTE: Pattern[] = [
  {
    name: "DUP (element, vector)",
    pattern: COPY("Q:1", "0", "0000"),
    feature: "AdvSIMD",
    decode: dupElement,
  },
  { name: "DUP (general)", pattern: COPY("Q:1", "0", "0001"), feature: "AdvSIMD", decode: dupGeneral },
  { name: "SMOV", pattern: COPY("Q:1", "0", "0101"), feature: "AdvSIMD", decode: smov },
  { name: "UMOV", pattern: COPY("Q:1", "0", "0111"), feature: "AdvSIMD", aliases: ["mov"], decode: umov },
  {
    name: "INS (general)",
    pattern: COPY("1", "0", "0011"),
    feature: "AdvSIMD",
    aliases: ["mov"],
    decode: insGeneral,
  },
  {
    name: "INS (element)",
    pattern: COPY("1", "1", "imm4:4"),
    feature: "AdvSIMD",
    aliases: ["mov"],
    decode: insElement,
  },
  {
    name: "DUP (element, scalar)",
    pattern: "01 0 11110000 imm5:5 0 0000 1 Rn:5 Rd:5",
    feature: "AdvSIMD",
    aliases: ["mov"],
    decode: dupScalar,
  },
  ...PERMUTES.flatMap(([mn, kind, source]) =>
    [0, 1].map((part) => ({
      name: `${mn}${part + 1}`,
      pattern: PERMUTE(`${part}${kind}`),
      feature: "AdvSIMD" as const,
      decode: (f: Fields) => permute(f, source, part),
    })),
  ),
  {
    name: "EXT",
    pattern: "0 Q:1 101110 00 0 Rm:5 0 imm4:4 0 Rn:5 Rd:5",
    feature: "AdvSIMD",
    decode: ext,
  },
  { name: "TBL", pattern: TABLE(0), feature: "AdvSIMD", decode: (f) => tableLookup(f, false) },
  { name: "TBX", pattern: TABLE(1), feature: "AdvSIMD", decode: (f) => tableLookup(f, true) },
];
