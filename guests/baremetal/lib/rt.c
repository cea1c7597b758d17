/* armbox bare-metal guest runtime (see rt.h). */
#include <stdarg.h>
#include "rt.h"

u32 ncpus;
volatile u32 failures;
cpu_fn_t volatile cpu_entry_fn[MAXCPU];
int (*volatile sync_hook)(struct frame *f);
void (*volatile irq_hook)(u32 intid);

void *memset(void *d, int c, unsigned long n) {
  u8 *p = d;
  while (n--) *p++ = (u8)c;
  return d;
}
void *memcpy(void *d, const void *s, unsigned long n) {
  u8 *p = d;
  const u8 *q = s;
  while (n--) *p++ = *q++;
  return d;
}

/* ---- locks ---- */
void spin_lock(spinlock_t *l) {
  u32 tmp;
  __asm__ volatile(
      "1: ldaxr %w0, [%1]\n"
      "   cbnz %w0, 1b\n"
      "   stxr %w0, %w2, [%1]\n"
      "   cbnz %w0, 1b\n"
      : "=&r"(tmp)
      : "r"(&l->v), "r"(1)
      : "memory");
}
void spin_unlock(spinlock_t *l) { __asm__ volatile("stlr wzr, [%0]" ::"r"(&l->v) : "memory"); }

/* ---- PL011 console (ARM DDI 0183: UARTDR 0x00, UARTFR 0x18, FR.TXFF bit 5) ---- */
#define UART_BASE 0x09000000ul
void putc_raw(char c) {
  while (mmio_read32(UART_BASE + 0x18) & (1u << 5)) {
  }
  mmio_write32(UART_BASE, (u8)c);
}

static spinlock_t print_lock;

struct buf {
  char *p;
  char *end;
};
static void bput(struct buf *b, char c) {
  if (b->p < b->end) *b->p++ = c;
}
static void bnum(struct buf *b, u64 v, int base, int neg, int width, char pad) {
  char tmp[24];
  int n = 0;
  do {
    u32 d = (u32)(v % (u64)base);
    tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= (u64)base;
  } while (v);
  if (neg) {
    if (pad == '0') { bput(b, '-'); } else { tmp[n++] = '-'; }
    width--;
  }
  for (int i = n; i < width; i++) bput(b, pad);
  while (n) bput(b, tmp[--n]);
}

static int vformat(char *out, int size, const char *fmt, va_list ap) {
  struct buf b = {out, out + size - 1};
  for (; *fmt; fmt++) {
    if (*fmt != '%') { bput(&b, *fmt); continue; }
    fmt++;
    char pad = ' ';
    int width = 0, lng = 0;
    if (*fmt == '0') { pad = '0'; fmt++; }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l') { lng = 1; fmt++; }
    switch (*fmt) {
      case 'd': {
        s64 v = lng ? va_arg(ap, s64) : va_arg(ap, int);
        bnum(&b, v < 0 ? (u64)-v : (u64)v, 10, v < 0, width, pad);
        break;
      }
      case 'u': bnum(&b, lng ? va_arg(ap, u64) : va_arg(ap, u32), 10, 0, width, pad); break;
      case 'x': bnum(&b, lng ? va_arg(ap, u64) : va_arg(ap, u32), 16, 0, width, pad); break;
      case 'p': bput(&b, '0'); bput(&b, 'x'); bnum(&b, (u64)va_arg(ap, void *), 16, 0, width, pad); break;
      case 'c': bput(&b, (char)va_arg(ap, int)); break;
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (!s) s = "(null)";
        int len = 0;
        while (s[len]) len++;
        for (int i = len; i < width; i++) bput(&b, ' ');
        while (*s) bput(&b, *s++);
        break;
      }
      case '%': bput(&b, '%'); break;
      case 0: fmt--; break;
      default: bput(&b, '%'); bput(&b, *fmt); break;
    }
  }
  *b.p = 0;
  return (int)(b.p - out);
}

