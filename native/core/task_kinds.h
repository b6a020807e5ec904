// The kinds of built-in task. The numbers are part of the protocol between
// the TypeScript layer (src/backends/native.ts) and the binding.
#ifndef SIDELOOP_CORE_TASK_KINDS_H_
#define SIDELOOP_CORE_TASK_KINDS_H_

namespace sideloop {

enum TaskKind : int {
  kTaskSleep = 0,
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_TASK_KINDS_H_
