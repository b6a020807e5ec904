// A task that fails as soon as it starts. The binding submits one in place
// of a task description it cannot use (a protocol mismatch between the JS
// layer and the addon), so that every slot the JS side submitted still comes
// back through the completion queue, as an error, and no Future is left
// pending for ever.
#ifndef SIDELOOP_CORE_REJECTED_TASK_H_
#define SIDELOOP_CORE_REJECTED_TASK_H_

#include <string>

#include "task.h"
#include "task_kinds.h"

namespace sideloop {

class RejectedTask final : public Task {
 public:
  explicit RejectedTask(std::string message) : Task(kTaskRejected), message_(std::move(message)) {}

 protected:
  void Start() override {
    TaskError error;
    error.code = "ERR_SIDELOOP_BAD_TASK";
    error.message = message_;
    Fail(std::move(error));
  }
  void Abort() override {}  // never running long enough to be aborted

 private:
  const std::string message_;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_REJECTED_TASK_H_
