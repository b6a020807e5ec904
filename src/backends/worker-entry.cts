/**
 * The worker backend's thread: runs the tasks the main thread submits and
 * reports them back in batches (the messages are in worker-protocol.ts).
 * Tasks start in the order they arrive, in turns of about TURN_BUDGET_MS:
 * byte work runs synchronously here, and a long batch of big jobs must not
 * hold up this thread's timers (other tasks' timeouts and sleeps) until the
 * whole batch is done.
 */
import { readlinkSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

import { TaskStatus } from '../native.js';
import { TaskKind } from '../tasks.js';
import {
  Control,
  SlotFlags,
  SlotPhase,
  TASK_FIELDS,
  serializeError,
  type ChunkMessage,
  type CompletionMessage,
  type DiedMessage,
  type StopMessage,
  type StoppedMessage,
  type StreamedInput,
  type SubmitMessage,
  type TookMessage,
  type WorkerSetup,
} from './worker-protocol.js';
import { killAllChildren, sharePidsIn } from './worker-exec.js';
import { Interrupted, runTask, type Abortable, type TaskContext } from './worker-tasks.js';

interface ActiveTask {
  slot: number;
  work: Abortable | undefined;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

const { control, completions, children } = workerData as WorkerSetup;
sharePidsIn(children, control);
Atomics.store(control, Control.threadId, kernelThreadId());
const flags = new SlotFlags();
const active = new Map<number, ActiveTask>();
/** Per slot whose StreamedInput is still arriving: where its chunks go. */
const inputs = new Map<number, (chunk: Uint8Array) => void>();
/**
 * Per slot whose StreamedInput was submitted and whose task has not started
 * yet (tasks start in turns, and the main thread streams from the next turn
 * on): the chunks that came meanwhile, fed to the task once it starts.
 */
const early = new Map<number, Uint8Array[]>();
let stopping = false;

/** How long one turn of this thread starts queued tasks before it lets its event loop run. */
const TURN_BUDGET_MS = 1;
/** Submitted, not yet started: TASK_FIELDS numbers per task, from queueAt on. */
let queue: number[] = [];
let queueObjects: unknown[] = []; // one per queued task
let queueAt = 0;
let turnScheduled = false;

// Completions of this turn of the loop, posted together by flushCompletions().
let doneSlots: number[] = [];
let doneStatuses: number[] = [];
let donePayloads: unknown[] = [];
let anyPayload = false; // cloning a long array of undefined costs more than the rest of a message
let doneTransfers: ArrayBuffer[] = [];
let flushScheduled = false;

// An uncaught exception ends this thread (a bug: tasks catch their own).
// The main thread hears of it from the Worker's 'error' event, but a
// result() blocked there would wait for ever: tell it here, first.
process.on('uncaughtExceptionMonitor', (error) => {
  const died: DiedMessage = { type: 'died', error: serializeError(error) };
  completions.postMessage(died);
  wakeMainThread();
});

parentPort!.on('message', (message: SubmitMessage | ChunkMessage | StopMessage) => {
  if (message.type === 'submit') onSubmit(message);
  else if (message.type === 'chunk') onChunk(message);
  else void stop().then(() => message.thenExit && process.exit());
});

function onChunk({ slot, bytes }: ChunkMessage): void {
  const deliver = inputs.get(slot);
  if (deliver !== undefined) deliver(bytes);
  else early.get(slot)?.push(bytes); // neither: the task is over, the chunk is stale
}

function onSubmit({ pages, cancels, tasks, objects }: SubmitMessage): void {
  flags.adopt(pages);
  // Cancels first: they are about tasks sent in earlier messages.
  for (const slot of cancels) {
    const task = active.get(slot);
    if (task !== undefined) end(task, TaskStatus.cancelled);
  }
  for (let at = 0; at < tasks.length; at += TASK_FIELDS) {
    queue.push(tasks[at]!, tasks[at + 1]!, tasks[at + 2]!, tasks[at + 3]!);
    const object = objects?.[at / TASK_FIELDS];
    queueObjects.push(object);
    if (isStreamedInput(object)) early.set(tasks[at]!, []);
  }
  if (!turnScheduled) startQueued(true);
}

/** Starts queued tasks in order; with `budgeted`, for about TURN_BUDGET_MS, then again on the next turn. */
function startQueued(budgeted: boolean): void {
  turnScheduled = false;
  const started = performance.now();
  while (queueAt < queue.length) {
    const at = queueAt;
    queueAt += TASK_FIELDS;
    start(queue[at]!, queue[at + 1]!, queue[at + 2]!, queue[at + 3]!, queueObjects[at / TASK_FIELDS]);
    if (budgeted && performance.now() - started >= TURN_BUDGET_MS && queueAt < queue.length) {
      turnScheduled = true;
      setImmediate(() => startQueued(true));
      return;
    }
  }
  queue = [];
  queueObjects = [];
  queueAt = 0;
}

function start(slot: number, kind: number, timeout: number, number: number, object: unknown): void {
  if (stopping || flags.cancelled(slot)) {
    complete(slot, TaskStatus.cancelled, undefined);
    return;
  }
  if (timeout === 0) {
    // Passed as the task starts: none of its work runs (as on the native backend).
    complete(slot, TaskStatus.timedOut, undefined);
    return;
  }
  // A sleep's end is known in advance: a time limit no shorter never applies
  // (the work wins a tie), and a shorter one always does, whatever Node's
  // timers make of two delays within the same millisecond (as natively).
  if (kind === TaskKind.sleep && timeout >= number) timeout = -1;
  const limitComesFirst = kind === TaskKind.sleep && timeout > 0;
  const task: ActiveTask = { slot, work: undefined, timer: undefined, done: false };
  flags.setPhase(slot, SlotPhase.running);
  Atomics.add(control, Control.running, 1);
  // The timeout counts from now; synchronous work sees it at its checkpoints, the rest through a timer.
  const deadline = timeout < 0 ? Infinity : performance.now() + timeout;
  const context: TaskContext = {
    finish: (status, payload) => end(task, status, payload),
    checkpoint: () => {
      if (flags.cancelled(slot)) throw new Interrupted(TaskStatus.cancelled);
      if (performance.now() >= deadline) throw new Interrupted(TaskStatus.timedOut);
    },
    receive: (onChunk) => {
      inputs.set(slot, (chunk) => {
        try {
          onChunk(chunk);
        } catch (error) {
          fail(task, error);
        }
      });
    },
    tookChunk: () => {
      const took: TookMessage = { type: 'took', slot };
      completions.postMessage(took);
      wakeMainThread(); // a result() blocked on this task may send the next chunk
    },
    later: (step) => {
      setImmediate(() => {
        if (task.done) return; // cancelled or timed out meanwhile
        try {
          step();
        } catch (error) {
          fail(task, error);
        }
      });
    },
  };
  try {
    if (!limitComesFirst) task.work = runTask(kind, number, object, context);
  } catch (error) {
    fail(task, error);
  }
  if (task.done) return;
  active.set(slot, task);
  if (timeout >= 0) task.timer = setTimeout(() => end(task, TaskStatus.timedOut), timeout);
  const arrived = early.get(slot);
  early.delete(slot);
  for (const chunk of arrived ?? []) inputs.get(slot)?.(chunk); // none once the task ended
}

function fail(task: ActiveTask, error: unknown): void {
  if (error instanceof Interrupted) end(task, error.status);
  else end(task, TaskStatus.error, serializeError(error));
}

/** The one way a started task ends: stops what is left of its work and reports it. */
function end(task: ActiveTask, status: TaskStatus, payload?: unknown): void {
  if (task.done) return;
  task.done = true;
  if (status === TaskStatus.cancelled || status === TaskStatus.timedOut) task.work?.abort();
  clearTimeout(task.timer);
  active.delete(task.slot);
  inputs.delete(task.slot);
  Atomics.sub(control, Control.running, 1);
  complete(task.slot, status, payload);
}

function complete(slot: number, status: TaskStatus, payload: unknown): void {
  // Marked done before the message is posted: the main thread frees (and
  // reuses) the slot only after it received that message.
  flags.setPhase(slot, SlotPhase.done);
  early.delete(slot); // cancelled before it started
  doneSlots.push(slot);
  doneStatuses.push(status);
  donePayloads.push(portable(payload, doneTransfers));
  if (payload !== undefined) anyPayload = true;
  if (!flushScheduled) {
    // Once per turn of this loop: timers that fire together share one message.
    flushScheduled = true;
    setImmediate(flushCompletions);
  }
}

function flushCompletions(): void {
  flushScheduled = false;
  if (doneSlots.length === 0) return;
  const message: CompletionMessage = {
    type: 'completions',
    slots: Uint32Array.from(doneSlots),
    statuses: Uint8Array.from(doneStatuses),
    payloads: anyPayload ? donePayloads : undefined,
  };
  completions.postMessage(message, [message.slots.buffer as ArrayBuffer, message.statuses.buffer as ArrayBuffer, ...doneTransfers]);
  doneSlots = [];
  doneStatuses = [];
  donePayloads = [];
  anyPayload = false;
  doneTransfers = [];
  wakeMainThread();
}

/** A result() blocked on the main thread waits on this counter. */
function wakeMainThread(): void {
  Atomics.add(control, Control.completions, 1);
  Atomics.notify(control, Control.completions);
}

async function stop(): Promise<void> {
  stopping = true;
  startQueued(false); // completes what is still queued as cancelled
  for (const task of [...active.values()]) end(task, TaskStatus.cancelled);
  await killAllChildren(); // no zombie outlives the run (but a child we may not signal, left running)
  flushCompletions();
  const stopped: StoppedMessage = { type: 'stopped' };
  completions.postMessage(stopped);
  wakeMainThread();
}

function isStreamedInput(object: unknown): object is StreamedInput {
  return typeof object === 'object' && object !== null && 'streamedBytes' in object;
}

/** Results travel transferred, not cloned; a small Buffer shares Node's pool, so it is copied first. */
function portable(payload: unknown, transfers: ArrayBuffer[]): unknown {
  if (payload instanceof Uint8Array) return own(payload, transfers);
  if (typeof payload === 'object' && payload !== null && 'stdout' in payload && 'stderr' in payload) {
    const result = payload as { stdout: Uint8Array; stderr: Uint8Array };
    result.stdout = own(result.stdout, transfers);
    result.stderr = own(result.stderr, transfers);
  }
  return payload;
}

function own(bytes: Uint8Array, transfers: ArrayBuffer[]): Uint8Array {
  const alone = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
  transfers.push(alone.buffer as ArrayBuffer);
  return alone;
}

/** This thread's id in the kernel's eyes (/proc/thread-self is /proc/<pid>/task/<tid>); 0 where unknown. */
function kernelThreadId(): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || 0;
  } catch {
    return 0;
  }
}
