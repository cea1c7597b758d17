/**
 * The device tree of QEMU's `virt` board (hw/arm/virt.c create_fdt and the fdt_add_* helpers,
 * plus the /chosen properties hw/arm/boot.c adds at load time), for the devices armbox
 * emulates. Node names, compatibles, property names and values follow a dump of
 * `qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57` (test/fixtures/qemu-virt-gicv3-smp4.dts),
 * so that a guest sees the board it would see under QEMU.
 */
import {
  buildFdt,
  cells,
  encodeProp,
  FdtError,
  type FdtNode,
  getProp,
  node,
  type PropInput,
  parseFdt,
  propU32s,
  sizedCells,
  u32,
  u64,
} from "./fdt.ts";
import { APB_PCLK_HZ, GIC_REDIST_STRIDE, MAX_GIC_VCPUS, VIRT } from "./memory-map.ts";

export interface VirtFdtConfig {
  cpus: number;
  /** MPIDR_EL1 of each vCPU (affinity fields; the U/MT bits are ignored). */
  mpidrs: number[];
  ramBase: number;
  ramSize: number;
  bootargs: string;
  initrd?: { start: number; end: number };
  psciMethod: "hvc" | "smc";
  kaslrSeed: bigint;
  rngSeed: Uint8Array;
  /**
   * virtio-mmio transports to describe (index n sits at VIRTIO_MMIO.base + n * 0x200, SPI 16 + n);
   * the board lists all 32, as QEMU does, whether or not a device sits behind them.
   */
  virtio?: number[];
}

/** GIC interrupt specifier cells (GICv3 binding): type, number, flags. */
const GIC_SPI = 0;
const GIC_PPI = 1;
const IRQ_TYPE_EDGE_RISING = 1;
const IRQ_TYPE_LEVEL_HIGH = 4;

/**
 * PSCI function IDs as QEMU writes them for a 64-bit guest (PSCI 0.2 binding): the SMC64
 * forms of CPU_SUSPEND, CPU_ON and MIGRATE, the SMC32 form of CPU_OFF (it has no 64-bit one).
 */
export const PSCI_FN = {
  CPU_SUSPEND: 0xc400_0001,
  CPU_OFF: 0x8400_0002,
  CPU_ON: 0xc400_0003,
  MIGRATE: 0xc400_0005,
} as const;

/** Phandles numbered as QEMU numbers them (from 0x8000 up). */
const PHANDLE_CLK = 0x8000;

const hex = (n: number): string => n.toString(16);

/** Builds the virt board's DTB. */
export function buildVirtFdt(cfg: VirtFdtConfig): Uint8Array {
  return buildFdt(virtTree(cfg), { bootCpuId: cfg.mpidrs[0] === undefined ? 0 : affinity(cfg.mpidrs[0]) });
}

/** Affinity fields Aff3..Aff0 of an MPIDR, as the /cpus reg is written (bits 39:32 and 23:0). */
function affinity(mpidr: number): number {
  return mpidr & 0xffffff; // Aff3 (bits 39:32) does not fit a JS u32 input and is 0 for virt
}

