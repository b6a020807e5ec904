/*
 * sideloop's native extension API: run your own work on a sideloop loop.
 *
 * A task is described by a small table of callbacks (sideloop_task_vtable).
 * sideloop runs it exactly like its built-in tasks: a Future for JS, cancel,
 * timeouts, `pending`, `stats()`, shutdown and process exit all work unchanged.
 *
 * There is no link-time dependency: the extension obtains the function table
 * at run time from the EventLoop object it was given (sideloop_get_api), so
 * it always talks to the very copy of sideloop that owns that loop, however
 * many copies a process has loaded. docs/native-api.md explains the rules;
 * the short version:
 *
 *   thread      callback / function
 *   main (JS)   sideloop_api.submit, vtable.to_js, vtable.free
 *   loop        vtable.start, vtable.cancel, sideloop_api.complete,
 *               sideloop_api.fail, sideloop_api.aborting
 *
 * Versioning: SIDELOOP_ABI_VERSION changes only when a change breaks
 * compiled extensions. Compatible additions append fields to the end of
 * sideloop_api and sideloop_task_vtable; the `size` field of each tells the
 * other side how much of the struct it may read.
 */
#ifndef SIDELOOP_H_
#define SIDELOOP_H_

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIDELOOP_ABI_VERSION 1

/* The property of an EventLoop (a key made with Symbol.for) that holds the
 * function table, as an external tagged with SIDELOOP_API_TYPE_TAG. */
#define SIDELOOP_API_SYMBOL "sideloop.nativeApi"

/* One task running on a loop; opaque. Valid from start() until the task
 * calls complete() or fail(), on the loop's thread only. */
typedef struct sideloop_task sideloop_task;

typedef struct sideloop_task_vtable {
  /* sizeof(sideloop_task_vtable) as the extension was compiled. */
  uint32_t size;
  /* Loop thread, once: begin the work. `loop` is the loop's own uv_loop_t,
   * for timers, idle handles, I/O. The task must end with exactly one call
   * of complete() or fail(), after every uv handle it opened is closed (its
   * close callback has run); it may do so from start() itself. Required. */
  void (*start)(sideloop_task* task, void* user_data, uv_loop_t* loop);
  /* Loop thread, at most once, only after start() and before the task has
   * ended: stop early (a cancel, a timeout, the loop stopping). The task
   * must still end with complete() or fail(), now or from a close callback;
   * sideloop then reports the abort reason instead. Required. */
  void (*cancel)(sideloop_task* task, void* user_data);
  /* Main thread, once, after the task completed: the value the Future
   * resolves with. NULL here, or a NULL return, means undefined. If it
   * throws (leaves an exception pending), the Future fails with that
   * exception. It runs while sideloop settles a batch of this loop's
   * completions: JS it calls must not wait on a Future of this loop
   * (result(), exception()): that wait ends with TimeoutError once the task
   * is over. Optional. */
  napi_value (*to_js)(napi_env env, void* user_data);
  /* Main thread, exactly once per submitted task, whatever happened to it
   * (completed, failed, cancelled, never started, loop gone): release
   * `user_data`. It runs while JS can still run, or during the teardown of
   * the environment (then with an env that may refuse JS calls). As for
   * to_js, JS it calls must not wait on a Future of this loop. Not at
   * process.exit() or after an uncaught exception, where Node runs no
   * cleanup. Optional.
   * to_js and free get the env the task was submitted with: yours. */
  void (*free)(napi_env env, void* user_data);
} sideloop_task_vtable;

typedef struct sideloop_api {
  /* sizeof(sideloop_api) as sideloop was compiled; only grows. */
  uint32_t size;
  /* SIDELOOP_ABI_VERSION of sideloop. */
  uint32_t version;

  /* Main thread: submit a task to `loop` (a sideloop EventLoop). `options`
   * may be NULL or undefined, or an object with sideloop's SubmitOptions
   * (`signal`, `timeout`). On napi_ok, *future_out is the task's Future.
   *
   * From this call on sideloop owns `user_data` and calls vtable->free on it
   * exactly once, even when the call fails. Only when `vtable` itself is
   * unusable (NULL, too small, no start or cancel) does it return
   * napi_invalid_arg without touching `user_data`.
   *
   * Like sideloop's own methods, it throws a TypeError or RangeError (and
   * returns napi_pending_exception) for invalid options, and for a loop
   * whose backend is 'worker' (code ERR_SIDELOOP_NATIVE_ONLY): the worker
   * backend runs no native code. A full queue or a stopping loop is
   * reported through the Future. The vtable is copied: it need not outlive
   * the call. */
  napi_status (*submit)(napi_env env, napi_value loop, const sideloop_task_vtable* vtable, void* user_data,
                        napi_value options, napi_value* future_out);

  /* Loop thread: the task succeeded. Call once, after every handle of the
   * task is closed; the task is not yours to touch afterwards. */
  void (*complete)(sideloop_task* task);
  /* Loop thread: the task failed. Like complete(). The Future fails with an
   * Error whose `message` is `message` and whose `code` is `code` (when not
   * NULL); both strings are copied. */
  void (*fail)(sideloop_task* task, const char* code, const char* message);
  /* Loop thread: non-zero once the task is being aborted (cancel() was or
   * is being called): a long computation checks it between steps. */
  int (*aborting)(const sideloop_task* task);
} sideloop_api;

/* The type tag of the external holding the table (napi_type_tag_object). */
static const napi_type_tag SIDELOOP_API_TYPE_TAG = {0x736964656c6f6f70ULL, 0x6e61746976654150ULL};

/* Main thread: the function table of the sideloop copy that owns `loop`,
 * checked by type tag, version and size. NULL with an exception pending when
 * `loop` is not a sideloop EventLoop, its backend runs no native code, or
 * its sideloop speaks another ABI version. */
static inline const sideloop_api* sideloop_get_api(napi_env env, napi_value loop) {
  napi_value global, symbol_ctor, symbol_for, name, key, value;
  napi_valuetype type;
  bool tagged = false;
  void* data = NULL;
  const sideloop_api* api;
  bool pending = false;
  if (napi_typeof(env, loop, &type) != napi_ok || type != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"loop\" argument must be a sideloop EventLoop");
    return NULL;
  }
  /* Symbol.for(SIDELOOP_API_SYMBOL): the same key in every copy of sideloop. */
  if (napi_get_global(env, &global) != napi_ok ||
      napi_get_named_property(env, global, "Symbol", &symbol_ctor) != napi_ok ||
      napi_get_named_property(env, symbol_ctor, "for", &symbol_for) != napi_ok ||
      napi_create_string_utf8(env, SIDELOOP_API_SYMBOL, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_call_function(env, symbol_ctor, symbol_for, 1, &name, &key) != napi_ok ||
      napi_get_property(env, loop, key, &value) != napi_ok) {
    return NULL; /* an exception is pending (the getter throws for a worker loop) */
  }
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external ||
      napi_check_object_type_tag(env, value, &SIDELOOP_API_TYPE_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, value, &data) != napi_ok) {
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"loop\" argument must be a sideloop EventLoop");
    return NULL;
  }
  api = (const sideloop_api*)data;
  if (api->version != SIDELOOP_ABI_VERSION || api->size < sizeof(sideloop_api)) {
    napi_throw_error(env, "ERR_SIDELOOP_ABI_MISMATCH",
                     "This native extension was built for another version of sideloop's native API");
    return NULL;
  }
  return api;
}

#ifdef __cplusplus
}
#endif

#endif /* SIDELOOP_H_ */
