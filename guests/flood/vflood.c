/* Output-flood guest for the virtio console (test/console-backpressure-e2e.test.ts): the
 * same byte stream as flood.c (see there: "flood start\n", then 64-byte numbered lines), but
 * written through a virtio console (`--device virtio-serial-device`, VIRTIO 1.2 §5.3) instead
 * of the PL011, with a minimal polled driver: no interrupts, the transmitq only (port 0's
 * receiveq is never made ready, which §5.3.6 allows a driver that only writes).
 *
 * NBUF buffers of BUF bytes (BUF / 64 whole lines) go round the transmitq; the driver fills
 * the next free one, makes it available and notifies, then waits for a used one by reading
 * the used ring's idx: while the host is behind the device leaves the buffers unused, and the
 * vCPU spins here (counted in `busy_polls`). A buffer is filled from one of 26 line templates
 * (the letters depend on the line number mod 26) and the line number, a word at a time, so the
 * guest can produce far more than a PL011 driver can (one MMIO write per buffer, not per byte).
 * Built two ways (see the Makefile):
 *   vflood.elf      - writes lines forever;
 *   vflood-4m.elf   - writes LINES lines (4 MiB), then "flood done: <bytes> <busy polls>\n"
 *                     (both in 16 hex digits), waits for the device to take it and powers off.
 * Errors (no virtio console, a refused FEATURES_OK) go to the PL011 and end the guest. */
#include "rt.h"

#ifndef LINES
#define LINES 0 /* 0: forever */
#endif

#define VIRTIO_BASE 0x0a000000ul
#define VIRTIO_SLOTS 32
#define VIRTIO_STRIDE 0x200ul
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEVICE_FEATURES 0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_STATUS 0x070
#define R_QUEUE_DESC_LOW 0x080
#define R_QUEUE_DESC_HIGH 0x084
#define R_QUEUE_DRIVER_LOW 0x090
#define R_QUEUE_DRIVER_HIGH 0x094
#define R_QUEUE_DEVICE_LOW 0x0a0
#define R_QUEUE_DEVICE_HIGH 0x0a4
#define S_ACKNOWLEDGE 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u
#define MAGIC 0x74726976u
#define ID_CONSOLE 3u
#define TXQ 1u

#define NBUF 8 /* = the queue size */
#define BUF (16 * 1024)
#define AVAIL_F_NO_INTERRUPT 1

struct desc {
  u64 addr;
  u32 len;
  unsigned short flags, next;
};
struct avail {
  unsigned short flags, idx, ring[NBUF], used_event;
};
struct used_elem {
  u32 id, len;
};
struct used {
  unsigned short flags, idx;
  struct used_elem ring[NBUF];
  unsigned short avail_event;
};

static struct desc descs[NBUF] __attribute__((aligned(16)));
static struct avail avail __attribute__((aligned(16)));
static struct used used __attribute__((aligned(16)));
static u8 bufs[NBUF][BUF] __attribute__((aligned(64)));
/* tmpl[r]: the line of a line number n with n % 26 == r, without its number. */
static u64 tmpl[26][8];

static u64 base;
static unsigned short next_avail, seen_used;
static volatile u64 busy_polls;

static void die(const char *what) {
  printf("vflood: %s\n", what);
  psci_system_off();
}

static u64 find_console(void) {
  for (u64 n = 0; n < VIRTIO_SLOTS; n++) {
    u64 b = VIRTIO_BASE + n * VIRTIO_STRIDE;
    if (mmio_read32(b + R_MAGIC) == MAGIC && mmio_read32(b + R_VERSION) == 2 &&
        mmio_read32(b + R_DEVICE_ID) == ID_CONSOLE)
      return b;
  }
  return 0;
}

