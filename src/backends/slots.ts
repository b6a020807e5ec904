/**
 * The Futures a run has handed to its loop thread, by slot number. A slot is
 * the task's id on the thread; it is freed only when the thread reports the
 * task over (even when the Future was cancelled earlier), so a late report
 * can never reach the wrong task.
 */
import type { AnyFuture } from '../future.js';
import type { TaskRequest } from '../tasks.js';

export class SlotTable {
  readonly #futures: (AnyFuture | undefined)[] = [];
  readonly #requests: (TaskRequest | undefined)[] = [];
  readonly #free: number[] = [];

  /** Gives the task a slot (also stored as the Future's ticket) and returns it. */
  add(request: TaskRequest, future: AnyFuture): number {
    const slot = this.#free.pop() ?? this.#futures.length;
    this.#futures[slot] = future;
    this.#requests[slot] = request;
    future._ticket = slot;
    return slot;
  }

  future(slot: number): AnyFuture {
    return this.#futures[slot]!;
  }

  request(slot: number): TaskRequest {
    return this.#requests[slot]!;
  }

  release(slot: number): void {
    this.#futures[slot] = undefined;
    this.#requests[slot] = undefined;
    this.#free.push(slot);
  }

  /** Every Future still holding a slot. */
  *futures(): IterableIterator<AnyFuture> {
    for (const future of this.#futures) if (future !== undefined) yield future;
  }
}
