/**
 * QEMU's human monitor (HMP), the commands QMP's `human-monitor-command` runs and `armbox
 * monitor` types: what a QEMU user reads a VM with. Output is QEMU 7.2's, line for line
 * (recorded from qemu-system-aarch64 -M virt -cpu cortex-a57; test/hmp.test.ts), with
 * armbox's additions at the ends of lines (each vCPU's MP state in `info cpus`).
 *
 *   info registers [-a]   the current vCPU's registers (or every vCPU's), QEMU's layout
 *   info cpus             the vCPUs, the current one starred, with their MP states
 *   info status           the run state
 *   info migrate          the last migration
 *   info mtree            the board's memory map
 *   info version          armbox's version
 *   x /NFU ADDR           N units of U bytes (b h w g) at virtual ADDR as F (x d u o c i)
 *   xp /NFU ADDR          the same at a physical address
 *   cpu N                 makes vCPU N the current one
 *   stop, cont, system_reset, quit, help
 *
 * The vCPUs are between instructions whenever a monitor command runs (the VMM runs them in
 * slices on its one thread, translated code included), so what is read is exact.
 */
import type { Cpu } from "../../arch/arm64/cpu.ts";
import { getDecoder } from "../../arch/arm64/isa.ts";
import { I, OFF } from "../../arch/arm64/state.ts";
import { SYSREG_BY_NAME } from "../../arch/arm64/sysregs.ts";
import { MP_STATE_NAMES } from "../../hv/mp-state.ts";
import { GIC_REDIST_STRIDE, VIRT } from "../../machine/memory-map.ts";
import type { VirtMachine } from "../../machine/virt.ts";
import type { VmmHost } from "./host.ts";

export interface HmpContext {
  host: VmmHost;
  /** The monitor's current vCPU (QEMU's `cpu N`; human-monitor-command's cpu-index). */
  cpu: number;
  /** The VMM's process id (QEMU prints each vCPU thread's). */
  pid: number;
  version: string;
  /** Runs `fn` once the output is out (`quit`). */
  later: (fn: () => unknown) => void;
}

/** An HMP error: its text is the command's output, as QEMU prints it. */
export class HmpError extends Error {}

const hex = (v: bigint | number, digits: number) => v.toString(16).padStart(digits, "0");
const u64 = (r: Uint32Array, i: number) => (BigInt(r[i + 1]!) << 32n) | BigInt(r[i]!);
const sysreg = (name: string) => (OFF.SYSREGS >> 2) + SYSREG_BY_NAME.get(name)!.slot * 2;

/** QEMU's aarch64_cpu_dump_state (target/arm/cpu.c) for `info registers`, FP registers included. */
export function formatRegisters(cpu: Cpu, index: number): string {
  const r = cpu.r;
  const pstate = r[I.PSTATE]! >>> 0;
  const el = (pstate >>> 2) & 3;
  const spsel = pstate & 1;
  const sp = el === 0 || spsel === 0 ? u64(r, I.SP_EL0) : u64(r, I.SP_EL1);
  let s = `\nCPU#${index}\n PC=${hex(u64(r, I.PC), 16)} `;
  for (let i = 0; i < 31; i++) {
    s += `X${String(i).padStart(2, "0")}=${hex(u64(r, i * 2), 16)}${i % 3 === 1 ? "\n" : " "}`;
  }
  s += ` SP=${hex(sp, 16)}\n`;
  const flag = (bit: number, c: string) => ((pstate >>> bit) & 1 ? c : "-");
  s += `PSTATE=${hex(pstate, 8)} ${flag(31, "N")}${flag(30, "Z")}${flag(29, "C")}${flag(28, "V")} EL${el}${spsel ? "h" : "t"}`;
  // FP is disabled at the current EL unless CPACR_EL1.FPEN allows it (0b11: EL0 and EL1, 0bx1: EL1).
  const fpen = (r[sysreg("CPACR_EL1")]! >>> 20) & 3;
  if (el === 0 ? fpen !== 3 : (fpen & 1) === 0) return `${s}    FPU disabled\n`;
  s += `     FPCR=${hex(r[I.FPCR]!, 8)} FPSR=${hex(r[I.FPSR]!, 8)}\n`;
  for (let q = 0; q < 32; q++) {
    const v = I.V + q * 4;
    s += `Q${String(q).padStart(2, "0")}=${hex(u64(r, v + 2), 16)}:${hex(u64(r, v), 16)}${q % 2 ? "\n" : " "}`;
  }
  return s;
}

