import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import fc from "fast-check";
import { type GuestRam, LoaderError, loadKernel } from "../src/machine/loader.ts";
import { start } from "./support/children.ts";

const MiB = 1024 * 1024;
const RAM_BASE = 0x4000_0000;

/** RAM that records writes instead of holding 256 MiB. */
class FakeRam implements GuestRam {
  writes: { pa: number; bytes: Uint8Array }[] = [];
  constructor(
    readonly ramSize = 256 * MiB,
    readonly ramBase = RAM_BASE,
  ) {}
  write(pa: number, bytes: Uint8Array): void {
    assert.ok(pa >= this.ramBase && pa + bytes.length <= this.ramBase + this.ramSize, "write outside RAM");
    this.writes.push({ pa, bytes: bytes.slice() });
  }
  at(pa: number): Uint8Array | undefined {
    return this.writes.find((w) => w.pa === pa)?.bytes;
  }
}

/** An arm64 Image: `b .` then the booting.rst header. */
function image(textOffset: number, imageSize: number, fileSize = 0x1000, flags = 0xa): Uint8Array {
  const b = new Uint8Array(fileSize);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0x1400_0000, true);
  dv.setBigUint64(8, BigInt(textOffset), true);
  dv.setBigUint64(16, BigInt(imageSize), true);
  dv.setBigUint64(24, BigInt(flags), true);
  b.set([0x41, 0x52, 0x4d, 0x64], 0x38);
  return b;
}

/** A minimal ELF64 AArch64 executable with the given PT_LOAD segments. */
function elf(
  entry: number,
  segs: { paddr: number; vaddr?: number; data: Uint8Array; memsz?: number }[],
  machine = 183,
): Uint8Array {
  const phoff = 64;
  let off = phoff + 56 * segs.length;
  const total = off + segs.reduce((n, s) => n + s.data.length, 0);
  const b = new Uint8Array(total);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 2, true);
  dv.setUint16(18, machine, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, BigInt(entry), true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, segs.length, true);
  segs.forEach((s, i) => {
    const o = phoff + i * 56;
    dv.setUint32(o, 1, true);
    dv.setUint32(o + 4, 5, true);
    dv.setBigUint64(o + 8, BigInt(off), true);
    dv.setBigUint64(o + 16, BigInt(s.vaddr ?? s.paddr), true);
    dv.setBigUint64(o + 24, BigInt(s.paddr), true);
    dv.setBigUint64(o + 32, BigInt(s.data.length), true);
    dv.setBigUint64(o + 40, BigInt(s.memsz ?? s.data.length), true);
    dv.setBigUint64(o + 48, 0x1000n, true);
    b.set(s.data, off);
    off += s.data.length;
  });
  return b;
}

const raw = new Uint8Array([0x00, 0x00, 0x00, 0x14]); // b .
const dtb = new Uint8Array(0x1000).fill(0xd0);

// Expected values measured with qemu-system-aarch64 7.2 -M virt -m 256M (PC and x0 after the
// boot stub ran); the live test below re-measures them when QEMU is installed.
const QEMU_CASES: {
  name: string;
  kernel: () => Uint8Array;
  initrd?: number;
  mem?: number;
  entry: number;
  dtb: number;
}[] = [
  { name: "raw", kernel: () => raw, entry: 0x4008_0000, dtb: 0x4800_0000 },
  { name: "raw + 1000-byte initrd", kernel: () => raw, initrd: 1000, entry: 0x4008_0000, dtb: 0x4820_0000 },
  { name: "raw + 3 MiB initrd", kernel: () => raw, initrd: 3 * MiB, entry: 0x4008_0000, dtb: 0x4840_0000 },
  { name: "raw, 64 MiB RAM", kernel: () => raw, initrd: 1000, mem: 64, entry: 0x4008_0000, dtb: 0x4220_0000 },
  { name: "Image text_offset 0", kernel: () => image(0, 2 * MiB), entry: 0x4020_0000, dtb: 0x4800_0000 },
  {
    name: "Image text_offset 0x80000",
    kernel: () => image(0x8_0000, 2 * MiB),
    entry: 0x4008_0000,
    dtb: 0x4800_0000,
  },
  {
    name: "Image image_size 0 (old kernel)",
    kernel: () => image(0x8_0000, 0),
    entry: 0x4008_0000,
    dtb: 0x4800_0000,
  },
  {
    name: "Image text_offset 0x800",
    kernel: () => image(0x800, 2 * MiB),
    entry: 0x4020_0800,
    dtb: 0x4800_0000,
  },
  {
    name: "Image of 144 MiB pushes the initrd up",
    kernel: () => image(0x1000, 144 * MiB),
    initrd: 1000,
    entry: 0x4000_1000,
    dtb: 0x4920_0000,
  },
];

