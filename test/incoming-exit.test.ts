/**
 * Issue 9, defect 4: a destination that refused an incoming migration never exited while its
 * stdin stayed open (a terminal, the normal case): the serial console's stdin listener kept
 * the event loop alive. It must exit non-zero at once, whatever stdin is.
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { test } from "node:test";
import { start } from "./support/children.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;

test("after a refused incoming migration the destination never exits when stdin is open", async (t) => {
  // stdin is a pipe the test holds open for the whole test (never ended).
  const dst = start(t, process.execPath, [ARMBOX, "run", "--incoming", "tcp:127.0.0.1:0"]);
  const m = await dst.waitFor(/waiting for an incoming migration on [\d.]+:(\d+)/, 0, "stderr");
  const sock = net.connect(Number(m[1]), "127.0.0.1");
  sock.on("error", () => {}); // the destination closes it after its refusal
  sock.end(Buffer.from("NOT-A-MIGRATION-STREAM, just bytes\n"));
  const exit = await dst.exited;
  sock.destroy();
  assert.equal(exit.code, 1, dst.stderr);
  assert.match(dst.stderr, /incoming migration failed: .*magic/i);
  assert.equal(dst.proc.stdin?.writableEnded, false, "stdin was still open when it exited");
});
