/**
 * The scheduling functions sideloop's own machinery runs on, taken once,
 * when the package loads. Test frameworks' fake timers (node:test's
 * `mock.timers`, vitest's and jest's) replace the globals; a loop whose
 * batch flush or whose yield between batches went through them stopped
 * taking work for good, even after real timers were restored, and a
 * blocking wait's deadline ran on fake time. User-facing timeouts (`wait()`,
 * `asCompleted()`) keep the globals, as any timer a user sets would.
 */
import { performance } from 'node:perf_hooks';
import timers from 'node:timers';

export const queueMicrotask: (callback: () => void) => void = globalThis.queueMicrotask;
export const setImmediate: typeof timers.setImmediate = timers.setImmediate;
/** Milliseconds on the monotonic clock (performance.now()). */
export const now: () => number = performance.now.bind(performance);
