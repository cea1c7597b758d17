import type { Pattern } from "../decoder.ts";

export const FP_SCALAR: Pattern[] = [];
