/**
 * What the QMP server needs of the VMM that owns it (`VmmHost`), and `LocalVmmHost`, the
 * implementation `armbox run` uses: it owns the current machine and its run loop, can swap
 * in a restored machine (snapshot-load), and turns run-state changes into events.
 */
import { MP_STATE_NAMES } from "../../hv/mp-state.ts";
import type { MachineConfig, VirtMachine } from "../../machine/virt.ts";
import type { MigrationController, MigrationStatus } from "../migration/controller.ts";
import { MachineRunner, type RunOptions, type RunResult } from "../runner.ts";

/** QEMU's RunState values armbox reports in query-status. */
export type RunState =
  | "running"
  | "paused"
  | "shutdown"
  | "inmigrate"
  | "postmigrate"
  | "finish-migrate"
  | "prelaunch";

/** QEMU's ShutdownCause values that armbox emits in the SHUTDOWN event. */
export type ShutdownReason =
  | "guest-shutdown"
  | "guest-reset"
  | "host-qmp-quit"
  | "host-qmp-system-reset"
  | "host-ui"
  | "guest-panic";

export type HostEvent =
  | { kind: "stop" }
  | { kind: "resume" }
  | { kind: "shutdown"; guest: boolean; reason: ShutdownReason }
  /** The machine was reset and boots again (QEMU's RESET event). */
  | { kind: "reset"; guest: boolean; reason: ShutdownReason }
  | { kind: "powerdown" }
  | { kind: "migration"; status: MigrationStatus };

export interface VmmHost {
  /** The current machine (null while waiting for an incoming migration). */
  readonly machine: VirtMachine | null;
  /** The VM's name (QEMU's -name; query-name), if it has one. */
  readonly name?: string;
  /** The current machine's migration controller, if this VMM can migrate. */
  readonly migration: MigrationController | null;
  runState(): RunState;
  /** Stops every vCPU; resolves once they are stopped. False if it was not running. */
  stop(): Promise<boolean>;
  /** Lets the vCPUs run again. False if it was already running (or cannot run). */
  cont(): boolean;
  /** Builds an empty machine for `cfg` (no kernel), wired to this VMM's console. */
  createMachine(cfg: MachineConfig): VirtMachine;
  /** Makes `m` the current machine; the old one's run loop ends. */
  replaceMachine(m: VirtMachine, running: boolean): void;
  /** system_powerdown: the VM powers off (SHUTDOWN event), the VMM ends with status 0. */
  powerdown(): void;
  /** quit: the VMM ends with exit status `code` (SHUTDOWN event, host-qmp-quit). */
  quit(code: number): void;
  /**
   * migrate-incoming: starts receiving at `uri` (a VMM started with `-incoming defer`);
   * throws QEMU's message when it was not deferred or has started already.
   */
  migrateIncoming(uri: string): void;
  /**
   * system_reset: the machine resets and boots again (RESET event), running or paused as it
   * was; with -no-reboot the VMM ends instead (SHUTDOWN), as QEMU's. Throws when there is
   * nothing to boot again.
   */
  reset(): void;
  /** Run-state events; returns the unsubscribe function. */
  subscribe(listener: (e: HostEvent) => void): () => void;
  /** A control connection (QMP server) is attached or detached: an idle VM then waits for it. */
  controlAttached(attached: boolean): void;
}

export interface LocalVmmHostOptions {
  /** The machine to run; null with `incoming` (it arrives later through start()). */
  machine: VirtMachine | null;
  run: RunOptions;
  /** Builds an empty machine for a snapshot's configuration (console wired as for the first). */
  makeMachine: (cfg: MachineConfig) => VirtMachine;
  /** Builds the migration controller for a machine and its runner (re-made on snapshot-load). */
  makeMigration?: (machine: VirtMachine, runner: MachineRunner) => MigrationController;
  /** QEMU's -S: start with the vCPUs stopped ("prelaunch") until `cont`. */
  startPaused?: boolean;
  /** QEMU's -no-reboot: a guest reset ends the VMM instead of booting again. */
  noReboot?: boolean;
  /** QEMU's -name. */
  name?: string;
  /** `-incoming defer`: what starts receiving at the URI of QMP migrate-incoming (once). */
  deferredIncoming?: (uri: string) => void;
}

