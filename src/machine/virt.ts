/**
 * QEMU's `virt` board, assembled on the KVM-style layer: RAM at 0x4000_0000, the GICv3
 * (in-kernel style), the PL011 and PL031, 32 virtio-mmio transports, a device tree generated
 * from the actual configuration, and direct kernel boot as QEMU's `-kernel` does it.
 */

import type { JitOptions } from "../arch/arm64/jit/jit.ts";
import { MAX_VCPUS } from "../arch/arm64/state.ts";
import { type Output, OutputGate, toSink } from "../devices/output-sink.ts";
import { Pl011 } from "../devices/pl011.ts";
import { Pl031 } from "../devices/pl031.ts";
import { type BlockBackend, VirtioBlk } from "../devices/virtio/blk.ts";
import { VirtioConsole } from "../devices/virtio/console.ts";
import { type VirtioDevice, VirtioMmio } from "../devices/virtio/mmio.ts";
import { RamGuestMemory } from "../devices/virtio/queue.ts";
import { type EntropySource, SeededEntropy, VirtioRng } from "../devices/virtio/rng.ts";
import { GicV3 } from "../hv/gicv3/gicv3.ts";
import { KvmError } from "../hv/onereg.ts";
import { DEFAULT_QUANTUM, Scheduler } from "../hv/scheduler.ts";
import type { HostClock } from "../hv/timer.ts";
import type { Vcpu } from "../hv/vcpu.ts";
import { Vm } from "../hv/vm.ts";
import type { Stateful } from "../lib/state.ts";
import { type LoadResult, loadKernel } from "./loader.ts";
import { GIC_REDIST_STRIDE, MAX_GIC_VCPUS, VIRT } from "./memory-map.ts";
import { buildVirtFdt, fixupUserDtb } from "./virt-fdt.ts";

/** What defines the hardware (and must match between a snapshot and its machine). */
export interface MachineConfig {
  smp: number;
  /** Guest RAM in bytes. */
  memory: number;
  deterministic: boolean;
  psciConduit: "hvc" | "smc";
  semihosting: boolean;
}

/** A virtio device to plug into the board (QEMU's `-device virtio-*-device`, `-drive`). */
export type VirtioDeviceConfig =
  | { kind: "blk"; backend: BlockBackend; readOnly?: boolean; serial?: string }
  | { kind: "rng" }
  | { kind: "console" };

/**
 * What a plugged virtio device is, as the two ends of a migration compare it (the stream's
 * configuration carries the list, in command-line order): its kind, and for a disk its
 * size in bytes and whether it is read-only. The disk's contents are not part of it (they
 * travel by reference, as on shared storage).
 */
export type VirtioDeviceInfo =
  | { kind: "blk"; bytes: number; readOnly: boolean }
  | { kind: "rng" }
  | { kind: "console" };

export interface VirtConfig {
  /** The kernel to boot; without one the machine is built empty, to be restored into. */
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  /** A device tree to use instead of the generated one (--dtb). */
  dtb?: Uint8Array;
  append?: string;
  smp?: number;
  /** Guest RAM in bytes. */
  memory?: number;
  semihosting?: boolean;
  deterministic?: boolean;
  psciConduit?: "hvc" | "smc";
  /** Translate hot guest code to WebAssembly (not part of the hardware: a snapshot may switch). */
  jit?: boolean | JitOptions;
  /** The host's clocks for real time (tests move their own; default the host's). */
  hostClock?: HostClock;
  /**
   * Where the UART's (and the virtio console's) transmitted bytes go; a sink may push back
   * (src/devices/output-sink.ts): the guest then waits, or in deterministic mode the run loop.
   */
  serialOutput?: Output;
  /**
   * virtio devices, in command-line order. As on QEMU's virt, the first sits in the last
   * transport (0x0a003e00, SPI 47), the next one below it, and so on.
   */
  virtio?: readonly VirtioDeviceConfig[];
  /** Decompressor for Image.gz kernels (node:zlib's gunzipSync in the CLI). */
  gunzip?: (data: Uint8Array, maxLength: number) => Uint8Array;
}

