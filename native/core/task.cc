#include "task.h"

#include "loop_thread.h"

namespace sideloop {

const TaskError Task::kNoError{};

uv_timer_t* StartTimer(uv_loop_t* loop, void* data, uv_timer_cb callback, double ms) {
  auto* timer = new uv_timer_t;
  uv_timer_init(loop, timer);
  timer->data = data;
  uv_timer_start(timer, callback, TimerMs(ms), 0);
  return timer;
}

void CloseTimer(uv_timer_t* timer) {
  uv_timer_stop(timer);
  uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* handle) {
    delete reinterpret_cast<uv_timer_t*>(handle);
  });
}

void Task::Run(LoopThread* owner, uv_loop_t* loop) {
  owner_ = owner;
  loop_ = loop;
  phase_.store(TaskPhase::kRunning, std::memory_order_release);
  const double ends_after = ends_after_ms();
  if (timeout_ms_ >= 0 && !(ends_after >= 0 && timeout_ms_ >= ends_after)) {
    // Started before the work's own timers: a limit shorter than the work
    // that rounds to the same millisecond still fires first.
    timeout_timer_ = StartTimer(loop_, this, OnTimeout, timeout_ms_);
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
  if (timeout_timer_ != nullptr) uv_timer_stop(timeout_timer_);
  // As in Run(): Abort() may finish the task, so `this` is off limits after.
  Abort();
}

void Task::Finish(TaskStatus status) {
  finished_ = true;
  status_ = abort_reason_ != TaskStatus::kOk ? abort_reason_ : status;
  if (status_ != TaskStatus::kOk) DropOutput();
  if (timeout_timer_ != nullptr) {
    CloseTimer(timeout_timer_);
    timeout_timer_ = nullptr;
  }
  owner_->Complete(this);
}

}  // namespace sideloop
