/* Output-flood guest for the backpressure tests (test/output-backpressure.test.ts): the boot
 * CPU writes a known byte stream to the PL011 as fast as it can, polling FR.TXFF before each
 * byte as a driver must (DDI 0183G 3.3.3), and counts the FR reads that found the transmit
 * FIFO full. The stream is 64-byte lines: the line number in 8 hex digits, a space, 54
 * letters that depend on the line number, '\n' (no '\r'), so a reader can check every byte.
 * Built two ways (see the Makefile):
 *   flood.elf       - writes lines forever;
 *   flood-1m.elf    - writes LINES lines (1 MiB), then "flood done: <bytes> <busy polls>\n"
 *                     (both in 16 hex digits) and powers off with PSCI SYSTEM_OFF. */
#include "rt.h"

#ifndef LINES
#define LINES 0 /* 0: forever */
#endif
#define UART_DR 0x09000000ul
#define UART_FR 0x09000018ul
#define FR_TXFF (1u << 5)

static volatile u64 busy_polls;

static void put(u8 c) {
  while (mmio_read32(UART_FR) & FR_TXFF) busy_polls = busy_polls + 1;
  mmio_write32(UART_DR, c);
}

static void put_hex(u64 v, int digits) {
  for (int i = digits - 1; i >= 0; i--) put("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

static void put_str(const char *s) {
  while (*s) put((u8)*s++);
}

int main(void) {
  put_str("flood start\n");
  for (u64 line = 0; LINES == 0 || line < LINES; line++) {
    put_hex(line, 8);
    put(' ');
    for (u32 i = 0; i < 54; i++) put((u8)('a' + (line + i) % 26));
    put('\n');
  }
  put_str("flood done: ");
  put_hex((u64)LINES * 64, 16);
  put(' ');
  put_hex(busy_polls, 16);
  put('\n');
  psci_system_off();
}
