/**
 * The README's first command: `armbox run` with no arguments boots armbox's own Linux
 * (guests/linux, built by tools/linux/build-kernel.sh and make-initramfs.sh) to a shell on
 * the console; what is typed reaches it and `poweroff -f` ends armbox with status 0.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { test } from "node:test";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const guest = (f: string) => new URL(`../guests/linux/${f}`, import.meta.url).pathname;

test("the built-in Linux fits the budget: Image + initramfs at most 8 MiB", () => {
  const total = statSync(guest("Image")).size + statSync(guest("initrd.cpio.gz")).size;
  assert.ok(total <= 8 * 1024 * 1024, `${total} bytes`);
});

test("armbox run (no arguments) boots Linux to a shell that answers; poweroff -f exits 0", {
  timeout: 300_000,
}, async () => {
  const child = spawn(process.execPath, [ARMBOX, "run", "--deterministic"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const seen = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (re.test(out)) resolve();
        else if (child.exitCode !== null)
          reject(new Error(`exited before ${re}: ${err}\n${out.slice(-2000)}`));
        else setTimeout(check, 50);
      };
      check();
    });
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString("latin1");
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString("latin1");
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  try {
    await seen(/armbox# /);
    child.stdin.write("echo $((6*7)); nproc\n");
    await seen(/\n42\r?\n2\r?\n/);
    child.stdin.write("poweroff -f\n");
    assert.equal(await exited, 0, err);
    assert.match(err, /booting the built-in Linux/);
  } finally {
    child.kill("SIGKILL");
  }
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

test("on a terminal, Ctrl-A then x (typed apart) quits armbox, as QEMU's -nographic", {
  skip: !hasScript && "script(1) not installed (util-linux)",
  timeout: 300_000,
}, async () => {
  // script(1) gives armbox a pseudo-terminal, so stdin is a TTY in raw mode.
  const child = spawn("script", ["-qfec", `${process.execPath} ${ARMBOX} run --deterministic`, "/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString("latin1");
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  try {
    for (let i = 0; i < 6000 && !/armbox# /.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /armbox# /);
    child.stdin.write("\x01");
    await new Promise((r) => setTimeout(r, 200));
    child.stdin.write("x");
    assert.equal(await exited, 0);
    assert.match(out, /terminated \(Ctrl-A x\)/);
  } finally {
    child.kill("SIGKILL");
  }
});