export class LocalVmmHost implements VmmHost {
  private current: VirtMachine | null;
  private runnerRef: MachineRunner | null = null;
  private migrationRef: MigrationController | null = null;
  private readonly listeners = new Set<(e: HostEvent) => void>();
  private controls = 0;
  private prelaunch: boolean;
  /** Waiting for an incoming migration: `cont` only arms autostart, as QEMU does. */
  private autostart = true;
  private ended: RunResult | null = null;
  private incomingStarted = false;
  private loopActive = false;
  private parkWaiters: (() => void)[] = [];
  private arrive: (() => void) | null = null;
  private lastMigration: MigrationStatus = "none";
  /** STOP was sent because a migration stopped the vCPUs. */
  private migrationStopped = false;
  /** Stopped by `stop` (or started stopped): a migration's stop-and-copy sends no STOP then. */
  private userStopped = false;

  constructor(private readonly opts: LocalVmmHostOptions) {
    this.current = opts.machine;
    this.prelaunch = opts.startPaused ?? false;
    if (opts.machine) this.install(opts.machine, !this.prelaunch);
  }

  get machine(): VirtMachine | null {
    return this.current;
  }
  get name(): string | undefined {
    return this.opts.name;
  }
  get runner(): MachineRunner | null {
    return this.runnerRef;
  }
  get migration(): MigrationController | null {
    return this.migrationRef;
  }

  runState(): RunState {
    if (this.ended) return "shutdown";
    const r = this.runnerRef;
    if (!r) return "inmigrate";
    const mig = this.migrationRef?.info().status ?? "none";
    if (mig === "device") return "finish-migrate";
    if (!r.isPaused) return "running";
    if (this.prelaunch) return "prelaunch";
    if (mig === "completed") return "postmigrate";
    return "paused";
  }

  async stop(): Promise<boolean> {
    const r = this.runnerRef;
    if (!r) {
      this.autostart = false;
      return false;
    }
    if (r.isPaused || this.ended) return false;
    r.pause();
    this.userStopped = true;
    if (this.loopActive) await new Promise<void>((res) => this.parkWaiters.push(res));
    this.emit({ kind: "stop" });
    return true;
  }

  cont(): boolean {
    const r = this.runnerRef;
    if (!r) {
      this.autostart = true;
      return false;
    }
    this.prelaunch = false;
    if (!r.isPaused || this.ended) return false;
    r.resume();
    this.userStopped = false;
    this.migrationStopped = false;
    this.emit({ kind: "resume" });
    return true;
  }

  createMachine(cfg: MachineConfig): VirtMachine {
    return this.opts.makeMachine(cfg);
  }

  replaceMachine(m: VirtMachine, running: boolean): void {
    const old = this.runnerRef;
    this.current = m;
    this.install(m, running);
    // The old loop ends; run() notices the runner changed and carries on with the new one.
    old?.finish({ kind: "quit", code: 0 });
    this.wakeParked();
  }

  /**
   * The incoming machine has been loaded (live migration's destination): it runs if the
   * source was running and nobody said `stop` meanwhile, as QEMU's autostart.
   */
  start(m: VirtMachine, sourceRunning: boolean): void {
    this.current = m;
    this.install(m, sourceRunning && this.autostart);
    this.arrive?.();
  }

  powerdown(): void {
    this.emit({ kind: "powerdown" });
    this.end({ kind: "shutdown", code: 0 }, { kind: "shutdown", guest: false, reason: "host-ui" });
  }

  reset(): void {
    const m = this.current;
    if (!m || this.ended) throw new Error("there is no machine to reset");
    if (this.opts.noReboot) {
      this.end(
        { kind: "quit", code: 0 },
        { kind: "shutdown", guest: false, reason: "host-qmp-system-reset" },
      );
      return;
    }
    // Between the runner's slices (QMP commands run there): no vCPU is mid-instruction.
    if (!m.reset())
      throw new Error("this machine was restored or received: armbox has no images to boot it again");
    this.emit({ kind: "reset", guest: false, reason: "host-qmp-system-reset" });
  }

