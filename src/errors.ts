import { inspect } from 'node:util';

/** The errors of the sideloop contract. Each has a stable `name` and `code`. */

abstract class SideloopError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    setOwnField(this, 'name', new.target.name);
  }
}

/** The Future was cancelled (by `cancel()`, a signal, or `shutdown({ cancelPending: true })`). */
export class CancelledError extends SideloopError {
  readonly code = 'ERR_SIDELOOP_CANCELLED';
}

/** A task's `timeout`, or a `result`/`exception` wait, ran out. */
export class TimeoutError extends SideloopError {
  readonly code = 'ERR_SIDELOOP_TIMEOUT';
}

/** An operation the current state forbids. */
export class InvalidStateError extends SideloopError {
  readonly code = 'ERR_SIDELOOP_INVALID_STATE';
}

/** Submitted while the loop was stopping. */
export class EventLoopClosedError extends SideloopError {
  readonly code = 'ERR_SIDELOOP_CLOSED';
}

/** `maxPending` tasks were already pending. */
export class QueueFullError extends SideloopError {
  readonly code = 'ERR_SIDELOOP_QUEUE_FULL';
}

/** A programmer error, shaped like Node's own (`code` such as `ERR_INVALID_ARG_TYPE`). */
export function invalidArgType(name: string, expected: string, actual: unknown): TypeError {
  const kind = name.includes('.') ? 'property' : 'argument'; // as Node says it: 'The "options.signal" property'
  return withCode(new TypeError(`The "${name}" ${kind} must be ${expected}. Received ${describe(actual)}`), 'ERR_INVALID_ARG_TYPE');
}

/**
 * A method called on anything but an instance of its class: one passed on
 * without its object (`process.once('SIGTERM', loop.shutdown)`), a Proxy, an
 * object made from one. Node's own classes throw the same.
 */
export function invalidThis(type: string): TypeError {
  return withCode(new TypeError(`Value of "this" must be of type ${type}`), 'ERR_INVALID_THIS');
}

/** As Node's `new AbortSignal()`: a class users may hold but not make. */
export function illegalConstructor(): TypeError {
  return withCode(new TypeError('Illegal constructor'), 'ERR_ILLEGAL_CONSTRUCTOR');
}

/** Node's ERR_OUT_OF_RANGE, the value shown as Node shows it (`Received -1`, `Received 4_294_967_297`). */
export function outOfRange(name: string, expected: string, actual: unknown): RangeError {
  let received: string;
  if (typeof actual === 'bigint') received = `${actual > 2n ** 32n || actual < -(2n ** 32n) ? withSeparators(String(actual)) : actual}n`;
  else if (Number.isInteger(actual) && Math.abs(actual as number) > 2 ** 32) received = withSeparators(String(actual));
  else received = inspect(actual);
  return withCode(new RangeError(`The value of "${name}" is out of range. It must be ${expected}. Received ${received}`), 'ERR_OUT_OF_RANGE');
}

/** Node's ERR_INVALID_ARG_VALUE: a property ('options.name') or an argument, the value inspected. */
export function invalidArgValue(name: string, reason: string, actual: unknown): TypeError {
  let received = inspect(actual);
  if (received.length > 128) received = `${received.slice(0, 128)}...`;
  const kind = name.includes('.') ? 'property' : 'argument';
  return withCode(new TypeError(`The ${kind} '${name}' ${reason}. Received ${received}`), 'ERR_INVALID_ARG_VALUE');
}

/** Underscores between thousands, as Node's range errors write integers beyond 2 ** 32 (addNumericalSeparator). */
function withSeparators(text: string): string {
  let grouped = '';
  let end = text.length;
  const start = text[0] === '-' ? 1 : 0;
  for (; end >= start + 4; end -= 3) grouped = `_${text.slice(end - 3, end)}${grouped}`;
  return `${text.slice(0, end)}${grouped}`;
}

/** A native extension's task (include/sideloop.h) submitted to a loop that runs no native code. */
export function nativeOnly(backend: string): TypeError {
  return withCode(
    new TypeError(`Native extension tasks need a loop with backend 'native'; this loop's backend is '${backend}', which runs no native code`),
    'ERR_SIDELOOP_NATIVE_ONLY',
  );
}

/**
 * The worker backend started where SharedArrayBuffer is switched off
 * (--no-harmony-sharedarraybuffer): its slot flags, its blocking result()
 * and its children's table live in shared memory. V8's ReferenceError said
 * nothing of why.
 */
export function noSharedMemory(): Error {
  return withCode(
    new Error("The worker backend needs SharedArrayBuffer, which this process runs without (--no-harmony-sharedarraybuffer); the native backend does not"),
    'ERR_SIDELOOP_NO_SHARED_MEMORY',
  );
}

function withCode<E extends Error>(error: E, code: string): E {
  setOwnField(error, 'code', code);
  return error;
}

/**
 * Gives an error an own field, as an assignment would, but defined: a setter
 * someone put on Error.prototype must not run, and maybe wait on the loop,
 * while a batch of Futures is being settled.
 */
export function setOwnField(error: Error, key: string, value: unknown): void {
  Object.defineProperty(error, key, { value, writable: true, enumerable: true, configurable: true });
}

/** What a value is, worded as Node's ERR_INVALID_ARG_TYPE words it (determineSpecificType). */
function describe(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'bigint':
      return `type bigint (${value}n)`;
    case 'number':
      return `type number (${Object.is(value, -0) ? '-0' : value})`;
    case 'boolean':
    case 'symbol':
      return `type ${typeof value} (${String(value)})`;
    case 'function':
      return `function ${value.name}`;
    case 'string': {
      const shown = value.length > 28 ? `${value.slice(0, 25)}...` : value;
      return `type string (${shown.includes("'") ? JSON.stringify(shown) : `'${shown}'`})`;
    }
    default: {
      if (value === null) return 'null';
      const constructor: unknown = (value as object).constructor;
      // Node's own check throws for a primitive `constructor` ({ constructor: 5 }): not here.
      if ((typeof constructor === 'function' || (typeof constructor === 'object' && constructor !== null)) && 'name' in constructor) {
        return `an instance of ${String(constructor.name)}`;
      }
      return inspect(value, { depth: -1 });
    }
  }
}
