/**
 * The QMP commands armbox answers, each with its arguments declared as data (checked the
 * way QEMU's QAPI visitors check them, with QEMU's messages) and one handler.
 *
 * Commands run one at a time on the server's queue (QEMU's main loop), except those marked
 * `concurrent`: snapshot-save and snapshot-load do their file I/O, encoding and decoding off
 * the queue and take it (`ctx.exclusive`) only for what must be atomic with respect to other
 * commands: stop the vCPUs, capture the state or swap the restored machine in, cont. So a
 * big or slow snapshot never holds up another client.
 *
 * armbox's own choices, where QEMU's command does not fit a VMM without disk images:
 * - `snapshot-save {"file"?: PATH, "tag"?: NAME, "compress"?: bool, "job-id"?: ID,
 *   "vmstate"?: PATH, "devices"?: [NAME]}` writes the whole VM (every vCPU's registers and
 *   MP state, GIC, timers, devices, RAM) to PATH (a temporary file renamed into place). The
 *   vCPUs are stopped for the capture only (STOP/RESUME, as QEMU's savevm) and run on if they
 *   were running; encoding and writing happen while the VM runs.
 *   - With `job-id` it is a QEMU 6.0 job (./jobs.ts): the reply `{}` comes at once, after
 *     JOB_STATUS_CHANGE `created` and `running`; then `waiting`, `pending`, `concluded` (or
 *     `aborting`, `concluded` with the reason in query-jobs' `error`); `job-dismiss` removes
 *     it (`null`). Progress is in bytes of the snapshot file.
 *   - Without `job-id` (armbox's older form) the reply comes when the file is written, and
 *     that client's later commands wait for it, as QEMU runs one client's commands in order.
 *   - `vmstate` is QEMU's block node receiving the VM state; armbox has no block nodes, its
 *     snapshot is a file, so `vmstate` names that file, the same as `file` (give either; if
 *     both, the same path).
 *   - `devices` is QEMU's list of block nodes snapshotted with the VM. armbox keeps no
 *     snapshots inside disk images (its disks are raw files, referenced, never copied, as
 *     in live migration), so the list must be empty: a name in it fails the command rather
 *     than be silently left out of the snapshot.
 * - `snapshot-load {"file"?: PATH, "tag"?: NAME, "job-id"?: ID, "vmstate"?: PATH,
 *   "devices"?: [NAME]}` replaces the VM with the one in PATH: the file is read (a regular
 *   file, bounded), decoded and restored into a fresh machine built from the snapshot's own
 *   configuration while the old VM runs on; then the old one is stopped, the new one swapped
 *   in and run if the old one was running. A `tag` must match the one saved. `job-id`,
 *   `vmstate` and `devices` as for snapshot-save. On any error the old VM is untouched and
 *   runs on as before. Progress is in bytes of the file read.
 * - `snapshot-delete {"file"?: PATH, "tag"?: NAME, "job-id"?: ID, "vmstate"?: PATH,
 *   "devices"?: [NAME]}` deletes the snapshot file PATH, once it has been read as an armbox
 *   snapshot holding `tag` (if given): anything else is refused and kept. Without a path, the
 *   file the snapshot of that tag was saved to through this VMM (QEMU's form: a tag alone).
 *   The same job shape.
 * - `query-jobs` and `job-dismiss {"id"}` as QEMU's (no job-cancel, -pause, -finalize: a
 *   snapshot job here cannot be interrupted half-way).
 * - `query-cpus-fast` adds `"mp-state"` to each vCPU: its KVM MP state, "RUNNABLE",
 *   "STOPPED" (PSCI CPU_OFF, or never started) or "SUSPENDED" (PSCI CPU_SUSPEND /
 *   SYSTEM_SUSPEND). `thread-id` is the VMM's process id: every vCPU runs on its thread.
 * - `system_powerdown`: the virt board here has no ACPI power button (no GED device), so
 *   instead of a request the guest could ignore, the VM is powered off at once: events
 *   POWERDOWN, then SHUTDOWN {"guest": false, "reason": "host-ui"}, and the VMM ends with
 *   status 0 (QEMU's default for a shut-down guest).
 * - `migrate` and `migrate-incoming` take `tcp:HOST:PORT`, `unix:PATH` and `file:PATH` only;
 *   `exec:` and everything else is refused — no shell is ever run.
 */
