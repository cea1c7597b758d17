/**
 * virtio-console (VIRTIO 1.2 §5.3) with a single port and no VIRTIO_CONSOLE_F_MULTIPORT:
 * queue 0 is port 0's receiveq, queue 1 its transmitq. Linux binds it as /dev/hvc0.
 *
 * What the driver transmits goes to `output` at once, as the PL011's bytes do. Input is
 * pushed from outside with `input()`; it waits in a backlog until the driver has made
 * receive buffers available and is copied into them in order, so nothing typed is dropped
 * (up to 1 MiB waiting for a guest that does not read).
 */
import type { StateValue } from "../../lib/state.ts";
import { loadState, saveState, uints, vmstate } from "../../lib/vmstate.ts";
import { configBytesRead, VIRTIO_ID, type VirtioContext, type VirtioDevice } from "./mmio.ts";

export const CONSOLE_RX = 0;
export const CONSOLE_TX = 1;

/** Undelivered input is bounded, in the device and in a (possibly corrupt) saved state. */
export const MAX_BACKLOG = 1 << 20;

/** Input not yet delivered to the guest (section version 1). */
const CONSOLE_STATE = vmstate()({
  version: 1,
  minVersion: 1,
  fields: { backlog: uints({ maxLength: MAX_BACKLOG, max: 0xff }) },
});

export interface VirtioConsoleOptions {
  output: (bytes: Uint8Array) => void;
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

  private readonly output: (bytes: Uint8Array) => void;
  private readonly onRxSpace: (() => void) | undefined;
  /** struct virtio_console_config (§5.3.4): cols, rows (no F_SIZE), max_nr_ports = 1, emerg_wr. */
  private readonly config = Uint8Array.of(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0);
  private backlog: number[] = [];
  private backlogHead = 0;
  private ctx: VirtioContext | null = null;

  constructor(opts: VirtioConsoleOptions) {
    this.output = opts.output;
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

  /** Input already typed stays for the next driver; it is the host's, not the device's. */
  reset(): void {}

  notify(i: number): void {
    if (i === CONSOLE_RX) this.deliver();
    else if (i === CONSOLE_TX) this.transmit();
  }

  private transmit(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queue(CONSOLE_TX);
    let done = 0;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      if (chain.readableLength > 0) this.output(chain.read(0, chain.readableLength));
      q.push(chain.head, 0);
      done++;
    }
    if (done > 0) ctx.signal(CONSOLE_TX);
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
    return saveState(CONSOLE_STATE, { backlog: this.backlog.slice(this.backlogHead) }, undefined);
  }

  loadState(s: StateValue, version: number): void {
    this.backlog = loadState(CONSOLE_STATE, this.stateName, s, version, undefined).backlog;
    this.backlogHead = 0;
  }
}
