/*
 * Reference side of the armbox difftest: runs batches of random A64 instruction
 * sequences under qemu-aarch64 (or on real arm64 hardware).
 *
 * stdin:  u32 magic "ADT1", u32 count, then per case:
 *           u32 nwords, u32 words[MAX_WORDS], u8 state[SB_SIZE], u8 window[WINDOW_SIZE]
 * stdout: per case:
 *           u32 outcome (0 ok, 1 SIGILL, 2 SIGSEGV, 3 SIGBUS, 4 other), u32 pc index,
 *           u32 signal, u32 si_code, u8 state[SB_SIZE], u8 window[WINDOW_SIZE]
 *
 * The code page holds [entry stub | test words | exit stub] with the first test word at
 * CODE; the stubs load and save the whole state through SP (see stubs.S). A signal in
 * the test code is caught on an alternate stack: its ucontext is the state at the
 * faulting instruction, which is what we record before siglongjmp back.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include "layout.h"

extern char entry_start[], entry_end[], exit_start[], exit_end[];
extern void run_case(void *block, void *entry);
extern void fp_reset(void);

static unsigned char block[SB_ALLOC] __attribute__((aligned(16)));
static sigjmp_buf jb;
static volatile uint32_t cur_nwords;
static volatile uint32_t res_pc, res_sig, res_code;

/* Linux's struct fpsimd_context (arch/arm64/include/uapi/asm/sigcontext.h). */
struct ctx_head { uint32_t magic, size; };
struct fpsimd_ctx { struct ctx_head head; uint32_t fpsr, fpcr; __uint128_t vregs[32]; };
#define FPSIMD_MAGIC 0x46508001

static void on_signal(int sig, siginfo_t *si, void *uc_) {
  ucontext_t *uc = uc_;
  mcontext_t *mc = &uc->uc_mcontext;
  uint64_t pc = mc->pc;
  /* Outside the test code (a wild branch, or a broken harness): outcome "other". */
  int outside = pc < CODE || pc >= CODE + 4 * (uint64_t)cur_nwords;
  memcpy(block + SB_X, mc->regs, 31 * 8);
  uint64_t nzcv = mc->pstate & 0xf0000000u;
  memcpy(block + SB_NZCV, &nzcv, 8);
  unsigned char *p = (unsigned char *)mc->__reserved;
  for (;;) {
    struct ctx_head *h = (struct ctx_head *)p;
    if (h->magic == 0 || h->size == 0) break;
    if (h->magic == FPSIMD_MAGIC) {
      struct fpsimd_ctx *f = (struct fpsimd_ctx *)p;
      memcpy(block + SB_V, f->vregs, 512);
      memcpy(block + SB_FPSR, &f->fpsr, 4);
      memcpy(block + SB_FPCR, &f->fpcr, 4);
      break;
    }
    p += h->size;
  }
  res_pc = outside ? 0xffffffffu : (uint32_t)((pc - CODE) / 4);
  res_sig = outside ? 0x100 | sig : sig;
  res_code = si->si_code;
  siglongjmp(jb, 1);
}

static void read_all(void *dst, size_t n) {
  unsigned char *d = dst;
  while (n > 0) {
    ssize_t k = read(0, d, n);
    if (k <= 0) { fprintf(stderr, "difftest harness: short input\n"); exit(2); }
    d += k; n -= (size_t)k;
  }
}
static void write_all(const void *src, size_t n) {
  const unsigned char *s = src;
  while (n > 0) {
    ssize_t k = write(1, s, n);
    if (k <= 0) exit(2);
    s += k; n -= (size_t)k;
  }
}

int main(void) {
  unsigned char *code = mmap((void *)CODE_PAGE, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  unsigned char *win = mmap((void *)WINDOW, WINDOW_SIZE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (code != (void *)CODE_PAGE || win != (void *)WINDOW) { perror("mmap"); return 2; }

  static unsigned char altstack[1 << 16] __attribute__((aligned(16)));
  stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
  if (sigaltstack(&ss, NULL) != 0) { perror("sigaltstack"); return 2; }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  int sigs[] = { SIGILL, SIGSEGV, SIGBUS, SIGTRAP, SIGFPE, SIGSYS };
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);

  size_t elen = (size_t)(entry_end - entry_start), xlen = (size_t)(exit_end - exit_start);
  unsigned char *entry = (unsigned char *)CODE - elen;
  memcpy(entry, entry_start, elen);

  uint32_t hdr[2];
  read_all(hdr, sizeof hdr);
  if (hdr[0] != 0x31544441) { fprintf(stderr, "difftest harness: bad magic\n"); return 2; }
  static unsigned char out[16 + SB_SIZE + WINDOW_SIZE];
  for (uint32_t k = 0; k < hdr[1]; k++) {
    uint32_t nwords, words[MAX_WORDS];
    read_all(&nwords, 4);
    read_all(words, sizeof words);
    if (nwords > MAX_WORDS) { fprintf(stderr, "difftest harness: too many words\n"); return 2; }
    memset(block, 0, sizeof block);
    read_all(block, SB_SIZE);
    read_all(win, WINDOW_SIZE);
    memcpy((void *)CODE, words, 4 * nwords);
    memcpy((unsigned char *)CODE + 4 * nwords, exit_start, xlen);
    __builtin___clear_cache((char *)CODE_PAGE, (char *)CODE_PAGE + 0x1000);
    cur_nwords = nwords;
    uint32_t outcome;
    if (sigsetjmp(jb, 1) == 0) {
      run_case(block, entry);
      outcome = 0;
      res_pc = nwords;
      res_sig = 0;
      res_code = 0;
    } else {
      fp_reset();
      outcome = res_sig == SIGILL ? 1 : res_sig == SIGSEGV ? 2 : res_sig == SIGBUS ? 3 : 4; /* 4: see res_sig */
    }
    uint32_t h[4] = { outcome, res_pc, res_sig, res_code };
    memcpy(out, h, 16);
    memcpy(out + 16, block, SB_SIZE);
    memcpy(out + 16 + SB_SIZE, win, WINDOW_SIZE);
    write_all(out, sizeof out);
  }
  return 0;
}
