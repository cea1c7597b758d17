/* suspend: sleep states that must be woken by an interrupt (DEN 0022 5.1.2 CPU_SUSPEND,
 * 5.1.19 SYSTEM_SUSPEND). SYSTEM_SUSPEND is used when PSCI_FEATURES says it exists (QEMU
 * 7.2 says NOT_SUPPORTED); CPU_SUSPEND standby is always tried, woken by the virtual
 * timer; CPU_SUSPEND powerdown (may return like standby, or resume at the entry point);
 * and on 2+ CPUs a secondary in CPU_SUSPEND is woken by an SGI from the boot CPU.
 * A wake-up may be spurious, so each sleep repeats until the wake-up source is pending. */
#include "rt.h"

#define SGI_WAKE 7
#define PS_STANDBY 0x00000u
#define PS_POWERDOWN 0x10000u /* original power_state format: StateType bit 16 */

static volatile u32 timer_irqs, sgi_irqs[MAXCPU];
static volatile u64 deadline;
static volatile u32 resumed_at_entry;

static void on_irq(u32 intid) {
  if (intid == TIMER_VIRT_PPI) {
    timer_irqs++;
    write_sysreg(cntv_ctl_el0, 0);
    isb();
  } else if (intid == SGI_WAKE) {
    sgi_irqs[cpu_id()]++;
  }
}

static void arm_timer(u64 us) {
  deadline = cntvct() + cntfrq() / 1000000 * us;
  write_sysreg(cntv_cval_el0, deadline);
  write_sysreg(cntv_ctl_el0, 1);
  isb();
}

static int irq_pending(void) { return (read_sysreg(isr_el1) >> 7) & 1; }

/* Take whatever is pending, then mask again. */
static void take_irqs(void) {
  irq_enable();
  isb();
  udelay(50);
  irq_disable();
}

static void phases(u32 from) __attribute__((noreturn));

static void resume(u64 ctx) {
  /* Cold resume: fresh stack, MMU off, DAIF masked; the runtime re-initialised the GIC
   * CPU interface. Re-enable the timer PPI and carry on with the next phase. */
  resumed_at_entry = 1;
  if (ctx != 1 && ctx != 2) {
    fail("resume-context", "resumed with context ID %lx", ctx);
    halt();
  }
  gic_enable_ppi_sgi(TIMER_VIRT_PPI);
  gic_enable_ppi_sgi(SGI_WAKE);
  phases((u32)ctx);
}

static void sleeper(u64 ctx) {
  u32 me = cpu_id();
  gic_enable_ppi_sgi(SGI_WAKE);
  irq_disable();
  u32 calls = 0;
  s64 r = 0;
  atomic_store((volatile u32 *)ctx, 1); /* tell the boot CPU we are about to sleep */
  while (!irq_pending() && calls < 100000) {
    r = (s32)hvc_call(PSCI_CPU_SUSPEND, PS_STANDBY, 0, 0);
    calls++;
    if (r) break;
  }
  take_irqs();
  check(r == 0 && sgi_irqs[me] == 1, "cpu-suspend-sgi-wake", "cpu %u: result %ld, %u SGIs, %u calls",
        me, r, sgi_irqs[me], calls);
  printf("cpu %u: woken by SGI after %u CPU_SUSPEND call(s)\n", me, calls);
}

