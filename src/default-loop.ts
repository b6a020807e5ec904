import { EventLoop } from './event-loop.js';

// Module state is per JS thread: each worker thread loads its own copy.
let defaultLoop: EventLoop | undefined;

/** One lazily created loop per JS thread (options: all defaults). */
export function getDefaultLoop(): EventLoop {
  defaultLoop ??= new EventLoop();
  return defaultLoop;
}
