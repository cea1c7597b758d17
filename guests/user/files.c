/* File-system system calls: create, write, seek, read back, stat, directory listing, rename, unlink. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/tmp";
  char d[512], f1[600], f2[600];
  snprintf(d, sizeof d, "%s/armbox-files-test.%d", dir, (int)getpid());
  if (mkdir(d, 0755) != 0) { perror("mkdir"); return 1; }
  snprintf(f1, sizeof f1, "%s/a.txt", d);
  snprintf(f2, sizeof f2, "%s/b.txt", d);
  int fd = open(f1, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  printf("open ok=%d\n", fd >= 0);
  for (int i = 0; i < 100; i++) dprintf(fd, "line %03d\n", i);
  close(fd);
  struct stat st;
  stat(f1, &st);
  printf("size=%lld regular=%d\n", (long long)st.st_size, S_ISREG(st.st_mode));
  fd = open(f1, O_RDWR);
  char buf[64];
  lseek(fd, 9 * 50, SEEK_SET);
  ssize_t n = read(fd, buf, 9);
  buf[n] = 0;
  printf("at 450: %s", buf);
  printf("pread: %zd ", pread(fd, buf, 8, 18));
  buf[8] = 0;
  printf("[%s]\n", buf);
  printf("end=%lld\n", (long long)lseek(fd, 0, SEEK_END));
  write(fd, "tail\n", 5);
  fstat(fd, &st);
  printf("new size=%lld\n", (long long)st.st_size);
  close(fd);
  FILE *f = fopen(f1, "r");
  int lines = 0;
  while (fgets(buf, sizeof buf, f)) lines++;
  fclose(f);
  printf("lines=%d\n", lines);
  printf("rename=%d\n", rename(f1, f2));
  printf("open old: %d errno=%s\n", open(f1, O_RDONLY), strerror(errno));
  f = fopen(f2, "a");
  fputs("appended\n", f);
  fclose(f);
  int dfd = open(f2, O_RDONLY);
  printf("size via lseek=%lld\n", (long long)lseek(dfd, 0, SEEK_END));
  close(dfd);
  DIR *dp = opendir(d);
  int entries = 0;
  struct dirent *e;
  while ((e = readdir(dp)) != NULL) if (e->d_name[0] != '.') { entries++; printf("entry %s\n", e->d_name); }
  closedir(dp);
  printf("entries=%d\n", entries);
  int p[2];
  pipe(p);
  write(p[1], "through a pipe\n", 15);
  n = read(p[0], buf, sizeof buf);
  printf("pipe read %zd: %.*s", n, (int)n, buf);
  close(p[0]);
  close(p[1]);
  char cwd[512];
  chdir(d);
  getcwd(cwd, sizeof cwd);
  printf("cwd ends with test dir=%d access=%d\n", strstr(cwd, "armbox-files-test") != NULL, access("b.txt", R_OK));
  printf("unlink=%d rmdir=%d\n", unlink(f2), rmdir(d));
  printf("isatty(1)=%d\n", isatty(1));
  return 0;
}
