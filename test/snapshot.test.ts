/**
 * Snapshot equivalence in deterministic mode: the state digest after N+M instructions
 * run uninterrupted equals the digest after N, save, restore into a fresh machine, M —
 * for every bare-metal guest at 4 vCPUs, for random N and M, and across chains of three
 * save/restore cycles. Also: corrupt and truncated snapshots are refused by name.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import { VirtMachine } from "../src/machine/virt.ts";
import { runMachine } from "../src/vmm/runner.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  encodeSnapshotAsync,
  MAX_DEVICE_SECTION,
  SnapshotError,
} from "../src/vmm/snapshot/format.ts";
import {
  captureSections,
  configFromHeader,
  restoreSections,
  snapshotHeader,
  stateDigest,
} from "../src/vmm/snapshot/machine-state.ts";

const BIN = new URL("../guests/baremetal/bin/", import.meta.url);
const GUESTS = readdirSync(BIN)
  .filter((f) => f.endsWith(".elf"))
  .map((f) => f.slice(0, -4))
  .sort();
const MEMORY = 32 << 20;
const quiet = { output: () => {}, diag: () => {} };

function boot(name: string): VirtMachine {
  return new VirtMachine({
    kernel: new Uint8Array(readFileSync(new URL(`${name}.elf`, BIN))),
    smp: 4,
    memory: MEMORY,
    deterministic: true,
  });
}

async function runFor(m: VirtMachine, n: bigint): Promise<void> {
  // maxInstructions counts from the machine's creation: add what it has already run.
  await runMachine(m, { ...quiet, maxInstructions: m.scheduler().instructions + n });
}

function saveRestore(m: VirtMachine): VirtMachine {
  const bytes = encodeSnapshot(snapshotHeader(m), captureSections(m));
  const { header, sections } = decodeSnapshot(bytes);
  const fresh = new VirtMachine(configFromHeader(header));
  restoreSections(fresh, sections);
  return fresh;
}

/** Instructions the guest executes before it powers off (its whole run). */
async function lifetime(name: string): Promise<number> {
  const m = boot(name);
  const r = await runMachine(m, { ...quiet, maxInstructions: 50_000_000n });
  assert.equal(r.kind, "shutdown");
  return Number(m.scheduler().instructions);
}

for (const name of GUESTS) {
  test(`snapshot equivalence: ${name} at 4 vCPUs, random N and M, chains of three`, async () => {
    // N + M stays inside the guest's life: a machine that has powered off is not run on.
    const life = await lifetime(name);
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (a, b) => {
          const n = 1 + Math.floor(a * (life - 3));
          const mm = 1 + Math.floor(b * (life - 2 - n));
          const straight = boot(name);
          await runFor(straight, BigInt(n + mm));
          const want = stateDigest(straight);

          let m = boot(name);
          await runFor(m, BigInt(n));
          m = saveRestore(m);
          await runFor(m, BigInt(mm));
          assert.equal(stateDigest(m), want, `N=${n} M=${mm}`);

          // Three save/restore cycles splitting N+M into four parts.
          let c = boot(name);
          const total = n + mm;
          const cuts = [Math.floor(total / 4), Math.floor(total / 2), Math.floor((3 * total) / 4), total];
          let done = 0;
          for (let i = 0; i < cuts.length; i++) {
            await runFor(c, BigInt(cuts[i]! - done));
            done = cuts[i]!;
            if (i < 3) c = saveRestore(c);
          }
          assert.equal(stateDigest(c), want, `chain N+M=${total}`);
        },
      ),
      { numRuns: 4 },
    );
  });
}

