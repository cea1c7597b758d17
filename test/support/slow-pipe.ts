/**
 * A child's stdout read only when the test asks (a slow or stalled reader, as a console
 * nobody looks at), and the checker of the byte stream guests/flood writes (the child's CPU
 * time and memory are in proc.ts). For the console backpressure tests: while the test does
 * not read, the kernel pipe (64 KiB) and this stream's buffer (its high-water mark) fill, and
 * the VMM must make the guest wait rather than buffer what it writes.
 */

import type { Readable } from "node:stream";

/** Reads `stream` in bites the test asks for; between bites nothing is read. */
export class PipeReader {
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly stream: Readable) {
    stream.pause();
    const notify = () => {
      const w = this.wake;
      this.wake = null;
      w?.();
    };
    stream.on("readable", notify);
    stream.once("end", () => {
      this.ended = true;
      notify();
    });
    stream.once("error", (e: Error) => {
      this.failure = e;
      notify();
    });
  }

  /** Bytes read from the pipe into the stream's buffer but not yet taken by a bite. */
  get buffered(): number {
    return this.stream.readableLength;
  }

  /** At least 1 and at most `max` bytes, when some are there; null at the end of the stream. */
  async bite(max: number): Promise<Buffer | null> {
    for (;;) {
      if (this.failure) throw this.failure;
      const n = Math.min(max, this.stream.readableLength);
      if (n > 0) {
        const b = this.stream.read(n) as Buffer | null;
        if (b !== null) return b;
      }
      if (this.ended) return null;
      await new Promise<void>((r) => {
        this.wake = r;
        // Asks the stream to fill its buffer (it stops reading the pipe once that is full).
        if (this.stream.readableLength === 0) this.stream.read(0);
      });
    }
  }
}

/**
 * The byte stream of guests/flood (flood.c, vflood.c): anything before "flood start\n" (the
 * runtime's banner), then 64-byte lines, line n being n in 8 hex digits, a space, the 54
 * letters 'a' + (n + i) % 26 and '\n'; after `lines` lines (a finite flood) the rest is kept
 * in `tail`. Every byte is checked as it is fed: the first one out of place throws, naming
 * where it is.
 */
export class FloodStream {
  /** Bytes of numbered lines checked so far. */
  bytes = 0;
  /** Text after the last line of a finite flood ("flood done: ..."). */
  tail = "";
  private prefix = "";
  private started = false;
  private line = 0;
  private col = 0;
  private hex = "00000000";

  constructor(private readonly lines = Number.POSITIVE_INFINITY) {}

  /** Whole lines checked so far. */
  get linesSeen(): number {
    return this.line;
  }

  feed(b: Uint8Array): void {
    let i = 0;
    if (!this.started) {
      // The banner is short: look for the start marker in what came so far.
      this.prefix += Buffer.from(b).toString("latin1");
      const at = this.prefix.indexOf("flood start\n");
      if (at < 0) {
        if (this.prefix.length > 4096)
          throw new Error(`no "flood start" line in ${JSON.stringify(this.prefix.slice(0, 200))}`);
        return;
      }
      this.started = true;
      const rest = Buffer.from(this.prefix.slice(at + "flood start\n".length), "latin1");
      this.prefix = "";
      this.feed(rest);
      return;
    }
    for (; i < b.length; i++) {
      if (this.line >= this.lines) {
        this.tail += Buffer.from(b.subarray(i)).toString("latin1");
        return;
      }
      const c = this.col;
      let want: number;
      if (c < 8) want = this.hex.charCodeAt(c);
      else if (c === 8) want = 0x20;
      else if (c < 63) want = 0x61 + ((this.line + c - 9) % 26);
      else want = 0x0a;
      if (b[i] !== want) {
        const got = Buffer.from(b.subarray(i, i + 64)).toString("latin1");
        throw new Error(
          `flood stream: byte ${this.bytes} (line ${this.line}, column ${c}) is ${JSON.stringify(String.fromCharCode(b[i]!))}, ` +
            `expected ${JSON.stringify(String.fromCharCode(want))}; from there: ${JSON.stringify(got)}`,
        );
      }
      this.bytes++;
      if (++this.col === 64) {
        this.col = 0;
        this.line++;
        this.hex = (this.line >>> 0).toString(16).padStart(8, "0");
      }
    }
  }
}
