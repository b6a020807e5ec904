// process.exit() runs no environment cleanup hooks on the main thread, yet
// exit() then runs atexit handlers (OpenSSL's and zlib's among them) and
// static destructors while our loop threads may still be inside them.
// Every running LoopThread is therefore registered here, and an atexit
// handler, registered after Node's own, stops and joins them first.
#ifndef SIDELOOP_CORE_EXIT_GUARD_H_
#define SIDELOOP_CORE_EXIT_GUARD_H_

namespace sideloop {

class LoopThread;

void RegisterForExit(LoopThread* loop);
// The atexit handler: stops and joins every registered loop as a process
// exit does. Public for the core's own tests.
void StopAllLoopsAtExit();
// Blocks while the atexit handler runs, so a loop is never freed under it.
void UnregisterForExit(LoopThread* loop);

}  // namespace sideloop

#endif  // SIDELOOP_CORE_EXIT_GUARD_H_
