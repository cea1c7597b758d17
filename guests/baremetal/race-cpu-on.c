/* race-cpu-on: all online CPUs but one CPU_ON the same stopped target at the same moment.
 * CPU_ON must be atomic (DEN 0022 5.1.4, 6.5): exactly one caller gets SUCCESS, every
 * other one ALREADY_ON (-4) or ON_PENDING (-5), and the target starts exactly once. */
#include "rt.h"

#define ROUNDS 12

static u32 target, ncallers;
#define SGI_KICK 1

static volatile u32 armed;                 /* round number + 1: callers leave WFI */
static volatile u32 spinning;              /* callers spinning on `go` */
static volatile u32 go;                    /* round number + 1, released by the boot CPU */
static volatile u32 answered;              /* callers done with this round's CPU_ON */
static volatile s32 result[ROUNDS][MAXCPU];
static volatile u32 entries;
static volatile u64 entry_ctx[ROUNDS + 1];
static volatile u32 quit;

static void on_target(u64 ctx) {
  /* Record the context ID before publishing the entry: the boot CPU reads it after. */
  u32 n = atomic_load(&entries);
  if (n <= ROUNDS) entry_ctx[n] = ctx;
  atomic_add(&entries, 1);
  /* Stay on until every caller has its answer, so a late CPU_ON cannot see it off again. */
  while (atomic_load(&answered) < ncallers) cpu_relax();
}

static void race(u32 round) {
  u32 me = cpu_id();
  if (me != 0) {
    /* Sleep until the boot CPU arms the round, then spin only for the short start. */
    WAIT_IRQ(atomic_load(&armed) == round + 1);
    atomic_add(&spinning, 1);
  }
  while (atomic_load(&go) != round + 1) cpu_relax();
  s64 r = (s32)hvc_call(PSCI_CPU_ON, cpu_mpidr(target), (u64)&secondary_entry, 0x5000 + round);
  result[round][me] = (s32)r;
  atomic_add(&answered, 1);
}

static void on_irq(u32 intid) {}

static void caller(u64 ctx) {
  gic_enable_ppi_sgi(SGI_KICK);
  for (u32 round = 0; round < ROUNDS && !atomic_load(&quit); round++) race(round);
}

int main(void) {
  if (ncpus < 2) {
    skip("race-cpu-on", "1 CPU");
    return 0;
  }
  irq_hook = on_irq;
  target = ncpus - 1;
  ncallers = ncpus - 1;
  cpu_entry_fn[target] = on_target;
  dsb();
  for (u32 i = 1; i < target; i++) {
    s64 r = cpu_on(i, caller, 0);
    if (r) { fail("cpu-on", "caller cpu %u: %ld", i, r); atomic_store(&quit, 1); return 0; }
  }
  u32 bad = 0, already = 0, pending = 0;
  for (u32 round = 0; round < ROUNDS; round++) {
    s64 st = wait_affinity(target, AFF_OFF, 1000000);
    if (st != AFF_OFF) { fail("target-off", "round %u: AFFINITY_INFO %ld", round, st); bad++; break; }
    atomic_store(&answered, 0);
    atomic_store(&spinning, 0);
    atomic_store(&armed, round + 1);
    for (u32 i = 1; i < target; i++) gic_send_sgi(i, SGI_KICK);
    while (atomic_load(&spinning) < ncallers - 1) cpu_relax();
    atomic_store(&go, round + 1);
    race(round);
    u32 loops = 0;
    while ((atomic_load(&answered) < ncallers || atomic_load(&entries) < round + 1) && ++loops < 200000000)
      cpu_relax();
    u32 ok = 0, other = 0;
    for (u32 c = 0; c < ncallers; c++) {
      s32 r = result[round][c];
      if (r == PSCI_SUCCESS) ok++;
      else if (r == PSCI_ALREADY_ON) already++;
      else if (r == PSCI_ON_PENDING) pending++;
      else other++;
    }
    if (ok != 1 || other || entries != round + 1 || entry_ctx[round] != 0x5000 + round) {
      fail("round", "round %u: %u SUCCESS, %u other errors, target entered %u times (ctx %lx)", round, ok,
           other, entries, entry_ctx[round]);
      for (u32 c = 0; c < ncallers; c++) printf("  cpu %u: %d\n", c, result[round][c]);
      bad++;
    }
  }
  wait_affinity(target, AFF_OFF, 1000000);
  printf("%u callers x %u rounds: losers got ALREADY_ON %u times, ON_PENDING %u times\n", ncallers, ROUNDS,
         already, pending);
  check(!bad, "race-cpu-on", "%u bad rounds", bad);
  for (u32 i = 1; i < target; i++) wait_affinity(i, AFF_OFF, 1000000);
  return 0;
}
