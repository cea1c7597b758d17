/**
 * Snapshot files, structure-aware: a valid snapshot of a small guest is decoded into its
 * header and sections, one to three edits are made (sections.ts: payload values, register
 * entries, RAM pages, the section list; the header's configuration, savedAt and
 * contents), and the result is encoded again by the format's own encodeSnapshot, so every
 * checksum is right and the edit reaches the checks behind them. A share of inputs is
 * edited after encoding instead (raw bytes, checksums stale; or the header JSON with its
 * CRC recomputed here), and a share is stored deflated.
 *
 * Each input goes the way `armbox run --restore` goes: decodeSnapshot, configFromHeader,
 * a machine built from that configuration, restoreSections. Refused: a SnapshotError (or
 * StateError/KvmError) with a clean one-line message. Accepted: then the machine must run
 * RUN_INSNS instructions without an internal error; an input the mutator made incomplete
 * must not have been accepted (a violation); and on deterministic machines, one accepted
 * input in DIFF_EVERY is restored again into a fresh machine, whose state digest must
 * equal the reused machine's (state a restore does not set would differ).
 *
 * Machines are reused between inputs (RAM zeroed first): building one costs more than
 * restoring.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { KvmError } from "../../../src/hv/onereg.ts";
import { crc32c } from "../../../src/lib/crc32.ts";
import { StateError } from "../../../src/lib/state.ts";
import type { MachineConfig, VirtMachine } from "../../../src/machine/virt.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  type Section,
  SnapshotError,
  type SnapshotHeader,
} from "../../../src/vmm/snapshot/format.ts";
import {
  configFromHeader,
  isLegacySnapshot,
  restoreSections,
  stateDigest,
} from "../../../src/vmm/snapshot/machine-state.ts";
import { Rng } from "../../difftest/prng.ts";
import { type Chunk, type FuzzTarget, type Recorder, refusalProblem } from "../core.ts";
import { type BaseSnapshot, baseSnapshots, restoreMachine, type VirtioKind } from "../corpus.ts";
import { interestingJson, mutateBytes, mutateJson } from "../mutate.ts";
import { type Mutation, mutateSectionList } from "../sections.ts";

const RUN_INSNS = 2000;
const DIFF_EVERY = 16;
const ALLOWED = [SnapshotError, StateError, KvmError];
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Machines by configuration and virtio set, most recently used last. */
class MachinePool {
  private readonly machines = new Map<string, VirtMachine>();
  constructor(private readonly max = 6) {}

  get(config: MachineConfig, virtio: readonly VirtioKind[]): VirtMachine {
    const key = `${JSON.stringify(config)}|${virtio.join(",")}`;
    let m = this.machines.get(key);
    if (m) this.machines.delete(key);
    else {
      m = restoreMachine(config, virtio);
      if (this.machines.size >= this.max) this.machines.delete(this.machines.keys().next().value!);
    }
    this.machines.set(key, m);
    m.vm.ram.fill(0);
    return m;
  }
}

/** Edits of the header (configuration, savedAt, writer, or anything). */
function mutateHeader(h: SnapshotHeader, rng: Rng): { header: SnapshotHeader; m: Mutation } {
  // An earlier JSON edit may have left no header object, or no configuration object, to edit.
  const isObject = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x);
  const header = (isObject(h) ? structuredClone(h) : {}) as SnapshotHeader & Record<string, unknown>;
  if (!isObject(header.config)) (header as Record<string, unknown>).config = {};
  const cfg = header.config as Record<string, unknown>;
  const k = rng.int(10);
  if (k < 5) {
    const key = rng.pick(["smp", "memory", "deterministic", "psciConduit", "semihosting", "extra"]);
    const v =
      key === "smp"
        ? rng.pick([0, 1, 2, 3, 4, 8, 32, 33, 123, 124, -1, 1.5, "2", null])
        : key === "memory"
          ? rng.pick([
              0,
              4095,
              4096,
              1 << 20,
              2 << 20,
              (1 << 20) + 4096,
              3 * 1024 ** 3,
              3 * 1024 ** 3 + 4096,
              -4096,
              2 ** 53,
              "1048576",
            ])
          : key === "psciConduit"
            ? rng.pick(["hvc", "smc", "", "HVC", null])
            : rng.chance(0.5)
              ? !cfg[key]
              : interestingJson(rng, cfg[key]);
    if (rng.chance(0.1)) delete cfg[key];
    else cfg[key] = v;
    return { header, m: { what: `header: config.${key} = ${JSON.stringify(cfg[key])}` } };
  }
  if (k < 8) {
    const v = rng.pick([
      "x",
      null,
      -1,
      0,
      1.5,
      Number.MAX_SAFE_INTEGER,
      1e300,
      "1700000000000",
      Date.now() + 1e9,
      true,
      [],
    ]);
    (header as Record<string, unknown>).savedAt = v;
    return { header, m: { what: `header: savedAt = ${JSON.stringify(v)}` } };
  }
  return { header: mutateJson(header, rng) as SnapshotHeader, m: { what: "header: JSON edit" } };
}

