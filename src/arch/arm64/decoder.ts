/**
 * Declarative A64 decoder, in the spirit of QEMU's decodetree: one pattern per
 * instruction, written as data, and `compileDecoder` turns all tables into a dispatch
 * once. From the same table come the interpreter's executors (`decode`), the
 * translator's emitters (looked up by the pattern's unique `name`), `nameOf`, and the
 * coverage report of which instructions the tests exercised (tools/insn-coverage.ts).
 *
 * A pattern is a list of space-separated tokens that together cover bits 31..0:
 *   - a run of `0`, `1` or `x` characters: fixed bits (`x` = don't care);
 *   - `name:N`: an unsigned N-bit field; `name:sN`: a sign-extended N-bit field.
 * Example (ADD immediate): `sf:1 0 0 100010 sh:1 imm12:12 Rn:5 Rd:5`.
 *
 * A pattern's `decode` receives the extracted fields and returns the executor for this
 * encoding, or `null` when the encoding is unallocated under this pattern (the decoder
 * then keeps trying later patterns, and finally yields UNDEFINED).
 */
import type { Cpu } from "./cpu.ts";

export type Exec = (c: Cpu) => void;
export type Fields = Record<string, number>;

/**
 * Optional architecture features an instruction belongs to, each named as the Arm ARM's
 * FEAT_ name and enabled by the ID register field that advertises it (isa.ts derives the
 * set from the ID registers' values, so the decoder and the ID registers cannot disagree).
 */
export type Feature = "FP" | "AdvSIMD" | "LSE" | "CRC32" | "LRCPC";

export interface Pattern {
  /**
   * The instruction's name, unique in the whole table: the Arm ARM's heading (C6/C7),
   * e.g. "ADD (immediate)", "LDR (immediate, post-index)", "FMLA (by element)". Its
   * first word, lower-cased, is the mnemonic a disassembler prints for the base form.
   */
  readonly name: string;
  readonly pattern: string;
  /** The feature this instruction needs; absent: part of the Armv8.0 base. */
  readonly feature?: Feature;
  /**
   * Preferred aliases a disassembler prints for some encodings of this instruction
   * (MOV for ORR, CMP for SUBS, LSL for UBFM, ...), as lower-case mnemonics.
   */
  readonly aliases?: readonly string[];
  /**
   * The handler: returns the executor for this encoding, or null when the encoding is
   * unallocated (or reserved) under this pattern; the decoder then tries later patterns
   * and finally yields UNDEFINED.
   */
  decode(f: Fields, insn: number): Exec | null;
}

interface FieldSpec {
  readonly name: string;
  readonly shift: number;
  readonly width: number;
  readonly signed: boolean;
}

export interface CompiledPattern {
  readonly name: string;
  readonly pattern: Pattern;
  readonly mask: number;
  readonly value: number;
  readonly fields: readonly FieldSpec[];
  readonly decode: Pattern["decode"];
}

export function parsePattern(p: Pattern): CompiledPattern {
  let bit = 32;
  let mask = 0;
  let value = 0;
  const fields: FieldSpec[] = [];
  for (const tok of p.pattern.trim().split(/\s+/)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*):(s?)(\d+)$/.exec(tok);
    if (m) {
      const width = Number(m[3]);
      bit -= width;
      fields.push({ name: m[1]!, shift: bit, width, signed: m[2] === "s" });
      continue;
    }
    if (!/^[01x]+$/.test(tok)) throw new Error(`pattern ${p.name}: bad token '${tok}'`);
    for (const ch of tok) {
      bit--;
      if (ch !== "x") {
        mask |= 1 << bit;
        if (ch === "1") value |= 1 << bit;
      }
    }
  }
  if (bit !== 0) throw new Error(`pattern ${p.name}: covers ${32 - bit} bits, not 32`);
  return { name: p.name, pattern: p, mask: mask >>> 0, value: value >>> 0, fields, decode: p.decode };
}

/**
 * A pattern's decode that hands its handler the opcode bits the pattern fixes as fields,
 * beside the ones extracted. The fields object is this decode's own (`extractFields`
 * makes one per call), so the bits are written into it: a copy per decode (an object
 * spread) was a fifth of the time of decoding a word.
 */