for (const c of QEMU_CASES) {
  test(`placement as QEMU: ${c.name}`, () => {
    const ram = new FakeRam((c.mem ?? 256) * MiB);
    const r = loadKernel(ram, {
      kernel: c.kernel(),
      initrd: c.initrd ? new Uint8Array(c.initrd) : undefined,
      dtb,
    });
    assert.equal(r.entry, c.entry);
    assert.equal(r.dtbAddress, c.dtb);
    assert.equal(r.linuxBoot, true);
    assert.deepEqual(ram.at(r.dtbAddress!), dtb);
    assert.deepEqual(ram.at(r.entry), c.kernel());
  });
}

test("the initrd goes at RAM + 128 MiB and its range reaches the DTB builder", () => {
  const ram = new FakeRam();
  const initrd = new Uint8Array(1000).fill(7);
  let seen: unknown;
  const r = loadKernel(ram, {
    kernel: image(0, 2 * MiB),
    initrd,
    dtb: (i) => {
      seen = i;
      return dtb;
    },
  });
  assert.deepEqual(r.initrd, { start: 0x4800_0000, end: 0x4800_03e8 });
  assert.deepEqual(seen, r.initrd);
  assert.deepEqual(ram.at(0x4800_0000), initrd);
  assert.equal(r.kind, "image");
  assert.deepEqual(
    r.regions.map((x) => x.name),
    ["kernel", "initrd", "dtb"],
  );
});

test("ELF: segments at p_paddr, bss zeroed, entry from e_entry, DTB at the start of RAM", () => {
  const ram = new FakeRam();
  const text = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const k = elf(0x4010_0004, [
    { paddr: 0x4010_0000, vaddr: 0xffff_0000, data: text },
    { paddr: 0x4020_0000, data: new Uint8Array([9]), memsz: 0x100 },
  ]);
  const r = loadKernel(ram, { kernel: k, dtb });
  assert.equal(r.kind, "elf");
  assert.equal(r.entry, 0x4010_0004);
  assert.equal(r.linuxBoot, false);
  assert.equal(r.dtbAddress, RAM_BASE);
  assert.deepEqual(ram.at(0x4010_0000), text);
  assert.deepEqual(ram.at(0x4020_0000), new Uint8Array([9]));
  assert.deepEqual(ram.at(0x4020_0001), new Uint8Array(0xff));
  assert.deepEqual(r.kernel, { start: 0x4010_0000, end: 0x4020_0100 });
});

test("ELF at the start of RAM: the DTB goes after it", () => {
  const ram = new FakeRam();
  const r = loadKernel(ram, {
    kernel: elf(RAM_BASE, [{ paddr: RAM_BASE, data: raw }]),
    dtb,
    initrd: new Uint8Array(10),
  });
  assert.equal(r.initrd!.start, 0x4800_0000);
  assert.equal(r.dtbAddress, 0x4820_0000);
});

