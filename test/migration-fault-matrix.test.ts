/**
 * Issue 9 item 5 (migration part), a small budget in CI: the migration stream fuzzer
 * (tools/fuzz/migration-streams.ts) must refuse hostile variants in words, accept the
 * no-op ones into the very machine the source sent, and never crash or load another machine;
 * the fault matrix (tools/fuzz/fault-matrix.ts) must leave the source running after every
 * faulty migration and a later good one continuing its counter, and its oracles must refuse
 * what they exist to refuse.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PREAMBLE_SIZE } from "../src/vmm/migration/stream.ts";
import { concat, END_FRAME } from "../src/vmm/snapshot/format.ts";
import { caseSeed } from "../tools/difftest/prng.ts";
import { chooseFault, runMatrix, StreamScanner, TickConsole } from "../tools/fuzz/fault-matrix.ts";
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

test("migration fault matrix: every faulty migration fails cleanly, the source runs on, a later good migration continues its counter", async () => {
  // Inputs 0..7 of seed 1: a clean control, stalls of the stream and of the replies, a
  // wrong reply frame, a cut at byte 1, a cut ready reply, a random last reply.
  const t = await runMatrix(8, 1);
  const failures = t.failures.map((f) => `${f.kind} ${f.index}: ${f.what}`).join("\n");
  assert.equal(t.crashes, 0, failures);
  assert.equal(t.violations, 0, failures);
  assert.equal(t.inputs, 8);
  const failed = t.extra["survival: faulty migrations that failed"] ?? 0;
  assert.ok(failed >= 5, `faulty migrations that failed: ${failed} (${JSON.stringify(t.extra)})`);
  // The VM in exactly one place after each failure: only at the source, or handed over
  // to a destination that holds it (an ACK damaged after the whole device state was out).
  const atSource =
    t.extra["survival: VM only at the source (the destination refused or never got it all)"] ?? 0;
  const handedOver =
    t.extra["ACK damaged: the source stayed paused, the destination holds the VM and goes on"] ?? 0;
  assert.equal(atSource + handedOver, failed, JSON.stringify(t.extra));
  assert.ok(atSource >= 3 && handedOver >= 1, JSON.stringify(t.extra));
  assert.equal(
    t.extra["survival: source survived (its counter going on)"],
    atSource,
    "source survived N of N",
  );
  assert.equal(t.extra["survival: later good migration completed"], atSource, "later good migration N of N");
  assert.equal(t.refused, failed);
  assert.equal(t.extra["clean control migrations completed"], 1);
  // The counter oracle ran: every migration moved the counter on by ticks checked in order.
  assert.ok((t.extra["survival: ticks checked (no gap, no repeat)"] ?? 0) > 3 * 8, JSON.stringify(t.extra));
});

test("fault matrix: each input's fault is a function of its seed alone; the kinds all occur", () => {
  const kinds = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const a = chooseFault(caseSeed(1, "fault-matrix", i), i);
    assert.deepEqual(chooseFault(caseSeed(1, "fault-matrix", i), i), a);
    kinds.add(a.kind === "stall-stream" && a.ballast ? "stall-stream+ballast" : a.kind);
  }
  for (const k of [
    "clean",
    "cut-stream",
    "stall-stream",
    "stall-stream+ballast",
    "cut-reply",
    "corrupt-reply",
    "stall-reply",
    "refuse",
  ])
    assert.ok(kinds.has(k), `kind ${k} among ${[...kinds].join(", ")}`);
  assert.notDeepEqual(
    chooseFault(caseSeed(1, "fault-matrix", 5), 5),
    chooseFault(caseSeed(2, "fault-matrix", 5), 5),
  );
});

test("fault matrix: the proxy's scanner finds every frame of a real stream, fed in any pieces", async () => {
  const base = await baseStream();
  const whole = new StreamScanner();
  whole.feed(base.stream, 0);
  assert.ok(whole.ended, "the end mark was found");
  assert.equal(whole.frames.at(-1)!.end, base.stream.length);
  // preamble + every frame + the end mark
  assert.equal(whole.frames.length, base.frames.length + 2);
  assert.deepEqual(
    whole.frames.slice(1, -1).map((f) => f.name),
    base.frames.map((f) => f.name),
  );
  const bytes = new StreamScanner();
  for (let o = 0; o < base.stream.length; o += 7) bytes.feed(base.stream.subarray(o, o + 7), o);
  assert.deepEqual(bytes.frames, whole.frames);
  assert.equal(whole.resolve({ kind: "end", k: 0, frac: 0 }), base.stream.length - 2);
  assert.equal(whole.resolve({ kind: "pages", k: 10_000, frac: 0 }), null, "a frame the stream lacks");
});

test("fault matrix: the counter oracle refuses a gap, a repeat and a garbled tick", () => {
  const feed = (s: string) => {
    const c = new TickConsole();
    c.out(new TextEncoder().encode(s));
    return c;
  };
  const ok = feed("migration guest: mode 0, 2 cpus\r\ntick 0 0\r\ntick 1 1\ntick 2 21\ntick 3");
  assert.equal(ok.error, null);
  assert.equal(ok.ticks, 3, "a cut last line is not counted yet");
  assert.match(feed("tick 0 0\ntick 2 1\n").error ?? "", /tick 2 after tick 0 \(a gap\)/);
  assert.match(feed("tick 0 0\ntick 1 1\ntick 1 1\n").error ?? "", /tick 1 after tick 1 \(a repeat\)/);
  assert.match(feed("tick 0 0\ntick x\n").error ?? "", /garbled/);
  assert.match(feed("tick 5 0\n").error ?? "", /a gap/, "the chain starts at tick 0");
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