export const withFixedBits =
  (handler: (f: Fields) => Exec | null, bits: Fields) =>
  (f: Fields): Exec | null =>
    handler(Object.assign(f, bits));

export function extractFields(cp: CompiledPattern, insn: number): Fields {
  const f: Fields = {};
  for (const fs of cp.fields) {
    let v = fs.width === 32 ? insn >>> 0 : (insn >>> fs.shift) & ((1 << fs.width) - 1);
    if (fs.signed && v >= 2 ** (fs.width - 1)) v -= 2 ** fs.width;
    f[fs.name] = v;
  }
  return f;
}

/** Bits used to bucket patterns: insn[28:21] (covers the Arm ARM's op0 and most class bits). */
const BUCKET_SHIFT = 21;
const BUCKET_BITS = 8;

export interface Decoder {
  /** Returns the executor for `insn`, or null if no pattern accepts it (UNDEFINED). */
  decode(insn: number): Exec | null;
  /** Name of the instruction `insn` decodes as (the accepting pattern's), or null: UNDEFINED. */
  nameOf(insn: number): string | null;
  /** The pattern `insn` decodes as and its fields, or null (UNDEFINED). */
  patternOf(insn: number): { readonly pattern: Pattern; readonly fields: Fields } | null;
  /** Every pattern of the table, in decode order (features absent from the CPU left out). */
  readonly patterns: readonly Pattern[];
}

/**
 * Compiles `tables` into a decoder. Patterns whose `feature` is not in `features` are
 * left out (their encodings are UNDEFINED); `features` absent: every pattern is kept.
 */
export function compileDecoder(
  tables: readonly (readonly Pattern[])[],
  features?: ReadonlySet<Feature>,
): Decoder {
  const kept = tables
    .flat()
    .filter((p) => features === undefined || p.feature === undefined || features.has(p.feature));
  const names = new Set<string>();
  for (const p of kept) {
    if (names.has(p.name)) throw new Error(`decode table: two patterns are named '${p.name}'`);
    names.add(p.name);
  }
  const all = kept.map(parsePattern);
  const buckets: CompiledPattern[][] = [];
  const bmask = (1 << BUCKET_BITS) - 1;
  for (let b = 0; b <= bmask; b++) {
    const bval = (b << BUCKET_SHIFT) >>> 0;
    const bm = (bmask << BUCKET_SHIFT) >>> 0;
    // A pattern belongs to bucket b if its fixed bits in the bucket range agree with b.
    buckets.push(all.filter((cp) => ((cp.value ^ bval) & cp.mask & bm) === 0));
  }
  const find = (insn: number): [CompiledPattern, Exec, Fields] | null => {
    insn >>>= 0;
    const list = buckets[(insn >>> BUCKET_SHIFT) & bmask]!;
    for (const cp of list) {
      if ((insn & cp.mask) >>> 0 !== cp.value) continue;
      const f = extractFields(cp, insn);
      const ex = cp.decode(f, insn);
      if (ex) return [cp, ex, f];
    }
    return null;
  };
  // Names by word, recorded by every decode (the interpreter decodes each word it runs,
  // and the translator asks the name of each word it translates, all of which ran first).
  // Keyed by the word as a signed int32 (a small integer to the engine; most words are
  // above 2^31, which as keys cost a boxed number each: nameOf was 7% of translating).
  const nameByWord = new Map<number, string | null>();
  const named = (insn: number, hit: [CompiledPattern, Exec, Fields] | null) => {
    if (nameByWord.size >= 1 << 18) nameByWord.clear();
    nameByWord.set(insn | 0, hit === null ? null : hit[0].name);
    return hit;
  };
  return {
    decode: (insn) => named(insn, find(insn))?.[1] ?? null,
    nameOf: (insn) => {
      const n = nameByWord.get(insn | 0);
      return n !== undefined ? n : (named(insn, find(insn))?.[0].name ?? null);
    },
    patternOf: (insn) => {
      const hit = find(insn);
      return hit === null ? null : { pattern: hit[0].pattern, fields: hit[2] };
    },
    patterns: kept,
  };
}
