/**
 * Translates one interpreter block (cpu.ts: a straight run of one page up to the first
 * instruction of the branch/system class) into one WebAssembly function
 * `(state base: i32, budget: i32, count so far: i32) -> count: i32`. Without write
 * tracking the function first checks that the block's words are still the ones it was
 * translated from (returning the count unchanged if not: the caller drops it and
 * interprets); then it runs the block, loops or chains into the next translation while
 * the budget holds it, and returns how many instructions completed in all. A helper may
 * ask it to stop early (an interrupt line moved, an exit). An exception thrown by a
 * helper unwinds through it with PC and registers exact.
 */
import { getDecoder } from "../isa.ts";
import { OFF } from "../state.ts";
import {
  type BlockContext,
  directBranchOffset,
  type Emitter,
  flagsSafe,
  GPR_EMITTERS,
  HELPER,
  isDcZva,
  leave,
} from "./emit.ts";
import { ATOMIC_EMITTERS } from "./emit-atomic.ts";
import { SIMD_EMITTERS } from "./emit-simd.ts";
import { LazyFlags } from "./flags.ts";
import { RegisterCache } from "./registers.ts";
import { FuncBody, OP, T, VOID } from "./wasm.ts";

export interface BlockSource {
  /** The instruction words of the block, in order. */
  readonly words: readonly number[];
  /** Byte offset in the memory of the first word (the words are checked there at entry). */
  readonly host: number;
  /** PC of the first instruction (lo, hi). */
  readonly pcLo: number;
  readonly pcHi: number;
  /** Byte offset of the SP in use in the state block, and the TLB regime's byte offset. */
  readonly spOff: number;
  readonly tlbRegimeBytes: number;
  /** CPACR_EL1.FPEN bits SIMD&FP instructions need at the block's EL (0: always enabled). */
  readonly fpenMask: number;
  /** Its exception level. */
  readonly el: number;
  /** Stores to its page are tracked (jit.ts `translated`): no word is checked, on entry or after a store. */
  readonly tracked: boolean;
}

/**
 * Emits the function for `src`. `execId(insn)` returns the index, in the module's table of
 * interpreter executors, of the executor for `insn` (for the instructions without an
 * emitter). Returns the body and how many instructions were emitted inline.
 */
/**
 * Every emitter, by the name of the instruction in the decode table (isa.ts): the table
 * says what an encoding is (and whether the CPU has it: a feature the ID registers do not
 * advertise leaves its encodings UNDEFINED, with no name), the emitter how to translate it.
 */
const EMITTERS: ReadonlyMap<string, Emitter> = new Map([
  ...GPR_EMITTERS,
  ...ATOMIC_EMITTERS,
  ...SIMD_EMITTERS,
]);

/** The names that have an emitter (for the test that they are all the table's). */
export const EMITTED_NAMES: readonly string[] = [...EMITTERS.keys()];

/** The emitter for `insn`, or null: the interpreter's executor runs it. */
export function emitter(insn: number): Emitter | null {
  const name = getDecoder().nameOf(insn);
  return (name === null ? undefined : EMITTERS.get(name)) ?? null;
}

/**
 * Whether `insn`, the last of a block of `len` words, is a direct branch (B, B.cond,
 * CBZ/CBNZ, TBZ/TBNZ) to the block's first word: the block loops on itself.
 */
function branchesToStart(insn: number, len: number): boolean {
  // BL leaves the block (it links): no loop.
  if ((insn & 0xfc00_0000) >>> 0 === 0x9400_0000) return false;
  return directBranchOffset(insn) === -(len - 1) * 4;
}

/**
 * The general-purpose registers the instructions' register fields name (slot 31: the
 * stack pointer, which is what 31 names where it is not the zero register), for
 * `RegisterCache.beforeLoop`. More than are read (a destination, a SIMD&FP register's
 * number) costs one load per entry, not per iteration.
 */
function registersNamed(words: readonly number[]): Set<number> {
  const slots = new Set<number>();
  const decoder = getDecoder();
  for (const w of words) {
    const fields = decoder.patternOf(w)?.fields;
    if (fields === undefined) continue;
    for (const name of REGISTER_FIELDS) {
      const v = fields[name];
      if (v !== undefined) slots.add(v);
    }
  }
  return slots;
}
const REGISTER_FIELDS = ["Rn", "Rm", "Rd", "Rt", "Rt2", "Ra", "Rs"] as const;

