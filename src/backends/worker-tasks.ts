/**
 * The built-in tasks as the worker backend's thread runs them, with Node's
 * own APIs. Work on bytes (hash, zlib) goes through a ByteSink one chunk at
 * a time, calling `checkpoint()` between chunks; timers and children are
 * stopped through the Abortable a task returns.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

import { TaskStatus } from '../native.js';
import { HASH_ALGORITHMS, TaskKind, type WriteFileRequest } from '../tasks.js';
import { runExec } from './worker-exec.js';
import { INPUT_CHUNK, MAX_FILE_BYTES, fileTooLarge, type ExecAtExit, type StreamedInput } from './worker-protocol.js';
import { zlibSink } from './worker-zlib.js';

/** Reports how a task ended; only its first call counts. */
export type Finish = (status: TaskStatus, payload?: unknown) => void;

/** Work still going on after its task function returned (a timer, a child, an input still arriving). */
export interface Abortable {
  abort(): void;
}

export interface TaskContext {
  finish: Finish;
  /** Throws Interrupted when the task was cancelled or its timeout passed: called between chunks of synchronous work. */
  checkpoint(): void;
  /** For a StreamedInput: `onChunk` gets each chunk as it arrives, in order, until the task ends. */
  receive(onChunk: (chunk: Uint8Array) => void): void;
  /** For a StreamedInput: a chunk was taken from those that arrived, so the main thread may send one more. */
  tookChunk(): void;
  /** Runs `step` on a later turn of this thread's loop, unless the task has ended by then; what it throws ends the task. */
  later(step: () => void): void;
}

/** Thrown by checkpoint(): the synchronous work stops where it is. */
export class Interrupted {
  constructor(readonly status: TaskStatus) {}
}

/** Synchronous work over bytes fed in order; the last write (or the resume() after it) returns the result. */
export interface ByteSink {
  write(chunk: Uint8Array, last: boolean): Buffer | undefined;
  /**
   * Work on the chunk written last is left for resume(): a sink may stop
   * after about a chunk's worth (a gzip bomb turns a small chunk into
   * gigabytes), so that the thread's other tasks get their turn.
   */
  readonly busy: boolean;
  resume(): Buffer | undefined;
  /** Frees what the work holds when it is abandoned half way. */
  close(): void;
}

/** Starts one task. Synchronous tasks finish (or throw) before it returns. */
export function runTask(kind: number, number: number, object: unknown, context: TaskContext): Abortable | undefined {
  const { finish } = context;
  switch (kind) {
    case TaskKind.sleep: {
      if (number === 0) {
        // Node's setTimeout makes 0 ms into 1 ms; sleep(0) is the next turn of this loop.
        const immediate = setImmediate(() => finish(TaskStatus.ok));
        return { abort: () => clearImmediate(immediate) };
      }
      const timer = setTimeout(() => finish(TaskStatus.ok), number);
      return { abort: () => clearTimeout(timer) };
    }
    case TaskKind.hash:
      return consume(object as Uint8Array | StreamedInput, hashSink(HASH_ALGORITHMS[number]!), context);
    case TaskKind.gzip:
    case TaskKind.deflate:
    case TaskKind.gunzip:
    case TaskKind.inflate:
      return consume(object as Uint8Array | StreamedInput, zlibSink(kind, number, context.checkpoint), context);
    case TaskKind.readFile:
      return inPieces(object as string, fs.constants.O_RDONLY, context, fileReader);
    case TaskKind.writeFile: {
      const { path, data } = object as WriteFileRequest;
      const { O_WRONLY, O_CREAT, O_TRUNC } = fs.constants;
      return inPieces(path, O_WRONLY | O_CREAT | O_TRUNC, context, (fd) => fileWriter(fd, data));
    }
    case TaskKind.exec:
      return runExec(object as ExecAtExit, finish);
    default:
      throw new Error(`unknown task kind ${kind}`);
  }
}

/** A file task's work, done a piece at a time by inPieces(). */
interface FileWork {
  /** Reads or writes at most INPUT_CHUNK bytes; returns how much of a turn's INPUT_CHUNK that used, or MUST_WAIT. */
  piece(): number;
  readonly done: boolean;
  /** The task's result, once done. */
  result(): Buffer | undefined;
}

/**
 * Works on the file at `path` (opened as openFile() opens it) a piece at a
 * time, as consume() works on bytes: about INPUT_CHUNK bytes per turn of
 * this thread's loop, so that the loop's other tasks (timers, timeouts,
 * children) are not held up behind a large file. It ran in one go: a
 * sleep(5) came back after 1.4 s behind a 1 GiB read. The file is closed
 * however the work ends.
 */
