/* CPU-bound benchmark: integer hashing, a sieve, matrix multiply (double), string scanning. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef SCALE
#define SCALE 16
#endif

static uint8_t sieve[2000000];
static double A[96][96], B[96][96], C[96][96];

int main(void) {
  uint64_t check = 0;
  for (int round = 0; round < SCALE; round++) {
    uint32_t h = 2166136261u + (uint32_t)round;
    for (int i = 0; i < 1500000; i++) { h ^= (uint32_t)i; h *= 16777619u; h = (h << 5) | (h >> 27); }
    check = check * 31 + h;
    memset(sieve, 0, sizeof sieve);
    int primes = 0;
    for (int i = 2; i < (int)sizeof sieve; i++) {
      if (sieve[i]) continue;
      primes++;
      for (long j = (long)i * i; j < (long)sizeof sieve; j += i) sieve[j] = 1;
    }
    check = check * 31 + (uint64_t)primes;
    for (int i = 0; i < 96; i++)
      for (int j = 0; j < 96; j++) { A[i][j] = (i * 7 + j * 3 + round) % 17 - 8; B[i][j] = (i * 5 - j * 11 + round) % 13 / 4.0; }
    for (int i = 0; i < 96; i++)
      for (int j = 0; j < 96; j++) {
        double s = 0;
        for (int k = 0; k < 96; k++) s += A[i][k] * B[k][j];
        C[i][j] = s;
      }
    double tr = 0;
    for (int i = 0; i < 96; i++) tr += C[i][i] + C[i][95 - i];
    check = check * 31 + (uint64_t)(int64_t)(tr * 1000);
  }
  printf("bench checksum=%016llx\n", (unsigned long long)check);
  return 0;
}
