/** Waiting on many Futures at once, after Python's concurrent.futures.wait and as_completed. */
import { TimeoutError, invalidArgType, invalidArgValue } from './errors.js';
import { Future } from './future.js';
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
  for (const future of all) (future.done() ? done : notDone).add(future);
  const satisfied = (): boolean =>
    notDone.size === 0 ||
    (returnWhen === 'FIRST_COMPLETED' && done.size > 0) ||
    (returnWhen === 'FIRST_EXCEPTION' && [...done].some(failed));
  if (satisfied()) return Promise.resolve({ done, notDone });

  return new Promise((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      resolve({ done, notDone });
    };
    const timer = timeout === undefined || timeout === Infinity ? undefined : setTimeout(finish, timeout);
    for (const future of notDone) {
      future.addDoneCallback(() => {
        if (finished) return;
        notDone.delete(future);
        done.add(future);
        if (notDone.size === 0 || returnWhen === 'FIRST_COMPLETED' || (returnWhen === 'FIRST_EXCEPTION' && failed(future))) {
          finish();
        }
      });
    }
  });
}

export interface AsCompletedOptions {
  /** ms for the whole iteration; then it throws TimeoutError. */
  timeout?: number;
}

/** Yields each Future as it becomes done, those already done first. */
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
  let wake: (() => void) | undefined;
  let remaining = all.size;
  let closed = false;
  for (const future of all) {
    if (future.done()) ready.push(future);
  }
  for (const future of all) {
    if (!future.done()) {
      future.addDoneCallback(() => {
        ready.push(future);
        wake?.();
      });
    }
  }

  const finished = (): IteratorResult<Future<T>> => ({ value: undefined, done: true });
  async function next(): Promise<IteratorResult<Future<T>>> {
    while (!closed && remaining > 0) {
      if (ready.length > 0) {
        remaining--;
        return { value: ready.shift()!, done: false };
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        closed = true;
        throw new TimeoutError(`${remaining} of ${all.size} futures were not done within ${timeout} ms`);
      }
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (left !== Infinity) timer = setTimeout(resolve, left);
      });
      wake = undefined;
      clearTimeout(timer);
    }
    return finished();
  }

  return {
    next,
    async return(): Promise<IteratorResult<Future<T>>> {
      closed = true;
      wake?.();
      return finished();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
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
    if (!(future instanceof Future)) throw invalidArgType('futures', 'an iterable of Future', future);
    set.add(future);
  }
  return set;
}
