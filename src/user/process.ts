/**
 * A Linux user-mode process on one AArch64 CPU, the way qemu-aarch64 runs one: the ELF
 * is loaded into a flat address space, the initial stack is built as Linux's
 * create_elf_tables() builds it (fs/binfmt_elf.c), and every exception from EL0 comes
 * back here: SVC becomes a system call, the rest become signals.
 */

import { randomFillSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Cpu, type CpuExit } from "../arch/arm64/cpu.ts";
import { EC } from "../arch/arm64/exceptions.ts";
import type { JitOptions } from "../arch/arm64/jit/jit.ts";
import { createVmMemory, I, OFF } from "../arch/arm64/state.ts";
import { sysregIndex } from "../arch/arm64/sysregs.ts";
import { ElfError, ET, PT, parseElf } from "../machine/elf.ts";
import { type ByteSink, type ByteSource, FdTable, HostFile, LINUX_O, SinkFile, SourceFile } from "./files.ts";
import { AddressSpace, type AddressSpaceSnapshot, NULL_GUARD, PAGE, pageDown, pageUp } from "./memory.ts";
import { doSyscall } from "./syscalls.ts";

export const SIG = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  CHLD: 17,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
  TTIN: 21,
  TTOU: 22,
  URG: 23,
  WINCH: 28,
} as const;

const SIGNAL_NAMES: Record<number, string> = {
  1: "Hangup",
  2: "Interrupt",
  3: "Quit",
  4: "Illegal instruction",
  5: "Trace/breakpoint trap",
  6: "Aborted",
  7: "Bus error",
  8: "Floating point exception",
  9: "Killed",
  10: "User defined signal 1",
  11: "Segmentation fault",
  12: "User defined signal 2",
  13: "Broken pipe",
  14: "Alarm clock",
  15: "Terminated",
};
/** Signals whose default action is to dump core (signal(7)). */
const CORE_SIGNALS = new Set([3, 4, 5, 6, 7, 8, 11, 24, 25, 31]);
/** Signals whose default action is to be ignored. */
const IGNORED_BY_DEFAULT = new Set([17, 18, 23, 28]);

export const SA = {
  SIGINFO: 4,
  ONSTACK: 0x08000000,
  RESTART: 0x10000000,
  NODEFER: 0x40000000,
  RESETHAND: 0x80000000,
  RESTORER: 0x04000000,
} as const;

export interface SigAction {
  /** 0 = SIG_DFL, 1 = SIG_IGN, else handler address. */
  handler: number;
  flags: number;
  mask: bigint;
  restorer: number;
}

export interface UserOptions {
  /** Guest RAM in bytes (default 1 GiB; pages are committed lazily by the host). */
  ramBytes?: number;
  /** Translate hot code to WebAssembly (`--accel jit`; options for tests); default: interpret. */
  jit?: boolean | JitOptions;
  /** At exit, write what the code cache did (Jit.report) to the diagnostics. */
  jitReport?: boolean;
  env?: string[];
  cwd?: string;
  stdin?: ByteSource;
  stdout?: ByteSink;
  stderr?: ByteSink;
  /** Where armbox's own diagnostics go (default: host stderr). */
  diag?: (line: string) => void;
  /** Called with one line per system call (`--strace`). */
  strace?: ((line: string) => void) | null;
  /** Stop after this many instructions (tests), reported as exit 124. */
  maxInstructions?: number;
}

/** Thrown to end the current process image (exit, fatal signal, failed exec). */
export class ProcessExit {
  constructor(readonly status: number) {}
}

/** Where the sigreturn trampoline lives: one page we map at the top of the mmap area. */
const TRAMPOLINE_INSNS = [0xd2801168 /* mov x8, #139 */, 0xd4000001 /* svc #0 */];

const BUDGET = 4_000_000;
let nextPid = 4242;

export class UserProcess {
  readonly memory: WebAssembly.Memory;
  readonly cpu: Cpu;
  readonly as: AddressSpace;
  readonly ramSize: number;
  fds = new FdTable();
  cwd: string;
  env: string[];
  pid: number;
  ppid: number;
  exePath = "";
  sigactions: SigAction[] = [];
  sigmask = 0n;
  pendingSignals: number[] = [];
  altStack = { sp: 0, flags: 2 /* SS_DISABLE */, size: 0 };
  /** wait(2)-style statuses of finished children, by pid (wait4 reaps them). */
  zombies = new Map<number, number>();
  trampoline = 0;
  readonly diag: (line: string) => void;
  readonly strace: ((line: string) => void) | null;
  readonly reportedUnsupported = new Set<number>();
  readonly startTime = process.hrtime.bigint();
  private readonly maxInstructions: number;
  umask = 0o022;
  /** Signal that ended the process image, 0 if it exited. */
  killedBy = 0;

