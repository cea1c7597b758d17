/**
 * Stage-1 MMU (EL1&0 regime) against the rules of the Arm ARM (DDI 0487, chapter D8):
 * granules and levels, descriptor legality, the four fault kinds with their level and
 * FAR, permissions at EL0 and EL1 (AP, UXN/PXN, the table controls, WXN, EL0-writable
 * implies PXN), TBI, ASIDs and global entries, every TLBI form (and IS reaching the other
 * PE), AT and PAR_EL1, page-crossing accesses, Device alignment, cache maintenance
 * faults, the physically tagged exclusive monitor, and the TLB as a cache only.
 * Encodings from aarch64-linux-gnu-as -march=armv8-a.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { UNWIND } from "../src/arch/arm64/exceptions.ts";
import { Cpu, createVmMemory, RAM_OFFSET } from "../src/arch/arm64/index.ts";
import { R64 } from "../src/arch/arm64/ret64.ts";
import { I } from "../src/arch/arm64/state.ts";
import { sysregIndex } from "../src/arch/arm64/sysregs.ts";
import { PageTables } from "./support/pagetables.ts";

const RAM_BASE = 0x4000_0000;
const RAM_SIZE = 64 << 20;
const TABLES = RAM_BASE + 0x100_0000; // 16 MiB in
const ESR = sysregIndex("ESR_EL1");
const FAR = sysregIndex("FAR_EL1");
const PAR = sysregIndex("PAR_EL1");
const VBAR = sysregIndex("VBAR_EL1");

const ENC = {
  ldtr: 0xf8400801,
  sttr: 0xf8000801,
  ldtrb: 0x38400801,
  atS1E1R: 0xd5087800,
  atS1E1W: 0xd5087820,
  atS1E0R: 0xd5087840,
  atS1E0W: 0xd5087860,
  tlbiVmalle1: 0xd508871f,
  tlbiVae1: 0xd5088720,
  tlbiAside1: 0xd5088740,
  tlbiVaae1: 0xd5088760,
  tlbiVale1: 0xd50887a0,
  tlbiVaale1: 0xd50887e0,
  tlbiVmalle1is: 0xd508831f,
  tlbiVae1is: 0xd5088320,
  tlbiAside1is: 0xd5088340,
  tlbiVaae1is: 0xd5088360,
  tlbiVale1is: 0xd50883a0,
  tlbiVaale1is: 0xd50883e0,
  dcCvac: 0xd50b7a20,
  dcIvac: 0xd5087620,
  dcZva: 0xd50b7420,
  icIvau: 0xd50b7520,
  ldxr: 0xc85f7c01,
  stxr: 0xc8037c41,
  msrTtbr0: 0xd5182000,
  ldr: 0xf9400001,
  str: 0xf9000001,
  hvc1: 0xd4000022,
  brX0: 0xd61f0000,
} as const;

function makeCpu(ram = RAM_SIZE): Cpu {
  const memory = createVmMemory(ram);
  return new Cpu({ memory, index: 0, bus: { ramBase: RAM_BASE, ramSize: ram } });
}
const host = (pa: number) => RAM_OFFSET + pa - RAM_BASE;
const w64 = (c: Cpu, pa: number, v: bigint) => c.dv.setBigUint64(host(pa), v, true);
const r64 = (c: Cpu, pa: number) => c.dv.getBigUint64(host(pa), true);
const split = (va: bigint): [number, number] => [Number(va & 0xffffffffn), Number((va >> 32n) & 0xffffffffn)];

interface Fault {
  ec: number;
  iss: number;
  fsc: number;
  far: bigint;
}
/** Runs `f` (an access); returns the exception it took (ESR decoded, FAR) or null. */
function attempt(c: Cpu, f: () => void): Fault | null {
  const p = c.pstate;
  try {
    f();
    return null;
  } catch (e) {
    if (e !== UNWIND) throw e;
    const esr = c.r[ESR]!;
    const far = (BigInt(c.r[FAR + 1]!) << 32n) | BigInt(c.r[FAR]!);
    c.pstate = p; // back to the EL the test runs at
    return { ec: esr >>> 26, iss: esr & 0x1ffffff, fsc: esr & 0x3f, far };
  }
}
function load(c: Cpu, va: bigint): bigint | Fault {
  const [lo, hi] = split(va);
  let v = 0n;
  const f = attempt(c, () => {
    c.ld64(lo, hi);
    v = (BigInt(R64.hi >>> 0) << 32n) | BigInt(R64.lo >>> 0);
  });
  return f ?? v;
}
function store(c: Cpu, va: bigint, v: bigint): Fault | null {
  const [lo, hi] = split(va);
  return attempt(c, () => c.st64(lo, hi, Number(v & 0xffffffffn), Number(v >> 32n)));
}
function fetch(c: Cpu, va: bigint): Fault | null {
  const [lo, hi] = split(va);
  return attempt(c, () => c.hostOffset(lo, hi, 4, 2));
}
const setEl = (c: Cpu, el: 0 | 1) => {
  c.pstate = el === 0 ? 0 : 0x3c5;
};
const TRANSLATION = 0x04;
const ACCESS = 0x08;
const PERMISSION = 0x0c;
const ADDR_SIZE = 0x00;

