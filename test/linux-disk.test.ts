/**
 * virtio-blk under Linux: an ext4 image made on the host with mkfs.ext4 is mounted
 * read-write by Debian's kernel; a file written and synced in the guest is in the image
 * after poweroff (read back with debugfs), and fsck.ext4 -n finds it clean. Then a QMP
 * snapshot taken (VM stopped) while the guest writes in a loop is restored in a fresh
 * process on the same image; the restored guest carries on, unmounts and powers off, and
 * the filesystem is clean.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import { runSync } from "./support/children.ts";
import { boot, engine, requireFiles, skipUnlessCi, testTimeoutMs } from "./support/linux.ts";

const tools = spawnSync("mkfs.ext4", ["-V"]).status === 0 && spawnSync("debugfs", ["-V"]).status === 0;
const skip =
  engine === "qemu"
    ? "armbox only"
    : !tools && !process.env.CI
      ? "mkfs.ext4/debugfs not installed (e2fsprogs)"
      : skipUnlessCi();

/** A temporary directory removed when the test `t` ends. */
function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
function makeDisk(dir: string): string {
  const img = join(dir, "disk.img");
  const r = runSync("mkfs.ext4", ["-q", "-F", img, "16M"]);
  assert.equal(r.status, 0, r.stderr);
  return img;
}
const fsck = (img: string) => runSync("fsck.ext4", ["-n", "-f", img]);
const guestFile = (img: string, path: string) => runSync("debugfs", ["-R", `cat ${path}`, img]).stdout;
const APPEND = "console=ttyAMA0 panic=-1 armbox.test=shell";

test("Linux: ext4 on virtio-blk, a file written and synced in the guest is on the host image; fsck clean", {
  skip,
  timeout: testTimeoutMs,
}, async (t) => {
  requireFiles();
  const img = makeDisk(tempDir(t, "armbox-disk-"));
  const r = await boot(
    { smp: 1, append: APPEND, args: ["--drive", `file=${img}`], name: "disk" },
    async (b) => {
      await b.waitFor("ARMBOX-SHELL");
      b.send(
        "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo written-by-armbox-guest > /mnt/hello.txt && sync && umount /mnt && echo W-$((6*7))\n",
      );
      await b.waitFor(/\nW-42/);
      b.send("poweroff -f\n");
      return undefined;
    },
  );
  assert.equal(r.exit.code, 0, r.stderr);
  assert.equal(guestFile(img, "/hello.txt"), "written-by-armbox-guest\n");
  const f = fsck(img);
  assert.equal(f.status, 0, f.stdout + f.stderr);
});

test("Linux: a snapshot taken while the guest writes in a loop restores to a consistent filesystem", {
  skip,
  timeout: testTimeoutMs * 2,
}, async (t) => {
  requireFiles();
  const dir = tempDir(t, "armbox-disk-snap-");
  const img = makeDisk(dir);
  const sock = join(dir, "qmp.sock");
  const snap = join(dir, "vm.snap");
  const drive = ["--drive", `file=${img}`];
  await boot(
    { smp: 2, append: APPEND, args: [...drive, "--qmp", `unix:${sock}`], name: "disk-src" },
    async (b) => {
      await b.waitFor("ARMBOX-SHELL");
      b.send(
        "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && (i=0; while [ ! -e /stop ]; do i=$((i+1)); echo line $i >> /mnt/log.txt; [ $((i % 20)) = 0 ] && sync && echo S-$i; done; echo END-$((1+1))) &\n",
      );
      await b.waitFor(/\nS-100\b/);
      const q = await QmpClient.connect(`unix:${sock}`);
      try {
        await q.execute("stop");
        await q.execute("snapshot-save", { file: snap });
        await q.execute("quit").catch(() => {});
      } finally {
        await q.close();
      }
      return "stop";
    },
  );
  const r = await boot(
    { smp: 2, append: "", runArgs: ["--restore", snap, ...drive], name: "disk-dst" },
    async (b) => {
      // The loop runs on: more synced rounds after the restore, then stop it and shut down.
      const at = b.transcript.length;
      await b.waitFor(/\nS-\d+/, at);
      b.send("touch /stop\n");
      // The background loop may print END-2 right after the prompt of "touch /stop".
      await b.waitFor(/END-2\b/, at);
      b.send("sync; umount /mnt && echo U-$((8*8))\n");
      await b.waitFor(/\nU-64/, at);
      b.send("poweroff -f\n");
      return undefined;
    },
  );
  assert.equal(r.exit.code, 0, r.stderr);
  const f = fsck(img);
  assert.equal(f.status, 0, f.stdout + f.stderr);
  const log = guestFile(img, "/log.txt").trim().split("\n");
  assert.ok(log.length >= 100, `${log.length} lines`);
  for (const [i, l] of log.entries()) assert.equal(l, `line ${i + 1}`, "every line once, in order");
});
