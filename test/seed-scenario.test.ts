/**
 * The seed scenario (issue 4, deliverable 5), in process, deterministic mode: the guest
 * guests/seed/bin/seed.elf runs 4 vCPUs — vCPU 1 has done CPU_OFF, vCPU 2 waits in WFI
 * with nothing pending, vCPU 3 counts — and is saved in that window and restored into a
 * fresh machine. After the restore, sampled at every exit (Scheduler.onExit):
 *   - vCPU 1 executes not one instruction (count and PC unchanged, MP state STOPPED)
 *     until the CPU_ON that names it;
 *   - every AFFINITY_INFO the guest makes about vCPU 1 until then says OFF;
 *   - vCPU 2 stays in its WFI loop (it may wake, its wake count may grow, nothing else);
 *   - vCPU 3's count continues exactly: the trace (instruction count, vCPU, exit, count)
 *     equals an uninterrupted run's from the save point on;
 *   - the final report (console output after the save point) equals the uninterrupted run's.
 * The same checks run against deliberately broken restores (registers only; "power off"
 * re-applied to the secondaries; the secondaries powered on as a reset would) and must
 * report violations for each: the test catches the classic bug.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { MP_STATE } from "../src/hv/mp-state.ts";
import { AFFINITY } from "../src/hv/psci.ts";
import type { Vcpu, VcpuExit } from "../src/hv/vcpu.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { type RunResult, runMachine } from "../src/vmm/runner.ts";
import { decodeSnapshot, encodeSnapshot } from "../src/vmm/snapshot/format.ts";
import {
  type BrokenRestore,
  captureSections,
  configFromHeader,
  restoreSections,
  snapshotHeader,
} from "../src/vmm/snapshot/machine-state.ts";

const ELF = new Uint8Array(readFileSync(new URL("../guests/seed/bin/seed.elf", import.meta.url)));
const MEMORY = 32 << 20;
const RAM_BASE = 0x4000_0000;
const LIMIT = 200_000_000n;

// guests/seed/seed.h: struct seed at SEED_ADDR (all fields u64).
const SEED_ADDR = 0x4007_0000;
const F = {
  magic: 0x00,
  phase: 0x08,
  v1Entries: 0x10,
  v2Wakes: 0x30,
  v3Count: 0x48,
  stop: 0x58,
  checks: 0x60,
};
const PH_MIDDLE = 2n;
const SEED_MAGIC = 0x5345454453434e31n;

function seedField(m: VirtMachine, off: number): bigint {
  const ram = m.vm.ram;
  return new DataView(ram.buffer, ram.byteOffset, ram.byteLength).getBigUint64(
    SEED_ADDR - RAM_BASE + off,
    true,
  );
}

/** Address range of a function symbol in an ELF64 (little-endian) symbol table. */
function symbolRange(elf: Uint8Array, name: string): [bigint, bigint] {
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const shoff = Number(dv.getBigUint64(0x28, true));
  const shentsize = dv.getUint16(0x3a, true);
  const shnum = dv.getUint16(0x3c, true);
  const sh = (i: number) => {
    const o = shoff + i * shentsize;
    return {
      type: dv.getUint32(o + 4, true),
      offset: Number(dv.getBigUint64(o + 0x18, true)),
      size: Number(dv.getBigUint64(o + 0x20, true)),
      link: dv.getUint32(o + 0x28, true),
    };
  };
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    if (s.type !== 2) continue; // SHT_SYMTAB
    const strtab = sh(s.link);
    for (let o = s.offset; o < s.offset + s.size; o += 24) {
      const nameOff = dv.getUint32(o, true);
      let end = strtab.offset + nameOff;
      while (elf[end] !== 0) end++;
      const sym = new TextDecoder().decode(elf.subarray(strtab.offset + nameOff, end));
      if (sym === name) {
        const value = dv.getBigUint64(o + 8, true);
        return [value, value + dv.getBigUint64(o + 16, true)];
      }
    }
  }
  throw new Error(`symbol ${name} not found`);
}
const VCPU2_FN = symbolRange(ELF, "vcpu2");

interface Run {
  m: VirtMachine;
  out: () => string;
}

function boot(): Run {
  let out = "";
  const m = new VirtMachine({
    kernel: ELF,
    smp: 4,
    memory: MEMORY,
    deterministic: true,
    serialOutput: (b) => {
      out += Buffer.from(b).toString("latin1");
    },
  });
  return { m, out: () => out };
}

const quiet = { output: () => {}, diag: () => {} };
function runTo(m: VirtMachine, total: bigint): Promise<RunResult> {
  return runMachine(m, { ...quiet, maxInstructions: total });
}

/** One line per vCPU exit: where every vCPU is, and the guest's own record. */
function traceLine(m: VirtMachine, base: bigint, v: Vcpu, exit: VcpuExit): string {
  return [
    base + m.scheduler().instructions,
    v.id,
    exit.kind,
    v.getMpState(),
    v.cpu.pc.toString(16),
    seedField(m, F.v3Count),
    seedField(m, F.v2Wakes),
    seedField(m, F.v1Entries),
  ].join(" ");
}