static void setup(void) {
  base = find_console();
  if (!base) die("no virtio console (run with --device virtio-serial-device)");
  mmio_write32(base + R_STATUS, 0);
  mmio_write32(base + R_STATUS, S_ACKNOWLEDGE);
  mmio_write32(base + R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
  /* Features: VIRTIO_F_VERSION_1 (bit 32) only. */
  mmio_write32(base + R_DRIVER_FEATURES_SEL, 0);
  mmio_write32(base + R_DRIVER_FEATURES, 0);
  mmio_write32(base + R_DRIVER_FEATURES_SEL, 1);
  mmio_write32(base + R_DRIVER_FEATURES, 1);
  mmio_write32(base + R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
  if (!(mmio_read32(base + R_STATUS) & S_FEATURES_OK)) die("FEATURES_OK refused");
  mmio_write32(base + R_QUEUE_SEL, TXQ);
  if (mmio_read32(base + R_QUEUE_NUM_MAX) < NBUF) die("transmitq too small");
  mmio_write32(base + R_QUEUE_NUM, NBUF);
  mmio_write32(base + R_QUEUE_DESC_LOW, (u32)(u64)descs);
  mmio_write32(base + R_QUEUE_DESC_HIGH, (u32)((u64)descs >> 32));
  mmio_write32(base + R_QUEUE_DRIVER_LOW, (u32)(u64)&avail);
  mmio_write32(base + R_QUEUE_DRIVER_HIGH, (u32)((u64)&avail >> 32));
  mmio_write32(base + R_QUEUE_DEVICE_LOW, (u32)(u64)&used);
  mmio_write32(base + R_QUEUE_DEVICE_HIGH, (u32)((u64)&used >> 32));
  avail.flags = AVAIL_F_NO_INTERRUPT;
  mmio_write32(base + R_QUEUE_READY, 1);
  mmio_write32(base + R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
  for (u32 r = 0; r < 26; r++) {
    u8 *t = (u8 *)tmpl[r];
    t[8] = ' ';
    for (u32 i = 0; i < 54; i++) t[9 + i] = (u8)('a' + (r + i) % 26);
    t[63] = '\n';
  }
}

static unsigned short used_idx(void) {
  unsigned short u = *(volatile unsigned short *)&used.idx;
  dmb();
  return u;
}

/* Waits until fewer than `in_flight` buffers are still with the device. */
static void wait_free(unsigned short in_flight) {
  while ((unsigned short)(next_avail - seen_used) >= in_flight) {
    unsigned short u = used_idx();
    if (u == seen_used) busy_polls = busy_polls + 1;
    seen_used = u;
  }
}

/* Gives buffer `slot` (len bytes) to the device. */
static void send(u32 slot, u32 len) {
  descs[slot].addr = (u64)bufs[slot];
  descs[slot].len = len;
  descs[slot].flags = 0;
  descs[slot].next = 0;
  avail.ring[next_avail % NBUF] = (unsigned short)slot;
  dmb();
  next_avail++;
  *(volatile unsigned short *)&avail.idx = next_avail;
  dsb();
  mmio_write32(base + R_QUEUE_NOTIFY, TXQ);
}

static u64 hex8(u64 v) {
  u64 w = 0;
  for (int i = 0; i < 8; i++) w |= (u64)(u8)"0123456789abcdef"[(v >> (28 - 4 * i)) & 15] << (8 * i);
  return w;
}

static u32 put_str(u8 *p, const char *s) {
  u32 n = 0;
  while (s[n]) {
    p[n] = (u8)s[n];
    n++;
  }
  return n;
}

static u32 put_hex16(u8 *p, u64 v) {
  for (int i = 0; i < 16; i++) p[i] = (u8)"0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
  return 16;
}

int main(void) {
  setup();
  u64 line = 0;
  u32 r = 0; /* line % 26 */
  int first = 1;
  while (LINES == 0 || line < LINES) {
    wait_free(NBUF);
    u32 slot = next_avail % NBUF;
    u8 *p = bufs[slot];
    u32 len = 0;
    if (first) {
      len = put_str(p, "flood start\n");
      first = 0;
    }
    /* Whole lines, each 8-byte aligned in the buffer after the first buffer's 12 bytes: copy
     * byte-wise there (once), by words elsewhere. */
    while (len + 64 <= BUF && (LINES == 0 || line < LINES)) {
      u8 *l = p + len;
      if (((u64)l & 7) == 0) {
        u64 *w = (u64 *)l;
        const u64 *t = tmpl[r];
        w[0] = hex8(line);
        for (int i = 1; i < 8; i++) w[i] = t[i];
      } else {
        u64 h = hex8(line);
        const u8 *t = (const u8 *)tmpl[r];
        for (int i = 0; i < 8; i++) l[i] = (u8)(h >> (8 * i));
        for (int i = 8; i < 64; i++) l[i] = t[i];
      }
      len += 64;
      line++;
      if (++r == 26) r = 0;
    }
    send(slot, len);
  }
  wait_free(NBUF);
  u32 slot = next_avail % NBUF;
  u8 *p = bufs[slot];
  u32 len = put_str(p, "flood done: ");
  len += put_hex16(p + len, (u64)LINES * 64);
  p[len++] = ' ';
  len += put_hex16(p + len, busy_polls);
  p[len++] = '\n';
  send(slot, len);
  wait_free(1); /* everything sent */
  psci_system_off();
}
