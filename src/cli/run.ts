/**
 * `armbox run`: boots the virt board (what `qemu-system-aarch64 -M virt,gic-version=3
 * -cpu cortex-a57 -kernel F` does), with the serial console on stdin/stdout.
 * With no --kernel it boots the built-in demo guest and traces every vCPU's MP state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { type Command, Option } from "commander";
import type { JitOptions } from "../arch/arm64/jit/jit.ts";
import { MP_STATE_NAMES } from "../hv/mp-state.ts";
import { KvmError } from "../hv/onereg.ts";
import { MAX_GUEST_RAM, MIN_GUEST_RAM } from "../machine/memory-map.ts";
import { type VirtConfig, type VirtioDeviceConfig, VirtMachine } from "../machine/virt.ts";
import { VERSION } from "../version.ts";
import { openBlockFile } from "../vmm/block-file.ts";
import { attachGuestLog, type LogItem, parseLogItems } from "../vmm/guest-log.ts";
import { type InputLimit, readInputFile, SNAPSHOT_LIMIT } from "../vmm/host/input-file.ts";
import { StreamSink } from "../vmm/host/output-stream.ts";
import { lockstep } from "../vmm/jit-lockstep.ts";
import { parseIncomingUri, receiveIncoming } from "../vmm/migration/destination.ts";
import { OutgoingMigration } from "../vmm/migration/source.ts";
import {
  DEFAULT_DEADLINE_MS,
  DEFAULT_PROGRESS_MS,
  failureReason,
  MigrationError,
} from "../vmm/migration/stream.ts";
import { hmpCommand } from "../vmm/qmp/hmp.ts";
import { LocalVmmHost } from "../vmm/qmp/host.ts";
import { HMP_VERSION, qmpWaits } from "../vmm/qmp/protocol.ts";
import { type QmpServer, startQmp } from "../vmm/qmp/server.ts";
import { decodeSnapshot, encodeSnapshot, SnapshotError } from "../vmm/snapshot/format.ts";
import {
  captureSections,
  configFromHeader,
  isLegacySnapshot,
  restoreSections,
  snapshotHeader,
  stateDigest,
} from "../vmm/snapshot/machine-state.ts";
import { ConsoleMux } from "./console-mux.ts";
import {
  checkConsoleOptions,
  parseAccel,
  parseCpu,
  parseMachine,
  parseMemoryOption,
  parseQemuOpts,
  parseSmp,
} from "./qemu-options.ts";

/** The project directory (the one holding package.json), from src/cli or from dist/. */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return dir;
}
const root = projectRoot();
/** The built-in demo: brings every vCPU up and down with PSCI. */
export const DEMO_GUEST = path.join(root, "guests/baremetal/bin/hotplug.elf");
/**
 * The default guest: armbox's own small Linux (tools/linux/build-kernel.sh) with the
 * busybox initramfs (tools/linux/make-initramfs.sh --no-modules), to a shell on ttyAMA0.
 */
export const LINUX_GUEST = {
  kernel: path.join(root, "guests/linux/Image"),
  initrd: path.join(root, "guests/linux/initrd.cpio.gz"),
  append: "console=ttyAMA0",
} as const;
/** The built-in guests `--guest` names, with the vCPU count each boots on by default. */
const GUEST_SMP = { linux: 2, demo: 4 } as const;
const GUESTS = Object.keys(GUEST_SMP) as (keyof typeof GUEST_SMP)[];

