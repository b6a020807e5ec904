// One unit of work run on a loop thread. This header is the whole task
// interface: every built-in task (and, later, every extension task) is a
// subclass that implements Start() and Abort() and calls Finish() once.
//
// Threads and ownership:
// - A task is created on the submitting (JS) thread and handed to a
//   LoopThread with Submit(). From then until it is delivered back through
//   LoopThread::TakeCompletions(), only the loop thread touches it, except
//   for the atomic `phase_` and `cancel_requested_`.
// - Start(), Abort() and Finish() run on the loop thread. Before calling
//   Finish() the task must have released every loop resource it holds
//   (every uv handle closed, its close callback run): after Finish() the
//   loop thread never touches the task again.
// - The submitting thread frees the task after taking it back (through
//   LoopThread::Dispose()).
// - The exception: a sleep submitted by value (see Submission) is made,
//   run and freed by the loop thread; the submitting thread never sees it.
#ifndef SIDELOOP_CORE_TASK_H_
#define SIDELOOP_CORE_TASK_H_

#include <uv.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

namespace sideloop {

class LoopThread;

// A delay in ms as a libuv timer takes it. The TS layer sends only finite,
// non-negative delays, but the core must not depend on it: converting NaN,
// an infinity or a double past 2^64 to an integer is undefined behaviour.
// Past 2^53 ms (285,000 years) the delay is "never" to libuv anyway.
inline uint64_t TimerMs(double ms) {
  if (!(ms > 0)) return 0;  // NaN too
  if (ms >= 9007199254740992.0) return UINT64_MAX;
  return static_cast<uint64_t>(std::ceil(ms));
}

// Timers that live apart from their task: StartTimer makes and starts one
// (`data` set to the task); CloseTimer stops it and frees it once libuv has
// closed it, so the task need not wait for that close. A task finished from
// a close callback came back after others finished later in the same turn
// (libuv runs close callbacks newest first): sleeps due together returned
// in reverse, where Node's timers keep the order they were started in.
uv_timer_t* StartTimer(uv_loop_t* loop, void* data, uv_timer_cb callback, double ms);
void CloseTimer(uv_timer_t* timer);

// How a task ended. The values are part of the JS binding protocol.
enum class TaskStatus : uint8_t {
  kOk = 0,
  kError = 1,
  kCancelled = 2,
  kTimedOut = 3,
};

// Where a task is in its life, readable from any thread.
enum class TaskPhase : uint8_t {
  kPending = 0,   // submitted, not started
  kRunning = 1,   // started on the loop thread
  kDone = 2,      // finished; waiting to be taken back
};

// Where a task the loop thread made itself is (LoopThread::Submit with a
// sleep described by value), kept where its owner can read it by tag: the
// owner never sees such a task.
struct TagState {
  std::atomic<TaskPhase> phase{TaskPhase::kDone};
  std::atomic<bool> cancel_requested{false};
};

// An operational failure, described the way node:fs and node:zlib describe
// theirs, so the binding can build the same kind of Error.
struct TaskError {
  std::string code;     // 'ENOENT', 'Z_DATA_ERROR', ...
  std::string message;
  std::string syscall;  // empty when not a system call
  std::string path;
  bool has_path = false;  // node:fs names even an empty path ('')
  int errnum = 0;       // negative libuv error number, or 0
  bool range_error = false;  // a limit was passed: a RangeError in JS
};

class Task {
 public:
  // `kind` tells the binding how to turn the result into a JS value.
  explicit Task(int kind) : kind_(kind) {}
  virtual ~Task() = default;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  int kind() const { return kind_; }
  TaskPhase phase() const { return phase_.load(std::memory_order_acquire); }
  TaskStatus status() const { return status_; }
  // Only meaningful when status() is kError.
  const TaskError& error() const { return error_ != nullptr ? *error_ : kNoError; }

  // The owner's name for the task (the binding's slot number), set by
  // Submit() and handed back with the completion; the core also finds the
  // tasks it made itself by it (LoopThread::CancelTag).
  uint32_t tag = 0;

  // Milliseconds the task may run before it is aborted as timed out;
  // negative for no limit. Set before Submit().
  void set_timeout(double ms) { timeout_ms_ = ms; }

  // Set by the submitting thread; read by the loop thread before Start().
  void request_cancel() { cancel_requested_.store(true, std::memory_order_release); }
  bool cancel_requested() const { return cancel_requested_.load(std::memory_order_acquire); }

 protected:
  // Loop thread: begin the work. The task must eventually call Finish().
  virtual void Start() = 0;
  // Milliseconds after which the work ends by itself, where that is known
  // in advance (a sleep); negative when not. A time limit no shorter then
  // never applies: the work wins a tie, whatever the rounding to whole
  // milliseconds would make of it.
  virtual double ends_after_ms() const { return -1; }
  // Loop thread: stop the work early (cancel, timeout, loop stop). Called at
  // most once, only after Start() and before Finish(). The task must still
  // call Finish(), now or from a close callback; its status is then replaced
  // by the abort reason.
  virtual void Abort() = 0;
  // Loop thread: the loop is stopping and will wait for this unfinished
  // task, right before it aborts every task. Called at most once, and also
  // on a task already aborting (after a cancel or a timeout). A task whose
  // end depends on something outside the process (a child that may ignore
  // SIGTERM) makes that end certain here. It may finish the task, if that
  // was all the task waited for.
  virtual void OnLoopStop() {}
  // Loop thread, from Finish(), when the task ends without a result
  // (failed, cancelled, timed out): frees what it produced so far. Here,
  // not where the task is disposed of, on the owner's thread (Node's main
  // thread): giving a GiB back to the system takes tens of milliseconds.
  virtual void DropOutput() {}

  uv_loop_t* loop() const { return loop_; }
  LoopThread* owner() const { return owner_; }
  bool aborting() const { return abort_reason_ != TaskStatus::kOk; }

  // Loop thread, exactly once, after every handle of the task is closed.
  void Finish(TaskStatus status);
  void Fail(TaskError error) {
    error_ = std::make_unique<TaskError>(std::move(error));
    Finish(TaskStatus::kError);
  }

 private:
  friend class LoopThread;

  // Called by LoopThread on the loop thread.
  void Run(LoopThread* owner, uv_loop_t* loop);
  void RequestAbort(TaskStatus reason);
  static void OnTimeout(uv_timer_t* timer);

  const int kind_;
  std::atomic<TaskPhase> phase_{TaskPhase::kPending};
  std::atomic<bool> cancel_requested_{false};
  TaskStatus status_ = TaskStatus::kOk;
  TaskStatus abort_reason_ = TaskStatus::kOk;  // kOk: not aborted
  // Allocated only when needed: most tasks neither fail nor have a time
  // limit, and a smaller task is a cheaper one at millions per second.
  std::unique_ptr<TaskError> error_;
  static const TaskError kNoError;

  double timeout_ms_ = -1;
  uv_timer_t* timeout_timer_ = nullptr;  // only while a time limit runs (StartTimer)

  LoopThread* owner_ = nullptr;
  uv_loop_t* loop_ = nullptr;
  bool finished_ = false;
  // Set by the submitting thread when a cancel message for this task was
  // queued: the task must then be freed on the loop thread, after that
  // message, never before it.
  bool cancel_message_sent_ = false;

  // The loop thread's list of started, unfinished tasks (to abort them all
  // when the loop stops).
  Task* prev_ = nullptr;
  Task* next_ = nullptr;

  // Set for a task the loop thread made itself: its phase as the owner sees
  // it. The loop thread frees such a task when it publishes it.
  TagState* tag_state_ = nullptr;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_TASK_H_
