#include "extension_task.h"

#include <cstdint>
#include <cstring>

#include "addon.h"

#include "../core/task_kinds.h"

namespace sideloop {

struct ExtensionRequest {
  sideloop_task_vtable vtable;
  void* user_data;
  napi_env env;  // the extension's, which submitted it
  bool owned;    // the user data is still ours to free
};

namespace {

// Marks the externals only this copy of the binding makes, so no other
// value can pose as a task description. Its second half is an address in
// this copy: a process may load several copies of sideloop (of different
// versions), and an extension that kept one copy's table to submit to
// another copy's loop would have its request read with another layout.
// Not part of the public ABI.
const napi_type_tag& RequestTag() {
  static const napi_type_tag tag = {0x736964656c6f6f70ULL, reinterpret_cast<uintptr_t>(&tag)};
  return tag;
}

// The function RaiseLater queues: throws what its holder holds. Its data
// is a reference to the holder, deleted here.
napi_value Rethrow(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  napi_value holder, error;
  if (napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data) != napi_ok) return nullptr;
  auto ref = static_cast<napi_ref>(data);
  bool got = napi_get_reference_value(env, ref, &holder) == napi_ok &&
             napi_get_named_property(env, holder, "error", &error) == napi_ok;
  napi_delete_reference(env, ref);
  if (got) napi_throw(env, error);
  return nullptr;
}

// Queues `error` to be thrown from a microtask; false if that fails. The
// value rides in an object: a string or a number cannot be referenced.
bool QueueRethrow(napi_env env, napi_value queue_microtask, napi_value error) {
  napi_value holder, rethrow, global, ignored;
  napi_ref ref;
  if (napi_create_object(env, &holder) != napi_ok || napi_set_named_property(env, holder, "error", error) != napi_ok ||
      napi_create_reference(env, holder, 1, &ref) != napi_ok) {
    return false;
  }
  if (napi_create_function(env, "rethrow", NAPI_AUTO_LENGTH, Rethrow, ref, &rethrow) == napi_ok &&
      napi_get_global(env, &global) == napi_ok &&
      napi_call_function(env, global, queue_microtask, 1, &rethrow, &ignored) == napi_ok) {
    return true;
  }
  napi_delete_reference(env, ref);
  return false;
}

// The queueMicrotask RaiseLater queues with. In sideloop's own environment,
// the one the addon found at load (see Addon): user code that replaces it
// cannot lose the exception. An extension's environment holds no Addon (its
// instance data is the extension's): there, the global one.
napi_value QueueMicrotaskOf(napi_env env, bool sideloops_env) {
  napi_value queue = nullptr;
  if (sideloops_env) {
    auto* addon = static_cast<Addon*>(nullptr);
    napi_get_instance_data(env, reinterpret_cast<void**>(&addon));
    if (addon != nullptr && !addon->queue_microtask.IsEmpty()) queue = addon->queue_microtask.Value();
    return queue;
  }
  napi_value global;
  if (napi_get_global(env, &global) != napi_ok || napi_get_named_property(env, global, "queueMicrotask", &queue) != napi_ok) {
    return nullptr;
  }
  return queue;
}

// Throws `error` from a microtask, where it is an uncaught exception, as a
// throwing done callback's is: not here, in the middle of a drain, where
// 'uncaughtException' handlers would find the batch half settled. If that
// fails, it is raised at once rather than lost.
void RaiseLater(napi_env env, bool sideloops_env, napi_value error) {
  napi_value queue = QueueMicrotaskOf(env, sideloops_env);
  if (queue != nullptr) {
    if (QueueRethrow(env, queue, error)) return;
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
  }
  napi_fatal_exception(env, error);
}

// Moves an exception left pending in the extension's environment to
// sideloop's: Node-API keeps one per environment, and one left in the
// extension's would fail its next call and surface in whatever JS its
// addon runs next.
void TakeOverException(napi_env extension_env, napi_env env) {
  bool pending = false;
  napi_value error;
  if (extension_env == env || napi_is_exception_pending(extension_env, &pending) != napi_ok || !pending ||
      napi_get_and_clear_last_exception(extension_env, &error) != napi_ok) {
    return;
  }
  napi_throw(env, error);
}

// free() may call JS, and that may throw. The exception belongs to no
// Future (the task is over), and left pending it would trip the next
// Node-API call: the drain would fail the next task of its batch with it,
// or lose the whole batch. It is raised again from a microtask instead. An
// exception pending before the call is not free's: whoever called us
// reports it. free() gets the extension's environment; `env` is where the
// caller runs: sideloop's (a drain, a loop going away) or the extension's
// own (a request no task took).
void CallFree(napi_env extension_env, napi_env env, bool sideloops_env, const sideloop_task_vtable& vtable,
              void* user_data) {
  if (vtable.free == nullptr) return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) {
    vtable.free(extension_env, user_data);
    return;
  }
  vtable.free(extension_env, user_data);
  TakeOverException(extension_env, env);
  napi_value error;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &error) == napi_ok) {
    RaiseLater(env, sideloops_env, error);
  }
}

