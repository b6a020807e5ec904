/**
 * The built-in tasks: argument checks and the normalised request each
 * backend runs. Checking here, once, makes both backends throw the same
 * errors for the same mistakes.
 */
import { kMaxLength } from 'node:buffer';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';

import { invalidArgType, invalidArgValue, outOfRange } from './errors.js';
import { permissionModelOn } from './permission.js';
import { validateAbortSignal, validateDelay, validateNumber, validateObject, validateString } from './validate.js';

/** Task kinds; the numbers are shared with native/core/task_kinds.h. */
export const TaskKind = {
  sleep: 0,
  hash: 1,
  gzip: 2,
  gunzip: 3,
  deflate: 4,
  inflate: 5,
  readFile: 6,
  writeFile: 7,
  exec: 8,
  /** A native extension's task (include/sideloop.h); object = the binding's request handle. */
  extension: 9,
} as const;
export type TaskKind = (typeof TaskKind)[keyof typeof TaskKind];

/** Hash algorithms, by their index in the native protocol (request.number). */
export const HASH_ALGORITHMS = ['md5', 'sha1', 'sha256', 'sha384', 'sha512'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/** What task methods accept as bytes; strings are UTF-8. */
export type BinaryLike = string | ArrayBufferView | ArrayBufferLike;

export interface SubmitOptions {
  /** Aborting cancels the task, like `future.cancel()`. */
  signal?: AbortSignal;
  /** ms, counted from when the task starts running on the loop; then the work is aborted with `TimeoutError`. */
  timeout?: number;
}

export interface CompressOptions extends SubmitOptions {
  /** zlib compression level, -1 (zlib's default, 6) to 9. */
  level?: number;
}

export interface ExecOptions extends SubmitOptions {
  /** Working directory of the child (a path or a `file:` URL); default the process's. */
  cwd?: string | URL | null;
  /**
   * The child's whole environment; default `process.env`. As in execFile,
   * inherited keys count and numbers, booleans and bigints are turned into text.
   */
  env?: Record<string, string | number | boolean | bigint | undefined> | null;
  /** Written to the child's stdin, which is then closed. Without it stdin is empty. */
  input?: BinaryLike | null;
  /** Bytes allowed on stdout and on stderr each; beyond it the child is killed and the Future fails. Default 1 MiB. */
  maxBuffer?: number | null;
}

export interface ExecResult {
  /** The exit code, or null when a signal ended the child. */
  exitCode: number | null;
  /** The signal that ended the child ('SIGTERM', ...), or null. */
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** exec's arguments as backends receive them (request.object). */
export interface ExecRequest {
  file: string;
  args: string[];
  cwd: string | undefined;
  /** "KEY=value" entries. */
  env: string[];
  input: Uint8Array | undefined;
  /** Bytes per stream; Infinity for no limit. */
  maxBuffer: number;
}

/** writeFile's arguments as backends receive them (request.object). */
export interface WriteFileRequest {
  path: string;
  data: Uint8Array;
}

/**
 * One task, ready for a backend. Per kind:
 * - sleep: number = ms; resolves with `value`
 * - hash: number = index in HASH_ALGORITHMS; object = Uint8Array; resolves with a Buffer
 * - gzip, deflate: number = level (-1 default); object = Uint8Array; resolves with a Buffer
 * - gunzip, inflate: object = Uint8Array; resolves with a Buffer
 * - readFile: object = path (string); resolves with a Buffer
 * - writeFile: object = WriteFileRequest; resolves with undefined
 * - exec: object = ExecRequest; resolves with an ExecResult
 * - extension: object = an opaque handle made by the addon's sideloop_api.submit;
 *   resolves with what the extension's to_js gives
 * Byte inputs are views of the caller's memory (no copy), except strings.
 */
export interface TaskRequest {
  kind: TaskKind;
  number: number;
  object: unknown;
  /** True when the task produces the Future's value; false when it resolves with `value`. */
  producesValue: boolean;
  /** What the Future resolves with when the task itself produces nothing (sleep's value). */
  value: unknown;
  /** ms from start before the work is aborted; -1 for none. */
  timeout: number;
}

export interface NormalizedOptions {
  signal: AbortSignal | undefined;
  timeout: number;
}

const NO_OPTIONS: NormalizedOptions = Object.freeze({ signal: undefined, timeout: -1 });

export function normalizeSubmitOptions(options: unknown): NormalizedOptions {
  validateObject(options, 'options');
  if (options === undefined) return NO_OPTIONS;
  const { signal, timeout } = options as SubmitOptions;
  validateAbortSignal(signal, 'options.signal');
  if (timeout !== undefined) validateDelay(timeout, 'options.timeout');
  return { signal, timeout: timeout ?? -1 };
}

function request(kind: TaskKind, options: NormalizedOptions, number: number, object: unknown, value?: unknown): TaskRequest {
  return {
    kind,
    number,
    object,
    producesValue: kind !== TaskKind.sleep && kind !== TaskKind.writeFile,
    value,
    timeout: options.timeout,
  };
}

const KIND_NAMES = Object.fromEntries(Object.entries(TaskKind).map(([name, kind]) => [kind, name])) as Record<TaskKind, string>;

/**
 * A short description of a task for error messages ("sleep(100)",
 * "readFile('/etc/hosts')"). Made only when a message needs it: building it
 * for every task would cost more than the task.
 */
export function describeTask(request: TaskRequest): string {
  const name = KIND_NAMES[request.kind];
  switch (request.kind) {
    case TaskKind.sleep:
      return `sleep(${request.number})`;
    case TaskKind.hash:
      return `hash('${HASH_ALGORITHMS[request.number]}', ${(request.object as Uint8Array).byteLength} bytes)`;
    case TaskKind.readFile:
      return `readFile('${request.object as string}')`;
    case TaskKind.writeFile:
      return `writeFile('${(request.object as WriteFileRequest).path}')`;
    case TaskKind.exec:
      return `exec('${(request.object as ExecRequest).file}')`;
    case TaskKind.extension:
      return 'a native extension task';
    default:
      return `${name}(${(request.object as Uint8Array).byteLength} bytes)`;
  }
}

/**
 * The request of the last plain sleep (no value, no options): shared by
 * the next ones of the same length, since requests are never changed and a
 * new one per task was a third of what a sleep allocated.
 */
let plainSleep: TaskRequest = Object.freeze(request(TaskKind.sleep, NO_OPTIONS, 0, undefined, undefined));

export function sleepRequest(ms: unknown, value: unknown, options: NormalizedOptions): TaskRequest {
  validateDelay(ms, 'ms');
  if (value !== undefined || options !== NO_OPTIONS) return request(TaskKind.sleep, options, ms, undefined, value);
  if (plainSleep.number !== ms) plainSleep = Object.freeze(request(TaskKind.sleep, NO_OPTIONS, ms, undefined, undefined));
  return plainSleep;
}

export function hashRequest(algorithm: unknown, data: unknown, options: NormalizedOptions): TaskRequest {
  validateString(algorithm, 'algorithm');
  const index = HASH_ALGORITHMS.indexOf(algorithm.toLowerCase() as HashAlgorithm);
  if (index < 0) throw invalidArgValue('algorithm', `must be one of ${HASH_ALGORITHMS.join(', ')}`, algorithm);
  const bytes = toBytes(data, 'data');
  return request(TaskKind.hash, options, index, bytes);
}

export function compressRequest(
  kind: typeof TaskKind.gzip | typeof TaskKind.deflate,
  data: unknown,
  level: unknown,
  options: NormalizedOptions,
): TaskRequest {
  const bytes = toBytes(data, 'data');
  if (level !== undefined) {
    validateNumber(level, 'options.level');
    if (!(Number.isInteger(level) && level >= -1 && level <= 9)) throw outOfRange('options.level', '>= -1 && <= 9', level);
  }
  return request(kind, options, level ?? -1, bytes);
}

export function decompressRequest(
  kind: typeof TaskKind.gunzip | typeof TaskKind.inflate,
  data: unknown,
  options: NormalizedOptions,
): TaskRequest {
  const bytes = toBytes(data, 'data');
  return request(kind, options, 0, bytes);
}

export function readFileRequest(path: unknown, options: NormalizedOptions): TaskRequest {
  const file = toPath(path, 'path');
  return request(TaskKind.readFile, options, 0, file);
}

export function writeFileRequest(path: unknown, data: unknown, options: NormalizedOptions): TaskRequest {
  const file = toPath(path, 'path');
  const object: WriteFileRequest = { path: file, data: toBytes(data, 'data') };
  return request(TaskKind.writeFile, options, 0, object);
}

export function execRequest(file: unknown, args: unknown, options: ExecOptions | undefined, normalized: NormalizedOptions): TaskRequest {
  validateString(file, 'file');
  if (file === '' || file.includes('\0')) throw invalidArgValue('file', 'must be a non-empty string without null bytes', file);
  const given: unknown = args ?? [];
  if (!Array.isArray(given)) throw invalidArgType('args', 'an instance of Array', args);
  // Copied by index, once, and the copy checked and used: a hole in a sparse
  // array is checked too (as undefined), and getters or an own iterator
  // cannot hand the backend other values than those checked.
  const argv: string[] = [];
  for (let i = 0; i < given.length; i++) {
    const arg: unknown = given[i];
    validateString(arg, `args[${i}]`);
    if (arg.includes('\0')) throw invalidArgValue(`args[${i}]`, 'must not contain null bytes', arg);
    argv.push(arg);
  }
  // null means the default, as in execFile.
  const { cwd, input } = options ?? {};
  const env = options?.env ?? process.env;
  const maxBuffer = options?.maxBuffer ?? 1024 * 1024;
  const cwdPath = cwd == null ? undefined : toPath(cwd, 'options.cwd');
  validateObject(env, 'options.env');
  const envList: string[] = [];
  // As in execFile: inherited keys too (`{ __proto__: process.env, DEBUG: '1' }`
  // keeps PATH), and numbers, booleans and bigints as text (`{ PORT: 3000 }`).
  // Unlike it, other values throw: execFile would pass `null` or `[object Object]`.
  for (const key in env as object) {
    const value: unknown = (env as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'bigint') {
      throw invalidArgType(`options.env.${key}`, 'of type string, number, boolean or bigint', value);
    }
    const text = String(value);
    if (key.includes('\0') || key.includes('=') || text.includes('\0')) {
      throw invalidArgValue(`options.env.${key}`, 'must not contain null bytes (or "=" in its name)', value);
    }
    envList.push(`${key}=${text}`);
  }
  validateNumber(maxBuffer, 'options.maxBuffer');
  if (!(maxBuffer >= 0)) throw outOfRange('options.maxBuffer', 'a number >= 0', maxBuffer);
  const object: ExecRequest = {
    file,
    args: argv,
    cwd: cwdPath,
    env: envList,
    input: input == null ? undefined : toBytes(input, 'options.input'),
    maxBuffer,
  };
  return request(TaskKind.exec, normalized, 0, object);
}

/** A native extension's task; the handle is checked by the addon, which fails the task if it is unusable. */
export function extensionRequest(handle: unknown, options: NormalizedOptions): TaskRequest {
  return request(TaskKind.extension, options, 0, handle);
}

/**
 * A view of the caller's bytes: no copy, except that strings are encoded as
 * UTF-8 and a resizable ArrayBuffer's bytes are copied (inPlaceOrCopied). A
 * detached buffer (transferred away) holds no bytes, as node:crypto and
 * node:zlib see it; a view of it cannot even be made.
 */
export function toBytes(data: unknown, name: string): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) {
    const own = types.isDataView(data) ? DATA_VIEW : TYPED_ARRAY;
    let length: number;
    try {
      length = own.byteLength.call(data);
    } catch {
      return new Uint8Array(0); // a DataView whose buffer was detached, or resized to end before it
    }
    if (length === 0) return new Uint8Array(0);
    checkLength(length, name);
    return inPlaceOrCopied(new Uint8Array(own.buffer.call(data), own.byteOffset.call(data), length));
  }
  if (types.isAnyArrayBuffer(data)) {
    const length = (types.isSharedArrayBuffer(data) ? SHARED_BUFFER_LENGTH : BUFFER_LENGTH).call(data);
    if (length === 0) return new Uint8Array(0); // detached ones too
    checkLength(length, name);
    return inPlaceOrCopied(new Uint8Array(data));
  }
  throw invalidArgType(name, 'of type string or an instance of Buffer, TypedArray, DataView or ArrayBuffer', data);
}

