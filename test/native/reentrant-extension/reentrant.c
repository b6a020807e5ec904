/*
 * A test extension whose callbacks call back into JS: callBack(loop, fn)
 * runs a task that ends at once, and resolves its Future with what fn()
 * returns, fn being called from to_js, inside sideloop's drain;
 * freeCallsBack(loop, fn) runs the same task, resolving with undefined, and
 * calls fn() from its free. They let the tests reach what the example
 * extension cannot: JS that runs mid-drain, waits on the same loop, or throws.
 * hold(loop) runs a task that ends only when cancelled (a shutdown, the
 * loop stopping at exit); its free prints which env it got (told by a flag
 * the env's instance data sets as it is deleted, not by reading a deleted
 * env) and whether it could make a JS value there.
 * pair(loop) runs two tasks of one group that end only when cancelled, and
 * a cancel of either ends both (as when a resource they share goes away).
 * submitWithSize(loop, size) runs a task whose to_js gives 42, its vtable's
 * size set to `size` (to_js counts as absent unless the size covers it whole).
 * submitThrough(apiLoop, loop) submits that task to `loop` through the table
 * of the sideloop that owns apiLoop, as an extension that kept one copy's
 * table for another copy's loop would.
 * foreignEnvCalls(): how many times to_js or free got an env that is not
 * this addon's own (whose instance data is `own_instance`).
 * submitWithoutFuture(loop): api->submit with no future_out; returns
 * [status, jobs freed by then] (freedJobs counts every free).
 */
#include <sideloop.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct call_job {
  const sideloop_api* api;
  napi_ref fn_ref; /* main thread only; deleted in job_free */
} call_job;

static int own_instance;
static int foreign_env_calls;
static int freed_jobs;
static int own_env_deleted;

static void on_own_env_deleted(napi_env env, void* data, void* hint) { own_env_deleted = 1; }

static int is_own_env(napi_env env) {
  void* data = NULL;
  return napi_get_instance_data(env, &data) == napi_ok && data == &own_instance;
}

static void check_env(napi_env env) {
  if (!is_own_env(env)) foreign_env_calls++;
}

static void job_start(sideloop_task* task, void* user_data, uv_loop_t* loop) {
  ((call_job*)user_data)->api->complete(task);
}

static void job_cancel(sideloop_task* task, void* user_data) {}

/* fn()'s value, or NULL with its exception left pending. */
static napi_value call_fn(napi_env env, call_job* job) {
  napi_value fn, global, result;
  if (napi_get_reference_value(env, job->fn_ref, &fn) != napi_ok || napi_get_global(env, &global) != napi_ok ||
      napi_call_function(env, global, fn, 0, NULL, &result) != napi_ok) {
    return NULL;
  }
  return result;
}

/* fn()'s value, or its exception left pending: the Future then fails with it. */
static napi_value job_to_js(napi_env env, void* user_data) {
  check_env(env);
  return call_fn(env, user_data);
}

static void job_free(napi_env env, void* user_data) {
  call_job* job = user_data;
  check_env(env);
  if (job->fn_ref != NULL) napi_delete_reference(env, job->fn_ref);
  free(job);
  freed_jobs++;
}

static void hold_start(sideloop_task* task, void* user_data, uv_loop_t* loop) {}

static void hold_cancel(sideloop_task* task, void* user_data) { ((call_job*)user_data)->api->complete(task); }

/* C, not JS: it may run while the environment is torn down. */
static void hold_free(napi_env env, void* user_data) {
  if (own_env_deleted) {
    printf("held task freed in a deleted env\n");
  } else {
    napi_value value;
    int made = napi_create_int32(env, 1, &value) == napi_ok; /* a handle: needs a handle scope */
    printf("held task freed in %s env%s\n", is_own_env(env) ? "its own" : "another", made ? ", a value made" : "");
  }
  fflush(stdout);
  if (!own_env_deleted) job_free(env, user_data);
}

