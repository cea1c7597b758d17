/**
 * `armbox qmp PATH COMMAND [JSON-ARGS]`: a one-shot QMP client. PATH is a Unix socket path
 * (`unix:` optional) or `tcp:HOST:PORT`. Prints the command's `return` as JSON and exits 0;
 * on an error reply prints its description and exits 1; usage or connection errors exit 2.
 *
 * With `--wait`, a command that starts a job (its JSON-ARGS has a "job-id", e.g.
 * snapshot-save) is followed to its end: once the job has concluded its query-jobs entry is
 * printed and the job dismissed; exit 1 with the job's error if it failed.
 *
 * `migrate` is followed to its end too (unless `--no-wait`): a progress bar on stderr
 * (transferred, remaining, rate, expected downtime; plain lines without a terminal), then the
 * last query-migrate printed; exit 0 when completed, 1 when failed or cancelled.
 */
import type { Command } from "commander";
import type { MigrationInfo } from "../vmm/migration/controller.ts";
import { QmpClient, QmpReplyError } from "../vmm/qmp/client.ts";
import { parseQmpAddress } from "../vmm/qmp/protocol.ts";
import { showMigrationProgress } from "./migrate-progress.ts";

export interface QmpIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Where migrate's progress goes (default: stderr). */
  progress?: NodeJS.WriteStream;
}

const stdio: QmpIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

export async function qmpCommand(
  target: string,
  command: string,
  jsonArgs: string | undefined,
  opts: { pretty?: boolean; timeout?: number; wait?: boolean; followMigration?: boolean } = {},
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
  const jobId = args?.["job-id"];
  if (opts.wait && typeof jobId !== "string") {
    io.err('armbox qmp: --wait follows a job: give its "job-id" in JSON-ARGS\n');
    return 2;
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
  const print = (v: unknown) => io.out(`${JSON.stringify(v, null, opts.pretty ? 2 : undefined)}\n`);
  try {
    if (opts.wait && typeof jobId === "string")
      return await followJob(client, command, args!, jobId, print, io);
    const reply = await client.execute(command, args);
    if (command === "migrate" && opts.followMigration !== false) {
      const last = await showMigrationProgress(
        async () => (await client.execute("query-migrate")) as MigrationInfo,
        io.progress ? { stream: io.progress } : {},
      );
      print(last);
      return last?.status === "completed" ? 0 : 1;
    }
    print(reply);
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

/** Runs a job-starting command, waits for JOB_STATUS_CHANGE concluded, prints and dismisses the job. */
async function followJob(
  client: QmpClient,
  command: string,
  args: Record<string, unknown>,
  id: string,
  print: (v: unknown) => void,
  io: QmpIo,
): Promise<number> {
  let seen = () => {};
  const concluded = new Promise<void>((resolve) => {
    seen = resolve;
  });
  const prev = client.onEvent;
  client.onEvent = (e) => {
    prev?.(e);
    if (e.event === "JOB_STATUS_CHANGE" && e.data?.id === id && e.data.status === "concluded") seen();
  };
  await client.execute(command, args);
  // The connection closing ends the wait too (execute below then rejects).
  await Promise.race([concluded, client.closed]);
  const list = (await client.execute("query-jobs")) as { id?: unknown; error?: unknown }[];
  const job = Array.isArray(list) ? list.find((j) => j.id === id) : undefined;
  if (!job) {
    io.err(`armbox qmp: job '${id}' is not listed by query-jobs once concluded\n`);
    return 1;
  }
  await client.execute("job-dismiss", { id });
  print(job);
  if (typeof job.error === "string") {
    io.err(`${job.error}\n`);
    return 1;
  }
  return 0;
}

export function registerQmpCommand(program: Command, done: (p: Promise<number>) => void): void {
  program
    .command("qmp")
    .description("send one QMP command to a running armbox (or QEMU) and print its result")
    .argument("<path>", "Unix socket path (or unix:PATH), or tcp:HOST:PORT")
    .argument("<command>", "QMP command, e.g. query-status")
    .argument("[json-args]", "the command's arguments as a JSON object")
    .option("--pretty", "indent the printed JSON")
    .option(
      "--wait",
      'with a "job-id" (snapshot-save, snapshot-load): wait for the job, print and dismiss it',
    )
    .option("--no-wait", "migrate: return at once instead of following the migration to its end")
    .action(
      (
        target: string,
        command: string,
        jsonArgs: string | undefined,
        o: { pretty?: boolean; wait?: boolean },
      ) =>
        done(
          qmpCommand(target, command, jsonArgs, {
            pretty: o.pretty ?? false,
            // commander's --no-wait sets wait to false; --wait, true; neither leaves it unset.
            wait: o.wait === true,
            followMigration: o.wait !== false,
          }),
        ),
    );
}
