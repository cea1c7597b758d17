/**
 * The translator's driver for one vCPU: counts how often each block starts, queues the
 * hot ones, compiles them in batches (many functions share one module: a module costs
 * ~80 µs alone, ~10 µs per function when a thousand share it, DESIGN.md), and keeps the
 * code cache bounded. The interpreter (cpu.ts) asks it for a block's translation and
 * calls it; everything that is not translated is interpreted, so turning the translator
 * off changes nothing but speed.
 */
import type { Exec } from "../decoder.ts";
import { getDecoder } from "../isa.ts";
import { dispatcherBody, JUMPS, jumpEntry, jumpWord } from "./dispatch.ts";
import { SLOW_LOAD_TYPE, SLOW_STORE_TYPE, slowLoadBody, slowStoreBody } from "./emit.ts";
import { type HubRun, makeHub } from "./hub.ts";
import { translateBlock } from "./translate.ts";
import { encodeModule, type FuncBody, T } from "./wasm.ts";

/** What the translator needs from the CPU it serves (cpu.ts implements it). */
export interface JitHost {
  readonly memory: WebAssembly.Memory;
  /** Byte offset of the vCPU's state block in the memory (the jump cache is in it). */
  readonly stateBase: number;
  /** `armbox user`: SIMD&FP instructions are always enabled (no CPACR_EL1 to check). */
  readonly userMode: boolean;
  /** Runs the interpreter's executor for the instruction at pc; returns 1 if the block must end. */
  jitExec(ex: Exec, pc: number): number;
  jitLoad(lo: number, hi: number, size: number, pc: number): number;
  jitStore(lo: number, hi: number, vlo: number, vhi: number, size: number, pc: number): number;
  /** The executor the interpreter would run for `insn`. */
  executorFor(insn: number): Exec;
  /** Write tracking (memory.ts): the pages with translations, and the hook a store to one calls. */
  translatedPages: Uint8Array | null;
  codeWritten: (hostPage: number, offset: number, size: number) => void;
  dropWriteTagsOf(hostPage: number): void;
  /** Ends the run in progress after the current instruction (a block in wasm at its next exit). */
  stopAfterInstruction(): void;
}

/**
 * A compiled block, valid for the VA page, EL and stack pointer it was translated for; it
 * runs through the hub (`Jit.enter` with its jump word), looping on itself within `left`
 * instructions, and returns the count (0: stale).
 */
export interface JitBlock {
  readonly len: number;
  readonly pageLo: number;
  readonly pageHi: number;
  readonly spOff: number;
  readonly tlbRegimeBytes: number;
  /** Words 2 and 3 of its jump-cache entry (jit/dispatch.ts): host page | PSTATE.M, and jumpWord(). */
  readonly jumpHost: number;
  readonly jumpWord: number;
}

/** An empty table of translations and the hub over it (jit/hub.ts). */
function newHub(memory: WebAssembly.Memory): [WebAssembly.Table, HubRun] {
  const table = new WebAssembly.Table({ element: "anyfunc", initial: 1024 });
  return [table, makeHub(memory, table)];
}

function clearJumps(j: Int32Array): void {
  for (let i = 0; i < j.length; i += 4) {
    j[i] = JUMPS.EMPTY;
    j[i + 2] = JUMPS.NO_HOST;
  }
}

/** A block waiting for translation, and where to put it when it is compiled. */
interface Pending {
  readonly table: (JitBlock | null | undefined)[];
  readonly slot: number;
  readonly words: number[];
  readonly host: number;
  readonly pageLo: number;
  readonly pageHi: number;
  readonly spOff: number;
  readonly tlbRegimeBytes: number;
  /** PSTATE.M it runs under (determines spOff and tlbRegimeBytes). */
  readonly mode: number;
}

export interface JitOptions {
  /** Block starts before a block is queued for translation. */
  threshold?: number;
  /** Blocks compiled together in one module. */
  batch?: number;
  /** Translated instructions kept at most; past it, every translation is dropped. */
  maxInstructions?: number;
  /** Count, by instruction word, the runs of executors from translated code (a diagnostic). */
  countFallbacks?: boolean;
  /** Name each function after its block's PC and length, for profilers (a diagnostic). */
  names?: boolean;
}

