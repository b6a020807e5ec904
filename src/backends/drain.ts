/**
 * The main-thread side of completions, shared by every backend: settle them
 * in batches of at most DRAIN_BUDGET and yield with setImmediate after each
 * full budget, so timers and I/O on the main thread keep running under a
 * flood (docs/design.md, "Why batches, and why a budget").
 */
import { TimeoutError } from '../errors.js';
import type { AnyFuture } from '../future.js';
import { TaskStatus } from '../native.js';
import { setImmediate } from '../scheduling.js';
import { describeTask, type TaskRequest } from '../tasks.js';

/** Completions settled before yielding to the main loop. */
export const DRAIN_BUDGET = 1024;

export class BudgetedDrain {
  /** Settles up to `limit` (at most DRAIN_BUDGET) completions; returns how many. */
  readonly #drainBatch: (limit: number) => number;
  #settledSinceYield = 0;
  #yielding = false; // a setImmediate will go on
  #draining = false; // inside #drainBatch, whose callbacks may wake us again
  #wokenWhileDraining = false;
  readonly #afterYield = () => {
    this.#yielding = false;
    this.#settledSinceYield = 0;
    this.wake(); // more may be waiting
  };

  constructor(drainBatch: (limit: number) => number) {
    this.#drainBatch = drainBatch;
  }

  /**
   * Completions arrived: settle what the budget allows. It is counted
   * across wake-ups, not per call: the worker backend calls this once per
   * message, and a port delivers every message that waits in one turn
   * (thousands after the main thread was busy). Each time DRAIN_BUDGET have
   * been settled we yield with setImmediate; a turn that settles fewer
   * costs no setImmediate.
   */
  wake(): void {
    if (this.#yielding) return;
    if (this.#draining) {
      // From a callback of the batch being settled (with spin, a
      // submission answered at once): the loop below goes on with it,
      // counted with the rest.
      this.#wokenWhileDraining = true;
      return;
    }
    this.#draining = true;
    try {
      do {
        this.#wokenWhileDraining = false;
        const settled = this.#drainBatch(DRAIN_BUDGET - this.#settledSinceYield);
        this.#settledSinceYield += settled;
      } while (this.#wokenWhileDraining && this.#settledSinceYield < DRAIN_BUDGET);
    } finally {
      this.#draining = false;
    }
    if (this.#settledSinceYield >= DRAIN_BUDGET) {
      this.#yielding = true;
      setImmediate(this.#afterYield);
    }
  }

  /** Settles everything waiting, without yielding (blocking waits, stop). */
  all(): void {
    while (this.#drainBatch(DRAIN_BUDGET) === DRAIN_BUDGET);
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

/**
 * The first half of settling a batch (Future._conclude), with the values
 * outcomeValue() gave; the caller then announces it (announceAll). Every
 * Future of a batch is done before any callback runs: a callback may look
 * at the others (result(), cancel(), state), and their tasks are already
 * over and their slots free for reuse. A Future done already (cancelled
 * meanwhile) stays so and has nothing to announce: it is taken out of
 * `futures`, which is the caller's.
 */
export function concludeBatch(futures: (AnyFuture | undefined)[], statuses: ArrayLike<number>, values: readonly unknown[]): void {
  for (let i = 0; i < futures.length; i++) {
    const status = statuses[i];
    const outcome = status === TaskStatus.ok ? 'completed' : status === TaskStatus.cancelled ? 'cancelled' : 'failed';
    if (!futures[i]!._conclude(outcome, values[i])) futures[i] = undefined;
  }
}
