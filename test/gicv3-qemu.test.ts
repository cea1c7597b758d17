/**
 * The GICv3 against QEMU's (qemu-system-aarch64 -M virt,gic-version=3, TCG): one bare-metal
 * probe guest drives the CPU interface, redistributor and distributor and prints what it
 * reads on the PL011. Its output under QEMU is recorded here; armbox must print the same,
 * except where armbox deliberately follows KVM's vGICv3 instead (KVM_DIVERGENCES).
 * With aarch64-linux-gnu-gcc and qemu-system-aarch64 installed, the live test rebuilds the
 * guest from GUEST_SOURCE and re-records QEMU's output to prove the recording current.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Cpu, createVmMemory, RAM_OFFSET } from "../src/arch/arm64/index.ts";
import { GicV3 } from "../src/hv/gicv3/gicv3.ts";
import { SYNC_TIMEOUT_MS } from "./support/children.ts";

const GUEST_SOURCE = String.raw`// GICv3 behaviour probe: prints hex words on the PL011, then PSCI SYSTEM_OFF.
#define ICC_PMR     S3_0_C4_C6_0
#define ICC_IAR0    S3_0_C12_C8_0
#define ICC_EOIR0   S3_0_C12_C8_1
#define ICC_HPPIR0  S3_0_C12_C8_2
#define ICC_BPR0    S3_0_C12_C8_3
#define ICC_AP0R0   S3_0_C12_C8_4
#define ICC_AP1R0   S3_0_C12_C9_0
#define ICC_DIR     S3_0_C12_C11_1
#define ICC_RPR     S3_0_C12_C11_3
#define ICC_SGI1R   S3_0_C12_C11_5
#define ICC_ASGI1R  S3_0_C12_C11_6
#define ICC_SGI0R   S3_0_C12_C11_7
#define ICC_IAR1    S3_0_C12_C12_0
#define ICC_EOIR1   S3_0_C12_C12_1
#define ICC_HPPIR1  S3_0_C12_C12_2
#define ICC_BPR1    S3_0_C12_C12_3
#define ICC_CTLR    S3_0_C12_C12_4
#define ICC_SRE     S3_0_C12_C12_5
#define ICC_IGRPEN0 S3_0_C12_C12_6
#define ICC_IGRPEN1 S3_0_C12_C12_7

.macro P reg            // print a system register
  mrs x0, \reg
  bl hex
.endm
.macro PM off, base=x21 // print a 32-bit MMIO register
  ldr w0, [\base, #\off]
  bl hex
.endm
.macro W reg, val
  mov x0, #\val
  msr \reg, x0
  isb
.endm
.macro SGI1 n           // SGI n to self (Aff0 0) via ICC_SGI1R
  movz x0, #(\n << 8), lsl #16
  orr x0, x0, #1
  msr ICC_SGI1R, x0
  isb
.endm
.macro ACK reg          // x22 <- IAR, printed
  mrs x22, \reg
  mov x0, x22
  bl hex
.endm

.global _start
_start:
  ldr x0, =0x40100000
  mov sp, x0
  ldr x19, =0x08000000   // GICD
  ldr x20, =0x080a0000   // GICR RD_base (vCPU 0)
  ldr x21, =0x080b0000   // GICR SGI_base
  // 1: reset values and fixed fields
  P ICC_SRE
  PM 0x14, x20           // WAKER at reset
  str wzr, [x20, #0x14]
  PM 0x14, x20
  P ICC_BPR0
  P ICC_BPR1
  mrs x0, ICC_CTLR
  ubfx x0, x0, #8, #3    // PRIbits
  bl hex
  W ICC_PMR, 0xff
  P ICC_PMR
  W ICC_BPR0, 0
  P ICC_BPR0
  W ICC_BPR1, 0
  P ICC_BPR1
  P ICC_RPR
  bl nl
  // 2: bring-up; priority order between two SGIs
  mov w0, #0x12
  str w0, [x19]          // GICD_CTLR: ARE | EnableGrp1
  ldr w0, [x19]
  mov w1, #0x53
  and w0, w0, w1
  bl hex
  mov w0, #-1
  str w0, [x21, #0x80]   // GICR_IGROUPR0: all Group 1
  mov w0, #0x0e
  str w0, [x21, #0x100]  // enable SGI 1, 2, 3
  mov w0, #0x80
  strb w0, [x21, #0x401]
  mov w0, #0x40
  strb w0, [x21, #0x402]
  mov w0, #0x50
  strb w0, [x21, #0x403]
  W ICC_PMR, 0xf0
  W ICC_IGRPEN1, 1
  SGI1 1
  SGI1 2
  PM 0x200
  P ICC_HPPIR1
  ACK ICC_IAR1
  P ICC_RPR
  P ICC_AP1R0
  P ICC_HPPIR1
  P ICC_IAR1
  msr ICC_EOIR1, x22
  isb
  P ICC_RPR
  ACK ICC_IAR1
  msr ICC_EOIR1, x22
  isb
  P ICC_RPR
  P ICC_IAR1
  bl nl
  // 3: binary point and preemption
  W ICC_BPR1, 6
  P ICC_BPR1
  SGI1 3
  ACK ICC_IAR1           // 3 (0x50) -> running priority 0x40 with BPR1 = 6
  mov x23, x22
  P ICC_RPR
  SGI1 2                 // 0x40: same preemption group
  P ICC_IAR1
  P ICC_HPPIR1
  msr ICC_EOIR1, x23
  isb
  ACK ICC_IAR1           // 2
  msr ICC_EOIR1, x22
  isb
  W ICC_BPR1, 3
  SGI1 3
  ACK ICC_IAR1
  mov x23, x22
  P ICC_RPR
  SGI1 2
  ACK ICC_IAR1           // preempts now
  P ICC_RPR
  P ICC_AP1R0
  msr ICC_EOIR1, x22
  isb
  P ICC_RPR
  msr ICC_EOIR1, x23
  isb
  P ICC_RPR
  bl nl
  // 4: EOImode 1
  W ICC_CTLR, 2
  mrs x0, ICC_CTLR
  and x0, x0, #3
  bl hex
  SGI1 1
  ACK ICC_IAR1
  msr ICC_EOIR1, x22
  isb
  P ICC_RPR
  PM 0x300               // ISACTIVER0
  SGI1 1
  PM 0x200               // ISPENDR0
  P ICC_IAR1             // active and pending: 1023
  msr ICC_DIR, x22
  isb
  PM 0x300
  ACK ICC_IAR1
  msr ICC_DIR, x22       // DIR before EOIR: deactivates, priority still held
  isb
  PM 0x300
  P ICC_RPR
  msr ICC_EOIR1, x22
  isb
  P ICC_RPR
  W ICC_CTLR, 0
  bl nl
  // 5: SPI 40, level then edge, made pending through ISPENDR
  ldr w0, [x19, #0x84]
  orr w0, w0, #0x100
  str w0, [x19, #0x84]   // IGROUPR1: SPI 40 Group 1
  mov w0, #0x60
  strb w0, [x19, #0x428]
  str xzr, [x19, #0x6140] // IROUTER40 = Aff 0.0.0.0
  mov w0, #0x100
  str w0, [x19, #0x104]  // ISENABLER1
  str w0, [x19, #0x204]  // ISPENDR1
  PM 0x204, x19
  ACK ICC_IAR1
  PM 0x204, x19          // level: software pending cleared by the acknowledge
  PM 0x304, x19
  msr ICC_EOIR1, x22
  isb
  PM 0x304, x19
  mov w0, #0x20000
  str w0, [x19, #0xc08]  // ICFGR2: SPI 40 edge
  PM 0xc08, x19
  mov w0, #0x100
  str w0, [x19, #0x204]
  ACK ICC_IAR1
  mov w0, #0x100
  str w0, [x19, #0x204]  // pending again while active
  PM 0x204, x19
  PM 0x304, x19
  P ICC_IAR1
  msr ICC_EOIR1, x22
  isb
  ACK ICC_IAR1
  msr ICC_EOIR1, x22
  isb
  mov w0, #0x100
  str w0, [x19, #0x204]
  str w0, [x19, #0x284]  // ICPENDR1
  PM 0x204, x19
  bl nl
  // 6: priority mask and group enables
  mov w0, #0x100
  str w0, [x19, #0x204]
  W ICC_PMR, 0x60
  P ICC_IAR1
  P ICC_HPPIR1
  W ICC_PMR, 0x68
  W ICC_IGRPEN1, 0
  P ICC_IAR1
  P ICC_HPPIR1
  W ICC_IGRPEN1, 1
  mov w0, #0x10
  str w0, [x19]          // Group 1 off in the distributor
  P ICC_IAR1
  mov w0, #0x12
  str w0, [x19]
  ACK ICC_IAR1
  msr ICC_EOIR1, x22
  isb
  bl nl
  // 7: Group 0 (FIQ) with SGI0R / SGI1R
  mov w0, #-17
  str w0, [x21, #0x80]   // SGI 4 Group 0
  mov w0, #0x10
  str w0, [x21, #0x100]
  mov w0, #0x30
  strb w0, [x21, #0x404]
  mov w0, #0x13
  str w0, [x19]          // + EnableGrp0
  W ICC_IGRPEN0, 1
  movz x0, #(4 << 8), lsl #16
  orr x0, x0, #1
  msr ICC_SGI0R, x0
  isb
  PM 0x200
  P ICC_HPPIR1
  P ICC_HPPIR0
  P ICC_IAR1
  ACK ICC_IAR0
  P ICC_AP0R0
  P ICC_RPR
  msr ICC_EOIR0, x22
  isb
  P ICC_RPR
  movz x0, #(4 << 8), lsl #16
  orr x0, x0, #1
  msr ICC_SGI1R, x0      // Group 1 request for a Group 0 SGI
  isb
  PM 0x200
  mov w0, #0x10
  str w0, [x21, #0x280]
  movz x0, #(1 << 8), lsl #16
  orr x0, x0, #1
  msr ICC_SGI0R, x0      // Group 0 request for a Group 1 SGI
  isb
  PM 0x200
  bl nl
  // done: PSCI SYSTEM_OFF
  ldr x0, =0x84000008
  hvc #0
1: b 1b

hex:                     // prints w0 as 8 hex digits and a space
  ldr x9, =0x09000000
  mov x10, #28
2: lsr x11, x0, x10
  and x11, x11, #0xf
  cmp x11, #10
  add x12, x11, #'0'
  add x13, x11, #('a' - 10)
  csel x11, x12, x13, lo
  strb w11, [x9]
  subs x10, x10, #4
  b.ge 2b
  mov w11, #' '
  strb w11, [x9]
  ret
nl:
  ldr x9, =0x09000000
  mov w11, #'\n'
  strb w11, [x9]
  ret
`;

/** GUEST_SOURCE built with: gcc -nostdlib -static -Wl,-Ttext=0x40080000 -Wl,--build-id=none; objcopy -O binary. */
const GUEST_BIN = [
  "gC0AWB8AAJGTLQBYtC0AWNUtAFigzDjVUwEAlIAWQLlRAQCUnxYAuYAWQLlOAQCUYMg41UwBAJRgzDjVSgEAlIDMONUAKEjTRwEA",
  "lOAfgNIARhjV3z8D1QBGONVCAQCUAACA0mDIGNXfPwPVYMg41T0BAJQAAIDSYMwY1d8/A9VgzDjVOAEAlGDLONU2AQCUQwEAlEAC",
  "gFJgAgC5YAJAuWEKgFIAAAEKLwEAlAAAgBKgggC5wAGAUqACAbkAEIBSoAYQOQAIgFKgChA5AAqAUqAOEDkAHoDSAEYY1d8/A9Ug",
  "AIDS4MwY1d8/A9UAIKDSAABAsqDLGNXfPwPVAECg0gAAQLKgyxjV3z8D1aACQrkVAQCUQMw41RMBAJQWzDjV4AMWqhABAJRgyzjV",
  "DgEAlADJONUMAQCUQMw41QoBAJQAzDjVCAEAlDbMGNXfPwPVYMs41QQBAJQWzDjV4AMWqgEBAJQ2zBjV3z8D1WDLONX9AACUAMw4",
  "1fsAAJQIAQCUwACA0mDMGNXfPwPVYMw41fUAAJQAYKDSAABAsqDLGNXfPwPVFsw41eADFqruAACU9wMWqmDLONXrAACUAECg0gAA",
  "QLKgyxjV3z8D1QDMONXlAACUQMw41eMAAJQ3zBjV3z8D1RbMONXgAxaq3gAAlDbMGNXfPwPVYACA0mDMGNXfPwPVAGCg0gAAQLKg",
  "yxjV3z8D1RbMONXgAxaq0gAAlPcDFqpgyzjVzwAAlABAoNIAAECyoMsY1d8/A9UWzDjV4AMWqsgAAJRgyzjVxgAAlADJONXEAACU",
  "NswY1d8/A9VgyzjVwAAAlDfMGNXfPwPVYMs41bwAAJTJAACUQACA0oDMGNXfPwPVgMw41QAEQJK1AACUACCg0gAAQLKgyxjV3z8D",
  "1RbMONXgAxaqrgAAlDbMGNXfPwPVYMs41aoAAJSgAkO5qAAAlAAgoNIAAECyoMsY1d8/A9WgAkK5ogAAlADMONWgAACUNssY1d8/",
  "A9WgAkO5nAAAlBbMONXgAxaqmQAAlDbLGNXfPwPVoAJDuZUAAJRgyzjVkwAAlDbMGNXfPwPVYMs41Y8AAJQAAIDSgMwY1d8/A9WZ",
  "AACUYIZAuQAAGDJghgC5AAyAUmCiEDl/ojD5ACCAUmAGAblgBgK5YAZCuYAAAJQWzDjV4AMWqn0AAJRgBkK5ewAAlGAGQ7l5AACU",
  "NswY1d8/A9VgBkO5dQAAlEAAoFJgCgy5YApMuXEAAJQAIIBSYAYCuRbMONXgAxaqbAAAlAAggFJgBgK5YAZCuWgAAJRgBkO5ZgAA",
  "lADMONVkAACUNswY1d8/A9UWzDjV4AMWql8AAJQ2zBjV3z8D1QAggFJgBgK5YIYCuWAGQrlYAACUZQAAlAAggFJgBgK5AAyA0gBG",
  "GNXfPwPVAMw41VAAAJRAzDjVTgAAlAANgNIARhjV3z8D1QAAgNLgzBjV3z8D1QDMONVGAACUQMw41UQAAJQgAIDS4MwY1d8/A9UA",
  "AoBSYAIAuQDMONU9AACUQAKAUmACALkWzDjV4AMWqjgAAJQ2zBjV3z8D1UMAAJQAAoASoIIAuQACgFKgAgG5AAaAUqASEDlgAoBS",
  "YAIAuSAAgNLAzBjV3z8D1QCAoNIAAECy4MsY1d8/A9WgAkK5JAAAlEDMONUiAACUQMg41SAAAJQAzDjVHgAAlBbIONXgAxaqGwAA",
  "lIDIONUZAACUYMs41RcAAJQ2yBjV3z8D1WDLONUTAACUAICg0gAAQLKgyxjV3z8D1aACQrkNAACUAAKAUqCCArkAIKDSAABAsuDL",
  "GNXfPwPVoAJCuQUAAJQSAACUwAMAWAIAANQAAAAUqQMAWIoDgNILJMqaaw1Akn8pAPFswQCRbV0BkYsxjZorAQA5ShEA8Qr//1QL",
  "BIBSKwEAOcADX9bpAQBYSwGAUisBADnAA1/WAAAAAAAAEEAAAAAAAAAACAAAAAAAAAoIAAAAAAAACwgAAAAACAAAhAAAAAAAAAAJ",
  "AAAAAA==",
].join("");

