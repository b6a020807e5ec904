/**
 * Native loop threads stopped before an exit that runs no cleanup hooks:
 * process.exit() and an uncaught exception. Such an exit shuts libuv's
 * signal handling down (uv_library_shutdown) before the addon's own exit
 * handler (native/core/exit_guard.h) stops the loops, and a loop thread that
 * spawns or reaps a child in between aborts the process. So they are
 * stopped earlier, from here:
 *
 * - process.exit(): from process.reallyExit, which it calls once every
 *   'exit' listener has run, so that those listeners may still use the loops;
 * - an uncaught exception: from the 'exit' event it emits (there is no later
 *   moment in JS): 'exit' listeners added after ours find the loops stopped,
 *   and what they submit comes back cancelled.
 *
 * A natural exit needs nothing: the environment's cleanup hooks stop the
 * loops (native/binding/native_loop.cc) while libuv is still whole. So does a
 * worker thread's exit, which leaves libuv's signal handling alone: only the
 * main thread hooks in. Handles are held weakly, so that an unreferenced
 * loop is still collected. Only the threads stop: no Future is settled and
 * no callback runs at exit.
 */
import { isMainThread } from 'node:worker_threads';

interface Stoppable {
  stop(): void;
}

type ReallyExit = (code?: number) => never;

const running = new Set<WeakRef<Stoppable>>();
const collected = new FinalizationRegistry<WeakRef<Stoppable>>((ref) => running.delete(ref));
let hooked = false;

/** Stops `handle`'s thread before the process exits; returns what stoppedBeforeExit() takes. */
export function stopBeforeExit(handle: Stoppable): WeakRef<Stoppable> {
  const ref = new WeakRef(handle);
  running.add(ref);
  collected.register(handle, ref, ref);
  if (!hooked && isMainThread) hook();
  return ref;
}

/** The thread was stopped (shutdown): nothing to do at exit. */
export function stoppedBeforeExit(ref: WeakRef<Stoppable>): void {
  running.delete(ref);
  collected.unregister(ref);
}

function stopAll(): void {
  for (const ref of running) ref.deref()?.stop();
  running.clear();
}

function hook(): void {
  hooked = true;
  const host = process as NodeJS.Process & { reallyExit?: ReallyExit };
  const reallyExit = host.reallyExit;
  const wrapped = typeof reallyExit === 'function';
  if (wrapped) {
    host.reallyExit = function (this: unknown, code?: number): never {
      stopAll();
      return reallyExit.call(this, code);
    };
  }
  // Fatal when no 'uncaughtException' listener is there to take it.
  let fatal = false;
  process.on('uncaughtExceptionMonitor', () => {
    const captured = process.hasUncaughtExceptionCaptureCallback();
    if (process.listenerCount('uncaughtException') === 0 && !captured) fatal = true;
  });
  // Runtimes without process.reallyExit (Bun, Deno) stop at 'exit' in every case.
  process.on('exit', () => {
    if (fatal || !wrapped) stopAll();
  });
}
