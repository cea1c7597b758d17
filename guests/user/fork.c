/* fork, pipes between processes, waitpid statuses (exit code and signal). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  int p[2];
  pipe(p);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const char msg[] = "hello from the child";
    write(p[1], msg, sizeof msg);
    _exit(3);
  }
  close(p[1]);
  char buf[64] = {0};
  ssize_t n = read(p[0], buf, sizeof buf);
  int st;
  pid_t w = waitpid(pid, &st, 0);
  printf("read %zd [%s] waited-right=%d exited=%d code=%d\n", n, buf, w == pid, WIFEXITED(st), WEXITSTATUS(st));
  int counter = 100;
  fflush(stdout);
  pid = fork();
  if (pid == 0) { counter++; printf("child counter=%d\n", counter); fflush(stdout); exit(0); }
  waitpid(pid, &st, 0);
  printf("parent counter=%d\n", counter);
  fflush(stdout);
  pid = fork();
  if (pid == 0) abort();
  waitpid(pid, &st, 0);
  printf("signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
  return 0;
}
