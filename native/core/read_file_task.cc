#include "read_file_task.h"

#include <fcntl.h>

#include <algorithm>

#include "open_file.h"
#include "task_errors.h"

namespace sideloop {

StepTask::StepResult ReadFileTask::Step() { return fd_ < 0 ? Open() : Read(); }

StepTask::StepResult ReadFileTask::Open() {
  size_t known;
  TaskError error;
  fd_ = OpenFile(loop(), path_, O_RDONLY, 0, &known, &error);
  if (fd_ == kLeaseHeld) {
    fd_ = -1;
    return lease_wait_.Expired() ? Failed(std::move(error)) : StepResult::kWait;
  }
  if (fd_ < 0) return Failed(std::move(error));
  if (known > kMaxFileBytes) return Failed(FileTooLargeError(known, true));
  // Room for the whole file and one byte more, so the read that sees the
  // end needs no growth. Files whose size the kernel does not know (/proc)
  // report 0 and grow as they are read.
  if (known > 0 && output_.Reserve(known + 1) == nullptr) return Failed(OutOfMemoryError());
  return StepResult::kMore;
}

StepTask::StepResult ReadFileTask::Read() {
  size_t want = output_.spare() > 0 ? std::min(output_.spare(), kStepBytes) : kStepBytes;
  uint8_t* at = output_.Reserve(want);
  if (at == nullptr) return Failed(OutOfMemoryError());
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(at), static_cast<unsigned int>(want));
  uv_fs_t req;
  auto n = static_cast<ssize_t>(uv_fs_read(loop(), &req, fd_, &buf, 1, -1, nullptr));
  uv_fs_req_cleanup(&req);
  // node:fs names no path for errors after open.
  if (n < 0) return Failed(UvError(static_cast<int>(n), "read"));
  if (n == 0) return StepResult::kDone;
  output_.Commit(static_cast<size_t>(n));
  // A file that grew while being read, or one with no end (/dev/zero).
  if (output_.size() > kMaxFileBytes) return Failed(FileTooLargeError(output_.size(), false));
  return StepResult::kMore;
}

void ReadFileTask::EndSteps() {
  CloseFile(&fd_);
}

}  // namespace sideloop