interface Reference {
  /** The save point: total instructions retired by all vCPUs. */
  n: bigint;
  /** Trace of every exit after the save point. */
  trace: string[];
  /** Console output after the save point. */
  report: string;
  result: RunResult;
  snapshot: Uint8Array;
}

let reference: Promise<Reference> | null = null;

/** The uninterrupted run, and a snapshot taken at the same point by an independent machine. */
function getReference(): Promise<Reference> {
  reference ??= (async () => {
    const ref = boot();
    // Run until the save window (vCPU 1 OFF, 2 in WFI, 3 counting) is well open.
    while (seedField(ref.m, F.phase) !== PH_MIDDLE || seedField(ref.m, F.checks) < 8n) {
      const r = await runTo(ref.m, ref.m.scheduler().instructions + 50_000n);
      assert.equal(r.kind, "limit", `the guest ended before the save window: ${ref.out()}`);
    }
    // An odd count, so that the save falls in the middle of a vCPU's slice.
    const n = ref.m.scheduler().instructions + 7_777n;
    assert.equal((await runTo(ref.m, n)).kind, "limit");
    const outAtN = ref.out().length;
    const trace: string[] = [];
    ref.m.scheduler().onExit = (v, exit) => trace.push(traceLine(ref.m, 0n, v, exit));
    const result = await runTo(ref.m, LIMIT);
    const report = ref.out().slice(outAtN);

    // The machine that is saved: booted on its own, run straight to N.
    const src = boot();
    assert.equal((await runTo(src.m, n)).kind, "limit");
    const [v0, v1, v2, v3] = src.m.vcpus;
    assert.equal(seedField(src.m, F.magic), SEED_MAGIC);
    assert.equal(seedField(src.m, F.phase), PH_MIDDLE, "saved inside the window");
    assert.equal(v0!.getMpState(), MP_STATE.RUNNABLE);
    assert.equal(v1!.getMpState(), MP_STATE.STOPPED, "vCPU 1 saved after its CPU_OFF");
    assert.equal(v2!.getMpState(), MP_STATE.RUNNABLE);
    assert.equal(v2!.waiting, "wfi", "vCPU 2 saved inside WFI");
    assert.equal(v3!.getMpState(), MP_STATE.RUNNABLE);
    assert.equal(v3!.waiting, null, "vCPU 3 saved while counting");
    assert.ok(seedField(src.m, F.v3Count) > 0n);
    const snapshot = encodeSnapshot(snapshotHeader(src.m), captureSections(src.m));
    return { n, trace, report, result, snapshot };
  })();
  return reference;
}

type Variant = BrokenRestore | "secondaries-powered-on" | undefined;

/**
 * Restores the reference snapshot (correctly, or with a deliberate bug), runs it to the
 * end and returns every violation of the seed scenario's rules.
 */
