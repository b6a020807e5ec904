/**
 * The native backend: a libuv loop on its own OS thread, inside the addon.
 *
 * Submissions made during one microtask go to the addon in one call;
 * completions come back in batches of DRAIN_BUDGET, and after each full
 * batch we yield to the main loop (setImmediate) so timers and I/O on the
 * main thread keep running under a flood.
 */
import { TimeoutError } from '../errors.js';
import type { AnyFuture, Outcome } from '../future.js';
import { TaskStatus, type NativeBinding, type NativeLoopHandle } from '../native.js';
import type { TaskRequest } from '../tasks.js';
import type { Backend, LoopRun, RunOptions } from './backend.js';

/** Completions settled per turn of the main loop before yielding. */
const DRAIN_BUDGET = 1024;
/** Tasks per submit() call at most; a fuller batch is sent at once. */
const BATCH_CAPACITY = 4096;
const FIELDS = 4; // slot, kind, timeout, number

export class NativeBackend implements Backend {
  readonly name = 'native';
  readonly #binding: NativeBinding;

  constructor(binding: NativeBinding) {
    this.#binding = binding;
  }

  startRun(options: RunOptions): LoopRun {
    return new NativeRun(this.#binding, options);
  }
}

class NativeRun implements LoopRun {
  readonly #options: RunOptions;
  readonly #handle: NativeLoopHandle;
  readonly #ids = new Uint32Array(DRAIN_BUDGET);
  readonly #statuses = new Uint8Array(DRAIN_BUDGET);
  readonly #payloads: unknown[] = [];

  // Per slot, until the addon reports the slot's task finished.
  readonly #futures: (AnyFuture | undefined)[] = [];
  readonly #requests: (TaskRequest | undefined)[] = [];
  readonly #freeSlots: number[] = [];

  readonly #batch = new Float64Array(BATCH_CAPACITY * FIELDS);
  readonly #batchObjects: unknown[] = [];
  #batchCount = 0;

  // The addon holds this callback weakly while the loop is idle (so an
  // unreferenced loop can be collected); we hold it strongly, so it lives
  // exactly as long as this run.
  readonly #wake = () => this.#onWake();
  #unsettled = 0; // Futures submitted here and not yet done
  #drainScheduled = false;
  #stopped = false;

  constructor(binding: NativeBinding, options: RunOptions) {
    this.#options = options;
    this.#handle = new binding.NativeLoop(
      options.name,
      options.keepAlive,
      this.#wake,
      this.#ids,
      this.#statuses,
      this.#payloads,
      options.spin,
    );
  }

  submit(request: TaskRequest, future: AnyFuture): void {
    const slot = this.#freeSlots.pop() ?? this.#futures.length;
    this.#futures[slot] = future;
    this.#requests[slot] = request;
    future._ticket = slot;
    if (++this.#unsettled === 1) this.#handle.setBusy(true);

    const at = this.#batchCount * FIELDS;
    this.#batch[at] = slot;
    this.#batch[at + 1] = request.kind;
    this.#batch[at + 2] = request.timeout;
    this.#batch[at + 3] = request.number;
    this.#batchObjects[this.#batchCount] = request.object;
    if (++this.#batchCount === 1) queueMicrotask(() => this.#flush());
    else if (this.#batchCount === BATCH_CAPACITY) this.#flush();
  }

  phaseOf(future: AnyFuture): 'pending' | 'running' {
    this.#flush();
    const phase = this.#handle.phase(future._ticket);
    if (phase === 2) this.#drainAll(); // done on the thread: settle it now
    return phase === 0 ? 'pending' : 'running';
  }

  waitFor(future: AnyFuture, ms: number): void {
    this.#flush();
    if (this.#handle.wait(future._ticket, ms === Infinity ? -1 : ms)) this.#drainAll();
  }

  abort(future: AnyFuture): void {
    this.#flush();
    this.#handle.cancel(future._ticket);
  }

  settled(_future: AnyFuture, outcome: Outcome): void {
    if (--this.#unsettled === 0 && !this.#stopped) this.#handle.setBusy(false);
    this.#options.onSettled(outcome);
  }

  cancelAll(): void {
    for (const future of this.#futures) future?._cancelled();
  }

  running(): number {
    return this.#stopped ? 0 : this.#handle.running();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#flush(); // or the batch would reach a stopped loop
    this.#stopped = true;
    this.#handle.stop();
    this.#drainAll(); // whatever was left comes back cancelled
  }

  #flush(): void {
    if (this.#batchCount === 0) return;
    const count = this.#batchCount;
    this.#batchCount = 0;
    this.#handle.submit(this.#batch, count, this.#batchObjects);
    this.#batchObjects.length = 0;
  }

  #onWake(): void {
    if (!this.#drainScheduled) this.#drainBatch();
  }

  #drainBatch(): void {
    this.#drainScheduled = false;
    if (this.#drain() === DRAIN_BUDGET) {
      // More may be waiting: let the main loop breathe first.
      this.#drainScheduled = true;
      setImmediate(() => this.#drainBatch());
    }
  }

  #drainAll(): void {
    while (this.#drain() === DRAIN_BUDGET);
  }

  /** Settles one batch of finished tasks; returns its size. */
  #drain(): number {
    const n = this.#handle.drain();
    if (n === 0) return 0;
    // First take the batch out of the shared buffers, then settle: settling
    // runs done callbacks, which may call result() and so drain again.
    const futures = new Array<AnyFuture>(n);
    const values = new Array<unknown>(n);
    const statuses = this.#statuses.slice(0, n);
    for (let i = 0; i < n; i++) {
      const slot = this.#ids[i]!;
      const request = this.#requests[slot]!;
      futures[i] = this.#futures[slot]!;
      this.#futures[slot] = undefined;
      this.#requests[slot] = undefined;
      this.#freeSlots.push(slot);
      switch (statuses[i]) {
        case TaskStatus.ok:
          values[i] = request.producesValue ? this.#payloads[i] : request.value;
          break;
        case TaskStatus.error:
          values[i] = this.#payloads[i];
          break;
        case TaskStatus.timedOut:
          values[i] = new TimeoutError(`${request.label} timed out after ${request.timeout} ms`);
          break;
      }
      this.#payloads[i] = undefined;
    }
    for (let i = 0; i < n; i++) {
      const status = statuses[i];
      if (status === TaskStatus.ok) futures[i]!._finish('completed', values[i]);
      else if (status === TaskStatus.cancelled) futures[i]!._cancelled();
      else futures[i]!._finish('failed', values[i]);
    }
    return n;
  }
}
