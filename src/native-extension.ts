/**
 * Where native extensions (include/sideloop.h) meet an EventLoop. The keys
 * are registered symbols, so every copy of sideloop in a process uses the
 * same ones, and they are part of the native ABI: the header looks up
 * NATIVE_API by name, and the addon's sideloop_api.submit calls SUBMIT_NATIVE.
 */

/** The loop's addon table, read by sideloop_get_api() (SIDELOOP_API_SYMBOL). */
export const NATIVE_API: unique symbol = Symbol.for('sideloop.nativeApi');

/** Called by sideloop_api.submit with (request handle, options); returns the task's Future. */
export const SUBMIT_NATIVE: unique symbol = Symbol.for('sideloop.submitNative');
