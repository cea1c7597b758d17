/** Exception classes (ESR_ELx.EC), Arm ARM D17.2.37. */
export const EC = {
  UNKNOWN: 0x00,
  WFX: 0x01,
  FP_ACCESS: 0x07,
  ILLEGAL_STATE: 0x0e,
  SVC64: 0x15,
  HVC64: 0x16,
  SMC64: 0x17,
  SYSREG: 0x18,
  IABT_LOWER: 0x20,
  IABT_CURRENT: 0x21,
  PC_ALIGN: 0x22,
  DABT_LOWER: 0x24,
  DABT_CURRENT: 0x25,
  SP_ALIGN: 0x26,
  FP_EXC64: 0x2c,
  SERROR: 0x2f,
  BRK64: 0x3c,
} as const;

/**
 * Fault status codes of aborts outside translation (DFSC/IFSC); the translation faults
 * (translation, access flag, permission, address size, by level) are mmu.ts's FAULT.
 */
export const FSC = {
  SYNC_EXTERNAL: 0x10,
  ALIGNMENT: 0x21,
} as const;

/** Vector table offsets from VBAR_ELx (Arm ARM D1.10.2). */
export const VECTOR = {
  CURRENT_SP0: 0x000,
  CURRENT_SPX: 0x200,
  LOWER_A64: 0x400,
  LOWER_A32: 0x600,
  SYNC: 0x000,
  IRQ: 0x080,
  FIQ: 0x100,
  SERROR: 0x180,
} as const;

/**
 * Thrown (as this exact object) to unwind an instruction once the CPU has taken an
 * exception or must exit to its owner. Never escapes `Cpu.run`.
 */
export const UNWIND: unique symbol = Symbol("arm64-unwind");
