// Tight loops of one syscall, for measuring what a probe costs per call.
//   syscallloop write FILE N SIZE   N write(2)s of SIZE bytes to FILE (rewound every 4096 writes)
//   syscallloop getpid N            N getpid(2)s: a syscall no probe is about
//   syscallloop call N              N calls of tally_bench_target, the bench's uprobe target
//   syscallloop write-rate FILE RATE SECONDS
//                                   64-byte write(2)s at RATE per second for SECONDS (in 1 ms
//                                   batches), then prints the writes made and the seconds taken
// Each warms up first, then prints ns per call.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* noinline and used: the call must stay a call, at a symbol, for a uprobe to hit it. */
__attribute__((noinline, used)) long tally_bench_target(long x) {
  __asm__ volatile("" ::: "memory");
  return x + 1;
}

int main(int argc, char **argv) {
  if (argc >= 5 && strcmp(argv[1], "write") == 0) {
    long n = atol(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    char buf[4096];
    memset(buf, 'w', sizeof(buf));
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || size > sizeof(buf)) return perror("open"), 1;
    for (long i = 0; i < n / 10; i++) {
      if (write(fd, buf, size) < 0) return perror("write"), 1;
      if (i % 4096 == 4095) lseek(fd, 0, SEEK_SET);
    }
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
      if (write(fd, buf, size) < 0) return perror("write"), 1;
      if (i % 4096 == 4095) lseek(fd, 0, SEEK_SET);
    }
    printf("%.1f\n", (now_ns() - t0) / n);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "getpid") == 0) {
    long n = atol(argv[2]);
    for (long i = 0; i < n / 10; i++) syscall(SYS_getpid);
    double t0 = now_ns();
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    printf("%.1f\n", (now_ns() - t0) / n);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "call") == 0) {
    long n = atol(argv[2]), s = 0;
    for (long i = 0; i < n / 10; i++) s += tally_bench_target(i);
    double t0 = now_ns();
    for (long i = 0; i < n; i++) s += tally_bench_target(i);
    printf("%.1f\n", (now_ns() - t0) / n);
    return s == 42 ? 3 : 0; /* s is used, so the loop stays */
  }
  if (argc >= 5 && strcmp(argv[1], "write-rate") == 0) {
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    char buf[64];
    memset(buf, 'w', sizeof(buf));
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return perror("open"), 1;
    double t0 = now_ns(), end = t0 + seconds * 1e9;
    long done = 0;
    /* Each millisecond, catch up to where the rate says we should be: a slow batch is made up by the next. */
    for (double t = t0; t < end; t = now_ns()) {
      long due = (long)((t - t0) / 1e9 * rate);
      for (; done < due; done++) {
        if (write(fd, buf, sizeof(buf)) < 0) return perror("write"), 1;
        if (done % 4096 == 4095) lseek(fd, 0, SEEK_SET);
      }
      struct timespec ms = {0, 1000000};
      nanosleep(&ms, NULL);
    }
    printf("%ld %.3f\n", done, (now_ns() - t0) / 1e9);
    return 0;
  }
  fprintf(stderr, "usage: syscallloop write FILE N SIZE | getpid N | call N | write-rate FILE RATE SECONDS\n");
  return 2;
}
