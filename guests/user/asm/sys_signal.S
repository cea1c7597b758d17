// A signal handler entered through rt_sigaction without SA_RESTORER (so the return goes
// through the runtime's sigreturn trampoline), registers preserved across it, then a
// fatal SIGSEGV from an access far outside memory.
#define SYS_write 64
#define SYS_exit 93
#define SYS_getpid 172
#define SYS_kill 129
#define SYS_rt_sigaction 134

.text
.global _start
_start:
  // struct sigaction { handler, flags, restorer, mask } (kernel layout)
  sub sp, sp, #32
  adr x0, handler
  str x0, [sp]
  mov x0, #4                    // SA_SIGINFO
  str x0, [sp, #8]
  str xzr, [sp, #16]
  str xzr, [sp, #24]
  mov x0, #10                   // SIGUSR1
  mov x1, sp
  mov x2, #0
  mov x3, #8
  mov x8, #SYS_rt_sigaction
  svc #0
  cbnz x0, bad
  mov x19, #0x1234
  mov x27, #0x777
  mov x8, #SYS_getpid
  svc #0
  mov x1, #10
  mov x8, #SYS_kill
  svc #0
  cbnz x0, bad
  adr x0, hits
  ldr x0, [x0]
  cmp x0, #1
  b.ne bad
  cmp x27, #0x777
  b.ne bad
  adr x1, ok
  mov x2, #(ok_end - ok)
  mov x0, #1
  mov x8, #SYS_write
  svc #0
  // Fatal: no SIGSEGV handler, so the process dies with signal 11.
  mov x0, #0x7fff0000
  lsl x0, x0, #16
  ldr x1, [x0]
  b bad

handler:
  cmp x0, #10
  b.ne bad
  ldr w3, [x1]                  // siginfo.si_signo
  cmp w3, #10
  b.ne bad
  mov x27, #0                   // clobbered: must come back restored
  adr x4, hits
  ldr x5, [x4]
  add x5, x5, #1
  str x5, [x4]
  adr x1, inh
  mov x2, #(inh_end - inh)
  mov x0, #1
  mov x8, #SYS_write
  svc #0
  ret

bad:
  adr x1, failed
  mov x2, #(failed_end - failed)
  mov x0, #1
  mov x8, #SYS_write
  svc #0
  mov x0, #1
  mov x8, #SYS_exit
  svc #0

inh: .ascii "in handler\n"
inh_end:
ok: .ascii "handler returned\n"
ok_end:
failed: .ascii "FAILED\n"
failed_end:
.data
.balign 8
hits: .quad 0
