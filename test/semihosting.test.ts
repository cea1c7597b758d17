/**
 * Arm semihosting: guests/semihosting prints with SYS_WRITE0/SYS_WRITEC and exits with
 * SYS_EXIT_EXTENDED(3); armbox run --semihosting must print it and exit 3, as QEMU does
 * with -semihosting (checked live when qemu-system-aarch64 is installed).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { coreReg, KVM_REG_SIZE_U64, sysReg } from "../src/hv/onereg.ts";
import { VirtMachine } from "../src/machine/virt.ts";
import { SYNC_TIMEOUT_MS } from "./support/children.ts";

const GUEST = new URL("../guests/semihosting/semihosting.elf", import.meta.url).pathname;
const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const hasQemu = spawnSync("qemu-system-aarch64", ["--version"]).status === 0;

test("armbox run --semihosting: output and the guest's exit code", () => {
  const r = spawnSync(process.execPath, [ARMBOX, "run", "--semihosting", "--kernel", GUEST], {
    encoding: "utf8",
    timeout: SYNC_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  assert.equal(r.status, 3, r.stderr);
  assert.equal(r.stdout, "hello from semihosting\n");
});

test("without --semihosting, HLT is UNDEFINED (EC 0 at the HLT)", () => {
  const m = new VirtMachine({
    kernel: new Uint8Array(readFileSync(GUEST)),
    deterministic: true,
    memory: 32 << 20,
  });
  const v = m.vcpus[0]!;
  v.run(3); // mov, adr, then the HLT takes the exception (to an unmapped VBAR; no matter)
  const esr = v.getOneReg(sysReg(3, 0, 5, 2, 0));
  const elr = v.getOneReg(coreReg(280, KVM_REG_SIZE_U64));
  assert.equal(esr >> 26n, 0n, "EC 0: unknown reason");
  assert.equal(elr, 0x4008_0008n, "the first HLT");
});

test("qemu-system-aarch64 -semihosting agrees", {
  skip: !hasQemu && "qemu-system-aarch64 not installed",
}, () => {
  const r = spawnSync(
    "qemu-system-aarch64",
    ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-nographic", "-semihosting", "-kernel", GUEST],
    { encoding: "utf8", timeout: SYNC_TIMEOUT_MS, killSignal: "SIGKILL" },
  );
  assert.equal(r.status, 3);
  assert.equal(r.stdout + r.stderr, "hello from semihosting\n");
});
