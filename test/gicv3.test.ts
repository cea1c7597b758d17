/**
 * The in-kernel-style GICv3 (src/hv/gicv3): distributor and redistributor registers, the
 * CPU interface (acknowledge, priority drop, deactivation, preemption), SGI routing, level
 * and edge inputs, and save/restore. Expected behaviour follows IHI 0069.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { GicV3 } from "../src/hv/gicv3/gicv3.ts";
import { GICD, GICR, GICR_SGI, ICC } from "../src/hv/gicv3/registers.ts";
import { StateError, type StateValue } from "../src/lib/state.ts";

const SGI = GICR.SGI_BASE;

interface Rig {
  gic: GicV3;
  lines: { irq: boolean; fiq: boolean }[];
  changes: number;
  rd(cpu: number, key: number): number;
  wr(cpu: number, key: number, lo: number, hi?: number): void;
}

function rig(vcpus = 2, mpidrs?: number[], spis = 224): Rig {
  const lines = Array.from({ length: vcpus }, () => ({ irq: false, fiq: false }));
  const r: Rig = {
    gic: undefined as unknown as GicV3,
    lines,
    changes: 0,
    rd: (cpu, key) => {
      const v = r.gic.iccRead(cpu, key);
      assert.ok(v !== null, `readable ICC register ${key.toString(16)}`);
      return v[0];
    },
    wr: (cpu, key, lo, hi = 0) => assert.ok(r.gic.iccWrite(cpu, key, lo, hi)),
  };
  r.gic = new GicV3({
    vcpus,
    mpidrs: mpidrs ?? Array.from({ length: vcpus }, (_, i) => 0x8000_0000 + i),
    spis,
    onLineChange(cpu, irq, fiq) {
      lines[cpu] = { irq, fiq };
      r.changes++;
    },
  });
  return r;
}

/** The usual Linux-style bring-up: distributor Group 1 on, WAKER cleared, PMR open, IGRPEN1. */
function bringUp(r: Rig): void {
  r.gic.distWrite(GICD.CTLR, 4, 0x2);
  for (let c = 0; c < r.gic.vcpus; c++) {
    r.gic.redistWrite(c, GICR.WAKER, 4, 0);
    r.wr(c, ICC.PMR_EL1, 0xf0);
    r.wr(c, ICC.IGRPEN1_EL1, 1);
  }
}

function enableSpi(r: Rig, intid: number, prio: number): void {
  r.gic.distWrite(GICD.IPRIORITYR + intid, 1, prio);
  r.gic.distWrite(GICD.ISENABLER + 4 * (intid >>> 5), 4, 1 << (intid & 31));
}

function enablePrivate(r: Rig, cpu: number, intid: number, prio: number): void {
  r.gic.redistWrite(cpu, SGI + GICR_SGI.IPRIORITYR + intid, 1, prio);
  r.gic.redistWrite(cpu, SGI + GICR_SGI.ISENABLER0, 4, 1 << intid);
}

test("distributor ID, type and control registers", () => {
  const { gic } = rig(4, undefined, 224);
  const ctlr = gic.distRead(GICD.CTLR, 4);
  assert.equal(ctlr, 0x50, "ARE and DS read as one, groups disabled at reset");
  gic.distWrite(GICD.CTLR, 4, 0xffffffff);
  assert.equal(gic.distRead(GICD.CTLR, 4), 0x53, "only EnableGrp0/1 are writable; RWP reads 0");
  const typer = gic.distRead(GICD.TYPER, 4);
  assert.equal(typer & 0x1f, 7, "ITLinesNumber: 256 INTIDs");
  assert.equal((typer >>> 19) & 0x1f, 15, "IDbits: 16 bits");
  assert.equal((typer >>> 17) & 1, 0, "LPIS");
  assert.equal((typer >>> 16) & 1, 0, "MBIS");
  assert.equal((typer >>> 10) & 1, 0, "SecurityExtn");
  assert.equal((gic.distRead(GICD.PIDR2, 4) >>> 4) & 0xf, 3, "ArchRev: GICv3");
  assert.equal(gic.distRead(GICD.IIDR, 4), 0x43b);
  // Banked INTIDs 0–31 are RAZ/WI in the distributor with ARE.
  gic.distWrite(GICD.ISENABLER, 4, 0xffffffff);
  assert.equal(gic.distRead(GICD.ISENABLER, 4), 0);
  assert.equal(gic.distRead(GICD.IGROUPR, 4), 0);
  assert.equal(gic.distRead(GICD.IGROUPR + 4, 4), 0xffffffff, "everything resets to Group 1, as KVM");
  // SPI registers beyond the implemented range are RAZ/WI.
  gic.distWrite(GICD.ISENABLER + 32, 4, 0xffffffff);
  assert.equal(gic.distRead(GICD.ISENABLER + 32, 4), 0);
});

