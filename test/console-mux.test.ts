/**
 * The console as QEMU's -nographic / -serial mon:stdio multiplexes it (issue 11): Ctrl-A c
 * switches between the guest's serial port and QEMU's human monitor, Ctrl-A x quits,
 * Ctrl-A Ctrl-A sends one Ctrl-A; in the monitor, lines are HMP commands.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ConsoleMux } from "../src/cli/console-mux.ts";
import { start } from "./support/children.ts";

const root = new URL("..", import.meta.url).pathname;

function mux(tty: boolean) {
  const guest: number[] = [];
  let printed = "";
  const commands: string[] = [];
  let quit = 0;
  const m = new ConsoleMux({
    toGuest: (b) => guest.push(...b),
    write: (t) => {
      printed += t;
    },
    monitor: async (line) => {
      commands.push(line);
      return `ran ${line}\n`;
    },
    quit: () => quit++,
    tty,
    banner: "BANNER",
  });
  return { m, guest, printed: () => printed, commands, quits: () => quit };
}

const bytes = (s: string) => new TextEncoder().encode(s);

test("bytes go to the guest but for the Ctrl-A escapes; the monitor runs lines", async () => {
  const x = mux(false);
  x.m.feed(bytes("ab\x01\x01c"));
  assert.deepEqual(x.guest, [0x61, 0x62, 1, 0x63]);
  // Switched to the monitor (even split across feeds): lines, CR LF as one end of line.
  x.m.feed(bytes("\x01"));
  x.m.feed(bytes("cinfo status\r\ninfo cpus\n\n"));
  await x.m.idle();
  assert.deepEqual(x.commands, ["info status", "info cpus"]);
  assert.match(x.printed(), /BANNER\n\(qemu\) ran info status\n\(qemu\) ran info cpus\n\(qemu\) /);
  assert.equal(x.guest.length, 4, "nothing typed in the monitor reaches the guest");
  // Back to the guest.
  x.m.feed(bytes("\x01cz"));
  assert.deepEqual(x.guest.slice(4), [0x7a]);
  x.m.feed(bytes("\x01x"));
  assert.equal(x.quits(), 1);
});

test("on a terminal the monitor echoes, edits with backspace and ends lines with CR LF", async () => {
  const x = mux(true);
  x.m.feed(bytes("\x01cinfo stx\x7fatus\r"));
  await x.m.idle();
  assert.deepEqual(x.commands, ["info status"]);
  assert.ok(
    x.printed().includes("info stx\b \batus\r\nran info status\r\n(qemu) "),
    JSON.stringify(x.printed()),
  );
  x.m.feed(bytes("\x01h"));
  assert.match(x.printed(), /C-a c {4}switch between console and monitor/);
});

test("armbox -nographic: Ctrl-A c, then HMP stop and info status, then quit", {
  timeout: 120_000,
}, async (t) => {
  const child = start(t, process.execPath, [
    join(root, "bin/armbox.js"),
    ...["-nographic", "-smp", "2", "-kernel", join(root, "guests/migration/bin/counter.elf")],
  ]);
  await child.waitFor(/tick 2\b/);
  child.send("\x01cinfo status\n");
  await child.waitFor(/VM status: running\n/);
  child.send("stop\ninfo status\n");
  await child.waitFor(/VM status: paused\n/);
  child.send("quit\n");
  assert.equal((await child.exited).code, 0, child.stderr);
});
