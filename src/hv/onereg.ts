/**
 * KVM's arm64 register IDs (Linux arch/arm64/include/uapi/asm/kvm.h and
 * Documentation/virt/kvm/api.rst, "KVM_SET_ONE_REG" / "ARM64 registers").
 */
import { OFF } from "../arch/arm64/state.ts";

export const KVM_REG_ARM64 = 0x6000_0000_0000_0000n;
export const KVM_REG_SIZE_U32 = 0x0020_0000_0000_0000n;
export const KVM_REG_SIZE_U64 = 0x0030_0000_0000_0000n;
export const KVM_REG_SIZE_U128 = 0x0040_0000_0000_0000n;
export const KVM_REG_SIZE_MASK = 0x00f0_0000_0000_0000n;
export const KVM_REG_ARM_COPROC_MASK = 0x0000_0000_0fff_0000n;
export const KVM_REG_ARM_CORE = 0x0010n << 16n;
export const KVM_REG_ARM64_SYSREG = 0x0013n << 16n;
export const KVM_REG_ARM_FW = 0x0014n << 16n;

/** Size in bytes encoded in a register ID: 1 << ((id >> 52) & 0xf). */
export function regSize(id: bigint): number {
  return 1 << Number((id & KVM_REG_SIZE_MASK) >> 52n);
}

/** KVM_REG_ARM_CORE_REG: a field of struct kvm_regs by byte offset. */
export function coreReg(byteOffset: number, size: bigint): bigint {
  return KVM_REG_ARM64 | size | KVM_REG_ARM_CORE | BigInt(byteOffset / 4);
}

/** ARM64_SYS_REG(op0, op1, crn, crm, op2). */
export function sysReg(op0: number, op1: number, crn: number, crm: number, op2: number): bigint {
  return (
    KVM_REG_ARM64 |
    KVM_REG_SIZE_U64 |
    KVM_REG_ARM64_SYSREG |
    BigInt((op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2)
  );
}

/** KVM_REG_ARM_FW_REG(r); r = 0 is KVM_REG_ARM_PSCI_VERSION. */
export function fwReg(r: number): bigint {
  return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_FW | BigInt(r);
}
export const KVM_REG_ARM_PSCI_VERSION = fwReg(0);

/**
 * The timer registers. KVM's TIMER_CNT and TIMER_CVAL famously carry each other's
 * encodings (CNT is CNTV_CVAL_EL0's, CVAL is CNTVCT_EL0's); the ABI keeps it that way.
 */
export const KVM_REG_ARM_TIMER_CTL = sysReg(3, 3, 14, 3, 1);
export const KVM_REG_ARM_TIMER_CNT = sysReg(3, 3, 14, 3, 2);
export const KVM_REG_ARM_TIMER_CVAL = sysReg(3, 3, 14, 0, 2);
export const KVM_REG_ARM_PTIMER_CTL = sysReg(3, 3, 14, 2, 1);
export const KVM_REG_ARM_PTIMER_CVAL = sysReg(3, 3, 14, 2, 2);
export const KVM_REG_ARM_PTIMER_CNT = sysReg(3, 3, 14, 0, 1);

/** One core register: its ID and where it lives in the vCPU block. */
export interface CoreReg {
  readonly id: bigint;
  readonly name: string;
  readonly offset: number;
  readonly bytes: 4 | 8 | 16;
}

/** Core registers in KVM_GET_REG_LIST order (struct kvm_regs field order). */
export const CORE_REGS: readonly CoreReg[] = (() => {
  const out: CoreReg[] = [];
  const add = (name: string, offset: number, bytes: 4 | 8 | 16) => {
    const size = bytes === 4 ? KVM_REG_SIZE_U32 : bytes === 8 ? KVM_REG_SIZE_U64 : KVM_REG_SIZE_U128;
    out.push({ id: coreReg(offset, size), name, offset, bytes });
  };
  for (let i = 0; i < 31; i++) add(`X${i}`, OFF.X + 8 * i, 8);
  add("SP_EL0", OFF.SP_EL0, 8);
  add("PC", OFF.PC, 8);
  add("PSTATE", OFF.PSTATE, 8);
  add("SP_EL1", OFF.SP_EL1, 8);
  add("ELR_EL1", OFF.ELR_EL1, 8);
  for (let i = 0; i < 5; i++) add(`SPSR[${i}]`, OFF.SPSR + 8 * i, 8);
  for (let i = 0; i < 32; i++) add(`V${i}`, OFF.V + 16 * i, 16);
  add("FPSR", OFF.FPSR, 4);
  add("FPCR", OFF.FPCR, 4);
  return out;
})();

export const CORE_BY_ID: ReadonlyMap<bigint, CoreReg> = new Map(CORE_REGS.map((r) => [r.id, r]));

/** KVM-style error carrying the errno name the ioctl would return. */
export class KvmError extends Error {
  constructor(
    readonly errno: "ENOENT" | "EINVAL" | "EBUSY" | "EEXIST" | "E2BIG" | "EPERM" | "ENOEXEC",
    message: string,
  ) {
    super(`${errno}: ${message}`);
    this.name = "KvmError";
  }
}

export function hexId(id: bigint): string {
  return `0x${id.toString(16).padStart(16, "0")}`;
}