test("distributor SPI enable, priority, config and routing registers", () => {
  const { gic } = rig(2, [0x0, 0x1_0000_0102]);
  gic.distWrite(GICD.ISENABLER + 4, 4, 0x8001);
  assert.equal(gic.distRead(GICD.ICENABLER + 4, 4), 0x8001);
  gic.distWrite(GICD.ICENABLER + 4, 4, 0x1);
  assert.equal(gic.distRead(GICD.ISENABLER + 4, 4), 0x8000);
  // Priorities: byte writes, 5 implemented bits.
  gic.distWrite(GICD.IPRIORITYR + 40, 1, 0xff);
  gic.distWrite(GICD.IPRIORITYR + 44, 4, 0x12345678);
  assert.equal(gic.distRead(GICD.IPRIORITYR + 40, 4), 0xf8);
  assert.equal(gic.distRead(GICD.IPRIORITYR + 44, 4), 0x10305078);
  assert.equal(gic.distRead(GICD.IPRIORITYR + 45, 1), 0x50);
  assert.equal(gic.distRead(GICD.IPRIORITYR + 4, 4), 0, "SGI/PPI priorities are RAZ here");
  // ICFGR: edge bits writable for SPIs.
  gic.distWrite(GICD.ICFGR + 8, 4, 0xaaaaaaaa);
  assert.equal(gic.distRead(GICD.ICFGR + 8, 4), 0xaaaaaaaa);
  assert.equal(gic.distRead(GICD.ICFGR + 4, 4), 0, "PPIs are not reached through the distributor");
  // IROUTER: 64-bit, reserved bits RES0; 32-bit halves too.
  gic.distWrite(GICD.IROUTER + 8 * 33, 8, 0x01_ffff_ffff_ffff);
  assert.equal(gic.distRead(GICD.IROUTER + 8 * 33, 4), 0x80ffffff);
  assert.equal(gic.distRead(GICD.IROUTER + 8 * 33 + 4, 4), 0xff);
  gic.distWrite(GICD.IROUTER + 8 * 34, 4, 0x102);
  gic.distWrite(GICD.IROUTER + 8 * 34 + 4, 4, 1);
  assert.equal(gic.distRead(GICD.IROUTER + 8 * 34, 8), 0x1_0000_0102);
  assert.equal(gic.distRead(GICD.IROUTER + 8 * 31, 4), 0, "no IROUTER for private INTIDs");
});

test("redistributor TYPER, WAKER handshake and SGI_base registers", () => {
  const { gic } = rig(3, [0x8000_0000, 0x8000_0001, 0x1_0203_0405]);
  for (let c = 0; c < 3; c++) {
    const lo = gic.redistRead(c, GICR.TYPER, 4);
    assert.equal((lo >>> 8) & 0xffff, c, "Processor_Number");
    assert.equal((lo >>> 4) & 1, c === 2 ? 1 : 0, "Last");
    assert.equal(lo & 1, 0, "PLPIS");
  }
  assert.equal(gic.redistRead(1, GICR.TYPER + 4, 4), 0x0000_0001);
  assert.equal(
    gic.redistRead(2, GICR.TYPER + 4, 4),
    0x0103_0405,
    "Aff3.Aff2.Aff1.Aff0 (bits [31:24] of MPIDR are not affinity)",
  );
  assert.equal(gic.redistRead(2, GICR.TYPER, 8), 0x0103_0405 * 2 ** 32 + 0x210);
  assert.equal((gic.redistRead(0, GICR.PIDR2, 4) >>> 4) & 0xf, 3);
  // WAKER: ProcessorSleep and ChildrenAsleep set at reset; clearing ProcessorSleep wakes it.
  assert.equal(gic.redistRead(0, GICR.WAKER, 4), 0x6);
  gic.redistWrite(0, GICR.WAKER, 4, 0);
  assert.equal(gic.redistRead(0, GICR.WAKER, 4), 0);
  assert.equal(gic.redistRead(1, GICR.WAKER, 4), 0x6, "per redistributor");
  gic.redistWrite(0, GICR.WAKER, 4, 2);
  assert.equal(gic.redistRead(0, GICR.WAKER, 4), 0x6);
  // SGI_base: banked per vCPU.
  gic.redistWrite(1, SGI + GICR_SGI.ISENABLER0, 4, 0x8000_0003);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ICENABLER0, 4), 0x8000_0003);
  assert.equal(gic.redistRead(0, SGI + GICR_SGI.ISENABLER0, 4), 0);
  gic.redistWrite(1, SGI + GICR_SGI.ICENABLER0, 4, 1);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ISENABLER0, 4), 0x8000_0002);
  gic.redistWrite(1, SGI + GICR_SGI.IGROUPR0, 4, 0x0000_ffff);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.IGROUPR0, 4), 0x0000_ffff);
  gic.redistWrite(1, SGI + GICR_SGI.IPRIORITYR + 27, 1, 0xa7);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.IPRIORITYR + 24, 4), 0xa0_000000 >>> 0);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ICFGR0, 4), 0xaaaaaaaa, "SGIs are edge-triggered");
  gic.redistWrite(1, SGI + GICR_SGI.ICFGR0, 4, 0);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ICFGR0, 4), 0xaaaaaaaa, "and read-only");
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ICFGR1, 4), 0, "PPIs reset level-sensitive");
  gic.redistWrite(1, SGI + GICR_SGI.ICFGR1, 4, 0x8000_0000);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ICFGR1, 4), 0x8000_0000);
  gic.redistWrite(1, SGI + GICR_SGI.IGRPMODR0, 4, 0xffffffff);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.IGRPMODR0, 4), 0, "IGRPMODR0 is RAZ/WI with DS=1");
  gic.redistWrite(1, SGI + GICR_SGI.ISPENDR0, 4, 0x10);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ICPENDR0, 4), 0x10);
  gic.redistWrite(1, SGI + GICR_SGI.ICPENDR0, 4, 0x10);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ISPENDR0, 4), 0);
  gic.redistWrite(1, SGI + GICR_SGI.ISACTIVER0, 4, 0x20);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ICACTIVER0, 4), 0x20);
  gic.redistWrite(1, SGI + GICR_SGI.ICACTIVER0, 4, 0x20);
  assert.equal(gic.redistRead(1, SGI + GICR_SGI.ISACTIVER0, 4), 0);
});

