/* wfe-wake: each WFE wake-up source on its own (Arm ARM D1.6.1, "The Event Register"),
 * with interrupts masked at the PE (PSTATE.I, as at every entry) and none enabled at the
 * GIC, so that only the source under test can end a WFE:
 *   sev             CPU 0's SEV wakes every secondary waiting in WFE on a flag;
 *   monitor         CPU 0's plain store to a word the secondaries hold with LDXR wakes them
 *                   (LDXR; compare; WFE, Linux's __cmpwait): the clearing of the global
 *                   monitor for a PE generates an event (B2.9);
 *   stream-cpu1     the event stream (CNTKCTL_EL1.EVNTEN) alone wakes CPU 1 in WFE while
 *                   CPU 0 sleeps in WFE without one, until CPU 1 is done and sends SEV;
 *   eret            an exception return sets the event register (AArch64.ExceptionReturn()
 *                   ends with SendEventLocal()), so a WFE right after an SVC completes;
 *   stream-*        the event stream alone wakes CPU 0 spinning in WFE with every other CPU
 *                   off, for a 0-to-1 and a 1-to-0 trigger (EVNTDIR) on two bits (EVNTI).
 * Every wait first clears the event register (SEVL; WFE). Without its source a CPU sleeps
 * for good: CPU 0 reports FAIL after a timeout (sev, monitor), or every CPU sleeps and the
 * VMM ends the run as hung (stream-*, eret). Spurious wake-ups are allowed, so every wait
 * re-checks its condition; QEMU TCG's WFE does not sleep, so there everything passes at
 * once. The stream lines print each wake-up's counter value modulo the period (armbox's
 * deterministic run is checked against them by test/wfe-wake.test.ts). */
#include "rt.h"

#define sevl() __asm__ volatile("sevl" ::: "memory")
#define sev() __asm__ volatile("sev" ::: "memory")
#define wfe() __asm__ volatile("wfe" ::: "memory")
#define clear_event() __asm__ volatile("sevl\n\twfe" ::: "memory")

#define CNTKCTL_EVNTEN (1u << 2)
#define CNTKCTL_EVNTDIR (1u << 3)
#define READY_US 5000000 /* secondaries reach their wait (a loaded host may be slow) */
#define WAKE_US 1000000  /* only a missing wake-up waits this long */
#define SETTLE_US 2000    /* time for the secondaries to fall asleep in WFE */
#define OLD_WORD 0x600df00dcafe5a5aul /* what the monitor waiters hold (not 0: a lost reservation shows) */

static volatile u32 ready[MAXCPU], woke[MAXCPU];
static volatile u32 go_sev;
/* The word the monitor test reserves, alone in its 2 KiB (the largest exclusives
 * reservation granule, CTR_EL0.ERG) so that no other store clears the monitors. */
static struct {
  volatile u64 word;
  u64 pad[255];
} granule __attribute__((aligned(2048)));

static void stream_on(u32 evnti, u32 dir) {
  write_sysreg(cntkctl_el1, CNTKCTL_EVNTEN | (dir ? CNTKCTL_EVNTDIR : 0) | (evnti << 4));
  isb();
}
static void stream_off(void) {
  write_sysreg(cntkctl_el1, 0);
  isb();
}

/* Until every secondary has set flags[i] (or `us` have passed): how many did. */
static u32 wait_all(volatile u32 *flags, u64 us) {
  u64 end = cntvct() + cntfrq() / 1000000 * us;
  u32 n = 0;
  for (;;) {
    n = 0;
    for (u32 i = 1; i < ncpus; i++) n += atomic_load(&flags[i]) != 0;
    if (n == ncpus - 1 || cntvct() > end) return n;
    cpu_relax();
  }
}

static void reset_flags(void) {
  for (u32 i = 0; i < MAXCPU; i++) ready[i] = woke[i] = 0;
  dsb();
}

/* LDXR; compare; WFE until *p != old: the wait of Linux's smp_cond_load (__cmpwait). */
static void cmpwait(volatile u64 *p, u64 old) {
  for (;;) {
    u64 v;
    __asm__ volatile("ldxr %0, [%1]" : "=&r"(v) : "r"(p) : "memory");
    if (v != old) break;
    wfe();
  }
  __asm__ volatile("clrex" ::: "memory");
}

/* Phases sev and monitor on a secondary. */
static void waiter(u64 ctx) {
  u32 cpu = cpu_id();
  stream_off();
  /* sev: sleep on a flag that only SEV announces. */
  clear_event();
  atomic_store(&ready[cpu], 1);
  while (!atomic_load(&go_sev)) wfe();
  atomic_store(&woke[cpu], 1);
  /* monitor: the flag's store itself is the event. */
  while (atomic_load(&ready[cpu])) cpu_relax(); /* CPU 0 resets the flags */
  clear_event();
  atomic_store(&ready[cpu], 1);
  cmpwait(&granule.word, OLD_WORD);
  atomic_store(&woke[cpu], 1);
}

static void phase_sev(void) {
  u32 n = wait_all(ready, READY_US);
  if (n != ncpus - 1) { fail("sev", "%u of %u secondaries ready", n, ncpus - 1); return; }
  udelay(SETTLE_US);
  atomic_store(&go_sev, 1);
  dsb();
  sev();
  n = wait_all(woke, WAKE_US);
  check(n == ncpus - 1, "sev", "SEV woke %u of %u CPUs waiting in WFE", n, ncpus - 1);
}

