import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { virtioFromFlags } from "../src/cli/run.ts";
import { MemoryBlockBackend, VIRTIO_BLK_S, VIRTIO_BLK_T } from "../src/devices/virtio/blk.ts";
import { VIRTIO_MMIO, VirtioMmio } from "../src/devices/virtio/mmio.ts";
import { PAGE_DIRTY, PAGE_WRITTEN } from "../src/hv/vm.ts";
import { findNode, getProp, parseFdt, propU32s } from "../src/machine/fdt.ts";
import { VIRT } from "../src/machine/memory-map.ts";
import { type VirtConfig, VirtMachine } from "../src/machine/virt.ts";
import { TestBench } from "./support/virtio-driver.ts";

const hasDtc = spawnSync("dtc", ["--version"]).status === 0;
const MiB = 1024 * 1024;
/** A kernel that is a single WFI loop: enough for the board to build and place its DTB. */
const kernel = Uint8Array.of(0x7f, 0x20, 0x03, 0xd5, 0xff, 0xff, 0xff, 0x17);
const slotBase = (n: number) => VIRT.VIRTIO_MMIO.base + n * VIRT.VIRTIO_MMIO.size;
const machine = (over: Partial<VirtConfig> = {}) => new VirtMachine({ memory: 64 * MiB, kernel, ...over });

/** A driver bench on transport `n` of a machine, reaching it through the machine's MMIO bus. */
function benchOn(m: VirtMachine, n: number): TestBench {
  const bus = m.vm.bus;
  return new TestBench(
    undefined,
    {},
    {
      mmio: m.virtio[n]!,
      ram: m.vm.ram,
      read: (off, size) => bus.mmioRead!(slotBase(n) + off, size)!,
      write: (off, size, v) => {
        assert.ok(bus.mmioWrite!(slotBase(n) + off, size, v));
      },
    },
  );
}

/** GICD_ISPENDR bit of SPI `spi` (INTID 32 + spi). */
function spiPending(m: VirtMachine, spi: number): boolean {
  const intid = 32 + spi;
  return ((m.gic.distRead(0x200 + 4 * (intid >> 5), 4) >>> (intid & 31)) & 1) === 1;
}

test("the FDT lists the 32 virtio-mmio transports exactly as QEMU's virt does, lowest first", () => {
  const ours = parseFdt(machine().dtb).root;
  const qemu = parseFdt(
    new Uint8Array(readFileSync(new URL("fixtures/qemu-virt-gicv3-smp4.dtb", import.meta.url))),
  ).root;
  const names = (t: typeof ours) => t.children.map((c) => c.name).filter((x) => x.startsWith("virtio_mmio@"));
  assert.equal(names(ours).length, 32);
  assert.deepEqual(names(ours), names(qemu));
  for (const name of names(qemu))
    assert.deepEqual(findNode(ours, `/${name}`), findNode(qemu, `/${name}`), name);
  const last = findNode(ours, "/virtio_mmio@a003e00")!;
  assert.deepEqual(propU32s(getProp(last, "interrupts")!), [0, 47, 1]);
  assert.deepEqual(propU32s(getProp(last, "reg")!), [0, 0x0a003e00, 0, 0x200]);
  assert.ok(getProp(last, "dma-coherent"));
});

test("dtc reads the board's tree with virtio nodes without a warning", {
  skip: !hasDtc && "dtc not installed",
}, () => {
  const r = spawnSync("dtc", ["-I", "dtb", "-O", "dts", "-"], { input: machine().dtb, encoding: "utf8" });
  assert.equal(r.status, 0);
  assert.equal(r.stderr, "");
  assert.equal((r.stdout.match(/compatible = "virtio,mmio";/g) ?? []).length, 32);
});

