// A stress test of the native core alone (no Node): many loops, many tasks,
// cancels racing completions, stops with work in flight. Built and run under
// ThreadSanitizer by scripts/tsan.sh; any data race, leak of a task or lost
// completion fails it.
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <unistd.h>

#include "../../native/core/exec_task.h"
#include "../../native/core/exit_guard.h"
#include "../../native/core/loop_thread.h"
#include "../../native/core/read_file_task.h"
#include "../../native/core/sleep_task.h"
#include "../../native/core/task_kinds.h"
#include "../../native/core/zlib_task.h"

using namespace sideloop;

namespace {

// The binding's side of the loop, reduced to counting wake-ups.
class Sink : public CompletionSink {
 public:
  void OnCompletionsReady() override {
    std::lock_guard<std::mutex> lock(mu_);
    wakes_++;
    cv_.notify_all();
  }
  // Waits for the next wake-up (or a short while: completions can also be
  // taken without one, e.g. after a stop).
  void Wait() { WaitFor(std::chrono::milliseconds(5)); }
  // False when no wake-up came within `timeout`.
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    bool woken = cv_.wait_for(lock, timeout, [this] { return wakes_ > 0; });
    wakes_ = 0;
    return woken;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int wakes_ = 0;
};

int failures = 0;

// Input for the CPU tasks: borrowed by them, so it outlives every round.
const std::vector<uint8_t> kInput(3 * 1024 * 1024 + 7, 'x');

// A mix of every kind of work: timers, steps on the CPU, file reads, a child
// process. Null: a sleep the loop thread makes itself (Submission by value).
Task* MakeTask(int i, std::mt19937& random) {
  switch (i % 16) {
    case 0:
    case 1:
      return new ZlibTask(kTaskGzip, 1, kInput.data(), random() % kInput.size());
    case 2:
      return new ReadFileTask("/proc/self/status");
    case 3:
      if (i % 160 == 3 || i % 160 == 83) {
        ExecOptions options;
        options.env = {"PATH=/usr/bin:/bin"};
        if (i % 160 == 3) {
          options.file = "true";
        } else {
          // Deaf to SIGTERM: a cancel or a timeout hands it to the ChildReaper,
          // and the loop's stop kills it there.
          options.file = "sh";
          options.args = {"-c", "trap '' TERM; exec sleep 0.2"};
        }
        return new ExecTask(std::move(options));
      }
      [[fallthrough]];
    default:
      return i % 2 == 0 ? nullptr : new SleepTask(random() % 3);
  }
}

LoopOptions Options(const char* name, uint32_t spin_us = 0) {
  LoopOptions options;
  options.name = name;
  options.spin_us = spin_us;
  return options;
}

// Cancels a submitted task the way its owner knows it: by pointer, or by tag
// for one the loop thread made.
void CancelItem(LoopThread& loop, const Submission& item) {
  if (item.task != nullptr) loop.Cancel(item.task);
  else loop.CancelTag(item.tag);
}

void Expect(bool ok, const char* what, int round) {
  if (ok) return;
  std::fprintf(stderr, "round %d: %s\n", round, what);
  failures++;
}

void Round(int round, std::mt19937& random) {
  Sink sink;
  LoopThread loop(Options("core-stress"), &sink);
  Expect(loop.Start() == 0, "start", round);

  const int total = 2000;
  std::vector<Submission> items;
  for (int i = 0; i < total; i++) {
    Task* task = MakeTask(i, random);
    double timeout = random() % 8 == 0 ? random() % 2 : -1;
    auto tag = static_cast<uint32_t>(i);
    if (task == nullptr) {
      items.push_back({nullptr, tag, static_cast<double>(random() % 3), timeout});
      continue;
    }
    task->set_timeout(timeout);
    items.push_back({task, tag, 0, -1});
  }
  std::vector<bool> back(total, false);
  // Submit in uneven batches, cancelling some at once and some later.
  for (size_t at = 0; at < items.size();) {
    size_t n = std::min<size_t>(1 + random() % 300, items.size() - at);
    loop.Submit(&items[at], n);
    for (size_t i = at; i < at + n; i++) {
      if (random() % 10 == 0) CancelItem(loop, items[i]);
    }
    at += n;
  }
  const bool stop_early = random() % 3 == 0;
  if (stop_early) loop.StopAndJoin();

  int taken = 0;
  std::vector<Completion> batch(256);
  int idle_waits = 0;
  while (taken < total && idle_waits < 2000) {
    // Block on some task the loop thread made, racing its completion.
    const Submission& some = items[random() % total];
    if (some.task == nullptr && !back[some.tag]) loop.WaitUntilTagDone(some.tag, random() % 2);
    size_t n = loop.TakeCompletions(batch.data(), batch.size());
    if (n == 0) {
      sink.Wait();
      idle_waits++;
      continue;
    }
    for (size_t i = 0; i < n; i++) {
      const Completion& completion = batch[i];
      Task* task = completion.task;
      Expect(task == items[completion.tag].task, "a completion names its task", round);
      TaskPhase phase = task != nullptr ? task->phase() : loop.PhaseOfTag(completion.tag);
      Expect(phase == TaskPhase::kDone, "a completed task is done", round);
      Expect(!back[completion.tag], "a task came back twice", round);
      back[completion.tag] = true;
      // Cancel after completion but before disposal: must be harmless.
      if (random() % 16 == 0) CancelItem(loop, items[completion.tag]);
      if (task != nullptr) loop.Dispose(task);
      taken++;
    }
  }
  Expect(taken == total, "every task came back", round);
  Expect(loop.running() == 0, "nothing left running", round);
  loop.StopAndJoin();
}

// The `spin` handshake: while one side polls, the other skips its wake-up
// (LoopThread::Post, LoopThread::Publish). With a spin of a microsecond or
// two, spins end all the time, racing with submissions and completions: a
// lost wake-up on either side leaves a task stranded, which the strict
// wait below reports instead of papering over.
void SpinRound(int round, uint32_t spin_us) {
  Sink sink;
  LoopThread loop(Options("core-spin", spin_us), &sink);
  Expect(loop.Start() == 0, "start", round);
  Completion batch[1];
  for (int i = 0; i < 3000 && failures == 0; i++) {
    // Every other one made by the loop thread, under the same tag each time.
    Submission item{i % 2 == 0 ? nullptr : new SleepTask(0), 0, 0, -1};
    loop.Submit(&item, 1);
    size_t n = 0;
    while (n == 0) {
      // Either our own spin sees the completion, or the loop thread must
      // wake us. A stale wake-up (from a completion the spin already saw)
      // only costs one more turn here.
      if (!loop.SpinUntilCompletions(spin_us) && !sink.WaitFor(std::chrono::seconds(10))) {
        Expect(false, "a wake-up was lost: the task never came back", round);
        break;
      }
      n = loop.TakeCompletions(batch, 1);
    }
    if (n == 1 && batch[0].task != nullptr) loop.Dispose(batch[0].task);
  }
  loop.StopAndJoin();
  while (loop.TakeCompletions(batch, 1) == 1) {
    if (batch[0].task != nullptr) loop.Dispose(batch[0].task);
  }
}

// One tag used over and over: by sleeps by value, sleeps the owner made and
// gzips, with cancels before, during and after each task, some of them stale
// (nothing under the tag any more). A cancel must never reach the next task
// under the tag, and each task must come back under it.
void TagReuseRound(int round, std::mt19937& random, uint32_t spin_us) {
  Sink sink;
  LoopThread loop(Options("core-tags", spin_us), &sink);
  Expect(loop.Start() == 0, "start", round);
  constexpr uint32_t kTag = 7;
  for (int i = 0; i < 3000 && failures == 0; i++) {
    Task* task = nullptr;
    switch (random() % 3) {
      case 1:
        task = new SleepTask(random() % 2);
        break;
      case 2:
        task = new ZlibTask(kTaskGzip, 1, kInput.data(), 64 * 1024);
        break;
    }
    Submission item{task, kTag, static_cast<double>(random() % 2), -1};
    loop.Submit(&item, 1);
    const bool cancelled = random() % 2 == 0;
    if (cancelled) {
      if (random() % 2 == 0) std::this_thread::yield();  // sometimes once it runs
      CancelItem(loop, item);
    }
    Completion completion{};
    while (loop.TakeCompletions(&completion, 1) == 0) {
      if (task != nullptr) loop.WaitUntilDone(task, 1);
      else loop.WaitUntilTagDone(kTag, 1);
    }
    Expect(completion.task == task && completion.tag == kTag, "the completion is the tag's task", round);
    Expect(cancelled || completion.status != TaskStatus::kCancelled, "a cancel reached a later task", round);
    Expect(task != nullptr || loop.PhaseOfTag(kTag) == TaskPhase::kDone, "a task taken back is done", round);
    if (random() % 4 == 0) CancelItem(loop, item);  // after completion, before disposal
    if (task != nullptr) loop.Dispose(task);
    if (random() % 4 == 0) loop.CancelTag(kTag);  // stale
  }
  loop.StopAndJoin();
}

// A burst of queued sleeps, far more than the JS side ever sends at once:
// once they are handled, the room they took in the message queues is given
// back, not held until the loop stops.
void BurstRound(int round) {
  Sink sink;
  LoopThread loop(Options("core-burst"), &sink);
  Expect(loop.Start() == 0, "start", round);
  constexpr uint32_t kBurst = 100000;
  std::vector<Submission> items;
  for (uint32_t tag = 0; tag < kBurst; tag++) items.push_back({nullptr, tag, 0, -1});
  loop.Submit(items.data(), items.size());
  std::vector<Completion> batch(1024);
  uint32_t taken = 0;
  for (int idle_waits = 0; taken < kBurst && idle_waits < 2000;) {
    size_t n = loop.TakeCompletions(batch.data(), batch.size());
    if (n == 0) {
      sink.Wait();
      idle_waits++;
    }
    taken += static_cast<uint32_t>(n);
  }
  Expect(taken == kBurst, "every sleep of the burst came back", round);
  loop.StopAndJoin();
  Expect(loop.MessageRoomAfterJoin() < kBurst / 2, "the burst's room in the message queues was given back", round);
}

// Delays the TS layer never sends (NaN, infinities, past 2^64 ms, negative),
// as sleeps and as timeouts: the core must neither convert them with
// undefined behaviour (the sanitizer build checks float-to-integer casts) nor
// lose the task. A delay that is "never" ends by its timeout or a cancel.
void OddDelayRound(int round) {
  Sink sink;
  LoopThread loop(Options("core-delays", 0), &sink);
  Expect(loop.Start() == 0, "start", round);
  const double nan = std::nan(""), inf = HUGE_VAL;
  struct Case {
    double delay, timeout;
    bool cancel;
    TaskStatus expected;
  };
  const Case cases[] = {
      {nan, -1, false, TaskStatus::kOk},           {-1, -1, false, TaskStatus::kOk},
      {0, nan, false, TaskStatus::kOk},            {inf, 1, false, TaskStatus::kTimedOut},
      {1e300, 0, false, TaskStatus::kTimedOut},    {inf, inf, true, TaskStatus::kCancelled},
      {1e20, 1e300, true, TaskStatus::kCancelled}, {-inf, -inf, false, TaskStatus::kOk},
  };
  const uint32_t n = sizeof cases / sizeof cases[0];
  std::vector<Submission> items;
  for (uint32_t i = 0; i < 2 * n; i++) {
    const Case& c = cases[i % n];
    Task* task = nullptr;
    if (i >= n) {  // the same delays on tasks the owner made
      task = new SleepTask(c.delay);
      task->set_timeout(c.timeout);
    }
    items.push_back({task, i, c.delay, c.timeout});
  }
  loop.Submit(items.data(), items.size());
  for (uint32_t i = 0; i < 2 * n; i++) {
    if (cases[i % n].cancel) CancelItem(loop, items[i]);
  }
  uint32_t taken = 0;
  for (int waits = 0; taken < 2 * n && waits < 2000;) {
    Completion completion{};
    if (loop.TakeCompletions(&completion, 1) == 0) {
      sink.Wait();
      waits++;
      continue;
    }
    Expect(completion.status == cases[completion.tag % n].expected, "an odd delay ends as it should", round);
    if (completion.task != nullptr) loop.Dispose(completion.task);
    taken++;
  }
  Expect(taken == 2 * n, "every odd delay came back", round);
  loop.StopAndJoin();
}

// process.exit() as Node does it: libuv's process-wide state is shut down
// (uv_library_shutdown: the signal lock pipe is closed) before the exit
// handler stops the loops. A child spawned or ended meanwhile aborted the
// process, as long as exec used uv_spawn, whose SIGCHLD watcher takes that
// lock when it starts and stops. Here children start, end, and are stopped
// at exit after the shutdown, among them one that runs on with its output
// pipes closed, whose task the exit handler must still finish. Last: the
// shutdown cannot be undone.
void ExitRound(int round) {
  static Sink sink;
  static LoopThread* loop = new LoopThread(Options("core-exit"), &sink);
  Expect(loop->Start() == 0, "start", round);
  uv_library_shutdown();
  ExecOptions quick;
  quick.file = "/bin/true";
  quick.env = {"PATH=/usr/bin:/bin"};
  Submission first{new ExecTask(std::move(quick)), 3, 0, -1};
  loop->Submit(&first, 1);
  Completion ended{};
  for (int waits = 0; loop->TakeCompletions(&ended, 1) == 0 && waits < 2000; waits++) sink.Wait();
  Expect(ended.tag == 3 && ended.status == TaskStatus::kOk, "a child ran and ended after libuv's shutdown", round);
  loop->Dispose(ended.task);
  const std::string said = "/tmp/sideloop-core-exit-" + std::to_string(getpid());
  ExecOptions options;
  options.file = "/bin/sh";
  options.args = {"-c", "exec >/dev/null 2>&1; : > \"$0\"; exec sleep 30", said};
  options.env = {"PATH=/usr/bin:/bin"};
  static Task* exec = new ExecTask(std::move(options));
  Submission item{exec, 1, 0, -1};
  loop->Submit(&item, 1);
  for (int i = 0; i < 10000 && access(said.c_str(), F_OK) != 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  unlink(said.c_str());
  // Both pipes' ends were readable before this submission: by the time it
  // comes back, the loop thread has read them (in the same poll, or before).
  Submission after{nullptr, 2, 0, -1};
  loop->Submit(&after, 1);
  Completion completion{};
  for (int waits = 0; loop->TakeCompletions(&completion, 1) == 0 && waits < 2000; waits++) sink.Wait();
  Expect(completion.tag == 2, "the sleep after the child's closing came back", round);
  StopAllLoopsAtExit();
  Completion last{};
  Expect(loop->TakeCompletions(&last, 1) == 1 && last.task == exec, "the exec task finished at exit", round);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 50;
  std::mt19937 random(20261127);
  for (int round = 0; round < rounds && failures == 0; round++) Round(round, random);
  for (int round = 0; round < 4 && failures == 0; round++) SpinRound(round, round % 2 == 0 ? 1 : 5);
  for (int round = 0; round < 2 && failures == 0; round++) TagReuseRound(round, random, round == 0 ? 0 : 5);
  if (failures == 0) OddDelayRound(0);
  if (failures == 0) BurstRound(0);
  if (failures == 0) ExitRound(0);  // last: it leaves its loop as an exit does
  if (failures == 0) std::printf("core stress: %d rounds passed\n", rounds);
  return failures == 0 ? 0 : 1;
}
