/** ELF loader and CLI error paths: bad input gives exit 2 and a clear message. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { ElfError, parseElf } from "../src/machine/elf.ts";
import { runProgram, UserProcess } from "../src/user/process.ts";
import { SYNC_TIMEOUT_MS } from "./support/children.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const hello = path.join(root, "guests/user/bin/hash");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "armbox-elf-"));

function runQuiet(file: string): { status: number; diag: string } {
  const lines: string[] = [];
  const status = runProgram(file, [file], {
    ramBytes: 64 << 20,
    diag: (l) => lines.push(l),
    stdout: { write() {} },
    stderr: { write() {} },
  });
  return { status, diag: lines.join("\n") };
}

test("a file that is not ELF is refused with exit 2", () => {
  const f = path.join(tmp, "text");
  fs.writeFileSync(f, "#!/bin/sh\necho hi\n");
  const r = runQuiet(f);
  assert.equal(r.status, 2);
  assert.match(r.diag, /not an ELF file/);
});

test("a truncated ELF is refused with exit 2", () => {
  const data = fs.readFileSync(hello);
  for (const n of [10, 63, 100, 4096]) {
    const f = path.join(tmp, `trunc${n}`);
    fs.writeFileSync(f, data.subarray(0, n));
    const r = runQuiet(f);
    assert.equal(r.status, 2, `truncated to ${n}`);
    assert.match(r.diag, /truncated/);
  }
});

test("an x86-64 ELF is refused with exit 2", () => {
  const data = Buffer.from(fs.readFileSync(hello));
  data.writeUInt16LE(62, 18);
  const f = path.join(tmp, "x86");
  fs.writeFileSync(f, data);
  const r = runQuiet(f);
  assert.equal(r.status, 2);
  assert.match(r.diag, /x86-64, not AArch64/);
});

test("a dynamically linked executable is refused", () => {
  // Build a minimal ELF header + one PT_INTERP program header by hand.
  const b = Buffer.alloc(64 + 56 + 32);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  b.writeUInt16LE(2, 16);
  b.writeUInt16LE(183, 18);
  b.writeUInt32LE(1, 20);
  b.writeUInt32LE(64, 32); // e_phoff
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(1, 56);
  b.writeUInt32LE(3, 64); // PT_INTERP
  b.writeUInt32LE(120, 64 + 8);
  b.writeUInt32LE(27, 64 + 32);
  b.write("/lib/ld-linux-aarch64.so.1\0", 120);
  assert.throws(() => parseElf(b), /dynamically linked.*ld-linux-aarch64/);
});

test("the CLI prints the error and exits 2", () => {
  const f = path.join(tmp, "cli-text");
  fs.writeFileSync(f, "hello");
  const r = spawnSync(process.execPath, [path.join(root, "bin/armbox.js"), "user", f], {
    encoding: "utf8",
    timeout: SYNC_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not an ELF file/);
});

test("parseElf never throws anything but ElfError on corrupted input", () => {
  const data = new Uint8Array(fs.readFileSync(hello).subarray(0, 8192));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(511), fc.nat(255)), { minLength: 1, maxLength: 8 }),
      fc.nat(8192),
      (edits, len) => {
        const d = data.slice(0, Math.max(len, 1));
        for (const [i, v] of edits) if (i < d.length) d[i] = v;
        try {
          parseElf(d);
        } catch (e) {
          assert.ok(e instanceof ElfError, String(e));
        }
      },
    ),
    { numRuns: 500 },
  );
});

test("the CLI runs a program with its arguments and returns its exit status", () => {
  const prog = path.join(root, "guests/user/bin/sys_basic");
  const r = spawnSync(process.execPath, [path.join(root, "bin/armbox.js"), "user", prog, "alpha", "--beta"], {
    encoding: "utf8",
    timeout: SYNC_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  assert.equal(r.status, 42);
  assert.equal(r.stdout, "alpha\n--beta\nauxv ok\nbrk ok\nmmap ok\naarch64\ndone\n");
  assert.match(r.stderr, /unsupported syscall 4000/);
});

test("/proc/self/exe names the program by its absolute path, whatever path ran it", () => {
  // glibc's static startup asserts that readlink("/proc/self/exe") is absolute.
  const p = new UserProcess({ cwd: root, stdout: { write() {} } });
  p.exec("guests/user/bin/hash", ["hash"], []);
  assert.equal(p.exePath, hello);
});
