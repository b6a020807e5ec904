#include "exec_task.h"

#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>

#include "loop_thread.h"
#include "task_errors.h"

namespace sideloop {

namespace {

// What one read asks for: a pipe holds 64 KiB on Linux.
constexpr size_t kReadBytes = 64 * 1024;

// Without a pidfd, how often a running child is looked at with waitpid.
constexpr uint64_t kExitPollMs = 2;

// Where glibc's execvp looks when the child's environment has no PATH.
constexpr const char* kDefaultPath = "/bin:/usr/bin";

// A descriptor that becomes readable when `pid` exits, or -1 (a kernel
// before 5.3, or no descriptor left).
int OpenPidfd(int pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

// The files execvp would try for `file`, in order, with the PATH of the
// child's environment (as uv_spawn does since libuv 1.45): `file` itself
// when it has a slash; else each PATH entry (an empty one is the working
// directory, one longer than a path can be is left out) joined with it.
std::vector<std::string> Candidates(const std::string& file, const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos) return {file};
  std::string path = kDefaultPath;
  for (const std::string& entry : env) {
    if (entry.compare(0, 5, "PATH=") == 0) path = entry.substr(5);
  }
  std::vector<std::string> candidates;
  size_t start = 0;
  for (;;) {
    size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    // As glibc: an entry too long for any path is passed over.
    if (dir.size() < PATH_MAX - 1) candidates.push_back(dir.empty() ? file : dir + "/" + file);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return candidates;
}

// 0 when `file` (relative ones from the child's working directory) is
// there, else why not, as exec would find: ENOENT, ENOTDIR, EACCES (a
// directory on the way that may not be searched), ENAMETOOLONG, ...
int Missing(const std::string& file, const std::string& cwd) {
  std::string path = file[0] == '/' || cwd.empty() ? file : cwd + "/" + file;
  struct stat info;
  return stat(path.c_str(), &info) == 0 ? 0 : errno;
}

// Whether glibc's execvp tries the next PATH entry after this error.
bool ExecvpGoesOn(int error) {
  return error == EACCES || error == ENOENT || error == ENOTDIR || error == ESTALE || error == ENODEV ||
         error == ETIMEDOUT;
}

// 0 when chdir(dir) would succeed, else its error.
int NotADirectoryToEnter(const std::string& dir) {
  struct stat info;
  if (stat(dir.c_str(), &info) != 0) return errno;
  if (!S_ISDIR(info.st_mode)) return ENOTDIR;
  return access(dir.c_str(), X_OK) == 0 ? 0 : errno;
}

void CloseFds(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
}

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
  // Every pipe handle is initialized before anything can fail, so that
  // every path out closes them the same way.
  uv_pipe_init(loop(), &stdin_, 0);
  uv_pipe_init(loop(), &outputs_[0].pipe, 0);
  uv_pipe_init(loop(), &outputs_[1].pipe, 0);
  stdin_.data = outputs_[0].pipe.data = outputs_[1].pipe.data = this;
  open_handles_ = 3;
  int err = Spawn();
  if (err != 0) {
    failed_ = true;
    failure_ = SpawnError(err, options_.file);
    exited_ = true;  // there is no child to wait for
    CloseAllAfterExit();
    return;
  }
  spawned_ = true;
  WatchExit();
  for (Output& output : outputs_) {
    uv_read_start(reinterpret_cast<uv_stream_t*>(&output.pipe), OnAlloc, OnRead);
  }
  FeedStdin();
}

// Makes the child's three stdio channels: Unix socket pairs, as uv_spawn
// and so child_process make them (ours non-blocking, the child's blocking,
// all close-on-exec until the child's are dup'd onto 0, 1 and 2); spawns
// the child and opens our ends as the pipe handles. Returns a libuv error.
int ExecTask::Spawn() {
  uv_os_sock_t in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  int rc = uv_socketpair(SOCK_STREAM, 0, in, UV_NONBLOCK_PIPE, 0);
  if (rc == 0) rc = uv_socketpair(SOCK_STREAM, 0, out, UV_NONBLOCK_PIPE, 0);
  if (rc == 0) rc = uv_socketpair(SOCK_STREAM, 0, err, UV_NONBLOCK_PIPE, 0);
  if (rc == 0) rc = SpawnChild(in[1], out[1], err[1]);
  CloseFds({in[1], out[1], err[1]});  // the child's ends: it has its own copies now
  if (rc != 0) {
    CloseFds({in[0], out[0], err[0]});
    return rc;
  }
  uv_pipe_open(&stdin_, in[0]);
  uv_pipe_open(&outputs_[0].pipe, out[0]);
  uv_pipe_open(&outputs_[1].pipe, err[0]);
  return 0;
}

// posix_spawn with glibc execvp's search, as uv_spawn does it: the child
// starts with every signal at its default disposition and none blocked
// (Node ignores SIGPIPE, which a child must not inherit). Except glibc's two
// internal ones (32 and 33), which its posix_spawn leaves ignored, and no
// attribute can change: glibc programs set their own, others may not.
int ExecTask::SpawnChild(int stdin_fd, int stdout_fd, int stderr_fd) {
  // The child changes directory before it looks for the program, so a bad
  // cwd is what fails, whatever the candidates (checked once: else each
  // existing candidate would cost a spawn that fails the same way).
  if (!options_.cwd.empty()) {
    int cwd_error = NotADirectoryToEnter(options_.cwd);
    if (cwd_error != 0) return -cwd_error;
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(options_.file.c_str()));
  for (const std::string& arg : options_.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> env;
  for (const std::string& entry : options_.env) env.push_back(const_cast<char*>(entry.c_str()));
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
  if (!options_.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options_.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  // As glibc's execvp: a file that is not there (or not reachable) sends it
  // to the next candidate; EACCES too, but it is what fails at the end if
  // nothing else was found; a file that is no executable (ENOEXEC: a script
  // without "#!") runs with /bin/sh; any other error ends the search.
  int result = ENOENT;
  bool denied = false;
  for (const std::string& candidate : Candidates(options_.file, options_.env)) {
    // A candidate that is not there is skipped without a spawn (each costs
    // a clone of this process); what exec would say of it is what stat says.
    int missing = Missing(candidate, options_.cwd);
    if (missing != 0) {
      result = missing;
      if (!ExecvpGoesOn(missing)) break;
      denied = denied || missing == EACCES;
      continue;
    }
    pid_t pid;
    int e = posix_spawn(&pid, candidate.c_str(), &actions, &attr, argv.data(), env.data());
    if (e == ENOEXEC) {
      std::vector<char*> sh_argv = {const_cast<char*>("/bin/sh"), const_cast<char*>(candidate.c_str())};
      sh_argv.insert(sh_argv.end(), argv.begin() + 1, argv.end());  // the arguments, and the null
      e = posix_spawn(&pid, "/bin/sh", &actions, &attr, sh_argv.data(), env.data());
    }
    if (e == 0) {
      pid_ = pid;
      result = 0;
      break;
    }
    result = e;
    if (e == EACCES) denied = true;
    else if (!ExecvpGoesOn(e)) break;
  }
  if (result != 0 && denied && (result == ENOENT || result == ENOTDIR)) result = EACCES;
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  return -result;  // libuv's error codes are negated errnos on Unix
}

// The exit is seen through a pidfd, readable once the child has exited; or,
// without one, by looking with waitpid every few milliseconds. Neither uses
// a signal.
void ExecTask::WatchExit() {
  open_handles_++;
  pidfd_ = OpenPidfd(pid_);
  if (pidfd_ >= 0 && uv_poll_init(loop(), &exit_readable_, pidfd_) == 0) {
    watch_by_pidfd_ = true;
    exit_readable_.data = this;
    uv_poll_start(&exit_readable_, UV_READABLE, OnExitReadable);
    return;
  }
  if (pidfd_ >= 0) close(pidfd_);
  pidfd_ = -1;
  uv_timer_init(loop(), &exit_poll_);
  exit_poll_.data = this;
  uv_timer_start(&exit_poll_, OnExitPollTick, kExitPollMs, kExitPollMs);
}

uv_handle_t* ExecTask::ExitWatch() {
  return watch_by_pidfd_ ? reinterpret_cast<uv_handle_t*>(&exit_readable_) : reinterpret_cast<uv_handle_t*>(&exit_poll_);
}

// The child is no longer ours to wait for (reaped, or handed over): the
// watch stops at once (a pidfd stays readable, and would be reported on
// every turn until the handle is closed).
void ExecTask::MarkExited() {
  exited_ = true;
  if (!spawned_ || uv_is_closing(ExitWatch())) return;
  if (watch_by_pidfd_) uv_poll_stop(&exit_readable_);
  else uv_timer_stop(&exit_poll_);
}

void ExecTask::OnExitReadable(uv_poll_t* poll, int /*status*/, int /*events*/) {
  static_cast<ExecTask*>(poll->data)->ReapIfExited();
}

void ExecTask::OnExitPollTick(uv_timer_t* timer) { static_cast<ExecTask*>(timer->data)->ReapIfExited(); }

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

void ExecTask::ReapIfExited() {
  if (exited_) return;  // handed over, or reaped by OnLoopStop
  int status;
  pid_t reaped;
  do {
    reaped = waitpid(pid_, &status, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return;  // still running
  int wait_error = reaped < 0 ? errno : 0;
  MarkExited();
  if (reaped < 0) {
    // Reaped by someone else (SIGCHLD ignored, a waitpid(-1) elsewhere in
    // the process): how it ended is lost, and is not made up.
    failed_ = true;
    failure_ = TaskError{};
    failure_.code = uv_err_name(-wait_error);
    failure_.errnum = -wait_error;
    failure_.syscall = "waitpid";
    failure_.message = std::string("waitpid ") + failure_.code;
  }
  if (reaped == pid_ && WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
  else if (reaped == pid_) exit_code_ = WEXITSTATUS(status);
  // Normally the task ends once both output streams have ended too, as
  // execFile's callback waits for 'close'. After an abort or a failure the
  // streams are already closing.
  if (OutputsEnded()) CloseAllAfterExit();
}

void ExecTask::Abort() { StopEarly(nullptr); }

// The loop is stopping and waits for this task, which must not hang on a
// child that ignores SIGTERM (the abort's): it gets SIGKILL, which it cannot
// ignore, and is reaped right here (or left, if it may not be signalled).
void ExecTask::OnLoopStop() {
  if (!spawned_) return;
  if (!exited_) {
    KillAndReap(pid_);
    MarkExited();
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
  // The child is not reaped yet (exited_ would be set), so its pid is
  // still its own; from here on only the reaper waits for it.
  kill(pid_, SIGTERM);
  owner()->child_reaper().Adopt(pid_);
  MarkExited();
}

void ExecTask::CloseHandle(void* handle) {
  auto* h = static_cast<uv_handle_t*>(handle);
  if (uv_is_closing(h)) return;
  uv_close(h, OnClosed);
}

// Runs only once the child has exited and been reaped, or been handed over
// (or was never spawned): the exit watch is then of no more use.
void ExecTask::CloseAllAfterExit() {
  CloseHandle(&stdin_);
  CloseHandle(&outputs_[0].pipe);
  CloseHandle(&outputs_[1].pipe);
  if (spawned_ && !uv_is_closing(ExitWatch())) uv_close(ExitWatch(), OnWatchClosed);
}

// The pidfd is closed only after its poll handle, which watches it until then.
void ExecTask::OnWatchClosed(uv_handle_t* handle) {
  auto* self = static_cast<ExecTask*>(handle->data);
  if (self->pidfd_ >= 0) close(self->pidfd_);
  self->pidfd_ = -1;
  OnClosed(handle);
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
