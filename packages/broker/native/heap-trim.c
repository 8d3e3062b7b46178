/*
 * Hands the C heap's free memory back to the system (glibc's malloc_trim), on the libuv thread pool.
 *
 * Why: buffers for large Produce frames and Fetch reads come from malloc's heap (the broker's glibc tunables
 * keep allocations up to 8 MiB there, so that each ~1 MB frame does not cost a fresh mmap). Once the buffer
 * pool lets them go, the holes they leave between longer-lived allocations stay resident: free() returns
 * memory to the system only from the top of the heap, and only past the trim threshold. After a consumer
 * caught up beside producers, 114 MiB of a 160 MiB heap was free and resident; malloc_trim(0), which
 * releases the pages of every free chunk, took the broker's RSS from 264 to 182 MiB (docs/benchmarks.md).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <malloc.h>
#include <node_api.h>
#include <raftka-napi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
  int64_t released_bytes;
  napi_deferred deferred;
  napi_async_work work;
} Trim;

/* Resident bytes of this process (the second field of /proc/self/statm, in pages); -1 if unreadable. */
static int64_t resident_bytes(void) {
  FILE *statm = fopen("/proc/self/statm", "r");
  if (statm == NULL) return -1;
  long long size = 0, resident = 0;
  int fields = fscanf(statm, "%lld %lld", &size, &resident);
  fclose(statm);
  return fields == 2 ? (int64_t)resident * sysconf(_SC_PAGESIZE) : -1;
}

static void execute(napi_env env, void *data) {
  (void)env;
  Trim *trim = data;
  int64_t before = resident_bytes();
  malloc_trim(0);
  int64_t after = resident_bytes();
  /* Other threads allocate meanwhile, so the difference is an estimate; it never counts as negative. */
  trim->released_bytes = before >= 0 && after >= 0 && before > after ? before - after : 0;
}

static void settle(napi_env env, napi_status status, void *data) {
  (void)status;
  Trim *trim = data;
  napi_value released;
  napi_create_int64(env, trim->released_bytes, &released);
  napi_resolve_deferred(env, trim->deferred, released);
  napi_delete_async_work(env, trim->work);
  free(trim);
}

/* trim(): Promise<number>, the bytes the process's RSS fell by while the heap was trimmed. */
static napi_value trim_function(napi_env env, napi_callback_info info) {
  (void)info;
  Trim *trim = calloc(1, sizeof *trim);
  if (trim == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  return raftka_start_work(env, "raftka:heap-trim", execute, settle, trim, &trim->deferred, &trim->work);
}

/* freeBytes(): bytes in malloc's free chunks, resident or already released (mallinfo2's fordblks). */
static napi_value free_bytes_function(napi_env env, napi_callback_info info) {
  (void)info;
  struct mallinfo2 heap = mallinfo2();
  napi_value result;
  napi_create_double(env, (double)heap.fordblks, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim_function, NULL, &function);
  napi_set_named_property(env, exports, "trim", function);
  napi_create_function(env, "freeBytes", NAPI_AUTO_LENGTH, free_bytes_function, NULL, &function);
  napi_set_named_property(env, exports, "freeBytes", function);
  return exports;
}
