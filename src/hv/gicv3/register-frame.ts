/**
 * A memory-mapped register frame described as a table: each register declared once with its
 * architected name, offset, extent, access rules, the state it shows, and its read and write
 * behaviour. Dispatch is a lookup built once from the table (a word of the frame → its
 * register), and the same table lists the stateful registers for a KVM-style register dump
 * (KVM_DEV_ARM_VGIC_GRP_DIST_REGS / REDIST_REGS read the GIC the same way).
 *
 * Access rules, as the GICv3 architecture gives them (IHI 0069 12.1.3, 12.1.4): registers
 * are 32 bits wide and word-accessible; a 64-bit access is two word accesses (GICD_IROUTER,
 * GICR_TYPER); byte-accessible registers (IPRIORITYR, ITARGETSR) also take byte and
 * halfword accesses; sub-word reads of other registers return the addressed bytes and
 * sub-word writes to them are ignored. Offsets no register claims are RAZ/WI (reserved).
 */

export interface FrameRegister<T, F extends string> {
  /** The register's name in IHI 0069 ("GICD_ISENABLER<n>" is "GICD_ISENABLER"). */
  readonly name: string;
  /** Byte offset of its first word in the frame. */
  readonly offset: number;
  /** 32-bit words it spans, all instances (<n>) together. */
  readonly words: number;
  readonly byteAccess?: boolean;
  /** The saved state fields this register shows (none: constant, RAZ/WI or an action). */
  readonly state?: readonly F[];
  /** Reads word `index` (0-based from `offset`) as seen by `cpu`'s frame. */
  read(dev: T, cpu: number, index: number): number;
  /** Writes word `index`; absent: writes are ignored (read-only or RAZ/WI). */
  write?(dev: T, cpu: number, index: number, value: number): void;
}

export class RegisterFrame<T, F extends string> {
  /** For each word of the frame: its register's index in `registers`, or -1 (reserved). */
  private readonly byWord: Int16Array;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly registers: readonly FrameRegister<T, F>[],
  ) {
    this.byWord = new Int16Array(size / 4).fill(-1);
    registers.forEach((r, i) => {
      if (r.offset % 4 !== 0 || r.words < 1 || r.offset + r.words * 4 > size) {
        throw new RangeError(`${name}: ${r.name} lies outside the frame`);
      }
      for (let w = r.offset / 4; w < r.offset / 4 + r.words; w++) {
        if (this.byWord[w] !== -1) {
          throw new RangeError(`${name}: ${r.name} overlaps ${registers[this.byWord[w]!]!.name}`);
        }
        this.byWord[w] = i;
      }
    });
  }

  /** The register at byte `offset` and the word's index within it, or null (reserved). */
  at(offset: number): { register: FrameRegister<T, F>; index: number } | null {
    const i = offset >= 0 && offset < this.size ? this.byWord[offset >>> 2]! : -1;
    if (i < 0) return null;
    const register = this.registers[i]!;
    return { register, index: ((offset & ~3) - register.offset) >>> 2 };
  }

  private readWord(dev: T, cpu: number, offset: number): number {
    const r = this.at(offset);
    return r ? r.register.read(dev, cpu, r.index) >>> 0 : 0;
  }

  private writeWord(dev: T, cpu: number, offset: number, value: number): void {
    const r = this.at(offset);
    r?.register.write?.(dev, cpu, r.index, value >>> 0);
  }

  read(dev: T, cpu: number, offset: number, size: number): number {
    if (size === 8)
      return this.readWord(dev, cpu, offset) + this.readWord(dev, cpu, offset + 4) * 0x1_0000_0000;
    const word = this.readWord(dev, cpu, offset & ~3);
    if (size >= 4) return word;
    const shift = (offset & 3) * 8;
    return (word >>> shift) & (size === 1 ? 0xff : 0xffff);
  }

  write(dev: T, cpu: number, offset: number, size: number, value: number): void {
    if (size === 8) {
      this.writeWord(dev, cpu, offset, value >>> 0);
      this.writeWord(dev, cpu, offset + 4, Math.floor(value / 0x1_0000_0000) >>> 0);
      return;
    }
    if (size === 4 && (offset & 3) === 0) {
      this.writeWord(dev, cpu, offset, value);
      return;
    }
    const r = this.at(offset);
    if (!r?.register.byteAccess || !r.register.write) return;
    // A byte or halfword of a byte-accessible register: the other bytes of the word are
    // written back as read (these registers have no read side effects).
    const shift = (offset & 3) * 8;
    const mask = (size === 1 ? 0xff : 0xffff) << shift;
    const old = r.register.read(dev, cpu, r.index);
    r.register.write(dev, cpu, r.index, ((old & ~mask) | ((value << shift) & mask)) >>> 0);
  }

  /** Every stateful register's words as `cpu`'s frame shows them, by register name. */
  dump(dev: T, cpu: number): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const r of this.registers) {
      if (!r.state?.length) continue;
      out[r.name] = Array.from({ length: r.words }, (_, i) => r.read(dev, cpu, i) >>> 0);
    }
    return out;
  }
}
