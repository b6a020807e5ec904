/**
 * Node's permission model (`--experimental-permission` in Node 20,
 * `--permission` later), asked on the main thread as Node's own `fs` and
 * `child_process` ask it. The native backend reads, writes and spawns from
 * the addon, which the model does not reach (it trusts an addon once
 * addons are allowed): without this, a process denied writes could still
 * write through sideloop. Both backends ask here, so they fail alike.
 */
import { resolve } from 'node:path';

type Scope = 'fs.read' | 'fs.write' | 'child';

interface Permission {
  has(scope: string, reference?: string): boolean;
}

/** How Node names each scope in the error's `permission` field. */
const DENIED_PERMISSION: Record<Scope, string> = {
  'fs.read': 'FileSystemRead',
  'fs.write': 'FileSystemWrite',
  child: 'ChildProcess',
};

/**
 * The error Node's own API would throw when the permission model denies
 * `scope` (on the file `path`); undefined when allowed or the model is off.
 */
export function accessDenied(scope: Scope, path?: string): Error | undefined {
  const permission = (process as { permission?: Permission }).permission;
  if (permission === undefined) return undefined;
  const resource = path === undefined ? undefined : resolve(path);
  if (permission.has(scope, resource)) return undefined;
  return Object.assign(new Error('Access to this API has been restricted'), {
    code: 'ERR_ACCESS_DENIED',
    permission: DENIED_PERMISSION[scope],
    resource: resource ?? '',
  });
}
