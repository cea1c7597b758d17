/**
 * Declarative component state, after QEMU's VMStateDescription (docs/devel/migration):
 * a component declares its migratable state once, as a versioned list of typed fields, and
 * both save and load read that list. A field says how it is encoded, its bounds, the
 * version that introduced it (`since`) and, for fields newer than the oldest version still
 * read (`minVersion`), the value an older section implies. Load treats its input as
 * untrusted: it checks every field (presence, type, range, length, per-field and whole-state
 * rules) and only then returns the new state; the component commits it in one step, so a
 * refused section changes nothing.
 *
 * The component keeps its state in one plain object whose type comes from the field list
 * (`StateOf<typeof DESC>`), so a field cannot be saved and forgotten on load or the reverse.
 *
 * Fields are encoded as JSON values. `key` places a field at a dotted path of the encoded
 * object ("irq.enabled"), so a layout can be nested on disk and flat in memory.
 */
import { StateError, type StateValue } from "./state.ts";

/** One field: how to encode and decode a value of type V, given the component's context C. */
export interface Field<V, C = unknown> {
  // encode() returns undefined only for an optional field without a value (the key is left out).
  /** Version of the description that introduced the field (default 1). */
  readonly since: number;
  /** Dotted path in the encoded object; default: the field's name. */
  readonly key: string | undefined;
  encode(v: V, ctx: C): StateValue;
  /** Decodes and checks `raw`; returns an error message (without the field name) or the value. */
  decode(raw: StateValue | undefined, ctx: C): V | { error: string };
  /** The value implied by a section older than `since`. */
  readonly absent: ((ctx: C) => V) | undefined;
  /** Set on identity fields, which are checked against the context and not kept. */
  readonly identity?: true;
}

interface FieldOptions<V, C> {
  since?: number;
  key?: string;
  /** A rule beyond the type's bounds; returns what is wrong, or null. */
  check?: (v: V, ctx: C) => string | null;
  absent?: (ctx: C) => V;
}

// biome-ignore lint/suspicious/noExplicitAny: a field list mixes value types
type AnyField<C> = Field<any, C>;
export type Fields<C> = Record<string, AnyField<C>>;

/** The in-memory state a field list describes (identity fields excluded). */
export type StateOf<F> = {
  -readonly [K in keyof F as F[K] extends { readonly identity: true } ? never : K]: F[K] extends Field<
    infer V,
    infer _C
  >
    ? V
    : never;
};

export interface VmStateDescription<F extends Fields<C>, C> {
  readonly version: number;
  /** The oldest section version this build still reads. */
  readonly minVersion: number;
  readonly fields: F;
  /** Rules across fields, checked after every field decoded; returns what is wrong, or null. */
  readonly check?: (s: StateOf<F>, ctx: C) => string | null;
}

/** Declares a component's state; `C` is what lengths and checks may read (e.g. the vCPU count). */
export function vmstate<C = undefined>() {
  return <F extends Fields<C>>(d: VmStateDescription<F, C>): VmStateDescription<F, C> => {
    if (!(Number.isInteger(d.minVersion) && d.minVersion >= 1 && d.minVersion <= d.version)) {
      throw new RangeError(`vmstate: bad versions ${d.minVersion}..${d.version}`);
    }
    for (const [name, f] of Object.entries(d.fields)) {
      if (f.since > d.version) throw new RangeError(`vmstate: field '${name}' is newer than the description`);
      if (f.since > d.minVersion && f.absent === undefined) {
        throw new RangeError(`vmstate: field '${name}' (since ${f.since}) needs an 'absent' value`);
      }
    }
    return d;
  };
}

/** Encodes `state` (and the identity fields, from `ctx`) as the current version's layout. */
export function saveState<F extends Fields<C>, C>(
  d: VmStateDescription<F, C>,
  state: StateOf<F>,
  ctx: C,
): StateValue {
  const out: { [k: string]: StateValue } = {};
  const st = state as Record<string, unknown>;
  for (const [name, f] of Object.entries(d.fields)) {
    const v = f.encode(st[name], ctx);
    if (v !== undefined) setPath(out, f.key ?? name, v);
  }
  return out;
}

