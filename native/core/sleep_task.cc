#include "sleep_task.h"

namespace sideloop {

void SleepTask::Start() {
  if (ms_ <= 0) {
    // Due now: a timer would only cost a loop iteration and an allocation.
    Finish(TaskStatus::kOk);
    return;
  }
  uv_timer_init(loop(), &timer_);
  timer_.data = this;
  uv_timer_start(&timer_, OnFire, TimerMs(ms_), 0);
}

void SleepTask::OnFire(uv_timer_t* timer) { static_cast<SleepTask*>(timer->data)->Close(); }

void SleepTask::Abort() { Close(); }

void SleepTask::Close() {
  auto* handle = reinterpret_cast<uv_handle_t*>(&timer_);
  if (uv_is_closing(handle)) return;  // fired and aborted in the same turn
  uv_close(handle, [](uv_handle_t* h) { static_cast<SleepTask*>(h->data)->Finish(TaskStatus::kOk); });
}

}  // namespace sideloop
