/**
 * Flattened Devicetree (DTB) builder and parser, after the Devicetree Specification v0.4,
 * chapter 5 ("Flattened Devicetree (DTB) Format"): a 40-byte header, the memory reservation
 * block (8-byte aligned pairs of big-endian u64, ended by a zero pair), the structure block
 * (big-endian u32 tokens FDT_BEGIN_NODE / FDT_PROP / FDT_END_NODE / FDT_NOP / FDT_END, every
 * token 4-byte aligned) and the strings block (NUL-terminated property names).
 *
 * The parser reads untrusted input (`armbox run --dtb FILE`): every offset and length is
 * checked before use, nesting is walked without recursion, and any problem is an `FdtError`
 * saying what is wrong and where.
 */

export class FdtError extends Error {
  override readonly name = "FdtError";
}

export const FDT_MAGIC = 0xd00dfeed;
export const FDT_BEGIN_NODE = 1;
export const FDT_END_NODE = 2;
export const FDT_PROP = 3;
export const FDT_NOP = 4;
export const FDT_END = 9;
/** Version written: 17, readable by parsers of version 16 and later (spec 5.2). */
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;
const HEADER_SIZE = 40;

export interface FdtProp {
  readonly name: string;
  readonly value: Uint8Array;
}

export interface FdtNode {
  /** Node name with its unit address ("pl011@9000000"); "" for the root. */
  readonly name: string;
  readonly props: FdtProp[];
  readonly children: FdtNode[];
}

export interface FdtReservation {
  readonly address: bigint;
  readonly size: bigint;
}

export interface Fdt {
  readonly root: FdtNode;
  readonly reservations: FdtReservation[];
  readonly bootCpuId: number;
  /** Version of the blob that was parsed (always FDT_VERSION for built blobs). */
  readonly version: number;
}

// ---------------------------------------------------------------------------------------
// Typed property values

/**
 * What a property may be given as in `node()`:
 * - `number` / `number[]`: u32 cells (spec 2.2.4 <u32>, <prop-encoded-array>)
 * - `bigint`: one u64 (two cells, high first)
 * - `string`: a NUL-terminated string; `string[]`: a <stringlist>
 * - `true`: an empty property (a boolean flag such as "interrupt-controller")
 * - `Uint8Array`: raw bytes, written as they are (e.g. from `cells()` or `bytes()`)
 */
export type PropInput = number | number[] | bigint | string | string[] | true | Uint8Array;

/** u32 cells, big-endian. */
export function u32(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new FdtError(`u32 cell out of range: ${v}`);
    dv.setUint32(i * 4, v);
  });
  return out;
}

/** u64 values, each as two big-endian cells (high cell first). */
export function u64(...values: (bigint | number)[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    const b = BigInt(v);
    if (b < 0n || b > 0xffff_ffff_ffff_ffffn) throw new FdtError(`u64 value out of range: ${v}`);
    dv.setBigUint64(i * 8, b);
  });
  return out;
}

/** A value of `n` cells (1 or 2), as the #address-cells / #size-cells of the parent say. */
export function sizedCells(n: 1 | 2, value: bigint | number): Uint8Array {
  return n === 1 ? u32(Number(value)) : u64(value);
}

/** Concatenates encoded pieces, e.g. `cells(u64(base), u64(size))` for a `reg`. */
export function cells(...parts: Uint8Array[]): Uint8Array {
  return bytes(...parts);
}

export function bytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const enc = new TextEncoder();

/** A <string>; a NUL inside the string is refused (it would end it early). */
export function str(s: string): Uint8Array {
  if (s.includes("\0")) throw new FdtError(`string property value contains NUL: ${JSON.stringify(s)}`);
  return bytes(enc.encode(s), new Uint8Array(1));
}

/** A <stringlist>: several NUL-terminated strings back to back. */
export function strs(...list: string[]): Uint8Array {
  return bytes(...list.map(str));
}

export function encodeProp(v: PropInput): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v === true) return new Uint8Array(0);
  if (typeof v === "number") return u32(v);
  if (typeof v === "bigint") return u64(v);
  if (typeof v === "string") return str(v);
  if (v.length === 0) return new Uint8Array(0);
  if (typeof v[0] === "number") return u32(...(v as number[]));
  return strs(...(v as string[]));
}

/**
 * Builds a node. `props` keeps insertion order (as written to the blob); names that look
 * like integers would be reordered by JavaScript objects, so pass an array of pairs for those.
 */
