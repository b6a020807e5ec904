#include "loop_thread.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "exit_guard.h"
#include "sleep_task.h"

namespace sideloop {

namespace {
// Finished tasks are published once kPublishEvery of them wait, or once
// kPublishAfterNs passed since the last publication (so the first result
// after a quiet spell goes out at once); and always before the loop polls
// for I/O. Each publication may wake the owner's thread: publishing every
// task of 50 µs cost more than it saved (measured on the CPU benchmark).
constexpr size_t kPublishEvery = 128;
constexpr uint64_t kPublishAfterNs = 250 * 1000;
// Completions whose room is kept once the queue empties (16 bytes each).
constexpr size_t kCompletionsKept = 4096;
// Messages whose room the outbox, the inbox and the backlog each keep once
// handled (48 bytes each): two of the JS side's fullest batches. Room beyond
// that, left by a burst of a million queued tasks, would be held until the
// loop stops.
constexpr size_t kMessagesKept = 8192;
// How long one turn of the loop works on its backlog of messages.
constexpr uint64_t kTurnBudgetNs = 1000 * 1000;
// Sleeps by value take a few dozen nanoseconds each to start: the clock is
// read after every this many in a row, not after each (reading it after each
// took a quarter of this thread's time under a flood of sleep(0)). Any other
// message may run a task's first step, of unknown length: the clock is read
// after each of those.
constexpr uint32_t kSleepsPerClockRead = 32;
}  // namespace

LoopThread::LoopThread(LoopOptions options, CompletionSink* sink)
    : options_(std::move(options)), sink_(sink) {}

LoopThread::~LoopThread() {
  StopAndJoin();
  // Whatever the owner did not take back is freed here.
  for (size_t i = completions_taken_; i < completions_.size(); i++) delete completions_[i].task;
}

int LoopThread::Start() {
  int err = uv_loop_init(&loop_);
  if (err != 0) return err;
  err = uv_async_init(&loop_, &wake_, OnWake);
  if (err == 0) {
    wake_.data = this;
    // Before and after every poll for I/O: publish what finished meanwhile
    // (and spin, when asked to). Unreferenced: wake_ alone keeps the loop alive.
    uv_prepare_init(&loop_, &before_poll_);
    before_poll_.data = this;
    uv_prepare_start(&before_poll_, BeforePoll);
    uv_unref(reinterpret_cast<uv_handle_t*>(&before_poll_));
    uv_check_init(&loop_, &after_poll_);
    after_poll_.data = this;
    uv_check_start(&after_poll_, AfterPoll);
    uv_unref(reinterpret_cast<uv_handle_t*>(&after_poll_));
    uv_idle_init(&loop_, &come_back_);
    come_back_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&come_back_));
    state_ = State::kRunning;  // before the thread exists: no lock needed
    err = uv_thread_create(&thread_, ThreadMain, this);
    if (err == 0) {
      // Named from here, not by the thread itself, so that the name is
      // visible (in /proc/self/task/*/comm) as soon as Start() returns.
      pthread_setname_np(thread_, ThreadName(options_.name).c_str());
      RegisterForExit(this);
      return 0;
    }
    state_ = State::kIdle;
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&before_poll_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&after_poll_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&come_back_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop_);
  return err;
}

// Linux limits thread names to 15 bytes; cut at a UTF-8 character start.
std::string LoopThread::ThreadName(const std::string& wanted) {
  std::string name = wanted.substr(0, 15);
  if (wanted.size() > 15) {
    while (!name.empty() && (static_cast<unsigned char>(wanted[name.size()]) & 0xC0) == 0x80) name.pop_back();
  }
  return name;
}

void LoopThread::ThreadMain(void* arg) {
  auto* self = static_cast<LoopThread*>(arg);
  self->tid_.store(static_cast<int>(syscall(SYS_gettid)), std::memory_order_release);
  uv_run(&self->loop_, UV_RUN_DEFAULT);
  self->PublishFinished();  // what the last close callbacks finished
  // Every handle is closed by now (BeginStop), so this cannot fail.
  uv_loop_close(&self->loop_);
}

// ---------------------------------------------------------------- inbox

