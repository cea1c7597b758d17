/**
 * Random test-case generator of the difftest. A case is a deterministic function of
 * (class, seed): the seed drives one xoshiro128** stream that draws, in this order, the
 * initial state (X0-X30, V0-V31, NZCV, FPCR, the memory window) and then 1-4 (branch
 * class: up to 8) instructions from the class's encoding templates (classes.ts), and
 * finally fixes up the registers that address memory or hold branch targets.
 */
import { CLASSES, type ClassSpec, type Fields, setHooks, type Tmpl } from "./classes.ts";
import { type Case, type CaseState, CODE, MAX_WORDS, WINDOW, WINDOW_SIZE } from "./layout.ts";
import { Rng } from "./prng.ts";
import { put32, randomV, randomX } from "./values.ts";

export { CLASSES };
export const CLASS_NAMES = Object.keys(CLASSES);

/** Default share of instructions drawn as unallocated encodings (see fillFields). */
const INVALID_SHARE = 0.025;
const X_FIELDS = new Set(["Rd", "Rn", "Rm", "Ra", "Rt", "Rt2", "Rs"]);
const V_FIELDS = new Set(["Vd", "Vn", "Vm", "Va", "Vt", "Vt2"]);

interface FieldSpec {
  name: string;
  shift: number;
  width: number;
}
interface Parsed {
  mask: number;
  value: number;
  fields: FieldSpec[];
}
const parsedCache = new Map<string, Parsed>();

/** Parses a template pattern: the decoder's syntax (fixed 0/1 runs, `name:N` fields). */
export function parse(p: string): Parsed {
  let r = parsedCache.get(p);
  if (r) return r;
  let bit = 32;
  let mask = 0;
  let value = 0;
  const fields: FieldSpec[] = [];
  for (const tok of p.trim().split(/\s+/)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*):(\d+)$/.exec(tok);
    if (m) {
      const width = Number(m[2]);
      bit -= width;
      fields.push({ name: m[1]!, shift: bit, width });
      continue;
    }
    if (!/^[01]+$/.test(tok)) throw new Error(`template '${p}': bad token '${tok}'`);
    for (const ch of tok) {
      bit--;
      mask |= 1 << bit;
      if (ch === "1") value |= 1 << bit;
    }
  }
  if (bit !== 0) throw new Error(`template '${p}': covers ${32 - bit} bits, not 32`);
  r = { mask: mask >>> 0, value: value >>> 0, fields };
  parsedCache.set(p, r);
  return r;
}

export function encode(t: Tmpl, f: Fields): number {
  const p = parse(t.p);
  let w = p.value;
  for (const fs of p.fields) {
    const v = f[fs.name] ?? 0;
    w |= (v & (fs.width === 32 ? 0xffffffff : (1 << fs.width) - 1)) << fs.shift;
  }
  return w >>> 0;
}

/** Picks a weighted template. */
export function pickTmpl(g: Rng, ts: readonly Tmpl[]): Tmpl {
  let total = 0;
  for (const t of ts) total += t.w ?? 1;
  let x = g.int(total);
  for (const t of ts) {
    x -= t.w ?? 1;
    if (x < 0) return t;
  }
  return ts[ts.length - 1]!;
}

interface Slot {
  t: Tmpl;
  f: Fields;
}

/** Random initial state; `fpBias` is the share of V registers filled with FP lanes. */
export function randomState(g: Rng, fpBias: number): CaseState {
  const x = new Uint32Array(62);
  for (let i = 0; i < 31; i++) {
    const [lo, hi] = randomX(g);
    x[2 * i] = lo;
    x[2 * i + 1] = hi;
  }
  const v = new Uint8Array(512);
  for (let i = 0; i < 32; i++) randomV(g, v, i * 16, fpBias);
  const nzcv = (g.bits(4) << 28) >>> 0;
  const rmode = g.int(4);
  const fz = g.chance(0.3) ? 1 : 0;
  const dn = g.chance(0.3) ? 1 : 0;
  const ahp = g.chance(0.2) ? 1 : 0; // alternative half-precision (FCVT to/from half)
  const fpcr = ((ahp << 26) | (dn << 25) | (fz << 24) | (rmode << 22)) >>> 0;
  const mem = new Uint8Array(WINDOW_SIZE);
  // Memory: mostly random, with stretches of vector-register-like lanes (FP values).
  for (let off = 0; off < WINDOW_SIZE; off += 16) {
    if (g.chance(0.25)) randomV(g, mem, off, 0.7);
    else for (let i = 0; i < 16; i += 4) put32(mem, off + i, g.u32());
  }
  return { x, v, nzcv, fpcr, fpsr: 0, mem };
}

