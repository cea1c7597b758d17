/* exceptions: synchronous exceptions taken to EL1 with their ESR/ELR/FAR (Arm ARM D17.2.37
 * ESR_EL1), HVC with a non-PSCI function ID, and an IRQ held off by PSTATE.I. */
#include "rt.h"

static volatile u64 last_esr, last_elr, last_far, last_spsr;
static volatile u32 sync_count;
static volatile u64 skip_by; /* bytes to advance ELR by after a fault */

static int on_sync(struct frame *f) {
  last_esr = f->esr;
  last_elr = f->elr;
  last_far = f->far;
  last_spsr = f->spsr;
  sync_count++;
  f->elr += skip_by;
  return 1;
}

static volatile u32 irq_count, irq_last;
static void on_irq(u32 intid) {
  irq_last = intid;
  irq_count++;
}

extern char svc_insn[], udf_insn[], brk_insn[], ldr_insn[], str_insn[], mrs_insn[];

int main(void) {
  sync_hook = on_sync;

  /* SVC: EC 0x15, ISS = imm16, IL = 1; preferred return is the next instruction. */
  skip_by = 0;
  sync_count = 0;
  __asm__ volatile(".globl svc_insn\nsvc_insn: svc #0x1234" ::: "memory");
  check(sync_count == 1 && ESR_EC(last_esr) == 0x15 && (last_esr & 0xffff) == 0x1234 &&
            (last_esr >> 25 & 1) == 1,
        "svc", "count %u ESR %lx", sync_count, last_esr);
  check(last_elr == (u64)svc_insn + 4, "svc-elr", "ELR %lx, svc at %p", last_elr, svc_insn);
  check((last_spsr & 0xf) == 5, "svc-spsr", "SPSR %lx (want EL1h)", last_spsr);

  /* UDF: EC 0 (unknown reason), ELR = the instruction itself. */
  skip_by = 4;
  sync_count = 0;
  __asm__ volatile(".globl udf_insn\nudf_insn: udf #0" ::: "memory");
  check(sync_count == 1 && ESR_EC(last_esr) == 0 && last_elr == (u64)udf_insn, "udf",
        "count %u ESR %lx ELR %lx", sync_count, last_esr, last_elr);

  /* MRS of an unallocated system register (op0 3, CRn 8 has none): UNDEFINED, EC 0. */
  sync_count = 0;
  __asm__ volatile(".globl mrs_insn\nmrs_insn: mrs x0, S3_0_C8_C0_0" ::: "x0", "memory");
  check(sync_count == 1 && ESR_EC(last_esr) == 0 && last_elr == (u64)mrs_insn, "mrs-unallocated",
        "count %u ESR %lx ELR %lx", sync_count, last_esr, last_elr);

  /* BRK: EC 0x3c, ISS = imm16, ELR = the instruction. */
  sync_count = 0;
  __asm__ volatile(".globl brk_insn\nbrk_insn: brk #0x42" ::: "memory");
  check(sync_count == 1 && ESR_EC(last_esr) == 0x3c && (last_esr & 0xffff) == 0x42 &&
            last_elr == (u64)brk_insn,
        "brk", "count %u ESR %lx ELR %lx", sync_count, last_esr, last_elr);

  /* Alignment fault: SCTLR_EL1.A = 1, an unaligned LDR/STR. EC 0x25 (data abort, same EL),
   * DFSC 0x21, FAR = the address, WnR set for the store. */
  u64 sctlr = read_sysreg(sctlr_el1);
  write_sysreg(sctlr_el1, sctlr | 2);
  isb();
  static volatile u64 words[4];
  u64 addr = (u64)&words[1] + 1;
  sync_count = 0;
  u64 val = 0x5555;
  __asm__ volatile(".globl ldr_insn\nldr_insn: ldr %0, [%1]" : "+r"(val) : "r"(addr) : "memory");
  check(sync_count == 1 && ESR_EC(last_esr) == 0x25 && (last_esr & 0x3f) == 0x21 &&
            !(last_esr >> 6 & 1) && last_far == addr && last_elr == (u64)ldr_insn && val == 0x5555,
        "align-load", "count %u ESR %lx FAR %lx ELR %lx val %lx", sync_count, last_esr, last_far,
        last_elr, val);
  sync_count = 0;
  addr = (u64)&words[2] + 4;
  __asm__ volatile(".globl str_insn\nstr_insn: str %0, [%1]" ::"r"(val), "r"(addr) : "memory");
  check(sync_count == 1 && ESR_EC(last_esr) == 0x25 && (last_esr & 0x3f) == 0x21 &&
            (last_esr >> 6 & 1) && last_far == addr && words[2] == 0 && words[3] == 0,
        "align-store", "count %u ESR %lx FAR %lx", sync_count, last_esr, last_far);
  write_sysreg(sctlr_el1, sctlr);
  isb();

  /* HVC with a function ID that is not PSCI: a hypervisor answers NOT_SUPPORTED (-1)
   * (SMCCC: unknown function IDs return -1 in w0). */
  sync_count = 0;
  s64 r = (s32)hvc_call(0xC2000042u, 1, 2, 3);
  check(sync_count == 0 && r == -1, "hvc-unknown", "count %u x0 %ld ESR %lx", sync_count, r, last_esr);
  r = (s32)hvc_call(0x86000000u, 0, 0, 0);
  check(sync_count == 0 && r == -1, "hvc-unknown-vendor", "count %u x0 %ld", sync_count, r);

  /* IRQ while masked: SGI 5 to self with PSTATE.I set stays pending (ISR_EL1.I) and is
   * taken only after DAIFClr. */
  irq_hook = on_irq;
  gic_enable_ppi_sgi(5);
  irq_disable();
  irq_count = 0;
  gic_send_sgi(cpu_id(), 5);
  udelay(2000);
  u64 isr = read_sysreg(isr_el1);
  check(irq_count == 0, "irq-masked", "taken while masked (%u)", irq_count);
  check((isr >> 7) & 1, "irq-isr-pending", "ISR_EL1 %lx", isr);
  irq_enable();
  isb();
  udelay(100);
  check(irq_count == 1 && irq_last == 5, "irq-unmasked", "count %u intid %u", irq_count, irq_last);
  isr = read_sysreg(isr_el1);
  check(!((isr >> 7) & 1), "irq-isr-clear", "ISR_EL1 %lx", isr);

  /* An interrupt wakes WFI even with PSTATE.I set (Arm ARM D1.16.2), and stays pending. */
  irq_disable();
  irq_count = 0;
  gic_send_sgi(cpu_id(), 5);
  wfi();
  check(irq_count == 0 && ((read_sysreg(isr_el1) >> 7) & 1), "wfi-masked-wakes", "count %u", irq_count);
  irq_enable();
  isb();
  udelay(100);
  check(irq_count == 1, "wfi-then-taken", "count %u", irq_count);
  sync_hook = NULL;
  return 0;
}
