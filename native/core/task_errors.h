// TaskErrors shaped like the errors Node's own modules give for the same
// failure, shared by the tasks that report them.
#ifndef SIDELOOP_CORE_TASK_ERRORS_H_
#define SIDELOOP_CORE_TASK_ERRORS_H_

#include <string>

#include "task.h"

namespace sideloop {

// A failed system call, as node:fs reports it: "ENOENT: no such file or
// directory, open '/x'" (without the path part when `path` is empty).
TaskError UvError(int err, const char* syscall, const std::string& path);

// Memory for a result could not be had.
TaskError OutOfMemoryError();

}  // namespace sideloop

#endif  // SIDELOOP_CORE_TASK_ERRORS_H_
