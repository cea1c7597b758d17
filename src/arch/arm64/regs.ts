/**
 * Register-number to state-index mapping, dependency-free so instruction tables can use
 * it at module load time (they are imported by cpu.ts through isa.ts).
 */
import { I } from "./state.ts";

/** u32 index of Xn for reads where 31 means XZR (a slot that is always zero). */
export function xr(n: number): number {
  return n === 31 ? I.ZERO : n * 2;
}

/** u32 index of Xn for writes where 31 means XZR (a discard slot). */
export function xw(n: number): number {
  return n === 31 ? I.DISCARD : n * 2;
}