test("CPU interface registers: SRE, CTLR, PMR and binary points", () => {
  const r = rig(1);
  assert.equal(r.rd(0, ICC.SRE_EL1), 7);
  const ctlr = r.rd(0, ICC.CTLR_EL1);
  assert.equal((ctlr >>> 8) & 7, 4, "PRIbits: 5 bits of priority");
  assert.equal((ctlr >>> 11) & 7, 0, "IDbits: 16");
  r.wr(0, ICC.CTLR_EL1, 0xffffffff);
  assert.equal(r.rd(0, ICC.CTLR_EL1) & 0xff, 3, "CBPR and EOImode writable, PMHE RAZ");
  r.wr(0, ICC.CTLR_EL1, 0);
  r.wr(0, ICC.PMR_EL1, 0xff);
  assert.equal(r.rd(0, ICC.PMR_EL1), 0xf8);
  assert.equal(r.rd(0, ICC.BPR0_EL1), 2, "minimum BPR0 with 5 priority bits");
  assert.equal(r.rd(0, ICC.BPR1_EL1), 3, "minimum BPR1");
  r.wr(0, ICC.BPR1_EL1, 0);
  assert.equal(r.rd(0, ICC.BPR1_EL1), 3, "writes below the minimum give the minimum");
  r.wr(0, ICC.BPR1_EL1, 5);
  r.wr(0, ICC.BPR0_EL1, 6);
  assert.equal(r.rd(0, ICC.BPR1_EL1), 5);
  r.wr(0, ICC.CTLR_EL1, 1); // CBPR: BPR1 reads BPR0+1, writes ignored
  assert.equal(r.rd(0, ICC.BPR1_EL1), 7);
  r.wr(0, ICC.BPR1_EL1, 4);
  r.wr(0, ICC.CTLR_EL1, 0);
  assert.equal(r.rd(0, ICC.BPR1_EL1), 5);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0xff, "idle priority");
  assert.equal(r.gic.iccRead(0, ICC.EOIR1_EL1), null, "write-only");
  assert.equal(r.gic.iccWrite(0, ICC.IAR1_EL1, 0, 0), false, "read-only");
});

test("spurious 1023 when nothing can be acknowledged", () => {
  const r = rig(1);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 1023, "nothing pending");
  r.gic.setSpi(40, true);
  enableSpi(r, 40, 0x80);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 1023, "distributor and CPU interface groups disabled");
  bringUp(r);
  r.wr(0, ICC.PMR_EL1, 0x80);
  assert.equal(r.rd(0, ICC.HPPIR1_EL1), 40, "HPPIR ignores the priority mask");
  assert.equal(r.rd(0, ICC.IAR1_EL1), 1023, "priority not below PMR");
  assert.equal(r.lines[0]!.irq, false);
  r.wr(0, ICC.PMR_EL1, 0x88);
  assert.equal(r.lines[0]!.irq, true);
  assert.equal(r.rd(0, ICC.IAR0_EL1), 1023, "a Group 1 interrupt is not acknowledged by IAR0");
  assert.equal(r.rd(0, ICC.HPPIR0_EL1), 1023);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 40);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 1023, "active and pending is not signalled again");
  assert.equal(r.lines[0]!.irq, false);
});