static void phase_monitor(void) {
  reset_flags();
  u32 n = wait_all(ready, READY_US);
  if (n != ncpus - 1) { fail("monitor", "%u of %u secondaries ready", n, ncpus - 1); return; }
  udelay(SETTLE_US);
  /* A plain store, no SEV: it clears the secondaries' monitors. */
  __asm__ volatile("str %0, [%1]" ::"r"(OLD_WORD + 1), "r"(&granule.word) : "memory");
  n = wait_all(woke, WAKE_US);
  check(n == ncpus - 1, "monitor", "a store to their LDXR's word woke %u of %u CPUs in WFE", n, ncpus - 1);
}

/* Waits in WFE (at least once) until `periods` stream periods have passed; returns the
 * wake-ups and records the first few (counter value when the WFE returned, modulo `period`). */
#define SHOWN 4
static u32 stream_wait(u64 periods, u64 period, u64 *first) {
  u32 n = 0;
  clear_event();
  u64 end = cntvct() + periods * period;
  do {
    wfe();
    u64 t = cntvct();
    if (n < SHOWN) first[n] = t & (period - 1);
    n++;
  } while (cntvct() < end);
  return n;
}

static volatile u32 cpu1_wakes, cpu1_done;
static u64 cpu1_first[SHOWN];

static void stream_cpu1(u64 ctx) {
  u32 evnti = (u32)ctx;
  u64 period = 2ul << evnti;
  stream_on(evnti, 0);
  cpu1_wakes = stream_wait(6, period, cpu1_first);
  stream_off();
  atomic_store(&cpu1_done, 1);
  dsb();
  sev();
}

static void phase_stream_cpu1(void) {
  const u32 evnti = 10;
  cpu1_done = 0;
  clear_event();
  s64 r = cpu_on(1, stream_cpu1, evnti);
  if (r != PSCI_SUCCESS) { fail("stream-cpu1", "CPU_ON: %ld", r); return; }
  /* CPU 0 has no event stream: only CPU 1's SEV ends this wait. */
  while (!atomic_load(&cpu1_done)) wfe();
  u64 period = 2ul << evnti;
  printf("stream-cpu1: EVNTI %u EVNTDIR 0: %u wake-ups in 6 periods of %lu, at", evnti, cpu1_wakes, period);
  for (u32 i = 0; i < SHOWN && i < cpu1_wakes; i++) printf(" %lu", cpu1_first[i]);
  printf(" (mod period)\n");
  if (wait_affinity(1, AFF_OFF, 100000) != AFF_OFF) fail("stream-cpu1", "CPU 1 did not power off");
  else pass("stream-cpu1");
}

static volatile u32 svcs;
static int on_svc(struct frame *f) {
  if (ESR_EC(f->esr) != 0x15) return 0;
  svcs++; /* ELR is past the SVC already */
  return 1;
}

static void phase_eret(void) {
  sync_hook = on_svc;
  svcs = 0;
  /* Event register clear; the SVC's ERET sets it; so this WFE does not sleep. */
  __asm__ volatile("sevl\n\twfe\n\tsvc #0\n\twfe" ::: "memory");
  check(svcs == 1, "eret", "%u SVCs taken", svcs);
  sync_hook = NULL;
}

static void phase_stream(const char *name, u32 evnti, u32 dir) {
  u64 period = 2ul << evnti;
  u64 first[SHOWN];
  stream_on(evnti, dir);
  u32 n = stream_wait(8, period, first);
  stream_off();
  printf("%s: EVNTI %u EVNTDIR %u: %u wake-ups in 8 periods of %lu, at", name, evnti, dir, n, period);
  for (u32 i = 0; i < SHOWN && i < n; i++) printf(" %lu", first[i]);
  printf(" (mod period)\n");
  pass(name); /* the wait ended: without the stream it would not */
}

int main(void) {
  stream_off();
  granule.word = OLD_WORD;
  dsb();
  if (ncpus < 2) {
    skip("sev", "1 CPU");
    skip("monitor", "1 CPU");
    skip("stream-cpu1", "1 CPU");
  } else {
    for (u32 i = 1; i < ncpus; i++) {
      s64 r = cpu_on(i, waiter, 0);
      if (r != PSCI_SUCCESS) fail("cpu-on", "cpu %u: %ld", i, r);
    }
    /* A CPU that a missing wake-up left asleep stays so: end at once (halt powers off). */
    phase_sev();
    if (atomic_load(&failures)) return 0;
    phase_monitor();
    if (atomic_load(&failures)) return 0;
    /* The waiters return and power off; the rest runs with no other CPU awake. */
    for (u32 i = 1; i < ncpus; i++) {
      s64 r = wait_affinity(i, AFF_OFF, 100000);
      if (r != AFF_OFF) fail("cpu-off", "cpu %u: %ld", i, r);
    }
    phase_stream_cpu1();
  }
  phase_eret();
  phase_stream("stream-rise", 9, 0);
  phase_stream("stream-fall", 12, 1);
  return 0;
}