export interface RunFlags {
  /** The built-in guest to boot when no --kernel is given: linux (default) or demo. */
  guest?: string;
  /** commander's negatable --no-reboot: false when given. */
  reboot?: boolean;
  kernel?: string;
  initrd?: string;
  dtb?: string;
  append?: string;
  /** --smp (absent: 1, or the built-in guest's own count). */
  smp?: string;
  memory: string;
  semihosting?: boolean;
  deterministic?: boolean;
  accel?: "jit" | "interp" | "check";
  dumpDtb?: string;
  traceMp?: boolean;
  psci?: string;
  stopAt?: string;
  save?: string;
  restore?: string;
  stateDigest?: boolean;
  qmp?: string;
  paused?: boolean;
  incoming?: string;
  /** --migration-deadline SECONDS: the overall deadline of a migration, either way. */
  migrationDeadline?: string;
  /** --drive file=X[,format=raw][,readonly=on][,serial=S] (repeatable). */
  drive?: string[];
  /** --device virtio-rng-device | virtio-serial-device | virtio-blk-device,drive=ID (repeatable). */
  device?: string[];
  /** QEMU's spellings (qemu-options.ts): -M virt[,…], -cpu, -nographic, -serial, -display, -monitor, -name. */
  machine?: string;
  cpu?: string;
  nographic?: boolean;
  serial?: string;
  display?: string;
  monitor?: string;
  name?: string;
  /** -d ITEMS and -D FILE: QEMU's log (vmm/guest-log.ts). */
  log?: string;
  logfile?: string;
  /** -s and -gdb DEV: QEMU's gdb stub, which armbox does not have yet (refused). */
  gdbDefault?: boolean;
  gdb?: string;
}

/**
 * Checks the options that only QEMU's command line has and folds them into armbox's:
 * `-accel tcg` is `--accel jit`, `-M virt,dumpdtb=F` is `--dump-dtb F` (and exits, as
 * QEMU does). Throws the one-line refusal of the first that armbox cannot honour.
 */
function qemuFlags(flags: RunFlags): { flags: RunFlags; dumpAndExit: boolean } {
  const out: RunFlags = { ...flags, accel: parseAccel(flags.accel ?? "jit") };
  if (flags.smp !== undefined) parseSmp(flags.smp);
  parseMemoryOption(flags.memory);
  if (flags.cpu !== undefined) parseCpu(flags.cpu);
  checkConsoleOptions(flags);
  if (flags.log !== undefined) parseLogItems(flags.log);
  if (flags.logfile !== undefined && flags.log === undefined)
    throw new Error(`-D ${flags.logfile}: there is nothing to log without -d ITEMS`);
  if (flags.gdbDefault || flags.gdb !== undefined)
    throw new Error(`${flags.gdb !== undefined ? `-gdb ${flags.gdb}` : "-s"}: armbox has no gdb stub yet`);
  let dumpAndExit = false;
  if (flags.machine !== undefined) {
    const m = parseMachine(flags.machine);
    if (m.dumpdtb !== undefined) {
      out.dumpDtb = m.dumpdtb;
      dumpAndExit = true;
    }
  }
  return { flags: out, dumpAndExit };
}

/** Parses a QEMU-style size: 256M, 1G, 65536K, or bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}' (use e.g. 256M or 1G)`);
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase()]!;
  return Number(m[1]) * (m[2] === "" ? 1024 * 1024 : mult); // a bare number is MiB, as QEMU's -m
}

/** Linux refuses a device tree larger than 2 MiB (MAX_FDT_SIZE); so does the board. */
const DTB_LIMIT: InputLimit = { maxBytes: 2 << 20, limit: "the 2 MiB a device tree may have" };

function onOff(what: string, v: string | undefined): boolean {
  if (v === undefined) return false;
  if (["on", "yes", "true", "y"].includes(v)) return true;
  if (["off", "no", "false", "n"].includes(v)) return false;
  throw new Error(`${what}=${v}: expected on or off`);
}

/**
 * The virtio devices of --drive and --device: the drives with if=virtio (the default)
 * first, in command-line order, then the devices in theirs. A drive with if=none and an
 * id is a disk for a `virtio-blk-device,drive=ID`, as in QEMU.
 */
