/**
 * The main-thread side of completions, shared by every backend: settle at
 * most DRAIN_BUDGET per turn of the main loop, and after a full batch yield
 * with setImmediate, so timers and I/O on the main thread keep running under
 * a flood (docs/design.md, "Why batches, and why a budget").
 */
import { TimeoutError } from '../errors.js';
import type { AnyFuture } from '../future.js';
import { TaskStatus } from '../native.js';
import { describeTask, type TaskRequest } from '../tasks.js';

/** Completions settled per turn of the main loop before yielding. */
export const DRAIN_BUDGET = 1024;

export class BudgetedDrain {
  /** Settles up to DRAIN_BUDGET completions; returns how many. */
  readonly #drainBatch: () => number;
  #scheduled = false;

  constructor(drainBatch: () => number) {
    this.#drainBatch = drainBatch;
  }

  /** Completions arrived: settle a batch now, unless a yield is already scheduled. */
  wake(): void {
    if (!this.#scheduled) this.#run();
  }

  /** Settles everything waiting, without yielding (blocking waits, stop). */
  all(): void {
    while (this.#drainBatch() === DRAIN_BUDGET);
  }

  #run(): void {
    this.#scheduled = false;
    if (this.#drainBatch() === DRAIN_BUDGET) {
      // More may be waiting: let the main loop breathe first.
      this.#scheduled = true;
      setImmediate(() => this.#run());
    }
  }
}

/**
 * What a Future settles with, given how its task ended on the loop thread.
 * `payload` is the task's product (ok) or its error (error).
 */
export function outcomeValue(request: TaskRequest, status: TaskStatus, payload: unknown): unknown {
  switch (status) {
    case TaskStatus.ok:
      return request.producesValue ? payload : request.value;
    case TaskStatus.error:
      return payload;
    case TaskStatus.timedOut:
      return new TimeoutError(`${describeTask(request)} timed out after ${request.timeout} ms`);
    default:
      return undefined;
  }
}

/** Settles a Future with the value outcomeValue() gave (a no-op when it was cancelled meanwhile). */
export function settle(future: AnyFuture, status: TaskStatus, value: unknown): void {
  if (status === TaskStatus.ok) future._finish('completed', value);
  else if (status === TaskStatus.cancelled) future._cancelled();
  else future._finish('failed', value);
}