/**
 * Decodes a section of `version` written by this or an older build. Throws a StateError
 * naming `section` and the field; returns the complete new state otherwise.
 */
export function loadState<F extends Fields<C>, C>(
  d: VmStateDescription<F, C>,
  section: string,
  raw: StateValue,
  version: number,
  ctx: C,
): StateOf<F> {
  if (version < d.minVersion || version > d.version) {
    throw new StateError(
      section,
      `unsupported version ${version} (this build reads versions ${d.minVersion} to ${d.version})`,
    );
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new StateError(section, "the state is not an object");
  }
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(d.fields)) {
    const key = f.key ?? name;
    if (version < f.since) {
      out[name] = f.absent!(ctx);
      continue;
    }
    const r = f.decode(getPath(raw, key), ctx);
    if (isError(r)) throw new StateError(section, `field '${key}' ${r.error}`);
    if (!f.identity) out[name] = r;
  }
  const s = out as StateOf<F>;
  const why = d.check?.(s, ctx) ?? null;
  if (why !== null) throw new StateError(section, why);
  return s;
}

function isError(r: unknown): r is { error: string } {
  return typeof r === "object" && r !== null && !Array.isArray(r) && !ArrayBuffer.isView(r) && "error" in r;
}

function getPath(o: { [k: string]: StateValue }, path: string): StateValue | undefined {
  let v: StateValue | undefined = o;
  for (const part of path.split(".")) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
    v = Object.hasOwn(v, part) ? v[part] : undefined;
  }
  return v;
}

function setPath(o: { [k: string]: StateValue }, path: string, value: StateValue): void {
  const parts = path.split(".");
  let at = o;
  for (const part of parts.slice(0, -1)) {
    const next = at[part];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) at = next;
    else {
      const fresh: { [k: string]: StateValue } = {};
      at[part] = fresh;
      at = fresh;
    }
  }
  at[parts[parts.length - 1]!] = value;
}

function field<V, C>(
  opts: FieldOptions<V, C>,
  encode: (v: V, ctx: C) => StateValue,
  decode: (raw: StateValue | undefined, ctx: C) => V | { error: string },
): Field<V, C> {
  return {
    since: opts.since ?? 1,
    key: opts.key,
    absent: opts.absent,
    encode,
    decode: (raw, ctx) => {
      const v = decode(raw, ctx);
      if (isError(v)) return v;
      const why = opts.check?.(v, ctx) ?? null;
      return why === null ? v : { error: why };
    },
  };
}

const isUint = (x: unknown, max: number): x is number =>
  typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= max;

// ---------------------------------------------------------------------------
// Field types

/** An unsigned integer in 0..max (at most 2^53 - 1). */
export function uint<C = unknown>(max = 0xffff_ffff, opts: FieldOptions<number, C> = {}): Field<number, C> {
  return field(
    opts,
    (v) => v,
    (raw) => (isUint(raw, max) ? raw : { error: raw === undefined ? "is missing" : "is out of range" }),
  );
}

export function bool<C = unknown>(opts: FieldOptions<boolean, C> = {}): Field<boolean, C> {
  return field(
    opts,
    (v) => v,
    (raw) =>
      typeof raw === "boolean" ? raw : { error: raw === undefined ? "is missing" : "is not a boolean" },
  );
}

/** A boolean encoded as 0 or 1 (as layouts written before booleans were used have it). */
export function bit<C = unknown>(opts: FieldOptions<boolean, C> = {}): Field<boolean, C> {
  return field(
    opts,
    (v) => (v ? 1 : 0),
    (raw) =>
      raw === 0 || raw === 1 ? raw === 1 : { error: raw === undefined ? "is missing" : "is not 0 or 1" },
  );
}