/* Two tasks that end together: the first cancel completes both. */
typedef struct pair_group {
  const sideloop_api* api;
  sideloop_task* tasks[2]; /* NULL until started, and again once completed */
  int jobs_left;           /* freed with the last of its jobs */
} pair_group;

typedef struct pair_job {
  pair_group* group;
  int index;
} pair_job;

static void pair_start(sideloop_task* task, void* user_data, uv_loop_t* loop) {
  pair_job* job = user_data;
  job->group->tasks[job->index] = task;
}

static void pair_cancel(sideloop_task* task, void* user_data) {
  pair_group* group = ((pair_job*)user_data)->group;
  for (int i = 0; i < 2; i++) {
    sideloop_task* member = group->tasks[i];
    group->tasks[i] = NULL;
    if (member != NULL) group->api->complete(member);
  }
}

static void pair_free(napi_env env, void* user_data) {
  pair_job* job = user_data;
  if (--job->group->jobs_left == 0) free(job->group);
  free(job);
}

/* fn() first; its exception is left pending for sideloop to deal with. */
static void job_free_calling(napi_env env, void* user_data) {
  call_fn(env, user_data);
  job_free(env, user_data);
}

static const sideloop_task_vtable call_vtable = {
    sizeof(sideloop_task_vtable), job_start, job_cancel, job_to_js, job_free,
};

static const sideloop_task_vtable free_call_vtable = {
    sizeof(sideloop_task_vtable), job_start, job_cancel, NULL, job_free_calling,
};

static const sideloop_task_vtable hold_vtable = {
    sizeof(sideloop_task_vtable), hold_start, hold_cancel, NULL, hold_free,
};

/* A job for `loop`, or NULL with an exception pending. */
static call_job* new_job(napi_env env, napi_value loop) {
  const sideloop_api* api = sideloop_get_api(env, loop);
  if (api == NULL) return NULL;
  call_job* job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ERR_OUT_OF_MEMORY", "out of memory");
    return NULL;
  }
  job->api = api;
  return job;
}

/* (loop, fn): submits a job with `vtable` that calls fn. */
static napi_value submit_job(napi_env env, napi_callback_info info, const sideloop_task_vtable* vtable) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the arguments are a loop and a function");
    return NULL;
  }
  call_job* job = new_job(env, argv[0]);
  if (job == NULL) return NULL;
  if (napi_create_reference(env, argv[1], 1, &job->fn_ref) != napi_ok) {
    job_free(env, job);
    return NULL;
  }
  napi_value future;
  if (job->api->submit(env, argv[0], vtable, job, NULL, &future) != napi_ok) return NULL;
  return future;
}

/* callBack(loop, fn): Future<ReturnType<fn>> */
static napi_value call_back(napi_env env, napi_callback_info info) { return submit_job(env, info, &call_vtable); }

/* freeCallsBack(loop, fn): Future<undefined> */
static napi_value free_calls_back(napi_env env, napi_callback_info info) {
  return submit_job(env, info, &free_call_vtable);
}

/* hold(loop): Future<undefined>, settled (cancelled) only when the task is. */
static napi_value hold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value loop;
  napi_get_cb_info(env, info, &argc, &loop, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the argument is a loop");
    return NULL;
  }
  call_job* job = new_job(env, loop);
  if (job == NULL) return NULL;
  napi_value future;
  if (job->api->submit(env, loop, &hold_vtable, job, NULL, &future) != napi_ok) return NULL;
  return future;
}

static const sideloop_task_vtable pair_vtable = {
    sizeof(sideloop_task_vtable), pair_start, pair_cancel, NULL, pair_free,
};

