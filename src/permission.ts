/**
 * Node's permission model (`--experimental-permission` in Node 20,
 * `--permission` later), asked on the main thread as Node's own `fs` and
 * `child_process` ask it. The native backend reads, writes and spawns from
 * the addon, which the model does not reach (it trusts an addon once
 * addons are allowed): without this, a process denied writes could still
 * write through sideloop. Both backends ask here, so they fail alike.
 */
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
 * `scope` (on the file `path`, absolute: toPath() resolves paths while the
 * model is on); undefined when allowed or the model is off.
 */
export function accessDenied(scope: Scope, path?: string): Error | undefined {
  const permission = model();
  if (permission === undefined) return undefined;
  if (permission.has(scope, path)) return undefined;
  return Object.assign(new Error('Access to this API has been restricted'), {
    code: 'ERR_ACCESS_DENIED',
    permission: DENIED_PERMISSION[scope],
    resource: path ?? '',
  });
}

/** Whether Node's permission model is on in this process. */
export function permissionModelOn(): boolean {
  return model() !== undefined;
}

function model(): Permission | undefined {
  return (process as { permission?: Permission }).permission;
}
