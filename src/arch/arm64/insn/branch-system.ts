import type { Pattern } from "../decoder.ts";

export const BRANCH_SYSTEM: Pattern[] = [];
