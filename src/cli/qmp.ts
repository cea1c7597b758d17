/**
 * `armbox qmp PATH COMMAND [JSON-ARGS]`: a one-shot QMP client. PATH is a Unix socket path
 * (`unix:` optional) or `tcp:HOST:PORT`. Prints the command's `return` as JSON and exits 0;
 * on an error reply prints its description and exits 1; usage or connection errors exit 2.
 */
import type { Command } from "commander";
import { QmpClient, QmpReplyError } from "../vmm/qmp/client.ts";
import { parseQmpAddress } from "../vmm/qmp/protocol.ts";

export interface QmpIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: QmpIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

export async function qmpCommand(
  target: string,
  command: string,
  jsonArgs: string | undefined,
  opts: { pretty?: boolean; timeout?: number } = {},
  io: QmpIo = stdio,
): Promise<number> {
  let args: Record<string, unknown> | undefined;
  if (jsonArgs !== undefined) {
    let v: unknown;
    try {
      v = JSON.parse(jsonArgs);
    } catch (e) {
      io.err(`armbox qmp: JSON-ARGS is not valid JSON: ${(e as Error).message}\n`);
      return 2;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      io.err('armbox qmp: JSON-ARGS must be a JSON object, e.g. \'{"file": "vm.snap"}\'\n');
      return 2;
    }
    args = v as Record<string, unknown>;
  }
  let addr: ReturnType<typeof parseQmpAddress>;
  try {
    addr = parseQmpAddress(target, true);
  } catch (e) {
    io.err(`armbox qmp: ${(e as Error).message}\n`);
    return 2;
  }
  let client: QmpClient;
  try {
    client = await QmpClient.connect(addr, true, opts.timeout ?? 10_000);
  } catch (e) {
    if (e instanceof QmpReplyError) {
      io.err(`armbox qmp: capabilities negotiation failed: ${e.desc}\n`);
      return 1;
    }
    io.err(`armbox qmp: cannot connect to ${target}: ${(e as Error).message}\n`);
    return 2;
  }
  try {
    const ret = await client.execute(command, args);
    io.out(`${JSON.stringify(ret, null, opts.pretty ? 2 : undefined)}\n`);
    return 0;
  } catch (e) {
    if (e instanceof QmpReplyError) {
      io.err(`${e.desc}\n`);
      return 1;
    }
    io.err(`armbox qmp: ${(e as Error).message}\n`);
    return 2;
  } finally {
    await client.close();
  }
}

export function registerQmpCommand(program: Command, done: (p: Promise<number>) => void): void {
  program
    .command("qmp")
    .description("send one QMP command to a running armbox (or QEMU) and print its result")
    .argument("<path>", "Unix socket path (or unix:PATH), or tcp:HOST:PORT")
    .argument("<command>", "QMP command, e.g. query-status")
    .argument("[json-args]", "the command's arguments as a JSON object")
    .option("--pretty", "indent the printed JSON")
    .action((target: string, command: string, jsonArgs: string | undefined, o: { pretty?: boolean }) =>
      done(qmpCommand(target, command, jsonArgs, { pretty: o.pretty ?? false })),
    );
}
