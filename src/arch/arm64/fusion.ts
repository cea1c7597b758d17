/**
 * Instruction fusion: a flag-setting compare immediately followed by the B.cond that ends
 * its block (`cmp x0, x2; b.ne loop`, the test of nearly every compiled loop) runs as one
 * executor, so the interpreter dispatches once instead of twice. The pair still counts as
 * two instructions, and the architectural effect is exactly that of running them in turn
 * (test/fusion.test.ts checks this against the two ordinary executors). Neither
 * instruction can fault, so there is no state in between to expose.
 */
import { conditionHolds, subs32, subs64 } from "./alu.ts";
import type { Cpu } from "./cpu.ts";
import type { Exec } from "./decoder.ts";
import { jump } from "./insn/branch-system.ts";
import { xr, xw } from "./regs.ts";
import { R64 } from "./ret64.ts";
import { I } from "./state.ts";

/** B.cond: 0101010 0 imm19 0 cond. */
export function isBCond(insn: number): boolean {
  return (insn & 0xff000010) >>> 0 === 0x54000000;
}

/** Steps onto the B.cond (same page: the compare is never a page's last slot) and runs it. */
function branchAfter(c: Cpu, cond: number, off: number): void {
  const pc = c.pcLo + 4;
  c.pcLo = pc;
  c.r[I.PC] = pc + 4;
  if (conditionHolds(c, cond)) jump(c, off);
}

/** SUBS (shifted register) with LSL #0, i.e. SUBS/CMP Rd, Rn, Rm: sf 11 01011 00 0 Rm 000000 Rn Rd. */
const SUBS_REG = { mask: 0x7fe0fc00, value: 0x6b000000 };
/** SUBS (immediate), i.e. SUBS/CMP Rd, Rn|SP, #imm{, lsl #12}: sf 11 100010 sh imm12 Rn Rd. */
const SUBS_IMM = { mask: 0x7f800000, value: 0x71000000 };

/**
 * The fused executor for compare `a` then B.cond `b`, or null when the pair is not one
 * of the fused forms. Called with pcLo at `a` and PC = a + 4, as for any instruction.
 */
export function fuseCompareBranch(a: number, b: number): Exec | null {
  if (!isBCond(b)) return null;
  const cond = b & 15;
  const off = ((b << 8) >> 13) * 4; // imm19, sign-extended
  const sf = a >>> 31 === 1;
  const n = (a >>> 5) & 31;
  const d = xw(a & 31);
  if ((a & SUBS_REG.mask) >>> 0 === SUBS_REG.value) {
    const ni = xr(n); // Rn = 31 is XZR here
    const mi = xr((a >>> 16) & 31);
    if (sf)
      return (c) => {
        const r = c.r;
        subs64(c, r[ni]!, r[ni + 1]!, r[mi]!, r[mi + 1]!);
        r[d] = R64.lo;
        r[d + 1] = R64.hi;
        branchAfter(c, cond, off);
      };
    return (c) => {
      const r = c.r;
      r[d] = subs32(c, r[ni]!, r[mi]!);
      r[d + 1] = 0;
      branchAfter(c, cond, off);
    };
  }
  if ((a & SUBS_IMM.mask) >>> 0 === SUBS_IMM.value) {
    const imm12 = (a >>> 10) & 0xfff;
    const imm = (a >>> 22) & 1 ? imm12 * 4096 : imm12;
    if (sf)
      return (c) => {
        const r = c.r;
        const ni = n === 31 ? c.sp : n * 2; // Rn = 31 is SP here
        subs64(c, r[ni]!, r[ni + 1]!, imm, 0);
        r[d] = R64.lo;
        r[d + 1] = R64.hi;
        branchAfter(c, cond, off);
      };
    return (c) => {
      const r = c.r;
      r[d] = subs32(c, r[n === 31 ? c.sp : n * 2]!, imm);
      r[d + 1] = 0;
      branchAfter(c, cond, off);
    };
  }
  return null;
}
