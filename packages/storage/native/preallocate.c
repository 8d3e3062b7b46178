/*
 * fallocate(2) with FALLOC_FL_KEEP_SIZE for Node, on the libuv thread pool (Node has no fallocate).
 *
 * Why: an append into blocks that are already allocated skips ext4's delayed allocation (a block
 * reservation per write, the allocator and extent tree updates at writeback). Writing 3 GiB of 1 MiB
 * appends with an fdatasync after each took 0.24-0.27 ms of CPU per MiB with blocks reserved ahead
 * and 0.31-0.34 without (scripts/bench/segment-writes.mjs, docs/benchmarks.md). KEEP_SIZE reserves
 * the blocks without moving the end of the file, so the file still holds exactly the log.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <raftka-napi.h>
#include <stdlib.h>

typedef struct {
  int fd;
  int64_t offset;
  int64_t length;
  int error;
  napi_deferred deferred;
  napi_async_work work;
} Reservation;

static void reserve(napi_env env, void *data) {
  (void)env;
  Reservation *reservation = data;
  int result;
  do {
    result = fallocate(reservation->fd, FALLOC_FL_KEEP_SIZE, reservation->offset, reservation->length);
  } while (result != 0 && errno == EINTR);
  reservation->error = result == 0 ? 0 : errno;
}

static void settle(napi_env env, napi_status status, void *data) {
  Reservation *reservation = data;
  if (status == napi_ok && reservation->error == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, reservation->deferred, undefined);
  } else {
    int error = reservation->error != 0 ? reservation->error : ECANCELED;
    napi_reject_deferred(env, reservation->deferred, raftka_errno_error(env, error, "fallocate"));
  }
  napi_delete_async_work(env, reservation->work);
  free(reservation);
}

/* preallocate(fd, offset, length): Promise<void>, rejected with an Error whose code is the errno name. */
static napi_value preallocate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t offset, length;
  if (argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || fd < 0 || offset < 0 || length <= 0) {
    napi_throw_type_error(env, NULL, "preallocate(fd, offset, length) takes a descriptor and a byte range");
    return NULL;
  }
  Reservation *reservation = calloc(1, sizeof *reservation);
  if (reservation == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  reservation->fd = fd;
  reservation->offset = offset;
  reservation->length = length;
  return raftka_start_work(env, "raftka:fallocate", reserve, settle, reservation, &reservation->deferred,
                           &reservation->work);
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "preallocate", NAPI_AUTO_LENGTH, preallocate, NULL, &function);
  napi_set_named_property(env, exports, "preallocate", function);
  return exports;
}
