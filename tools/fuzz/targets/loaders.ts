/**
 * The boot loaders (src/machine/loader.ts, elf.ts, fdt.ts): real ELF guests, an arm64
 * Image, a device tree and an initrd, mutated (bytes, and header fields of the ELF and
 * the Image at their offsets), then loaded into a bounded fake RAM the way `armbox run`
 * does. Refused: LoaderError, ElfError or FdtError with a one-line message. A write that
 * falls outside RAM, or any other exception, is a crash.
 */
import { ElfError } from "../../../src/machine/elf.ts";
import { buildFdt, FdtError, node, parseFdt } from "../../../src/machine/fdt.ts";
import { type GuestRam, LoaderError, loadKernel } from "../../../src/machine/loader.ts";
import { Rng } from "../../difftest/prng.ts";
import { type Chunk, type FuzzTarget, type Recorder, refusalProblem } from "../core.ts";
import { guestFile } from "../corpus.ts";
import { interestingU32, mutateBytes } from "../mutate.ts";

const ALLOWED = [LoaderError, ElfError, FdtError];
const RAM_BASE = 0x4000_0000;
const RAM_SIZE = 16 << 20;

class BoundedRam implements GuestRam {
  readonly ramBase = RAM_BASE;
  readonly ramSize = RAM_SIZE;
  outside: string | null = null;
  write(pa: number, bytes: Uint8Array): void {
    if (!Number.isSafeInteger(pa) || pa < RAM_BASE || pa + bytes.length > RAM_BASE + RAM_SIZE) {
      this.outside ??= `wrote ${bytes.length} bytes at 0x${pa.toString(16)}, outside RAM`;
    }
  }
}

function image(): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0x14000010, true); // b #64
  dv.setBigUint64(8, 0x80000n, true); // text_offset
  dv.setBigUint64(16, 4096n, true); // image_size
  dv.setBigUint64(24, 0xan, true); // flags: 4K pages, anywhere
  dv.setUint32(0x38, 0x644d5241, true); // "ARM\x64"
  return b;
}

const SEEDS = (): { kind: string; bytes: Uint8Array }[] => [
  { kind: "elf", bytes: guestFile("migration/bin/counter.elf") },
  { kind: "elf", bytes: guestFile("seed/bin/seed.elf") },
  { kind: "image", bytes: image() },
  {
    kind: "dtb",
    bytes: buildFdt(
      node("", { "#address-cells": 2, "#size-cells": 2 }, [node("chosen", { bootargs: "console=ttyAMA0" })]),
    ),
  },
  { kind: "initrd", bytes: new Uint8Array(8192).fill(0x5a) },
];

function mutate(b: Uint8Array, rng: Rng): Uint8Array {
  if (rng.chance(0.4)) {
    // a header field: the first 64 bytes (ELF header, Image header) or a program header
    const out = b.slice();
    const at = rng.chance(0.7)
      ? rng.int(Math.min(64, out.length))
      : rng.int(Math.min(out.length, 64 + 56 * 4));
    const v = interestingU32(rng);
    for (let i = 0; i < 4 && at + i < out.length; i++) out[at + i] = (v >>> (8 * i)) & 0xff;
    return out;
  }
  let out = b;
  for (let k = rng.chance(0.7) ? 1 : rng.range(2, 4); k > 0; k--) out = mutateBytes(out, rng);
  return out;
}

export const loadersTarget: FuzzTarget = {
  name: "loaders",
  unit: "kernel/DTB/initrd files",
  full: 200_000,
  smoke: 300,
  perInputMs: 2000,
  async run(chunk: Chunk, rec: Recorder): Promise<void> {
    const seeds = SEEDS();
    const kernels = seeds.filter((s) => s.kind === "elf" || s.kind === "image");
    const dtb = seeds.find((s) => s.kind === "dtb")!.bytes;
    const initrd = seeds.find((s) => s.kind === "initrd")!.bytes;
    rec.ready();
    for (let i = chunk.start; i < chunk.start + chunk.count; i++) {
      const rng = new Rng(rec.inputSeed(i));
      const s = rng.pick(seeds);
      const bytes = mutate(s.bytes, rng);
      const ram = new BoundedRam();
      try {
        if (s.kind === "dtb") {
          if (rng.chance(0.5)) parseFdt(bytes);
          loadKernel(ram, { kernel: rng.pick(kernels).bytes, dtb: bytes });
        } else if (s.kind === "initrd") {
          loadKernel(ram, { kernel: kernels[1]!.bytes, initrd: bytes, dtb });
        } else loadKernel(ram, { kernel: bytes, dtb, ...(rng.chance(0.3) ? { initrd } : {}) });
        rec.count(`${s.kind} inputs`);
      } catch (e) {
        const problem = refusalProblem(e, ALLOWED);
        if (problem) rec.crash(i, `${s.kind}: ${problem}`, { bytes });
        else rec.refused(`${s.kind}: ${(e as Error).message}`);
        continue;
      }
      if (ram.outside) rec.crash(i, `${s.kind}: ${ram.outside}`, { bytes });
      else rec.accepted();
    }
  },
};
