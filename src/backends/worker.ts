/**
 * The worker backend: the same contract as the native one, on a
 * worker_threads Worker (one per run) and in pure TypeScript. It serves where
 * the addon cannot load, and is the baseline the native backend is measured
 * against, so it batches as the native one does: submissions made during one
 * microtask go in one postMessage, completions come back many per message
 * and are settled in batches of at most DRAIN_BUDGET (BudgetedDrain).
 *
 * `spin` is accepted and ignored: a worker waits for messages in its own
 * libuv loop, which offers no polling mode.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { types } from 'node:util';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

import { type AnyFuture, type Outcome, REQUEST, TICKET, announceAll } from '../future.js';
import { TaskStatus } from '../native.js';
import { now, queueMicrotask, setImmediate } from '../scheduling.js';
import { InvalidStateError, noSharedMemory } from '../errors.js';
import { TaskKind, describeTask, type ExecRequest, type TaskRequest, type WriteFileRequest } from '../tasks.js';
import type { Backend, LoopRun, RunOptions } from './backend.js';
import { BudgetedDrain, DRAIN_BUDGET, concludeBatch, outcomeValue } from './drain.js';
import { SlotTable } from './slots.js';
import {
  Control,
  INPUT_CHUNK,
  INPUT_WINDOW,
  INPUT_WINDOW_TOTAL,
  SlotFlags,
  SlotPhase,
  TASK_FIELDS,
  deserializeError,
  newPidTable,
  type ChunkMessage,
  type CompletionMessage,
  type DiedMessage,
  type ExecAtExit,
  type SerializedError,
  type StopMessage,
  type StoppedMessage,
  type StreamedInput,
  type SubmitMessage,
  type TookMessage,
  type WorkerSetup,
} from './worker-protocol.js';

/** A large byte input on its way to the worker, chunk by chunk (INPUT_CHUNK). */
interface InputStream {
  future: AnyFuture;
  slot: number;
  bytes: Uint8Array;
  /** bytes.byteLength at submission: a detached buffer reads differently (a resizable one was copied). */
  total: number;
  sent: number;
  chunksSent: number;
  /** Chunks the worker has taken (TookMessage): at most INPUT_WINDOW more are sent. */
  chunksTaken: number;
}

/** Whether `stream` has bytes left to send and room for them in its own window. */
function hasRoom(stream: InputStream): boolean {
  return stream.sent < stream.total && stream.chunksSent - stream.chunksTaken < INPUT_WINDOW;
}

type PortMessage = CompletionMessage | TookMessage | StoppedMessage | DiedMessage;

/** Tasks per submit message at most; a fuller batch is sent at once. */
const BATCH_CAPACITY = 4096;

export class WorkerBackend implements Backend {
  readonly name = 'worker';
  /** JS only: native extensions' tasks are refused (EventLoop throws ERR_SIDELOOP_NATIVE_ONLY). */
  readonly nativeApi = undefined;

  startRun(options: RunOptions): LoopRun {
    if (typeof SharedArrayBuffer !== 'function') throw noSharedMemory();
    return new WorkerRun(options);
  }
}

/**
 * What the Worker's listeners reach the run through. It holds the run
 * strongly only while tasks are pending: an idle run is then reachable from
 * its EventLoop alone, and when that is collected, `collected` below
 * terminates the Worker.
 */
class RunRelay {
  readonly weak: WeakRef<WorkerRun>;
  strong: WorkerRun | undefined;

  constructor(run: WorkerRun) {
    this.weak = new WeakRef(run);
  }

  get run(): WorkerRun | undefined {
    return this.strong ?? this.weak.deref();
  }
}

/**
 * The pid tables of runs that spawned children (with each run's control
 * array), killed at process exit: process.exit() ends the Workers without
 * letting them kill what they spawned (the native backend's exit handler
 * does it on its thread). A Worker runs on until Node's teardown, after
 * every 'exit' listener, so the hook first tells it to spawn no more.
 */
const pidTables = new Map<Int32Array, Int32Array>();
let exitHookAdded = false;
/** The hook has run: the children left are killed, and the Worker spawns nothing more submitted before. */
let exitHookRan = false;

/**
 * An immediate ran after `process._exiting` was set: the process went on (an
 * 'exit' listener threw, and an 'uncaughtException' handler took it), which
 * no exit does: none runs an immediate after its 'exit' event.
 */
