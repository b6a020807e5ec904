// TaskErrors shaped like the errors Node's own modules give for the same
// failure, shared by the tasks that report them.
#ifndef SIDELOOP_CORE_TASK_ERRORS_H_
#define SIDELOOP_CORE_TASK_ERRORS_H_

#include <cstdint>
#include <string>

#include "task.h"

namespace sideloop {

// A failed system call, as node:fs reports it: "ENOENT: no such file or
// directory, open '/x'"; without a path: "EIO: i/o error, read".
TaskError UvError(int err, const char* syscall, const std::string& path);
TaskError UvError(int err, const char* syscall);

// Memory for a result could not be had.
TaskError OutOfMemoryError();

// The largest result a task may give: Node 20's buffer.constants.MAX_LENGTH
// (4 GiB), which node:zlib also holds its output to. Beyond it a result could
// not become a Buffer, and a small input (a gzip bomb) could fill memory.
constexpr uint64_t kMaxResultBytes = uint64_t{1} << 32;

// The largest file readFile reads: node:fs's limit (2 GiB - 1), which also
// ends reads of files that never end (/dev/zero).
constexpr uint64_t kMaxFileBytes = (uint64_t{1} << 31) - 1;

// As node:zlib: "Cannot create a Buffer larger than 4294967296 bytes".
TaskError ResultTooLargeError();

// As node:fs: "File size (3221225472) is greater than 2 GiB"; without the
// size for a file whose size was not known ahead (a device, a pipe).
TaskError FileTooLargeError(uint64_t size, bool size_known);

}  // namespace sideloop

#endif  // SIDELOOP_CORE_TASK_ERRORS_H_