/**
 * An unsigned integer below 2^53 (a guest physical address) encoded as two 32-bit words,
 * [low, high], so that it survives any JSON reader.
 */
export function words64<C = unknown>(opts: FieldOptions<number, C> = {}): Field<number, C> {
  return field(
    opts,
    (v) => [v % 0x1_0000_0000, Math.floor(v / 0x1_0000_0000)],
    (raw) => {
      if (!Array.isArray(raw) || raw.length !== 2)
        return { error: raw === undefined ? "is missing" : "is not [low, high]" };
      const [lo, hi] = raw;
      if (!isUint(lo, 0xffff_ffff) || !isUint(hi, 0x1f_ffff)) return { error: "is out of range" };
      return hi * 0x1_0000_0000 + lo;
    },
  );
}

/** A field that may be left out: absent in the layout, undefined in memory. */
export function optional<V, C = unknown>(of: Field<V, C>): Field<V | undefined, C> {
  return {
    since: of.since,
    key: of.key,
    absent: of.absent,
    encode: (v, ctx) => (v === undefined ? (undefined as unknown as StateValue) : of.encode(v, ctx)),
    decode: (raw, ctx) => (raw === undefined ? undefined : of.decode(raw, ctx)),
  };
}

/** A string matching `pattern` (anchored). */
export function string<C = unknown>(pattern: RegExp, opts: FieldOptions<string, C> = {}): Field<string, C> {
  return field(
    opts,
    (v) => v,
    (raw) => (typeof raw === "string" && pattern.test(raw) ? raw : { error: "is missing or malformed" }),
  );
}

/** One of a fixed set of values (strings, numbers, null). */
export function oneOf<const T extends readonly (string | number | null)[], C = unknown>(
  values: T,
  opts: FieldOptions<T[number], C> = {},
): Field<T[number], C> {
  return field(
    opts,
    (v) => v,
    (raw) =>
      values.includes(raw as T[number])
        ? (raw as T[number])
        : { error: `is not one of ${JSON.stringify(values)}` },
  );
}

type Length<C> = number | ((ctx: C) => number);
const lengthOf = <C>(l: Length<C>, ctx: C): number => (typeof l === "number" ? l : l(ctx));

/** A list of unsigned integers in 0..max: of exactly `length` entries, or at most `maxLength`. */
export function uints<C = unknown>(
  bounds: { length?: Length<C>; maxLength?: Length<C>; max?: number },
  opts: FieldOptions<number[], C> = {},
): Field<number[], C> {
  const max = bounds.max ?? 0xffff_ffff;
  return field(
    opts,
    (v) => [...v],
    (raw, ctx) => {
      const r = checkList(raw, bounds, ctx);
      if (r !== null) return r;
      const a = raw as StateValue[];
      return a.every((x) => isUint(x, max)) ? [...(a as number[])] : { error: "holds a bad value" };
    },
  );
}

type TypedArray = Uint8Array | Uint16Array | Uint32Array | Int32Array;
type TypedArrayCtor<T extends TypedArray> = { new (n: number): T; readonly BYTES_PER_ELEMENT: number };

/**
 * A typed array of exactly `length` elements in min..max (encoded as a list of numbers).
 * The bounds default to the element type's range.
 */
export function typed<T extends TypedArray, C = unknown>(
  ctor: TypedArrayCtor<T>,
  bounds: { length: Length<C>; max?: number; min?: number },
  opts: FieldOptions<T, C> = {},
): Field<T, C> {
  const signed = ctor === (Int32Array as unknown);
  const bits = ctor.BYTES_PER_ELEMENT * 8;
  const min = bounds.min ?? (signed ? -(2 ** (bits - 1)) : 0);
  const max = bounds.max ?? (signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1);
  return field(
    opts,
    (v) => Array.from(v),
    (raw, ctx) => {
      const r = checkList(raw, { length: bounds.length }, ctx);
      if (r !== null) return r;
      const a = raw as StateValue[];
      const out = new ctor(a.length);
      for (let i = 0; i < a.length; i++) {
        const x = a[i];
        if (typeof x !== "number" || !Number.isInteger(x) || x < min || x > max)
          return { error: "holds a bad value" };
        out[i] = x;
      }
      return out;
    },
  );
}

