/**
 * The `armbox` command. `armbox user PROG [ARGS...]` runs a static AArch64 Linux program
 * the way qemu-aarch64 does; `armbox run` will boot the virt machine.
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { Command, Option } from "commander";
import { runProgram } from "../user/process.ts";
import { registerQmpCommand } from "./qmp.ts";
import { jitOption, registerRunCommand } from "./run.ts";

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command();
  program
    .name("armbox")
    .description("AArch64 virtual machine monitor and user-mode emulator")
    .enablePositionalOptions()
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

  try {
    program.parse(argv, { from: "user" });
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
