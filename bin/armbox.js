#!/usr/bin/env node
// Launcher. Runs dist/armbox.mjs, an esbuild bundle of src/cli/main.ts: plain node runs the
// interpreter about 1.6x faster bundled than through a TypeScript loader. In a checkout the
// bundle is rebuilt here whenever a source file is newer (so editing src/ never runs stale
// code); without esbuild the sources run through tsx. An installed package has no src/: it
// runs the bundle its prepack built (tools/build-package.mjs).
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "src/cli/main.ts");
const bundle = join(root, "dist/armbox.mjs");

function newestSource(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return t;
}

async function loadMain() {
  // Installed from the package (npm pack: no src/, the bundle built by its prepack).
  if (!existsSync(join(root, "src"))) {
    if (!existsSync(bundle)) {
      process.stderr.write(`armbox: ${bundle} is missing: this copy of armbox was packed without its build\n`);
      process.exit(1);
    }
    return import(pathToFileURL(bundle).href);
  }
  const fresh =
    existsSync(bundle) &&
    statSync(bundle).mtimeMs >=
      Math.max(newestSource(join(root, "src")), statSync(join(root, "package-lock.json")).mtimeMs);
  if (!fresh) {
    try {
      const { buildSync } = await import("esbuild");
      mkdirSync(dirname(bundle), { recursive: true });
      // Written aside and renamed, so concurrent launchers never load half a file.
      const tmp = `${bundle}.${process.pid}.tmp`;
      buildSync({
        entryPoints: [entry],
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node20",
        packages: "external",
        outfile: tmp,
        logLevel: "error",
      });
      renameSync(tmp, bundle);
    } catch {
      const { register } = await import("tsx/esm/api");
      register();
      return import(pathToFileURL(entry).href);
    }
  }
  return import(pathToFileURL(bundle).href);
}

const { main } = await loadMain();
const code = await main(process.argv.slice(2));
// Flush stdout/stderr before leaving with the guest's exit status.
process.exitCode = code;