/** A list of values of one field type (e.g. virtqueues), exactly `length` or at most `maxLength`. */
export function list<V, C = unknown>(
  of: Field<V, C>,
  bounds: { length?: Length<C>; maxLength?: Length<C> },
  opts: FieldOptions<V[], C> = {},
): Field<V[], C> {
  return field(
    opts,
    (v, ctx) => v.map((x) => of.encode(x, ctx)),
    (raw, ctx) => {
      const r = checkList(raw, bounds, ctx);
      if (r !== null) return r;
      const out: V[] = [];
      for (const [i, x] of (raw as StateValue[]).entries()) {
        const d = of.decode(x, ctx);
        if (isError(d)) return { error: `entry ${i} ${d.error}` };
        out.push(d);
      }
      return out;
    },
  );
}

/** A nested record of fields (one level of a structured layout), decoded as a whole. */
export function struct<F extends Fields<C>, C = unknown>(
  fields: F,
  opts: FieldOptions<StateOf<F>, C> = {},
): Field<StateOf<F>, C> {
  return field(
    opts,
    (v, ctx) => {
      const out: { [k: string]: StateValue } = {};
      const o = v as Record<string, unknown>;
      for (const [name, f] of Object.entries(fields)) setPath(out, f.key ?? name, f.encode(o[name], ctx));
      return out;
    },
    (raw, ctx) => {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        return { error: raw === undefined ? "is missing" : "is not an object" };
      }
      const out: Record<string, unknown> = {};
      for (const [name, f] of Object.entries(fields)) {
        const key = f.key ?? name;
        const d = f.decode(getPath(raw, key), ctx);
        if (isError(d)) return { error: `'${key}' ${d.error}` };
        if (!f.identity) out[name] = d;
      }
      return out as StateOf<F>;
    },
  );
}

/**
 * A value of the machine the state belongs to (a vCPU count, an affinity list): written
 * from the context, and on load required to equal it, so a section is never loaded into a
 * differently built component. It is not part of the in-memory state.
 */
export function identity<C>(
  of: (ctx: C) => StateValue,
  opts: { since?: number; key?: string; mismatch?: (saved: StateValue, ours: StateValue) => string } = {},
): Field<null, C> & { readonly identity: true } {
  return {
    identity: true,
    since: opts.since ?? 1,
    key: opts.key,
    absent: undefined,
    encode: (_v, ctx) => of(ctx),
    decode: (raw, ctx) => {
      const want = JSON.stringify(of(ctx));
      const got = raw === undefined ? undefined : JSON.stringify(raw);
      if (got === want) return null;
      if (got === undefined) return { error: "is missing" };
      if (opts.mismatch) return { error: opts.mismatch(raw!, of(ctx)) };
      return { error: `is ${got.length > 40 ? `${got.slice(0, 40)}...` : got}; this machine's is ${want}` };
    },
  };
}

function checkList<C>(
  raw: StateValue | undefined,
  b: { length?: Length<C> | undefined; maxLength?: Length<C> | undefined },
  ctx: C,
): { error: string } | null {
  if (!Array.isArray(raw)) return { error: raw === undefined ? "is missing" : "is not a list" };
  if (b.length !== undefined && raw.length !== lengthOf(b.length, ctx)) {
    return { error: `has ${raw.length} entries, not ${lengthOf(b.length, ctx)}` };
  }
  if (b.maxLength !== undefined && raw.length > lengthOf(b.maxLength, ctx)) {
    return { error: `has ${raw.length} entries; at most ${lengthOf(b.maxLength, ctx)} fit` };
  }
  return null;
}
