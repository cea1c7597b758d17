/**
 * bin/armbox.js runs an esbuild bundle of the CLI (dist/armbox.mjs) and rebuilds it when
 * any source is newer, so an edit to src/ is never shadowed by a stale bundle.
 * Checked on a throwaway copy: a launcher beside a one-file src/cli/main.ts.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runSync } from "./support/children.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

test("the launcher bundles the CLI and rebuilds the bundle after a source edit", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "armbox-launcher-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, "bin"));
  fs.mkdirSync(path.join(dir, "src/cli"), { recursive: true });
  fs.copyFileSync(path.join(root, "bin/armbox.js"), path.join(dir, "bin/armbox.js"));
  fs.writeFileSync(path.join(dir, "package.json"), '{"type":"module"}');
  fs.writeFileSync(path.join(dir, "package-lock.json"), "{}");
  fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"));
  const main = path.join(dir, "src/cli/main.ts");
  const write = (word: string, code: number) =>
    fs.writeFileSync(
      main,
      `export async function main(argv: string[]): Promise<number> { console.log("${word}", argv.join(",")); return ${code}; }\n`,
    );
  const run = () => runSync(process.execPath, [path.join(dir, "bin/armbox.js"), "a", "b"]);

  write("first", 3);
  const r1 = run();
  assert.equal(r1.stdout, "first a,b\n");
  assert.equal(r1.status, 3, "the exit code is main()'s");
  const bundle = path.join(dir, "dist/armbox.mjs");
  assert.ok(fs.existsSync(bundle), "bundle written");

  write("second", 0);
  // Make the edit unmistakably newer than the bundle, whatever the file system's clock grain.
  const later = new Date(fs.statSync(bundle).mtimeMs + 5000);
  fs.utimesSync(main, later, later);
  const r2 = run();
  assert.equal(r2.stdout, "second a,b\n", "rebuilt after the edit");
  assert.equal(r2.status, 0);
});
