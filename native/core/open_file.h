// Opening a file for readFile and writeFile without ever blocking the loop
// thread, which runs every other task of the loop (and which process exit
// joins): a FIFO's open() blocks until its other end is opened, and reads
// and writes on FIFOs and sockets can block for as long as their peer likes.
#ifndef SIDELOOP_CORE_OPEN_FILE_H_
#define SIDELOOP_CORE_OPEN_FILE_H_

#include <uv.h>

#include <cstdint>
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
// F_SETLEASE, as Samba and NFS servers take), with `*error` set to the
// open's EAGAIN: a blocking open() waits until the holder lets go (or the
// kernel breaks the lease, lease-break-time later), as node:fs does; a
// non-blocking one fails with EAGAIN, but still tells the holder to let go.
// The step task then waits on a timer (StepResult::kWait) and tries again,
// so that a cancel or a timeout still stops it, until LeaseWait says to
// give up.
constexpr int kLeaseHeld = -2;

// How long a task waits for lease holders: until lease-break-time (from
// /proc/sys/fs/lease-break-time, 45 s by default), plus a second, after its
// first open that met one, when the kernel has broken any lease. An EAGAIN
// that outlasts that was no lease (a FUSE or network file system's own
// answer) and fails the task, as it fails node:fs's open at once.
class LeaseWait {
 public:
  // Whether the task should give up: false the first time, when the wait begins.
  bool Expired();

 private:
  uint64_t deadline_ = 0;  // uv_hrtime(); 0 until the wait begins
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_OPEN_FILE_H_
