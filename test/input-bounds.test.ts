/**
 * Issue 9, defect 3: file inputs were read without a bound (`--kernel /dev/zero` grew past
 * 3 GiB with no message; so did --initrd, --dtb, --restore and `armbox user`). Each is now
 * checked to be a regular file within what its target can hold, before a byte is read.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { InputFileError, readInputFile, readInputFileAsync } from "../src/vmm/host/input-file.ts";
import { runSync } from "./support/children.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;

const BOUND = { maxBytes: 1 << 20, limit: "the test's 1 MiB" };

function scratch(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), "armbox-input-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("readInputFile: a character device, a directory, a FIFO are refused before a byte is read", (t) => {
  const dir = scratch(t);
  const fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  const cases: [string, RegExp][] = [
    ["/dev/zero", /^kernel \/dev\/zero: a character device, not a regular file$/],
    [dir, /a directory, not a regular file$/],
    // Opened without blocking: a FIFO nobody writes to does not hang the open.
    [fifo, /a FIFO, not a regular file$/],
    [join(dir, "absent"), /: no such file$/],
  ];
  for (const [file, why] of cases) {
    assert.throws(
      () => readInputFile("kernel", file, BOUND),
      (e: unknown) => {
        assert.ok(e instanceof InputFileError, String(e));
        assert.match(e.message, why);
        return true;
      },
    );
  }
});

test("readInputFile: a file larger than the bound is refused naming its size and the bound", (t) => {
  const file = join(scratch(t), "big");
  fs.writeFileSync(file, "");
  fs.truncateSync(file, (1 << 20) + 1); // sparse: nothing is written, nothing should be read
  assert.throws(
    () => readInputFile("initrd", file, BOUND),
    /^InputFileError: initrd .*big: 1\.0 MiB, more than the test's 1 MiB \(1 MiB\)$/,
  );
  fs.truncateSync(file, 1 << 20);
  assert.equal(readInputFile("initrd", file, BOUND).length, 1 << 20, "exactly the bound is accepted");
});

test("readInputFile: a file that grows past its stat'ed size while read is refused", () => {
  // /proc files stat as empty regular files and then yield bytes: the read stops at the
  // checked size and the one byte past it shows the growth.
  assert.throws(
    () => readInputFile("dtb", "/proc/self/status", BOUND),
    /dtb \/proc\/self\/status: grew while/,
  );
});

test("readInputFileAsync: the same refusals, without blocking the event loop", async (t) => {
  await assert.rejects(
    readInputFileAsync("snapshot", "/dev/zero", BOUND),
    /a character device, not a regular/,
  );
  const file = join(scratch(t), "s");
  fs.writeFileSync(file, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...(await readInputFileAsync("snapshot", file, BOUND))], [1, 2, 3]);
});

test("--kernel /dev/zero grows past 3 GiB with no message (and --initrd, --dtb, --restore, armbox user)", (t) => {
  const dir = scratch(t);
  const big = join(dir, "big");
  fs.writeFileSync(big, "");
  fs.truncateSync(big, 17 << 20);
  const cases: [string[], RegExp][] = [
    [
      ["run", "--kernel", "/dev/zero"],
      /^armbox: kernel \/dev\/zero: a character device, not a regular file$/,
    ],
    [["run", "--initrd", "/dev/zero"], /^armbox: initrd \/dev\/zero: a character device/],
    [["run", "--dtb", "/dev/zero"], /^armbox: dtb \/dev\/zero: a character device/],
    [["run", "--restore", "/dev/zero"], /^armbox: snapshot \/dev\/zero: a character device/],
    [["user", "/dev/zero"], /^armbox: \/dev\/zero: not a regular file/],
    // Larger than the guest RAM it would be loaded into.
    [["run", "--memory", "16M", "--kernel", big], /^armbox: kernel .*big: 17 MiB, more than the guest RAM/],
    [["run", "--dtb", big], /^armbox: dtb .*big: 17 MiB, more than the 2 MiB a device tree may have/],
  ];
  for (const [args, why] of cases) {
    const r = runSync(process.execPath, [ARMBOX, ...args]);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr.trim(), why, args.join(" "));
  }
});

test("--incoming file:/dev/zero is refused at once, naming the file (the file: target read without a bound)", () => {
  const r = runSync(process.execPath, [ARMBOX, "run", "--incoming", "file:/dev/zero"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /incoming migration failed: migration stream \/dev\/zero: a character device, not a regular file/,
  );
});
