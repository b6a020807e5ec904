// The adapter between sideloop's internal task interface (core/task.h) and
// the public one (include/sideloop.h): a Task whose Start() and Abort() call
// an extension's vtable. It lives in the binding, not the core, because the
// public interface speaks Node-API (to_js, free).
//
// How a task gets here: sideloop_api.submit (native_api.cc) wraps the vtable
// and user data in an ExtensionRequest, an external that travels through the
// JS submission path as the task's `object` like any built-in's arguments;
// CreateTask() takes it out with TakeExtensionRequest().
#ifndef SIDELOOP_BINDING_EXTENSION_TASK_H_
#define SIDELOOP_BINDING_EXTENSION_TASK_H_

#include <napi.h>

#include "../../include/sideloop.h"
#include "../core/task.h"

namespace sideloop {

class ExtensionTask final : public Task {
 public:
  ExtensionTask(const sideloop_task_vtable& vtable, void* user_data);
  // The user data is released by ReleaseUserData(), on the JS thread; the
  // destructor may run on the loop thread, so it does not.
  ~ExtensionTask() override = default;

  static ExtensionTask* From(sideloop_task* task) { return reinterpret_cast<ExtensionTask*>(task); }
  static const ExtensionTask* From(const sideloop_task* task) { return reinterpret_cast<const ExtensionTask*>(task); }

  // Loop thread: the extension's end of the task (sideloop_api.complete,
  // fail, aborting). A second end is ignored rather than trusted.
  void Complete();
  void FailWith(const char* code, const char* message);
  bool IsAborting() const { return aborting(); }

  // JS thread, after the task completed: the extension's value (empty for
  // undefined).
  Napi::Value ToJs(Napi::Env env);
  // JS thread, once, before the task is disposed: vtable.free.
  void ReleaseUserData(napi_env env);

 protected:
  void Start() override;
  void Abort() override;

 private:
  sideloop_task* handle() { return reinterpret_cast<sideloop_task*>(this); }

  const sideloop_task_vtable vtable_;
  void* const user_data_;
  bool ended_ = false;
  bool released_ = false;
};

struct ExtensionRequest;

// JS thread: an external owning `user_data` until a task takes it; if none
// ever does, its finalizer (or ReleaseUntaken) calls vtable.free. `*request`
// stays valid while the external is alive.
napi_status MakeExtensionRequest(napi_env env, const sideloop_task_vtable& vtable, void* user_data,
                                 napi_value* result, ExtensionRequest** request);
// JS thread: the task an ExtensionRequest describes, or nullptr when `value`
// is not one or was already taken (then it is never run twice).
Task* TakeExtensionRequest(napi_env env, napi_value value);
// JS thread: frees the user data of a request no task took (a submission
// that failed before the task was queued). Needs no Node-API call, so it
// works with an exception pending.
void ReleaseUntaken(napi_env env, ExtensionRequest* request);

}  // namespace sideloop

#endif  // SIDELOOP_BINDING_EXTENSION_TASK_H_
