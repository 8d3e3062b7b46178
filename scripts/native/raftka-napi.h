/*
 * What this repository's N-API addons share: starting work on the libuv pool behind a promise, and errors
 * shaped like Node's fs errors. scripts/build-native.mjs puts this directory on every addon's include path.
 */
#ifndef RAFTKA_NAPI_H
#define RAFTKA_NAPI_H

#include <node_api.h>
#include <uv.h>

/*
 * Runs `execute(data)` on the libuv pool, then `complete` on the main thread, and returns the promise that
 * `complete` must settle through `*deferred`, deleting `*work` too. `name` labels the work in async hooks.
 */
static inline napi_value raftka_start_work(napi_env env, const char *name, napi_async_execute_callback execute,
                                           napi_async_complete_callback complete, void *data,
                                           napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, resource_name;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_create_async_work(env, NULL, resource_name, execute, complete, data, work);
  napi_queue_async_work(env, *work);
  return promise;
}

/* An Error for `error` (a positive errno) from `syscall`: code the errno's name, errno negative, as Node's. */
static inline napi_value raftka_errno_error(napi_env env, int error, const char *syscall) {
  napi_value code, message, exception, number, syscall_value;
  napi_create_string_utf8(env, uv_err_name(-error), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, uv_strerror(-error), NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &exception);
  napi_create_int32(env, -error, &number);
  napi_set_named_property(env, exception, "errno", number);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, exception, "syscall", syscall_value);
  return exception;
}

#endif