/**
 * Replaces the header JSON of an encoded format-2 snapshot (magic | version | length |
 * JSON | CRC) by an edited one with its CRC recomputed, so the contents list itself is
 * reached. Null when the bytes are not that layout.
 */
function editEncodedHeader(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; what: string } | null {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 20 || dv.getUint32(8, true) !== 2) return null;
  const hlen = dv.getUint32(12, true);
  if (16 + hlen + 4 > bytes.length) return null;
  let header: unknown;
  try {
    header = JSON.parse(dec.decode(bytes.subarray(16, 16 + hlen)));
  } catch {
    return null;
  }
  const contents = (header as { contents?: unknown[] }).contents;
  let edited: unknown;
  let what: string;
  if (Array.isArray(contents) && contents.length > 0 && rng.chance(0.7)) {
    const list = structuredClone(contents) as Record<string, unknown>[];
    const i = rng.int(list.length);
    const j = rng.int(3);
    if (j === 0) list.splice(i, 1);
    else if (j === 1) list.splice(i, 0, structuredClone(list[i]!));
    else list[i] = mutateJson(list[i], rng) as Record<string, unknown>;
    edited = { ...(header as object), contents: list };
    what = `header contents: entry ${i} ${["removed", "duplicated", "edited"][j]}`;
  } else {
    edited = mutateJson(header, rng);
    what = "header JSON edited after encoding";
  }
  const h = enc.encode(JSON.stringify(edited));
  const out = new Uint8Array(16 + h.length + 4 + (bytes.length - 16 - hlen - 4));
  out.set(bytes.subarray(0, 8), 0);
  const odv = new DataView(out.buffer);
  odv.setUint32(8, 2, true);
  odv.setUint32(12, h.length, true);
  out.set(h, 16);
  odv.setUint32(16 + h.length, crc32c([out.subarray(8, 16 + h.length)]), true);
  out.set(bytes.subarray(16 + hlen + 4), 16 + h.length + 4);
  return { bytes: out, what };
}

interface Input {
  bytes: Uint8Array;
  base: BaseSnapshot;
  mutations: Mutation[];
}

function makeInput(bases: readonly BaseSnapshot[], rng: Rng): Input {
  const base = rng.pick(bases);
  const mutations: Mutation[] = [];
  let header = base.header;
  const sections: Section[] = base.sections.map((s) => ({ ...s }));
  const edits = rng.chance(0.6) ? 1 : rng.range(2, 3);
  for (let e = 0; e < edits; e++) {
    if (rng.chance(0.12)) {
      const r = mutateHeader(header, rng);
      header = r.header;
      mutations.push(r.m);
    } else mutations.push(mutateSectionList(sections, rng));
  }
  let bytes = encodeSnapshot(header, sections, rng.chance(0.1));
  const post = rng.int(100);
  if (post < 6) {
    bytes = mutateBytes(bytes, rng);
    mutations.push({ what: "raw bytes edited after encoding (checksums stale)" });
  } else if (post < 12) {
    const r = editEncodedHeader(bytes, rng);
    if (r) {
      bytes = r.bytes;
      mutations.push({ what: r.what });
    }
  }
  return { bytes, base, mutations };
}