import * as fs from "node:fs";
import { MAX_VCPUS } from "../../arch/arm64/state.ts";
import { MP_STATE_NAMES } from "../../hv/mp-state.ts";
import { MAX_GIC_VCPUS } from "../../machine/memory-map.ts";
import { InputFileError, readInputFileAsync, SNAPSHOT_LIMIT } from "../host/input-file.ts";
import type { MigrationParameters } from "../migration/controller.ts";
import { decodeSnapshot, encodeSnapshotAsync } from "../snapshot/format.ts";
import {
  captureSections,
  configFromHeader,
  isLegacySnapshot,
  restoreSections,
  snapshotHeader,
} from "../snapshot/machine-state.ts";
import { hmpCommand } from "./hmp.ts";
import type { VmmHost } from "./host.ts";
import type { JobProgress, JobRegistry, JobType } from "./jobs.ts";
import { HMP_VERSION, QmpError, versionInfo } from "./protocol.ts";

type ArgType = "string" | "integer" | "boolean" | "array" | "object" | "any";
export type ArgSpec = Record<string, { type: ArgType; optional?: boolean }>;

export interface QmpContext {
  host: VmmHost;
  /** The VMM's jobs (shared by every client). */
  jobs: JobRegistry;
  /**
   * The files of the tagged snapshots saved here, by tag: QEMU's snapshot-delete names a
   * snapshot by its tag alone (QEMU keeps them inside the disk images, armbox in files).
   */
  snapshots: Map<string, string>;
  /**
   * Runs `fn` on the server's command queue, one at a time with every other client's
   * commands: for what a `concurrent` command must do atomically (stop, capture or swap, cont).
   */
  exclusive: <T>(fn: () => T | Promise<T>) => Promise<T>;
  /** Marks the connection as past capabilities negotiation. */
  negotiate: () => void;
  /** Run after the reply is sent (quit, power-off, a job's work). */
  afterReply: (() => void)[];
}

export interface QmpCommand {
  args: ArgSpec;
  /**
   * Runs off the command queue (its reply still comes in order for its client), taking
   * `ctx.exclusive` itself for its atomic part. Otherwise the whole command runs on the queue.
   */
  concurrent?: boolean;
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
      "'exec:' migration URIs are refused: armbox never runs a shell command; use tcp:HOST:PORT, unix:PATH or file:PATH",
    );
  }
  if (uri.startsWith("tcp:")) {
    const m = /^tcp:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(uri);
    if (m && Number(m[1]) <= 65535) return;
    throw generic(`Invalid migration URI '${uri}': use tcp:HOST:PORT`);
  }
  if (uri.startsWith("file:") || uri.startsWith("unix:")) {
    if (uri.length > 5 && !uri.includes("\0")) return;
    throw generic(`Invalid migration URI '${uri}': use ${uri.slice(0, 5)}PATH`);
  }
  throw generic(`Migration URI '${uri}' is not supported: use tcp:HOST:PORT, unix:PATH or file:PATH`);
}

/** The arguments snapshot-save and snapshot-load share, checked past their QAPI types. */
interface SnapshotArgs {
  file: string;
  tag: string | undefined;
  compress: boolean;
  devices: string[];
}