/**
 * Runs EL1 code: `words` at VA CODE (identity-mapped, EL1 executable), vectors at VECT
 * each holding HVC #0x99, the snippet ends with HVC #1. Returns the exit's HVC immediate.
 */
const CODE = RAM_BASE + 0x10000;
const VECT = RAM_BASE + 0x20000;
function runEl1(c: Cpu, pt: PageTables, words: number[], setup?: (c: Cpu) => void): number {
  for (let p = CODE; p < CODE + 0x2000; p += 0x1000) pt.map(BigInt(p), p, { ap: 0, uxn: true });
  for (let p = VECT; p < VECT + 0x1000; p += 0x1000) pt.map(BigInt(p), p, { ap: 0, uxn: true });
  for (let o = 0; o < 0x800; o += 0x80) c.dv.setUint32(host(VECT + o), 0xd4001322, true); // hvc #0x99
  [...words, ENC.hvc1].forEach((w, i) => {
    c.dv.setUint32(host(CODE + i * 4), w >>> 0, true);
  });
  c.r[VBAR] = VECT;
  c.r[VBAR + 1] = 0;
  setEl(c, 1);
  c.pc = BigInt(CODE);
  c.flushDecodeCache();
  setup?.(c);
  const exit = c.run(1000);
  assert.equal(exit.kind, "hvc", JSON.stringify(exit));
  return exit.kind === "hvc" ? exit.imm : -1;
}

// ---------------------------------------------------------------------------

test("every granule (4/16/64 KiB) and VA size resolves pages and the legal blocks", () => {
  const cases: [4 | 16 | 64, number, number[]][] = [
    [4, 48, [1, 2, 3]],
    [4, 39, [1, 2, 3]],
    [4, 25, [3]],
    [16, 48, [2, 3]],
    [16, 36, [2, 3]],
    [64, 48, [2, 3]],
    [64, 42, [2, 3]],
  ];
  for (const [g, vaBits, levels] of cases) {
    for (const level of levels) {
      const c = makeCpu();
      const pt = new PageTables(c, { granuleKiB: g, tableArea: TABLES, vaBits });
      const shift = pt.granuleLog + (3 - level) * pt.stride;
      // A block/page at PA RAM_BASE (aligned to every size used here), VA 0x7ff.._0000-ish.
      const va = (1n << BigInt(vaBits - 1)) - (1n << BigInt(shift)); // last slot below the top
      pt.map(va, RAM_BASE, { level });
      setEl(c, 1);
      pt.enable();
      const off = 0x238;
      w64(c, RAM_BASE + off, 0x1122334455667788n);
      assert.equal(load(c, va + BigInt(off)), 0x1122334455667788n, `${g}K ${vaBits}-bit level ${level}`);
      // The upper half (TTBR1) works the same way.
      const vaHigh = BigInt.asUintN(64, -(1n << BigInt(shift)) * 2n);
      pt.map(vaHigh, RAM_BASE, { level });
      c.flushTlb();
      assert.equal(load(c, vaHigh + BigInt(off)), 0x1122334455667788n, `${g}K upper half level ${level}`);
    }
  }
});

test("illegal blocks and reserved level-3 descriptors are translation faults at their level", () => {
  const cases: [4 | 16 | 64, number][] = [
    [4, 0],
    [16, 1],
    [64, 1],
  ];
  for (const [g, level] of cases) {
    const c = makeCpu();
    const pt = new PageTables(c, { granuleKiB: g, tableArea: TABLES });
    if (level < pt.startLevel) continue;
    pt.rawLeaf(0x1000_0000n, level, (RAM_BASE | 0x401) >>> 0, 0); // block descriptor 0b01, AF
    setEl(c, 1);
    pt.enable();
    const f = load(c, 0x1000_0000n) as Fault;
    assert.equal(f.fsc, TRANSLATION + level, `${g}K block at level ${level}`);
    assert.equal(f.far, 0x1000_0000n);
  }
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  pt.rawLeaf(0x2000n, 3, (RAM_BASE | 0x401) >>> 0, 0);
  setEl(c, 1);
  pt.enable();
  assert.equal((load(c, 0x2008n) as Fault).fsc, TRANSLATION + 3);
});

