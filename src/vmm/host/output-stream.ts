/**
 * The console devices' output sink (src/devices/output-sink.ts) over a Node writable stream
 * (process.stdout): the host adapter that gives a guest backpressure when nobody reads.
 *
 * Bytes are gathered into pieces of up to PIECE bytes and written at the end of the current
 * turn (a microtask) or when a piece is full, so a guest writing one byte at a time does not
 * cost one stream write each. The sink reports the host as behind once what the stream holds
 * unwritten, plus the gathered piece, reaches `bound`; it drains at the stream's 'drain'.
 * A stream that writes synchronously (a file, a terminal) never holds anything, so it never
 * pushes back. A broken pipe (EPIPE: the reader went away) ends the output, reported once
 * through `onError`; the guest's later bytes are discarded, never a crash.
 */
import type { OutputSink } from "../../devices/output-sink.ts";

/** The default bound on what the host buffers for the guest's output. */
export const OUTPUT_BOUND = 1 << 16;
const PIECE = 1 << 14;

export interface StreamSinkOptions {
  /** The most bytes held for the stream before the guest is made to wait (default OUTPUT_BOUND). */
  bound?: number;
  /** Called once if the stream fails (e.g. EPIPE); output is discarded from then on. */
  onError?: (e: Error) => void;
}

export class StreamSink implements OutputSink {
  private piece = new Uint8Array(PIECE);
  private used = 0;
  private flushQueued = false;
  private failed = false;
  private waiters: (() => void)[] = [];
  private drainListening = false;
  readonly bound: number;

  constructor(
    private readonly stream: NodeJS.WritableStream & {
      readonly writableLength: number;
      readonly writableHighWaterMark?: number;
    },
    private readonly opts: StreamSinkOptions = {},
  ) {
    this.bound = Math.max(opts.bound ?? OUTPUT_BOUND, stream.writableHighWaterMark ?? 0);
    stream.on("error", (e: Error) => {
      if (this.failed) return;
      this.failed = true;
      this.used = 0;
      this.opts.onError?.(e);
      this.release();
    });
  }

  /** Bytes held on the host side: not yet written to the stream's file descriptor. */
  get buffered(): number {
    return this.failed ? 0 : this.stream.writableLength + this.used;
  }

  write(bytes: Uint8Array): boolean {
    if (this.failed) return true;
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, PIECE - this.used);
      this.piece.set(bytes.subarray(at, at + n), this.used);
      this.used += n;
      at += n;
      if (this.used === PIECE) this.flush();
    }
    if (this.used > 0 && !this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
    return !this.behind();
  }

  onDrain(cb: () => void): void {
    this.waiters.push(cb);
    this.flush();
    if (this.behind()) this.arm();
    else queueMicrotask(() => this.release());
  }

  /** Writes the gathered piece to the stream now. */
  flush(): void {
    if (this.used === 0 || this.failed) return;
    const out = this.piece.subarray(0, this.used);
    this.piece = new Uint8Array(PIECE);
    this.used = 0;
    this.stream.write(out);
  }

  private behind(): boolean {
    return !this.failed && this.buffered >= this.bound;
  }

  /**
   * Waits for 'drain': what is held reached the bound, which is at least the stream's
   * high-water mark, so the stream's last write returned false and 'drain' will follow.
   */
  private arm(): void {
    if (this.drainListening) return;
    this.drainListening = true;
    this.stream.once("drain", () => {
      this.drainListening = false;
      this.release();
    });
  }

  private release(): void {
    this.flush();
    if (this.behind()) {
      this.arm();
      return;
    }
    const w = this.waiters;
    this.waiters = [];
    for (const cb of w) cb();
  }
}
