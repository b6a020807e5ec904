/**
 * The built-in tasks as the worker backend's thread runs them, with Node's
 * own APIs. Synchronous work (hash, zlib, files) runs in chunks where it can
 * and calls `checkpoint()` between them; timers and children are stopped
 * through the Abortable a task returns.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

import { TaskStatus } from '../native.js';
import { HASH_ALGORITHMS, TaskKind, type ExecRequest, type WriteFileRequest } from '../tasks.js';
import { runExec } from './worker-exec.js';
import { runZlib } from './worker-zlib.js';

/** Reports how a task ended; only its first call counts. */
export type Finish = (status: TaskStatus, payload?: unknown) => void;

/** Work still going on after its task function returned (a timer, a child). */
export interface Abortable {
  abort(): void;
}

export interface TaskContext {
  finish: Finish;
  /** Throws Interrupted when the task was cancelled or its timeout passed: called between chunks of synchronous work. */
  checkpoint(): void;
}

/** Thrown by checkpoint(): the synchronous work stops where it is. */
export class Interrupted {
  constructor(readonly status: TaskStatus) {}
}

const HASH_CHUNK = 1024 * 1024;

/** Starts one task. Synchronous tasks finish (or throw) before it returns. */
export function runTask(kind: number, number: number, object: unknown, context: TaskContext): Abortable | undefined {
  const { finish, checkpoint } = context;
  switch (kind) {
    case TaskKind.sleep: {
      const timer = setTimeout(() => finish(TaskStatus.ok), number);
      return { abort: () => clearTimeout(timer) };
    }
    case TaskKind.hash: {
      const data = object as Uint8Array;
      const hash = crypto.createHash(HASH_ALGORITHMS[number]!);
      for (let start = 0; start < data.byteLength; start += HASH_CHUNK) {
        checkpoint();
        hash.update(data.subarray(start, start + HASH_CHUNK));
      }
      finish(TaskStatus.ok, hash.digest());
      return undefined;
    }
    case TaskKind.gzip:
    case TaskKind.deflate:
    case TaskKind.gunzip:
    case TaskKind.inflate:
      finish(TaskStatus.ok, runZlib(kind, number, object as Uint8Array, checkpoint));
      return undefined;
    case TaskKind.readFile:
      finish(TaskStatus.ok, fs.readFileSync(object as string));
      return undefined;
    case TaskKind.writeFile: {
      const { path, data } = object as WriteFileRequest;
      fs.writeFileSync(path, data);
      finish(TaskStatus.ok);
      return undefined;
    }
    case TaskKind.exec:
      return runExec(object as ExecRequest, finish);
    default:
      throw new Error(`unknown task kind ${kind}`);
  }
}
