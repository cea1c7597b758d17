/**
 * Turns a running virt machine into sections and back. Each component describes its own
 * state; the vCPU sections are built from KVM_GET_REG_LIST + KVM_GET_MP_STATE, never from
 * a hand-kept field list. Restore follows Firecracker's order (init, registers, MP state):
 * the saved MP state is applied last and nothing re-applies "power off" afterwards.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { MAX_VCPUS } from "../../arch/arm64/state.ts";
import { MP_STATE } from "../../hv/mp-state.ts";
import {
  hexId,
  KVM_REG_ARM_COPROC_MASK,
  KVM_REG_ARM_CORE,
  KVM_REG_ARM_PTIMER_CNT,
  KVM_REG_ARM_TIMER_CNT,
  KvmError,
  regSize,
} from "../../hv/onereg.ts";
import { DeterministicClock, RealtimeClock, TIMER_FREQUENCY } from "../../hv/timer.ts";
import type { Vcpu } from "../../hv/vcpu.ts";
import { StateError, type StateValue } from "../../lib/state.ts";
import type { MachineConfig, VirtMachine } from "../../machine/virt.ts";
import {
  concat,
  encodeSection,
  jsonSection,
  parseJsonSection,
  type Section,
  SnapshotError,
  type SnapshotHeader,
} from "./format.ts";

export const PAGE = 4096;
const MACHINE_VERSION = 1;
/**
 * 1: JSON with hex strings; 2: binary (below), about 3x faster to load; 3: the same binary
 * layout, carrying every ID of the register list (required). Versions 1 and 2 are still
 * read: they were written before some registers existed, which then keep their reset
 * values, but they must carry every core register (KVM_REG_ARM_CORE) and no ID twice.
 */
const VCPU_VERSION = 3;
const RAM_VERSION = 1;

interface VcpuState {
  mp: number;
  /** Waiting in WFI/WFE (not an MP state; kept so deterministic runs repeat exactly). */
  wfx: "wfi" | "wfe" | null;
  /** [register ID, value] in KVM_GET_REG_LIST order. */
  regs: (readonly [bigint, bigint])[];
}

/** vcpu@N version 1 (JSON): register IDs and values as hex strings. */
interface VcpuStateV1 {
  mp: number;
  wfx: "wfi" | "wfe" | null;
  regs: [string, string][];
}

interface MachineState {
  clock: "deterministic" | "realtime";
  /** Deterministic: the VM clock at the start of the current round. */
  roundStart: string;
  /** Real time: the VM clock at the moment of the save. */
  clockAtSave: string;
  /** Instructions each vCPU has executed in its current slice. */
  sliceUsed: number[];
  scheduler: { pos: number; sliceUsed: number; roundRan: boolean; rounds: number };
}

/**
 * Every section of the machine's current state. The machine must be stopped. With
 * `ram: false` the RAM section lists no page (live migration sends pages separately).
 */
export function captureSections(m: VirtMachine, opts: { ram?: boolean } = {}): Section[] {
  const clock = m.vm.clock;
  const sched = m.scheduler();
  const machine: MachineState = {
    clock: clock.kind,
    roundStart: clock instanceof DeterministicClock ? clock.roundStart.toString() : "0",
    clockAtSave: clock instanceof RealtimeClock ? clock.now().toString() : "0",
    sliceUsed: m.vcpus.map((v) => (clock instanceof DeterministicClock ? clock.sliceUsed(v.cpu) : 0)),
    scheduler: { ...sched.position, rounds: sched.rounds },
  };
  const out: Section[] = [jsonSection("machine", MACHINE_VERSION, machine)];
  for (const v of m.vcpus)
    out.push({ name: `vcpu@${v.id}`, version: VCPU_VERSION, data: encodeVcpu(saveVcpu(v)) });
  // The board owns the list of its components (GIC, UART, RTC, each plugged virtio device).
  for (const c of m.components) out.push(jsonSection(c.stateName, c.stateVersion, c.saveState()));
  const pages = opts.ram === false ? [] : nonZero(m.vm.ram, m.vm.writtenPages());
  out.push({ name: "ram", version: RAM_VERSION, data: encodeRam(m.vm.ram, pages) });
  return out;
}

