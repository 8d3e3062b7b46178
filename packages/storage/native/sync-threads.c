/*
 * fdatasync(2) and fsync(2) for Node on four threads of this addon's own, instead of libuv's pool.
 *
 * Why: `raftka start` puts libuv's pool under SCHED_BATCH (packages/broker/native/helper-threads.c) so that a
 * thread woken for a segment write cannot preempt the event loop. A pool thread whose fsync ends is woken
 * too, and under SCHED_BATCH it then waited for a CPU before the event loop heard of it: the broker's
 * fsync times at half rate rose, the p99 up to about double (docs/benchmarks.md, "Helper threads under
 * SCHED_BATCH").
 * These threads keep the default policy, which the sweep leaves alone because of their name ("raftka-sync"),
 * and fsyncs no longer hold pool threads that writes wait for.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <raftka-napi.h>
#include <stdlib.h>
#include <unistd.h>

#define SYNC_THREADS 4

/*
 * One environment's (the main thread's, or a worker's) way back to JavaScript and its syncs in flight. Never
 * freed: a sync thread may still hold a job of an environment torn down meanwhile, and looks at `closed`.
 */
typedef struct {
  napi_threadsafe_function settled;
  int64_t in_flight;
  int closed;
} Instance;

typedef struct Job {
  int fd;
  int metadata;
  int error;
  napi_deferred deferred;
  Instance *instance;
  struct Job *next;
} Job;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queued = PTHREAD_COND_INITIALIZER;
static Job *head, *tail;
static int threads_started;

static void *sync_loop(void *unused) {
  (void)unused;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (head == NULL) pthread_cond_wait(&queued, &lock);
    Job *job = head;
    head = job->next;
    if (head == NULL) tail = NULL;
    pthread_mutex_unlock(&lock);
    int result;
    do {
      result = job->metadata ? fsync(job->fd) : fdatasync(job->fd);
    } while (result != 0 && errno == EINTR);
    job->error = result == 0 ? 0 : errno;
    /* Under the lock, so that the environment's teardown cannot close the way back meanwhile. */
    pthread_mutex_lock(&lock);
    if (job->instance->closed ||
        napi_call_threadsafe_function(job->instance->settled, job, napi_tsfn_nonblocking) != napi_ok)
      free(job);
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

/* On the environment's thread: settles the job's promise; the last one in flight lets the loop exit again. */
static void settle(napi_env env, napi_value callback, void *context, void *data) {
  (void)callback;
  (void)context;
  Job *job = data;
  if (env != NULL) {
    if (job->error == 0) {
      napi_value undefined;
      napi_get_undefined(env, &undefined);
      napi_resolve_deferred(env, job->deferred, undefined);
    } else {
      napi_reject_deferred(env, job->deferred,
                           raftka_errno_error(env, job->error, job->metadata ? "fsync" : "fdatasync"));
    }
    if (--job->instance->in_flight == 0) napi_unref_threadsafe_function(env, job->instance->settled);
  }
  free(job);
}

static int start_threads(void) {
  for (int index = 0; index < SYNC_THREADS; index++) {
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    /* They call nothing deep: a small stack keeps them cheap. */
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    int error = pthread_create(&thread, &attributes, sync_loop, NULL);
    pthread_attr_destroy(&attributes);
    if (error != 0) return error;
    /* Named here, before JavaScript runs again, so that no sweep can find one unnamed. */
    pthread_setname_np(thread, "raftka-sync");
  }
  return 0;
}

/* sync(fd, metadata): Promise<void>, fsync when `metadata` is true, else fdatasync; rejected with an Error
 * whose code is the errno name. */
static napi_value sync_function(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  bool metadata;
  if (argc != 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_bool(env, argv[1], &metadata) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sync(fd, metadata) takes a descriptor and a boolean");
    return NULL;
  }
  Instance *instance;
  napi_get_instance_data(env, (void **)&instance);
  pthread_mutex_lock(&lock);
  int error = threads_started ? 0 : start_threads();
  if (error == 0) threads_started = 1;
  pthread_mutex_unlock(&lock);
  if (error != 0) {
    napi_throw(env, raftka_errno_error(env, error, "pthread_create"));
    return NULL;
  }
  Job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  job->fd = fd;
  job->metadata = metadata;
  job->instance = instance;
  napi_value promise;
  napi_create_promise(env, &job->deferred, &promise);
  /* A sync in flight keeps the event loop alive, as libuv's own fs requests do. */
  if (instance->in_flight++ == 0) napi_ref_threadsafe_function(env, instance->settled);
  pthread_mutex_lock(&lock);
  if (tail == NULL) head = job;
  else tail->next = job;
  tail = job;
  pthread_cond_signal(&queued);
  pthread_mutex_unlock(&lock);
  return promise;
}

/* Registered after the threadsafe function, so it runs before Node's own teardown of that function. */
static void close_instance(void *data) {
  Instance *instance = data;
  pthread_mutex_lock(&lock);
  instance->closed = 1;
  pthread_mutex_unlock(&lock);
}

NAPI_MODULE_INIT() {
  Instance *instance = calloc(1, sizeof *instance);
  if (instance == NULL) return NULL;
  napi_value name;
  napi_create_string_utf8(env, "raftka:sync", NAPI_AUTO_LENGTH, &name);
  napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, settle, &instance->settled);
  napi_unref_threadsafe_function(env, instance->settled);
  napi_add_env_cleanup_hook(env, close_instance, instance);
  napi_set_instance_data(env, instance, NULL, NULL);
  napi_value function;
  napi_create_function(env, "sync", NAPI_AUTO_LENGTH, sync_function, NULL, &function);
  napi_set_named_property(env, exports, "sync", function);
  return exports;
}
