/**
 * The QMP commands armbox answers, each with its arguments declared as data (checked the
 * way QEMU's QAPI visitors check them, with QEMU's messages) and one handler.
 *
 * armbox's own choices, where QEMU's command does not fit a VMM without disk images:
 * - `snapshot-save {"file": PATH, "tag"?: NAME, "compress"?: bool, "job-id"?: ID}` writes
 *   the whole VM (every vCPU's registers and MP state, GIC, timers, devices, RAM) to PATH
 *   and returns when the file is written. QEMU's snapshot-save is a background job storing
 *   into qcow2 images; here there is no job: `job-id` is accepted and ignored. The vCPUs
 *   are stopped for the capture (STOP/RESUME events, as QEMU's savevm sends) and run on
 *   if they were running.
 * - `snapshot-load {"file": PATH, "tag"?: NAME}` replaces the VM with the one in PATH: a
 *   fresh machine is built from the snapshot's own configuration and the state restored
 *   into it; it runs if the VM was running. A `tag` must match the one saved. On any
 *   error the old VM is untouched and runs on as before.
 * - `query-cpus-fast` adds `"mp-state"` to each vCPU: its KVM MP state, "RUNNABLE",
 *   "STOPPED" (PSCI CPU_OFF, or never started) or "SUSPENDED" (PSCI CPU_SUSPEND /
 *   SYSTEM_SUSPEND). `thread-id` is the VMM's process id: every vCPU runs on its thread.
 * - `system_powerdown`: the virt board here has no ACPI power button (no GED device), so
 *   instead of a request the guest could ignore, the VM is powered off at once: events
 *   POWERDOWN, then SHUTDOWN {"guest": false, "reason": "host-ui"}, and the VMM ends with
 *   status 0 (QEMU's default for a shut-down guest).
 * - `migrate` takes `tcp:HOST:PORT` and `file:PATH` only; `exec:` and everything else is
 *   refused — no shell is ever run.
 */
import * as fs from "node:fs";
import { MP_STATE_NAMES } from "../../hv/mp-state.ts";
import { InputFileError, readInputFileAsync, SNAPSHOT_LIMIT } from "../host/input-file.ts";
import type { MigrationParameters } from "../migration/controller.ts";
import { decodeSnapshot, encodeSnapshot, SnapshotError } from "../snapshot/format.ts";
import {
  captureSections,
  configFromHeader,
  restoreSections,
  snapshotHeader,
} from "../snapshot/machine-state.ts";
import type { VmmHost } from "./host.ts";
import { QmpError, versionInfo } from "./protocol.ts";

type ArgType = "string" | "integer" | "boolean" | "array" | "object" | "any";
export type ArgSpec = Record<string, { type: ArgType; optional?: boolean }>;

export interface QmpContext {
  host: VmmHost;
  /** Marks the connection as past capabilities negotiation. */
  negotiate: () => void;
  /** Run after the reply is sent (quit, power-off). */
  afterReply: (() => void)[];
}

export interface QmpCommand {
  args: ArgSpec;
  run: (args: Record<string, unknown>, ctx: QmpContext) => unknown | Promise<unknown>;
}

/** QAPI's argument checks: unexpected, missing and mistyped members, in QEMU's words. */
export function checkArguments(spec: ArgSpec, args: Record<string, unknown>): void {
  for (const k of Object.keys(args)) {
    if (!Object.hasOwn(spec, k)) throw new QmpError("GenericError", `Parameter '${k}' is unexpected`);
  }
  for (const [k, s] of Object.entries(spec)) {
    if (!Object.hasOwn(args, k)) {
      if (s.optional) continue;
      throw new QmpError("GenericError", `Parameter '${k}' is missing`);
    }
    const v = args[k];
    const ok =
      s.type === "any" ||
      (s.type === "string" && typeof v === "string") ||
      (s.type === "integer" && Number.isSafeInteger(v)) ||
      (s.type === "boolean" && typeof v === "boolean") ||
      (s.type === "array" && Array.isArray(v)) ||
      (s.type === "object" && typeof v === "object" && v !== null && !Array.isArray(v));
    if (!ok) throw new QmpError("GenericError", `Invalid parameter type for '${k}', expected: ${s.type}`);
  }
}

/**
 * snapshot-load reads a regular file of at most the largest guest RAM and its state, in
 * bounded reads off the event loop (`/dev/zero`, a FIFO, a directory are refused at once).
 */