test("SGIs to a target list, with range selector, and broadcast to all but self", () => {
  // Four PEs: Aff1 = 0 for 0,1; Aff1 = 1 for 2; Aff0 = 17 (RS=1) for 3.
  const r = rig(4, [0x0, 0x1, 0x100, 0x11]);
  bringUp(r);
  for (let c = 0; c < 4; c++) enablePrivate(r, c, 3, 0x40);
  const pend = (c: number) => r.gic.redistRead(c, SGI + GICR_SGI.ISPENDR0, 4);
  // SGI 3 to Aff1=0, TargetList {1}.
  r.wr(0, ICC.SGI1R_EL1, (3 << 24) | 0b10);
  assert.deepEqual([0, 1, 2, 3].map(pend), [0, 8, 0, 0]);
  assert.deepEqual(
    r.lines.map((l) => l.irq),
    [false, true, false, false],
  );
  // SGI 5 to Aff1=1 TargetList {0}: PE 2.
  r.wr(1, ICC.SGI1R_EL1, (5 << 24) | (1 << 16) | 1);
  assert.equal(pend(2), 0x20);
  // RS=1, TargetList bit 1 → Aff0 = 17: PE 3.
  r.wr(0, ICC.SGI1R_EL1, (7 << 24) | 0b10, 1 << 12);
  assert.equal(pend(3), 0x80);
  assert.equal(pend(1), 8, "RS=1 does not hit Aff0=1");
  // IRM: every PE but the sender.
  r.wr(2, ICC.SGI1R_EL1, 9 << 24, 1 << 8);
  assert.deepEqual(
    [0, 1, 2, 3].map((c) => (pend(c) >>> 9) & 1),
    [1, 1, 0, 1],
  );
  // Acknowledge on PE 1: the SGI INTID comes back, then EOI.
  assert.equal(r.rd(1, ICC.IAR1_EL1), 3);
  r.wr(1, ICC.EOIR1_EL1, 3);
  assert.equal(r.rd(1, ICC.IAR1_EL1), 1023, "SGI 9 is pending but not enabled");
});

test("SGI0R only makes Group 0 SGIs pending; SGI1R either group (DS=1, as KVM)", () => {
  const r = rig(2);
  r.gic.redistWrite(1, SGI + GICR_SGI.IGROUPR0, 4, 0xfffffffe); // SGI 0 is Group 0
  r.wr(0, ICC.SGI0R_EL1, (1 << 24) | 2);
  r.wr(0, ICC.SGI0R_EL1, (0 << 24) | 2);
  assert.equal(r.gic.redistRead(1, SGI + GICR_SGI.ISPENDR0, 4), 1);
  r.wr(0, ICC.ASGI1R_EL1, (2 << 24) | 2);
  assert.equal(r.gic.redistRead(1, SGI + GICR_SGI.ISPENDR0, 4), 1, "ASGI1R acts as SGI0R");
  r.wr(0, ICC.SGI1R_EL1, (1 << 24) | 2);
  assert.equal(r.gic.redistRead(1, SGI + GICR_SGI.ISPENDR0, 4), 3);
  // Group 0 goes to FIQ.
  r.gic.distWrite(GICD.CTLR, 4, 1);
  r.wr(1, ICC.PMR_EL1, 0xff);
  r.wr(1, ICC.IGRPEN0_EL1, 1);
  enablePrivate(r, 1, 0, 0x10);
  assert.deepEqual(r.lines[1], { irq: false, fiq: true });
  assert.equal(r.rd(1, ICC.HPPIR0_EL1), 0);
  assert.equal(r.rd(1, ICC.IAR1_EL1), 1023);
  assert.equal(r.rd(1, ICC.IAR0_EL1), 0);
  assert.equal(r.rd(1, ICC.AP0R0_EL1), 1 << 2);
  r.wr(1, ICC.EOIR0_EL1, 0);
  assert.equal(r.rd(1, ICC.RPR_EL1), 0xff);
});

