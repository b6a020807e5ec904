#include "child_reaper.h"

#include <sys/wait.h>

#include <cerrno>
#include <csignal>

namespace sideloop {

namespace {

// How often the orphans are looked at. Polled rather than told by SIGCHLD:
// the loop never touches libuv's signal handling (see exec_task.h).
constexpr uint64_t kTickMs = 10;

}  // namespace

void KillAndReap(int pid) {
  int options = kill(pid, SIGKILL) == 0 ? 0 : WNOHANG;
  int status;
  while (waitpid(pid, &status, options) < 0 && errno == EINTR) {
  }
}

void ChildReaper::Adopt(int pid) {
  if (stopped_) {  // no later turn to look at it in
    KillAndReap(pid);
    return;
  }
  if (!timer_started_) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    timer_started_ = true;
  }
  orphans_.push_back({pid, uv_now(loop_) + kKillGraceMs, false});
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) uv_timer_start(&timer_, OnTick, kTickMs, kTickMs);
}

void ChildReaper::OnTick(uv_timer_t* timer) {
  auto* self = static_cast<ChildReaper*>(timer->data);
  self->ReapExited();
  uint64_t now = uv_now(self->loop_);
  for (Orphan& orphan : self->orphans_) {
    if (!orphan.killed && now >= orphan.kill_at) {
      kill(orphan.pid, SIGKILL);
      orphan.killed = true;
    }
  }
  if (self->orphans_.empty()) uv_timer_stop(timer);
}

void ChildReaper::ReapExited() {
  size_t kept = 0;
  for (const Orphan& orphan : orphans_) {
    int status;
    pid_t reaped;
    do {
      reaped = waitpid(orphan.pid, &status, WNOHANG);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == 0) orphans_[kept++] = orphan;  // still running
  }
  orphans_.resize(kept);
}

void ChildReaper::Stop() {
  for (const Orphan& orphan : orphans_) KillAndReap(orphan.pid);
  orphans_.clear();
  if (timer_started_) uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  stopped_ = true;
}

}  // namespace sideloop