function machineOf(ctx: HmpContext): VirtMachine {
  const m = ctx.host.machine;
  if (!m) throw new HmpError("No CPU available: the guest is waiting for an incoming migration\n");
  return m;
}

function currentCpu(ctx: HmpContext): Cpu {
  const m = machineOf(ctx);
  const v = m.vcpus[ctx.cpu];
  if (!v) throw new HmpError(`No CPU ${ctx.cpu}\n`);
  return v.cpu;
}

/** QEMU's `info status`. */
function infoStatus(host: VmmHost): string {
  const st = host.runState();
  if (st === "running") return "VM status: running\n";
  if (st === "paused") return "VM status: paused\n";
  return `VM status: paused (${st})\n`;
}

/** QEMU's `info mtree` for the virt board as armbox builds it. */
function infoMtree(m: VirtMachine): string {
  const range = (base: number, size: number, kind: string, name: string) =>
    `    ${hex(base, 16)}-${hex(base + size - 1, 16)} (prio 0, ${kind}): ${name}\n`;
  let s = "address-space: memory\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n";
  s += range(VIRT.GIC_DIST.base, VIRT.GIC_DIST.size, "i/o", "gicv3_dist");
  s += range(VIRT.GIC_REDIST.base, GIC_REDIST_STRIDE * m.smp, "i/o", "gicv3_redist_region[0]");
  s += range(VIRT.UART.base, VIRT.UART.size, "i/o", "pl011");
  s += range(VIRT.RTC.base, VIRT.RTC.size, "i/o", "pl031");
  for (let i = 0; i < VIRT.VIRTIO_MMIO.count; i++)
    s += range(
      VIRT.VIRTIO_MMIO.base + i * VIRT.VIRTIO_MMIO.size,
      VIRT.VIRTIO_MMIO.size,
      "i/o",
      "virtio-mmio",
    );
  s += range(m.vm.ramBase, m.vm.ramSize, "ram", "mach-virt.ram");
  return s;
}

/** QEMU's `info migrate`: the globals, then the last migration's figures. */
function infoMigrate(host: VmmHost): string {
  let s =
    "globals:\nstore-global-state: on\nonly-migratable: off\nsend-configuration: on\n" +
    "send-section-footer: on\ndecompress-error-check: on\nclear-bitmap-shift: 18\n";
  const info = host.migration?.info();
  if (!info || info.status === "none") return s;
  s += `Migration status: ${info.status}`;
  if (info["error-desc"]) s += ` (${info["error-desc"]})`;
  s += "\n";
  if (info["total-time"] !== undefined) s += `total time: ${info["total-time"]} ms\n`;
  if (info["expected-downtime"] !== undefined) s += `expected downtime: ${info["expected-downtime"]} ms\n`;
  if (info.downtime !== undefined) s += `downtime: ${info.downtime} ms\n`;
  if (info["setup-time"] !== undefined) s += `setup: ${info["setup-time"]} ms\n`;
  const ram = info.ram;
  if (ram) {
    const kb = (b: number) => Math.round(b / 1024);
    s += `transferred ram: ${kb(ram.transferred)} kbytes\nthroughput: ${ram.mbps.toFixed(2)} mbps\n`;
    s += `remaining ram: ${kb(ram.remaining)} kbytes\ntotal ram: ${kb(ram.total)} kbytes\n`;
    s += `duplicate: ${ram.duplicate} pages\nskipped: 0 pages\nnormal: ${ram.normal} pages\n`;
    s += `normal bytes: ${kb(ram["normal-bytes"])} kbytes\ndirty sync count: ${ram["dirty-sync-count"]}\n`;
  }
  return s;
}