void LoopThread::Submit(const Submission* items, size_t count) {
  outbox_.clear();
  for (size_t i = 0; i < count; i++) {
    const Submission& item = items[i];
    if (item.task != nullptr) {
      item.task->tag = item.tag;
      outbox_.push_back({MessageKind::kSubmit, item.task});
      continue;
    }
    // Reset for this use: the tag's previous task was taken back already.
    TagState* state = StateOf(item.tag);
    state->cancel_requested.store(false, std::memory_order_relaxed);
    state->phase.store(TaskPhase::kPending, std::memory_order_relaxed);
    // Filled in place: a temporary built field by field and then copied
    // whole stalls on its own stores (the copy's wide load cannot take
    // them from the store buffer), per task.
    Message& message = outbox_.emplace_back();
    message.kind = MessageKind::kSubmitSleep;
    message.tag = item.tag;
    message.sleep_ms = item.sleep_ms;
    message.timeout_ms = item.timeout_ms;
    message.tag_state = state;
  }
  Post(outbox_.data(), outbox_.size());
  if (outbox_.capacity() > kMessagesKept) std::vector<Message>().swap(outbox_);
}

void LoopThread::Cancel(Task* task) {
  task->request_cancel();
  if (task->phase() == TaskPhase::kDone) return;
  // The task may finish before the loop thread reads this message; the
  // message then must not outlive the task: see Dispose().
  task->cancel_message_sent_ = true;
  Message message{MessageKind::kCancel, task};
  Post(&message, 1);
}

void LoopThread::CancelTag(uint32_t tag) {
  TagState* state = FindState(tag);
  if (state == nullptr) return;
  state->cancel_requested.store(true, std::memory_order_release);
  if (state->phase.load(std::memory_order_acquire) == TaskPhase::kDone) return;
  // Read in order with the tag's submission: the task it finds under the
  // tag is this one, since the tag is not reused before it is taken back.
  Message message{MessageKind::kCancelTag, nullptr, tag};
  Post(&message, 1);
}

TaskPhase LoopThread::PhaseOfTag(uint32_t tag) const {
  TagState* state = FindState(tag);
  return state != nullptr ? state->phase.load(std::memory_order_acquire) : TaskPhase::kDone;
}

TagState* LoopThread::StateOf(uint32_t tag) {
  size_t chunk = tag / kTagsPerChunk;
  if (chunk >= tag_states_.size()) tag_states_.resize(chunk + 1);
  if (tag_states_[chunk] == nullptr) tag_states_[chunk] = std::make_unique<TagState[]>(kTagsPerChunk);
  return &tag_states_[chunk][tag % kTagsPerChunk];
}

TagState* LoopThread::FindState(uint32_t tag) const {
  size_t chunk = tag / kTagsPerChunk;
  if (chunk >= tag_states_.size() || tag_states_[chunk] == nullptr) return nullptr;
  return &tag_states_[chunk][tag % kTagsPerChunk];
}

void LoopThread::Dispose(Task* task) {
  if (!task->cancel_message_sent_) {
    delete task;
    return;
  }
  // A cancel message may still sit in the inbox: free the task behind it.
  Message message{MessageKind::kFree, task};
  Post(&message, 1);
}

void LoopThread::Post(const Message* messages, size_t count) {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  switch (state_) {
    case State::kIdle:
    case State::kJoined:
      for (size_t i = 0; i < count; i++) HandleAfterJoin(messages[i]);
      return;
    case State::kRunning: {
      bool was_empty = inbox_.empty();
      inbox_.insert(inbox_.end(), messages, messages + count);
      inbox_ready_.store(true);
      // A spinning loop thread sees inbox_ready_ by itself. Both flags are
      // sequentially consistent (a release store here would let the load of
      // loop_spinning_ pass it: both sides could then miss each other), and
      // the thread checks inbox_ready_ again after it stops spinning
      // (BeforePoll), so one side always notices.
      // Sent under the lock: the loop thread closes wake_ only after it has
      // seen kStopRequested under this same lock.
      if (was_empty && !loop_spinning_.load()) uv_async_send(&wake_);
      return;
    }
    case State::kStopRequested:
      // The loop thread may have read its inbox for the last time; the
      // joiner handles what is left once the thread is gone.
      inbox_.insert(inbox_.end(), messages, messages + count);
      return;
  }
}

void LoopThread::HandleAfterJoin(const Message& message) {
  switch (message.kind) {
    case MessageKind::kSubmit:
      Discard(message.task, TaskStatus::kCancelled, false);  // the owner drains the queue itself
      break;
    case MessageKind::kSubmitSleep:
      Discard(MakeSleep(message), TaskStatus::kCancelled, false);
      break;
    case MessageKind::kCancel:
    case MessageKind::kCancelTag:
      break;  // every task is finished once the thread is gone
    case MessageKind::kFree:
      delete message.task;
      break;
  }
}

