/**
 * QEMU's `-d int,mmu,guest_errors` and `-D FILE` (issue 11): every exception taken, every
 * MMU fault and every access no RAM or device answers, in QEMU's words, from bare-metal
 * guests whose exceptions are known (guests/baremetal/exceptions.c, mmu.c); an item armbox
 * does not have is refused; without -d the hooks are not there at all.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { VirtMachine } from "../src/machine/virt.ts";
import { attachGuestLog, parseLogItems } from "../src/vmm/guest-log.ts";
import { runSync } from "./support/children.ts";

const root = new URL("..", import.meta.url).pathname;
const ARMBOX = join(root, "bin/armbox.js");
const guest = (n: string) => join(root, `guests/baremetal/bin/${n}.elf`);
const tmp = mkdtempSync(join(tmpdir(), "armbox-guest-log-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("-d int -D FILE: each exception the guest takes, QEMU's lines", () => {
  const log = join(tmp, "int.log");
  const r = runSync(process.execPath, [
    ARMBOX,
    "-kernel",
    guest("exceptions"),
    "-d",
    "int",
    "-D",
    log,
    "-deterministic",
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /RESULT: PASS/);
  const text = readFileSync(log, "utf8");
  // The first: the guest's SVC #0x1234 at EL1, to its vector table's current-EL SPx entry.
  assert.match(
    text,
    /^Taking exception 2 \[SVC\] on CPU 0\n\.\.\.from EL1 to EL1\n\.\.\.with ESR 0x15\/0x56001234\n\.\.\.with ELR 0x[0-9a-f]+\n\.\.\.with SPSR 0x[0-9a-f]+\n\.\.\.to EL1 PC 0x[0-9a-f]+ PSTATE 0x[0-9a-f]+\n/,
  );
  const names = [...text.matchAll(/Taking exception \d+ \[([^\]]+)\]/g)].map((m) => m[1]);
  for (const n of ["SVC", "Undefined Instruction", "Breakpoint", "Data Abort", "IRQ"])
    assert.ok(names.includes(n), `${n} in ${names}`);
  // A data abort says where.
  assert.match(text, /\[Data Abort\][\s\S]*?\.\.\.with FAR 0x[0-9a-f]+\n/);
  assert.equal(r.stderr.includes("Taking exception"), false, "-D: the log is in the file only");
});

test("-d mmu: every MMU fault the guest provokes, by kind and level", () => {
  const r = runSync(process.execPath, [ARMBOX, "-kernel", guest("mmu"), "-d", "mmu", "-deterministic"]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("MMU fault"));
  for (const kind of ["translation", "access flag", "permission", "address size"])
    assert.ok(
      lines.some((l) => l.includes(` ${kind} fault`)),
      kind,
    );
  for (const level of [0, 1, 2, 3])
    assert.ok(
      lines.some((l) => l.includes(`level ${level} `)),
      `level ${level}`,
    );
  assert.ok(lines.some((l) => /instruction fetch at .* from EL0/.test(l)));
  assert.ok(lines.some((l) => /data write at .* from EL0: level 3 permission fault/.test(l)));
  assert.doesNotMatch(r.stderr, /Taking exception/, "int was not asked for");
});

test("-d guest_errors: an access nothing answers, in QEMU's words", () => {
  // movz x1, #0x0b00, lsl #16; ldr w0, [x1]; b . (0x0b000000 is between the virtio-mmio
  // transports and RAM: no device there).
  const code = new Uint32Array([0xd2a16001, 0xb9400020, 0x14000000]);
  const m = new VirtMachine({
    kernel: new Uint8Array(code.buffer),
    smp: 1,
    memory: 16 << 20,
    deterministic: true,
  });
  const lines: string[] = [];
  attachGuestLog(m, parseLogItems("guest_errors"), (t) => lines.push(t));
  m.scheduler().round(100);
  assert.equal(lines[0], "Invalid read at addr 0xB000000, size 4, region '(null)', reason: rejected\n");
});

test("-d refuses what armbox has not; without -d nothing is hooked", () => {
  const bad = runSync(process.execPath, [ARMBOX, "-kernel", guest("exceptions"), "-d", "int,unimp"]);
  assert.equal(bad.status, 2);
  assert.match(
    bad.stderr,
    /^armbox: -d int,unimp: armbox has no log item 'unimp' \(it has int, mmu, guest_errors\)\n$/,
  );
  const noD = runSync(process.execPath, [ARMBOX, "-kernel", guest("exceptions"), "-D", join(tmp, "x.log")]);
  assert.equal(noD.status, 2);
  assert.match(noD.stderr, /nothing to log without -d/);
  const m = new VirtMachine({ smp: 2, memory: 16 << 20 });
  assert.ok(m.vcpus.every((v) => v.cpu.onException === null));
  assert.equal(m.vm.onUnassigned, null);
});