// Runs in the extension's environment, which made the external.
void FreeRequest(napi_env env, void* data, void*) {
  auto* request = static_cast<ExtensionRequest*>(data);
  if (request->owned) CallFree(request->env, env, false, request->vtable, request->user_data);
  delete request;
}

ExtensionRequest* GetRequest(napi_env env, napi_value value) {
  napi_valuetype type;
  bool tagged = false;
  void* data = nullptr;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external ||
      napi_check_object_type_tag(env, value, &RequestTag(), &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, value, &data) != napi_ok) {
    return nullptr;
  }
  return static_cast<ExtensionRequest*>(data);
}

}  // namespace

ExtensionTask::ExtensionTask(const sideloop_task_vtable& vtable, void* user_data, napi_env extension_env)
    : Task(kTaskExtension), vtable_(vtable), user_data_(user_data), extension_env_(extension_env) {}

void ExtensionTask::Start() { vtable_.start(handle(), user_data_, loop()); }

void ExtensionTask::Abort() { vtable_.cancel(handle(), user_data_); }

void ExtensionTask::Complete() {
  if (ended_) return;
  ended_ = true;
  Finish(TaskStatus::kOk);
}

void ExtensionTask::FailWith(const char* code, const char* message) {
  if (ended_) return;
  ended_ = true;
  TaskError error;
  if (code != nullptr) error.code = code;
  error.message = message != nullptr ? message : "native extension task failed";
  Fail(std::move(error));
}

Napi::Value ExtensionTask::ToJs(Napi::Env env) {
  if (vtable_.to_js == nullptr) return Napi::Value();
  napi_value value = vtable_.to_js(extension_env_, user_data_);
  TakeOverException(extension_env_, env);  // the drain fails the task with it
  return value != nullptr ? Napi::Value(env, value) : Napi::Value();
}

void ExtensionTask::ReleaseUserData(napi_env env) {
  if (released_) return;
  released_ = true;
  CallFree(extension_env_, env, true, vtable_, user_data_);
}

napi_status MakeExtensionRequest(napi_env env, const sideloop_task_vtable& vtable, void* user_data,
                                 napi_value* result, ExtensionRequest** request) {
  *request = new ExtensionRequest{vtable, user_data, env, true};
  napi_status status = napi_create_external(env, *request, FreeRequest, nullptr, result);
  if (status != napi_ok) {
    FreeRequest(env, *request, nullptr);
    return status;
  }
  status = napi_type_tag_object(env, *result, &RequestTag());
  // Untagged, no task would ever take it: free the user data now.
  if (status != napi_ok) ReleaseUntaken(env, *request);
  return status;
}

Task* TakeExtensionRequest(napi_env env, napi_value value) {
  ExtensionRequest* request = GetRequest(env, value);
  if (request == nullptr || !request->owned) return nullptr;
  // Made first: were there no memory for it, the request keeps its data,
  // and frees it when collected.
  auto* task = new ExtensionTask(request->vtable, request->user_data, request->env);
  request->owned = false;
  return task;
}

void ReleaseUntaken(napi_env env, ExtensionRequest* request) {
  if (!request->owned) return;
  request->owned = false;
  CallFree(request->env, env, false, request->vtable, request->user_data);
}

}  // namespace sideloop