void LoopThread::OnWake(uv_async_t* handle) { static_cast<LoopThread*>(handle->data)->ReadInbox(); }

// Moves the inbox behind whatever is left of the backlog and works on it.
void LoopThread::ReadInbox() {
  // Under a steady load of long first steps the backlog never empties, and
  // would keep every message ever appended to it: what was handled goes,
  // once it is at least half (so that a move never shifts more than it
  // drops, however long the rest).
  if (backlog_at_ > 0 && backlog_at_ * 2 >= backlog_.size()) {
    backlog_.erase(backlog_.begin(), backlog_.begin() + static_cast<std::ptrdiff_t>(backlog_at_));
    backlog_at_ = 0;
  }
  bool stop;
  std::vector<Message> released;  // freed after the lock is let go
  {
    std::unique_lock<std::mutex> lock = LockBriefly(inbox_mu_);
    if (backlog_.empty()) {
      backlog_.swap(inbox_);
    } else {
      backlog_.insert(backlog_.end(), inbox_.begin(), inbox_.end());
      inbox_.clear();
      if (inbox_.capacity() > kMessagesKept) inbox_.swap(released);
    }
    inbox_ready_.store(false, std::memory_order_relaxed);
    stop = state_ == State::kStopRequested;
  }
  if (stop && !stopping_) {
    // Queued submissions are cancelled without being started, however
    // many there are: stopping must not wait for their first steps.
    stopping_ = true;
    ProcessBacklog(false);
    BeginStop();
  } else {
    ProcessBacklog(true);
  }
  PublishFinished();
}

// Handles queued messages in order. With `budgeted`, stops after about
// kTurnBudgetNs and comes back on the next turn: a task's first step runs
// inside Start(), so a long batch of big tasks would otherwise keep timers,
// cancels and I/O waiting for all their first steps.
void LoopThread::ProcessBacklog(bool budgeted) {
  // Timed from before its first message: a long first step ends the turn too.
  const uint64_t started = uv_hrtime();
  uint32_t sleeps_unclocked = 0;
  while (backlog_at_ < backlog_.size()) {
    bool sleep = backlog_[backlog_at_].kind == MessageKind::kSubmitSleep;
    ProcessMessage(backlog_[backlog_at_++]);
    // The last message needs no clock: every caller publishes after this.
    if (backlog_at_ == backlog_.size()) break;
    // The work of anything but a sleep may have taken a while: the next
    // task's timers (a sleep, a time limit) are timed from the loop's clock,
    // which libuv reads only once per phase, and would fire that much early.
    if (!sleep) uv_update_time(&loop_);
    if (sleep && ++sleeps_unclocked < kSleepsPerClockRead) continue;
    sleeps_unclocked = 0;
    uint64_t now = uv_hrtime();
    // Finished tasks go out in parts, by count or by age: the owner starts
    // settling them while this thread runs the rest. Without this, 16
    // hashes of 64 KiB would come back together and this thread would then
    // wait, idle, for the owner to submit more.
    if (!finished_here_.empty() && (finished_here_.size() >= kPublishEvery || now - published_at_ >= kPublishAfterNs)) {
      PublishFinished();
    }
    if (budgeted && now - started >= kTurnBudgetNs) break;
  }
  if (backlog_at_ < backlog_.size()) {
    ComeBackSoon();
    return;
  }
  backlog_.clear();
  backlog_at_ = 0;
  // The room goes back to the inbox at the next swap: kept, unless a burst
  // made it large.
  if (backlog_.capacity() > kMessagesKept) std::vector<Message>().swap(backlog_);
}

// The next poll for I/O returns at once (an active idle handle sees to it),
// and the next turn carries on with the backlog and, with spin, spins again.
void LoopThread::ComeBackSoon() {
  uv_idle_start(&come_back_, [](uv_idle_t* idle) {
    uv_idle_stop(idle);
    auto* self = static_cast<LoopThread*>(idle->data);
    uv_update_time(&self->loop_);  // the steps of other tasks' idle handles may have run first
    self->ProcessBacklog(true);
    self->PublishFinished();
  });
}

