#include "task_errors.h"

#include <uv.h>

namespace sideloop {

TaskError UvError(int err, const char* syscall) {
  TaskError error;
  error.code = uv_err_name(err);
  error.errnum = err;
  error.syscall = syscall;
  error.message = error.code + ": " + uv_strerror(err) + ", " + syscall;
  return error;
}

TaskError UvError(int err, const char* syscall, const std::string& path) {
  TaskError error = UvError(err, syscall);
  error.path = path;
  error.has_path = true;
  error.message += " '" + path + "'";
  return error;
}

TaskError OutOfMemoryError() {
  TaskError error;
  error.code = "ERR_MEMORY_ALLOCATION_FAILED";
  error.message = "Failed to allocate memory";
  return error;
}

TaskError ResultTooLargeError() {
  TaskError error;
  error.code = "ERR_BUFFER_TOO_LARGE";
  error.message = "Cannot create a Buffer larger than " + std::to_string(kMaxResultBytes) + " bytes";
  error.range_error = true;
  return error;
}

TaskError FileTooLargeError(uint64_t size, bool size_known) {
  TaskError error;
  error.code = "ERR_FS_FILE_TOO_LARGE";
  error.message = size_known ? "File size (" + std::to_string(size) + ") is greater than 2 GiB"
                             : "File size is greater than 2 GiB";
  error.range_error = true;
  return error;
}

}  // namespace sideloop
