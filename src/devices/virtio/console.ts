/**
 * virtio-console (VIRTIO 1.2 §5.3) with a single port and no VIRTIO_CONSOLE_F_MULTIPORT:
 * queue 0 is port 0's receiveq, queue 1 its transmitq. Linux binds it as /dev/hvc0.
 *
 * What the driver transmits goes to `output` at once, as the PL011's bytes do, while the host
 * keeps up. When the output sink says the host is behind (output-sink.ts), the device stops
 * taking transmit buffers: those the driver made available stay in the ring, unused, until
 * the sink drains, as QEMU's virtio-serial throttles a port whose chardev would block. A
 * buffer is sent in pieces of at most TX_CHUNK bytes, and the host may fall behind in the
 * middle of one: the device then puts it back and remembers how much of it went out
 * (`txOffset`, saved), so the host holds at most its bound plus one piece. Input is
 * pushed from outside with `input()`; it waits in a backlog until the driver has made
 * receive buffers available and is copied into them in order, so nothing typed is dropped
 * (up to 1 MiB waiting for a guest that does not read).
 */
import type { StateValue } from "../../lib/state.ts";
import { bool, loadState, saveState, uint, uints, vmstate } from "../../lib/vmstate.ts";
import { type Output, type OutputSink, toSink } from "../output-sink.ts";
import { configBytesRead, VIRTIO_ID, type VirtioContext, type VirtioDevice } from "./mmio.ts";

export const CONSOLE_RX = 0;
export const CONSOLE_TX = 1;

/** Undelivered input is bounded, in the device and in a (possibly corrupt) saved state. */
export const MAX_BACKLOG = 1 << 20;

/** The most bytes of a transmit buffer handed to the host at a time. */
export const TX_CHUNK = 1 << 16;

/**
 * Input not yet delivered to the guest, and where transmission stopped when the host fell
 * behind (section version 2; version 1 had only the backlog).
 */
const CONSOLE_STATE = vmstate()({
  version: 2,
  minVersion: 1,
  fields: {
    backlog: uints({ maxLength: MAX_BACKLOG, max: 0xff }),
    /** The host was behind: transmit buffers the driver made available wait in the ring. */
    txHeld: bool({ since: 2, absent: () => false }),
    /** Bytes of the next transmit buffer already sent (it was put back part-way). */
    txOffset: uint(0xffff_ffff, { since: 2, absent: () => 0 }),
  },
});

export interface VirtioConsoleOptions {
  /** Where transmitted bytes go; a sink may push back (output-sink.ts). */
  output: Output;
  /** Called when the guest has taken all pending input, so a VMM can read more. */
  onRxSpace?: () => void;
  /** QueueNumMax of both queues (default 128). */
  queueSize?: number;
}

export class VirtioConsole implements VirtioDevice {
  readonly stateName = "virtio-console";
  readonly stateVersion = CONSOLE_STATE.version;
  readonly deviceId = VIRTIO_ID.CONSOLE;
  readonly features = 0;
  readonly queueSizes: readonly number[];

  private readonly output: OutputSink;
  private readonly onRxSpace: (() => void) | undefined;
  /** struct virtio_console_config (§5.3.4): cols, rows (no F_SIZE), max_nr_ports = 1, emerg_wr. */
  private readonly config = Uint8Array.of(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0);
  private backlog: number[] = [];
  private backlogHead = 0;
  private ctx: VirtioContext | null = null;
  /** The sink said the host is behind: the transmitq is left alone until it drains. */
  private txHeld = false;
  /** Bytes of the transmit buffer at the ring's head already sent. */
  private txOffset = 0;

  constructor(opts: VirtioConsoleOptions) {
    this.output = toSink(opts.output);
    this.onRxSpace = opts.onRxSpace;
    const n = opts.queueSize ?? 128;
    this.queueSizes = [n, n];
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }

  // --- host side ------------------------------------------------------------------------

