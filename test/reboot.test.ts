/**
 * PSCI SYSTEM_RESET reboots the VM as QEMU does (without -no-reboot): devices and vCPUs
 * reset, the loaded images written again, the boot vCPU back at the entry point, RAM
 * outside the images kept. The guest (a raw binary, built from the assembly below with
 * aarch64-linux-gnu-as + objcopy) counts its boots in RAM at 0x41000000, prints the count
 * on the PL011, resets after the first boot and powers off after the second.
 *
 *     movz x1, #0x4100, lsl #16 ; ldr w2, [x1] ; add w2, w2, #1 ; str w2, [x1]
 *     movz x3, #0x0900, lsl #16 ; add w4, w2, #0x30 ; str w4, [x3]
 *     cmp w2, #2 ; b.ge 1f
 *     movz x0, #0x8400, lsl #16 ; movk x0, #9 ; hvc #0 ; b .      // SYSTEM_RESET
 * 1:  movz x0, #0x8400, lsl #16 ; movk x0, #8 ; hvc #0 ; b .      // SYSTEM_OFF
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runSync } from "./support/children.ts";

const GUEST = [
  0xd2a82001, 0xb9400022, 0x11000442, 0xb9000022, 0xd2a12003, 0x1100c044, 0xb9000064, 0x7100085f, 0x540000aa,
  0xd2b08000, 0xf2800120, 0xd4000002, 0x14000000, 0xd2b08000, 0xf2800100, 0xd4000002, 0x14000000,
];
const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;

function guestFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "armbox-reboot-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "reboot.bin");
  const b = Buffer.alloc(GUEST.length * 4);
  GUEST.forEach((w, i) => {
    b.writeUInt32LE(w, i * 4);
  });
  writeFileSync(file, b);
  return file;
}
const run = (...args: string[]) => runSync(process.execPath, [ARMBOX, "run", "--smp", "2", ...args]);

test("SYSTEM_RESET boots the guest again; its second boot powers off with status 0", () => {
  const r = run("--kernel", guestFile());
  assert.equal(r.stdout, "12", r.stderr);
  assert.equal(r.status, 0, r.stderr);
});

test("--no-reboot: a reset ends armbox after the first boot", () => {
  const r = run("--kernel", guestFile(), "--no-reboot");
  assert.equal(r.stdout, "1", r.stderr);
  assert.equal(r.status, 0);
  assert.match(r.stderr, /reset the machine; not booting again \(--no-reboot\)/);
});
