// Turning JS task descriptions into core tasks, and finished tasks back into
// JS values. The only place that knows each built-in kind on both sides.
#ifndef SIDELOOP_BINDING_TASK_FACTORY_H_
#define SIDELOOP_BINDING_TASK_FACTORY_H_

#include <napi.h>

#include "../core/task.h"

namespace sideloop {

// Arguments are checked by the TypeScript layer (src/tasks.ts); this only
// guards against a protocol mismatch: an unusable description becomes a task
// that fails with ERR_SIDELOOP_BAD_TASK, never a crash or a lost slot.
Task* CreateTask(int kind, double number, Napi::Value object);

// The value a finished task resolves with, or an empty value when the JS
// side already has it (writeFile's).
Napi::Value TaskResultToJs(Napi::Env env, Task* task);

// JS thread, once per task, right before it is disposed: gives what the
// task holds for its owner back (an extension task's user data, through its
// vtable's free, which must run on the JS thread while the task itself may
// be freed on the loop thread).
void ReleaseTask(Napi::Env env, Task* task);

// An Error shaped like node:fs's and node:zlib's: message, code, errno,
// syscall and path where known.
Napi::Value TaskErrorToJs(Napi::Env env, const TaskError& error);

}  // namespace sideloop

#endif  // SIDELOOP_BINDING_TASK_FACTORY_H_