/** The tree itself, for callers that want to add nodes before serialising. */
export function virtTree(cfg: VirtFdtConfig): FdtNode {
  if (!Number.isInteger(cfg.cpus) || cfg.cpus < 1 || cfg.cpus > MAX_GIC_VCPUS) {
    throw new RangeError(`virt: ${cfg.cpus} vCPUs; between 1 and ${MAX_GIC_VCPUS} are supported`);
  }
  if (cfg.mpidrs.length !== cfg.cpus) {
    throw new RangeError(`virt: ${cfg.mpidrs.length} MPIDRs given for ${cfg.cpus} vCPUs`);
  }
  const phandleGic = PHANDLE_CLK + cfg.cpus + 1;
  const cpuPhandle = (i: number): number => PHANDLE_CLK + cfg.cpus - i; // QEMU hands them out in reverse

  const psci = node("psci", {
    migrate: PSCI_FN.MIGRATE,
    cpu_on: PSCI_FN.CPU_ON,
    cpu_off: PSCI_FN.CPU_OFF,
    cpu_suspend: PSCI_FN.CPU_SUSPEND,
    method: cfg.psciMethod,
    compatible: ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"],
  });

  const memory = node(`memory@${hex(cfg.ramBase)}`, {
    reg: cells(u64(cfg.ramBase), u64(cfg.ramSize)),
    device_type: "memory",
  });

  const uart = node(`pl011@${hex(VIRT.UART.base)}`, {
    "clock-names": ["uartclk", "apb_pclk"],
    clocks: [PHANDLE_CLK, PHANDLE_CLK],
    interrupts: [GIC_SPI, VIRT.UART.spi, IRQ_TYPE_LEVEL_HIGH],
    reg: cells(u64(VIRT.UART.base), u64(VIRT.UART.size)),
    compatible: ["arm,pl011", "arm,primecell"],
  });

  // PMUv3 (ID_AA64DFR0_EL1.PMUVer = 1): its overflow interrupt is PPI 7 (INTID 23).
  const pmu = node("pmu", {
    interrupts: [GIC_PPI, 7, IRQ_TYPE_LEVEL_HIGH],
    compatible: "arm,armv8-pmuv3",
  });

  const rtc = node(`pl031@${hex(VIRT.RTC.base)}`, {
    "clock-names": "apb_pclk",
    clocks: PHANDLE_CLK,
    interrupts: [GIC_SPI, VIRT.RTC.spi, IRQ_TYPE_LEVEL_HIGH],
    reg: cells(u64(VIRT.RTC.base), u64(VIRT.RTC.size)),
    compatible: ["arm,pl031", "arm,primecell"],
  });

  // GICv3 binding: reg = distributor, then the redistributor region(s). QEMU describes the
  // whole 0xf60000 window; we describe the frames that exist (two 64 KiB frames per vCPU),
  // so that a guest walking the region never touches an unbacked frame.
  const intc = node(
    `intc@${hex(VIRT.GIC_DIST.base)}`,
    {
      phandle: phandleGic,
      reg: cells(
        u64(VIRT.GIC_DIST.base),
        u64(VIRT.GIC_DIST.size),
        u64(VIRT.GIC_REDIST.base),
        u64(cfg.cpus * GIC_REDIST_STRIDE),
      ),
      "#redistributor-regions": 1,
      compatible: "arm,gic-v3",
      interrupts: [GIC_PPI, 9, IRQ_TYPE_LEVEL_HIGH], // maintenance interrupt
      ranges: true,
      "#size-cells": 2,
      "#address-cells": 2,
      "interrupt-controller": true,
      "#interrupt-cells": 3,
    },
    [],
  );

  const cpuNodes: FdtNode[] = [];
  for (let i = 0; i < cfg.cpus; i++) {
    const aff = affinity(cfg.mpidrs[i]!);
    cpuNodes.push(
      node(`cpu@${hex(aff)}`, {
        phandle: cpuPhandle(i),
        reg: aff,
        "enable-method": "psci",
        compatible: "arm,cortex-a57",
        device_type: "cpu",
      }),
    );
  }
  // cpu-map (Documentation/devicetree/bindings/cpu/cpu-topology.txt): QEMU's default topology
  // for virt is one socket, one cluster, one core per vCPU.
  const cores = cpuNodes.map((_, i) => node(`core${i}`, { cpu: cpuPhandle(i) }));
  const cpus = node("cpus", { "#size-cells": 0, "#address-cells": 1 }, [
    node("cpu-map", {}, [node("socket0", {}, [node("cluster0", {}, cores)])]),
    ...cpuNodes,
  ]);

  // Secure physical, non-secure physical, virtual, hypervisor timer PPIs (arch timer binding).
  const timer = node("timer", {
    interrupts: [
      GIC_PPI,
      13,
      IRQ_TYPE_LEVEL_HIGH,
      GIC_PPI,
      14,
      IRQ_TYPE_LEVEL_HIGH,
      GIC_PPI,
      11,
      IRQ_TYPE_LEVEL_HIGH,
      GIC_PPI,
      10,
      IRQ_TYPE_LEVEL_HIGH,
    ],
    "always-on": true,
    compatible: ["arm,armv8-timer", "arm,armv7-timer"],
  });

  const clk = node("apb-pclk", {
    phandle: PHANDLE_CLK,
    "clock-output-names": "clk24mhz",
    "clock-frequency": APB_PCLK_HZ,
    "#clock-cells": 0,
    compatible: "fixed-clock",
  });

  // QEMU adds the nodes from the highest transport down, each in front of the last, so the
  // blob lists them lowest address first (hw/arm/virt.c create_virtio_devices).
  const virtio: FdtNode[] = [];
  const slots = [...(cfg.virtio ?? [])].sort((a, b) => a - b);
  for (const [i, n] of slots.entries()) {
    if (!Number.isInteger(n) || n < 0 || n >= VIRT.VIRTIO_MMIO.count) {
      throw new RangeError(`virt: virtio-mmio transport ${n} does not exist`);
    }
    if (i > 0 && slots[i - 1] === n) throw new RangeError(`virt: virtio-mmio transport ${n} is listed twice`);
    const base = VIRT.VIRTIO_MMIO.base + n * VIRT.VIRTIO_MMIO.size;
    virtio.push(
      node(`virtio_mmio@${hex(base)}`, {
        "dma-coherent": true,
        interrupts: [GIC_SPI, VIRT.VIRTIO_MMIO.spi + n, IRQ_TYPE_EDGE_RISING],
        reg: cells(u64(base), u64(VIRT.VIRTIO_MMIO.size)),
        compatible: "virtio,mmio",
      }),
    );
  }

  if (cfg.rngSeed.length % 4 !== 0) throw new RangeError("virt: rng-seed must be a whole number of cells");
  const chosen: [string, PropInput][] = [];
  if (cfg.initrd) {
    // hw/arm/boot.c writes one cell when the address fits, as here; Linux reads 1 or 2.
    const cell = (a: number): Uint8Array => (a <= 0xffffffff ? u32(a) : u64(a));
    chosen.push(["linux,initrd-end", cell(cfg.initrd.end)], ["linux,initrd-start", cell(cfg.initrd.start)]);
  }
  if (cfg.bootargs !== "") chosen.push(["bootargs", cfg.bootargs]);
  chosen.push(
    ["stdout-path", `/pl011@${hex(VIRT.UART.base)}`],
    ["rng-seed", cfg.rngSeed.slice()],
    ["kaslr-seed", u64(cfg.kaslrSeed)],
  );

  return node(
    "",
    {
      "interrupt-parent": phandleGic,
      model: "linux,dummy-virt",
      "#size-cells": 2,
      "#address-cells": 2,
      compatible: "linux,dummy-virt",
    },
    [psci, memory, ...virtio, rtc, uart, pmu, intc, cpus, timer, clk, node("chosen", chosen)],
  );
}

