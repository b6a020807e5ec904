/** Waiting on many Futures at once, after Python's concurrent.futures.wait and as_completed. */
import { TimeoutError, invalidArgType, invalidArgValue } from './errors.js';
import { Future, type AnyFuture } from './future.js';
import { validateObject, validateWaitTimeout } from './validate.js';

export type ReturnWhen = 'ALL_COMPLETED' | 'FIRST_COMPLETED' | 'FIRST_EXCEPTION';

export interface WaitOptions {
  /** ms; when it passes, wait() resolves with what is done so far. */
  timeout?: number;
  returnWhen?: ReturnWhen;
}

export interface WaitResult<T> {
  done: Set<Future<T>>;
  notDone: Set<Future<T>>;
}

/** Resolves when the futures meet `returnWhen` (default all done) or `timeout` ms pass; never rejects. */
export function wait<T>(futures: Iterable<Future<T>>, options?: WaitOptions): Promise<WaitResult<T>>;
/** Futures of different value types (TypeScript infers no one T for them). */
export function wait(futures: Iterable<AnyFuture>, options?: WaitOptions): Promise<WaitResult<unknown>>;
export function wait<T>(futures: Iterable<Future<T>>, options?: WaitOptions): Promise<WaitResult<T>> {
  const all = toFutureSet(futures);
  validateObject(options, 'options');
  const { timeout, returnWhen = 'ALL_COMPLETED' } = (options ?? {}) as WaitOptions;
  validateWaitTimeout(timeout, 'options.timeout');
  if (returnWhen !== 'ALL_COMPLETED' && returnWhen !== 'FIRST_COMPLETED' && returnWhen !== 'FIRST_EXCEPTION') {
    throw invalidArgValue('options.returnWhen', "must be 'ALL_COMPLETED', 'FIRST_COMPLETED' or 'FIRST_EXCEPTION'", returnWhen);
  }

  const done = new Set<Future<T>>();
  const notDone = new Set<Future<T>>();
  refresh(all);
  for (const future of all) (future._settled() ? done : notDone).add(future);
  const satisfied = (): boolean =>
    notDone.size === 0 ||
    (returnWhen === 'FIRST_COMPLETED' && done.size > 0) ||
    (returnWhen === 'FIRST_EXCEPTION' && [...done].some(failed));
  if (satisfied()) return Promise.resolve({ done, notDone });

  return new Promise((resolve) => {
    let finished = false;
    const callbacks = new Map<Future<T>, () => void>();
    const finish = (timedOut: boolean) => {
      if (finished) return;
      finished = true;
      cancelTimer?.();
      // The timer may fire before a turn's completions are settled (timers
      // run before I/O; a drain yields after a budget): the loops have the
      // last word on what is done. Not from a callback, which a drain runs.
      if (timedOut) refresh(notDone);
      // Futures settled in the same batch as the one that ended the wait
      // are done by now, though their callbacks here have not run yet.
      for (const future of notDone) {
        if (future._settled()) {
          notDone.delete(future);
          done.add(future);
        }
      }
      // What is still pending may stay so for long: it must not keep this
      // wait's sets (and every result in them) alive.
      for (const future of notDone) future._removeDoneCallback(callbacks.get(future)!);
      resolve({ done, notDone });
    };
    const cancelTimer = timeout === undefined || timeout === Infinity ? undefined : after(timeout, () => finish(true));
    for (const future of notDone) {
      const callback = () => {
        if (finished) return;
        notDone.delete(future);
        done.add(future);
        if (notDone.size === 0 || returnWhen === 'FIRST_COMPLETED' || (returnWhen === 'FIRST_EXCEPTION' && failed(future))) {
          finish(false);
        }
      };
      callbacks.set(future, callback);
      future._onDone(callback);
    }
  });
}

export interface AsCompletedOptions {
  /** ms for the whole iteration; then it throws TimeoutError. */
  timeout?: number;
}

