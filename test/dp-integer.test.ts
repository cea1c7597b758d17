/**
 * Integer data processing against values recorded from qemu-aarch64 (the program is
 * test/fixtures/dp-integer.c's inline assembly; words assembled with GNU as).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runWords } from "./support/snippet.ts";

// movz/movk/add/subs/adds/lsl/asr/ubfx/sbfx/mul/umulh/sdiv/udiv/crc32x/rev/clz/cls/
// extr/csinc/ccmp/smaddl/bfi/eor (see the expected values for the order).
const WORDS = [
  0xd2a24680, 0xf29579a0, 0x91400401, 0xeb000022, 0x92800003, 0xb1000464, 0xd3585c05, 0x9343fca6, 0xd3484c07,
  0x93442c68, 0x9b007c09, 0x9bc37c6a, 0x9ac00c6b, 0x9ac0086c, 0x9ac14c0d, 0xdac00c0e, 0xdac0100f, 0x5ac01470,
  0x93c13011, 0x9a810412, 0xfa431805, 0xd2800013, 0x52b00014, 0x9b340295, 0xd2800016, 0xb3440c16, 0xd2089c17,
];
const EXPECTED =
  "x0=000000001234abcd x1=000000001234bbcd x2=0000000000001000 x3=ffffffffffffffff x4=0000000000000000 x5=34abcd0000000000 x6=069579a000000000 x7=00000000000004ab x8=ffffffffffffffff x9=014b72ff12938229 x10=fffffffffffffffe x11=0000000000000000 x12=0000000e0fbe16ee x13=0000000067de9cce x14=cdab341200000000 x15=0000000000000023 x16=000000000000001f x17=bcd000000001234b x18=000000001234abcd x19=0000000000000000 x20=0000000080000000 x21=400000001234abcd x22=d000000000000000 x23=ff00ff00ed3454cd nzcv=5";

test("integer data processing matches qemu-aarch64", () => {
  const { cpu, exit } = runWords(WORDS);
  assert.equal(exit.kind, "exception");
  const regs = Array.from({ length: 24 }, (_, i) => `x${i}=${cpu.getX(i).toString(16).padStart(16, "0")}`);
  assert.equal([...regs, `nzcv=${(cpu.pstate >>> 28).toString(16)}`].join(" "), EXPECTED);
});
