/*
 * What an fdatasync costs after an append, by what the append wrote into (docs/benchmarks.md, "An urgent
 * fsync in a microtask"): threads each append to their own file and fdatasync after every append, as
 * the broker's acks=all path does per partition, and the p50/p90/p99/max of the fdatasyncs are printed.
 *
 *   append       plain appends: the file grows, ext4 allocates at writeback (a journal commit each)
 *   reserved     appends into blocks reserved with fallocate(FALLOC_FL_KEEP_SIZE) (log.preallocate)
 *   overwrite    appends over blocks written and synced before (no metadata: no journal commit)
 *   zero-ahead   appends while a thread per file writes zeros 16 MiB ahead with O_DIRECT
 *
 *   gcc -O2 -Wall -pthread -o /tmp/fdatasync-modes scripts/bench/fdatasync-modes/fdatasync-modes.c
 *   /tmp/fdatasync-modes MODE [APPEND_BYTES=131072] [APPENDS_PER_FILE=1000] [FILES=8] [DIR=/tmp]
 *
 * Each append is followed by its fdatasync and a 2 ms pause (about 40 MB/s a file at 128 KiB, the
 * benchmark's acks=all half rate over 8 partitions). The files are removed at the end.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum mode { APPEND, RESERVED, OVERWRITE, ZERO_AHEAD };
static const char *mode_names[] = {"append", "reserved", "overwrite", "zero-ahead"};

struct file_run {
  int fd, direct_fd;
  char *buffer;
  double *latencies_ms;
  volatile off_t appended;
  volatile int done;
};

static size_t append_bytes;
static int appends_per_file;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void fail(const char *what) {
  perror(what);
  exit(1);
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void *append_and_sync(void *argument) {
  struct file_run *run = argument;
  off_t offset = 0;
  for (int i = 0; i < appends_per_file; i++) {
    if (pwrite(run->fd, run->buffer, append_bytes, offset) != (ssize_t)append_bytes) fail("pwrite");
    offset += (off_t)append_bytes;
    run->appended = offset;
    double started = now_ms();
    if (fdatasync(run->fd) != 0) fail("fdatasync");
    run->latencies_ms[i] = now_ms() - started;
    usleep(2000);
  }
  return NULL;
}

static void *zero_ahead(void *argument) {
  struct file_run *run = argument;
  const size_t step = 4 << 20;
  void *zeros;
  if (posix_memalign(&zeros, 4096, step) != 0) fail("posix_memalign");
  memset(zeros, 0, step);
  off_t zeroed = 0;
  while (!run->done) {
    if (zeroed < run->appended + (16 << 20)) {
      if (pwrite(run->direct_fd, zeros, step, zeroed) != (ssize_t)step) fail("pwrite O_DIRECT");
      zeroed += (off_t)step;
    } else {
      usleep(500);
    }
  }
  free(zeros);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fdatasync-modes append|reserved|overwrite|zero-ahead [APPEND_BYTES] [APPENDS_PER_FILE] [FILES] [DIR]\n");
    return 2;
  }
  int mode = -1;
  for (int m = 0; m < 4; m++)
    if (strcmp(argv[1], mode_names[m]) == 0) mode = m;
  if (mode < 0) {
    fprintf(stderr, "fdatasync-modes: unknown mode %s: use append, reserved, overwrite or zero-ahead\n", argv[1]);
    return 2;
  }
  append_bytes = argc > 2 ? strtoul(argv[2], NULL, 10) : 131072;
  appends_per_file = argc > 3 ? atoi(argv[3]) : 1000;
  int files = argc > 4 ? atoi(argv[4]) : 8;
  const char *dir = argc > 5 ? argv[5] : "/tmp";
  if (append_bytes == 0 || appends_per_file < 1 || files < 1 || files > 64) {
    fprintf(stderr, "fdatasync-modes: APPEND_BYTES and APPENDS_PER_FILE must be positive, FILES 1-64\n");
    return 2;
  }

  struct file_run runs[64];
  char paths[64][4096];
  off_t total = (off_t)append_bytes * appends_per_file;
  for (int f = 0; f < files; f++) {
    snprintf(paths[f], sizeof paths[f], "%s/fdatasync-modes-%d-%d", dir, (int)getpid(), f);
    struct file_run *run = &runs[f];
    memset(run, 0, sizeof *run);
    run->fd = open(paths[f], O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (run->fd < 0) fail(paths[f]);
    run->buffer = malloc(append_bytes);
    run->latencies_ms = calloc((size_t)appends_per_file, sizeof(double));
    if (!run->buffer || !run->latencies_ms) fail("malloc");
    memset(run->buffer, 'x', append_bytes);
    if (mode == RESERVED && fallocate(run->fd, FALLOC_FL_KEEP_SIZE, 0, total) != 0) fail("fallocate");
    if (mode == OVERWRITE) {
      char *zeros = calloc(1, 1 << 20);
      for (off_t at = 0; at < total; at += 1 << 20)
        if (pwrite(run->fd, zeros, 1 << 20, at) != 1 << 20) fail("pwrite zeros");
      if (fsync(run->fd) != 0) fail("fsync");
      free(zeros);
    }
    if (mode == ZERO_AHEAD) {
      run->direct_fd = open(paths[f], O_RDWR | O_DIRECT);
      if (run->direct_fd < 0) fail("open O_DIRECT");
    }
  }
  sync();

  pthread_t appenders[64], zeroers[64];
  if (mode == ZERO_AHEAD) {
    for (int f = 0; f < files; f++) pthread_create(&zeroers[f], NULL, zero_ahead, &runs[f]);
    usleep(200000);
  }
  for (int f = 0; f < files; f++) pthread_create(&appenders[f], NULL, append_and_sync, &runs[f]);
  for (int f = 0; f < files; f++) pthread_join(appenders[f], NULL);
  if (mode == ZERO_AHEAD) {
    for (int f = 0; f < files; f++) {
      runs[f].done = 1;
      pthread_join(zeroers[f], NULL);
    }
  }

  long count = (long)files * appends_per_file, n = 0;
  double *all = malloc(sizeof(double) * (size_t)count);
  if (!all) fail("malloc");
  for (int f = 0; f < files; f++) {
    for (int i = 0; i < appends_per_file; i++) all[n++] = runs[f].latencies_ms[i];
    close(runs[f].fd);
    if (mode == ZERO_AHEAD) close(runs[f].direct_fd);
    unlink(paths[f]);
  }
  qsort(all, (size_t)count, sizeof(double), compare_doubles);
  printf("%-10s %d files, %zu-byte appends, %d each: fdatasync p50 %.2f p90 %.2f p99 %.2f max %.2f ms\n",
         mode_names[mode], files, append_bytes, appends_per_file, all[count / 2], all[count * 9 / 10],
         all[count * 99 / 100], all[count - 1]);
  return 0;
}
