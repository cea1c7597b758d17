/* Arm semihosting from bare metal: SYS_WRITE0, SYS_WRITEC, then SYS_EXIT_EXTENDED with
 * ADP_Stopped_ApplicationExit and exit code 3. Run with QEMU's -semihosting or
 * armbox run --semihosting; both must print the text and exit with status 3. */
  .text
  .global _start
_start:
  mov x0, #0x04            // SYS_WRITE0
  adr x1, message
  hlt #0xf000
  mov x0, #0x03            // SYS_WRITEC
  adr x1, newline
  hlt #0xf000
  mov x0, #0x20            // SYS_EXIT_EXTENDED
  adr x1, exit_block
  hlt #0xf000
1: b 1b                    // not reached

  .align 3
exit_block:
  .quad 0x20026            // ADP_Stopped_ApplicationExit
  .quad 3                  // exit code
message:
  .asciz "hello from semihosting"
newline:
  .byte 10