/* Whole lines go out under one lock, with IRQs masked so a handler that prints on
 * this CPU cannot deadlock against it. */
static void emit(const char *s) {
  u64 daif = read_sysreg(daif);
  irq_disable();
  spin_lock(&print_lock);
  for (; *s; s++) {
    if (*s == '\n') putc_raw('\r');
    putc_raw(*s);
  }
  spin_unlock(&print_lock);
  write_sysreg(daif, daif);
}

int printf(const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vformat(line, sizeof line, fmt, ap);
  va_end(ap);
  emit(line);
  return n;
}

/* ---- checks ---- */
void pass(const char *name) { printf("PASS %s\n", name); }
void skip(const char *name, const char *why) { printf("SKIP %s: %s\n", name, why); }
void fail(const char *name, const char *fmt, ...) {
  char line[256];
  int n = 0;
  const char *p = "FAIL ";
  while (*p) line[n++] = *p++;
  for (p = name; *p && n < 100; p++) line[n++] = *p;
  line[n++] = ':';
  line[n++] = ' ';
  va_list ap;
  va_start(ap, fmt);
  n += vformat(line + n, (int)sizeof line - n - 1, fmt, ap);
  va_end(ap);
  line[n++] = '\n';
  line[n] = 0;
  atomic_add(&failures, 1);
  emit(line);
}

/* ---- PSCI ---- */
void psci_system_off(void) {
  hvc_call(PSCI_SYSTEM_OFF, 0, 0, 0);
  printf("SYSTEM_OFF returned\n");
  for (;;) wfi();
}

void halt(void) {
  u32 f = atomic_load(&failures);
  if (f) printf("RESULT: FAIL (%u)\n", f);
  else printf("RESULT: PASS\n");
  psci_system_off();
}

s64 cpu_on(u32 idx, cpu_fn_t fn, u64 ctx) {
  cpu_entry_fn[idx] = fn;
  dsb();
  return (s32)hvc_call(PSCI_CPU_ON, cpu_mpidr(idx), (u64)&secondary_entry, ctx);
}

s64 wait_affinity(u32 idx, s64 state, u32 loops) {
  s64 r = psci_affinity_info(cpu_mpidr(idx));
  while (r != state && loops--) {
    udelay(10);
    r = psci_affinity_info(cpu_mpidr(idx));
  }
  return r;
}

/* ---- GICv3 (IHI 0069) ---- */
#define GICD_CTLR 0x0000
#define GICD_TYPER 0x0004
#define GICR_CTLR 0x0000
#define GICR_TYPER 0x0008
#define GICR_WAKER 0x0014
#define GICR_IGROUPR0 0x0080
#define GICR_ISENABLER0 0x0100
#define GICR_ICENABLER0 0x0180
#define GICR_ISPENDR0 0x0200
#define GICR_ICPENDR0 0x0280
#define GICR_ICACTIVER0 0x0380
#define GICR_IPRIORITYR 0x0400
#define GICR_ICFGR1 0x0C04

static u64 gicr_of[MAXCPU];

/* Poll until (reg & mask) == 0; a GIC that never settles is reported, not hung on. */
static void poll_clear(u64 reg, u32 mask, const char *what) {
  for (u32 i = 0; i < 1000000; i++)
    if (!(mmio_read32(reg) & mask)) return;
  fail("gic", "cpu %u: %s never cleared (%x at %lx)", cpu_id(), what, mmio_read32(reg), reg);
}

/* Find this CPU's redistributor by GICR_TYPER.Affinity_Value (bits 63:32) rather than
 * assuming the order; GICR_TYPER.Last (bit 4) ends the scan. */
u64 gicr_base(u32 cpu) {
  if (gicr_of[cpu]) return gicr_of[cpu];
  u64 want = cpu_mpidr(cpu);
  for (u64 rd = GICR_BASE; rd < GICR_BASE + 123 * GICR_STRIDE; rd += GICR_STRIDE) {
    u64 typer = mmio_read64(rd + GICR_TYPER);
    if ((typer >> 32) == want) return gicr_of[cpu] = rd;
    if (typer & (1u << 4)) break;
  }
  return 0;
}