  constructor(opts: UserOptions = {}) {
    this.ramSize = opts.ramBytes ?? 1 << 30;
    this.memory = createVmMemory(this.ramSize);
    this.cpu = new Cpu({
      memory: this.memory,
      index: 0,
      bus: { ramBase: NULL_GUARD, ramSize: this.ramSize - NULL_GUARD },
      userMode: true,
      jit: opts.jit ?? false,
    });
    this.as = new AddressSpace(this.memory, this.ramSize);
    this.cwd = opts.cwd ?? process.cwd();
    this.env = opts.env ?? [];
    this.pid = nextPid++;
    this.ppid = process.pid;
    this.diag = opts.diag ?? ((l) => process.stderr.write(`${l}\n`));
    this.strace = opts.strace ?? null;
    this.maxInstructions = opts.maxInstructions ?? Number.POSITIVE_INFINITY;
    this.fds.installAt(
      0,
      opts.stdin ? new SourceFile(opts.stdin) : new HostFile(0, null, LINUX_O.RDONLY, false, true),
    );
    this.fds.installAt(
      1,
      opts.stdout ? new SinkFile(opts.stdout) : new HostFile(1, null, LINUX_O.WRONLY, false, true),
    );
    this.fds.installAt(
      2,
      opts.stderr ? new SinkFile(opts.stderr) : new HostFile(2, null, LINUX_O.WRONLY, false, true),
    );
    for (let i = 0; i < 65; i++) this.sigactions.push({ handler: 0, flags: 0, mask: 0n, restorer: 0 });
  }

  // ---------------------------------------------------------------------------
  // Loading (execve)

  /** Resolves a guest path against the process's working directory. */
  resolve(p: string): string {
    return path.resolve(this.cwd, p);
  }

  /**
   * Replaces the process image with the executable at host path `file`. Throws ElfError
   * (or a Node fs error) before touching the current image when the file is unusable.
   */
  exec(file: string, argv: string[], envp: string[]): void {
    const elf = parseElf(readExecutable(file, this.as.mmapTop));
    const loads = elf.phdrs.filter((p) => p.type === PT.LOAD);
    const minVaddr = pageDown(Math.min(...loads.map((p) => p.vaddr)));
    const maxVaddr = Math.max(...loads.map((p) => p.vaddr + p.memsz));
    // Static-pie executables are placed at a fixed base (no ASLR, like qemu -R).
    const bias = elf.type === ET.DYN ? 0x0200_0000 - minVaddr : 0;
    if (minVaddr + bias < 0x10000 || maxVaddr + bias > this.as.mmapTop - (64 << 20)) {
      throw new ElfError(
        `segments at 0x${minVaddr.toString(16)}..0x${maxVaddr.toString(16)} do not fit in guest memory`,
      );
    }
    // Point of no return.
    this.as.clear();
    this.cpu.reset();
    // No decode-cache flush: the CPU validates cached decodes against the instruction word.
    for (const p of loads) {
      const start = pageDown(p.vaddr + bias);
      this.as.mapRange(start, pageUp(p.vaddr + bias + p.memsz) - start);
      this.as.bytes(p.vaddr + bias, p.filesz).set(elf.data.subarray(p.offset, p.offset + p.filesz));
    }
    const end = maxVaddr + bias;
    this.as.brkStart = this.as.brk = pageUp(end);
    let phdr = 0;
    const pph = elf.phdrs.find((p) => p.type === PT.PHDR);
    if (pph) phdr = pph.vaddr + bias;
    else {
      const seg = loads.find((p) => elf.phoff >= p.offset && elf.phoff < p.offset + p.filesz);
      if (seg) phdr = seg.vaddr + (elf.phoff - seg.offset) + bias;
    }
    // readlink("/proc/self/exe") gives an absolute path, as under Linux and qemu-aarch64.
    this.exePath = this.resolve(file);
    // Signal dispositions: handlers reset to default, ignored stay ignored (execve(2)).
    for (const a of this.sigactions) {
      if (a.handler > 1) {
        a.handler = 0;
        a.flags = 0;
        a.mask = 0n;
      }
    }
    this.altStack = { sp: 0, flags: 2, size: 0 };
    this.fds.closeOnExec();
    // Sigreturn trampoline page (our stand-in for the vDSO's __kernel_rt_sigreturn).
    this.trampoline = this.as.mmapTop - PAGE;
    this.as.mapRange(this.trampoline, PAGE);
    TRAMPOLINE_INSNS.forEach((w, i) => {
      this.as.dv.setUint32(this.as.host + this.trampoline + i * 4, w, true);
    });
    this.as.mapRange(this.as.stackBottom, this.as.stackTop - this.as.stackBottom);
    const sp = this.buildStack(argv, envp, file, {
      phdr,
      phent: elf.phentsize,
      phnum: elf.phnum,
      entry: elf.entry + bias,
    });
    const r = this.cpu.r;
    r[I.SP_EL0] = sp >>> 0;
    r[I.SP_EL0 + 1] = Math.floor(sp / 2 ** 32);
    this.cpu.pc = BigInt(elf.entry + bias);
  }