function snapshotArgs(
  cmd: JobType,
  args: Record<string, unknown>,
  known?: ReadonlyMap<string, string>,
): SnapshotArgs {
  const devices = (args.devices as unknown[] | undefined) ?? [];
  for (const [i, d] of devices.entries()) {
    if (typeof d !== "string") throw generic(`Invalid parameter type for 'devices[${i}]', expected: string`);
  }
  const file = args.file as string | undefined;
  const vmstate = args.vmstate as string | undefined;
  if (file !== undefined && vmstate !== undefined && file !== vmstate) {
    throw generic(`${cmd}: 'file' (${file}) and 'vmstate' (${vmstate}) name different files: give one`);
  }
  const path =
    file ??
    vmstate ??
    (cmd === "snapshot-delete" && typeof args.tag === "string" ? known?.get(args.tag) : undefined);
  if (path === undefined) {
    if (cmd !== "snapshot-delete") throw generic("Parameter 'file' is missing (or QEMU's 'vmstate')");
    if (typeof args.tag !== "string")
      throw generic("Parameter 'tag' is missing (or armbox's 'file' or 'vmstate')");
    throw generic(
      `snapshot-delete: no snapshot '${args.tag}' was saved through this VMM: give its file as 'vmstate'`,
    );
  }
  return {
    file: fileArg(path),
    tag: args.tag as string | undefined,
    compress: (args.compress as boolean | undefined) ?? true,
    devices: devices as string[],
  };
}

/** The arguments of snapshot-save, -load and -delete: QEMU 6.0's, and armbox's `file`. */
const SNAPSHOT_ARGS: ArgSpec = {
  file: { type: "string", optional: true },
  tag: { type: "string", optional: true },
  "job-id": { type: "string", optional: true },
  vmstate: { type: "string", optional: true },
  devices: { type: "array", optional: true },
};

/** A device list names disk images to snapshot; armbox keeps no snapshot inside one. */
function refuseDevices(cmd: JobType, devices: readonly string[]): void {
  if (devices.length === 0) return;
  throw generic(
    `${cmd}: armbox keeps no snapshots inside disk images, so '${devices[0]}' cannot be part of one (disks are raw files, referenced, never copied): give "devices": []`,
  );
}

/**
 * Lets the event loop run (other clients' commands, the VM) between two synchronous steps
 * of a snapshot's work; each step itself still holds the thread while it runs.
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

const NO_PROGRESS: JobProgress = { total: () => {}, done: () => {} };

/**
 * snapshot-save / snapshot-load: with `job-id` a job (created and running before the reply
 * `{}`, its work started once the reply is out, as QEMU's job coroutine yields to a bottom
 * half); without, the work itself, replied to when done.
 */
function snapshotCommand(
  cmd: JobType,
  args: Record<string, unknown>,
  ctx: QmpContext,
  work: (p: SnapshotArgs, progress: JobProgress) => Promise<void>,
): unknown {
  const p = snapshotArgs(cmd, args, ctx.snapshots);
  const id = args["job-id"] as string | undefined;
  if (id === undefined) return work(p, NO_PROGRESS).then(() => ({}));
  const job = ctx.jobs.create(id, cmd);
  ctx.jobs.start(job);
  ctx.afterReply.push(() => void ctx.jobs.run(job, (progress) => work(p, progress)));
  return {};
}

/**
 * snapshot-delete's work: the file must be an armbox snapshot holding `tag` (when given),
 * so that a wrong path never deletes what is not a snapshot, or another snapshot.
 */
async function deleteSnapshot(p: SnapshotArgs): Promise<void> {
  refuseDevices("snapshot-delete", p.devices);
  let raw: Uint8Array;
  try {
    raw = await readInputFileAsync("snapshot-delete:", p.file, SNAPSHOT_LIMIT);
  } catch (e) {
    if (e instanceof InputFileError) throw generic(e.message);
    throw generic(`snapshot-delete: cannot read '${p.file}': ${(e as Error).message}`);
  }
  let savedTag: unknown;
  try {
    savedTag = (decodeSnapshot(raw).header as { tag?: unknown }).tag;
  } catch (e) {
    throw generic(
      `snapshot-delete: ${p.file} is not an armbox snapshot (${(e as Error).message}); not deleted`,
    );
  }
  if (p.tag !== undefined && savedTag !== p.tag)
    throw generic(
      `snapshot-delete: ${p.file} holds ${typeof savedTag === "string" ? `snapshot '${savedTag}'` : "an untagged snapshot"}, not '${p.tag}'; not deleted`,
    );
  await fs.promises.unlink(p.file).catch((e: NodeJS.ErrnoException) => {
    throw generic(`snapshot-delete: cannot delete '${p.file}': ${e.code ?? e.message}`);
  });
}

