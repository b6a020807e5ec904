#include "open_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "task_errors.h"

namespace sideloop {

int OpenFile(uv_loop_t* loop, const std::string& path, int flags, int mode, size_t* size, TaskError* error) {
  uv_fs_t req;
  int fd = uv_fs_open(loop, &req, path.c_str(), flags | O_NONBLOCK, mode, nullptr);
  uv_fs_req_cleanup(&req);
  if (fd < 0) {
    *error = UvError(fd, "open", path);
    return -1;
  }
  int err = uv_fs_fstat(loop, &req, fd, nullptr);
  uint64_t type = req.statbuf.st_mode & S_IFMT;
  *size = static_cast<size_t>(req.statbuf.st_size);
  uv_fs_req_cleanup(&req);
  if (err == 0 && (type == S_IFIFO || type == S_IFSOCK)) {
    error->code = "ERR_SIDELOOP_UNSUPPORTED_FILE";
    error->message = "'" + path + "' is a FIFO or a socket, whose reads and writes could block the loop's thread";
    error->path = path;
  } else if (err < 0) {
    *error = UvError(err, "fstat", "");
  } else {
    return fd;
  }
  uv_fs_close(loop, &req, fd, nullptr);
  uv_fs_req_cleanup(&req);
  return -1;
}

}  // namespace sideloop