export function saveVcpu(v: Vcpu): VcpuState {
  return {
    mp: v.getMpState(),
    wfx: v.waiting,
    regs: v.getRegList().map((id) => [id, v.getOneReg(id)] as const),
  };
}

const WFX_CODES = [null, "wfi", "wfe"] as const;

/**
 * vcpu@N version 2: u32 MP state | u32 wait (0 none, 1 WFI, 2 WFE) | u32 register count |
 * per register: u64 ID | value in the ID's size (KVM_REG_SIZE), little-endian, as
 * KVM_GET_ONE_REG writes it.
 */
function encodeVcpu(s: VcpuState): Uint8Array {
  let n = 12;
  for (const [id] of s.regs) n += 8 + regSize(id);
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, s.mp, true);
  dv.setUint32(4, WFX_CODES.indexOf(s.wfx), true);
  dv.setUint32(8, s.regs.length, true);
  let p = 12;
  for (const [id, value] of s.regs) {
    dv.setBigUint64(p, id, true);
    p += 8;
    const size = regSize(id);
    if (size === 8) dv.setBigUint64(p, value, true);
    else if (size === 4) dv.setUint32(p, Number(value), true);
    else if (size === 16) {
      dv.setBigUint64(p, BigInt.asUintN(64, value), true);
      dv.setBigUint64(p + 8, value >> 64n, true);
    } else for (let k = 0; k < size; k++) out[p + k] = Number((value >> BigInt(8 * k)) & 0xffn);
    p += size;
  }
  return out;
}

function decodeVcpu(name: string, data: Uint8Array): VcpuState {
  const bad = (what: string) => new SnapshotError(`section '${name}': ${what}`);
  if (data.length < 12) throw bad("truncated");
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const mp = dv.getUint32(0, true);
  const wfx = WFX_CODES[dv.getUint32(4, true)];
  if (wfx === undefined) throw bad("wait state is corrupt");
  const count = dv.getUint32(8, true);
  const regs: (readonly [bigint, bigint])[] = [];
  let p = 12;
  for (let i = 0; i < count; i++) {
    if (p + 8 > data.length) throw bad(`truncated at register ${i} of ${count}`);
    const id = dv.getBigUint64(p, true);
    p += 8;
    const size = regSize(id);
    if (size > 256) throw bad(`register ${hexId(id)} has an impossible size (${size} bytes)`);
    if (p + size > data.length) throw bad(`truncated at register ${hexId(id)}`);
    let value: bigint;
    if (size === 8) value = dv.getBigUint64(p, true);
    else if (size === 4) value = BigInt(dv.getUint32(p, true));
    else if (size === 16) value = (dv.getBigUint64(p + 8, true) << 64n) | dv.getBigUint64(p, true);
    else {
      value = 0n;
      for (let k = size - 1; k >= 0; k--) value = (value << 8n) | BigInt(data[p + k]!);
    }
    p += size;
    regs.push([id, value]);
  }
  if (p !== data.length) throw bad(`${data.length - p} bytes after the last register`);
  checkMpState(bad, mp);
  return { mp, wfx, regs };
}

function checkMpState(bad: (what: string) => SnapshotError, mp: number): void {
  if (![MP_STATE.RUNNABLE, MP_STATE.STOPPED, MP_STATE.SUSPENDED].includes(mp as 0 | 5 | 10)) {
    throw bad(`MP state ${mp} is not valid on arm64`);
  }
}

export function snapshotHeader(m: VirtMachine): SnapshotHeader {
  return { config: { ...m.config }, savedAt: Math.floor(m.vm.hostClock.wallMs()), writer: "armbox 0.1.0" };
}

