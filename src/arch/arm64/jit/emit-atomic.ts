/**
 * Emitters of the ordered and atomic accesses to general-purpose registers (Arm ARM
 * C3.2.6-C3.2.12): LDAR/STLR, CAS and the LD<op>/ST<op> atomics and SWP of Armv8.1 LSE.
 *
 * The vCPUs take turns and the exclusive monitors compare values (insn/load-store-atomic.ts),
 * so each is its plain access or read-modify-write, with no ordering to add. The fast path
 * is a TLB hit of a naturally aligned access (the read tag for LDAR, the write tag for the
 * rest, which also grants reading: stage 1 has no write-only permission); the slow path
 * is the instruction's executor. The load/store helpers of ordinary accesses would not do:
 * these take the alignment fault whatever SCTLR_EL1.A says, and a read-modify-write must
 * fault as one access, before anything is written.
 *
 * Linux takes its locks and counts its references with them: in the first 300 M
 * instructions of Debian's boot the executors ran 0.8 M times from translated code.
 */

import { OFF } from "../state.ts";
import {
  type BlockContext,
  type Emitter,
  exitIfStopped,
  fastProbe,
  getX,
  getXsp,
  guarded,
  LOAD_U,
  laterWordStored,
  putLoaded,
  STORE,
  setX,
  tlbEntry,
} from "./emit.ts";
import { OP, T, VOID } from "./wasm.ts";

/** Mask of a value of 1 << sizeLog bytes, as an i64 constant. */
function sizeMask(sizeLog: number): bigint {
  return sizeLog === 3 ? -1n : (1n << BigInt(8 << sizeLog)) - 1n;
}

/**
 * The access at the VA in local va: the host address in local h on a TLB hit of kind `acc`
 * (0 read, 1 write) for `1 << sizeLog` aligned bytes, then `fast`; else the executor.
 * After a store, the block ends if it reached one of the block's later words.
 */
function access(x: BlockContext, insn: number, acc: number, sizeLog: number, fast: () => void): void {
  const f = x.f;
  const size = 1 << sizeLog;
  const later = acc === 1 && !x.tracked && x.len - x.index - 1 > 0;
  guarded(x, insn, () => {
    tlbEntry(x);
    fastProbe(x, acc, size);
    f.set(x.h);
    fast();
    if (later) laterWordStored(x, x.h, size);
  });
  if (later) exitIfStopped(x);
}

/** LDAR/STLR (B, H, W, X): size 001000 1 L 0 Rs o0=1 Rt2 Rn Rt. */
function ordered(x: BlockContext, insn: number): boolean {
  const f = x.f;
  const sizeLog = insn >>> 30;
  const isLoad = ((insn >>> 22) & 1) === 1;
  const t = insn & 31;
  getXsp(x, (insn >>> 5) & 31);
  f.set(x.va);
  if (isLoad) {
    access(x, insn, 0, sizeLog, () => {
      f.get(x.h).mem(LOAD_U[sizeLog]!, 0);
      putLoaded(x, t, sizeLog, "zero");
    });
  } else {
    getX(x, t);
    f.set(x.res);
    access(x, insn, 1, sizeLog, () => {
      f.get(x.h).get(x.res).mem(STORE[sizeLog]!, 0);
    });
  }
  return true;
}

/** CAS{A,L,AL}{B,H} (W, X): Rs = the old value; Rt stored where the old value equals Rs. */
function compareAndSwap(x: BlockContext, insn: number): boolean {
  const f = x.f;
  const sizeLog = insn >>> 30;
  const s = (insn >>> 16) & 31;
  getXsp(x, (insn >>> 5) & 31);
  f.set(x.va);
  getX(x, s);
  if (sizeLog < 3) f.i64(sizeMask(sizeLog)).op(OP.i64_and);
  f.set(x.b);
  getX(x, insn & 31);
  f.set(x.res);
  access(x, insn, 1, sizeLog, () => {
    f.get(x.h).mem(LOAD_U[sizeLog]!, 0).tee(x.a);
    f.get(x.b).op(OP.i64_eq).op(OP.if).byte(VOID);
    f.get(x.h).get(x.res).mem(STORE[sizeLog]!, 0);
    f.op(OP.end);
    setX(x, s, () => f.get(x.a));
  });
  return true;
}

/** The LD<op> opc values with an emitter (o3 = 0), and SWP (o3 = 1, opc = 0). */
const OPS: Record<number, (x: BlockContext) => void> = {
  0: (x) => x.f.op(OP.i64_add), // LDADD
  1: (x) => x.f.i64(-1n).op(OP.i64_xor).op(OP.i64_and), // LDCLR: old AND NOT s
  2: (x) => x.f.op(OP.i64_xor), // LDEOR
  3: (x) => x.f.op(OP.i64_or), // LDSET
};

/**
 * LDADD, LDCLR, LDEOR, LDSET and SWP ({A,L,AL}{B,H}, W, X; ST<op> is Rt = 31): Rt = the
 * old value, zero-extended; memory = old <op> Rs (SWP: Rs). The signed and unsigned
 * maximum and minimum fall back.
 */
