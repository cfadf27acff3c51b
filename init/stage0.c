/*
 * aaOS stage0: the first PID 1.
 *
 * A `bun build --compile` binary finds its embedded code through
 * /proc/self/exe, so it cannot start before /proc exists. stage0 mounts
 * /proc and /dev (devtmpfs), then execve()s the agent kernel, which from then
 * on *is* PID 1 and does everything else (init/index.ts). Nothing more here.
 *
 * Built static with musl: musl-gcc -static -Os -s -o stage0 stage0.c
 */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef AAOS_KERNEL_PATH
#define AAOS_KERNEL_PATH "/usr/bin/aaos-kernel"
#endif

static void say(const char *a, const char *b) {
  (void)!write(2, "stage0: ", 8);
  (void)!write(2, a, strlen(a));
  if (b) {
    (void)!write(2, ": ", 2);
    (void)!write(2, b, strlen(b));
  }
  (void)!write(2, "\n", 1);
}

static void mount_or_say(const char *src, const char *dst, const char *type, unsigned long flags) {
  mkdir(dst, 0755); /* fails harmlessly on a read-only root where it exists */
  if (mount(src, dst, type, flags, 0) != 0 && errno != EBUSY) say(dst, strerror(errno));
}

static long long ns(clockid_t c) {
  struct timespec t;
  if (clock_gettime(c, &t) != 0) return -1;
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv, char **envp) {
  (void)argc;
  /* how long Linux took to run us (CLOCK_BOOTTIME), and CLOCK_REALTIME to line
   * our exec up with the kernel's own clock (Date.now() reads it; nothing steps
   * it before the kernel reads this): the boot report's time-to-main */
  static char clk[80];
  long long boot_ns = ns(CLOCK_BOOTTIME);
  mount_or_say("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  /* CONFIG_DEVTMPFS_MOUNT may already have mounted it: EBUSY is fine */
  mount_or_say("devtmpfs", "/dev", "devtmpfs", MS_NOSUID);

  static char *defenv[] = {"PATH=/usr/bin:/bin", "HOME=/run", "TMPDIR=/tmp", "LANG=C.UTF-8", 0};
  char *env[64];
  int n = 0;
  for (char **d = defenv; *d; d++) env[n++] = *d;
  /* keep what the kernel passed us (unknown command line words), minus duplicates of ours */
  for (char **e = envp; e && *e && n < 62; e++) {
    int dup = 0;
    for (char **d = defenv; *d; d++)
      if (strncmp(*e, *d, strchr(*d, '=') - *d + 1) == 0) dup = 1;
    if (!dup) env[n++] = *e;
  }
  snprintf(clk, sizeof clk, "AAOS_STAGE0_CLOCK=%lld,%lld", boot_ns, ns(CLOCK_REALTIME));
  env[n++] = clk;
  env[n] = 0;

  char *args[] = {"aaos-kernel", "--init", 0};
  (void)argv;
  execve(AAOS_KERNEL_PATH, args, env);
  say("execve " AAOS_KERNEL_PATH, strerror(errno));
  /* PID 1 must not exit (the kernel would panic and the message scroll away) */
  for (;;) pause();
}