function inPieces(path: string, flags: number, context: TaskContext, start: (fd: number) => FileWork): Abortable {
  let fd: number | undefined;
  const closeQuietly = (): void => {
    if (fd === undefined) return;
    const open = fd;
    fd = undefined;
    try {
      fs.closeSync(open);
    } catch {
      // the work's own error, or its abort, is what the task reports
    }
  };
  let work: FileWork | undefined;
  const waiting = new Backoff();
  let giveUpAt: number | undefined; // once a lease holder is waited for (openFile)
  const leaseWaitOver = (): boolean => {
    giveUpAt ??= performance.now() + leaseBreakMs();
    return performance.now() >= giveUpAt;
  };
  const step = (): void => {
    try {
      if (fd === undefined) {
        context.checkpoint(); // a retry must not open (and truncate) for a task cancelled meanwhile
        fd = openFile(path, flags, leaseWaitOver);
        if (fd === undefined) return waiting.then(() => context.later(step));
      }
      work ??= start(fd);
      for (let moved = 0; !work.done && moved < INPUT_CHUNK; ) {
        context.checkpoint();
        const piece = work.piece();
        if (piece === MUST_WAIT) return waiting.then(() => context.later(step));
        waiting.reset(); // it moved on: a terminal that took some takes more soon
        moved += piece;
      }
    } catch (error) {
      closeQuietly();
      throw error;
    }
    if (!work.done) return context.later(step);
    const open = fd;
    fd = undefined;
    fs.closeSync(open); // a failed close can mean lost data (NFS, a quota): reported, as node:fs does
    context.finish(TaskStatus.ok, work.result());
  };
  step();
  return {
    abort: () => {
      waiting.cancel();
      closeQuietly();
    },
  };
}

/**
 * A wait for something outside the process (a lease holder, a full
 * terminal) on a timer, the thread free for the loop's other tasks
 * meanwhile: 1 ms, doubling up to 32 ms while it keeps waiting, so that a
 * long wait costs little CPU. (It slept a millisecond on the thread, once
 * per waiting task per turn: the loop's other tasks waited for all of them.)
 */
class Backoff {
  #ms = 1;
  #timer: NodeJS.Timeout | undefined;

  then(next: () => void): void {
    this.#timer = setTimeout(next, this.#ms);
    this.#ms = Math.min(this.#ms * 2, 32);
  }

  reset(): void {
    this.#ms = 1;
  }