  /** Linux's AT_HWCAP for this CPU, derived from its ID registers (arch/arm64 cpufeature.c). */
  hwcap(): number {
    const r = this.cpu.r;
    const isar0 = r[sysregIndex("ID_AA64ISAR0_EL1")]!;
    const pfr0 = r[sysregIndex("ID_AA64PFR0_EL1")]!;
    let h = 1 << 11; // CPUID: MRS emulation of ID registers
    const fp = (pfr0 >>> 16) & 0xf;
    const simd = (pfr0 >>> 20) & 0xf;
    if (fp !== 0xf) h |= 1 << 0;
    if (simd !== 0xf) h |= 1 << 1;
    if (fp === 1) h |= 1 << 9; // FPHP
    if (simd === 1) h |= 1 << 10; // ASIMDHP
    const aes = (isar0 >>> 4) & 0xf;
    if (aes >= 1) h |= 1 << 3;
    if (aes >= 2) h |= 1 << 4;
    if (((isar0 >>> 8) & 0xf) >= 1) h |= 1 << 5;
    if (((isar0 >>> 12) & 0xf) >= 1) h |= 1 << 6;
    if (((isar0 >>> 16) & 0xf) >= 1) h |= 1 << 7;
    if (((isar0 >>> 20) & 0xf) >= 2) h |= 1 << 8;
    return h >>> 0;
  }

  private buildStack(
    argv: string[],
    envp: string[],
    execfn: string,
    e: { phdr: number; phent: number; phnum: number; entry: number },
  ): number {
    const dv = this.as.dv;
    let sp = this.as.stackTop;
    const enc = new TextEncoder();
    const pushBytes = (b: Uint8Array): number => {
      sp -= b.length;
      this.as.bytes(sp, b.length).set(b);
      return sp;
    };
    const pushStr = (s: string): number => {
      const b = enc.encode(s);
      const z = new Uint8Array(b.length + 1);
      z.set(b);
      return pushBytes(z);
    };
    sp -= 8; // Linux leaves the top word as a NULL end marker
    const execfnAddr = pushStr(execfn);
    const envAddrs = envp.map(pushStr).reverse();
    envAddrs.reverse();
    const argAddrs = argv.map(pushStr);
    const platform = pushStr("aarch64");
    const rnd = new Uint8Array(16);
    randomFillSync(rnd);
    sp &= ~15;
    const random = pushBytes(rnd);
    const aux: [number, number][] = [
      [33, 0], // AT_SYSINFO_EHDR placeholder removed below (no vDSO)
      [16, this.hwcap()], // AT_HWCAP
      [6, PAGE], // AT_PAGESZ
      [17, 100], // AT_CLKTCK
      [3, e.phdr], // AT_PHDR
      [4, e.phent], // AT_PHENT
      [5, e.phnum], // AT_PHNUM
      [7, 0], // AT_BASE
      [8, 0], // AT_FLAGS
      [9, e.entry], // AT_ENTRY
      [11, 1000], // AT_UID
      [12, 1000], // AT_EUID
      [13, 1000], // AT_GID
      [14, 1000], // AT_EGID
      [23, 0], // AT_SECURE
      [25, random], // AT_RANDOM
      [26, 0], // AT_HWCAP2
      [31, execfnAddr], // AT_EXECFN
      [15, platform], // AT_PLATFORM
      [0, 0], // AT_NULL
    ].filter(([k]) => k !== 33) as [number, number][];
    const uid = process.getuid?.() ?? 1000;
    const gid = process.getgid?.() ?? 1000;
    for (const a of aux) {
      if (a[0] === 11 || a[0] === 12) a[1] = uid;
      if (a[0] === 13 || a[0] === 14) a[1] = gid;
    }
    const words = 1 + argAddrs.length + 1 + envAddrs.length + 1 + aux.length * 2;
    sp = (sp - words * 8) & ~15;
    let p = this.as.host + sp;
    const put = (v: number): void => {
      dv.setUint32(p, v >>> 0, true);
      dv.setUint32(p + 4, Math.floor(v / 2 ** 32), true);
      p += 8;
    };
    put(argAddrs.length);
    for (const a of argAddrs) put(a);
    put(0);
    for (const a of envAddrs) put(a);
    put(0);
    for (const [k, v] of aux) {
      put(k);
      put(v);
    }
    return sp;
  }

