/**
 * The one way a helper returns a 64-bit value: R64.lo holds bits 31:0 and R64.hi bits
 * 63:32, each an unsigned 32-bit number. Memory loads (ld64), system-register reads,
 * 64-bit multiplies, the FP core (fpcore.ts), the atomics' new values and the saturating
 * SIMD helpers all return through it. The vCPUs of a machine take turns on one thread, so
 * one pair serves them all; a caller reads both halves before it calls the next helper.
 * (There were five conventions, each with its own names: c.vlo/c.vhi, fp.lo/fp.hi,
 * nLo/nHi, mulLo/mulHi, RL/RH.)
 */
export const R64 = { lo: 0, hi: 0 };
