/* qsort and a hand-written merge sort over pseudo-random data; checks they agree. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void merge_sort(int64_t *a, int64_t *tmp, size_t n) {
  if (n < 2) return;
  size_t m = n / 2;
  merge_sort(a, tmp, m);
  merge_sort(a + m, tmp, n - m);
  size_t i = 0, j = m, k = 0;
  while (i < m && j < n) tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
  while (i < m) tmp[k++] = a[i++];
  while (j < n) tmp[k++] = a[j++];
  memcpy(a, tmp, n * sizeof *a);
}

static uint64_t state = 88172645463325252ull;
static uint64_t xorshift(void) {
  state ^= state << 13; state ^= state >> 7; state ^= state << 17;
  return state;
}

int main(void) {
  enum { N = 20000 };
  int *a = malloc(N * sizeof *a);
  int64_t *b = malloc(N * sizeof *b), *t = malloc(N * sizeof *t);
  for (int i = 0; i < N; i++) { a[i] = (int)(xorshift() % 2000001) - 1000000; b[i] = (int64_t)xorshift(); }
  qsort(a, N, sizeof *a, cmp_int);
  merge_sort(b, t, N);
  int ok = 1;
  for (int i = 1; i < N; i++) if (a[i - 1] > a[i] || b[i - 1] > b[i]) ok = 0;
  long long sum = 0;
  for (int i = 0; i < N; i += 997) sum += a[i];
  printf("ints sorted=%d min=%d max=%d median=%d sample-sum=%lld\n", ok, a[0], a[N - 1], a[N / 2], sum);
  printf("int64 min=%lld max=%lld b[1234]=%lld\n", (long long)b[0], (long long)b[N - 1], (long long)b[1234]);
  const char *words[] = {"pear", "apple", "fig", "banana", "cherry", "kiwi", "date", "grape", "lemon", "apricot", "Zebra", "mango"};
  size_t nw = sizeof words / sizeof *words;
  char **w = malloc(nw * sizeof *w);
  for (size_t i = 0; i < nw; i++) w[i] = strdup(words[i]);
  qsort(w, nw, sizeof *w, cmp_str);
  for (size_t i = 0; i < nw; i++) printf("%s%c", w[i], i + 1 < nw ? ' ' : '\n');
  double d[16];
  for (int i = 0; i < 16; i++) d[i] = (double)(int64_t)(xorshift() % 100000) / 7.0 - 5000.0;
  qsort(d, 16, sizeof *d, cmp_dbl);
  for (int i = 0; i < 16; i++) printf("%.4f%c", d[i], i < 15 ? ' ' : '\n');
  return ok ? 0 : 1;
}
