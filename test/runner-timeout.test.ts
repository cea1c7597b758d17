/**
 * The suite cannot hang: `npm test` runs node:test with --test-timeout (a test — on Node 20
 * a whole file — that never settles is failed and stopped) and --test-force-exit (a file
 * ends once its tests are done, even when a timed-out test left a timer, a socket or a
 * child behind), and the children a test starts through test/support/children.ts die
 * with it. Checked on throwaway test files run with the flags the test script uses:
 *   - a test that never settles, under a short --test-timeout: reported as timed out, the
 *     tests after it still run (or, on Node 20, the file is stopped), its child is killed;
 *   - a test that times out on its own `timeout` and leaves a ref'ed timer and a child:
 *     the file still ends at once (force-exit), not at the runner's long timeout.
 * The verdicts are the failure reports and the dead children, never a duration.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { fileURLToPath } from "node:url";
import { start } from "./support/children.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const children = new URL("./support/children.ts", import.meta.url).href;
const script = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: { test: string } })
  .scripts.test;

/** The node:test flags of the test script (everything --test… after `tsx`). */
const runnerFlags = /\btsx (--test\b.*?) test\/\*\.test\.ts/.exec(script)?.[1]?.split(/\s+/) ?? [];
const runnerTimeout = Number(/--test-timeout=(\d+)/.exec(script)?.[1]);

/** Whether `pid` still runs (a zombie waiting for a reaper counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/**
 * A test file whose first test starts a child that would run for ever (through the
 * support helper), writes its pid, keeps a ref'ed timer and never settles; a second test
 * follows. `options` are the first test's node:test options.
 */
function hangingFile(dir: string, options: string): { file: string; pidFile: string } {
  const file = join(dir, "hang.test.ts");
  const pidFile = join(dir, "child.pid");
  writeFileSync(
    file,
    `import { writeFileSync } from "node:fs";
import { test } from "node:test";
import { start } from ${JSON.stringify(children)};
test("never settles", ${options}, (t) => {
  const c = start(t, process.execPath, ["-e", "setInterval(() => {}, 1000)"]);
  writeFileSync(${JSON.stringify(pidFile)}, String(c.proc.pid));
  setInterval(() => {}, 1000);
  return new Promise(() => {});
});
test("the test after it", () => {});
`,
  );
  return { file, pidFile };
}

/** Runs `file` under node:test with `flags` (tsx for the TypeScript); its exit and output. */
async function runTests(t: TestContext, flags: string[], file: string) {
  // Not as a child of this runner: NODE_TEST_CONTEXT would make it report to us instead.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const c = start(t, process.execPath, ["--import", "tsx", ...flags, file], { cwd: root, env });
  const exit = await c.exited;
  return { ...exit, out: c.stdout + c.stderr };
}

test("the test script runs node:test with --test-timeout and --test-force-exit", () => {
  assert.ok(runnerFlags.includes("--test"), script);
  assert.ok(runnerFlags.includes("--test-force-exit"), script);
  // Generous: a Linux boot takes minutes on a loaded host; on Node 20 it bounds whole files.
  assert.ok(Number.isInteger(runnerTimeout) && runnerTimeout >= 600_000, script);
});

test("a test that never settles is reported as timed out and its child is killed", {
  timeout: 600_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "armbox-runner-timeout-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { file, pidFile } = hangingFile(dir, "{}");
  // The runner's clock may start before the file has even loaded (Node 20 times whole
  // files): until the child was started in time, try again with twice the timeout.
  for (let ms = 2_000; ; ms *= 2) {
    rmSync(pidFile, { force: true });
    const flags = runnerFlags.map((f) => (f.startsWith("--test-timeout=") ? `--test-timeout=${ms}` : f));
    const r = await runTests(t, flags, file);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`timed out after ${ms} ?ms`), r.out);
    if (!existsSync(pidFile)) {
      assert.ok(ms < 256_000, `the test file never got to start its child:\n${r.out}`);
      continue;
    }
    const pid = Number(readFileSync(pidFile, "utf8"));
    assert.ok(!alive(pid), `the test's child ${pid} outlived the run`);
    break;
  }
});

test("a test that times out and leaves a timer and a child behind does not keep its file running", {
  timeout: 600_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "armbox-runner-timeout-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The test's own timeout: short, but every retry doubles it, for a host too slow to
  // start the child within it.
  for (let ms = 2_000; ; ms *= 2) {
    const { file, pidFile } = hangingFile(dir, `{ timeout: ${ms} }`);
    rmSync(pidFile, { force: true });
    const r = await runTests(t, runnerFlags, file);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`timed out after ${ms} ?ms`), r.out);
    // Ended by force-exit once its tests were done, not by the runner's own timeout.
    assert.doesNotMatch(r.out, new RegExp(`timed out after ${runnerTimeout} ?ms`), r.out);
    assert.match(r.out, /ok \d+ - the test after it|✔ the test after it/, r.out);
    if (!existsSync(pidFile)) {
      assert.ok(ms < 256_000, `the test never got to start its child:\n${r.out}`);
      continue;
    }
    const pid = Number(readFileSync(pidFile, "utf8"));
    assert.ok(!alive(pid), `the test's child ${pid} outlived the run`);
    break;
  }
});