export function virtioFromFlags(flags: Pick<RunFlags, "drive" | "device">): VirtioDeviceConfig[] {
  const out: VirtioDeviceConfig[] = [];
  const byId = new Map<string, { spec: string; o: Map<string, string>; used: boolean }>();
  const blk = (spec: string, o: Map<string, string>, serial: string | undefined): VirtioDeviceConfig => {
    const file = o.get("file");
    if (!file) throw new Error(`-drive ${spec}: file=PATH is required`);
    const format = o.get("format") ?? "raw";
    if (format !== "raw") throw new Error(`-drive ${spec}: format=${format} is not supported (raw only)`);
    const readOnly = onOff("readonly", o.get("readonly"));
    return {
      kind: "blk",
      backend: openBlockFile(file, { readOnly }),
      readOnly,
      ...(serial !== undefined ? { serial } : {}),
    };
  };
  for (const spec of flags.drive ?? []) {
    const o = parseQemuOpts(spec, "file");
    for (const k of o.keys()) {
      if (!["file", "format", "readonly", "if", "serial", "id"].includes(k))
        throw new Error(`-drive ${spec}: unknown property '${k}'`);
    }
    const iface = o.get("if") ?? "virtio";
    if (iface === "none") {
      const id = o.get("id");
      if (!id)
        throw new Error(`-drive ${spec}: if=none needs id=NAME (for -device virtio-blk-device,drive=NAME)`);
      if (byId.has(id)) throw new Error(`-drive ${spec}: duplicate drive id '${id}'`);
      byId.set(id, { spec, o, used: false });
    } else if (iface === "virtio") out.push(blk(spec, o, o.get("serial")));
    else throw new Error(`-drive ${spec}: if=${iface} is not supported (virtio, or none with -device)`);
  }
  for (const spec of flags.device ?? []) {
    const o = parseQemuOpts(spec, "driver");
    const driver = o.get("driver") ?? "";
    const allowed = driver === "virtio-blk-device" ? ["driver", "id", "drive", "serial"] : ["driver", "id"];
    for (const k of o.keys()) {
      if (!allowed.includes(k)) throw new Error(`-device ${spec}: unknown property '${k}'`);
    }
    if (driver === "virtio-rng-device") out.push({ kind: "rng" });
    else if (driver === "virtio-serial-device") out.push({ kind: "console" });
    else if (driver === "virtio-blk-device") {
      const id = o.get("drive");
      const d = id === undefined ? undefined : byId.get(id);
      if (d === undefined)
        throw new Error(
          `-device ${spec}: drive=${id ?? ""} names no -drive if=none,id=… (give the disk's id)`,
        );
      if (d.used) throw new Error(`-device ${spec}: drive '${id}' is already in use by another device`);
      d.used = true;
      out.push(blk(d.spec, d.o, o.get("serial") ?? d.o.get("serial")));
    } else
      throw new Error(
        `-device ${driver}: unknown device (armbox has virtio-blk-device, virtio-rng-device, virtio-serial-device)`,
      );
  }
  return out;
}

function traceMpStates(m: VirtMachine, diag: (line: string) => void): void {
  for (const v of m.vcpus) {
    v.onMpStateChange = (vc, from, to) =>
      diag(`vcpu ${vc.id}: ${MP_STATE_NAMES[from] ?? from} -> ${MP_STATE_NAMES[to] ?? to}`);
  }
}

/** Which built-in guest runs without --kernel (--guest linux|demo). */
function builtinGuest(flags: RunFlags): "linux" | "demo" {
  const g = flags.guest ?? "linux";
  if (!(GUESTS as string[]).includes(g))
    throw new Error(`--guest ${g}: the built-in guests are ${GUESTS.join(" and ")}`);
  return g as "linux" | "demo";
}