/** Bytes per write call of a snapshot file (progress moves by this much). */
const WRITE_CHUNK = 4 << 20;
let tmpSerial = 0;

/** Writes `bytes` to a temporary file beside `file`, then renames it into place. */
async function writeFileAtomic(file: string, bytes: Uint8Array, progress: JobProgress): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${++tmpSerial}`;
  try {
    const h = await fs.promises.open(tmp, "w");
    try {
      for (let off = 0; off < bytes.length; ) {
        const { bytesWritten } = await h.write(bytes, off, Math.min(WRITE_CHUNK, bytes.length - off));
        off += bytesWritten;
        progress.done(off);
      }
    } finally {
      await h.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.unlink(tmp).catch(() => {});
    const err = e as NodeJS.ErrnoException;
    throw generic(`snapshot-save: cannot write '${file}': ${err.code ?? err.message}`);
  }
}

/**
 * snapshot-save's work: on the queue, stop the vCPUs, capture every section (copies, RAM
 * included), cont; then, while the VM runs, encode and write the file.
 */
async function saveSnapshot(p: SnapshotArgs, ctx: QmpContext, progress: JobProgress): Promise<void> {
  const { host } = ctx;
  refuseDevices("snapshot-save", p.devices);
  const { header, sections } = await ctx.exclusive(async () => {
    machineOrFail(host);
    if (host.runState() === "shutdown") throw generic("snapshot-save: the VM has shut down");
    if (migrationBusy(host)) throw generic("There's a migration process in progress");
    const wasRunning = await host.stop();
    try {
      const m = machineOrFail(host);
      const header = Object.assign(snapshotHeader(m), p.tag !== undefined ? { tag: p.tag } : {});
      return { header, sections: captureSections(m) };
    } finally {
      if (wasRunning) host.cont();
    }
  });
  const bytes = await encodeSnapshotAsync(header, sections, p.compress);
  progress.total(bytes.length);
  await writeFileAtomic(p.file, bytes, progress);
  if (p.tag !== undefined) ctx.snapshots.set(p.tag, p.file);
}

/**
 * snapshot-load's work: read, decode and restore into a fresh machine while the old VM runs
 * on; then, on the queue, stop the old one, swap the new one in, cont if it was running.
 * Any failure leaves the old VM as it was (not even stopped).
 */
async function loadSnapshot(p: SnapshotArgs, ctx: QmpContext, progress: JobProgress): Promise<void> {
  const { host } = ctx;
  const file = p.file;
  refuseDevices("snapshot-load", p.devices);
  const refuseState = () => {
    if (migrationBusy(host)) throw generic("There's a migration process in progress");
    if (host.runState() === "inmigrate") throw generic("Guest is waiting for an incoming migration");
  };
  refuseState();
  const size = await fs.promises.stat(file).then(
    (st) => (st.isFile() ? st.size : 0),
    () => 0,
  );
  progress.total(size);
  let raw: Uint8Array;
  try {
    raw = await readInputFileAsync("snapshot-load:", file, SNAPSHOT_LIMIT);
  } catch (e) {
    if (e instanceof InputFileError) throw generic(e.message);
    throw generic(`snapshot-load: cannot read '${file}': ${(e as Error).message}`);
  }
  progress.total(raw.length);
  progress.done(raw.length);
  let fresh: ReturnType<QmpContext["host"]["createMachine"]>;
  try {
    const decoded = decodeSnapshot(raw);
    const savedTag = (decoded.header as { tag?: unknown }).tag;
    if (p.tag !== undefined && savedTag !== p.tag) {
      throw generic(
        `snapshot-load: ${file} holds ${typeof savedTag === "string" ? `snapshot '${savedTag}'` : "an untagged snapshot"}, not '${p.tag}'`,
      );
    }
    const cfg = configFromHeader(decoded.header, decoded.sections);
    // Decoding and restoring are synchronous: let other clients in between the two.
    await yieldToEventLoop();
    fresh = host.createMachine(cfg);
    restoreSections(fresh, decoded.sections, {
      savedAt: decoded.header.savedAt,
      legacyFormat: isLegacySnapshot(decoded.header),
    });
  } catch (e) {
    if (e instanceof QmpError) throw e;
    throw generic(`snapshot-load: ${file}: ${(e as Error).message}`);
  }
  await ctx.exclusive(async () => {
    refuseState();
    if (host.runState() === "shutdown") throw generic("snapshot-load: the VM has shut down");
    const wasRunning = await host.stop();
    host.replaceMachine(fresh, false);
    if (wasRunning) host.cont();
  });
}

export const COMMANDS: Record<string, QmpCommand> = {
  qmp_capabilities: {
    args: { enable: { type: "array", optional: true } },
    run: (args, ctx) => {
      for (const [i, cap] of ((args.enable as unknown[] | undefined) ?? []).entries()) {
        // QAPI's visitor checks the element's type before the enum's values.
        if (typeof cap !== "string")
          throw generic(`Invalid parameter type for 'enable[${i}]', expected: string`);
        throw generic(`Capability '${cap}' not available`);
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
    args: { ...SNAPSHOT_ARGS, compress: { type: "boolean", optional: true } },
    concurrent: true,
    run: (args, ctx) =>
      snapshotCommand("snapshot-save", args, ctx, (p, progress) => saveSnapshot(p, ctx, progress)),
  },

  "snapshot-load": {
    args: SNAPSHOT_ARGS,
    concurrent: true,
    run: (args, ctx) =>
      snapshotCommand("snapshot-load", args, ctx, (p, progress) => loadSnapshot(p, ctx, progress)),
  },

  "snapshot-delete": {
    args: SNAPSHOT_ARGS,
    concurrent: true,
    run: (args, ctx) =>
      snapshotCommand("snapshot-delete", args, ctx, async (p) => {
        await deleteSnapshot(p);
        if (p.tag !== undefined && ctx.snapshots.get(p.tag) === p.file) ctx.snapshots.delete(p.tag);
      }),
  },

  "query-jobs": {
    args: {},
    run: (_a, { jobs }) => jobs.list(),
  },

  "job-dismiss": {
    args: { id: { type: "string" } },
    run: (args, { jobs }) => {
      jobs.dismiss(args.id as string);
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

  // The destination started with `-incoming defer` receives at the URI given here (QEMU's
  // messages when it was not deferred, or was started already).
  "migrate-incoming": {
    args: { uri: { type: "string" } },
    run: (args, { host }) => {
      const uri = args.uri as string;
      checkMigrationUri(uri);
      try {
        host.migrateIncoming(uri);
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

  system_reset: {
    args: {},
    run: (_a, { host }) => {
      try {
        host.reset();
      } catch (e) {
        throw generic((e as Error).message);
      }
      return {};
    },
  },

  // What libvirt and qmp-shell ask first (QEMU 7.2's shapes).
  "query-target": {
    args: {},
    run: () => ({ arch: "aarch64" }),
  },

  "query-machines": {
    args: {},
    run: () => [
      {
        name: "virt-7.2",
        alias: "virt",
        "cpu-max": Math.min(MAX_VCPUS, MAX_GIC_VCPUS),
        "hotpluggable-cpus": false,
        "numa-mem-supported": false,
        deprecated: false,
        "default-cpu-type": "cortex-a57-arm-cpu",
        "default-ram-id": "mach-virt.ram",
        acpi: false,
      },
    ],
  },

  "query-cpu-definitions": {
    args: {},
    // One CPU model: `max` is the same CPU (all armbox implements).
    run: () =>
      ["cortex-a57", "max"].map((name) => ({
        name,
        typename: `${name}-arm-cpu`,
        "migration-safe": true,
        static: false,
        deprecated: false,
      })),
  },

  "query-name": {
    args: {},
    run: (_a, { host }) => (host.name !== undefined ? { name: host.name } : {}),
  },

  "query-migrate-capabilities": {
    args: {},
    run: () => MIGRATION_CAPABILITIES.map((c) => ({ capability: c, state: c === "events" })),
  },

  "migrate-set-capabilities": {
    args: { capabilities: { type: "array" } },
    run: (args) => {
      for (const [i, c] of (args.capabilities as unknown[]).entries()) {
        const o = c as { capability?: unknown; state?: unknown };
        if (
          typeof o !== "object" ||
          o === null ||
          typeof o.capability !== "string" ||
          typeof o.state !== "boolean"
        )
          throw generic(
            `Invalid parameter type for 'capabilities[${i}]', expected: MigrationCapabilityStatus`,
          );
        if (!MIGRATION_CAPABILITIES.includes(o.capability))
          throw generic(`Parameter 'capability' does not accept value '${o.capability}'`);
        // armbox always sends MIGRATION events and has none of the others.
        if (o.state !== (o.capability === "events"))
          throw generic(
            `Migration capability '${o.capability}' cannot be ${o.state ? "enabled" : "disabled"} in armbox`,
          );
      }
      return {};
    },
  },

  "query-hotpluggable-cpus": {
    args: {},
    run: (_a, { host }) =>
      (host.machine?.vcpus ?? []).map((_v, i) => ({
        type: "cortex-a57-arm-cpu",
        "vcpus-count": 1,
        props: { "core-id": i, "thread-id": 0, "cluster-id": 0, "socket-id": 0 },
        "qom-path": `/machine/unattached/device[${i}]`,
      })),
  },

  "qom-list": {
    args: { path: { type: "string" } },
    run: (args, { host }) => qomNode(host, args.path as string).list,
  },

  "qom-get": {
    args: { path: { type: "string" }, property: { type: "string" } },
    run: (args, { host }) => {
      const node = qomNode(host, args.path as string);
      const p = args.property as string;
      if (!Object.hasOwn(node.props, p)) throw generic(`Property '${node.type}.${p}' not found`);
      return node.props[p];
    },
  },

  "human-monitor-command": {
    args: { "command-line": { type: "string" }, "cpu-index": { type: "integer", optional: true } },
    run: async (args, ctx) => {
      const cpu = (args["cpu-index"] as number | undefined) ?? 0;
      if (cpu < 0 || (ctx.host.machine !== null && cpu >= ctx.host.machine.vcpus.length))
        throw generic(
          `Parameter 'cpu-index' expects a number between 0 and ${(ctx.host.machine?.vcpus.length ?? 1) - 1}`,
        );
      // QEMU's monitor ends its lines with CR LF, through QMP too.
      const text = await hmpCommand(args["command-line"] as string, {
        host: ctx.host,
        cpu,
        pid: process.pid,
        version: HMP_VERSION,
        later: (fn) => ctx.afterReply.push(() => void fn()),
      });
      return text.replace(/\n/g, "\r\n");
    },
  },

  "query-qmp-schema": {
    args: {},
    run: () => qmpSchema(),
  },
};

/** QEMU 7.2's migration capabilities (MigrationCapability). */
const MIGRATION_CAPABILITIES: readonly string[] = [
  "xbzrle",
  "rdma-pin-all",
  "auto-converge",
  "zero-blocks",
  "compress",
  "events",
  "postcopy-ram",
  "x-colo",
  "release-ram",
  "block",
  "return-path",
  "pause-before-switchover",
  "multifd",
  "dirty-bitmaps",
  "postcopy-blocktime",
  "late-block-activate",
  "x-ignore-shared",
  "validate-uuid",
  "background-snapshot",
  "zero-copy-send",
  "postcopy-preempt",
];

/** The events armbox sends (server.ts), for the schema. */
export const QMP_EVENTS: readonly string[] = [
  "STOP",
  "RESUME",
  "POWERDOWN",
  "SHUTDOWN",
  "RESET",
  "MIGRATION",
  "JOB_STATUS_CHANGE",
];

/**
 * The QOM tree armbox answers qom-list and qom-get from: the machine, its vCPUs (with their
 * MP states) and the properties a management tool reads first.
 */
function qomNode(
  host: VmmHost,
  path: string,
): { type: string; list: { name: string; type: string }[]; props: Record<string, unknown> } {
  const m = host.machine;
  const n = m?.vcpus.length ?? 0;
  const p = path.replace(/\/+$/, "") || "/";
  if (p === "/")
    return {
      type: "container",
      list: [
        { name: "type", type: "string" },
        { name: "machine", type: "child<virt-7.2-machine>" },
      ],
      props: { type: "container" },
    };
  if (p === "/machine")
    return {
      type: "virt-7.2-machine",
      list: [
        { name: "type", type: "string" },
        { name: "unattached", type: "child<container>" },
        { name: "gic-version", type: "string" },
        { name: "smp", type: "SMPConfiguration" },
      ],
      props: { type: "virt-7.2-machine", "gic-version": "3", smp: { cpus: n, maxcpus: n } },
    };
  if (p === "/machine/unattached")
    return {
      type: "container",
      list: [
        { name: "type", type: "string" },
        ...Array.from({ length: n }, (_, i) => ({ name: `device[${i}]`, type: "child<cortex-a57-arm-cpu>" })),
      ],
      props: { type: "container" },
    };
  const cpu = /^\/machine\/unattached\/device\[(\d+)\]$/.exec(p);
  const v = cpu ? m?.vcpus[Number(cpu[1])] : undefined;
  if (v)
    return {
      type: "cortex-a57-arm-cpu",
      list: [
        { name: "type", type: "string" },
        { name: "mp-affinity", type: "uint64" },
        { name: "mp-state", type: "string" },
      ],
      props: {
        type: "cortex-a57-arm-cpu",
        "mp-affinity": v.mpidr,
        "mp-state": MP_STATE_NAMES[v.getMpState()] ?? String(v.getMpState()),
      },
    };
  throw new QmpError("DeviceNotFound", `Device '${path}' not found`);
}

/**
 * QEMU's SchemaInfo list (introspection), generated from COMMANDS and QMP_EVENTS so that
 * it says exactly what this table dispatches: each command with an object type of its
 * arguments (optional ones with `default: null`, as QEMU marks them) and `any` returns.
 */
export function qmpSchema(): Record<string, unknown>[] {
  const builtin: Record<ArgType, string> = {
    string: "str",
    integer: "int",
    boolean: "bool",
    array: "[any]",
    object: "any",
    any: "any",
  };
  const out: Record<string, unknown>[] = [];
  for (const [name, cmd] of Object.entries(COMMANDS)) {
    const members = Object.entries(cmd.args);
    const argType = members.length === 0 ? "q_empty" : `q_obj_${name}-arg`;
    out.push({ name, "meta-type": "command", "arg-type": argType, "ret-type": "any" });
    if (members.length > 0)
      out.push({
        name: argType,
        "meta-type": "object",
        members: members.map(([m, s]) => ({
          name: m,
          type: builtin[s.type],
          ...(s.optional ? { default: null } : {}),
        })),
      });
  }
  for (const e of QMP_EVENTS) out.push({ name: e, "meta-type": "event", "arg-type": "q_empty" });
  out.push({ name: "q_empty", "meta-type": "object", members: [] });
  out.push({ name: "str", "meta-type": "builtin", "json-type": "string" });
  out.push({ name: "int", "meta-type": "builtin", "json-type": "int" });
  out.push({ name: "bool", "meta-type": "builtin", "json-type": "boolean" });
  out.push({ name: "any", "meta-type": "builtin", "json-type": "value" });
  out.push({ name: "[any]", "meta-type": "array", "element-type": "any" });
  return out;
}
