/**
 * The README's first command: `armbox run` with no arguments boots armbox's own Linux
 * (guests/linux, built by tools/linux/build-kernel.sh and make-initramfs.sh) to a shell on
 * the console; what is typed reaches it and `poweroff -f` ends armbox with status 0.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { test } from "node:test";
import { start } from "./support/children.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const guest = (f: string) => new URL(`../guests/linux/${f}`, import.meta.url).pathname;

test("the built-in Linux fits the budget: Image + initramfs at most 8 MiB", () => {
  const total = statSync(guest("Image")).size + statSync(guest("initrd.cpio.gz")).size;
  assert.ok(total <= 8 * 1024 * 1024, `${total} bytes`);
});

test("armbox run (no arguments) boots Linux to a shell that answers; poweroff -f exits 0", {
  timeout: 300_000,
}, async (t) => {
  const child = start(t, process.execPath, [ARMBOX, "run", "--deterministic"]);
  await child.waitFor(/armbox# /);
  child.send("echo $((6*7)); nproc\n");
  await child.waitFor(/\n42\r?\n2\r?\n/);
  child.send("poweroff -f\n");
  assert.equal((await child.exited).code, 0, child.stderr);
  assert.match(child.stderr, /booting the built-in Linux/);
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

test("on a terminal, Ctrl-A then x (typed apart) quits armbox, as QEMU's -nographic", {
  skip: !hasScript && "script(1) not installed (util-linux)",
  timeout: 300_000,
}, async (t) => {
  // script(1) gives armbox a pseudo-terminal, so stdin is a TTY in raw mode.
  const child = start(t, "script", [
    "-qfec",
    `${process.execPath} ${ARMBOX} run --deterministic`,
    "/dev/null",
  ]);
  await child.waitFor(/armbox# /);
  child.send("\x01");
  await new Promise((r) => setTimeout(r, 200));
  child.send("x");
  assert.equal((await child.exited).code, 0);
  assert.match(child.stdout, /terminated \(Ctrl-A x\)/);
});
