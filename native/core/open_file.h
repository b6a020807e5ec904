// Opening a file for readFile and writeFile without ever blocking the loop
// thread, which runs every other task of the loop (and which process exit
// joins): a FIFO's open() blocks until its other end is opened, and reads
// and writes on FIFOs and sockets can block for as long as their peer likes.
#ifndef SIDELOOP_CORE_OPEN_FILE_H_
#define SIDELOOP_CORE_OPEN_FILE_H_

#include <uv.h>

#include <string>

#include "task.h"

namespace sideloop {

// Refuses FIFOs (pipes included) and sockets with
// ERR_SIDELOOP_UNSUPPORTED_FILE, without opening them: opening a FIFO would
// release a writer waiting for a reader, which our close would then kill
// with SIGPIPE. Otherwise opens `path` with `flags` plus O_NONBLOCK, in case
// it became a FIFO meanwhile (for a terminal, a read then fails with EAGAIN
// rather than waits), and checks again. Returns the descriptor with its size
// in `*size` (0 when the kernel does not know it, as for /proc), or -1 with
// `*error` set.
int OpenFile(uv_loop_t* loop, const std::string& path, int flags, int mode, size_t* size, TaskError* error);

}  // namespace sideloop

#endif  // SIDELOOP_CORE_OPEN_FILE_H_