/** Number of SPIs the board's GIC implements (QEMU's virt: NUM_IRQS = 256). */
const VIRT_SPIS = 256;

export class VirtMachine {
  readonly vm: Vm;
  readonly vcpus: Vcpu[];
  readonly gic: GicV3;
  readonly uart: Pl011;
  readonly rtc: Pl031;
  /** The 32 virtio-mmio transports; transport n is at 0x0a000000 + n * 0x200, SPI 16 + n. */
  readonly virtio: readonly VirtioMmio[];
  private console: VirtioConsole | null = null;
  /** The console devices' output; `held` stops a deterministic run loop while the host is behind. */
  readonly output: OutputGate;
  /** The device tree the guest was given. */
  readonly dtb: Uint8Array;
  readonly boot: LoadResult | null;
  readonly smp: number;
  readonly config: MachineConfig;
  /** The plugged virtio devices, in command-line order (cfg.virtio described). */
  readonly devices: readonly VirtioDeviceInfo[];
  private sched: Scheduler | null = null;
  /** What the loader wrote (kernel, initrd, DTB), written again on a reset as QEMU's ROM blobs. */
  private readonly images: [number, Uint8Array][] = [];

  constructor(cfg: VirtConfig) {
    const smp = cfg.smp ?? 1;
    const maxCpus = Math.min(MAX_VCPUS, MAX_GIC_VCPUS);
    if (!Number.isInteger(smp) || smp < 1 || smp > maxCpus) {
      throw new KvmError(
        "EINVAL",
        `--smp ${smp}: the virt board's GICv3 supports 1 to ${maxCpus} vCPUs here`,
      );
    }
    const memory = cfg.memory ?? 256 * 1024 * 1024;
    this.smp = smp;
    const deterministic = cfg.deterministic ?? false;
    this.config = {
      smp,
      memory,
      deterministic,
      psciConduit: cfg.psciConduit ?? "hvc",
      semihosting: cfg.semihosting ?? false,
    };
    this.vm = new Vm({
      ramBase: VIRT.RAM.base,
      ramSize: memory,
      clock: deterministic ? "deterministic" : "realtime",
      psciConduit: cfg.psciConduit ?? "hvc",
      semihosting: cfg.semihosting ?? false,
      jit: cfg.jit ?? false,
      ...(cfg.hostClock ? { hostClock: cfg.hostClock } : {}),
    });
    const vm = this.vm;
    this.vcpus = Array.from({ length: smp }, (_, i) => vm.createVcpu(i));
    this.gic = vm.createIrqchip((o) => new GicV3({ ...o, name: sectionName("gicv3", VIRT.GIC_DIST.base) }), {
      distBase: VIRT.GIC_DIST.base,
      distSize: VIRT.GIC_DIST.size,
      redistBase: VIRT.GIC_REDIST.base,
      redistStride: GIC_REDIST_STRIDE,
      spis: VIRT_SPIS,
    }) as GicV3;
    const spiLine = (spi: number) => ({ set: (level: boolean) => this.gic.setSpi(32 + spi, level) });
    this.output = new OutputGate(toSink(cfg.serialOutput ?? (() => {})), deterministic);
    this.uart = new Pl011({
      irq: spiLine(VIRT.UART.spi),
      output: this.output.device,
      name: sectionName("pl011", VIRT.UART.base),
    });
    // The RTC reads wall-clock seconds, or a fixed epoch in deterministic mode.
    const epoch = Math.floor(Date.now() / 1000);
    this.rtc = new Pl031({
      irq: spiLine(VIRT.RTC.spi),
      name: sectionName("pl031", VIRT.RTC.base),
      clock: deterministic
        ? () => 1_700_000_000 + Number(this.vcpus[0]!.timer.physicalCount() / 62_500_000n)
        : () => Math.floor(Date.now() / 1000) || epoch,
    });
    vm.registerMmio(VIRT.UART.base, this.uart);
    vm.registerMmio(VIRT.RTC.base, this.rtc);

    // KASLR and RNG seeds: fixed in deterministic mode so that runs repeat exactly.
    const rngSeed = new Uint8Array(32);
    if (deterministic) for (let i = 0; i < rngSeed.length; i++) rngSeed[i] = (i * 37 + 11) & 0xff;
    else crypto.getRandomValues(rngSeed);

    // virtio-mmio: every slot is a transport (an empty one reads DeviceID 0), as on QEMU.
    const mem = new RamGuestMemory(vm.ram, vm.ramBase, (pa, len) => vm.markDirty(pa, len));
    const devices: (VirtioDevice | undefined)[] = new Array(VIRT.VIRTIO_MMIO.count).fill(undefined);
    const wanted = cfg.virtio ?? [];
    if (wanted.length > VIRT.VIRTIO_MMIO.count) {
      throw new KvmError(
        "E2BIG",
        `${wanted.length} virtio devices; the virt board has ${VIRT.VIRTIO_MMIO.count} slots`,
      );
    }
    this.devices = wanted.map(
      (d): VirtioDeviceInfo =>
        d.kind === "blk"
          ? { kind: "blk", bytes: d.backend.size, readOnly: d.readOnly ?? false }
          : { kind: d.kind },
    );
    wanted.forEach((d, i) => {
      devices[VIRT.VIRTIO_MMIO.count - 1 - i] = this.makeVirtio(
        d,
        deterministic,
        rngSeed,
        this.output.device,
      );
    });
    this.virtio = devices.map((device, n) => {
      const base = VIRT.VIRTIO_MMIO.base + n * VIRT.VIRTIO_MMIO.size;
      const t = new VirtioMmio({
        ...(device ? { device } : {}),
        mem,
        irq: spiLine(VIRT.VIRTIO_MMIO.spi + n),
        name: sectionName("virtio-mmio", base),
      });
      vm.registerMmio(base, t);
      return t;
    });
    const kaslrSeed = new DataView(rngSeed.buffer).getBigUint64(24, true);
    const userDtb = cfg.dtb;
    const makeDtb = (initrd: { start: number; end: number } | undefined) =>
      userDtb
        ? // --dtb: validated, with /memory and /chosen set as QEMU's arm_load_dtb does.
          fixupUserDtb(userDtb, {
            ramBase: VIRT.RAM.base,
            ramSize: memory,
            bootargs: cfg.append ?? "",
            ...(initrd ? { initrd } : {}),
          })
        : buildVirtFdt({
            cpus: smp,
            mpidrs: this.vcpus.map((v) => v.mpidr),
            ramBase: VIRT.RAM.base,
            ramSize: memory,
            bootargs: cfg.append ?? "",
            ...(initrd ? { initrd } : {}),
            psciMethod: this.vm.psciConduit,
            kaslrSeed,
            rngSeed,
            virtio: this.virtio.map((_, n) => n),
          });
    if (!cfg.kernel) {
      // An empty machine for a restore: vCPUs exist (KVM_CREATE_VCPU) but the snapshot
      // initialises them; RAM (with its DTB) comes from the snapshot.
      this.dtb = new Uint8Array();
      this.boot = null;
      return;
    }
    let dtb: Uint8Array = new Uint8Array();
    this.boot = loadKernel(
      {
        ramBase: vm.ramBase,
        ramSize: vm.ramSize,
        write: (pa, bytes) => {
          this.images.push([pa, bytes]);
          vm.writeRam(pa, bytes);
        },
      },
      {
        kernel: cfg.kernel,
        ...(cfg.initrd ? { initrd: cfg.initrd } : {}),
        dtb: (initrd) => {
          dtb = makeDtb(initrd);
          return dtb;
        },
        ...(cfg.gunzip ? { gunzip: cfg.gunzip } : {}),
      },
    );
    this.dtb = dtb;
    this.startBootVcpu();
  }

