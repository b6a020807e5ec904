/** Which backend a loop gets: `'auto'` is native when the addon loads, worker otherwise. */
import { invalidArgValue } from '../errors.js';
import type { Backend } from './backend.js';
import { loadNativeBinding } from './load.js';
import { NativeBackend } from './native.js';
import { WorkerBackend } from './worker.js';

export type BackendOption = 'auto' | 'native' | 'worker';

let nativeBackend: NativeBackend | undefined;
const workerBackend = new WorkerBackend();

export function selectBackend(option: unknown): Backend {
  if (option !== undefined && option !== 'auto' && option !== 'native' && option !== 'worker') {
    throw invalidArgValue('options.backend', "must be one of 'auto', 'native', 'worker'", option);
  }
  if (option === 'worker') return workerBackend;
  const loaded = loadNativeBinding();
  if (loaded.binding !== undefined) return (nativeBackend ??= new NativeBackend(loaded.binding));
  if (option === 'native') {
    throw Object.assign(new Error(`backend 'native' is not available: ${loaded.error.message}`, { cause: loaded.error }), {
      code: 'ERR_SIDELOOP_NATIVE_UNAVAILABLE',
    });
  }
  return workerBackend;
}
