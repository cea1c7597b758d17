/* idle: an idle 4-vCPU guest for the snapshot benchmarks (bench/snapshot.ts). Every CPU
 * is started, enables its virtual timer PPI and sleeps in WFI, woken by a 10 ms tick, as
 * an idle kernel with a periodic tick does. It never ends by itself. */
#include "rt.h"

#define TICK_US 10000

static volatile u64 ticks[MAXCPU];

static void on_irq(u32 intid) {
  if (intid == TIMER_VIRT_PPI) {
    ticks[cpu_id()]++;
    write_sysreg(cntv_cval_el0, read_sysreg(cntv_cval_el0) + cntfrq() / 1000000 * TICK_US);
    isb();
  }
}

static void idle(u64 ctx) {
  gic_enable_ppi_sgi(TIMER_VIRT_PPI);
  write_sysreg(cntv_cval_el0, cntvct() + cntfrq() / 1000000 * TICK_US);
  write_sysreg(cntv_ctl_el0, 1);
  isb();
  irq_enable();
  for (;;) wfi();
}

int main(void) {
  irq_hook = on_irq;
  for (u32 i = 1; i < ncpus; i++) cpu_on(i, idle, i);
  printf("idle: %u CPUs, tick %u us\n", ncpus, TICK_US);
  idle(0);
  return 0;
}
