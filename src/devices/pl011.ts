/**
 * Arm PrimeCell UART PL011, revision r1p5 (Technical Reference Manual, DDI 0183G), as the
 * virt board's console at 0x09000000 (SPI 1).
 *
 * Transmission is instant while the host keeps up: a byte written to UARTDR goes straight to
 * `output`, so the TX FIFO stays empty (FR.TXFE=1, BUSY=0, TXFF=0). When the output sink says
 * the host is behind (see output-sink.ts), the transmitter is busy: later bytes wait in the
 * 32-entry TX FIFO (1 entry with LCR_H.FEN clear), FR.TXFF is set once it is full, and the
 * FIFO moves on to the host when the sink drains, as QEMU's pl011 waits on its chardev. A
 * byte written while TXFF is set is lost, as on the hardware (TRM 3.3.1) and QEMU: a guest
 * that polls TXFF loses nothing, and one that does not cannot grow the host's memory.
 * Received bytes come from `input()`; what does not fit the 32-entry RX FIFO (1 entry with
 * LCR_H.FEN clear) waits in a backlog and moves in as the guest reads, so nothing typed is
 * dropped.
 *
 * Interrupts (TRM 3.4.3 / 3.3.13): RX follows the FIFO level against IFLS (or "one byte" in
 * character mode); RT, the receive timeout, is modelled as firing at once whenever unread data
 * sits in the FIFO (the 32-bit-period silence of the hardware is instant for a guest that is
 * not reading); TX is raised each time a written byte leaves at once, i.e. on every DR write
 * while the host keeps up, which is the transition through the TX trigger level that Linux's
 * amba-pl011 driver waits for; while the host is behind it is deferred until the drain brings
 * the TX FIFO down to its trigger level (IFLS.TXIFLSEL; empty in character mode).
 * The five sources are ORed onto one level-sensitive line (UARTINTR), as on virt.
 */
import type { IrqLine } from "../lib/irq.ts";
import type { MmioDevice } from "../lib/mmio-device.ts";
import type { StateValue } from "../lib/state.ts";
import { loadState, type StateOf, saveState, uint, uints, vmstate } from "../lib/vmstate.ts";
import { type Output, type OutputSink, toSink } from "./output-sink.ts";

/** Register offsets (TRM table 3-1). */
export const PL011_REG = {
  DR: 0x000,
  RSR_ECR: 0x004,
  FR: 0x018,
  ILPR: 0x020,
  IBRD: 0x024,
  FBRD: 0x028,
  LCR_H: 0x02c,
  CR: 0x030,
  IFLS: 0x034,
  IMSC: 0x038,
  RIS: 0x03c,
  MIS: 0x040,
  ICR: 0x044,
  DMACR: 0x048,
} as const;

/** UARTFR bits. */
export const FR = {
  CTS: 1 << 0,
  DSR: 1 << 1,
  DCD: 1 << 2,
  BUSY: 1 << 3,
  RXFE: 1 << 4,
  TXFF: 1 << 5,
  RXFF: 1 << 6,
  TXFE: 1 << 7,
} as const;
/** Interrupt bits, common to IMSC / RIS / MIS / ICR. */
export const INT = {
  RI: 1 << 0,
  CTS: 1 << 1,
  DCD: 1 << 2,
  DSR: 1 << 3,
  RX: 1 << 4,
  TX: 1 << 5,
  RT: 1 << 6,
  FE: 1 << 7,
  PE: 1 << 8,
  BE: 1 << 9,
  OE: 1 << 10,
} as const;
const INT_ALL = 0x7ff;
export const CR = { UARTEN: 1 << 0, LBE: 1 << 7, TXE: 1 << 8, RXE: 1 << 9 } as const;
const LCRH_FEN = 1 << 4;

export const PL011_FIFO_DEPTH = 32;
/**
 * UARTPeriphID0-3 and UARTPCellID0-3 (TRM 3.3.14-3.3.21): part 0x011, designer 0x41 (Arm),
 * revision 3 (r1p5), so that Linux's amba bus binds amba-pl011 (id 0x00041011, mask 0x000fffff)
 * and the driver, seeing revision 3, uses a 32-byte FIFO.
 */