test("priority order and preemption through the running priority and binary point", () => {
  const r = rig(1);
  bringUp(r);
  enableSpi(r, 50, 0x80);
  enableSpi(r, 51, 0x40);
  enablePrivate(r, 0, 27, 0x40); // a PPI with the same priority as SPI 51
  r.gic.setSpi(50, true);
  r.gic.setSpi(51, true);
  r.gic.setPpi(0, 27, true);
  assert.equal(r.rd(0, ICC.HPPIR1_EL1), 27, "equal priority: the lower INTID first");
  assert.equal(r.rd(0, ICC.IAR1_EL1), 27);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0x40);
  assert.equal(r.rd(0, ICC.AP1R0_EL1), 1 << 8);
  assert.equal(r.rd(0, ICC.HPPIR1_EL1), 51);
  assert.equal(r.lines[0]!.irq, false, "same group priority cannot preempt");
  assert.equal(r.rd(0, ICC.IAR1_EL1), 1023);
  // A higher priority one preempts.
  enableSpi(r, 60, 0x20);
  r.gic.setSpi(60, true);
  assert.equal(r.lines[0]!.irq, true);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 60);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0x20);
  assert.equal(r.rd(0, ICC.AP1R0_EL1), (1 << 8) | (1 << 4));
  r.gic.setSpi(60, false);
  r.wr(0, ICC.EOIR1_EL1, 60);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0x40, "priority drop returns to the preempted one");
  r.gic.setPpi(0, 27, false);
  r.wr(0, ICC.EOIR1_EL1, 27);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0xff);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 51);
  r.gic.setSpi(51, false);
  r.wr(0, ICC.EOIR1_EL1, 51);
  // A lower priority pending interrupt never preempts; a higher one does.
  assert.equal(r.rd(0, ICC.IAR1_EL1), 50);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0x80);
  enableSpi(r, 61, 0x98);
  r.gic.setSpi(61, true);
  assert.equal(r.lines[0]!.irq, false, "0x98 is lower priority than the running 0x80");
  enableSpi(r, 64, 0x80);
  r.gic.setSpi(64, true);
  assert.equal(r.lines[0]!.irq, false, "equal priority never preempts");
  enableSpi(r, 63, 0x78);
  r.gic.setSpi(63, true);
  assert.equal(r.lines[0]!.irq, true, "0x78 preempts 0x80");
  assert.equal(r.rd(0, ICC.IAR1_EL1), 63);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0x78);
});

test("binary point groups priorities that may not preempt each other", () => {
  const r = rig(1);
  bringUp(r);
  enableSpi(r, 40, 0x50);
  enableSpi(r, 41, 0x40);
  enableSpi(r, 42, 0x38);
  r.wr(0, ICC.BPR1_EL1, 6); // group priority bits [7:6]
  r.gic.setSpi(40, true);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 40);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0x40, "the running priority is the group priority of 0x50");
  assert.equal(r.rd(0, ICC.AP1R0_EL1), 1 << 8);
  r.gic.setSpi(41, true);
  assert.equal(r.lines[0]!.irq, false, "0x40 is in the same preemption group");
  assert.equal(r.rd(0, ICC.IAR1_EL1), 1023);
  r.gic.setSpi(42, true);
  assert.equal(r.lines[0]!.irq, true, "0x38 is in a higher group (0x00)");
  assert.equal(r.rd(0, ICC.HPPIR1_EL1), 42);
  r.gic.setSpi(42, false);
  r.gic.setSpi(40, false);
  r.gic.setSpi(41, false);
  r.wr(0, ICC.EOIR1_EL1, 40);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0xff);
  // With CBPR, BPR0 governs Group 1 (BPR0 = b: group bits [7:b+1]).
  r.wr(0, ICC.BPR1_EL1, 7);
  r.wr(0, ICC.BPR0_EL1, 2);
  r.wr(0, ICC.CTLR_EL1, 1);
  r.gic.setSpi(40, true);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 40);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0x50, "CBPR: finest grouping from BPR0");
  r.gic.setSpi(40, false);
  r.wr(0, ICC.EOIR1_EL1, 40);
  r.wr(0, ICC.CTLR_EL1, 0);
  r.gic.setSpi(40, true);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 40);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0x00, "BPR1 = 7: no group priority bits, all in group 0x00");
});

test("EOImode 1: EOIR drops priority, DIR deactivates", () => {
  const r = rig(1);
  bringUp(r);
  r.wr(0, ICC.CTLR_EL1, 2);
  enableSpi(r, 70, 0x60);
  r.gic.distWrite(GICD.ICFGR + 16, 4, 2 << 12); // SPI 70 edge-triggered
  r.gic.setSpi(70, true);
  r.gic.setSpi(70, false);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 70);
  r.wr(0, ICC.EOIR1_EL1, 70);
  assert.equal(r.rd(0, ICC.RPR_EL1), 0xff, "priority dropped");
  assert.equal((r.gic.distRead(GICD.ISACTIVER + 8, 4) >>> 6) & 1, 1, "still active");
  r.gic.setSpi(70, true);
  assert.equal(r.lines[0]!.irq, false, "active-and-pending: not signalled");
  r.wr(0, ICC.DIR_EL1, 70);
  assert.equal((r.gic.distRead(GICD.ISACTIVER + 8, 4) >>> 6) & 1, 0);
  assert.equal(r.lines[0]!.irq, true, "the latched edge is signalled once deactivated");
  // With EOImode 0, DIR is ignored and EOIR deactivates.
  r.wr(0, ICC.CTLR_EL1, 0);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 70);
  r.wr(0, ICC.DIR_EL1, 70);
  assert.equal((r.gic.distRead(GICD.ISACTIVER + 8, 4) >>> 6) & 1, 1);
  r.wr(0, ICC.EOIR1_EL1, 70);
  assert.equal((r.gic.distRead(GICD.ISACTIVER + 8, 4) >>> 6) & 1, 0);
});

