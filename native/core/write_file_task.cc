#include "write_file_task.h"

#include <fcntl.h>

#include <algorithm>

#include "open_file.h"
#include "task_errors.h"

namespace sideloop {

namespace {

constexpr int kFileMode = 0666;  // as node:fs, before the umask

}  // namespace

StepTask::StepResult WriteFileTask::Step() {
  if (fd_ < 0) return Open();
  return written_ < size_ ? Write() : Close();
}

// A failed close can mean lost data (NFS, a full quota): it is reported,
// as node:fs reports it.
StepTask::StepResult WriteFileTask::Close() {
  uv_fs_t req;
  int err = uv_fs_close(loop(), &req, fd_, nullptr);
  uv_fs_req_cleanup(&req);
  fd_ = -1;
  return err < 0 ? Failed(UvError(err, "close")) : StepResult::kDone;
}

StepTask::StepResult WriteFileTask::Open() {
  // A retry after a lease wait: a cancel may have come since the loop last
  // read its inbox, and this open truncates. Its message aborts the task
  // within the turn; until then, wait.
  if (cancel_requested()) return StepResult::kWait;
  size_t size;
  TaskError error;
  fd_ = OpenFile(loop(), path_, O_WRONLY | O_CREAT | O_TRUNC, kFileMode, &size, &error);
  if (fd_ == kLeaseHeld) {
    fd_ = -1;
    return lease_wait_.Expired() ? Failed(std::move(error)) : StepResult::kWait;
  }
  return fd_ < 0 ? Failed(std::move(error)) : StepResult::kMore;
}

StepTask::StepResult WriteFileTask::Write() {
  size_t want = std::min(size_ - written_, kStepBytes);
  // libuv's buffers are not const; write() only reads from it.
  uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data_ + written_)),
                             static_cast<unsigned int>(want));
  uv_fs_t req;
  auto n = static_cast<ssize_t>(uv_fs_write(loop(), &req, fd_, &buf, 1, -1, nullptr));
  uv_fs_req_cleanup(&req);
  if (n == UV_EAGAIN) {
    // A terminal (opened non-blocking, see OpenFile) whose buffer is full:
    // node:fs's blocking write would wait for room. Wait for room, the
    // loop free for its other tasks, and try again, so that a cancel or a
    // timeout still stops it.
    return WaitWritable(fd_);
  }
  if (n < 0) return Failed(UvError(static_cast<int>(n), "write"));
  written_ += static_cast<size_t>(n);  // a short write goes on in the next step
  return StepResult::kMore;
}

// Reached with the file still open only after a failed write or an abort.
void WriteFileTask::EndSteps() {
  CloseFile(&fd_);
}

}  // namespace sideloop
