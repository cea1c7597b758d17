/**
 * armbox run --stop-at/--save/--restore/--state-digest across processes: the digest after
 * N+M instructions uninterrupted equals the digest after N, save, restore in a fresh
 * process, M; a truncated snapshot is refused with a message and exit status 2.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runSync } from "./support/children.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const GUEST = new URL("../guests/baremetal/bin/sgi-pingpong.elf", import.meta.url).pathname;
const run = (...args: string[]) => runSync(process.execPath, [ARMBOX, "run", ...args]);
const digest = (out: string) => /state-digest: ([0-9a-f]{64})/.exec(out)?.[1];
const tmp = mkdtempSync(join(tmpdir(), "armbox-snap-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("save at N, restore in a new process, run M: same digest as N+M straight", () => {
  const base = ["--kernel", GUEST, "--smp", "4", "--deterministic"];
  const straight = run(...base, "--stop-at", "250000", "--state-digest");
  assert.equal(straight.status, 0, straight.stderr);
  const file = join(tmp, "a.snap");
  const saved = run(...base, "--stop-at", "90000", "--save", file);
  assert.equal(saved.status, 0, saved.stderr);
  const restored = run("--restore", file, "--stop-at", "160000", "--state-digest");
  assert.equal(restored.status, 0, restored.stderr);
  assert.ok(digest(straight.stdout));
  assert.equal(digest(restored.stdout), digest(straight.stdout));

  const bytes = readFileSync(file);
  const cut = join(tmp, "cut.snap");
  writeFileSync(cut, bytes.subarray(0, bytes.length - 7));
  const bad = run("--restore", cut);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /snapshot .*cut\.snap: /);
  assert.equal(bad.stdout, "", "nothing ran");
});