/** A translated function's name (JitOptions.names): pc_<PC[63:32]>_<PC[31:0]>_<length>. */
function blockName(p: Pending): string {
  const lo = (p.pageLo + p.slot * 4) >>> 0;
  return `pc_${(p.pageHi >>> 0).toString(16)}_${lo.toString(16)}_${p.words.length}`;
}

export interface JitStats {
  modules: number;
  blocks: number;
  instructions: number;
  inlineInstructions: number;
  compileMs: number;
  /** WebAssembly bytes compiled (every module since the start). */
  wasmBytes: number;
  flushes: number;
  stale: number;
  /** Pages whose translations were dropped because they were written (write tracking). */
  codeWrites: number;
  /** Stores to pages with translations that wrote none of the words translated (kept). */
  dataWrites: number;
  /** Pages whose translations check their own words (MIXED_PAGE_WRITES). */
  selfCheckingPages: number;
  /** Translations replaced by one for another VA, stack pointer or EL of the same code (`forget`). */
  aliases: number;
}

/** A code page's record, shared by the vCPUs: its translations, start counts and translated words. */
interface CodePage {
  jit: (JitBlock | null | undefined)[];
  heat: Uint16Array;
  /**
   * One bit per word of the page that a live translation was made from. A store to the
   * page elsewhere (data beside code: a bare-metal program's .bss after its .text, a
   * literal pool) drops nothing, as QEMU's code bitmap (SMC_BITMAP) does; without it such
   * a page is translated again after every store to it.
   */
  code: Uint32Array;
  /** Stores beside the translated words while the page was tracked (see MIXED_PAGE_WRITES). */
  dataWrites: number;
  /** The page's translations check their own words (on entry and after their stores) instead of being tracked. */
  selfChecking: boolean;
}

/**
 * Stores beside translated code after which a page stops being tracked: each such store
 * takes the slow path (the page has no write tag), which costs a data-heavy loop whose
 * data shares its page several times its speed (a virtio console flood ran at 0.4× the
 * interpreter's rate). Past this, the page's translations check their own words instead,
 * as with write tracking off, and its stores are fast again.
 */
const MIXED_PAGE_WRITES = 256;

/** Whether the words of bytes [offset, offset + size) of a page hold a bit in `code`. */
function overlapsCode(code: Uint32Array, offset: number, size: number): boolean {
  const last = Math.min(1023, (offset + size - 1) >>> 2);
  for (let w = offset >>> 2; w <= last; w++) if ((code[w >>> 5]! & (1 << (w & 31))) !== 0) return true;
  return false;
}

export class Jit {
  readonly threshold: number;
  readonly batch: number;
  readonly maxInstructions: number;
  readonly stats: JitStats = {
    modules: 0,
    blocks: 0,
    instructions: 0,
    inlineInstructions: 0,
    compileMs: 0,
    wasmBytes: 0,
    flushes: 0,
    stale: 0,
    codeWrites: 0,
    dataWrites: 0,
    selfCheckingPages: 0,
    aliases: 0,
  };
  /** Instructions retired in translated blocks (the rest were interpreted). */
  executed = 0;
  /** Calls of translated blocks. */
  entries = 0;
  /** With `countFallbacks`: executor runs from translated code, by instruction word. */
  readonly fallbacks: Map<number, number> | null;
  private readonly names: boolean;
  private pending: Pending[] = [];
  /** Instructions in translations alive now (the bound applies to this). */
  private live = 0;
  /** Every table holding a translation, so that a flush can empty them. */
  private readonly tables = new Set<(JitBlock | null | undefined)[]>();
  /** Blocks compiled since the last flush: the next one's number (its index in `table`). */
  private blockNumber = 0;
  /**
   * Every translation since the last flush, by block number, and the hub that calls them
   * (jit/hub.ts: the interpreter enters translated code only through `enter`).
   */
  private table: WebAssembly.Table;
  enter: HubRun;
  /**
   * The vCPU whose run is in progress (vCPUs take turns): the helpers of translated code
   * call it, and it is the one whose jump cache (jit/dispatch.ts) the interpreter fills.
   * One code cache serves every vCPU of a VM (`attach`): a translation reads the state
   * block it is given, so it runs on any of them.
   */
  private host: JitHost;
  private jumps: Int32Array;
  /** The vCPUs sharing this cache, with their jump caches. */
  private readonly hosts = new Map<JitHost, Int32Array>();
  /**
   * Write tracking (`trackWrites`): a byte per page of the memory, 1 where translations
   * were made from the page. Such a page has no TLB write tag in any vCPU, so every
   * store to it (from the interpreter, an executor or a helper of translated code) takes
   * the slow path, and one over a translated word drops them (`codeWritten`); so do the VMM's own writes
   * (`codeWrittenRange`: DMA, loaders, restores), which the owner must report. Then a
   * translation need not check its words on entry or on each loop iteration, and stores
   * need no check of the words after them. Null: off (every entry checks; `armbox user`,
   * whose system calls write guest memory directly, and CPUs made alone).
   */
  private translated: Uint8Array | null = null;
  /** Per code page (host offset >>> 12): its translations and start counts, shared by the vCPUs. */
  private readonly pages = new Map<number, CodePage>();