const generic = (desc: string) => new QmpError("GenericError", desc);

function machineOrFail(host: VmmHost) {
  const m = host.machine;
  if (!m) throw generic("Guest is waiting for an incoming migration");
  return m;
}

function migrationBusy(host: VmmHost): boolean {
  const s = host.migration?.info().status ?? "none";
  return s === "setup" || s === "active" || s === "device" || s === "cancelling";
}

function fileArg(v: unknown): string {
  const f = v as string;
  if (f === "" || f.includes("\0")) throw generic(`Parameter 'file' is not a valid path`);
  return f;
}

/** A migration URI armbox accepts: `tcp:HOST:PORT` or `file:PATH`. Never a shell command. */
export function checkMigrationUri(uri: string): void {
  if (/^exec:/.test(uri)) {
    throw generic(
      "'exec:' migration URIs are refused: armbox never runs a shell command; use tcp:HOST:PORT or file:PATH",
    );
  }
  if (uri.startsWith("tcp:")) {
    const m = /^tcp:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(uri);
    if (m && Number(m[1]) <= 65535) return;
    throw generic(`Invalid migration URI '${uri}': use tcp:HOST:PORT`);
  }
  if (uri.startsWith("file:")) {
    if (uri.length > 5 && !uri.includes("\0")) return;
    throw generic(`Invalid migration URI '${uri}': use file:PATH`);
  }
  throw generic(`Migration URI '${uri}' is not supported: use tcp:HOST:PORT or file:PATH`);
}

function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  return fs.promises
    .writeFile(tmp, bytes)
    .then(() => fs.promises.rename(tmp, file))
    .catch(async (e: NodeJS.ErrnoException) => {
      await fs.promises.unlink(tmp).catch(() => {});
      throw generic(`snapshot-save: cannot write '${file}': ${e.code ?? e.message}`);
    });
}

