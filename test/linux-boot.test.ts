/**
 * Debian 12's arm64 cloud kernel with the armbox test initramfs (tools/linux/fetch-debian.sh,
 * tools/linux/make-initramfs.sh), booted under `armbox run`, or under qemu-system-aarch64
 * with ARMBOX_LINUX_REF=qemu: the same checks prove the harness and the initramfs right.
 * - armbox.test=smp at 1, 2, 4 and 8 vCPUs: every CPU comes up, a busy loop per CPU
 *   finishes, CPU 2 goes offline and back (PSCI CPU_OFF/CPU_ON) when there are 3 or more,
 *   the kernel log holds no warning, oops, RCU stall or soft lockup, and poweroff -f ends
 *   the emulator with status 0 (PSCI SYSTEM_OFF).
 * - armbox.test=reboot: a reset (PSCI SYSTEM_RESET) boots the kernel a second time.
 * - the interactive shell: what is typed on the console reaches it and its answer comes back.
 * Without the files the tests skip outside CI and fail in CI. Environment: see
 * test/support/linux.ts (ARMBOX_LINUX_KERNEL, ARMBOX_LINUX_INITRD, ARMBOX_LINUX_TIMEOUT, …).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  boot,
  cpuList,
  engine,
  markers,
  requireFiles,
  skipUnlessCi,
  testTimeoutMs,
} from "./support/linux.ts";

const skip = skipUnlessCi();
const opts = { skip, timeout: testTimeoutMs };
// earlycon: the console works from the first instructions (the DT's stdout-path), so a
// boot that goes wrong early still says how far it got.
const BASE = "console=ttyAMA0 earlycon panic=-1";
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

for (const smp of [1, 2, 4, 8]) {
  test(
    `${engine}: Linux boots at --smp ${smp}, all CPUs online, hotplug, clean dmesg, poweroff`,
    opts,
    async (t) => {
      requireFiles();
      const r = await boot(
        { smp, append: `${BASE} armbox.test=smp`, name: `${engine}-smp${smp}` },
        async (b) => {
          await b.waitFor("ARMBOX-INIT-READY");
          await b.waitFor("ARMBOX-TEST-DONE=smp");
          return undefined;
        },
      );
      const m = markers(r.transcript);
      const tail = `\n--- console (last 3000 chars)\n${r.transcript.slice(-3000)}`;
      assert.equal(m.get("NPROC"), String(smp), tail);
      assert.equal(m.get("CPU-ONLINE"), cpuList(range(smp)), tail);
      assert.equal(m.get("PARALLEL-OK"), String(smp), tail);
      if (smp >= 3) {
        assert.equal(m.get("HOTPLUG-OFF"), "ok", tail);
        assert.equal(m.get("CPU-ONLINE-AFTER-OFF"), cpuList(range(smp).filter((c) => c !== 2)), tail);
        assert.equal(m.get("HOTPLUG-ON"), "ok", tail);
        assert.equal(m.get("CPU-ONLINE-AFTER-ON"), cpuList(range(smp)), tail);
      } else {
        assert.equal(m.has("HOTPLUG-OFF"), false, tail);
      }
      assert.doesNotMatch(r.transcript, /^INSMOD-FAIL.*$/m, tail);
      assert.match(r.transcript, /^DMESG-CLEAN\r?$/m, tail);
      assert.doesNotMatch(r.transcript, /^DMESG-BAD:.*$/m, tail);
      assert.equal(m.get("ARMBOX-EXIT"), "0", tail);
      assert.deepEqual(r.exit, { code: 0, signal: null }, `${tail}\n--- stderr\n${r.stderr.slice(-2000)}`);
      t.diagnostic(
        `${engine} --smp ${smp}: ARMBOX-INIT-READY after ${((r.readyMs ?? 0) / 1000).toFixed(2)} s, ` +
          `poweroff after ${(r.totalMs / 1000).toFixed(2)} s`,
      );
    },
  );
}

test(`${engine}: a reset boots Linux again (armbox.test=reboot)`, opts, async () => {
  requireFiles();
  const r = await boot(
    { smp: 2, append: `${BASE} armbox.test=reboot`, name: `${engine}-reboot` },
    async (b) => {
      const first = await b.waitFor("ARMBOX-REBOOTING");
      // The second boot: the kernel's first line again, then init again.
      const from = first.index + first[0].length;
      const again = await b.waitFor("Booting Linux", from);
      await b.waitFor("ARMBOX-INIT-READY", from + again.index);
      return "stop";
    },
  );
  assert.ok(r.transcript.split("ARMBOX-INIT-READY").length - 1 >= 2, r.transcript.slice(-3000));
});

test(`${engine}: the console shell reads what is typed and answers`, opts, async () => {
  requireFiles();
  const r = await boot(
    { smp: 1, append: `${BASE} armbox.test=shell`, name: `${engine}-shell` },
    async (b) => {
      const prompt = await b.waitFor("armbox# ");
      b.send("echo ARMBOX-ANSWER=$((6 * 7)) $(cat /sys/devices/system/cpu/online)\n");
      await b.waitFor(/ARMBOX-ANSWER=42 0\r?\n/, prompt.index);
      b.send("poweroff -f\n");
      return undefined;
    },
  );
  assert.deepEqual(r.exit, { code: 0, signal: null }, r.transcript.slice(-3000));
});
