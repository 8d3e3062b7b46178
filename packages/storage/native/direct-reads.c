/*
 * Reads of log data that is not in the page cache go past it (O_DIRECT), on the libuv thread pool.
 *
 * Why: a consumer catching up reads data written long ago. Through the page cache that costs the broker
 * the readahead, new page-cache pages, a copy into the read buffer and, within a memory limit, reclaim
 * of other pages to make room: about 0.7 ms of kernel CPU per MiB here, against under 0.1 with O_DIRECT
 * (docs/benchmarks.md). It also evicts the recent data that consumers close behind the producers read.
 *
 * Whether a range is cached is asked with cachestat(2) (Linux 6.5), which has no side effects; a
 * preadv2(RWF_NOWAIT) probe would start readahead into the page cache on a miss, the very thing avoided.
 * Only a range with no cached, dirty or under-writeback page is read direct; anything else is an
 * ordinary read, so data just written is always served from memory.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <raftka-napi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

/* File offsets, lengths and memory of direct reads are multiples of this (any logical block divides it). */
#define ALIGNMENT 4096
#ifndef __NR_cachestat
#define __NR_cachestat 451 /* the same on every architecture: added after the syscall tables were unified */
#endif

struct cachestat_range {
  uint64_t off;
  uint64_t len;
};

struct cachestat {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};

typedef struct {
  int fd;
  uint8_t *memory;
  size_t memory_length;
  int64_t position;
  size_t length;
  /* Results. */
  size_t start;
  size_t bytes;
  int went_direct;
  int error;
  /* errno of cachestat (ENOSYS: kernel before 6.5) or of the direct open/read (EINVAL: file system without
   * O_DIRECT) when the read fell back to the page cache for that reason; 0 otherwise. */
  int direct_unavailable;
  napi_ref buffer;
  napi_deferred deferred;
  napi_async_work work;
} Read;

static int range_uncached(Read *read, int *error) {
  struct cachestat_range range = {(uint64_t)read->position, (uint64_t)read->length};
  struct cachestat stat;
  if (syscall(__NR_cachestat, read->fd, &range, &stat, 0) != 0) {
    *error = errno;
    return 0;
  }
  return stat.nr_cache == 0 && stat.nr_dirty == 0 && stat.nr_writeback == 0;
}

/* Reads [position, position + length) into memory + start with start chosen so that the aligned range
 * around it lands on aligned memory; the caller's buffer has ALIGNMENT * 3 bytes of room for that. */
static int read_direct(Read *read) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", read->fd);
  int direct_fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (direct_fd < 0) return errno;
  uintptr_t address = (uintptr_t)read->memory;
  size_t lead = (ALIGNMENT - address % ALIGNMENT) % ALIGNMENT;
  size_t skew = (size_t)(read->position % ALIGNMENT);
  int64_t aligned_position = read->position - (int64_t)skew;
  size_t aligned_length = (skew + read->length + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
  if (lead + aligned_length > read->memory_length) {
    close(direct_fd);
    return ERANGE;
  }
  size_t done = 0;
  int error = 0;
  while (done < aligned_length) {
    ssize_t n = pread(direct_fd, read->memory + lead + done, aligned_length - done, aligned_position + (int64_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = errno;
      break;
    }
    if (n == 0) break;
    done += (size_t)n;
    /* A short read ends at the end of the file, whose last block is partial. */
    if (done % ALIGNMENT != 0) break;
  }
  close(direct_fd);
  if (error != 0) return error;
  read->start = lead + skew;
  read->bytes = done > skew ? (done - skew < read->length ? done - skew : read->length) : 0;
  read->went_direct = 1;
  return 0;
}

static void read_buffered(Read *read) {
  size_t done = 0;
  while (done < read->length) {
    ssize_t n = pread(read->fd, read->memory + done, read->length - done, read->position + (int64_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      read->error = errno;
      return;
    }
    if (n == 0) break;
    done += (size_t)n;
  }
  read->start = 0;
  read->bytes = done;
}

static void execute(napi_env env, void *data) {
  (void)env;
  Read *read = data;
  if (read->length > 0) {
    int error = 0;
    if (range_uncached(read, &error)) {
      error = read_direct(read);
      if (error == 0) return;
    }
    /* Only reasons that will not change by themselves stop direct reads; EINTR or EIO say nothing.
     * ENOENT and EACCES come from the reopen: /proc is not mounted, or not open to this process. */
    if (error == ENOSYS || error == EINVAL || error == EOPNOTSUPP || error == EPERM || error == ENOENT ||
        error == EACCES)
      read->direct_unavailable = error;
  }
  read_buffered(read);
}

static void settle(napi_env env, napi_status status, void *data) {
  Read *read = data;
  if (status == napi_ok && read->error == 0) {
    napi_value result, start, bytes, direct, unavailable;
    napi_create_object(env, &result);
    napi_create_int64(env, (int64_t)read->start, &start);
    napi_create_int64(env, (int64_t)read->bytes, &bytes);
    napi_get_boolean(env, read->went_direct, &direct);
    napi_set_named_property(env, result, "start", start);
    napi_set_named_property(env, result, "bytes", bytes);
    napi_set_named_property(env, result, "direct", direct);
    if (read->direct_unavailable != 0) {
      napi_create_string_utf8(env, uv_err_name(-read->direct_unavailable), NAPI_AUTO_LENGTH, &unavailable);
      napi_set_named_property(env, result, "directUnavailable", unavailable);
    }
    napi_resolve_deferred(env, read->deferred, result);
  } else {
    napi_reject_deferred(env, read->deferred, raftka_errno_error(env, read->error != 0 ? read->error : ECANCELED, "pread"));
  }
  napi_delete_reference(env, read->buffer);
  napi_delete_async_work(env, read->work);
  free(read);
}

/*
 * read(fd, buffer, position, length): Promise<{ start, bytes, direct, directUnavailable? }>.
 * The bytes are buffer[start, start + bytes); buffer needs length + 3 * 4096 bytes (room to align).
 */
static napi_value read_function(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t position, length;
  bool is_buffer = false;
  void *memory = NULL;
  size_t memory_length = 0;
  if (argc != 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[1], &memory, &memory_length) != napi_ok ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok || fd < 0 || position < 0 || length < 0 ||
      (uint64_t)length + 3 * ALIGNMENT > memory_length) {
    napi_throw_type_error(env, NULL,
                          "read(fd, buffer, position, length) needs a buffer of length + 12288 bytes");
    return NULL;
  }
  Read *read = calloc(1, sizeof *read);
  if (read == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  read->fd = fd;
  read->memory = memory;
  read->memory_length = memory_length;
  read->position = position;
  read->length = (size_t)length;
  napi_create_reference(env, argv[1], 1, &read->buffer);
  return raftka_start_work(env, "raftka:read", execute, settle, read, &read->deferred, &read->work);
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "read", NAPI_AUTO_LENGTH, read_function, NULL, &function);
  napi_set_named_property(env, exports, "read", function);
  return exports;
}