void LoopThread::ProcessMessage(const Message& message) {
  Task* task = message.task;
  switch (message.kind) {
    case MessageKind::kSubmit:
      StartOrDiscard(task);
      break;
    case MessageKind::kSubmitSleep:
      StartOrDiscard(MakeSleep(message));
      break;
    case MessageKind::kCancel:
      // Kept alive by the Free message that Dispose() queues behind this one.
      if (task->phase() == TaskPhase::kRunning) task->RequestAbort(TaskStatus::kCancelled);
      break;
    case MessageKind::kCancelTag:
      task = message.tag < live_by_tag_.size() ? live_by_tag_[message.tag] : nullptr;
      if (task != nullptr) task->RequestAbort(TaskStatus::kCancelled);
      break;
    case MessageKind::kFree:
      delete task;
      break;
  }
}

void LoopThread::StartOrDiscard(Task* task) {
  if (stopping_ || task->cancel_requested()) {
    Discard(task, TaskStatus::kCancelled, true);
    return;
  }
  // A time limit of 0 has passed as the task starts: none of its work runs,
  // whether it would finish in its first step or not (the same on both
  // backends, and never a race with that first step).
  if (task->timeout_ms_ == 0) {
    Discard(task, TaskStatus::kTimedOut, true);
    return;
  }
  Link(task);
  CountRunning(1);
  if (TagState* state = task->tag_state_) {
    if (task->tag >= live_by_tag_.size()) live_by_tag_.resize(std::max<size_t>(size_t{task->tag} + 1, live_by_tag_.size() * 2));
    live_by_tag_[task->tag] = task;
    state->phase.store(TaskPhase::kRunning, std::memory_order_release);
  }
  task->Run(this, &loop_);
}

// A sleep described by value becomes a task here, on the thread that will
// also free it (or on the joiner's, after the thread is gone).
Task* LoopThread::MakeSleep(const Message& message) {
  Task* task = new SleepTask(message.sleep_ms);
  task->tag = message.tag;
  task->set_timeout(message.timeout_ms);
  task->tag_state_ = message.tag_state;
  if (message.tag_state->cancel_requested.load(std::memory_order_acquire)) task->request_cancel();
  return task;
}

void LoopThread::BeginStop() {
  stopping_ = true;
  // Warned first, in a walk of its own: the abort below may finish and
  // unlink a task, and a finished task is no longer ours to touch. The
  // warning may finish it too, and either may finish others.
  ForEachLiveTask([](Task* task) { task->OnLoopStop(); });
  ForEachLiveTask([](Task* task) { task->RequestAbort(TaskStatus::kCancelled); });
  // After the aborts, which may hand it children.
  child_reaper_.Stop();
  // With wake_ closed and every task aborted, uv_run returns once the last
  // close callback has run.
  uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&before_poll_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&after_poll_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&come_back_), nullptr);
}

// Runs right before the loop would block for I/O: what finished since the
// last publication goes out now, never left behind while the thread sleeps.
// With spin_us, the inbox is then polled for a while: that answers a
// submission in about a microsecond instead of the ~50 µs it takes to wake a
// sleeping thread.
void LoopThread::BeforePoll(uv_prepare_t* handle) {
  auto* self = static_cast<LoopThread*>(handle->data);
  self->PublishFinished();
  int next_timer_ms = uv_backend_timeout(&self->loop_);  // -1: no timer
  if (self->options_.spin_us == 0 || self->stopping_ || next_timer_ms == 0) return;
  // Never past the next timer (a sleep, a task's time limit), which would
  // otherwise fire only when the spin ends; and not past ready I/O either
  // (PollUntil looks at the loop's epoll fd now and then).
  uint32_t spin_us = self->options_.spin_us;
  if (next_timer_ms > 0) spin_us = static_cast<uint32_t>(std::min<uint64_t>(spin_us, uint64_t{1000} * next_timer_ms));
  self->loop_spinning_.store(true);
  bool ready = PollUntil(self->inbox_ready_, spin_us, uv_backend_fd(&self->loop_));
  self->loop_spinning_.store(false);
  // The poll that follows times its wait from the loop's clock, read before
  // the spin: a timer due during the spin would wait as long again.
  uv_update_time(&self->loop_);
  // A submission that saw us spinning sent no wake-up: look once more.
  if (!ready && !self->inbox_ready_.load()) return;
  self->ReadInbox();
  // Poll for I/O without sleeping, then come back here to spin again.
  if (!self->stopping_) self->ComeBackSoon();
}

// Runs right after the poll: publishes what I/O callbacks finished.
void LoopThread::AfterPoll(uv_check_t* handle) { static_cast<LoopThread*>(handle->data)->PublishFinished(); }