/** Generates the case `seed` of class `cls`. */
export function generateCase(cls: string, seed: number): Case {
  const spec = CLASSES[cls];
  if (!spec) throw new Error(`unknown class '${cls}' (known: ${CLASS_NAMES.join(", ")})`);
  const g = new Rng(seed);
  const state = randomState(g, spec.fpBias ?? 0.3);
  const words = spec.custom ? spec.custom(g, state) : genSequence(g, spec, state);
  if (words.length > MAX_WORDS) throw new Error(`class ${cls}: ${words.length} words`);
  return { cls, seed, words, state };
}

export function genSequence(g: Rng, spec: ClassSpec, state: CaseState): number[] {
  const n = g.range(spec.minLen ?? 1, spec.maxLen ?? 4);
  const slots: Slot[] = [];
  for (let i = 0; i < n; i++) slots.push(fillFields(g, pickTmpl(g, spec.t), spec.invalidShare));
  assignRegisters(g, slots, spec, state);
  return slots.map((s) => encode(s.t, s.f));
}

/** Draws the non-register fields once: each from its generator, or (with probability
 * `uniform`) uniformly from all its values. */
function drawFields(g: Rng, t: Tmpl, uniform: number): Fields {
  const f: Fields = {};
  for (const fs of parse(t.p).fields) {
    if (X_FIELDS.has(fs.name) || V_FIELDS.has(fs.name)) continue;
    const gen = t.f?.[fs.name];
    if (gen === undefined || (uniform > 0 && g.chance(uniform))) f[fs.name] = g.bits(fs.width);
    else if (typeof gen === "function") f[fs.name] = gen(g, f) & (2 ** fs.width - 1);
    else f[fs.name] = g.pick(gen);
  }
  return f;
}

/** Draws every non-register field of a template (register fields come later). With
 * probability `invalidShare` the fields are drawn to form an encoding that the template's
 * `ok` says is unallocated (the reference then says SIGILL); otherwise an allocated one.
 * Encodings matching `never` are not generated at all. */
export function fillFields(g: Rng, t: Tmpl, invalidShare = INVALID_SHARE): Slot {
  if (t.unallocated) return { t, f: drawFields(g, t, 0) };
  if (t.ok && g.chance(invalidShare)) {
    for (let tries = 0; tries < 200; tries++) {
      const f = drawFields(g, t, 0.5);
      if (!t.ok(f) && !t.never?.(f)) return { t, f };
    }
  }
  let f: Fields = {};
  for (let tries = 0; tries < 1000; tries++) {
    f = drawFields(g, t, 0);
    if ((!t.ok || t.ok(f)) && !t.never?.(f)) break;
  }
  return { t, f };
}

/** A register number for a general-register field: small registers are favoured so that
 * the instructions of a sequence depend on each other. */
function pickX(g: Rng, allow31: boolean, avoid: Set<number>): number {
  for (let tries = 0; tries < 50; tries++) {
    let r: number;
    if (allow31 && g.chance(0.06)) r = 31;
    else if (g.chance(0.5)) r = g.int(8);
    else r = g.int(31);
    if (!avoid.has(r)) return r;
  }
  for (let r = 0; r < 31; r++) if (!avoid.has(r)) return r;
  return 0;
}

/**
 * Assigns register fields for a whole sequence. Registers that form addresses (base and
 * index) are chosen first, distinct across the sequence, and no data register of any
 * instruction may be one of them, so a load can never redirect a later access; then the
 * base and index values are set so that the access lands inside the memory window.
 */