  constructor(host: JitHost, opts: JitOptions = {}) {
    this.threshold = opts.threshold ?? 50;
    this.batch = opts.batch ?? 64;
    this.maxInstructions = opts.maxInstructions ?? 1 << 20;
    this.fallbacks = opts.countFallbacks === true ? new Map() : null;
    this.names = opts.names === true;
    this.host = host;
    this.jumps = this.attach(host);
    [this.table, this.enter] = newHub(host.memory);
  }

  /** Adds a vCPU to the ones sharing this code cache; returns its jump cache (emptied). */
  attach(host: JitHost): Int32Array {
    let jumps = this.hosts.get(host);
    if (jumps === undefined) {
      jumps = new Int32Array(
        host.memory.buffer,
        host.stateBase + JUMPS.OFFSET,
        (JUMPS.ENTRIES * JUMPS.ENTRY_BYTES) / 4,
      );
      this.hosts.set(host, jumps);
      clearJumps(jumps);
      this.hookWrites(host);
    }
    return jumps;
  }

  /**
   * Turns write tracking on (see `translated`); the owner must then report every write
   * it makes to guest memory itself through `codeWrittenRange`. Translations made before
   * are dropped (they check their words on every entry).
   */
  trackWrites(): void {
    if (this.translated !== null) return;
    this.flush();
    this.translated = new Uint8Array(Math.ceil(this.host.memory.buffer.byteLength / 4096));
    for (const h of this.hosts.keys()) this.hookWrites(h);
  }

  private hookWrites(host: JitHost): void {
    if (this.translated === null) return;
    host.translatedPages = this.translated;
    host.codeWritten = (page, offset, size) => {
      if (this.codeWritten(page, offset, size)) host.stopAfterInstruction();
    };
  }

  /** A translation of the page at host offset `page` << 12 exists now: stores to it must take the slow path. */
  private track(page: number): void {
    const t = this.translated;
    if (t === null || t[page] === 1) return;
    t[page] = 1;
    for (const h of this.hosts.keys()) h.dropWriteTagsOf(page);
  }

  /** Whether translations check their words only when entered from JS (write tracking on). */
  get tracking(): boolean {
    return this.translated !== null;
  }

  /**
   * Bytes [offset, offset + size) of the page at host offset `page` << 12 are being
   * written. If they hold words a translation was made from, all the page's translations
   * are dropped (from every vCPU's tables and jump caches: a block may tail-call another
   * of its page directly), the page is no longer tracked, and this returns true (the
   * block making the store must end). A store beside them drops nothing.
   */
  codeWritten(page: number, offset = 0, size = 4096): boolean {
    const t = this.translated;
    if (t === null || t[page] !== 1) return false;
    const rec = this.pages.get(page);
    if (rec !== undefined && !overlapsCode(rec.code, offset, size) && rec.code.some((w) => w !== 0)) {
      this.stats.dataWrites++;
      if (++rec.dataWrites < MIXED_PAGE_WRITES) return false;
      // Its next translations check themselves (compile), so it is never tracked again.
      rec.selfChecking = true;
      this.stats.selfCheckingPages++;
    }
    t[page] = 0;
    if (rec !== undefined) {
      rec.code.fill(0);
      for (let i = 0; i < 1024; i++) {
        const b = rec.jit[i];
        if (b != null) this.live -= b.len;
        if (b !== undefined) rec.jit[i] = undefined;
      }
    }
    const base = page * 4096;
    for (const j of this.hosts.values()) {
      for (let e = 0; e < j.length; e += 4) {
        if (j[e] !== JUMPS.EMPTY && (j[e + 2]! & ~0xfff) === base) {
          j[e] = JUMPS.EMPTY;
          j[e + 2] = JUMPS.NO_HOST;
        }
      }
    }
    this.stats.codeWrites++;
    return true;
  }

