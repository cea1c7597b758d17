/**
 * Issue 9 item 2 (migration side): bounded resources in the migration stream.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  encodePreamble,
  FrameReader,
  MAX_BATCH_PAGES,
  MAX_FRAME_PAYLOAD,
  MigrationError,
} from "../src/vmm/migration/stream.ts";

/** A frame header (name, version, reserved, payload length) with no payload behind it. */
function header(name: string, payloadLen: number): Uint8Array {
  const n = new TextEncoder().encode(name);
  const b = new Uint8Array(2 + n.length + 12);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, n.length, true);
  b.set(n, 2);
  dv.setUint32(2 + n.length, 1, true);
  dv.setUint32(2 + n.length + 8, payloadLen, true);
  return b;
}

test("oversized frame header is refused before its payload is buffered (was: up to 0x7fff0000 bytes awaited)", async () => {
  const r = new FrameReader();
  r.push(encodePreamble());
  await r.preamble();
  r.push(header("ram.pages", 0x7000_0000));
  // No payload follows and the stream stays open: the old reader waited for 1.8 GB forever;
  // the refusal must come from the header alone.
  await assert.rejects(r.next(), (e: unknown) => {
    assert.ok(e instanceof MigrationError);
    assert.match(
      (e as Error).message,
      new RegExp(`announces ${0x7000_0000} bytes, more than the ${MAX_FRAME_PAYLOAD}`),
    );
    return true;
  });
});

test("frame limit holds one full batch of RAM pages", () => {
  assert.ok(MAX_FRAME_PAYLOAD >= 8 + MAX_BATCH_PAGES * (4 + 4096));
  assert.ok(MAX_FRAME_PAYLOAD < 0x7fff_0000 / 16);
});