const ID_BYTES = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/** FIFO trigger levels for IFLS values 0..4: 1/8, 1/4, 1/2, 3/4, 7/8 full. */
const RX_TRIGGER = [4, 8, 16, 24, 28];
/** TX interrupt levels for IFLS.TXIFLSEL 0..4: the FIFO at or below 1/8 .. 7/8 full. */
const TX_TRIGGER = [4, 8, 16, 24, 28];

/**
 * What a snapshot holds (section version 2; version 1 had no TX FIFO). The RX FIFO may hold
 * up to 32 entries even with FEN clear: clearing FEN keeps what the FIFO already held.
 */
const PL011_STATE = vmstate()({
  version: 2,
  minVersion: 1,
  fields: {
    cr: uint(0xff87),
    lcrh: uint(0xff),
    ibrd: uint(0xffff),
    fbrd: uint(0x3f),
    ilpr: uint(0xff),
    ifls: uint(0x3f),
    imsc: uint(INT_ALL),
    dmacr: uint(7),
    rsr: uint(0xf),
    ris: uint(INT_ALL),
    /** Each entry is the byte and its error bits 11:8, as DR reads it. */
    rx: uints({ maxLength: PL011_FIFO_DEPTH, max: 0xfff }),
    /** Input that did not fit the FIFO yet. */
    backlog: uints({ max: 0xff }),
    /** Bytes written while the host was behind, not yet sent (empty unless it was). */
    tx: uints({ maxLength: PL011_FIFO_DEPTH, max: 0xff }, { since: 2, absent: () => [] }),
  },
});
type Pl011State = StateOf<typeof PL011_STATE.fields>;

export interface Pl011Options {
  irq: IrqLine;
  /** Where transmitted bytes go; a sink may push back (output-sink.ts). */
  output: Output;
  /** Called when the guest has drained the backlog, so a VMM can read more input. */
  onRxSpace?: () => void;
  /** Snapshot section name; a board names it by its address ("pl011@9000000"). */
  name?: string;
}

export class Pl011 implements MmioDevice {
  readonly stateName: string;
  readonly stateVersion = PL011_STATE.version;
  readonly windowSize = 0x1000;

  private readonly irq: IrqLine;
  private readonly output: OutputSink;
  private readonly onRxSpace: (() => void) | undefined;

  /** The registers, the RX FIFO and the input backlog: everything PL011_STATE saves. */
  private r: Pl011State = {
    cr: 0,
    lcrh: 0,
    ibrd: 0,
    fbrd: 0,
    ilpr: 0,
    ifls: 0,
    imsc: 0,
    dmacr: 0,
    rsr: 0,
    ris: 0,
    rx: [],
    backlog: [],
    tx: [],
  };
  /** Index of the next backlog byte to move into the FIFO (the backlog is compacted before a save). */
  private backlogHead = 0;
  private level = false;
  /** The sink said the host is behind: bytes wait in `r.tx` until it drains (host state, not saved). */
  private txHeld = false;
  /** Bytes written to DR while TXFF was set, lost (a guest that does not poll TXFF). */
  txDropped = 0;

  constructor(opts: Pl011Options) {
    this.irq = opts.irq;
    this.output = toSink(opts.output);
    this.onRxSpace = opts.onRxSpace;
    this.stateName = opts.name ?? "pl011";
    this.reset();
  }

  /** Power-on reset values (TRM table 3-1). */
  reset(): void {
    this.r.cr = CR.TXE | CR.RXE;
    this.r.lcrh = 0;
    this.r.ibrd = 0;
    this.r.fbrd = 0;
    this.r.ilpr = 0;
    this.r.ifls = 0x12;
    this.r.imsc = 0;
    this.r.dmacr = 0;
    this.r.rsr = 0;
    this.r.ris = 0;
    this.r.rx = [];
    this.r.tx = []; // a reset empties the FIFOs; a host still behind keeps the transmitter busy
    this.update();
  }

  // --- host side ------------------------------------------------------------------------

  /** Feeds received bytes (e.g. stdin); what does not fit the FIFO waits in the backlog. */
  input(bytes: Uint8Array): void {
    for (const b of bytes) this.r.backlog.push(b);
    this.fill();
    this.update();
  }

