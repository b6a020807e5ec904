/**
 * EventLoop: the lifecycle of one loop thread, whichever backend runs it.
 *
 *   idle --start/submit--> running --shutdown--> stopping --> stopped
 *                             ^                                  |
 *                             +----------start/submit------------+
 *
 * It knows nothing of threads: a LoopRun (one per start) does.
 */
import { inspect, type InspectOptions } from 'node:util';
// After the import above: the file's comment goes with the first import into
// the .d.ts, and this one is not there.
import { addAbortListener } from 'node:events';

import type { Backend, BackendName, LoopRun } from './backends/backend.js';
import { selectBackend, type BackendOption } from './backends/select.js';
import { EventLoopClosedError, InvalidStateError, QueueFullError, invalidArgType, invalidArgValue, invalidThis, nativeOnly, outOfRange } from './errors.js';
import { Future, announceAll, type AnyFuture, type Outcome } from './future.js';
import { NATIVE_API, SUBMIT_NATIVE } from './native-extension.js';
import { accessDenied } from './permission.js';
import {
  TaskKind,
  compressRequest,
  describeTask,
  decompressRequest,
  execRequest,
  extensionRequest,
  hashRequest,
  normalizeSubmitOptions,
  readFileRequest,
  sleepRequest,
  writeFileRequest,
  type BinaryLike,
  type CompressOptions,
  type ExecOptions,
  type ExecResult,
  type HashAlgorithm,
  type SubmitOptions,
  type TaskRequest,
  type WriteFileRequest,
} from './tasks.js';
import { validateBoolean, validateNumber, validateObject, validateString } from './validate.js';

export interface EventLoopOptions {
  /** Default 'auto': native when the addon loads, else worker. */
  backend?: BackendOption;
  /** OS thread name, default 'sideloop' (Linux keeps 15 bytes). */
  name?: string;
  /** Default true: pending tasks keep the process alive; an idle loop never does. */
  keepAlive?: boolean;
  /** A positive integer or Infinity (default); beyond it, submissions fail with QueueFullError. */
  maxPending?: number;
  /** µs the loop thread keeps polling for work before it sleeps; default 0. */
  spin?: number;
}

export type LoopState = 'idle' | 'running' | 'stopping' | 'stopped';

export interface LoopStats {
  submitted: number;
  completed: number;
  failed: number;
  cancelled: number;
  pending: number;
  running: number;
}

export interface ShutdownOptions {
  /** Cancel pending tasks instead of waiting for them. */
  cancelPending?: boolean;
}

/**
 * @internal The key of a flag the EventLoopGroup a loop belongs to sets
 * while the group stops: submissions are refused as while 'stopping',
 * rather than restarting a member that stopped before the others. An
 * accessor of a private field, so Object.keys(loop) does not show it.
 */
export const GROUP_STOPPING: unique symbol = Symbol('sideloop.groupStopping');

/**
 * @internal The key of the method an EventLoopGroup gives a submission that
 * failed only because its loop could not start (out of threads or file
 * descriptors; see takeUnstarted): the loop that runs takes it as it was
 * made, its arguments not read again.
 */
export const RESUBMIT: unique symbol = Symbol('sideloop.resubmit');

/**
 * @internal The key of a flag an EventLoopGroup sets on its loops: a
 * submission they cannot start for is kept for the group (takeUnstarted).
 * A loop of its own keeps nothing: its failed Future holds only the error,
 * not the task's input.
 */
export const GROUP_MEMBER: unique symbol = Symbol('sideloop.groupMember');

/** @internal A submission its loop could not start for: what it asked, checked already. */
export interface UnstartedSubmission {
  readonly request: TaskRequest;
  readonly signal: AbortSignal | undefined;
}

/**
 * By their failed Futures: weak, so that a Future no one holds lets its
 * request (and input) go with it.
 */
const unstartedSubmissions = new WeakMap<AnyFuture, UnstartedSubmission>();

/**
 * @internal The submission behind `future` if it failed only because its
 * loop could not start, taken (asked again, undefined).
 */