export function translateBlock(
  src: BlockSource,
  execId: (insn: number) => number,
  chain: (lo: number) => { fn: number; len: number } | null,
  fns: { readonly dispatch: number; readonly slowLoad: number; readonly slowStore: number },
): { body: FuncBody; inline: number } {
  const f = new FuncBody(3);
  const count = f.local(T.i32);
  // The shared exit's instruction count (the block ends after instruction ek - 1).
  const ek = f.local(T.i32);
  const startWord = (src.pcLo >>> 2) | 0;
  let exitUsed = false;
  const vlocals: number[] = [];
  const x: BlockContext = {
    f,
    // The block's straight-line code is inside the exit block and its loop: depth 2.
    regs: new RegisterCache(f, src.spOff, 2),
    flags: new LazyFlags(f, 2),
    pc: src.pcLo,
    pcHi: src.pcHi,
    spOff: src.spOff,
    tlbRegimeBytes: src.tlbRegimeBytes,
    index: 0,
    startLo: src.pcLo,
    len: src.words.length,
    count,
    left: 1,
    startWord,
    dispatch: fns.dispatch,
    slowLoad: fns.slowLoad,
    slowStore: fns.slowStore,
    chain,
    ret(k: number): void {
      f.get(count);
      if (k !== 0) f.i32(k).op(OP.i32_add);
      f.op(OP.return);
    },
    exitAfter(): void {
      exitUsed = true;
      // The exit block is opened first: at depth d it is label d - 1.
      f.i32(x.index + 1).set(ek);
      f.byte(OP.br).u32(f.depth - 1);
    },
    a: f.local(T.i64),
    b: f.local(T.i64),
    res: f.local(T.i64),
    va: f.local(T.i64),
    e: f.local(T.i32),
    stop: f.local(T.i32),
    v2: f.local(T.i64),
    h: f.local(T.i32),
    h2: f.local(T.i32),
    vtmp(i: number): number {
      while (vlocals.length <= i) vlocals.push(f.local(T.v128));
      return vlocals[i]!;
    },
    fpenMask: src.fpenMask,
    el: src.el,
    tracked: src.tracked,
    host: src.host,
    laterWordsChanged(): void {
      for (let k = x.index + 1; k < src.words.length; k++) {
        f.i32(src.host + k * 4)
          .mem(OP.i32_load, 0)
          .i32(src.words[k]! | 0)
          .op(OP.i32_xor);
        if (k > x.index + 1) f.op(OP.i32_or);
      }
    },
    fallback(insn: number): void {
      x.flags.flush();
      f.i32(execId(insn)).i32(x.pc).call(HELPER.EXEC);
      x.regs.afterExecutor();
      // A load/store-class executor may have stored over a later word of the block (with
      // write tracking, such a store ends the block itself).
      if (!src.tracked && (((insn >>> 25) & 5) === 4 || isDcZva(insn)) && x.index + 1 < src.words.length) {
        x.laterWordsChanged();
        f.op(OP.i32_or);
      }
      f.op(OP.if).byte(VOID);
      x.ret(x.index + 1);
      f.op(OP.end);
    },
  };
  // The words are what they were: OR of (word ^ expected) over the block is zero. A
  // block that may store (or run an executor, which may) checks again on each iteration.
  const check = () => {
    src.words.forEach((w, k) => {
      f.i32(src.host + k * 4)
        .mem(OP.i32_load, 0)
        .i32(w | 0)
        .op(OP.i32_xor);
      if (k > 0) f.op(OP.i32_or);
    });
    f.op(OP.if).byte(VOID);
    x.ret(0);
    f.op(OP.end);
  };
  const emitters = src.words.map(emitter);
  const mayStore = src.words.some((w, k) => emitters[k] === null || ((w >>> 25) & 5) === 4);
  // count = what the blocks chaining here completed; helpers see count - startWord.
  f.get(2).set(count);
  // Only helpers read JIT_COUNT: a block that calls none drops this store at the end.
  const countStore = f.length;
  f.get(0).get(count).i32(startWord).op(OP.i32_sub).mem(OP.i32_store, OFF.JIT_COUNT);
  const countStoreEnd = f.length;
  // With write tracking no entry checks the words: a store to the page (any vCPU's, any
  // path) or a write of the VMM's (Vm.markDirty) drops the translation first, and a store
  // from the running block ends it after the store.
  if (!src.tracked && !mayStore) check();
  f.op(OP.block).byte(VOID);
  if (branchesToStart(src.words[src.words.length - 1]!, src.words.length)) {
    x.regs.beforeLoop(registersNamed(src.words));
  }
  f.op(OP.loop).byte(VOID);
  if (!src.tracked && mayStore) check();
  let inline = 0;
  let lastInline = false;
  src.words.forEach((w, k) => {
    x.index = k;
    x.pc = (src.pcLo + k * 4) >>> 0;
    const em = emitters[k] ?? null;
    // Pending flags are written before anything but the pure data-processing emitters
    // (which call nothing and never leave) and the branches (which write them themselves).
    if (em === null || !flagsSafe(em)) x.flags.flush();
    lastInline = em?.(x, w) === true;
    if (lastInline) inline++;
    else x.fallback(w);
  });
  const n = src.words.length;
  if (lastInline) {
    // The block ended at the page's end with an instruction that does not branch.
    x.flags.flush();
    const next = (BigInt(src.pcHi >>> 0) << 32n) + BigInt((src.pcLo + n * 4) >>> 0);
    f.get(0).i64(BigInt.asIntN(64, next)).mem(OP.i64_store, OFF.PC);
    x.index = n - 1;
    leave(x);
  } else {
    // The block ends with an instruction its executor ran (MSR, SYS, ERET, SVC, ...), which
    // wrote PC and asked for a return to the interpreter (fallback) if anything the
    // interpreter checks between blocks changed: an interrupt that may be taken, the EL,
    // the translation regime, debug, an exit. Otherwise the dispatcher goes on.
    x.index = n - 1;
    leave(x);
  }
  f.op(OP.end); // loop
  f.op(OP.unreachable);
  f.op(OP.end); // the exit block: PC = the block's start + 4 * ek, and count + ek.
  if (exitUsed) {
    const start = (BigInt(src.pcHi >>> 0) << 32n) + BigInt(src.pcLo >>> 0);
    f.get(0).i64(BigInt.asIntN(64, start)).get(ek).op(OP.i64_extend_i32_u).i64(2n).op(OP.i64_shl);
    f.op(OP.i64_add).mem(OP.i64_store, OFF.PC);
    f.get(count).get(ek).op(OP.i32_add);
  } else f.op(OP.unreachable); // nothing branches to the exit block
  if (!f.calls) f.cut(countStore, countStoreEnd);
  return { body: f, inline };
}
