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
  // `extension_env`: the environment of the extension that submitted it,
  // which its to_js and free get, as every Node-API callback gets its own
  // addon's (its instance data, its pending exception).
  ExtensionTask(const sideloop_task_vtable& vtable, void* user_data, napi_env extension_env);
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

  napi_env extension_env() const { return extension_env_; }

  // JS thread, after the task completed: the extension's value (empty for
  // undefined; an exception to_js left is pending in `env` then).
  Napi::Value ToJs(Napi::Env env);
  // JS thread, once, before the task is disposed: vtable.free. `env` is
  // sideloop's, where an exception free leaves is raised.
  void ReleaseUserData(napi_env env);

 protected:
  void Start() override;
  void Abort() override;

 private:
  sideloop_task* handle() { return reinterpret_cast<sideloop_task*>(this); }

  const sideloop_task_vtable vtable_;
  void* const user_data_;
  const napi_env extension_env_;
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
