#include "task.h"

#include "loop_thread.h"

namespace sideloop {

const TaskError Task::kNoError{};

void Task::Run(LoopThread* owner, uv_loop_t* loop) {
  owner_ = owner;
  loop_ = loop;
  phase_.store(TaskPhase::kRunning, std::memory_order_release);
  if (timeout_ms_ >= 0) {
    timeout_timer_ = std::make_unique<uv_timer_t>();
    uv_timer_init(loop_, timeout_timer_.get());
    timeout_timer_->data = this;
    uv_timer_start(timeout_timer_.get(), OnTimeout, TimerMs(timeout_ms_), 0);
  }
  // Start() may finish the task at once, and a finished task can be freed
  // by the submitting thread at any moment: nothing below may touch `this`.
  Start();
}

void Task::OnTimeout(uv_timer_t* timer) {
  static_cast<Task*>(timer->data)->RequestAbort(TaskStatus::kTimedOut);
}

void Task::RequestAbort(TaskStatus reason) {
  if (finished_ || abort_reason_ != TaskStatus::kOk) return;
  abort_reason_ = reason;
  if (timeout_timer_ != nullptr) uv_timer_stop(timeout_timer_.get());
  // As in Run(): Abort() may finish the task, so `this` is off limits after.
  Abort();
}

void Task::Finish(TaskStatus status) {
  finished_ = true;
  status_ = abort_reason_ != TaskStatus::kOk ? abort_reason_ : status;
  if (timeout_timer_ == nullptr) {
    Deliver();
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(timeout_timer_.get()), [](uv_handle_t* handle) {
    static_cast<Task*>(handle->data)->Deliver();
  });
}

void Task::Deliver() { owner_->Complete(this); }

}  // namespace sideloop