/** Whether a decoded snapshot header is of format 1 (no `contents` list; see format.ts). */
export function isLegacySnapshot(h: SnapshotHeader): boolean {
  return h.contents === undefined;
}

/**
 * Checks a header's machine configuration and returns it typed. With the snapshot's
 * `sections`, also what can be checked before a machine is built (building one of 3 GiB
 * costs seconds): the RAM section's page count against the configured memory, and each
 * vCPU section's index against smp.
 */
export function configFromHeader(h: SnapshotHeader, sections?: readonly Section[]): MachineConfig {
  const c = h.config as Partial<MachineConfig>;
  const ok =
    Number.isInteger(c.smp) &&
    Number.isInteger(c.memory) &&
    typeof c.deterministic === "boolean" &&
    (c.psciConduit === "hvc" || c.psciConduit === "smc") &&
    typeof c.semihosting === "boolean";
  if (!ok) throw new SnapshotError("header: the machine configuration is incomplete or corrupt");
  // Values no machine can be built with are refused here, naming the field, rather than
  // by the board's constructor with an error that is not about the snapshot.
  if (c.smp! < 1 || c.smp! > MAX_VCPUS) throw new SnapshotError(`header: smp ${c.smp} is out of range`);
  if (c.memory! <= 0 || c.memory! % 4096 !== 0 || c.memory! > 3 * 1024 ** 3)
    throw new SnapshotError(`header: memory ${c.memory} is not a RAM size armbox builds`);
  if (sections) checkSectionsFit(c as MachineConfig, sections);
  return c as MachineConfig;
}

function checkSectionsFit(c: MachineConfig, sections: readonly Section[]): void {
  if (!sections.some((s) => s.name === "ram")) throw new SnapshotError("section 'ram' is missing");
  for (const s of sections) {
    if (s.name === "ram" && s.data.length >= 8) {
      const count = new DataView(s.data.buffer, s.data.byteOffset, 8).getUint32(4, true);
      if (count !== c.memory / PAGE)
        throw new SnapshotError(
          `section 'ram': holds ${count} pages, the header's machine has ${c.memory / PAGE}`,
        );
    }
    const v = /^vcpu@(\d+)$/.exec(s.name);
    if (v && Number(v[1]) >= c.smp)
      throw new SnapshotError(`section '${s.name}' is not part of this machine (header: smp ${c.smp})`);
  }
}

/** Test-only ways to restore wrongly, to prove the seed-scenario test catches them. */
export type BrokenRestore = "registers-only" | "power-off-secondaries";

/**
 * Loads `sections` into `m`, a machine freshly built from the same configuration with no
 * kernel. Validates everything first where it can; throws SnapshotError naming the section.
 */
