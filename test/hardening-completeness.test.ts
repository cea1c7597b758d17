/**
 * Issue 9, item 1: completeness before acceptance. Each test is named after a defect the
 * fault campaign reproduced on the build before it (every frame's or section's own CRC
 * intact, so only a declaration of the whole can catch it):
 *  - a migration stream with one, the last, or all 'ram.pages' frames removed was accepted
 *    and the guest ran on partly zeroed RAM;
 *  - a vCPU section with fewer registers than the register list, none, or one twice was
 *    accepted (PC = 0 under a RUNNABLE MP state);
 *  - a RAM section listing no page was accepted;
 *  - the snapshot header had no checksum: flipping `semihosting` or `psciConduit` changed
 *    the machine silently;
 *  - a snapshot whose `savedAt` is "x" was refused with a JavaScript internal.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { VirtMachine } from "../src/machine/virt.ts";
import { receiveIncoming } from "../src/vmm/migration/destination.ts";
import { OutgoingMigration } from "../src/vmm/migration/source.ts";
import { MigrationError, PREAMBLE_SIZE } from "../src/vmm/migration/stream.ts";
import { MachineRunner } from "../src/vmm/runner.ts";
import {
  concat,
  decodeSection,
  decodeSnapshot,
  END_FRAME,
  encodeSnapshot,
  type Section,
  SnapshotError,
} from "../src/vmm/snapshot/format.ts";
import {
  captureSections,
  configFromHeader,
  restoreSections,
  snapshotHeader,
} from "../src/vmm/snapshot/machine-state.ts";

const MEM = 32 << 20;
const guest = () =>
  new Uint8Array(readFileSync(new URL("../guests/migration/bin/counter.elf", import.meta.url)));

/** A deterministic machine that has run a while, and the frames of a file: migration of it. */
async function recordedStream(dir: string): Promise<{ stream: Uint8Array; m: VirtMachine }> {
  const m = new VirtMachine({ kernel: guest(), smp: 2, memory: MEM, deterministic: true });
  const runner = new MachineRunner(m, { output: () => {}, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  try {
    await new Promise((r) => setTimeout(r, 100));
    runner.pause();
    const file = path.join(dir, "stream.bin");
    // Small batches, so that RAM travels in many 'ram.pages' frames.
    const mig = new OutgoingMigration(m, runner, { batchPages: 1 });
    mig.start(`file:${file}`);
    assert.equal(await mig.done(), "completed", mig.info()["error-desc"] ?? "");
    return { stream: new Uint8Array(readFileSync(file)), m };
  } finally {
    runner.finish({ kind: "quit", code: 0 });
    await running;
  }
}

/** The stream's frames, each as its encoded bytes with its name. */
function frames(stream: Uint8Array): { name: string; bytes: Uint8Array }[] {
  const out: { name: string; bytes: Uint8Array }[] = [];
  let off = PREAMBLE_SIZE;
  for (;;) {
    const r = decodeSection(stream, off);
    if (!r) break;
    out.push({ name: r.section.name, bytes: stream.subarray(off, r.next) });
    off = r.next;
  }
  return out;
}

const rebuild = (stream: Uint8Array, keep: { bytes: Uint8Array }[]) =>
  concat([stream.subarray(0, PREAMBLE_SIZE), ...keep.map((f) => f.bytes), END_FRAME]);

test("migration: a stream with one, the last, or all 'ram.pages' frames removed is refused before the ACK", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "armbox-complete-"));
  try {
    const { stream } = await recordedStream(dir);
    const fs = frames(stream);
    const pages = fs.flatMap((f, i) => (f.name === "ram.pages" ? [i] : []));
    assert.ok(pages.length >= 5, `${pages.length} page frames`);
    const cfg = { smp: 2, memory: MEM, deterministic: true };
    const file = path.join(dir, "cut.bin");
    const refused = async (drop: Set<number>, why: RegExp, what: string) => {
      writeFileSync(
        file,
        rebuild(
          stream,
          fs.filter((_, i) => !drop.has(i)),
        ),
      );
      await assert.rejects(
        receiveIncoming(`file:${file}`, cfg),
        (e: Error) => e instanceof MigrationError && why.test(e.message),
        what,
      );
    };
    await refused(new Set([pages[3]!]), /RAM round 1: the source sent \d+ pages, \d+ arrived/, "one frame");
    await refused(new Set([pages[pages.length - 1]!]), /RAM round \d+: the source sent/, "the last frame");
    await refused(new Set(pages), /RAM round 1: the source sent \d+ pages, 0 arrived/, "every frame");
    // A round marker removed: the next one is out of sequence, or the totals differ.
    const rounds = fs.flatMap((f, i) => (f.name === "migration.round" ? [i] : []));
    await refused(new Set([rounds[0]!]), /out of sequence|arrived after the last round/, "a round marker");
    // A component section removed (its frame intact): named.
    const rtc = fs.findIndex((f) => f.name.startsWith("pl031@"));
    await refused(new Set([rtc]), /section 'pl031@9010000' that the source sent did not arrive/, "a section");
    // A page frame repeated: the digest (and the count) no longer match.
    writeFileSync(
      file,
      rebuild(stream, [...fs.slice(0, pages[2]! + 1), fs[pages[2]!]!, ...fs.slice(pages[2]! + 1)]),
    );
    await assert.rejects(receiveIncoming(`file:${file}`, cfg), /RAM round 1: the source sent/);
    // The untouched stream still loads.
    writeFileSync(file, stream);
    await receiveIncoming(`file:${file}`, cfg);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A snapshot's sections, from a machine that has run. */
async function snapshotOf(): Promise<{ m: VirtMachine; sections: Section[] }> {
  const m = new VirtMachine({ kernel: guest(), smp: 2, memory: MEM, deterministic: true });
  const runner = new MachineRunner(m, { output: () => {}, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  await new Promise((r) => setTimeout(r, 50));
  runner.finish({ kind: "quit", code: 0 });
  await running;
  return { m, sections: captureSections(m) };
}

/** vcpu@1 rewritten (version 3 binary layout) with `regs` instead of its registers. */
function withRegs(s: Section, f: (regs: [bigint, Uint8Array][]) => [bigint, Uint8Array][]): Section {
  const dv = new DataView(s.data.buffer, s.data.byteOffset, s.data.byteLength);
  const count = dv.getUint32(8, true);
  const regs: [bigint, Uint8Array][] = [];
  let p = 12;
  for (let i = 0; i < count; i++) {
    const id = dv.getBigUint64(p, true);
    const size = 2 ** Number((id >> 52n) & 0xfn);
    regs.push([id, s.data.subarray(p + 8, p + 8 + size)]);
    p += 8 + size;
  }
  const out = f(regs);
  const head = new Uint8Array(12);
  head.set(s.data.subarray(0, 8));
  new DataView(head.buffer).setUint32(8, out.length, true);
  const body = out.map(([id, v]) => {
    const b = new Uint8Array(8 + v.length);
    new DataView(b.buffer).setBigUint64(0, id, true);
    b.set(v, 8);
    return b;
  });
  return { ...s, data: concat([head, ...body]) };
}

test("snapshot: a vCPU section with fewer registers than the register list, none, or one twice is refused", async () => {
  const { m, sections } = await snapshotOf();
  const i = sections.findIndex((s) => s.name === "vcpu@1");
  const cases: [string, Section, RegExp][] = [
    [
      "one missing",
      withRegs(sections[i]!, (r) => r.slice(1)),
      /'vcpu@1': 1 of the \d+ registers of this vCPU are missing/,
    ],
    ["none", withRegs(sections[i]!, () => []), /'vcpu@1': \d+ of the \d+ registers of this vCPU are missing/],
    [
      "one twice",
      withRegs(sections[i]!, (r) => [...r, r[5]!]),
      /'vcpu@1': register 0x[0-9a-f]+ appears twice/,
    ],
  ];
  // A legacy (version 2) section may predate some registers, never the core ones; and only
  // a format-1 file holds one (the fuzzer relabelled a version 3 section without a system
  // register as version 2, and it was accepted).
  const noPc = {
    ...withRegs(sections[i]!, (r) => r.filter(([id]) => id !== 0x6030_0000_0010_0040n)),
    version: 2,
  };
  const noSysreg = { ...withRegs(sections[i]!, (r) => r.filter(([id]) => id !== r.at(-1)![0])), version: 2 };
  const legacy: [string, Section, RegExp, boolean][] = [
    [
      "version 2 without PC",
      noPc,
      /core registers of this vCPU are missing \(first: 0x6030000000100040\)/,
      true,
    ],
    [
      "version 2 in a format-2 file",
      noSysreg,
      /'vcpu@1' has version 2; only a format-1 snapshot file carries/,
      false,
    ],
  ];
  for (const [what, bad, re, legacyFormat] of [
    ...cases.map(([w, b, r]) => [w, b, r, false] as const),
    ...legacy,
  ]) {
    const fresh = new VirtMachine(m.config);
    const s = sections.slice();
    s[i] = bad;
    assert.throws(
      () => restoreSections(fresh, s, { legacyFormat }),
      (e: Error) => e instanceof SnapshotError && re.test(e.message),
      what,
    );
  }
  // A format-1 file's version 2 section without a system register still loads.
  const old = sections.slice();
  old[i] = noSysreg;
  restoreSections(new VirtMachine(m.config), old, { legacyFormat: true });
  restoreSections(new VirtMachine(m.config), sections);
});

test("snapshot: a RAM section listing no page is refused", async () => {
  const { m, sections } = await snapshotOf();
  const empty = captureSections(m, { ram: false }).find((s) => s.name === "ram")!;
  const s = sections.map((x) => (x.name === "ram" ? empty : x));
  assert.throws(() => restoreSections(new VirtMachine(m.config), s), /section 'ram' lists no page/);
  // A migration's device state carries its RAM as page frames: there an empty section is right.
  restoreSections(new VirtMachine(m.config), s, { ramInSections: false });
});

test("snapshot: flipping semihosting or psciConduit in the header is refused by the header checksum", async () => {
  const { m, sections } = await snapshotOf();
  const bytes = encodeSnapshot(snapshotHeader(m), sections);
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, 4096));
  for (const [from, to] of [
    ['"semihosting":false', '"semihosting":true '],
    ['"psciConduit":"hvc"', '"psciConduit":"smc"'],
  ] as const) {
    const at = text.indexOf(from);
    assert.ok(at > 0, from);
    const b = bytes.slice();
    b.set(new TextEncoder().encode(to), at);
    assert.throws(() => decodeSnapshot(b), /the header is corrupt \(checksum mismatch\)/, from);
  }
  // A section swapped for another one with a valid CRC of its own is not what the header lists.
  const other = encodeSnapshot(snapshotHeader(m), [
    ...sections.slice(0, -1),
    { ...sections.at(-1)!, version: 1 },
  ]);
  assert.deepEqual(decodeSnapshot(other).sections.length, sections.length);
  const tail = (b: Uint8Array) => {
    const hlen = new DataView(b.buffer, b.byteOffset).getUint32(12, true);
    return b.subarray(16 + hlen + 4);
  };
  const head = bytes.subarray(0, bytes.length - tail(bytes).length);
  const spliced = concat([head, tail(encodeSnapshot(snapshotHeader(m), sections.slice(1)))]);
  assert.throws(
    () => decodeSnapshot(spliced),
    /stands where the header lists|not the one the header lists|is missing/,
  );
});

test("snapshot: a savedAt that is not a time is refused in words, not with a JavaScript internal", async () => {
  const { m, sections } = await snapshotOf();
  for (const savedAt of ["x", -1, 1.5, null]) {
    const bytes = encodeSnapshot({ ...snapshotHeader(m), savedAt: savedAt as unknown as number }, sections);
    assert.throws(
      () => {
        const { header, sections: s } = decodeSnapshot(bytes);
        restoreSections(new VirtMachine(configFromHeader(header)), s, { savedAt: header.savedAt });
      },
      (e: Error) =>
        e instanceof SnapshotError &&
        /savedAt is not a time/.test(e.message) &&
        !/NaN|BigInt/.test(e.message),
      String(savedAt),
    );
  }
});

test("snapshot: a header whose memory or smp the sections contradict is refused before a machine is built", async () => {
  const { m, sections } = await snapshotOf();
  const base = snapshotHeader(m);
  // A 3 GiB machine costs seconds to build (the fuzzer's slowest inputs were these):
  // the RAM section's page count contradicts the header, so nothing is built.
  const big = decodeSnapshot(
    encodeSnapshot({ ...base, config: { ...base.config, memory: 3 * 1024 ** 3 } }, sections),
  );
  assert.throws(
    () => configFromHeader(big.header, big.sections),
    (e: Error) =>
      e instanceof SnapshotError &&
      /section 'ram': holds 8192 pages, the header's machine has 786432/.test(e.message),
  );
  const one = decodeSnapshot(encodeSnapshot({ ...base, config: { ...base.config, smp: 1 } }, sections));
  assert.throws(
    () => configFromHeader(one.header, one.sections),
    (e: Error) =>
      e instanceof SnapshotError &&
      /section 'vcpu@1' is not part of this machine \(header: smp 1\)/.test(e.message),
  );
  const noRam = decodeSnapshot(
    encodeSnapshot(
      { ...base, config: { ...base.config, memory: 3 * 1024 ** 3 } },
      sections.filter((s) => s.name !== "ram"),
    ),
  );
  assert.throws(
    () => configFromHeader(noRam.header, noRam.sections),
    (e: Error) => e instanceof SnapshotError && /section 'ram' is missing/.test(e.message),
  );
  // The snapshot as saved still fits its own header.
  const ok = decodeSnapshot(encodeSnapshot(base, sections));
  assert.deepEqual(configFromHeader(ok.header, ok.sections), base.config);
});
