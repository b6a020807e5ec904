/**
 * What the main thread and the worker backend's thread say to each other,
 * and the memory they share. Imported by both sides (worker.ts, worker-entry.cts).
 *
 * main -> worker (worker.postMessage), at most one message per microtask:
 *   SubmitMessage: new slot pages, cancelled slots, then new tasks.
 *   ChunkMessage: the next piece of a large byte input (see INPUT_CHUNK).
 *   StopMessage: abort everything, reap children, answer StoppedMessage
 *   (and end the thread, for a run that was garbage-collected).
 * worker -> main (a dedicated MessagePort, so result() can pull from it
 * synchronously with receiveMessageOnPort), at most one message per turn of
 * the worker's loop (TookMessages aside):
 *   CompletionMessage: many finished tasks; then the worker bumps
 *   control[COMPLETIONS] and notifies, which is what a blocked result() waits on.
 *   TookMessage: a task took a chunk of its input, so one more may come
 *   (INPUT_WINDOW); bumped and notified the same way.
 *   StoppedMessage: the last message of a run.
 *   DiedMessage: an exception is ending the worker's thread; sent (and
 *   notified) from the thread itself, so that a blocked result() learns it.
 */
import type { MessagePort } from 'node:worker_threads';
import { setOwnField } from '../errors.js';
import type { ExecRequest } from '../tasks.js';

/** Per task in SubmitMessage.tasks: slot, kind, timeout (-1 none), number. */
export const TASK_FIELDS = 4;

/**
 * Byte inputs of chunked tasks (hash, zlib) larger than this are not copied
 * whole at submission: the main thread copies and sends one chunk per turn
 * of its loop (ChunkMessage), up to INPUT_WINDOW ahead of the worker, which
 * already works on the first ones; it stops as soon as the Future is done,
 * so a cancel or a timeout saves the copying too. The task object is then a
 * StreamedInput.
 */
export const INPUT_CHUNK = 1024 * 1024;

/**
 * Chunks of a StreamedInput sent ahead of what the worker has taken
 * (TookMessage): what a slow reader holds beyond its current chunk, and what
 * it can work on while the main thread is busy.
 */
export const INPUT_WINDOW = 8;

/**
 * Chunks of all StreamedInputs together sent ahead of what the worker has
 * taken: what one turn of the main thread copies at most, and what waits in
 * memory at most, however many large inputs are in flight (the inputs take
 * turns). Two inputs' worth, so that two tasks streaming at once are each
 * held up by their own window only.
 */
export const INPUT_WINDOW_TOTAL = 2 * INPUT_WINDOW;

/**
 * The largest result a task gives (Node 20's buffer.constants.MAX_LENGTH,
 * which node:zlib holds its output to) and the largest file readFile reads
 * (node:fs's limit, which also ends files that never end): the native
 * core's kMaxResultBytes and kMaxFileBytes (native/core/task_errors.h).
 */
export const MAX_RESULT_BYTES = 2 ** 32;
export const MAX_FILE_BYTES = 2 ** 31 - 1;

export function resultTooLarge(): RangeError {
  return Object.assign(new RangeError(`Cannot create a Buffer larger than ${MAX_RESULT_BYTES} bytes`), { code: 'ERR_BUFFER_TOO_LARGE' });
}

/** As node:fs says it; without the size for a file whose size was not known ahead. */
export function fileTooLarge(size: number | undefined): RangeError {
  const message = size === undefined ? 'File size is greater than 2 GiB' : `File size (${size}) is greater than 2 GiB`;
  return Object.assign(new RangeError(message), { code: 'ERR_FS_FILE_TOO_LARGE' });
}

export interface StreamedInput {
  streamedBytes: number;
}

/** Indexes into the shared control Int32Array. */
export const Control = {
  /** Bumped after each CompletionMessage or TookMessage is posted (Atomics.wait target). */
  completions: 0,
  /** Tasks running on the worker right now. */
  running: 1,
  /** The worker's kernel thread id (Linux; 0 elsewhere), so stop() can wait until it is reaped. */
  threadId: 2,
  /** Set by the main thread's 'exit' hook before it kills the children: no more may be spawned. */
  exiting: 3,
  length: 4,
} as const;

export interface WorkerSetup {
  control: Int32Array;
  completions: MessagePort;
  /** The pids of the run's living children (0: free), for the main thread to kill at process exit (newPidTable). */
  children: Int32Array;
}

/**
 * Room for the pids of a run's living children, which the main thread sees:
 * process.exit() ends the Worker without a goodbye, and only the main
 * thread, in its 'exit' event, can still kill what the Worker spawned. The
 * table starts with CHILD_SLOTS and the Worker grows it (a growable
 * SharedArrayBuffer, seen at its new length by both threads) up to
 * MAX_CHILD_SLOTS; beyond that many children at once, the rest are not
 * recorded (and would outlive such an exit).
 */
const CHILD_SLOTS = 256;
export const MAX_CHILD_SLOTS = 65_536;

/** A pid table of CHILD_SLOTS zeros, growable to MAX_CHILD_SLOTS. */
export function newPidTable(): Int32Array {
  const bytes = Int32Array.BYTES_PER_ELEMENT;
  // Growable shared memory is ES2024 (Node 20 has it); the ES2022 typings do not know the option.
  const Growable = SharedArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => SharedArrayBuffer;
  return new Int32Array(new Growable(CHILD_SLOTS * bytes, { maxByteLength: MAX_CHILD_SLOTS * bytes }));
}

