/**
 * Runs guests/user/bench under armbox user in this (fresh) process and prints
 * {"ms":…,"insns":"…","stdout":"…"}: bench/run.ts starts it as a child so that nothing
 * else loaded in the parent skews the interpreter's type feedback.
 */
import { fileURLToPath } from "node:url";
import { UserProcess } from "../src/user/process.ts";

// The program path comes from the parent (this file may run bundled from elsewhere).
const BENCH = process.argv[2] ?? fileURLToPath(new URL("../guests/user/bin/bench", import.meta.url));
const jit = process.argv[3] === "jit";
let stdout = "";
const p = new UserProcess({
  jit,
  stdout: {
    write: (b: Uint8Array) => {
      stdout += Buffer.from(b).toString();
    },
  },
});
p.exec(BENCH, ["bench"], []);
const t0 = performance.now();
p.run();
const ms = performance.now() - t0;
const j = p.cpu.jit;
const report = j ? { ...j.stats, fraction: j.executed / Number(p.cpu.instructionCount) } : undefined;
process.stdout.write(JSON.stringify({ ms, insns: p.cpu.instructionCount.toString(), stdout, jit: report }));