  /** The VMM wrote `length` bytes of the memory at host offset `host` (DMA, a loader): drops what they held. */
  codeWrittenRange(host: number, length: number): void {
    if (this.translated === null || length <= 0) return;
    const end = host + length;
    for (let p = Math.floor(host / 4096); p <= Math.floor((end - 1) / 4096); p++) {
      const from = Math.max(host, p * 4096);
      this.codeWritten(p, from - p * 4096, Math.min(end, (p + 1) * 4096) - from);
    }
  }

  /** `host` runs next (Cpu.run calls this before it enters translated code). */
  use(host: JitHost): void {
    if (this.host === host) return;
    this.host = host;
    this.jumps = this.hosts.get(host) ?? this.attach(host);
  }

  /** The translations and start counts of the code page at host offset `key` << 12. */
  page(key: number): CodePage {
    let p = this.pages.get(key);
    if (p === undefined) {
      p = {
        jit: new Array<JitBlock | null | undefined>(1024).fill(undefined),
        heat: new Uint16Array(1024),
        code: new Uint32Array(32),
        dataWrites: 0,
        selfChecking: false,
      };
      this.pages.set(key, p);
    }
    return p;
  }

  private clearJumps(): void {
    for (const j of this.hosts.values()) clearJumps(j);
  }

  /**
   * What the code cache did, as one line of JSON: the stats, the entries from the
   * interpreter, the fraction of `total` instructions run translated and, with
   * `countFallbacks`, the `top` instructions most often run by their executor.
   */
  report(total: number, top = 12): string {
    const out: Record<string, unknown> = {
      ...this.stats,
      entries: this.entries,
      executed: this.executed,
      fraction: total ? +(this.executed / total).toFixed(4) : 0,
    };
    if (this.fallbacks !== null) {
      const byName = new Map<string, number>();
      const nameOf = getDecoder().nameOf;
      for (const [w, k] of this.fallbacks) {
        const name = nameOf(w) ?? `0x${w.toString(16)}`;
        byName.set(name, (byName.get(name) ?? 0) + k);
      }
      out.fallbacks = Object.fromEntries([...byName].sort((a, b) => b[1] - a[1]).slice(0, top));
    }
    return JSON.stringify(out);
  }

  /** Points the jump-cache entry of the block at PC (lo, hi) to `b` (cpu.ts: on each entry). */
  noteJump(lo: number, hi: number, b: JitBlock): void {
    const e = (jumpEntry(lo) - JUMPS.OFFSET) >> 2;
    const j = this.jumps;
    j[e] = lo;
    j[e + 1] = hi;
    j[e + 2] = b.jumpHost;
    j[e + 3] = b.jumpWord;
  }

  /**
   * The block at `slot` became hot: queue it (null marks it queued). Compiles the queue
   * when it is full, or at once when `urgent` (a queued block kept running interpreted).
   */
  request(p: Omit<Pending, "words"> & { words: ArrayLike<number> }, urgent: boolean): void {
    if (p.table[p.slot] === undefined) {
      p.table[p.slot] = null;
      this.pending.push({ ...p, words: Array.from(p.words) });
    }
    if (this.pending.length >= this.batch || urgent) this.compile();
  }

