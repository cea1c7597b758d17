/**
 * A minimal WebAssembly binary writer for the translator: one module of many functions
 * that share one type, one imported memory and a set of imported helper functions.
 * Only what the translator emits is here (WebAssembly Core Specification 2.0, chapter 5,
 * "Binary Format").
 */

/** Value types (5.3.1). */
export const T = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
export type ValType = (typeof T)[keyof typeof T];

/** The opcodes the emitters use (5.4). */
export const OP = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  return: 0x0f,
  call: 0x10,
  call_indirect: 0x11,
  return_call: 0x12,
  return_call_indirect: 0x13,
  drop: 0x1a,
  select: 0x1b,
  local_get: 0x20,
  local_set: 0x21,
  local_tee: 0x22,
  i32_load: 0x28,
  i64_load: 0x29,
  i32_load8_u: 0x2d,
  i32_load16_u: 0x2f,
  i64_load8_s: 0x30,
  i64_load8_u: 0x31,
  i64_load16_s: 0x32,
  i64_load16_u: 0x33,
  i64_load32_s: 0x34,
  i64_load32_u: 0x35,
  i32_store: 0x36,
  i64_store: 0x37,
  i64_store8: 0x3c,
  i64_store16: 0x3d,
  i64_store32: 0x3e,
  i32_const: 0x41,
  i64_const: 0x42,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_lt_u: 0x49,
  i32_gt_s: 0x4a,
  i32_gt_u: 0x4b,
  i32_le_u: 0x4d,
  i32_ge_s: 0x4e,
  i32_ge_u: 0x4f,
  i64_eqz: 0x50,
  i64_eq: 0x51,
  i64_ne: 0x52,
  i64_lt_s: 0x53,
  i64_lt_u: 0x54,
  i64_gt_s: 0x55,
  i64_gt_u: 0x56,
  i64_le_s: 0x57,
  i64_le_u: 0x58,
  i64_ge_s: 0x59,
  i64_ge_u: 0x5a,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_clz: 0x67,
  i32_and: 0x71,
  i32_or: 0x72,
  i32_xor: 0x73,
  i32_shl: 0x74,
  i32_shr_s: 0x75,
  i32_shr_u: 0x76,
  i32_rotr: 0x78,
  i64_clz: 0x79,
  i64_add: 0x7c,
  i64_sub: 0x7d,
  i64_mul: 0x7e,
  i64_div_s: 0x7f,
  i64_div_u: 0x80,
  i64_and: 0x83,
  i64_or: 0x84,
  i64_xor: 0x85,
  i64_shl: 0x86,
  i64_shr_s: 0x87,
  i64_shr_u: 0x88,
  i64_rotr: 0x8a,
  i32_wrap_i64: 0xa7,
  i64_extend_i32_s: 0xac,
  i64_extend_i32_u: 0xad,
} as const;

/** The 128-bit SIMD opcodes the emitters use, after the 0xFD prefix (5.4.8). */
export const SIMD = {
  v128_load: 0x00,
  v128_load32_splat: 0x09,
  v128_load64_splat: 0x0a,
  v128_store: 0x0b,
  v128_const: 0x0c,
  f64x2_splat: 0x14,
  f64x2_eq: 0x47,
  f64x2_ne: 0x48,
  f64x2_lt: 0x49,
  f64x2_gt: 0x4a,
  v128_and: 0x4e,
  v128_or: 0x50,
  v128_any_true: 0x53,
  v128_load32_zero: 0x5c,
  v128_load64_zero: 0x5d,
  i64x2_all_true: 0xc3,
  f64x2_abs: 0xec,
  f64x2_neg: 0xed,
  f64x2_add: 0xf0,
  f64x2_sub: 0xf1,
  f64x2_mul: 0xf2,
} as const;

/** Block type "no result" (5.4.1). */
export const VOID = 0x40;

/** A growable byte buffer with LEB128 writers (5.2.2). */
export class Bytes {
  private buf = new Uint8Array(256);
  length = 0;

