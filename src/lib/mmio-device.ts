/**
 * An emulated MMIO device is a register machine (as in rust-vmm's vm-superio): reads and
 * writes at offsets inside its window, an injected interrupt line, and its own state.
 */
import type { Stateful } from "./state.ts";

export interface MmioDevice extends Stateful {
  /** Size of its MMIO window in bytes. */
  readonly windowSize: number;
  /** Reads `size` bytes (1, 2, 4 or 8) at `offset`; unknown offsets read as 0. */
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
}
