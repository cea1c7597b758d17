/**
 * The fixed layout of one vCPU's architectural state inside the VM's single
 * `WebAssembly.Memory`. Every consumer (interpreter, future JIT, ONE_REG, snapshots)
 * reads the offsets from here; nothing else knows them.
 *
 * The first 856 bytes mirror Linux's `struct kvm_regs` (arch/arm64/include/uapi/asm/kvm.h)
 * byte for byte, so a KVM core-register ID is simply `KVM_REG_ARM_CORE | (byte offset / 4)`.
 *
 * Representation (see docs/STATE.md for the benchmark behind it): 64-bit registers are
 * stored little-endian and accessed by the interpreter as two 32-bit halves through a
 * `Uint32Array` view (`lo` at index 2n, `hi` at 2n+1). BigInt is used only in rare,
 * slow paths (64-bit division, high half of 64x64 multiply).
 */

/** Byte offsets inside one vCPU block. */
/** Bytes of the software TLB: 2 regimes of TLB_SETS entries of 64 bytes (tlb.ts). */
export const TLB_SETS = 4096;
const TLB_BYTES = 2 * TLB_SETS * 64;

export const OFF = {
  X: 0, // X0..X30, 8 bytes each
  SP_EL0: 248, // struct user_pt_regs.sp
  PC: 256,
  PSTATE: 264, // SPSR-format PSTATE (NZCV, DAIF, M[3:0]); upper 32 bits zero
  SP_EL1: 272,
  ELR_EL1: 280,
  SPSR: 288, // spsr[5]: SPSR_EL1, SPSR_abt, SPSR_und, SPSR_irq, SPSR_fiq
  V: 336, // V0..V31, 16 bytes each (user_fpsimd_state.vregs)
  FPSR: 848, // u32
  FPCR: 852, // u32
  /** End of the kvm_regs mirror. */
  KVM_REGS_END: 856,
  /** Always-zero 8 bytes: reads of XZR. Never written. */
  ZERO: 856,
  /** Scratch 8 bytes: writes to XZR land here and are never read. */
  DISCARD: 864,
  /** Exclusive monitor: address lo/hi (u32 each), size in bytes, valid flag. */
  EXCL_ADDR: 872,
  EXCL_SIZE: 880,
  EXCL_VALID: 884,
  /** Value loaded by the last load-exclusive (for pair compares), 16 bytes. */
  EXCL_DATA: 888,
  /** WFE event register (0/1). */
  EVENT: 904,
  /** KVM MP state of this vCPU (hv layer; an Int32 so workers can compare-exchange it). */
  MP_STATE: 908,
  /**
   * Host byte offset (in this memory) of the location the exclusive monitor reserves, so
   * the monitor tags the physical address, not the VA (Arm ARM B2.9); 0xffffffff: not RAM.
   */
  EXCL_HOST: 912,
  /** System registers, 8 bytes each, indexed by `SysReg.slot` (see sysregs.ts). */
  SYSREGS: 1024,
  /** Room for 256 system registers. */
  SYSREGS_END: 3072,
  /** The software TLB (tlb.ts has its layout); a cache, never saved or digested. */
  TLB: 4096,
  /** The translator's scratch: a value a slow-path helper returns to translated code (8 bytes). */
  JIT_SCRATCH: 4096 + TLB_BYTES,
  /** Instructions a translated block completed in its earlier iterations (u32; jit/emit.ts). */
  JIT_COUNT: 4096 + TLB_BYTES + 8,
  /**
   * The jump-cache word 3 of the block a dispatcher found ready to run next but in another
   * module (jit/dispatch.ts), or -1: the interpreter calls it without a lookup (i32).
   */
  JIT_NEXT: 4096 + TLB_BYTES + 12,
  /**
   * The translator's jump cache (jit/dispatch.ts): 16384 entries of 16 bytes, by PC; a
   * cache, never saved or digested, emptied whenever the translations are dropped.
   */
  JIT_JUMPS: 4096 + TLB_BYTES + 16,
} as const;

/** Size reserved for each vCPU block (registers, system registers, the software TLB, the jump cache). */
export const VCPU_STRIDE = 1024 * 1024;
/** Maximum number of vCPUs a VM's memory reserves state for. */
export const MAX_VCPUS = 32;
/** Where guest RAM begins inside the WebAssembly memory. */
export const RAM_OFFSET = VCPU_STRIDE * MAX_VCPUS; // 8 MiB

/** Uint32Array indices (byte offset / 4) for the interpreter's hot paths. */
export const I = {
  SP_EL0: OFF.SP_EL0 >> 2,
  PC: OFF.PC >> 2,
  PSTATE: OFF.PSTATE >> 2,
  SP_EL1: OFF.SP_EL1 >> 2,
  ELR_EL1: OFF.ELR_EL1 >> 2,
  SPSR_EL1: OFF.SPSR >> 2,
  V: OFF.V >> 2,
  FPSR: OFF.FPSR >> 2,
  FPCR: OFF.FPCR >> 2,
  ZERO: OFF.ZERO >> 2,
  DISCARD: OFF.DISCARD >> 2,
  EXCL_ADDR: OFF.EXCL_ADDR >> 2,
  EXCL_SIZE: OFF.EXCL_SIZE >> 2,
  EXCL_VALID: OFF.EXCL_VALID >> 2,
  EXCL_DATA: OFF.EXCL_DATA >> 2,
  EVENT: OFF.EVENT >> 2,
  MP_STATE: OFF.MP_STATE >> 2,
  EXCL_HOST: OFF.EXCL_HOST >> 2,
  SYSREGS: OFF.SYSREGS >> 2,
} as const;

/** PSTATE bits, in SPSR layout (Arm ARM C5.2.18). */
export const PSTATE = {
  N: 1 << 31,
  Z: 1 << 30,
  C: 1 << 29,
  V: 1 << 28,
  NZCV: 0xf000_0000 | 0,
  SS: 1 << 21,
  IL: 1 << 20,
  D: 1 << 9,
  A: 1 << 8,
  I: 1 << 7,
  F: 1 << 6,
  DAIF: 0x3c0,
  /** M[3:0]: EL in [3:2], SPSel in [0]. */
  M: 0xf,
} as const;

/** Allocates one memory holding state for `vcpus` vCPUs followed by `ramBytes` of RAM. */
export function createVmMemory(ramBytes: number, shared = false): WebAssembly.Memory {
  const total = RAM_OFFSET + ramBytes;
  const pages = Math.ceil(total / 65536);
  if (pages > 65536) throw new RangeError(`guest RAM of ${ramBytes} bytes does not fit in a 4 GiB memory`);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared } as WebAssembly.MemoryDescriptor);
}
