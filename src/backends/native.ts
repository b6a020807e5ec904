/**
 * The native backend: a libuv loop on its own OS thread, inside the addon.
 *
 * Submissions made during one microtask go to the addon in one call;
 * completions come back in batches of at most DRAIN_BUDGET, with a yield to
 * the main loop after each full budget (BudgetedDrain), so timers and I/O on
 * the main thread keep running under a flood.
 */
import { type AnyFuture, type Outcome, TICKET, announceAll } from '../future.js';
import { TaskStatus, type NativeBinding, type NativeLoopHandle } from '../native.js';
import { queueMicrotask, setImmediate } from '../scheduling.js';
import type { TaskRequest } from '../tasks.js';
import type { Backend, LoopRun, RunOptions } from './backend.js';
import { BudgetedDrain, DRAIN_BUDGET, concludeBatch, outcomeValue } from './drain.js';
import { SlotTable } from './slots.js';
/** Tasks per submit() call at most; a fuller batch is sent at once. */
const BATCH_CAPACITY = 4096;
const FIELDS = 4; // slot, kind, timeout, number
/** A drain that found nothing (most wake-ups find something: no array is made). */
const NOTHING: readonly never[] = Object.freeze([]);

export class NativeBackend implements Backend {
  readonly name = 'native';
  readonly #binding: NativeBinding;

  constructor(binding: NativeBinding) {
    this.#binding = binding;
  }

