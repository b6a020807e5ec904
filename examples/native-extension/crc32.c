/*
 * An example native extension of sideloop: CRC-32 (the checksum of zlib and
 * gzip) of a byte array, computed on a sideloop loop's thread in chunks, one
 * chunk per turn of that loop, so that a cancel or a timeout stops it within
 * one chunk and other tasks on the loop take their turns in between.
 *
 * Plain C and nothing but include/sideloop.h, node_api.h and uv.h: no link
 * to sideloop, whose function table comes from the loop at run time.
 */
#include <sideloop.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_CHUNK (512 * 1024)

typedef struct crc_job {
  /* Main thread only: keeps the caller's bytes alive while the loop thread
   * reads them in place; deleted in job_free. */
  napi_ref bytes_ref;
  /* Loop thread, from start until complete/fail. */
  const sideloop_api* api;
  sideloop_task* task;
  uv_idle_t idle;
  const uint8_t* data;
  size_t size;
  size_t done;
  size_t chunk;
  uint32_t crc; /* running value, pre- and post-inverted as zlib does */
  int64_t expected; /* -1: nothing to compare with */
} crc_job;

/* Jobs allocated and not yet freed: lets the tests check that sideloop calls
 * free exactly once per task, whatever became of it. */
static atomic_int live_jobs;

static uint32_t table[256];
static uv_once_t table_once = UV_ONCE_INIT;

static void make_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
}

/* ---------------------------------------------------------- loop thread */

static void on_closed(uv_handle_t* handle) {
  crc_job* job = handle->data;
  /* Aborted: sideloop reports the reason (cancelled, timed out); what we
   * report does not matter, but the task must still end. */
  if (job->api->aborting(job->task) || job->expected < 0 || (uint32_t)job->expected == job->crc) {
    job->api->complete(job->task);
    return;
  }
  char message[96];
  snprintf(message, sizeof message, "CRC-32 mismatch: expected %08x, computed %08x", (uint32_t)job->expected, job->crc);
  job->api->fail(job->task, "ERR_CHECKSUM_MISMATCH", message);
}

/* The task ends only after its handle is closed. */
static void stop(crc_job* job) {
  uv_handle_t* handle = (uv_handle_t*)&job->idle;
  if (uv_is_closing(handle)) return; /* finished and aborted in the same turn */
  uv_idle_stop(&job->idle);
  uv_close(handle, on_closed);
}

static void on_idle(uv_idle_t* idle) {
  crc_job* job = idle->data;
  size_t end = job->size - job->done > job->chunk ? job->done + job->chunk : job->size;
  uint32_t c = ~job->crc;
  for (size_t i = job->done; i < end; i++) c = table[(c ^ job->data[i]) & 0xFF] ^ (c >> 8);
  job->crc = ~c;
  job->done = end;
  if (job->done == job->size) stop(job);
}

static void job_start(sideloop_task* task, void* user_data, uv_loop_t* loop) {
  crc_job* job = user_data;
  job->task = task;
  uv_idle_init(loop, &job->idle);
  job->idle.data = job;
  uv_idle_start(&job->idle, on_idle);
}

static void job_cancel(sideloop_task* task, void* user_data) { stop(user_data); }

/* ---------------------------------------------------------- main thread */

static napi_value job_to_js(napi_env env, void* user_data) {
  napi_value result;
  napi_create_uint32(env, ((crc_job*)user_data)->crc, &result);
  return result;
}

static void job_free(napi_env env, void* user_data) {
  crc_job* job = user_data;
  if (job->bytes_ref != NULL) napi_delete_reference(env, job->bytes_ref);
  free(job);
  atomic_fetch_sub(&live_jobs, 1);
}

static const sideloop_task_vtable crc_vtable = {
    sizeof(sideloop_task_vtable), job_start, job_cancel, job_to_js, job_free,
};

static napi_value throw_type_error(napi_env env, const char* message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

/* Bytes per element of a TypedArray. */
static size_t element_size(napi_typedarray_type type) {
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
    default:
      return 1;
  }
}

/* The bytes of a TypedArray, Buffer or DataView, read in place. The size
 * comes from the engine, never from a property a subclass could override. */
