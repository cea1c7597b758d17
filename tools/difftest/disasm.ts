/** Disassembly of instruction words through aarch64-linux-gnu-objdump, when installed. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Returns one line per word ("" when objdump is unavailable). */
export function disassemble(words: readonly number[], vma = 0): string[] {
  if (words.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), "difftest-dis-"));
  try {
    const f = join(dir, "w.bin");
    const b = Buffer.alloc(words.length * 4);
    words.forEach((w, i) => {
      b.writeUInt32LE(w >>> 0, i * 4);
    });
    writeFileSync(f, b);
    const r = spawnSync(
      "aarch64-linux-gnu-objdump",
      ["-D", "-b", "binary", "-m", "aarch64", `--adjust-vma=0x${vma.toString(16)}`, f],
      { encoding: "utf8" },
    );
    if (r.status !== 0) return words.map(() => "");
    const out = words.map(() => "");
    for (const line of r.stdout.split("\n")) {
      const m = /^\s*([0-9a-f]+):\s+[0-9a-f]{8}\s+(.*)$/.exec(line);
      if (!m) continue;
      const i = (Number.parseInt(m[1]!, 16) - vma) / 4;
      if (i >= 0 && i < out.length) out[i] = m[2]!.replace(/\s+/g, " ").trim();
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
