/**
 * The A64 instruction set as implemented: every class's pattern table, in the order the
 * decoder tries them. Compiled once, on first use.
 */
import { compileDecoder, type Decoder, type Pattern } from "./decoder.ts";
import { BRANCH_SYSTEM } from "./insn/branch-system.ts";
import { DP_IMMEDIATE } from "./insn/dp-immediate.ts";
import { DP_REGISTER } from "./insn/dp-register.ts";
import { FP_SCALAR } from "./insn/fp-scalar.ts";
import { LOAD_STORE } from "./insn/load-store.ts";
import { SIMD_FP } from "./insn/simd-fp.ts";
import { SIMD_INTEGER } from "./insn/simd-integer.ts";
import { SIMD_LOAD_STORE } from "./insn/simd-load-store.ts";
import { SIMD_PERMUTE } from "./insn/simd-permute.ts";

export const TABLES: readonly (readonly Pattern[])[] = [
  DP_IMMEDIATE,
  DP_REGISTER,
  BRANCH_SYSTEM,
  LOAD_STORE,
  FP_SCALAR,
  SIMD_INTEGER,
  SIMD_PERMUTE,
  SIMD_FP,
  SIMD_LOAD_STORE,
];

let decoder: Decoder | null = null;
export function getDecoder(): Decoder {
  decoder ??= compileDecoder(TABLES);
  return decoder;
}