static int get_bytes(napi_env env, napi_value value, const uint8_t** data, size_t* size) {
  bool is_typed_array = false, is_data_view = false;
  void* bytes = NULL;
  size_t length = 0;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || napi_is_dataview(env, value, &is_data_view) != napi_ok) {
    return 0;
  }
  if (is_typed_array) {
    if (napi_get_typedarray_info(env, value, &type, &length, &bytes, NULL, NULL) != napi_ok) return 0;
    length *= element_size(type); /* length counts elements; the bytes are what we checksum */
  } else if (is_data_view) {
    if (napi_get_dataview_info(env, value, &length, &bytes, NULL, NULL) != napi_ok) return 0;
  } else {
    return 0;
  }
  *data = bytes;
  *size = length;
  return 1;
}

/* Reads options.expected and options.chunkSize; the rest (signal, timeout)
 * is sideloop's. Returns 0 with an exception pending when one is invalid. */
static int read_options(napi_env env, napi_value options, crc_job* job) {
  napi_valuetype type;
  if (napi_typeof(env, options, &type) != napi_ok) return 0;
  if (type == napi_undefined) return 1;
  if (type != napi_object) return throw_type_error(env, "The \"options\" argument must be an object"), 0;
  napi_value value;
  double number;
  /* A getter may throw: then the exception is pending and we stop. */
  if (napi_get_named_property(env, options, "expected", &value) != napi_ok || napi_typeof(env, value, &type) != napi_ok) return 0;
  if (type != napi_undefined) {
    if (type != napi_number || napi_get_value_double(env, value, &number) != napi_ok || !(number >= 0 && number <= 4294967295.0) ||
        number != (double)(uint32_t)number) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "options.expected must be an integer >= 0 and < 2^32");
      return 0;
    }
    job->expected = (int64_t)number;
  }
  if (napi_get_named_property(env, options, "chunkSize", &value) != napi_ok || napi_typeof(env, value, &type) != napi_ok) return 0;
  if (type != napi_undefined) {
    if (type != napi_number || napi_get_value_double(env, value, &number) != napi_ok || !(number >= 1 && number <= 1073741824.0) ||
        number != (double)(size_t)number) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "options.chunkSize must be an integer >= 1 and <= 2^30");
      return 0;
    }
    job->chunk = (size_t)number;
  }
  return 1;
}

/* crc32(loop, data, options?): Future<number> */
static napi_value crc32(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_type_error(env, "crc32(loop, data, options?) needs a loop and data");
  /* Checked first: it throws for a loop whose backend runs no native code. */
  const sideloop_api* api = sideloop_get_api(env, argv[0]);
  if (api == NULL) return NULL;

  crc_job* job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ERR_OUT_OF_MEMORY", "crc32: out of memory");
    return NULL;
  }
  atomic_fetch_add(&live_jobs, 1);
  job->api = api;
  job->chunk = DEFAULT_CHUNK;
  job->expected = -1;
  napi_value options = argc > 2 ? argv[2] : NULL;
  if (!get_bytes(env, argv[1], &job->data, &job->size)) {
    job_free(env, job);
    return throw_type_error(env, "The \"data\" argument must be a TypedArray, Buffer or DataView");
  }
  if ((options != NULL && !read_options(env, options, job)) ||
      napi_create_reference(env, argv[1], 1, &job->bytes_ref) != napi_ok) {
    job_free(env, job);
    return NULL;
  }
  /* From here sideloop owns the job and frees it through crc_vtable.free. */
  napi_value future;
  if (api->submit(env, argv[0], &crc_vtable, job, options, &future) != napi_ok) return NULL;
  return future;
}

static napi_value live_tasks(napi_env env, napi_callback_info info) {
  napi_value result;
  napi_create_int32(env, atomic_load(&live_jobs), &result);
  return result;
}

NAPI_MODULE_INIT() {
  uv_once(&table_once, make_table);
  napi_property_descriptor properties[] = {
      {"crc32", NULL, crc32, NULL, NULL, NULL, napi_enumerable, NULL},
      {"liveTasks", NULL, live_tasks, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, 2, properties);
  return exports;
}
