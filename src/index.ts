// The typings use Node's (Buffer, node:util, Symbol.asyncDispose): said here,
// so that a project whose tsconfig lists no "types" (TypeScript 7's default)
// still loads them, from its @types/node.
/// <reference types="node" preserve="true" />
export { EventLoop } from './event-loop.js';
export type { EventLoopOptions, LoopState, LoopStats, ShutdownOptions } from './event-loop.js';
export { EventLoopGroup } from './group.js';
export type { EventLoopGroupOptions } from './group.js';
export { Future } from './future.js';
export type { FutureState } from './future.js';
export { wait, asCompleted } from './wait.js';
export type { WaitOptions, WaitResult, AsCompletedOptions, ReturnWhen } from './wait.js';
export { getDefaultLoop } from './default-loop.js';
export { CancelledError, TimeoutError, InvalidStateError, EventLoopClosedError, QueueFullError } from './errors.js';
export type { SubmitOptions, CompressOptions, ExecOptions, ExecResult, HashAlgorithm, BinaryLike } from './tasks.js';
