// A private libuv loop running on its own OS thread.
//
// The submitting thread (the JS thread that owns the loop) talks to the loop
// thread through one inbox of messages, woken with uv_async_send. The loop
// thread talks back through one completion queue and a CompletionSink that
// it calls when the queue goes from empty to non-empty. Both queues are
// batch-oriented: one wake-up moves many tasks.
#ifndef SIDELOOP_CORE_LOOP_THREAD_H_
#define SIDELOOP_CORE_LOOP_THREAD_H_

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "child_reaper.h"
#include "task.h"

namespace sideloop {

class CompletionSink {
 public:
  // Loop thread: completions are ready. Not called again until
  // TakeCompletions() has emptied the queue.
  virtual void OnCompletionsReady() = 0;

 protected:
  ~CompletionSink() = default;
};

struct LoopOptions {
  std::string name = "sideloop";  // thread name; Linux keeps 15 bytes
  // Microseconds the loop thread keeps polling its inbox before it sleeps:
  // waking a sleeping thread costs ~50 µs on these machines, polling costs
  // a busy core. 0: never poll.
  uint32_t spin_us = 0;
};

// One task for Submit(): either made by the owner (`task`), or, with
// `task` null, a sleep described by value, which the loop thread makes, runs
// and frees itself. The owner then knows it by its tag only (CancelTag,
// PhaseOfTag, WaitUntilTagDone). Sleeps are the tasks made millions of times
// a second: made and freed on one thread, their memory never crosses to the
// owner's core, and the owner does no work per task beyond this record.
struct Submission {
  Task* task;
  // Set on `task` too: the completion carries it back. Tags index tables
  // (per-tag state, running tasks by tag): keep them dense, as the binding's
  // slots are (below 2^26).
  uint32_t tag;
  double sleep_ms;
  double timeout_ms;  // for a sleep by value; an owner's task carries its own
};

// A finished task handed back by TakeCompletions(). `task` is null for a
// task the loop thread made: there is nothing to dispose of.
struct Completion {
  Task* task;
  uint32_t tag;
  TaskStatus status;
};

class LoopThread {
 public:
  LoopThread(LoopOptions options, CompletionSink* sink);
  // Stops and joins the thread, then frees every task still held.
  ~LoopThread();
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  // Creates the loop and its thread. Returns 0 or a negative libuv error.
  int Start();

  // Loop thread: where exec tasks leave children that outlive them.
  ChildReaper& child_reaper() { return child_reaper_; }

  // --- Submitting thread ---
  // Hands tasks to the loop thread, in order. After a stop they are
  // completed as cancelled without running. A tag the loop thread makes a
  // task for must not be in use by another such task (not yet taken back).
  void Submit(const Submission* items, size_t count);
  // Cancels a task that has not been taken back yet. Queued tasks never
  // start; running ones are aborted on the loop thread.
  void Cancel(Task* task);
  // The same for a task the loop thread made, by its tag.
  void CancelTag(uint32_t tag);
  // Where a task the loop thread made is; kDone for a tag never used so.
  TaskPhase PhaseOfTag(uint32_t tag) const;
  // Moves up to `max` finished tasks to `out`; returns how many.
  size_t TakeCompletions(Completion* out, size_t max);
  // Frees a task taken back with TakeCompletions().
  void Dispose(Task* task);
  // Polls, without sleeping, for up to `us` microseconds until completions
  // are waiting; true when some are (the `spin` option's other half).
  bool SpinUntilCompletions(uint32_t us) const;
  // Blocks until `task` is done or `timeout_ms` passes; true when done.
  bool WaitUntilDone(const Task* task, uint64_t timeout_ms);
  bool WaitUntilTagDone(uint32_t tag, uint64_t timeout_ms);

  // --- Any thread but the loop thread ---
  // Aborts every task, stops the loop and joins the thread. Idempotent and
  // safe to call from several threads. After it returns no code of this
  // loop runs on any thread.
  void StopAndJoin();

  // Tasks started and not yet finished.
  uint32_t running() const { return running_.load(std::memory_order_relaxed); }

  // After StopAndJoin(), on the submitting thread: the room, in messages,
  // the message queues still hold (a test checks that a burst's went back).
  size_t MessageRoomAfterJoin();

 private:
  friend class Task;
  friend void StopAllLoopsAtExit();

  enum class MessageKind : uint8_t { kSubmit, kSubmitSleep, kCancel, kCancelTag, kFree };
  struct Message {
    MessageKind kind;
    Task* task = nullptr;           // kSubmit, kCancel, kFree
    uint32_t tag = 0;               // kSubmitSleep, kCancelTag
    double sleep_ms = 0;            // kSubmitSleep
    double timeout_ms = -1;         // kSubmitSleep
    TagState* tag_state = nullptr;  // kSubmitSleep
  };
  enum class State : uint8_t { kIdle, kRunning, kStopRequested, kJoined };