  // ---------------------------------------------------------------------------
  // Running

  /** Runs the loaded image until the process exits; returns the wait-style exit code. */
  run(): number {
    const cpu = this.cpu;
    let left = this.maxInstructions;
    try {
      for (;;) {
        const ex = cpu.run(Math.min(BUDGET, left));
        if (ex.kind === "budget") {
          left -= BUDGET;
          if (left <= 0) {
            this.diag("armbox: instruction limit reached");
            return 124;
          }
          continue;
        }
        this.handleExit(ex);
        this.deliverPending();
      }
    } catch (e) {
      if (e instanceof ProcessExit) return e.status;
      throw e;
    }
  }

  private handleExit(ex: CpuExit): void {
    switch (ex.kind) {
      case "exception":
        if (ex.ec === EC.SVC64) {
          doSyscall(this);
          return;
        }
        this.fault(ex.ec, ex.iss, ex.far);
        return;
      case "internal-error":
        this.diag(`armbox: internal error at pc 0x${this.cpu.pc.toString(16)}: ${ex.message}`);
        throw new ProcessExit(70);
      default:
        // HVC/SMC UNDEF at EL0 before reaching here; WFI/WFE do not exit in user mode.
        return;
    }
  }

  /** Turns a synchronous exception into the signal Linux would send (arch/arm64/mm/fault.c). */
  private fault(ec: number, iss: number, far: bigint | null): void {
    const pc = this.cpu.pc;
    let sig: number = SIG.SEGV;
    let code = 1;
    let addr = far ?? pc;
    switch (ec) {
      case EC.UNKNOWN: {
        sig = SIG.ILL;
        code = 1; // ILL_ILLOPC
        addr = pc;
        const off = Number(pc);
        const word = this.as.valid(off, 4) ? this.as.dv.getUint32(this.as.host + off, true) : 0;
        if (this.sigactions[SIG.ILL]!.handler <= 1) {
          this.diag(
            `armbox: illegal instruction 0x${word.toString(16).padStart(8, "0")} at pc 0x${pc.toString(16)}`,
          );
        }
        break;
      }
      case EC.BRK64:
        sig = SIG.TRAP;
        code = 1; // TRAP_BRKPT
        addr = pc;
        break;
      case EC.DABT_LOWER:
      case EC.IABT_LOWER:
      case EC.DABT_CURRENT:
      case EC.IABT_CURRENT:
        if ((iss & 0x3f) === 0x21) {
          sig = SIG.BUS;
          code = 1; // BUS_ADRALN
        } else {
          sig = SIG.SEGV;
          code = 1; // SEGV_MAPERR
        }
        break;
      case EC.PC_ALIGN:
      case EC.SP_ALIGN:
        sig = SIG.BUS;
        code = 1;
        break;
      case EC.FP_EXC64:
        sig = SIG.FPE;
        break;
      default:
        sig = SIG.ILL;
        addr = pc;
        if (this.sigactions[SIG.ILL]!.handler <= 1)
          this.diag(`armbox: unexpected exception class 0x${ec.toString(16)} at pc 0x${pc.toString(16)}`);
    }
    this.raiseSync(sig, code, addr);
  }

