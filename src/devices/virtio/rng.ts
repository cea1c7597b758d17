/**
 * virtio entropy device (VIRTIO 1.2 §5.4): one request queue whose device-writable buffers
 * the device fills with random bytes. No feature bits, no configuration space.
 *
 * The bytes come from an `EntropySource`: the host's generator in real-time runs, or in
 * deterministic mode a seeded one (`SeededEntropy`) whose position is saved with the device,
 * so that a restored run draws the same bytes as one that never stopped.
 */
import type { StateValue } from "../../lib/state.ts";
import { loadState, optional, saveState, uint, vmstate } from "../../lib/vmstate.ts";
import { VIRTIO_ID, type VirtioContext, type VirtioDevice } from "./mmio.ts";

export interface EntropySource {
  /** Fills `buf` completely. */
  fill(buf: Uint8Array): void;
  /** Where a deterministic generator stands; saved and restored with the device when present. */
  position?: number;
}

/** At most this much per request (§5.4.6.1: the device MAY use less than the whole buffer). */
export const RNG_MAX_REQUEST = 65536;

/** murmur3's 32-bit finaliser: a bijective mix with good avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A deterministic generator for deterministic runs (not for cryptography): word i of the
 * stream is a keyed mix of the counter i, so its whole state is the seed and `position`
 * (the words drawn so far), which a snapshot carries.
 */
export class SeededEntropy implements EntropySource {
  position = 0;
  private readonly key: Uint32Array;

  constructor(seed: Uint8Array) {
    // Four key words, each an FNV-1a hash of every seed byte from its own starting value.
    const key = new Uint32Array(4);
    for (let j = 0; j < 4; j++) {
      let h = fmix32(Math.imul(0x9e3779b9, j + 1));
      for (const b of seed) h = Math.imul(h ^ b, 0x01000193);
      key[j] = fmix32(h ^ seed.length);
    }
    this.key = key;
  }

  private word(i: number): number {
    const lo = i >>> 0;
    const hi = Math.floor(i / 0x1_0000_0000) >>> 0;
    let x = fmix32(lo ^ this.key[0]!);
    x = fmix32((x + (hi ^ this.key[1]!)) >>> 0);
    x = fmix32((x ^ this.key[2]!) + Math.imul(lo, 0x9e3779b9));
    return (x ^ this.key[3]!) >>> 0;
  }

  fill(buf: Uint8Array): void {
    for (let at = 0; at < buf.length; at += 4) {
      let w = this.word(this.position++);
      for (let k = 0; k < 4 && at + k < buf.length; k++, w >>>= 8) buf[at + k] = w & 0xff;
    }
  }
}

/**
 * A seeded generator's position (deterministic runs); nothing for the host's CSPRNG, whose
 * output no snapshot could repeat anyway.
 */
const RNG_STATE = vmstate<VirtioRng>()({
  version: 1,
  minVersion: 1,
  fields: { position: optional(uint(Number.MAX_SAFE_INTEGER)) },
  check: (s, r) =>
    (s.position !== undefined) === r.seeded
      ? null
      : r.seeded
        ? "field 'position' is missing (this source is a seeded generator)"
        : "a seeded generator's position, but this source has none",
});

export class VirtioRng implements VirtioDevice {
  readonly stateName = "virtio-rng";
  readonly stateVersion = RNG_STATE.version;
  readonly deviceId = VIRTIO_ID.ENTROPY;
  readonly features = 0;
  readonly queueSizes: readonly number[];
  private readonly source: EntropySource;
  private ctx: VirtioContext | null = null;

  /** `source` is a `{ fill }` over the host's generator, or a SeededEntropy; QueueNumMax 64 by default. */
  constructor(source: EntropySource, opts: { queueSize?: number } = {}) {
    this.source = source;
    this.queueSizes = [opts.queueSize ?? 64];
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }

  configRead(): number {
    return 0;
  }

  configWrite(): void {}

  reset(): void {}

  notify(i: number): void {
    const ctx = this.ctx;
    if (!ctx || i !== 0) return;
    const q = ctx.queue(0);
    let done = 0;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const buf = new Uint8Array(Math.min(chain.writableLength, RNG_MAX_REQUEST));
      this.source.fill(buf);
      q.push(chain.head, chain.write(0, buf));
      done++;
    }
    if (done > 0) ctx.signal(0);
  }

  saveState(): StateValue {
    return saveState(RNG_STATE, { position: this.source.position }, this);
  }

  loadState(s: StateValue, version: number): void {
    const { position } = loadState(RNG_STATE, this.stateName, s, version, this);
    if (position !== undefined) this.source.position = position;
  }

  /** Whether the entropy source is a seeded generator with a position to save. */
  get seeded(): boolean {
    return this.source.position !== undefined;
  }
}
