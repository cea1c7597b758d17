/*
 * The seed scenario's shared record (issue 4, deliverable 5): every vCPU writes what it
 * did here, at a fixed guest physical address, so that the VMM-side test can read it
 * from guest RAM. Offsets are part of the test's contract (test/seed-scenario.test.ts):
 * only append fields. All fields are 64-bit so that every access is aligned (MMU off).
 */
#ifndef SEED_H
#define SEED_H
#include "rt.h"

#define SEED_ADDR 0x40070000ul /* below the program (0x40080000), above the DTB */
#define SEED_MAGIC 0x5345454453434e31ul /* "1NCSDEES" */
#define SEED_CHECKS 32

/* phase (written by vCPU 0) */
#define PH_BOOT 0
#define PH_STARTED 1 /* vCPUs 2 and 3 are running, vCPU 1 is being started */
#define PH_MIDDLE 2  /* vCPU 1 is OFF, vCPU 2 waits in WFI, vCPU 3 counts: the save window */
#define PH_CPU_ON 3  /* vCPU 0 is about to CPU_ON vCPU 1 */
#define PH_STOP 4    /* vCPUs 2 and 3 are told to stop */
#define PH_REPORT 5  /* the final report is being printed */

#define CTX_FIRST 0x5eed0001ul
#define CTX_SECOND 0x5eed0002ul
#define SGI_STOP 9

struct seed {
  u64 magic;                /* 0x00 */
  u64 phase;                /* 0x08 */
  u64 v1_entries;           /* 0x10: times vCPU 1 entered its function */
  u64 v1_ctx[2];            /* 0x18: context ID of each entry */
  u64 v2_started;           /* 0x28 */
  u64 v2_wakes;             /* 0x30: WFI returns (spurious ones included) */
  u64 v2_ack;               /* 0x38: vCPU 2 saw stop */
  u64 v3_started;           /* 0x40 */
  u64 v3_count;             /* 0x48: incremented continuously by vCPU 3 */
  u64 v3_ack;               /* 0x50: vCPU 3 saw stop; v3_count is final */
  u64 stop;                 /* 0x58: set by vCPU 0 */
  u64 checks;               /* 0x60: AFFINITY_INFO checks done */
  u64 cpu_on_result;        /* 0x68: PSCI result of the CPU_ON naming vCPU 1 */
  s64 aff[SEED_CHECKS];     /* 0x70: AFFINITY_INFO(vCPU 1) results */
  u64 v3_sample[SEED_CHECKS]; /* 0x170: vCPU 3's count at each check */
};
#define SEED ((volatile struct seed *)SEED_ADDR)

#endif
