import type { Pattern } from "../decoder.ts";

export const SIMD_PERMUTE: Pattern[] = [];
