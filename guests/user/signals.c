/* Signal handlers: raise() with SA_SIGINFO, masks, sigaltstack-free nesting, then abort(). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t hits, last;

static void on_usr1(int sig) { hits++; last = sig; }
static void on_info(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  hits += 10;
  last = si->si_signo == sig ? sig : -1;
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  raise(SIGUSR1);
  printf("after raise: hits=%d last=%d\n", (int)hits, (int)last);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_info;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR2, &sa, NULL);
  kill(getpid(), SIGUSR2);
  printf("after kill: hits=%d last=%d\n", (int)hits, (int)last);
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, &old);
  raise(SIGUSR1);
  printf("blocked: hits=%d\n", (int)hits);
  sigprocmask(SIG_SETMASK, &old, NULL);
  printf("unblocked: hits=%d\n", (int)hits);
  signal(SIGUSR1, SIG_IGN);
  raise(SIGUSR1);
  printf("ignored: hits=%d\n", (int)hits);
  fflush(stdout);
  abort();
}
