/**
 * QEMU's human monitor through QMP's human-monitor-command, and the QMP commands libvirt
 * and qmp-shell send first (issue 11). The HMP output is held to QEMU 7.2's, recorded
 * from qemu-system-aarch64 with the same guest and command line (tools/record-hmp.ts):
 * memory dumps byte for byte, `info registers` line for line with the values masked (the
 * two boot their guests with different register values: armbox passes the DTB in x0).
 * The command table, query-qmp-schema, query-commands and the QMP README's list agree.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import { I, OFF } from "../src/arch/arm64/state.ts";
import { SYSREG_BY_NAME } from "../src/arch/arm64/sysregs.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { VERSION } from "../src/version.ts";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import { COMMANDS, QMP_EVENTS } from "../src/vmm/qmp/commands.ts";
import { formatRegisters } from "../src/vmm/qmp/hmp.ts";
import { type Child, start } from "./support/children.ts";

const root = new URL("..", import.meta.url).pathname;
const ARMBOX = join(root, "bin/armbox.js");
const DEMO = join(root, "guests/baremetal/bin/hotplug.elf");
const COUNTER = join(root, "guests/migration/bin/counter.elf");
const recorded = JSON.parse(readFileSync(join(root, "test/fixtures/hmp/qemu-hotplug-S.json"), "utf8")) as {
  outputs: Record<string, string>;
};
const tmp = mkdtempSync(join(tmpdir(), "armbox-hmp-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** armbox with QEMU's command line of the recording (plus `more`), and its QMP client. */
async function armbox(
  t: TestContext,
  name: string,
  kernel: string,
  ...more: string[]
): Promise<[Child, QmpClient]> {
  const sock = join(tmp, `${name}.qmp`);
  const child = start(t, process.execPath, [
    ARMBOX,
    ...["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-smp", "2", "-display", "none"],
    ...["-qmp", `unix:${sock},server,nowait`, "-kernel", kernel, ...more],
  ]);
  // The socket exists once armbox listens: try until it does (or armbox has exited).
  for (;;) {
    try {
      return [child, await QmpClient.connect(sock)];
    } catch {
      if (child.exit) throw new Error(`armbox exited: ${child.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
const hmp = (c: QmpClient, line: string, cpu?: number) =>
  c.execute("human-monitor-command", {
    "command-line": line,
    ...(cpu !== undefined ? { "cpu-index": cpu } : {}),
  }) as Promise<string>;
/**
 * The values masked: hex digits, and the NZCV letters (UNKNOWN out of reset; QEMU's read
 * -Z-- because its Z flag is stored inverted, zeroed at reset).
 */
const mask = (s: string) =>
  s.replace(/[0-9a-f]{16}|[0-9a-f]{8}/g, "#").replace(/ [-N][-Z][-C][-V] EL/g, " #### EL");

test("HMP: memory dumps as QEMU's, byte for byte; info registers line for line; info status", {
  timeout: 120_000,
}, async (t) => {
  const [child, c] = await armbox(t, "dump", DEMO, "-S", "-name", "guest=hmp,debug-threads=on");
  for (const [cmd, want] of Object.entries(recorded.outputs)) {
    const got = await hmp(c, cmd);
    if (cmd.startsWith("xp ") || cmd === "info status") assert.equal(got, want, cmd);
    else assert.equal(mask(got), mask(want), cmd);
  }
  // armbox's own values: the boot vCPU at the ELF's entry, the other one powered off.
  const regs = await hmp(c, "info registers");
  assert.match(regs, /^\r\nCPU#0\r\n PC=0000000040080000 X00=/);
  assert.match(await hmp(c, "info registers", 1), /^\r\nCPU#1\r\n/);
  // With the MMU off, x (virtual) reads what xp (physical) reads.
  assert.equal(await hmp(c, "x /8xw 0x40080000"), recorded.outputs["xp /8xw 0x40080000"]);
  assert.equal(
    await hmp(c, "x /3i 0x40080000"),
    "0x40080000:  aa0003f3  ORR (shifted register)\r\n0x40080004:  94000015  BL\r\n0x40080008:  b5000140  CBNZ\r\n",
  );
  assert.match(
    await hmp(c, "info cpus"),
    /^\* CPU #0: thread_id=\d+ mp-state=RUNNABLE\r\n {2}CPU #1: thread_id=\d+ mp-state=STOPPED\r\n$/,
  );
  assert.match(
    await hmp(c, "xp /4xw 0x1000"),
    /^Cannot access memory at physical address 0000000000001000\r\n$/,
  );
  assert.match(await hmp(c, "info frobnicate"), /unknown info subcommand 'frobnicate'/);
  assert.match(await hmp(c, "frobnicate"), /unknown command: 'frobnicate'/);
  assert.match(
    await hmp(c, "info mtree"),
    /0000000040000000-000000004fffffff \(prio 0, ram\): mach-virt\.ram\r\n/,
  );
  assert.match(
    await hmp(c, "info version"),
    new RegExp(`^7\\.2\\.0 \\(armbox ${VERSION.replace(/\./g, "\\.")}\\)\r\n$`),
  );
  await assert.rejects(hmp(c, "info registers", 2), /cpu-index/);
  // cont through the monitor: the demo guest runs to its end (and armbox with it).
  assert.equal(await hmp(c, "cont"), "");
  await child.waitFor(/RESULT: PASS/);
  assert.equal((await child.exited).code, 0, child.stderr);
  await c.close();
});

test("info registers with FP enabled: FPCR, FPSR and the Q registers, as QEMU lays them out", () => {
  const m = new VirtMachine({ smp: 1, memory: 16 << 20 });
  const cpu = m.vcpus[0]!.cpu;
  const r = cpu.r;
  r[(OFF.SYSREGS >> 2) + SYSREG_BY_NAME.get("CPACR_EL1")!.slot * 2] = 3 << 20;
  r[I.FPCR] = 0x03000000;
  r[I.FPSR] = 0x10;
  // Q1 = 0x0011223344556677_8899aabbccddeeff
  r.set([0xccddeeff, 0x8899aabb, 0x44556677, 0x00112233], I.V + 4);
  cpu.setX(5, 0x1234n);
  cpu.pc = 0xffff800008010000n;
  r[I.PSTATE] = 0x600003c5;
  const s = formatRegisters(cpu, 0).split("\n");
  assert.equal(s[2], ` PC=ffff800008010000 X00=0000000000000000 X01=0000000000000000`);
  assert.equal(s[3], "X02=0000000000000000 X03=0000000000000000 X04=0000000000000000");
  assert.equal(s[4], "X05=0000000000001234 X06=0000000000000000 X07=0000000000000000");
  assert.equal(s[13], "PSTATE=600003c5 -ZC- EL1h     FPCR=03000000 FPSR=00000010");
  assert.equal(s[14], "Q00=0000000000000000:0000000000000000 Q01=0011223344556677:8899aabbccddeeff");
  assert.equal(s.length, 14 + 16 + 1);
});

test("QMP: what libvirt and qmp-shell ask first, in QEMU 7.2's shapes", { timeout: 120_000 }, async (t) => {
  const [child, c] = await armbox(t, "q", DEMO, "-S", "-name", "guest=vm1,debug-threads=on");
  assert.deepEqual(await c.execute("query-version"), {
    qemu: { major: 7, minor: 2, micro: 0 },
    package: `armbox ${VERSION}`,
  });
  assert.deepEqual(await c.execute("query-target"), { arch: "aarch64" });
  assert.deepEqual(await c.execute("query-name"), { name: "vm1" });
  const machines = (await c.execute("query-machines")) as { name: string; alias?: string }[];
  assert.deepEqual(
    machines.map((x) => [x.name, x.alias]),
    [["virt-7.2", "virt"]],
  );
  const cpus = (await c.execute("query-cpu-definitions")) as { name: string }[];
  assert.deepEqual(
    cpus.map((x) => x.name),
    ["cortex-a57", "max"],
  );
  const caps = (await c.execute("query-migrate-capabilities")) as { capability: string; state: boolean }[];
  assert.deepEqual(
    caps.filter((x) => x.state).map((x) => x.capability),
    ["events"],
  );
  assert.ok(caps.some((x) => x.capability === "postcopy-ram"));
  assert.deepEqual(
    await c.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] }),
    {},
  );
  await assert.rejects(
    c.execute("migrate-set-capabilities", { capabilities: [{ capability: "xbzrle", state: true }] }),
    /'xbzrle' cannot be enabled in armbox/,
  );
  await assert.rejects(
    c.execute("migrate-set-capabilities", { capabilities: [{ capability: "nope", state: true }] }),
    /does not accept value 'nope'/,
  );
  const hot = (await c.execute("query-hotpluggable-cpus")) as { "qom-path": string }[];
  assert.deepEqual(
    hot.map((x) => x["qom-path"]),
    ["/machine/unattached/device[0]", "/machine/unattached/device[1]"],
  );
  const list = (await c.execute("qom-list", { path: "/machine/unattached" })) as { name: string }[];
  assert.deepEqual(
    list.map((x) => x.name),
    ["type", "device[0]", "device[1]"],
  );
  assert.equal(await c.execute("qom-get", { path: "/machine", property: "type" }), "virt-7.2-machine");
  assert.equal(
    await c.execute("qom-get", { path: "/machine/unattached/device[1]", property: "mp-state" }),
    "STOPPED",
  );
  await assert.rejects(
    c.execute("qom-get", { path: "/nope", property: "type" }),
    /Device '\/nope' not found/,
  );
  await assert.rejects(
    c.execute("qom-get", { path: "/machine", property: "nope" }),
    /Property 'virt-7.2-machine.nope' not found/,
  );
  await c.execute("quit");
  assert.equal((await child.exited).code, 0);
  await c.close();
});

test("system_reset: RESET, and the guest boots again from its first instruction", {
  timeout: 120_000,
}, async (t) => {
  const [child, c] = await armbox(t, "reset", COUNTER);
  await child.waitFor(/tick 3\b/);
  const reset = new Promise<void>((resolve) => {
    c.onEvent = (e) => {
      if (e.event === "RESET") resolve();
    };
  });
  const before = child.stdout.length;
  assert.deepEqual(await c.execute("system_reset"), {});
  await reset;
  await child.waitFor(/tick 0\b/, before);
  assert.equal(await hmp(c, "system_reset"), "");
  await c.execute("quit");
  assert.equal((await child.exited).code, 0);
  await c.close();
});

test("the command table, query-qmp-schema, query-commands and the QMP README's list agree", {
  timeout: 120_000,
}, async (t) => {
  const names = Object.keys(COMMANDS).sort();
  const readme = readFileSync(join(root, "src/vmm/qmp/README.md"), "utf8");
  const para = /## Commands\n\n([\s\S]*?)\n\n/.exec(readme)![1]!;
  assert.deepEqual([...para.matchAll(/`([a-z_-]+)`/g)].map((m) => m[1]).sort(), names);
  const [child, c] = await armbox(t, "schema", DEMO, "-S");
  const cmds = (await c.execute("query-commands")) as { name: string }[];
  assert.deepEqual(cmds.map((x) => x.name).sort(), names);
  const schema = (await c.execute("query-qmp-schema")) as Record<string, unknown>[];
  const byName = new Map(schema.map((e) => [e.name as string, e]));
  const commandsInSchema = schema.filter((e) => e["meta-type"] === "command").map((e) => e.name as string);
  assert.deepEqual(commandsInSchema.sort(), names);
  for (const [name, cmd] of Object.entries(COMMANDS)) {
    const argType = byName.get(byName.get(name)!["arg-type"] as string)!;
    const members = argType.members as { name: string; type: string; default?: null }[];
    assert.deepEqual(
      members.map((m) => [m.name, "default" in m]),
      Object.entries(cmd.args).map(([a, s]) => [a, s.optional === true]),
      name,
    );
    for (const m of members)
      assert.ok(byName.has(m.type), `${name}.${m.name}: type ${m.type} is in the schema`);
  }
  assert.deepEqual(
    schema.filter((e) => e["meta-type"] === "event").map((e) => e.name),
    [...QMP_EVENTS],
  );
  await c.execute("quit");
  await child.exited;
  await c.close();
});

test("armbox monitor SOCK: QEMU's human monitor, line by line, with cpu N kept by the monitor", {
  timeout: 120_000,
}, async (t) => {
  const [child, c] = await armbox(t, "mon", DEMO, "-S");
  const sock = join(tmp, "mon.qmp");
  const mon = start(t, process.execPath, [ARMBOX, "monitor", sock]);
  await mon.waitFor(/type 'help'/);
  mon.send("info status\ncpu 1\ninfo registers\ncpu 9\nxp /2xg 0x40080000\nbogus\n");
  await mon.waitFor(/unknown command: 'bogus'\n/);
  assert.match(mon.stdout, /VM status: paused \(prelaunch\)\n/);
  assert.match(mon.stdout, /\nCPU#1\n PC=/, "info registers reads the vCPU cpu 1 chose");
  assert.match(mon.stdout, /invalid CPU index\n/);
  assert.ok(mon.stdout.includes(recorded.outputs["xp /2xg 0x40080000"]!.replace(/\r\n/g, "\n")));
  mon.send("quit\n");
  assert.equal((await mon.exited).code, 0, mon.stderr);
  assert.equal((await child.exited).code, 0, child.stderr);
  await c.close();
});