export function restoreSections(
  m: VirtMachine,
  sections: readonly Section[],
  opts: {
    savedAt?: number;
    broken?: BrokenRestore;
    /** False for a migration's device state, whose RAM came as page frames before it. */
    ramInSections?: boolean;
    /**
     * The sections come from a format-1 file (header without `contents`, see
     * isLegacySnapshot): vCPU sections of versions 1 and 2, written before every register
     * of the list was required, are read. Anything newer carries version 3 only: a
     * relabelled section must not escape the complete-register-set rule.
     */
    legacyFormat?: boolean;
  } = {},
): void {
  const named = legacyNamesToInstances(sections, m);
  const byName = new Map(named.map((s) => [s.name, s]));
  const expected = new Set([
    "machine",
    ...m.components.map((c) => c.stateName),
    "ram",
    ...m.vcpus.map((v) => `vcpu@${v.id}`),
  ]);
  for (const s of named) {
    if (!expected.has(s.name)) throw new SnapshotError(`section '${s.name}' is not part of this machine`);
  }
  for (const name of expected) if (!byName.has(name)) throw new SnapshotError(`section '${name}' is missing`);
  const get = (name: string) => byName.get(name)!;
  const checkVersion = (s: Section, max: number) => {
    if (s.version < 1 || s.version > max) {
      throw new SnapshotError(
        `section '${s.name}' has version ${s.version}; this build reads versions 1 to ${max}`,
      );
    }
  };

  // Parse and validate the plain-data sections before touching the machine.
  const machineSec = get("machine");
  checkVersion(machineSec, MACHINE_VERSION);
  const ms = parseJsonSection(machineSec) as MachineState;
  validateMachine(ms, m);
  const vcpuStates = m.vcpus.map((v) => {
    const s = get(`vcpu@${v.id}`);
    checkVersion(s, VCPU_VERSION);
    if (s.version < VCPU_VERSION && !opts.legacyFormat)
      throw new SnapshotError(
        `section '${s.name}' has version ${s.version}; only a format-1 snapshot file carries vCPU sections older than version ${VCPU_VERSION}`,
      );
    const state = s.version === 1 ? validateVcpuV1(s.name, parseJsonSection(s)) : decodeVcpu(s.name, s.data);
    checkRegisterSet(s.name, state.regs, new Set(v.getRegList()), s.version >= 3);
    return state;
  });
  const ramSec = get("ram");
  checkVersion(ramSec, RAM_VERSION);
  // A machine that ran holds its loaded images at least: a snapshot without a page lost them.
  if ((opts.ramInSections ?? true) && ramSec.data.length <= 8) {
    throw new SnapshotError(
      "section 'ram' lists no page (a snapshot of a machine holds its loaded images at least)",
    );
  }

  try {
    for (const p of decodeRamInto(ramSec.data, m.vm.ram)) m.vm.markDirty(m.vm.ramBase + p * PAGE, PAGE);
    // The clock first: the vCPUs' counter registers are relative to it.
    const clock = m.vm.clock;
    if (clock instanceof DeterministicClock) {
      clock.roundStart = BigInt(ms.roundStart);
      for (const [i, v] of m.vcpus.entries()) clock.resumeSlice(v.cpu, ms.sliceUsed[i]!);
    } else if (clock instanceof RealtimeClock) {
      clock.offset = BigInt(ms.clockAtSave) - clock.hostTicks();
    }
    const sched = m.scheduler();
    sched.position = ms.scheduler;
    sched.rounds = ms.scheduler.rounds;

    for (const c of m.components) {
      const s = get(c.stateName);
      checkVersion(s, c.stateVersion);
      c.loadState(parseJsonSection(s) as StateValue, s.version);
    }
    m.vcpus.forEach((v, i) => {
      restoreVcpu(v, vcpuStates[i]!, opts.broken);
    });
    // Real time: the guest's clock moves on by the time the VM spent saved, so it neither
    // runs backwards nor stays behind by the downtime; timers already due fire once.
    if (clock instanceof RealtimeClock && opts.savedAt !== undefined) {
      const elapsedMs = Math.max(0, m.vm.hostClock.wallMs() - opts.savedAt);
      clock.offset += BigInt(Math.floor(elapsedMs * (TIMER_FREQUENCY / 1000)));
    }
    for (const v of m.vcpus) v.timer.update();
  } catch (e) {
    if (e instanceof SnapshotError) throw e;
    if (e instanceof StateError || e instanceof KvmError || e instanceof RangeError) {
      throw new SnapshotError(e.message);
    }
    throw e;
  }
}

/**
 * Snapshots written before sections were named per instance call the GIC, the UART and the
 * RTC "gicv3", "pl011" and "pl031". Such a section is the only component of its kind on
 * the board, so it is read as that instance's ("pl011" as "pl011@9000000").
 */
function legacyNamesToInstances(sections: readonly Section[], m: VirtMachine): Section[] {
  const names = m.components.map((c) => c.stateName);
  return sections.map((s) => {
    if (s.name.includes("@") || names.includes(s.name)) return s;
    const instances = names.filter((n) => n.startsWith(`${s.name}@`));
    return instances.length === 1 ? { ...s, name: instances[0]! } : s;
  });
}