test("a level-sensitive interrupt re-pends after EOI while its line is high", () => {
  const r = rig(1);
  bringUp(r);
  enableSpi(r, 33, 0x80);
  r.gic.setSpi(33, true);
  assert.equal(r.lines[0]!.irq, true);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 33);
  assert.equal(r.gic.distRead(GICD.ISPENDR + 4, 4) & 2, 2, "active and pending");
  r.wr(0, ICC.EOIR1_EL1, 33);
  assert.equal(r.lines[0]!.irq, true, "still high: pending again");
  assert.equal(r.rd(0, ICC.IAR1_EL1), 33);
  r.gic.setSpi(33, false);
  r.wr(0, ICC.EOIR1_EL1, 33);
  assert.equal(r.lines[0]!.irq, false);
  assert.equal(r.gic.distRead(GICD.ISPENDR + 4, 4), 0);
  // ICPENDR cannot clear a level interrupt whose line is high; ISPENDR latches until acknowledged.
  r.gic.setSpi(33, true);
  r.gic.distWrite(GICD.ICPENDR + 4, 4, 2);
  assert.equal(r.gic.distRead(GICD.ISPENDR + 4, 4), 2);
  r.gic.setSpi(33, false);
  assert.equal(r.gic.distRead(GICD.ISPENDR + 4, 4), 0);
  r.gic.distWrite(GICD.ISPENDR + 4, 4, 2);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 33);
  r.wr(0, ICC.EOIR1_EL1, 33);
  assert.equal(r.gic.distRead(GICD.ISPENDR + 4, 4), 0, "software pending cleared by the acknowledge");
  assert.equal(r.lines[0]!.irq, false);
});

test("an edge-triggered interrupt latches on a rising edge", () => {
  const r = rig(1);
  bringUp(r);
  enablePrivate(r, 0, 30, 0x80);
  r.gic.redistWrite(0, SGI + GICR_SGI.ICFGR1, 4, 2 << 28); // PPI 30 edge
  r.gic.setPpi(0, 30, true);
  r.gic.setPpi(0, 30, false);
  assert.equal(r.lines[0]!.irq, true, "pending after the pulse");
  r.gic.setPpi(0, 30, true);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 30);
  assert.equal(r.gic.redistRead(0, SGI + GICR_SGI.ISPENDR0, 4), 0, "no new edge while held high");
  r.gic.setPpi(0, 30, false);
  r.gic.setPpi(0, 30, true);
  assert.equal(r.gic.redistRead(0, SGI + GICR_SGI.ISPENDR0, 4), 1 << 30, "active and pending");
  r.wr(0, ICC.EOIR1_EL1, 30);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 30, "the second edge is delivered");
  r.wr(0, ICC.EOIR1_EL1, 30);
  assert.equal(r.lines[0]!.irq, false);
});

test("SPI routing: IROUTER affinity, unknown affinity, 1-of-N to an awake PE", () => {
  const r = rig(3, [0x0, 0x1, 0x2]);
  bringUp(r);
  enableSpi(r, 45, 0x80);
  r.gic.distWrite(GICD.IROUTER + 8 * 45, 4, 2);
  r.gic.setSpi(45, true);
  assert.deepEqual(
    r.lines.map((l) => l.irq),
    [false, false, true],
  );
  r.gic.distWrite(GICD.IROUTER + 8 * 45, 4, 7); // no such PE: stays pending, goes nowhere
  assert.deepEqual(
    r.lines.map((l) => l.irq),
    [false, false, false],
  );
  r.gic.redistWrite(0, GICR.WAKER, 4, 2); // PE 0 asleep: 1-of-N picks PE 1
  r.gic.distWrite(GICD.IROUTER + 8 * 45, 4, 0x8000_0000);
  assert.deepEqual(
    r.lines.map((l) => l.irq),
    [false, true, false],
  );
  assert.equal(r.rd(1, ICC.IAR1_EL1), 45);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 1023);
  r.gic.setSpi(45, false);
  r.wr(1, ICC.EOIR1_EL1, 45);
  assert.equal(r.lines[1]!.irq, false);
});

test("line changes are reported only when they change; hasPending follows PMR but not PSTATE", () => {
  const r = rig(1);
  bringUp(r);
  enableSpi(r, 40, 0x80);
  const before = r.changes;
  r.gic.setSpi(40, true);
  r.gic.setSpi(40, true);
  r.gic.distWrite(GICD.ISENABLER + 4, 4, 1 << 8);
  assert.equal(r.changes, before + 1);
  assert.equal(r.gic.hasPending(0), true);
  r.wr(0, ICC.PMR_EL1, 0x40);
  assert.equal(r.gic.hasPending(0), false);
  assert.equal(r.changes, before + 2);
});

