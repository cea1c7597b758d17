/**
 * How a component describes its own state for snapshots and migration, in the spirit of
 * QEMU's VMStateDescription: a name, a version, and a plain JSON-safe value. `load`
 * treats its input as untrusted and throws a `StateError` naming what is wrong.
 */
export type StateValue = number | string | boolean | null | StateValue[] | { [key: string]: StateValue };

export interface Stateful {
  /** Section name, unique within a machine (e.g. "pl011@9000000": kind@base). */
  readonly stateName: string;
  /** Version of the layout this build writes. */
  readonly stateVersion: number;
  saveState(): StateValue;
  /** Restores from `s` written by version `version` (<= stateVersion); throws StateError. */
  loadState(s: StateValue, version: number): void;
}

export class StateError extends Error {
  constructor(section: string, message: string) {
    super(`${section}: ${message}`);
    this.name = "StateError";
  }
}

/** Reads a numeric field from an untrusted state object, with range checking. */
export function stateNumber(section: string, s: StateValue, key: string, min = 0, max = 0xffffffff): number {
  const v = typeof s === "object" && s !== null && !Array.isArray(s) ? s[key] : undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new StateError(section, `field '${key}' is missing or out of range`);
  }
  return v;
}

/** Reads an array of integers from an untrusted state object. */
export function stateNumbers(
  section: string,
  s: StateValue,
  key: string,
  length?: number,
  max = 0xffffffff,
): number[] {
  const v = typeof s === "object" && s !== null && !Array.isArray(s) ? s[key] : undefined;
  if (!Array.isArray(v) || (length !== undefined && v.length !== length)) {
    throw new StateError(section, `field '${key}' is missing or has the wrong length`);
  }
  for (const x of v) {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > max) {
      throw new StateError(section, `field '${key}' holds a bad value`);
    }
  }
  return v as number[];
}