export const COMMANDS: Record<string, QmpCommand> = {
  qmp_capabilities: {
    args: { enable: { type: "array", optional: true } },
    run: (args, ctx) => {
      for (const cap of (args.enable as unknown[] | undefined) ?? []) {
        throw generic(`Capability '${String(cap)}' not available`);
      }
      ctx.negotiate();
      return {};
    },
  },

  "query-version": {
    args: {},
    run: () => versionInfo(),
  },

  "query-commands": {
    args: {},
    run: () => Object.keys(COMMANDS).map((name) => ({ name })),
  },

  "query-status": {
    args: {},
    run: (_a, { host }) => {
      const status = host.runState();
      return { running: status === "running", singlestep: false, status };
    },
  },

  stop: {
    args: {},
    run: async (_a, { host }) => {
      await host.stop();
      return {};
    },
  },

  cont: {
    args: {},
    run: (_a, { host }) => {
      if (host.runState() === "shutdown") throw generic("Resetting the Virtual Machine is required");
      host.cont();
      return {};
    },
  },

  "query-cpus-fast": {
    args: {},
    run: (_a, { host }) =>
      (host.machine?.vcpus ?? []).map((v, i) => ({
        "cpu-index": i,
        "qom-path": `/machine/unattached/device[${i}]`,
        "thread-id": process.pid,
        props: { "core-id": i, "thread-id": 0, "cluster-id": 0, "socket-id": 0 },
        target: "aarch64",
        "mp-state": MP_STATE_NAMES[v.getMpState()] ?? String(v.getMpState()),
      })),
  },

  "snapshot-save": {
    args: {
      file: { type: "string" },
      tag: { type: "string", optional: true },
      compress: { type: "boolean", optional: true },
      "job-id": { type: "string", optional: true },
    },
    run: async (args, { host }) => {
      const file = fileArg(args.file);
      const m = machineOrFail(host);
      if (host.runState() === "shutdown") throw generic("snapshot-save: the VM has shut down");
      if (migrationBusy(host)) throw generic("There's a migration process in progress");
      const wasRunning = await host.stop();
      let bytes: Uint8Array;
      try {
        const header = Object.assign(
          snapshotHeader(m),
          args.tag !== undefined ? { tag: args.tag as string } : {},
        );
        bytes = encodeSnapshot(header, captureSections(m), (args.compress as boolean | undefined) ?? true);
      } finally {
        if (wasRunning) host.cont();
      }
      await writeFileAtomic(file, bytes);
      return {};
    },
  },

  "snapshot-load": {
    args: {
      file: { type: "string" },
      tag: { type: "string", optional: true },
      "job-id": { type: "string", optional: true },
    },
    run: async (args, { host }) => {
      const file = fileArg(args.file);
      if (migrationBusy(host)) throw generic("There's a migration process in progress");
      if (host.runState() === "inmigrate") throw generic("Guest is waiting for an incoming migration");
      let raw: Uint8Array;
      try {
        raw = await readInputFileAsync("snapshot-load:", file, SNAPSHOT_LIMIT);
      } catch (e) {
        if (e instanceof InputFileError) throw generic(e.message);
        throw generic(`snapshot-load: cannot read '${file}': ${(e as Error).message}`);
      }
      const bad = (e: unknown): never => {
        if (e instanceof SnapshotError) throw generic(`snapshot-load: ${file}: ${e.message}`);
        throw e;
      };
      let decoded: ReturnType<typeof decodeSnapshot>;
      try {
        decoded = decodeSnapshot(raw);
      } catch (e) {
        return bad(e);
      }
      const savedTag = (decoded.header as { tag?: unknown }).tag;
      if (args.tag !== undefined && savedTag !== args.tag) {
        throw generic(
          `snapshot-load: ${file} holds ${typeof savedTag === "string" ? `snapshot '${savedTag}'` : "an untagged snapshot"}, not '${args.tag as string}'`,
        );
      }
      let cfg: ReturnType<typeof configFromHeader>;
      try {
        cfg = configFromHeader(decoded.header, decoded.sections);
      } catch (e) {
        return bad(e);
      }
      const wasRunning = await host.stop();
      try {
        const fresh = host.createMachine(cfg);
        restoreSections(fresh, decoded.sections, { savedAt: decoded.header.savedAt });
        host.replaceMachine(fresh, false);
      } catch (e) {
        if (wasRunning) host.cont();
        if (e instanceof SnapshotError) return bad(e);
        throw generic(`snapshot-load: ${file}: ${(e as Error).message}`);
      }
      if (wasRunning) host.cont();
      return {};
    },
  },

  migrate: {
    args: { uri: { type: "string" }, detach: { type: "boolean", optional: true } },
    run: (args, { host }) => {
      const mig = host.migration;
      const uri = args.uri as string;
      checkMigrationUri(uri);
      if (!mig) throw generic("migration is not available in this VMM");
      if (host.runState() === "inmigrate") throw generic("Guest is waiting for an incoming migration");
      if (migrationBusy(host)) throw generic("There's a migration process in progress");
      try {
        mig.start(uri);
      } catch (e) {
        throw generic((e as Error).message);
      }
      return {};
    },
  },

  "migrate-set-parameters": {
    args: {
      "downtime-limit": { type: "integer", optional: true },
      "max-bandwidth": { type: "integer", optional: true },
    },
    run: (args, { host }) => {
      const mig = host.migration;
      if (!mig) throw generic("migration is not available in this VMM");
      const p: Partial<MigrationParameters> = {};
      if (args["downtime-limit"] !== undefined) {
        const d = args["downtime-limit"] as number;
        if (d < 0 || d > 2_000_000) {
          throw generic(
            "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds",
          );
        }
        p["downtime-limit"] = d;
      }
      if (args["max-bandwidth"] !== undefined) {
        const b = args["max-bandwidth"] as number;
        if (b < 0) throw generic("Parameter 'max_bandwidth' expects a non-negative number of bytes/second");
        p["max-bandwidth"] = b;
      }
      mig.setParameters(p);
      return {};
    },
  },

  "query-migrate-parameters": {
    args: {},
    run: (_a, { host }) => {
      const mig = host.migration;
      if (!mig) throw generic("migration is not available in this VMM");
      return { ...mig.parameters };
    },
  },

  "query-migrate": {
    args: {},
    run: (_a, { host }) => {
      const info = host.migration?.info();
      // QEMU answers {} while no migration has ever happened.
      if (!info || info.status === "none") return {};
      return info;
    },
  },

  migrate_cancel: {
    args: {},
    run: (_a, { host }) => {
      host.migration?.cancel();
      return {};
    },
  },

  system_powerdown: {
    args: {},
    run: (_a, ctx) => {
      ctx.afterReply.push(() => ctx.host.powerdown());
      return {};
    },
  },

  quit: {
    args: {},
    run: (_a, ctx) => {
      ctx.afterReply.push(() => ctx.host.quit(0));
      return {};
    },
  },
};
