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
  } else {
    uv_idle_stop(&idle_);
    uv_timer_start(&timer_, OnTimer, wait_ms_, 0);
    wait_ms_ = wait_ms_ < kLongestWaitMs ? wait_ms_ * 2 : kLongestWaitMs;
  }
}

void StepTask::OnIdle(uv_idle_t* idle) {
  auto* self = static_cast<StepTask*>(idle->data);
  StepResult result = self->Step();
  if (result == StepResult::kMore || result == StepResult::kWait) self->Continue(result);
  else self->Stop(result == StepResult::kDone ? TaskStatus::kOk : TaskStatus::kError);
}

void StepTask::OnTimer(uv_timer_t* timer) {
  auto* self = static_cast<StepTask*>(timer->data);
  uv_idle_start(&self->idle_, OnIdle);
}

void StepTask::Abort() { Stop(TaskStatus::kCancelled); }

void StepTask::Stop(TaskStatus status) {
  auto* handle = reinterpret_cast<uv_handle_t*>(&idle_);
  // An abort can arrive after the last step, while the handle closes.
  if (uv_is_closing(handle)) return;
  uv_idle_stop(&idle_);
  uv_timer_stop(&timer_);
  EndSteps();
  // The status travels in the handles' close: Finish() only after both closed.
  status_on_close_ = status;
  closes_left_ = 2;
  auto closed = [](uv_handle_t* h) {
    auto* self = static_cast<StepTask*>(h->data);
    if (--self->closes_left_ == 0) self->Conclude(self->status_on_close_);
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), closed);
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
