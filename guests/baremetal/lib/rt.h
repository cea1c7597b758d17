/*
 * armbox bare-metal guest runtime: boot, per-CPU stacks, exception vectors, PL011
 * console, printf-lite, PSCI over HVC (SMCCC), GICv3 and the arch timer.
 * Targets QEMU's `virt` board (and armbox's copy of it) with the MMU off at EL1.
 */
#ifndef RT_H
#define RT_H

typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned char u8;

#define MAXCPU 8
#define NULL ((void *)0)

/* ---- barriers and system registers ---- */
#define dsb() __asm__ volatile("dsb sy" ::: "memory")
#define dmb() __asm__ volatile("dmb ish" ::: "memory")
#define isb() __asm__ volatile("isb" ::: "memory")
#define wfi() __asm__ volatile("wfi" ::: "memory")
#define cpu_relax() __asm__ volatile("yield" ::: "memory")
#define irq_enable() __asm__ volatile("msr daifclr, #2" ::: "memory")
#define irq_disable() __asm__ volatile("msr daifset, #2" ::: "memory")

#define read_sysreg(r) ({ u64 __v; __asm__ volatile("mrs %0, " #r : "=r"(__v)::"memory"); __v; })
#define write_sysreg(r, v) __asm__ volatile("msr " #r ", %0" ::"r"((u64)(v)) : "memory")

/* GICv3 CPU interface registers by encoding (IHI 0069, 12.2). */
#define ICC_IAR1_EL1 S3_0_C12_C12_0
#define ICC_EOIR1_EL1 S3_0_C12_C12_1
#define ICC_BPR1_EL1 S3_0_C12_C12_3
#define ICC_CTLR_EL1 S3_0_C12_C12_4
#define ICC_SRE_EL1 S3_0_C12_C12_5
#define ICC_IGRPEN1_EL1 S3_0_C12_C12_7
#define ICC_PMR_EL1 S3_0_C4_C6_0
#define ICC_SGI1R_EL1 S3_0_C12_C11_5
#define ICC_RPR_EL1 S3_0_C12_C11_3
#define ICC_HPPIR1_EL1 S3_0_C12_C12_2

