#include "native_api.h"

#include <cstddef>
#include <cstring>

#include "../../include/sideloop.h"
#include "extension_task.h"

namespace sideloop {

namespace {

// The EventLoop method (src/native-extension.ts) that puts a request on the
// same path as every built-in task and returns its Future.
constexpr const char* kSubmitSymbol = "sideloop.submitNative";

// Older extensions pass a smaller vtable: the part they know is copied and
// the rest stays NULL. start and cancel must be there.
bool CopyVtable(const sideloop_task_vtable* from, sideloop_task_vtable* to) {
  if (from == nullptr || from->size < offsetof(sideloop_task_vtable, to_js)) return false;
  std::memset(to, 0, sizeof(*to));
  std::memcpy(to, from, from->size < sizeof(*to) ? from->size : sizeof(*to));
  to->size = sizeof(*to);
  return to->start != nullptr && to->cancel != nullptr;
}

napi_status Submit(napi_env env, napi_value loop, const sideloop_task_vtable* vtable, void* user_data,
                   napi_value options, napi_value* future_out) {
  sideloop_task_vtable copy;
  if (future_out == nullptr || !CopyVtable(vtable, &copy)) return napi_invalid_arg;
  napi_value request;
  ExtensionRequest* owner;
  // From here on the request owns the user data, whatever happens.
  napi_status status = MakeExtensionRequest(env, copy, user_data, &request, &owner);
  if (status != napi_ok) return status;

  Napi::Env napi_env(env);
  Napi::Value loop_value(napi_env, loop);
  Napi::Value submit;
  if (loop_value.IsObject()) submit = loop_value.As<Napi::Object>().Get(Napi::Symbol::For(napi_env, kSubmitSymbol));
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
  Napi::Value done = future_object.Get("done");
  if (done.IsFunction() && done.As<Napi::Function>().Call(future_object, {}).ToBoolean().Value()) {
    ReleaseUntaken(env, owner);
  }
  if (napi_env.IsExceptionPending()) return napi_pending_exception;
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
