/* A NULL-pointer load with no handler: the process dies with SIGSEGV (exit 139). */
#include <stdio.h>
int main(int argc, char **argv) {
  (void)argv;
  volatile int *p = (int *)(long)(argc - 1);
  printf("before the fault\n");
  fflush(stdout);
  return *p;
}
