/**
 * QEMU's migration conventions (issue 11), with the QEMU command line: the destination is
 * the source's own command line plus -incoming; after the migration the source stays,
 * paused in postmigrate, its QMP answering until quit; `-incoming defer` waits for QMP
 * migrate-incoming; a destination built differently is refused naming the field, and the
 * source runs on. The guest counts on its console ("tick N"): the destination continues
 * the source's count with no gap and no repeat.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import { type Child, start } from "./support/children.ts";
import { freePort } from "./support/net.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const COUNTER = new URL("../guests/migration/bin/counter.elf", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "armbox-qemu-mig-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The source's command line, QEMU's spelling; the destination's is the same plus -incoming. */
const VM = ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-smp", "2", "-m", "64", "-nographic"];
const vm = (qmp: string, ...more: string[]) => [
  ...VM,
  "-kernel",
  COUNTER,
  "-qmp",
  `unix:${qmp},server,nowait`,
  ...more,
];

function armbox(t: TestContext, args: string[]): Child {
  return start(t, process.execPath, [ARMBOX, ...args]);
}

/** The QMP client of `child`, once its guest prints: armbox listens on QMP before the guest runs. */
async function qmp(sock: string, child: Child): Promise<QmpClient> {
  await child.waitFor(/tick/);
  return QmpClient.connect(sock);
}

/** Polls query-migrate until it leaves the active states. */
async function migrated(q: QmpClient): Promise<Record<string, unknown>> {
  for (;;) {
    const s = (await q.execute("query-migrate")) as Record<string, unknown>;
    if (s.status === "completed" || s.status === "failed" || s.status === "cancelled") return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ticks = (s: string) => [...s.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));

test("the source's command line plus -incoming unix:…; the source then waits in postmigrate until quit", {
  timeout: 120_000,
}, async (t) => {
  const [sq, dq, mig] = [join(tmp, "s1.qmp"), join(tmp, "d1.qmp"), join(tmp, "m1.sock")];
  const src = armbox(t, vm(sq));
  const dst = armbox(t, vm(dq, "-incoming", `unix:${mig}`));
  await dst.waitFor(/waiting for an incoming migration on unix:/, 0, "stderr");
  await src.waitFor(/tick 3\b/);
  const s = await qmp(sq, src);
  const d = await QmpClient.connect(dq);
  assert.deepEqual(await d.execute("query-status"), {
    running: false,
    singlestep: false,
    status: "inmigrate",
  });
  await s.execute("migrate", { uri: `unix:${mig}` });
  const info = await migrated(s);
  assert.equal(info.status, "completed", JSON.stringify(info));
  // As QEMU's: the source is still there, paused, answering.
  assert.deepEqual(await s.execute("query-status"), {
    running: false,
    singlestep: false,
    status: "postmigrate",
  });
  const last = ticks(src.stdout).at(-1)!;
  await dst.waitFor(new RegExp(`tick ${last + 3}\\b`));
  assert.deepEqual(await d.execute("query-status"), { running: true, singlestep: false, status: "running" });
  const all = [...ticks(src.stdout), ...ticks(dst.stdout)];
  for (let i = 1; i < all.length; i++)
    assert.equal(all[i], all[i - 1]! + 1, `tick ${all[i - 1]} then ${all[i]}`);
  await s.execute("quit");
  assert.equal((await src.exited).code, 0, src.stderr);
  await d.execute("quit");
  assert.equal((await dst.exited).code, 0, dst.stderr);
  await s.close();
  await d.close();
});

test("-incoming defer: the destination receives where QMP migrate-incoming says, once", {
  timeout: 120_000,
}, async (t) => {
  const [sq, dq] = [join(tmp, "s2.qmp"), join(tmp, "d2.qmp")];
  const port = await freePort();
  const src = armbox(t, vm(sq));
  const dst = armbox(t, vm(dq, "-incoming", "defer"));
  await dst.waitFor(/waiting for QMP migrate-incoming/, 0, "stderr");
  const s = await qmp(sq, src);
  const d = await QmpClient.connect(dq);
  await assert.rejects(
    s.execute("migrate-incoming", { uri: "tcp:127.0.0.1:1" }),
    /'-incoming' was not specified/,
  );
  await assert.rejects(d.execute("migrate-incoming", { uri: "exec:cat" }), /never runs a shell command/);
  assert.deepEqual(await d.execute("migrate-incoming", { uri: `tcp:127.0.0.1:${port}` }), {});
  await assert.rejects(
    d.execute("migrate-incoming", { uri: `tcp:127.0.0.1:${port}` }),
    /has already been started/,
  );
  await dst.waitFor(new RegExp(`waiting for an incoming migration on 127\\.0\\.0\\.1:${port}`), 0, "stderr");
  await src.waitFor(/tick 2\b/);
  await s.execute("migrate", { uri: `tcp:127.0.0.1:${port}` });
  assert.equal((await migrated(s)).status, "completed");
  const last = ticks(src.stdout).at(-1)!;
  await dst.waitFor(new RegExp(`tick ${last + 2}\\b`));
  await s.execute("quit");
  await d.execute("quit");
  assert.equal((await src.exited).code, 0, src.stderr);
  assert.equal((await dst.exited).code, 0, dst.stderr);
  await s.close();
  await d.close();
});

test("a destination built differently is refused naming the field; the source runs on", {
  timeout: 120_000,
}, async (t) => {
  const [sq, mig] = [join(tmp, "s3.qmp"), join(tmp, "m3.sock")];
  const src = armbox(t, vm(sq));
  // The same command line but -m 128 (the source has 64).
  const dst = armbox(
    t,
    [...vm(join(tmp, "d3.qmp"), "-incoming", `unix:${mig}`)].map((a) => (a === "64" ? "128" : a)),
  );
  await dst.waitFor(/waiting for an incoming migration/, 0, "stderr");
  const s = await qmp(sq, src);
  await src.waitFor(/tick 1\b/);
  await s.execute("migrate", { uri: `unix:${mig}` });
  const info = await migrated(s);
  assert.equal(info.status, "failed");
  assert.match(String(info["error-desc"]), /memory size/);
  assert.match(String(info["error-desc"]), /--memory 64M.*--memory 128M/);
  const exit = await dst.exited;
  assert.equal(exit.code, 1);
  assert.match(dst.stderr, /incoming migration failed: .*memory size/);
  // The source is running still: its count goes on.
  assert.deepEqual(await s.execute("query-status"), { running: true, singlestep: false, status: "running" });
  const n = ticks(src.stdout).at(-1)!;
  await src.waitFor(new RegExp(`tick ${n + 2}\\b`));
  await s.execute("quit");
  assert.equal((await src.exited).code, 0, src.stderr);
  await s.close();
});
