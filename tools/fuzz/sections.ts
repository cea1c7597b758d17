/**
 * Structure-aware mutation of machine state sections (a snapshot's, or a migration
 * stream's device state): the section list (drop, duplicate, reorder, rename, version), a
 * JSON section's values, a vCPU section's register entries, a RAM section's pages. The
 * binary layouts are read defensively: a section whose layout is not the one described
 * here (the format moved on) is mutated as plain bytes instead.
 *
 * A mutation that makes the state incomplete (a register entry or a RAM page removed, a
 * register listed twice) says so: a receiver that accepts such an input has loaded a
 * machine that is not the one saved, which the targets report as a violation.
 */
import { regSize } from "../../src/hv/onereg.ts";
import type { Section } from "../../src/vmm/snapshot/format.ts";
import type { Rng } from "../difftest/prng.ts";
import { concatBytes, interestingU32, mutateBytes, mutateJson } from "./mutate.ts";

export interface Mutation {
  /** What was done, for the crash report. */
  readonly what: string;
  /** Set when the mutation removed or duplicated state: accepting it loads the wrong machine. */
  readonly incomplete?: string;
}

const dec = new TextDecoder("utf-8", { fatal: true });
const enc = new TextEncoder();

export function isJsonSection(s: Section): boolean {
  if (s.data.length === 0 || (s.data[0] !== 0x7b && s.data[0] !== 0x5b)) return false;
  try {
    JSON.parse(dec.decode(s.data));
    return true;
  } catch {
    return false;
  }
}

interface VcpuLayout {
  mp: number;
  wfx: number;
  regs: { id: Uint8Array; value: Uint8Array }[];
}

/** vcpu@N version 2: u32 MP state | u32 wait | u32 count | (u64 ID | value of the ID's size)*. */
export function parseVcpu(data: Uint8Array): VcpuLayout | null {
  if (data.length < 12) return null;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = dv.getUint32(8, true);
  const regs: VcpuLayout["regs"] = [];
  let p = 12;
  for (let i = 0; i < count; i++) {
    if (p + 8 > data.length) return null;
    const size = regSize(dv.getBigUint64(p, true));
    if (size > 256 || p + 8 + size > data.length) return null;
    regs.push({ id: data.subarray(p, p + 8), value: data.subarray(p + 8, p + 8 + size) });
    p += 8 + size;
  }
  if (p !== data.length) return null;
  return { mp: dv.getUint32(0, true), wfx: dv.getUint32(4, true), regs };
}

export function encodeVcpu(v: VcpuLayout, count = v.regs.length): Uint8Array {
  const head = new Uint8Array(12);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, v.mp >>> 0, true);
  dv.setUint32(4, v.wfx >>> 0, true);
  dv.setUint32(8, count >>> 0, true);
  return concatBytes(head, ...v.regs.flatMap((r) => [r.id, r.value]));
}

interface RamLayout {
  pageSize: number;
  count: number;
  pages: { index: number; data: Uint8Array }[];
}

/** ram version 1: u32 page size | u32 page count | (u32 page index | page)*. */
export function parseRam(data: Uint8Array): RamLayout | null {
  if (data.length < 8) return null;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const pageSize = dv.getUint32(0, true);
  if (pageSize !== 4096 || (data.length - 8) % (4 + pageSize) !== 0) return null;
  const pages: RamLayout["pages"] = [];
  for (let o = 8; o < data.length; o += 4 + pageSize) {
    pages.push({ index: dv.getUint32(o, true), data: data.subarray(o + 4, o + 4 + pageSize) });
  }
  return { pageSize, count: dv.getUint32(4, true), pages };
}

