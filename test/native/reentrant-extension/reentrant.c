/*
 * A test extension whose to_js calls back into JS: callBack(loop, fn) runs a
 * task that ends at once, and resolves its Future with what fn() returns,
 * fn being called from to_js, inside sideloop's drain. It lets the tests
 * reach what the example extension cannot: JS that runs mid-drain and waits
 * on the same loop.
 */
#include <sideloop.h>
#include <stdlib.h>

typedef struct call_job {
  const sideloop_api* api;
  napi_ref fn_ref; /* main thread only; deleted in job_free */
} call_job;

static void job_start(sideloop_task* task, void* user_data, uv_loop_t* loop) {
  ((call_job*)user_data)->api->complete(task);
}

static void job_cancel(sideloop_task* task, void* user_data) {}

/* fn()'s value, or its exception left pending: the Future then fails with it. */
static napi_value job_to_js(napi_env env, void* user_data) {
  call_job* job = user_data;
  napi_value fn, global, result;
  if (napi_get_reference_value(env, job->fn_ref, &fn) != napi_ok || napi_get_global(env, &global) != napi_ok ||
      napi_call_function(env, global, fn, 0, NULL, &result) != napi_ok) {
    return NULL;
  }
  return result;
}

static void job_free(napi_env env, void* user_data) {
  call_job* job = user_data;
  if (job->fn_ref != NULL) napi_delete_reference(env, job->fn_ref);
  free(job);
}

static const sideloop_task_vtable call_vtable = {
    sizeof(sideloop_task_vtable), job_start, job_cancel, job_to_js, job_free,
};

/* callBack(loop, fn): Future<ReturnType<fn>> */
static napi_value call_back(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callBack(loop, fn) needs a loop and a function");
    return NULL;
  }
  const sideloop_api* api = sideloop_get_api(env, argv[0]);
  if (api == NULL) return NULL;
  call_job* job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ERR_OUT_OF_MEMORY", "callBack: out of memory");
    return NULL;
  }
  job->api = api;
  if (napi_create_reference(env, argv[1], 1, &job->fn_ref) != napi_ok) {
    job_free(env, job);
    return NULL;
  }
  napi_value future;
  if (api->submit(env, argv[0], &call_vtable, job, NULL, &future) != napi_ok) return NULL;
  return future;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor property = {"callBack", NULL, call_back, NULL, NULL, NULL, napi_enumerable, NULL};
  napi_define_properties(env, exports, 1, &property);
  return exports;
}
