#include "native_api.h"

#include <cstddef>
#include <cstring>

#include "../../include/sideloop.h"
#include "extension_task.h"

namespace sideloop {

namespace {

// Symbol.for('sideloop.submitNative'): the key of the EventLoop method
// (src/native-extension.ts) that puts a request on the same path as every
// built-in task and returns its Future. `env` is the extension's, so nothing
// of sideloop's own environment can be kept for it. Raw calls, each checked:
// node-addon-api's Symbol::For reads what it gets back unchecked, which is
// fatal when a call fails (as all do in a worker being terminated).
bool GetSubmitKey(napi_env env, napi_value* key) {
  napi_value global, symbol_ctor, symbol_for, name;
  return napi_get_global(env, &global) == napi_ok &&
         napi_get_named_property(env, global, "Symbol", &symbol_ctor) == napi_ok &&
         napi_get_named_property(env, symbol_ctor, "for", &symbol_for) == napi_ok &&
         napi_create_string_utf8(env, "sideloop.submitNative", NAPI_AUTO_LENGTH, &name) == napi_ok &&
         napi_call_function(env, symbol_ctor, symbol_for, 1, &name, key) == napi_ok;
}

// Older extensions pass a smaller vtable: the part they know is copied and
// the rest stays NULL. start and cancel must be there.
bool CopyVtable(const sideloop_task_vtable* from, sideloop_task_vtable* to) {
  if (from == nullptr || from->size < offsetof(sideloop_task_vtable, to_js)) return false;
  // Whole callbacks only: a size that ends inside one (a malformed size)
  // would leave half a pointer, called later. Every member after `size` is
  // a pointer.
  constexpr size_t kFirst = offsetof(sideloop_task_vtable, start);
  static_assert(offsetof(sideloop_task_vtable, free) + sizeof(void*) == sizeof(sideloop_task_vtable),
                "the vtable's callbacks are pointers, packed after size");
  size_t covered = from->size < sizeof(*to) ? from->size : sizeof(*to);
  covered = kFirst + (covered - kFirst) / sizeof(void*) * sizeof(void*);
  std::memset(to, 0, sizeof(*to));
  std::memcpy(to, from, covered);
  to->size = sizeof(*to);
  return to->start != nullptr && to->cancel != nullptr;
}

napi_status Submit(napi_env env, napi_value loop, const sideloop_task_vtable* vtable, void* user_data,
                   napi_value options, napi_value* future_out) {
  sideloop_task_vtable copy;
  if (!CopyVtable(vtable, &copy)) return napi_invalid_arg;
  if (future_out == nullptr) {
    // A usable vtable: the user data is ours, as on every other failure
    // (an exception free leaves is the caller's to see).
    if (copy.free != nullptr) copy.free(env, user_data);
    return napi_invalid_arg;
  }
  napi_value request;
  ExtensionRequest* owner;
  // From here on the request owns the user data, whatever happens.
  napi_status status = MakeExtensionRequest(env, copy, user_data, &request, &owner);
  if (status != napi_ok) return status;

  Napi::Env napi_env(env);
  Napi::Value loop_value(napi_env, loop);
  Napi::Value submit;
  napi_value key;
  if (loop_value.IsObject() && GetSubmitKey(env, &key)) submit = loop_value.As<Napi::Object>().Get(key);
  if (napi_env.IsExceptionPending()) {
    ReleaseUntaken(env, owner);
    return napi_pending_exception;
  }
  if (submit.IsEmpty() || !submit.IsFunction()) {
    ReleaseUntaken(env, owner);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"loop\" argument must be a sideloop EventLoop");
    return napi_pending_exception;
  }
  napi_value args[2] = {request, options};
  if (args[1] == nullptr) napi_get_undefined(env, &args[1]);
  napi_value future;
  status = napi_call_function(env, loop, submit, 2, args, &future);
  if (status != napi_ok) {
    ReleaseUntaken(env, owner);
    return status;
  }
  // A Future failed at submission (closed loop, full queue) never queued
  // the request: free the user data now rather than at garbage collection.
  // A queued request is taken by the loop at the next flush, and a later
  // ReleaseUntaken would find it taken.
  Napi::Object future_object = Napi::Value(napi_env, future).As<Napi::Object>();
  // Every value is checked before it is read: a call into JS that throws,
  // or that a terminated worker refuses, yields an empty value, and reading
  // that is a fatal error. `_settled()`, not `done()`: done() asks the loop,
  // which may settle other Futures and run their callbacks, here inside the
  // caller's submit.
  Napi::Value done = future_object.Get("_settled");
  Napi::Value is_done = done.IsFunction() ? done.As<Napi::Function>().Call(future_object, {}) : Napi::Value();
  if (napi_env.IsExceptionPending()) {
    ReleaseUntaken(env, owner);
    return napi_pending_exception;
  }
  if (is_done.IsBoolean() && is_done.As<Napi::Boolean>().Value()) ReleaseUntaken(env, owner);
  *future_out = future;
  return napi_ok;
}

void Complete(sideloop_task* task) { ExtensionTask::From(task)->Complete(); }

void Fail(sideloop_task* task, const char* code, const char* message) {
  ExtensionTask::From(task)->FailWith(code, message);
}

int Aborting(const sideloop_task* task) { return ExtensionTask::From(task)->IsAborting() ? 1 : 0; }

const sideloop_api kApi = {
    sizeof(sideloop_api), SIDELOOP_ABI_VERSION, Submit, Complete, Fail, Aborting,
};

}  // namespace

const sideloop_api* OwnNativeApi() { return &kApi; }

Napi::Value NativeApiExternal(Napi::Env env) {
  // The table is read-only; the external only points at it.
  auto external = Napi::External<sideloop_api>::New(env, const_cast<sideloop_api*>(&kApi));
  napi_type_tag_object(env, external, &SIDELOOP_API_TYPE_TAG);
  return external;
}

}  // namespace sideloop
