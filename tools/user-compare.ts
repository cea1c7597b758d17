/**
 * Compares `armbox user` against qemu-aarch64, live, for every program in guests/user/bin
 * (stdout and exit status), and reports the time each took. Used by CI.
 *   npx tsx tools/user-compare.ts [--update] [NAME...]
 * --update rewrites guests/user/expected/NAME.out from qemu-aarch64.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { runProgram } from "../src/user/process.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const guestDir = path.join(root, "guests/user");
const ARGS: Record<string, string[]> = { strings: ["one", "two words", ""], sys_basic: ["alpha", "beta"] };
const qemu = process.env.QEMU_AARCH64 ?? "qemu-aarch64";

const argv = process.argv.slice(2);
const update = argv.includes("--update");
const names = argv.filter((a) => !a.startsWith("--"));
const all = fs
  .readdirSync(path.join(guestDir, "bin"))
  .filter((f) => !f.startsWith("."))
  .sort();
const selected = names.length > 0 ? names : all;

let failures = 0;
for (const name of selected) {
  const bin = path.join(guestDir, "bin", name);
  const args = ARGS[name] ?? [];
  const t0 = performance.now();
  const q = spawnSync(qemu, [bin, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
  const tq = performance.now() - t0;
  if (q.error) {
    console.error(`cannot run ${qemu}: ${q.error.message}`);
    process.exit(2);
  }
  const status0 = q.status ?? 128 + (q.signal ? (os.constants.signals[q.signal] ?? 0) : 0);
  const want = `${q.stdout}--- exit ${status0}\n`;
  if (update) fs.writeFileSync(path.join(guestDir, "expected", `${name}.out`), want);
  const out: Uint8Array[] = [];
  const err: string[] = [];
  const t1 = performance.now();
  const status = runProgram(bin, [bin, ...args], {
    ramBytes: 256 << 20,
    env: ["PATH=/usr/bin:/bin", "LANG=C"],
    stdout: { write: (b) => out.push(b) },
    stderr: { write: (b) => err.push(Buffer.from(b).toString("utf8")) },
    diag: (l) => err.push(`${l}\n`),
  });
  const ta = performance.now() - t1;
  const got = `${Buffer.concat(out).toString("utf8")}--- exit ${status}\n`;
  const ok = got === want;
  if (!ok) failures++;
  console.log(
    `${ok ? "PASS" : "FAIL"} ${name.padEnd(10)} armbox ${ta.toFixed(0).padStart(6)} ms   qemu ${tq.toFixed(0).padStart(5)} ms`,
  );
  if (!ok) {
    const w = want.split("\n");
    const g = got.split("\n");
    for (let i = 0; i < Math.max(w.length, g.length); i++) {
      if (w[i] !== g[i]) {
        console.log(`  first difference at line ${i + 1}:\n    qemu:   ${w[i]}\n    armbox: ${g[i]}`);
        break;
      }
    }
    for (const l of err.join("").split("\n").slice(0, 5)) if (l) console.log(`  ${l}`);
  }
}
console.log(`user-compare: ${selected.length - failures} passed, ${failures} failed`);
process.exitCode = failures === 0 ? 0 : 1;
