// A task that does its work in bounded steps: the first inside Start(),
// then one per turn of the loop, driven by a uv_idle_t. Between two steps
// the loop runs timers and reads its inbox, so a cancel or a timeout stops
// even a 512 MiB job within one step, and other tasks on the same loop take
// their turns in between. A step that must wait for something outside the
// process has the next one come on a uv_timer_t (a lease holder) or a
// uv_poll_t (a full terminal) instead, the loop free meanwhile (it slept a
// millisecond on the loop thread, once per waiting task per turn: the
// loop's other tasks waited for all of them). Hashing, compression and file
// tasks are built on it.
#ifndef SIDELOOP_CORE_STEP_TASK_H_
#define SIDELOOP_CORE_STEP_TASK_H_

#include <cstddef>
#include <cstdint>

#include "task.h"

namespace sideloop {

// About how many bytes one step reads or writes: small enough that a step
// takes a millisecond or two, large enough that the per-step cost vanishes.
constexpr size_t kStepBytes = 512 * 1024;
// And how long a step may take, for work whose speed varies widely by
// input (zlib at level 9 on very compressible text: 512 KiB took 100-250 ms
// here, so a task that fit in one step could not time out or be cancelled).
constexpr uint64_t kStepBudgetNs = 1000 * 1000;

class StepTask : public Task {
 protected:
  explicit StepTask(int kind) : Task(kind) {}

  // kWait: Step() again after a wait on a timer, 1 ms, doubling up to 32 ms
  // while the steps keep waiting (a long wait then costs little CPU).
  // kWaitWritable (made by WaitWritable()): Step() again once a file
  // descriptor can take a write.
  enum class StepResult { kMore, kDone, kFailed, kWait, kWaitWritable };
  // Loop thread: one bounded piece of the work. Before returning kFailed
  // it sets `failure_`.
  virtual StepResult Step() = 0;
  // Loop thread, once, when the steps end for any reason (done, failed,
  // aborted): let go of what the steps hold, such as a file descriptor.
  virtual void EndSteps() {}

  TaskError failure_;

  // For Step(): records why the task failed and says it did.
  StepResult Failed(TaskError error) {
    failure_ = std::move(error);
    return StepResult::kFailed;
  }
  // For Step(): the next step comes when `fd` (a terminal, say, whose write
  // failed with EAGAIN) can take a write: at once when it has room, where a
  // timer would wait a millisecond each time its small buffer filled (a fast
  // reader empties it in microseconds: 16 MiB to a terminal took 6 times
  // as long). EndSteps() may close `fd`: the wait is over by then.
  StepResult WaitWritable(int fd) {
    writable_fd_ = fd;
    return StepResult::kWaitWritable;
  }
  // For EndSteps(): closes a file the steps opened (synchronously: the loop
  // thread never queues on libuv's shared threadpool) and marks it closed.
  void CloseFile(int* fd);

 private:
  void Start() final;
  void Abort() final;
  static void OnIdle(uv_idle_t* idle);
  static void OnTimer(uv_timer_t* timer);
  static void OnWritable(uv_poll_t* poll, int status, int events);
  void Continue(StepResult result);
  // Opens poll_ for writable_fd_ (once); false when it cannot watch it.
  bool WatchWritable();
  void Stop(TaskStatus status);
  // Ends the task once no handle of its steps is open: fails with failure_
  // for kError, else finishes with `status`.
  void Conclude(TaskStatus status);

  uv_idle_t idle_;
  uv_timer_t timer_;
  uv_poll_t poll_;  // opened by the first kWaitWritable
  bool poll_open_ = false;
  int writable_fd_ = -1;
  int closes_left_ = 0;
  uint64_t wait_ms_ = 1;
  TaskStatus status_on_close_ = TaskStatus::kOk;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_STEP_TASK_H_