function restoreVcpu(v: Vcpu, s: VcpuState, broken?: BrokenRestore): void {
  // KVM_ARM_VCPU_INIT, then every register, then the MP state last.
  v.init({ powerOff: true });
  // Counters before compare values and controls, so no stale deadline fires in between.
  const order = (id: bigint) => (id === KVM_REG_ARM_TIMER_CNT || id === KVM_REG_ARM_PTIMER_CNT ? 0 : 1);
  const regs = [...s.regs].sort((a, b) => order(a[0]) - order(b[0]));
  for (const [id, value] of regs) {
    try {
      v.setOneReg(id, value);
    } catch (e) {
      throw new SnapshotError(`section 'vcpu@${v.id}': register ${hexId(id)}: ${(e as Error).message}`);
    }
  }
  if (broken === "registers-only") return;
  v.setMpState(s.mp);
  v.waiting = s.wfx;
  if (broken === "power-off-secondaries" && v.id !== 0) v.setMpState(MP_STATE.STOPPED);
}

/**
 * A vCPU section must carry every ID of this vCPU's KVM_GET_REG_LIST exactly once: a
 * missing register would keep its reset value (a PC of 0 under a RUNNABLE MP state), a
 * repeated one would leave which value counts to the order of the list.
 */
function checkRegisterSet(
  section: string,
  regs: readonly (readonly [bigint, bigint])[],
  known: Set<bigint>,
  complete: boolean,
): void {
  const seen = new Set<bigint>();
  for (const [id] of regs) {
    if (!known.has(id)) throw new SnapshotError(`section '${section}': unknown register ID ${hexId(id)}`);
    if (seen.has(id)) throw new SnapshotError(`section '${section}': register ${hexId(id)} appears twice`);
    seen.add(id);
  }
  const required = complete
    ? [...known]
    : [...known].filter((id) => (id & KVM_REG_ARM_COPROC_MASK) === KVM_REG_ARM_CORE);
  const missing = required.filter((id) => !seen.has(id));
  if (missing.length > 0) {
    throw new SnapshotError(
      `section '${section}': ${missing.length} of the ${required.length} ${complete ? "registers" : "core registers"} of this vCPU are missing (first: ${hexId(missing[0]!)})`,
    );
  }
}

function validateMachine(ms: MachineState, m: VirtMachine): void {
  const bad = (what: string) => new SnapshotError(`section 'machine': ${what}`);
  if (typeof ms !== "object" || ms === null) throw bad("not an object");
  if (ms.clock !== m.vm.clock.kind)
    throw bad(`clock is '${ms.clock}', the machine's is '${m.vm.clock.kind}'`);
  for (const k of ["roundStart", "clockAtSave"] as const) {
    if (typeof ms[k] !== "string" || !/^\d{1,20}$/.test(ms[k])) throw bad(`${k} is not a counter value`);
  }
  if (!Array.isArray(ms.sliceUsed) || ms.sliceUsed.length !== m.vcpus.length)
    throw bad("sliceUsed has the wrong length");
  if (!ms.sliceUsed.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 40))
    throw bad("sliceUsed holds a bad value");
  const s = ms.scheduler;
  if (typeof s !== "object" || s === null || !Number.isInteger(s.rounds) || typeof s.roundRan !== "boolean") {
    throw bad("scheduler position is corrupt");
  }
  const q = m.scheduler().quantum;
  if (
    !Number.isInteger(s.pos) ||
    s.pos < 0 ||
    s.pos >= m.vcpus.length ||
    !Number.isInteger(s.sliceUsed) ||
    s.sliceUsed < 0 ||
    s.sliceUsed >= q
  ) {
    throw bad("scheduler position is out of range");
  }
}

