/* seed: the snapshot/restore seed scenario (issue 4, deliverable 5) on 4 vCPUs.
 *   vCPU 1: CPU_ON'd once (context CTX_FIRST), records its entry, CPU_OFF (by returning).
 *   vCPU 2: WFI with nothing pending, in a loop; counts every wake-up; leaves on SGI_STOP.
 *   vCPU 3: counts in a loop (SEED->v3_count) until told to stop.
 *   vCPU 0: polls AFFINITY_INFO(vCPU 1) SEED_CHECKS times, 1 ms apart, recording each
 *           result and vCPU 3's count (the save window is here); then CPU_ONs vCPU 1 with
 *           CTX_SECOND, which records that it ran; stops 3 and 2; prints the report;
 *           SYSTEM_OFF. The report holds only values that a correct restore keeps.
 * PSCI: DEN 0022 5.1.3 CPU_OFF, 5.1.4 CPU_ON, 5.1.5 AFFINITY_INFO. WFI may wake with
 * nothing pending (Arm ARM D1.16.2), so vCPU 2 loops. */
#include "seed.h"

static void vcpu1(u64 ctx) {
  volatile struct seed *s = SEED;
  u64 n = s->v1_entries;
  if (n < 2) s->v1_ctx[n] = ctx;
  dsb();
  s->v1_entries = n + 1;
  dsb();
  /* return: the runtime calls CPU_OFF */
}

static void vcpu2(u64 ctx) {
  volatile struct seed *s = SEED;
  gic_enable_ppi_sgi(SGI_STOP); /* IRQs stay masked: the SGI only ends the WFI */
  s->v2_started = 1;
  dsb();
  while (!s->stop) {
    wfi();
    s->v2_wakes = s->v2_wakes + 1;
  }
  s->v2_ack = 1;
  dsb();
}

static void vcpu3(u64 ctx) {
  volatile struct seed *s = SEED;
  s->v3_started = 1;
  dsb();
  while (!s->stop) s->v3_count = s->v3_count + 1;
  dsb();
  s->v3_ack = 1;
  dsb();
}

static int wait_flag(volatile u64 *p, u64 want, u32 us) {
  for (u32 i = 0; i < us / 10 && *p != want; i++) udelay(10);
  return *p == want;
}

int main(void) {
  volatile struct seed *s = SEED;
  if (ncpus < 4) {
    fail("seed", "needs 4 CPUs, found %u", ncpus);
    return 0;
  }
  memset((void *)SEED_ADDR, 0, sizeof(struct seed));
  s->magic = SEED_MAGIC;
  dsb();

  s64 r2 = cpu_on(2, vcpu2, 2);
  s64 r3 = cpu_on(3, vcpu3, 3);
  check(r2 == PSCI_SUCCESS && r3 == PSCI_SUCCESS, "start-2-3", "CPU_ON = %ld, %ld", r2, r3);
  wait_flag(&s->v2_started, 1, 1000000);
  wait_flag(&s->v3_started, 1, 1000000);
  s->phase = PH_STARTED;
  s64 r1 = cpu_on(1, vcpu1, CTX_FIRST);
  check(r1 == PSCI_SUCCESS, "start-1", "CPU_ON = %ld", r1);
  wait_flag(&s->v1_entries, 1, 1000000);
  s64 off = wait_affinity(1, AFF_OFF, 100000);
  check(off == AFF_OFF, "cpu1-off", "AFFINITY_INFO = %ld after CPU_OFF", off);
  s->phase = PH_MIDDLE;
  dsb();

  /* The save window: vCPU 1 is OFF, vCPU 2 waits in WFI, vCPU 3 counts. */
  for (u32 i = 0; i < SEED_CHECKS; i++) {
    udelay(1000);
    s->aff[i] = psci_affinity_info(cpu_mpidr(1));
    s->v3_sample[i] = s->v3_count;
    s->checks = i + 1;
    dsb();
  }

  s->phase = PH_CPU_ON;
  dsb();
  s->cpu_on_result = (u64)cpu_on(1, vcpu1, CTX_SECOND);
  wait_flag(&s->v1_entries, 2, 200000);
  s64 off2 = wait_affinity(1, AFF_OFF, 20000);

  s->phase = PH_STOP;
  s->stop = 1;
  dsb();
  wait_flag(&s->v3_ack, 1, 100000);
  gic_send_sgi(2, SGI_STOP);
  wait_flag(&s->v2_ack, 1, 100000);
  s->phase = PH_REPORT;
  dsb();

  u32 aff_off = 0, increasing = s->v3_sample[SEED_CHECKS - 1] > s->v3_sample[0];
  for (u32 i = 0; i < SEED_CHECKS; i++) {
    aff_off += s->aff[i] == AFF_OFF;
    if (i && s->v3_sample[i] < s->v3_sample[i - 1]) increasing = 0; /* never backwards */
  }
  printf("seed: vcpu1 entries %lu ctx %lx %lx, CPU_ON %ld, off again %ld\n", s->v1_entries,
         s->v1_ctx[0], s->v1_ctx[1], (s64)s->cpu_on_result, off2);
  printf("seed: AFFINITY_INFO(vcpu1) OFF %u of %u\n", aff_off, SEED_CHECKS);
  printf("seed: vcpu2 wakes %lu ack %lu\n", s->v2_wakes, s->v2_ack);
  printf("seed: vcpu3 count %lu (samples %lu .. %lu) ack %lu\n", s->v3_count, s->v3_sample[0],
         s->v3_sample[SEED_CHECKS - 1], s->v3_ack);
  check(s->v1_entries == 2 && s->v1_ctx[0] == CTX_FIRST && s->v1_ctx[1] == CTX_SECOND &&
            (s64)s->cpu_on_result == PSCI_SUCCESS && off2 == AFF_OFF,
        "vcpu1-on-off-on", "entries %lu ctx %lx %lx CPU_ON %ld", s->v1_entries, s->v1_ctx[0],
        s->v1_ctx[1], (s64)s->cpu_on_result);
  check(aff_off == SEED_CHECKS, "vcpu1-off-throughout", "%u of %u", aff_off, SEED_CHECKS);
  check(s->v2_ack == 1 && s->v2_wakes >= 1, "vcpu2-wfi", "wakes %lu ack %lu", s->v2_wakes, s->v2_ack);
  check(s->v3_ack == 1 && increasing && s->v3_count >= s->v3_sample[SEED_CHECKS - 1], "vcpu3-counting",
        "ack %lu increasing %u", s->v3_ack, increasing);
  return 0;
}