test("faults: translation at each level, access flag, address size (TTBR and output), VA outside the range, EPD", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  setEl(c, 1);
  pt.enable();
  // Level 0 empty.
  const f = load(c, 0x0000_8000_0000_0000n - 0x1000n) as Fault;
  assert.deepEqual([f.ec, f.fsc, f.far], [0x25, TRANSLATION + 0, 0x0000_7fff_ffff_f000n]);
  // Level 1, 2 and 3 empty below a table.
  pt.map(0x4000_0000n, RAM_BASE); // creates L0..L2 tables for 0x4000_0000
  c.flushTlb();
  assert.equal((load(c, 0x1_0000_0000n) as Fault).fsc, TRANSLATION + 1);
  assert.equal((load(c, 0x4020_0000n) as Fault).fsc, TRANSLATION + 2);
  assert.equal((load(c, 0x4000_1000n) as Fault).fsc, TRANSLATION + 3);
  // Access flag at levels 1, 2, 3.
  for (const level of [1, 2, 3]) {
    const va = 0x100_0000_0000n * BigInt(level + 1);
    pt.map(va, RAM_BASE, { level, af: false });
    c.flushTlb();
    const g = load(c, va + 8n) as Fault;
    assert.deepEqual([g.fsc, g.far], [ACCESS + level, va + 8n], `AF level ${level}`);
    assert.equal((store(c, va, 1n) as Fault).iss & (1 << 6), 1 << 6, "WnR on a store");
  }
  // Output address above 40 bits (PARange): Address size fault at the leaf's level.
  pt.rawLeaf(0x5000n, 3, 0x403, 0x100); // OA bit 40
  c.flushTlb();
  assert.equal((load(c, 0x5000n) as Fault).fsc, ADDR_SIZE + 3);
  // A TTBR above the PA size: level 0.
  const ttbr0 = sysregIndex("TTBR0_EL1");
  const saved = c.r[ttbr0 + 1]!;
  c.r[ttbr0 + 1] = 0x100;
  c.flushTlb();
  assert.equal((load(c, 0x4000_0000n) as Fault).fsc, ADDR_SIZE + 0);
  c.r[ttbr0 + 1] = saved;
  // A VA in neither range (bits 63:48 neither all 0 nor all 1): translation fault level 0.
  c.flushTlb();
  assert.equal((load(c, 0x0001_0000_4000_0000n) as Fault).fsc, TRANSLATION + 0);
  // EPD0 disables walks from TTBR0.
  const tcr = sysregIndex("TCR_EL1");
  c.r[tcr] = c.r[tcr]! | (1 << 7);
  c.flushTlb();
  assert.equal((load(c, 0x4000_0000n) as Fault).fsc, TRANSLATION + 0);
});

test("permissions: AP[2:1] x EL0/EL1 x read/write, UXN/PXN, EL0-writable is PXN, WXN", () => {
  // Expected per Arm ARM D8.4.1: [EL1 R, EL1 W, EL0 R, EL0 W] for AP = 0..3.
  const rw: [boolean, boolean, boolean, boolean][] = [
    [true, true, false, false],
    [true, true, true, true],
    [true, false, false, false],
    [true, false, true, false],
  ];
  for (let ap = 0; ap < 4; ap++) {
    for (const [uxn, pxn] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      for (const wxn of [false, true]) {
        const c = makeCpu();
        const pt = new PageTables(c, { tableArea: TABLES });
        const va = 0x1234_5000n;
        pt.map(va, RAM_BASE, { ap, uxn, pxn });
        pt.enable({ wxn });
        const [r1, wr1, r0, wr0] = rw[ap]!;
        const x0 = !uxn && !(wxn && wr0);
        const x1 = !pxn && !wr0 && !(wxn && wr1);
        const tag = `AP=${ap} UXN=${uxn} PXN=${pxn} WXN=${wxn}`;
        for (const el of [0, 1] as const) {
          setEl(c, el);
          const [canR, canW, canX] = el === 1 ? [r1, wr1, x1] : [r0, wr0, x0];
          const lr = load(c, va);
          assert.equal(typeof lr === "bigint", canR, `${tag} EL${el} read`);
          if (!canR) assert.equal((lr as Fault).fsc, PERMISSION + 3);
          const sw = store(c, va, 5n);
          assert.equal(sw === null, canW, `${tag} EL${el} write`);
          if (sw)
            assert.deepEqual([sw.fsc, sw.iss & (1 << 6), sw.ec], [PERMISSION + 3, 1 << 6, el ? 0x25 : 0x24]);
          const fx = fetch(c, va);
          assert.equal(fx === null, canX, `${tag} EL${el} fetch`);
          if (fx) assert.deepEqual([fx.ec, fx.fsc, fx.far], [el ? 0x21 : 0x20, PERMISSION + 3, va]);
        }
      }
    }
  }
});

test("hierarchical controls: APTable, UXNTable and PXNTable restrict the levels below", () => {
  const va = 0x2000_0000n;
  const check = (attrs: object, el: 0 | 1, r: boolean, w: boolean, x: boolean) => {
    const c = makeCpu();
    const pt = new PageTables(c, { tableArea: TABLES });
    pt.map(va, RAM_BASE, { ap: 1, ...attrs });
    pt.enable();
    setEl(c, el);
    const tag = `${JSON.stringify(attrs)} EL${el}`;
    assert.equal(typeof load(c, va) === "bigint", r, `${tag} read`);
    assert.equal(store(c, va, 1n) === null, w, `${tag} write`);
    assert.equal(fetch(c, va) === null, x, `${tag} fetch`);
  };
  // AP=01 leaf (EL0 RW, so never EL1-executable).
  check({ apTable: 1 }, 0, false, false, true); // no EL0 data access below; UXN clear
  check({ apTable: 1 }, 1, true, true, true); // the effective AP is 00: not EL0-writable
  check({ apTable: 2 }, 0, true, false, true); // read-only below
  check({ apTable: 2 }, 1, true, false, true); // EL0 can no longer write: EL1 may execute
  check({ uxnTable: true }, 0, true, true, false);
  check({ ap: 0, pxnTable: true }, 1, true, true, false);
  check({ ap: 0 }, 1, true, true, true);
});

