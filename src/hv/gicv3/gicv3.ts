/**
 * The in-kernel-style GICv3 (GICv3/v4 Architecture Specification, IHI 0069), as KVM's
 * vGICv3 presents it to a guest:
 *  - one Security state (GICD_CTLR.DS == 1, RAO/WI) seen from non-secure EL1: Group 0
 *    interrupts are signalled as FIQ, Group 1 as IRQ (IHI 0069 4.6, Table 4-3);
 *  - affinity routing always on (GICD_CTLR.ARE == 1, RAO/WI), so SGIs/PPIs live in the
 *    redistributors and the distributor's banked registers for INTIDs 0–31 are RAZ/WI;
 *  - no LPIs, no ITS, no GICv2 compatibility (ICC_SRE_EL1 reads 0x7);
 *  - 5 bits of priority (GICD_IPRIORITYR keeps bits [7:3], the low bits are RAZ/WI),
 *    so 32 preemption levels and only ICC_AP{0,1}R0_EL1 hold active priorities;
 *  - all interrupts reset to Group 1, as KVM's vGICv3 does (the spec leaves it
 *    IMPLEMENTATION DEFINED; Linux programs every IGROUPR anyway);
 *  - GICR_WAKER.ProcessorSleep completes its handshake at once (ChildrenAsleep follows it)
 *    and, as in KVM and QEMU, does not stop interrupts targeted at that PE; it only takes
 *    the PE out of 1-of-N SPI selection;
 *  - with DS == 1, ICC_SGI1R_EL1 may make an SGI of either group pending, ICC_SGI0R_EL1 and
 *    ICC_ASGI1R_EL1 only Group 0 ones (as KVM; QEMU's TCG GIC drops the Group 0 case).
 *
 * Interrupt state per INTID: enabled, group, priority, config (edge/level), active, the
 * input level, and a "pending latch" (an edge seen on an edge-triggered input, or a write
 * to ISPENDR). An interrupt is pending when its latch is set or, if level-sensitive, while
 * its input is high (IHI 0069 4.1.2). Acknowledging clears the latch, so a level-sensitive
 * interrupt whose input is still high becomes active-and-pending and is signalled again
 * after deactivation.
 *
 * The CPU's IRQ/FIQ inputs are recomputed after every state change and reported through
 * `onLineChange` only when they change.
 */
import type { Cpu } from "../../arch/arm64/cpu.ts";
import { R64 } from "../../arch/arm64/ret64.ts";
import type { SysRegAccess } from "../../arch/arm64/sysregs.ts";
import type { Stateful, StateValue } from "../../lib/state.ts";
import { identity, loadState, type StateOf, saveState, typed, uint, vmstate } from "../../lib/vmstate.ts";
import { type FrameRegister, RegisterFrame } from "./register-frame.ts";
import { GICD, GICD_CTLR, GICR, GICR_SGI, GICR_WAKER, ICC, INTID_SPURIOUS } from "./registers.ts";

export interface GicV3Options {
  /** Number of vCPUs (= redistributors). */
  vcpus: number;
  /** Each vCPU's MPIDR_EL1 (affinity fields Aff3..Aff0; Aff3 in bits [39:32]). */
  mpidrs: number[];
  /** Number of SPIs (INTIDs 32 upwards); rounded up to a multiple of 32, at most 988. */
  spis: number;
  /** Called when a vCPU's IRQ or FIQ input changes. */
  onLineChange(cpu: number, irq: boolean, fiq: boolean): void;
  /** Snapshot section name; a board names it by its address ("gicv3@8000000"). */
  name?: string;
}

/** Number of implemented priority bits (as KVM: ICH_VTR_EL2.PRIbits + 1 == 5). */
const PRI_BITS = 5;
const PRI_MASK = (0xff << (8 - PRI_BITS)) & 0xff; // 0xf8
const PRI_SHIFT = 8 - PRI_BITS; // active-priority bit n <-> group priority n << 3
/** Minimum binary point values with 5 priority bits (IHI 0069 12.2.2, 12.2.3). */
const MIN_BPR0 = 7 - PRI_BITS; // 2
const MIN_BPR1 = MIN_BPR0 + 1; // 3
/** GICD_IIDR / GICR_IIDR: Arm as implementer (JEP106 0x43B), as KVM reports. */
const IIDR = 0x0000043b;
/** Peripheral/component ID registers from 0xFFD0 (PIDR4..7, PIDR0..3, CIDR0..3). */
const DIST_IDS = [0x44, 0, 0, 0, 0x92, 0xb4, 0x3b, 0, 0x0d, 0xf0, 0x05, 0xb1];
const REDIST_IDS = [0x44, 0, 0, 0, 0x93, 0xb4, 0x3b, 0, 0x0d, 0xf0, 0x05, 0xb1];
/** GICD_IROUTER writable bits: Aff0-2 [23:0], IRM [31]; high word: Aff3 [7:0]. */
const IROUTER_LO_MASK = 0x80ffffff;
const IROUTER_HI_MASK = 0xff;
const IRM = 0x80000000;
/** ICC_CTLR_EL1 read-only fields: PRIbits [10:8] = 4, IDbits [13:11] = 0 (16 bits), A3V [15], RSS [18]. */
const ICC_CTLR_RO = ((PRI_BITS - 1) << 8) | (1 << 15) | (1 << 18);
const ICC_CTLR_CBPR = 1;
const ICC_CTLR_EOIMODE = 2;

/** What a GIC section must match: the machine it was saved from. */
interface GicShape {
  readonly vcpus: number;
  readonly spis: number;
  readonly mpidrs: readonly number[];
  /** Per-INTID entries: 32 private ones per vCPU, then the SPIs. */
  readonly total: number;
}

const perIrq = (key: string, check?: (a: Uint8Array, g: GicShape) => string | null) =>
  typed(
    Uint8Array,
    { length: (g: GicShape) => g.total, max: key === "irq.priority" ? 0xff : 1 },
    {
      key,
      ...(check ? { check } : {}),
    },
  );
