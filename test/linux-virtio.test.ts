/**
 * Debian's arm64 kernel finds armbox's virtio-mmio devices and uses them: the test
 * initramfs loads virtio_mmio, virtio_blk, virtio-rng and virtio_console, then the command
 * below reads and writes /dev/vda (a raw image file), reads the disk's serial (GET_ID),
 * draws from /dev/hwrng and, under armbox, writes and reads /dev/hvc0. Under
 * ARMBOX_LINUX_REF=qemu the same disk and rng checks run on QEMU's devices (no hvc0: its
 * stdio is the serial port's), which proves the checks right. Files and environment as in
 * test/linux-boot.test.ts (test/support/linux.ts).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { boot, engine, markers, requireFiles, skipUnlessCi, testTimeoutMs } from "./support/linux.ts";

const opts = { skip: skipUnlessCi(), timeout: testTimeoutMs };

// Under armbox, twice: interpreted, and translated (issue 10: the modules insmod loads from
// the initramfs are written into memory, then run translated, and drive the devices).
for (const accel of engine === "armbox" ? ["interp", "jit"] : [null]) {
  test(
    `${engine}${accel ? ` --accel ${accel}` : ""}: Linux drives virtio-blk, virtio-rng and virtio-console on virtio-mmio`,
    opts,
    async () => {
      requireFiles();
      const dir = mkdtempSync(join(tmpdir(), "armbox-linux-virtio-"));
      try {
        const img = join(dir, "disk.img");
        const disk = new Uint8Array(1 << 20);
        disk.set(new TextEncoder().encode("ARMBOX-SECTOR-0"), 0);
        disk.set(new TextEncoder().encode("ARMBOX-SECTOR-100"), 100 * 512);
        writeFileSync(img, disk);
        const hvc = engine === "armbox";
        const cmd = [
          "echo VIRTIO-IDS=$(cat /sys/bus/virtio/devices/*/device | sort | tr '\\n' ' ')",
          "echo DISK-0=$(head -c 15 /dev/vda)",
          "echo DISK-100=$(dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -c 17)",
          "echo DISK-SECTORS=$(cat /sys/block/vda/size)",
          "echo DISK-SERIAL=$(cat /sys/block/vda/serial)",
          "echo RNG-CURRENT=$(cat /sys/class/misc/hw_random/rng_current)",
          "echo RNG-BYTES=$(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \\n')",
          "echo ARMBOX-WROTE-THIS | dd of=/dev/vda bs=512 seek=5 conv=sync 2>/dev/null",
          "sync",
          "echo DISK-WRITE=$?",
          // hvc0 is opened before the marker: a tty nobody has open drops what it receives.
          ...(hvc
            ? [
                "echo HVC-OUT=ok > /dev/hvc0",
                "exec 3< /dev/hvc0",
                "echo HVC-WAIT",
                "read -r l <&3",
                "echo HVC-IN=$l",
              ]
            : []),
          // (The kernel's echo of this command line would match the pattern itself.)
          "echo VIRTIO-DMESG-BAD=$(dmesg | grep -v 'command line' | grep -ciE 'virtio.*(error|fail|bad|invalid)')",
        ].join("; ");
        const args =
          engine === "armbox"
            ? [
                "--drive",
                `file=${img},serial=armbox-vda`,
                "--device",
                "virtio-rng-device",
                "--device",
                "virtio-serial-device",
                ...(accel ? ["--accel", accel] : []),
              ]
            : [
                ...["-drive", `file=${img},format=raw,if=none,id=vd0`],
                ...[
                  "-device",
                  "virtio-blk-device,drive=vd0,serial=armbox-vda",
                  "-device",
                  "virtio-rng-device",
                ],
              ];
        const r = await boot(
          {
            smp: 1,
            append: `console=ttyAMA0 panic=-1 armbox.cmd="${cmd}"`,
            args,
            name: `${engine}-virtio${accel ? `-${accel}` : ""}`,
          },
          async (b) => {
            if (hvc) {
              // At the start of a line: the kernel's echo of the command line holds the word too.
              const w = await b.waitFor(/^HVC-WAIT\r?\n/m);
              b.send("typed-on-hvc0\n");
              await b.waitFor("HVC-IN=", w.index);
            }
            return undefined;
          },
        );
        const m = markers(r.transcript);
        const tail = `\n--- console (last 3000 chars)\n${r.transcript.slice(-3000)}`;
        assert.doesNotMatch(r.transcript, /^INSMOD-FAIL.*$/m, tail);
        assert.equal(m.get("VIRTIO-IDS"), hvc ? "0x0002 0x0003 0x0004" : "0x0002 0x0004", tail);
        assert.equal(m.get("DISK-0"), "ARMBOX-SECTOR-0", tail);
        assert.equal(m.get("DISK-100"), "ARMBOX-SECTOR-100", tail);
        assert.equal(m.get("DISK-SECTORS"), "2048", tail);
        assert.equal(m.get("DISK-SERIAL"), "armbox-vda", tail);
        assert.equal(m.get("RNG-CURRENT"), "virtio_rng.0", tail);
        assert.match(m.get("RNG-BYTES") ?? "", /^[0-9a-f]{32}$/, tail);
        assert.notEqual(m.get("RNG-BYTES"), "0".repeat(32), tail);
        assert.equal(m.get("DISK-WRITE"), "0", tail);
        if (hvc) {
          assert.equal(m.get("HVC-OUT"), "ok", tail);
          assert.equal(m.get("HVC-IN"), "typed-on-hvc0", tail);
        }
        assert.equal(m.get("VIRTIO-DMESG-BAD"), "0", tail);
        assert.equal(m.get("ARMBOX-EXIT"), "0", tail);
        assert.deepEqual(r.exit, { code: 0, signal: null }, `${tail}\n--- stderr\n${r.stderr.slice(-2000)}`);
        const after = readFileSync(img);
        assert.equal(after.subarray(5 * 512, 5 * 512 + 17).toString("latin1"), "ARMBOX-WROTE-THIS");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