test("LDTR/STTR at EL1 use EL0 permissions; at EL0 they are ordinary accesses", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  const user = RAM_BASE + 0x30000;
  const kern = RAM_BASE + 0x31000;
  pt.map(BigInt(user), user, { ap: 1 });
  pt.map(BigInt(kern), kern, { ap: 0 });
  pt.enable();
  w64(c, user, 0xabcn);
  w64(c, kern, 0xdefn);
  assert.equal(
    runEl1(c, pt, [ENC.ldtr], (k) => k.setX(0, BigInt(user))),
    1,
  );
  assert.equal(c.getX(1), 0xabcn);
  assert.equal(
    runEl1(c, pt, [ENC.ldtr], (k) => k.setX(0, BigInt(kern))),
    0x99,
    "EL1-only page",
  );
  assert.equal(c.r[ESR]! & 0x3f, PERMISSION + 3);
  assert.equal(c.r[ESR]! >>> 26, 0x25, "taken from EL1: current-EL data abort");
  assert.equal(
    runEl1(c, pt, [ENC.sttr], (k) => k.setX(0, BigInt(kern))),
    0x99,
  );
  assert.equal((c.r[ESR]! >> 6) & 1, 1, "WnR");
  // After the fault the ordinary path is privileged again.
  assert.equal(
    runEl1(c, pt, [ENC.ldr], (k) => k.setX(0, BigInt(kern))),
    1,
  );
  assert.equal(c.getX(1), 0xdefn);
  assert.equal(
    runEl1(c, pt, [ENC.ldtrb], (k) => k.setX(0, BigInt(user))),
    1,
  );
  assert.equal(c.getX(1), 0xbcn);
});

test("TBI: the top byte is ignored when TCR_EL1.TBI0/TBI1 say so, a translation fault otherwise; FAR keeps the tag", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  pt.map(0x1234_5000n, RAM_BASE);
  pt.map(0xffff_0000_1234_5000n, RAM_BASE + 0x1000);
  w64(c, RAM_BASE, 1n);
  w64(c, RAM_BASE + 0x1000, 2n);
  setEl(c, 1);
  pt.enable({ tbi0: true });
  assert.equal(load(c, 0xab00_0000_1234_5000n), 1n);
  assert.equal(load(c, 0x1234_5000n), 1n);
  const f = load(c, 0x00ff_0000_1234_5000n) as Fault; // bits 55:48 still count
  assert.equal(f.fsc, TRANSLATION + 0);
  const g = load(c, 0x12ff_0000_1234_5000n) as Fault; // TBI1 off: the upper half needs 0xff top byte
  assert.deepEqual([g.fsc, g.far], [TRANSLATION + 0, 0x12ff_0000_1234_5000n]);
  pt.enable({ tbi1: true });
  assert.equal(load(c, 0x12ff_0000_1234_5000n), 2n);
  const h = load(c, 0xab00_0000_1234_5000n) as Fault; // TBI0 now off
  assert.deepEqual([h.fsc, h.far], [TRANSLATION + 0, 0xab00_0000_1234_5000n]);
});

/** Maps VA to PA_A, warms the TLB, remaps to PA_B in memory only (a stale TLB keeps PA_A). */
function staleSetup(opts: { ng: boolean; asid?: number; level?: number }) {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  const va = 0x6000_0000n + 0x1000n * 3n; // away from the code's 2 MiB
  const a = RAM_BASE + 0x20_0000;
  const b = RAM_BASE + 0x40_0000;
  const level = opts.level ?? 3;
  const mapVa = level === 3 ? va : va - (va % (1n << 21n));
  const off = Number(va - mapVa);
  w64(c, a + off, 0xaan);
  w64(c, b + off, 0xbbn);
  pt.map(mapVa, a, { ng: opts.ng, level });
  setEl(c, 1);
  pt.enable({ asid: opts.asid ?? 1 });
  assert.equal(load(c, va), 0xaan);
  pt.map(mapVa, b, { ng: opts.ng, level });
  assert.equal(load(c, va), 0xaan, "the TLB holds the old translation until a TLBI");
  return { c, pt, va };
}
const vaOperand = (va: bigint, asid: number) => ((va >> 12n) & ((1n << 44n) - 1n)) | (BigInt(asid) << 48n);

test("TLBI: every EL1 form invalidates what the Arm ARM says, by VA, ASID and global-ness", () => {
  const forms: [keyof typeof ENC, (va: bigint) => bigint, boolean, boolean][] = [
    // [encoding, operand, invalidates a non-global ASID-1 entry, invalidates a global entry]
    ["tlbiVmalle1", () => 0n, true, true],
    ["tlbiVae1", (va) => vaOperand(va, 1), true, true],
    ["tlbiVae1", (va) => vaOperand(va, 2), false, true],
    ["tlbiVale1", (va) => vaOperand(va, 1), true, true],
    ["tlbiVale1", (va) => vaOperand(va, 2), false, true],
    ["tlbiAside1", () => vaOperand(0n, 1), true, false],
    ["tlbiAside1", () => vaOperand(0n, 2), false, false],
    ["tlbiVaae1", (va) => vaOperand(va, 7), true, true],
    ["tlbiVaale1", (va) => vaOperand(va, 7), true, true],
    ["tlbiVae1", (va) => vaOperand(va + 0x1000n, 1), false, false], // another page
  ];
  for (const [enc, operand, ngGone, globalGone] of forms) {
    for (const ng of [true, false]) {
      const { c, pt, va } = staleSetup({ ng });
      runEl1(c, pt, [ENC[enc]], (k) => k.setX(0, operand(va)));
      const expected = (ng ? ngGone : globalGone) ? 0xbbn : 0xaan;
      // Reading through the code path's own mappings must not disturb the entry under test.
      assert.equal(
        load(c, va),
        expected,
        `${enc} ${operand(va).toString(16)} on a ${ng ? "non-global" : "global"} entry`,
      );
    }
  }
});

