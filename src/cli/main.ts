/**
 * The `armbox` command. `armbox user PROG [ARGS...]` runs a static AArch64 Linux program
 * the way qemu-aarch64 does; `armbox run` boots the virt machine, and so does a command
 * line of QEMU's options alone (`armbox -M virt -smp 2 -kernel Image`, qemu-options.ts).
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { Command, Option } from "commander";
import { runProgram } from "../user/process.ts";
import { VERSION } from "../version.ts";
import { registerMonitorCommand } from "./monitor.ts";
import { type OptionKind, qemuSpellings, unknownOptionMessage } from "./qemu-options.ts";
import { registerQmpCommand } from "./qmp.ts";
import { jitOption, registerRunCommand } from "./run.ts";

export { VERSION };

/** Top-level options: anything else first on the command line starts `run`, as in QEMU. */
const TOP_LEVEL = new Set(["-h", "--help", "-V", "--version", "-version"]);

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command();
  // Set before the subcommands, which copy it: an unknown option is refused in one line,
  // naming it as typed and the nearest one armbox has (the run command's, both spellings).
  let spelled = new Map<string, string>();
  let known: string[] = [];
  program
    .name("armbox")
    .description("AArch64 virtual machine monitor and user-mode emulator")
    .version(`armbox ${VERSION}`, "-V, --version", "print armbox's version")
    .enablePositionalOptions()
    .configureOutput({
      outputError: (str, write) => {
        const m = /unknown option '([^']+)'/.exec(str);
        if (m === null) write(str);
        else write(`armbox: ${unknownOptionMessage(spelled.get(m[1]!) ?? m[1]!, known)}\n`);
      },
    })
    .exitOverride();

  program
    .command("user")
    .description("run a static AArch64 Linux executable (like qemu-aarch64)")
    .argument("<prog>", "the executable")
    .argument("[args...]", "arguments passed to the program")
    .option("--strace", "log every system call to stderr")
    .option("--memory <MiB>", "guest address space size in MiB", "1024")
    .option("-0, --argv0 <name>", "argv[0] to pass (default: PROG)")
    .option("-E, --env <VAR=value...>", "set an environment variable (repeatable)")
    .option("--clear-env", "start with an empty environment")
    .addOption(
      new Option(
        "--accel <kind>",
        "jit: translate hot code to WebAssembly (code cache at most 2^20 translated instructions, dropped whole when full); interp: interpret every instruction",
      )
        .choices(["jit", "interp"])
        .default("jit"),
    )
    .passThroughOptions()
    .allowUnknownOption(false)
    .action(
      (
        prog: string,
        args: string[],
        opts: {
          strace?: boolean;
          memory: string;
          argv0?: string;
          env?: string[];
          clearEnv?: boolean;
          accel: "jit" | "interp";
        },
      ) => {
        const mib = Number(opts.memory);
        if (!Number.isInteger(mib) || mib < 16 || mib > 3072) {
          process.stderr.write("armbox: --memory must be an integer number of MiB between 16 and 3072\n");
          code = 2;
          return;
        }
        const file = path.resolve(prog);
        if (!fs.existsSync(file)) {
          process.stderr.write(`armbox: ${prog}: No such file or directory\n`);
          code = 2;
          return;
        }
        const env = opts.clearEnv ? [] : Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
        for (const e of opts.env ?? []) env.push(e);
        code = runProgram(file, [opts.argv0 ?? prog, ...args], {
          ramBytes: mib << 20,
          jit: jitOption(opts.accel),
          jitReport: process.env.ARMBOX_JIT_STATS !== undefined,
          env,
          strace: opts.strace ? (l) => process.stderr.write(`${l}\n`) : null,
        });
      },
    );

  let pending: Promise<number> | null = null;
  registerRunCommand(program, (p) => {
    pending = p;
  });
  registerQmpCommand(program, (p) => {
    pending = p;
  });
  registerMonitorCommand(program, (p) => {
    pending = p;
  });

  // QEMU's way of writing the run command (qemu-options.ts): implied, and with one dash.
  let args = argv[0] === "-version" ? ["--version", ...argv.slice(1)] : [...argv];
  const first = args[0];
  if (first?.startsWith("-") && !TOP_LEVEL.has(first)) args = ["run", ...args];
  const run = program.commands.find((c) => c.name() === "run")!;
  if (args[0] === "run") {
    const kind = (name: string): OptionKind => {
      const o = run.options.find((x) => x.long === `--${name}` || x.short === name);
      return o === undefined ? undefined : o.required || o.optional ? "value" : "flag";
    };
    const r = qemuSpellings(args.slice(1), kind);
    args = ["run", ...r.args];
    spelled = r.spelled;
    known = run.options.flatMap((o) => (o.hidden || o.long === undefined ? [] : [o.long.slice(2)]));
  }
  try {
    program.parse(args, { from: "user" });
    if (pending) return await pending;
  } catch (e) {
    const ce = e as { exitCode?: number; code?: string };
    if (ce.code === "commander.helpDisplayed" || ce.code === "commander.version") return 0;
    return ce.exitCode === 0 ? 0 : 2;
  }
  return code;
}

const isMain = process.argv[1] !== undefined && /main\.ts$/.test(process.argv[1]);
if (isMain) process.exitCode = await main(process.argv.slice(2));
