/* Migration test guest: the boot CPU prints "tick N" lines forever, N increasing by one,
 * so that a console captured on the source and then on the destination must read as one
 * gapless, repeat-free sequence. Built three ways (see the Makefile):
 *   idle.elf  - one tick per 10 ms of virtual time; between ticks every CPU sleeps in WFI
 *               on its virtual timer (an idle guest: almost nothing is dirtied);
 *   counter.elf - busy: a tick every TICK_SPIN loop iterations, little memory dirtied;
 *   dirty.elf - busy, and every CPU also writes one word in each page of a 32 MiB buffer
 *               (at RAM + 16 MiB) round and round: memory is dirtied continuously.
 * Each tick line also carries a checksum of a word the guest keeps rewriting, so the
 * destination's RAM being right shows up on the console too. Never powers off. */
#include "rt.h"

#ifndef MODE
#define MODE 0
#endif
#define MODE_BUSY 0
#define MODE_IDLE 1
#define MODE_DIRTY 2

#define TICK_SPIN 20000u
#define BUF ((volatile u64 *)0x41000000ul)
#define BUF_PAGES (32u * 256u)
#define CTL_ENABLE 1u

static volatile u64 sum;
static volatile u32 go;

static void on_irq(u32 intid) {
  if (intid == TIMER_VIRT_PPI) write_sysreg(cntv_ctl_el0, 0); /* tick handled in the loop */
}

static void dirty_some(u32 cpu, u64 *page, u32 n) {
  for (u32 i = 0; i < n; i++) {
    u32 p = (u32)(*page % BUF_PAGES);
    BUF[p * 512u + cpu] = *page;
    *page += 1;
  }
}

static void sleep_ticks(u64 period) {
  write_sysreg(cntv_cval_el0, cntvct() + period);
  write_sysreg(cntv_ctl_el0, CTL_ENABLE);
  isb();
  WAIT_IRQ(!(read_sysreg(cntv_ctl_el0) & CTL_ENABLE));
}

static void worker(u64 ctx) {
  u32 cpu = cpu_id();
  u64 page = cpu * 97u;
  irq_hook = on_irq;
  gic_enable_ppi_sgi(TIMER_VIRT_PPI);
  while (!atomic_load(&go)) cpu_relax();
  for (;;) {
    if (MODE == MODE_DIRTY) dirty_some(cpu, &page, 64);
    else if (MODE == MODE_IDLE) sleep_ticks(cntfrq() / 100);
    else cpu_relax();
  }
}

int main(void) {
  irq_hook = on_irq;
  gic_enable_ppi_sgi(TIMER_VIRT_PPI);
  printf("migration guest: mode %u, %u cpus\n", (u32)MODE, ncpus);
  for (u32 i = 1; i < ncpus; i++) cpu_on(i, worker, i);
  atomic_store(&go, 1);
  u64 page = 0;
  for (u64 n = 0;; n++) {
    sum = sum * 31u + n;
    printf("tick %lu %lx\n", n, (u64)sum);
    if (MODE == MODE_IDLE) {
      sleep_ticks(cntfrq() / 100);
    } else {
      for (volatile u32 k = 0; k < TICK_SPIN; k++) {
        if (MODE == MODE_DIRTY && (k & 255u) == 0) dirty_some(0, &page, 8);
      }
    }
  }
}