static void gic_dist_init(void) {
  /* Affinity routing on, Group 1 enabled (single security state: bit 1 is EnableGrp1). */
  mmio_write32(GICD_BASE + GICD_CTLR, (1u << 4) | (1u << 1));
  poll_clear(GICD_BASE + GICD_CTLR, 1u << 31, "GICD_CTLR.RWP");
}

static void gic_cpu_init(void) {
  u32 cpu = cpu_id();
  u64 rd = gicr_base(cpu);
  if (!rd) {
    fail("gic", "cpu %u: no redistributor with affinity %lx", cpu, cpu_mpidr(cpu));
    return;
  }
  /* Wake the redistributor: clear ProcessorSleep, wait for ChildrenAsleep to clear. */
  u32 w = mmio_read32(rd + GICR_WAKER);
  mmio_write32(rd + GICR_WAKER, w & ~(1u << 1));
  poll_clear(rd + GICR_WAKER, 1u << 2, "GICR_WAKER.ChildrenAsleep");
  u64 sgi = GIC_SGI_BASE(rd);
  mmio_write32(sgi + GICR_ICENABLER0, 0xffffffff);
  mmio_write32(sgi + GICR_ICPENDR0, 0xffffffff);
  mmio_write32(sgi + GICR_ICACTIVER0, 0xffffffff);
  mmio_write32(sgi + GICR_IGROUPR0, 0xffffffff); /* all SGIs/PPIs Group 1 */
  for (u32 i = 0; i < 32; i += 4) mmio_write32(sgi + GICR_IPRIORITYR + i, 0xa0a0a0a0);
  poll_clear(rd + GICR_CTLR, 1u << 3, "GICR_CTLR.RWP");
  /* CPU interface: system-register access, priority mask, Group 1 on. */
  write_sysreg(ICC_SRE_EL1, read_sysreg(ICC_SRE_EL1) | 1);
  isb();
  write_sysreg(ICC_PMR_EL1, 0xff);
  write_sysreg(ICC_BPR1_EL1, 0);
  write_sysreg(ICC_CTLR_EL1, 0); /* EOImode 0: EOIR both drops priority and deactivates */
  write_sysreg(ICC_IGRPEN1_EL1, 1);
  isb();
}

void gic_enable_ppi_sgi(u32 intid) {
  u64 sgi = GIC_SGI_BASE(gicr_base(cpu_id()));
  mmio_write32(sgi + GICR_ISENABLER0, 1u << intid);
  dsb();
}
void gic_disable_ppi_sgi(u32 intid) {
  u64 rd = gicr_base(cpu_id());
  mmio_write32(GIC_SGI_BASE(rd) + GICR_ICENABLER0, 1u << intid);
  poll_clear(rd + GICR_CTLR, 1u << 3, "GICR_CTLR.RWP");
}
int gic_ppi_sgi_pending(u32 intid) {
  return (mmio_read32(GIC_SGI_BASE(gicr_base(cpu_id())) + GICR_ISPENDR0) >> intid) & 1;
}

/* ICC_SGI1R_EL1: TargetList [15:0], Aff1 [23:16], INTID [27:24], Aff2 [39:32], IRM [40]. */
void gic_send_sgi(u32 cpu, u32 intid) {
  u64 m = cpu_mpidr(cpu);
  u64 v = (1ul << (m & 0xf)) | (((m >> 8) & 0xff) << 16) | ((u64)(intid & 0xf) << 24);
  dsb();
  write_sysreg(ICC_SGI1R_EL1, v);
  isb();
}
void gic_send_sgi_others(u32 intid) {
  dsb();
  write_sysreg(ICC_SGI1R_EL1, (1ul << 40) | ((u64)(intid & 0xf) << 24));
  isb();
}

/* ---- timer ---- */
void udelay(u64 us) {
  u64 f = cntfrq();
  u64 end = cntvct() + (f / 1000000) * us + 1;
  while (cntvct() < end) cpu_relax();
}

