/* smp-hello: CPU_ON every secondary with a context ID; each prints its MPIDR and the
 * context ID it got (x0 at the entry point, DEN 0022 5.1.4); the boot CPU waits for all,
 * then checks AFFINITY_INFO = ON for each; then all print at once through the console lock. */
#include "rt.h"

static volatile u64 got_ctx[MAXCPU];
static volatile u64 got_mpidr[MAXCPU];
static volatile u32 arrived[MAXCPU];
static volatile u32 release;
#define SGI_KICK 1

static void on_irq(u32 intid) {}

/* All CPUs print at once: the console lock must keep every line whole. The runner
 * (tools/guests-qemu.sh) counts the intact lines: 4 per CPU. */
static void chorus(u32 cpu) {
  for (u32 k = 0; k < 4; k++) printf("cpu %u: line %u 0123456789abcdef0123456789abcdef\n", cpu, k);
}

static void hello(u64 ctx) {
  u32 cpu = cpu_id();
  u64 mpidr = read_sysreg(mpidr_el1);
  printf("cpu %u: hello, MPIDR %lx, context %lx, CurrentEL %lx\n", cpu, mpidr, ctx,
         (read_sysreg(currentel) >> 2) & 3);
  got_ctx[cpu] = ctx;
  got_mpidr[cpu] = mpidr;
  atomic_store(&arrived[cpu], 1);
  /* Stay on (asleep) until the boot CPU has checked AFFINITY_INFO and kicks us. */
  gic_enable_ppi_sgi(SGI_KICK);
  WAIT_IRQ(atomic_load(&release));
  chorus(cpu);
}

int main(void) {
  u64 mpidr = read_sysreg(mpidr_el1);
  irq_hook = on_irq;
  printf("cpu 0: boot, MPIDR %lx\n", mpidr);
  check((mpidr & 0xffffff) == 0, "boot-mpidr", "MPIDR %lx", mpidr);
  check(psci_affinity_info(cpu_mpidr(0)) == AFF_ON, "affinity-self-on", "not ON");
  /* The DTB's /cpus must agree with what PSCI says exists. */
  if (!boot_dtb) {
    skip("dtb-cpus", "no DTB in x0");
  } else {
    int n = fdt_count_cpus(boot_dtb);
    printf("DTB at %lx: %d cpu nodes\n", boot_dtb, n);
    check(n == (int)ncpus || (n > MAXCPU && ncpus == MAXCPU), "dtb-cpus", "DTB says %d CPUs, PSCI %u", n,
          ncpus);
  }
  if (ncpus < 2) skip("secondaries", "1 CPU");
  u32 ctx_ok = 0, mpidr_ok = 0;
  for (u32 i = 1; i < ncpus; i++) {
    u64 ctx = 0xc0de0000ul + i * 0x101ul + (0xabcdul << 32);
    s64 r = psci_affinity_info(cpu_mpidr(i));
    if (r != AFF_OFF) fail("affinity-off-before", "cpu %u: %ld", i, r);
    r = cpu_on(i, hello, ctx);
    if (r != PSCI_SUCCESS) {
      fail("cpu-on", "cpu %u: %ld", i, r);
      continue;
    }
    /* Start them one at a time so the output order is fixed. */
    u32 spins = 0;
    while (!atomic_load(&arrived[i]) && ++spins < 100000000) cpu_relax();
    if (!arrived[i]) { fail("arrive", "cpu %u never ran", i); continue; }
    if (got_ctx[i] != ctx) fail("context-id", "cpu %u: got %lx want %lx", i, got_ctx[i], ctx);
    else ctx_ok++;
    if ((got_mpidr[i] & 0xff00ffffff) != cpu_mpidr(i)) fail("mpidr", "cpu %u: MPIDR %lx", i, got_mpidr[i]);
    else mpidr_ok++;
  }
  u32 on = 0;
  for (u32 i = 1; i < ncpus; i++) {
    s64 r = psci_affinity_info(cpu_mpidr(i));
    if (r == AFF_ON) on++;
    else fail("affinity-on", "cpu %u: AFFINITY_INFO %ld", i, r);
  }
  if (ncpus > 1) {
    u32 n = 0;
    for (u32 i = 1; i < ncpus; i++) n += arrived[i];
    check(n == ncpus - 1, "all-arrived", "%u of %u", n, ncpus - 1);
    if (ctx_ok == ncpus - 1) pass("context-id");
    if (mpidr_ok == ncpus - 1) pass("mpidr");
    check(on == ncpus - 1, "affinity-on", "%u of %u ON", on, ncpus - 1);
  }
  atomic_store(&release, 1);
  gic_send_sgi_others(SGI_KICK);
  chorus(0);
  /* Secondaries return from hello() and CPU_OFF; wait for that so SYSTEM_OFF is clean. */
  for (u32 i = 1; i < ncpus; i++) {
    s64 r = wait_affinity(i, AFF_OFF, 100000);
    if (r != AFF_OFF) fail("affinity-off-after", "cpu %u: %ld", i, r);
  }
  if (ncpus > 1) pass("cpu-off");
  return 0;
}
