/**
 * Issue 9 item 5 (migration part), a small budget in CI: the migration stream fuzzer
 * (tools/fuzz/migration-streams.ts) must refuse hostile variants in words, accept the
 * no-op ones into the very machine the source sent, and never crash or load another machine.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runMatrix } from "../tools/fuzz/fault-matrix.ts";
import { baseStream, feed, fuzzStreams } from "../tools/fuzz/migration-streams.ts";

test("migration stream fuzzer: no crash, no violation; it both refuses and accepts (no-op variants)", async () => {
  const t = await fuzzStreams(7, 400);
  assert.equal(t.inputs, 400);
  assert.equal(t.crashes, 0, JSON.stringify(t.failures));
  assert.equal(t.violations, 0, JSON.stringify(t.failures));
  assert.ok(t.refused > 100, `refused ${t.refused}`);
  assert.ok((t.extra["accepted identical (no-op)"] ?? 0) > 0, JSON.stringify(t.extra));
});

test("migration stream fuzzer: the recorded stream loads the source's machine; a truncated one is refused", async () => {
  const base = await baseStream();
  const ok = await feed(base.config, base.stream);
  assert.equal(ok.kind, "accepted");
  assert.equal(ok.kind === "accepted" && ok.digest, base.digest);
  const cut = await feed(base.config, base.stream.subarray(0, base.stream.length - 10));
  assert.equal(cut.kind, "refused");
  assert.match(cut.kind === "refused" ? cut.reason : "", /truncated|ended/);
});

test("migration fault matrix: the source survives a destination killed at the first frames and a stalling peer", async () => {
  const r = await runMatrix(3);
  assert.equal(r.total, 5);
  assert.equal(r.survived, r.total, r.failures.join("; "));
  assert.equal(r.destinationRanIncomplete, 0);
});