  cancel(): void {
    clearTimeout(this.#timer);
  }
}

/** FileWork.piece()'s answer when it must wait (a full terminal) before it can go on. */
const MUST_WAIT = -1;

/**
 * Opens `path` with `flags` as the native backend's OpenFile does: FIFOs
 * (pipes included) and sockets, whose reads and writes could block this
 * thread (and so every task of the loop, and process exit), are refused
 * without being opened (opening a FIFO would release a writer waiting for a
 * reader, which our close would kill with SIGPIPE); the rest is opened with
 * O_NONBLOCK, in case it became a FIFO meanwhile, and checked again.
 *
 * Returns undefined for a file another process holds a lease on (fcntl
 * F_SETLEASE, as Samba and NFS servers take), while `mayWait`: a blocking
 * open() waits until the holder lets go (or the kernel breaks the lease,
 * lease-break-time later), as node:fs does; a non-blocking one fails with
 * EAGAIN, but still tells the holder to let go, and the caller tries again
 * later, until `waitOver()` (asked at each EAGAIN) says lease-break-time has
 * passed (leaseBreakMs): such an EAGAIN was no lease (a FUSE or network file
 * system's own answer) and is thrown, as node:fs's open throws it at once.
 */
function openFile(path: string, flags: number, waitOver: () => boolean): number | undefined {
  if (mayBlock(statIfAny(path))) throw unsupportedFile(path);
  let fd: number;
  try {
    fd = fs.openSync(path, flags | fs.constants.O_NONBLOCK, 0o666);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EAGAIN' && !waitOver()) return undefined;
    throw error;
  }
  try {
    if (mayBlock(fs.fstatSync(fd))) throw unsupportedFile(path);
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  return fd;
}

/**
 * The path's stats, or undefined when stat fails: open() then reports why,
 * as node:fs does (syscall 'open', not 'stat').
 */
function statIfAny(path: string): fs.Stats | undefined {
  try {
    return fs.statSync(path);
  } catch {
    return undefined;
  }
}

/** Bytes read at a time from a file whose size is not known ahead (a device, /proc). */
const READ_CHUNK = 512 * 1024;

/**
 * The whole of an open file, as fs.readFileSync(fd) reads it, but bounded
 * as the native backend's readFile is: that one reads a file that never
 * ends (/dev/zero) until memory runs out.
 */
function fileReader(fd: number): FileWork {
  const { size } = fs.fstatSync(fd); // 0 where the kernel does not know (devices, /proc)
  if (size > MAX_FILE_BYTES) throw fileTooLarge(size);
  const parts: Buffer[] = [];
  let total = 0;
  let part: Buffer | undefined;
  let filled = 0;
  let done = false;
  return {
    get done() {
      return done;
    },
    piece() {
      // A known size is read into a buffer of that size (handed over whole,
      // not copied), then one byte more must find the end.
      if (part === undefined) {
        part = Buffer.allocUnsafeSlow(total < size ? size - total : total === size && size > 0 ? 1 : READ_CHUNK);
        filled = 0;
      }
      const read = fs.readSync(fd, part, filled, Math.min(part.byteLength - filled, INPUT_CHUNK), null);
      filled += read;
      if (read !== 0 && filled < part.byteLength) return read; // this part goes on
      if (filled === 0) done = true; // a part with nothing in it: the end
      else {
        total += filled;
        if (total > MAX_FILE_BYTES) throw fileTooLarge(undefined); // grew while read, or never ends
        parts.push(filled === part.byteLength ? part : part.subarray(0, filled));
      }
      part = undefined;
      return read;
    },
    result: () => (parts.length === 1 ? parts[0]! : Buffer.concat(parts, total)),
  };
}

/** All of `data`, written to an open file. */
function fileWriter(fd: number, data: Uint8Array): FileWork {
  let written = 0;
  return {
    get done() {
      return written === data.byteLength;
    },
    piece() {
      try {
        const wrote = fs.writeSync(fd, data, written, Math.min(data.byteLength - written, INPUT_CHUNK));
        written += wrote;
        return wrote;
      } catch (error) {
        // A terminal (opened non-blocking, see openFile) whose buffer is
        // full: node:fs's blocking write would wait for room.
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        return MUST_WAIT;
      }
    },
    result: () => undefined,
  };
}

/**
 * How long a task waits for lease holders, from its first open that met
 * one: lease-break-time, after which the kernel has broken any lease, and a
 * second to spare.
 */
function leaseBreakMs(): number {
  try {
    const seconds = Number(fs.readFileSync('/proc/sys/fs/lease-break-time', 'utf8'));
    if (seconds >= 0) return (seconds + 1) * 1000;
  } catch {
    // not Linux, or no /proc
  }
  return 46_000; // the kernel's default, and a second
}

function mayBlock(stats: fs.Stats | undefined): boolean {
  return stats !== undefined && (stats.isFIFO() || stats.isSocket());
}

function unsupportedFile(path: string): Error {
  const message = `'${path}' is a FIFO, a pipe or a socket, whose reads and writes could block the loop's thread`;
  return Object.assign(new Error(message), { code: 'ERR_SIDELOOP_UNSUPPORTED_FILE', path });
}

function hashSink(algorithm: string): ByteSink {
  const hash = crypto.createHash(algorithm);
  return {
    write(chunk, last) {
      hash.update(chunk);
      return last ? hash.digest() : undefined;
    },
    busy: false,
    resume: () => undefined,
    close: () => {},
  };
}

/**
 * Feeds `input` to `sink` chunk by chunk, one chunk's worth of work per turn
 * of this thread's loop, so that the loop's other tasks (timers, timeouts,
 * children) are not held up behind a large one. The chunks are all here (a
 * SharedArrayBuffer, or an input small enough to come whole) or arrive one
 * by one; one that arrives while the sink is busy waits its turn.
 */
function consume(input: Uint8Array | StreamedInput, sink: ByteSink, context: TaskContext): Abortable | undefined {
  const { finish, checkpoint } = context;
  const whole = input instanceof Uint8Array ? input : undefined;
  const arrived: Uint8Array[] = [];
  let taken = 0; // bytes of whole, or of the chunks that arrived, written to the sink
  const total = whole?.byteLength ?? (input as StreamedInput).streamedBytes;
  let stepQueued = false;
  // Never asked for after the last chunk: that one's write or resume() gives the result.
  const nextChunk = (): Uint8Array | undefined =>
    whole === undefined ? arrived.shift() : whole.subarray(taken, Math.min(taken + INPUT_CHUNK, total));
  const step = (): void => {
    stepQueued = false;
    try {
      checkpoint();
      let result: Buffer | undefined;
      if (sink.busy) result = sink.resume();
      else {
        const chunk = nextChunk();
        if (chunk === undefined) return; // the next one has not arrived yet
        if (whole === undefined) context.tookChunk();
        taken += chunk.byteLength;
        result = sink.write(chunk, taken === total);
      }
      if (result !== undefined) finish(TaskStatus.ok, result);
      else if (sink.busy || whole !== undefined || arrived.length > 0) {
        stepQueued = true;
        context.later(step);
      }
    } catch (error) {
      sink.close();
      throw error;
    }
  };
  if (whole === undefined) {
    context.receive((chunk) => {
      // Always on a later turn: Node hands a port's queued messages over in
      // one go, and work done here would run a whole backlog of chunks in
      // one turn, holding up the thread's timers.
      arrived.push(chunk);
      if (stepQueued) return;
      stepQueued = true;
      context.later(step);
    });
  } else step();
  return { abort: () => sink.close() };
}
