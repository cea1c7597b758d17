// An undefined instruction with no SIGILL handler: the process dies with signal 4.
.text
.global _start
_start:
  mov x0, #1
  adr x1, msg
  mov x2, #7
  mov x8, #64
  svc #0
  .inst 0x00000000              // UDF #0
msg: .ascii "before\n"
