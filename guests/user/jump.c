/* setjmp/longjmp across nested calls, and volatile locals. */
#include <setjmp.h>
#include <stdio.h>

static jmp_buf env;
static int depth;

static void dive(int n) __attribute__((noinline));
static void dive(int n) {
  depth++;
  if (n == 0) longjmp(env, 42);
  dive(n - 1);
  printf("never\n");
}

static int try_div(int a, int b, jmp_buf *err) {
  if (b == 0) longjmp(*err, 7);
  return a / b;
}

int main(void) {
  volatile int count = 0;
  int r = setjmp(env);
  count++;
  if (r == 0) {
    printf("first pass\n");
    dive(100);
  }
  printf("returned %d after depth %d count %d\n", r, depth, count);
  jmp_buf err;
  for (int b = 3; b >= -1; b--) {
    if (setjmp(err) == 0) printf("100/%d=%d\n", b, try_div(100, b, &err));
    else printf("division by zero caught\n");
  }
  volatile int i = 0;
  jmp_buf loop;
  if (setjmp(loop) < 5) {
    i++;
    longjmp(loop, i);
  }
  printf("loop i=%d\n", i);
  return 0;
}