test("every slot answers MagicValue, Version 2 and the QEMU vendor; empty slots DeviceID 0", () => {
  const m = machine({
    virtio: [{ kind: "blk", backend: new MemoryBlockBackend(4096) }, { kind: "rng" }, { kind: "console" }],
  });
  const bus = m.vm.bus;
  const ids: number[] = [];
  for (let n = 0; n < 32; n++) {
    assert.equal(bus.mmioRead!(slotBase(n) + VIRTIO_MMIO.MAGIC_VALUE, 4), 0x74726976, `slot ${n}`);
    assert.equal(bus.mmioRead!(slotBase(n) + VIRTIO_MMIO.VERSION, 4), 2);
    assert.equal(bus.mmioRead!(slotBase(n) + VIRTIO_MMIO.VENDOR_ID, 4), 0x554d4551);
    ids.push(bus.mmioRead!(slotBase(n) + VIRTIO_MMIO.DEVICE_ID, 4)!);
  }
  // The first device sits in the highest transport, as QEMU plugs -device options.
  assert.deepEqual(ids, [...new Array(29).fill(0), 3, 4, 2]);
  assert.equal(bus.mmioRead!(VIRT.VIRTIO_MMIO.base + 32 * 0x200, 4), null, "nothing past the last slot");
  assert.ok(machine().virtio.every((t) => t.device === null));
});

test("components: the GIC, UART and RTC, then each occupied transport, named by address", () => {
  const m = machine({ virtio: [{ kind: "rng" }, { kind: "blk", backend: new MemoryBlockBackend(512) }] });
  assert.deepEqual(
    m.components.map((c) => c.stateName),
    ["gicv3@8000000", "pl011@9000000", "pl031@9010000", "virtio-mmio@a003c00", "virtio-mmio@a003e00"],
  );
  assert.ok(m.components.slice(3).every((c) => c instanceof VirtioMmio));
  assert.deepEqual(
    machine().components.map((c) => c.stateName),
    ["gicv3@8000000", "pl011@9000000", "pl031@9010000"],
  );
});

test("a disk on the board: a read lands in guest RAM, marks its page dirty, raises SPI 47", () => {
  const disk = new MemoryBlockBackend(8 * 512);
  disk.bytes.fill(0x3c, 512, 1024);
  const m = machine({ virtio: [{ kind: "blk", backend: disk }] });
  // Linux sets the SPI edge-triggered, as the FDT says.
  const intid = 32 + 47;
  m.gic.distWrite(0xc00 + 4 * (intid >> 4), 4, 2 << (2 * (intid & 15)));
  const b = benchOn(m, 31);
  const [q] = b.init(1);
  m.vm.enableDirtyLog();
  const hdr = b.alloc(16);
  b.dv.setUint32(b.off(hdr), VIRTIO_BLK_T.IN, true);
  b.dv.setUint32(b.off(hdr) + 8, 1, true);
  const data = b.alloc(512, 4096); // a page of its own
  const status = b.alloc(1, 4096);
  q!.add([
    { addr: hdr, len: 16 },
    { addr: data, len: 512, write: true },
    { addr: status, len: 1, write: true },
  ]);
  assert.equal(spiPending(m, 47), false);
  q!.kick();
  assert.equal(b.get(status, 1)[0], VIRTIO_BLK_S.OK);
  assert.ok(b.get(data, 512).every((x) => x === 0x3c));
  const page = (pa: number) => (pa - m.vm.ramBase) >> 12;
  for (const pa of [data, status, q!.used]) {
    assert.equal(m.vm.pageFlags[page(pa)], PAGE_DIRTY | PAGE_WRITTEN, `page of 0x${pa.toString(16)}`);
  }
  const log = m.vm.getDirtyLog();
  assert.ok(log[page(data) >> 3]! & (1 << (page(data) & 7)), "the dirty log has the DMA'd page");
  assert.equal(spiPending(m, 47), true);
  assert.equal(m.virtio[31]!.irqLevel, true);
  b.ack();
  assert.equal(m.virtio[31]!.irqLevel, false);
});

test("deterministic runs: the board's rng gives the same bytes every time", () => {
  const draw = (deterministic: boolean) => {
    const m = machine({ deterministic, virtio: [{ kind: "rng" }] });
    const b = benchOn(m, 31);
    const [q] = b.init(1);
    const buf = b.alloc(64);
    q!.add([{ addr: buf, len: 64, write: true }]);
    q!.kick();
    return Buffer.from(b.get(buf, 64)).toString("hex");
  };
  assert.equal(draw(true), draw(true));
  assert.notEqual(draw(false), draw(false));
  assert.notEqual(draw(true), "00".repeat(64));
});

