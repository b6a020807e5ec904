// exec(file, args, options): a child process spawned with uv_spawn on the
// loop's own uv_loop_t (no shell), stdin fed from `input` and closed,
// stdout and stderr collected. The task finishes after the child has
// exited and every handle is closed; or, cut short (cancel, timeout,
// maxBuffer), at once, leaving the child to the loop's ChildReaper. Either
// way no zombie is left behind.
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
  void OnLoopStop(bool process_exiting) override;

 private:
  struct Output {
    uv_pipe_t pipe;
    ByteBuffer bytes;
    const char* name;  // for the maxBuffer error
  };

  static void OnExit(uv_process_t* process, int64_t exit_status, int term_signal);
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWritten(uv_write_t* req, int status);
  static void OnClosed(uv_handle_t* handle);

  int Spawn();
  void FeedStdin();
  Output& OutputOf(uv_stream_t* stream);
  bool OutputsEnded() const;  // both output pipes closed or closing
  void StopEarly(TaskError* error);
  void HandOverChild();
  void CloseHandle(void* handle);
  void CloseAllAfterExit();
  void Done();

  const ExecOptions options_;
  uv_process_t process_;
  uv_pipe_t stdin_;
  uv_write_t write_req_;
  Output outputs_[2] = {{{}, {}, "stdout"}, {{}, {}, "stderr"}};

  int open_handles_ = 0;
  bool spawned_ = false;
  bool exited_ = false;  // exited, or handed over: no longer ours to wait for
  bool stopping_early_ = false;  // aborted or failed: stop waiting for output
  bool keep_process_handle_ = false;  // see OnLoopStop()
  bool process_handle_let_go_ = false;  // the kept handle counted as closed
  bool failed_ = false;
  TaskError failure_;
  int64_t exit_code_ = 0;
  int term_signal_ = 0;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_EXEC_TASK_H_