/** The machine the flags describe; without a kernel for an incoming migration. */
function configFromFlags(
  flags: RunFlags,
  demo: boolean,
  serialOutput: NonNullable<VirtConfig["serialOutput"]>,
  withKernel: boolean,
  virtio: VirtioDeviceConfig[],
): VirtConfig {
  const smp = parseSmp(flags.smp ?? "1").cpus;
  const memory = parseSize(parseMemoryOption(flags.memory));
  if (memory > MAX_GUEST_RAM)
    throw new Error(`--memory ${flags.memory}: at most 3G of guest RAM fits in one WebAssembly memory`);
  if (memory < MIN_GUEST_RAM) throw new Error(`--memory ${flags.memory}: at least 16M is needed`);
  if (flags.psci !== undefined && flags.psci !== "hvc" && flags.psci !== "smc")
    throw new Error("--psci must be hvc or smc");
  const builtin = demo ? builtinGuest(flags) : null;
  const base: VirtConfig = {
    smp: builtin !== null && flags.smp === undefined ? GUEST_SMP[builtin] : smp,
    memory,
    semihosting: flags.semihosting ?? false,
    deterministic: flags.deterministic ?? false,
    psciConduit: (flags.psci as "hvc" | "smc" | undefined) ?? "hvc",
    jit: jitOption(flags.accel),
    serialOutput,
    virtio,
  };
  if (!withKernel) return base;
  // The images are loaded into guest RAM: none can be larger than it.
  const inRam: InputLimit = { maxBytes: memory, limit: "the guest RAM (--memory)" };
  return {
    ...base,
    kernel: readInputFile(
      "kernel",
      flags.kernel ?? (builtin === "linux" ? LINUX_GUEST.kernel : DEMO_GUEST),
      inRam,
    ),
    ...(flags.initrd || builtin === "linux"
      ? { initrd: readInputFile("initrd", flags.initrd ?? LINUX_GUEST.initrd, inRam) }
      : {}),
    ...(flags.dtb ? { dtb: readInputFile("dtb", flags.dtb, DTB_LIMIT) } : {}),
    // --append replaces the built-in Linux's command line, as it would any kernel's.
    append: flags.append ?? (builtin === "linux" ? LINUX_GUEST.append : ""),
    gunzip: (data, max) => new Uint8Array(gunzipSync(data, { maxOutputLength: max })),
  };
}

/**
 * `--accel check`: the machine the flags describe, built twice (interpreted, translated),
 * run deterministically in lockstep for --stop-at instructions (jit-lockstep.ts). The
 * interpreted machine's console is printed; exit 0 when they agree, 1 at a divergence.
 */
function checkTranslator(
  flags: RunFlags,
  demo: boolean,
  serialOutput: NonNullable<VirtConfig["serialOutput"]>,
  virtio: VirtioDeviceConfig[],
  stopAt: bigint | undefined,
  diag: (line: string) => void,
): number {
  if (stopAt === undefined) throw new Error("--accel check needs --stop-at N (the instructions to check)");
  if (virtio.length > 0)
    throw new Error("--accel check runs two machines: it cannot share --drive or --device");
  const cfg = configFromFlags(flags, demo, serialOutput, true, virtio);
  const r = lockstep(
    (jit) =>
      new VirtMachine({ ...cfg, deterministic: true, jit, ...(jit ? { serialOutput: () => {} } : {}) }),
    { instructions: Number(stopAt) },
  );
  const d = r.divergence;
  if (d === null) {
    diag(
      `check: ${r.checked} instructions, translated and interpreted agree (${r.translated} ran translated)`,
    );
    return 0;
  }
  const word = d.word < 0 ? "?" : d.word.toString(16).padStart(8, "0");
  diag(
    `check: divergence after ${d.at} instructions: vCPU ${d.vcpu} at PC 0x${d.pc.toString(16)} (${word} ${d.name ?? "?"}): ${d.what}`,
  );
  return 1;
}

