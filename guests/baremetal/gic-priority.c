/* gic-priority: the GICv3 CPU interface's priority rules (IHI 0069, 4.8): PMR masking,
 * highest priority first, preemption only by a higher (lower-valued) group priority,
 * the running priority (ICC_RPR_EL1), spurious INTID 1023, byte access to IPRIORITYR.
 * Runs on the boot CPU only. */
#include "rt.h"

#define LOW 9   /* priority 0xc0 */
#define HIGH 10 /* priority 0x40 */
#define SAME 11 /* priority 0xc0 */
#define MID 8   /* priority 0xa0 */

static volatile u32 order[16], norder;
static volatile u64 rpr_in[16];
static volatile u32 nest_test;

static void set_prio(u32 intid, u8 prio) {
  *(volatile u8 *)(GIC_SGI_BASE(gicr_base(cpu_id())) + 0x400 + intid) = prio;
  dsb();
}

static void on_irq(u32 intid) {
  u32 k = norder++;
  if (k < 16) {
    order[k] = intid;
    rpr_in[k] = read_sysreg(ICC_RPR_EL1);
  }
  if (intid == LOW && nest_test) {
    /* Inside LOW's handler: a same-priority SGI must wait, a higher one preempts. */
    gic_send_sgi(0, SAME);
    gic_send_sgi(0, HIGH);
    irq_enable();
    isb();
    udelay(200);
    irq_disable();
    if (norder < 16) order[norder++] = 100 + LOW; /* marks the end of LOW's handler */
  }
}

static void reset_order(void) {
  norder = 0;
  for (u32 i = 0; i < 16; i++) order[i] = 0;
}

int main(void) {
  irq_hook = on_irq;
  set_prio(LOW, 0xc0);
  set_prio(HIGH, 0x40);
  set_prio(SAME, 0xc0);
  set_prio(MID, 0xa0);
  u32 rb = mmio_read32(GIC_SGI_BASE(gicr_base(0)) + 0x400 + 8);
  check(rb == 0xc040c0a0, "ipriorityr-bytes", "IPRIORITYR2 = %x", rb);
  gic_enable_ppi_sgi(LOW);
  gic_enable_ppi_sgi(HIGH);
  gic_enable_ppi_sgi(SAME);
  gic_enable_ppi_sgi(MID);

  u64 rpr = read_sysreg(ICC_RPR_EL1);
  check((rpr & 0xff) == 0xff, "rpr-idle", "ICC_RPR_EL1 = %lx", rpr);
  u64 iar = read_sysreg(ICC_IAR1_EL1);
  check((iar & 0xffffff) == 1023, "iar-spurious", "ICC_IAR1_EL1 = %lx with nothing pending", iar);

  /* PMR 0x80 masks priority 0xa0 (only priorities < PMR are signalled). */
  write_sysreg(ICC_PMR_EL1, 0x80);
  isb();
  reset_order();
  irq_enable();
  gic_send_sgi(0, MID);
  udelay(500);
  u64 isr = read_sysreg(isr_el1);
  check(norder == 0 && !(isr & 0x80), "pmr-masks", "%u taken, ISR_EL1 %lx", norder, isr);
  check(gic_ppi_sgi_pending(MID), "pmr-masked-stays-pending", "not pending");
  write_sysreg(ICC_PMR_EL1, 0xff);
  isb();
  udelay(200);
  check(norder == 1 && order[0] == MID && (rpr_in[0] & 0xff) == 0xa0, "pmr-unmask", "%u taken, first %u, RPR %lx",
        norder, order[0], rpr_in[0]);

  /* Two pending at once: the higher priority (lower value) goes first. */
  irq_disable();
  reset_order();
  gic_send_sgi(0, LOW);
  gic_send_sgi(0, HIGH);
  udelay(200);
  irq_enable();
  isb();
  udelay(200);
  check(norder == 2 && order[0] == HIGH && order[1] == LOW, "highest-first", "%u taken: %u, %u", norder,
        order[0], order[1]);

  /* Preemption: HIGH preempts LOW's handler, SAME waits for LOW's EOI. */
  irq_disable();
  reset_order();
  nest_test = 1;
  gic_send_sgi(0, LOW);
  irq_enable();
  isb();
  udelay(1000);
  nest_test = 0;
  printf("nesting order:");
  for (u32 i = 0; i < norder && i < 16; i++) printf(" %u", order[i]);
  printf("\n");
  check(norder == 4 && order[0] == LOW && order[1] == HIGH && order[2] == 100 + LOW && order[3] == SAME,
        "preemption", "order %u %u %u %u (%u)", order[0], order[1], order[2], order[3], norder);
  check((rpr_in[0] & 0xff) == 0xc0 && (rpr_in[1] & 0xff) == 0x40, "rpr-running", "RPR %lx then %lx",
        rpr_in[0], rpr_in[1]);
  rpr = read_sysreg(ICC_RPR_EL1);
  check((rpr & 0xff) == 0xff, "rpr-after", "ICC_RPR_EL1 = %lx", rpr);
  return 0;
}
