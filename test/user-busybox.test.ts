/**
 * Debian's busybox-static under the user-mode runner. Skipped unless the binary is
 * present (tools/busybox-compare.sh fetches it into the cache directory).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { runProgram } from "../src/user/process.ts";

const cache =
  process.env.ARMBOX_CACHE ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "armbox");
const bb = process.env.ARMBOX_BUSYBOX ?? path.join(cache, "busybox-static/bin/busybox");
const skip = fs.existsSync(bb) ? false : `busybox not found at ${bb} (run tools/busybox-compare.sh)`;

function busybox(...args: string[]): { status: number; out: string } {
  const out: Uint8Array[] = [];
  const status = runProgram(bb, ["busybox", ...args], {
    ramBytes: 256 << 20,
    env: ["PATH=/bin:/usr/bin", "LANG=C"],
    stdout: { write: (b) => out.push(b) },
    stderr: { write() {} },
    diag: () => {},
  });
  return { status, out: Buffer.concat(out).toString("utf8") };
}

test("busybox echo, expr, printf", { skip }, () => {
  assert.deepEqual(busybox("echo", "hello", "world"), { status: 0, out: "hello world\n" });
  assert.deepEqual(busybox("expr", "7", "*", "6"), { status: 0, out: "42\n" });
  assert.deepEqual(busybox("printf", "%f %x %s\\n", "3.14159", "255", "ok"), {
    status: 0,
    out: "3.141590 ff ok\n",
  });
});

test("busybox sha256sum and sort of files", { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "armbox-bb-"));
  const f = path.join(dir, "words");
  fs.writeFileSync(f, "pear\napple\nfig\n");
  const want = createHash("sha256").update("pear\napple\nfig\n").digest("hex");
  assert.deepEqual(busybox("sha256sum", f), { status: 0, out: `${want}  ${f}\n` });
  assert.deepEqual(busybox("sort", f), { status: 0, out: "apple\nfig\npear\n" });
  fs.rmSync(dir, { recursive: true });
});

test("busybox sh: loop, pipeline, command substitution, exit status", { skip }, () => {
  assert.deepEqual(busybox("sh", "-c", "i=0; while [ $i -lt 10000 ]; do i=$((i+1)); done; echo $i"), {
    status: 0,
    out: "10000\n",
  });
  assert.deepEqual(busybox("sh", "-c", 'echo one | tr a-z A-Z; x=$(echo sub); echo "got $x"; exit 3'), {
    status: 3,
    out: "ONE\ngot sub\n",
  });
});
