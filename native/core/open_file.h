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
// `*error` set, or kLeaseHeld.
int OpenFile(uv_loop_t* loop, const std::string& path, int flags, int mode, size_t* size, TaskError* error);

// OpenFile's answer for a file another process holds a lease on (fcntl
// F_SETLEASE, as Samba and NFS servers take): a blocking open() waits until
// the holder lets go (or the kernel breaks the lease, lease-break-time
// later), as node:fs does; a non-blocking one fails with EAGAIN, but still
// tells the holder to let go. The caller waits a moment (WaitAMoment) and
// tries again in its next step, so that a cancel or a timeout still stops it.
constexpr int kLeaseHeld = -2;

// Sleeps about a millisecond on the loop thread, or until `fd` (when not
// -1) can take a write: for a step that must wait for another process, with
// no handle to wait on, without spinning the CPU.
void WaitAMoment(int fd = -1);

}  // namespace sideloop

#endif  // SIDELOOP_CORE_OPEN_FILE_H_
