/**
 * Recorded vectors: test/vectors/CLASS.jsonl.gz. Line 1 is a header; every other line is
 * one case: its seed (the initial state is regenerated from it), its words (hex, checked
 * against the regenerated ones) and the reference's delta (see delta.ts).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { Delta } from "./delta.ts";

export interface VectorHeader {
  format: "armbox-difftest-1";
  cls: string;
  cpu: string;
  seed: number;
  count: number;
  qemu: string;
}
export interface Vector extends Delta {
  /** Case seed. */
  s: number;
  /** Instruction words, hex. */
  w: string[];
}

export function readVectors(file: string): { header: VectorHeader; vectors: Vector[] } {
  const lines = gunzipSync(readFileSync(file))
    .toString("utf8")
    .split("\n")
    .filter((l) => l.length > 0);
  const header = JSON.parse(lines[0]!) as VectorHeader;
  return { header, vectors: lines.slice(1).map((l) => JSON.parse(l) as Vector) };
}

export function vectorFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl.gz"))
    .sort()
    .map((f) => join(dir, f));
}
