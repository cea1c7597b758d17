/**
 * The fixed addresses and the state-block layout shared by the QEMU harness
 * (harness/harness.c, harness/stubs.S) and our side (armbox-runner.ts). Both place the
 * code and the memory window at the same absolute addresses, so absolute values in
 * registers (ADR/ADRP results, base registers, written-back addresses) agree.
 *
 * Any change here must be mirrored in harness/layout.h (checked by run.ts at start-up).
 */

/** Page holding the entry stub, the test words and the exit stub (mapped RWX in the harness). */
export const CODE_PAGE = 0x2000_0000;
/** Address of the first test instruction. */
export const CODE = CODE_PAGE + 0x800;
/** Memory window every load/store of a case points into (mapped RW right after the code page). */
export const WINDOW = CODE_PAGE + 0x1000;
export const WINDOW_SIZE = 0x1000;
/** Both regions form one contiguous RAM on our side: [CODE_PAGE, WINDOW + WINDOW_SIZE). */
export const RAM_SIZE = WINDOW + WINDOW_SIZE - CODE_PAGE;
/** Most instructions in one case. */
export const MAX_WORDS = 8;

/** Byte offsets in the state block (little-endian). */
export const SB = {
  X: 0, // X0..X30, 8 bytes each
  NZCV: 248, // u64, NZCV in bits 31:28
  V: 256, // V0..V31, 16 bytes each
  FPSR: 768, // u32
  FPCR: 772, // u32
  SIZE: 776, // what is transferred (the harness keeps 24 private bytes after it)
} as const;

/** Outcomes of one case, as the harness records them (numbers in the binary protocol). */
export const OUTCOMES = ["ok", "undef", "segv", "bus", "other", "timeout", "error"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Initial state of one case. */
export interface CaseState {
  /** X0..X30 as 62 u32 halves (lo, hi). */
  x: Uint32Array;
  /** V0..V31 as 512 bytes. */
  v: Uint8Array;
  nzcv: number;
  fpcr: number;
  fpsr: number;
  /** WINDOW_SIZE bytes at WINDOW. */
  mem: Uint8Array;
}

export interface Case {
  cls: string;
  seed: number;
  words: number[];
  state: CaseState;
}

/** What running a case produced. */
export interface CaseResult {
  outcome: Outcome;
  /** Index of the instruction where execution stopped (words.length when it ran to the end). */
  pcIndex: number;
  x: Uint32Array;
  v: Uint8Array;
  nzcv: number;
  fpsr: number;
  mem: Uint8Array;
  /** Free text (our side's internal errors). */
  note?: string;
}

/** Serializes a state block (SB layout) into `out` at `off`. */
export function writeStateBlock(s: CaseState, dv: DataView, off: number): void {
  for (let i = 0; i < 62; i++) dv.setUint32(off + SB.X + i * 4, s.x[i]!, true);
  dv.setUint32(off + SB.NZCV, s.nzcv >>> 0, true);
  dv.setUint32(off + SB.NZCV + 4, 0, true);
  new Uint8Array(dv.buffer, dv.byteOffset + off + SB.V, 512).set(s.v);
  dv.setUint32(off + SB.FPSR, s.fpsr >>> 0, true);
  dv.setUint32(off + SB.FPCR, s.fpcr >>> 0, true);
}
