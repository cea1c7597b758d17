/**
 * General-purpose registers kept in WebAssembly locals inside a translated block, and
 * written back to the state block (state.ts) wherever something outside the block may
 * look at them: before every helper call (a helper may throw the architected exception,
 * which must find every register exact, and an executor reads and writes the state
 * block), at every exit, and before the loop's back edge.
 *
 * Emission is one pass in program order, so what the cache knows at a point is what holds
 * on every path that reaches it only where nothing conditional came between. The rules:
 * - a register is *valid* when its local holds its current value, *dirty* when the state
 *   block's copy may be older;
 * - a read of a register that is not valid, outside any conditional region (`FuncBody`
 *   depth equal to the loop's), loads it into its local and makes it valid; inside one, it
 *   is a plain load from the state block (the local would be unset on the other paths);
 * - a write outside conditional regions sets the local (valid, dirty); inside one, a
 *   valid register's local is set (dirty: the flag is kept whichever path ran, and a
 *   write-back of an unchanged value is harmless), an invalid one is stored in the state
 *   block;
 * - `flush` stores every dirty register (outside conditional regions they are then clean);
 * - after an executor, outside conditional regions everything is invalid (the executor may
 *   have written any register in the state block); inside one, every valid register is
 *   reloaded on that path, so that after the merge its local is valid on all of them.
 * The loop head is a merge of the block's entry and its back edge: the cache is empty
 * there, and the back edge flushes.
 */
import { type FuncBody, OP, T } from "./wasm.ts";

/** Cache slot of the stack pointer in use (slots 0..30 are X0..X30). */
export const SP_SLOT = 31;

export class RegisterCache {
  private readonly locals = new Int32Array(32).fill(-1);
  private readonly valid = new Uint8Array(32);
  private readonly dirty = new Uint8Array(32);

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

  /** `slot` = the i64 that `value` pushes. */
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

  /** Stores every dirty register in the state block. */
  flush(): void {
    const f = this.f;
    for (let s = 0; s < 32; s++) {
      if (this.dirty[s] === 0) continue;
      f.get(0).get(this.locals[s]!).mem(OP.i64_store, this.offset(s));
    }
    if (this.unconditional) this.dirty.fill(0);
  }

  /** Around a call of an executor, which may read and write any register in the state block. */
  beforeExecutor(): void {
    this.flush();
  }
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