static void phases(u32 from) {
  s64 r;
  u32 calls;
  switch (from) {
    case 0: {
      /* SYSTEM_SUSPEND: only valid when every other CPU is off, as they are now. */
      r = (s32)hvc_call(PSCI_FEATURES, PSCI_SYSTEM_SUSPEND, 0, 0);
      printf("PSCI_FEATURES(SYSTEM_SUSPEND) = %ld\n", r);
      if (r < 0) {
        skip("system-suspend", "not supported; using CPU_SUSPEND");
      } else {
        timer_irqs = 0;
        arm_timer(2000);
        cpu_entry_fn[0] = resume;
        dsb();
        r = (s32)hvc_call(PSCI_SYSTEM_SUSPEND, (u64)&secondary_entry, 1, 0);
        /* Returning SUCCESS means it woke without powering down; an error means it refused. */
        check(r == 0, "system-suspend", "SYSTEM_SUSPEND = %ld", r);
        while (!irq_pending() && cntvct() < deadline + cntfrq()) cpu_relax();
      }
    }
    /* fallthrough */
    case 1:
      if (from == 1) {
        printf("resumed from SYSTEM_SUSPEND at the entry point\n");
        pass("system-suspend");
      }
      take_irqs();
      /* After a real power-down the timer's state is not guaranteed: only report it. */
      if (from == 1) printf("after resume: %u timer IRQs\n", timer_irqs);
      else if (timer_irqs) check(timer_irqs == 1, "system-suspend-timer", "%u timer IRQs", timer_irqs);

      /* CPU_SUSPEND standby, IRQs masked: wakes on the pending timer IRQ and returns. */
      r = (s32)hvc_call(PSCI_FEATURES, PSCI_CPU_SUSPEND, 0, 0);
      printf("PSCI_FEATURES(CPU_SUSPEND) = %ld (%s power_state format)\n", r,
             r >= 0 && (r & 2) ? "extended" : "original");
      timer_irqs = 0;
      arm_timer(2000);
      calls = 0;
      r = 0;
      while (!irq_pending() && calls < 100000) {
        r = (s32)hvc_call(PSCI_CPU_SUSPEND, PS_STANDBY, 0, 0);
        calls++;
        if (r) break;
      }
      u64 now = cntvct();
      check(r == 0 && now >= deadline, "cpu-suspend-standby", "result %ld, woke %ld counts early", r,
            (s64)(deadline - now));
      take_irqs();
      check(timer_irqs == 1, "cpu-suspend-timer-irq", "%u timer IRQs", timer_irqs);
      printf("standby: woken by the timer after %u CPU_SUSPEND call(s)\n", calls);

      /* CPU_SUSPEND powerdown with an entry point: either returns SUCCESS (the state was
       * not entered, or the implementation treats it as standby) or resumes at the entry
       * with the context ID. */
      timer_irqs = 0;
      arm_timer(2000);
      cpu_entry_fn[0] = resume;
      dsb();
      calls = 0;
      r = 0;
      while (!irq_pending() && calls < 100000) {
        r = (s32)hvc_call(PSCI_CPU_SUSPEND, PS_POWERDOWN, (u64)&secondary_entry, 2);
        calls++;
        if (r) break;
      }
      check(r == 0, "cpu-suspend-powerdown", "result %ld", r);
      printf("powerdown: returned after %u call(s)\n", calls);
    /* fallthrough */
    case 2:
      if (from == 2) {
        printf("powerdown: resumed at the entry point\n");
        pass("cpu-suspend-powerdown");
      }
      take_irqs();
      if (from == 2) printf("after resume: %u timer IRQs\n", timer_irqs);
      else check(timer_irqs == 1, "cpu-suspend-powerdown-timer", "%u timer IRQs", timer_irqs);
      write_sysreg(cntv_ctl_el0, 0);

      /* A secondary sleeping in CPU_SUSPEND is woken by an SGI. */
      if (ncpus < 2) {
        skip("cpu-suspend-sgi-wake", "1 CPU");
      } else {
        static volatile u32 sleeping;
        u32 t = ncpus - 1;
        r = cpu_on(t, sleeper, (u64)&sleeping);
        if (r) fail("cpu-on", "%ld", r);
        while (!atomic_load(&sleeping)) cpu_relax();
        udelay(1000);
        gic_send_sgi(t, SGI_WAKE);
        r = wait_affinity(t, AFF_OFF, 1000000);
        check(r == AFF_OFF, "sleeper-done", "AFFINITY_INFO %ld", r);
      }
      break;
  }
  halt();
}

int main(void) {
  irq_hook = on_irq;
  gic_enable_ppi_sgi(TIMER_VIRT_PPI);
  gic_enable_ppi_sgi(SGI_WAKE);
  irq_disable();
  phases(0);
}