/** What the guest prints under QEMU 7.2 (-cpu cortex-a57), one line per probe section. */
const QEMU_OUTPUT = `00000007 00000006 00000000 00000002 00000003 00000004 000000f8 00000002 00000003 000000ff
00000052 00000006 00000002 00000002 00000040 00000100 00000001 000003ff 000000ff 00000001 000000ff 000003ff
00000006 00000003 00000040 000003ff 00000002 00000002 00000003 00000050 00000002 00000040 00000500 00000050 000000ff
00000002 00000001 000000ff 00000002 00000002 000003ff 00000000 00000001 00000000 00000080 000000ff
00000100 00000028 00000000 00000100 00000000 00020000 00000028 00000100 00000100 000003ff 00000028 00000000
000003ff 00000028 000003ff 000003ff 000003ff 00000028
00000010 000003ff 00000004 000003ff 00000004 00000040 00000030 000000ff 00000000 00000000`;

/**
 * Where armbox answers differently from QEMU's TCG GIC on purpose, as [line, word, value]:
 * with GICD_CTLR.DS == 1, KVM lets ICC_SGI1R_EL1 make a Group 0 SGI pending ("under certain
 * conditions a write to ICC_SGI1R can generate Group 0 interrupts", IHI 0069 'Forwarding an
 * SGI to a target PE'); QEMU drops it. Section 7 reads GICR_ISPENDR0 after such a write.
 */
