#include "step_task.h"

namespace sideloop {

namespace {

constexpr uint64_t kLongestWaitMs = 32;

}  // namespace

void StepTask::Start() {
  // The first step runs at once: work that fits in one step (most payloads)
  // is then done in the turn that received it, with no handle to open and
  // close, and goes back to the owner while this thread runs the next task.
  StepResult first = Step();
  if (first == StepResult::kDone || first == StepResult::kFailed) {
    EndSteps();
    Conclude(first == StepResult::kDone ? TaskStatus::kOk : TaskStatus::kError);
    return;
  }
  uv_idle_init(loop(), &idle_);
  idle_.data = this;
  uv_timer_init(loop(), &timer_);
  timer_.data = this;
  Continue(first);
}

void StepTask::Continue(StepResult result) {
  if (result == StepResult::kMore) {
    wait_ms_ = 1;
    uv_idle_start(&idle_, OnIdle);
  } else if (result == StepResult::kWaitWritable && WatchWritable()) {
    uv_idle_stop(&idle_);
    uv_poll_start(&poll_, UV_WRITABLE, OnWritable);
  } else {
    uv_idle_stop(&idle_);
    uv_timer_start(&timer_, OnTimer, wait_ms_, 0);
    wait_ms_ = wait_ms_ < kLongestWaitMs ? wait_ms_ * 2 : kLongestWaitMs;
  }
}

bool StepTask::WatchWritable() {
  if (poll_open_) {
    uv_os_fd_t watched;
    return uv_fileno(reinterpret_cast<uv_handle_t*>(&poll_), &watched) == 0 && watched == writable_fd_;
  }
  // A descriptor epoll cannot watch waits on the timer instead.
  if (uv_poll_init(loop(), &poll_, writable_fd_) != 0) return false;
  poll_.data = this;
  poll_open_ = true;
  return true;
}

void StepTask::OnIdle(uv_idle_t* idle) {
  auto* self = static_cast<StepTask*>(idle->data);
  StepResult result = self->Step();
  if (result == StepResult::kDone || result == StepResult::kFailed) {
    self->Stop(result == StepResult::kDone ? TaskStatus::kOk : TaskStatus::kError);
  } else {
    self->Continue(result);
  }
}

void StepTask::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<StepTask*>(timer->data);
  uv_idle_start(&self->idle_, OnIdle);
}

void StepTask::OnWritable(uv_poll_t* poll, int /*status*/, int /*events*/) {
  // An error (the terminal hung up) is the next write's to report.
  auto* self = static_cast<StepTask*>(poll->data);
  uv_poll_stop(poll);
  uv_idle_start(&self->idle_, OnIdle);
}

void StepTask::Abort() { Stop(TaskStatus::kCancelled); }

void StepTask::Stop(TaskStatus status) {
  auto* handle = reinterpret_cast<uv_handle_t*>(&idle_);
  // An abort can arrive after the last step, while the handle closes.
  if (uv_is_closing(handle)) return;
  uv_idle_stop(&idle_);
  uv_timer_stop(&timer_);
  if (poll_open_) uv_poll_stop(&poll_);  // before EndSteps() closes the descriptor it watches
  EndSteps();
  // The status travels in the handles' close: Finish() only after all closed.
  status_on_close_ = status;
  closes_left_ = poll_open_ ? 3 : 2;
  auto closed = [](uv_handle_t* h) {
    auto* self = static_cast<StepTask*>(h->data);
    if (--self->closes_left_ == 0) self->Conclude(self->status_on_close_);
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), closed);
  if (poll_open_) uv_close(reinterpret_cast<uv_handle_t*>(&poll_), closed);
  uv_close(handle, closed);
}

void StepTask::Conclude(TaskStatus status) {
  if (status == TaskStatus::kError) Fail(std::move(failure_));
  else Finish(status);
}

void StepTask::CloseFile(int* fd) {
  if (*fd < 0) return;
  uv_fs_t req;
  uv_fs_close(loop(), &req, *fd, nullptr);
  uv_fs_req_cleanup(&req);
  *fd = -1;
}

}  // namespace sideloop