/** Yields each Future as it becomes done, those already done first. */
export function asCompleted<T>(futures: Iterable<Future<T>>, options?: AsCompletedOptions): AsyncIterableIterator<Future<T>>;
/** Futures of different value types (TypeScript infers no one T for them). */
export function asCompleted(futures: Iterable<AnyFuture>, options?: AsCompletedOptions): AsyncIterableIterator<Future<unknown>>;
export function asCompleted<T>(futures: Iterable<Future<T>>, options?: AsCompletedOptions): AsyncIterableIterator<Future<T>> {
  const all = toFutureSet(futures);
  validateObject(options, 'options');
  const timeout = (options as AsCompletedOptions | undefined)?.timeout;
  validateWaitTimeout(timeout, 'options.timeout');
  return iterateAsCompleted(all, timeout);
}

// Not an async generator: `yield` awaits thenables, and a Future is one, so
// a generator would hand out values instead of Futures.
function iterateAsCompleted<T>(all: Set<Future<T>>, timeout: number | undefined): AsyncIterableIterator<Future<T>> {
  const deadline = timeout === undefined ? Infinity : Date.now() + timeout;
  const ready: Future<T>[] = [];
  // Every next() waiting (a caller may call it again before the last one
  // settled): each is woken, and those that find nothing ready wait again.
  let waiting: (() => void)[] = [];
  const wakeAll = () => {
    const woken = waiting;
    waiting = [];
    for (const wake of woken) wake();
  };
  let remaining = all.size;
  let closed = false;
  refresh(all);
  for (const future of all) {
    if (future._settled()) ready.push(future);
  }
  const callbacks = new Map<Future<T>, () => void>();
  for (const future of all) {
    if (!future._settled()) {
      const callback = () => {
        callbacks.delete(future);
        ready.push(future);
        wakeAll();
      };
      callbacks.set(future, callback);
      future._onDone(callback);
    }
  }
  // An iteration ended early (a timeout, return()) lets go of the Futures
  // still pending, which may stay so for long.
  const close = () => {
    closed = true;
    for (const [future, callback] of callbacks) future._removeDoneCallback(callback);
    callbacks.clear();
  };

  const finished = (): IteratorResult<Future<T>> => ({ value: undefined, done: true });
  async function next(): Promise<IteratorResult<Future<T>>> {
    while (!closed && remaining > 0) {
      if (ready.length > 0) {
        remaining--;
        return { value: ready.shift()!, done: false };
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        // Work the loops finished, whose completions wait behind this timer
        // (timers run before I/O) or a drain's budget, is done: ask them.
        refresh([...callbacks.keys()]);
        if (ready.length > 0) continue;
        close();
        throw new TimeoutError(`${remaining} of ${all.size} futures were not done within ${timeout} ms`);
      }
      let cancelTimer: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (left !== Infinity) cancelTimer = after(left, resolve);
      });
      cancelTimer?.();
    }
    return finished();
  }

  return {
    next,
    async return(): Promise<IteratorResult<Future<T>>> {
      close();
      wakeAll();
      return finished();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Node's timers take at most this many ms; a longer delay fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** setTimeout for any delay, in steps where it is longer than a timer takes; returns a canceller. */
function after(ms: number, fn: () => void): () => void {
  if (ms <= MAX_TIMER_MS) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  }
  let cancel = after(MAX_TIMER_MS, () => (cancel = after(ms - MAX_TIMER_MS, fn)));
  return () => cancel();
}

function failed(future: Future<any>): boolean {
  return !future.cancelled() && future.exception() !== undefined;
}

function toFutureSet<T>(futures: Iterable<Future<T>>): Set<Future<T>> {
  if (futures == null || typeof (futures as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw invalidArgType('futures', 'an iterable of Future', futures);
  }
  const set = new Set<Future<T>>();
  for (const future of futures) {
    if (!Future._isFuture(future)) throw invalidArgType('futures', 'an iterable of Future', future);
    set.add(future);
  }
  return set;
}

/**
 * Asks the loops about every Future (done() settles what they have finished)
 * before any is sorted: asking about one may settle others, already sorted,
 * which a sort by done() alone would then have counted as not done, and
 * never looked at again.
 */
function refresh(futures: Iterable<AnyFuture>): void {
  for (const future of futures) future.done();
}

