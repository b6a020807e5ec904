#include "read_file_task.h"

#include <fcntl.h>

#include <algorithm>

#include "task_errors.h"

namespace sideloop {

StepTask::StepResult ReadFileTask::Step() { return fd_ < 0 ? Open() : Read(); }

StepTask::StepResult ReadFileTask::Open() {
  uv_fs_t req;
  int fd = uv_fs_open(loop(), &req, path_.c_str(), O_RDONLY, 0, nullptr);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return Failed(UvError(fd, "open", path_));
  fd_ = fd;
  int err = uv_fs_fstat(loop(), &req, fd_, nullptr);
  // Room for the whole file and one byte more, so the read that sees the
  // end needs no growth. Files whose size the kernel does not know (/proc)
  // report 0 and grow as they are read.
  size_t known = err == 0 ? static_cast<size_t>(req.statbuf.st_size) : 0;
  uv_fs_req_cleanup(&req);
  if (err < 0) return Failed(UvError(err, "fstat", ""));
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
  if (n < 0) return Failed(UvError(static_cast<int>(n), "read", ""));
  if (n == 0) return StepResult::kDone;
  output_.Commit(static_cast<size_t>(n));
  return StepResult::kMore;
}

void ReadFileTask::EndSteps() {
  CloseFile(&fd_);
}

}  // namespace sideloop
