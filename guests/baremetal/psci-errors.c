/* psci-errors: PSCI_VERSION, PSCI_FEATURES, the error codes of CPU_ON and AFFINITY_INFO,
 * an unknown function ID, MIGRATE_INFO_TYPE and SMCCC_VERSION (DEN 0022 5.1, DEN 0028). */
#include "rt.h"

static volatile u32 started;
static volatile u32 release;

static void idle(u64 ctx) {
  atomic_store(&started, 1);
  while (!atomic_load(&release)) cpu_relax();
}

static s64 call(u32 fn, u64 a1, u64 a2, u64 a3) { return (s32)hvc_call(fn, a1, a2, a3); }

int main(void) {
  u64 v = hvc_call(PSCI_VERSION, 0, 0, 0);
  printf("PSCI_VERSION = %lx (%u.%u)\n", v, (u32)(v >> 16) & 0xffff, (u32)v & 0xffff);
  check(v == 0x10000 || v == 0x10001, "psci-version", "%lx, want 1.0 or 1.1", v);

  /* PSCI_FEATURES (PSCI 1.0): 0 (or feature flags >= 0) for implemented functions. */
  static const u32 known[] = {PSCI_VERSION, PSCI_CPU_SUSPEND, PSCI_CPU_OFF, PSCI_CPU_ON,
                              PSCI_AFFINITY_INFO, PSCI_MIGRATE_INFO_TYPE, PSCI_SYSTEM_OFF,
                              PSCI_SYSTEM_RESET, PSCI_FEATURES};
  u32 ok = 0;
  for (u32 i = 0; i < sizeof known / sizeof known[0]; i++) {
    s64 r = call(PSCI_FEATURES, known[i], 0, 0);
    if (r < 0) fail("features-known", "PSCI_FEATURES(%x) = %ld", known[i], r);
    else ok++;
  }
  if (ok == sizeof known / sizeof known[0]) pass("features-known");
  s64 r = call(PSCI_FEATURES, 0x8400001fu, 0, 0);
  check(r == PSCI_NOT_SUPPORTED, "features-unknown-psci", "PSCI_FEATURES(8400001f) = %ld", r);
  r = call(PSCI_FEATURES, 0xC2001234u, 0, 0);
  check(r == PSCI_NOT_SUPPORTED, "features-not-psci", "PSCI_FEATURES(c2001234) = %ld", r);
  r = call(PSCI_FEATURES, PSCI_SYSTEM_SUSPEND, 0, 0);
  printf("PSCI_FEATURES(SYSTEM_SUSPEND) = %ld\n", r);
  r = call(PSCI_FEATURES, SMCCC_VERSION, 0, 0);
  printf("PSCI_FEATURES(SMCCC_VERSION) = %ld\n", r);

  r = call(0x8400001fu, 0, 0, 0);
  check(r == PSCI_NOT_SUPPORTED, "unknown-function", "PSCI function 8400001f = %ld", r);
  r = call(0xC400001fu, 0, 0, 0);
  check(r == PSCI_NOT_SUPPORTED, "unknown-function-64", "PSCI function c400001f = %ld", r);

  r = call(PSCI_MIGRATE_INFO_TYPE, 0, 0, 0);
  check(r == 2, "migrate-info-type", "%ld, want 2 (no migration needed)", r);

  /* SMCCC_VERSION (DEN 0028): 1.x as 0x1000x, or NOT_SUPPORTED from an SMCCC 1.0 firmware. */
  r = call(SMCCC_VERSION, 0, 0, 0);
  printf("SMCCC_VERSION = %ld\n", r);
  check(r == PSCI_NOT_SUPPORTED || (r >= 0x10000 && r < 0x20000), "smccc-version", "%ld", r);

  /* CPU_ON errors. */
  r = cpu_on(0, idle, 0);
  check(r == PSCI_ALREADY_ON, "cpu-on-self", "CPU_ON(self) = %ld, want ALREADY_ON (-4)", r);
  r = call(PSCI_CPU_ON, cpu_mpidr(MAXCPU + 8), (u64)&secondary_entry, 0);
  check(r == PSCI_INVALID_PARAMETERS, "cpu-on-nonexistent", "CPU_ON(mpidr %lx) = %ld, want -2",
        cpu_mpidr(MAXCPU + 8), r);
  r = call(PSCI_CPU_ON, 0xff00ff00ul, (u64)&secondary_entry, 0);
  check(r == PSCI_INVALID_PARAMETERS, "cpu-on-bad-mpidr", "CPU_ON(ff00ff00) = %ld, want -2", r);
  r = psci_affinity_info(cpu_mpidr(ncpus));
  if (ncpus < MAXCPU)
    check(r == PSCI_INVALID_PARAMETERS, "affinity-nonexistent", "AFFINITY_INFO(cpu %u) = %ld", ncpus, r);
  r = psci_affinity_info(cpu_mpidr(0));
  check(r == AFF_ON, "affinity-self", "AFFINITY_INFO(self) = %ld", r);

  if (ncpus < 2) {
    skip("cpu-on-already-on", "1 CPU");
  } else {
    u32 t = ncpus - 1;
    r = psci_affinity_info(cpu_mpidr(t));
    check(r == AFF_OFF, "affinity-off", "AFFINITY_INFO(cpu %u) = %ld, want OFF (1)", t, r);
    r = cpu_on(t, idle, 0);
    check(r == PSCI_SUCCESS, "cpu-on", "CPU_ON(cpu %u) = %ld", t, r);
    while (!atomic_load(&started)) cpu_relax();
    r = cpu_on(t, idle, 0);
    check(r == PSCI_ALREADY_ON, "cpu-on-already-on", "CPU_ON(cpu %u) again = %ld, want -4", t, r);
    r = psci_affinity_info(cpu_mpidr(t));
    check(r == AFF_ON, "affinity-on", "AFFINITY_INFO(cpu %u) = %ld, want ON (0)", t, r);
    atomic_store(&release, 1);
    r = wait_affinity(t, AFF_OFF, 100000);
    check(r == AFF_OFF, "affinity-off-after-cpu-off", "AFFINITY_INFO(cpu %u) = %ld", t, r);
  }
  /* CPU_OFF by the last running CPU is allowed; we don't: SYSTEM_OFF ends the test. */
  return 0;
}