/** A fixed script of operations, used to compare a restored GIC with one that never stopped. */
function scriptTail(r: Rig): number[] {
  const out: number[] = [];
  const snap = () => {
    out.push(r.rd(0, ICC.RPR_EL1), r.rd(1, ICC.RPR_EL1), r.rd(0, ICC.HPPIR1_EL1), r.rd(1, ICC.HPPIR1_EL1));
    out.push(+r.lines[0]!.irq, +r.lines[1]!.irq, +r.lines[0]!.fiq);
  };
  snap();
  out.push(r.rd(0, ICC.IAR1_EL1));
  snap();
  r.wr(0, ICC.EOIR1_EL1, out[out.length - 8]!);
  snap();
  r.gic.setSpi(40, false);
  out.push(r.rd(0, ICC.IAR1_EL1));
  snap();
  r.wr(0, ICC.EOIR1_EL1, 0);
  r.wr(0, ICC.EOIR1_EL1, 40);
  r.wr(1, ICC.DIR_EL1, 5);
  out.push(r.rd(1, ICC.IAR1_EL1), r.rd(0, ICC.IAR1_EL1), r.rd(0, ICC.IAR1_EL1));
  snap();
  for (let off = 0; off < 0x1000; off += 4) out.push(r.gic.distRead(off, 4));
  for (let off = 0; off < 0x1000; off += 4) out.push(r.gic.redistRead(1, SGI + off, 4));
  return out;
}

function scriptHead(r: Rig): void {
  bringUp(r);
  r.wr(1, ICC.CTLR_EL1, 2); // EOImode 1 on PE 1
  enableSpi(r, 40, 0x80);
  enableSpi(r, 41, 0x30);
  enablePrivate(r, 1, 5, 0x20);
  enablePrivate(r, 0, 2, 0x50);
  r.gic.distWrite(GICD.IROUTER + 8 * 41, 4, 1);
  r.gic.setSpi(40, true);
  assert.equal(r.rd(0, ICC.IAR1_EL1), 40); // active + pending (line high), RPR 0x80
  r.wr(0, ICC.SGI1R_EL1, (5 << 24) | 2); // SGI 5 to PE 1
  assert.equal(r.rd(1, ICC.IAR1_EL1), 5);
  r.wr(1, ICC.EOIR1_EL1, 5); // dropped, still active (EOImode 1)
  r.wr(0, ICC.SGI1R_EL1, (2 << 24) | 1); // SGI 2 to self: pending, priority 0x50 preempts 0x80
  r.gic.setSpi(41, true); // to PE 1
  r.wr(0, ICC.BPR1_EL1, 4);
}

test("save → load mid-way gives the same behaviour as never stopping", () => {
  const a = rig(2, [0, 1]);
  scriptHead(a);
  const saved = JSON.parse(JSON.stringify(a.gic.saveState())) as StateValue;
  const expected = scriptTail(a);

  const b = rig(2, [0, 1]);
  b.gic.setSpi(40, true); // the line is a wire: the board re-drives it; state also carries it
  b.gic.loadState(saved, 1);
  assert.deepEqual(b.lines, [
    { irq: true, fiq: false },
    { irq: true, fiq: false },
  ]);
  assert.equal(b.rd(0, ICC.RPR_EL1), 0x80, "running priority restored");
  assert.deepEqual(scriptTail(b), expected);
  assert.deepEqual(b.gic.saveState(), a.gic.saveState());
});

test("corrupt or mismatched state is refused with a StateError naming the field", () => {
  const r = rig(2, [0, 1]);
  scriptHead(r);
  const good = r.gic.saveState() as { [k: string]: StateValue };
  const before = JSON.stringify(r.gic.saveState());
  // biome-ignore lint/suspicious/noExplicitAny: fixtures poke at arbitrary fields of untrusted state
  type Loose = { [k: string]: any };
  const clone = () => JSON.parse(JSON.stringify(good)) as Loose;
  const cases: [string, (s: Loose) => void, RegExp][] = [
    ["vcpus", (s) => (s.vcpus = 3), /vcpus/],
    ["spis", (s) => (s.spis = 32), /spis/],
    ["mpidrs", (s) => (s.mpidrs = [0, 2]), /mpidrs/],
    ["ctlr", (s) => (s.ctlr = 0x10), /ctlr/],
    ["irq missing", (s) => delete s.irq, /irq/],
    ["priority low bits", (s) => (s.irq.priority[40] = 0x81), /priority/],
    ["priority range", (s) => (s.irq.priority[3] = 256), /priority/],
    ["short array", (s) => s.irq.active.pop(), /active/],
    ["non-boolean", (s) => (s.irq.pendingLatch[0] = 2), /pendingLatch/],
    ["string", (s) => (s.irq.level[0] = "1"), /level/],
    ["sgi level", (s) => (s.irq.edge[3] = 0), /edge/],
    ["irouter reserved", (s) => (s.irouterLo[0] = 0x100_0000), /irouterLo/],
    ["pmr", (s) => (s.cpuif.pmr[0] = 0xff), /pmr/],
    ["bpr1", (s) => (s.cpuif.bpr1[1] = 1), /bpr1/],
    ["ap1r0", (s) => (s.cpuif.ap1r0[1] = -1), /ap1r0/],
    ["waker", (s) => (s.redist = null), /redist/],
  ];
  for (const [name, mutate, re] of cases) {
    const s = clone();
    mutate(s);
    assert.throws(
      () => r.gic.loadState(s, 1),
      (e: unknown) => e instanceof StateError && re.test(e.message),
      name,
    );
  }
  assert.throws(() => r.gic.loadState(good, 2), StateError, "unknown version");
  assert.throws(() => r.gic.loadState(null, 1), StateError);
  assert.equal(JSON.stringify(r.gic.saveState()), before, "a refused load changes nothing");
});