  /** A synchronous signal: delivered now if handled, else fatal (blocked counts as fatal, as in Linux). */
  raiseSync(sig: number, code: number, addr: bigint): void {
    const act = this.sigactions[sig]!;
    if (act.handler > 1 && (this.sigmask & (1n << BigInt(sig - 1))) === 0n) {
      this.deliver(sig, code, addr);
      return;
    }
    this.die(sig);
  }

  /** Terminates the process by signal `sig`, as the default action does. */
  die(sig: number): never {
    this.killedBy = sig;
    const name = SIGNAL_NAMES[sig] ?? `signal ${sig}`;
    this.diag(
      `armbox: uncaught target signal ${sig} (${name})${CORE_SIGNALS.has(sig) ? " - core dumped" : ""}`,
    );
    throw new ProcessExit(128 + sig);
  }

  /** An asynchronous signal sent to ourselves (kill/tgkill/raise). */
  sendSignal(sig: number): void {
    if (sig === 0) return;
    const act = this.sigactions[sig]!;
    if (act.handler === 1 && sig !== SIG.KILL && sig !== SIG.STOP) return;
    if (act.handler === 0) {
      if (IGNORED_BY_DEFAULT.has(sig)) return;
      if (sig === SIG.STOP || sig === 20 || sig === 21 || sig === 22) return; // no job control
      if ((this.sigmask & (1n << BigInt(sig - 1))) === 0n || sig === SIG.KILL) this.die(sig);
    }
    if (!this.pendingSignals.includes(sig)) this.pendingSignals.push(sig);
  }

  /** Delivers pending unblocked signals (after a syscall, like the kernel's return path). */
  deliverPending(): void {
    if (this.pendingSignals.length === 0) return;
    for (let i = 0; i < this.pendingSignals.length; i++) {
      const sig = this.pendingSignals[i]!;
      if ((this.sigmask & (1n << BigInt(sig - 1))) !== 0n) continue;
      this.pendingSignals.splice(i, 1);
      const act = this.sigactions[sig]!;
      if (act.handler === 1) return;
      if (act.handler === 0) {
        if (IGNORED_BY_DEFAULT.has(sig)) return;
        this.die(sig);
      }
      this.deliver(sig, 0 /* SI_USER */, 0n);
      return;
    }
  }

  /**
   * Builds an rt_sigframe on the stack (layout of arch/arm64/kernel/signal.c: siginfo,
   * then ucontext with the sigcontext and an fpsimd_context record) and enters the handler.
   */
  private deliver(sig: number, code: number, addr: bigint): void {
    const act = this.sigactions[sig]!;
    const r = this.cpu.r;
    const dv = this.as.dv;
    let sp = r[I.SP_EL0]! + r[I.SP_EL0 + 1]! * 2 ** 32;
    if (
      (act.flags & SA.ONSTACK) !== 0 &&
      this.altStack.flags === 0 &&
      !(sp > this.altStack.sp && sp <= this.altStack.sp + this.altStack.size)
    ) {
      sp = this.altStack.sp + this.altStack.size;
    }
    const FRAME = 128 + UC_SIZE + 16;
    sp = (sp - FRAME) & ~15;
    if (!this.as.valid(sp, FRAME)) this.die(SIG.SEGV);
    const base = this.as.host + sp;
    this.as.m8.fill(0, base, base + FRAME);
    // siginfo_t
    dv.setInt32(base, sig, true);
    dv.setInt32(base + 8, code, true);
    if (code === 0) {
      dv.setInt32(base + 16, this.pid, true);
      dv.setInt32(base + 20, process.getuid?.() ?? 0, true);
    } else setU64(dv, base + 16, addr);
    // ucontext
    const uc = base + 128;
    setU64(dv, uc + 16, BigInt(this.altStack.sp));
    dv.setInt32(uc + 24, this.altStack.flags, true);
    setU64(dv, uc + 32, BigInt(this.altStack.size));
    setU64(dv, uc + 40, this.sigmask);
    const sc = uc + UC_MCONTEXT;
    setU64(dv, sc, addr);
    for (let i = 0; i < 31; i++) {
      dv.setUint32(sc + 8 + i * 8, r[i * 2]!, true);
      dv.setUint32(sc + 12 + i * 8, r[i * 2 + 1]!, true);
    }
    dv.setUint32(sc + 256, r[I.SP_EL0]!, true);
    dv.setUint32(sc + 260, r[I.SP_EL0 + 1]!, true);
    dv.setUint32(sc + 264, r[I.PC]!, true);
    dv.setUint32(sc + 268, r[I.PC + 1]!, true);
    dv.setUint32(sc + 272, r[I.PSTATE]!, true);
    const fpc = sc + SC_RESERVED;
    dv.setUint32(fpc, 0x46508001, true); // FPSIMD_MAGIC
    dv.setUint32(fpc + 4, 528, true);
    dv.setUint32(fpc + 8, r[I.FPSR]!, true);
    dv.setUint32(fpc + 12, r[I.FPCR]!, true);
    this.as.m8.set(this.cpu.r8.subarray(OFF.V, OFF.V + 512), fpc + 16);
    // Frame record for unwinders: {fp, lr}.
    const rec = base + 128 + UC_SIZE;
    dv.setUint32(rec, r[29 * 2]!, true);
    dv.setUint32(rec + 4, r[29 * 2 + 1]!, true);
    dv.setUint32(rec + 8, r[I.PC]!, true);
    dv.setUint32(rec + 12, r[I.PC + 1]!, true);
    // Enter the handler.
    const restorer = (act.flags & SA.RESTORER) !== 0 && act.restorer !== 0 ? act.restorer : this.trampoline;
    this.cpu.setX(0, BigInt(sig));
    this.cpu.setX(1, BigInt(sp));
    this.cpu.setX(2, BigInt(sp + 128));
    this.cpu.setX(29, BigInt(sp + 128 + UC_SIZE));
    this.cpu.setX(30, BigInt(restorer));
    r[I.SP_EL0] = sp >>> 0;
    r[I.SP_EL0 + 1] = 0;
    this.cpu.pc = BigInt(act.handler);
    if ((act.flags & SA.NODEFER) === 0) this.sigmask |= 1n << BigInt(sig - 1);
    this.sigmask |= act.mask;
    if ((act.flags & SA.RESETHAND) !== 0) act.handler = 0;
  }

