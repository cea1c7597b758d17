/**
 * WFE wake-ups (Arm ARM D1.6.1): SEV to every vCPU, the clearing of a waiter's exclusive
 * monitor by another vCPU's store, an exception return, and the generic timer's event
 * stream. guests/baremetal/wfe-wake.elf proves each source on its own; here each source is
 * switched off in turn (Vcpu.wakeSources, or ERET patched not to set the event register)
 * and the guest must fail, by a FAIL line or by every vCPU sleeping for good. Also: the
 * stream's wake-ups land on the exact counts (deterministic clock), the stream's next
 * event against a bit-by-bit reference, and save/restore in the middle of each kind of
 * wait continues exactly as a run that never stopped.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { I, RAM_OFFSET } from "../src/arch/arm64/state.ts";
import { KvmError } from "../src/hv/onereg.ts";
import { nextStreamEvent } from "../src/hv/timer.ts";
import { ARMBOX_REG_WAKE, type WakeSources } from "../src/hv/vcpu.ts";
import { Vm } from "../src/hv/vm.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { type RunResult, runMachine } from "../src/vmm/runner.ts";
import { decodeSnapshot, encodeSnapshot } from "../src/vmm/snapshot/format.ts";
import {
  captureSections,
  configFromHeader,
  restoreSections,
  snapshotHeader,
  stateDigest,
} from "../src/vmm/snapshot/machine-state.ts";

const ELF = new Uint8Array(readFileSync(new URL("../guests/baremetal/bin/wfe-wake.elf", import.meta.url)));
const quiet = { output: () => {}, diag: () => {} };

interface Run {
  m: VirtMachine;
  out: { text: string };
}

function boot(smp: number, deterministic = true): Run {
  const out = { text: "" };
  const m = new VirtMachine({
    kernel: ELF,
    smp,
    memory: 32 << 20,
    deterministic,
    serialOutput: (b) => {
      out.text += Buffer.from(b).toString("latin1");
    },
  });
  return { m, out };
}

async function runToEnd(r: Run): Promise<RunResult> {
  return runMachine(r.m, { ...quiet, maxInstructions: 200_000_000n });
}

/** The guest passed: it powered off by itself after RESULT: PASS. */
function passed(res: RunResult, out: string): boolean {
  return res.kind === "shutdown" && /^RESULT: PASS/m.test(out) && !/^FAIL/m.test(out);
}

test("wfe-wake passes with every wake-up source, deterministic and real time", async () => {
  for (const [smp, det] of [
    [1, true],
    [4, true],
    [2, false],
    [4, false],
  ] as const) {
    const r = boot(smp, det);
    const res = await runToEnd(r);
    assert.ok(passed(res, r.out.text), `smp ${smp} ${det ? "deterministic" : "real time"}: ${r.out.text}`);
    for (const name of [
      "eret",
      "stream-rise",
      "stream-fall",
      ...(smp > 1 ? ["sev", "monitor", "stream-cpu1"] : []),
    ])
      assert.match(r.out.text, new RegExp(`^PASS ${name}$`, "m"));
  }
});