test("gzip'd Image is decompressed through the injected gunzip", () => {
  const ram = new FakeRam();
  const k = image(0, 2 * MiB);
  const r = loadKernel(ram, {
    kernel: new Uint8Array(gzipSync(k)),
    gunzip: (d, max) => new Uint8Array(gunzipSync(d, { maxOutputLength: max })),
  });
  assert.equal(r.entry, 0x4020_0000);
  assert.deepEqual(ram.at(0x4020_0000), k);
  assert.throws(() => loadKernel(ram, { kernel: new Uint8Array(gzipSync(k)) }), /gzip-compressed kernel/);
});

test("clear errors, and nothing written when loading fails", () => {
  const cases: [string, () => Parameters<typeof loadKernel>[1], RegExp, number?][] = [
    ["empty kernel", () => ({ kernel: new Uint8Array(0) }), /kernel file is empty/],
    ["empty initrd", () => ({ kernel: raw, initrd: new Uint8Array(0) }), /initrd file is empty/],
    [
      "kernel larger than RAM",
      () => ({ kernel: new Uint8Array(17 * MiB) }),
      /kernel \(17 MiB at 0x40080000\) does not fit in RAM \(16 MiB/,
      16,
    ],
    ["Image whose image_size exceeds RAM", () => ({ kernel: image(0, 20 * MiB) }), /does not fit in RAM/, 16],
    [
      "initrd too big",
      () => ({ kernel: raw, initrd: new Uint8Array(9 * MiB) }),
      /initrd \(9 MiB\) does not fit in RAM/,
      16,
    ],
    [
      "DTB past the end",
      () => ({ kernel: raw, initrd: new Uint8Array(7 * MiB), dtb }),
      /DTB .* does not fit/,
      16,
    ],
    ["DTB over 2 MiB", () => ({ kernel: raw, dtb: new Uint8Array(3 * MiB) }), /allows 2 MiB/],
    [
      "ELF for x86-64",
      () => ({ kernel: elf(RAM_BASE, [{ paddr: RAM_BASE, data: raw }], 62) }),
      /ELF kernel: ELF file is for x86-64/,
    ],
    [
      "ELF outside RAM",
      () => ({ kernel: elf(0x1000, [{ paddr: 0x1000, data: raw }]) }),
      /ELF segment 0 .* does not fit in RAM/,
    ],
    [
      "ELF linked at a kernel virtual address",
      () => ({ kernel: elf(RAM_BASE, [{ paddr: 0xffff_8000_0000_0000, vaddr: 0x4000_0000, data: raw }]) }),
      /not in RAM/,
    ],
    [
      "overlapping ELF segments",
      () => ({
        kernel: elf(RAM_BASE, [
          { paddr: RAM_BASE, data: new Uint8Array(0x100) },
          { paddr: RAM_BASE + 0x80, data: raw },
        ]),
      }),
      /ELF segment 1 \(0x40000080-0x40000084\) overlaps ELF segment 0/,
    ],
    [
      "ELF entry outside RAM",
      () => ({ kernel: elf(0x10, [{ paddr: RAM_BASE, data: raw }]) }),
      /entry point 0x10 is outside RAM/,
    ],
    [
      "Image text_offset beyond 2 MiB",
      () => ({ kernel: image(0x30_0000, 2 * MiB) }),
      /corrupt arm64 Image header: text_offset/,
    ],
    [
      "Image image_size far too small",
      () => ({ kernel: image(0, 0x1000, 4 * MiB) }),
      /corrupt arm64 Image header: image_size/,
    ],
    ["big-endian Image", () => ({ kernel: image(0, 2 * MiB, 0x1000, 1) }), /big-endian/],
    ["EFI zboot", () => ({ kernel: new Uint8Array([0x4d, 0x5a, 0, 0, 0x7a, 0x69, 0x6d, 0x67, 0]) }), /zboot/],
  ];
  for (const [name, opts, re, mem] of cases) {
    const ram = new FakeRam((mem ?? 256) * MiB);
    assert.throws(
      () => loadKernel(ram, opts()),
      (e: unknown) => e instanceof LoaderError && re.test(e.message),
      name,
    );
    assert.equal(ram.writes.length, 0, `${name}: RAM was written`);
  }
});

test("property: any input is loaded or refused with LoaderError; writes stay in RAM and never overlap", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc
          .record({ t: fc.nat(3 * MiB), s: fc.nat(40 * MiB), f: fc.nat(7) })
          .map((x) => image(x.t, x.s, 0x1000, x.f)),
        fc
          .array(
            fc.record({
              p: fc.integer({ min: RAM_BASE - MiB, max: RAM_BASE + 40 * MiB }),
              n: fc.nat(64),
              m: fc.nat(0x1000),
            }),
            {
              minLength: 1,
              maxLength: 3,
            },
          )
          .map((segs) =>
            elf(
              RAM_BASE + 0x100,
              segs.map((s) => ({ paddr: s.p, data: new Uint8Array(s.n), memsz: s.n + s.m })),
            ),
          ),
      ),
      fc.option(fc.nat(10 * MiB)),
      fc.boolean(),
      (kernel, initrdSize, withDtb) => {
        const ram = new FakeRam(32 * MiB);
        try {
          const r = loadKernel(ram, {
            kernel,
            initrd: initrdSize === null ? undefined : new Uint8Array(initrdSize),
            dtb: withDtb ? dtb : undefined,
          });
          const sorted = [...r.regions].sort((a, b) => a.start - b.start);
          for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i - 1]!.end <= sorted[i]!.start);
          if (r.dtbAddress !== undefined) assert.equal(r.dtbAddress % 8, 0);
        } catch (e) {
          assert.ok(e instanceof LoaderError, String(e));
          assert.equal(ram.writes.length, 0);
        }
      },
    ),
    { numRuns: 500 },
  );
});

