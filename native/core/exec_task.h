// exec(file, args, options): a child process (no shell), stdin fed from
// `input` and closed, stdout and stderr collected. The task finishes after
// the child has exited and every handle is closed; or, cut short (cancel,
// timeout, maxBuffer), at once, leaving the child to the loop's ChildReaper.
// Either way no zombie is left behind.
//
// Spawned with posix_spawn and watched through a pidfd (polled with waitpid
// where there is none), not with uv_spawn: uv_spawn's SIGCHLD watcher starts
// and stops with the loop's first and last child, and that takes libuv's
// process-wide signal lock, which Node closes (uv_library_shutdown) when it
// exits without cleanup hooks: a child that started or ended in that window
// aborted the process. This loop never touches libuv's signal handling.
#ifndef SIDELOOP_CORE_EXEC_TASK_H_
#define SIDELOOP_CORE_EXEC_TASK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "byte_buffer.h"
#include "task.h"
#include "task_kinds.h"

namespace sideloop {

struct ExecOptions {
  std::string file;
  std::vector<std::string> args;  // without argv[0], which is `file`
  std::string cwd;                // empty: the parent's
  std::vector<std::string> env;   // "KEY=value": the child's whole environment
  // Borrowed: whoever submits the task keeps it alive until it is taken back.
  const uint8_t* input = nullptr;
  size_t input_size = 0;
  uint64_t max_buffer = UINT64_MAX;  // bytes allowed per output stream
};

class ExecTask final : public Task {
 public:
  explicit ExecTask(ExecOptions options) : Task(kTaskExec), options_(std::move(options)) {}

  // The outcome, once the task finished successfully.
  int64_t exit_code() const { return exit_code_; }
  // 'SIGTERM', ... when a signal ended the child; nullptr when it exited,
  // or when the signal has no name Node knows.
  const char* signal_name() const;
  bool signaled() const { return term_signal_ != 0; }
  ByteBuffer TakeStdout() { return std::move(outputs_[0].bytes); }
  ByteBuffer TakeStderr() { return std::move(outputs_[1].bytes); }

 protected:
  void Start() override;
  void Abort() override;
  void OnLoopStop() override;
  void DropOutput() override {
    for (Output& output : outputs_) output.bytes.Free();
  }

 private:
  struct Output {
    uv_pipe_t pipe;
    ByteBuffer bytes;
    const char* name;  // for the maxBuffer error
  };

  static void OnExitReadable(uv_poll_t* poll, int status, int events);
  static void OnExitPollTick(uv_timer_t* timer);
  static void OnWatchClosed(uv_handle_t* handle);
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWritten(uv_write_t* req, int status);
  static void OnClosed(uv_handle_t* handle);

  int Spawn();
  int SpawnChild(int stdin_fd, int stdout_fd, int stderr_fd);
  void WatchExit();
  uv_handle_t* ExitWatch();
  void ReapIfExited();
  void MarkExited();
  void FeedStdin();
  Output& OutputOf(uv_stream_t* stream);
  bool OutputsEnded() const;  // both output pipes closed or closing
  void StopEarly(TaskError* error);
  void HandOverChild();
  void CloseHandle(void* handle);
  void CloseAllAfterExit();
  void Done();

  const ExecOptions options_;
  int pid_ = 0;
  int pidfd_ = -1;
  // How the child's exit is watched: a pidfd polled for readability, or
  // (an old kernel, no descriptor left) a timer that looks with waitpid.
  bool watch_by_pidfd_ = false;
  union {
    uv_poll_t exit_readable_;
    uv_timer_t exit_poll_;
  };
  uv_pipe_t stdin_;
  uv_write_t write_req_;
  Output outputs_[2] = {{{}, {}, "stdout"}, {{}, {}, "stderr"}};

  int open_handles_ = 0;
  bool spawned_ = false;
  bool exited_ = false;  // exited, or handed over: no longer ours to wait for
  bool stopping_early_ = false;  // aborted or failed: stop waiting for output
  bool failed_ = false;
  TaskError failure_;
  int64_t exit_code_ = 0;
  int term_signal_ = 0;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_EXEC_TASK_H_
