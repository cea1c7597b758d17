import type { Pattern } from "../decoder.ts";

export const LOAD_STORE: Pattern[] = [];