export function assignRegisters(g: Rng, slots: Slot[], spec: ClassSpec, state: CaseState): void {
  const addrRegs = new Set<number>();
  const addr = slots.map((s) => s.t.addr?.(s.f) ?? null);
  for (let i = 0; i < slots.length; i++) {
    const a = addr[i];
    if (!a || a.pcrel) continue;
    const f = slots[i]!.f;
    f[a.base] = pickX(g, false, addrRegs);
    addrRegs.add(f[a.base]!);
    if (a.index) {
      f[a.index.field] = pickX(g, false, addrRegs);
      addrRegs.add(f[a.index.field]!);
    }
    if (a.extra) {
      // e.g. the post-index register of SIMD loads: any value, but not a data register
      for (const e of a.extra) {
        if (f[e] === undefined) {
          f[e] = pickX(g, false, addrRegs);
          addrRegs.add(f[e]!);
        }
      }
    }
  }
  for (const s of slots) {
    const p = parse(s.t.p);
    const zr = typeof s.t.zr === "function" ? s.t.zr(s.f) : (s.t.zr ?? []);
    const used = new Set<number>(addrRegs);
    for (const fs of p.fields) {
      if (s.f[fs.name] !== undefined) continue;
      const gen = s.t.f?.[fs.name];
      if (X_FIELDS.has(fs.name)) {
        let r: number;
        if (gen !== undefined) {
          r = 0;
          const pair = s.t.pairRegs?.includes(fs.name) ?? false;
          for (let tries = 0; tries < 50; tries++) {
            r = typeof gen === "function" ? gen(g, s.f) : g.pick(gen);
            const clash = (q: number) =>
              q !== 31 && (addrRegs.has(q) || (spec.distinct === true && used.has(q)));
            if (!clash(r) && !(pair && clash(r + 1))) break;
          }
          if (pair) used.add(r + 1);
        } else r = pickX(g, zr.includes(fs.name), spec.distinct ? used : addrRegs);
        s.f[fs.name] = r;
        if (spec.distinct && r !== 31) used.add(r);
      } else if (V_FIELDS.has(fs.name)) {
        s.f[fs.name] =
          gen !== undefined
            ? typeof gen === "function"
              ? gen(g, s.f)
              : g.pick(gen)
            : g.chance(0.5)
              ? g.int(8)
              : g.int(32);
      }
    }
  }
  // Point the bases (and indexes) into the window.
  for (let i = 0; i < slots.length; i++) {
    const a = addr[i];
    const s = slots[i]!;
    if (!a) {
      s.t.fix?.(g, s.f, state, -1);
      continue;
    }
    const f = s.f;
    const span = Math.max(a.size, 1);
    let slot = g.int(WINDOW_SIZE - span + 1);
    if (g.chance(a.alignBias ?? 0.85)) slot -= slot % a.align;
    if (a.pcrel) {
      // PC-relative literal: word-aligned, aimed from this instruction into the window
      slot -= slot % 4;
      f[a.pcrel] = (WINDOW + slot - (CODE + 4 * i)) / 4;
      s.t.fix?.(g, f, state, slot);
      continue;
    }
    let delta = a.off;
    if (a.index) {
      const ix = f[a.index.field]!;
      const k = g.range(-64, 64);
      let e = k;
      const shifted = e * 2 ** a.index.shift;
      if (a.index.kind === "uxtw") {
        e = Math.abs(k);
        state.x[2 * ix] = e;
        state.x[2 * ix + 1] = g.u32(); // ignored by the extend
        delta += e * 2 ** a.index.shift;
      } else if (a.index.kind === "sxtw") {
        state.x[2 * ix] = e >>> 0;
        state.x[2 * ix + 1] = g.u32();
        delta += shifted;
      } else {
        state.x[2 * ix] = e >>> 0;
        state.x[2 * ix + 1] = e < 0 ? 0xffffffff : 0;
        delta += shifted;
      }
    }
    const base = WINDOW + slot - delta;
    const bi = f[a.base]!;
    state.x[2 * bi] = base >>> 0;
    state.x[2 * bi + 1] = 0;
    s.t.fix?.(g, f, state, slot);
  }
}

/** Absolute address of instruction `i` of a case (for register branch targets). */
export function codeAddress(i: number): number {
  return CODE + 4 * i;
}

setHooks({ fill: fillFields, assign: assignRegisters, encode, seq: genSequence });
