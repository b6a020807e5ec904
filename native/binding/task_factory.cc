#include "task_factory.h"

#include "../core/sleep_task.h"
#include "../core/task_kinds.h"

namespace sideloop {

Task* CreateTask(Napi::Env env, int kind, double number, Napi::Value /*object*/) {
  switch (kind) {
    case kTaskSleep:
      return new SleepTask(number);
    default:
      Napi::TypeError::New(env, "sideloop: unknown task kind").ThrowAsJavaScriptException();
      return nullptr;
  }
}

Napi::Value TaskResultToJs(Napi::Env /*env*/, Task* /*task*/) { return Napi::Value(); }

Napi::Value TaskErrorToJs(Napi::Env env, const TaskError& error) {
  Napi::Error err = Napi::Error::New(env, error.message);
  Napi::Object obj = err.Value();
  if (error.errnum != 0) obj.Set("errno", Napi::Number::New(env, error.errnum));
  if (!error.code.empty()) obj.Set("code", Napi::String::New(env, error.code));
  if (!error.syscall.empty()) obj.Set("syscall", Napi::String::New(env, error.syscall));
  if (!error.path.empty()) obj.Set("path", Napi::String::New(env, error.path));
  return obj;
}

}  // namespace sideloop
