/**
 * Loading the addon, once per thread, and never throwing: a failure is
 * remembered and reported by whoever asks for the native backend.
 */
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
  cached ??= load();
  return cached;
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
  } catch (cause) {
    return { error: new Error(`sideloop's native addon could not be loaded: ${(cause as Error)?.message ?? cause}`, { cause }) };
  }
}
