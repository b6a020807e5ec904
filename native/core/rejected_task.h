// A task that fails as soon as it starts. The binding submits one in place
// of a task description it cannot use (a protocol mismatch between the JS
// layer and the addon) or whose input it had no memory to take, so that
// every slot the JS side submitted still comes back through the completion
// queue, as an error, and no Future is left pending for ever.
#ifndef SIDELOOP_CORE_REJECTED_TASK_H_
#define SIDELOOP_CORE_REJECTED_TASK_H_

#include <utility>

#include "task.h"
#include "task_kinds.h"

namespace sideloop {

class RejectedTask final : public Task {
 public:
  explicit RejectedTask(TaskError error) : Task(kTaskRejected), error_(std::move(error)) {}

 protected:
  void Start() override { Fail(std::move(error_)); }
  void Abort() override {}  // never running long enough to be aborted

 private:
  TaskError error_;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_REJECTED_TASK_H_
