// Start-up state and basic system calls with integer instructions only: argv from the
// initial stack, auxv lookups, brk, anonymous mmap/munmap, uname, getcwd, exit status.
#define SYS_write 64
#define SYS_exit 93
#define SYS_brk 214
#define SYS_mmap 222
#define SYS_munmap 215
#define SYS_uname 160

.macro print label
  adr x1, \label
  mov x2, #(\label\()_end - \label)
  bl write1
.endm

.text
.global _start
_start:
  mov x19, sp
  and x0, x19, #15
  cbnz x0, bad                  // SP must be 16-byte aligned
  ldr x20, [x19]                // argc
  add x21, x19, #8              // argv
  mov x22, #0
1:cmp x22, x20
  b.ge 2f
  ldr x1, [x21, x22, lsl #3]
  cbz x22, 3f                   // skip argv[0] (path differs between runners)
  bl puts
3:add x22, x22, #1
  b 1b
2:ldr x0, [x21, x20, lsl #3]
  cbnz x0, bad                  // argv[argc] == NULL
  // envp follows; skip to auxv
  add x23, x21, x20, lsl #3
  add x23, x23, #8
4:ldr x0, [x23], #8
  cbnz x0, 4b
  // x23 = auxv: find AT_PAGESZ (6), AT_RANDOM (25), AT_PHENT (4)
  mov x24, #0
5:ldp x0, x1, [x23], #16
  cbz x0, 6f
  cmp x0, #6
  b.ne 7f
  cmp x1, #4096
  b.ne bad
  add x24, x24, #1
7:cmp x0, #4
  b.ne 8f
  cmp x1, #56
  b.ne bad
  add x24, x24, #1
8:cmp x0, #25
  b.ne 5b
  cbz x1, bad
  add x24, x24, #1
  b 5b
6:cmp x24, #3
  b.ne bad
  print auxok
  // brk: query, grow by 64 KiB, touch the last byte, shrink back
  mov x0, #0
  mov x8, #SYS_brk
  svc #0
  mov x25, x0
  add x0, x0, #0x10000
  mov x8, #SYS_brk
  svc #0
  sub x1, x0, x25
  cmp x1, #0x10000
  b.ne bad
  mov w2, #0x5a
  strb w2, [x0, #-1]
  ldrb w3, [x0, #-1]
  cmp w3, #0x5a
  b.ne bad
  print brkok
  // mmap 3 pages anonymous private, must read as zero, write, unmap
  mov x0, #0
  mov x1, #0x3000
  mov x2, #3
  mov x3, #0x22
  mov x4, #-1
  mov x5, #0
  mov x8, #SYS_mmap
  svc #0
  cmn x0, #4096
  b.hs bad
  mov x26, x0
  ldr x1, [x26, #0x2ff8]
  cbnz x1, bad
  str x26, [x26, #0x1000]
  mov x0, x26
  mov x1, #0x3000
  mov x8, #SYS_munmap
  svc #0
  cbnz x0, bad
  print mmapok
  // mmap with a length of 0 fails with EINVAL
  mov x0, #0
  mov x1, #0
  mov x2, #3
  mov x3, #0x22
  mov x4, #-1
  mov x5, #0
  mov x8, #SYS_mmap
  svc #0
  cmn x0, #22
  b.ne bad
  // uname: machine field (offset 4*65) is "aarch64"
  sub sp, sp, #400
  mov x0, sp
  mov x8, #SYS_uname
  svc #0
  cbnz x0, bad
  add x1, sp, #260
  bl puts
  add sp, sp, #400
  // write to a bad fd gives EBADF (-9)
  mov x0, #99
  adr x1, auxok
  mov x2, #1
  mov x8, #SYS_write
  svc #0
  cmn x0, #9
  b.ne bad
  // unknown syscall gives ENOSYS
  mov x8, #4000
  svc #0
  cmn x0, #38
  b.ne bad
  print done
  mov x0, #42
  mov x8, #SYS_exit
  svc #0

bad:
  print failed
  mov x0, #1
  mov x8, #SYS_exit
  svc #0

// write1(x1 = buf, x2 = len)
write1:
  mov x0, #1
  mov x8, #SYS_write
  svc #0
  ret
// puts(x1 = NUL-terminated string), appends a newline
puts:
  mov x2, #0
1:ldrb w3, [x1, x2]
  cbz w3, 2f
  add x2, x2, #1
  b 1b
2:mov x9, x30
  bl write1
  adr x1, nl
  mov x2, #1
  bl write1
  ret x9

auxok: .ascii "auxv ok\n"
auxok_end:
brkok: .ascii "brk ok\n"
brkok_end:
mmapok: .ascii "mmap ok\n"
mmapok_end:
done: .ascii "done\n"
done_end:
failed: .ascii "FAILED\n"
failed_end:
nl: .ascii "\n"
