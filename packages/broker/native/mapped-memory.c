/*
 * Memory of its own for reads ahead of a consumer's next Fetch, which the node can hand back to the system
 * the moment a catch-up ends.
 *
 * Why: buffers from malloc's heap or V8 go back to the system only after V8 collects their objects (old
 * ones at the next mark-compact, which may be minutes away) and glibc trims the holes they leave; until
 * then a consumer's catch-up kept 20-50 MiB more of the broker's RSS (docs/benchmarks.md). An anonymous
 * mapping stays mapped for the process's life, and madvise(MADV_DONTNEED) drops its pages at once; the
 * next use faults in zeroed pages again.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <raftka-napi.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static void unmap(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

/* map(bytes): a Buffer over a new private anonymous mapping of `bytes` (page-aligned, so direct reads
 * need no alignment room at its start); unmapped when the Buffer is collected. */
static napi_value map_function(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t bytes = 0;
  if (argc < 1 || napi_get_value_int64(env, argv[0], &bytes) != napi_ok || bytes <= 0) {
    napi_throw_type_error(env, "EINVAL", "map(bytes) needs a positive byte count");
    return NULL;
  }
  void *memory = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    napi_throw(env, raftka_errno_error(env, errno, "mmap"));
    return NULL;
  }
  napi_value buffer;
  if (napi_create_external_buffer(env, (size_t)bytes, memory, unmap, (void *)(uintptr_t)bytes, &buffer) != napi_ok) {
    munmap(memory, (size_t)bytes);
    napi_throw_error(env, "ENOMEM", "could not wrap the mapping in a Buffer");
    return NULL;
  }
  return buffer;
}

/* release(buffer): drops the pages of a Buffer from map(); its contents read as zeros afterwards. */
static napi_value release_function(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  size_t length = 0;
  if (argc < 1 || napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "release(buffer) needs a Buffer from map()");
    return NULL;
  }
  long page = sysconf(_SC_PAGESIZE);
  if ((uintptr_t)data % (uintptr_t)page != 0) {
    napi_throw_type_error(env, "EINVAL", "release(buffer) needs a whole Buffer from map(), not a slice");
    return NULL;
  }
  if (madvise(data, length, MADV_DONTNEED) != 0) {
    napi_throw(env, raftka_errno_error(env, errno, "madvise"));
    return NULL;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "map", NAPI_AUTO_LENGTH, map_function, NULL, &function);
  napi_set_named_property(env, exports, "map", function);
  napi_create_function(env, "release", NAPI_AUTO_LENGTH, release_function, NULL, &function);
  napi_set_named_property(env, exports, "release", function);
  return exports;
}
