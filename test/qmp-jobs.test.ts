/**
 * Issue 9 item 2, QMP side: regression tests named after the defects. snapshot-load of
 * /dev/zero is refused at once with a one-line reason (it was read without bound while every
 * other client waited), and an over-long QMP line is reported once and discarded to its
 * newline (it was resynchronised mid-line, so its tail was parsed as commands).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { VirtMachine } from "../src/machine/virt.ts";
import { QmpClient, QmpReplyError } from "../src/vmm/qmp/client.ts";
import { LocalVmmHost } from "../src/vmm/qmp/host.ts";
import { MAX_MESSAGE, MAX_NESTING } from "../src/vmm/qmp/protocol.ts";
import { QmpServer } from "../src/vmm/qmp/server.ts";
import { within } from "./support/events.ts";

const dir = mkdtempSync(join(tmpdir(), "armbox-qmp-jobs-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** vCPU 0 counts in x19 for ever (add x19, x19, #1; b .-4). */
const SPIN = new Uint8Array(new Uint32Array([0x91000673, 0x17ffffff]).buffer);

async function rig() {
  const machine = new VirtMachine({ kernel: SPIN, smp: 1, memory: 32 << 20 });
  const host = new LocalVmmHost({
    machine,
    run: { output: () => {}, diag: () => {} },
    makeMachine: (c) => new VirtMachine(c),
  });
  const done = host.run();
  const path = join(dir, `q${Math.random().toString(36).slice(2)}.sock`);
  const server = await QmpServer.listen(`unix:${path}`, host);
  return {
    host,
    path,
    close: async () => {
      if (host.runState() !== "shutdown") host.quit(0);
      await done;
      await server.close();
    },
  };
}

test("snapshot-load of /dev/zero stalls every QMP client", async () => {
  const r = await rig();
  const a = await QmpClient.connect(r.path);
  const b = await QmpClient.connect(r.path);
  try {
    const before = r.host.machine;
    const load = a.execute("snapshot-load", { file: "/dev/zero" }).then(
      () => null,
      (e: unknown) => e,
    );
    const status = await within(b.execute("query-status"), "query-status from a second client");
    assert.equal((status as { status: string }).status, "running");
    const err = await within(load, "the refusal of /dev/zero");
    assert.ok(err instanceof QmpReplyError, "snapshot-load of /dev/zero must fail");
    assert.match(err.desc, /\/dev\/zero: a character device, not a regular file/);
    assert.ok(!err.desc.includes("\n"), "a one-line reason");
    assert.equal(r.host.machine, before, "the running VM is untouched");
    assert.equal(r.host.runState(), "running");
  } finally {
    await a.close();
    await b.close();
    await r.close();
  }
});

/** Replies (by id) and errors a raw line produces, up to the reply with id `last`. */
async function repliesTo(c: QmpClient, raw: string, last: string): Promise<Record<string, unknown>[]> {
  const got: Record<string, unknown>[] = [];
  const sock = (c as unknown as { socket: import("node:net").Socket }).socket;
  await within(
    new Promise<void>((resolve) => {
      let buf = "";
      sock.on("data", (d: Buffer) => {
        buf += d.toString("utf8");
        for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          const m = JSON.parse(line) as Record<string, unknown>;
          if ("event" in m) continue;
          got.push(m);
          if (m.id === last) resolve();
        }
      });
      c.sendRaw(raw);
    }),
    `the reply to ${last}`,
  );
  return got;
}

test("an over-long QMP line is resynchronised mid-line", async () => {
  const r = await rig();
  const c = await QmpClient.connect(r.path);
  try {
    // A string longer than the limit whose tail, read from the middle, holds a `stop`.
    const long = `{"execute":"query-status","id":"long","arguments":{"pad":"${"A".repeat(MAX_MESSAGE + 1000)}{"execute":"stop","id":"smuggled"}"}}\n`;
    const got = await repliesTo(c, `${long}{"execute":"query-status","id":"after"}\n`, "after");
    assert.equal(got.length, 2, JSON.stringify(got).slice(0, 500));
    assert.deepEqual(got[0], {
      error: { class: "GenericError", desc: "JSON parse error, message too long" },
    });
    assert.deepEqual(got[1], {
      return: { running: true, singlestep: false, status: "running" },
      id: "after",
    });
    assert.equal(r.host.runState(), "running", "nothing from inside the long line ran");

    // Nesting too deep: one error, the line discarded, then the next command answered.
    const deep = `{"execute":"stop","id":"deep","arguments":{"x":${"[".repeat(MAX_NESTING + 10)}]}}{"execute":"stop","id":"smuggled2"}\n`;
    const got2 = await repliesTo(c, `${deep}{"execute":"query-status","id":"after2"}\n`, "after2");
    assert.equal(got2.length, 2, JSON.stringify(got2).slice(0, 500));
    assert.deepEqual(got2[0], {
      error: { class: "GenericError", desc: "JSON parse error, nesting too deep" },
    });
    assert.equal(got2[1]!.id, "after2");
    assert.equal(r.host.runState(), "running");
  } finally {
    await c.close();
    await r.close();
  }
});