test("TLBI by VA removes a whole block's entries; a VA elsewhere in the block is enough", () => {
  const { c, pt, va } = staleSetup({ ng: false, level: 2 });
  const other = va - (va % (1n << 21n)) + 0x1f_f000n; // same 2 MiB block, another page
  runEl1(c, pt, [ENC.tlbiVaae1], (k) => k.setX(0, vaOperand(other, 0)));
  assert.equal(load(c, va), 0xbbn);
});

test("TLBI by VA finds every cached page of a block, also after TLBIs of other VAs", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  const base = 0x6000_0000n; // one 2 MiB block; its pages sit in TLB sets 3, 0x50, 0x113, 0x1fe
  const a = RAM_BASE + 0x20_0000;
  const b = RAM_BASE + 0x40_0000;
  const offs = [0x3000, 0x5_0000, 0x11_3000, 0x1f_e000];
  offs.forEach((o, i) => {
    w64(c, a + o, BigInt(0x100 + i));
    w64(c, b + o, BigInt(0x200 + i));
  });
  pt.map(base, a, { ng: false, level: 2 });
  setEl(c, 1);
  pt.enable({ asid: 1 });
  const read = () => offs.map((o) => load(c, base + BigInt(o)));
  assert.deepEqual(read(), [0x100n, 0x101n, 0x102n, 0x103n]);
  pt.map(base, b, { ng: false, level: 2 });
  // A TLBI of a VA outside the block leaves the block's entries cached...
  runEl1(c, pt, [ENC.tlbiVaae1], (k) => k.setX(0, vaOperand(base + (1n << 22n), 0)));
  assert.deepEqual(read(), [0x100n, 0x101n, 0x102n, 0x103n], "still the old translation");
  // ...and a TLBI of any page of the block (in a set none of them is in) removes them all.
  runEl1(c, pt, [ENC.tlbiVaae1], (k) => k.setX(0, vaOperand(base + 0x1f_f000n, 0)));
  assert.deepEqual(read(), [0x200n, 0x201n, 0x202n, 0x203n]);
});

test("TLBI …IS reaches every PE of the Inner Shareable domain; the local forms do not", () => {
  for (const [enc, reaches] of [
    ["tlbiVmalle1is", true],
    ["tlbiVae1is", true],
    ["tlbiAside1is", true],
    ["tlbiVaae1is", true],
    ["tlbiVale1is", true],
    ["tlbiVaale1is", true],
    ["tlbiVmalle1", false],
    ["tlbiVae1", false],
  ] as const) {
    const memory = createVmMemory(RAM_SIZE);
    const bus = { ramBase: RAM_BASE, ramSize: RAM_SIZE };
    const c0 = new Cpu({ memory, index: 0, bus });
    const c1 = new Cpu({ memory, index: 1, bus });
    c0.innerShareable = c1.innerShareable = [c0, c1];
    const va = 0x5000_0000n;
    const a = RAM_BASE + 0x20_0000;
    const b = RAM_BASE + 0x40_0000;
    w64(c0, a, 0xaan);
    w64(c0, b, 0xbbn);
    // Both PEs share the tables (PageTables writes them once through c0's RAM view).
    const pt0 = new PageTables(c0, { tableArea: TABLES });
    pt0.map(va, a, { ng: true });
    setEl(c0, 1);
    pt0.enable({ asid: 1 });
    for (const name of ["SCTLR_EL1", "TCR_EL1", "TTBR0_EL1", "TTBR1_EL1", "MAIR_EL1"]) {
      const i = sysregIndex(name);
      c1.r[i] = c0.r[i]!;
      c1.r[i + 1] = c0.r[i + 1]!;
    }
    setEl(c1, 1);
    c1.flushTlb();
    assert.equal(load(c1, va), 0xaan);
    pt0.map(va, b, { ng: true });
    runEl1(c0, pt0, [ENC[enc]], (k) => k.setX(0, vaOperand(va, 1)));
    assert.equal(load(c1, va), reaches ? 0xbbn : 0xaan, enc);
  }
});

