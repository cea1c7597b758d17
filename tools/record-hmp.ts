/**
 * Records QEMU's human-monitor output (test/fixtures/hmp/) that test/hmp.test.ts holds
 * armbox's to: qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57 -smp 2 -S with the
 * demo guest, each command through QMP's human-monitor-command. Run: npx tsx tools/record-hmp.ts
 * (--check: compare with the recording instead, exit 1 on a difference; .ci/run does).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient } from "../src/vmm/qmp/client.ts";

export const HMP_COMMANDS = [
  "info registers -a",
  "xp /8xw 0x40080000",
  "xp /2xg 0x40080000",
  "xp /5xb 0x40080000",
  "xp /9xh 0x40080000",
  "xp /3dw 0x40080000",
  "xp /3uw 0x40080000",
  "xp /3ow 0x40080000",
  "xp /4dh 0x40080000",
  "xp /2dg 0x40080000",
  "info status",
] as const;

const root = new URL("..", import.meta.url).pathname;
const kernel = join(root, "guests/baremetal/bin/hotplug.elf");
const args = [
  "-M",
  "virt,gic-version=3",
  "-cpu",
  "cortex-a57",
  "-smp",
  "2",
  "-S",
  "-display",
  "none",
  "-serial",
  "null",
];

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = mkdtempSync(join(tmpdir(), "armbox-record-hmp-"));
  const sock = join(dir, "q.sock");
  const q = spawn("qemu-system-aarch64", [...args, "-qmp", `unix:${sock},server,nowait`, "-kernel", kernel], {
    stdio: "inherit",
  });
  try {
    while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 20));
    const c = await QmpClient.connect(sock);
    const version = (await c.execute("query-version")) as {
      qemu: { major: number; minor: number; micro: number };
    };
    const outputs: Record<string, string> = {};
    for (const cmd of HMP_COMMANDS)
      outputs[cmd] = (await c.execute("human-monitor-command", { "command-line": cmd })) as string;
    await c.execute("quit");
    const v = version.qemu;
    const fixture = join(root, "test/fixtures/hmp/qemu-hotplug-S.json");
    if (process.argv.includes("--check")) {
      const want = JSON.parse(readFileSync(fixture, "utf8")).outputs as Record<string, string>;
      const bad = HMP_COMMANDS.filter((c) => want[c] !== outputs[c]);
      for (const c of bad)
        console.log(
          `record-hmp: '${c}' differs:\n  recorded ${JSON.stringify(want[c])}\n  live     ${JSON.stringify(outputs[c])}`,
        );
      console.log(
        `record-hmp: ${HMP_COMMANDS.length - bad.length} of ${HMP_COMMANDS.length} outputs as recorded (QEMU ${v.major}.${v.minor}.${v.micro})`,
      );
      process.exitCode = bad.length === 0 ? 0 : 1;
    } else
      writeFileSync(
        fixture,
        `${JSON.stringify({ recordedWith: `qemu-system-aarch64 ${v.major}.${v.minor}.${v.micro} ${args.join(" ")} -kernel guests/baremetal/bin/hotplug.elf`, outputs }, null, 2)}\n`,
      );
  } finally {
    q.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
