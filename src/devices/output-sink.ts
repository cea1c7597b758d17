/**
 * Where a console device's transmitted bytes go: the host's output (stdout, a socket, a
 * browser callback, a test's buffer), with backpressure. A device whose sink reports that the
 * host is behind keeps its transmitter busy until the sink drains, as QEMU's character
 * backends make the PL011 and virtio-serial wait (qemu_chr_fe_write returning short, then a
 * watch for G_IO_OUT): the PL011 shows a full TX FIFO (FR.TXFF) and defers its TX interrupt,
 * the virtio console leaves transmit buffers unused. A guest that polls TXFF or waits for its
 * buffers simply waits; nothing is dropped and the host's buffer stays bounded.
 *
 * No host API here: the Node adapter (src/vmm/host/output-stream.ts) implements it over a
 * writable stream.
 */

export interface OutputSink {
  /**
   * Takes `bytes` (always: the sink keeps them, the caller must not change them afterwards).
   * Returns false when the host's buffer is above its bound: the caller should hold further
   * output until `onDrain` calls back.
   */
  write(bytes: Uint8Array): boolean;
  /**
   * Calls `cb` once, when the sink takes output again; never synchronously (from inside the
   * caller's write path), so a device may register from its MMIO handler.
   */
  onDrain(cb: () => void): void;
}

/** What a device is given: a sink, or a plain function, which never pushes back. */
export type Output = OutputSink | ((bytes: Uint8Array) => void);

/** `out` as a sink (a function becomes a sink that always takes more). */
export function toSink(out: Output): OutputSink {
  if (typeof out !== "function") return out;
  return {
    write(bytes) {
      out(bytes);
      return true;
    },
    onDrain(cb) {
      queueMicrotask(cb);
    },
  };
}

/**
 * One host sink shared by the console devices of a machine. With `hideBackpressure` (the
 * deterministic mode) the devices never see it push back: their writes always succeed, and
 * `held` tells the run loop to stop the vCPUs (and with them the VM's clock) until the host
 * has drained, so that what the guest observes, and the state digest, does not depend on how
 * fast the host reads. Otherwise the devices get the host sink itself and the guest sees the
 * backpressure, as on QEMU.
 */
export class OutputGate {
  /** The sink to give the devices. */
  readonly device: OutputSink;
  private heldFlag = false;
  private waiters: (() => void)[] = [];
  private frozen = false;
  /** Devices' drain callbacks that came while frozen. */
  private thawWaiters: (() => void)[] = [];

  constructor(
    readonly host: OutputSink,
    hideBackpressure: boolean,
  ) {
    this.device = hideBackpressure
      ? {
          write: (bytes) => {
            if (!host.write(bytes) && !this.heldFlag) {
              this.heldFlag = true;
              host.onDrain(() => this.release());
            }
            return true;
          },
          onDrain: (cb) => queueMicrotask(cb),
        }
      : {
          write: (bytes) => host.write(bytes),
          onDrain: (cb) => host.onDrain(() => (this.frozen ? this.thawWaiters.push(cb) : cb())),
        };
  }

  /**
   * Holds the devices' pending output where it is (in their state) until thaw(): for a
   * machine whose state has been captured to continue elsewhere (live migration's stop
   * and copy). Its vCPUs are stopped, so only a drain could make a device transmit, and
   * bytes it sent now would be sent again by the destination, which holds them too.
   */
  freeze(): void {
    this.frozen = true;
  }

  /** Lets the devices transmit again (the migration failed, or the VM runs here again). */
  thaw(): void {
    if (!this.frozen) return;
    this.frozen = false;
    const w = this.thawWaiters;
    this.thawWaiters = [];
    for (const cb of w) queueMicrotask(cb);
  }

  /** True while the host is behind and the deterministic run loop must wait (see above). */
  get held(): boolean {
    return this.heldFlag;
  }

  /** Calls `cb` once, when `held` is false again (on a later turn if it already is). */
  onRelease(cb: () => void): void {
    if (this.heldFlag) this.waiters.push(cb);
    else queueMicrotask(cb);
  }

  private release(): void {
    this.heldFlag = false;
    const w = this.waiters;
    this.waiters = [];
    for (const cb of w) cb();
  }
}