/** Inputs are handed over as a Uint8Array, which holds at most kMaxLength bytes (4 GiB on Node 20). */
function checkLength(length: number, name: string): void {
  if (length > kMaxLength) throw outOfRange(`${name}.byteLength`, `<= ${kMaxLength}`, length);
}

/**
 * The engine's own accessors of views and buffers, which read what the
 * object is: a subclass's getters (a `byteLength` overridden, a `buffer`
 * that throws, a `resizable` that says false), or the prototypes' own
 * replaced, must not decide which memory the loop's thread reads. They
 * did: a hash covered other bytes than node:crypto's, an override that
 * threw gave an empty input, one out of range threw V8's RangeError,
 * without a code, and a resizable buffer that said it was not was read in
 * place, and crashed the process as it shrank. Taken as the module loads;
 * that of a feature switched off (`--no-harmony-rab-gsab`) is missing, and
 * no object needs it then. Shared buffers may exist without their global
 * (a shared WebAssembly memory's, with `--no-harmony-sharedarraybuffer`):
 * a view of one tells its length then.
 */
function ownGetter<T>(prototype: object | undefined, key: string): ((this: unknown) => T) | undefined {
  return prototype === undefined ? undefined : Object.getOwnPropertyDescriptor(prototype, key)?.get;
}
const viewGetters = (prototype: object) => ({
  buffer: ownGetter<ArrayBufferLike>(prototype, 'buffer')!,
  byteOffset: ownGetter<number>(prototype, 'byteOffset')!,
  byteLength: ownGetter<number>(prototype, 'byteLength')!,
});
const TYPED_ARRAY = viewGetters(Object.getPrototypeOf(Uint8Array.prototype));
const DATA_VIEW = viewGetters(DataView.prototype);
const BUFFER_LENGTH = ownGetter<number>(ArrayBuffer.prototype, 'byteLength')!;
const SHARED_BUFFER_LENGTH =
  ownGetter<number>(globalThis.SharedArrayBuffer?.prototype, 'byteLength') ??
  function (this: unknown): number {
    try {
      return new Uint8Array(this as SharedArrayBuffer).length;
    } catch {
      return Infinity; // no view holds it: too large
    }
  };
