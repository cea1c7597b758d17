/**
 * What the control plane (QMP) needs of live migration: QEMU's `migrate`,
 * `query-migrate`, `migrate_cancel` and `migrate-set-parameters`, in QEMU's own terms.
 */

/** QEMU's MigrationStatus values that armbox reports. */
export type MigrationStatus =
  | "none"
  | "setup"
  | "active"
  | "device"
  | "completed"
  | "failed"
  | "cancelling"
  | "cancelled";

export interface MigrationParameters {
  /** Maximum downtime in milliseconds (QEMU's default: 300). */
  "downtime-limit": number;
  /** Bandwidth cap in bytes per second (0 = unlimited). */
  "max-bandwidth": number;
}

/** Shaped like QEMU's MigrationInfo (query-migrate). */
export interface MigrationInfo {
  status: MigrationStatus;
  ram?: {
    transferred: number;
    remaining: number;
    total: number;
    duplicate: number;
    normal: number;
    "normal-bytes": number;
    "dirty-pages-rate": number;
    mbps: number;
    "dirty-sync-count": number;
  };
  "total-time"?: number;
  "expected-downtime"?: number;
  downtime?: number;
  "setup-time"?: number;
  "error-desc"?: string;
}

export interface MigrationController {
  /** Starts an outgoing migration to `uri` (`tcp:HOST:PORT` or `file:PATH`); rejects bad URIs. */
  start(uri: string): void;
  cancel(): void;
  info(): MigrationInfo;
  readonly parameters: MigrationParameters;
  setParameters(p: Partial<MigrationParameters>): void;
  /** Called on every status change (QMP's MIGRATION event). */
  onStatus: ((status: MigrationStatus) => void) | null;
}
