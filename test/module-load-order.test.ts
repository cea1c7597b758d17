/**
 * Every module of the CPU core loads when it is the first one imported. The core's
 * modules import each other in cycles (the decode tables need the CPU, the CPU its
 * translator, the translator the decoder), so a value computed when a module loads from
 * another module of the cycle may find it not yet evaluated, depending on which module a
 * program imports first: `import "src/arch/arm64/isa.ts"` once threw "Cannot read
 * properties of undefined" that way (the translator asked isa.ts for the advertised
 * features while isa.ts itself was loading). A library user may import any of them first.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

const root = path.join(import.meta.dirname, "..");

function modules(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? modules(path.join(dir, e.name))
      : e.name.endsWith(".ts")
        ? [path.join(dir, e.name)]
        : [],
  );
}

/** Imports `file` alone in a fresh Node (through tsx); resolves to its stderr when that fails. */
function loadAlone(file: string): Promise<string | null> {
  return new Promise((resolve) => {
    const url = new URL(`file://${path.join(root, file)}`).href;
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", `await import(${JSON.stringify(url)});`],
      {
        cwd: root,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("close", (code) =>
      resolve(code === 0 ? null : `${file}: ${err.split("\n").find((l) => /Error/.test(l)) ?? err}`),
    );
  });
}

test("every module of src/arch loads when imported first", { timeout: 300_000 }, async () => {
  const files = modules("src/arch");
  const failures: string[] = [];
  // A few at a time: each is a Node process.
  for (let i = 0; i < files.length; i += 4) {
    const results = await Promise.all(files.slice(i, i + 4).map(loadAlone));
    for (const r of results) if (r !== null) failures.push(r);
  }
  assert.deepEqual(failures, []);
});
