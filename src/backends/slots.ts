/**
 * The Futures a run has handed to its loop thread, by slot number. A slot is
 * the task's id on the thread; it is freed only when the thread reports the
 * task over (even when the Future was cancelled earlier), so a late report
 * can never reach the wrong task.
 */
import { type AnyFuture, REQUEST, TICKET } from '../future.js';
import type { TaskRequest } from '../tasks.js';

export class SlotTable {
  // The request rides on its Future (future[REQUEST]): one table, one
  // write barrier per task.
  readonly #futures: (AnyFuture | undefined)[] = [];
  // A stack of free slots, its top #freeCount: never popped, since V8
  // shrinks an array's storage on pop() once it is half empty, and growing
  // it again made garbage for every batch of tasks.
  readonly #free: number[] = [];
  #freeCount = 0;

  /** Gives the task a slot (also stored as the Future's ticket) and returns it. */
  add(request: TaskRequest, future: AnyFuture): number {
    const slot = this.#freeCount > 0 ? this.#free[--this.#freeCount]! : this.#futures.length;
    future[TICKET] = slot;
    future[REQUEST] = request;
    this.#futures[slot] = future;
    return slot;
  }

  holds(slot: number): boolean {
    return this.#futures[slot] !== undefined;
  }

  future(slot: number): AnyFuture {
    return this.#futures[slot]!;
  }

  request(slot: number): TaskRequest {
    return this.#futures[slot]![REQUEST]!;
  }

  release(slot: number): void {
    this.#futures[slot]![REQUEST] = undefined; // its input may be large: not kept as long as the Future
    this.#futures[slot] = undefined;
    this.#free[this.#freeCount++] = slot;
  }

  /**
   * Every Future still holding a slot, each slot freed: for a run that is
   * over, whose thread will report nothing more. Their requests (inputs,
   * maybe large) are let go with the slots.
   */
  takeAll(): AnyFuture[] {
    const taken = [...this.futures()];
    for (const future of taken) this.release(future[TICKET]);
    return taken;
  }

  /** Every Future still holding a slot. */
  *futures(): IterableIterator<AnyFuture> {
    for (const future of this.#futures) if (future !== undefined) yield future;
  }
}
