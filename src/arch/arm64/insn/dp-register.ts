import type { Pattern } from "../decoder.ts";

export const DP_REGISTER: Pattern[] = [];