function atomic(x: BlockContext, insn: number): boolean {
  const o3 = (insn >>> 15) & 1;
  const opc = (insn >>> 12) & 7;
  const swap = o3 === 1 && opc === 0;
  const op = o3 === 0 ? OPS[opc] : undefined;
  if (!swap && op === undefined) return false;
  const f = x.f;
  const sizeLog = insn >>> 30;
  getXsp(x, (insn >>> 5) & 31);
  f.set(x.va);
  getX(x, (insn >>> 16) & 31);
  f.set(x.b);
  access(x, insn, 1, sizeLog, () => {
    f.get(x.h).mem(LOAD_U[sizeLog]!, 0).set(x.a);
    f.get(x.h);
    if (swap) f.get(x.b);
    else {
      f.get(x.a).get(x.b);
      op!(x);
    }
    f.mem(STORE[sizeLog]!, 0);
    setX(x, insn & 31, () => f.get(x.a));
  });
  return true;
}

/**
 * LDXR/LDAXR (B, H, W, X): the load, and the local monitor set as the executor sets it
 * (insn/load-store-atomic.ts loadExclusive): the VA, the size, the host offset of the
 * location, the value loaded (zero-extended; the monitor compares values).
 */
function loadExclusive(x: BlockContext, insn: number): boolean {
  const f = x.f;
  const sizeLog = insn >>> 30;
  getXsp(x, (insn >>> 5) & 31);
  f.set(x.va);
  access(x, insn, 0, sizeLog, () => {
    f.get(x.h).mem(LOAD_U[sizeLog]!, 0).set(x.a);
    f.get(0).get(x.va).mem(OP.i64_store, OFF.EXCL_ADDR);
    f.get(0)
      .i32(1 << sizeLog)
      .mem(OP.i32_store, OFF.EXCL_SIZE);
    f.get(0).i32(1).mem(OP.i32_store, OFF.EXCL_VALID);
    f.get(0).get(x.a).mem(OP.i64_store, OFF.EXCL_DATA);
    f.get(0)
      .i64(0n)
      .mem(OP.i64_store, OFF.EXCL_DATA + 8);
    f.get(0).get(x.h).mem(OP.i32_store, OFF.EXCL_HOST);
    setX(x, insn & 31, () => f.get(x.a));
  });
  return true;
}

/**
 * STXR/STLXR (B, H, W, X): the store happens, and Ws = 0, when the monitor is set for this
 * location and size and the memory still holds the value the load-exclusive read (as the
 * executor's monitorPass and cas); Ws = 1 otherwise. The monitor is cleared either way.
 */
function storeExclusive(x: BlockContext, insn: number): boolean {
  const f = x.f;
  const sizeLog = insn >>> 30;
  const s = (insn >>> 16) & 31;
  getXsp(x, (insn >>> 5) & 31);
  f.set(x.va);
  getX(x, insn & 31);
  f.set(x.res);
  access(x, insn, 1, sizeLog, () => {
    // e = monitor passes (valid, same host location and size) and memory == the data.
    f.get(0).mem(OP.i32_load, OFF.EXCL_VALID);
    f.get(0).mem(OP.i32_load, OFF.EXCL_HOST).get(x.h).op(OP.i32_eq).op(OP.i32_and);
    f.get(0)
      .mem(OP.i32_load, OFF.EXCL_SIZE)
      .i32(1 << sizeLog)
      .op(OP.i32_eq)
      .op(OP.i32_and);
    f.op(OP.if).byte(T.i32);
    f.get(x.h).mem(LOAD_U[sizeLog]!, 0).get(0).mem(OP.i64_load, OFF.EXCL_DATA).op(OP.i64_eq);
    f.op(OP.else).i32(0).op(OP.end);
    f.set(x.e);
    f.get(0).i32(0).mem(OP.i32_store, OFF.EXCL_VALID);
    f.get(x.e).op(OP.if).byte(VOID);
    f.get(x.h).get(x.res).mem(STORE[sizeLog]!, 0);
    f.op(OP.end);
    setX(x, s, () => f.get(x.e).i32(1).op(OP.i32_xor).op(OP.i64_extend_i32_u));
  });
  return true;
}

const orders = (m: string) => ["", "A", "AL", "L"].flatMap((o) => ["B", "H", ""].map((z) => `${m}${o}${z}`));
/** By the decode table's names (jit/translate.ts); CAS and the atomics are there only with LSE. */
export const ATOMIC_EMITTERS: ReadonlyMap<string, Emitter> = new Map<string, Emitter>([
  ...["LDAR", "STLR"].flatMap((m) => ["B", "H", ""].map((z): [string, Emitter] => [`${m}${z}`, ordered])),
  ...orders("CAS").map((n): [string, Emitter] => [n, compareAndSwap]),
  ...["LDADD", "LDCLR", "LDEOR", "LDSET", "SWP"].flatMap(orders).map((n): [string, Emitter] => [n, atomic]),
  ...["LDXR", "LDAXR"].flatMap((m) =>
    ["B", "H", ""].map((z): [string, Emitter] => [`${m}${z}`, loadExclusive]),
  ),
  ...["STXR", "STLXR"].flatMap((m) =>
    ["B", "H", ""].map((z): [string, Emitter] => [`${m}${z}`, storeExclusive]),
  ),
]);
