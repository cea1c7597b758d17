/**
 * Mutators shared by the targets: bytes (bit flips, interesting integers at any width,
 * inserted, deleted and repeated ranges, truncation) and JSON values (a value at a random
 * path replaced by one of another type or a boundary number, a key deleted or added, an
 * array grown or shrunk). Every choice comes from the Rng given, so an input is a function
 * of its seed.
 */

import { concat } from "../../src/vmm/snapshot/format.ts";
import type { Rng } from "../difftest/prng.ts";

/** Integers at the edges of the widths parsers read (and a few plain ones). */
export const INTERESTING_U32 = [
  0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 511, 512, 1023, 1024, 4095, 4096, 4097,
  0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x1000000, 0x40000000,
];

export function interestingU32(rng: Rng): number {
  return rng.chance(0.7) ? rng.pick(INTERESTING_U32) : rng.u32();
}

/** One random edit of `b` (a new array; `b` is untouched). */
export function mutateBytes(b: Uint8Array, rng: Rng): Uint8Array {
  const out = b.slice();
  const n = out.length;
  const at = () => rng.int(Math.max(1, n));
  switch (rng.int(n === 0 ? 2 : 9)) {
    case 0: {
      // insert random bytes
      const k = rng.chance(0.8) ? rng.range(1, 8) : rng.range(9, 300);
      const ins = new Uint8Array(k);
      for (let i = 0; i < k; i++) ins[i] = rng.int(256);
      const p = rng.int(n + 1);
      return concatBytes(out.subarray(0, p), ins, b.subarray(p));
    }
    case 1:
      return n === 0 ? new Uint8Array([rng.int(256)]) : out.subarray(0, rng.int(n));
    case 2:
      out[at()]! ^= 1 << rng.int(8);
      return out;
    case 3:
      out[at()] = rng.pick([0, 1, 0x7f, 0x80, 0xff, rng.int(256)]);
      return out;
    case 4: {
      // an interesting integer at a random width and offset, little-endian
      const width = rng.pick([2, 4, 8]);
      const p = rng.int(Math.max(1, n - width + 1));
      const v = interestingU32(rng);
      for (let i = 0; i < width && p + i < n; i++)
        out[p + i] = i < 4 ? (v >>> (8 * i)) & 0xff : rng.chance(0.5) ? 0 : 0xff;
      return out;
    }
    case 5: {
      // delete a range
      const p = at();
      const k = Math.min(n - p, rng.chance(0.8) ? rng.range(1, 16) : rng.range(1, n));
      return concatBytes(b.subarray(0, p), b.subarray(p + k));
    }
    case 6: {
      // repeat a range
      const p = at();
      const k = Math.min(n - p, rng.range(1, 64));
      return concatBytes(b.subarray(0, p + k), b.subarray(p, p + k), b.subarray(p + k));
    }
    case 7: {
      // a run of random bytes
      const p = at();
      for (let i = p; i < Math.min(n, p + rng.range(1, 32)); i++) out[i] = rng.int(256);
      return out;
    }
    default: {
      // several bit flips
      for (let k = rng.range(2, 8); k > 0; k--) out[at()]! ^= 1 << rng.int(8);
      return out;
    }
  }
}

/** format.ts's concat, spread: the fuzzers join frames piece by piece. */
export const concatBytes = (...parts: Uint8Array[]): Uint8Array => concat(parts);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A value of any JSON type, biased to the ones parsers get wrong. */
export function interestingJson(rng: Rng, like?: unknown): Json {
  const k = rng.int(22);
  if (typeof like === "number" && k < 8) {
    return rng.pick([like + 1, like - 1, -like, like * 2, like + 0.5, 2 ** 32 + like, -1, 0]);
  }
  if (typeof like === "string" && k < 6) {
    return rng.pick([
      "",
      `${like}x`,
      like.slice(0, -1),
      like.toUpperCase(),
      "0x" + like,
      like + like,
      `-${like}`,
    ]);
  }
  switch (k) {
    case 8:
      return null;
    case 9:
      return rng.chance(0.5);
    case 10:
      return rng.pick([
        0,
        -1,
        1,
        0.5,
        -0.5,
        1e308,
        -1e308,
        2 ** 53,
        2 ** 53 + 2,
        -(2 ** 53),
        2 ** 31,
        2 ** 32,
      ]);
    case 11:
      return interestingU32(rng);
    case 12:
      return rng.pick(["", "x", "0", "-1", "1e3", "0x10", "NaN", "Infinity", "null", "true", "\u0000", "💥"]);
    case 13:
      return "a".repeat(rng.pick([100, 1000, 70000]));
    case 14:
      return [];
    case 15:
      return {};
    case 16:
      return [interestingJson(rng), interestingJson(rng)];
    case 17:
      return { [rng.pick(["x", "__proto__", "constructor", "length", "0"])]: interestingJson(rng) };
    case 18: {
      let v: Json = 1;
      for (let d = rng.range(10, 200); d > 0; d--) v = [v];
      return v;
    }
    case 19:
      return rng.u32() - 2 ** 31;
    case 20:
      return String(rng.u32());
    default:
      return Array.from({ length: rng.pick([0, 1, 2, 3, 8, 33, 1000]) }, () => rng.int(256));
  }
}

/** Paths to every value inside `v` (the root is []). */
function paths(
  v: unknown,
  at: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(at);
  if (out.length > 5000) return out;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) paths(v[i], [...at, i], out);
  } else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  }
  return out;
}

/** Every leaf path and container path of `v`, for a mutator that wants to aim. */
export function jsonPaths(v: unknown): (string | number)[][] {
  return paths(v);
}

/** One random edit of a JSON value (a deep copy is returned). */
export function mutateJson(value: unknown, rng: Rng): unknown {
  const root = structuredClone(value) as Json;
  const all = paths(root);
  const path = rng.pick(all);
  if (path.length === 0) return rng.chance(0.5) ? interestingJson(rng, root) : root;
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1]!;
  let parent: Json = root;
  for (const p of parentPath) parent = (parent as Record<string | number, Json>)[p]!;
  const container = parent as Record<string | number, Json> & Json[];
  const old = container[key];
  switch (rng.int(6)) {
    case 0:
      // delete the key / element
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[key];
      break;
    case 1:
      // add a sibling
      if (Array.isArray(container)) container.splice(key as number, 0, interestingJson(rng, old));
      else {
        // defineProperty, so that "__proto__" becomes a key of its own (as JSON.parse makes it)
        Object.defineProperty(container, rng.pick(["extra", `${key}_`, "__proto__", ""]), {
          value: interestingJson(rng),
          enumerable: true,
          configurable: true,
          writable: true,
        });
      }
      break;
    case 2:
      // swap with another value of the same container (or duplicate it)
      if (Array.isArray(container) && container.length > 1) {
        const j = rng.int(container.length);
        [container[key as number], container[j]] = [container[j]!, container[key as number]!];
      } else container[key] = structuredClone(old) ?? null;
      break;
    default:
      container[key] = interestingJson(rng, old);
  }
  return root;
}