export async function runCommand(given: RunFlags): Promise<number> {
  const diag = (line: string) => process.stderr.write(`armbox: ${line}\n`);
  let flags: RunFlags;
  let dumpAndExit: boolean;
  // -d ITEMS: every machine this run builds (booted, restored, received) logs them.
  let logItems: Set<LogItem> | null = null;
  let logWrite: (text: string) => void = (t) => process.stderr.write(t);
  try {
    ({ flags, dumpAndExit } = qemuFlags(given));
    if (flags.log !== undefined) logItems = parseLogItems(flags.log);
    if (flags.logfile !== undefined) {
      const fd = fs.openSync(flags.logfile, "w");
      logWrite = (t) => fs.writeSync(fd, t);
    }
  } catch (e) {
    diag((e as Error).message);
    return 2;
  }
  const logTo = (m: VirtMachine) => {
    if (logItems !== null) attachGuestLog(m, logItems, logWrite);
  };
  let machine: VirtMachine | null = null;
  let incomingConfig: VirtConfig | null = null;
  // No kernel: the built-in guest, on its own vCPU count; so for an incoming migration,
  // whose destination runs the source's command line (QEMU's way) and must build its machine.
  const demo = flags.kernel === undefined && flags.restore === undefined;
  // The console's bytes, with backpressure: a guest waits while nobody reads stdout.
  const serialOutput = new StreamSink(process.stdout, {
    onError: (e) => host.abort({ kind: "error", code: 1, message: `console output: ${e.message}` }),
  });
  let stopAt: bigint | undefined;
  let migrationDeadlineMs = DEFAULT_DEADLINE_MS;
  // virtio devices: the same ones (the same open disk images) in every machine this run
  // builds, whether booted, restored or received.
  let virtio: VirtioDeviceConfig[] = [];
  try {
    virtio = virtioFromFlags(flags);
    if (flags.stopAt !== undefined) {
      if (!/^\d+$/.test(flags.stopAt) || BigInt(flags.stopAt) === 0n)
        throw new Error(`--stop-at ${flags.stopAt}: expected a positive instruction count`);
      stopAt = BigInt(flags.stopAt);
    }
    // Nothing but QMP `cont` continues a VM started paused: without a control socket it
    // would wait on nothing, and Node would end it with exit code 13 (issue 9).
    if (flags.paused && flags.qmp === undefined)
      throw new Error("--paused needs --qmp: only QMP cont can start the vCPUs");
    if (flags.migrationDeadline !== undefined) {
      const s = Number(flags.migrationDeadline);
      if (!/^\d+(\.\d+)?$/.test(flags.migrationDeadline) || !(s > 0) || s > 86_400)
        throw new Error(
          `--migration-deadline ${flags.migrationDeadline}: expected a number of seconds, more than 0 and at most 86400`,
        );
      migrationDeadlineMs = Math.round(s * 1000);
    }
    if (flags.save !== undefined && stopAt === undefined)
      throw new Error("--save needs --stop-at N (the instruction count to stop at)");
    if (flags.restore !== undefined) {
      if (flags.kernel !== undefined)
        throw new Error("--restore and --kernel cannot be combined: the snapshot holds the guest");
      const { header, sections } = decodeSnapshot(readInputFile("snapshot", flags.restore, SNAPSHOT_LIMIT));
      const config = configFromHeader(header, sections);
      machine = new VirtMachine({ ...config, serialOutput, virtio, jit: jitOption(flags.accel) });
      restoreSections(machine, sections, { savedAt: header.savedAt, legacyFormat: isLegacySnapshot(header) });
    } else if (flags.incoming !== undefined) {
      // A bad URI is a usage error, before anything listens; `defer` waits for QMP's
      // migrate-incoming, which needs the control socket.
      if (flags.incoming === "defer") {
        if (flags.qmp === undefined)
          throw new Error("--incoming defer needs --qmp: migrate-incoming starts it");
      } else parseIncomingUri(flags.incoming);
      // QEMU's way: the destination runs the source's own command line plus -incoming. Its
      // kernel, initrd and device tree are read (a missing one is an error, as in QEMU), not
      // loaded: the guest comes in the stream.
      incomingConfig = configFromFlags(flags, demo, serialOutput, true, virtio);
    } else if (flags.accel === "check") {
      return checkTranslator(flags, demo, serialOutput, virtio, stopAt, diag);
    } else {
      machine = new VirtMachine(configFromFlags(flags, demo, serialOutput, true, virtio));
    }
  } catch (e) {
    diag(
      `${flags.restore !== undefined && e instanceof SnapshotError ? `snapshot ${flags.restore}: ` : ""}${(e as Error).message}`,
    );
    return 2;
  }
  if (flags.dumpDtb && machine) {
    fs.writeFileSync(flags.dumpDtb, machine.dtb);
    if (flags.kernel === undefined || dumpAndExit) return 0;
  }
  const showDemo = demo && builtinGuest(flags) === "demo";
  if (machine && demo && !showDemo)
    diag(
      `no --kernel: booting the built-in Linux (${path.relative(process.cwd(), LINUX_GUEST.kernel)}) on ${machine.smp} vCPUs; Ctrl-A x quits`,
    );
  if (machine) logTo(machine);
  if (machine && (showDemo || flags.traceMp)) {
    if (showDemo)
      diag(
        `no --kernel: booting the demo guest (${path.relative(process.cwd(), DEMO_GUEST)}) on ${machine.smp} vCPUs`,
      );
    traceMpStates(machine, diag);
  }
  const stdin = process.stdin;
  let inputOpen = false;
  if (!flags.semihosting || stdin.isTTY) {
    inputOpen = true;
    if (stdin.isTTY) stdin.setRawMode(true);
    // Ctrl-A x quits, Ctrl-A c switches to QEMU's human monitor, as in QEMU's -nographic
    // console (console-mux.ts): on a terminal always; from a pipe with -nographic or
    // -serial mon:stdio (else the bytes are the guest's, whatever they are).
    const escapes = stdin.isTTY || flags.nographic === true || flags.serial === "mon:stdio";
    let monitorCpu = 0;
    const mux = new ConsoleMux({
      toGuest: (b) => host.machine?.consoleInput(b),
      write: (t) => process.stdout.write(t),
      tty: stdin.isTTY === true,
      banner: `armbox ${VERSION} monitor (QEMU 7.2's) - type 'help' for more information`,
      quit: () => {
        if (stdin.isTTY) stdin.setRawMode(false);
        process.stderr.write("\r\narmbox: terminated (Ctrl-A x)\r\n");
        process.exit(0);
      },
      monitor: async (line) => {
        const ctx = {
          host,
          cpu: monitorCpu,
          pid: process.pid,
          version: HMP_VERSION,
          later: (fn: () => unknown) => setImmediate(() => void fn()),
        };
        const text = await hmpCommand(line, ctx);
        monitorCpu = ctx.cpu;
        return text;
      },
    });
    stdin.on("data", (d: Buffer) => {
      const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      if (escapes) mux.feed(bytes);
      else host.machine?.consoleInput(new Uint8Array(bytes));
    });
    stdin.on("end", () => {
      inputOpen = false;
    });
    stdin.on("error", () => {
      inputOpen = false;
    });
  }
  // The VMM host runs the machine and lets the control plane (QMP) stop, continue,
  // snapshot, replace and migrate it; without --qmp it simply runs it.
  const output = (b: Uint8Array) => {
    serialOutput.write(b);
  };
  const traceMp = showDemo || flags.traceMp;
  // Receives the incoming migration at a URI (set below, once QMP is up).
  let receive: (uri: string) => void = () => {};
  const host = new LocalVmmHost({
    machine,
    run: {
      output,
      diag,
      inputOpen: () => inputOpen,
      ...(stopAt !== undefined ? { maxInstructions: stopAt } : {}),
    },
    makeMachine: (cfg) => {
      const m = new VirtMachine({ ...cfg, serialOutput, virtio, jit: jitOption(flags.accel) });
      if (traceMp) traceMpStates(m, diag);
      logTo(m);
      return m;
    },
    makeMigration: (m, r) => new OutgoingMigration(m, r, { diag, deadlineMs: migrationDeadlineMs }),
    startPaused: (flags.paused ?? false) || (flags.qmp !== undefined && qmpWaits(flags.qmp)),
    ...(flags.name !== undefined
      ? { name: parseQemuOpts(flags.name, "guest").get("guest") ?? flags.name }
      : {}),
    ...(flags.incoming === "defer"
      ? {
          deferredIncoming: (uri: string) => {
            parseIncomingUri(uri); // throws the reason to the QMP client
            receive(uri);
          },
        }
      : {}),
    noReboot: flags.reboot === false,
  });
  let qmp: QmpServer | null = null;
  if (flags.qmp !== undefined) {
    try {
      // QEMU's `-qmp …,server` (without nowait) waits for a client before the guest
      // starts: the vCPUs are held (prelaunch) until one connects, then run unless -S.
      const wait = qmpWaits(flags.qmp);
      qmp = await startQmp(flags.qmp, host, wait ? { onFirstClient: () => flags.paused || host.cont() } : {});
      if (wait) diag(`waiting for a QMP connection on ${flags.qmp} before starting the guest`);
    } catch (e) {
      diag(`--qmp ${flags.qmp}: ${(e as Error).message}`);
      return 2;
    }
  }
  if (incomingConfig) {
    const config = incomingConfig;
    // The destination of a live migration: nothing runs until the whole state has arrived
    // and loaded; a failed transfer ends armbox with a message, never a half-loaded VM.
    const refusePaused =
      qmp === null
        ? "the source's VM is paused and this destination has no control socket to continue it (give it --qmp)"
        : undefined;
    // Both outcomes end in host.start or host.abort, so host.run() below always settles.
    receive = (uri) =>
      void receiveIncoming(uri, config, {
        diag,
        deadlineMs: migrationDeadlineMs,
        ...(refusePaused ? { refusePaused } : {}),
      })
        .then((r) => {
          if (traceMp) traceMpStates(r.machine, diag);
          logTo(r.machine);
          diag(
            `incoming migration complete: ${r.bytes} bytes in ${r.ms.toFixed(0)} ms; the VM is ${r.runState}`,
          );
          host.start(r.machine, r.runState === "running");
        })
        .catch((e: unknown) => {
          // A MigrationError says what was wrong with the stream, a KvmError what this
          // destination cannot build (--smp 200); anything else is an armbox bug.
          const reason =
            e instanceof MigrationError || e instanceof KvmError ? e.message : failureReason(e, diag);
          host.abort({ kind: "error", code: 1, message: `incoming migration failed: ${reason}` });
        });
    if (flags.incoming === "defer") diag("waiting for QMP migrate-incoming (--incoming defer)");
    else receive(flags.incoming!);
  }
  const result = await host.run();
  await qmp?.close();
  machine = host.machine ?? machine;
  // The console's stdin listener would keep the event loop alive: release it on every path,
  // a refused incoming migration (no machine) included (issue 9: it never exited then).
  if (stdin.isTTY) stdin.setRawMode(false);
  stdin.pause();
  stdin.destroy();
  if (!machine) {
    if (result.kind === "error") diag(result.message);
    return result.kind === "error" ? result.code : 0;
  }
  let code: number;
  switch (result.kind) {
    case "shutdown":
      code = result.code;
      break;
    case "reset":
      diag("the guest reset the machine; not booting again (--no-reboot)");
      code = 0;
      break;
    case "limit":
      code = 0;
      break;
    case "quit":
      code = result.code;
      break;
    case "error":
      diag(result.message);
      code = result.code;
      break;
  }
  if (flags.save !== undefined) {
    if (result.kind !== "limit") {
      diag(`the guest stopped (${result.kind}) before instruction ${stopAt}; no snapshot written`);
      return 1;
    }
    try {
      fs.writeFileSync(flags.save, encodeSnapshot(snapshotHeader(machine), captureSections(machine)));
    } catch (e) {
      diag(`--save ${flags.save}: ${(e as Error).message}`);
      return 1;
    }
  }
  serialOutput.flush();
  if (flags.stateDigest) process.stdout.write(`state-digest: ${stateDigest(machine)}\n`);
  // A diagnostic for translator work (docs/JIT.md): what the code cache (one for all the
  // vCPUs) did, against the instructions of every vCPU.
  const jit = machine.vm.vcpus[0]?.cpu.jit;
  if (process.env.ARMBOX_JIT_STATS && jit) {
    const total = machine.vm.vcpus.reduce((n, v) => n + Number(v.cpu.instructionCount), 0);
    diag(`jit (${machine.vm.vcpus.length} vCPUs): ${jit.report(total)}`);
  }
  return code;
}

