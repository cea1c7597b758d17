/**
 * Kinds of memory access passed to the translation hook and Cpu.hostOffset. A module of
 * its own, with no imports, so instruction tables can use it without loading cpu.ts.
 */
export const ACC = { READ: 0, WRITE: 1, FETCH: 2 } as const;

/** Kinds of cache maintenance by VA, for their permission rules (Arm ARM D7.5.9). */
export const CMO = { CLEAN: 0, INVALIDATE: 1 } as const;
