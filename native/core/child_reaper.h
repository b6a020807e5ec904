// Children of exec tasks that are over (cancelled, timed out, failed) while
// the child had not exited yet. The task sends SIGTERM, as child_process
// does, so the child may clean up, and ends at once: its Future does not
// wait for a child that takes its time, or ignores SIGTERM. The child is
// handed over here, and gets SIGKILL if it is still alive kKillGraceMs
// later. Its process handle is closed (libuv no longer watches it), so it
// is reaped here, with waitpid; until then its pid cannot be reused, so a
// late SIGKILL never reaches a stranger (one that may not be signalled is
// left when the loop stops: see KillAndReap). Loop thread only.
#ifndef SIDELOOP_CORE_CHILD_REAPER_H_
#define SIDELOOP_CORE_CHILD_REAPER_H_

#include <uv.h>

#include <cstdint>
#include <vector>

namespace sideloop {

// Sends `pid`, an unreaped child, SIGKILL and reaps it. A child that may
// not be signalled (it became another user, as sudo does) is left running,
// reaped only if it has exited: waiting for it would hold up the loop's
// stop, and with it process.exit() or a worker's end, until it exits by
// itself, maybe never (node:child_process waits for none either). Once it
// exits it stays a zombie until the process ends: nothing waits for it.
void KillAndReap(int pid);

// How long a child has between SIGTERM and SIGKILL. The worker backend
// gives its children the same (KILL_GRACE_MS in src/backends/worker-exec.ts).
constexpr uint64_t kKillGraceMs = 2000;

class ChildReaper {
 public:
  explicit ChildReaper(uv_loop_t* loop) : loop_(loop) {}

  // Takes over `pid`, an unreaped child that was sent SIGTERM.
  void Adopt(int pid);
  // The loop is stopping: every child left gets SIGKILL and is reaped now
  // (KillAndReap), and the timer is closed. At process exit too: waitpid needs none of
  // libuv's signal handling, which process.exit() has shut down by then.
  void Stop();

 private:
  struct Orphan {
    int pid;
    uint64_t kill_at;  // uv_now() ms
    bool killed;
  };

  static void OnTick(uv_timer_t* timer);
  void ReapExited();

  uv_loop_t* const loop_;
  // Made with the first orphan: most loops never have one.
  bool timer_started_ = false;
  bool stopped_ = false;
  uv_timer_t timer_;
  std::vector<Orphan> orphans_;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_CHILD_REAPER_H_