  /** Drops every translation (the code cache is full, or the CPU's code pages were flushed). */
  flush(): void {
    for (const t of this.tables) t.fill(undefined);
    this.tables.clear();
    // Queued blocks (null) of pages with no translation yet are in no table above: without
    // this they stayed queued for good, interpreted, after a restore or a full cache.
    for (const p of this.pending) if (p.table[p.slot] === null) p.table[p.slot] = undefined;
    for (const p of this.pages.values()) p.code.fill(0);
    this.pending = [];
    this.live = 0;
    this.clearJumps();
    // A new table and hub: the old ones keep the dropped instances alive.
    this.blockNumber = 0;
    [this.table, this.enter] = newHub(this.host.memory);
    this.stats.flushes++;
  }

  /**
   * The block at `slot` runs hot at another VA, stack pointer or EL than its translation
   * was made for (cpu.ts): the slot is emptied for a translation of this one. The old one
   * stays reachable from the jump caches, by the VA it is valid for.
   */
  forget(table: (JitBlock | null | undefined)[], slot: number): void {
    const b = table[slot];
    if (b != null) this.live -= b.len;
    table[slot] = undefined;
    this.stats.aliases++;
  }

  /** The translation of the block at PC[31:0] = `lo` found its words changed: forget it. */
  stale(table: (JitBlock | null | undefined)[], slot: number, lo: number): void {
    const b = table[slot];
    table[slot] = undefined;
    const e = (jumpEntry(lo) - JUMPS.OFFSET) >> 2;
    if (b != null) {
      if (this.jumps[e] === (lo | 0) && this.jumps[e + 3] === b.jumpWord) {
        this.jumps[e] = JUMPS.EMPTY;
        this.jumps[e + 2] = JUMPS.NO_HOST;
      }
      this.live -= b.len;
    }
    this.stats.stale++;
  }

