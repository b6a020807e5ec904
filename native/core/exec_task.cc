#include "exec_task.h"

#include <sys/wait.h>

#include <cerrno>
#include <csignal>

#include "loop_thread.h"
#include "task_errors.h"

namespace sideloop {

namespace {

// What one read asks for: a pipe holds 64 KiB on Linux.
constexpr size_t kReadBytes = 64 * 1024;

// Signal names as Node reports them (not strsignal's descriptions).
struct SignalName {
  int number;
  const char* name;
};
constexpr SignalName kSignalNames[] = {
    {SIGHUP, "SIGHUP"},     {SIGINT, "SIGINT"},       {SIGQUIT, "SIGQUIT"},   {SIGILL, "SIGILL"},
    {SIGTRAP, "SIGTRAP"},   {SIGABRT, "SIGABRT"},     {SIGBUS, "SIGBUS"},     {SIGFPE, "SIGFPE"},
    {SIGKILL, "SIGKILL"},   {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"},   {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"},   {SIGALRM, "SIGALRM"},     {SIGTERM, "SIGTERM"},   {SIGCHLD, "SIGCHLD"},
    {SIGCONT, "SIGCONT"},   {SIGSTOP, "SIGSTOP"},     {SIGTSTP, "SIGTSTP"},   {SIGTTIN, "SIGTTIN"},
    {SIGTTOU, "SIGTTOU"},   {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"},   {SIGXFSZ, "SIGXFSZ"},
    {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},   {SIGWINCH, "SIGWINCH"}, {SIGIO, "SIGIO"},
    {SIGSYS, "SIGSYS"},
#ifdef SIGSTKFLT
    {SIGSTKFLT, "SIGSTKFLT"},
#endif
#ifdef SIGPWR
    {SIGPWR, "SIGPWR"},
#endif
};

TaskError SpawnError(int err, const std::string& file) {
  TaskError error;
  error.code = uv_err_name(err);
  error.errnum = err;
  error.syscall = "spawn " + file;
  error.path = file;
  error.has_path = true;
  error.message = error.syscall + " " + error.code;
  return error;
}

TaskError MaxBufferError(const char* stream) {
  TaskError error;
  error.code = "ERR_CHILD_PROCESS_STDIO_MAXBUFFER";
  error.message = std::string(stream) + " maxBuffer length exceeded";
  error.range_error = true;
  return error;
}

}  // namespace

const char* ExecTask::signal_name() const {
  for (const SignalName& s : kSignalNames) {
    if (s.number == term_signal_) return s.name;
  }
  return nullptr;
}

void ExecTask::Start() {
  // Every handle is initialized before anything can fail, so that every
  // path out closes all four the same way.
  uv_pipe_init(loop(), &stdin_, 0);
  uv_pipe_init(loop(), &outputs_[0].pipe, 0);
  uv_pipe_init(loop(), &outputs_[1].pipe, 0);
  stdin_.data = outputs_[0].pipe.data = outputs_[1].pipe.data = process_.data = this;
  open_handles_ = 3;
  int err = Spawn();
  open_handles_++;  // uv_spawn initializes the process handle even when it fails
  if (err != 0) {
    failed_ = true;
    failure_ = SpawnError(err, options_.file);
    exited_ = true;  // there is no child to wait for
    CloseAllAfterExit();
    return;
  }
  spawned_ = true;
  for (Output& output : outputs_) {
    uv_read_start(reinterpret_cast<uv_stream_t*>(&output.pipe), OnAlloc, OnRead);
  }
  FeedStdin();
}

int ExecTask::Spawn() {
  // libuv wants mutable C strings; they only need to live through
  // uv_spawn, which returns once the child has exec'd (or failed to).
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(options_.file.c_str()));
  for (const std::string& arg : options_.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> env;
  for (const std::string& entry : options_.env) env.push_back(const_cast<char*>(entry.c_str()));
  env.push_back(nullptr);

  uv_stdio_container_t stdio[3];
  stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
  stdio[0].data.stream = reinterpret_cast<uv_stream_t*>(&stdin_);
  for (int i = 1; i <= 2; i++) {
    stdio[i].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[i].data.stream = reinterpret_cast<uv_stream_t*>(&outputs_[i - 1].pipe);
  }

  uv_process_options_t options{};
  options.exit_cb = OnExit;
  options.file = options_.file.c_str();
  options.args = argv.data();
  options.env = env.data();
  options.cwd = options_.cwd.empty() ? nullptr : options_.cwd.c_str();
  options.stdio_count = 3;
  options.stdio = stdio;
  return uv_spawn(loop(), &process_, &options);
}

// Stdin gets the input, then end of file; with no input, end of file at once.
void ExecTask::FeedStdin() {
  if (options_.input_size > 0) {
    uv_buf_t buf;
    buf.base = const_cast<char*>(reinterpret_cast<const char*>(options_.input));  // only read
    buf.len = options_.input_size;
    write_req_.data = this;
    if (uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&stdin_), &buf, 1, OnWritten) == 0) return;
  }
  CloseHandle(&stdin_);
}

void ExecTask::OnWritten(uv_write_t* req, int /*status*/) {
  // A child that exits without reading all its input is its own business
  // (EPIPE), as is a write cancelled by closing stdin after an abort.
  auto* self = static_cast<ExecTask*>(req->data);
  self->CloseHandle(&self->stdin_);
}

ExecTask::Output& ExecTask::OutputOf(uv_stream_t* stream) {
  return reinterpret_cast<uv_pipe_t*>(stream) == &outputs_[0].pipe ? outputs_[0] : outputs_[1];
}