let exitDisproved = false;

/**
 * The process is exiting: its 'exit' event has been emitted. Node sets
 * `process._exiting` just before, for process.exit() and a natural exit
 * alike (and in a worker thread); were it ever gone, the hook's own flag
 * still tells it once the hook has run.
 */
function processExiting(): boolean {
  return exitHookRan || (!exitDisproved && (process as { _exiting?: boolean })._exiting === true);
}

/** An exec request with its own copy of its input: held (see WorkerRun.submit), it is sent later, when the caller's bytes may be gone. */
function withOwnInput(request: TaskRequest): TaskRequest {
  const object = request.object as ExecRequest;
  return object.input === undefined ? request : { ...request, object: { ...object, input: new Uint8Array(object.input) } };
}

/** Why a task failed whose input (or a chunk of it) could not be copied for the worker: `error`, the allocation's. */
function uncopiedError(request: TaskRequest, error: unknown): Error {
  return new Error(`${describeTask(request)}: its input could not be copied for the worker thread: ${(error as Error)?.message ?? error}`, { cause: error });
}

function killAtExit(table: Int32Array, control: Int32Array): void {
  pidTables.set(table, control);
  if (exitHookAdded) return;
  exitHookAdded = true;
  process.on('exit', () => {
    exitHookRan = true;
    for (const [pids, control] of pidTables) {
      // Flag first, pids second; the Worker records a pid first and reads
      // the flag second (worker-exec.ts): one of them sees the other.
      Atomics.store(control, Control.exiting, 1);
      killPids(pids);
    }
  });
}

