/** Argument checks shared by every public entry point: programmer errors throw synchronously. */
import { invalidArgType, outOfRange } from './errors.js';

/** The largest delay libuv and Node timers accept (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function validateNumber(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
}

/** A delay or time limit in ms: a number from 0 to MAX_TIMER_MS. */
export function validateDelay(value: unknown, name: string): asserts value is number {
  validateNumber(value, name);
  if (!(value >= 0 && value <= MAX_TIMER_MS)) throw outOfRange(name, `>= 0 && <= ${MAX_TIMER_MS}`, value);
}

/** The `timeout` of `result()` and friends: undefined (no limit), or ms >= 0 (Infinity allowed). */
export function validateWaitTimeout(value: unknown, name = 'timeout'): asserts value is number | undefined {
  if (value === undefined) return;
  validateNumber(value, name);
  if (!(value >= 0)) throw outOfRange(name, '>= 0', value);
}

export function validateObject(value: unknown, name: string): asserts value is Record<string, unknown> | undefined {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidArgType(name, 'of type object', value);
}

export function validateBoolean(value: unknown, name: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
}

export function validateString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
}

export function validateAbortSignal(value: unknown, name: string): asserts value is AbortSignal | undefined {
  if (value === undefined) return;
  if (
    value === null ||
    typeof value !== 'object' ||
    !('aborted' in value) ||
    typeof (value as AbortSignal).addEventListener !== 'function' ||
    // Called when the Future is done: a look-alike without it threw then,
    // as an uncaught exception.
    typeof (value as AbortSignal).removeEventListener !== 'function'
  ) {
    throw invalidArgType(name, 'an instance of AbortSignal', value);
  }
}