export function takeUnstarted(future: AnyFuture): UnstartedSubmission | undefined {
  const unstarted = unstartedSubmissions.get(future);
  unstartedSubmissions.delete(future);
  return unstarted;
}

/**
 * @internal The key of shutdown() without its last step: the Futures that
 * cancelPending concluded (cancelled, or finished with their results) are
 * returned for the caller to announce (announceAll). An EventLoopGroup
 * concludes every member's before any callback runs, as one loop does.
 */
export const BEGIN_SHUTDOWN: unique symbol = Symbol('sideloop.beginShutdown');

/** @internal What BEGIN_SHUTDOWN returns. */
export interface BegunShutdown {
  stopped: Promise<void>;
  /** Concluded by cancelPending (cancelled, or finished with their results), not yet announced. */
  cancelled: (AnyFuture | undefined)[];
}

/**
 * @internal shutdown()'s options, read and checked once: a group passes the
 * result to each member, so a getter is not read again for each (and cannot
 * throw halfway, with some members stopping and their Futures concluded).
 */
export function normalizeShutdownOptions(options: unknown): Required<ShutdownOptions> {
  validateObject(options, 'options');
  const cancelPending = (options as ShutdownOptions | undefined)?.cancelPending ?? false;
  validateBoolean(cancelPending, 'options.cancelPending');
  return { cancelPending };
}

export class EventLoop {
  /** The backend in use. */
  readonly backend: BackendName;
  readonly name: string;

  readonly #backend: Backend;
  readonly #keepAlive: boolean;
  readonly #maxPending: number;
  readonly #spin: number;

  #state: LoopState = 'idle';
  #groupStopping = false;
  #groupMember = false; // see GROUP_MEMBER
  #run: LoopRun | undefined;
  #pending = 0;
  #submitted = 0;
  #completed = 0;
  #failed = 0;
  #cancelled = 0;
  #shutdown: Promise<void> | undefined;
  #reaping: Promise<void> | undefined; // the stop of a run whose thread died (#onRunDied)
  #onIdle: (() => void) | undefined;

  constructor(options?: EventLoopOptions) {
    validateObject(options, 'options');
    const { backend, name = 'sideloop', keepAlive = true, maxPending = Infinity, spin = 0 } = (options ?? {}) as EventLoopOptions;
    validateString(name, 'options.name');
    // It names the loop's thread, which would end at a NUL byte.
    if (name.includes('\0')) throw invalidArgValue('options.name', 'must be a string without null bytes', name);
    validateBoolean(keepAlive, 'options.keepAlive');
    validateNumber(maxPending, 'options.maxPending');
    if (maxPending !== Infinity && !(Number.isInteger(maxPending) && maxPending >= 1)) {
      throw outOfRange('options.maxPending', 'a positive integer or Infinity', maxPending);
    }
    validateNumber(spin, 'options.spin');
    if (!(Number.isInteger(spin) && spin >= 0 && spin <= 1_000_000)) {
      throw outOfRange('options.spin', 'an integer >= 0 && <= 1000000', spin);
    }
    this.#backend = selectBackend(backend);
    this.backend = this.#backend.name;
    this.name = name;
    this.#keepAlive = keepAlive;
    this.#maxPending = maxPending;
    this.#spin = spin;
  }

  /** Throws ERR_INVALID_THIS unless `self` is an EventLoop itself (see invalidThis). */
  static #checkThis(self: unknown): void {
    if (!EventLoop.#isLoop(self)) throw invalidThis('EventLoop');
  }