/* ---- exceptions ---- */
static const char *const kind_names[4] = {"sync", "irq", "fiq", "serror"};

void exc_dispatch(struct frame *f) {
  u32 k = (u32)f->kind & 3;
  if (k == 1) {
    for (;;) {
      u64 iar = read_sysreg(ICC_IAR1_EL1);
      u32 intid = (u32)iar & 0xffffff;
      if (intid >= 1020) break;
      void (*h)(u32) = irq_hook;
      if (h) h(intid);
      else printf("cpu %u: unexpected irq %u\n", cpu_id(), intid);
      write_sysreg(ICC_EOIR1_EL1, iar);
      isb();
    }
    return;
  }
  if (k == 0 && sync_hook && sync_hook(f)) return;
  fail("unexpected-exception", "cpu %u %s (vector %u) ESR %lx ELR %lx FAR %lx", cpu_id(), kind_names[k],
       (u32)f->kind, f->esr, f->elr, f->far);
  halt();
}

/* ---- boot ---- */
static void count_cpus(void) {
  /* AFFINITY_INFO on an MPIDR with no CPU is INVALID_PARAMETERS (DEN 0022, 5.1.8). */
  u32 n = 1;
  while (n < MAXCPU && psci_affinity_info(cpu_mpidr(n)) != PSCI_INVALID_PARAMETERS) n++;
  ncpus = n;
}

void secondary_c(u64 ctx) {
  u32 cpu = cpu_id();
  gic_cpu_init();
  cpu_fn_t fn = cpu_entry_fn[cpu];
  if (fn) fn(ctx);
  hvc_call(PSCI_CPU_OFF, 0, 0, 0);
  fail("cpu-off", "cpu %u: CPU_OFF returned", cpu);
  for (;;) wfi();
}

/* ---- flattened device tree (Devicetree Specification 0.4, chapter 5) ---- */
u64 boot_dtb;

static u32 be32(u64 a) { return __builtin_bswap32(*(volatile u32 *)a); }

int fdt_count_cpus(u64 dtb) {
  if (!dtb || (dtb & 3) || be32(dtb) != 0xd00dfeed) return -1;
  u64 p = dtb + be32(dtb + 8);           /* off_dt_struct */
  u64 end = p + be32(dtb + 36);          /* size_dt_struct */
  int depth = 0, in_cpus = 0, count = 0;
  while (p < end) {
    u32 tok = be32(p);
    p += 4;
    if (tok == 1) { /* FDT_BEGIN_NODE: name, NUL, padded to 4 */
      const volatile char *name = (const volatile char *)p;
      u32 len = 0;
      while (name[len]) len++;
      depth++;
      if (depth == 2 && len == 4 && name[0] == 'c' && name[1] == 'p' && name[2] == 'u' && name[3] == 's')
        in_cpus = 1;
      else if (in_cpus && depth == 3 && len >= 4 && name[0] == 'c' && name[1] == 'p' && name[2] == 'u' &&
               name[3] == '@')
        count++;
      p += (len + 4) & ~3ul;
    } else if (tok == 2) { /* FDT_END_NODE */
      if (depth == 2) in_cpus = 0;
      depth--;
    } else if (tok == 3) { /* FDT_PROP: len, nameoff, value */
      p += 8 + ((be32(p) + 3) & ~3u);
    } else if (tok == 4) { /* FDT_NOP */
    } else {
      break; /* FDT_END or garbage */
    }
  }
  return count;
}

void boot_c(u64 dtb) {
  boot_dtb = dtb;
  printf("armbox bare-metal runtime: x0 %lx\n", dtb);
  u64 el = (read_sysreg(currentel) >> 2) & 3;
  if (el != 1) fail("boot-el", "entered at EL%lu, want EL1", el);
  gic_dist_init();
  gic_cpu_init();
  count_cpus();
  printf("cpus: %u\n", ncpus);
  main();
  halt();
}
