// Tight loop of small TCP sends (or UDP datagrams) over loopback, for
// measuring what a probe on the send path costs per call.
//   sendloop sink               listen on 127.0.0.1:0, print the port, drain one connection
//   sendloop send PORT N SIZE   warm up, then time N sends of SIZE bytes; print ns per send
//   sendloop udpsink            bind UDP 127.0.0.1:0, print the port, drain until 1 s of quiet
//   sendloop udpsend PORT N SIZE  the same as send, with sendto(2) from an unconnected UDP socket
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int sink(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (bind(ls, (void *)&a, sizeof(a)) || listen(ls, 1) || getsockname(ls, (void *)&a, &len)) return perror("sink"), 1;
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  int c = accept(ls, NULL, NULL);
  static char buf[1 << 20];
  while (read(c, buf, sizeof(buf)) > 0) {
  }
  return 0;
}

static int sendloop(int port, long n, int size) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(s, (void *)&a, sizeof(a))) return perror("connect"), 1;
  char *buf = calloc(1, size);
  for (long i = 0; i < n / 10; i++)
    if (send(s, buf, size, 0) != size) return perror("send"), 1;
  double t0 = now_ns();
  for (long i = 0; i < n; i++)
    if (send(s, buf, size, 0) != size) return perror("send"), 1;
  double t1 = now_ns();
  printf("%.2f\n", (t1 - t0) / n);
  return 0;
}

static int udpsink(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  struct timeval quiet = {.tv_sec = 1};
  if (bind(s, (void *)&a, sizeof(a)) || getsockname(s, (void *)&a, &len)) return perror("udpsink"), 1;
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  static char buf[65536];
  // Blocks until the first datagram; then any second without one ends it.
  if (recv(s, buf, sizeof(buf), 0) < 0) return perror("udpsink"), 1;
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &quiet, sizeof(quiet));
  while (recv(s, buf, sizeof(buf), 0) >= 0) {
  }
  return 0;
}

// A datagram the sink's full buffer drops still passed every hook on the way: the cost is the sender's either way.
static int udpsend(int port, long n, int size) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  char *buf = calloc(1, size);
  for (long i = 0; i < n / 10; i++)
    if (sendto(s, buf, size, 0, (void *)&a, sizeof(a)) != size) return perror("sendto"), 1;
  double t0 = now_ns();
  for (long i = 0; i < n; i++)
    if (sendto(s, buf, size, 0, (void *)&a, sizeof(a)) != size) return perror("sendto"), 1;
  double t1 = now_ns();
  printf("%.2f\n", (t1 - t0) / n);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "sink")) return sink();
  if (argc == 5 && !strcmp(argv[1], "send")) return sendloop(atoi(argv[2]), atol(argv[3]), atoi(argv[4]));
  if (argc == 2 && !strcmp(argv[1], "udpsink")) return udpsink();
  if (argc == 5 && !strcmp(argv[1], "udpsend")) return udpsend(atoi(argv[2]), atol(argv[3]), atoi(argv[4]));
  fprintf(stderr, "usage: sendloop sink | sendloop send PORT N SIZE | sendloop udpsink | sendloop udpsend PORT N SIZE\n");
  return 2;
}