test("a CPU at EL1 sends itself an SGI through ICC_SGI1R_EL1 and takes it as an IRQ", async () => {
  const { Cpu, createVmMemory, RAM_OFFSET } = await import("../src/arch/arm64/index.ts");
  const RAM = 1 << 20;
  const cpu = new Cpu({ memory: createVmMemory(RAM), index: 0, bus: { ramBase: 0, ramSize: RAM } });
  const gic = new GicV3({
    vcpus: 1,
    mpidrs: [0x8000_0000],
    spis: 32,
    onLineChange: (_c, irq, fiq) => cpu.setIrqLine(irq, fiq),
  });
  cpu.extraSysregs = gic.cpuInterface(0);
  gic.distWrite(GICD.CTLR, 4, 2);
  gic.redistWrite(0, GICR.WAKER, 4, 0);
  gic.redistWrite(0, SGI + GICR_SGI.IPRIORITYR + 3, 1, 0xa0);
  gic.redistWrite(0, SGI + GICR_SGI.ISENABLER0, 4, 1 << 3);
  // main: PMR=0xf0, IGRPEN1=1, SGI1R = SGI 3 to Aff0 0, isb, msr daifclr,#2, nop, hvc #2
  const main = [
    0xd2801e00, 0xd5184600, 0xd2800020, 0xd518cce0, 0xd2a06000, 0xb2400000, 0xd518cba0, 0xd5033fdf,
    0xd50342ff, 0xd503201f, 0xd4000042,
  ];
  // IRQ vector (VBAR_EL1 = 0, current EL with SPx): x1 = IAR1, x2 = RPR, EOIR1 x1, x3 = RPR, x4 = IAR1, x5 = SRE, hvc #1
  const vector = [0xd538cc01, 0xd538cb62, 0xd518cc21, 0xd538cb63, 0xd538cc04, 0xd538cca5, 0xd4000022];
  for (const [i, w] of main.entries()) cpu.dv.setUint32(RAM_OFFSET + 0x10000 + i * 4, w, true);
  for (const [i, w] of vector.entries()) cpu.dv.setUint32(RAM_OFFSET + 0x280 + i * 4, w, true);
  cpu.pc = 0x10000n;
  const exit = cpu.run(1000);
  assert.deepEqual(exit, { kind: "hvc", imm: 1 });
  assert.equal(cpu.getX(1), 3n, "IAR1 returned SGI 3");
  assert.equal(cpu.getX(2), 0xa0n, "running priority while active");
  assert.equal(cpu.getX(3), 0xffn, "idle after EOI");
  assert.equal(cpu.getX(4), 1023n, "spurious afterwards");
  assert.equal(cpu.getX(5), 7n, "ICC_SRE_EL1");
  assert.equal(cpu.irqLine, false);
});

test("property: any mutation of a saved state either loads or is refused with a StateError", async () => {
  const fc = (await import("fast-check")).default;
  const r = rig(2, [0, 1], 32);
  scriptHead(r);
  const base = JSON.stringify(r.gic.saveState());
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, p: (string | number)[]) => {
    if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, [...p, i]);
    else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
    else paths.push(p);
  };
  walk(JSON.parse(base), []);
  const value = fc.oneof(
    fc.integer({ min: -2, max: 0x1_0000_0001 }),
    fc.constantFrom(0, 1, 2, 7, 0xf8, 0xff, 0x80000000, null, "1", true, [], {}, 0.5),
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(paths.length - 1), value), { minLength: 1, maxLength: 4 }),
      (edits) => {
        const s = JSON.parse(base);
        for (const [pi, v] of edits) {
          const p = paths[pi]!;
          let o = s;
          for (const k of p.slice(0, -1)) o = o[k];
          o[p[p.length - 1]!] = v;
        }
        const g = rig(2, [0, 1], 32).gic;
        try {
          g.loadState(s, 1);
        } catch (e) {
          assert.ok(e instanceof StateError, String(e));
          return;
        }
        // Accepted: it must save back to the same thing (no silent coercion) and keep working.
        assert.deepEqual(g.saveState(), s);
        g.iccRead(0, ICC.IAR1_EL1);
        g.iccRead(1, ICC.IAR1_EL1);
      },
    ),
    { numRuns: 300 },
  );
});
