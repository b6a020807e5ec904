// The kinds of task. The numbers are part of the protocol between
// the TypeScript layer (src/tasks.ts TaskKind) and the binding.
#ifndef SIDELOOP_CORE_TASK_KINDS_H_
#define SIDELOOP_CORE_TASK_KINDS_H_

namespace sideloop {

enum TaskKind : int {
  kTaskSleep = 0,
  kTaskHash = 1,
  kTaskGzip = 2,
  kTaskGunzip = 3,
  kTaskDeflate = 4,
  kTaskInflate = 5,
  kTaskReadFile = 6,
  kTaskWriteFile = 7,
  kTaskExec = 8,
  // A task of a native extension (include/sideloop.h), run through its
  // table of callbacks by the binding's ExtensionTask.
  kTaskExtension = 9,
  // Not a JS kind: a description the binding could not use (rejected_task.h).
  kTaskRejected = -1,
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_TASK_KINDS_H_
