/* Deep and branching recursion: fib, ackermann, hanoi, permutations. */
#include <stdio.h>

static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static long ack(long m, long n) {
  if (m == 0) return n + 1;
  if (n == 0) return ack(m - 1, 1);
  return ack(m - 1, ack(m, n - 1));
}
static long moves;
static void hanoi(int n, int a, int b, int c) {
  if (n == 0) return;
  hanoi(n - 1, a, c, b);
  moves++;
  hanoi(n - 1, c, b, a);
}
static int perm[9], used[9];
static long perms, checksum;
static void permute(int k, int n) {
  if (k == n) {
    perms++;
    long v = 0;
    for (int i = 0; i < n; i++) v = v * 10 + perm[i];
    checksum = (checksum * 31 + v) % 1000000007;
    return;
  }
  for (int i = 0; i < n; i++)
    if (!used[i]) { used[i] = 1; perm[k] = i; permute(k + 1, n); used[i] = 0; }
}
static int depth(int n) { volatile char pad[64]; pad[n % 64] = (char)n; return n == 0 ? pad[0] : 1 + depth(n - 1); }

int main(void) {
  for (int i = 0; i <= 25; i += 5) printf("fib(%d)=%ld\n", i, fib(i));
  printf("ack(2,3)=%ld ack(3,5)=%ld\n", ack(2, 3), ack(3, 5));
  hanoi(18, 1, 2, 3);
  printf("hanoi(18) moves=%ld\n", moves);
  permute(0, 8);
  printf("perms=%ld checksum=%ld\n", perms, checksum);
  printf("depth=%d\n", depth(20000));
  return 0;
}