for (const [source, smp, expected] of [
  ["sev", 4, /^FAIL sev: SEV woke 0 of 3 CPUs/m],
  ["monitor", 4, /^FAIL monitor: a store to their LDXR's word woke 0 of 3/m],
  ["stream", 4, /guest hung/],
  ["stream", 1, /guest hung/],
] as const) {
  test(`wfe-wake fails without the ${source} wake-up (--smp ${smp})`, async () => {
    const r = boot(smp);
    for (const v of r.m.vcpus) v.wakeSources[source as keyof WakeSources] = false;
    const res = await runToEnd(r);
    assert.ok(!passed(res, r.out.text), r.out.text);
    const seen = res.kind === "error" ? `${r.out.text}\n${res.message}` : r.out.text;
    assert.match(seen, expected, seen);
  });
}

test("wfe-wake fails when an exception return does not set the event register", async () => {
  const r = boot(1);
  for (const v of r.m.vcpus) {
    const c = v.cpu;
    const eret = c.exceptionReturn.bind(c);
    c.exceptionReturn = () => {
      const before = c.r[I.EVENT]!;
      eret();
      c.r[I.EVENT] = before;
    };
  }
  const res = await runToEnd(r);
  assert.equal(res.kind, "error", r.out.text);
  assert.match(res.kind === "error" ? res.message : "", /guest hung/);
  assert.doesNotMatch(r.out.text, /^PASS eret/m);
});

test("deterministic: each event-stream wake-up is at the selected bit's transition", async () => {
  const r = boot(2);
  await runToEnd(r);
  // "NAME: EVNTI n EVNTDIR d: k wake-ups in p periods of P, at t0 t1 ... (mod period)"
  const lines = [
    ...r.out.text.matchAll(
      /^(stream-\S+): EVNTI (\d+) EVNTDIR (\d): (\d+) wake-ups in (\d+) periods of \d+, at ([\d ]+) \(mod period\)/gm,
    ),
  ];
  assert.equal(lines.length, 3, r.out.text);
  for (const [, name, evnti, dir, wakes, periods, at] of lines) {
    // The wake-up is at the transition; the guest reads CNTVCT one instruction (ISB) later.
    const want = (dir === "1" ? 0 : 1 << Number(evnti)) + 1;
    for (const t of at!.trim().split(" "))
      assert.equal(Number(t), want, `${name}: woke at ${t} (mod period)`);
    // Once per period, plus the one that ends the partial period the wait started in.
    assert.ok(
      Number(wakes) === Number(periods) || Number(wakes) === Number(periods) + 1,
      `${name}: ${wakes}`,
    );
  }
});

test("nextStreamEvent: the next 0->1 or 1->0 change of bit EVNTI, bit by bit", () => {
  assert.equal(nextStreamEvent(0, 5n), null);
  assert.equal(nextStreamEvent(0xf3, 5n), null, "EVNTEN clear");
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed;
  };
  for (let evnti = 0; evnti < 16; evnti += evnti < 4 ? 1 : 5) {
    for (const dir of [0, 1]) {
      const ctl = 4 | (dir << 3) | (evnti << 4);
      for (let k = 0; k < 6; k++) {
        const count = BigInt(rnd()) * 65536n + BigInt(rnd() & 0xffff);
        const bit = (c: bigint) => (c >> BigInt(evnti)) & 1n;
        let t = count + 1n;
        while (!(bit(t - 1n) === BigInt(dir) && bit(t) === BigInt(1 - dir))) t++;
        assert.equal(nextStreamEvent(ctl, count), t, `EVNTI ${evnti} EVNTDIR ${dir} from ${count}`);
      }
    }
  }
});

test("a WFE waiter's monitor is watched at its physical location, whatever its VA", () => {
  const vm = new Vm({ ramBase: 0x4000_0000, ramSize: 1 << 20, clock: "deterministic" });
  const v = vm.createVcpu(0);
  v.init();
  const r = v.cpu.r;
  const at = 0x2340; // RAM offset of the reserved doubleword
  const ram = new DataView(vm.ram.buffer, vm.ram.byteOffset, vm.ram.byteLength);
  ram.setUint32(at, 0x11223344, true);
  ram.setUint32(at + 4, 0x55667788, true);
  // What LDXR X at some VA mapped there leaves in the monitor.
  r[I.EXCL_VALID] = 1;
  r[I.EXCL_SIZE] = 8;
  r[I.EXCL_ADDR] = 0x9000_0000;
  r[I.EXCL_ADDR + 1] = 0xffff_8000;
  r[I.EXCL_HOST] = RAM_OFFSET + at;
  r[I.EXCL_DATA] = 0x11223344;
  r[I.EXCL_DATA + 1] = 0x55667788;
  r[I.EVENT] = 0;
  v.waiting = "wfe";
  assert.equal(v.canRun, false, "memory still holds the loaded value");
  v.noteMonitorEvent();
  assert.equal(r[I.EVENT], 0);
  ram.setUint8(at + 7, 0x56); // another agent's store into the granule
  assert.equal(v.canRun, true, "the store cleared the monitor: an event");
  v.noteMonitorEvent();
  assert.equal(r[I.EVENT], 1, "the event is latched");
  assert.equal(r[I.EXCL_VALID], 0, "and the monitor is open");
  ram.setUint8(at + 7, 0x55); // the old value back does not undo the event
  assert.equal(v.canRun, true);
  // Off: the same store leaves the waiter asleep.
  v.wakeSources.monitor = false;
  r[I.EVENT] = 0;
  r[I.EXCL_VALID] = 1;
  ram.setUint8(at, 0);
  assert.equal(v.canRun, false);
});

