import type { Pattern } from "../decoder.ts";

export const SIMD_LOAD_STORE: Pattern[] = [];
