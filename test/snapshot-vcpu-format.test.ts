/**
 * The vcpu@N section: version 2 is binary (u64 ID + value per register of the register
 * list); version 1 (JSON, hex strings) is still read. A vCPU section that does not parse is
 * refused naming the section and what is wrong.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { VirtMachine } from "../src/machine/virt.ts";
import { decodeSnapshot, parseJsonSection, type Section, SnapshotError } from "../src/vmm/snapshot/format.ts";
import {
  captureSections,
  configFromHeader,
  isLegacySnapshot,
  restoreSections,
} from "../src/vmm/snapshot/machine-state.ts";
import { SYNC_TIMEOUT_MS } from "./support/children.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const V1 = path.join(root, "test/fixtures/snapshots/seed-v1.snap");

function loadV1(): { m: VirtMachine; sections: Section[] } {
  const { header, sections } = decodeSnapshot(new Uint8Array(readFileSync(V1)));
  const m = new VirtMachine(configFromHeader(header));
  restoreSections(m, sections, { savedAt: header.savedAt, legacyFormat: isLegacySnapshot(header) });
  return { m, sections };
}

test("a version 1 (JSON) vCPU section restores every register and the MP state", () => {
  const { m, sections } = loadV1();
  for (const v of m.vcpus) {
    const s = sections.find((x) => x.name === `vcpu@${v.id}`)!;
    assert.equal(s.version, 1, "the fixture predates binary vCPU sections");
    const json = parseJsonSection(s) as { mp: number; regs: [string, string][] };
    assert.equal(v.getMpState(), json.mp);
    assert.ok(json.regs.length > 100);
    for (const [id, value] of json.regs)
      assert.equal(v.getOneReg(BigInt(id)), BigInt(value), `vcpu ${v.id} ${id}`);
  }
  // The seed scenario's vCPU 1 is powered off in that snapshot.
  assert.equal(m.vcpus[1]!.getMpState(), 5);
});

test("a machine restored from version 1 saves complete version 3 sections that restore identically", () => {
  const { m } = loadV1();
  const v2 = captureSections(m);
  for (const s of v2.filter((x) => x.name.startsWith("vcpu@"))) assert.equal(s.version, 3);
  const again = new VirtMachine(m.config);
  restoreSections(again, v2);
  for (const [a, b] of m.vcpus.map((v, i) => [v, again.vcpus[i]!] as const)) {
    assert.equal(b.getMpState(), a.getMpState());
    assert.equal(b.waiting, a.waiting);
    for (const id of a.getRegList()) assert.equal(b.getOneReg(id), a.getOneReg(id));
  }
});

test("the run from a version 1 snapshot prints what the build that wrote it printed", () => {
  const r = spawnSync(process.execPath, [path.join(root, "bin/armbox.js"), "run", "--restore", V1], {
    encoding: "utf8",
    timeout: SYNC_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, readFileSync(path.join(root, "test/fixtures/snapshots/seed-v1.out"), "utf8"));
});

test("a vCPU section that does not parse is refused naming the section", () => {
  const { m } = loadV1();
  const good = captureSections(m);
  const vcpu1 = good.find((s) => s.name === "vcpu@1")!;
  const cases: [string, Uint8Array, RegExp][] = [
    ["truncated", vcpu1.data.subarray(0, vcpu1.data.length - 3), /section 'vcpu@1': truncated at register/],
    [
      "trailing bytes",
      new Uint8Array([...vcpu1.data, 0]),
      /section 'vcpu@1': 1 bytes after the last register/,
    ],
    ["header only", vcpu1.data.subarray(0, 8), /section 'vcpu@1': truncated/],
  ];
  const badWait = vcpu1.data.slice();
  badWait[4] = 7;
  cases.push(["wait", badWait, /section 'vcpu@1': wait state is corrupt/]);
  const badMp = vcpu1.data.slice();
  badMp[0] = 2; // KVM_MP_STATE_UNINITIALIZED: x86 only
  cases.push(["mp", badMp, /section 'vcpu@1': MP state 2 is not valid on arm64/]);
  const badId = vcpu1.data.slice();
  new DataView(badId.buffer).setUint32(12, 0x1234, true); // first ID's low word: not in the list
  cases.push(["id", badId, /section 'vcpu@1': unknown register ID/]);
  for (const [what, data, re] of cases) {
    const sections = good.map((s) => (s === vcpu1 ? { ...s, data } : s));
    assert.throws(
      () => restoreSections(new VirtMachine(m.config), sections),
      (e: unknown) => e instanceof SnapshotError && re.test(e.message),
      what,
    );
  }
});
