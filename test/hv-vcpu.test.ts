/**
 * The KVM-style vCPU API: PSCI through HVC, MP states, ONE_REG and the register list,
 * and the KVM errors for bad IDs, sizes and MP states.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MP_STATE } from "../src/hv/mp-state.ts";
import {
  coreReg,
  KVM_REG_ARM_TIMER_CNT,
  KVM_REG_SIZE_U32,
  KVM_REG_SIZE_U64,
  KvmError,
  sysReg,
} from "../src/hv/onereg.ts";
import { Scheduler } from "../src/hv/scheduler.ts";
import { Vm } from "../src/hv/vm.ts";

const RAM_BASE = 0x4000_0000;

// psci.s: vCPU 0 CPU_ONs vCPU 1 (ctx 0x1111) -> x20, again -> x21 (ALREADY_ON), MPIDR 7 ->
// x22 (INVALID_PARAMETERS), polls AFFINITY_INFO(1) until OFF, PSCI_VERSION -> x23,
// unknown function -> x24, SMC (UNDEF with the HVC conduit) -> handler, x25 = 77,
// SYSTEM_OFF. vCPU 1 stores its context ID at RAM+0x1000 and calls CPU_OFF.
const GUEST = [
  0x52800060, 0x72b88000, 0xd2800021, 0x100004a2, 0xd2822223, 0xd4000002, 0xaa0003f4, 0x52800060, 0x72b88000,
  0xd2800021, 0x100003c2, 0xd2800003, 0xd4000002, 0xaa0003f5, 0x52800060, 0x72b88000, 0xd28000e1, 0x100002e2,
  0xd4000002, 0xaa0003f6, 0x52800080, 0x72b88000, 0xd2800021, 0xd2800002, 0xd4000002, 0xf100041f, 0x54ffff41,
  0x52800000, 0x72b08000, 0xd4000002, 0xaa0003f7, 0x52824680, 0xd4000002, 0xaa0003f8, 0xd4000003, 0xd28009b9,
  0x52800100, 0x72b08000, 0xd4000002, 0x14000000, 0xaa0003e5, 0xd2a80006, 0xf90800c0, 0x52800040, 0x72b08000,
  0xd4000002, 0x14000000,
];
// At VBAR_EL1 + 0x200: record ESR in x26, skip the faulting instruction, ERET.
const HANDLER = [0xd538521a, 0xd538403b, 0x9100137b, 0xd518403b, 0xd69f03e0];
const VBAR = sysReg(3, 0, 12, 0, 0);
const PC = coreReg(256, KVM_REG_SIZE_U64);

function words(ws: number[]): Uint8Array {
  const b = new Uint8Array(ws.length * 4);
  const dv = new DataView(b.buffer);
  ws.forEach((w, i) => {
    dv.setUint32(i * 4, w, true);
  });
  return b;
}

function makeVm(nvcpus = 2) {
  const vm = new Vm({ ramBase: RAM_BASE, ramSize: 1 << 20, clock: "deterministic" });
  vm.writeRam(RAM_BASE, words(GUEST));
  vm.writeRam(RAM_BASE + 0x800, words(HANDLER));
  const vcpus = Array.from({ length: nvcpus }, (_, i) => vm.createVcpu(i));
  vcpus.forEach((v, i) => {
    v.init({ powerOff: i !== 0 });
    v.setOneReg(PC, BigInt(RAM_BASE));
    v.setOneReg(VBAR, BigInt(RAM_BASE + 0x600));
  });
  return { vm, vcpus };
}

test("PSCI CPU_ON / AFFINITY_INFO / CPU_OFF and the MP states they produce", () => {
  const { vm, vcpus } = makeVm();
  const log: string[] = [];
  for (const v of vcpus) v.onMpStateChange = (vc, from, to) => log.push(`${vc.id}:${from}->${to}`);
  assert.equal(vcpus[1]!.getMpState(), MP_STATE.STOPPED, "secondaries start STOPPED");
  const sched = new Scheduler(vm, 50);
  let ev = null;
  for (let i = 0; i < 1000 && !ev; i++) ev = sched.round();
  assert.deepEqual(ev && { kind: ev.kind, type: (ev as { type?: string }).type }, {
    kind: "system-event",
    type: "shutdown",
  });
  const x = (n: number) => BigInt.asIntN(64, vcpus[0]!.cpu.getX(n));
  assert.equal(x(20), 0n, "CPU_ON SUCCESS");
  assert.equal(x(21), -4n, "second CPU_ON: ALREADY_ON");
  assert.equal(x(22), -2n, "unknown MPIDR: INVALID_PARAMETERS");
  assert.equal(x(23), 0x10000n, "PSCI 1.0");
  assert.equal(x(24), -1n, "unknown function: NOT_SUPPORTED");
  assert.equal(x(26) >> 26n, 0n, "SMC with the HVC conduit is UNDEFINED (EC 0)");
  assert.equal(x(25), 77n);
  assert.equal(
    new DataView(vm.ram.buffer, vm.ram.byteOffset).getBigUint64(0x1000, true),
    0x1111n,
    "context ID in x0",
  );
  assert.deepEqual(log, ["1:5->0", "1:0->5"]);
  assert.equal(vcpus[1]!.getMpState(), MP_STATE.STOPPED);
});

test("a STOPPED vCPU executes nothing; SET_MP_STATE refuses non-arm64 states", () => {
  const { vcpus } = makeVm();
  const v1 = vcpus[1]!;
  assert.equal(v1.run(1000).kind, "idle");
  assert.equal(v1.cpu.instructionCount, 0n);
  for (const bad of [
    MP_STATE.HALTED,
    MP_STATE.UNINITIALIZED,
    MP_STATE.INIT_RECEIVED,
    MP_STATE.SIPI_RECEIVED,
    42,
  ]) {
    assert.throws(
      () => v1.setMpState(bad),
      (e: unknown) => e instanceof KvmError && e.errno === "EINVAL",
    );
  }
  v1.setMpState(MP_STATE.RUNNABLE);
  assert.equal(v1.getMpState(), MP_STATE.RUNNABLE);
});

test("ONE_REG: every listed register round-trips into a fresh vCPU; bad IDs and sizes fail as KVM's do", () => {
  const { vm, vcpus } = makeVm();
  const sched = new Scheduler(vm, 7);
  for (let i = 0; i < 20; i++) sched.round(); // stop mid-run
  const src = vcpus[1]!;
  const list = src.getRegList();
  assert.ok(list.length > 100);
  const values = list.map((id) => src.getOneReg(id));
  const fresh = new Vm({ ramBase: RAM_BASE, ramSize: 1 << 20, clock: "deterministic" });
  const dst = fresh.createVcpu(1);
  dst.init({ powerOff: true });
  list.forEach((id, i) => {
    dst.setOneReg(id, values[i]!);
  });
  assert.deepEqual(
    list.map((id) => dst.getOneReg(id)),
    values,
  );
  assert.throws(
    () => src.getOneReg(sysReg(3, 7, 15, 15, 7)),
    (e: unknown) => e instanceof KvmError && e.errno === "ENOENT",
  );
  assert.throws(
    () => src.getOneReg(coreReg(256, KVM_REG_SIZE_U32)),
    (e: unknown) => e instanceof KvmError && e.errno === "EINVAL",
  );
  assert.throws(
    () => src.setOneReg(PC, 1n << 64n),
    (e: unknown) => e instanceof KvmError && e.errno === "EINVAL",
  );
  assert.ok(list.includes(KVM_REG_ARM_TIMER_CNT));
});