/**
 * `--accel jit` as the machine's option; ARMBOX_JIT_STATS=fallbacks also counts which
 * instructions translated code ran through their executors, and ARMBOX_JIT_NAMES=1 names
 * each translated function after its block's PC, for `node --cpu-prof` (diagnostics,
 * docs/JIT.md).
 */
export function jitOption(accel: string | undefined): boolean | JitOptions {
  if (accel !== "jit") return false;
  const countFallbacks = process.env.ARMBOX_JIT_STATS === "fallbacks";
  const names = process.env.ARMBOX_JIT_NAMES === "1";
  return countFallbacks || names ? { countFallbacks, names } : true;
}

export function registerRunCommand(program: Command, done: (p: Promise<number>) => void): void {
  program
    .command("run")
    .description(
      "boot the virt machine (like qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57); every option may be spelled QEMU's way, with one dash (-smp 4 -m 512 -kernel F)",
    )
    .option("--kernel <file>", "arm64 Image, ELF or raw binary (default: the built-in guest)")
    .option(
      "--guest <name>",
      "built-in guest without --kernel: linux (a shell; Ctrl-A x quits) or demo",
      "linux",
    )
    .option("--initrd <file>", "initial ramdisk")
    .option("--dtb <file>", "use this device tree instead of the generated one")
    .option("--append <cmdline>", "kernel command line (/chosen/bootargs)")
    .option(
      "--smp <n>",
      "vCPUs: N[,maxcpus=M][,sockets=S,cores=C,threads=T] (QEMU's -smp; default 1, the built-in Linux 2, the demo 4)",
    )
    .option("-m, --memory <size>", "guest RAM: 256M, 1G, or a number of MiB (QEMU's -m)", "256M")
    .option("-M, --machine <spec>", "virt[,gic-version=3][,dumpdtb=FILE]: QEMU's virt board, the only one")
    .option("--cpu <model>", "cortex-a57 (or max: the same CPU)")
    .option("--semihosting", "enable Arm semihosting (HLT #0xF000)")
    .option(
      "--no-reboot",
      "exit when the guest resets the machine instead of booting again (QEMU's -no-reboot)",
    )
    .option("--deterministic", "time from retired instructions; runs repeat exactly")
    .addOption(
      new Option(
        "--accel <kind>",
        "jit: translate hot guest code to WebAssembly (one code cache for all vCPUs of at most 2^20 translated instructions, dropped whole when full; QEMU's tcg is the same); interp: interpret every instruction; check: with --stop-at N, run translated and interpreted in lockstep (deterministic) and report the first divergence",
      ).default("jit"),
    )
    .option("--dump-dtb <file>", "write the generated device tree")
    .option("--trace-mp", "print every vCPU MP-state change on stderr")
    .option("--psci <conduit>", "PSCI conduit: hvc (default) or smc")
    .option("--stop-at <n>", "stop after N instructions (all vCPUs, deterministic order)")
    .option("--save <file>", "with --stop-at: write a snapshot of the stopped machine")
    .option("--restore <file>", "continue a snapshot (its machine configuration is used)")
    .option("--qmp <spec>", "QMP control socket: unix:PATH or tcp:HOST:PORT[,server,nowait]")
    .option(
      "--incoming <uri>",
      "receive a live migration (tcp:HOST:PORT, unix:PATH, file:PATH, or defer: at QMP migrate-incoming), then run; the rest of the command line may be the source's own",
    )
    .option(
      "--migration-deadline <seconds>",
      `give up a live migration, incoming or outgoing (QMP migrate), not complete within this time (default ${DEFAULT_DEADLINE_MS / 1000}); either side also gives up after ${DEFAULT_PROGRESS_MS / 1000} s without a byte moving`,
    )
    .option("-S, --paused", "start with the vCPUs stopped until QMP cont (QEMU's -S)")
    .option("--state-digest", "print state-digest: <sha256> of the whole machine when the run ends")
    .option(
      "--drive <spec>",
      "virtio-blk disk: file=IMG[,format=raw][,readonly=on][,serial=S][,if=virtio|none,id=ID] (repeatable)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option(
      "--device <name>",
      "virtio-blk-device,drive=ID, virtio-rng-device or virtio-serial-device (a virtio console, /dev/hvc0, on stdio) (repeatable)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option("--nographic", "no display, the serial console on stdio (what armbox always does)")
    .option("--serial <dev>", "stdio or mon:stdio: where the serial console is (stdio)")
    .option("--display <type>", "none (armbox has no display)")
    .option("--monitor <dev>", "none (the monitor is QMP: --qmp)")
    .option("--name <name>", "the VM's name (QMP query-name)")
    .option(
      "-d, --log <items>",
      "log int (exceptions taken), mmu (MMU faults), guest_errors (unassigned accesses), comma-separated, as QEMU's -d",
    )
    .option("-D, --logfile <file>", "write the -d log to FILE instead of stderr")
    .addOption(
      new Option("-s, --gdb-default", "QEMU's gdb stub on tcp::1234 (not yet in armbox: refused)").hideHelp(),
    )
    .addOption(new Option("--gdb <dev>", "QEMU's gdb stub (not yet in armbox: refused)").hideHelp())
    .action((flags: RunFlags) => done(runCommand(flags)));
}
