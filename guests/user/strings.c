/* String functions of the C library (which use SIMD in glibc) and hand-written ones. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reverse(char *s) {
  for (size_t i = 0, j = strlen(s); i + 1 < j; i++, j--) { char c = s[i]; s[i] = s[j - 1]; s[j - 1] = c; }
}

int main(int argc, char **argv) {
  char buf[256];
  printf("argc=%d argv0-is-set=%d\n", argc, argv[0] != NULL);
  for (int i = 1; i < argc; i++) printf("arg%d=[%s] len=%zu\n", i, argv[i], strlen(argv[i]));
  strcpy(buf, "The quick brown fox jumps over the lazy dog");
  printf("len=%zu\n", strlen(buf));
  printf("strchr(q)=%s\n", strchr(buf, 'q'));
  printf("strrchr(o)=%s\n", strrchr(buf, 'o'));
  printf("strstr(fox)=%s\n", strstr(buf, "fox"));
  printf("strstr(cat)=%p\n", (void *)strstr(buf, "cat"));
  printf("strcmp=%d %d %d\n", strcmp("abc", "abd") < 0, strcmp("b", "a") > 0, strcmp("same", "same"));
  printf("strncmp=%d memcmp=%d\n", strncmp("abcdef", "abcxyz", 3), memcmp("\x01\x02\xff", "\x01\x02\x01", 3) > 0);
  for (char *p = buf; *p; p++) *p = (char)toupper((unsigned char)*p);
  printf("upper=%s\n", buf);
  reverse(buf);
  printf("reversed=%s\n", buf);
  memmove(buf + 4, buf, 10);
  buf[20] = 0;
  printf("memmove=%s\n", buf);
  memset(buf, 'x', 37);
  buf[37] = 0;
  printf("memset len=%zu\n", strlen(buf));
  char tok[] = "alpha, beta,,gamma ,delta";
  for (char *save, *t = strtok_r(tok, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) printf("tok=<%s>\n", t);
  printf("strtol=%ld %ld %ld\n", strtol("-12345", NULL, 10), strtol("0x7fff", NULL, 16), strtol("777", NULL, 8));
  printf("strtoul=%lu atoi=%d\n", strtoul("18446744073709551615", NULL, 10), atoi("  42abc"));
  snprintf(buf, sizeof buf, "%5d|%-5d|%05d|%x|%X|%o|%c|%10s|%-10s|%.3s", 42, 42, 42, 255, 255, 8, 'Z', "right", "left", "truncate");
  printf("%s\n", buf);
  printf("%lld %llu %hhd %hd\n", -9223372036854775807LL - 1, 18446744073709551615ULL, (char)300, (short)70000);
  char *dup = strdup("duplicate me");
  printf("strdup=%s spn=%zu cspn=%zu\n", dup, strspn("aaabbbccc", "ab"), strcspn("hello world", " "));
  free(dup);
  /* Unaligned and long copies exercise every memcpy path. */
  static char src[4096], dst[4096];
  for (int i = 0; i < 4096; i++) src[i] = (char)(i * 7 + 3);
  unsigned sum = 0;
  for (int off = 0; off < 16; off++) for (int len = 0; len < 300; len += 13) {
    memcpy(dst + off, src + (15 - off), len);
    for (int i = 0; i < len; i++) sum = sum * 31 + (unsigned char)dst[off + i];
  }
  printf("memcpy checksum=%08x\n", sum);
  return 0;
}