const RESIZABLE = ownGetter<boolean>(ArrayBuffer.prototype, 'resizable');

/**
 * Inputs are read in place, except those of a resizable ArrayBuffer: a
 * shrink gives its memory back at once, and the loop's thread, reading it,
 * crashed the process (SIGSEGV). A growable SharedArrayBuffer never
 * shrinks, and is read in place.
 */
function inPlaceOrCopied(bytes: Uint8Array): Uint8Array {
  const buffer = TYPED_ARRAY.buffer.call(bytes);
  return !types.isSharedArrayBuffer(buffer) && RESIZABLE?.call(buffer) === true ? new Uint8Array(bytes) : bytes;
}

function toPath(path: unknown, name: string): string {
  let file: string;
  const url = asUrl(path);
  if (url !== undefined) {
    if (url.protocol !== 'file:') throw invalidArgValue(name, 'must be a file: URL', url.href);
    file = fileURLToPath(url.href);
  } else {
    validateString(path, name);
    file = path;
  }
  if (file.includes('\0')) throw invalidArgValue(name, 'must be a string without null bytes', file);
  // Under Node's permission model the path checked must be the path used:
  // relative, it would be resolved again when the task runs, maybe after a
  // process.chdir().
  return permissionModelOn() ? resolve(file) : file;
}

/**
 * A URL as node:fs tells one: by its shape, not `instanceof URL`, so that
 * one from another realm or a polyfill is a URL too. Its fields are read
 * once: a getter cannot pass the check and then give another value.
 */
function asUrl(value: unknown): { href: string; protocol: string } | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { href, protocol, auth, path } = value as { href?: unknown; protocol?: unknown; auth?: unknown; path?: unknown };
  if (typeof href !== 'string' || typeof protocol !== 'string' || href === '' || protocol === '') return undefined;
  return auth === undefined && path === undefined ? { href, protocol } : undefined;
}