const KVM_DIVERGENCES: [number, number, string][] = [[6, 8, "00000010"]];

const LOAD = 0x4008_0000;
const RAM_BASE = 0x4000_0000;
const RAM = 2 << 20;
const UART = 0x0900_0000;
const GICD_BASE = 0x0800_0000;
const GICR_BASE = 0x080a_0000;

function words(text: string): string[][] {
  return text
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/));
}

/** Runs the guest on one armbox vCPU wired to the GIC and a write-only UART; returns its output. */
function runOnArmbox(bin: Uint8Array): string {
  const memory = createVmMemory(RAM);
  let out = "";
  let cpu: Cpu | null = null;
  const gic = new GicV3({
    vcpus: 1,
    mpidrs: [0x8000_0000],
    spis: 224,
    onLineChange: (_c, irq, fiq) => cpu?.setIrqLine(irq, fiq),
  });
  cpu = new Cpu({
    memory,
    index: 0,
    bus: {
      ramBase: RAM_BASE,
      ramSize: RAM,
      mmioRead(pa, size) {
        if (pa >= GICD_BASE && pa < GICD_BASE + 0x1_0000) return gic.distRead(pa - GICD_BASE, size);
        if (pa >= GICR_BASE && pa < GICR_BASE + 0x2_0000) return gic.redistRead(0, pa - GICR_BASE, size);
        if (pa >= UART && pa < UART + 0x1000) return 0;
        return null;
      },
      mmioWrite(pa, size, value) {
        if (pa >= GICD_BASE && pa < GICD_BASE + 0x1_0000) gic.distWrite(pa - GICD_BASE, size, value);
        else if (pa >= GICR_BASE && pa < GICR_BASE + 0x2_0000)
          gic.redistWrite(0, pa - GICR_BASE, size, value);
        else if (pa === UART) out += String.fromCharCode(value & 0xff);
        else return false;
        return true;
      },
    },
  });
  cpu.extraSysregs = gic.cpuInterface(0);
  new Uint8Array(memory.buffer, RAM_OFFSET + LOAD - RAM_BASE, bin.length).set(bin);
  cpu.pc = BigInt(LOAD);
  const exit = cpu.run(1_000_000);
  assert.deepEqual(exit, { kind: "hvc", imm: 0 }, "the guest ends with PSCI SYSTEM_OFF");
  assert.equal(cpu.getX(0), 0x8400_0008n);
  return out;
}