void ExecTask::OnAlloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  auto* self = static_cast<ExecTask*>(handle->data);
  uint8_t* at = self->OutputOf(reinterpret_cast<uv_stream_t*>(handle)).bytes.Reserve(kReadBytes);
  // A null buffer makes libuv report UV_ENOBUFS to OnRead.
  *buf = uv_buf_init(reinterpret_cast<char*>(at), at != nullptr ? kReadBytes : 0);
}

void ExecTask::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* /*buf*/) {
  auto* self = static_cast<ExecTask*>(stream->data);
  Output& output = self->OutputOf(stream);
  if (nread > 0) {
    output.bytes.Commit(static_cast<size_t>(nread));
    // As execFile: exactly maxBuffer bytes is fine, one more is not.
    if (output.bytes.size() > self->options_.max_buffer) {
      TaskError error = MaxBufferError(output.name);
      self->StopEarly(&error);
    } else if (output.bytes.size() > kMaxResultBytes) {  // maxBuffer: Infinity
      TaskError error = ResultTooLargeError();
      self->StopEarly(&error);
    }
    return;
  }
  if (nread == UV_ENOBUFS) {
    TaskError error = OutOfMemoryError();
    self->StopEarly(&error);
    return;
  }
  if (nread == 0) return;  // nothing this time (EAGAIN)
  // End of file, or a broken pipe: this stream is over.
  self->CloseHandle(&output.pipe);
  if (self->exited_ && self->OutputsEnded()) self->CloseAllAfterExit();
}

bool ExecTask::OutputsEnded() const {
  return uv_is_closing(reinterpret_cast<const uv_handle_t*>(&outputs_[0].pipe)) &&
         uv_is_closing(reinterpret_cast<const uv_handle_t*>(&outputs_[1].pipe));
}

void ExecTask::OnExit(uv_process_t* process, int64_t exit_status, int term_signal) {
  auto* self = static_cast<ExecTask*>(process->data);
  self->exited_ = true;
  self->exit_code_ = exit_status;
  self->term_signal_ = term_signal;
  // Normally the task ends once both output streams have ended too, as
  // execFile's callback waits for 'close'. After an abort or a failure the
  // streams are already closing.
  if (self->OutputsEnded()) self->CloseAllAfterExit();
}

void ExecTask::Abort() { StopEarly(nullptr); }

// The loop is stopping and waits for this task. The loop must not hang on
// a child that ignores SIGTERM (the abort's), nor can it count on the
// exit callback: process.exit() shuts down libuv's signal handling (and so
// SIGCHLD delivery to every loop) before the exit handler stops us. So the
// child gets SIGKILL, which it cannot ignore, and is reaped right here.
void ExecTask::OnLoopStop(bool process_exiting) {
  if (!spawned_) return;
  auto* process = reinterpret_cast<uv_handle_t*>(&process_);
  if (process_exiting && !uv_is_closing(process)) {
    // Closing the last process handle stops the loop's SIGCHLD watcher,
    // and with libuv's signal handling shut down that aborts the process:
    // also when the child has exited already and a grandchild still holds
    // its output pipes open. The handle stays open, unreferenced so the
    // loop can still end, and counts as closed once the rest is
    // (CloseAllAfterExit).
    keep_process_handle_ = true;
    uv_unref(process);
  }
  if (!exited_) {
    uv_process_kill(&process_, SIGKILL);
    int status;
    while (waitpid(process_.pid, &status, 0) < 0 && errno == EINTR) {
    }
    exited_ = true;
  }
  if (stopping_early_) CloseAllAfterExit();  // no abort follows for a task already stopping
}

// Stops reading and writing, hands the child over and ends the task.
// `error`, when given, is what the task fails with.
void ExecTask::StopEarly(TaskError* error) {
  if (error != nullptr && !failed_) {
    failed_ = true;
    failure_ = std::move(*error);
  }
  if (stopping_early_) return;
  stopping_early_ = true;
  HandOverChild();
  CloseAllAfterExit();
}

// A child still running gets SIGTERM and goes to the loop's ChildReaper,
// which kills it for good if need be and reaps it: the task ends now, not
// when the child does (a timeout fails the Future when it passes).
void ExecTask::HandOverChild() {
  if (!spawned_ || exited_) return;
  // ESRCH cannot happen: libuv reaps the child only right before OnExit,
  // and once the handle is closed (CloseAllAfterExit) it never will.
  uv_process_kill(&process_, SIGTERM);
  owner()->child_reaper().Adopt(process_.pid);
  exited_ = true;
}

void ExecTask::CloseHandle(void* handle) {
  auto* h = static_cast<uv_handle_t*>(handle);
  if (uv_is_closing(h)) return;
  uv_close(h, OnClosed);
}

// Closing the process handle before the child has exited would leave it
// unreaped: this runs only once it has (or was never spawned).
void ExecTask::CloseAllAfterExit() {
  CloseHandle(&stdin_);
  CloseHandle(&outputs_[0].pipe);
  CloseHandle(&outputs_[1].pipe);
  if (!keep_process_handle_) {
    CloseHandle(&process_);
  } else if (!process_handle_let_go_) {
    // Left open at process exit (see OnLoopStop): done with all the same.
    process_handle_let_go_ = true;
    if (--open_handles_ == 0) Done();
  }
}

void ExecTask::OnClosed(uv_handle_t* handle) {
  auto* self = static_cast<ExecTask*>(handle->data);
  if (--self->open_handles_ == 0) self->Done();
}

void ExecTask::Done() {
  if (failed_) Fail(std::move(failure_));
  else Finish(TaskStatus::kOk);
}

}  // namespace sideloop