  /**
   * The boot vCPU starts RUNNABLE at the entry point (EL1h, DAIF masked, MMU off), x1-x3
   * zero; the others start STOPPED until CPU_ON.
   */
  private startBootVcpu(): void {
    const load = this.boot!;
    this.vcpus.forEach((v, i) => {
      v.init({ powerOff: i !== 0 });
    });
    const boot = this.vcpus[0]!;
    boot.cpu.pc = BigInt(load.entry);
    // x0 = the DTB for every kernel kind, ELF included (QEMU 7.2 passes 0 to an ELF; a
    // bare-metal program that ignores x0 cannot tell, one that wants the tree gets it).
    boot.cpu.setX(0, load.dtbAddress !== undefined ? BigInt(load.dtbAddress) : 0n);
  }

  /**
   * A system reset, as QEMU's qemu_system_reset: the GIC and every device to their reset
   * state, the loaded images (kernel, initrd, DTB) written into RAM again, every vCPU
   * reset with the boot vCPU at the entry point and the others powered off. The rest of
   * RAM keeps its contents, as on QEMU. False when there is nothing to boot again (a
   * machine restored from a snapshot whose images this process never loaded).
   */
  reset(): boolean {
    if (!this.boot) return false;
    this.gic.reset();
    this.uart.reset();
    for (const t of this.virtio) t.reset();
    for (const [pa, bytes] of this.images) this.vm.writeRam(pa, bytes);
    // The decode cache needs no flush: it is validated by the instruction word.
    this.startBootVcpu();
    return true;
  }

