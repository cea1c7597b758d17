/**
 * Arm PrimeCell Real Time Clock PL031 (Technical Reference Manual, DDI 0224), as the virt
 * board's RTC at 0x09010000 (SPI 2).
 *
 * The 32-bit counter counts seconds of an injected clock (`() => seconds`), so the device is
 * deterministic when the clock is: counter = floor(clock()) + delta, where a write to RTCLR
 * sets delta. The match interrupt (RTCRIS bit 0) is raised when the counter reaches RTCMR;
 * the device has no timer of its own, so it checks on every access and when the board calls
 * `poll()` (at `nextMatch()`, or periodically).
 */
import type { IrqLine } from "../lib/irq.ts";
import type { MmioDevice } from "../lib/mmio-device.ts";
import type { StateValue } from "../lib/state.ts";
import { loadState, type StateOf, saveState, uint, vmstate } from "../lib/vmstate.ts";

export const PL031_REG = {
  DR: 0x000,
  MR: 0x004,
  LR: 0x008,
  CR: 0x00c,
  IMSC: 0x010,
  RIS: 0x014,
  MIS: 0x018,
  ICR: 0x01c,
} as const;

/** RTCPeriphID0-3, RTCPCellID0-3: part 0x031, Arm, so Linux's rtc-pl031 binds (id 0x00041031). */
const ID_BYTES = [0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/**
 * What a snapshot holds (section version 1): the offset from the clock rather than the
 * reading, so that under the real-time clock a restored guest keeps wall time and under the
 * deterministic clock (restored with the VM) the reading comes out the same; loading never
 * reads the clock.
 */
const PL031_STATE = vmstate()({
  version: 1,
  minVersion: 1,
  fields: {
    /** Counter minus floor(clock()), modulo 2^32. */
    delta: uint(),
    /** Counter value when the match was last checked. */
    lastCount: uint(),
    mr: uint(),
    lr: uint(),
    imsc: uint(1),
    ris: uint(1),
  },
});
type Pl031State = StateOf<typeof PL031_STATE.fields>;

export interface Pl031Options {
  irq: IrqLine;
  /** Seconds since the Unix epoch (may be fractional); real or deterministic time. */
  clock: () => number;
  /** Snapshot section name; a board names it by its address ("pl031@9010000"). */
  name?: string;
}

export class Pl031 implements MmioDevice {
  readonly stateName: string;
  readonly stateVersion = PL031_STATE.version;
  readonly windowSize = 0x1000;

  private readonly irq: IrqLine;
  private readonly clock: () => number;
  /** The registers and the counter's offset from the clock: everything PL031_STATE saves. */
  private r: Pl031State = { delta: 0, lastCount: 0, mr: 0, lr: 0, imsc: 0, ris: 0 };
  private level = false;

  constructor(opts: Pl031Options) {
    this.irq = opts.irq;
    this.clock = opts.clock;
    this.stateName = opts.name ?? "pl031";
    this.r.lastCount = this.count();
  }

  private now(): number {
    const t = Math.floor(this.clock());
    return Number.isFinite(t) ? t : 0;
  }

  /** Current counter value (RTCDR). */
  count(): number {
    return (this.now() + this.r.delta) >>> 0;
  }

  /**
   * Raises the match interrupt if the counter passed RTCMR since the last check (the
   * hardware compares every second, so a match is not missed between two checks).
   */
  poll(): void {
    const c = this.count();
    const passed = (c - this.r.lastCount) >>> 0;
    const toMatch = (this.r.mr - this.r.lastCount) >>> 0;
    if (passed !== 0 && toMatch !== 0 && toMatch <= passed) this.r.ris = 1;
    this.r.lastCount = c;
    this.update();
  }

  /** The clock value (in the clock's seconds) at which the counter next equals RTCMR. */
  nextMatch(): number {
    const c = this.count();
    const ahead = (this.r.mr - c) >>> 0;
    return this.now() + (ahead === 0 ? 2 ** 32 : ahead);
  }

  get irqLevel(): boolean {
    return this.level;
  }

  private update(): void {
    const level = (this.r.ris & this.r.imsc) !== 0;
    if (level !== this.level) {
      this.level = level;
      this.irq.set(level);
    }
  }

  read(offset: number, size: number): number {
    this.poll();
    const reg = offset & ~3;
    const shift = (offset & 3) * 8;
    let v: number;
    switch (reg) {
      case PL031_REG.DR:
        v = this.count();
        break;
      case PL031_REG.MR:
        v = this.r.mr;
        break;
      case PL031_REG.LR:
        v = this.r.lr;
        break;
      case PL031_REG.CR:
        v = 1; // started at reset and cannot be stopped (TRM 3.3.4: writes after start have no effect)
        break;
      case PL031_REG.IMSC:
        v = this.r.imsc;
        break;
      case PL031_REG.RIS:
        v = this.r.ris;
        break;
      case PL031_REG.MIS:
        v = this.r.ris & this.r.imsc;
        break;
      default:
        v = reg >= 0xfe0 && reg <= 0xffc ? ID_BYTES[(reg - 0xfe0) >> 2]! : 0;
    }
    v >>>= shift;
    return size >= 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
  }

  write(offset: number, size: number, value: number): void {
    if (offset & 3) return;
    this.poll();
    if (size < 4) value &= (1 << (size * 8)) - 1;
    value >>>= 0;
    switch (offset) {
      case PL031_REG.MR:
        this.r.mr = value;
        if (this.count() === value) this.r.ris = 1; // matches at once, as QEMU does
        break;
      case PL031_REG.LR:
        this.r.lr = value;
        this.r.delta = (value - this.now()) >>> 0;
        this.r.lastCount = value;
        if (this.r.mr === value) this.r.ris = 1;
        break;
      case PL031_REG.IMSC:
        this.r.imsc = value & 1;
        break;
      case PL031_REG.ICR:
        this.r.ris &= ~(value & 1);
        break;
      default:
        return; // DR, CR (always started), RIS, MIS are read-only here
    }
    this.update();
  }

  saveState(): StateValue {
    return saveState(PL031_STATE, this.r, undefined);
  }

  loadState(s: StateValue, version: number): void {
    this.r = loadState(PL031_STATE, this.stateName, s, version, undefined);
    this.level = (this.r.ris & this.r.imsc) !== 0;
    this.irq.set(this.level);
  }
}