/** Parses `/NFU` (QEMU's memory_dump format; defaults 1, x, w) and the address expression. */
function parseDump(args: string[], cmd: string): { count: number; fmt: string; size: number; addr: bigint } {
  let count = 1;
  let fmt = "x";
  let size = 4;
  let rest = args;
  if (rest[0]?.startsWith("/")) {
    const m = /^\/(\d*)([xduoci]?)([bhwg]?)$/.exec(rest[0]);
    if (!m) throw new HmpError(`invalid format '${rest[0]}' (/NFU: N count, F x d u o c i, U b h w g)\n`);
    if (m[1]) count = Number(m[1]);
    if (m[2]) fmt = m[2];
    if (m[3]) size = { b: 1, h: 2, w: 4, g: 8 }[m[3] as "b" | "h" | "w" | "g"];
    else if (fmt === "c") size = 1;
    rest = rest.slice(1);
  }
  if (fmt === "i") size = 4;
  if (rest.length !== 1) throw new HmpError(`${cmd}: expected an address\n`);
  let addr: bigint;
  try {
    addr = BigInt(rest[0]!);
  } catch {
    throw new HmpError(`invalid address '${rest[0]}'\n`);
  }
  if (addr < 0n || addr >= 1n << 64n) throw new HmpError(`invalid address '${rest[0]}'\n`);
  return { count: Math.min(count, 1 << 16), fmt, size, addr };
}

/** `x` and `xp` (QEMU's memory_dump): 16 bytes a line (8 for bytes), each value after a space. */
function memoryDump(ctx: HmpContext, args: string[], physical: boolean): string {
  const m = machineOf(ctx);
  const { count, fmt, size, addr } = parseDump(args, physical ? "xp" : "x");
  const cpu = physical ? null : currentCpu(ctx);
  const ram = m.vm.ram;
  const ramBase = BigInt(m.vm.ramBase);
  const read = (va: bigint): number => {
    let pa: number | null;
    if (cpu === null) pa = Number(va);
    else pa = cpu.debugTranslate(Number(va & 0xffffffffn), Number(va >> 32n));
    const off = pa === null ? -1 : pa - Number(ramBase);
    if (pa === null || off < 0 || off >= ram.length)
      throw new HmpError(
        `Cannot access memory at ${physical ? "physical" : "virtual"} address ${hex(va, 16)}\n`,
      );
    return ram[off]!;
  };
  // Little-endian, read from the unit's first byte (an inaccessible unit is named by it).
  const value = (a: bigint): bigint => {
    let v = 0n;
    for (let k = 0; k < size; k++) v |= BigInt(read(a + BigInt(k))) << BigInt(8 * k);
    return v;
  };
  let out = "";
  if (fmt === "i") {
    const nameOf = getDecoder().nameOf;
    for (let k = 0; k < count; k++) {
      const a = (addr + BigInt(k * 4)) & ((1n << 64n) - 1n);
      const w = Number(value(a));
      // QEMU disassembles; armbox names the instruction (its decode table's name).
      out += `0x${a.toString(16)}:  ${hex(w, 8)}  ${nameOf(w) ?? "(undefined)"}\n`;
    }
    return out;
  }
  const perLine = size === 1 ? 8 : 16 / size;
  const bits = BigInt(size * 8);
  for (let k = 0; k < count; k++) {
    const a = (addr + BigInt(k * size)) & ((1n << 64n) - 1n);
    if (k % perLine === 0) out += `${k ? "\n" : ""}${hex(a, 16)}:`;
    const v = value(a);
    switch (fmt) {
      case "x":
        out += ` 0x${hex(v, size * 2)}`;
        break;
      // QEMU's widths (monitor/hmp-cmds memory_dump): octal "%#*o" of (bits + 2) / 3,
      // decimal "%*" of (bits * 10 + 32) / 33. 'd' is signed for 8-byte units only (the
      // smaller ones are read zero-extended), as QEMU prints them.
      case "o":
        out += ` ${`0${v.toString(8)}`.padStart(Math.floor((size * 8 + 2) / 3))}`;
        break;
      case "u":
        out += ` ${v.toString().padStart(Math.floor((size * 80 + 32) / 33))}`;
        break;
      case "d": {
        const sv = size === 8 && v >= 1n << (bits - 1n) ? v - (1n << bits) : v;
        out += ` ${sv.toString().padStart(Math.floor((size * 80 + 32) / 33))}`;
        break;
      }
      case "c": {
        const c = Number(v & 0xffn);
        out += ` ${c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `'\\x${hex(c, 2)}'`}`;
        break;
      }
    }
  }
  return `${out}\n`;
}

