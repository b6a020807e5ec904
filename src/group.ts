/**
 * Several loops behind one face, for CPU-bound work where one thread is one
 * core. Each submission goes to the loop with the fewest pending tasks.
 */
import os from 'node:os';
import { inspect, type InspectOptions } from 'node:util';

import type { BackendName } from './backends/backend.js';
import { InvalidStateError, invalidThis, outOfRange } from './errors.js';
import {
  BEGIN_SHUTDOWN,
  EventLoop,
  GROUP_MEMBER,
  GROUP_STOPPING,
  RESUBMIT,
  normalizeShutdownOptions,
  takeUnstarted,
  type EventLoopOptions,
  type LoopState,
  type LoopStats,
  type ShutdownOptions,
} from './event-loop.js';
import { announceAll, type Future } from './future.js';
import type { BinaryLike, CompressOptions, ExecOptions, ExecResult, HashAlgorithm, SubmitOptions } from './tasks.js';
import { validateNumber, validateObject } from './validate.js';

export interface EventLoopGroupOptions extends EventLoopOptions {
  /** How many loops; default `os.availableParallelism()`. */
  size?: number;
}

export class EventLoopGroup {
  readonly size: number;
  readonly #loops: EventLoop[];
  #next = 0; // where the search for the least busy loop starts, so ties rotate
  #stopping: Promise<void> | undefined; // while shutdown() is under way

  constructor(options?: EventLoopGroupOptions) {
    validateObject(options, 'options');
    const { size = os.availableParallelism(), ...loopOptions } = (options ?? {}) as EventLoopGroupOptions;
    validateNumber(size, 'options.size');
    if (!(Number.isInteger(size) && size >= 1 && size <= 1024)) throw outOfRange('options.size', 'an integer >= 1 && <= 1024', size);
    this.size = size;
    this.#loops = [new EventLoop(loopOptions)];
    for (let i = 1; i < size; i++) this.#loops.push(new EventLoop(loopOptions));
    for (const loop of this.#loops) loop[GROUP_MEMBER] = true;
  }

  /** Throws ERR_INVALID_THIS unless `self` is an EventLoopGroup itself (see invalidThis). */
  static #checkThis(self: unknown): void {
    if (!EventLoopGroup.#isGroup(self)) throw invalidThis('EventLoopGroup');
  }

  /** Whether `self` is an EventLoopGroup itself: not a Proxy of one, nor an object made from one. */
  static #isGroup(self: unknown): self is EventLoopGroup {
    return typeof self === 'object' && self !== null && #loops in self;
  }

  get backend(): BackendName {
    EventLoopGroup.#checkThis(this);
    return this.#loops[0]!.backend;
  }

  get name(): string {
    EventLoopGroup.#checkThis(this);
    return this.#loops[0]!.name;
  }