  /** Whether `self` is an EventLoop itself: not a Proxy of one, nor an object made from one. */
  static #isLoop(self: unknown): self is EventLoop {
    return typeof self === 'object' && self !== null && #state in self;
  }

  get state(): LoopState {
    EventLoop.#checkThis(this);
    return this.#state;
  }

  /** Tasks submitted and not yet done. */
  get pending(): number {
    EventLoop.#checkThis(this);
    return this.#pending;
  }

  /** Starts the loop thread; does nothing when running. Throws InvalidStateError while stopping. */
  start(): this {
    EventLoop.#checkThis(this);
    if (this.#state === 'running') return this;
    if (this.#state === 'stopping') throw new InvalidStateError('The loop cannot start while it is stopping');
    const run: LoopRun = this.#backend.startRun({
      name: this.name,
      keepAlive: this.#keepAlive,
      spin: this.#spin,
      onSettled: (outcome) => this.#onSettled(outcome),
      onDied: () => this.#onRunDied(run),
    });
    this.#run = run;
    this.#state = 'running';
    return this;
  }

  /**
   * Stops accepting work, waits for pending tasks (or cancels them with
   * `cancelPending`), then stops the thread. Calling it again while stopping
   * returns the same promise (and `cancelPending` still cancels what is left).
   */
  shutdown(options?: ShutdownOptions): Promise<void> {
    EventLoop.#checkThis(this);
    const { stopped, cancelled } = this[BEGIN_SHUTDOWN](options);
    announceAll(cancelled);
    return stopped;
  }

  /** @internal See BEGIN_SHUTDOWN. */
  [BEGIN_SHUTDOWN](options?: ShutdownOptions): BegunShutdown {
    const { cancelPending } = normalizeShutdownOptions(options);
    if (this.#state === 'idle' || this.#state === 'stopped') return { stopped: this.#reaping ?? Promise.resolve(), cancelled: [] };
    // 'stopping' first: what the cancelled Futures' callbacks submit is refused.
    this.#shutdown ??= this.#stop();
    return { stopped: this.#shutdown, cancelled: cancelPending ? this.#run!.cancelAll() : [] };
  }

  [Symbol.asyncDispose](): Promise<void> {
    EventLoop.#checkThis(this);
    return this.shutdown();
  }

  stats(): LoopStats {
    EventLoop.#checkThis(this);
    return {
      submitted: this.#submitted,
      completed: this.#completed,
      failed: this.#failed,
      cancelled: this.#cancelled,
      pending: this.#pending,
      running: this.#run?.running() ?? 0,
    };
  }

  /** Resolves with `value` after `ms` milliseconds, timed on the loop's thread. */
  sleep(ms: number, value?: undefined, options?: SubmitOptions): Future<undefined>;
  sleep<T>(ms: number, value: T, options?: SubmitOptions): Future<T>;
  sleep<T>(ms: number, value?: T, options?: SubmitOptions): Future<T | undefined> {
    EventLoop.#checkThis(this);
    const normalized = normalizeSubmitOptions(options);
    return this.#submit(sleepRequest(ms, value, normalized), normalized.signal);
  }

  /** The digest of `data`, equal to `crypto.createHash(algorithm).update(data).digest()`. */
  hash(algorithm: HashAlgorithm | Uppercase<HashAlgorithm>, data: BinaryLike, options?: SubmitOptions): Future<Buffer> {
    EventLoop.#checkThis(this);
    const normalized = normalizeSubmitOptions(options);
    return this.#submit(hashRequest(algorithm, data, normalized), normalized.signal);
  }

  /** `data` gzip-compressed, byte for byte as `zlib.gzipSync(data, { level })`. */
  gzip(data: BinaryLike, options?: CompressOptions): Future<Buffer> {
    EventLoop.#checkThis(this);
    const normalized = normalizeSubmitOptions(options);
    return this.#submit(compressRequest(TaskKind.gzip, data, options?.level, normalized), normalized.signal);
  }

  /** gzip data decompressed; corrupt or truncated input fails with node:zlib's code. */
  gunzip(data: BinaryLike, options?: SubmitOptions): Future<Buffer> {
    EventLoop.#checkThis(this);
    const normalized = normalizeSubmitOptions(options);
    return this.#submit(decompressRequest(TaskKind.gunzip, data, normalized), normalized.signal);
  }

  /** `data` zlib-deflated, byte for byte as `zlib.deflateSync(data, { level })`. */
  deflate(data: BinaryLike, options?: CompressOptions): Future<Buffer> {
    EventLoop.#checkThis(this);
    const normalized = normalizeSubmitOptions(options);
    return this.#submit(compressRequest(TaskKind.deflate, data, options?.level, normalized), normalized.signal);
  }

  /** zlib (deflate) data decompressed; corrupt or truncated input fails with node:zlib's code. */
  inflate(data: BinaryLike, options?: SubmitOptions): Future<Buffer> {
    EventLoop.#checkThis(this);
    const normalized = normalizeSubmitOptions(options);
    return this.#submit(decompressRequest(TaskKind.inflate, data, normalized), normalized.signal);
  }

  /** A file's contents, read on the loop's thread (never behind Node's threadpool). */
  readFile(path: string | URL, options?: SubmitOptions): Future<Buffer> {
    EventLoop.#checkThis(this);
    const normalized = normalizeSubmitOptions(options);
    const request = readFileRequest(path, normalized);
    return this.#submit(request, normalized.signal, accessDenied('fs.read', request.object as string));
  }

  /** Writes (creates or truncates) a file on the loop's thread. */
  writeFile(path: string | URL, data: BinaryLike, options?: SubmitOptions): Future<void> {
    EventLoop.#checkThis(this);
    const normalized = normalizeSubmitOptions(options);
    const request = writeFileRequest(path, data, normalized);
    return this.#submit(request, normalized.signal, accessDenied('fs.write', (request.object as WriteFileRequest).path));
  }

  /** Runs a program (no shell), spawned from the loop's thread, and collects its output. */
  exec(file: string, args?: readonly string[] | null, options?: ExecOptions | null): Future<ExecResult>;
  exec(file: string, options?: ExecOptions | null): Future<ExecResult>;
  exec(file: string, args?: readonly string[] | ExecOptions | null, options?: ExecOptions | null): Future<ExecResult> {
    EventLoop.#checkThis(this);
    if (options === null) options = undefined; // as execFile takes it
    if (options === undefined && args !== null && typeof args === 'object' && !Array.isArray(args)) {
      options = args as ExecOptions;
      args = undefined;
    }
    const normalized = normalizeSubmitOptions(options);
    const request = execRequest(file, args, options, normalized);
    return this.#submit(request, normalized.signal, accessDenied('child'));
  }

  /** @internal See GROUP_MEMBER. */
  set [GROUP_MEMBER](member: boolean) {
    this.#groupMember = member;
  }

  /** @internal See RESUBMIT. */
  [RESUBMIT]<T>(unstarted: UnstartedSubmission): Future<T> {
    return this.#submit(unstarted.request, unstarted.signal);
  }

  /** @internal See GROUP_STOPPING. */
  get [GROUP_STOPPING](): boolean {
    return this.#groupStopping;
  }

  /** @internal */
  set [GROUP_STOPPING](refuse: boolean) {
    this.#groupStopping = refuse;
  }

  /** @internal The addon's table for native extensions (docs/native-api.md); throws for a loop that runs no native code. */
  get [NATIVE_API](): unknown {
    // A Proxy of a loop, or an object made from one, reaches here too.
    if (!(#backend in this)) throw invalidArgType('loop', 'an EventLoop itself, not a Proxy of one or an object made from one', this);
    if (this.#backend.nativeApi === undefined) throw nativeOnly(this.backend);
    return this.#backend.nativeApi;
  }

  /** @internal sideloop_api.submit: a native extension's task, on the path every built-in task takes. */
  [SUBMIT_NATIVE](handle: unknown, options?: SubmitOptions): Future<unknown> {
    if (!(#backend in this)) throw invalidArgType('loop', 'an EventLoop itself, not a Proxy of one or an object made from one', this);
    if (this.#backend.nativeApi === undefined) throw nativeOnly(this.backend);
    const normalized = normalizeSubmitOptions(options);
    return this.#submit(extensionRequest(handle, normalized), normalized.signal);
  }

  [inspect.custom](depth: number, options: InspectOptions): string {
    // Printing an object made from a loop shows it as it is, without a throw.
    if (!EventLoop.#isLoop(this)) return inspect(this, { ...options, customInspect: false });
    return `EventLoop { name: ${inspect(this.name)}, backend: '${this.backend}', state: '${this.#state}', pending: ${this.#pending} }`;
  }

  /** `denied`: what Node's permission model says against the task (src/permission.ts). */
  #submit<T>(request: TaskRequest, signal: AbortSignal | undefined, denied?: Error): Future<T> {
    if (denied !== undefined) return Future._failed(denied);
    if (this.#state === 'stopping') return this.#refuse(request);
    if (this.#pending >= this.#maxPending) {
      return Future._failed(new QueueFullError(`${describeTask(request)}: ${this.#maxPending} tasks are already pending`));
    }
    if (this.#state !== 'running') {
      if (this.#groupStopping) return this.#refuse(request);
      try {
        this.start();
      } catch (error) {
        // Out of threads or file descriptors, or Worker creation denied by
        // the permission model: operational, so a failed Future, as for
        // any task that cannot run (start() itself throws it).
        const failed = Future._failed<T>(error as Error);
        if (this.#groupMember) unstartedSubmissions.set(failed, { request, signal });
        return failed;
      }
    }
    const run = this.#run!;
    const future = Future._owned<T>(run);
    this.#pending++;
    this.#submitted++;
    run.submit(request, future);
    if (signal !== undefined) followSignal(signal, future);
    return future;
  }

  #refuse<T>(request: TaskRequest): Future<T> {
    return Future._failed(new EventLoopClosedError(`${describeTask(request)} was submitted while the loop was stopping`));
  }

  async #stop(): Promise<void> {
    this.#state = 'stopping';
    // Always yield once, so shutdown() returns with the loop 'stopping'.
    await (this.#pending > 0 ? new Promise<void>((resolve) => (this.#onIdle = resolve)) : undefined);
    await this.#run!.stop();
    await this.#reaping; // a thread that died before a restart is gone too
    this.#run = undefined;
    this.#state = 'stopped';
    this.#shutdown = undefined;
  }

  /**
   * The run's thread died under it (its Futures have failed): the loop is
   * stopped at once, so the next submission starts a fresh thread, and what
   * is left of the dead one is reaped meanwhile.
   */
  #onRunDied(run: LoopRun): void {
    if (this.#run !== run || this.#state !== 'running') return; // a shutdown() under way finishes the stop
    this.#run = undefined;
    this.#state = 'stopped';
    // Nothing can fail here any more (its Futures have): a rejection is dropped.
    // A thread that died before this one may still be being reaped: the
    // next shutdown() waits for both.
    const reaping: Promise<void> = Promise.all([this.#reaping, Promise.resolve(run.stop()).catch(() => undefined)])
      .then(() => {
        if (this.#reaping === reaping) this.#reaping = undefined;
      });
    this.#reaping = reaping;
  }

  #onSettled(outcome: Outcome): void {
    this.#pending--;
    if (outcome === 'completed') this.#completed++;
    else if (outcome === 'failed') this.#failed++;
    else this.#cancelled++;
    if (this.#pending === 0 && this.#onIdle !== undefined) {
      this.#onIdle();
      this.#onIdle = undefined;
    }
  }
}

/** Aborting `signal` cancels `future`; the listener goes once the future is done. */
function followSignal(signal: AbortSignal, future: AnyFuture): void {
  if (signal.aborted) {
    future._cancelBecause(signal.reason);
    return;
  }
  const stopListening = onAbort(signal, () => future._cancelBecause(signal.reason));
  future._onDone(stopListening);
}

/**
 * Listens for `signal`'s abort as Node's own APIs do (events.addAbortListener):
 * an 'abort' listener added before it that calls stopImmediatePropagation()
 * cannot keep the task from being cancelled. Node before 20.5 (and a runtime
 * without it) gets a plain listener. Returns what removes it.
 */
function onAbort(signal: AbortSignal, listener: () => void): () => void {
  if (typeof addAbortListener === 'function') {
    const listening = addAbortListener(signal, listener);
    return () => listening[Symbol.dispose]();
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}