/**
 * An exec as the Worker receives it. `submittedAtExit`: submitted during the
 * process's exit and sent because the main thread waits, as an 'exit'
 * listener's `loop.exec(...).result()` does. Once the main thread's kill
 * hook (killAtExit) has run, the Worker spawns nothing submitted before the
 * exit (that child would outlive the process); such a one it spawns, and
 * the wait reaps it (or the hook, still to come, kills it).
 */
export interface ExecAtExit extends ExecRequest {
  submittedAtExit: boolean;
}

export interface SubmitMessage {
  type: 'submit';
  /** Shared flag pages for slots beyond the pages sent so far (SlotFlags). */
  pages: Int32Array[];
  cancels: number[];
  /** TASK_FIELDS numbers per task, transferred. */
  tasks: Float64Array;
  /** The i-th task's request.object, with byte views copied and transferred (or shared); undefined when no task has one (a batch of sleeps). */
  objects: unknown[] | undefined;
}

export interface ChunkMessage {
  type: 'chunk';
  slot: number;
  /** The next INPUT_CHUNK bytes (fewer at the end) of the slot's StreamedInput, transferred. */
  bytes: Uint8Array;
}

/** The worker took the next chunk of the slot's StreamedInput (on the completions port). */
export interface TookMessage {
  type: 'took';
  slot: number;
}

export interface StopMessage {
  type: 'stop';
  /** Nobody waits for the answer: the thread ends itself once its children are reaped. */
  thenExit?: boolean;
}

export interface CompletionMessage {
  type: 'completions';
  slots: Uint32Array;
  statuses: Uint8Array;
  /** Per entry: the product (ok) or a SerializedError (error); undefined when no entry has one (a batch of sleeps). */
  payloads: unknown[] | undefined;
}

export interface StoppedMessage {
  type: 'stopped';
}

export interface DiedMessage {
  type: 'died';
  error: SerializedError;
}

/**
 * Where a slot's task is, and whether it was cancelled, in shared memory:
 * the main thread reads phases (Future.state) and writes cancel flags; the
 * worker writes phases and reads cancel flags between chunks of work. Slots
 * come in pages of PAGE_SIZE so the table can grow without moving.
 */
export const SlotPhase = { pending: 0, running: 1, done: 2 } as const;

const PAGE_SHIFT = 10;
const PAGE_SIZE = 1 << PAGE_SHIFT;

export class SlotFlags {
  readonly #pages: Int32Array[] = [];

  /** Main thread: makes sure `slot` has a page; returns the new page, if one was made. */
  grow(slot: number): Int32Array | undefined {
    if (slot >> PAGE_SHIFT < this.#pages.length) return undefined;
    const page = new Int32Array(new SharedArrayBuffer(2 * PAGE_SIZE * Int32Array.BYTES_PER_ELEMENT));
    this.#pages.push(page);
    return page;
  }

  /** Worker: adopts pages the main thread made. */
  adopt(pages: Int32Array[]): void {
    this.#pages.push(...pages);
  }

  /** Main thread, before a slot is handed out again. */
  reset(slot: number): void {
    const page = this.#pages[slot >> PAGE_SHIFT]!;
    Atomics.store(page, slot & (PAGE_SIZE - 1), SlotPhase.pending);
    Atomics.store(page, PAGE_SIZE + (slot & (PAGE_SIZE - 1)), 0);
  }

  phase(slot: number): number {
    return Atomics.load(this.#pages[slot >> PAGE_SHIFT]!, slot & (PAGE_SIZE - 1));
  }

  setPhase(slot: number, phase: number): void {
    Atomics.store(this.#pages[slot >> PAGE_SHIFT]!, slot & (PAGE_SIZE - 1), phase);
  }

  cancelled(slot: number): boolean {
    return Atomics.load(this.#pages[slot >> PAGE_SHIFT]!, PAGE_SIZE + (slot & (PAGE_SIZE - 1))) !== 0;
  }

  cancel(slot: number): void {
    Atomics.store(this.#pages[slot >> PAGE_SHIFT]!, PAGE_SIZE + (slot & (PAGE_SIZE - 1)), 1);
  }
}

/**
 * An error as it crosses threads. Structured clone keeps only name, message
 * and stack, so node:fs, node:zlib and child_process fields travel explicitly.
 */
export interface SerializedError {
  name: string;
  message: string;
  stack: string | undefined;
  fields: Record<string, unknown>;
}

const ERROR_FIELDS = ['code', 'errno', 'syscall', 'path', 'dest'] as const;

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), stack: undefined, fields: {} };
  const fields: Record<string, unknown> = {};
  for (const key of ERROR_FIELDS) {
    const value = (error as unknown as Record<string, unknown>)[key];
    if (value !== undefined) fields[key] = value;
  }
  return { name: error.name, message: error.message, stack: error.stack, fields };
}

const ERROR_CLASSES: Record<string, ErrorConstructor> = { TypeError, RangeError };

export function deserializeError(serialized: SerializedError): Error {
  const error = new (ERROR_CLASSES[serialized.name] ?? Error)(serialized.message);
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  for (const [key, value] of Object.entries(serialized.fields)) setOwnField(error, key, value);
  return error;
}
