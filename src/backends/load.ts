/**
 * Loading the addon, once per thread, and never throwing: a failure is
 * remembered and reported by whoever asks for the native backend.
 */
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';

import type { NativeBinding } from '../native.js';

export type LoadResult = { binding: NativeBinding; error?: undefined } | { binding?: undefined; error: Error };

const ABI_VERSION = 1;
let cached: LoadResult | undefined;

/** The runtime when it is not Node (Bun and Deno load Node-API addons but lack Node's libuv). */
export function foreignRuntime(): string | undefined {
  if (typeof process === 'object' && process.versions?.bun) return 'Bun';
  if (typeof (globalThis as { Deno?: unknown }).Deno === 'object') return 'Deno';
  return undefined;
}

export function loadNativeBinding(): LoadResult {
  if (cached !== undefined) return cached;
  const result = load();
  // A failure for want of a resource the process may get back (file
  // descriptors, memory) is tried again next time; any other is for good.
  if (result.binding !== undefined || !(lackedResource(result.error) || outOfDescriptors())) cached = result;
  return result;
}

const RESOURCE_CODES = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN']);
// dlopen's failures come as ERR_DLOPEN_FAILED with the system's message only.
const RESOURCE_MESSAGES = /too many open files|cannot allocate memory|resource temporarily unavailable/i;

/**
 * Whether the process is out of file descriptors right now. node-gyp-build
 * loaded earlier (by another addon) swallows the EMFILE of its directory
 * scan and reports that no build was found.
 */
function outOfDescriptors(): boolean {
  try {
    closeSync(openSync(__dirname, 'r'));
    return false;
  } catch (error) {
    return lackedResource(error);
  }
}

function lackedResource(cause: unknown): boolean {
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
  return RESOURCE_CODES.has(code as string) || (typeof message === 'string' && RESOURCE_MESSAGES.test(message));
}

function load(): LoadResult {
  const runtime = foreignRuntime();
  if (runtime !== undefined) {
    // The addon would load, then crash the process at its first libuv call.
    return { error: new Error(`sideloop's native backend needs Node.js's libuv, which ${runtime} does not provide`) };
  }
  const disabled = process.env.SIDELOOP_NO_NATIVE;
  if (disabled && disabled !== '0') {
    return { error: new Error('sideloop\'s native backend is disabled by the SIDELOOP_NO_NATIVE environment variable') };
  }
  try {
    // node-gyp-build finds build/Release (a local compile) or prebuilds/ (the shipped binary).
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    const binding = nodeGypBuild(path.join(__dirname, '..', '..')) as NativeBinding;
    if (binding.abiVersion !== ABI_VERSION) {
      throw new Error(`the addon speaks protocol ${binding.abiVersion}, this code expects ${ABI_VERSION}`);
    }
    return { binding };
  } catch (error) {
    // The load error itself: it becomes the cause of the error that
    // backend: 'native' throws, as the contract says (it was one level down).
    return { error: error instanceof Error ? error : new Error(`sideloop's native addon could not be loaded: ${String(error)}`) };
  }
}
