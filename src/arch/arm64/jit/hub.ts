/**
 * The hub: where translated code continues into a block of another module without
 * returning to JavaScript.
 *
 * A module's dispatcher (jit/dispatch.ts) reaches only its own module's blocks: each
 * module has its own table, because V8 11 (Node 20) keeps every instance that imports a
 * table alive with it and updates each of them on every `table.set`. Over the first 300 M
 * instructions of Debian's boot, 14 M of the 15 M entries into translated code were such
 * cross-module transitions, each a JS→wasm call through V8's generic wrapper (that and the
 * interpreter loop around it were a quarter of the run time).
 *
 * So one small module, the hub, is the only instance that imports a table holding every
 * translation (`Jit`'s, indexed by the block's number: jump word bits 31:11). Its one
 * function `run(state, left, word) -> count` calls the block `word` names, and then, for
 * as long as the block's dispatcher leaves the next block's word in OFF.JIT_NEXT (the PC,
 * page, mode and budget checked there), calls that one with the count carried along — a
 * loop of wasm-to-wasm indirect calls. It returns the instructions completed; a block that
 * completed none (its words changed: without write tracking it checks them on entry) ends
 * the loop, and the interpreter finds it stale. The interpreter enters translated code only
 * through the hub: one call site and one callee, which V8 compiles to a direct call.
 */
import { OFF } from "../state.ts";
import { JUMPS } from "./dispatch.ts";
import { Bytes, FuncBody, memoryImport, OP, T, VOID } from "./wasm.ts";

/** `run(state, left, word) -> count` over `table` (see above). */
export type HubRun = (stateBase: number, left: number, word: number) => number;

/** Encodes the hub for a memory of `pages` 64 KiB pages (shared or not) and a table of at least `tableMin` entries. */
export function encodeHub(
  memory: { pages: number; shared: boolean },
  tableMin: number,
): Uint8Array<ArrayBuffer> {
  const m = new Bytes().bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const section = (id: number, b: Bytes) => m.byte(id).sized(b);
  // Type 0: the block type (state, left, count) -> count; the hub's run has the same shape.
  section(1, new Bytes().u32(1).byte(0x60).u32(3).byte(T.i32).byte(T.i32).byte(T.i32).u32(1).byte(T.i32));
  const is = new Bytes().u32(2);
  memoryImport(is, memory);
  // The table (5.3.6 limits, flag 0 = minimum only): funcref.
  is.name("env").name("blocks").byte(0x01).byte(0x70).byte(0x00).u32(tableMin);
  section(2, is);
  section(3, new Bytes().u32(1).u32(0));
  section(7, new Bytes().u32(1).name("run").byte(0x00).u32(0));
  const f = new FuncBody(3);
  const acc = f.local(T.i32);
  const k = f.local(T.i32);
  f.op(OP.loop).byte(VOID);
  f.get(0).i32(-1).mem(OP.i32_store, OFF.JIT_NEXT);
  f.get(0).get(1).get(acc);
  f.get(2).i32(JUMPS.LEN_BITS).op(OP.i32_shr_u);
  f.op(OP.call_indirect).u32(0).u32(0);
  f.tee(k);
  // No progress (a stale block): stop here.
  f.get(acc).op(OP.i32_eq);
  f.op(OP.if).byte(VOID).get(acc).op(OP.return).op(OP.end);
  f.get(k).set(acc);
  f.get(0).mem(OP.i32_load, OFF.JIT_NEXT).tee(2);
  f.i32(-1).op(OP.i32_ne);
  f.op(OP.br_if).u32(0);
  f.op(OP.end);
  f.get(acc);
  const cs = new Bytes().u32(1);
  f.encodeTo(cs);
  section(10, cs);
  return m.finish();
}

/** Instantiates a hub over `memory` and `table`. */
export function makeHub(memory: WebAssembly.Memory, table: WebAssembly.Table): HubRun {
  const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
  const bytes = encodeHub({ pages: memory.buffer.byteLength / 65536, shared }, table.length);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory, blocks: table } });
  return inst.exports.run as HubRun;
}