/** Commands `help` lists, with QEMU's argument synopses. */
const HELP: readonly [string, string][] = [
  ["cont|c", "resume emulation"],
  ["cpu index", "set the default CPU"],
  ["help|? [cmd]", "show the help"],
  ["info [subcommand]", "show various information about the system state"],
  ["quit|q", "quit the emulator"],
  ["stop|s", "stop emulation"],
  ["system_reset", "reset the system"],
  ["x /fmt addr", "virtual memory dump starting at 'addr'"],
  ["xp /fmt addr", "physical memory dump starting at 'addr'"],
];
const INFO_HELP: readonly [string, string][] = [
  ["info cpus", "show infos for each CPU"],
  ["info migrate", "show migration status"],
  ["info mtree", "show memory tree"],
  ["info registers [-a]", "show the cpu registers (-a: all CPUs)"],
  ["info status", "show the current VM status (running|paused)"],
  ["info version", "show the version of QEMU"],
];
const helpText = (rows: readonly [string, string][]) => rows.map(([c, d]) => `${c} -- ${d}\n`).join("");

/**
 * Runs one HMP command line; returns its output (QEMU's text), errors included, as QEMU's
 * monitor prints them. `ctx.cpu` may be changed by `cpu N`.
 */
export async function hmpCommand(line: string, ctx: HmpContext): Promise<string> {
  const words = line
    .trim()
    .split(/\s+/)
    .filter((w) => w !== "");
  const [cmd, ...args] = words;
  if (cmd === undefined) return "";
  try {
    switch (cmd) {
      case "info": {
        const what = args[0];
        switch (what) {
          case "registers": {
            const m = machineOf(ctx);
            if (args[1] === "-a") return m.vcpus.map((v, i) => formatRegisters(v.cpu, i)).join("");
            return formatRegisters(currentCpu(ctx), ctx.cpu);
          }
          case "cpus": {
            const m = machineOf(ctx);
            return m.vcpus
              .map(
                (v, i) =>
                  `${i === ctx.cpu ? "*" : " "} CPU #${i}: thread_id=${ctx.pid} mp-state=${MP_STATE_NAMES[v.getMpState()] ?? v.getMpState()}\n`,
              )
              .join("");
          }
          case "status":
            return infoStatus(ctx.host);
          case "migrate":
            return infoMigrate(ctx.host);
          case "mtree":
            return infoMtree(machineOf(ctx));
          case "version":
            return `${ctx.version}\n`;
          case undefined:
            return helpText(INFO_HELP);
          default:
            return `unknown info subcommand '${what}' (armbox has: ${INFO_HELP.map(([c]) => c.split(" ")[1]).join(", ")})\n`;
        }
      }
      case "x":
        return memoryDump(ctx, args, false);
      case "xp":
        return memoryDump(ctx, args, true);
      case "cpu": {
        const n = Number(args[0]);
        if (!Number.isInteger(n) || !machineOf(ctx).vcpus[n]) return "invalid CPU index\n";
        ctx.cpu = n;
        return "";
      }
      case "stop":
      case "s":
        await ctx.host.stop();
        return "";
      case "cont":
      case "c":
        if (ctx.host.runState() === "shutdown") return "Resetting the Virtual Machine is required\n";
        ctx.host.cont();
        return "";
      case "system_reset":
        try {
          ctx.host.reset();
        } catch (e) {
          return `${(e as Error).message}\n`;
        }
        return "";
      case "quit":
      case "q":
        ctx.later(() => ctx.host.quit(0));
        return "";
      case "help":
      case "?":
        return helpText(HELP) + helpText(INFO_HELP);
      default:
        return `unknown command: '${cmd}'\n`;
    }
  } catch (e) {
    if (e instanceof HmpError) return e.message;
    throw e;
  }
}
