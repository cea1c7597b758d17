/**
 * The user process's address space: guest virtual address == offset into the RAM window
 * (flat, no MMU), with a page map that tracks what the guest has mapped so that mmap can
 * find free ranges, brk can grow, and fork can snapshot only the pages in use.
 *
 * Layout (RAM of `size` bytes, default 1 GiB):
 *   0 .. 64 KiB                 not RAM: any access faults (NULL guard)
 *   ELF segments, then brk      growing up
 *   mmap area                   growing down from below the stack
 *   stack                       STACK_SIZE bytes at the top of RAM
 */
import { RAM_OFFSET } from "../arch/arm64/state.ts";

export const PAGE = 4096;
/** Guest addresses below this are not RAM at all, so NULL-pointer accesses fault. */
export const NULL_GUARD = 0x10000;
export const STACK_SIZE = 8 << 20;
/** Gap left between the stack and the first mmap. */
const STACK_GAP = 1 << 20;

export const pageUp = (n: number): number => Math.ceil(n / PAGE) * PAGE;
export const pageDown = (n: number): number => Math.floor(n / PAGE) * PAGE;

export class AddressSpace {
  /** 1 = mapped. */
  map: Uint8Array;
  readonly m8: Uint8Array;
  readonly dv: DataView;
  brkStart = 0;
  brk = 0;
  readonly stackTop: number;
  readonly stackBottom: number;
  readonly mmapTop: number;
  /** Host byte offset (in the memory) of guest address 0; RAM itself starts at NULL_GUARD. */
  readonly host = RAM_OFFSET - NULL_GUARD;

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly size: number,
  ) {
    this.map = new Uint8Array(size / PAGE);
    this.m8 = new Uint8Array(memory.buffer);
    this.dv = new DataView(memory.buffer);
    this.stackTop = size;
    this.stackBottom = size - STACK_SIZE;
    this.mmapTop = this.stackBottom - STACK_GAP;
  }

  /** True when [addr, addr+len) lies inside guest RAM. */
  valid(addr: number, len: number): boolean {
    return addr >= NULL_GUARD && len >= 0 && addr + len <= this.size && Number.isSafeInteger(addr);
  }
  /** Host byte view of guest memory [addr, addr+len) (caller checked validity). */
  bytes(addr: number, len: number): Uint8Array {
    return this.m8.subarray(this.host + addr, this.host + addr + len);
  }

  isFree(addr: number, len: number): boolean {
    const a = addr / PAGE;
    const b = pageUp(addr + len) / PAGE;
    for (let i = a; i < b; i++) if (this.map[i] !== 0) return false;
    return true;
  }
  /** Marks pages mapped; fresh mappings read as zero. */
  mapRange(addr: number, len: number, zero = true): void {
    const a = addr / PAGE;
    const b = pageUp(addr + len) / PAGE;
    for (let i = a; i < b; i++) {
      if (zero && this.map[i] !== 0) this.m8.fill(0, this.host + i * PAGE, this.host + (i + 1) * PAGE);
      this.map[i] = 1;
    }
  }
  /** Unmaps and zeroes pages (so a later mapping reads as zero without work). */
  unmapRange(addr: number, len: number): void {
    const a = addr / PAGE;
    const b = Math.min(pageUp(addr + len) / PAGE, this.map.length);
    for (let i = a; i < b; i++) {
      if (this.map[i] !== 0) {
        this.m8.fill(0, this.host + i * PAGE, this.host + (i + 1) * PAGE);
        this.map[i] = 0;
      }
    }
  }
  /** Finds a free range of `len` bytes top-down in the mmap area; -1 if none. */
  findFree(len: number): number {
    const n = pageUp(len) / PAGE;
    const low = pageUp(this.brk) / PAGE + 16; // keep room for brk to grow a little
    let run = 0;
    for (let i = this.mmapTop / PAGE - 1; i >= low; i--) {
      if (this.map[i] === 0) {
        if (++run === n) return i * PAGE;
      } else run = 0;
    }
    return -1;
  }

  /** Sets the program break (Linux brk(2) semantics: returns the new or the old break). */
  setBrk(want: number): number {
    if (want < this.brkStart) return this.brk;
    const oldTop = pageUp(this.brk);
    const newTop = pageUp(want);
    if (newTop > oldTop) {
      if (newTop > this.mmapTop || !this.isFree(oldTop, newTop - oldTop)) return this.brk;
      this.mapRange(oldTop, newTop - oldTop);
    } else if (newTop < oldTop) {
      this.unmapRange(newTop, oldTop - newTop);
    }
    this.brk = want;
    return want;
  }

  /** Wipes everything (execve). */
  clear(): void {
    for (let i = 0; i < this.map.length; i++) {
      if (this.map[i] !== 0) {
        this.m8.fill(0, this.host + i * PAGE, this.host + (i + 1) * PAGE);
        this.map[i] = 0;
      }
    }
    this.brk = this.brkStart = 0;
  }

  /** A copy of every mapped page and the bookkeeping (fork). */
  snapshot(): AddressSpaceSnapshot {
    const runs: { addr: number; data: Uint8Array }[] = [];
    let i = 0;
    const n = this.map.length;
    while (i < n) {
      if (this.map[i] === 0) {
        i++;
        continue;
      }
      const s = i;
      while (i < n && this.map[i] !== 0) i++;
      runs.push({ addr: s * PAGE, data: this.bytes(s * PAGE, (i - s) * PAGE).slice() });
    }
    return { map: this.map.slice(), runs, brk: this.brk, brkStart: this.brkStart };
  }
  restore(s: AddressSpaceSnapshot): void {
    // Pages the child mapped that the parent did not: back to zero.
    for (let i = 0; i < this.map.length; i++) {
      if (this.map[i] !== 0 && s.map[i] === 0)
        this.m8.fill(0, this.host + i * PAGE, this.host + (i + 1) * PAGE);
    }
    for (const r of s.runs) this.m8.set(r.data, this.host + r.addr);
    this.map = s.map;
    this.brk = s.brk;
    this.brkStart = s.brkStart;
  }
}

export interface AddressSpaceSnapshot {
  map: Uint8Array;
  runs: { addr: number; data: Uint8Array }[];
  brk: number;
  brkStart: number;
}
