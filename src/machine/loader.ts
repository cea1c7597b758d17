/**
 * Direct kernel boot for the virt board, placing things where QEMU's `-kernel` does
 * (hw/arm/boot.c; checked against qemu-system-aarch64 7.2, see test/loader.test.ts):
 *
 * - arm64 Linux `Image` (Documentation/arch/arm64/booting.rst, "ARM\x64" at 0x38): loaded at
 *   RAM base + text_offset when image_size is set, moved up by 2 MiB when text_offset is below
 *   4 KiB (QEMU keeps its boot stub at the start of RAM); RAM base + 0x80000 when image_size is
 *   0 (pre-3.17 kernels, whose text_offset is not meaningful).
 * - ELF: PT_LOAD segments at their physical addresses (p_paddr), entry = e_entry. QEMU treats
 *   ELF kernels as bare-metal programs: x0 is 0 and the DTB sits at the start of RAM when the
 *   program leaves room there (docs/system/arm/virt.rst).
 * - anything else: a raw binary at RAM base + 0x80000 (KERNEL64_LOAD_ADDR), booted as Linux.
 *
 * The initrd goes at RAM base + min(RAM/2, 128 MiB), or just above the kernel if the kernel
 * reaches further, page aligned; the DTB goes after the initrd on a 2 MiB boundary.
 */
import { ElfError, PT, parseElf } from "./elf.ts";

/** Guest RAM as the loader needs it; the VM's RAM implements it. */
export interface GuestRam {
  readonly ramBase: number;
  readonly ramSize: number;
  write(pa: number, bytes: Uint8Array): void;
}

export class LoaderError extends Error {
  override readonly name = "LoaderError";
}

export type KernelKind = "image" | "elf" | "raw";

export interface Region {
  readonly name: string;
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
}

export interface LoadOptions {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  /**
   * The DTB, or a function building it once the initrd's place is known (for /chosen's
   * linux,initrd-start/end). Omit it for a guest that takes none.
   */
  dtb?: Uint8Array | ((initrd: { start: number; end: number } | undefined) => Uint8Array);
  /** Decompresses a gzip'd Image (Image.gz), e.g. node:zlib's gunzipSync; without it those are refused. */
  gunzip?: (data: Uint8Array, maxLength: number) => Uint8Array;
}

