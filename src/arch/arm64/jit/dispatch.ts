/**
 * The jump cache and the dispatcher: how a translated block that leaves for a PC it does
 * not know at translation time (an indirect branch, a return, a branch to another page)
 * continues into that PC's translation without returning to the interpreter, as QEMU's
 * `lookup_and_goto_ptr` does, when that translation is in the same module (a module's
 * functions are in its own table; before the dispatcher, 21 M of the 37 M entries into
 * translated code over the first 300 M instructions of Linux's boot followed a block of the
 * same module). A target in another module returns to the hub (jit/hub.ts), which calls
 * it; one not in the jump cache returns to the interpreter.
 *
 * The jump cache lives in the vCPU's state block (state.ts OFF.JIT_JUMPS): 16384 entries
 * of four words, indexed by PC[15:2] (with 4096, blocks 16 KiB apart in Debian's kernel
 * evicted each other: 224 k of 688 k returns to the interpreter in the first 300 M
 * instructions of its boot were such misses):
 *
 *   0, 1  PC (lo, hi) of the block's first instruction; word 0 = 1 (no aligned PC): empty
 *   2     host byte offset of the block's page | PSTATE.M the block was translated for;
 *         -1 in an empty entry (M = 0b1111 is no AArch64 mode), so that a misaligned PC
 *         equal to an empty entry's words 0 and 1 still never enters a stale block
 *   3     the block's number (its index in the hub's table, jit/hub.ts) << 11 | its length
 *
 * The interpreter fills an entry each time it enters a translation (cpu.ts), the
 * translator when it installs one. The dispatcher enters the entry's block only when
 * everything the interpreter checks before entering it holds: the PC is the entry's; the
 * current instruction-fetch translation of that PC (the fetch tag of the TLB regime of
 * PSTATE.M's EL) is the page the block was translated from, under the same PSTATE.M (so
 * the same EL, stack pointer and regime); and the budget holds the block whole. The block
 * itself then checks its words, as on every entry. Anything else returns to the
 * interpreter: for a block of another module, to the hub (jit/hub.ts), with that block's
 * jump word in OFF.JIT_NEXT so that it calls it at once; otherwise to the interpreter, which
 * looks the PC up the slow way. Interrupts need no check here: nothing
 * that makes one takeable can happen without a helper asking the block to stop (cpu.ts).
 */
import { OFF, PSTATE } from "../state.ts";
import { TLB } from "../tlb.ts";
import { FuncBody, OP, T, VOID } from "./wasm.ts";

export const JUMPS = {
  OFFSET: OFF.JIT_JUMPS,
  ENTRIES: 16384,
  ENTRY_BYTES: 16,
  /** Bits of word 3 holding the block's length (at most 1024 instructions: one page). */
  LEN_BITS: 11,
  /** Block numbers (word 3's top 21 bits) a code cache uses before its translations are flushed. */
  BLOCKS: 1 << 21,
  /** Words 0 and 2 of an empty entry. */
  EMPTY: 1,
  NO_HOST: -1,
} as const;

/** Byte offset in the vCPU block of the jump-cache entry of PC[31:0] = `lo`. */
export function jumpEntry(lo: number): number {
  return JUMPS.OFFSET + ((lo >>> 2) & (JUMPS.ENTRIES - 1)) * JUMPS.ENTRY_BYTES;
}

/** Word 3 of the jump-cache entry of block number `block`, `len` long. */
export function jumpWord(block: number, len: number): number {
  return (block << JUMPS.LEN_BITS) | len | 0;
}

/**
 * The dispatcher of the module holding blocks `first` .. `first + count - 1`, a function
 * of the block type `(state, left, count) -> count` that every module defines: PC is in
 * the state block; it tail-calls the translation of PC through the module's table (table
 * 0, type index `typeIndex`, block `first` at index 0) or returns `count`.
 */
export function dispatcherBody(typeIndex: number, first: number, count: number): FuncBody {
  const f = new FuncBody(3);
  const pc = f.local(T.i64);
  const e = f.local(T.i32);
  const m = f.local(T.i32);
  const t = f.local(T.i32);
  const w = f.local(T.i32);
  // e = state + the entry of PC; the entry's PC must be PC.
  f.get(0).mem(OP.i64_load, OFF.PC).set(pc);
  f.get(0)
    .get(pc)
    .op(OP.i32_wrap_i64)
    .i32(2)
    .op(OP.i32_shr_u)
    .i32(JUMPS.ENTRIES - 1)
    .op(OP.i32_and)
    .i32(4)
    .op(OP.i32_shl)
    .op(OP.i32_add)
    .i32(JUMPS.OFFSET)
    .op(OP.i32_add)
    .tee(e)
    .mem(OP.i64_load, 0)
    .get(pc)
    .op(OP.i64_ne);
  f.op(OP.if).byte(VOID).get(2).op(OP.return).op(OP.end);
  // m = PSTATE.M; t = state + the TLB entry of PC in the regime of M's EL.
  f.get(0).mem(OP.i32_load, OFF.PSTATE).i32(PSTATE.M).op(OP.i32_and).set(m);
  f.get(0)
    .get(pc)
    .op(OP.i32_wrap_i64)
    .i32(12 - 6) // the set index times ENTRY_BYTES (64)
    .op(OP.i32_shr_u)
    .i32(TLB.INDEX_MASK << 6)
    .op(OP.i32_and)
    .op(OP.i32_add)
    .i32(TLB.REGIME_WORDS * 4)
    .i32(0)
    .get(m)
    .i32(4) // EL >= 1
    .op(OP.i32_ge_u)
    .op(OP.select)
    .op(OP.i32_add)
    .set(t);
  // The fetch tag must be PC's page, and the page and mode those of the block.
  f.get(t)
    .mem(OP.i64_load, OFF.TLB + TLB.TAG * 4 + 2 * 2 * 4)
    .get(pc)
    .i64(~0xfffn)
    .op(OP.i64_and)
    .op(OP.i64_ne);
  f.get(t)
    .mem(OP.i32_load, OFF.TLB + TLB.HOST * 4)
    .get(m)
    .op(OP.i32_or)
    .get(e)
    .mem(OP.i32_load, 8)
    .op(OP.i32_ne)
    .op(OP.i32_or);
  // The budget must hold the block whole.
  f.get(e).mem(OP.i32_load, 12).tee(w);
  f.i32((1 << JUMPS.LEN_BITS) - 1)
    .op(OP.i32_and)
    .get(2)
    .op(OP.i32_add)
    .get(1)
    .op(OP.i32_gt_u)
    .op(OP.i32_or);
  f.op(OP.if).byte(VOID).get(2).op(OP.return).op(OP.end);
  // A block of another module: the hub (jit/hub.ts) calls it next (OFF.JIT_NEXT); this
  // module's: a tail call. t = its index in this module (unsigned: below `count` if ours).
  f.get(w).i32(JUMPS.LEN_BITS).op(OP.i32_shr_u).i32(first).op(OP.i32_sub).tee(t).i32(count).op(OP.i32_ge_u);
  f.op(OP.if).byte(VOID);
  f.get(0).get(w).mem(OP.i32_store, OFF.JIT_NEXT);
  f.get(2).op(OP.return);
  f.op(OP.end);
  f.get(0).get(1).get(2).get(t);
  f.op(OP.return_call_indirect).u32(typeIndex).u32(0);
  return f;
}