  static std::string ThreadName(const std::string& wanted);
  static void ThreadMain(void* arg);
  static void OnWake(uv_async_t* handle);
  static void BeforePoll(uv_prepare_t* handle);
  static void AfterPoll(uv_check_t* handle);
  static bool PollUntil(const std::atomic<bool>& flag, uint32_t us, int io_fd = -1);
  static std::unique_lock<std::mutex> LockBriefly(std::mutex& mu);

  void Post(const Message* messages, size_t count);
  void ReadInbox();                               // loop thread
  void ProcessBacklog(bool budgeted);             // loop thread
  void ComeBackSoon();                            // loop thread
  void HandleAfterJoin(const Message& message);  // inbox_mu_ held
  void ProcessMessage(const Message& message);    // loop thread
  void StartOrDiscard(Task* task);                // loop thread
  static Task* MakeSleep(const Message& message);
  bool WaitUntil(const std::atomic<TaskPhase>& phase, uint64_t timeout_ms);
  TagState* StateOf(uint32_t tag);                // submitting thread
  TagState* FindState(uint32_t tag) const;        // submitting thread; null if never made
  void BeginStop();                               // loop thread
  void StopAndJoinThread();
  static void WaitUntilReaped(int tid);
  void Complete(Task* task);                      // loop thread, from Task
  void CountRunning(int delta);                   // loop thread
  void Discard(Task* task, TaskStatus status, bool on_loop_thread);  // complete unstarted
  void PublishFinished();                         // loop thread: finished_here_ -> completions_
  void Publish(Task* const* tasks, size_t count, bool notify_sink);
  void Link(Task* task);
  void Unlink(Task* task);
  void ForEachLiveTask(void (*visit)(Task* task));

  const LoopOptions options_;
  CompletionSink* const sink_;
  uv_loop_t loop_;
  uv_async_t wake_;
  uv_prepare_t before_poll_;
  uv_check_t after_poll_;
  // Started for one turn (ComeBackSoon): the poll then returns at once.
  uv_idle_t come_back_;
  uv_thread_t thread_;
  ChildReaper child_reaper_{&loop_};

  // Inbox: submitting thread -> loop thread.
  std::mutex inbox_mu_;
  std::vector<Message> inbox_;
  State state_ = State::kIdle;
  // The inbox has messages: what a spinning loop thread polls, lock-free.
  std::atomic<bool> inbox_ready_{false};
  // The loop thread is polling inbox_ready_: a submission then needs no
  // uv_async_send (a system call, made under inbox_mu_, that a spinning
  // loop thread would otherwise wait for, asleep, on that mutex).
  std::atomic<bool> loop_spinning_{false};

  // Submitting thread only: Submit()'s scratch space, and the states of
  // tasks the loop thread makes, by tag, in chunks that never move (the loop
  // thread keeps pointers to them).
  std::vector<Message> outbox_;
  static constexpr uint32_t kTagsPerChunk = 256;
  std::vector<std::unique_ptr<TagState[]>> tag_states_;

  // Completions: loop thread -> submitting thread.
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  // Published and not yet taken: completions_[completions_taken_...]. A
  // vector reused turn after turn: a deque allocated a block on this thread
  // for every 32 completions and freed it on the other (a fifth of the loop
  // thread's time under a flood of sleep(0)).
  std::vector<Completion> completions_;
  size_t completions_taken_ = 0;
  bool sink_notified_ = false;
  std::atomic<bool> has_completions_{false};  // completions_ is not empty, read lock-free
  // The submitting thread is polling has_completions_ (SpinUntilCompletions):
  // publishing then needs no sink notification.
  mutable std::atomic<bool> owner_spinning_{false};
  int waiters_ = 0;

  std::mutex join_mu_;  // serializes StopAndJoinThread()
  // Written by the loop thread only (CountRunning), read by any.
  std::atomic<uint32_t> running_{0};
  std::atomic<int> tid_{0};  // the loop thread's kernel id, for WaitUntilReaped

  // Loop thread only.
  std::vector<Message> backlog_;  // taken from the inbox, handled up to backlog_at_
  size_t backlog_at_ = 0;
  Task* live_head_ = nullptr;  // started, unfinished tasks
  // ForEachLiveTask's next task in live_head_'s list. Ending one task may
  // end others (an extension's cancel may complete every task sharing a
  // resource): Unlink() moves this on past a task it takes out, so the
  // walk never follows a link of a task no longer in the list.
  Task* walk_next_ = nullptr;
  std::vector<Task*> live_by_tag_;  // started, unfinished tasks this thread made
  // Finished on the loop thread, not yet published to completions_: they go
  // out together before the loop next polls for I/O or sleeps, and in parts
  // while a long backlog is worked on (ProcessBacklog).
  std::vector<Task*> finished_here_;
  bool stopping_ = false;
  uint64_t published_at_ = 0;  // uv_hrtime() of the last publication
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_LOOP_THREAD_H_