  private compile(): void {
    // A block whose words changed since it was queued is not translated from the old ones
    // (it becomes hot again first): with write tracking nothing would check them later,
    // since its page is only tracked from the moment a translation of it is installed.
    const m32 = new Uint32Array(this.host.memory.buffer);
    const todo = this.pending.filter((p) => {
      const at = p.host >>> 2;
      for (let k = 0; k < p.words.length; k++) {
        if (m32[at + k] !== p.words[k]! >>> 0) {
          if (p.table[p.slot] === null) p.table[p.slot] = undefined;
          this.stats.stale++;
          return false;
        }
      }
      return true;
    });
    this.pending = [];
    if (todo.length === 0) return;
    const t0 = performance.now();
    const execs: Exec[] = [];
    const execWords: number[] = [];
    const ids = new Map<number, number>();
    const execId = (insn: number): number => {
      let id = ids.get(insn);
      if (id === undefined) {
        id = execs.length;
        execs.push(this.host.executorFor(insn));
        execWords.push(insn >>> 0);
        ids.set(insn, id);
      }
      return id;
    };
    const bodies: FuncBody[] = [];
    let inline = 0;
    let total = 0;
    for (const p of todo) total += p.words.length;
    // A full cache is emptied (QEMU's tb_flush), then this batch is installed; so is one
    // that would use more block numbers than the jump cache can name.
    const flushed = this.live + total > this.maxInstructions || this.blockNumber + todo.length > JUMPS.BLOCKS;
    if (flushed) this.flush();
    const first = this.blockNumber;
    this.blockNumber += todo.length;
    // Blocks of this batch by page, mode and slot: a branch from one to another on the same
    // page (whose translation the running block vouches for) becomes a tail call.
    const IMPORTS = 3;
    const key = (p: Pending, slot: number) =>
      `${p.host >>> 12}:${p.pageLo}:${p.pageHi}:${p.spOff}:${p.tlbRegimeBytes}:${slot}`;
    const byKey = new Map<string, number>();
    todo.forEach((p, i) => {
      byKey.set(key(p, p.slot), i);
    });
    for (const p of todo) {
      const t = translateBlock(
        {
          words: p.words,
          host: p.host,
          pcLo: p.pageLo + p.slot * 4,
          pcHi: p.pageHi,
          spOff: p.spOff,
          tlbRegimeBytes: p.tlbRegimeBytes,
          // CPACR_EL1.FPEN (Arm ARM D19, CPACR_EL1): 0b11 enables EL0 and EL1, 0b01 EL1 only.
          fpenMask: this.host.userMode ? 0 : ((p.mode >>> 2) & 3) === 0 ? 3 : 1,
          el: (p.mode >>> 2) & 3,
          tracked: this.translated !== null && !this.page(p.host >>> 12).selfChecking,
        },
        execId,
        (lo) => {
          const i = byKey.get(key(p, (lo >>> 2) & 1023));
          return i === undefined ? null : { fn: IMPORTS + i, len: todo[i]!.words.length };
        },
        // The module's internal functions follow its blocks (encodeModule below).
        {
          dispatch: IMPORTS + todo.length,
          slowLoad: IMPORTS + todo.length + 1,
          slowStore: IMPORTS + todo.length + 2,
        },
      );
      bodies.push(t.body);
      inline += t.inline;
    }
    const mem = this.host.memory;
    const bytes = encodeModule(
      [
        { name: "exec", params: [T.i32, T.i32], results: [T.i32] },
        { name: "load", params: [T.i32, T.i32, T.i32, T.i32], results: [T.i32] },
        { name: "store", params: [T.i32, T.i32, T.i32, T.i32, T.i32, T.i32], results: [T.i32] },
      ],
      { params: [T.i32, T.i32, T.i32], results: [T.i32] },
      bodies,
      {
        pages: mem.buffer.byteLength / 65536,
        shared: typeof SharedArrayBuffer !== "undefined" && mem.buffer instanceof SharedArrayBuffer,
      },
      {
        table: true,
        internal: [
          { body: dispatcherBody(IMPORTS, first, todo.length) },
          { body: slowLoadBody(), type: SLOW_LOAD_TYPE },
          { body: slowStoreBody(), type: SLOW_STORE_TYPE },
        ],
        names: this.names ? todo.map((p) => blockName(p)) : undefined,
      },
    );
    this.stats.wasmBytes += bytes.length;
    const counts = this.fallbacks;
    const exec =
      counts === null
        ? (id: number, pc: number) => this.host.jitExec(execs[id]!, pc >>> 0)
        : (id: number, pc: number) => {
            const w = execWords[id]!;
            counts.set(w, (counts.get(w) ?? 0) + 1);
            return this.host.jitExec(execs[id]!, pc >>> 0);
          };
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
      env: {
        memory: mem,
        exec,
        load: (lo: number, hi: number, size: number, pc: number) =>
          this.host.jitLoad(lo >>> 0, hi >>> 0, size, pc >>> 0),
        store: (lo: number, hi: number, vlo: number, vhi: number, size: number, pc: number) =>
          this.host.jitStore(lo >>> 0, hi >>> 0, vlo >>> 0, vhi >>> 0, size, pc >>> 0),
      },
    });
    const fns = todo.map((_, i) => inst.exports[`f${i}`] as (s: number, left: number, acc: number) => number);
    if (this.table.length < this.blockNumber)
      this.table.grow(Math.max(this.blockNumber, 2 * this.table.length) - this.table.length);
    fns.forEach((fn, i) => {
      this.table.set(first + i, fn);
    });
    todo.forEach((p, i) => {
      if (!flushed && p.table[p.slot] !== null) return;
      const b: JitBlock = {
        len: p.words.length,
        pageLo: p.pageLo,
        pageHi: p.pageHi,
        spOff: p.spOff,
        tlbRegimeBytes: p.tlbRegimeBytes,
        jumpHost: (p.host & ~0xfff) | p.mode | 0,
        jumpWord: jumpWord(first + i, p.words.length),
      };
      p.table[p.slot] = b;
      this.tables.add(p.table);
      const rec = this.page(p.host >>> 12);
      if (!rec.selfChecking) {
        for (let w = p.slot; w < p.slot + p.words.length; w++) rec.code[w >>> 5]! |= 1 << (w & 31);
        this.track(p.host >>> 12);
      }
      this.noteJump((p.pageLo + p.slot * 4) >>> 0, p.pageHi, b);
    });
    this.live += total;
    this.stats.modules++;
    this.stats.blocks += todo.length;
    this.stats.instructions += total;
    this.stats.inlineInstructions += inline;
    this.stats.compileMs += performance.now() - t0;
  }
}
