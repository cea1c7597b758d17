/**
 * Runs cases on the reference: the static harness (harness/) under qemu-aarch64, in
 * batches of a few hundred cases per process.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Case,
  type CaseResult,
  CODE_PAGE,
  MAX_WORDS,
  OUTCOMES,
  SB,
  WINDOW,
  WINDOW_SIZE,
  writeStateBlock,
} from "./layout.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const HARNESS_DIR = join(HERE, "harness");
const SOURCES = ["harness.c", "stubs.S", "layout.h"];

/** Default reference CPU per class: an Armv8.0 core, plus LSE (cortex-a76) for `lse`. */
export function defaultCpu(cls: string): string {
  return cls === "lse" ? "cortex-a76" : "cortex-a57";
}

/** Checks that harness/layout.h agrees with layout.ts. */
function checkLayout(): void {
  const h = readFileSync(join(HARNESS_DIR, "layout.h"), "utf8");
  const def = (name: string): number => {
    const m = new RegExp(`#define ${name} (\\S+)`).exec(h);
    if (!m) throw new Error(`layout.h: no ${name}`);
    return Number(m[1]!.replace(/UL$/, ""));
  };
  const want: [string, number][] = [
    ["CODE_PAGE", CODE_PAGE],
    ["WINDOW_SIZE", WINDOW_SIZE],
    ["MAX_WORDS", MAX_WORDS],
    ["SB_NZCV", SB.NZCV],
    ["SB_V", SB.V],
    ["SB_FPSR", SB.FPSR],
    ["SB_FPCR", SB.FPCR],
    ["SB_SIZE", SB.SIZE],
  ];
  for (const [n, v] of want)
    if (def(n) !== v) throw new Error(`layout.h ${n}=${def(n)} but layout.ts says ${v}`);
  if (WINDOW !== CODE_PAGE + 0x1000) throw new Error("layout.h assumes WINDOW = CODE_PAGE + 0x1000");
}

/** Builds the harness (cached by a hash of its sources) and returns its path. */
export function harnessPath(): string {
  checkLayout();
  const hash = createHash("sha256");
  for (const s of SOURCES) hash.update(readFileSync(join(HARNESS_DIR, s)));
  const dir = join(tmpdir(), "armbox-difftest");
  const out = join(dir, `harness-${hash.digest("hex").slice(0, 16)}.elf`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(
    "aarch64-linux-gnu-gcc",
    ["-O2", "-static", "-o", tmp, join(HARNESS_DIR, "harness.c"), join(HARNESS_DIR, "stubs.S")],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`building the harness failed:\n${r.stderr}${r.error ?? ""}`);
  spawnSync("mv", [tmp, out]);
  return out;
}

const CASE_IN = 4 + 4 * MAX_WORDS + SB.SIZE + WINDOW_SIZE;
const CASE_OUT = 16 + SB.SIZE + WINDOW_SIZE;

function encodeBatch(cases: readonly Case[]): Buffer {
  const buf = Buffer.alloc(8 + CASE_IN * cases.length);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint32(0, 0x31544441, true);
  dv.setUint32(4, cases.length, true);
  let off = 8;
  for (const c of cases) {
    dv.setUint32(off, c.words.length, true);
    c.words.forEach((w, i) => {
      dv.setUint32(off + 4 + 4 * i, w >>> 0, true);
    });
    off += 4 + 4 * MAX_WORDS;
    writeStateBlock(c.state, dv, off);
    off += SB.SIZE;
    buf.set(c.state.mem, off);
    off += WINDOW_SIZE;
  }
  return buf;
}

function decodeResults(out: Buffer, n: number): CaseResult[] {
  if (out.length !== n * CASE_OUT)
    throw new Error(`harness returned ${out.length} bytes, expected ${n * CASE_OUT}`);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const res: CaseResult[] = [];
  for (let k = 0; k < n; k++) {
    const o = k * CASE_OUT;
    const code = dv.getUint32(o, true);
    const x = new Uint32Array(62);
    for (let i = 0; i < 62; i++) x[i] = dv.getUint32(o + 16 + SB.X + 4 * i, true);
    const v = new Uint8Array(out.subarray(o + 16 + SB.V, o + 16 + SB.V + 512));
    res.push({
      outcome: OUTCOMES[code] ?? "other",
      pcIndex: dv.getUint32(o + 4, true),
      x,
      v,
      nzcv: dv.getUint32(o + 16 + SB.NZCV, true) & 0xf0000000,
      fpsr: dv.getUint32(o + 16 + SB.FPSR, true),
      mem: new Uint8Array(out.subarray(o + 16 + SB.SIZE, o + CASE_OUT)),
      note: code === 4 ? `signal ${dv.getUint32(o + 8, true)} code ${dv.getUint32(o + 12, true)}` : undefined,
    });
  }
  return res;
}

function runBatch(path: string, cpu: string, cases: readonly Case[]): Promise<CaseResult[]> {
  return new Promise((resolve, reject) => {
    const p = spawn("qemu-aarch64", ["-cpu", cpu, path], { stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let err = "";
    p.stdout.on("data", (d: Buffer) => chunks.push(d));
    p.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`qemu-aarch64 harness exited with ${code}: ${err}`));
      try {
        resolve(decodeResults(Buffer.concat(chunks), cases.length));
      } catch (e) {
        reject(e);
      }
    });
    p.stdin.on("error", () => {}); // the exit code and stderr tell what happened
    p.stdin.end(encodeBatch(cases));
  });
}

/** Runs `cases` on qemu-aarch64 -cpu `cpu`, `batch` cases per process, `jobs` processes at a time. */
export async function runOnQemu(
  cases: readonly Case[],
  cpu: string,
  batch = 400,
  jobs = 2,
): Promise<CaseResult[]> {
  const path = harnessPath();
  const parts: Case[][] = [];
  for (let i = 0; i < cases.length; i += batch) parts.push(cases.slice(i, i + batch));
  const results: CaseResult[][] = new Array(parts.length);
  let next = 0;
  const worker = async () => {
    while (next < parts.length) {
      const k = next++;
      results[k] = await runBatch(path, cpu, parts[k]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, parts.length) }, worker));
  return results.flat();
}