export interface LoadResult {
  readonly kind: KernelKind;
  readonly entry: number;
  readonly kernel: { start: number; end: number };
  /** Where the DTB was written, or undefined when none was given. */
  readonly dtbAddress: number | undefined;
  readonly initrd: { start: number; end: number } | undefined;
  /**
   * True for the Linux boot protocol (Image, raw): the boot vCPU starts with x0 = DTB address,
   * x1 = x2 = x3 = 0 (booting.rst). False for ELF, which QEMU starts with x0 = 0.
   */
  readonly linuxBoot: boolean;
  /** Everything written, in order. */
  readonly regions: readonly Region[];
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** QEMU's KERNEL64_LOAD_ADDR: raw images and old Images go here. */
export const KERNEL64_LOAD_ADDR = 0x8_0000;
/** QEMU keeps its boot stub below this; an Image asking for a lower text_offset moves up 2 MiB. */
const BOOTLOADER_MAX_SIZE = 4 * KiB;
const INITRD_MAX_OFFSET = 128 * MiB;
const PAGE = 4 * KiB;
const DTB_ALIGN = 2 * MiB;
/** booting.rst: "The device tree blob (dtb) must ... not exceed 2 megabytes in size." */
export const DTB_MAX_SIZE = 2 * MiB;

/** arm64 Image header (booting.rst section 3). */
export const ARM64_IMAGE_MAGIC_OFFSET = 0x38;
const ARM64_IMAGE_HEADER_SIZE = 64;

const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;
const hex = (v: number): string => `0x${v.toString(16)}`;
const sizeStr = (n: number): string =>
  n >= MiB && n % MiB === 0 ? `${n / MiB} MiB` : n >= 10 * KiB ? `${(n / MiB).toFixed(1)} MiB` : `${n} bytes`;

export function isArm64Image(data: Uint8Array): boolean {
  return (
    data.length >= ARM64_IMAGE_HEADER_SIZE &&
    data[0x38] === 0x41 &&
    data[0x39] === 0x52 &&
    data[0x3a] === 0x4d &&
    data[0x3b] === 0x64
  );
}

const isElf = (d: Uint8Array): boolean =>
  d.length >= 4 && d[0] === 0x7f && d[1] === 0x45 && d[2] === 0x4c && d[3] === 0x46;
const isGzip = (d: Uint8Array): boolean => d.length >= 2 && d[0] === 0x1f && d[1] === 0x8b;

export interface Arm64ImageHeader {
  readonly textOffset: number;
  readonly imageSize: number;
  readonly flags: number;
}

/** Reads and checks the Image header; throws LoaderError for a header that cannot be right. */
export function parseArm64ImageHeader(data: Uint8Array): Arm64ImageHeader {
  if (!isArm64Image(data)) throw new LoaderError("not an arm64 Image (no ARM\\x64 magic at 0x38)");
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u64 = (off: number, what: string): number => {
    const hi = dv.getUint32(off + 4, true);
    const lo = dv.getUint32(off, true);
    if (hi > 0xffff)
      throw new LoaderError(
        `corrupt arm64 Image header: ${what} 0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")} is absurd`,
      );
    return hi * 2 ** 32 + lo;
  };
  const textOffset = u64(8, "text_offset");
  const imageSize = u64(16, "image_size");
  const flagsLo = dv.getUint32(24, true);
  if (imageSize !== 0) {
    // The offset is from a 2 MiB aligned base, so it is below 2 MiB.
    if (textOffset >= 2 * MiB) {
      throw new LoaderError(`corrupt arm64 Image header: text_offset ${hex(textOffset)} is not below 2 MiB`);
    }
    // image_size covers the file and the kernel's BSS; allow a little appended data (signatures).
    if (imageSize + MiB < data.length) {
      throw new LoaderError(
        `corrupt arm64 Image header: image_size ${sizeStr(imageSize)} is far smaller than the file (${sizeStr(data.length)})`,
      );
    }
  }
  if (flagsLo & 1) throw new LoaderError("big-endian arm64 kernel: only little-endian guests are supported");
  return { textOffset, imageSize, flags: flagsLo };
}

/** Loads the kernel, initrd and DTB into RAM as QEMU's direct kernel boot does. */
export function loadKernel(ram: GuestRam, opts: LoadOptions): LoadResult {
  const { ramBase, ramSize } = ram;
  const ramEnd = ramBase + ramSize;
  let kernelData = opts.kernel;
  if (kernelData.length === 0) throw new LoaderError("kernel file is empty");
  if (isGzip(kernelData)) {
    if (!opts.gunzip) throw new LoaderError("gzip-compressed kernel: decompress it first (gunzip)");
    try {
      kernelData = opts.gunzip(kernelData, ramSize);
    } catch (e) {
      throw new LoaderError(`gzip-compressed kernel does not decompress: ${(e as Error).message}`);
    }
    if (!isArm64Image(kernelData)) throw new LoaderError("gzip-compressed kernel is not an arm64 Image");
  } else if (kernelData.length >= 8 && new TextDecoder().decode(kernelData.subarray(4, 8)) === "zimg") {
    throw new LoaderError("EFI zboot compressed kernel: not supported; use the plain arm64 Image");
  }

  const regions: Region[] = [];
  const inRam = (name: string, start: number, size: number): void => {
    if (start < ramBase || start + size > ramEnd) {
      throw new LoaderError(
        `${name} (${sizeStr(size)} at ${hex(start)}) does not fit in RAM (${sizeStr(ramSize)} at ${hex(ramBase)})`,
      );
    }
  };
  const place = (name: string, start: number, size: number): void => {
    inRam(name, start, size);
    const end = start + size;
    for (const r of regions) {
      if (start < r.end && r.start < end) {
        throw new LoaderError(
          `${name} (${hex(start)}-${hex(end)}) overlaps ${r.name} (${hex(r.start)}-${hex(r.end)})`,
        );
      }
    }
    regions.push({ name, start, end });
  };

  let kind: KernelKind;
  let entry: number;
  let kStart: number;
  let kEnd: number;
  const writes: [number, Uint8Array][] = [];
  if (isArm64Image(kernelData)) {
    kind = "image";
    const h = parseArm64ImageHeader(kernelData);
    let offset = KERNEL64_LOAD_ADDR;
    if (h.imageSize !== 0) {
      offset = h.textOffset;
      if (offset < BOOTLOADER_MAX_SIZE) offset += 2 * MiB;
    }
    kStart = ramBase + offset;
    kEnd = kStart + Math.max(kernelData.length, h.imageSize);
    place("kernel", kStart, kEnd - kStart);
    writes.push([kStart, kernelData]);
    entry = kStart;
  } else if (isElf(kernelData)) {
    kind = "elf";
    let elf: ReturnType<typeof parseElf>;
    try {
      elf = parseElf(kernelData);
    } catch (e) {
      if (e instanceof ElfError) throw new LoaderError(`ELF kernel: ${e.message}`);
      throw e;
    }
    kStart = Infinity;
    kEnd = -Infinity;
    elf.phdrs.forEach((ph, i) => {
      if (ph.type !== PT.LOAD || ph.memsz === 0) return;
      const name = `ELF segment ${i}`;
      if (ph.paddr > 2 ** 48) {
        throw new LoaderError(
          `${name}: physical address ${hex(ph.paddr)} is not in RAM (linked for virtual addresses?)`,
        );
      }
      place(name, ph.paddr, ph.memsz);
      writes.push([ph.paddr, kernelData.subarray(ph.offset, ph.offset + ph.filesz)]);
      if (ph.memsz > ph.filesz) writes.push([ph.paddr + ph.filesz, new Uint8Array(ph.memsz - ph.filesz)]);
      kStart = Math.min(kStart, ph.paddr);
      kEnd = Math.max(kEnd, ph.paddr + ph.memsz);
    });
    if (kStart === Infinity) throw new LoaderError("ELF kernel: no loadable segment has any bytes");
    entry = elf.entry;
    if (entry < ramBase || entry >= ramEnd) {
      throw new LoaderError(
        `ELF kernel: entry point ${hex(entry)} is outside RAM (${hex(ramBase)}-${hex(ramEnd)})`,
      );
    }
  } else {
    kind = "raw";
    kStart = ramBase + KERNEL64_LOAD_ADDR;
    kEnd = kStart + kernelData.length;
    place("kernel", kStart, kernelData.length);
    writes.push([kStart, kernelData]);
    entry = kStart;
  }

  // The initrd: above the kernel, at most 128 MiB into RAM unless the kernel reaches further.
  let initrdStart = alignUp(Math.max(ramBase + Math.min(ramSize / 2, INITRD_MAX_OFFSET), kEnd), PAGE);
  let initrd: { start: number; end: number } | undefined;
  if (opts.initrd) {
    if (opts.initrd.length === 0) throw new LoaderError("initrd file is empty");
    if (initrdStart + opts.initrd.length > ramEnd) {
      throw new LoaderError(
        `initrd (${sizeStr(opts.initrd.length)}) does not fit in RAM: it would start at ${hex(initrdStart)} and RAM ends at ${hex(ramEnd)}`,
      );
    }
    place("initrd", initrdStart, opts.initrd.length);
    writes.push([initrdStart, opts.initrd]);
    initrd = { start: initrdStart, end: initrdStart + opts.initrd.length };
  } else {
    initrdStart = Math.max(initrdStart, ramBase);
  }

  let dtbAddress: number | undefined;
  if (opts.dtb !== undefined) {
    const dtb = typeof opts.dtb === "function" ? opts.dtb(initrd) : opts.dtb;
    if (dtb.length === 0) throw new LoaderError("DTB is empty");
    if (dtb.length > DTB_MAX_SIZE)
      throw new LoaderError(`DTB is ${sizeStr(dtb.length)}; the arm64 boot protocol allows 2 MiB`);
    if (kind === "elf" && kStart >= ramBase + dtb.length) {
      dtbAddress = ramBase; // bare metal: at the start of RAM, below the program
    } else {
      dtbAddress = alignUp(initrd ? initrd.end : initrdStart, DTB_ALIGN);
    }
    if (dtbAddress + dtb.length > ramEnd) {
      throw new LoaderError(
        `DTB (${sizeStr(dtb.length)}) does not fit in RAM after the kernel and initrd: it would start at ${hex(dtbAddress)} and RAM ends at ${hex(ramEnd)}`,
      );
    }
    place("dtb", dtbAddress, dtb.length);
    writes.push([dtbAddress, dtb]);
  }

  // Every check has passed: only now touch guest RAM.
  for (const [pa, bytes] of writes) if (bytes.length > 0) ram.write(pa, bytes);
  return {
    kind,
    entry,
    kernel: { start: kStart, end: kEnd },
    dtbAddress,
    initrd,
    linuxBoot: kind !== "elf",
    regions,
  };
}
