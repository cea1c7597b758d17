/**
 * `armbox monitor SOCK`: QEMU's human monitor over a QMP socket, as `qmp-shell -H` gives
 * it: each line typed is run by QMP's human-monitor-command and its output printed.
 * `cpu N` picks the vCPU the next commands read (sent as cpu-index; the monitor's own
 * state, as in QEMU), Ctrl-D or `quit` leaves (`quit` also ends the VM, as in QEMU).
 */
import * as readline from "node:readline";
import type { Command } from "commander";
import { QmpClient, QmpReplyError } from "../vmm/qmp/client.ts";
import { parseQmpAddress } from "../vmm/qmp/protocol.ts";

export async function monitorCommand(
  target: string,
  input: NodeJS.ReadableStream = process.stdin,
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  let client: QmpClient;
  try {
    client = await QmpClient.connect(parseQmpAddress(target, true));
  } catch (e) {
    err(`armbox monitor: cannot connect to ${target}: ${(e as Error).message}\n`);
    return 2;
  }
  const tty = (input as { isTTY?: boolean }).isTTY === true;
  const rl = readline.createInterface({ input, terminal: tty, ...(tty ? { output: process.stdout } : {}) });
  const prompt = () => {
    if (tty) rl.prompt();
  };
  rl.setPrompt("(armbox) ");
  out(`armbox monitor on ${target} - type 'help' for more information\n`);
  let cpu = 0;
  let code = 0;
  prompt();
  for await (const line of rl) {
    const words = line.trim().split(/\s+/);
    try {
      if (words[0] === "cpu" && words.length === 2) {
        const n = Number(words[1]);
        const cpus = (await client.execute("query-cpus-fast")) as unknown[];
        if (!Number.isInteger(n) || n < 0 || n >= cpus.length) out("invalid CPU index\n");
        else cpu = n;
      } else if (words[0] !== "") {
        const text = (await client.execute("human-monitor-command", {
          "command-line": line,
          "cpu-index": cpu,
        })) as string;
        out(text.replace(/\r\n/g, "\n"));
        if (words[0] === "quit" || words[0] === "q") break;
      }
    } catch (e) {
      if (e instanceof QmpReplyError) out(`${e.desc}\n`);
      else {
        err(`armbox monitor: ${(e as Error).message}\n`);
        code = 1;
        break;
      }
    }
    prompt();
  }
  rl.close();
  await client.close();
  return code;
}

export function registerMonitorCommand(program: Command, done: (p: Promise<number>) => void): void {
  program
    .command("monitor")
    .description(
      "QEMU's human monitor (info registers, x, xp, info cpus, ...) on a running armbox's (or QEMU's) QMP socket",
    )
    .argument("<path>", "Unix socket path (or unix:PATH), or tcp:HOST:PORT")
    .action((target: string) => done(monitorCommand(target)));
}
