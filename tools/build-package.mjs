#!/usr/bin/env node
// What `npm pack` ships (package.json "prepack"), built from src/:
//   dist/armbox.mjs      the CLI (src/cli/main.ts), bundled for Node; bin/armbox.js runs it
//   dist/lib/index.mjs   the library (src/index.ts), bundled for a neutral platform: a
//                        Node-only import anywhere below it fails this build
//   dist/types/src/      its declarations (tsc), imports rewritten to the .js they name
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const common = { bundle: true, format: "esm", target: "es2022", packages: "external", logLevel: "error" };
// Written aside and renamed, as the launcher does: a launcher running meanwhile (a test, a
// user) never loads half a file.
const cli = join(root, "dist/armbox.mjs");
const tmp = `${cli}.${process.pid}.tmp`;
buildSync({
  ...common,
  entryPoints: [join(root, "src/cli/main.ts")],
  platform: "node",
  target: "node20",
  outfile: tmp,
});
renameSync(tmp, cli);
buildSync({
  ...common,
  entryPoints: [join(root, "src/index.ts")],
  platform: "neutral",
  outfile: join(root, "dist/lib/index.mjs"),
});

rmSync(join(root, "dist/types"), { recursive: true, force: true });
execFileSync(
  process.execPath,
  [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.lib.json")],
  { stdio: "inherit" },
);
const rewrite = (dir) => {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) rewrite(p);
    else if (p.endsWith(".d.ts")) {
      const s = readFileSync(p, "utf8").replace(
        /(from\s+|import\s*\(?)(["'])(\.{1,2}\/[^"']+)\.ts\2/g,
        "$1$2$3.js$2",
      );
      writeFileSync(p, s);
    }
  }
};
rewrite(join(root, "dist/types"));
