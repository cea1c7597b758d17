/**
 * General-purpose registers read from WebAssembly locals inside a translated block.
 *
 * Writes go through: each sets the local and stores to the state block (state.ts) at
 * once, so the state block is exact at every helper call (a helper may throw the
 * architected exception, and an executor reads and writes the state block) and at every
 * exit, with nothing to write back. Keeping dirty registers in locals and writing them
 * back before each helper call and exit was measured first: the write-backs on every
 * slow path and exit made the code 8% larger and the boot of Debian's kernel 1.07x
 * slower; reading from locals with writes through is 0.97x on `guests/user/bench` and
 * even on the boot (a store to the state block costs little; a load on the critical path
 * is what the locals save).
 *
 * Emission is one pass in program order, so what the cache knows at a point holds on
 * every path that reaches it only where nothing conditional came between. The rules:
 * - a register is *valid* where its local holds its current value;
 * - a read of a register that is not valid, outside any conditional region (`FuncBody`
 *   depth equal to the block's straight-line depth), loads it into its local and makes it
 *   valid; inside one, it is a plain load (the local would be unset on the other paths);
 * - a write sets the local too where the register is valid or the code unconditional;
 * - after an executor, outside conditional regions every register is invalid (the
 *   executor may have written any of them in the state block); inside one, every valid
 *   register is reloaded on that path, so that after the merge its local is valid on all.
 * The loop head is a merge of the block's entry and its back edge. A block that branches
 * back to its own start has the registers its instructions name loaded before the loop
 * (`beforeLoop`), valid at the head; at the back edge (`atBackEdge`) each of them that an
 * executor left invalid is loaded again, so that every one of them holds its value at the
 * head on both paths into it and no iteration loads them from the state block. Any other
 * block has an empty cache at the head.
 */
import { type FuncBody, OP, T } from "./wasm.ts";

/** Cache slot of the stack pointer in use (slots 0..30 are X0..X30). */
export const SP_SLOT = 31;

export class RegisterCache {
  // Plain arrays: a block makes one cache, and a typed array costs far more to create.
  private readonly locals: number[] = new Array<number>(32).fill(-1);
  private readonly valid: number[] = new Array<number>(32).fill(0);
  /** The registers valid at the loop head (`beforeLoop`). */
  private readonly loopSlots: number[] = [];

  /**
   * @param f the function being emitted
   * @param spOff byte offset of the stack pointer in use in the state block
   * @param baseDepth the control depth of the block's straight-line code (inside its loop)
   */
  constructor(
    private readonly f: FuncBody,
    private readonly spOff: number,
    private readonly baseDepth: number,
  ) {}

  private offset(slot: number): number {
    return slot === SP_SLOT ? this.spOff : slot * 8;
  }
  private local(slot: number): number {
    let l = this.locals[slot]!;
    if (l < 0) l = this.locals[slot] = this.f.local(T.i64);
    return l;
  }
  private get unconditional(): boolean {
    return this.f.depth === this.baseDepth;
  }

  /** Pushes the i64 value of `slot`. */
  get(slot: number): void {
    const f = this.f;
    if (this.valid[slot] === 1) {
      f.get(this.locals[slot]!);
      return;
    }
    f.get(0).mem(OP.i64_load, this.offset(slot));
    if (this.unconditional) {
      f.tee(this.local(slot));
      this.valid[slot] = 1;
    }
  }

  /** Pushes the low 32 bits of `slot` as an i32. */
  get32(slot: number): void {
    const f = this.f;
    if (this.valid[slot] === 1 || this.unconditional) {
      this.get(slot);
      f.op(OP.i32_wrap_i64);
    } else f.get(0).mem(OP.i32_load, this.offset(slot));
  }

  /** `slot` = the i64 that `value` pushes (in the state block, and in its local where that is kept). */
  set(slot: number, value: () => void): void {
    const f = this.f;
    f.get(0);
    value();
    if (this.valid[slot] === 1 || this.unconditional) {
      f.tee(this.local(slot));
      this.valid[slot] = 1;
    }
    f.mem(OP.i64_store, this.offset(slot));
  }

  /**
   * Loads `slots` into their locals before the loop of a block that loops on itself (at
   * the depth outside the loop): they are valid at the loop head (see above).
   */
  beforeLoop(slots: Iterable<number>): void {
    const f = this.f;
    for (const s of slots) {
      f.get(0).mem(OP.i64_load, this.offset(s)).set(this.local(s));
      this.valid[s] = 1;
      this.loopSlots.push(s);
    }
  }

  /** At the back edge: the loop's registers that are not valid here are loaded again. */
  atBackEdge(): void {
    const f = this.f;
    for (const s of this.loopSlots) {
      if (this.valid[s] === 0) f.get(0).mem(OP.i64_load, this.offset(s)).set(this.locals[s]!);
    }
  }

  /** After a call of an executor, which may have written any register in the state block. */
  afterExecutor(): void {
    if (this.unconditional) {
      this.valid.fill(0);
      return;
    }
    const f = this.f;
    for (let s = 0; s < 32; s++) {
      if (this.valid[s] === 0) continue;
      f.get(0).mem(OP.i64_load, this.offset(s)).set(this.locals[s]!);
    }
  }
}
