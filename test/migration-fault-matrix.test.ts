/**
 * Issue 9 item 5 (migration part), a small budget in CI: the migration stream fuzzer
 * (tools/fuzz/migration-streams.ts) must refuse hostile variants in words, accept the
 * no-op ones into the very machine the source sent, and never crash or load another machine.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PREAMBLE_SIZE } from "../src/vmm/migration/stream.ts";
import { concat, END_FRAME } from "../src/vmm/snapshot/format.ts";
import { runMatrix } from "../tools/fuzz/fault-matrix.ts";
import {
  baseStream,
  encodeFrame,
  feed,
  fuzzStreams,
  type RawFrame,
} from "../tools/fuzz/migration-streams.ts";

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

test("a section frame changed with its CRC recomputed is accepted into a different machine (stream v2 declared names only)", async () => {
  const base = await baseStream();
  const rebuild = (frames: readonly RawFrame[]) =>
    concat([base.stream.subarray(0, PREAMBLE_SIZE), ...frames.map((f) => encodeFrame(f)), END_FRAME]);
  // The rebuilt stream itself loads the source's machine: the construction is sound.
  const same = await feed(base.config, rebuild(base.frames));
  assert.equal(same.kind === "accepted" && same.digest, base.digest, JSON.stringify(same));
  const victims = base.frames.filter((f) => f.flags === 0 && /^(vcpu|gicv3|pl011|machine)/.test(f.name));
  assert.ok(victims.length >= 3, `sections to corrupt: ${victims.map((f) => f.name)}`);
  for (const victim of victims) {
    const frames = base.frames.map((f) => {
      if (f !== victim) return f;
      const payload = f.payload.slice();
      payload[payload.length >> 1]! ^= 0x01;
      return { ...f, payload };
    });
    const r = await feed(base.config, rebuild(frames));
    assert.equal(r.kind, "refused", `${victim.name}: ${JSON.stringify(r)}`);
    assert.match(
      r.kind === "refused" ? r.reason : "",
      new RegExp(`section '${victim.name}' is not what the source sent`),
    );
  }
});