export function encodeRam(r: RamLayout): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, r.pageSize >>> 0, true);
  new DataView(head.buffer).setUint32(4, r.count >>> 0, true);
  parts.push(head);
  for (const p of r.pages) {
    const idx = new Uint8Array(4);
    new DataView(idx.buffer).setUint32(0, p.index >>> 0, true);
    parts.push(idx, p.data);
  }
  return concatBytes(...parts);
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** One edit of a vCPU section's payload. */
function mutateVcpu(s: Section, rng: Rng): { data: Uint8Array; m: Mutation } {
  const v = parseVcpu(s.data);
  if (!v || v.regs.length === 0) return { data: mutateBytes(s.data, rng), m: { what: `${s.name}: bytes` } };
  const i = rng.int(v.regs.length);
  const idHex = Buffer.from(v.regs[i]!.id).reverse().toString("hex");
  switch (rng.int(9)) {
    case 0: {
      const n = rng.chance(0.7) ? 1 : rng.range(1, v.regs.length);
      v.regs.splice(i, n);
      return {
        data: encodeVcpu(v),
        m: {
          what: `${s.name}: ${n} register entries removed from 0x${idHex}`,
          incomplete: "register missing",
        },
      };
    }
    case 1:
      v.regs.splice(rng.int(v.regs.length + 1), 0, {
        id: v.regs[i]!.id,
        value: v.regs[i]!.value.slice().reverse(),
      });
      return {
        data: encodeVcpu(v),
        m: { what: `${s.name}: register 0x${idHex} listed twice`, incomplete: "register listed twice" },
      };
    case 2: {
      // another ID: a known one of another size, a random one, an ID with the size bits changed
      const id = v.regs[i]!.id.slice();
      const k = rng.int(3);
      if (k === 0) id.set(v.regs[rng.int(v.regs.length)]!.id);
      else if (k === 1) for (let b = 0; b < 8; b++) id[b] = rng.int(256);
      else id[6] = (id[6]! & 0x0f) | (rng.int(16) << 4);
      v.regs[i] = { id, value: v.regs[i]!.value };
      return {
        data: encodeVcpu(v),
        m: { what: `${s.name}: register 0x${idHex} given ID ${Buffer.from(id).reverse().toString("hex")}` },
      };
    }
    case 3: {
      const value = v.regs[i]!.value.slice();
      if (rng.chance(0.5))
        for (let b = 0; b < value.length; b++) value[b] = rng.chance(0.5) ? 0xff : rng.int(256);
      else value[rng.int(value.length)]! ^= 1 << rng.int(8);
      v.regs[i] = { id: v.regs[i]!.id, value };
      return { data: encodeVcpu(v), m: { what: `${s.name}: register 0x${idHex} value changed` } };
    }
    case 4:
      v.mp = rng.chance(0.5) ? rng.pick([0, 1, 2, 3, 5, 10, 11, 0xffffffff]) : interestingU32(rng);
      return { data: encodeVcpu(v), m: { what: `${s.name}: MP state ${v.mp}` } };
    case 5:
      v.wfx = rng.pick([0, 1, 2, 3, 0xffffffff]);
      return { data: encodeVcpu(v), m: { what: `${s.name}: wait state ${v.wfx}` } };
    case 6: {
      const count = rng.chance(0.5) ? v.regs.length + rng.pick([-1, 1, 2, -2]) : interestingU32(rng);
      return {
        data: encodeVcpu(v, count),
        m: { what: `${s.name}: register count ${count >>> 0} (${v.regs.length} listed)` },
      };
    }
    case 7: {
      // reorder
      const j = rng.int(v.regs.length);
      [v.regs[i], v.regs[j]] = [v.regs[j]!, v.regs[i]!];
      return { data: encodeVcpu(v), m: { what: `${s.name}: registers ${i} and ${j} swapped` } };
    }
    default:
      return { data: mutateBytes(s.data, rng), m: { what: `${s.name}: bytes` } };
  }
}

/** One edit of a RAM payload (a snapshot's 'ram' or a stream's 'ram.pages'). */
export function mutateRamPayload(s: Section, rng: Rng): { data: Uint8Array; m: Mutation } {
  const r = parseRam(s.data);
  if (!r) return { data: mutateBytes(s.data, rng), m: { what: `${s.name}: bytes` } };
  const nonZero = r.pages.filter((p) => !isZero(p.data));
  switch (rng.int(8)) {
    case 0:
      if (nonZero.length > 0) {
        const drop = rng.pick(nonZero);
        r.pages = r.pages.filter((p) => p !== drop);
        return {
          data: encodeRam(r),
          m: { what: `${s.name}: page ${drop.index} (not zero) removed`, incomplete: "RAM page missing" },
        };
      }
      break;
    case 1:
      if (nonZero.length > 0) {
        r.pages = r.pages.filter((p) => isZero(p.data));
        return {
          data: encodeRam(r),
          m: {
            what: `${s.name}: every page removed (${nonZero.length} not zero)`,
            incomplete: "RAM pages missing",
          },
        };
      }
      break;
    case 2:
      if (r.pages.length > 0) {
        const p = rng.pick(r.pages);
        p.index = rng.pick([r.count, r.count - 1, r.count + 1, 0xffffffff, rng.int(r.count), p.index ^ 1]);
        return { data: encodeRam(r), m: { what: `${s.name}: a page moved to index ${p.index >>> 0}` } };
      }
      break;
    case 3:
      r.count = rng.chance(0.5) ? r.count + rng.pick([-1, 1, r.count]) : interestingU32(rng);
      return { data: encodeRam(r), m: { what: `${s.name}: page count ${r.count >>> 0}` } };
    case 4:
      r.pageSize = rng.pick([0, 1, 2048, 8192, 65536, 4095, 0xffffffff]);
      return { data: encodeRam(r), m: { what: `${s.name}: page size ${r.pageSize >>> 0}` } };
    case 5:
      if (r.pages.length > 0) {
        const p = rng.pick(r.pages);
        r.pages.push({ index: p.index, data: p.data.slice().fill(0x5a, 0, 64) });
        return {
          data: encodeRam(r),
          m: { what: `${s.name}: page ${p.index} listed twice (the copies differ)` },
        };
      }
      break;
    case 6:
      if (r.pages.length > 0) {
        const p = rng.pick(r.pages);
        const d = p.data.slice();
        d[rng.int(d.length)]! ^= 1 << rng.int(8);
        p.data = d;
        return { data: encodeRam(r), m: { what: `${s.name}: a bit of page ${p.index} flipped` } };
      }
      break;
    default:
      break;
  }
  return { data: mutateBytes(s.data, rng), m: { what: `${s.name}: bytes` } };
}