/** Reads a version 1 (JSON) vCPU section, as written by armbox before binary sections. */
function validateVcpuV1(name: string, raw: unknown): VcpuState {
  const bad = (what: string) => new SnapshotError(`section '${name}': ${what}`);
  const s = raw as VcpuStateV1;
  if (typeof s !== "object" || s === null) throw bad("not an object");
  if (!Number.isInteger(s.mp)) throw bad("MP state is missing");
  if (s.wfx !== null && s.wfx !== "wfi" && s.wfx !== "wfe") throw bad("wait state is corrupt");
  if (!Array.isArray(s.regs)) throw bad("register list is missing");
  const regs: (readonly [bigint, bigint])[] = [];
  for (const r of s.regs) {
    if (
      !Array.isArray(r) ||
      r.length !== 2 ||
      !/^0x[0-9a-f]{16}$/.test(r[0]) ||
      !/^0x[0-9a-f]{1,32}$/.test(r[1])
    ) {
      throw bad("register entry is corrupt");
    }
    const id = BigInt(r[0]);
    const value = BigInt(r[1]);
    if (value >= 1n << BigInt(regSize(id) * 8)) throw bad(`register ${r[0]} value does not fit its size`);
    regs.push([id, value]);
  }
  checkMpState(bad, s.mp);
  return { mp: s.mp, wfx: s.wfx, regs };
}

// ---------------------------------------------------------------------------
// RAM: sparse (zero pages skipped). Layout: u32 page size | u32 page count | then for
// each non-zero page: u32 page index | PAGE bytes.

export function pageIsZero(ram: Uint8Array, off: number): boolean {
  const w = new Uint32Array(ram.buffer, ram.byteOffset + off, PAGE / 4);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  return true;
}

export function encodeRam(ram: Uint8Array, pages?: Iterable<number>): Uint8Array {
  const count = ram.length / PAGE;
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, PAGE, true);
  new DataView(head.buffer).setUint32(4, count, true);
  parts.push(head);
  const list = pages ?? Array.from({ length: count }, (_, i) => i);
  for (const p of list) {
    const off = p * PAGE;
    if (pages === undefined && pageIsZero(ram, off)) continue;
    const idx = new Uint8Array(4);
    new DataView(idx.buffer).setUint32(0, p, true);
    parts.push(idx, ram.subarray(off, off + PAGE));
  }
  return concat(parts);
}

/** The pages of `pages` that hold anything but zeros (only those are worth storing). */
export function nonZero(ram: Uint8Array, pages: readonly number[]): number[] {
  return pages.filter((p) => !pageIsZero(ram, p * PAGE));
}

/** Writes the pages of an encoded RAM payload into `ram` (other pages untouched); returns their indices. */
export function decodeRamInto(data: Uint8Array, ram: Uint8Array): number[] {
  const written: number[] = [];
  const bad = (what: string) => new SnapshotError(`section 'ram': ${what}`);
  if (data.length < 8) throw bad("truncated");
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dv.getUint32(0, true) !== PAGE) throw bad(`page size ${dv.getUint32(0, true)} is not ${PAGE}`);
  const count = dv.getUint32(4, true);
  if (count !== ram.length / PAGE) throw bad(`holds ${count} pages, the machine has ${ram.length / PAGE}`);
  if ((data.length - 8) % (4 + PAGE) !== 0) throw bad("truncated inside a page");
  for (let off = 8; off < data.length; off += 4 + PAGE) {
    const p = dv.getUint32(off, true);
    if (p >= count) throw bad(`page index ${p} is outside RAM`);
    ram.set(data.subarray(off + 4, off + 4 + PAGE), p * PAGE);
    written.push(p);
  }
  return written;
}

// ---------------------------------------------------------------------------

/**
 * SHA-256 over the whole machine state: every vCPU's registers and MP state, the GIC, the
 * timers (in the register lists), the devices, the scheduler/clock and RAM.
 */
export function stateDigest(m: VirtMachine): string {
  const h = sha256.create();
  for (const s of captureSections(m)) {
    if (s.name === "machine" && m.vm.clock.kind === "realtime") continue; // wall-clock dependent
    h.update(encodeSection(s, false));
  }
  return Array.from(h.digest(), (b) => b.toString(16).padStart(2, "0")).join("");
}
