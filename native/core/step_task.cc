#include "step_task.h"

namespace sideloop {

void StepTask::Start() {
  // The first step runs at once: work that fits in one step (most payloads)
  // is then done in the turn that received it, with no handle to open and
  // close, and goes back to the owner while this thread runs the next task.
  StepResult first = Step();
  if (first != StepResult::kMore) {
    EndSteps();
    Conclude(first == StepResult::kDone ? TaskStatus::kOk : TaskStatus::kError);
    return;
  }
  uv_idle_init(loop(), &idle_);
  idle_.data = this;
  uv_idle_start(&idle_, OnIdle);
}

void StepTask::OnIdle(uv_idle_t* idle) {
  auto* self = static_cast<StepTask*>(idle->data);
  StepResult result = self->Step();
  if (result != StepResult::kMore) self->Stop(result == StepResult::kDone ? TaskStatus::kOk : TaskStatus::kError);
}

void StepTask::Abort() { Stop(TaskStatus::kCancelled); }

void StepTask::Stop(TaskStatus status) {
  auto* handle = reinterpret_cast<uv_handle_t*>(&idle_);
  // An abort can arrive after the last step, while the handle closes.
  if (uv_is_closing(handle)) return;
  uv_idle_stop(&idle_);
  EndSteps();
  // The status travels in the handle's close: Finish() only after the close.
  status_on_close_ = status;
  uv_close(handle, [](uv_handle_t* h) {
    auto* self = static_cast<StepTask*>(h->data);
    self->Conclude(self->status_on_close_);
  });
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
