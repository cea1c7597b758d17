/**
 * ELF64 parser for static AArch64 Linux executables (System V gABI, "ELF-64 Object File
 * Format"; AArch64 ELF ABI). Input is untrusted: every offset and size is checked against
 * the file before use, and any problem is an `ElfError` with a message fit for a user.
 */

export class ElfError extends Error {
  override readonly name = "ElfError";
}

export const ET = { EXEC: 2, DYN: 3 } as const;
export const PT = {
  LOAD: 1,
  DYNAMIC: 2,
  INTERP: 3,
  NOTE: 4,
  PHDR: 6,
  TLS: 7,
  GNU_STACK: 0x6474e551,
} as const;
export const PF = { X: 1, W: 2, R: 4 } as const;
export const EM_AARCH64 = 183;

export interface ProgramHeader {
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: number;
  /**
   * Physical load address (what a board loader uses, as QEMU's -kernel does). Not range
   * checked here; values above 2^53 lose precision, and the kernel loader refuses them.
   */
  readonly paddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly align: number;
}

export interface ElfImage {
  readonly type: number;
  readonly entry: number;
  /** File offset of the program header table. */
  readonly phoff: number;
  readonly phentsize: number;
  readonly phnum: number;
  readonly phdrs: readonly ProgramHeader[];
  readonly data: Uint8Array;
}

const MACHINE_NAMES: Record<number, string> = {
  3: "x86 (i386)",
  8: "MIPS",
  20: "PowerPC",
  21: "PowerPC64",
  22: "s390",
  40: "32-bit ARM",
  62: "x86-64",
  183: "AArch64",
  243: "RISC-V",
};

/** Largest address we accept for a segment end; guest RAM is far smaller anyway. */
const MAX_ADDR = 2 ** 48;

function u64(dv: DataView, off: number, what: string): number {
  const lo = dv.getUint32(off, true);
  const hi = dv.getUint32(off + 4, true);
  if (hi >= 0x200000)
    throw new ElfError(`${what} is too large (0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")})`);
  return hi * 2 ** 32 + lo;
}

/** Parses and validates `data` as a static AArch64 executable. */
export function parseElf(data: Uint8Array): ElfImage {
  if (data.length < 4 || data[0] !== 0x7f || data[1] !== 0x45 || data[2] !== 0x4c || data[3] !== 0x46) {
    throw new ElfError("not an ELF file (bad magic)");
  }
  if (data.length < 64)
    throw new ElfError(`truncated ELF file: ${data.length} bytes, the ELF header needs 64`);
  if (data[4] !== 2)
    throw new ElfError(data[4] === 1 ? "32-bit ELF file; only 64-bit AArch64 is supported" : "bad ELF class");
  if (data[5] !== 1)
    throw new ElfError("big-endian or invalid ELF data encoding; only little-endian AArch64 is supported");
  if (data[6] !== 1) throw new ElfError(`unsupported ELF version ${data[6]}`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_AARCH64) {
    const name = MACHINE_NAMES[machine] ?? `machine ${machine}`;
    throw new ElfError(`ELF file is for ${name}, not AArch64 (e_machine ${machine}, expected ${EM_AARCH64})`);
  }
  if (type !== ET.EXEC && type !== ET.DYN) {
    throw new ElfError(
      `ELF file is not an executable (e_type ${type}: ${type === 1 ? "relocatable object" : type === 4 ? "core dump" : "unknown"})`,
    );
  }
  const entry = u64(dv, 24, "e_entry");
  const phoff = u64(dv, 32, "e_phoff");
  const ehsize = dv.getUint16(52, true);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (ehsize < 64) throw new ElfError(`bad ELF header size ${ehsize}`);
  if (phnum === 0) throw new ElfError("ELF file has no program headers");
  if (phentsize !== 56) throw new ElfError(`bad program header entry size ${phentsize} (expected 56)`);
  if (phnum === 0xffff) throw new ElfError("extended program header numbering is not supported");
  if (phoff + phnum * phentsize > data.length) {
    throw new ElfError(
      `truncated ELF file: program headers end at ${phoff + phnum * phentsize}, file has ${data.length} bytes`,
    );
  }
  const phdrs: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    const ph: ProgramHeader = {
      type: dv.getUint32(o, true),
      flags: dv.getUint32(o + 4, true),
      offset: u64(dv, o + 8, "p_offset"),
      vaddr: u64(dv, o + 16, "p_vaddr"),
      paddr: dv.getUint32(o + 28, true) * 2 ** 32 + dv.getUint32(o + 24, true),
      filesz: u64(dv, o + 32, "p_filesz"),
      memsz: u64(dv, o + 40, "p_memsz"),
      align: u64(dv, o + 48, "p_align"),
    };
    if (ph.type === PT.INTERP) {
      let end = ph.offset;
      while (end < data.length && end < ph.offset + ph.filesz && data[end] !== 0) end++;
      const interp = ph.offset < data.length ? new TextDecoder().decode(data.subarray(ph.offset, end)) : "?";
      throw new ElfError(
        `dynamically linked executable (interpreter ${interp}); only static executables are supported`,
      );
    }
    if (ph.type === PT.LOAD) {
      if (ph.filesz > ph.memsz)
        throw new ElfError(`program header ${i}: p_filesz ${ph.filesz} exceeds p_memsz ${ph.memsz}`);
      if (ph.offset + ph.filesz > data.length) {
        throw new ElfError(
          `truncated ELF file: segment ${i} needs bytes up to ${ph.offset + ph.filesz}, file has ${data.length}`,
        );
      }
      if (ph.vaddr + ph.memsz > MAX_ADDR)
        throw new ElfError(`program header ${i}: segment address out of range`);
    }
    phdrs.push(ph);
  }
  if (!phdrs.some((p) => p.type === PT.LOAD)) throw new ElfError("ELF file has no loadable segments");
  return { type, entry, phoff, phentsize, phnum, phdrs, data };
}