  /** rt_sigreturn: restores the context saved by deliver(). Returns the new X0. */
  sigreturn(): void {
    const r = this.cpu.r;
    const dv = this.as.dv;
    const sp = r[I.SP_EL0]!;
    if (!this.as.valid(sp, 128 + UC_SIZE)) this.die(SIG.SEGV);
    const uc = this.as.host + sp + 128;
    this.sigmask = getU64(dv, uc + 40) & ~((1n << 8n) | (1n << 18n)); // never block KILL/STOP
    const sc = uc + UC_MCONTEXT;
    for (let i = 0; i < 31; i++) {
      r[i * 2] = dv.getUint32(sc + 8 + i * 8, true);
      r[i * 2 + 1] = dv.getUint32(sc + 12 + i * 8, true);
    }
    r[I.SP_EL0] = dv.getUint32(sc + 256, true);
    r[I.SP_EL0 + 1] = dv.getUint32(sc + 260, true);
    r[I.PC] = dv.getUint32(sc + 264, true);
    r[I.PC + 1] = dv.getUint32(sc + 268, true);
    r[I.PSTATE] = dv.getUint32(sc + 272, true) & 0xf000_0000;
    const fpc = sc + SC_RESERVED;
    if (dv.getUint32(fpc, true) === 0x46508001) {
      r[I.FPSR] = dv.getUint32(fpc + 8, true);
      r[I.FPCR] = dv.getUint32(fpc + 12, true);
      this.cpu.r8.set(this.as.m8.subarray(fpc + 16, fpc + 16 + 512), OFF.V);
    }
    this.cpu.pstateChanged();
  }

  // ---------------------------------------------------------------------------
  // fork: the process is single-threaded, so a child is run to completion on the same
  // CPU and memory, then the parent's registers and pages are put back.

  fork(childTidPtr: number, setChildTid: boolean, newSp: number): number {
    const saved = this.save();
    const childPid = nextPid++;
    const parentPid = this.pid;
    const parentFds = this.fds;
    this.fds = parentFds.clone();
    this.ppid = parentPid;
    this.pid = childPid;
    this.zombies = new Map();
    this.pendingSignals = [];
    this.cpu.setX(0, 0n);
    if (newSp !== 0) {
      this.cpu.r[I.SP_EL0] = newSp >>> 0;
      this.cpu.r[I.SP_EL0 + 1] = 0;
    }
    if (setChildTid && this.as.valid(childTidPtr, 4))
      this.as.dv.setInt32(this.as.host + childTidPtr, childPid, true);
    let status: number;
    this.killedBy = 0;
    try {
      status = this.run();
      // wait(2) status: exit code in bits 15:8, or the terminating signal in bits 6:0.
      status = this.killedBy !== 0 ? this.killedBy : (status & 0xff) << 8;
      this.killedBy = 0;
    } finally {
      this.fds.closeAll();
      this.fds = parentFds;
      this.restore(saved);
    }
    this.zombies.set(childPid, status);
    return childPid;
  }

