/**
 * QEMU's `-d` log items armbox has, written as QEMU writes them (to stderr, or `-D FILE`):
 *
 *   int           every exception and interrupt a vCPU takes: QEMU's "Taking exception N
 *                 [NAME] on CPU C" and its "...from / with / to" lines
 *   mmu           every fault the MMU reports (translation, access flag, permission,
 *                 address size), with the VA, the access and the level
 *   guest_errors  every access to a physical address no RAM or device answers (QEMU's
 *                 "Invalid read at addr …, region '(null)', reason: rejected")
 *
 * The hooks are null unless an item asks for them (Cpu.onException, Vm.onUnassigned), so
 * a run without -d pays nothing. Every machine the VMM builds (restored, received) gets
 * them again (`attachGuestLog`).
 */
import type { ExceptionTaken } from "../arch/arm64/cpu.ts";
import { EC } from "../arch/arm64/exceptions.ts";
import type { VirtMachine } from "../machine/virt.ts";

export const LOG_ITEMS = ["int", "mmu", "guest_errors"] as const;
export type LogItem = (typeof LOG_ITEMS)[number];

/** Parses `-d int,mmu,…`; an item armbox does not have is refused naming it. */
export function parseLogItems(spec: string): Set<LogItem> {
  const out = new Set<LogItem>();
  for (const item of spec.split(",")) {
    if (!(LOG_ITEMS as readonly string[]).includes(item))
      throw new Error(`-d ${spec}: armbox has no log item '${item}' (it has ${LOG_ITEMS.join(", ")})`);
    out.add(item as LogItem);
  }
  return out;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

/** QEMU's exception number and name for what was taken (target/arm's EXCP_*). */
function qemuException(e: ExceptionTaken): [number, string] {
  if (e.kind === "irq") return [5, "IRQ"];
  if (e.kind === "fiq") return [6, "FIQ"];
  if (e.kind === "serror") return [21, "SError"];
  const ec = e.esr >>> 26;
  if (ec === EC.SVC64) return [2, "SVC"];
  if (ec === EC.HVC64) return [11, "Hypervisor Call"];
  if (ec === EC.SMC64) return [13, "Secure Monitor Call"];
  if (ec === EC.IABT_LOWER || ec === EC.IABT_CURRENT) return [3, "Prefetch Abort"];
  if (ec === EC.DABT_LOWER || ec === EC.DABT_CURRENT) return [4, "Data Abort"];
  if (ec >= 0x30 && ec <= 0x3c) return [7, "Breakpoint"];
  return [1, "Undefined Instruction"];
}

const isAbort = (esr: number) => {
  const ec = esr >>> 26;
  return ec === EC.IABT_LOWER || ec === EC.IABT_CURRENT || ec === EC.DABT_LOWER || ec === EC.DABT_CURRENT;
};

/** The MMU's fault kinds by DFSC/IFSC[5:2] (Arm ARM D17.2.40). */
const MMU_FAULTS: Record<number, string> = {
  0: "address size",
  1: "translation",
  2: "access flag",
  3: "permission",
};

/** The lines `-d int` prints for `e`. */
export function formatException(e: ExceptionTaken): string {
  const [n, name] = qemuException(e);
  let s = `Taking exception ${n} [${name}] on CPU ${e.vcpu}\n...from EL${e.fromEl} to EL1\n`;
  if (e.kind === "sync") s += `...with ESR ${hex(e.esr >>> 26)}/${hex(e.esr)}\n`;
  if (e.kind === "sync" && isAbort(e.esr)) s += `...with FAR ${hex(e.far)}\n`;
  s += `...with ELR ${hex(e.elr)}\n...with SPSR ${hex(e.spsr)}\n`;
  return `${s}...to EL1 PC ${hex(e.pc)} PSTATE ${hex(e.pstate)}\n`;
}

/** The line `-d mmu` prints for an abort the MMU raised, or null for any other exception. */
export function formatMmuFault(e: ExceptionTaken): string | null {
  if (e.kind !== "sync" || !isAbort(e.esr)) return null;
  const fsc = e.esr & 0x3f;
  const kind = fsc < 0x10 ? MMU_FAULTS[fsc >>> 2] : undefined;
  if (kind === undefined) return null;
  const ec = e.esr >>> 26;
  const access =
    ec === EC.IABT_LOWER || ec === EC.IABT_CURRENT
      ? "instruction fetch"
      : (e.esr >>> 6) & 1
        ? "data write"
        : "data read";
  return `MMU fault on CPU ${e.vcpu}: ${access} at ${hex(e.far)} from EL${e.fromEl}: level ${fsc & 3} ${kind} fault (ESR ${hex(e.esr)}, PC ${hex(e.elr)})\n`;
}

/** Hooks the log of `items` into machine `m`, writing with `write`. */
export function attachGuestLog(
  m: VirtMachine,
  items: ReadonlySet<LogItem>,
  write: (text: string) => void,
): void {
  const int = items.has("int");
  const mmu = items.has("mmu");
  if (int || mmu) {
    for (const v of m.vcpus) {
      v.cpu.onException = (e) => {
        if (int) write(formatException(e));
        const f = mmu ? formatMmuFault(e) : null;
        if (f !== null) write(f);
      };
    }
  }
  if (items.has("guest_errors")) {
    m.vm.onUnassigned = (kind, pa, size) =>
      write(
        `Invalid ${kind} at addr ${hex(pa).toUpperCase().replace("0X", "0x")}, size ${size}, region '(null)', reason: rejected\n`,
      );
  }
}