test("ASIDs: a non-global entry of one ASID is never used under another; a TTBR write keeps global entries", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  const user = 0x1000n;
  const kern = 0xffff_0000_0000_0000n;
  w64(c, RAM_BASE, 1n);
  w64(c, RAM_BASE + 0x1000, 2n);
  pt.map(user, RAM_BASE, { ng: true });
  pt.map(kern, RAM_BASE, { ng: false, ap: 0 });
  setEl(c, 1);
  pt.enable({ asid: 1 });
  assert.equal(load(c, user), 1n);
  assert.equal(load(c, kern), 1n);
  // Another address space (ASID 2) maps the user VA elsewhere: switch with an MSR.
  pt.map(user, RAM_BASE + 0x1000, { ng: true });
  pt.map(kern, RAM_BASE + 0x1000, { ng: false, ap: 0 }); // changed without TLBI: stale is allowed
  const ttbr = BigInt(pt.root0) | (2n << 48n);
  runEl1(c, pt, [ENC.msrTtbr0], (k) => k.setX(0, ttbr));
  assert.equal(load(c, user), 2n, "ASID 2 sees its own mapping");
  assert.equal(load(c, kern), 1n, "the global entry survives the switch (until a TLBI)");
  // With 8-bit ASIDs (TCR_EL1.AS = 0) ASID[15:8] takes no part.
  const c8 = makeCpu();
  const p8 = new PageTables(c8, { tableArea: TABLES });
  p8.enable({ asid: 0x101, as8: true });
  assert.equal(c8.asid, 1);
  p8.enable({ asid: 0x101 });
  assert.equal(c8.asid, 0x101);
});

for (const pages of [3, 300]) {
  test(`an ASID change leaves none of ${pages} non-global pages used under the old ASID usable (listed or scanned)`, () => {
    const c = makeCpu();
    const pt = new PageTables(c, { tableArea: TABLES });
    const va = (i: number) => 0x10_0000n + BigInt(i) * 0x1000n;
    w64(c, RAM_BASE, 1n);
    w64(c, RAM_BASE + 0x1000, 2n);
    for (let i = 0; i < pages; i++) pt.map(va(i), RAM_BASE, { ng: true });
    setEl(c, 1);
    pt.enable({ asid: 1 });
    // Read and written under ASID 1: read and write tags on every entry.
    for (let i = 0; i < pages; i++) {
      assert.equal(load(c, va(i)), 1n);
      assert.equal(store(c, va(i), 1n), null);
    }
    // ASID 2 maps them all elsewhere; no TLBI.
    for (let i = 0; i < pages; i++) pt.map(va(i), RAM_BASE + 0x1000, { ng: true });
    const ttbr = BigInt(pt.root0) | (2n << 48n);
    runEl1(c, pt, [ENC.msrTtbr0], (k) => k.setX(0, ttbr));
    for (let i = 0; i < pages; i++) {
      assert.equal(load(c, va(i)), 2n, `page ${i} read under ASID 2`);
      assert.equal(store(c, va(i), 2n), null);
    }
    // Stored as 1 under ASID 1, as 2 under ASID 2 (all the pages share one PA per ASID).
    assert.equal(r64(c, RAM_BASE), 1n, "no store under ASID 2 went through ASID 1's write tag");
    assert.equal(r64(c, RAM_BASE + 0x1000), 2n);
  });
}

test("MSR to SCTLR_EL1, TCR_EL1 or MAIR_EL1 drops cached translations (even the same value)", () => {
  for (const [name, enc] of [
    ["TCR_EL1", 0xd5182040],
    ["MAIR_EL1", 0xd518a200],
    ["SCTLR_EL1", 0xd5181000],
  ] as const) {
    const { c, pt, va } = staleSetup({ ng: false });
    const i = sysregIndex(name);
    const value = (BigInt(c.r[i + 1]!) << 32n) | BigInt(c.r[i]!);
    runEl1(c, pt, [enc], (k) => k.setX(0, value));
    assert.equal(load(c, va), 0xbbn, name);
  }
});

test("AT S1E1R/W, S1E0R/W fill PAR_EL1: success (PA, attributes, SH, NS) and fault (FST) formats", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  pt.map(0x7000n, RAM_BASE + 0x5000, { ap: 2, attrIndx: 0 }); // EL1 read-only, Normal WB
  pt.map(0x8000n, 0x0900_0000, { ap: 0, attrIndx: 1 }); // Device (the UART's page)
  pt.enable();
  const at = (enc: number, va: bigint) => {
    runEl1(c, pt, [enc], (k) => k.setX(0, va));
    return (BigInt(c.r[PAR + 1]!) << 32n) | BigInt(c.r[PAR]!);
  };
  // Success: PA[47:12], ATTR = MAIR byte 0xff, SH = 0b11 (inner), NS = 1, bit 11 RES1.
  assert.equal(
    at(ENC.atS1E1R, 0x7abcn),
    (0xffn << 56n) | BigInt(RAM_BASE + 0x5000) | (3n << 7n) | (1n << 9n) | (1n << 11n),
  );
  // Device memory reports SH = 0b10.
  assert.equal(
    at(ENC.atS1E1R, 0x8000n),
    (0x00n << 56n) | 0x0900_0000n | (2n << 7n) | (1n << 9n) | (1n << 11n),
  );
  // Faults: F = 1, FST in bits 6:1, bit 11.
  const fault = (fst: number) => BigInt(1 | (fst << 1) | (1 << 11));
  assert.equal(at(ENC.atS1E1W, 0x7000n), fault(PERMISSION + 3), "write to a read-only page");
  assert.equal(at(ENC.atS1E0R, 0x7000n), fault(PERMISSION + 3), "EL0 has no access");
  assert.equal(at(ENC.atS1E0W, 0x8000n), fault(PERMISSION + 3));
  assert.equal(at(ENC.atS1E1R, 0x9000n), fault(TRANSLATION + 3), "unmapped");
  // AT at EL0 is UNDEFINED; AT never takes a data abort itself.
  assert.equal(c.r[ESR]! >>> 26 === 0x25 && (c.r[ESR]! & 0x3f) === TRANSLATION + 3, false);
});