export function node(
  name: string,
  props: Record<string, PropInput> | [string, PropInput][] = {},
  children: FdtNode[] = [],
): FdtNode {
  const entries = Array.isArray(props) ? props : Object.entries(props);
  return { name, props: entries.map(([n, v]) => ({ name: n, value: encodeProp(v) })), children };
}

// ---------------------------------------------------------------------------------------
// Names (spec 2.2.1 node names, 2.2.4 property names)

const NODE_NAME_CHARS = /^[0-9A-Za-z,._+-]+$/;
const UNIT_ADDR_CHARS = /^[0-9A-Za-z,._+-]*$/;
const PROP_NAME_CHARS = /^[0-9A-Za-z,._+?#-]+$/;

function checkNodeName(name: string, isRoot: boolean): void {
  if (isRoot) {
    if (name !== "") throw new FdtError(`the root node must have an empty name, not ${JSON.stringify(name)}`);
    return;
  }
  const at = name.indexOf("@");
  const base = at < 0 ? name : name.slice(0, at);
  const unit = at < 0 ? "" : name.slice(at + 1);
  if (base.length < 1 || base.length > 31 || !NODE_NAME_CHARS.test(base) || !UNIT_ADDR_CHARS.test(unit)) {
    throw new FdtError(`invalid node name ${JSON.stringify(name)}`);
  }
}

function checkPropName(name: string, where: string): void {
  if (name.length < 1 || name.length > 31 || !PROP_NAME_CHARS.test(name)) {
    throw new FdtError(`invalid property name ${JSON.stringify(name)} in ${where}`);
  }
}

// ---------------------------------------------------------------------------------------
// Builder

class ByteWriter {
  buf = new Uint8Array(4096);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf[this.len] = v >>> 24;
    this.buf[this.len + 1] = (v >>> 16) & 0xff;
    this.buf[this.len + 2] = (v >>> 8) & 0xff;
    this.buf[this.len + 3] = v & 0xff;
    this.len += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  align4(): void {
    const pad = (4 - (this.len & 3)) & 3;
    this.ensure(pad);
    this.buf.fill(0, this.len, this.len + pad);
    this.len += pad;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export interface BuildOptions {
  reservations?: FdtReservation[];
  /** boot_cpuid_phys: the physical id (reg) of the boot CPU. */
  bootCpuId?: number;
  /** Extra zero bytes after the strings block, for a loader that edits the tree in place. */
  padding?: number;
}

/** Serialises a tree to a DTB. Names are validated; duplicate siblings are refused. */
export function buildFdt(root: FdtNode, opts: BuildOptions = {}): Uint8Array {
  const struct = new ByteWriter();
  const strings = new ByteWriter();
  const stringOffsets = new Map<string, number>();
  const nameOffset = (name: string): number => {
    let off = stringOffsets.get(name);
    if (off === undefined) {
      off = strings.len;
      strings.bytes(str(name));
      stringOffsets.set(name, off);
    }
    return off;
  };

  // Iterative walk: each stack entry is a node and the index of the next child to emit.
  const stack: { n: FdtNode; next: number; path: string }[] = [];
  const open = (n: FdtNode, path: string, isRoot: boolean): void => {
    checkNodeName(n.name, isRoot);
    struct.u32(FDT_BEGIN_NODE);
    struct.bytes(str(n.name));
    struct.align4();
    const seen = new Set<string>();
    for (const p of n.props) {
      checkPropName(p.name, path);
      if (seen.has(p.name)) throw new FdtError(`duplicate property ${p.name} in ${path}`);
      seen.add(p.name);
      struct.u32(FDT_PROP);
      struct.u32(p.value.length);
      struct.u32(nameOffset(p.name));
      struct.bytes(p.value);
      struct.align4();
    }
    const names = new Set<string>();
    for (const c of n.children) {
      if (names.has(c.name)) throw new FdtError(`duplicate node ${c.name} in ${path}`);
      names.add(c.name);
    }
    stack.push({ n, next: 0, path });
  };
  open(root, "/", true);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.n.children.length) {
      const c = top.n.children[top.next++]!;
      open(c, top.path === "/" ? `/${c.name}` : `${top.path}/${c.name}`, false);
    } else {
      struct.u32(FDT_END_NODE);
      stack.pop();
    }
  }
  struct.u32(FDT_END);

  const rsv = opts.reservations ?? [];
  const offRsv = HEADER_SIZE; // 40: already 8-byte aligned, as the spec requires
  const offStruct = offRsv + (rsv.length + 1) * 16;
  const offStrings = offStruct + struct.len;
  const total = offStrings + strings.len + (opts.padding ?? 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, FDT_MAGIC);
  dv.setUint32(4, total);
  dv.setUint32(8, offStruct);
  dv.setUint32(12, offStrings);
  dv.setUint32(16, offRsv);
  dv.setUint32(20, FDT_VERSION);
  dv.setUint32(24, FDT_LAST_COMP_VERSION);
  dv.setUint32(28, opts.bootCpuId ?? 0);
  dv.setUint32(32, strings.len);
  dv.setUint32(36, struct.len);
  rsv.forEach((r, i) => {
    dv.setBigUint64(offRsv + i * 16, BigInt.asUintN(64, r.address));
    dv.setBigUint64(offRsv + i * 16 + 8, BigInt.asUintN(64, r.size));
  });
  out.set(struct.result(), offStruct);
  out.set(strings.result(), offStrings);
  return out;
}

// ---------------------------------------------------------------------------------------
// Parser

/** Deepest nesting accepted; real trees are under 10 deep. */
const MAX_DEPTH = 64;

const dec = new TextDecoder("utf-8", { fatal: false });

/** Parses and validates a DTB. `data` may be longer than totalsize (e.g. a padded file). */
export function parseFdt(data: Uint8Array): Fdt {
  if (data.length < HEADER_SIZE) {
    throw new FdtError(`not a device tree: ${data.length} bytes is shorter than the 40-byte header`);
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic = dv.getUint32(0);
  if (magic !== FDT_MAGIC) {
    throw new FdtError(`not a device tree: bad magic 0x${magic.toString(16)} (expected 0xd00dfeed)`);
  }
  const total = dv.getUint32(4);
  const offStruct = dv.getUint32(8);
  const offStrings = dv.getUint32(12);
  const offRsv = dv.getUint32(16);
  const version = dv.getUint32(20);
  const lastComp = dv.getUint32(24);
  const bootCpuId = dv.getUint32(28);
  const sizeStrings = dv.getUint32(32);
  if (total > data.length) {
    throw new FdtError(
      `truncated device tree: totalsize is ${total} bytes but only ${data.length} are present`,
    );
  }
  if (total < HEADER_SIZE) throw new FdtError(`bad totalsize ${total}`);
  if (version < 16) throw new FdtError(`device tree version ${version} is too old (16 or later is needed)`);
  if (lastComp > FDT_VERSION) {
    throw new FdtError(
      `device tree needs a reader of version ${lastComp}; this one reads version ${FDT_VERSION}`,
    );
  }
  // Version 16 has no size_dt_struct: the structure block runs to the strings block or the end.
  const sizeStruct =
    version >= 17 ? dv.getUint32(36) : Math.max(0, (offStrings > offStruct ? offStrings : total) - offStruct);
  const inBlob = (off: number, size: number, what: string): void => {
    if (off < HEADER_SIZE || off > total || size > total - off) {
      throw new FdtError(`${what} (offset ${off}, ${size} bytes) lies outside the ${total}-byte blob`);
    }
  };
  inBlob(offStruct, sizeStruct, "structure block");
  inBlob(offStrings, sizeStrings, "strings block");
  if (offStruct % 4 !== 0) throw new FdtError(`structure block offset ${offStruct} is not 4-byte aligned`);
  if (offRsv % 8 !== 0) throw new FdtError(`memory reservation block offset ${offRsv} is not 8-byte aligned`);

  // Memory reservation block: pairs until a zero pair.
  const reservations: FdtReservation[] = [];
  for (let o = offRsv; ; o += 16) {
    if (o < HEADER_SIZE || o + 16 > total) {
      throw new FdtError("memory reservation block is not terminated inside the blob");
    }
    const address = dv.getBigUint64(o);
    const size = dv.getBigUint64(o + 8);
    if (address === 0n && size === 0n) break;
    reservations.push({ address, size });
  }

  const strEnd = offStrings + sizeStrings;
  const propName = (nameoff: number, at: number): string => {
    if (nameoff >= sizeStrings) {
      throw new FdtError(`property at offset ${at}: name offset ${nameoff} is outside the strings block`);
    }
    const start = offStrings + nameoff;
    const nul = data.subarray(start, strEnd).indexOf(0);
    if (nul < 0) throw new FdtError(`property at offset ${at}: name is not NUL-terminated`);
    const name = dec.decode(data.subarray(start, start + nul));
    if (name.length === 0) throw new FdtError(`property at offset ${at}: empty name`);
    return name;
  };

  const end = offStruct + sizeStruct;
  let p = offStruct;
  const token = (): number => {
    if (p + 4 > end) throw new FdtError(`structure block ends at offset ${end} without FDT_END`);
    const t = dv.getUint32(p);
    p += 4;
    return t;
  };
  const stack: FdtNode[] = [];
  let root: FdtNode | null = null;
  for (;;) {
    const at = p;
    const t = token();
    if (t === FDT_NOP) continue;
    if (t === FDT_BEGIN_NODE) {
      const nul = data.subarray(p, end).indexOf(0);
      if (nul < 0) throw new FdtError(`node at offset ${at}: name is not NUL-terminated`);
      const name = dec.decode(data.subarray(p, p + nul));
      p = (p + nul + 1 + 3) & ~3;
      if (p > end) throw new FdtError(`node at offset ${at}: name runs past the structure block`);
      if (root !== null && stack.length === 0) throw new FdtError(`second root node at offset ${at}`);
      if (stack.length === 0 && name !== "")
        throw new FdtError(`root node has a name (${JSON.stringify(name)})`);
      if (stack.length > 0 && name === "") throw new FdtError(`node at offset ${at} has an empty name`);
      if (stack.length >= MAX_DEPTH) throw new FdtError(`nodes nested deeper than ${MAX_DEPTH} levels`);
      const n: FdtNode = { name, props: [], children: [] };
      if (stack.length === 0) root = n;
      else stack[stack.length - 1]!.children.push(n);
      stack.push(n);
    } else if (t === FDT_PROP) {
      if (stack.length === 0) throw new FdtError(`property at offset ${at} is outside any node`);
      const len = token();
      const nameoff = token();
      if (len > end - p)
        throw new FdtError(`property at offset ${at}: length ${len} runs past the structure block`);
      const name = propName(nameoff, at);
      const value = data.slice(p, p + len);
      p = (p + len + 3) & ~3;
      const n = stack[stack.length - 1]!;
      n.props.push({ name, value });
    } else if (t === FDT_END_NODE) {
      if (stack.length === 0) throw new FdtError(`unbalanced FDT_END_NODE at offset ${at}`);
      stack.pop();
    } else if (t === FDT_END) {
      if (stack.length !== 0) throw new FdtError(`FDT_END at offset ${at} inside an open node`);
      if (root === null) throw new FdtError("device tree has no root node");
      break;
    } else {
      throw new FdtError(`unknown token 0x${t.toString(16)} at offset ${at}`);
    }
  }
  return { root: root!, reservations, bootCpuId, version };
}

// ---------------------------------------------------------------------------------------
// Queries

/** Finds a node by absolute path ("/", "/chosen", "/cpus/cpu@0"). */
export function findNode(root: FdtNode, path: string): FdtNode | undefined {
  if (path === "/") return root;
  if (!path.startsWith("/")) return undefined;
  let n: FdtNode | undefined = root;
  for (const part of path.slice(1).split("/")) {
    n = n.children.find((c) => c.name === part);
    if (!n) return undefined;
  }
  return n;
}

export function getProp(n: FdtNode, name: string): Uint8Array | undefined {
  return n.props.find((p) => p.name === name)?.value;
}

/** Decodes a property as u32 cells; throws if its length is not a multiple of 4. */
export function propU32s(v: Uint8Array): number[] {
  if (v.length % 4 !== 0) throw new FdtError(`property of ${v.length} bytes is not a list of cells`);
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(dv.getUint32(i));
  return out;
}

/** Decodes a property of 1 or 2 cells as a number (as Linux's of_read_number does). */
export function propNumber(v: Uint8Array): bigint {
  let r = 0n;
  for (const c of propU32s(v)) r = (r << 32n) | BigInt(c);
  return r;
}

/** Decodes a <stringlist> (or a single <string>). */
export function propStrings(v: Uint8Array): string[] {
  if (v.length === 0 || v[v.length - 1] !== 0)
    throw new FdtError("property is not a NUL-terminated string list");
  return dec.decode(v.subarray(0, v.length - 1)).split("\0");
}

export function propString(v: Uint8Array): string {
  return propStrings(v)[0]!;
}
