/* timer: every CPU runs its EL1 virtual timer (CNTV_*, PPI 27) as a periodic 1 ms tick
 * and sleeps in WFI; after N ticks the boot CPU checks each CPU's count, that no tick
 * came early (CNTVCT >= CVAL in the handler), that CNTVCT only went up, and that the
 * elapsed counter time roughly equals N x period. Arm ARM D11 (Generic Timer). */
#include "rt.h"

#define TICKS 20
#define CTL_ENABLE 1u
#define CTL_IMASK 2u
#define CTL_ISTATUS 4u

static u64 period;
static volatile u32 ticks[MAXCPU], early[MAXCPU], backwards[MAXCPU], no_istatus[MAXCPU], done[MAXCPU];
static volatile u64 cval[MAXCPU], last[MAXCPU], elapsed[MAXCPU];
static volatile u32 stray;

static void on_irq(u32 intid) {
  u32 cpu = cpu_id();
  if (intid != TIMER_VIRT_PPI) {
    stray++;
    return;
  }
  u64 now = cntvct();
  if (now < cval[cpu]) early[cpu]++;
  if (now <= last[cpu]) backwards[cpu]++;
  if (!(read_sysreg(cntv_ctl_el0) & CTL_ISTATUS)) no_istatus[cpu]++;
  last[cpu] = now;
  if (++ticks[cpu] >= TICKS) {
    write_sysreg(cntv_ctl_el0, 0); /* the level-sensitive output drops with ENABLE */
  } else {
    cval[cpu] += period; /* relative to the last deadline: no drift */
    write_sysreg(cntv_cval_el0, cval[cpu]);
  }
  isb();
}

static void run_ticks(u64 ctx) {
  u32 cpu = cpu_id();
  gic_enable_ppi_sgi(TIMER_VIRT_PPI);
  u64 start = cntvct();
  last[cpu] = start;
  cval[cpu] = start + period;
  write_sysreg(cntv_cval_el0, cval[cpu]);
  write_sysreg(cntv_ctl_el0, CTL_ENABLE);
  isb();
  WAIT_IRQ(ticks[cpu] >= TICKS);
  elapsed[cpu] = cntvct() - start;
  gic_disable_ppi_sgi(TIMER_VIRT_PPI);
  atomic_store(&done[cpu], 1);
}

int main(void) {
  u64 f = cntfrq();
  printf("CNTFRQ_EL0 = %lu Hz\n", f);
  check(f >= 1000000, "cntfrq", "%lu", f);
  period = f / 1000;
  irq_hook = on_irq;

  /* TVAL is CVAL - CNTVCT, as a signed 32-bit value. */
  write_sysreg(cntv_ctl_el0, 0);
  write_sysreg(cntv_tval_el0, period * 100);
  isb();
  u64 now = cntvct();
  u64 cv = read_sysreg(cntv_cval_el0);
  s64 tval = (s32)read_sysreg(cntv_tval_el0);
  check(cv > now && cv <= now + period * 100 && tval > 0 && tval <= (s64)(period * 100), "tval",
        "CVAL %lx CNTVCT %lx TVAL %ld", cv, now, tval);
  write_sysreg(cntv_cval_el0, now - 1);
  isb();
  tval = (s32)read_sysreg(cntv_tval_el0);
  check(tval < 0, "tval-negative", "TVAL %ld", tval);

  /* IMASK: the condition shows in ISTATUS but no interrupt is signalled. */
  gic_enable_ppi_sgi(TIMER_VIRT_PPI);
  ticks[0] = 0;
  write_sysreg(cntv_ctl_el0, CTL_ENABLE | CTL_IMASK);
  isb();
  irq_enable();
  udelay(1000);
  u64 ctl = read_sysreg(cntv_ctl_el0);
  check((ctl & CTL_ISTATUS) && ticks[0] == 0 && !gic_ppi_sgi_pending(TIMER_VIRT_PPI), "imask",
        "CTL %lx ticks %u", ctl, ticks[0]);
  irq_disable();
  write_sysreg(cntv_ctl_el0, 0);
  gic_disable_ppi_sgi(TIMER_VIRT_PPI);
  isb();
  ctl = read_sysreg(cntv_ctl_el0);
  check(!(ctl & CTL_ISTATUS), "disabled-no-istatus", "CTL %lx", ctl);
  ticks[0] = 0;
  last[0] = 0;

  for (u32 i = 1; i < ncpus; i++) {
    s64 r = cpu_on(i, run_ticks, 0);
    if (r) fail("cpu-on", "cpu %u: %ld", i, r);
  }
  run_ticks(0);
  for (u32 i = 1; i < ncpus; i++) {
    u32 spins = 0;
    while (!atomic_load(&done[i]) && ++spins < 200000000) cpu_relax();
  }
  u64 want = TICKS * period;
  u32 bad = 0;
  for (u32 i = 0; i < ncpus; i++) {
    printf("cpu %u: %u ticks in %lu counts (%lu%% of %u x 1 ms)\n", i, ticks[i], elapsed[i],
           elapsed[i] * 100 / want, TICKS);
    if (!done[i] || ticks[i] != TICKS) { fail("ticks", "cpu %u: %u ticks, done %u", i, ticks[i], done[i]); bad++; }
    if (early[i]) { fail("not-early", "cpu %u: %u ticks before CVAL", i, early[i]); bad++; }
    if (backwards[i]) { fail("monotonic", "cpu %u: CNTVCT went back %u times", i, backwards[i]); bad++; }
    if (no_istatus[i]) { fail("istatus", "cpu %u: ISTATUS clear in handler %u times", i, no_istatus[i]); bad++; }
    /* At least N periods must pass; allow generous slack above for a loaded host. */
    if (elapsed[i] < want || elapsed[i] > want * 10 + f / 2) {
      fail("elapsed", "cpu %u: %lu counts for %u ticks of %lu", i, elapsed[i], TICKS, period);
      bad++;
    }
  }
  check(stray == 0, "no-stray-irq", "%u", stray);
  if (!bad) pass("periodic-ticks");
  return 0;
}
