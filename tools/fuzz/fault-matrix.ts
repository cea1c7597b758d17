/**
 * The migration fault matrix, source side: a running source VM (the counter guest) migrates
 * over TCP to a fake destination that fails on purpose: it drops the connection after
 * every frame index in turn, or stalls (accepts, then answers nothing). After each case
 * the source must have failed the migration and kept running: not paused, its vCPUs
 * executing (the instruction count grows), its dirty log off. Printed: cases per kind,
 * "source survived N of N". The fake destinations never load a machine, so "destination
 * ran incomplete" is 0 by construction here (the stream fuzzer covers the loading side).
 *
 * CLI: `npx tsx tools/fuzz/fault-matrix.ts [--seed S]`.
 */
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { pathToFileURL } from "node:url";
import { VirtMachine } from "../../src/machine/virt.ts";
import { OutgoingMigration } from "../../src/vmm/migration/source.ts";
import { FrameReader, frame, SEC_READY } from "../../src/vmm/migration/stream.ts";
import { MachineRunner } from "../../src/vmm/runner.ts";

export interface MatrixResult {
  cases: Record<string, number>;
  survived: number;
  total: number;
  destinationRanIncomplete: number;
  failures: string[];
  ms: number;
}

type Behaviour = { kind: "kill"; at: number } | { kind: "stall" };

/** A fake destination for one case; resolves with its port. */
function fakeDestination(b: Behaviour): Promise<{ port: number; close: () => void }> {
  return new Promise((resolve) => {
    const socks: net.Socket[] = [];
    const server = net.createServer((sock) => {
      socks.push(sock);
      if (b.kind === "stall") return; // reads nothing, answers nothing
      const r = new FrameReader();
      sock.on("data", (d: Buffer) => r.push(new Uint8Array(d)));
      sock.on("error", () => {});
      sock.on("close", () => r.end());
      void (async () => {
        try {
          await r.preamble();
          for (let i = 0; ; i++) {
            if (i === b.at) return sock.destroy();
            const s = await r.next();
            if (s === null) return sock.destroy();
            if (i === 0) sock.write(frame(SEC_READY, {}));
          }
        } catch {
          sock.destroy();
        }
      })();
    });
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () => {
          for (const s of socks) s.destroy();
          server.close();
        },
      }),
    );
  });
}

function dirtyLogOff(m: VirtMachine): boolean {
  try {
    m.vm.getDirtyLog();
    return false;
  } catch {
    return true;
  }
}

export async function runMatrix(maxFrames = 40): Promise<MatrixResult> {
  const t0 = performance.now();
  const kernel = new Uint8Array(
    readFileSync(new URL("../../guests/migration/bin/counter.elf", import.meta.url)),
  );
  const m = new VirtMachine({ kernel, smp: 2, memory: 16 << 20, deterministic: true });
  const runner = new MachineRunner(m, { output: () => {}, diag: () => {}, controlOpen: () => true });
  const running = runner.run();
  const res: MatrixResult = {
    cases: {},
    survived: 0,
    total: 0,
    destinationRanIncomplete: 0,
    failures: [],
    ms: 0,
  };
  const cases: Behaviour[] = [
    ...Array.from({ length: maxFrames + 1 }, (_, at) => ({ kind: "kill" as const, at })),
    { kind: "stall" },
  ];
  try {
    for (const b of cases) {
      const d = await fakeDestination(b);
      const mig = new OutgoingMigration(m, runner, {
        batchPages: 2,
        replyTimeoutMs: 1000,
        connectTimeoutMs: 2000,
      });
      try {
        mig.start(`tcp:127.0.0.1:${d.port}`);
        const status = await mig.done();
        const name = b.kind === "kill" ? "destination killed at a frame index" : "stalling peer";
        res.cases[name] = (res.cases[name] ?? 0) + 1;
        res.total++;
        const before = runner.sched.instructions;
        await new Promise((r) => setTimeout(r, 30));
        const ok =
          status === "failed" && !runner.isPaused && dirtyLogOff(m) && runner.sched.instructions > before;
        if (ok) res.survived++;
        else res.failures.push(`${JSON.stringify(b)}: status ${status}, paused ${runner.isPaused}`);
      } finally {
        d.close();
      }
    }
  } finally {
    runner.finish({ kind: "quit", code: 0 });
    await running;
  }
  res.ms = performance.now() - t0;
  return res;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runMatrix();
  for (const [k, v] of Object.entries(r.cases)) console.log(`${k}: ${v} cases`);
  console.log(`source survived ${r.survived} of ${r.total}`);
  console.log(`destination ran incomplete: ${r.destinationRanIncomplete}`);
  console.log(`${(r.ms / 1000).toFixed(1)} s`);
  for (const f of r.failures) console.log(`  ${f}`);
  process.exitCode = r.survived === r.total ? 0 : 1;
}