const perCpu = <T extends Uint8Array | Uint32Array>(
  ctor: { new (n: number): T; readonly BYTES_PER_ELEMENT: number },
  key: string,
  bounds: { min?: number; max?: number } = {},
  check?: (a: T) => string | null,
) => typed(ctor, { length: (g: GicShape) => g.vcpus, ...bounds }, { key, ...(check ? { check } : {}) });

/**
 * The GIC's state (section version 1), in a layout grouped as the architecture groups it:
 * per-INTID state (private INTIDs of vCPU c at c*32 + intid, SPIs after them), the SPI
 * routes, the redistributors and the CPU interfaces. `level` holds the input wires, which
 * no register shows whole (ISPENDR reads latch | level of level-sensitive inputs); derived
 * state (routes resolved to vCPUs, each vCPU's highest priority pending interrupt, the
 * IRQ/FIQ outputs) is recomputed after a load. The register tables below say which
 * registers show which of these fields.
 */
export const GIC_STATE = vmstate<GicShape>()({
  version: 1,
  minVersion: 1,
  fields: {
    vcpus: identity((g: GicShape) => g.vcpus),
    spis: identity((g: GicShape) => g.spis),
    mpidrs: identity((g: GicShape) => [...g.mpidrs]),
    ctlr: uint(GICD_CTLR.ENABLE_GRP0 | GICD_CTLR.ENABLE_GRP1),
    enabled: perIrq("irq.enabled"),
    group: perIrq("irq.group"),
    prio: perIrq("irq.priority", (a) =>
      a.some((p) => (p & ~PRI_MASK) !== 0) ? "has unimplemented low bits set" : null,
    ),
    edge: perIrq("irq.edge", (a, g) => {
      for (let c = 0; c < g.vcpus; c++) {
        for (let k = 0; k < 16; k++) if (a[c * 32 + k] !== 1) return "makes an SGI level-sensitive";
      }
      return null;
    }),
    active: perIrq("irq.active"),
    latch: perIrq("irq.pendingLatch"),
    level: perIrq("irq.level"),
    irouterLo: typed(
      Uint32Array,
      { length: (g: GicShape) => g.spis },
      { check: (a) => (a.some((v) => (v & ~IROUTER_LO_MASK) !== 0) ? "has reserved bits set" : null) },
    ),
    irouterHi: typed(Uint32Array, { length: (g: GicShape) => g.spis, max: IROUTER_HI_MASK }),
    sleep: perCpu(Uint8Array, "redist.processorSleep", { max: 1 }),
    pmr: perCpu(Uint8Array, "cpuif.pmr", {}, (a) =>
      a.some((p) => (p & ~PRI_MASK) !== 0) ? "has unimplemented bits set" : null,
    ),
    bpr0: perCpu(Uint8Array, "cpuif.bpr0", { min: MIN_BPR0, max: 7 }),
    bpr1: perCpu(Uint8Array, "cpuif.bpr1", { min: MIN_BPR1, max: 7 }),
    iccCtlr: perCpu(Uint8Array, "cpuif.ctlr", { max: ICC_CTLR_CBPR | ICC_CTLR_EOIMODE }),
    igrpen0: perCpu(Uint8Array, "cpuif.igrpen0", { max: 1 }),
    igrpen1: perCpu(Uint8Array, "cpuif.igrpen1", { max: 1 }),
    ap0: perCpu(Uint32Array, "cpuif.ap0r0"),
    ap1: perCpu(Uint32Array, "cpuif.ap1r0"),
  },
});
type GicState = StateOf<typeof GIC_STATE.fields>;
type GicField = keyof GicState & string;

/**
 * The saved fields no distributor or redistributor register shows, and where a VMM sees
 * them instead (KVM: KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO).
 * With the frames' `state` lists this accounts for every field of GIC_STATE (tested).
 */
export const GIC_STATE_OUTSIDE_FRAMES: Readonly<Partial<Record<GicField, string>>> = {
  level: "the input wires (KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO); ISPENDR shows them ORed into the latch",
  pmr: "ICC_PMR_EL1",
  bpr0: "ICC_BPR0_EL1",
  bpr1: "ICC_BPR1_EL1",
  iccCtlr: "ICC_CTLR_EL1",
  igrpen0: "ICC_IGRPEN0_EL1",
  igrpen1: "ICC_IGRPEN1_EL1",
  ap0: "ICC_AP0R0_EL1",
  ap1: "ICC_AP1R0_EL1",
};
type Reg = FrameRegister<GicV3, GicField>;
type Frame = RegisterFrame<GicV3, GicField>;

function emptyState(g: GicShape): GicState {
  const irq = () => new Uint8Array(g.total);
  const cpu = () => new Uint8Array(g.vcpus);
  return {
    ctlr: 0,
    enabled: irq(),
    group: irq(),
    prio: irq(),
    edge: irq(),
    active: irq(),
    latch: irq(),
    level: irq(),
    irouterLo: new Uint32Array(g.spis),
    irouterHi: new Uint32Array(g.spis),
    sleep: cpu(),
    pmr: cpu(),
    bpr0: cpu(),
    bpr1: cpu(),
    iccCtlr: cpu(),
    igrpen0: cpu(),
    igrpen1: cpu(),
    ap0: new Uint32Array(g.vcpus),
    ap1: new Uint32Array(g.vcpus),
  };
}

/** Per-INTID flag arrays; private INTIDs of vCPU c at c*32 + intid, SPIs after them. */
type Bits = Uint8Array;

/**
 * A bit-per-INTID register (IGROUPR, IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER): the per-INTID
 * field it shows, and what writing a 1 does to it. IGROUPR assigns every bit; the set and
 * clear registers change only the bits written as 1 (IHI 0069 12.9). The pending registers
 * read latch | (level-sensitive input high) and write the latch only, so a level-sensitive
 * interrupt whose input is high stays pending after ICPENDR (IHI 0069 4.1.2).
 */
interface BitReg {
  readonly field: "group" | "enabled" | "latch" | "active";
  readonly write: "assign" | "set" | "clear";
}

export class GicV3 implements Stateful {
  readonly stateName: string;
  readonly stateVersion = GIC_STATE.version;
  readonly vcpus: number;
  readonly spis: number;
  /** 32 * (ITLinesNumber + 1): one past the highest implemented INTID. */
  readonly numIrqs: number;
  private readonly mpidrs: number[];
  private readonly affLo: Uint32Array; // Aff2.Aff1.Aff0
  private readonly aff3: Uint8Array;
  private readonly onLineChange: GicV3Options["onLineChange"];
  private readonly spiBase: number;