export const snapshotTarget: FuzzTarget = {
  name: "snapshot",
  unit: "snapshot files",
  full: 1_000_000,
  smoke: 40,
  perInputMs: 5000,
  async run(chunk: Chunk, rec: Recorder): Promise<void> {
    const bases = baseSnapshots();
    const pool = new MachinePool();
    let acceptedSinceDiff = 0;
    for (let i = chunk.start; i < chunk.start + chunk.count; i++) {
      const rng = new Rng(rec.inputSeed(i));
      const input = makeInput(bases, rng);
      const what = input.mutations.map((m) => m.what).join("; ");
      const save = (): { file?: string; text: string } => {
        const text = `base ${input.base.name}: ${what}`;
        if (!chunk.crashDir) return { text };
        const file = join(chunk.crashDir, `snapshot-${chunk.seed}-${i}.armbox`);
        writeFileSync(file, input.bytes);
        return { text, file };
      };
      let m: VirtMachine;
      let deterministic = false;
      try {
        const { header, sections } = decodeSnapshot(input.bytes);
        const config = configFromHeader(header, sections);
        deterministic = config.deterministic;
        m = pool.get(config, input.base.virtio);
        restoreSections(m, sections, { savedAt: header.savedAt, legacyFormat: isLegacySnapshot(header) });
      } catch (e) {
        const problem = refusalProblem(e, ALLOWED);
        if (problem) rec.crash(i, problem, save());
        else {
          rec.refused((e as Error).message);
          if (!(e instanceof SnapshotError)) rec.count(`refused as ${(e as Error).name} (not SnapshotError)`);
        }
        continue;
      }
      // A page removed from a re-encoded file is a snapshot of a machine whose page was zero
      // (no digest outside the encoder's reach tells them apart): not a violation here. A
      // section removed or doubled is one only if the final list still shows it.
      const names = sectionNames(input.bytes);
      const incomplete = input.mutations.find(
        (x) =>
          x.incomplete &&
          !/^RAM page/.test(x.incomplete) &&
          !(
            /^section '(.*)' (missing|twice)$/.exec(x.incomplete) &&
            !sectionStillWrong(x.incomplete, names, input.base.sections)
          ),
      );
      if (incomplete) {
        rec.violation(i, `accepted although ${incomplete.incomplete} (${incomplete.what})`, save());
        rec.count(`accepted incomplete: ${incomplete.incomplete}`);
      }
      // A deterministic restore must not depend on the machine it was restored into.
      if (deterministic && ++acceptedSinceDiff >= DIFF_EVERY) {
        acceptedSinceDiff = 0;
        try {
          const { header, sections } = decodeSnapshot(input.bytes);
          const fresh = restoreMachine(configFromHeader(header, sections), input.base.virtio);
          restoreSections(fresh, sections, {
            savedAt: header.savedAt,
            legacyFormat: isLegacySnapshot(header),
          });
          rec.count("accepted inputs restored twice (fresh machine)");
          if (stateDigest(fresh) !== stateDigest(m)) {
            rec.violation(i, "the restored state differs between a reused and a fresh machine", save());
          }
        } catch (e) {
          rec.violation(i, `accepted once, refused by a fresh machine: ${(e as Error).message}`, save());
        }
      }
      // The restored machine runs: a JavaScript exception inside it is a crash of this input.
      const crash = runRestored(m, rec);
      if (crash) rec.crash(i, crash, save());
      else rec.accepted();
    }
  },
};

/** Runs RUN_INSNS instructions; returns what went wrong, or null. */
function runRestored(m: VirtMachine, rec: Recorder): string | null {
  try {
    const sched = m.scheduler();
    const before = sched.instructions;
    for (let k = 0; k < 4; k++) {
      const ran = Number(sched.instructions - before);
      if (ran >= RUN_INSNS) break;
      const ev = sched.round(RUN_INSNS - ran);
      if (ev?.kind === "internal-error") return `the restored machine hit an internal error: ${ev.message}`;
      if (ev && ev.kind !== "limit" && ev.kind !== "all-idle") break;
    }
    rec.count("instructions run by accepted restores", Number(sched.instructions - before));
    return null;
  } catch (e) {
    return `running the restored machine threw: ${(e as Error)?.stack ?? String(e)}`;
  }
}

function sectionNames(bytes: Uint8Array): string[] {
  try {
    return decodeSnapshot(bytes).sections.map((s) => s.name);
  } catch {
    return [];
  }
}

/**
 * Whether the final section list still lacks (or doubles) the section the mutation named.
 * A section the mutator added itself (an unknown name, a vCPU the machine lacks) and
 * then removed is no loss.
 */
function sectionStillWrong(incomplete: string, names: readonly string[], base: readonly Section[]): boolean {
  const m = /^section '(.*)' (missing|twice)$/.exec(incomplete)!;
  const n = names.filter((x) => x === m[1]).length;
  return m[2] === "missing" ? n === 0 && base.some((s) => s.name === m[1]) : n > 1;
}
