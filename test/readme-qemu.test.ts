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
import { runSync, start } from "./support/children.ts";

const root = new URL("..", import.meta.url).pathname;

/** The commands of the first `sh` block after the heading `## For QEMU users` (continuations joined, comments dropped). */
function readmeQemuCommands(readme: string): string[] {
  const at = readme.indexOf("\n## For QEMU users\n");
  assert.ok(at >= 0, "the README has a 'For QEMU users' section");
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block, "with a sh block");
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

const commands = readmeQemuCommands(readFileSync(join(root, "README.md"), "utf8"));
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
