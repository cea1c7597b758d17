/* hotplug: secondaries are started, then each calls CPU_OFF; the boot CPU polls
 * AFFINITY_INFO until OFF (1), CPU_ONs it again with a new context ID, checks that it
 * came back with that ID, three rounds. DEN 0022 5.1.3 CPU_OFF, 5.1.5 AFFINITY_INFO. */
#include "rt.h"

#define ROUNDS 3

static volatile u64 seen_ctx[MAXCPU];
static volatile u32 entries[MAXCPU];

static void visit(u64 ctx) {
  u32 cpu = cpu_id();
  seen_ctx[cpu] = ctx;
  atomic_add(&entries[cpu], 1);
  /* return: the runtime calls CPU_OFF, which must not return */
}

int main(void) {
  if (ncpus < 2) {
    skip("hotplug", "1 CPU");
    return 0;
  }
  u32 bad = 0;
  for (u32 round = 0; round <= ROUNDS; round++) {
    for (u32 i = 1; i < ncpus; i++) {
      u64 ctx = 0x1000ul * (round + 1) + i;
      s64 st = psci_affinity_info(cpu_mpidr(i));
      s64 r = cpu_on(i, visit, ctx);
      if (r != PSCI_SUCCESS) {
        fail("cpu-on", "round %u cpu %u: CPU_ON = %ld (AFFINITY_INFO was %ld)", round, i, r, st);
        bad++;
        continue;
      }
      /* Poll until it has run and switched itself off again. */
      u32 loops = 0;
      while (atomic_load(&entries[i]) != round + 1 && ++loops < 100000000) cpu_relax();
      s64 aff = wait_affinity(i, AFF_OFF, 200000);
      printf("round %u: cpu %u %s -> on (ctx %lx) -> entered with ctx %lx -> %s\n", round, i,
             st == AFF_OFF ? "off" : "??", ctx, seen_ctx[i], aff == AFF_OFF ? "off" : "still on");
      if (st != AFF_OFF || entries[i] != round + 1 || seen_ctx[i] != ctx || aff != AFF_OFF) {
        fail("round", "round %u cpu %u: before %ld entries %u ctx %lx after %ld", round, i, st,
             entries[i], seen_ctx[i], aff);
        bad++;
      }
    }
  }
  check(!bad, "hotplug", "%u bad rounds", bad);
  /* After the last CPU_OFF every secondary must be OFF and startable again. */
  u32 off = 0;
  for (u32 i = 1; i < ncpus; i++) off += psci_affinity_info(cpu_mpidr(i)) == AFF_OFF;
  check(off == ncpus - 1, "all-off", "%u of %u off", off, ncpus - 1);
  return 0;
}