// ---------------------------------------------------------------- stop

void LoopThread::StopAndJoin() {
  // First leave the exit registry: if the atexit handler is running, this
  // waits until it has joined us, so it never sees a freed loop.
  UnregisterForExit(this);
  StopAndJoinThread();
}

void LoopThread::StopAndJoinThread() {
  std::lock_guard<std::mutex> join_lock(join_mu_);
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (state_ != State::kRunning) return;  // never started, or joined
    state_ = State::kStopRequested;
    // A spinning thread watches inbox_ready_, not the async handle: without
    // it, the stop would wait for the whole spin (up to spin_us).
    inbox_ready_.store(true);
    uv_async_send(&wake_);
  }
  uv_thread_join(&thread_);
  WaitUntilReaped(tid_.load(std::memory_order_acquire));
  std::lock_guard<std::mutex> lock(inbox_mu_);
  state_ = State::kJoined;
  for (const Message& message : inbox_) HandleAfterJoin(message);
  inbox_.clear();
}

size_t LoopThread::MessageRoomAfterJoin() {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  return outbox_.capacity() + inbox_.capacity() + backlog_.capacity();
}

// A joined thread has finished running, but the kernel lists it (in
// /proc/self/task, and for tgkill) until it has also been reaped, a few
// microseconds later. Waiting for that keeps the promise that no thread of a
// stopped loop exists, as anyone who counts threads sees it.
void LoopThread::WaitUntilReaped(int tid) {
  if (tid <= 0) return;
  for (int i = 0; i < 100000; i++) {
    if (syscall(SYS_tgkill, getpid(), tid, 0) != 0) return;  // ESRCH: gone
    sched_yield();
  }
}

// ---------------------------------------------------------------- completions

void LoopThread::Complete(Task* task) {
  Unlink(task);
  if (task->tag_state_ != nullptr) live_by_tag_[task->tag] = nullptr;
  CountRunning(-1);
  finished_here_.push_back(task);
}