  byte(b: number): this {
    if (this.length === this.buf.length) {
      const n = new Uint8Array(this.buf.length * 2);
      n.set(this.buf);
      this.buf = n;
    }
    this.buf[this.length++] = b;
    return this;
  }
  bytes(b: Uint8Array | readonly number[]): this {
    if (!(b instanceof Uint8Array)) {
      for (const x of b) this.byte(x);
      return this;
    }
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  u32(v: number): this {
    v >>>= 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
    return this;
  }
  s32(v: number): this {
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }
  s64(v: bigint): this {
    // A value in the int32 range has the same signed LEB128 as an i32; the others (PCs
    // of a kernel's upper half) are shifted as two 32-bit halves: a BigInt operation per
    // seven bits made this a twentieth of the translator's time.
    if (v >= -0x8000_0000n && v <= 0x7fff_ffffn) return this.s32(Number(v));
    let lo = Number(BigInt.asUintN(32, v));
    let hi = Number(BigInt.asIntN(32, v >> 32n));
    for (;;) {
      const b = lo & 0x7f;
      lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
      hi >>= 7;
      if ((hi === 0 && lo === 0 && (b & 0x40) === 0) || (hi === -1 && lo === 0xffff_ffff && (b & 0x40) !== 0))
        return this.byte(b);
      this.byte(b | 0x80);
    }
  }
  name(s: string): this {
    const e = new TextEncoder().encode(s);
    return this.u32(e.length).bytes(e);
  }
  /** Appends `b` prefixed by its length (a section or a function body). */
  sized(b: Bytes): this {
    this.u32(b.length);
    return this.bytes(b.view());
  }
  /** Removes bytes [from, to) (a run of whole instructions: wasm branches are by label depth, never by offset). */
  cut(from: number, to: number): void {
    this.buf.copyWithin(from, to, this.length);
    this.length -= to - from;
  }
  /** The bytes written so far (a view, not a copy). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
  finish(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.length);
  }
}

/** Bytes of the unsigned LEB128 of `v` (a u32). */
function uleb128Size(v: number): number {
  let n = 1;
  for (v >>>= 7; v !== 0; v >>>= 7) n++;
  return n;
}

/** One function's code: locals and an instruction stream. */
export class FuncBody extends Bytes {
  private readonly locals: ValType[] = [];
  constructor(readonly params: number) {
    super();
  }
  /** A new local of type `t`; returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.params + this.locals.length - 1;
  }
  /**
   * Structured control nesting at this point of the body (block, loop and if open one
   * level, end closes one): jit/registers.ts tells straight-line code from conditional.
   */
  depth = 0;
  op(o: number): this {
    if (o === OP.block || o === OP.loop || o === OP.if) this.depth++;
    else if (o === OP.end) this.depth--;
    return this.byte(o);
  }
  get(l: number): this {
    return this.byte(OP.local_get).u32(l);
  }
  set(l: number): this {
    return this.byte(OP.local_set).u32(l);
  }
  tee(l: number): this {
    return this.byte(OP.local_tee).u32(l);
  }
  i32(v: number): this {
    return this.byte(OP.i32_const).s32(v);
  }
  i64(v: bigint): this {
    return this.byte(OP.i64_const).s64(v);
  }
  /** A load or store with a constant offset (alignment hint 0: guest accesses may be unaligned). */
  mem(o: number, offset: number): this {
    return this.byte(o).u32(0).u32(offset);
  }
  /** Whether the body calls a function (a helper: tail calls are not counted). */
  calls = false;
  call(f: number): this {
    this.calls = true;
    return this.byte(OP.call).u32(f);
  }
  /** memory.fill of memory 0 (bulk memory, 0xFC 11): pops the address, the byte and the length. */
  memoryFill(): this {
    return this.byte(0xfc).u32(11).u32(0);
  }
  /** A 128-bit SIMD instruction without immediates. */
  simd(o: number): this {
    return this.byte(0xfd).u32(o);
  }
  /** A 128-bit SIMD load or store with a constant offset (alignment hint 0). */
  simdMem(o: number, offset: number): this {
    return this.byte(0xfd).u32(o).u32(0).u32(offset);
  }
  /** v128.const of two 64-bit lanes (lane 0 first: little-endian). */
  v128(lo: bigint, hi: bigint): this {
    this.byte(0xfd).u32(SIMD.v128_const);
    for (const v of [lo, hi]) {
      let w = BigInt.asUintN(64, v);
      for (let i = 0; i < 8; i++) {
        this.byte(Number(w & 0xffn));
        w >>= 8n;
      }
    }
    return this;
  }
  /**
   * Appends the body as an entry of the code section (its size, local declarations, code,
   * `end`) to `out` without an intermediate copy. Runs of locals of one type share a
   * declaration.
   */
  encodeTo(out: Bytes): void {
    // Runs of one type (start, count), and the declarations' size, written straight to out.
    const runs: number[] = [];
    for (let i = 0; i < this.locals.length; ) {
      let j = i + 1;
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++;
      runs.push(i, j - i);
      i = j;
    }
    let declBytes = uleb128Size(runs.length / 2);
    for (let r = 1; r < runs.length; r += 2) declBytes += uleb128Size(runs[r]!) + 1;
    out.u32(declBytes + this.length + 1);
    out.u32(runs.length / 2);
    for (let r = 0; r < runs.length; r += 2) out.u32(runs[r + 1]!).byte(this.locals[runs[r]!]!);
    out.bytes(this.view());
    out.byte(OP.end);
  }
}

export interface ImportFunc {
  readonly name: string;
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

/** Appends the import of `env.memory`, of exactly `pages` pages (shared or not), to an import section. */
export function memoryImport(is: Bytes, memory: { pages: number; shared: boolean }): void {
  // Memory limits: flag 3 = shared with a maximum, 1 = maximum only (5.3.4).
  is.name("env")
    .name("memory")
    .byte(0x02)
    .byte(memory.shared ? 3 : 1)
    .u32(memory.pages)
    .u32(memory.pages);
}

/** A function type (5.3.5). */
export interface FuncType {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

/** A function the module defines but does not export, of `type` (default: the bodies' type). */
export interface InternalFunc {
  readonly body: FuncBody;
  readonly type?: FuncType;
}

/**
 * Encodes a module: imports `env.memory` (shared when `shared`) and the functions of
 * `imports` (indices 0..n-1), then defines `bodies` (indices n..), exported as "f0",
 * "f1", ..., all of type `fnType` (type index `imports.length`), and after them
 * `internal` (not exported; their own types follow). With `table`, the module also defines
 * table 0 holding `bodies` in order (for `return_call_indirect` among them). The table
 * is the module's own, not imported: an engine may keep every instance importing a table
 * alive with it and update each one on every `table.set`.
 */
export function encodeModule(
  imports: readonly ImportFunc[],
  fnType: FuncType,
  bodies: readonly FuncBody[],
  memory: { pages: number; shared: boolean },
  extra: { table?: boolean; internal?: readonly InternalFunc[]; names?: readonly string[] } = {},
): Uint8Array<ArrayBuffer> {
  const internal = extra.internal ?? [];
  const all = [...bodies, ...internal.map((i) => i.body)];
  const types: FuncType[] = [...imports.map((i) => ({ params: i.params, results: i.results })), fnType];
  const typeOf = [...bodies.map(() => imports.length)];
  for (const i of internal) {
    if (i.type === undefined) typeOf.push(imports.length);
    else {
      typeOf.push(types.length);
      types.push(i.type);
    }
  }
  const m = new Bytes().bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const section = (id: number, b: Bytes) => m.byte(id).sized(b);
  const ts = new Bytes().u32(types.length);
  for (const t of types) {
    ts.byte(0x60).u32(t.params.length);
    for (const p of t.params) ts.byte(p);
    ts.u32(t.results.length);
    for (const r of t.results) ts.byte(r);
  }
  section(1, ts);
  const is = new Bytes().u32(imports.length + 1);
  memoryImport(is, memory);
  imports.forEach((imp, i) => {
    is.name("env").name(imp.name).byte(0x00).u32(i);
  });
  section(2, is);
  const fs = new Bytes().u32(all.length);
  for (const t of typeOf) fs.u32(t);
  section(3, fs);
  if (extra.table === true) {
    // Table section (5.5.4): funcref (0x70), limits flag 0 = minimum only (5.3.6).
    section(4, new Bytes().u32(1).byte(0x70).byte(0x00).u32(bodies.length));
  }
  const es = new Bytes().u32(bodies.length);
  bodies.forEach((_, i) => {
    es.name(`f${i}`)
      .byte(0x00)
      .u32(imports.length + i);
  });
  section(7, es);
  if (extra.table === true) {
    // Element section (5.5.12): one active segment, flags 0 (table 0, funcref), offset 0.
    const el = new Bytes().u32(1).byte(0x00).byte(OP.i32_const).s32(0).byte(OP.end);
    el.u32(bodies.length);
    for (let i = 0; i < bodies.length; i++) el.u32(imports.length + i);
    section(9, el);
  }
  const cs = new Bytes().u32(all.length);
  for (const b of all) b.encodeTo(cs);
  section(10, cs);
  if (extra.names !== undefined) {
    // The name section (custom section "name", subsection 1: function names; Appendix
    // 7.4), so that a profiler names each function (ARMBOX_JIT_NAMES, jit.ts).
    const fnNames = new Bytes().u32(extra.names.length);
    extra.names.forEach((n, i) => {
      fnNames.u32(imports.length + i).name(n);
    });
    section(0, new Bytes().name("name").byte(1).sized(fnNames));
  }
  return m.finish();
}