  get nativeApi(): unknown {
    return this.#binding.nativeApi;
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

  readonly #slots = new SlotTable();
  readonly #drains = new BudgetedDrain((limit) => this.#drain(limit));

  // Grown on demand: at full size it would be 128 KiB per run, more than
  // the rest of an idle loop together (the benchmark's memory case).
  #batch = new Float64Array(64 * FIELDS);
  readonly #batchObjects: unknown[] = [];
  #batchCount = 0;
  readonly #stagedReads = new Set<number>(); // slots of staged tasks whose state was read since the last flush
  #inAddonDrain = false; // inside this.#handle.drain(), which may run JS
  #drainMissed = false; // that JS asked for a drain meanwhile

  // The addon holds this callback weakly while the loop is idle (so an
  // unreferenced loop can be collected); we hold it strongly, so it lives
  // exactly as long as this run.
  readonly #wake = () => this.#drains.wake();
  // Made once: an arrow function made in submit() would cost every call a
  // context for `this`, taken or not, and it is taken once per batch.
  readonly #flushSoon = () => this.#flush();
  #unsettled = 0; // Futures submitted here and not yet done
  #busy = false; // the addon keeps the process and #wake alive (setBusy)
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
    const slot = this.#slots.add(request, future);
    this.#unsettled++; // the flush, a microtask away, makes the addon busy

    const at = this.#batchCount * FIELDS;
    if (at === this.#batch.length) this.#growBatch();
    this.#batch[at] = slot;
    this.#batch[at + 1] = request.kind;
    this.#batch[at + 2] = request.timeout;
    this.#batch[at + 3] = request.number;
    // Only tasks with an input store one: a batch of sleeps leaves the
    // array empty, so it is not regrown for every batch.
    if (request.object !== undefined) this.#batchObjects[this.#batchCount] = request.object;
    if (++this.#batchCount === 1) queueMicrotask(this.#flushSoon);
    else if (this.#batchCount === BATCH_CAPACITY) this.#flush();
  }

  phaseOf(future: AnyFuture): 'pending' | 'running' {
    // Not handed to the thread yet: pending, whatever the thread does next.
    if (this.#stagedAt(future[TICKET]) >= 0) {
      // Read again without a yield in between: someone polls it (maybe
      // among others, in turn), and the flush a microtask away would never
      // come. Handed over now, after the answer (before it, the answer
      // would race the start); not at the first reading, which would cost a
      // flush (and with spin, a wait) each.
      this.#pollRead(future[TICKET]);
      return 'pending';
    }
    const phase = this.#handle.phase(future[TICKET]);
    if (phase === 2) this.#drains.all(); // done on the thread: settle it now
    return phase === 0 ? 'pending' : 'running';
  }

  settleIfDone(future: AnyFuture, polled: boolean): void {
    // No look through the batch (a wait() asks about thousands of Futures
    // just submitted): a task still in it has a slot whose phase may be
    // its last occupant's, which at worst costs a drain that finds nothing
    // of its own. Asked again without a yield: someone polls, and the
    // flush a microtask away would never come.
    if (polled) this.#pollRead(future[TICKET]);
    if (this.#handle.phase(future[TICKET]) === 2) this.#drains.all();
  }

  waitFor(future: AnyFuture, ms: number): void {
    this.#flush();
    if (this.#handle.wait(future[TICKET], ms === Infinity ? -1 : ms)) this.#drains.all();
  }

  abort(future: AnyFuture): void {
    // Still in the batch: it goes with a time limit of 0, which the thread
    // discards before any of its work runs. (Handed over first and then
    // cancelled, a polling thread could start it in between.)
    const at = this.#stagedAt(future[TICKET]);
    if (at >= 0) this.#batch[at + 2] = 0;
    else this.#handle.cancel(future[TICKET]);
  }

  settled(_future: AnyFuture, outcome: Outcome): void {
    if (--this.#unsettled === 0 && this.#busy && !this.#stopped) {
      this.#busy = false;
      this.#handle.setBusy(false);
    }
    this.#options.onSettled(outcome);
  }

  cancelAll(): (AnyFuture | undefined)[] {
    // Tasks still in the batch go with a time limit of 0, which the thread
    // discards before any of their work runs (however fast it picks them
    // up); those on it are told, as by cancel(). Before, none was told, and
    // the stop sent the batch: work whose Future was cancelled still ran.
    // Every Future is cancelled before the batch goes: with spin, answers
    // could come back (and settle them otherwise) while it is sent.
    // What the thread has finished keeps its result, as with cancel(),
    // concluded now and announced with the rest, after the thread has heard
    // of every cancel: a callback run before would give it time to start
    // more of the work (and in a group, find siblings on other loops live).
    const finished = this.#concludeFinished();
    const staged = new Set<number>();
    for (let at = 0; at < this.#batchCount * FIELDS; at += FIELDS) {
      staged.add(this.#batch[at]!);
      this.#batch[at + 2] = 0;
    }
    const cancelled = [...this.#slots.futures()];
    for (const future of cancelled) {
      if (!staged.has(future[TICKET])) this.#handle.cancel(future[TICKET]);
    }
    // Every Future is done before any callback runs, as when a batch settles.
    const concluded = cancelled.filter((future) => future._conclude('cancelled', undefined));
    this.#flush();
    return [...finished, ...concluded];
  }

  running(): number {
    return this.#stopped ? 0 : this.#handle.running();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#flush(); // or the batch would reach a stopped loop
    this.#stopped = true;
    this.#handle.stop();
    this.#drains.all(); // whatever was left comes back cancelled
  }

  #flush(): void {
    this.#stagedReads.clear();
    if (this.#batchCount === 0) return;
    const count = this.#batchCount;
    this.#batchCount = 0;
    // Busy only while some Future is unsettled: the batch may hold nothing
    // but tasks cancelled before this flush.
    const becomeBusy = !this.#busy && this.#unsettled > 0;
    if (becomeBusy) this.#busy = true;
    const ready = this.#handle.submit(this.#batch, count, this.#batchObjects, becomeBusy);
    if (this.#batchObjects.length > 0) this.#batchObjects.length = 0;
    if (ready) this.#drains.wake(); // with spin: the answers came while the addon waited for them
  }

  /** A reading of `slot`'s state: the second since the last flush hands the batch over. */
  #pollRead(slot: number): void {
    if (this.#stagedReads.has(slot)) this.#flush();
    else this.#stagedReads.add(slot);
  }

  /** Where the task in `slot` is in the batch, or -1 when it is not there. */
  #stagedAt(slot: number): number {
    // Newest first: the state read is most often that of the task just submitted.
    for (let at = (this.#batchCount - 1) * FIELDS; at >= 0; at -= FIELDS) if (this.#batch[at] === slot) return at;
    return -1;
  }

  #growBatch(): void {
    const grown = new Float64Array(Math.min(this.#batch.length * 2, BATCH_CAPACITY * FIELDS));
    grown.set(this.#batch);
    this.#batch = grown;
  }

  /** Settles one batch of at most `limit` finished tasks; returns its size. */
  #drain(limit: number): number {
    const batch = this.#concludeBatch(limit);
    announceAll(batch);
    return batch.length;
  }

  /** Concludes every finished task the addon holds; returns their Futures, to be announced. */
  #concludeFinished(): (AnyFuture | undefined)[] {
    const finished: (AnyFuture | undefined)[] = [];
    for (;;) {
      const batch = this.#concludeBatch(DRAIN_BUDGET);
      for (const future of batch) finished.push(future);
      if (batch.length < DRAIN_BUDGET) return finished;
    }
  }

  /**
   * Takes at most `limit` finished tasks from the addon and concludes their
   * Futures (concludeBatch); returns them, to be announced.
   */
  #concludeBatch(limit: number): readonly (AnyFuture | undefined)[] {
    if (this.#inAddonDrain) {
      // JS that the addon's drain runs (an extension's to_js or free) wants
      // completions: the addon has none to give while it drains, and a
      // flush answered by a spinning thread sent no wake-up for them.
      this.#drainMissed = true;
      return NOTHING;
    }
    this.#inAddonDrain = true;
    let n: number;
    try {
      n = this.#handle.drain(limit);
    } finally {
      this.#inAddonDrain = false;
    }
    if (this.#drainMissed) {
      this.#drainMissed = false;
      setImmediate(() => this.#drains.wake());
    }
    if (n === 0) return NOTHING;
    // First take the batch out of the shared buffers, then settle: settling
    // runs done callbacks, which may call result() and so drain again.
    const futures = new Array<AnyFuture | undefined>(n);
    const values = new Array<unknown>(n);
    const statuses = this.#statuses.slice(0, n);
    for (let i = 0; i < n; i++) {
      const slot = this.#ids[i]!;
      const request = this.#slots.request(slot);
      futures[i] = this.#slots.future(slot);
      this.#slots.release(slot);
      if (statuses[i] === TaskStatus.ok && !request.producesValue) {
        values[i] = request.value; // sleep, writeFile: no payload came (the common case, kept inline)
      } else {
        values[i] = outcomeValue(request, statuses[i] as TaskStatus, this.#payloads[i]);
        this.#payloads[i] = undefined;
      }
    }
    concludeBatch(futures, statuses, values);
    return futures;
  }
}