  /** How many more bytes could be received right now without waiting in the backlog. */
  canAccept(): number {
    return Math.max(0, this.capacity() - this.r.rx.length - this.pending());
  }

  /** Bytes waiting in the backlog for FIFO space. */
  pending(): number {
    return this.r.backlog.length - this.backlogHead;
  }

  /** Whether the interrupt line is asserted. */
  get irqLevel(): boolean {
    return this.level;
  }

  private capacity(): number {
    return this.r.lcrh & LCRH_FEN ? PL011_FIFO_DEPTH : 1;
  }

  private rxTrigger(): number {
    if (!(this.r.lcrh & LCRH_FEN)) return 1;
    return RX_TRIGGER[(this.r.ifls >> 3) & 7] ?? 16;
  }

  /** Moves backlog bytes into the FIFO while there is room. */
  private fill(): void {
    const cap = this.capacity();
    let moved = false;
    while (this.backlogHead < this.r.backlog.length && this.r.rx.length < cap) {
      this.receive(this.r.backlog[this.backlogHead++]!);
      moved = true;
    }
    if (this.backlogHead === this.r.backlog.length) {
      this.r.backlog = [];
      this.backlogHead = 0;
      if (moved) this.onRxSpace?.();
    } else if (this.backlogHead > 4096) {
      this.r.backlog = this.r.backlog.slice(this.backlogHead);
      this.backlogHead = 0;
    }
  }

  /** One character into the FIFO (the caller checked there is room). */
  private receive(entry: number): void {
    this.r.rx.push(entry);
    this.r.ris |= INT.RT;
    if (this.r.rx.length >= this.rxTrigger()) this.r.ris |= INT.RX;
  }

  private transmit(byte: number): void {
    if (this.r.cr & CR.LBE) {
      // Loopback (TRM 3.3.8): the transmitted byte is received instead of sent.
      if (this.r.rx.length < this.capacity()) this.receive(byte);
      else this.r.ris |= INT.OE;
    } else if (this.txHeld || this.r.tx.length > 0) {
      // The host is behind (or bytes from before a restore still wait): queue behind them.
      if (this.r.tx.length >= this.capacity()) {
        this.txDropped++;
        return;
      }
      this.r.tx.push(byte);
      if (!this.txHeld) this.sendTx();
      return;
    } else if (!this.output.write(Uint8Array.of(byte))) {
      this.hold();
    }
    this.r.ris |= INT.TX; // the byte left at once: the TX FIFO went through its trigger level
  }

  private hold(): void {
    this.txHeld = true;
    this.output.onDrain(() => {
      this.txHeld = false;
      this.sendTx();
      this.update();
    });
  }

  /** Moves the TX FIFO to the host while it takes more; raises TX at the trigger level. */
  private sendTx(): void {
    const tx = this.r.tx;
    let sent = 0;
    while (sent < tx.length && !this.txHeld) {
      if (!this.output.write(Uint8Array.of(tx[sent++]!))) this.hold();
    }
    if (sent > 0) tx.splice(0, sent);
    if (tx.length <= this.txTrigger()) this.r.ris |= INT.TX;
  }

  private txTrigger(): number {
    if (!(this.r.lcrh & LCRH_FEN)) return 0;
    return TX_TRIGGER[this.r.ifls & 7] ?? 16;
  }

  private update(): void {
    if (this.r.rx.length === 0) this.r.ris &= ~INT.RT;
    const level = (this.r.ris & this.r.imsc) !== 0;
    if (level !== this.level) {
      this.level = level;
      this.irq.set(level);
    }
  }

  private fr(): number {
    let v = 0;
    if (this.r.tx.length === 0) v |= FR.TXFE;
    if (this.r.tx.length >= this.capacity()) v |= FR.TXFF;
    if (this.txHeld || this.r.tx.length > 0) v |= FR.BUSY;
    if (this.r.rx.length === 0) v |= FR.RXFE;
    if (this.r.rx.length >= this.capacity()) v |= FR.RXFF;
    return v;
  }

  // --- MMIO -----------------------------------------------------------------------------

