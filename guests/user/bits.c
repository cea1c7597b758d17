/* Bit twiddling: popcount, clz/ctz, rotations, byte swaps, bit reversal, extracts. */
#include <stdint.h>
#include <stdio.h>

static uint32_t rev32(uint32_t x) {
  x = (x >> 1 & 0x55555555) | (x & 0x55555555) << 1;
  x = (x >> 2 & 0x33333333) | (x & 0x33333333) << 2;
  x = (x >> 4 & 0x0f0f0f0f) | (x & 0x0f0f0f0f) << 4;
  return __builtin_bswap32(x);
}

struct bf { unsigned a : 3, b : 7, c : 13; signed d : 5; };

int main(void) {
  volatile uint64_t vals[] = {0, 1, 0x80, 0xff00ff00ff00ff00ULL, 0x8000000000000000ULL, 0x123456789abcdef0ULL, ~0ULL, 0x5555aaaa3333cccc};
  uint64_t h = 0;
  for (unsigned i = 0; i < sizeof vals / sizeof *vals; i++) {
    uint64_t v = vals[i];
    uint32_t w = (uint32_t)v ^ (uint32_t)(v >> 32);
    int pc = __builtin_popcountll(v);
    int lz = v ? __builtin_clzll(v) : 64;
    int tz = v ? __builtin_ctzll(v) : 64;
    uint64_t rl = (v << 17) | (v >> 47);
    printf("%016llx pop=%d clz=%d ctz=%d rol17=%016llx bswap=%016llx rev32=%08x clrsb=%d parity=%d\n", (unsigned long long)v, pc, lz, tz,
           (unsigned long long)rl, (unsigned long long)__builtin_bswap64(v), rev32(w), __builtin_clrsbll((long long)v), __builtin_parityll(v));
    h = h * 1099511628211ULL ^ (v & -v) ^ (v & (v - 1)) ^ (uint64_t)__builtin_bswap16((uint16_t)v);
  }
  struct bf b = {5, 100, 4000, -7};
  for (int i = 0; i < 10; i++) { b.a += 3; b.b ^= (unsigned)i * 13; b.c -= 777; b.d += 5; }
  printf("bitfield %u %u %u %d\n", b.a, b.b, b.c, b.d);
  uint32_t gray = 0;
  for (uint32_t i = 0; i < 1000; i++) gray += (i ^ (i >> 1)) * (i & 15);
  int8_t sx = (int8_t)0x9c;
  int16_t sh = (int16_t)0x8001;
  printf("hash=%016llx gray=%u sext=%d %d %lld\n", (unsigned long long)h, gray, sx, sh, (long long)(int32_t)0xdeadbeef);
  uint64_t m = 0;
  for (int i = 0; i < 64; i += 3) m |= 1ULL << i;
  printf("mask=%016llx extract=%llx\n", (unsigned long long)m, (unsigned long long)((m >> 13) & 0x7ff));
  return 0;
}
