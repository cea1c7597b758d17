/**
 * The bare-metal guests of guests/baremetal on the virt board, in process, at 1, 2, 4 and
 * 8 vCPUs (deterministic clock), and the hotplug guest's story told twice: by the MP
 * states the VMM samples at every exit and by the guest's own AFFINITY_INFO calls.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { MP_STATE } from "../src/hv/mp-state.ts";
import { AFFINITY } from "../src/hv/psci.ts";
import { Scheduler } from "../src/hv/scheduler.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { runMachine } from "../src/vmm/runner.ts";

const BIN = new URL("../guests/baremetal/bin/", import.meta.url);
const GUESTS = readdirSync(BIN)
  .filter((f) => f.endsWith(".elf"))
  .map((f) => f.slice(0, -4))
  .sort();

async function boot(name: string, smp: number): Promise<{ out: string; code: number | string }> {
  let out = "";
  const m = new VirtMachine({
    kernel: new Uint8Array(readFileSync(new URL(`${name}.elf`, BIN))),
    smp,
    memory: 64 << 20,
    deterministic: true,
    serialOutput: (b) => {
      out += Buffer.from(b).toString("latin1");
    },
  });
  const r = await runMachine(m, { output: () => {}, diag: () => {}, maxInstructions: 400_000_000n });
  return { out, code: r.kind === "shutdown" ? r.code : r.kind === "error" ? r.message : r.kind };
}

test("there are bare-metal guests to run", () => {
  assert.ok(GUESTS.length >= 8, GUESTS.join(" "));
});

for (const name of GUESTS) {
  for (const smp of [1, 2, 4, 8]) {
    test(`guest ${name} passes at --smp ${smp}`, async () => {
      const { out, code } = await boot(name, smp);
      assert.equal(code, 0, out);
      assert.match(out, /RESULT: PASS/, out);
      assert.doesNotMatch(out, /^FAIL/m, out);
    });
  }
}

test("hotplug: the MP states sampled at every exit agree with the guest's AFFINITY_INFO", () => {
  const m = new VirtMachine({
    kernel: new Uint8Array(readFileSync(new URL("hotplug.elf", BIN))),
    smp: 4,
    memory: 64 << 20,
    deterministic: true,
  });
  // Every AFFINITY_INFO the guest makes, with the MP state of the target at that moment.
  const calls: { target: number; result: number; mp: number }[] = [];
  const affinityInfo = m.vm.psciAffinityInfo.bind(m.vm);
  m.vm.psciAffinityInfo = (aff, level) => {
    const result = affinityInfo(aff, level);
    const target = m.vcpus.find((v) => BigInt(v.mpidr & 0xffffff) === aff);
    if (target && level === 0n) calls.push({ target: target.id, result, mp: target.getMpState() });
    return result;
  };
  const transitions: string[] = [];
  const sched = new Scheduler(m.vm, 5_000);
  let last = m.vcpus.map((v) => v.getMpState());
  let exits = 0;
  // Sampled at every exit: after each vCPU's KVM_RUN returns.
  sched.onExit = () => {
    exits++;
    const now = m.vcpus.map((v) => v.getMpState());
    now.forEach((s, id) => {
      if (s !== last[id]) transitions.push(`${id}:${last[id]}->${s}`);
    });
    last = now;
  };
  let ev = null;
  for (let i = 0; i < 100_000 && !ev; i++) ev = sched.round();
  assert.equal(ev?.kind, "system-event");
  assert.ok(exits > 10);
  assert.ok(calls.length > 0, "the guest asked AFFINITY_INFO");
  for (const c of calls) {
    const expected = c.mp === MP_STATE.STOPPED ? AFFINITY.OFF : AFFINITY.ON;
    assert.equal(c.result, expected, `vCPU ${c.target}: AFFINITY_INFO ${c.result} while MP state ${c.mp}`);
  }
  // Each secondary went STOPPED -> RUNNABLE -> STOPPED at least three times (the guest's loop).
  for (let id = 1; id < 4; id++) {
    const ons = transitions.filter((t) => t === `${id}:${MP_STATE.STOPPED}->${MP_STATE.RUNNABLE}`).length;
    const offs = transitions.filter((t) => t === `${id}:${MP_STATE.RUNNABLE}->${MP_STATE.STOPPED}`).length;
    assert.ok(ons >= 3 && offs >= 3, `vCPU ${id}: ${ons} on, ${offs} off (${transitions.join(" ")})`);
  }
  assert.ok(
    calls.some((c) => c.result === AFFINITY.OFF),
    JSON.stringify(calls.slice(0, 20)),
  );
});
