/**
 * The README's "For QEMU users" block, run as written (issue 11): each command of its
 * first `sh` block in order, by bash, in a scratch directory that holds `bin` and `guests`
 * (links to this checkout), as a user would paste them. The Linux one is a shell: what the
 * README says it has (the disk as /dev/vda, the virtio RNG) is checked there, then it is
 * powered off.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type Child, runSync, start } from "./support/children.ts";
import { until } from "./support/events.ts";

const root = new URL("..", import.meta.url).pathname;

/**
 * The commands of the `sh` block number `n` after the heading `## For QEMU users`
 * (continuations joined, comment lines dropped; a trailing comment stays: bash ignores it).
 */
function readmeQemuCommands(readme: string, n: number): string[] {
  const at = readme.indexOf("\n## For QEMU users\n");
  assert.ok(at >= 0, "the README has a 'For QEMU users' section");
  const section = readme.slice(at, readme.indexOf("\n## ", at + 1));
  const block = [...section.matchAll(/```sh\n([\s\S]*?)```/g)][n];
  assert.ok(block, `with sh block ${n + 1}`);
  const out: string[] = [];
  let cur = "";
  for (const line of block[1]!.split("\n")) {
    const l = line.trim();
    if (cur === "" && (l === "" || l.startsWith("#"))) continue;
    if (l.endsWith("\\")) cur += `${l.slice(0, -1)} `;
    else {
      out.push(cur + l);
      cur = "";
    }
  }
  return out;
}

const readme = readFileSync(join(root, "README.md"), "utf8");
const commands = readmeQemuCommands(readme, 0);
const migration = readmeQemuCommands(readme, 1);
const dir = mkdtempSync(join(tmpdir(), "armbox-readme-qemu-"));
symlinkSync(join(root, "bin"), join(dir, "bin"));
symlinkSync(join(root, "guests"), join(dir, "guests"));
after(() => rmSync(dir, { recursive: true, force: true }));
const hasDtc = spawnSync("dtc", ["--version"]).status === 0;

test("the block has the commands this test knows how to check", () => {
  assert.equal(commands.length, 4, commands.join("\n"));
  assert.match(commands[0]!, /hotplug\.elf/);
  assert.match(commands[1]!, /^truncate /);
  assert.match(commands[2]!, /guests\/linux\/Image.*virtio-blk-device/);
  assert.match(commands[3]!, /dumpdtb=virt\.dtb/);
});

test("README, For QEMU users: each command as written", { timeout: 600_000 }, async (t) => {
  // The demo guest: every vCPU up and down, then RESULT: PASS and SYSTEM_OFF (status 0).
  const demo = runSync("bash", ["-c", commands[0]!], { cwd: dir });
  assert.equal(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /RESULT: PASS/);
  const disk = runSync("bash", ["-c", commands[1]!], { cwd: dir });
  assert.equal(disk.status, 0, disk.stderr);
  // Linux: a shell where the disk is /dev/vda (64 MiB: 131072 sectors) and the RNG is virtio's.
  const linux = start(t, "bash", ["-c", commands[2]!], { cwd: dir });
  await linux.waitFor(/armbox# /);
  linux.send("echo SECTORS=$(cat /sys/block/vda/size) RNG=$(cat /sys/class/misc/hw_random/rng_current)\n");
  await linux.waitFor(/SECTORS=131072 RNG=virtio_rng\.0/);
  linux.send("poweroff -f\n");
  assert.equal((await linux.exited).code, 0, linux.stderr);
  // dumpdtb: the tree is written and nothing runs.
  const dtb = runSync("bash", ["-c", commands[3]!], { cwd: dir });
  assert.equal(dtb.status, 0, dtb.stderr);
  assert.equal(dtb.stdout, "");
  assert.ok(existsSync(join(dir, "virt.dtb")));
  if (hasDtc) {
    const d = runSync("dtc", ["-I", "dtb", "-O", "dts", join(dir, "virt.dtb")]);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, /compatible = "arm,gic-v3"/);
    assert.equal((d.stdout.match(/enable-method = "psci"/g) ?? []).length, 2);
    assert.match(d.stdout, /virtio,mmio/);
  }
});

test("README, For QEMU users: the migration block as written", { timeout: 600_000 }, async (t) => {
  assert.equal(migration.length, 9, migration.join("\n"));
  const file = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : "");
  const ticks = (s: string) => [...s.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
  // A command ending in & runs in the background: here a child of the test (killed with it).
  const background = (cmd: string): Child => {
    assert.match(cmd, /&$/, cmd);
    return start(t, "bash", ["-c", `exec ${cmd.replace(/&$/, "")}`], { cwd: dir });
  };
  const qmp = (cmd: string) => {
    assert.match(cmd, /^node bin\/armbox\.js qmp /, cmd);
    return runSync("bash", ["-c", cmd], { cwd: dir });
  };
  const a = background(migration[0]!);
  const b = background(migration[1]!);
  await b.waitFor(/waiting for an incoming migration on unix:b\.mig/, 0, "stderr");
  await until(() => /tick 3\b/.test(file("a.log")), "a's guest counting");
  // migrate follows the migration: progress on stderr, the result on stdout, status 0.
  const m1 = qmp(migration[2]!);
  assert.equal(m1.status, 0, m1.stderr);
  assert.equal(JSON.parse(m1.stdout).status, "completed", m1.stdout);
  assert.match(m1.stderr, /migrate: completed, .* MiB sent, .* expected downtime/);
  const st = qmp(migration[3]!);
  assert.deepEqual(JSON.parse(st.stdout), { running: false, singlestep: false, status: "postmigrate" });
  assert.equal(qmp(migration[4]!).status, 0);
  assert.equal((await a.exited).code, 0, a.stderr);
  const last = ticks(file("a.log")).at(-1)!;
  await until(() => ticks(file("b.log")).includes(last + 2), "b's guest counting on");
  // C is built differently (-m 128) and deferred; b's migration to it is refused naming the
  // memory size, and b runs on.
  const c = background(migration[5]!);
  await c.waitFor(/waiting for QMP migrate-incoming/, 0, "stderr");
  const mi = qmp(migration[6]!);
  assert.equal(mi.status, 0, mi.stderr);
  await c.waitFor(/waiting for an incoming migration on unix:c\.mig/, 0, "stderr");
  const m2 = qmp(migration[7]!);
  assert.equal(m2.status, 1, m2.stdout);
  assert.match(m2.stdout, /"status":"failed"/);
  assert.match(m2.stdout, /memory size/);
  assert.match(m2.stderr, /migrate: failed: .*--memory 64M.*--memory 128M/);
  assert.equal((await c.exited).code, 1);
  assert.match(c.stderr, /incoming migration failed: .*memory size/);
  const n = ticks(file("b.log")).at(-1)!;
  await until(() => ticks(file("b.log")).includes(n + 2), "b running on after the refusal");
  assert.equal(qmp(migration[8]!).status, 0);
  assert.equal((await b.exited).code, 0, b.stderr);
  // One count across a and b: no gap, no repeat.
  const all = [...ticks(file("a.log")), ...ticks(file("b.log"))];
  for (let i = 1; i < all.length; i++)
    assert.equal(all[i], all[i - 1]! + 1, `tick ${all[i - 1]} then ${all[i]}`);
});
