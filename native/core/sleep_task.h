// sleep(ms): a timer on the loop thread. The value it resolves with stays on
// the JS side; the task only keeps time.
#ifndef SIDELOOP_CORE_SLEEP_TASK_H_
#define SIDELOOP_CORE_SLEEP_TASK_H_

#include "recycled.h"
#include "task.h"
#include "task_kinds.h"

namespace sideloop {

// Recycled: tiny tasks are the ones whose allocation shows.
class SleepTask final : public Task, public Recycled<SleepTask> {
 public:
  using Recycled<SleepTask>::operator new;
  using Recycled<SleepTask>::operator delete;

  explicit SleepTask(double ms) : Task(kTaskSleep), ms_(ms) {}

 protected:
  void Start() override;
  void Abort() override;
  double ends_after_ms() const override { return ms_; }

 private:
  static void OnFire(uv_timer_t* timer);

  const double ms_;
  uv_timer_t* timer_ = nullptr;  // while it runs (StartTimer)
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_SLEEP_TASK_H_