const hasQemu = spawnSync("qemu-system-aarch64", ["--version"]).status === 0;

/**
 * Boots QEMU on the kernel and reads PC and x0 from the monitor once the boot stub has run,
 * asking again until it has, however long QEMU takes to start on this host. The stub sits
 * at the start of RAM (hw/arm/boot.c: loader_start is the RAM base) and is a few words
 * long; every kernel here has its entry at RAM + 0x1000 or above and spins there (b .).
 */
async function qemuBoot(
  t: TestContext,
  kernel: Uint8Array,
  initrd: number | undefined,
  mem: number,
): Promise<{ pc: number; x0: number }> {
  const dir = mkdtempSync(join(tmpdir(), "armbox-loader-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "k"), kernel);
  const args = ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-m", `${mem}M`, "-display", "none"];
  args.push("-serial", "none", "-monitor", "stdio", "-kernel", join(dir, "k"));
  if (initrd !== undefined) {
    writeFileSync(join(dir, "i"), new Uint8Array(initrd));
    args.push("-initrd", join(dir, "i"));
  }
  const qemu = start(t, "qemu-system-aarch64", args);
  try {
    for (;;) {
      const from = qemu.stdout.length;
      qemu.send("info registers\n");
      const m = await qemu.waitFor(/PC=([0-9a-f]+) X00=([0-9a-f]+)/, from);
      const got = { pc: Number.parseInt(m[1]!, 16), x0: Number.parseInt(m[2]!, 16) };
      if (got.pc >= 0x4000_1000) return got;
    }
  } finally {
    qemu.send("quit\n");
    await qemu.stop();
  }
}

test("live: QEMU places kernel and DTB as recorded", {
  skip: !hasQemu && "qemu-system-aarch64 not installed",
}, async (t) => {
  for (const c of QEMU_CASES.filter((x) => x.name !== "Image of 144 MiB pushes the initrd up")) {
    const got = await qemuBoot(t, c.kernel(), c.initrd, c.mem ?? 256);
    assert.deepEqual(got, { pc: c.entry, x0: c.dtb }, c.name);
  }
});