  migrateIncoming(uri: string): void {
    const receive = this.opts.deferredIncoming;
    if (receive === undefined) throw new Error("'-incoming' was not specified on the command line");
    if (this.incomingStarted) throw new Error("The incoming migration has already been started");
    receive(uri); // a URI it cannot use throws here, and a later call may try again
    this.incomingStarted = true;
  }

  quit(code: number): void {
    this.end({ kind: "quit", code }, { kind: "shutdown", guest: false, reason: "host-qmp-quit" });
  }

  /** Ends run() with `result` and no event (e.g. an incoming migration that failed). */
  abort(result: RunResult): void {
    this.end(result, null);
  }

  subscribe(listener: (e: HostEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  controlAttached(attached: boolean): void {
    this.controls += attached ? 1 : -1;
  }

  /**
   * Runs the VM until the VMM should end: a guest power-off or reset, an error, the
   * instruction limit, quit, or a completed outgoing migration. Survives snapshot-load.
   */
  async run(): Promise<RunResult> {
    for (;;) {
      if (this.ended) return this.ended;
      const r = this.runnerRef;
      if (!r) {
        await new Promise<void>((res) => {
          this.arrive = res;
        });
        this.arrive = null;
        continue;
      }
      this.loopActive = true;
      let result: RunResult;
      try {
        result = await r.run();
      } finally {
        this.loopActive = false;
        this.wakeParked();
      }
      if (r !== this.runnerRef && !this.ended) continue; // replaced by snapshot-load
      if (this.ended) return this.ended;
      // PSCI SYSTEM_RESET: the machine boots again, as QEMU without -no-reboot.
      if (result.kind === "reset" && !this.opts.noReboot && this.current?.reset()) {
        this.emit({ kind: "reset", guest: true, reason: "guest-reset" });
        continue;
      }
      this.ended = result;
      if (result.kind === "shutdown") this.emit({ kind: "shutdown", guest: true, reason: "guest-shutdown" });
      else if (result.kind === "reset") this.emit({ kind: "shutdown", guest: true, reason: "guest-reset" });
      return result;
    }
  }

  /** MP states by vCPU (KVM names), for diagnostics. */
  mpStates(): string[] {
    return (this.current?.vcpus ?? []).map((v) => MP_STATE_NAMES[v.getMpState()] ?? String(v.getMpState()));
  }

  private install(m: VirtMachine, running: boolean): void {
    const params = this.migrationRef?.parameters;
    const runner = new MachineRunner(m, {
      ...this.opts.run,
      controlOpen: () => this.controls > 0 || (this.opts.run.controlOpen?.() ?? false),
    });
    runner.onPaused = () => this.wakeParked();
    if (!running) runner.pause();
    this.userStopped = !running;
    this.runnerRef = runner;
    const mig = this.opts.makeMigration?.(m, runner) ?? null;
    if (mig) {
      if (params) mig.setParameters(params);
      mig.onStatus = (s) => this.migrationStatus(s);
    }
    this.migrationRef = mig;
  }

  private migrationStatus(status: MigrationStatus): void {
    if (status === this.lastMigration) return;
    this.lastMigration = status;
    const r = this.runnerRef;
    // QEMU stops the VM for the last stop-and-copy (STOP) and restarts it if the
    // migration fails or is cancelled (RESUME).
    if (status === "device" && r && !this.userStopped && !this.migrationStopped) {
      this.migrationStopped = true;
      this.emit({ kind: "stop" });
    }
    this.emit({ kind: "migration", status });
    if ((status === "failed" || status === "cancelled") && this.migrationStopped && r && !r.isPaused) {
      this.migrationStopped = false;
      this.emit({ kind: "resume" });
    }
  }

  private end(result: RunResult, event: HostEvent | null): void {
    if (this.ended) return;
    this.ended = result;
    if (event) this.emit(event);
    this.runnerRef?.finish(result);
    this.arrive?.();
    this.wakeParked();
  }

  private wakeParked(): void {
    const w = this.parkWaiters;
    this.parkWaiters = [];
    for (const f of w) f();
  }

  private emit(e: HostEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure must not stop the VM.
      }
    }
  }
}
