#include "open_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "task_errors.h"

namespace sideloop {

namespace {

bool MayBlock(uint64_t mode) { return (mode & S_IFMT) == S_IFIFO || (mode & S_IFMT) == S_IFSOCK; }

TaskError Unsupported(const std::string& path) {
  TaskError error;
  error.code = "ERR_SIDELOOP_UNSUPPORTED_FILE";
  error.message = "'" + path + "' is a FIFO, a pipe or a socket, whose reads and writes could block the loop's thread";
  error.path = path;
  error.has_path = true;
  return error;
}

}  // namespace

int OpenFile(uv_loop_t* loop, const std::string& path, int flags, int mode, size_t* size, TaskError* error) {
  uv_fs_t req;
  // A missing file is left to open() (writeFile creates it), which also
  // reports it as node:fs does.
  int err = uv_fs_stat(loop, &req, path.c_str(), nullptr);
  bool refused = err == 0 && MayBlock(req.statbuf.st_mode);
  uv_fs_req_cleanup(&req);
  if (refused) {
    *error = Unsupported(path);
    return -1;
  }
  int fd = uv_fs_open(loop, &req, path.c_str(), flags | O_NONBLOCK, mode, nullptr);
  uv_fs_req_cleanup(&req);
  if (fd == UV_EAGAIN) {
    *error = UvError(fd, "open", path);  // what node:fs reports, once the wait is given up
    return kLeaseHeld;
  }
  if (fd < 0) {
    *error = UvError(fd, "open", path);
    return -1;
  }
  err = uv_fs_fstat(loop, &req, fd, nullptr);
  if (err == 0) {
    refused = MayBlock(req.statbuf.st_mode);
    *size = static_cast<size_t>(req.statbuf.st_size);
  }
  uv_fs_req_cleanup(&req);
  if (err == 0 && !refused) return fd;
  *error = err < 0 ? UvError(err, "fstat") : Unsupported(path);
  uv_fs_close(loop, &req, fd, nullptr);
  uv_fs_req_cleanup(&req);
  return -1;
}

bool LeaseWait::Expired() {
  if (deadline_ != 0) return uv_hrtime() >= deadline_;
  long seconds = 45;  // the kernel's default
  if (FILE* file = fopen("/proc/sys/fs/lease-break-time", "re")) {
    if (fscanf(file, "%ld", &seconds) != 1 || seconds < 0) seconds = 45;
    fclose(file);
  }
  deadline_ = uv_hrtime() + static_cast<uint64_t>(seconds + 1) * 1000 * 1000 * 1000;
  return false;
}

}  // namespace sideloop
