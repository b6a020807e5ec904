/**
 * exec on the worker backend's thread, shaped like child_process.execFile:
 * maxBuffer per stream, SIGTERM on cancel or timeout (then SIGKILL, see
 * terminate), spawn errors as the native backend reports them (see spawnError).
 */
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Readable } from 'node:stream';

import { TaskStatus } from '../native.js';
import { Control, MAX_CHILD_SLOTS, MAX_RESULT_BYTES, resultTooLarge, serializeError, type ExecAtExit } from './worker-protocol.js';
import type { Abortable, Finish } from './worker-tasks.js';

/** Children that have not exited yet, including killed ones whose task is over: they must still be reaped before the run stops. */
const living = new Set<ChildProcess>();
/** Their pids, shared with the main thread (see newPidTable); set by the worker's entry. */
let pidTable: Int32Array | undefined;
/** The run's control array, whose `exiting` the main thread sets at process exit. */
let control: Int32Array | undefined;

export function sharePidsIn(table: Int32Array, runControl: Int32Array): void {
  pidTable = table;
  control = runControl;
}

/**
 * The process is exiting: its 'exit' hook has killed the recorded children,
 * and no child of a task submitted before it may outlive it (ExecAtExit).
 */
function exiting(request: ExecAtExit): boolean {
  return !request.submittedAtExit && control !== undefined && Atomics.load(control, Control.exiting) !== 0;
}

/** Records a living child's pid where the main thread sees it; returns what forgets it. */
function share(pid: number): () => void {
  if (pidTable === undefined) return () => {};
  const table = pidTable;
  let slot = table.indexOf(0);
  if (slot < 0 && table.length < MAX_CHILD_SLOTS) {
    slot = table.length;
    const buffer = table.buffer as SharedArrayBuffer & { grow(byteLength: number): void };
    buffer.grow(Math.min(table.length * 2, MAX_CHILD_SLOTS) * Int32Array.BYTES_PER_ELEMENT);
  }
  if (slot < 0) return () => {}; // full: not seen at a process exit
  Atomics.store(table, slot, pid);
  return () => Atomics.store(table, slot, 0);
}

export function runExec(request: ExecAtExit, finish: Finish): Abortable {
  const env: Record<string, string> = Object.create(null); // a variable may be named __proto__
  for (const entry of request.env) {
    const at = entry.indexOf('=');
    env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  if (exiting(request)) {
    finish(TaskStatus.cancelled);
    return { abort: () => {} };
  }
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawn(request.file, request.args, { cwd: request.cwd, env, stdio: 'pipe' });
  } catch (error) {
    // Some failures throw here (a cwd that is not a directory), the rest come as 'error'.
    finish(TaskStatus.error, serializeError(spawnError(error, request.file)));
    return { abort: () => {} };
  }
  // First: a spawn that failed reports it on the next tick, and an 'error'
  // without a listener would end this whole thread. Kept for the child's
  // life: a signal it may not be sent (EPERM: it became root, as sudo does)
  // comes as an 'error' too, maybe at each kill. The task's end does not
  // wait on that signal, so such an error changes nothing.
  child.on('error', (error) => {
    if ((error as NodeJS.ErrnoException).syscall === 'kill') return;
    finish(TaskStatus.error, serializeError(spawnError(error, request.file)));
  });
  if (child.pid === undefined && (!child.stdout || !child.stderr || !child.stdin)) {
    // No pipes either (EMFILE, ENFILE): nothing more to set up; the error follows.
    return { abort: () => {} };
  }
  if (child.pid !== undefined) {
    living.add(child);
    const forget = share(child.pid);
    child.once('exit', () => {
      living.delete(child);
      forget();
    });
    if (exiting(request)) child.kill('SIGKILL'); // the hook ran before the pid was recorded
  }
  const fail = (error: Error) => {
    terminate(child);
    finish(TaskStatus.error, serializeError(error));
  };
  const stdout = collect(child.stdout, 'stdout', request.maxBuffer, fail);
  const stderr = collect(child.stderr, 'stderr', request.maxBuffer, fail);
  child.stdin.on('error', () => {}); // EPIPE when the child exits without reading its input
  child.stdin.end(request.input);
  child.once('close', (exitCode, signal) => {
    finish(TaskStatus.ok, { exitCode, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) });
  });
  return { abort: () => terminate(child) };
}

/** How long a child has between SIGTERM and SIGKILL: kKillGraceMs in native/core/child_reaper.h. */
const KILL_GRACE_MS = 2000;

/**
 * Ends a child whose task is over: SIGTERM, as child_process does, so it
 * may clean up, and SIGKILL if it is still alive KILL_GRACE_MS later, so
 * one that ignores SIGTERM does not run on for as long as the loop does.
 */
function terminate(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const kill = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
  child.once('exit', () => clearTimeout(kill));
}

/**
 * A failed spawn's error in the one shape both backends give (the native
 * one's, from uv_spawn): child_process names the file in some (ENOENT)
 * and not in others (ENOTDIR), and adds `spawnargs`.
 */
function spawnError(error: unknown, file: string): unknown {
  const { errno, code, syscall } = error as NodeJS.ErrnoException;
  if (typeof code !== 'string' || typeof syscall !== 'string' || !syscall.startsWith('spawn')) return error; // not the spawn's own
  return Object.assign(new Error(`spawn ${file} ${code}`), { errno, code, syscall: `spawn ${file}`, path: file });
}

/**
 * Kills every child still alive (stop: no waiting for graceful exits) and
 * resolves once all those it could signal are reaped. One it may not signal
 * (EPERM) is left running: waiting for it could take for ever.
 */
export function killAllChildren(): Promise<void> {
  const exits: Promise<unknown>[] = [];
  for (const child of [...living]) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (child.kill('SIGKILL')) exits.push(exited);
  }
  return Promise.all(exits).then(() => undefined);
}

function collect(stream: Readable, name: string, maxBuffer: number, fail: (error: Error) => void): Buffer[] {
  const chunks: Buffer[] = [];
  let length = 0;
  stream.on('data', (chunk: Buffer) => {
    length += chunk.length;
    if (length <= maxBuffer && length <= MAX_RESULT_BYTES) {
      chunks.push(chunk);
    } else {
      stream.destroy();
      fail(
        length > maxBuffer
          ? Object.assign(new RangeError(`${name} maxBuffer length exceeded`), { code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER' })
          : resultTooLarge(), // maxBuffer: Infinity
      );
    }
  });
  return chunks;
}