  read(offset: number, size: number): number {
    const reg = offset & ~3;
    const shift = (offset & 3) * 8;
    const v = this.readReg(reg, shift === 0);
    const width = size >= 4 ? 32 : size * 8;
    return width === 32 ? v >>> shift : (v >>> shift) & ((1 << width) - 1);
  }

  private readReg(reg: number, low: boolean): number {
    switch (reg) {
      case PL011_REG.DR: {
        if (!low || this.r.rx.length === 0) return this.r.rx[0] ?? 0;
        const e = this.r.rx.shift()!;
        this.r.rsr = (e >> 8) & 0xf;
        if (this.r.rx.length < this.rxTrigger()) this.r.ris &= ~INT.RX;
        if (this.r.rx.length > 0) this.r.ris |= INT.RT; // more unread data: the timeout runs again
        this.fill();
        this.update();
        return e;
      }
      case PL011_REG.RSR_ECR:
        return this.r.rsr;
      case PL011_REG.FR:
        return this.fr();
      case PL011_REG.ILPR:
        return this.r.ilpr;
      case PL011_REG.IBRD:
        return this.r.ibrd;
      case PL011_REG.FBRD:
        return this.r.fbrd;
      case PL011_REG.LCR_H:
        return this.r.lcrh;
      case PL011_REG.CR:
        return this.r.cr;
      case PL011_REG.IFLS:
        return this.r.ifls;
      case PL011_REG.IMSC:
        return this.r.imsc;
      case PL011_REG.RIS:
        return this.r.ris;
      case PL011_REG.MIS:
        return this.r.ris & this.r.imsc;
      case PL011_REG.DMACR:
        return this.r.dmacr;
      default:
        if (reg >= 0xfe0 && reg <= 0xffc) return ID_BYTES[(reg - 0xfe0) >> 2]!;
        return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    if (offset & 3) return; // registers are written through their low byte lane
    if (size < 4) value &= (1 << (size * 8)) - 1;
    value >>>= 0;
    switch (offset) {
      case PL011_REG.DR:
        this.transmit(value & 0xff);
        break;
      case PL011_REG.RSR_ECR:
        this.r.rsr = 0; // any write clears the error flags
        break;
      case PL011_REG.ILPR:
        this.r.ilpr = value & 0xff;
        break;
      case PL011_REG.IBRD:
        this.r.ibrd = value & 0xffff;
        break;
      case PL011_REG.FBRD:
        this.r.fbrd = value & 0x3f;
        break;
      case PL011_REG.LCR_H: {
        // Toggling FEN changes the FIFO depth; data already received is kept, not flushed.
        this.r.lcrh = value & 0xff;
        this.fill();
        if (this.r.rx.length >= this.rxTrigger()) this.r.ris |= INT.RX;
        else this.r.ris &= ~INT.RX;
        break;
      }
      case PL011_REG.CR:
        this.r.cr = value & 0xff87; // bits 6:3 are reserved
        break;
      case PL011_REG.IFLS:
        this.r.ifls = value & 0x3f;
        if (this.r.rx.length >= this.rxTrigger()) this.r.ris |= INT.RX;
        else this.r.ris &= ~INT.RX;
        break;
      case PL011_REG.IMSC:
        this.r.imsc = value & INT_ALL;
        break;
      case PL011_REG.ICR:
        this.r.ris &= ~(value & INT_ALL);
        break;
      case PL011_REG.DMACR:
        this.r.dmacr = value & 0x7;
        break;
      default:
        return;
    }
    this.update();
  }

  // --- state ----------------------------------------------------------------------------

  saveState(): StateValue {
    this.compactBacklog();
    return saveState(PL011_STATE, this.r, undefined);
  }

  loadState(s: StateValue, version: number): void {
    this.r = loadState(PL011_STATE, this.stateName, s, version, undefined);
    this.backlogHead = 0;
    // Bytes that waited for the host when the state was saved go to this machine's output.
    this.txHeld = false;
    if (this.r.tx.length > 0) this.sendTx();
    // Drive the line from the loaded state whatever it was before.
    this.update();
    this.irq.set(this.level);
  }

  private compactBacklog(): void {
    if (this.backlogHead === 0) return;
    this.r.backlog = this.r.backlog.slice(this.backlogHead);
    this.backlogHead = 0;
  }
}