/** One edit of one section's payload (JSON values, vCPU registers, RAM pages, or bytes). */
export function mutatePayload(s: Section, rng: Rng): { data: Uint8Array; m: Mutation } {
  if (rng.chance(0.1)) return { data: mutateBytes(s.data, rng), m: { what: `${s.name}: bytes` } };
  if (/^vcpu@/.test(s.name) && s.version >= 2) return mutateVcpu(s, rng);
  if (s.name === "ram" || s.name === "ram.pages") return mutateRamPayload(s, rng);
  if (isJsonSection(s)) {
    const value = JSON.parse(dec.decode(s.data)) as unknown;
    let v = value;
    const edits = rng.chance(0.8) ? 1 : rng.range(2, 4);
    for (let k = 0; k < edits; k++) v = mutateJson(v, rng);
    const text = JSON.stringify(v) ?? "null";
    return {
      data: enc.encode(text),
      m: { what: `${s.name}: JSON ${text.length > 300 ? `${text.slice(0, 300)}…` : text}` },
    };
  }
  return { data: mutateBytes(s.data, rng), m: { what: `${s.name}: bytes` } };
}

const LEGACY = ["gicv3", "pl011", "pl031", "virtio-mmio"];

/**
 * One edit of a section list: a payload, or the list itself. `names` are the names a
 * receiver knows (for renames that land on another real section).
 */
export function mutateSectionList(sections: Section[], rng: Rng): Mutation {
  if (sections.length === 0) {
    sections.push({ name: "machine", version: 1, data: enc.encode("{}") });
    return { what: "a section added to an empty list" };
  }
  const i = rng.int(sections.length);
  const s = sections[i]!;
  const k = rng.int(100);
  if (k < 62) {
    const { data, m } = mutatePayload(s, rng);
    sections[i] = { ...s, data };
    return m;
  }
  if (k < 70) {
    sections.splice(i, 1);
    return { what: `section '${s.name}' removed`, incomplete: `section '${s.name}' missing` };
  }
  if (k < 75) {
    sections.splice(rng.int(sections.length + 1), 0, { ...s, data: s.data.slice() });
    return { what: `section '${s.name}' duplicated`, incomplete: `section '${s.name}' twice` };
  }
  if (k < 80) {
    const j = rng.int(sections.length);
    [sections[i], sections[j]] = [sections[j]!, sections[i]!];
    return { what: `sections '${s.name}' and '${sections[i]!.name}' swapped` };
  }
  if (k < 88) {
    const version = rng.pick([0, 1, 2, 3, s.version + 1, s.version - 1, 0xffffffff, 0x80000000]);
    sections[i] = { ...s, version: version >>> 0 };
    return { what: `section '${s.name}' version ${version >>> 0}` };
  }
  if (k < 96) {
    const other = sections[rng.int(sections.length)]!.name;
    const name = rng.pick([
      other,
      s.name.split("@")[0]!,
      `${s.name}0`,
      rng.pick(LEGACY),
      "vcpu@99",
      "vcpu@-1",
      "vcpu@01",
      `${s.name.split("@")[0]}@${(rng.u32() & 0xffffff).toString(16)}`,
      "x",
    ]);
    sections[i] = { ...s, name };
    return { what: `section '${s.name}' renamed '${name}'` };
  }
  sections.splice(rng.int(sections.length + 1), 0, {
    name: rng.pick(["extra", "vcpu@7", "virtio-mmio@a000000", "gicv3@8000001", "ram2"]),
    version: 1,
    data: enc.encode(rng.chance(0.5) ? "{}" : JSON.stringify({ x: 1 })),
  });
  return { what: "a section added" };
}