async function seedViolations(variant: Variant): Promise<string[]> {
  const ref = await getReference();
  // Each kind of violation once, with its first occurrence and how often it happened.
  const seen = new Map<string, { first: string; times: number }>();
  const v = (kind: string, detail = kind) => {
    const e = seen.get(kind);
    if (e) e.times++;
    else seen.set(kind, { first: detail, times: 1 });
  };

  const { header, sections } = decodeSnapshot(ref.snapshot);
  let out = "";
  const m = new VirtMachine({
    ...configFromHeader(header),
    serialOutput: (b) => {
      out += Buffer.from(b).toString("latin1");
    },
  });
  if (variant === "registers-only" || variant === "power-off-secondaries") {
    restoreSections(m, sections, { broken: variant });
  } else {
    restoreSections(m, sections);
    // A restore that resets the vCPUs powered on (ignoring the saved MP state).
    if (variant === "secondaries-powered-on") {
      for (const c of m.vcpus) if (c.getMpState() === MP_STATE.STOPPED) c.setMpState(MP_STATE.RUNNABLE);
    }
  }

  const v1 = m.vcpus[1]!;
  const v1Mpidr = BigInt(v1.mpidr & 0xffffff);
  const v1Count = v1.cpu.instructionCount;
  const v1Pc = v1.cpu.pc;
  let cpuOnNamedV1 = false;
  const psciCpuOn = m.vm.psciCpuOn.bind(m.vm);
  m.vm.psciCpuOn = (mpidr, entry, ctx) => {
    if ((mpidr & 0xff00ffffffn) === v1Mpidr) cpuOnNamedV1 = true;
    return psciCpuOn(mpidr, entry, ctx);
  };
  const affinity: number[] = [];
  const psciAffinityInfo = m.vm.psciAffinityInfo.bind(m.vm);
  m.vm.psciAffinityInfo = (aff, level) => {
    const r = psciAffinityInfo(aff, level);
    if (!cpuOnNamedV1 && level === 0n && (aff & 0xff00ffffffn) === v1Mpidr) affinity.push(r);
    return r;
  };

  const trace: string[] = [];
  let lastWakes = seedField(m, F.v2Wakes);
  m.scheduler().onExit = (c, exit) => {
    trace.push(traceLine(m, ref.n, c, exit));
    if (!cpuOnNamedV1) {
      if (v1.getMpState() !== MP_STATE.STOPPED)
        v(
          "vCPU 1 not STOPPED before CPU_ON",
          `vCPU 1 is in MP state ${v1.getMpState()}, not STOPPED, before CPU_ON (exit of vCPU ${c.id})`,
        );
      if (v1.cpu.instructionCount !== v1Count)
        v(
          "vCPU 1 ran before CPU_ON",
          `vCPU 1 executed ${v1.cpu.instructionCount - v1Count} instructions before CPU_ON`,
        );
      if (v1.cpu.pc !== v1Pc)
        v("vCPU 1's PC moved", `vCPU 1's PC moved to 0x${v1.cpu.pc.toString(16)} before CPU_ON`);
    }
    if (c.id === 2 && seedField(m, F.stop) === 0n) {
      const pc = c.cpu.pc;
      if (pc < VCPU2_FN[0] || pc >= VCPU2_FN[1])
        v("vCPU 2 left its WFI loop", `vCPU 2 left its WFI loop: PC 0x${pc.toString(16)}`);
      if (c.getMpState() !== MP_STATE.RUNNABLE)
        v("vCPU 2 not RUNNABLE", `vCPU 2 is in MP state ${c.getMpState()}, not RUNNABLE`);
    }
    const wakes = seedField(m, F.v2Wakes);
    if (wakes < lastWakes)
      v("vCPU 2's wake count went back", `vCPU 2's wake count went back from ${lastWakes} to ${wakes}`);
    lastWakes = wakes;
  };

  const result = await runTo(m, LIMIT - ref.n);
  if (result.kind !== ref.result.kind) {
    v(
      `the run ended with ${result.kind}${"message" in result ? ` (${result.message})` : ""}, the uninterrupted one with ${ref.result.kind}`,
    );
  }
  if (!cpuOnNamedV1) v("the guest never reached its CPU_ON of vCPU 1");
  if (affinity.length === 0) v("no AFFINITY_INFO about vCPU 1 after the restore");
  const notOff = affinity.filter((r) => r !== AFFINITY.OFF);
  if (notOff.length)
    v(`AFFINITY_INFO(vCPU 1) said ${notOff[0]} (not OFF) ${notOff.length} of ${affinity.length} times`);
  // vCPU 3's count (and everything else in the trace) continues exactly.
  const i = trace.findIndex((t, k) => t !== ref.trace[k]);
  if (i >= 0 || trace.length !== ref.trace.length) {
    const k = i >= 0 ? i : Math.min(trace.length, ref.trace.length);
    v(`trace differs from the uninterrupted run at exit ${k}: got '${trace[k]}', want '${ref.trace[k]}'`);
  }
  if (out !== ref.report) v(`final report differs:\n--- restored\n${out}\n--- uninterrupted\n${ref.report}`);
  if (!/RESULT: PASS/.test(out)) v("the guest did not report RESULT: PASS after the restore");
  return [...seen.values()].map((e) => (e.times > 1 ? `${e.first} (${e.times} times)` : e.first));
}

test("seed scenario: the uninterrupted run passes and reports", async () => {
  const ref = await getReference();
  assert.equal(ref.result.kind, "shutdown");
  assert.match(ref.report, /AFFINITY_INFO\(vcpu1\) OFF 32 of 32/);
  assert.match(ref.report, /RESULT: PASS/);
  assert.ok(ref.trace.length > 100, `${ref.trace.length} exits after the save point`);
});

test("seed scenario: after save and restore, vCPU 1 stays off, vCPU 2 waits, vCPU 3 counts on exactly", async () => {
  assert.deepEqual(await seedViolations(undefined), []);
});

// Each broken restore, and a violation it must cause (others may follow from it).
const BROKEN = {
  // Every vCPU is left as KVM_ARM_VCPU_INIT(POWER_OFF) made it: nothing runs at all.
  "registers-only": /the run ended with error/,
  // vCPUs 2 and 3 are switched off: vCPU 3 stops counting, vCPU 2 leaves WFI for STOPPED.
  "power-off-secondaries": /vCPU 2 is in MP state 5|trace differs/,
  // vCPU 1 comes back RUNNABLE and runs on after its CPU_OFF.
  "secondaries-powered-on": /vCPU 1 executed \d+ instructions before CPU_ON/,
} as const;

for (const [broken, expected] of Object.entries(BROKEN) as [keyof typeof BROKEN, RegExp][]) {
  test(`seed scenario catches a broken restore: ${broken}`, async () => {
    const violations = await seedViolations(broken);
    assert.ok(violations.length > 0, `the ${broken} restore went unnoticed`);
    assert.ok(
      violations.some((x) => expected.test(x)),
      violations.join("\n"),
    );
    if (process.env.SEED_VERBOSE)
      console.log(
        broken,
        violations.map((s) => s.slice(0, 300)),
      );
  });
}
