/* sgi-pingpong: for every ordered pair of CPUs (i, j), i sends SGI 1 to j (ICC_SGI1R_EL1
 * with j's Aff0 in TargetList) and j answers with SGI 2; then one broadcast (IRM = 1,
 * everyone but the sender) and one multicast TargetList. IHI 0069, 12.2.23 ICC_SGI1R_EL1. */
#include "rt.h"

#define SGI_PING 1
#define SGI_PONG 2
#define SGI_BCAST 3
#define SGI_KICK 4
#define SGI_MULTI 6

static volatile u32 mailbox_from[MAXCPU];
static volatile u32 ping_count[MAXCPU][MAXCPU]; /* [receiver][sender] */
static volatile u32 pongs[MAXCPU], bcast[MAXCPU], multi[MAXCPU], stray[MAXCPU];
static volatile u32 ready[MAXCPU], turn_done[MAXCPU];
static volatile u32 token = ~0u, finish;

static void on_irq(u32 intid) {
  u32 cpu = cpu_id();
  switch (intid) {
    case SGI_PING: {
      u32 from = mailbox_from[cpu];
      if (from < MAXCPU) ping_count[cpu][from]++;
      gic_send_sgi(from, SGI_PONG);
      break;
    }
    case SGI_PONG: pongs[cpu]++; break;
    case SGI_BCAST: bcast[cpu]++; break;
    case SGI_MULTI: multi[cpu]++; break;
    case SGI_KICK: break;
    default: stray[cpu]++; break;
  }
}

static void enable_sgis(void) {
  gic_enable_ppi_sgi(SGI_PING);
  gic_enable_ppi_sgi(SGI_PONG);
  gic_enable_ppi_sgi(SGI_BCAST);
  gic_enable_ppi_sgi(SGI_KICK);
  gic_enable_ppi_sgi(SGI_MULTI);
}

/* This CPU pings every other CPU in turn and waits for each pong. */
static void ping_all(u32 me) {
  for (u32 j = 0; j < ncpus; j++) {
    if (j == me) continue;
    u32 before = pongs[me];
    mailbox_from[j] = me;
    gic_send_sgi(j, SGI_PING); /* gic_send_sgi starts with a DSB: the mailbox is visible */
    WAIT_IRQ(pongs[me] != before);
  }
}

static void worker(u64 ctx) {
  u32 me = cpu_id();
  enable_sgis();
  atomic_store(&ready[me], 1);
  WAIT_IRQ(atomic_load(&token) == me);
  ping_all(me);
  atomic_store(&turn_done[me], 1);
  WAIT_IRQ(atomic_load(&finish));
}

static int wait_flag(volatile u32 *p, u32 loops) {
  while (!atomic_load(p) && loops--) udelay(1);
  return *p != 0;
}

int main(void) {
  irq_hook = on_irq;
  enable_sgis();
  irq_enable();

  /* SGI to self through the TargetList. */
  gic_send_sgi(0, SGI_BCAST);
  udelay(100);
  check(bcast[0] == 1, "sgi-self", "count %u", bcast[0]);
  bcast[0] = 0;

  if (ncpus < 2) {
    skip("pingpong", "1 CPU");
    skip("broadcast", "1 CPU");
  } else {
    for (u32 i = 1; i < ncpus; i++) {
      s64 r = cpu_on(i, worker, 0);
      if (r) fail("cpu-on", "cpu %u: %ld", i, r);
      else if (!wait_flag(&ready[i], 1000000)) fail("ready", "cpu %u never ready", i);
    }
    for (u32 i = 0; i < ncpus; i++) {
      atomic_store(&token, i);
      if (i == 0) {
        ping_all(0);
      } else {
        gic_send_sgi(i, SGI_KICK);
        if (!wait_flag(&turn_done[i], 2000000)) fail("turn", "cpu %u did not finish its pings", i);
      }
    }
    u32 bad = 0;
    for (u32 j = 0; j < ncpus; j++)
      for (u32 i = 0; i < ncpus; i++) {
        u32 want = i == j ? 0 : 1;
        if (ping_count[j][i] != want) {
          fail("pair", "%u->%u: %u pings received", i, j, ping_count[j][i]);
          bad++;
        }
      }
    for (u32 i = 0; i < ncpus; i++)
      if (pongs[i] != ncpus - 1) { fail("pongs", "cpu %u: %u pongs, want %u", i, pongs[i], ncpus - 1); bad++; }
    printf("%u ordered pairs exchanged ping and pong\n", ncpus * (ncpus - 1));
    if (!bad) pass("pingpong");

    /* Broadcast: IRM = 1 targets every PE except the sender. */
    gic_send_sgi_others(SGI_BCAST);
    u32 loops = 1000000, sum = 0;
    do {
      sum = 0;
      for (u32 i = 1; i < ncpus; i++) sum += bcast[i] != 0;
      if (sum == ncpus - 1) break;
      udelay(1);
    } while (--loops);
    udelay(200);
    bad = 0;
    for (u32 i = 0; i < ncpus; i++) {
      u32 want = i == 0 ? 0 : 1;
      if (bcast[i] != want) { fail("broadcast", "cpu %u got %u", i, bcast[i]); bad++; }
    }
    if (!bad) pass("broadcast");

    /* One write, TargetList naming every CPU including the sender. */
    u64 list = 0;
    for (u32 i = 0; i < ncpus; i++) list |= 1ul << i;
    dsb();
    write_sysreg(ICC_SGI1R_EL1, list | ((u64)SGI_MULTI << 24));
    isb();
    loops = 1000000;
    do {
      sum = 0;
      for (u32 i = 0; i < ncpus; i++) sum += multi[i] != 0;
      if (sum == ncpus) break;
      udelay(1);
    } while (--loops);
    udelay(200);
    bad = 0;
    for (u32 i = 0; i < ncpus; i++)
      if (multi[i] != 1) { fail("multicast", "cpu %u got %u", i, multi[i]); bad++; }
    if (!bad) pass("multicast");

    atomic_store(&finish, 1);
    gic_send_sgi_others(SGI_KICK);
    for (u32 i = 1; i < ncpus; i++)
      if (wait_affinity(i, AFF_OFF, 100000) != AFF_OFF) fail("cpu-off", "cpu %u still on", i);
  }
  u32 s = 0;
  for (u32 i = 0; i < ncpus; i++) s += stray[i];
  check(s == 0, "no-stray-irq", "%u", s);
  return 0;
}
