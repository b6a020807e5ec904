/** The types of the addon's exports (native/binding/native_loop.h describes the protocol). */

export interface NativeLoopHandle {
  /**
   * batch holds [slot, kind, timeout, number] per task; objects[i] the i-th task's other arguments.
   * A slot names one task in flight at a time. A slot outside [0, 2^26) or a kind outside
   * [0, 256) throws a RangeError and submits nothing of the batch; an unknown kind within that
   * range comes back as a task failed with ERR_SIDELOOP_BAD_TASK.
   * `busy`: also setBusy(true). Returns true when, with spin, completions are already waiting.
   */
  submit(batch: Float64Array, count: number, objects: unknown[], busy: boolean): boolean;
  /** Fills ids, statuses and payloads given at construction with at most `max` (all they hold when omitted); returns how many. */
  drain(max?: number): number;
  cancel(slot: number): void;
  /** 0 pending, 1 running, 2 done (not yet drained). */
  phase(slot: number): number;
  /** Blocks until the task is done (true) or ms pass (false); ms < 0: no limit. */
  wait(slot: number, ms: number): boolean;
  setBusy(busy: boolean): void;
  running(): number;
  stop(): void;
}

export interface NativeBinding {
  abiVersion: number;
  /** The native extension API's function table: an external tagged for include/sideloop.h's sideloop_get_api(). */
  nativeApi: unknown;
  NativeLoop: new (
    name: string,
    keepAlive: boolean,
    onWake: () => void,
    ids: Uint32Array,
    statuses: Uint8Array,
    payloads: unknown[],
    spinMicroseconds: number,
  ) => NativeLoopHandle;
}

/** Task statuses reported by drain(); native/core/task.h TaskStatus. The worker backend reports the same. */
export const TaskStatus = {
  ok: 0,
  error: 1,
  cancelled: 2,
  timedOut: 3,
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];
