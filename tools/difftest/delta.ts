/**
 * A case's result as a delta from its initial state: the outcome, where execution
 * stopped, and only the registers, flags and memory bytes that changed. This is what
 * the recorded vectors store and what both sides are compared by.
 */
import type { Case, CaseResult, Outcome } from "./layout.ts";

export interface Delta {
  /** Outcome. */
  o: Outcome;
  /** Index of the instruction where execution stopped (words.length = ran to the end). */
  p: number;
  /** Changed X registers: index -> 16 hex digits. */
  x?: Record<string, string>;
  /** Changed V registers: index -> 32 hex digits (little-endian byte order: byte 0 first). */
  v?: Record<string, string>;
  /** NZCV (bits 31:28 as one hex digit) when changed. */
  n?: number;
  /** FPSR when non-zero. */
  f?: number;
  /** Changed memory: [window offset, hex bytes] runs. */
  m?: [number, string][];
}

export const hex = (v: number, digits: number): string => (v >>> 0).toString(16).padStart(digits, "0");
export const xHex = (x: Uint32Array, i: number): string => hex(x[2 * i + 1]!, 8) + hex(x[2 * i]!, 8);
export function bytesHex(b: Uint8Array, off: number, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) s += hex(b[off + i]!, 2);
  return s;
}

export function toDelta(c: Case, r: CaseResult): Delta {
  const d: Delta = { o: r.outcome, p: r.pcIndex };
  const s = c.state;
  for (let i = 0; i < 31; i++) {
    if (r.x[2 * i] !== s.x[2 * i] || r.x[2 * i + 1] !== s.x[2 * i + 1]) (d.x ??= {})[i] = xHex(r.x, i);
  }
  for (let i = 0; i < 32; i++) {
    let same = true;
    for (let k = 0; k < 16; k++) if (r.v[16 * i + k] !== s.v[16 * i + k]) same = false;
    if (!same) (d.v ??= {})[i] = bytesHex(r.v, 16 * i, 16);
  }
  if (r.nzcv >>> 28 !== s.nzcv >>> 28) d.n = r.nzcv >>> 28;
  if (r.fpsr !== 0) d.f = r.fpsr;
  let i = 0;
  const mem = r.mem;
  while (i < mem.length) {
    if (mem[i] === s.mem[i]) {
      i++;
      continue;
    }
    let j = i;
    // merge runs separated by fewer than 4 equal bytes
    let last = i;
    while (j < mem.length && j - last < 4) {
      if (mem[j] !== s.mem[j]) last = j;
      j++;
    }
    (d.m ??= []).push([i, bytesHex(mem, i, last + 1 - i)]);
    i = last + 1;
  }
  return d;
}

/** Full 'after' view of a delta over the case's initial state, for comparison and printing. */
interface View {
  o: Outcome;
  p: number;
  x: string[];
  v: string[];
  n: number;
  f: number;
  mem: Uint8Array;
}
function view(c: Case, d: Delta): View {
  const s = c.state;
  const x: string[] = [];
  for (let i = 0; i < 31; i++) x.push(d.x?.[i] ?? xHex(s.x, i));
  const v: string[] = [];
  for (let i = 0; i < 32; i++) v.push(d.v?.[i] ?? bytesHex(s.v, 16 * i, 16));
  const mem = s.mem.slice();
  for (const [off, h] of d.m ?? [])
    for (let k = 0; k < h.length / 2; k++) mem[off + k] = Number.parseInt(h.slice(2 * k, 2 * k + 2), 16);
  return { o: d.o, p: d.p, x, v, n: d.n ?? s.nzcv >>> 28, f: d.f ?? 0, mem };
}

/** V register as the usual big-endian hex of the 128-bit value. */
const vBig = (le: string): string => (le.match(/../g) ?? []).reverse().join("");
const nzcvStr = (n: number): string =>
  ["N", "Z", "C", "V"].map((ch, i) => ((n >> (3 - i)) & 1 ? ch : "-")).join("");

/** Lines describing how `ours` differs from `ref` (empty when they agree). */
export function diffDeltas(c: Case, ref: Delta, ours: Delta): string[] {
  const a = view(c, ref);
  const b = view(c, ours);
  const out: string[] = [];
  if (a.o !== b.o || a.p !== b.p) out.push(`outcome: ref ${a.o}@${a.p}  ours ${b.o}@${b.p}`);
  for (let i = 0; i < 31; i++) {
    if (a.x[i] !== b.x[i]) out.push(`X${i}: init ${xHex(c.state.x, i)}  ref ${a.x[i]}  ours ${b.x[i]}`);
  }
  for (let i = 0; i < 32; i++) {
    if (a.v[i] !== b.v[i]) {
      out.push(
        `V${i}: init ${vBig(bytesHex(c.state.v, 16 * i, 16))}\n      ref  ${vBig(a.v[i]!)}\n      ours ${vBig(b.v[i]!)}`,
      );
    }
  }
  if (a.n !== b.n)
    out.push(`NZCV: init ${nzcvStr(c.state.nzcv >>> 28)}  ref ${nzcvStr(a.n)}  ours ${nzcvStr(b.n)}`);
  if (a.f !== b.f) out.push(`FPSR: ref ${hex(a.f, 8)}  ours ${hex(b.f, 8)} (FPCR ${hex(c.state.fpcr, 8)})`);
  const bad: number[] = [];
  for (let i = 0; i < a.mem.length; i++) if (a.mem[i] !== b.mem[i]) bad.push(i);
  if (bad.length) {
    const o = bad[0]! & ~7;
    out.push(
      `memory: ${bad.length} bytes differ, first at window+0x${bad[0]!.toString(16)}; from +0x${o.toString(16)}:` +
        ` init ${bytesHex(c.state.mem, o, 16)}  ref ${bytesHex(a.mem, o, 16)}  ours ${bytesHex(b.mem, o, 16)}`,
    );
  }
  return out;
}

/** Canonical string of a delta (for equality). */
export function deltaKey(d: Delta): string {
  return JSON.stringify([d.o, d.p, d.x ?? {}, d.v ?? {}, d.n ?? -1, d.f ?? 0, d.m ?? []]);
}
