import { AsyncResource } from 'node:async_hooks';
import { inspect, type InspectOptionsStylized } from 'node:util';

import { CancelledError, TimeoutError, illegalConstructor, invalidArgType, invalidThis } from './errors.js';
import { queueMicrotask } from './scheduling.js';
import type { TaskRequest } from './tasks.js';
import { validateWaitTimeout } from './validate.js';

export type FutureState = 'pending' | 'running' | 'cancelled' | 'finished';

/** How a Future ended, as its owner counts it. */
export type Outcome = 'completed' | 'failed' | 'cancelled';

/**
 * What a Future needs from whoever runs its work (a backend's running
 * loop). Not exported from the package: users never see it.
 */
export interface FutureOwner {
  /** Where the work is while the Future is not done; may settle it first. */
  phaseOf(future: AnyFuture): 'pending' | 'running';
  /**
   * Settles the Future now if its work is over on the loop: phaseOf
   * without the phase. `polled` (done()): asked again without a yield, the
   * owner must make progress on its own, as phaseOf does.
   */
  settleIfDone(future: AnyFuture, polled: boolean): void;
  /** Blocks the calling thread until the work is done or `ms` pass, settling the Future when done. */
  waitFor(future: AnyFuture, ms: number): void;
  /** Aborts the work of a Future that was just cancelled. */
  abort(future: AnyFuture): void;
  /** Every Future it owns reports here once, when it becomes done. */
  settled(future: AnyFuture, outcome: Outcome): void;
}

type DoneCallback<T> = (future: Future<T>) => void;

/**
 * Passed by the factories below to the constructor, which refuses to make a
 * Future without it: one made by hand (from JavaScript, where `private` does
 * not hold) would have no loop behind it.
 */
const MADE_BY_SIDELOOP: unique symbol = Symbol('sideloop.Future');

/**
 * @internal Keys of an owner's bookkeeping on its Futures: accessors of
 * private fields. Not own properties, so JSON.stringify(future) and
 * Object.keys() show none of it (a request holds the task's input, an
 * exec's environment say), and a frozen Future still takes the owner's
 * writes (a Promise works frozen too).
 */
export const TICKET: unique symbol = Symbol('sideloop.ticket');
/** @internal See TICKET. */
export const REQUEST: unique symbol = Symbol('sideloop.request');

/** A Future whatever its value type (owners do not care). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFuture = Future<any>;

/** Future.#status values: pending, then one of the three ways to be done. */
const PENDING = 0;
const COMPLETED = 1;
const FAILED = 2;
const CANCELLED = 3;
type Status = typeof PENDING | typeof COMPLETED | typeof FAILED | typeof CANCELLED;
const STATE_OF: readonly ('pending' | 'finished' | 'cancelled')[] = ['pending', 'finished', 'finished', 'cancelled'];
const OUTCOME_OF: readonly Outcome[] = ['completed', 'completed', 'failed', 'cancelled'];

/**
 * The result of work submitted to a loop: awaitable like a Promise and
 * inspectable like Python's `concurrent.futures.Future`.
 */
export class Future<T> implements PromiseLike<T> {
  #status: Status = PENDING;
  /** The value (completed), the error (failed), or why it was cancelled (if known). */
  #result: unknown;
  #owner: FutureOwner | undefined;
  #callbacks: DoneCallback<any>[] | undefined;
  #promise: Promise<T> | undefined;
  #resolve: ((value: T) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;

  #ticket = -1;
  #request: TaskRequest | undefined = undefined;

  /** @internal The owner's bookkeeping: the task's slot in its table. */
  get [TICKET](): number {
    return this.#ticket;
  }

  /** @internal */
  set [TICKET](slot: number) {
    this.#ticket = slot;
  }

  /**
   * @internal The owner's bookkeeping: what the task was asked to do, kept
   * here rather than in a second table, since every store of a new object
   * into a long-lived table costs a write barrier.
   */
  get [REQUEST](): TaskRequest | undefined {
    return this.#request;
  }

  /** @internal */
  set [REQUEST](request: TaskRequest | undefined) {
    this.#request = request;
  }

  /** Futures are made by loops, not by users: `new Future()` throws `ERR_ILLEGAL_CONSTRUCTOR`. */
  private constructor(owner: FutureOwner | undefined, madeBy: typeof MADE_BY_SIDELOOP) {
    if (madeBy !== MADE_BY_SIDELOOP) throw illegalConstructor();
    this.#owner = owner;
  }

  /** @internal A Future for work that `owner` runs. */
  static _owned<T>(owner: FutureOwner): Future<T> {
    return new Future<T>(owner, MADE_BY_SIDELOOP);
  }

  /** @internal A Future that failed before any work was submitted. */
  static _failed<T>(error: Error): Future<T> {
    const future = new Future<T>(undefined, MADE_BY_SIDELOOP);
    future._finish('failed', error);
    return future;
  }