test("page-crossing accesses translate both pages; a fault on the second reports its first byte and writes nothing", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  // VA 0x10000 -> PA +0x9000, VA 0x11000 -> PA +0x3000 (not contiguous), 0x12000 unmapped.
  pt.map(0x10000n, RAM_BASE + 0x9000);
  pt.map(0x11000n, RAM_BASE + 0x3000);
  setEl(c, 1);
  pt.enable();
  c.dv.setUint32(host(RAM_BASE + 0x9ffc), 0x44332211, true);
  c.dv.setUint32(host(RAM_BASE + 0x3000), 0x88776655, true);
  assert.equal(load(c, 0x10ffcn), 0x8877665544332211n);
  assert.equal(store(c, 0x10ffen, 0x0102030405060708n), null);
  assert.equal(c.dv.getUint16(host(RAM_BASE + 0x9ffe), true), 0x0708);
  assert.equal(c.dv.getUint32(host(RAM_BASE + 0x3000), true), 0x03040506);
  assert.equal(c.dv.getUint16(host(RAM_BASE + 0x3004), true), 0x0102);
  w64(c, RAM_BASE + 0x3ff8, 0n);
  const f = store(c, 0x11ffcn, -1n) as Fault;
  assert.deepEqual([f.fsc, f.far], [TRANSLATION + 3, 0x12000n]);
  assert.equal(r64(c, RAM_BASE + 0x3ff8), 0n, "nothing written to the first page");
  const [lo, hi] = split(0x11ffen);
  const g = attempt(c, () => c.ld32(lo, hi))!;
  assert.deepEqual([g.fsc, g.far], [TRANSLATION + 3, 0x12000n]);
});

test("Device memory: unaligned accesses take an alignment fault, aligned ones reach the device", () => {
  const c = makeCpu();
  const reads: number[] = [];
  const bus = {
    ramBase: RAM_BASE,
    ramSize: RAM_SIZE,
    mmioRead: (pa: number) => {
      reads.push(pa);
      return 0x5a;
    },
    mmioWrite: () => true,
  };
  const d = new Cpu({ memory: c.memory, index: 1, bus });
  const pt = new PageTables(d, { tableArea: TABLES });
  pt.map(0x9000_0000n, 0x0900_0000, { attrIndx: 1, ap: 0 });
  pt.map(0x9000_1000n, RAM_BASE + 0x7000, { attrIndx: 1, ap: 0 }); // RAM mapped as Device
  setEl(d, 1);
  pt.enable();
  const [lo, hi] = split(0x9000_0004n);
  assert.equal(
    attempt(d, () => assert.equal(d.ld32(lo, hi), 0x5a)),
    null,
  );
  assert.deepEqual(reads, [0x0900_0004]);
  assert.equal(attempt(d, () => d.ld32(lo + 1, hi))!.fsc, 0x21);
  assert.equal(attempt(d, () => d.ld32(0x9000_1002, 0))!.fsc, 0x21);
  assert.equal(
    attempt(d, () => d.ld32(0x9000_1004, 0)),
    null,
  );
});

test("instruction aborts: translation and permission faults on fetch report the PC in FAR and ELR", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  const nx = RAM_BASE + 0x40000;
  pt.map(BigInt(nx), nx, { ap: 0, pxn: true });
  pt.enable();
  assert.equal(
    runEl1(c, pt, [ENC.brX0], (k) => k.setX(0, BigInt(nx))),
    0x99,
  );
  assert.equal(c.r[ESR]! >>> 26, 0x21);
  assert.equal(c.r[ESR]! & 0x3f, PERMISSION + 3);
  assert.equal((BigInt(c.r[FAR + 1]!) << 32n) | BigInt(c.r[FAR]!), BigInt(nx));
  assert.equal((BigInt(c.r[I.ELR_EL1 + 1]!) << 32n) | BigInt(c.r[I.ELR_EL1]!), BigInt(nx));
  assert.equal(
    runEl1(c, pt, [ENC.brX0], (k) => k.setX(0, 0x1_0000_0000n)),
    0x99,
  );
  assert.equal(c.r[ESR]! & 0x3f, TRANSLATION + 1);
  assert.deepEqual([c.r[FAR]!, c.r[FAR + 1]!], [0, 1]);
});

