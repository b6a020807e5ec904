#include "exit_guard.h"

#include <cstdlib>
#include <mutex>
#include <unordered_set>

#include "loop_thread.h"

namespace sideloop {

namespace {

struct Registry {
  std::mutex mu;
  std::unordered_set<LoopThread*> loops;
};

// Never destroyed: it must outlive every static destructor that could run
// while a loop is still registered.
Registry& registry() {
  static Registry* instance = new Registry();
  return *instance;
}

}  // namespace

void StopAllLoopsAtExit() {
  Registry& r = registry();
  // Held throughout, so no loop can be unregistered and freed meanwhile.
  std::lock_guard<std::mutex> lock(r.mu);
  for (LoopThread* loop : r.loops) loop->StopAndJoinThread();
  r.loops.clear();
}

void RegisterForExit(LoopThread* loop) {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(StopAllLoopsAtExit); });
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.loops.insert(loop);
}

void UnregisterForExit(LoopThread* loop) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.loops.erase(loop);
}

}  // namespace sideloop