  /** The architectural state (distributor, redistributors, CPU interfaces): what GIC_STATE saves. */
  private s: GicState;
  private readonly shape: GicShape;
  /** Resolved GICD_IROUTER target per SPI: vCPU index, -1 = 1-of-N, -2 = no such PE. */
  private readonly spiTarget: Int32Array;

  // Derived (recomputed by update()): highest priority pending interrupt per vCPU.
  private readonly hppiId: Int32Array;
  private readonly hppiPrio: Uint16Array;
  private readonly hppiGroup: Uint8Array;
  private readonly irqOut: Bits;
  private readonly fiqOut: Bits;

  constructor(opts: GicV3Options) {
    const { vcpus, mpidrs } = opts;
    if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 512)
      throw new RangeError(`gicv3: bad vcpus ${vcpus}`);
    if (mpidrs.length !== vcpus) throw new RangeError("gicv3: need one MPIDR per vCPU");
    if (!Number.isInteger(opts.spis) || opts.spis < 0 || opts.spis > 988) {
      throw new RangeError(`gicv3: bad spis ${opts.spis}`);
    }
    this.vcpus = vcpus;
    this.spis = Math.min(988, Math.ceil(opts.spis / 32) * 32);
    this.numIrqs = Math.ceil((32 + this.spis) / 32) * 32;
    this.mpidrs = mpidrs.slice();
    this.affLo = new Uint32Array(vcpus);
    this.aff3 = new Uint8Array(vcpus);
    for (let c = 0; c < vcpus; c++) {
      const m = mpidrs[c]!;
      this.affLo[c] = m & 0xffffff;
      this.aff3[c] = Math.floor(m / 0x1_0000_0000) & 0xff;
    }
    this.onLineChange = opts.onLineChange;
    this.stateName = opts.name ?? "gicv3";
    this.spiBase = vcpus * 32;
    const total = this.spiBase + this.spis;
    this.shape = { vcpus, spis: this.spis, mpidrs: this.mpidrs, total };
    this.s = emptyState(this.shape);
    this.spiTarget = new Int32Array(this.spis);
    this.hppiId = new Int32Array(vcpus);
    this.hppiPrio = new Uint16Array(vcpus);
    this.hppiGroup = new Uint8Array(vcpus);
    this.irqOut = new Uint8Array(vcpus);
    this.fiqOut = new Uint8Array(vcpus);
    this.reset();
  }

  /** Reset state (IHI 0069 reset values; IMPLEMENTATION DEFINED ones chosen as KVM). */
  reset(): void {
    this.s.ctlr = 0;
    this.s.enabled.fill(0);
    this.s.group.fill(1);
    this.s.prio.fill(0);
    this.s.edge.fill(0);
    this.s.active.fill(0);
    this.s.latch.fill(0);
    // Input levels are wires, not registers: a device holding its line high keeps it high.
    for (let c = 0; c < this.vcpus; c++) this.s.edge.fill(1, c * 32, c * 32 + 16); // SGIs are edge-triggered
    this.s.irouterLo.fill(0);
    this.s.irouterHi.fill(0);
    for (let i = 0; i < this.spis; i++) this.spiTarget[i] = this.resolveRoute(0, 0);
    this.s.sleep.fill(1);
    this.s.pmr.fill(0);
    this.s.bpr0.fill(MIN_BPR0);
    this.s.bpr1.fill(MIN_BPR1);
    this.s.iccCtlr.fill(0);
    this.s.igrpen0.fill(0);
    this.s.igrpen1.fill(0);
    this.s.ap0.fill(0);
    this.s.ap1.fill(0);
    this.update();
  }

  // ---------------------------------------------------------------------------
  // Inputs from devices and timers

  /** Level of SPI `intid` (32 ≤ intid < numIrqs). An edge-triggered SPI latches on 0→1. */
  setSpi(intid: number, level: boolean): void {
    if (intid < 32 || intid >= 32 + this.spis) throw new RangeError(`gicv3: no SPI ${intid}`);
    this.setInput(this.spiBase + intid - 32, level);
  }

  /** Level of PPI `intid` (16 ≤ intid < 32) of vCPU `cpu`. */
  setPpi(cpu: number, intid: number, level: boolean): void {
    if (intid < 16 || intid >= 32 || cpu < 0 || cpu >= this.vcpus) {
      throw new RangeError(`gicv3: no PPI ${intid} on vCPU ${cpu}`);
    }
    this.setInput(cpu * 32 + intid, level);
  }

  private setInput(i: number, level: boolean): void {
    const v = level ? 1 : 0;
    if (this.s.level[i] === v) return;
    this.s.level[i] = v;
    if (v === 1 && this.s.edge[i] === 1) this.s.latch[i] = 1;
    this.update();
  }

  /**
   * True while the vCPU's IRQ or FIQ output is asserted: the highest priority pending
   * interrupt (enabled, its group enabled in GICD_CTLR and ICC_IGRPEN<n>_EL1, not active)
   * has a priority below ICC_PMR_EL1 and a group priority that preempts the running
   * priority (IHI 0069 4.8). This is the wake-up condition of WFI: PSTATE.{I,F} do not
   * take part (they live in the CPU), everything the GIC masks does.
   */
  hasPending(cpu: number): boolean {
    return this.irqOut[cpu] === 1 || this.fiqOut[cpu] === 1;
  }

  /** The current IRQ output of `cpu` (Group 1). */
  irqLine(cpu: number): boolean {
    return this.irqOut[cpu] === 1;
  }
  /** The current FIQ output of `cpu` (Group 0). */
  fiqLine(cpu: number): boolean {
    return this.fiqOut[cpu] === 1;
  }

  // ---------------------------------------------------------------------------
  // Routing and the highest priority pending interrupt

  private index(cpu: number, intid: number): number {
    return intid < 32 ? cpu * 32 + intid : this.spiBase + intid - 32;
  }

  private isPending(i: number): boolean {
    return this.s.latch[i] === 1 || (this.s.level[i] === 1 && this.s.edge[i] === 0);
  }

  /** GICD_IROUTER → vCPU index; -1 for 1-of-N (IRM), -2 if no PE has that affinity. */
  private resolveRoute(lo: number, hi: number): number {
    if ((lo & IRM) !== 0) return -1;
    const aff = lo & 0xffffff;
    const a3 = hi & 0xff;
    for (let c = 0; c < this.vcpus; c++) if (this.affLo[c] === aff && this.aff3[c] === a3) return c;
    return -2;
  }

  /** Whether the group of interrupt `i` is enabled in the distributor and in `cpu`'s interface. */
  private groupEnabled(cpu: number, g: number): boolean {
    return g === 0
      ? (this.s.ctlr & GICD_CTLR.ENABLE_GRP0) !== 0 && this.s.igrpen0[cpu] === 1
      : (this.s.ctlr & GICD_CTLR.ENABLE_GRP1) !== 0 && this.s.igrpen1[cpu] === 1;
  }

  /**
   * The PE that a 1-of-N SPI (GICD_IROUTER.IRM == 1) of group `g` goes to: the
   * lowest-numbered vCPU that participates, i.e. is awake (GICR_WAKER.ProcessorSleep == 0)
   * and has the group enabled. IHI 0069 ('Routing SPIs and SGIs by PE affinity') leaves the
   * choice among participating PEs IMPLEMENTATION DEFINED. If none participates, the SPI
   * stays pending and reaches nobody until one does.
   */
  private oneOfN(g: number): number {
    for (let c = 0; c < this.vcpus; c++) if (this.s.sleep[c] === 0 && this.groupEnabled(c, g)) return c;
    return -2;
  }

  /** Mask selecting the group priority bits for group `g` under the binary point. */
  private groupMask(cpu: number, g: number): number {
    // BPR0 value b: group priority is bits [7:b+1]; BPR1 value b: bits [7:b]. With
    // ICC_CTLR_EL1.CBPR set, BPR0 applies to Group 1 too (IHI 0069 4.8.3, 12.2.3).
    const bpr =
      g === 0 || (this.s.iccCtlr[cpu]! & ICC_CTLR_CBPR) !== 0 ? this.s.bpr0[cpu]! : this.s.bpr1[cpu]! - 1;
    return (0xff << (bpr + 1)) & 0xff;
  }

  /** Running priority: the highest active group priority, 0xff when idle (ICC_RPR_EL1). */
  runningPriority(cpu: number): number {
    const ap = this.s.ap0[cpu]! | this.s.ap1[cpu]!;
    if (ap === 0) return 0xff;
    return (31 - Math.clz32(ap & -ap)) << PRI_SHIFT;
  }

  /** Recomputes every vCPU's highest priority pending interrupt and its IRQ/FIQ outputs. */
  private update(): void {
    const n = this.vcpus;
    const hid = this.hppiId;
    const hpr = this.hppiPrio;
    const hgr = this.hppiGroup;
    for (let c = 0; c < n; c++) {
      hid[c] = INTID_SPURIOUS;
      hpr[c] = 0x100;
      // Private interrupts first: at equal priority the lower INTID wins.
      const base = c * 32;
      for (let k = 0; k < 32; k++) {
        const i = base + k;
        if (this.s.enabled[i] === 0 || this.s.active[i] === 1 || !this.isPending(i)) continue;
        const p = this.s.prio[i]!;
        if (p >= hpr[c]!) continue;
        const g = this.s.group[i]!;
        if (!this.groupEnabled(c, g)) continue;
        hid[c] = k;
        hpr[c] = p;
        hgr[c] = g;
      }
    }
    for (let s = 0; s < this.spis; s++) {
      const i = this.spiBase + s;
      if (this.s.enabled[i] === 0 || this.s.active[i] === 1 || !this.isPending(i)) continue;
      const g = this.s.group[i]!;
      let c = this.spiTarget[s]!;
      if (c === -1) c = this.oneOfN(g);
      if (c < 0) continue;
      const p = this.s.prio[i]!;
      if (p >= hpr[c]! || !this.groupEnabled(c, g)) continue;
      hid[c] = 32 + s;
      hpr[c] = p;
      hgr[c] = g;
    }
    for (let c = 0; c < n; c++) this.updateLines(c, false);
  }

  private canSignal(c: number): boolean {
    if (this.hppiId[c] === INTID_SPURIOUS) return false;
    const p = this.hppiPrio[c]!;
    if (p >= this.s.pmr[c]!) return false;
    return (p & this.groupMask(c, this.hppiGroup[c]!)) < this.runningPriority(c);
  }

  private updateLines(c: number, force: boolean): void {
    const sig = this.canSignal(c);
    const irq = sig && this.hppiGroup[c] === 1 ? 1 : 0;
    const fiq = sig && this.hppiGroup[c] === 0 ? 1 : 0;
    if (force || irq !== this.irqOut[c] || fiq !== this.fiqOut[c]) {
      this.irqOut[c] = irq;
      this.fiqOut[c] = fiq;
      this.onLineChange(c, irq === 1, fiq === 1);
    }
  }

  // ---------------------------------------------------------------------------
  // Distributor (64 KiB frame) and redistributor (RD_base + SGI_base, 128 KiB per vCPU)
  // MMIO, dispatched through the register tables DIST_FRAME and REDIST_FRAME.

  distRead(offset: number, size: number): number {
    return GicV3.DIST_FRAME.read(this, 0, offset, size);
  }

  distWrite(offset: number, size: number, value: number): void {
    GicV3.DIST_FRAME.write(this, 0, offset, size, value);
  }

  redistRead(cpu: number, offset: number, size: number): number {
    this.checkCpu(cpu);
    return GicV3.REDIST_FRAME.read(this, cpu, offset, size);
  }

  redistWrite(cpu: number, offset: number, size: number, value: number): void {
    this.checkCpu(cpu);
    GicV3.REDIST_FRAME.write(this, cpu, offset, size, value);
  }

  /**
   * Every stateful distributor and redistributor register as the guest would read it
   * ("GICD_ISENABLER", "GICR1.GICR_WAKER"), as KVM's KVM_DEV_ARM_VGIC_GRP_DIST_REGS and
   * REDIST_REGS show it to a VMM. For tests and debugging; snapshots save GIC_STATE.
   */
  registerDump(): Record<string, number[]> {
    const out = { ...GicV3.DIST_FRAME.dump(this, 0) };
    for (let c = 0; c < this.vcpus; c++) {
      for (const [k, v] of Object.entries(GicV3.REDIST_FRAME.dump(this, c))) out[`GICR${c}.${k}`] = v;
    }
    return out;
  }

  private typer(): number {
    // ITLinesNumber [4:0], CPUNumber [7:5] (ignored with ARE), SecurityExtn [10] = 0,
    // MBIS [16] = 0, LPIS [17] = 0, IDbits [23:19] = 15 (16 bits), A3V [24], RSS [26].
    const itLines = this.numIrqs / 32 - 1;
    const cpuNumber = Math.min(this.vcpus, 8) - 1;
    return (itLines | (cpuNumber << 5) | (15 << 19) | (1 << 24) | (1 << 26)) >>> 0;
  }

  private setIrouter(spi: number, high: boolean, v: number): void {
    if (spi >= this.spis) return;
    if (high) this.s.irouterHi[spi] = v & IROUTER_HI_MASK;
    else this.s.irouterLo[spi] = v & IROUTER_LO_MASK;
    this.spiTarget[spi] = this.resolveRoute(this.s.irouterLo[spi]!, this.s.irouterHi[spi]!);
    this.update();
  }

  private setWaker(cpu: number, v: number): void {
    const sleep = (v & GICR_WAKER.PROCESSOR_SLEEP) !== 0 ? 1 : 0;
    if (sleep === this.s.sleep[cpu]) return;
    this.s.sleep[cpu] = sleep;
    this.update(); // 1-of-N participation changes
  }

  /** A bit-per-INTID register: word n covers INTIDs first + 32n .. first + 32n + 31. */
  private static bits(name: string, offset: number, words: number, kind: BitReg, redist: boolean): Reg {
    return {
      name,
      offset,
      words,
      state: [kind.field],
      read: (g, cpu, n) => g.readBits(kind, cpu, n * 32, redist),
      write: (g, cpu, n, v) => g.writeBits(kind, cpu, n * 32, v, redist),
    };
  }

  private static raz(name: string, offset: number, words: number, byteAccess = false): Reg {
    return { name, offset, words, byteAccess, read: () => 0, write: () => {} };
  }

  private static ids(offset: number, ids: readonly number[]): Reg {
    return { name: "PIDR/CIDR", offset, words: ids.length, read: (_g, _c, n) => ids[n]! };
  }

  /** The distributor frame (IHI 0069 12.9, Table 12-25), with affinity routing and DS == 1. */
  static readonly DIST_FRAME: Frame = new RegisterFrame("GICD", 0x10000, [
    {
      name: "GICD_CTLR",
      offset: GICD.CTLR,
      words: 1,
      state: ["ctlr"],
      read: (g) => (g.s.ctlr | GICD_CTLR.ARE | GICD_CTLR.DS) >>> 0,
      write: (g, _c, _n, v) => {
        // Only the group enables are writable: ARE and DS are RAO/WI, RWP reads 0.
        g.s.ctlr = v & (GICD_CTLR.ENABLE_GRP0 | GICD_CTLR.ENABLE_GRP1);
        g.update();
      },
    },
    { name: "GICD_TYPER", offset: GICD.TYPER, words: 1, read: (g) => g.typer() },
    { name: "GICD_IIDR", offset: GICD.IIDR, words: 1, read: () => IIDR },
    GicV3.raz("GICD_TYPER2", GICD.TYPER2, 1),
    GicV3.raz("GICD_STATUSR", GICD.STATUSR, 1),
    // With ARE, the words for INTIDs 0-31 are RAZ/WI: readBits/writeBits skip private INTIDs.
    GicV3.bits("GICD_IGROUPR", GICD.IGROUPR, 32, { field: "group", write: "assign" }, false),
    GicV3.bits("GICD_ISENABLER", GICD.ISENABLER, 32, { field: "enabled", write: "set" }, false),
    GicV3.bits("GICD_ICENABLER", GICD.ICENABLER, 32, { field: "enabled", write: "clear" }, false),
    GicV3.bits("GICD_ISPENDR", GICD.ISPENDR, 32, { field: "latch", write: "set" }, false),
    GicV3.bits("GICD_ICPENDR", GICD.ICPENDR, 32, { field: "latch", write: "clear" }, false),
    GicV3.bits("GICD_ISACTIVER", GICD.ISACTIVER, 32, { field: "active", write: "set" }, false),
    GicV3.bits("GICD_ICACTIVER", GICD.ICACTIVER, 32, { field: "active", write: "clear" }, false),
    {
      name: "GICD_IPRIORITYR",
      offset: GICD.IPRIORITYR,
      words: 256,
      byteAccess: true,
      state: ["prio"],
      read: (g, _c, n) => g.readPriorities(0, n * 4, 4, false),
      write: (g, _c, n, v) => g.writePriorities(0, n * 4, 4, v, false),
    },
    GicV3.raz("GICD_ITARGETSR", GICD.ITARGETSR, 256, true), // ARE: RAZ/WI
    {
      name: "GICD_ICFGR",
      offset: GICD.ICFGR,
      words: 64,
      state: ["edge"],
      read: (g, _c, n) => g.readCfg(0, n * 16, false),
      write: (g, _c, n, v) => g.writeCfg(0, n * 16, v, false),
    },
    // DS == 1: no Group modifier and no Non-secure access control; GICD_SGIR is not used
    // with ARE == 1.
    GicV3.raz("GICD_IGRPMODR", GICD.IGRPMODR, 32),
    GicV3.raz("GICD_NSACR", GICD.NSACR, 64),
    GicV3.raz("GICD_SGIR", GICD.SGIR, 1),
    {
      // GICD_IROUTER<n>, n = 32..1019: two words each; past the implemented SPIs RAZ/WI.
      name: "GICD_IROUTER",
      offset: GICD.IROUTER + 32 * 8,
      words: (1020 - 32) * 2,
      state: ["irouterLo", "irouterHi"],
      read: (g, _c, n) => {
        const spi = n >>> 1;
        if (spi >= g.spis) return 0;
        return n & 1 ? g.s.irouterHi[spi]! : g.s.irouterLo[spi]!;
      },
      write: (g, _c, n, v) => g.setIrouter(n >>> 1, (n & 1) === 1, v),
    },
    GicV3.ids(0xffd0, DIST_IDS),
  ]);

  /** One redistributor's frames (IHI 0069 12.10, 12.11): RD_base, then SGI_base at 64 KiB. */
  static readonly REDIST_FRAME: Frame = new RegisterFrame("GICR", 0x20000, [
    GicV3.raz("GICR_CTLR", GICR.CTLR, 1), // EnableLPIs RAZ/WI (no LPIs), RWP reads 0
    { name: "GICR_IIDR", offset: GICR.IIDR, words: 1, read: () => IIDR },
    {
      name: "GICR_TYPER",
      offset: GICR.TYPER,
      words: 2,
      read: (g, cpu, n) =>
        n === 1
          ? // Affinity_Value [63:32] = Aff3.Aff2.Aff1.Aff0
            ((g.aff3[cpu]! << 24) | g.affLo[cpu]!) >>> 0
          : // PLPIS [0] = 0, Last [4], Processor_Number [23:8] (IHI 0069 12.11.35)
            ((cpu << 8) | (cpu === g.vcpus - 1 ? 1 << 4 : 0)) >>> 0,
    },
    GicV3.raz("GICR_STATUSR", GICR.STATUSR, 1),
    {
      name: "GICR_WAKER",
      offset: GICR.WAKER,
      words: 1,
      state: ["sleep"],
      // The handshake completes at once: ChildrenAsleep follows ProcessorSleep.
      read: (g, cpu) => (g.s.sleep[cpu] === 1 ? GICR_WAKER.PROCESSOR_SLEEP | GICR_WAKER.CHILDREN_ASLEEP : 0),
      write: (g, cpu, _n, v) => g.setWaker(cpu, v),
    },
    GicV3.ids(0xffd0, REDIST_IDS),
    ...(
      [
        ["GICR_IGROUPR0", GICR_SGI.IGROUPR0, { field: "group", write: "assign" }],
        ["GICR_ISENABLER0", GICR_SGI.ISENABLER0, { field: "enabled", write: "set" }],
        ["GICR_ICENABLER0", GICR_SGI.ICENABLER0, { field: "enabled", write: "clear" }],
        ["GICR_ISPENDR0", GICR_SGI.ISPENDR0, { field: "latch", write: "set" }],
        ["GICR_ICPENDR0", GICR_SGI.ICPENDR0, { field: "latch", write: "clear" }],
        ["GICR_ISACTIVER0", GICR_SGI.ISACTIVER0, { field: "active", write: "set" }],
        ["GICR_ICACTIVER0", GICR_SGI.ICACTIVER0, { field: "active", write: "clear" }],
      ] as const
    ).map(([name, off, kind]) => GicV3.bits(name, GICR.SGI_BASE + off, 1, kind, true)),
    {
      name: "GICR_IPRIORITYR",
      offset: GICR.SGI_BASE + GICR_SGI.IPRIORITYR,
      words: 8,
      byteAccess: true,
      state: ["prio"],
      read: (g, cpu, n) => g.readPriorities(cpu, n * 4, 4, true),
      write: (g, cpu, n, v) => g.writePriorities(cpu, n * 4, 4, v, true),
    },
    // ICFGR0: SGIs are always edge-triggered (RO); ICFGR1 configures the PPIs.
    {
      name: "GICR_ICFGR0",
      offset: GICR.SGI_BASE + GICR_SGI.ICFGR0,
      words: 1,
      state: ["edge"],
      read: (g, cpu) => g.readCfg(cpu, 0, true),
    },
    {
      name: "GICR_ICFGR1",
      offset: GICR.SGI_BASE + GICR_SGI.ICFGR1,
      words: 1,
      state: ["edge"],
      read: (g, cpu) => g.readCfg(cpu, 16, true),
      write: (g, cpu, _n, v) => g.writeCfg(cpu, 16, v, true),
    },
    GicV3.raz("GICR_IGRPMODR0", GICR.SGI_BASE + GICR_SGI.IGRPMODR0, 1), // DS == 1
    GicV3.raz("GICR_NSACR", GICR.SGI_BASE + GICR_SGI.NSACR, 1),
  ]);

  private checkCpu(cpu: number): void {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.vcpus) throw new RangeError(`gicv3: no vCPU ${cpu}`);
  }

  /**
   * Whether INTID `intid` is reachable through this frame: the redistributor handles 0–31
   * (private), the distributor 32 upwards (with ARE, its registers for 0–31 are RAZ/WI).
   */
  private reachable(intid: number, redist: boolean): boolean {
    return redist ? intid < 32 : intid >= 32 && intid < 32 + this.spis;
  }

  private readBits(kind: BitReg, cpu: number, first: number, redist: boolean): number {
    const a = this.s[kind.field];
    let v = 0;
    for (let b = 0; b < 32; b++) {
      const intid = first + b;
      if (!this.reachable(intid, redist)) continue;
      const i = this.index(cpu, intid);
      const bit = kind.field === "latch" ? (this.isPending(i) ? 1 : 0) : a[i]!;
      v |= bit << b;
    }
    return v >>> 0;
  }

  private writeBits(kind: BitReg, cpu: number, first: number, v: number, redist: boolean): void {
    const a = this.s[kind.field];
    for (let b = 0; b < 32; b++) {
      const intid = first + b;
      if (!this.reachable(intid, redist)) continue;
      const bit = (v >>> b) & 1;
      const i = this.index(cpu, intid);
      if (kind.write === "assign") a[i] = bit;
      else if (bit === 1) a[i] = kind.write === "set" ? 1 : 0;
    }
    this.update();
  }

  /** ICFGR: two bits per INTID, bit [2n+1] set = edge-triggered; SGIs read as edge, fixed. */
  private readCfg(cpu: number, first: number, redist: boolean): number {
    let v = 0;
    for (let k = 0; k < 16; k++) {
      const intid = first + k;
      if (!this.reachable(intid, redist)) continue;
      if (this.s.edge[this.index(cpu, intid)] === 1) v |= 2 << (2 * k);
    }
    return v >>> 0;
  }

  private writeCfg(cpu: number, first: number, v: number, redist: boolean): void {
    for (let k = 0; k < 16; k++) {
      const intid = first + k;
      if (intid < 16 || !this.reachable(intid, redist)) continue;
      this.s.edge[this.index(cpu, intid)] = (v >>> (2 * k + 1)) & 1;
    }
    this.update();
  }

  /** IPRIORITYR is byte-accessible; the low 3 bits of each priority are RAZ/WI. */
  private readPriorities(cpu: number, byteOff: number, size: number, redist: boolean): number {
    let v = 0;
    for (let k = 0; k < size; k++) {
      const intid = byteOff + k;
      if (!this.reachable(intid, redist)) continue;
      v += this.s.prio[this.index(cpu, intid)]! * 2 ** (8 * k);
    }
    return v;
  }

  private writePriorities(cpu: number, byteOff: number, size: number, value: number, redist: boolean): void {
    for (let k = 0; k < size; k++) {
      const intid = byteOff + k;
      const p = Math.floor(value / 2 ** (8 * k)) & 0xff;
      if (!this.reachable(intid, redist)) continue;
      this.s.prio[this.index(cpu, intid)] = p & PRI_MASK;
    }
    this.update();
  }

  // ---------------------------------------------------------------------------
  // CPU interface (ICC_* system registers)

  /** Reads ICC register `key` of vCPU `cpu` as [lo, hi], with the side effects of MRS. */
  iccRead(cpu: number, key: number): [number, number] | null {
    switch (key) {
      case ICC.PMR_EL1:
        return [this.s.pmr[cpu]!, 0];
      case ICC.BPR0_EL1:
        return [this.s.bpr0[cpu]!, 0];
      case ICC.BPR1_EL1:
        return [
          (this.s.iccCtlr[cpu]! & ICC_CTLR_CBPR) !== 0
            ? Math.min(this.s.bpr0[cpu]! + 1, 7)
            : this.s.bpr1[cpu]!,
          0,
        ];
      case ICC.CTLR_EL1:
        return [ICC_CTLR_RO | this.s.iccCtlr[cpu]!, 0];
      case ICC.SRE_EL1:
        return [7, 0]; // SRE, DFB, DIB: RAO/WI
      case ICC.IGRPEN0_EL1:
        return [this.s.igrpen0[cpu]!, 0];
      case ICC.IGRPEN1_EL1:
        return [this.s.igrpen1[cpu]!, 0];
      case ICC.AP0R0_EL1:
        return [this.s.ap0[cpu]!, 0];
      case ICC.AP1R0_EL1:
        return [this.s.ap1[cpu]!, 0];
      case ICC.AP0R1_EL1:
      case ICC.AP0R2_EL1:
      case ICC.AP0R3_EL1:
      case ICC.AP1R1_EL1:
      case ICC.AP1R2_EL1:
      case ICC.AP1R3_EL1:
        return [0, 0]; // only 32 preemption levels: RAZ/WI
      case ICC.RPR_EL1:
        return [this.runningPriority(cpu), 0];
      case ICC.HPPIR0_EL1:
        return [this.hppir(cpu, 0), 0];
      case ICC.HPPIR1_EL1:
        return [this.hppir(cpu, 1), 0];
      case ICC.IAR0_EL1:
        return [this.acknowledge(cpu, 0), 0];
      case ICC.IAR1_EL1:
        return [this.acknowledge(cpu, 1), 0];
    }
    return null; // write-only (EOIR, DIR, SGI*R) or unknown
  }

  /** Writes ICC register `key` of vCPU `cpu`; false if it cannot be written. */
  iccWrite(cpu: number, key: number, lo: number, hi: number): boolean {
    lo >>>= 0;
    switch (key) {
      case ICC.PMR_EL1:
        this.s.pmr[cpu] = lo & PRI_MASK;
        break;
      case ICC.BPR0_EL1:
        this.s.bpr0[cpu] = Math.max(lo & 7, MIN_BPR0);
        break;
      case ICC.BPR1_EL1:
        // With CBPR set, BPR1 is an alias view of BPR0 and writes are ignored (IHI 0069 12.2.3).
        if ((this.s.iccCtlr[cpu]! & ICC_CTLR_CBPR) === 0) this.s.bpr1[cpu] = Math.max(lo & 7, MIN_BPR1);
        break;
      case ICC.CTLR_EL1:
        this.s.iccCtlr[cpu] = lo & (ICC_CTLR_CBPR | ICC_CTLR_EOIMODE);
        break;
      case ICC.SRE_EL1:
        break;
      case ICC.IGRPEN0_EL1:
        this.s.igrpen0[cpu] = lo & 1;
        break;
      case ICC.IGRPEN1_EL1:
        this.s.igrpen1[cpu] = lo & 1;
        break;
      case ICC.AP0R0_EL1:
        this.s.ap0[cpu] = lo;
        break;
      case ICC.AP1R0_EL1:
        this.s.ap1[cpu] = lo;
        break;
      case ICC.AP0R1_EL1:
      case ICC.AP0R2_EL1:
      case ICC.AP0R3_EL1:
      case ICC.AP1R1_EL1:
      case ICC.AP1R2_EL1:
      case ICC.AP1R3_EL1:
        return true;
      case ICC.EOIR0_EL1:
        this.endOfInterrupt(cpu, 0, lo & 0xffffff);
        break;
      case ICC.EOIR1_EL1:
        this.endOfInterrupt(cpu, 1, lo & 0xffffff);
        break;
      case ICC.DIR_EL1:
        // Only meaningful with EOImode == 1; otherwise UNPREDICTABLE, and ignored (as QEMU).
        if ((this.s.iccCtlr[cpu]! & ICC_CTLR_EOIMODE) !== 0) this.deactivate(cpu, lo & 0xffffff);
        break;
      case ICC.SGI1R_EL1:
        this.generateSgi(cpu, lo, hi >>> 0, true);
        break;
      case ICC.SGI0R_EL1:
      case ICC.ASGI1R_EL1:
        // With DS == 1 there is no "other" Security state: ASGI1R acts as SGI0R (as KVM).
        this.generateSgi(cpu, lo, hi >>> 0, false);
        break;
      default:
        return false; // read-only (IAR, HPPIR, RPR) or unknown
    }
    this.update();
    return true;
  }

  /**
   * The ICC_* registers of vCPU `cpu` for `Cpu.extraSysregs`. MRS of a write-only and MSR
   * of a read-only register are UNDEFINED. The same accessors serve KVM-style save and
   * restore (KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, see ICC_STATE_REGS).
   */
  cpuInterface(cpu: number): Map<number, SysRegAccess> {
    this.checkCpu(cpu);
    const map = new Map<number, SysRegAccess>();
    for (const key of Object.values(ICC)) {
      map.set(key, {
        read: (c: Cpu) => {
          const v = this.iccRead(cpu, key);
          if (v === null) c.undefined();
          R64.lo = v[0];
          R64.hi = v[1];
        },
        write: (c: Cpu, lo: number, hi: number) => {
          if (!this.iccWrite(cpu, key, lo, hi)) c.undefined();
        },
      });
    }
    return map;
  }

  /** ICC_HPPIR<g>_EL1: the highest priority pending interrupt if it belongs to group `g`. */
  private hppir(cpu: number, g: number): number {
    const id = this.hppiId[cpu]!;
    return id !== INTID_SPURIOUS && this.hppiGroup[cpu] === g ? id : INTID_SPURIOUS;
  }

  /**
   * ICC_IAR<g>_EL1: acknowledges the highest priority pending interrupt if it is of group
   * `g` and can be signalled (priority mask and preemption); otherwise returns 1023. The
   * interrupt becomes active (active-and-pending if its level input is still high), its
   * group priority is marked in ICC_AP<g>R0_EL1, and the running priority follows.
   */
  private acknowledge(cpu: number, g: number): number {
    if (this.hppiGroup[cpu] !== g || !this.canSignal(cpu)) return INTID_SPURIOUS;
    const id = this.hppiId[cpu]!;
    const i = this.index(cpu, id);
    this.s.latch[i] = 0;
    this.s.active[i] = 1;
    const bit = 1 << ((this.s.prio[i]! & this.groupMask(cpu, g)) >>> PRI_SHIFT);
    if (g === 0) this.s.ap0[cpu] = (this.s.ap0[cpu]! | bit) >>> 0;
    else this.s.ap1[cpu] = (this.s.ap1[cpu]! | bit) >>> 0;
    this.update();
    return id;
  }

  /**
   * ICC_EOIR<g>_EL1: priority drop of the highest active priority, if it belongs to group
   * `g` (otherwise UNPREDICTABLE: ignored); with EOImode == 0 also deactivates `intid`.
   */
  private endOfInterrupt(cpu: number, g: number, intid: number): void {
    if (intid >= 1020 && intid <= 1023) return;
    const all = this.s.ap0[cpu]! | this.s.ap1[cpu]!;
    if (all === 0) return;
    const bit = all & -all;
    if (g === 0) {
      if ((this.s.ap0[cpu]! & bit) === 0) return;
      this.s.ap0[cpu] = (this.s.ap0[cpu]! & ~bit) >>> 0;
    } else {
      if ((this.s.ap1[cpu]! & bit) === 0) return;
      this.s.ap1[cpu] = (this.s.ap1[cpu]! & ~bit) >>> 0;
    }
    if ((this.s.iccCtlr[cpu]! & ICC_CTLR_EOIMODE) === 0) this.deactivate(cpu, intid);
  }

  private deactivate(cpu: number, intid: number): void {
    if (intid < 32 + this.spis) this.s.active[this.index(cpu, intid)] = 0;
  }

  /**
   * ICC_SGI1R/SGI0R/ASGI1R_EL1 (IHI 0069 12.2.22): INTID [27:24], TargetList [15:0],
   * Aff1 [23:16], Aff2 [39:32], IRM [40] (all PEs but self), RS [47:44] (Aff0 = RS*16 + bit),
   * Aff3 [55:48]. As KVM does with DS == 1, an SGI1R write may make either group pending,
   * an SGI0R write only Group 0 SGIs.
   */
  private generateSgi(self: number, lo: number, hi: number, group1: boolean): void {
    const intid = (lo >>> 24) & 0xf;
    const irm = ((hi >>> 8) & 1) === 1;
    const targets = lo & 0xffff;
    const aff21 = (((hi & 0xff) << 16) | (((lo >>> 16) & 0xff) << 8)) >>> 0;
    const rs = (hi >>> 12) & 0xf;
    const aff3 = (hi >>> 16) & 0xff;
    for (let c = 0; c < this.vcpus; c++) {
      if (irm) {
        if (c === self) continue;
      } else {
        const a = this.affLo[c]!;
        if ((a & 0xffff00) !== aff21 || this.aff3[c] !== aff3) continue;
        const aff0 = a & 0xff;
        if (aff0 >>> 4 !== rs || ((targets >>> (aff0 & 15)) & 1) === 0) continue;
      }
      const i = c * 32 + intid;
      if (this.s.group[i] === 1 && !group1) continue;
      this.s.latch[i] = 1;
    }
  }

  // ---------------------------------------------------------------------------
  // Save / restore

  saveState(): StateValue {
    return saveState(GIC_STATE, this.s, this.shape);
  }

  /**
   * Restores a state written by saveState(). The input is untrusted: GIC_STATE checks every
   * field (count, range, reserved bits) before anything is changed. Afterwards the outputs
   * are recomputed and `onLineChange` is called for every vCPU, so a CPU whose line state
   * was not part of its own snapshot is brought in line.
   */
  loadState(s: StateValue, version: number): void {
    this.s = loadState(GIC_STATE, this.stateName, s, version, this.shape);
    for (let i = 0; i < this.spis; i++)
      this.spiTarget[i] = this.resolveRoute(this.s.irouterLo[i]!, this.s.irouterHi[i]!);
    this.update();
    for (let c = 0; c < this.vcpus; c++) this.updateLines(c, true);
  }
}
