/** A level-sensitive interrupt line: what a device holds, never the GIC itself. */
export interface IrqLine {
  set(level: boolean): void;
}

/** A line that goes nowhere (devices created before the board wires them). */
export const NO_IRQ: IrqLine = { set() {} };