static inline u32 mmio_read32(u64 a) { return *(volatile u32 *)a; }
static inline void mmio_write32(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline u64 mmio_read64(u64 a) { return *(volatile u64 *)a; }

/* ---- identity ---- */
/* CPU index from MPIDR: QEMU virt with GICv3 numbers CPUs Aff0 0..15 within Aff1 clusters. */
static inline u32 cpu_id(void) {
  u64 m = read_sysreg(mpidr_el1);
  return (u32)((m & 0xff) + ((m >> 8) & 0xff) * 16);
}
static inline u64 cpu_mpidr(u32 idx) { return ((u64)(idx / 16) << 8) | (idx % 16); }
/* x0 at entry: the DTB address (QEMU passes 0 to a bare-metal ELF). */
extern u64 boot_dtb;
/* Number of cpu@N nodes under /cpus, or -1 when dtb is not a flattened device tree. */
int fdt_count_cpus(u64 dtb);
extern u32 ncpus;  /* number of CPUs found at boot (AFFINITY_INFO probe) */

/* ---- console ---- */
void putc_raw(char c);
int printf(const char *fmt, ...);
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

/* ---- locks and atomics (LL/SC: Cortex-A57 has no LSE) ---- */
typedef struct { volatile u32 v; } spinlock_t;
void spin_lock(spinlock_t *l);
void spin_unlock(spinlock_t *l);
static inline u32 atomic_add(volatile u32 *p, u32 n) {
  return __atomic_add_fetch(p, n, __ATOMIC_SEQ_CST);
}
static inline u32 atomic_load(volatile u32 *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void atomic_store(volatile u32 *p, u32 v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline u64 atomic_load64(volatile u64 *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void atomic_store64(volatile u64 *p, u64 v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* ---- checks ---- */
extern volatile u32 failures;
void pass(const char *name);
void fail(const char *name, const char *fmt, ...);
void skip(const char *name, const char *why);
/* check(cond, name, fmt, ...) prints PASS name or FAIL name: details */
#define check(cond, name, ...) do { if (cond) pass(name); else fail(name, __VA_ARGS__); } while (0)
void halt(void) __attribute__((noreturn));

/* ---- PSCI (DEN 0022) over HVC, SMCCC ---- */
#define PSCI_VERSION 0x84000000u
#define PSCI_CPU_SUSPEND 0xC4000001u
#define PSCI_CPU_OFF 0x84000002u
#define PSCI_CPU_ON 0xC4000003u
#define PSCI_AFFINITY_INFO 0xC4000004u
#define PSCI_MIGRATE_INFO_TYPE 0x84000006u
#define PSCI_SYSTEM_OFF 0x84000008u
#define PSCI_SYSTEM_RESET 0x84000009u
#define PSCI_FEATURES 0x8400000Au
#define PSCI_SYSTEM_SUSPEND 0xC400000Eu
#define SMCCC_VERSION 0x80000000u

#define PSCI_SUCCESS 0
#define PSCI_NOT_SUPPORTED (-1)
#define PSCI_INVALID_PARAMETERS (-2)
#define PSCI_DENIED (-3)
#define PSCI_ALREADY_ON (-4)
#define PSCI_ON_PENDING (-5)
#define PSCI_INTERNAL_FAILURE (-6)
#define PSCI_NOT_PRESENT (-7)
#define PSCI_DISABLED (-8)
#define PSCI_INVALID_ADDRESS (-9)

#define AFF_ON 0
#define AFF_OFF 1
#define AFF_ON_PENDING 2

s64 hvc_call(u64 fn, u64 a1, u64 a2, u64 a3);
static inline s64 psci_affinity_info(u64 mpidr) { return (s32)hvc_call(PSCI_AFFINITY_INFO, mpidr, 0, 0); }
void psci_system_off(void) __attribute__((noreturn));

/* The address a CPU_ON'd CPU starts at (lib/start.S). It sets up its stack, FP, vectors,
 * and the GIC CPU interface, then calls cpu_entry_fn[cpu](context_id). */
extern void secondary_entry(void);
typedef void (*cpu_fn_t)(u64 ctx);
extern cpu_fn_t volatile cpu_entry_fn[MAXCPU];
/* CPU_ON cpu idx at secondary_entry, running fn(ctx); returns the PSCI result. When fn
 * returns, the CPU calls CPU_OFF. */
s64 cpu_on(u32 idx, cpu_fn_t fn, u64 ctx);
/* Spin until AFFINITY_INFO(idx) == state, at most `loops` polls; returns the last value. */
s64 wait_affinity(u32 idx, s64 state, u32 loops);

/* ---- exceptions ---- */
struct frame {
  u64 x[31];
  u64 elr, spsr, esr, far, kind;
};
/* A test's synchronous exception handler: return 1 when handled (adjust f->elr). */
extern int (*volatile sync_hook)(struct frame *f);
/* IRQ handler per INTID (called between IAR1 and EOIR1). Shared by all CPUs. */
extern void (*volatile irq_hook)(u32 intid);
#define ESR_EC(e) (((e) >> 26) & 0x3f)
#define ESR_ISS(e) ((e) & 0x1ffffff)

/* ---- GICv3 ---- */
#define GICD_BASE 0x08000000ul
#define GICR_BASE 0x080A0000ul
#define GICR_STRIDE 0x20000ul
#define GIC_SGI_BASE(rd) ((rd) + 0x10000)
u64 gicr_base(u32 cpu);
void gic_enable_ppi_sgi(u32 intid);   /* on this CPU's redistributor */
void gic_disable_ppi_sgi(u32 intid);
int gic_ppi_sgi_pending(u32 intid);   /* GICR_ISPENDR0 bit */
/* SGI intid to the CPU with index cpu (ICC_SGI1R_EL1 TargetList). */
void gic_send_sgi(u32 cpu, u32 intid);
/* SGI to every CPU but this one (IRM = 1). */
void gic_send_sgi_others(u32 intid);

/* ---- arch timer ---- */
#define TIMER_VIRT_PPI 27
static inline u64 cntvct(void) { isb(); return read_sysreg(cntvct_el0); }
static inline u64 cntfrq(void) { return read_sysreg(cntfrq_el0); }
/* Delay for at least us microseconds by the counter. */
void udelay(u64 us);

/* Wait (WFI, IRQs taken between waits) until cond holds; IRQs enabled at exit. The mask
 * around the test closes the check-then-WFI race: WFI wakes on a pending IRQ even when
 * PSTATE.I masks it. */
#define WAIT_IRQ(cond) do { irq_disable(); while (!(cond)) { wfi(); irq_enable(); isb(); irq_disable(); } irq_enable(); } while (0)

int main(void);

#endif
