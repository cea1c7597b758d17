/* 64-bit integer arithmetic: division, remainders, overflow wrap, 128-bit products. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

static volatile int64_t vs[] = {0, 1, -1, 7, -7, 1000000007, -1000000007, INT64_MAX, INT64_MIN, 0x123456789abcdefLL, -0x123456789abcdefLL, 3, -3};

int main(void) {
  int n = sizeof vs / sizeof *vs;
  uint64_t h = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      int64_t a = vs[i], b = vs[j];
      int64_t q = 0, r = 0;
      uint64_t uq = 0, ur = 0;
      if (b != 0 && !(a == INT64_MIN && b == -1)) { q = a / b; r = a % b; }
      if (b != 0) { uq = (uint64_t)a / (uint64_t)b; ur = (uint64_t)a % (uint64_t)b; }
      uint64_t m = (uint64_t)a * (uint64_t)b;
      __int128 p = (__int128)a * b;
      unsigned __int128 up = (unsigned __int128)(uint64_t)a * (uint64_t)b;
      h = h * 31 + (uint64_t)q;
      h = h * 31 + (uint64_t)r;
      h = h * 31 + uq + ur;
      h = h * 31 + m + (uint64_t)(p >> 64) + (uint64_t)(up >> 64);
      if (i == j || i + j == n - 1)
        printf("%" PRId64 " %" PRId64 ": q=%" PRId64 " r=%" PRId64 " uq=%" PRIu64 " hi=%" PRId64 "\n", a, b, q, r, uq, (int64_t)(p >> 64));
    }
  printf("hash=%016" PRIx64 "\n", h);
  uint32_t a32 = 0xffffffffu, b32 = 7;
  int32_t s32 = INT32_MIN;
  printf("u32: %u %u %u  s32: %d %d\n", a32 / b32, a32 % b32, a32 * b32, s32 / 7, s32 % 7);
  uint64_t f = 1;
  for (int i = 1; i <= 25; i++) { f *= (uint64_t)i; printf("%d!=%" PRIu64 "%c", i, f, i % 5 ? ' ' : '\n'); }
  uint64_t x = 0x0123456789abcdefULL;
  printf("shifts: %" PRIx64 " %" PRIx64 " %" PRId64 "\n", x << 13, x >> 7, (int64_t)(x | 0x8000000000000000ULL) >> 9);
  /* modular exponentiation with 128-bit intermediate */
  uint64_t mod = 0xffffffff00000001ULL, base = 7, e = 0xfffffffeULL, res = 1;
  while (e) { if (e & 1) res = (unsigned __int128)res * base % mod; base = (unsigned __int128)base * base % mod; e >>= 1; }
  printf("powmod=%" PRIu64 "\n", res);
  return 0;
}