/* pair(loop): [Future<undefined>, Future<undefined>] */
static napi_value pair(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value loop, futures, future;
  napi_get_cb_info(env, info, &argc, &loop, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the argument is a loop");
    return NULL;
  }
  const sideloop_api* api = sideloop_get_api(env, loop);
  if (api == NULL) return NULL;
  pair_group* group = calloc(1, sizeof *group);
  if (group == NULL) {
    napi_throw_error(env, "ERR_OUT_OF_MEMORY", "out of memory");
    return NULL;
  }
  group->api = api;
  group->jobs_left = 2;
  napi_create_array_with_length(env, 2, &futures);
  for (int i = 0; i < 2; i++) {
    pair_job* job = calloc(1, sizeof *job);
    if (job == NULL) abort(); /* a test fixture: not worth unwinding half a pair */
    job->group = group;
    job->index = i;
    if (api->submit(env, loop, &pair_vtable, job, NULL, &future) != napi_ok) abort();
    napi_set_element(env, futures, i, future);
  }
  return futures;
}

static void complete_at_once(sideloop_task* task, void* user_data, uv_loop_t* loop) {
  ((const sideloop_api*)user_data)->complete(task);
}

static napi_value forty_two(napi_env env, void* user_data) {
  napi_value value;
  napi_create_int32(env, 42, &value);
  return value;
}

/* submitWithSize(loop, size): Future<42 | undefined> */
static napi_value submit_with_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], future;
  uint32_t size;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_uint32(env, argv[1], &size) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the arguments are a loop and a size");
    return NULL;
  }
  const sideloop_api* api = sideloop_get_api(env, argv[0]);
  if (api == NULL) return NULL;
  /* Copied by submit: it may live on the stack. No free: nothing to free. */
  sideloop_task_vtable vtable = {size, complete_at_once, job_cancel, forty_two, NULL};
  if (api->submit(env, argv[0], &vtable, (void*)api, NULL, &future) != napi_ok) return NULL;
  return future;
}

/* submitThrough(apiLoop, loop): Future<42> */
static napi_value submit_through(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], future;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the arguments are two loops");
    return NULL;
  }
  const sideloop_api* api = sideloop_get_api(env, argv[0]);
  if (api == NULL) return NULL;
  sideloop_task_vtable vtable = {sizeof vtable, complete_at_once, job_cancel, forty_two, NULL};
  if (api->submit(env, argv[1], &vtable, (void*)api, NULL, &future) != napi_ok) return NULL;
  return future;
}

/* submitWithoutFuture(loop): [status, freedJobs] */
static napi_value submit_without_future(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value loop, pair, status, freed;
  napi_get_cb_info(env, info, &argc, &loop, NULL, NULL);
  call_job* job = argc < 1 ? NULL : new_job(env, loop);
  if (job == NULL) return NULL;
  napi_create_int32(env, job->api->submit(env, loop, &call_vtable, job, NULL, NULL), &status);
  napi_create_int32(env, freed_jobs, &freed);
  napi_create_array_with_length(env, 2, &pair);
  napi_set_element(env, pair, 0, status);
  napi_set_element(env, pair, 1, freed);
  return pair;
}

/* foreignEnvCalls(): number */
static napi_value foreign_env_calls_js(napi_env env, napi_callback_info info) {
  napi_value count;
  napi_create_int32(env, foreign_env_calls, &count);
  return count;
}

NAPI_MODULE_INIT() {
  napi_set_instance_data(env, &own_instance, on_own_env_deleted, NULL);
  napi_property_descriptor properties[] = {
      {"callBack", NULL, call_back, NULL, NULL, NULL, napi_enumerable, NULL},
      {"freeCallsBack", NULL, free_calls_back, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hold", NULL, hold, NULL, NULL, NULL, napi_enumerable, NULL},
      {"foreignEnvCalls", NULL, foreign_env_calls_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"submitWithoutFuture", NULL, submit_without_future, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pair", NULL, pair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"submitWithSize", NULL, submit_with_size, NULL, NULL, NULL, napi_enumerable, NULL},
      {"submitThrough", NULL, submit_through, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, 8, properties);
  return exports;
}