  /**
   * Input for the guest (e.g. stdin). Input waits for the driver's buffers; past
   * MAX_BACKLOG undelivered bytes (a guest that never reads) more is dropped.
   */
  input(bytes: Uint8Array): void {
    const room = MAX_BACKLOG - this.pending();
    for (let i = 0; i < bytes.length && i < room; i++) this.backlog.push(bytes[i]!);
    this.deliver();
  }

  /** Input bytes not yet taken by the guest. */
  pending(): number {
    return this.backlog.length - this.backlogHead;
  }

  // --- device -----------------------------------------------------------------------------

  configRead(offset: number, size: number): number {
    return configBytesRead(this.config, offset, size);
  }

  configWrite(): void {
    // emerg_wr needs VIRTIO_CONSOLE_F_EMERG_WRITE, which is not offered.
  }

  /**
   * Input already typed stays for the next driver; it is the host's, not the device's. A
   * buffer sent part-way belonged to the old driver; a host still behind stays behind.
   */
  reset(): void {
    this.txOffset = 0;
  }

  notify(i: number): void {
    if (i === CONSOLE_RX) this.deliver();
    else if (i === CONSOLE_TX) this.transmit();
  }

  private transmit(): void {
    const ctx = this.ctx;
    if (!ctx || this.txHeld) return;
    const q = ctx.queue(CONSOLE_TX);
    let done = 0;
    while (!this.txHeld) {
      const chain = q.pop();
      if (!chain) break;
      // A driver that rewrote a buffer it had made available (§2.7.13.1 forbids it) may
      // find it shorter than what was sent of it: the rest is then nothing.
      let at = Math.min(this.txOffset, chain.readableLength);
      while (at < chain.readableLength && !this.txHeld) {
        const piece = chain.read(at, TX_CHUNK);
        at += piece.length;
        if (!this.output.write(piece)) this.hold();
      }
      if (at < chain.readableLength) {
        q.unpop(); // the host fell behind mid-buffer: the rest goes when it drains
        this.txOffset = at;
        break;
      }
      this.txOffset = 0;
      q.push(chain.head, 0);
      done++;
    }
    if (done > 0) ctx.signal(CONSOLE_TX);
  }

  private hold(): void {
    this.txHeld = true;
    this.output.onDrain(() => {
      this.txHeld = false;
      if (this.ctx?.live) this.transmit();
    });
  }

  private deliver(): void {
    const ctx = this.ctx;
    if (!ctx?.live || this.pending() === 0) return;
    const q = ctx.queue(CONSOLE_RX);
    if (!q.ready) return;
    let done = 0;
    while (this.pending() > 0) {
      const chain = q.pop();
      if (!chain) break;
      const n = Math.min(chain.writableLength, this.pending());
      const bytes = Uint8Array.from(this.backlog.slice(this.backlogHead, this.backlogHead + n));
      this.backlogHead += chain.write(0, bytes);
      q.push(chain.head, n);
      done++;
    }
    if (done > 0) ctx.signal(CONSOLE_RX);
    if (this.pending() === 0) {
      this.backlog = [];
      this.backlogHead = 0;
      if (done > 0) this.onRxSpace?.();
    } else if (this.backlogHead > 4096) {
      this.backlog = this.backlog.slice(this.backlogHead);
      this.backlogHead = 0;
    }
  }

  // --- state ------------------------------------------------------------------------------

  saveState(): StateValue {
    return saveState(
      CONSOLE_STATE,
      { backlog: this.backlog.slice(this.backlogHead), txHeld: this.txHeld, txOffset: this.txOffset },
      undefined,
    );
  }

  loadState(s: StateValue, version: number): void {
    const st = loadState(CONSOLE_STATE, this.stateName, s, version, undefined);
    this.backlog = st.backlog;
    this.backlogHead = 0;
    this.txOffset = st.txOffset;
    this.txHeld = false;
    // Transmit buffers that waited for the host when the state was saved: the driver will
    // not notify again for them, so look at the transmitq once the restore (which loads the
    // queues after this device) is done.
    if (st.txHeld) queueMicrotask(() => this.ctx?.live && this.transmit());
  }
}
