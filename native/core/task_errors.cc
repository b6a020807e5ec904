#include "task_errors.h"

#include <uv.h>

namespace sideloop {

TaskError UvError(int err, const char* syscall, const std::string& path) {
  TaskError error;
  error.code = uv_err_name(err);
  error.errnum = err;
  error.syscall = syscall;
  error.path = path;
  error.message = error.code + ": " + uv_strerror(err) + ", " + syscall;
  if (!path.empty()) error.message += " '" + path + "'";
  return error;
}

TaskError OutOfMemoryError() {
  TaskError error;
  error.code = "ERR_MEMORY_ALLOCATION_FAILED";
  error.message = "Failed to allocate memory";
  return error;
}

}  // namespace sideloop
