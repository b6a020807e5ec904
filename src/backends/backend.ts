/**
 * What an EventLoop needs from a backend. A backend makes one LoopRun per
 * start (one thread from start to stop); a restart makes a new one.
 */
import type { AnyFuture, FutureOwner, Outcome } from '../future.js';
import type { TaskRequest } from '../tasks.js';

export type BackendName = 'native' | 'worker';

export interface RunOptions {
  name: string;
  keepAlive: boolean;
  spin: number;
  /** Told once per Future when it becomes done, before its callbacks run. */
  onSettled(outcome: Outcome): void;
  /**
   * The run's thread ended by itself (the worker backend's Worker died: a
   * bug, or something outside sideloop): every Future of the run has failed
   * and the run takes no more work; stop() still reaps what is left of it.
   */
  onDied(): void;
}

export interface LoopRun extends FutureOwner {
  /** Queues the work of `future` (made with this run as owner). */
  submit(request: TaskRequest, future: AnyFuture): void;
  /**
   * Cancels every Future not yet done, the thread told of each first (the
   * work itself is aborted by stop()); what the thread has finished keeps
   * its result. Returns the Futures it concluded either way, not yet
   * announced (Future._conclude): the caller announces them (announceAll),
   * after those of a group's other loops.
   */
  cancelAll(): (AnyFuture | undefined)[];
  /** Tasks running on the loop thread right now. */
  running(): number;
  /**
   * Aborts every task, stops the loop and joins its thread; Futures not yet
   * done become cancelled. When it returns (native) or its promise resolves
   * (worker: a Worker terminates asynchronously), the thread is gone.
   */
  stop(): void | Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  /** The addon's table for native extensions (include/sideloop.h); undefined when the backend runs no native code. */
  readonly nativeApi: unknown;
  startRun(options: RunOptions): LoopRun;
}
