/**
 * The A64 instruction set as implemented: every class's pattern table, in the order the
 * decoder tries them. Compiled once, on first use.
 */
import { compileDecoder, type Decoder, type Feature, type Pattern } from "./decoder.ts";
import { BRANCH_SYSTEM } from "./insn/branch-system.ts";
import { DP_IMMEDIATE } from "./insn/dp-immediate.ts";
import { DP_REGISTER } from "./insn/dp-register.ts";
import { FP_SCALAR } from "./insn/fp-scalar.ts";
import { LOAD_STORE } from "./insn/load-store.ts";
import { ATOMIC_PATTERNS } from "./insn/load-store-atomic.ts";
import { SIMD_FP } from "./insn/simd-fp.ts";
import { SIMD_INTEGER } from "./insn/simd-integer.ts";
import { SIMD_LOAD_STORE } from "./insn/simd-load-store.ts";
import { SIMD_PERMUTE } from "./insn/simd-permute.ts";
import { SYSREG_BY_NAME } from "./sysregs.ts";

/**
 * The tables in decode order. A function, not a constant: the tables' modules import the
 * CPU, which imports this one, so whichever a program imports first, they are read only
 * once everything has loaded.
 */
export function tables(): readonly (readonly Pattern[])[] {
  return [
    DP_IMMEDIATE,
    DP_REGISTER,
    BRANCH_SYSTEM,
    LOAD_STORE,
    ATOMIC_PATTERNS,
    FP_SCALAR,
    SIMD_INTEGER,
    SIMD_PERMUTE,
    SIMD_FP,
    SIMD_LOAD_STORE,
  ];
}

/** A 4-bit ID register field of the register's reset value. */
function idField(reg: string, lsb: number): number {
  const r = SYSREG_BY_NAME.get(reg);
  if (r === undefined) throw new Error(`isa: no ID register ${reg}`);
  const v = (BigInt(r.reset[1]) << 32n) | BigInt(r.reset[0]);
  return Number((v >> BigInt(lsb)) & 15n);
}

/**
 * The optional features the ID registers advertise (Arm ARM D19.2): the decoder accepts
 * an instruction of a feature only when its field says it is there, so a guest that
 * probes the ID registers and one that just tries the instruction see the same CPU.
 */
export function advertisedFeatures(): ReadonlySet<Feature> {
  const f = new Set<Feature>();
  if (idField("ID_AA64PFR0_EL1", 16) !== 15) f.add("FP");
  if (idField("ID_AA64PFR0_EL1", 20) !== 15) f.add("AdvSIMD");
  if (idField("ID_AA64ISAR0_EL1", 20) >= 2) f.add("LSE");
  if (idField("ID_AA64ISAR0_EL1", 16) >= 1) f.add("CRC32");
  if (idField("ID_AA64ISAR1_EL1", 20) >= 1) f.add("LRCPC");
  return f;
}

let decoder: Decoder | null = null;
export function getDecoder(): Decoder {
  decoder ??= compileDecoder(tables(), advertisedFeatures());
  return decoder;
}