test("the GIC probe guest reads the same values on armbox as on QEMU (less KVM's choices)", () => {
  const got = words(runOnArmbox(Buffer.from(GUEST_BIN, "base64")));
  const expected = words(QEMU_OUTPUT);
  for (const [line, word, value] of KVM_DIVERGENCES) expected[line]![word] = value;
  assert.equal(got.length, expected.length, "section count");
  for (let i = 0; i < expected.length; i++) assert.deepEqual(got[i], expected[i], `section ${i + 1}`);
});

function have(cmd: string): boolean {
  try {
    execFileSync(cmd, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const live = have("aarch64-linux-gnu-gcc") && have("qemu-system-aarch64");

test("live: the recorded guest and QEMU output are current", {
  skip: !live && "needs aarch64-linux-gnu-gcc and qemu-system-aarch64",
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "gicv3-probe-"));
  try {
    writeFileSync(join(dir, "guest.S"), GUEST_SOURCE);
    const elf = join(dir, "guest.elf");
    execFileSync("aarch64-linux-gnu-gcc", [
      "-nostdlib",
      "-static",
      "-Wl,-Ttext=0x40080000",
      "-Wl,--build-id=none",
      "-o",
      elf,
      join(dir, "guest.S"),
    ]);
    execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", elf, join(dir, "guest.bin")]);
    assert.equal(
      readFileSync(join(dir, "guest.bin")).toString("base64"),
      GUEST_BIN,
      "GUEST_BIN is GUEST_SOURCE built",
    );
    const out = execFileSync(
      "qemu-system-aarch64",
      [
        "-M",
        "virt,gic-version=3",
        "-cpu",
        "cortex-a57",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-kernel",
        elf,
      ],
      { timeout: SYNC_TIMEOUT_MS, killSignal: "SIGKILL", encoding: "utf8" },
    );
    assert.deepEqual(words(out), words(QEMU_OUTPUT));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