  private save(): SavedProcess {
    return {
      regs: this.cpu.r.slice(0, OFF.SYSREGS_END >> 2),
      as: this.as.snapshot(),
      cwd: this.cwd,
      pid: this.pid,
      ppid: this.ppid,
      exePath: this.exePath,
      sigactions: this.sigactions.map((a) => ({ ...a })),
      sigmask: this.sigmask,
      pending: [...this.pendingSignals],
      altStack: { ...this.altStack },
      zombies: this.zombies,
      umask: this.umask,
      trampoline: this.trampoline,
    };
  }
  private restore(s: SavedProcess): void {
    this.cpu.r.set(s.regs, 0);
    this.cpu.pstateChanged();
    this.as.restore(s.as);
    this.cwd = s.cwd;
    this.pid = s.pid;
    this.ppid = s.ppid;
    this.exePath = s.exePath;
    this.sigactions = s.sigactions;
    this.sigmask = s.sigmask;
    this.pendingSignals = s.pending;
    this.altStack = s.altStack;
    this.zombies = s.zombies;
    this.umask = s.umask;
    this.trampoline = s.trampoline;
  }
}

interface SavedProcess {
  regs: Uint32Array;
  as: AddressSpaceSnapshot;
  cwd: string;
  pid: number;
  ppid: number;
  exePath: string;
  sigactions: SigAction[];
  sigmask: bigint;
  pending: number[];
  altStack: { sp: number; flags: number; size: number };
  zombies: Map<number, number>;
  umask: number;
  trampoline: number;
}

/** struct ucontext: uc_flags, uc_link, uc_stack (24), uc_sigmask (8) + pad to 128 bytes of sigset, then mcontext (16-aligned). */
const UC_MCONTEXT = 176;
/** Offset of sigcontext.__reserved within sigcontext (fault_address, regs[31], sp, pc, pstate, then 16-aligned). */
const SC_RESERVED = 288;
const UC_SIZE = UC_MCONTEXT + SC_RESERVED + 4096;

function setU64(dv: DataView, off: number, v: bigint): void {
  dv.setBigUint64(off, BigInt.asUintN(64, v), true);
}
function getU64(dv: DataView, off: number): bigint {
  return dv.getBigUint64(off, true);
}

/**
 * The executable at `file`, read with a bound (issue 9: `armbox user /dev/zero` read without
 * end). Not a regular file: EACCES, as Linux's execve answers; larger than the guest's address
 * space can map (`limit`): ENOEXEC through ElfError. Both before any byte is read.
 */
function readExecutable(file: string, limit: number): Uint8Array {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      throw Object.assign(new Error("not a regular file (execve needs one)"), { code: "EACCES" });
    }
    if (st.size > limit) {
      throw new ElfError(`${st.size} bytes, more than the guest's address space can map (${limit})`);
    }
    const data = new Uint8Array(st.size);
    let got = 0;
    while (got < data.length) {
      const n = fs.readSync(fd, data, got, data.length - got, got);
      if (n === 0) break; // shrank while read
      got += n;
    }
    return data.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs `file` with `argv` like qemu-aarch64 would; returns the exit code. */
export function runProgram(file: string, argv: string[], opts: UserOptions = {}): number {
  const p = new UserProcess(opts);
  const env = opts.env ?? [];
  try {
    p.exec(file, argv, env);
  } catch (e) {
    if (e instanceof ElfError) {
      p.diag(`armbox: ${file}: ${e.message}`);
      return 2;
    }
    const code = (e as { code?: string }).code;
    if (code !== undefined) {
      p.diag(`armbox: ${file}: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
  const code = p.run();
  const jit = p.cpu.jit;
  if (opts.jitReport === true && jit !== null)
    p.diag(`armbox: jit: ${jit.report(Number(p.cpu.instructionCount))}`);
  return code;
}