test("cache maintenance by VA: translation faults with CM = 1 and WnR = 1; DC IVAC needs write permission; DC ZVA is a store", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  const ro = RAM_BASE + 0x50000;
  pt.map(BigInt(ro), ro, { ap: 2 });
  pt.enable();
  for (const enc of [ENC.dcCvac, ENC.icIvau, ENC.dcIvac]) {
    assert.equal(
      runEl1(c, pt, [enc], (k) => k.setX(0, 0x1_0000_0000n)),
      0x99,
    );
    const esr = c.r[ESR]!;
    assert.deepEqual([esr >>> 26, esr & 0x3f, (esr >> 8) & 1, (esr >> 6) & 1], [0x25, TRANSLATION + 1, 1, 1]);
  }
  assert.equal(
    runEl1(c, pt, [ENC.dcCvac], (k) => k.setX(0, BigInt(ro))),
    1,
    "clean needs no write permission",
  );
  assert.equal(
    runEl1(c, pt, [ENC.dcIvac], (k) => k.setX(0, BigInt(ro))),
    0x99,
  );
  assert.equal(c.r[ESR]! & 0x3f, PERMISSION + 3);
  assert.equal(
    runEl1(c, pt, [ENC.dcZva], (k) => k.setX(0, BigInt(ro))),
    0x99,
  );
  assert.deepEqual([c.r[ESR]! & 0x3f, (c.r[ESR]! >> 8) & 1, (c.r[ESR]! >> 6) & 1], [PERMISSION + 3, 0, 1]);
  // The same with the page's translation in the TLB (a load at EL1 filled it): DC uses it.
  setEl(c, 1);
  assert.equal(typeof load(c, BigInt(ro)), "bigint");
  assert.equal(
    runEl1(c, pt, [ENC.dcCvac], (k) => k.setX(0, BigInt(ro))),
    1,
  );
  assert.equal(
    runEl1(c, pt, [ENC.dcIvac], (k) => k.setX(0, BigInt(ro))),
    0x99,
  );
  const esr = c.r[ESR]!;
  assert.deepEqual([esr >>> 26, esr & 0x3f, (esr >> 8) & 1, (esr >> 6) & 1], [0x25, PERMISSION + 3, 1, 1]);
});

test("the exclusive monitor tags the location: STXR through another VA of the same page succeeds", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  const pa = RAM_BASE + 0x60000;
  pt.map(0x1000_0000n, pa, { ap: 0 });
  pt.map(0x2000_0000n, pa, { ap: 0 });
  pt.map(0x3000_0000n, pa + 0x1000, { ap: 0 });
  pt.enable();
  w64(c, pa, 7n);
  runEl1(c, pt, [ENC.ldxr, ENC.stxr], (k) => {
    k.setX(0, 0x1000_0000n);
    k.setX(2, 0x2000_0000n);
    k.setX(3, 9n);
  });
  assert.equal(c.getX(3), 0n, "alias of the same location");
  runEl1(c, pt, [ENC.ldxr, ENC.stxr], (k) => {
    k.setX(0, 0x1000_0000n);
    k.setX(2, 0x3000_0000n);
    k.setX(3, 9n);
  });
  assert.equal(c.getX(3), 1n, "another location fails");
});

test("the TLB is a cache: reset empties it, the dirty log sees the first store after each read", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  pt.map(0x1000n, RAM_BASE + 0x8000);
  setEl(c, 1);
  pt.enable();
  const flags = new Uint8Array(RAM_SIZE / 4096);
  c.dirtyLog = flags;
  assert.equal(store(c, 0x1000n, 1n), null);
  assert.equal(flags[8], 3);
  flags[8] = 2; // the log was read
  c.dropWriteTags();
  assert.equal(store(c, 0x1008n, 1n), null);
  assert.equal(flags[8], 3, "marked again");
  c.reset();
  for (let i = 0; i < c.tlb.length; i += 16) assert.equal(c.tlb[i + 8], 0, "every entry invalid after reset");
});

test("a watchpoint fires through the access path, also on a page the TLB already lets stores through", () => {
  const c = makeCpu();
  const pt = new PageTables(c, { tableArea: TABLES });
  const data = RAM_BASE + 0x70000;
  pt.map(BigInt(data), data, { ap: 0 });
  pt.enable();
  setEl(c, 1);
  assert.equal(store(c, BigInt(data), 1n), null, "warm the write tag");
  // OS lock off, MDSCR_EL1.MDE | KDE, DBGWVR0 = data, DBGWCR0 = BAS 0xff, LSC store, PAC EL0+EL1, E.
  const words = [0xd510109f, 0xd5100242, 0xd51000c3, 0xd51000e4, 0xd50348ff, 0xd5033fdf, ENC.str];
  const imm = runEl1(c, pt, words, (k) => {
    k.setX(0, BigInt(data + 8));
    k.setX(2, (1n << 15n) | (1n << 13n));
    k.setX(3, BigInt(data + 8));
    k.setX(4, (0xffn << 5n) | (2n << 3n) | (3n << 1n) | 1n);
  });
  assert.equal(imm, 0x99);
  assert.equal(c.r[ESR]! >>> 26, 0x35, "watchpoint from the current EL");
  assert.equal(c.r[ESR]! & 0x3f, 0x22);
  assert.equal(c.r[FAR]!, data + 8);
  assert.equal(r64(c, data + 8), 0n, "the store did not happen");
});

test("a permission fault found on a TLB hit reports the level of the descriptor the entry came from", () => {
  for (const level of [1, 2, 3]) {
    const c = makeCpu();
    const pt = new PageTables(c, { tableArea: TABLES });
    const va = 0x80_0000_0000n; // 1 GiB aligned, away from everything else
    pt.map(va, RAM_BASE, { level, ap: 2 }); // EL1 read-only
    setEl(c, 1);
    pt.enable();
    assert.equal(typeof load(c, va), "bigint", "the read fills the entry");
    const f = store(c, va + 8n, 1n) as Fault;
    assert.deepEqual([f.fsc, f.far], [PERMISSION + level, va + 8n], `level ${level}`);
  }
});