function killPids(pids: Int32Array): void {
  for (let slot = 0; slot < pids.length; slot++) {
    const pid = Atomics.load(pids, slot);
    if (pid === 0) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

/** What a garbage-collected run leaves to clean up (the run itself is gone). */
interface Remains {
  worker: Worker;
  port: MessagePort;
  children: Int32Array;
  spawnedChildren: boolean;
}

// A run nobody references any more. Its Worker must not just be terminated
// if it spawned children: a cancelled child that ignored SIGTERM still runs,
// one spawned an instant ago may not be in the table yet, and only that
// thread can reap them (no JS API reaps another thread's child). So the
// Worker stops as stop() has it (kills and reaps them, which empties the
// table), then ends itself; ref'd meanwhile, like a stop(). Only once it has
// ended does the main thread kill what the table lists: the children of a
// Worker that died instead, which no one reaps, so their pids stay theirs.
const collected = new FinalizationRegistry<Remains>(({ worker, port, children, spawnedChildren }) => {
  port.close();
  if (!spawnedChildren) {
    void worker.terminate();
    return;
  }
  const killOrphans = (): void => {
    killPids(children);
    pidTables.delete(children);
  };
  if (worker.threadId === -1) {
    killOrphans(); // it died before its run was collected
    return;
  }
  worker.once('exit', killOrphans);
  worker.ref();
  const stop: StopMessage = { type: 'stop', thenExit: true };
  worker.postMessage(stop);
});

class WorkerRun implements LoopRun {
  readonly #options: RunOptions;
  readonly #worker: Worker;
  readonly #port: MessagePort; // completions from the worker
  readonly #control = new Int32Array(new SharedArrayBuffer(Control.length * Int32Array.BYTES_PER_ELEMENT));
  readonly #children = newPidTable();
  readonly #flags = new SlotFlags();
  readonly #slots = new SlotTable();
  readonly #drains = new BudgetedDrain((limit) => this.#drainBatch(limit));
  readonly #relay = new RunRelay(this);

  // The batch being gathered for the next submit message.
  readonly #staged = new Float64Array(BATCH_CAPACITY * TASK_FIELDS);
  #stagedCount = 0;
  #stagedObjects: unknown[] = [];
  #stagedAnyObject = false; // cloning a long array of undefined costs more than the rest of a message
  #stagedTransfers: ArrayBuffer[] = [];
  #stagedPages: Int32Array[] = [];
  #stagedCancels: number[] = [];
  /** Execs submitted during the process's exit, sent only once something waits (submit). */
  readonly #heldAtExit = new Map<AnyFuture, TaskRequest>();
  #flushQueued = false;
  readonly #pendingReads = new Set<number>(); // slots of pending tasks whose state was read since the last flush

  /**
   * Inputs being streamed, by slot, in the order the pump serves them
   * (an input that was sent a chunk goes to the back); each stays until its
   * Future is done (settled), so that the chunks it has ahead of the worker
   * count in #chunksAhead until then.
   */
  readonly #streams = new Map<number, InputStream>();
  /** Chunks sent and not yet taken by the worker, over all streams: at most INPUT_WINDOW_TOTAL but for a blocked result(). */
  #chunksAhead = 0;
  #pumpScheduled = false;

  // Completion messages received and not yet wholly settled; #inboxAt is
  // how far into the first one we are.
  readonly #inbox: CompletionMessage[] = [];
  #inboxAt = 0;

  #unsettled = 0; // Futures submitted here and not yet done
  #stopped = false; // by stop(), or because the Worker died
  #dying = false; // onWorkerGone is under way
  #stopCalled = false;
  #onStopped: (() => void) | undefined;
  readonly #appearedThread: string | undefined; // see the constructor
  // For the finalizer; spawnedChildren: an exec task was submitted, and stop() must let the worker reap children.
  readonly #remains: Remains;

  constructor(options: RunOptions) {
    this.#options = options;
    const { port1, port2 } = new MessageChannel();
    const setup: WorkerSetup = { control: this.#control, completions: port1, children: this.#children };
    // The Worker reports its thread once its script runs; for a Worker
    // stopped before that, note the thread new Worker() started before it
    // returned: the one new entry in /proc/self/task, if exactly one
    // appeared (another thread starting meanwhile makes it unknowable).
    const before = new Set(listedThreads());
    // .cjs, not .js: Deno loads a Worker's .js file as ESM unless it finds
    // package.json's "type", which it looks for only around the main script.
    this.#worker = new Worker(path.join(__dirname, 'worker-entry.cjs'), {
      workerData: setup,
      transferList: [port1],
      name: options.name,
    });
    const appeared = listedThreads().filter((thread) => !before.has(thread));
    this.#appearedThread = appeared.length === 1 ? appeared[0] : undefined;
    this.#port = port2;
    const relay = this.#relay;
    this.#port.on('message', (message: PortMessage) => relay.run?.onMessage(message));
    this.#worker.on('error', (error) => relay.run?.onWorkerGone(error));
    this.#worker.on('exit', (code) => relay.run?.onWorkerGone(new Error(`sideloop's worker thread exited with code ${code}`)));
    // An idle loop never keeps the process alive; pending tasks do (see #setBusy).
    this.#worker.unref();
    this.#port.unref();
    this.#remains = { worker: this.#worker, port: this.#port, children: this.#children, spawnedChildren: false };
    collected.register(this, this.#remains, this);
  }

  submit(request: TaskRequest, future: AnyFuture): void {
    const slot = this.#slots.add(request, future);
    const page = this.#flags.grow(slot);
    if (page !== undefined) this.#stagedPages.push(page);
    this.#flags.reset(slot);
    if (++this.#unsettled === 1) this.#setBusy(true);
    if (request.kind === TaskKind.exec && !this.#remains.spawnedChildren) {
      this.#remains.spawnedChildren = true;
      killAtExit(this.#children, this.#control);
    }
    if (request.kind === TaskKind.exec && processExiting()) {
      // Once the hook has killed what is left, nothing could kill its
      // child: execs submitted during the exit go only when something
      // waits for one (#releaseHeld), as an 'exit' listener's result()
      // does. One nobody waits for (a done callback's retry, run by that
      // wait) is never spawned.
      if (this.#heldAtExit.size === 0) {
        // Should the process go on after all, the next turn sends them.
        setImmediate(() => {
          exitDisproved = true;
          this.#releaseAllHeld();
        }).unref();
      }
      let held: TaskRequest;
      try {
        held = withOwnInput(request);
      } catch (error) {
        this.#failUncopied(request, future, slot, error);
        return;
      }
      this.#heldAtExit.set(future, held);
      return;
    }
    this.#stage(request, future, slot, false);
  }

  /** Puts a task in the batch for the next submit message; `atExit`: an exec held during the exit (ExecAtExit). */
  #stage(request: TaskRequest, future: AnyFuture, slot: number, atExit: boolean): void {
    let object: unknown;
    try {
      object = this.#portableObject(request, future, slot, atExit);
    } catch (error) {
      this.#failUncopied(request, future, slot, error);
      return;
    }
    const at = this.#stagedCount * TASK_FIELDS;
    this.#staged[at] = slot;
    this.#staged[at + 1] = request.kind;
    this.#staged[at + 2] = request.timeout;
    this.#staged[at + 3] = request.number;
    this.#stagedObjects.push(object);
    if (object !== undefined) this.#stagedAnyObject = true;
    if (++this.#stagedCount === BATCH_CAPACITY) this.#flush();
    else this.#queueFlush();
  }

  phaseOf(future: AnyFuture): 'pending' | 'running' {
    // A task still in the staged batch reads as pending: its flags were
    // reset. A pending task read twice without a yield in between is being
    // polled, and the flush a microtask away would never come: the batch
    // goes now, after the reading (before it, the answer would race the start).
    const phase = this.#flags.phase(future[TICKET]);
    if (phase === SlotPhase.pending) {
      // Read again without a yield (maybe among others, in turn): polled.
      if (this.#pendingReads.has(future[TICKET])) {
        this.#releaseHeld(future);
        this.#flush();
      } else {
        this.#pendingReads.add(future[TICKET]);
      }
    }
    if (phase === SlotPhase.done) this.#settleArrived(); // its completion may be waiting on the port
    // Someone may be polling, and the turns that send its input never come;
    // within the window of all inputs, though, as wait() and asCompleted()
    // poll every Future they are given (each sent a chunk of its input at
    // once). The worker takes the chunks ahead without this thread's help.
    if (phase === SlotPhase.running && this.#streams.size > 0) {
      if (this.#chunksAhead >= INPUT_WINDOW_TOTAL) this.#settleArrived(); // hears of the chunks taken meanwhile
      if (this.#chunksAhead < INPUT_WINDOW_TOTAL) this.#sendOwnInput(future, -Infinity);
    }
    return phase === SlotPhase.pending ? 'pending' : 'running';
  }

  settleIfDone(future: AnyFuture, polled: boolean): void {
    if (polled) this.phaseOf(future); // as cheap here: no look through a batch
    // cancel(): no flush, which would race the cancel flag set right after.
    else if (this.#flags.phase(future[TICKET]) === SlotPhase.done) this.#settleArrived();
  }

  waitFor(future: AnyFuture, ms: number): void {
    this.#releaseHeld(future);
    this.#flush();
    const deadline = now() + ms;
    for (;;) {
      // Read the counter before looking at the port: a completion (or a
      // chunk taken) posted after we looked has bumped it, and Atomics.wait
      // returns at once.
      const seen = Atomics.load(this.#control, Control.completions);
      this.#settleArrived();
      if (future._settled() || this.#stopped) return;
      // Blocked, we cannot send chunks turn by turn: send this Future's own
      // large input from here, as the worker takes it, within the deadline.
      // Other inputs go on from the next turn (their tasks do not hold up
      // this one's).
      this.#sendOwnInput(future, deadline);
      // Settled on this thread meanwhile (an input found detached, a
      // callback's cancel): no counter was bumped for it, so do not wait.
      if (future._settled()) return;
      const left = deadline - now();
      if (left <= 0) return;
      const slice = Math.min(left, QUIET_CHECK_MS);
      if (Atomics.wait(this.#control, Control.completions, seen, slice) === 'timed-out' && this.#threadEnded()) {
        // A Worker that fails to start (EMFILE) or reaches its memory limit
        // ends without an exception, so without a 'died' message; its 'exit'
        // event needs the event loop this wait is holding up. What it posted
        // before it ended keeps its result.
        this.#settleArrived();
        if (this.#stopped) return; // its 'died' message was among them
        this.onWorkerGone(new Error("sideloop's worker thread ended while result() waited: it failed to start or ran out of memory"));
        return;
      }
    }
  }

  /** Whether the Worker's thread is known to be gone (Linux: /proc; elsewhere, never known). */
  #threadEnded(): boolean {
    const thread = this.#kernelThread();
    return thread !== undefined && !existsSync(`/proc/self/task/${thread}`);
  }

  /** The Worker's thread as /proc/self/task lists it: reported by its script, or seen appear (see the constructor). */
  #kernelThread(): string | undefined {
    const reported = Atomics.load(this.#control, Control.threadId);
    return reported !== 0 ? String(reported) : this.#appearedThread;
  }

  /**
   * Someone waits for `future`: if it is an exec held during the exit (see
   * submit), it goes now, with every one held before it, in order. Tasks
   * start in the order they were submitted, and one may need an earlier
   * one to run (a reader, the writer submitted before it).
   */
  #releaseHeld(future: AnyFuture): void {
    if (!this.#heldAtExit.has(future)) return;
    for (const [held, request] of this.#heldAtExit) {
      this.#heldAtExit.delete(held);
      this.#stage(request, held, held[TICKET], true);
      if (held === future) return;
    }
  }

  #releaseAllHeld(): void {
    for (const [held, request] of this.#heldAtExit) this.#stage(request, held, held[TICKET], true);
    this.#heldAtExit.clear();
  }

  abort(future: AnyFuture): void {
    // Never sent (held at exit): there is nothing to stop. Its slot stays
    // taken; the process is exiting.
    if (this.#heldAtExit.delete(future)) return;
    // The flag stops the task between chunks, or before it starts; the
    // message clears its timers or kills its child. Its slot stays taken
    // until the worker reports the task over.
    this.#flags.cancel(future[TICKET]);
    this.#stagedCancels.push(future[TICKET]);
    this.#queueFlush();
  }

  settled(future: AnyFuture, outcome: Outcome): void {
    // Its input is no longer wanted; and a stream whose window is full would
    // hear from the worker no more, so no pump would come to drop it.
    if (this.#streams.size > 0) this.#dropStream(future);
    if (--this.#unsettled === 0 && !this.#stopped) this.#setBusy(false);
    this.#options.onSettled(outcome);
  }

  cancelAll(): (AnyFuture | undefined)[] {
    // What has come back keeps its result, as with cancel(): concluded now,
    // announced with the rest by the caller.
    const finished = this.#concludeArrived();
    // Every Future is done before any callback runs, as when a batch
    // settles: a callback that waits on a sibling finds it cancelled, where
    // it waited for the sibling's whole work (for ever, for a server child).
    // And every task is told first, as cancel() tells it, so the work stops
    // while the callbacks run: the flag stops synchronous work at its next
    // checkpoint (the stop message would wait for it to finish), the
    // message clears timers and kills children.
    const cancelled = [...this.#slots.futures()];
    for (const future of cancelled) {
      if (this.#heldAtExit.delete(future)) continue; // never sent: nothing to stop, as in abort()
      this.#flags.cancel(future[TICKET]);
      this.#stagedCancels.push(future[TICKET]);
    }
    this.#flush();
    return [...finished, ...cancelled.filter((future) => future._conclude('cancelled', undefined))];
  }

  running(): number {
    return this.#stopped ? 0 : Atomics.load(this.#control, Control.running);
  }

  async stop(): Promise<void> {
    if (this.#stopCalled) return;
    this.#stopCalled = true;
    collected.unregister(this);
    // Stopping must finish even when nothing else keeps the process alive,
    // and even when nothing else keeps this run: the Worker's goodbye
    // ('stopped') reaches it only through the relay.
    this.#worker.ref();
    this.#relay.strong = this;
    if (!this.#stopped) {
      this.#flush(); // or the batch would follow the stop message
      this.#stopped = true;
      if (this.#remains.spawnedChildren) {
        // Children outlive a terminated Worker as zombies: let it kill and reap them first.
        const stopped = new Promise<void>((resolve) => (this.#onStopped = resolve));
        this.#worker.postMessage({ type: 'stop' });
        await stopped;
      }
      // Otherwise nothing on that thread needs a goodbye, and terminating at once
      // spares waiting for a Worker that may still be starting.
      this.#drains.all();
      for (const future of this.#slots.takeAll()) future._cancelled();
    }
    // Also after the Worker died by itself: its thread may not be joined yet.
    this.#port.close();
    // A Worker that stopped has killed and reaped its children and cleared
    // the table, but for one it may not signal (EPERM), left running; one
    // that died by itself did neither.
    killPids(this.#children);
    pidTables.delete(this.#children);
    await this.#worker.terminate();
    await untilReaped(this.#kernelThread());
  }

  /** @internal From the completions port, through the relay. */
  onMessage(message: PortMessage): void {
    if (message.type === 'took') {
      this.#onTook(message.slot);
      return;
    }
    if (message.type === 'stopped') {
      this.#onStopped?.();
      return;
    }
    if (message.type === 'died') {
      this.onWorkerGone(deserializeError(message.error));
      return;
    }
    this.#inbox.push(message);
    this.#drains.wake();
  }

  /** @internal The thread died (an error in the worker, or it was terminated from outside). */
  onWorkerGone(error: Error): void {
    if (this.#stopped) {
      this.#onStopped?.(); // exiting while stopping is what we asked for
      return;
    }
    if (this.#dying) return; // its 'died' message, pulled below: this call goes on
    this.#dying = true;
    // What finished before the death keeps its result, also what still
    // waits in the port: the Worker's 'error' and 'exit' events can come
    // before the port's messages (all 3,000 results of a flood were lost).
    const finished = this.#concludeArrived();
    this.#stopped = true;
    const failed = this.#slots.takeAll().filter((future) => future._conclude('failed', error));
    // Every Future is done before any callback runs, and the EventLoop has
    // let go of this run by then: a callback that submits again (a retry)
    // reaches a fresh Worker, not this dead one, and one that waits on a
    // sibling finds it done.
    this.#options.onDied();
    announceAll(finished);
    announceAll(failed);
  }

  /**
   * Concludes every completion that has come back, in the inbox or still in
   * the port, without running any callback; returns the Futures, to be
   * announced (announceAll).
   */
  #concludeArrived(): (AnyFuture | undefined)[] {
    for (let received; (received = receiveMessageOnPort(this.#port)) !== undefined; ) {
      const message = received.message as PortMessage;
      if (message.type === 'completions') this.#inbox.push(message);
      else this.onMessage(message); // 'took' and 'stopped' run no callback; 'died' ends the run (onWorkerGone), which concludes the rest itself
    }
    const finished: (AnyFuture | undefined)[] = [];
    while (this.#inbox.length > 0) for (const future of this.#concludeBatch(DRAIN_BUDGET)) finished.push(future);
    return finished;
  }

  /** Pulls completions already posted, without waiting for the main loop, and settles them. */
  #settleArrived(): void {
    announceAll(this.#concludeArrived());
  }

  #setBusy(busy: boolean): void {
    this.#relay.strong = busy ? this : undefined;
    if (!this.#options.keepAlive) return;
    if (busy) this.#worker.ref();
    else this.#worker.unref();
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    this.#pendingReads.clear();
    if (this.#stagedCount === 0 && this.#stagedCancels.length === 0) return;
    if (this.#stopped) return; // stop() flushed the last batch; later cancels have nothing left to cancel
    const message: SubmitMessage = {
      type: 'submit',
      pages: this.#stagedPages,
      cancels: this.#stagedCancels,
      tasks: this.#staged.slice(0, this.#stagedCount * TASK_FIELDS),
      objects: this.#stagedAnyObject ? this.#stagedObjects : undefined,
    };
    this.#worker.postMessage(message, [message.tasks.buffer as ArrayBuffer, ...this.#stagedTransfers]);
    this.#stagedCount = 0;
    this.#stagedObjects = [];
    this.#stagedAnyObject = false;
    this.#stagedTransfers = [];
    this.#stagedPages = [];
    this.#stagedCancels = [];
  }

  /** Settles up to `limit` completions from the inbox; returns how many. */
  #drainBatch(limit: number): number {
    const batch = this.#concludeBatch(limit);
    announceAll(batch);
    return batch.length;
  }

  /**
   * Takes up to `limit` completions out of the inbox and concludes their
   * Futures (concludeBatch); returns them, to be announced.
   */
  #concludeBatch(limit: number): (AnyFuture | undefined)[] {
    // First take the batch out of the inbox and free its slots, then settle:
    // settling runs done callbacks, which may call result() and so drain again.
    const futures: (AnyFuture | undefined)[] = [];
    const statuses: TaskStatus[] = [];
    const values: unknown[] = [];
    while (futures.length < limit && this.#inbox.length > 0) {
      const message = this.#inbox[0]!;
      const i = this.#inboxAt;
      const slot = message.slots[i]!;
      const status = message.statuses[i] as TaskStatus;
      // A slot already freed belonged to a run that is over (takeAll): a
      // message that was still on its way after the Worker died.
      if (this.#slots.holds(slot)) {
        const request = this.#slots.request(slot);
        futures.push(this.#slots.future(slot));
        statuses.push(status);
        values.push(outcomeValue(request, status, received(request, status, message.payloads?.[i])));
        this.#slots.release(slot);
      }
      if (++this.#inboxAt === message.slots.length) {
        this.#inbox.shift();
        this.#inboxAt = 0;
      }
    }
    concludeBatch(futures, statuses, values);
    return futures;
  }

  /**
   * request.object as it can cross to the worker: byte views of the caller's
   * memory are copied into a buffer of their own, which is transferred (never
   * the caller's whole, maybe pooled, ArrayBuffer); views of shared memory are
   * shared as they are; large inputs of chunked tasks are streamed (INPUT_CHUNK).
   */
  #portableObject(request: TaskRequest, future: AnyFuture, slot: number, atExit: boolean): unknown {
    const copy = (view: Uint8Array | undefined): Uint8Array | undefined => {
      if (view === undefined || types.isSharedArrayBuffer(view.buffer)) return view;
      const own = new Uint8Array(view);
      this.#stagedTransfers.push(own.buffer);
      return own;
    };
    switch (request.kind) {
      case TaskKind.hash:
      case TaskKind.gzip:
      case TaskKind.deflate:
      case TaskKind.gunzip:
      case TaskKind.inflate: {
        const bytes = request.object as Uint8Array;
        if (bytes.byteLength <= INPUT_CHUNK || types.isSharedArrayBuffer(bytes.buffer)) return copy(bytes);
        this.#streams.set(slot, { future, slot, bytes, total: bytes.byteLength, sent: 0, chunksSent: 0, chunksTaken: 0 });
        this.#schedulePump();
        const streamed: StreamedInput = { streamedBytes: bytes.byteLength };
        return streamed;
      }
      case TaskKind.writeFile: {
        const object = request.object as WriteFileRequest;
        return { ...object, data: copy(object.data) };
      }
      case TaskKind.exec: {
        const object = request.object as ExecRequest;
        const portable: ExecAtExit = { ...object, input: copy(object.input), submittedAtExit: atExit };
        return portable;
      }
      default:
        return request.object;
    }
  }

  /**
   * Fails a task whose input could not be copied for the worker (out of
   * memory: the native backend reads inputs in place, this one must copy
   * them). Operational, so its Future fails; nothing of it was sent. It
   * stayed pending for ever before, and kept the loop from stopping.
   */
  #failUncopied(request: TaskRequest, future: AnyFuture, slot: number, error: unknown): void {
    this.#slots.release(slot);
    future._finish('failed', uncopiedError(request, error));
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
      // Otherwise the next pump waits for the worker to take a chunk
      // (#onTook), or for a Future with chunks ahead to be done (#dropStream).
      if (this.#chunksAhead < INPUT_WINDOW_TOTAL && this.#anyRoom()) this.#schedulePump();
    });
  }

  #anyRoom(): boolean {
    for (const stream of this.#streams.values()) if (hasRoom(stream)) return true;
    return false;
  }

  /** The worker took a chunk of the input of the task in `slot`: the next one may go. */
  #onTook(slot: number): void {
    // Not found: its Future is done. (Never another task's: a slot is
    // reused only after its task's completion, which the worker posts after
    // every TookMessage of that task.)
    const stream = this.#streams.get(slot);
    if (stream === undefined) return;
    stream.chunksTaken++;
    this.#chunksAhead--;
    this.#schedulePump();
  }

  /**
   * Sends the next chunk of `future`'s own input, if it is still streaming
   * and the worker has room for it, and more until `deadline`: at least one,
   * so that a wait of 0 ms, or a poll of its state, still moves the task on.
   * Its own window bounds it, not INPUT_WINDOW_TOTAL: the inputs ahead of it
   * may be of tasks that wait for it.
   */
  #sendOwnInput(future: AnyFuture, deadline: number): void {
    const stream = this.#streams.get(future[TICKET]);
    if (stream === undefined) return;
    this.#flush(); // the tasks first, then their chunks
    // A caller that polls or blocks never yields to the port's listener: it
    // hears of the chunks the worker took here.
    if (!hasRoom(stream)) this.#settleArrived();
    while (hasRoom(stream) && !this.#sendChunk(stream) && now() < deadline);
  }

  /**
   * Sends the next chunk of each input that has room, in turn, while fewer
   * than INPUT_WINDOW_TOTAL are ahead of the worker: a turn copies at most
   * that many, and that many wait in memory, however many inputs there are
   * (1,000 hashes of 2 MiB held the main thread for 0.5 s and took 1.3 GB
   * when each input had only its own window). An input that was sent a
   * chunk goes to the back of the line: every input moves on, as every task
   * on a native loop gets its step in each turn; served first come, first
   * served, a small input waited behind two large ones until they were all
   * sent, its timeout running.
   */
  #pump(): void {
    this.#flush(); // the tasks first, then their chunks
    // A copy: an input submitted from a callback run here (a Future failed
    // by #sendChunk) waits for the next pump.
    for (const stream of [...this.#streams.values()]) {
      if (this.#chunksAhead >= INPUT_WINDOW_TOTAL) return;
      if (!hasRoom(stream)) continue;
      this.#sendChunk(stream);
      if (this.#streams.delete(stream.slot)) this.#streams.set(stream.slot, stream);
    }
  }

  /** Takes `future`'s input out of the streams: its chunks ahead of the worker no longer count. */
  #dropStream(future: AnyFuture): void {
    const stream = this.#streams.get(future[TICKET]);
    if (stream === undefined || stream.future !== future) return;
    this.#streams.delete(stream.slot);
    const ahead = stream.chunksSent - stream.chunksTaken;
    this.#chunksAhead -= ahead;
    // The worker will not say it took them (the task is over): room for others.
    if (ahead > 0 && this.#streams.size > 0) this.#schedulePump();
  }

  /**
   * Sends the next chunk of `stream`; true when there is nothing more to
   * send (all sent, or no longer wanted). A stream not wanted is dropped
   * when its Future is done (settled), which the failures here settle.
   */
  #sendChunk(stream: InputStream): boolean {
    if (this.#stopped || stream.future._settled()) {
      this.#dropStream(stream.future);
      return true;
    }
    if (stream.bytes.byteLength !== stream.total) {
      // Detached (transferred) or resized while still being read, against
      // the README's advice: fail the task rather than throw from here.
      this.abort(stream.future);
      // Described with its size as submitted: the view reads 0 bytes once detached.
      const task = describeTask({ ...stream.future[REQUEST]!, object: { byteLength: stream.total } });
      stream.future._finish('failed', new InvalidStateError(`The input of ${task} was detached before its Future was done`));
      return true;
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(stream.bytes.subarray(stream.sent, stream.sent + INPUT_CHUNK)); // a copy (Buffer#slice would not be)
    } catch (error) {
      // Out of memory for the chunk: the task fails, as one whose whole
      // input could not be copied (#failUncopied), rather than throw from a
      // setImmediate (an uncaught exception) or from result().
      this.abort(stream.future);
      stream.future._finish('failed', uncopiedError(stream.future[REQUEST]!, error));
      return true;
    }
    stream.sent += bytes.byteLength;
    stream.chunksSent++;
    this.#chunksAhead++;
    const message: ChunkMessage = { type: 'chunk', slot: stream.slot, bytes };
    this.#worker.postMessage(message, [bytes.buffer as ArrayBuffer]);
    return stream.sent === stream.total;
  }
}

/** A payload as it arrived from the worker, in the shape the Future gives users. */
function received(request: TaskRequest, status: TaskStatus, payload: unknown): unknown {
  if (status === TaskStatus.error) return deserializeError(payload as SerializedError);
  if (status !== TaskStatus.ok || !request.producesValue) return payload;
  if (request.kind === TaskKind.exec) {
    const result = payload as { stdout: Uint8Array; stderr: Uint8Array };
    return { ...result, stdout: asBuffer(result.stdout), stderr: asBuffer(result.stderr) };
  }
  return asBuffer(payload as Uint8Array);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** How often a blocked result() that hears nothing checks that the Worker's thread is still there. */
const QUIET_CHECK_MS = 100;

/** The kernel's ids of this process's threads (Linux; empty elsewhere). */
function listedThreads(): string[] {
  try {
    return readdirSync('/proc/self/task');
  } catch {
    return [];
  }
}

/**
 * A terminated Worker's thread has been joined, but the kernel lists it (in
 * /proc/self/task) until it has also been reaped, a moment later. Waiting for
 * that keeps the promise that no thread of a stopped loop exists, as anyone
 * counting threads sees it (the native backend does the same).
 */
async function untilReaped(thread: string | undefined): Promise<void> {
  if (thread === undefined) return;
  for (let turn = 0; turn < 10_000 && existsSync(`/proc/self/task/${thread}`); turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}
