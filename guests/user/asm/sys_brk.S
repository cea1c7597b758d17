// BRK #1 with no SIGTRAP handler: the process dies with signal 5.
.text
.global _start
_start:
  brk #1