export interface DtbFixup {
  ramBase: number;
  ramSize: number;
  bootargs: string;
  initrd?: { start: number; end: number };
}

/**
 * Prepares a user-supplied device tree (`--dtb FILE`) the way hw/arm/boot.c arm_load_dtb
 * does: the blob is validated (it is untrusted input: FdtError on anything malformed), the
 * /memory node's reg is set to the guest RAM (with the root's #address-cells/#size-cells),
 * and /chosen gets bootargs and the initrd range (created if missing). Everything else is
 * kept as the user wrote it.
 */
export function fixupUserDtb(blob: Uint8Array, fix: DtbFixup): Uint8Array {
  const fdt = parseFdt(blob);
  const root = fdt.root;
  const cellsOf = (name: string, dflt: number): 1 | 2 => {
    const v = getProp(root, name);
    const n = v ? propU32s(v)[0] : dflt;
    if (n !== 1 && n !== 2) throw new FdtError(`${name} of the root node is ${n}; only 1 or 2 are supported`);
    return n;
  };
  const ac = cellsOf("#address-cells", 2);
  const sc = cellsOf("#size-cells", 1);
  if (ac === 1 && fix.ramBase + fix.ramSize > 2 ** 32) {
    throw new FdtError("the DTB's #address-cells = 1 cannot describe the guest RAM");
  }
  if (sc === 1 && fix.ramSize >= 2 ** 32)
    throw new FdtError("the DTB's #size-cells = 1 cannot describe the guest RAM");
  const reg = cells(sizedCells(ac, fix.ramBase), sizedCells(sc, fix.ramSize));
  const setProp = (n: FdtNode, name: string, value: Uint8Array): void => {
    const i = n.props.findIndex((p) => p.name === name);
    if (i >= 0) n.props[i] = { name, value };
    else n.props.push({ name, value });
  };
  const dropProp = (n: FdtNode, name: string): void => {
    const i = n.props.findIndex((p) => p.name === name);
    if (i >= 0) n.props.splice(i, 1);
  };
  const memories = root.children.filter((c) => c.name === "memory" || c.name.startsWith("memory@"));
  if (memories.length === 0) {
    root.children.push(node(`memory@${hex(fix.ramBase)}`, { device_type: "memory", reg }));
  } else {
    for (const m of memories) setProp(m, "reg", reg);
  }
  let chosen = root.children.find((c) => c.name === "chosen");
  if (!chosen) {
    chosen = node("chosen");
    root.children.push(chosen);
  }
  if (fix.bootargs !== "") setProp(chosen, "bootargs", encodeProp(fix.bootargs));
  if (fix.initrd) {
    const cell = (a: number): Uint8Array => (a <= 0xffffffff ? u32(a) : u64(a));
    setProp(chosen, "linux,initrd-start", cell(fix.initrd.start));
    setProp(chosen, "linux,initrd-end", cell(fix.initrd.end));
  } else {
    dropProp(chosen, "linux,initrd-start");
    dropProp(chosen, "linux,initrd-end");
  }
  return buildFdt(root, { reservations: fdt.reservations, bootCpuId: fdt.bootCpuId });
}
