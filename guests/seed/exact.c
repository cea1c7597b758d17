/* exact: restore-exactness phases on vCPU 0 alone (the others stay off, so that
 * SYSTEM_SUSPEND is allowed). Each phase opens a "save window" (phase number odd) in which
 * test/restore-exactness.test.ts saves and restores the machine; the guest then checks
 * that nothing was lost:
 *   1  GIC: SGI 5 acknowledged (active, running priority 0xa0), SGI 3 pending, IRQs masked;
 *      after the window both are still so, EOI drops the priority, SGI 3 is taken once.
 *   3  timer: the virtual timer armed TIMER_MS ahead, IRQs on, CNTVCT read in a loop; it
 *      never goes back and the timer IRQ arrives exactly once (the handler re-arms it 1 s
 *      later, so a restore that confuses the counter would fire it again: a storm).
 *   5  UART: the VMM puts bytes in the PL011 RX FIFO during the window; after it the guest
 *      reads them all and prints them.
 *   7  SYSTEM_SUSPEND with the timer TIMER_MS ahead as wake-up (if PSCI_FEATURES offers
 *      it; QEMU 7.2 does not): resumes at secondary_entry with CTX_RESUME, not early.
 * Record at 0x40070000 (struct exact below; the test reads it). IHI 0069 (GICv3), Arm ARM
 * D11 (generic timer), DEN 0022 5.1.19 (SYSTEM_SUSPEND), ARM DDI 0183 (PL011). */
#include "rt.h"

#define EXACT_ADDR 0x40070000ul
#define EXACT_MAGIC 0x5443415845ul /* "EXACT" */
#define TIMER_MS 20
#define CTX_RESUME 0x5eed5u
#define UART_BASE 0x09000000ul
#define GICR_ISACTIVER0 0x0300

struct exact {
  u64 magic;       /* 0x00 */
  u64 phase;       /* 0x08 */
  u64 sgi3_taken;  /* 0x10 */
  u64 sgi5_iar;    /* 0x18 */
  u64 timer_irqs;  /* 0x20 */
  u64 cnt_back;    /* 0x28: times CNTVCT went backwards */
  u64 cnt_last;    /* 0x30 */
  u64 deadline;    /* 0x38 */
  u64 resumed_ctx; /* 0x40 */
  u64 resume_cnt;  /* 0x48 */
  u64 rx_count;    /* 0x50 */
  u64 rx[8];       /* 0x58 */
};
#define X ((volatile struct exact *)EXACT_ADDR)

static void on_irq(u32 intid) {
  if (intid == 3) X->sgi3_taken = X->sgi3_taken + 1;
  if (intid == TIMER_VIRT_PPI) {
    X->timer_irqs = X->timer_irqs + 1;
    write_sysreg(cntv_cval_el0, read_sysreg(cntv_cval_el0) + cntfrq()); /* 1 s later */
    isb();
  }
}

static u64 ticks_ms(u64 ms) { return cntfrq() / 1000 * ms; }

static void watch_counter(u64 ms) {
  u64 end = cntvct() + ticks_ms(ms);
  for (;;) {
    u64 now = cntvct();
    if (now < X->cnt_last) X->cnt_back = X->cnt_back + 1;
    X->cnt_last = now;
    if (now >= end) break;
  }
}

static void resumed(u64 ctx) __attribute__((noreturn));
static void resumed(u64 ctx) {
  X->resume_cnt = cntvct();
  X->resumed_ctx = ctx;
  X->phase = 8;
  dsb();
  printf("resumed from SYSTEM_SUSPEND: ctx %lx, %s the deadline\n", ctx,
         X->resume_cnt >= X->deadline ? "at or after" : "BEFORE");
  check(ctx == CTX_RESUME && X->resume_cnt >= X->deadline, "system-suspend-resume",
        "ctx %lx cnt %lx deadline %lx", ctx, X->resume_cnt, X->deadline);
  halt();
}

