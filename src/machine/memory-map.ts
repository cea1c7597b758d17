/**
 * QEMU's `virt` board memory map (hw/arm/virt.c, base_memmap) and interrupt assignment,
 * for the parts armbox emulates. SPI n is INTID 32 + n.
 */
export const VIRT = {
  GIC_DIST: { base: 0x0800_0000, size: 0x1_0000 },
  /** GICv3 redistributors: two 64 KiB frames (RD_base, SGI_base) per vCPU. */
  GIC_REDIST: { base: 0x080a_0000, size: 0x00f6_0000 },
  UART: { base: 0x0900_0000, size: 0x1000, spi: 1 },
  RTC: { base: 0x0901_0000, size: 0x1000, spi: 2 },
  VIRTIO_MMIO: { base: 0x0a00_0000, size: 0x200, count: 32, spi: 16 },
  RAM: { base: 0x4000_0000 },
} as const;

/** Per-vCPU redistributor stride (GICv3: RD_base + SGI_base frames). */
/** Guest RAM sizes the board takes: all of RAM lives in one WebAssembly memory (4 GiB
 * addressable, less the state area), so 3 GiB at most. */
export const MIN_GUEST_RAM = 16 * 1024 * 1024;
export const MAX_GUEST_RAM = 3 * 1024 ** 3;

export const GIC_REDIST_STRIDE = 0x2_0000;
/** How many redistributors fit the region: the most vCPUs the board supports. */
export const MAX_GIC_VCPUS = VIRT.GIC_REDIST.size / GIC_REDIST_STRIDE; // 123

/** Arch timer PPIs as INTIDs: the vCPU layer's (KVM's) defaults, which the FDT describes. */
export { TIMER_PPI } from "../hv/timer.ts";

/** The PL011's clock as QEMU's virt declares it (apb-pclk, 24 MHz). */
export const APB_PCLK_HZ = 24_000_000;