// One writer, so a plain load and store: an atomic read-modify-write is a
// full barrier on x86, and twice per task it stalled this thread until its
// earlier stores (to memory the owner's core had touched last) completed.
void LoopThread::CountRunning(int delta) {
  running_.store(running_.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

void LoopThread::Discard(Task* task, TaskStatus status, bool on_loop_thread) {
  task->owner_ = this;
  task->finished_ = true;
  task->status_ = status;
  if (on_loop_thread) {
    finished_here_.push_back(task);
  } else {
    // After the join: the owner drains the queue itself, no sink needed.
    Publish(&task, 1, false);
  }
}

void LoopThread::PublishFinished() {
  if (finished_here_.empty()) return;
  published_at_ = uv_hrtime();
  Publish(finished_here_.data(), finished_here_.size(), true);
  finished_here_.clear();
}

// One lock and at most one wake-up for a whole batch of finished tasks.
void LoopThread::Publish(Task* const* tasks, size_t count, bool notify_sink) {
  bool notify;
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    for (size_t i = 0; i < count; i++) {
      Task* task = tasks[i];
      task->phase_.store(TaskPhase::kDone, std::memory_order_release);
      if (TagState* state = task->tag_state_) {
        // Made here, so freed here: the owner knows it by its tag only.
        completions_.push_back({nullptr, task->tag, task->status_});
        state->phase.store(TaskPhase::kDone, std::memory_order_release);
        delete task;
      } else {
        completions_.push_back({task, task->tag, task->status_});
      }
    }
    has_completions_.store(true);
    // A spinning owner sees has_completions_ by itself, and looks once more
    // after it stops spinning (SpinUntilCompletions): no wake-up needed.
    notify = notify_sink && !sink_notified_ && !owner_spinning_.load();
    if (notify) sink_notified_ = true;
    if (waiters_ > 0) done_cv_.notify_all();
  }
  if (notify && sink_ != nullptr) sink_->OnCompletionsReady();
}

size_t LoopThread::TakeCompletions(Completion* out, size_t max) {
  std::unique_lock<std::mutex> lock = LockBriefly(done_mu_);
  size_t n = std::min(max, completions_.size() - completions_taken_);
  std::copy_n(completions_.begin() + completions_taken_, n, out);
  completions_taken_ += n;
  if (completions_taken_ == completions_.size()) {
    completions_taken_ = 0;
    // Kept for reuse, unless a flood made it large.
    if (completions_.capacity() > kCompletionsKept) std::vector<Completion>().swap(completions_);
    else completions_.clear();
    sink_notified_ = false;
    has_completions_.store(false, std::memory_order_relaxed);
  } else if (completions_taken_ * 2 >= completions_.size()) {
    // Under a flood the queue may never empty: what was taken goes, or the
    // vector would grow with every completion. Moves no more than it drops.
    completions_.erase(completions_.begin(), completions_.begin() + completions_taken_);
    completions_taken_ = 0;
  }
  return n;
}

bool LoopThread::SpinUntilCompletions(uint32_t us) const {
  owner_spinning_.store(true);
  bool ready = PollUntil(has_completions_, us);
  owner_spinning_.store(false);
  // A publication that saw us spinning did not notify the sink: look once more.
  return ready || has_completions_.load();
}

// Locks a mutex that the other side may hold for a moment. Right after a
// spin saw the other side's flag, that side may still be inside its short
// critical section: a plain lock() would then sleep in the kernel and pay
// the ~50 µs wake-up that spinning exists to avoid. The retries cover a
// few microseconds only: longer (1,000 retries) made p99 worse without
// spin, where Post() holds the lock across uv_async_send.
std::unique_lock<std::mutex> LoopThread::LockBriefly(std::mutex& mu) {
  for (int i = 0; i < 64; i++) {
    if (mu.try_lock()) return std::unique_lock<std::mutex>(mu, std::adopt_lock);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  return std::unique_lock<std::mutex>(mu);
}

// Polls `flag` for up to `us` microseconds, without sleeping. The clock is
// read every few dozen polls only: reading it costs more than a poll. With
// `io_fd` (a loop's epoll fd), also gives up once that is readable, looked
// at every kIoCheckUs: a child's output or exit, or a file request done,
// must not wait for the whole spin (a system call each time, so not at
// every clock read).
bool LoopThread::PollUntil(const std::atomic<bool>& flag, uint32_t us, int io_fd) {
  constexpr auto kIoCheckUs = std::chrono::microseconds(50);
  auto now = std::chrono::steady_clock::now();
  auto deadline = now + std::chrono::microseconds(us);
  auto next_io_check = now + kIoCheckUs;
  for (;;) {
    for (int i = 0; i < 32; i++) {
      if (flag.load(std::memory_order_acquire)) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();  // be kind to the sibling hyperthread
#endif
    }
    now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    if (io_fd >= 0 && now >= next_io_check) {
      struct pollfd io = {io_fd, POLLIN, 0};
      if (poll(&io, 1, 0) > 0) return false;
      next_io_check = now + kIoCheckUs;
    }
  }
}

bool LoopThread::WaitUntilDone(const Task* task, uint64_t timeout_ms) { return WaitUntil(task->phase_, timeout_ms); }

bool LoopThread::WaitUntilTagDone(uint32_t tag, uint64_t timeout_ms) {
  TagState* state = FindState(tag);
  return state == nullptr || WaitUntil(state->phase, timeout_ms);
}

// Both phases turn kDone in Publish(), under done_mu_.
bool LoopThread::WaitUntil(const std::atomic<TaskPhase>& phase, uint64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lock(done_mu_);
  waiters_++;
  bool done = done_cv_.wait_until(lock, deadline, [&phase] { return phase.load(std::memory_order_acquire) == TaskPhase::kDone; });
  waiters_--;
  return done;
}

// ---------------------------------------------------------------- live list

// `visit` may end the task it is given and others (an extension's cancel
// may complete every task sharing a resource): Unlink() moves the walk's
// next task on past any task it takes out.
void LoopThread::ForEachLiveTask(void (*visit)(Task* task)) {
  for (Task* task = live_head_; task != nullptr; task = walk_next_) {
    walk_next_ = task->next_;
    visit(task);
  }
}

void LoopThread::Link(Task* task) {
  task->prev_ = nullptr;
  task->next_ = live_head_;
  if (live_head_ != nullptr) live_head_->prev_ = task;
  live_head_ = task;
}

void LoopThread::Unlink(Task* task) {
  if (task == walk_next_) walk_next_ = task->next_;
  if (task->prev_ != nullptr) task->prev_->next_ = task->next_;
  else live_head_ = task->next_;
  if (task->next_ != nullptr) task->next_->prev_ = task->prev_;
  task->prev_ = task->next_ = nullptr;
}

}  // namespace sideloop
