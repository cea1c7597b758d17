/**
 * The package (issue 11): `npm pack` holds the CLI bundle, the library bundle with its
 * declarations, the default guests, LICENSE and README, and nothing else (no src/, no
 * tests); installed into a scratch project with `npm install ./armbox-*.tgz`, `npx armbox
 * --version` answers, `npx armbox run` boots the built-in Linux to a shell, the library
 * runs a guest from `import … from "armbox"`, and a TypeScript consumer type-checks against
 * the declarations without Node's types (the library is for browsers too).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runSync, start } from "./support/children.ts";

const root = new URL("..", import.meta.url).pathname;
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string;
const dir = mkdtempSync(join(tmpdir(), "armbox-package-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const app = join(dir, "app");
const npm = (args: string[], cwd: string) => runSync("npm", args, { cwd });

test("npm pack, npm install, npx armbox: the CLI, the default Linux, the library and its types", {
  timeout: 900_000,
}, async (t) => {
  const packed = npm(["pack", "--json", "--pack-destination", dir], root);
  assert.equal(packed.status, 0, packed.stderr);
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as {
    filename: string;
    unpackedSize: number;
    files: { path: string }[];
  }[];
  const files = info[0]!.files.map((f) => f.path);
  for (const f of [
    "bin/armbox.js",
    "dist/armbox.mjs",
    "dist/lib/index.mjs",
    "dist/types/src/index.d.ts",
    "guests/linux/Image",
    "guests/linux/initrd.cpio.gz",
    "guests/baremetal/bin/hotplug.elf",
    "LICENSE",
    "README.md",
    "package.json",
  ])
    assert.ok(files.includes(f), `${f} is in the package`);
  const extra = files.filter(
    (f) => !/^(bin\/armbox\.js|dist\/|guests\/|LICENSE|README\.md|package\.json)/.test(f),
  );
  assert.deepEqual(extra, [], "nothing a user does not need");
  assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/")));
  assert.ok(info[0]!.unpackedSize < 12 << 20, `${info[0]!.unpackedSize} bytes unpacked`);

  runSync("mkdir", ["-p", app]);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"))!;
  const inst = npm(["install", "--no-audit", "--no-fund", "--prefer-offline", join(dir, tgz)], app);
  assert.equal(inst.status, 0, inst.stderr);

  const v = runSync("npx", ["armbox", "--version"], { cwd: app });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout, `armbox ${version}\n`);

  // The README's first command, from the package: the built-in Linux to a shell.
  const linux = start(t, "npx", ["armbox", "run"], { cwd: app });
  await linux.waitFor(/armbox# /);
  linux.send("echo $((6*7)); poweroff -f\n");
  await linux.waitFor(/\n42\r?\n/);
  assert.equal((await linux.exited).code, 0, linux.stderr);

  // The library, as a program embedding armbox would use it.
  writeFileSync(
    join(app, "run.mjs"),
    `import { VirtMachine, VERSION, MP_STATE_NAMES } from "armbox";
import { readFileSync } from "node:fs";
const kernel = readFileSync("node_modules/armbox/guests/baremetal/bin/hotplug.elf");
let out = "";
const m = new VirtMachine({ kernel, smp: 2, memory: 64 << 20, deterministic: true,
  serialOutput: (b) => { out += new TextDecoder().decode(b); } });
const s = m.scheduler();
for (let i = 0; i < 1e6; i++) { const e = s.round(); if (e && e.kind === "system-event") break; }
console.log(VERSION, out.includes("RESULT: PASS"), m.vcpus.map((v) => MP_STATE_NAMES[v.getMpState()]).join(","));
`,
  );
  const lib = runSync(process.execPath, ["run.mjs"], { cwd: app });
  assert.equal(lib.status, 0, lib.stderr);
  assert.equal(lib.stdout, `${version} true RUNNABLE,STOPPED\n`);

  // Its declarations, from a strict TypeScript consumer with no Node types at all.
  writeFileSync(
    join(app, "use.ts"),
    `import { MP_STATE, type SchedulerEvent, type VirtConfig, VirtMachine, VERSION } from "armbox";
const cfg: VirtConfig = { smp: 2, memory: 64 << 20, deterministic: true };
const m: VirtMachine = new VirtMachine(cfg);
const e: SchedulerEvent | null = m.scheduler().round(10);
export const ok: string = \`\${VERSION} \${m.vcpus.length + MP_STATE.STOPPED} \${e?.kind ?? "none"}\`;
// @ts-expect-error: the configuration is typed
new VirtMachine({ smp: "two" });
`,
  );
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: [],
        lib: ["ES2022", "DOM"],
      },
      files: ["use.ts"],
    }),
  );
  const tsc = runSync(
    process.execPath,
    [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"],
    {
      cwd: app,
    },
  );
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
});
