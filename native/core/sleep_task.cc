#include "sleep_task.h"

namespace sideloop {

void SleepTask::Start() {
  if (ms_ <= 0) {
    // Due now: a timer would only cost a loop iteration and an allocation.
    Finish(TaskStatus::kOk);
    return;
  }
  timer_ = StartTimer(loop(), this, OnFire, ms_);
}

void SleepTask::OnFire(uv_timer_t* timer) {
  auto* self = static_cast<SleepTask*>(timer->data);
  CloseTimer(self->timer_);
  self->timer_ = nullptr;
  self->Finish(TaskStatus::kOk);
}

// Before the timer fired: once it has, the task is finished and not aborted.
void SleepTask::Abort() {
  if (timer_ != nullptr) CloseTimer(timer_);
  timer_ = nullptr;
  Finish(TaskStatus::kOk);
}

}  // namespace sideloop