  private makeVirtio(
    d: VirtioDeviceConfig,
    deterministic: boolean,
    rngSeed: Uint8Array,
    output: Output,
  ): VirtioDevice {
    switch (d.kind) {
      case "blk":
        return new VirtioBlk({
          backend: d.backend,
          ...(d.readOnly !== undefined ? { readOnly: d.readOnly } : {}),
          ...(d.serial !== undefined ? { serial: d.serial } : {}),
        });
      case "rng": {
        // Deterministic runs draw from a generator seeded like the DTB's rng-seed (but not the
        // same bytes), whose position the device saves; otherwise the host's CSPRNG.
        const source: EntropySource = deterministic
          ? new SeededEntropy(rngSeed.map((x) => x ^ 0x5c))
          : { fill: fillRandom };
        return new VirtioRng(source);
      }
      case "console": {
        if (this.console) throw new KvmError("EEXIST", "only one virtio console is supported");
        this.console = new VirtioConsole({ output });
        return this.console;
      }
    }
  }

  /**
   * Every component with state of its own besides the vCPUs and RAM, in a fixed order: the
   * GIC, the UART, the RTC, then each virtio-mmio transport that holds a device (its section
   * carries the device's state; empty slots have none). Snapshots take their sections from
   * this list.
   */
  get components(): readonly Stateful[] {
    return [this.gic, this.uart, this.rtc, ...this.virtio.filter((t) => t.device !== null)];
  }

  /** The virtio console, if one was plugged in. */
  get virtioConsole(): VirtioConsole | null {
    return this.console;
  }

  /**
   * Host input (stdin) goes to the UART and to the virtio console if there is one, as both
   * write to the host's output: the guest reads whichever its console (ttyAMA0 or hvc0) is;
   * a Linux tty nobody has open discards what it receives.
   */
  consoleInput(bytes: Uint8Array): void {
    this.uart.input(bytes);
    this.console?.input(bytes);
  }

  /** The machine's scheduler (one per machine: its position is part of the machine state). */
  scheduler(quantum = DEFAULT_QUANTUM): Scheduler {
    this.sched ??= new Scheduler(this.vm, quantum);
    return this.sched;
  }
}

/** crypto.getRandomValues fills at most 64 KiB per call. */
function fillRandom(buf: Uint8Array): void {
  for (let at = 0; at < buf.length; at += 65536)
    crypto.getRandomValues(buf.subarray(at, at + 65536) as Uint8Array<ArrayBuffer>);
}

/** A component's snapshot section name: its kind and its base address, as QEMU's FDT node names. */
function sectionName(kind: string, base: number): string {
  return `${kind}@${base.toString(16)}`;
}