test("a corrupt or truncated snapshot is refused with a message naming the section", async () => {
  const m = boot("timer");
  await runFor(m, 50_000n);
  const bytes = encodeSnapshot(snapshotHeader(m), captureSections(m));
  assert.throws(() => decodeSnapshot(bytes.subarray(0, bytes.length - 100)), SnapshotError);
  const flipped = bytes.slice();
  flipped[bytes.length - 50]! ^= 0x40; // inside the last section (ram)
  assert.throws(() => decodeSnapshot(flipped), /section 'ram'/);
  const wrongVersion = bytes.slice();
  wrongVersion[8] = 9;
  assert.throws(() => decodeSnapshot(wrongVersion), /format version 9/);
  // A flipped digit of the header's "memory" (seed 1469457539 found it) is caught by the
  // header's checksum; a header whose RAM size builds no machine is refused as a snapshot
  // error too, checksum or not.
  const badMemory = bytes.slice();
  const at = new TextDecoder("latin1").decode(bytes.subarray(0, 200)).indexOf('"memory":') + 9;
  badMemory[at]! ^= 1;
  assert.throws(() => decodeSnapshot(badMemory), /the header is corrupt \(checksum mismatch\)/);
  const header = decodeSnapshot(bytes).header;
  assert.throws(
    () => configFromHeader({ ...header, config: { ...header.config, memory: 12345 } }),
    /header: memory 12345/,
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, x) => {
      const b = bytes.slice();
      b[pos]! ^= x;
      try {
        const { header, sections } = decodeSnapshot(b);
        restoreSections(new VirtMachine(configFromHeader(header)), sections);
      } catch (e) {
        assert.ok(e instanceof SnapshotError, String(e));
      }
    }),
    { numRuns: 200 },
  );
});

test("encodeSnapshotAsync writes encodeSnapshot's bytes, deflating a large section off the event loop", async () => {
  // 4 MiB of RAM-like data: some of it compressible, some not.
  const ram = new Uint8Array(4 << 20);
  let x = 12345;
  for (let i = 0; i < ram.length; i += 3) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    ram[i] = x >>> 24;
  }
  const sections = [
    { name: "machine", version: 1, data: new TextEncoder().encode('{"a":1}') },
    { name: "ram", version: 1, data: ram },
  ];
  const header = { config: { smp: 1 }, savedAt: 1, writer: "test" };
  for (const compress of [true, false]) {
    // A macrotask queued before the call runs before the encode resolves only if the
    // deflate left the event loop (a synchronous one resolves in a microtask).
    let ranBetween = false;
    setImmediate(() => {
      ranBetween = true;
    });
    const bytes = await encodeSnapshotAsync(header, sections, compress);
    assert.equal(ranBetween, compress, `compress ${compress}`);
    assert.deepEqual(bytes, encodeSnapshot(header, sections, compress));
  }
  assert.deepEqual(decodeSnapshot(await encodeSnapshotAsync(header, sections)).sections[1]!.data, ram);
});

test("a compressed section that inflates past what its machine can hold is refused before it is inflated in full", () => {
  const header = { config: { smp: 1, memory: 1 << 20 }, savedAt: 1, writer: "test" };
  // 64 MiB of zeros deflate to ~64 KiB: a 'ram' section of a 1 MiB machine holds at most
  // 256 pages (1 MiB + indices), and a device section at most MAX_DEVICE_SECTION.
  const zeros = new Uint8Array(64 << 20);
  for (const name of ["ram", "gicv3@8000000"]) {
    const bytes = encodeSnapshot(header, [
      { name, version: 1, data: name === "ram" ? zeros : new Uint8Array(MAX_DEVICE_SECTION + 1) },
    ]);
    assert.ok(bytes.length < 1 << 20, `${name}: ${bytes.length} bytes stored`);
    assert.throws(
      () => decodeSnapshot(bytes),
      (e: Error) =>
        e instanceof SnapshotError &&
        new RegExp(`section '${name}': compressed payload inflates to more than \\d+ bytes`).test(e.message),
      name,
    );
  }
  // Within the bound it inflates as before.
  const small = encodeSnapshot(header, [{ name: "ram", version: 1, data: new Uint8Array(1 << 20) }]);
  assert.equal(decodeSnapshot(small).sections[0]!.data.length, 1 << 20);
});
