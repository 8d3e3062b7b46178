/*
 * Puts the process's helper threads (every thread but the caller, the event loop's) under SCHED_BATCH.
 *
 * Why: a write or an fsync handed to libuv's pool wakes a pool thread, and under Linux's default policy a
 * woken thread may preempt the thread that woke it. On a machine whose CPUs are all busy (two CPUs shared
 * with a load generator) the event loop then lost its CPU to its own pool thread at every hand-off and
 * waited for it back: a V8 profile charged 9% of the broker's wall time to the calls that only queue a
 * write. SCHED_BATCH threads never preempt on wake-up; they run when a CPU is free or the current thread's
 * slice ends (docs/benchmarks.md, "Helper threads under SCHED_BATCH").
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <dirent.h>
#include <errno.h>
#include <node_api.h>
#include <raftka-napi.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static void set_int(napi_env env, napi_value object, const char *name, int value) {
  napi_value number;
  napi_create_int32(env, value, &number);
  napi_set_named_property(env, object, name, number);
}

/*
 * scheduleHelpersAsBatch(): { helpers, batch, changed, error? }: the threads other than the caller, how
 * many of them are now SCHED_BATCH, how many this call moved there, and the name of the first error a thread
 * refused with (EPERM, say), absent if none. Threads under any policy other than the default (an operator's
 * chrt) are left as they are. Throws if /proc/self/task cannot be read.
 */
static napi_value schedule_helpers_as_batch(napi_env env, napi_callback_info info) {
  (void)info;
  pid_t caller = (pid_t)syscall(SYS_gettid);
  DIR *tasks = opendir("/proc/self/task");
  if (tasks == NULL) {
    napi_throw(env, raftka_errno_error(env, errno, "opendir"));
    return NULL;
  }
  int helpers = 0, batch = 0, changed = 0, first_error = 0;
  struct dirent *entry;
  while ((entry = readdir(tasks)) != NULL) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    pid_t thread = (pid_t)atoi(entry->d_name);
    if (thread == caller) continue;
    int policy = sched_getscheduler(thread);
    if (policy == -1) {
      /* ESRCH: the thread exited since the directory was read. */
      if (errno == ESRCH) continue;
      helpers++;
      if (first_error == 0) first_error = errno;
      continue;
    }
    helpers++;
    if (policy == SCHED_BATCH) {
      batch++;
      continue;
    }
    if (policy != SCHED_OTHER) continue;
    struct sched_param param = {.sched_priority = 0};
    if (sched_setscheduler(thread, SCHED_BATCH, &param) == 0) {
      batch++;
      changed++;
    } else if (errno == ESRCH) {
      helpers--;
    } else if (first_error == 0) {
      first_error = errno;
    }
  }
  closedir(tasks);
  napi_value result;
  napi_create_object(env, &result);
  set_int(env, result, "helpers", helpers);
  set_int(env, result, "batch", batch);
  set_int(env, result, "changed", changed);
  if (first_error != 0) {
    napi_value name;
    napi_create_string_utf8(env, uv_err_name(-first_error), NAPI_AUTO_LENGTH, &name);
    napi_set_named_property(env, result, "error", name);
  }
  return result;
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "scheduleHelpersAsBatch", NAPI_AUTO_LENGTH, schedule_helpers_as_batch, NULL,
                       &function);
  napi_set_named_property(env, exports, "scheduleHelpersAsBatch", function);
  return exports;
}