test("the wake-up register refuses values that are no wake-up state", () => {
  const { m } = boot(1);
  const v = m.vcpus[0]!;
  for (const bad of [1n << 17n, 4n, (3n << 8n) | 2n])
    assert.throws(
      () => v.setOneReg(ARMBOX_REG_WAKE, bad),
      (e: unknown) => e instanceof KvmError && e.errno === "EINVAL",
    );
  v.setOneReg(ARMBOX_REG_WAKE, 1n | 2n | (8n << 8n) | (1n << 16n));
  assert.equal(v.getOneReg(ARMBOX_REG_WAKE), 1n | 2n | (8n << 8n) | (1n << 16n));
});

// ---------------------------------------------------------------------------------------
// Save and restore in the middle of each kind of wait.

function saveRestore(r: Run, dropWakeState = false): Run {
  const bytes = encodeSnapshot(snapshotHeader(r.m), captureSections(r.m));
  const { header, sections } = decodeSnapshot(bytes);
  const out = { text: r.out.text };
  const m = new VirtMachine({
    ...configFromHeader(header),
    serialOutput: (b) => {
      out.text += Buffer.from(b).toString("latin1");
    },
  });
  restoreSections(m, sections);
  // A loader that ignores armbox's wake-up registers (as if the snapshot had none).
  if (dropWakeState) for (const v of m.vcpus) v.setOneReg(ARMBOX_REG_WAKE, 0n);
  return { m, out };
}

async function runFor(r: Run, n: bigint): Promise<RunResult> {
  return runMachine(r.m, { ...quiet, maxInstructions: r.m.scheduler().instructions + n });
}

/**
 * Instruction counts at which a run stopped by an instruction limit is inside the wait
 * `cond` describes: the totals at the vCPU exits after which `cond` holds (a limit stops
 * the scheduler right after such an exit), checked by running there.
 */
async function waitPoint(cond: (m: VirtMachine) => boolean): Promise<bigint> {
  const probe = boot(4);
  const sched = probe.m.scheduler();
  const candidates: bigint[] = [];
  sched.onExit = () => {
    if (candidates.length < 5 && cond(probe.m)) candidates.push(sched.instructions);
  };
  await runToEnd(probe);
  for (const n of candidates) {
    const r = boot(4);
    await runFor(r, n);
    if (cond(r.m)) return n;
  }
  throw new Error(`no stop inside the wait among ${candidates.join(" ")}`);
}

const WAITS: [string, (m: VirtMachine) => boolean][] = [
  // A secondary asleep in __cmpwait: WFE with a valid reservation.
  ["monitor", (m) => m.vcpus.some((v) => v.waiting === "wfe" && v.cpu.r[I.EXCL_VALID] !== 0)],
  // A secondary asleep on the SEV flag, one of them with its event register set already.
  ["sev", (m) => m.vcpus.some((v) => v.waiting === "wfe" && v.cpu.r[I.EVENT] !== 0)],
  // CPU 1 asleep until its event stream's next event.
  ["stream", (m) => m.vcpus.some((v) => v.waiting === "wfe" && v.timer.streamArmed)],
];

for (const [name, cond] of WAITS) {
  test(`save/restore during a ${name} wait continues exactly (deterministic, --smp 4)`, async () => {
    const n = await waitPoint(cond);
    const rest = 150_000n;

    const straight = boot(4);
    await runFor(straight, n + rest);
    const want = stateDigest(straight.m);

    let r = boot(4);
    await runFor(r, n);
    assert.ok(cond(r.m), "the wait is in progress at the save");
    r = saveRestore(r);
    assert.ok(cond(r.m), "the wait is in progress after the restore");
    await runFor(r, rest);
    assert.equal(stateDigest(r.m), want);
    assert.equal(r.out.text, straight.out.text);

    // Without the wake-up state the restored run goes another way (or never wakes).
    let lost = boot(4);
    await runFor(lost, n);
    lost = saveRestore(lost, true);
    await runFor(lost, rest);
    assert.notEqual(stateDigest(lost.m), want, "dropping the wake-up state must show");
  });
}
