/**
 * Arm semihosting (the "Semihosting for AArch32 and AArch64" specification), as QEMU
 * offers it with `-semihosting`: the guest executes HLT #0xF000 with the operation in W0
 * and a parameter (often a pointer to a parameter block) in X1; the result goes to X0.
 * Guest addresses are physical here (MMU off), which is how bare-metal guests use it.
 */
import type { Vcpu } from "../hv/vcpu.ts";
import type { Vm } from "../hv/vm.ts";

export const SEMIHOSTING_HLT = 0xf000;
export const SYS = {
  WRITEC: 0x03,
  WRITE0: 0x04,
  WRITE: 0x05,
  READC: 0x07,
  ISERROR: 0x08,
  CLOCK: 0x10,
  TIME: 0x11,
  ERRNO: 0x13,
  HEAPINFO: 0x16,
  EXIT: 0x18,
  EXIT_EXTENDED: 0x20,
  ELAPSED: 0x30,
  TICKFREQ: 0x31,
} as const;
/** ADP_Stopped_ApplicationExit: the reason code of a normal exit. */
const APPLICATION_EXIT = 0x20026;

export type SemihostingResult = { kind: "continue" } | { kind: "exit"; code: number };

export class Semihosting {
  constructor(
    private readonly vm: Vm,
    private readonly out: (bytes: Uint8Array) => void,
    private readonly startMs = performance.now(),
  ) {}

  private byte(pa: bigint): number {
    const off = Number(pa) - this.vm.ramBase;
    if (off < 0 || off >= this.vm.ramSize)
      throw new RangeError(`semihosting: 0x${pa.toString(16)} is not RAM`);
    return this.vm.ram[off]!;
  }
  private u64(pa: bigint): bigint {
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(this.byte(pa + BigInt(i)));
    return v;
  }

  /** Handles one HLT trap from `vcpu`. */
  handle(vcpu: Vcpu, imm: number): SemihostingResult {
    const c = vcpu.cpu;
    if (imm !== SEMIHOSTING_HLT) {
      c.takeUndefinedAtPc(); // HLT with another immediate: as if halting were disabled
      return { kind: "continue" };
    }
    const op = Number(c.getX(0) & 0xffffffffn);
    const arg = c.getX(1);
    let result = 0n;
    switch (op) {
      case SYS.WRITEC:
        this.out(Uint8Array.of(this.byte(arg)));
        break;
      case SYS.WRITE0: {
        const bytes: number[] = [];
        for (let p = arg; bytes.length < 1 << 20; p++) {
          const b = this.byte(p);
          if (b === 0) break;
          bytes.push(b);
        }
        this.out(Uint8Array.from(bytes));
        break;
      }
      case SYS.WRITE: {
        // Block: handle, buffer, length. Handles 1 and 2 go to the console.
        const buf = this.u64(arg + 8n);
        const len = Number(this.u64(arg + 16n));
        const bytes = new Uint8Array(Math.min(len, 1 << 20));
        for (let i = 0; i < bytes.length; i++) bytes[i] = this.byte(buf + BigInt(i));
        this.out(bytes);
        result = BigInt(len - bytes.length); // bytes NOT written
        break;
      }
      case SYS.EXIT:
      case SYS.EXIT_EXTENDED: {
        // AArch64: X1 points to { reason, subcode }.
        const reason = this.u64(arg);
        const sub = this.u64(arg + 8n);
        return { kind: "exit", code: reason === BigInt(APPLICATION_EXIT) ? Number(sub & 0xffn) : 1 };
      }
      case SYS.CLOCK:
        result = BigInt(Math.floor((performance.now() - this.startMs) / 10)); // centiseconds
        break;
      case SYS.TIME:
        result = BigInt(Math.floor(Date.now() / 1000));
        break;
      case SYS.ERRNO:
        result = 0n;
        break;
      case SYS.ISERROR:
        result = BigInt.asIntN(64, arg) < 0n ? 1n : 0n;
        break;
      default:
        result = -1n; // unsupported operation
    }
    c.setX(0, BigInt.asUintN(64, result));
    return { kind: "continue" };
  }
}