  /**
   * @internal Whether `value` is a Future made by sideloop: not an object
   * made from one (Object.create), nor a Proxy of one, which pass
   * instanceof but have none of its state.
   */
  static _isFuture(value: unknown): value is AnyFuture {
    return typeof value === 'object' && value !== null && #status in value;
  }

  /** Throws ERR_INVALID_THIS unless `self` is a Future itself (see invalidThis). */
  static #checkThis(self: unknown): void {
    if (!Future._isFuture(self)) throw invalidThis('Future');
  }

  get state(): FutureState {
    Future.#checkThis(this);
    if (this.#status !== PENDING || this.#owner === undefined) return STATE_OF[this.#status]!;
    // Asking the loop settles the Future first when its work is over: so
    // state, done() and cancel() agree with the loop even while the main
    // thread polls without yielding.
    const phase = this.#owner.phaseOf(this);
    return this.#status === PENDING ? phase : STATE_OF[this.#status]!;
  }

  done(): boolean {
    Future.#checkThis(this);
    if (this.#status === PENDING) this.#owner?.settleIfDone(this, true);
    return this.#status !== PENDING;
  }

  /**
   * @internal Done as this thread last heard, without asking the owner:
   * for owners, which must not re-enter themselves through done(), and for
   * the addon's extension API, which asks it after each submission.
   */
  _settled(): boolean {
    return this.#status !== PENDING;
  }

  running(): boolean {
    Future.#checkThis(this);
    return this.state === 'running';
  }

  cancelled(): boolean {
    Future.#checkThis(this);
    return this.#status === CANCELLED;
  }

  /**
   * Cancels pending or running work: the Future is cancelled at once, its
   * done callbacks run, and the loop is asked to abort the work.
   * Returns false only when the Future already finished.
   */
  cancel(): boolean {
    Future.#checkThis(this);
    return this._cancelBecause(undefined);
  }

  /**
   * @internal cancel(), with why (an AbortSignal's reason): the cause of
   * the CancelledError the Future then fails with.
   */
  _cancelBecause(reason: unknown): boolean {
    if (this.#status === PENDING) this.#owner?.settleIfDone(this, false); // work the loop has finished is not thrown away
    if (this.#status === COMPLETED || this.#status === FAILED) return false;
    if (this.#status === CANCELLED) return true;
    this.#owner?.abort(this);
    this._cancelled(reason);
    return true;
  }

  /** The value; throws the task's error, `CancelledError`, or `TimeoutError` if `timeout` ms pass first. */
  result(timeout?: number): T {
    Future.#checkThis(this);
    this.#waitSync(timeout);
    if (this.#status === CANCELLED) throw this.#cancelledError();
    if (this.#status === FAILED) throw this.#result;
    return this.#result as T;
  }

  /** The task's error, or undefined on success; waits as `result()` does. */
  exception(timeout?: number): Error | undefined {
    Future.#checkThis(this);
    this.#waitSync(timeout);
    if (this.#status === CANCELLED) throw this.#cancelledError();
    return this.#status === FAILED ? (this.#result as Error) : undefined;
  }

  /**
   * Runs `fn(future)` once the Future is done (on a later microtask if it
   * already is), in the async context it was added in.
   */
  addDoneCallback(fn: DoneCallback<T>): void {
    Future.#checkThis(this);
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn);
    if (this.#status !== PENDING) {
      this._onDone(fn); // a microtask, which keeps the caller's async context itself
      return;
    }
    // Settling runs in the context of whatever started the loop (its
    // wake-up callbacks were made there): in a server, that is the first
    // request's. Like a promise reaction or a Node callback, the callback
    // gets the context it was added in instead (AsyncLocalStorage).
    const scope = new AsyncResource('sideloop.DoneCallback');
    this._onDone((future) => {
      try {
        // Its error is raised from inside the scope too, so an
        // 'uncaughtException' handler sees the callback's context.
        scope.runInAsyncScope(runDoneCallback, undefined, fn, future);
      } finally {
        scope.emitDestroy(); // it runs once: async_hooks users need not wait for GC to hear it is over
      }
    });
  }

  /**
   * @internal A done callback of sideloop's own, run in whatever context
   * settles the Future, without the cost of keeping the caller's: for
   * callbacks that only settle a promise (whose reactions keep theirs) or
   * tidy up.
   */
  _onDone(fn: DoneCallback<T>): void {
    if (this.#status !== PENDING) queueMicrotask(() => fn(this));
    else (this.#callbacks ??= []).push(fn);
  }

  /**
   * @internal Takes back a done callback added by sideloop itself (_onDone) that is
   * no longer wanted (a wait() that ended first), so that a Future pending
   * for long does not keep every finished wait's state alive.
   */
  _removeDoneCallback(fn: DoneCallback<T>): void {
    const callbacks = this.#callbacks;
    const at = callbacks === undefined ? -1 : callbacks.lastIndexOf(fn);
    if (at >= 0) callbacks!.splice(at, 1);
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    Future.#checkThis(this);
    return this.#getPromise().then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: any) => R | PromiseLike<R>) | null): Promise<T | R> {
    Future.#checkThis(this);
    return this.#getPromise().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    Future.#checkThis(this);
    return this.#getPromise().finally(onfinally);
  }

  get [Symbol.toStringTag](): string {
    return 'Future';
  }

  [inspect.custom](depth: number, options: InspectOptionsStylized): string {
    // Printing an object made from a Future shows it as it is, without a throw.
    if (!Future._isFuture(this)) return inspect(this, { ...options, customInspect: false });
    const state = this.state;
    let shown: string;
    if (state === 'finished') {
      const inner = { ...options, depth: options.depth == null ? null : options.depth - 1 };
      shown =
        this.#status === FAILED
          ? `${options.stylize('<failed>', 'special')} ${inspect(this.#result, inner)}`
          : inspect(this.#result, inner);
    } else {
      shown = options.stylize(`<${state}>`, 'special');
    }
    return `Future { ${shown} }`;
  }

  /** @internal Called by the owner when the work is over. */
  _finish(outcome: 'completed' | 'failed', value: unknown): void {
    if (this._conclude(outcome, value)) this._announce();
  }

  /** @internal Called by the owner when it cancels the work itself (shutdown), and by cancel(). */
  _cancelled(reason?: unknown): void {
    if (this._conclude('cancelled', reason)) this._announce();
  }

  /**
   * @internal The first half of settling: from here on the Future is done
   * (state, value, result()), but its callbacks and its promise wait for
   * _announce(). Owners settling a batch conclude every Future of it before
   * announcing any, so a callback never finds a Future of the same batch
   * half-settled: its task over and taken back, its Future still pending.
   * Returns false when the Future was done already (nothing to announce).
   */
  _conclude(outcome: Outcome, value: unknown): boolean {
    if (this.#status !== PENDING) return false;
    // value, when cancelled: why, if known
    this.#conclude(outcome === 'completed' ? COMPLETED : outcome === 'failed' ? FAILED : CANCELLED, value);
    return true;
  }

  /** A new CancelledError each time it is thrown or rejected with, its cause the reason given, if any. */
  #cancelledError(): CancelledError {
    return new CancelledError('The future was cancelled', this.#result === undefined ? undefined : { cause: this.#result });
  }

  #waitSync(timeout: number | undefined): void {
    validateWaitTimeout(timeout);
    if (this.#status !== PENDING) return;
    this.#owner?.waitFor(this, timeout ?? Infinity);
    if (this.#status === PENDING) throw new TimeoutError(`The future was not done within ${timeout} ms`);
  }

  #conclude(status: Status, result: unknown): void {
    this.#status = status;
    this.#result = result;
    const owner = this.#owner;
    this.#owner = undefined;
    owner?.settled(this, OUTCOME_OF[status]!);
  }

  /** @internal The second half of settling (see _conclude): settles the promise and runs the done callbacks. */
  _announce(): void {
    if (this.#promise !== undefined) this.#settlePromise();
    const callbacks = this.#callbacks;
    this.#callbacks = undefined;
    if (callbacks === undefined) return;
    for (const fn of callbacks) runDoneCallback(fn, this);
  }

  #getPromise(): Promise<T> {
    if (this.#promise === undefined) {
      this.#promise = new Promise<T>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      if (this.#status !== PENDING) this.#settlePromise();
    }
    return this.#promise;
  }

  #settlePromise(): void {
    if (this.#status === COMPLETED) this.#resolve!(this.#result as T);
    else if (this.#status === FAILED) this.#reject!(this.#result);
    else this.#reject!(this.#cancelledError());
  }
}

/**
 * @internal The second half of settling (Future._announce) for Futures
 * concluded together: their promises settle and their callbacks run, in
 * order. An undefined entry (one with nothing to announce) is skipped.
 */
export function announceAll(futures: readonly (AnyFuture | undefined)[]): void {
  // Indexed: a batch's array is made with its length (holey), and for-of
  // over it was left to V8's generic iterator (2-3 % of a flood's main thread).
  for (let i = 0; i < futures.length; i++) futures[i]?._announce();
}

/**
 * Runs one done callback. An error it throws surfaces as any Node
 * callback's would, as an uncaught exception, after the remaining
 * callbacks have run.
 */
function runDoneCallback<T>(fn: DoneCallback<T>, future: Future<T>): void {
  try {
    fn(future);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
