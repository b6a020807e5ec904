/**
 * The built-in tasks: argument checks and the normalised request each
 * backend runs. Checking here, once, makes both backends throw the same
 * errors for the same mistakes.
 */
import { validateAbortSignal, validateDelay, validateObject } from './validate.js';

/** Task kinds; the numbers are shared with native/core/task_kinds.h. */
export const TaskKind = {
  sleep: 0,
} as const;
export type TaskKind = (typeof TaskKind)[keyof typeof TaskKind];

export interface SubmitOptions {
  /** Aborting cancels the task, like `future.cancel()`. */
  signal?: AbortSignal;
  /** ms, counted from when the task starts running on the loop; then the work is aborted with `TimeoutError`. */
  timeout?: number;
}

/** One task, ready for a backend. */
export interface TaskRequest {
  kind: TaskKind;
  /** The task's numeric argument (sleep's ms). */
  number: number;
  /** The task's other arguments, when it has any. */
  object: unknown;
  /** True when the task produces the Future's value; false when it resolves with `value`. */
  producesValue: boolean;
  /** What the Future resolves with when the task itself produces nothing (sleep's value). */
  value: unknown;
  /** ms from start before the work is aborted; -1 for none. */
  timeout: number;
  /** A short description for error messages ("sleep(100)"). */
  label: string;
}

export interface NormalizedOptions {
  signal: AbortSignal | undefined;
  timeout: number;
}

export function normalizeSubmitOptions(options: unknown): NormalizedOptions {
  validateObject(options, 'options');
  if (options === undefined) return { signal: undefined, timeout: -1 };
  const { signal, timeout } = options as SubmitOptions;
  validateAbortSignal(signal, 'options.signal');
  if (timeout !== undefined) validateDelay(timeout, 'options.timeout');
  return { signal, timeout: timeout ?? -1 };
}

export function sleepRequest(ms: unknown, value: unknown, options: NormalizedOptions): TaskRequest {
  validateDelay(ms, 'ms');
  return {
    kind: TaskKind.sleep,
    number: ms,
    object: undefined,
    producesValue: false,
    value,
    timeout: options.timeout,
    label: `sleep(${ms})`,
  };
}