  get state(): LoopState {
    EventLoopGroup.#checkThis(this);
    if (this.#stopping !== undefined) return 'stopping';
    const states = this.#loops.map((loop) => loop.state);
    if (states.includes('stopping')) return 'stopping';
    if (states.includes('running')) return 'running';
    if (states.includes('stopped')) return 'stopped';
    return 'idle';
  }

  get pending(): number {
    EventLoopGroup.#checkThis(this);
    return this.#loops.reduce((sum, loop) => sum + loop.pending, 0);
  }

  start(): this {
    EventLoopGroup.#checkThis(this);
    if (this.#stopping !== undefined) throw new InvalidStateError('The group cannot start while it is stopping');
    for (const loop of this.#loops) loop.start();
    return this;
  }

  /**
   * Shuts every loop down; the group is 'stopping' until the last one has
   * stopped, and refuses work meanwhile, as a loop does. Calling it again
   * while stopping returns the same promise (`cancelPending` still cancels).
   */
  shutdown(options?: ShutdownOptions): Promise<void> {
    EventLoopGroup.#checkThis(this);
    // Read once, before any loop changes: bad options throw here, as a
    // loop's do, and each member gets the values read.
    const normalized = normalizeShutdownOptions(options);
    if (this.#stopping !== undefined) {
      // Again while stopping (maybe from a done callback that the first
      // call runs): the same promise; cancelPending still cancels.
      announceAll(this.#loops.flatMap((loop) => loop[BEGIN_SHUTDOWN](normalized).cancelled));
      return this.#stopping;
    }
    if (this.#loops.every((loop) => loop.state === 'idle' || loop.state === 'stopped')) {
      // Nothing to stop: resolved at once, the group open to work, as a loop is.
      return Promise.all(this.#loops.map((loop) => loop.shutdown(normalized))).then(() => undefined);
    }
    // 'stopping' and refusing work before any loop stops: with
    // cancelPending, the done callbacks run inside a loop's shutdown(), and
    // what they submit must not start a loop that is idle, or stopped.
    let stopped!: (all: Promise<void>) => void;
    const stopping = new Promise<void>((resolve) => (stopped = resolve));
    this.#stopping = stopping;
    this.#refuseWork(true);
    const reopen = () => {
      this.#refuseWork(false);
      this.#stopping = undefined;
    };
    const begun = this.#loops.map((loop) => loop[BEGIN_SHUTDOWN](normalized));
    // With cancelPending: every member's Futures are done before any
    // callback runs, as in one loop, so a callback that waits on a sibling
    // on another member finds it cancelled (it waited for the sibling's work).
    announceAll(begun.flatMap(({ cancelled }) => cancelled));
    stopped(
      Promise.all(begun.map(({ stopped }) => stopped)).then(reopen, (error: unknown) => {
        reopen();
        throw error;
      }),
    );
    return stopping;
  }

  #refuseWork(refuse: boolean): void {
    for (const loop of this.#loops) loop[GROUP_STOPPING] = refuse;
  }

  [Symbol.asyncDispose](): Promise<void> {
    EventLoopGroup.#checkThis(this);
    return this.shutdown();
  }

  [inspect.custom](depth: number, options: InspectOptions): string {
    // Printing an object made from a group shows it as it is, without a throw.
    if (!EventLoopGroup.#isGroup(this)) return inspect(this, { ...options, customInspect: false });
    return `EventLoopGroup { name: ${inspect(this.name)}, backend: '${this.backend}', size: ${this.size}, state: '${this.state}', pending: ${this.pending} }`;
  }

  stats(): LoopStats {
    EventLoopGroup.#checkThis(this);
    const total: LoopStats = { submitted: 0, completed: 0, failed: 0, cancelled: 0, pending: 0, running: 0 };
    for (const loop of this.#loops) {
      const stats = loop.stats();
      for (const key of Object.keys(total) as (keyof LoopStats)[]) total[key] += stats[key];
    }
    return total;
  }

  sleep(ms: number, value?: undefined, options?: SubmitOptions): Future<undefined>;
  sleep<T>(ms: number, value: T, options?: SubmitOptions): Future<T>;
  sleep<T>(ms: number, value?: T, options?: SubmitOptions): Future<T | undefined> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.sleep(ms, value, options));
  }

  hash(algorithm: HashAlgorithm | Uppercase<HashAlgorithm>, data: BinaryLike, options?: SubmitOptions): Future<Buffer> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.hash(algorithm, data, options));
  }

  gzip(data: BinaryLike, options?: CompressOptions): Future<Buffer> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.gzip(data, options));
  }

  gunzip(data: BinaryLike, options?: SubmitOptions): Future<Buffer> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.gunzip(data, options));
  }

  deflate(data: BinaryLike, options?: CompressOptions): Future<Buffer> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.deflate(data, options));
  }

  inflate(data: BinaryLike, options?: SubmitOptions): Future<Buffer> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.inflate(data, options));
  }

  readFile(path: string | URL, options?: SubmitOptions): Future<Buffer> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.readFile(path, options));
  }

  writeFile(path: string | URL, data: BinaryLike, options?: SubmitOptions): Future<void> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.writeFile(path, data, options));
  }

  exec(file: string, args?: readonly string[] | null, options?: ExecOptions | null): Future<ExecResult>;
  exec(file: string, options?: ExecOptions | null): Future<ExecResult>;
  exec(file: string, args?: readonly string[] | ExecOptions | null, options?: ExecOptions | null): Future<ExecResult> {
    EventLoopGroup.#checkThis(this);
    return this.#submit((loop) => loop.exec(file, args as readonly string[], options));
  }

  /**
   * Submits with `call` to the loop with the fewest pending tasks, which
   * checks the arguments and starts itself (a programmer error starts no
   * thread, as on a loop).
   */
  #submit<T>(call: (loop: EventLoop) => Future<T>): Future<T> {
    const loop = this.#pick();
    const future = call(loop);
    const unstarted = takeUnstarted(future);
    if (unstarted === undefined) return future;
    // It could not start (out of threads or file descriptors): with 0
    // pending it would be picked, and fail, for every task while another
    // loop runs. Submitted there instead, as checked and made already
    // (nothing of it was sent anywhere).
    let running: EventLoop | undefined;
    for (const other of this.#loops) {
      if (other.state === 'running' && (running === undefined || other.pending < running.pending)) running = other;
    }
    return running === undefined ? future : running[RESUBMIT]<T>(unstarted); // none runs: the submission fails with the reason
  }

  #pick(): EventLoop {
    const loops = this.#loops;
    let best = loops[this.#next]!;
    for (let i = 1; i < loops.length; i++) {
      const loop = loops[(this.#next + i) % loops.length]!;
      if (loop.pending < best.pending) best = loop;
    }
    this.#next = (this.#next + 1) % loops.length;
    return best;
  }
}
