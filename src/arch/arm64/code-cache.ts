/**
 * Decoded code, shared by the vCPUs of a VM: the executor of each instruction word, and
 * per physical code page what the interpreter keeps beside the words (cpu.ts run()).
 *
 * Nothing here belongs to one vCPU. An executor is a function of the word alone (it takes
 * the vCPU it runs on as its argument), a page's block extents and fused pairs are
 * functions of the words memory holds, and each page keeps a copy of the words it was
 * decoded from, so a word that changed is decoded again by whichever vCPU runs it next.
 * The vCPUs of a VM take turns on one thread, so they never see a page half updated.
 * Before it was shared, each vCPU decoded the kernel for itself (at `--smp 4`, decoding
 * took 146 ms of the boot to `/init` against 90 ms at `--smp 1`, by the CPU profile);
 * shared, the boot to `/init` at `--smp 4` takes 0.89x the time and 78 MiB less memory.
 */
import type { Decoder, Exec } from "./decoder.ts";
import { fuseCompareBranch } from "./fusion.ts";
import type { Jit, JitBlock } from "./jit/jit.ts";

/** What the interpreter keeps per physical code page (a slot is a word of the page). */
export interface DecodedPage {
  /** The executor of each slot's word (undefined: not decoded yet). */
  readonly execs: (Exec | undefined)[];
  /** The words the executors were decoded from. */
  readonly words: Uint32Array;
  /** Per slot: one past the last slot of the block starting there, 0 = not known yet. */
  readonly ends: Uint16Array;
  /** Per slot: the fused executor of the compare there and the B.cond after it (null: none). */
  readonly fused: (Exec | null | undefined)[];
  /** Per slot: the translation of the block starting there (null: queued); the translator's. */
  readonly jit: (JitBlock | null | undefined)[];
  /** Per slot: how often the block there started interpreted; the translator's. */
  readonly heat: Uint16Array;
}

export class CodeCache {
  private readonly executors = new Map<number, Exec>();
  /** Fused executors by instruction pair: first word, then second word. */
  private readonly fusedPairs = new Map<number, Map<number, Exec | null>>();
  private readonly pages = new Map<number, DecodedPage>();

  /** `jit`: the translations of the vCPUs that share this cache (they must share it too). */
  constructor(
    private readonly decoder: Decoder,
    readonly jit: Jit | null,
    private readonly undefinedInstruction: Exec,
  ) {}

  /** The executor of `insn`. */
  executor(insn: number): Exec {
    // Keyed by the signed word: a small integer to the engine, where a word above 2^31
    // would be a boxed number.
    let ex = this.executors.get(insn | 0);
    if (ex === undefined) {
      ex = this.decoder.decode(insn) ?? this.undefinedInstruction;
      this.executors.set(insn | 0, ex);
    }
    return ex;
  }

  /** The fused executor of the compare `a` and the B.cond `b` after it, or null. */
  fuse(a: number, b: number): Exec | null {
    let byB = this.fusedPairs.get(a | 0);
    if (byB === undefined) {
      byB = new Map();
      this.fusedPairs.set(a | 0, byB);
    }
    let fx = byB.get(b | 0);
    if (fx === undefined) {
      fx = fuseCompareBranch(a, b);
      byB.set(b | 0, fx);
    }
    return fx;
  }

  /** The decoded page of host page number `key` (host byte offset >>> 12). */
  page(key: number): DecodedPage {
    let page = this.pages.get(key);
    if (page === undefined) {
      const shared = this.jit?.page(key);
      page = {
        execs: new Array<Exec | undefined>(1024).fill(undefined),
        words: new Uint32Array(1024),
        ends: new Uint16Array(1024),
        fused: new Array<Exec | null | undefined>(1024).fill(undefined),
        jit: shared?.jit ?? [],
        heat: shared?.heat ?? new Uint16Array(0),
      };
      this.pages.set(key, page);
    }
    return page;
  }

  /**
   * Forgets everything decoded. A vCPU that still holds one of the old pages as its fetch
   * page uses it until it leaves that page; its words are checked against memory as ever.
   */
  clear(): void {
    this.executors.clear();
    this.fusedPairs.clear();
    this.pages.clear();
  }
}
