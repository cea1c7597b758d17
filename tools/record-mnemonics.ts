/**
 * Records what GNU objdump (binutils' aarch64 disassembler, a reference nobody here wrote)
 * prints as the mnemonic of a set of A64 words, for test/decode-table.test.ts: every word
 * of the recorded QEMU vectors, a few listed words (LISTED_WORDS) and seeded random words.
 * Run where binutils-aarch64 is installed:
 * `npx tsx tools/record-mnemonics.ts [--random N] [--out FILE]`; CI runs it again and
 * compares (`--check`).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { xorshift32 as xorshift } from "./difftest/prng.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const VECTORS = join(ROOT, "test/vectors");
export const MNEMONICS_FIXTURE = join(ROOT, "test/fixtures/a64-mnemonics.txt.gz");

/**
 * Words recorded besides the vectors and the random ones: instructions neither is likely
 * to hold, so that every feature has a recorded word (decode-table.test.ts's feature gate).
 * LDAPR, LDAPRB, LDAPRH (FEAT_LRCPC; the QEMU the vectors come from has no LRCPC test).
 */
export const LISTED_WORDS: readonly number[] = [0xf8bfc020, 0xb8bfc020, 0x38bfc020, 0x78bfc020];

export function collectWords(random: number): number[] {
  const set = new Set<number>(LISTED_WORDS);
  for (const f of readdirSync(VECTORS).sort()) {
    if (!f.endsWith(".jsonl.gz")) continue;
    for (const line of gunzipSync(readFileSync(join(VECTORS, f)))
      .toString("utf8")
      .split("\n")) {
      if (!line.startsWith('{"s"')) continue;
      for (const w of JSON.parse(line).w as string[]) set.add(Number.parseInt(w, 16) >>> 0);
    }
  }
  const next = xorshift(0x5eed_a64);
  for (let i = 0; i < random; i++) set.add(next());
  return [...set].sort((a, b) => a - b);
}

/** objdump's mnemonic for each word ("" when it prints none: `.inst` or undefined). */
export function objdumpMnemonics(words: readonly number[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "armbox-mn-"));
  try {
    const bin = Buffer.alloc(words.length * 4);
    for (let i = 0; i < words.length; i++) bin.writeUInt32LE(words[i]!, i * 4);
    const file = join(dir, "w.bin");
    writeFileSync(file, bin);
    const out = execFileSync("aarch64-linux-gnu-objdump", ["-D", "-b", "binary", "-m", "aarch64", file], {
      maxBuffer: 1 << 30,
      encoding: "utf8",
    });
    const res = new Array<string>(words.length).fill("");
    for (const line of out.split("\n")) {
      const m = /^\s*([0-9a-f]+):\t([0-9a-f]{8}) \t(\S+)/.exec(line);
      if (!m) continue;
      const i = Number.parseInt(m[1]!, 16) / 4;
      const mn = m[3]!;
      res[i] = mn === ".inst" || mn.startsWith("<") ? "" : mn;
    }
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function readFixture(file = MNEMONICS_FIXTURE): Map<number, string> {
  const map = new Map<number, string>();
  for (const line of gunzipSync(readFileSync(file)).toString("utf8").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [w, mn] = line.split(" ");
    map.set(Number.parseInt(w!, 16) >>> 0, mn ?? "");
  }
  return map;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const ri = args.indexOf("--random");
  const random = ri >= 0 ? Number(args[ri + 1]) : 200_000;
  const oi = args.indexOf("--out");
  const out = oi >= 0 ? args[oi + 1]! : MNEMONICS_FIXTURE;
  const words = collectWords(random);
  const mns = objdumpMnemonics(words);
  const version = execFileSync("aarch64-linux-gnu-objdump", ["--version"], { encoding: "utf8" }).split(
    "\n",
  )[0];
  const text = `# ${version}; ${words.length} words (vectors + ${LISTED_WORDS.length} listed + ${random} random, seed 0x5eeda64)\n${words
    .map((w, i) => `${w.toString(16).padStart(8, "0")} ${mns[i]}`)
    .join("\n")}\n`;
  if (args.includes("--check")) {
    const old = readFixture();
    let diff = 0;
    words.forEach((w, i) => {
      if (old.get(w) !== mns[i]) diff++;
    });
    console.log(`objdump vs recorded mnemonics: ${words.length} words, ${diff} differ`);
    process.exit(diff === 0 ? 0 : 1);
  }
  writeFileSync(out, gzipSync(text, { level: 9 }));
  console.log(`${words.length} words recorded in ${out}`);
}