int main(void) {
  memset((void *)EXACT_ADDR, 0, sizeof(struct exact));
  X->magic = EXACT_MAGIC;
  irq_hook = on_irq;
  u64 sgi = GIC_SGI_BASE(gicr_base(0));

  /* 1: an active and a pending interrupt across the window. */
  irq_disable();
  gic_enable_ppi_sgi(3);
  gic_enable_ppi_sgi(5);
  gic_send_sgi(0, 5);
  while (!gic_ppi_sgi_pending(5)) cpu_relax();
  u64 iar = read_sysreg(ICC_IAR1_EL1);
  X->sgi5_iar = iar;
  gic_send_sgi(0, 3);
  while (!gic_ppi_sgi_pending(3)) cpu_relax();
  X->phase = 1;
  dsb();
  udelay(2000);
  X->phase = 2;
  dsb();
  u32 active = mmio_read32(sgi + GICR_ISACTIVER0);
  u64 rpr = read_sysreg(ICC_RPR_EL1);
  check((iar & 0xffffff) == 5 && (active & (1u << 5)) && gic_ppi_sgi_pending(3) && rpr == 0xa0,
        "gic-kept", "IAR %lx ISACTIVER0 %x SGI3 pending %d RPR %lx", iar, active,
        gic_ppi_sgi_pending(3), rpr);
  write_sysreg(ICC_EOIR1_EL1, iar);
  isb();
  rpr = read_sysreg(ICC_RPR_EL1);
  irq_enable();
  udelay(100);
  check(rpr == 0xff && X->sgi3_taken == 1, "gic-eoi-and-pending-taken", "RPR %lx, SGI 3 taken %lu", rpr,
        X->sgi3_taken);

  /* 3: the timer across the window. */
  gic_enable_ppi_sgi(TIMER_VIRT_PPI);
  X->deadline = cntvct() + ticks_ms(TIMER_MS);
  write_sysreg(cntv_cval_el0, X->deadline);
  write_sysreg(cntv_ctl_el0, 1);
  isb();
  X->cnt_last = cntvct();
  X->phase = 3;
  dsb();
  watch_counter(2 * TIMER_MS);
  X->phase = 4;
  dsb();
  udelay(2000);
  irq_disable();
  write_sysreg(cntv_ctl_el0, 0);
  isb();
  check(X->timer_irqs == 1 && X->cnt_back == 0, "timer-once-counter-monotonic", "%lu timer IRQs, %lu times backwards",
        X->timer_irqs, X->cnt_back);

  /* 5: bytes in the UART's RX FIFO (FEN on: 32 deep) across the window. */
  mmio_write32(UART_BASE + 0x2c, mmio_read32(UART_BASE + 0x2c) | (1u << 4));
  X->phase = 5;
  dsb();
  udelay(2000);
  X->phase = 6;
  dsb();
  u32 n = 0;
  while (!(mmio_read32(UART_BASE + 0x18) & (1u << 4)) && n < 8) X->rx[n++] = mmio_read32(UART_BASE) & 0xff;
  X->rx_count = n;
  printf("uart rx: %u bytes:", n);
  for (u32 i = 0; i < n; i++) printf(" %x", (u32)X->rx[i]);
  printf("\n");

  /* 7: SYSTEM_SUSPEND, woken by the timer. */
  s64 f = (s32)hvc_call(PSCI_FEATURES, PSCI_SYSTEM_SUSPEND, 0, 0);
  if (f < 0) {
    skip("system-suspend", "not offered by PSCI_FEATURES");
    return 0;
  }
  cpu_entry_fn[0] = resumed;
  X->deadline = cntvct() + ticks_ms(TIMER_MS);
  write_sysreg(cntv_cval_el0, X->deadline);
  write_sysreg(cntv_ctl_el0, 1);
  isb();
  X->phase = 7;
  dsb();
  s64 r = (s32)hvc_call(PSCI_SYSTEM_SUSPEND, (u64)&secondary_entry, CTX_RESUME, 0);
  if (r != 0) {
    fail("system-suspend", "SYSTEM_SUSPEND = %ld", r);
    return 0;
  }
  resumed(CTX_RESUME); /* woke without powering down: same as a resume */
}