test("host input goes to the UART and the virtio console; both write to the host's output", () => {
  const out: string[] = [];
  const m = machine({
    virtio: [{ kind: "console" }],
    serialOutput: (x) => out.push(new TextDecoder().decode(x)),
  });
  const b = benchOn(m, 31);
  const [rx, tx] = b.init(2);
  const inbuf = b.alloc(16);
  rx!.add([{ addr: inbuf, len: 16, write: true }]);
  rx!.kick();
  m.consoleInput(new TextEncoder().encode("ls\n"));
  assert.equal(new TextDecoder().decode(b.get(inbuf, 3)), "ls\n");
  assert.equal(m.uart.read(0, 4), 0x6c, "the UART got it too");
  const t = b.alloc(4);
  b.put(t, new TextEncoder().encode("hvc0"));
  tx!.add([{ addr: t, len: 4 }]);
  tx!.kick();
  assert.deepEqual(out, ["hvc0"]);
  const plain = machine();
  plain.consoleInput(Uint8Array.of(0x41));
  assert.equal(plain.uart.read(0, 4), 0x41);
  assert.throws(() => machine({ virtio: [{ kind: "console" }, { kind: "console" }] }), /one virtio console/);
  assert.throws(() => machine({ virtio: new Array(33).fill({ kind: "rng" }) }), /32 slots/);
});

test("transport state through the board's component list: save, load into a fresh board", () => {
  const disk = new MemoryBlockBackend(4 * 512);
  const m = machine({ virtio: [{ kind: "blk", backend: disk }, { kind: "rng" }], deterministic: true });
  const b = benchOn(m, 31);
  b.init(1);
  const saved = m.components.map((c) => [
    c.stateName,
    c.stateVersion,
    JSON.parse(JSON.stringify(c.saveState())),
  ]);
  const m2 = machine({ virtio: [{ kind: "blk", backend: disk }, { kind: "rng" }], deterministic: true });
  m2.components.forEach((c, i) => {
    const [name, version, s] = saved[i]!;
    assert.equal(c.stateName, name);
    c.loadState(s, version);
  });
  assert.equal(m2.vm.bus.mmioRead!(slotBase(31) + VIRTIO_MMIO.STATUS, 4), 0x0f);
  // A board whose slots hold other devices refuses the section.
  const m3 = machine({ virtio: [{ kind: "rng" }, { kind: "rng" }], deterministic: true });
  const blkState = saved.find(([n]) => n === "virtio-mmio@a003e00")!;
  assert.throws(() => m3.virtio[31]!.loadState(blkState[2], blkState[1]), /device ID 2; this slot has 4/);
});

test("--drive and --device: QEMU's spellings, validated", () => {
  const dir = mkdtempSync(join(tmpdir(), "armbox-drive-"));
  try {
    const img = join(dir, "a,b.img");
    writeFileSync(img, new Uint8Array(1024));
    const v = virtioFromFlags({
      drive: [
        `file=${img.replace(",", ",,")},format=raw,readonly=on,serial=disk0`,
        `${img.replace(",", ",,")}`,
      ],
      device: ["virtio-rng-device", "virtio-serial-device,id=con0"],
    });
    assert.deepEqual(
      v.map((d) => d.kind),
      ["blk", "blk", "rng", "console"],
    );
    const d0 = v[0] as { kind: "blk"; readOnly?: boolean; serial?: string; backend: { size: number } };
    assert.equal(d0.readOnly, true);
    assert.equal(d0.serial, "disk0");
    assert.equal(d0.backend.size, 1024);
    assert.equal((v[1] as { readOnly?: boolean }).readOnly, false);
    assert.equal(
      (virtioFromFlags({ drive: [`file=${img.replace(",", ",,")},readonly`] })[0] as { readOnly?: boolean })
        .readOnly,
      true,
    );
    const bad: [Parameters<typeof virtioFromFlags>[0], RegExp][] = [
      [{ drive: [`file=${join(dir, "none.img")}`] }, /no such file/],
      [{ drive: ["format=raw"] }, /file=PATH is required/],
      [{ drive: [`file=${img.replace(",", ",,")},format=qcow2`] }, /raw only/],
      [{ drive: [`file=${img.replace(",", ",,")},if=ide`] }, /if=ide is not supported/],
      [{ drive: [`file=${img.replace(",", ",,")},readonly=maybe`] }, /on or off/],
      [{ drive: [`file=${img.replace(",", ",,")},cache=none`] }, /unknown property 'cache'/],
      [{ device: ["e1000"] }, /unknown device/],
      [{ device: ["virtio-rng-device,max-bytes=10"] }, /unknown property/],
    ];
    for (const [flags, re] of bad) assert.throws(() => virtioFromFlags(flags), re);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
