/**
 * QEMU's command line (issue 11): every option of `armbox run` spelled QEMU's way (one
 * dash), `armbox -M virt …` as `armbox run`, the grammar of QEMU's option values, and a
 * one-line refusal naming any option armbox does not have, with the nearest it has.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  parseAccel,
  parseMachine,
  parseMemoryOption,
  parseSmp,
  qemuSpellings,
  unknownOptionMessage,
} from "../src/cli/qemu-options.ts";
import { parseSize, virtioFromFlags } from "../src/cli/run.ts";
import { QmpClient } from "../src/vmm/qmp/client.ts";
import { qmpWaits } from "../src/vmm/qmp/protocol.ts";
import { runSync, start } from "./support/children.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const DEMO = new URL("../guests/baremetal/bin/hotplug.elf", import.meta.url).pathname;
const armbox = (...args: string[]) => runSync(process.execPath, [ARMBOX, ...args]);
const tmp = mkdtempSync(join(tmpdir(), "armbox-qemu-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("one dash is two, except in a value and after --", () => {
  const kinds: Record<string, "value" | "flag"> = {
    smp: "value",
    append: "value",
    nographic: "flag",
    "-m": "value",
  };
  const r = qemuSpellings(
    ["-smp", "4", "-m", "256", "-append", "-single console=ttyAMA0", "-nographic", "--", "-x"],
    (n) => kinds[n],
  );
  assert.deepEqual(r.args, [
    "--smp",
    "4",
    "-m",
    "256",
    "--append",
    "-single console=ttyAMA0",
    "--nographic",
    "--",
    "-x",
  ]);
  assert.equal(r.spelled.get("--smp"), "-smp");
  assert.equal(r.spelled.has("-m"), false);
  // --opt=value and -opt=value keep their value in the token.
  assert.deepEqual(qemuSpellings(["-smp=2", "--append=-x"], (n) => kinds[n]).args, [
    "--smp=2",
    "--append=-x",
  ]);
});

test("QEMU's value grammar: -smp, -m, -M, -accel", () => {
  assert.deepEqual(parseSmp("4"), { cpus: 4, maxcpus: 4 });
  assert.deepEqual(parseSmp("2,maxcpus=8"), { cpus: 2, maxcpus: 8 });
  assert.deepEqual(parseSmp("cpus=3"), { cpus: 3, maxcpus: 3 });
  assert.deepEqual(parseSmp("sockets=1,cores=4,threads=1"), { cpus: 4, maxcpus: 4 });
  assert.throws(() => parseSmp("4,maxcpus=8,sockets=1,cores=2"), /is 2, not maxcpus 8/);
  assert.throws(() => parseSmp("4,sockets=1,cores=2"), /maxcpus \(2\) is less than cpus \(4\)/);
  assert.throws(() => parseSmp("4,maxcpus=2"), /less than cpus/);
  assert.throws(() => parseSmp("0"), /not a positive count/);
  assert.throws(() => parseSmp("2,dies=1"), /unknown property 'dies'/);
  // A bare -m is MiB, as QEMU's; size= is its long form.
  assert.equal(parseSize(parseMemoryOption("512")), 512 << 20);
  assert.equal(parseSize(parseMemoryOption("size=1G")), 1 << 30);
  assert.throws(() => parseMemoryOption("1G,slots=2,maxmem=4G"), /unknown property 'slots'/);
  assert.deepEqual(parseMachine("virt"), {});
  assert.deepEqual(parseMachine("virt,gic-version=3,dumpdtb=x.dtb"), { dumpdtb: "x.dtb" });
  assert.deepEqual(parseMachine("virt-7.2,gic-version=max"), {});
  assert.deepEqual(parseMachine("type=virt,accel=tcg"), {});
  assert.throws(() => parseMachine("raspi3b"), /'virt' board only, not 'raspi3b'/);
  assert.throws(() => parseMachine("virt,gic-version=2"), /GICv3 only/);
  assert.throws(() => parseMachine("virt,secure=on"), /unknown property 'secure'/);
  assert.throws(() => parseMachine("virt,accel=kvm"), /no 'kvm' accelerator/);
  assert.equal(parseAccel("tcg"), "jit");
  assert.equal(parseAccel("tcg,thread=multi"), "jit");
  assert.equal(parseAccel("interp"), "interp");
  assert.throws(() => parseAccel("hvf"), /no 'hvf' accelerator/);
});

test("an unknown option is named as typed, with the nearest one armbox has", () => {
  const known = ["smp", "memory", "kernel", "initrd", "append", "machine"];
  assert.equal(unknownOptionMessage("-smpp", known), "unknown option '-smpp' (did you mean -smp?)");
  assert.equal(unknownOptionMessage("--kernal", known), "unknown option '--kernal' (did you mean --kernel?)");
  assert.equal(unknownOptionMessage("-vnc", known), "unknown option '-vnc'");
});

test("-drive if=none,id=… with -device virtio-blk-device,drive=…, as QEMU pairs them", () => {
  const img = join(tmp, "d.img");
  writeFileSync(img, new Uint8Array(4096));
  const v = virtioFromFlags({
    drive: [`if=none,id=d0,file=${img},format=raw,readonly=on`, `file=${img}`],
    device: ["virtio-rng-device", "virtio-blk-device,drive=d0,serial=abc"],
  });
  assert.deepEqual(
    v.map((d) => d.kind),
    ["blk", "rng", "blk"],
  );
  const d0 = v[2] as { readOnly?: boolean; serial?: string; backend: { size: number } };
  assert.equal(d0.readOnly, true);
  assert.equal(d0.serial, "abc");
  assert.equal(d0.backend.size, 4096);
  const bad: [Parameters<typeof virtioFromFlags>[0], RegExp][] = [
    [{ drive: [`if=none,file=${img}`] }, /if=none needs id=NAME/],
    [{ device: ["virtio-blk-device,drive=nope"] }, /drive=nope names no -drive/],
    [
      {
        drive: [`if=none,id=a,file=${img}`],
        device: ["virtio-blk-device,drive=a", "virtio-blk-device,drive=a"],
      },
      /already in use/,
    ],
    [{ drive: [`if=none,id=a,file=${img}`, `if=none,id=a,file=${img}`] }, /duplicate drive id 'a'/],
    [{ drive: [`if=none,id=a,file=${img}`], device: ["virtio-blk-device,drive=a,cache=on"] }, /'cache'/],
  ];
  for (const [flags, re] of bad) assert.throws(() => virtioFromFlags(flags), re);
});

test("a qemu-system-aarch64 command line boots the demo guest unchanged", () => {
  const r = armbox(
    ..."-M virt,gic-version=3 -cpu cortex-a57 -smp 4 -m 128 -nographic -serial mon:stdio -display none -monitor none -no-reboot -accel tcg -kernel".split(
      " ",
    ),
    DEMO,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /RESULT: PASS/);
  // The same with armbox's own spellings, and with `run` written out.
  const own = armbox("run", "--smp", "4", "--memory", "128M", "--kernel", DEMO);
  assert.equal(own.status, 0, own.stderr);
  assert.equal(own.stdout, r.stdout);
});

test("-M virt,dumpdtb=F writes the board's device tree and exits, as QEMU does", () => {
  const q = join(tmp, "q.dtb");
  const a = join(tmp, "a.dtb");
  // Deterministic: the tree's rng-seed and kaslr-seed are then the same in both.
  const r = armbox(
    ...["-M", `virt,dumpdtb=${q}`, "-smp", "2", "-m", "512", "-kernel", DEMO],
    ...["-append", "x=1", "-deterministic"],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "", "nothing ran");
  // --dump-dtb writes the same tree and then boots the kernel.
  const own = armbox(
    ...["run", "--smp", "2", "--memory", "512M", "--dump-dtb", a, "--kernel", DEMO],
    ...["--append", "x=1", "--deterministic"],
  );
  assert.equal(own.status, 0, own.stderr);
  assert.deepEqual(readFileSync(q), readFileSync(a));
});

test("what armbox cannot honour is refused in one line naming it", () => {
  const cases: [string[], RegExp][] = [
    [["-smpp", "2"], /^armbox: unknown option '-smpp' \(did you mean -smp\?\)\n$/],
    [["run", "--kernal", "x"], /^armbox: unknown option '--kernal' \(did you mean --kernel\?\)\n$/],
    [["-vnc", ":0"], /^armbox: unknown option '-vnc'\n$/],
    [["-M", "virt,gic-version=2"], /gic-version=2: armbox's virt board has a GICv3 only/],
    [["-cpu", "cortex-a72"], /-cpu cortex-a72: armbox emulates one CPU/],
    [["-smp", "4,maxcpus=2"], /maxcpus \(2\) is less than cpus \(4\)/],
    [["-m", "12Q"], /bad size '12Q'/],
    [["-serial", "pty"], /-serial pty: armbox's serial console is on stdio/],
    [["-display", "gtk"], /-display gtk: armbox has no display/],
    [["-monitor", "stdio"], /-monitor stdio: armbox's monitor is on the console/],
    [["-s"], /-s: armbox has no gdb stub yet/],
    [["-gdb", "tcp::1234"], /-gdb tcp::1234: armbox has no gdb stub yet/],
    [["-accel", "kvm"], /no 'kvm' accelerator/],
  ];
  for (const [args, re] of cases) {
    const r = armbox(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, `${args.join(" ")}: one line`);
  }
});

test("armbox --version and QEMU's -version", () => {
  const version = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;
  for (const flag of ["--version", "-version", "-V"]) {
    const r = armbox(flag);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `armbox ${version}\n`);
  }
});

test("-qmp unix:S,server (no nowait) holds the guest until a client connects, as QEMU does", {
  timeout: 120_000,
}, async (t) => {
  assert.equal(qmpWaits("unix:q.sock,server"), true);
  assert.equal(qmpWaits("unix:q.sock,server=on,wait=on"), true);
  assert.equal(qmpWaits("unix:q.sock,server,nowait"), false);
  assert.equal(qmpWaits("tcp:127.0.0.1:4444,server=on,wait=off"), false);
  assert.equal(qmpWaits("unix:q.sock"), false);
  const sock = join(tmp, "wait.sock");
  const child = start(t, process.execPath, [
    ARMBOX,
    ...["-qmp", `unix:${sock},server`, "-smp", "2", "-kernel", DEMO, "-deterministic"],
  ]);
  await child.waitFor(/waiting for a QMP connection/, 0, "stderr");
  assert.equal(child.stdout, "", "the guest has not started");
  // The greeting only: the demo guest, started by the connection, ends armbox at once.
  const c = await QmpClient.connect(sock, false);
  await child.waitFor(/RESULT: PASS/);
  await c.close();
  assert.equal((await child.exited).code, 0, child.stderr);
});
