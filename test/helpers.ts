import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { afterEach } from 'vitest';

import { EventLoop, type EventLoopOptions } from '../dist/index.js';

/** The built package, as users load it. */
export const PACKAGE_DIR = path.resolve(__dirname, '..');
export const DIST = path.join(PACKAGE_DIR, 'dist', 'index.js');

/** The backends every conformance test runs against. */
export const BACKENDS = ['native', 'worker'] as const;
export type BackendUnderTest = (typeof BACKENDS)[number];

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the child had to be killed for not exiting on its own. */
  hung: boolean;
  /**
   * True when the child's stdout or stderr stayed open long after it had
   * exited: a process it left behind holds them (its output may be cut short).
   */
  heldOpen: boolean;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  nodeArgs?: string[];
  /** After this, the child counts as hung and is killed (not a speed check: a deadlock detector). */
  hangAfterMs?: number;
  input?: string;
  cwd?: string;
}

/**
 * Runs `code` as a CommonJS script in a fresh node process. `SIDELOOP` in
 * the script is the path of the built package.
 */
export function runScript(code: string, options: RunOptions = {}): Promise<ChildResult> {
  const script = `const SIDELOOP = ${JSON.stringify(DIST)};\n${code}`;
  return runNode([...(options.nodeArgs ?? []), '-e', script], options);
}

/** Runs `script` (as `node -e`) in a child limited to 64 file descriptors, so that it can run out of them. */
export function runWithFewDescriptors(script: string): Promise<ChildResult> {
  return runProgram('sh', ['-c', 'ulimit -n 64 && exec "$0" -e "$1"', process.execPath, script]);
}

/** Script source: takes every file descriptor left into \`held\`, then prints \`descriptors: EMFILE\`. */
export const TAKE_ALL_DESCRIPTORS = `
  const held = [];
  try {
    for (;;) held.push(require('node:fs').openSync('/dev/null', 'r'));
  } catch (error) {
    console.log('descriptors:', error.code);
  }
`;

export function runNode(args: string[], options: RunOptions = {}): Promise<ChildResult> {
  return runProgram(process.execPath, args, options);
}

/** Runs `file` (node, bun, deno, ...) with `args` and collects how it ended. */
export function runProgram(file: string, args: string[], options: RunOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hung = false;
    let heldOpen = false;
    let heldOpenTimer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, options.hangAfterMs ?? 60_000);
    child.on('error', reject);
    // 'close' waits for the pipes too, which a process the child left
    // behind may hold open: without this, a child killed as hung would
    // leave the test to time out with none of its output shown.
    child.on('exit', () => {
      heldOpenTimer = setTimeout(() => {
        heldOpen = true;
        child.stdout.destroy();
        child.stderr.destroy();
      }, 10_000);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(heldOpenTimer);
      resolve({ code, signal, stdout, stderr, hung, heldOpen });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Names of this process's threads, from /proc/self/task/<tid>/comm. */
export function threadNames(): string[] {
  const names: string[] = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      names.push(fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim());
    } catch {
      // the thread exited while we looked
    }
  }
  return names;
}

export function countThreads(name: string): number {
  return threadNames().filter((n) => n === name).length;
}

/** A unique thread name (at most 15 bytes) so tests running side by side do not see each other's threads. */
let counter = 0;
export function uniqueName(prefix = 'sl'): string {
  return `${prefix}${process.pid % 100000}-${counter++}`.slice(0, 15);
}

interface Stoppable {
  shutdown(options?: { cancelPending?: boolean }): Promise<void>;
}

/**
 * Loops (and groups) made by the tests of one describe block, shut down with
 * their pending work cancelled after each test.
 */
export function testLoops(backend: BackendUnderTest) {
  const made: Stoppable[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((loop) => loop.shutdown({ cancelPending: true })));
  });
  const track = <T extends Stoppable>(loop: T): T => {
    made.push(loop);
    return loop;
  };
  const makeLoop = (options: EventLoopOptions = {}): EventLoop => track(new EventLoop({ backend, ...options }));
  return { makeLoop, track };
}

/**
 * How many processes, zombies aside, have `marker` in their command line:
 * the children a test spawned, found by a marker in their arguments. The
 * function's source is also given to child scripts (countProcessesSource),
 * which must take the marker from their environment: written into a script,
 * it would be in that process's own command line and count it.
 */
export function countProcesses(marker: string): number {
  return processesWith(marker).length;
}

/** The pids countProcesses counts. */
export function processesWith(marker: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => {
      try {
        const state = fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]![0];
        return state !== 'Z' && fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** countProcesses for a child script: `const count = ${countProcessesSource};` then `count(marker)`. */
export const countProcessesSource = `(marker) => {
  const fs = require('node:fs');
  return fs.readdirSync('/proc').filter((entry) => {
    try {
      const state = fs.readFileSync('/proc/' + entry + '/stat', 'utf8').split(') ')[1][0];
      return state !== 'Z' && fs.readFileSync('/proc/' + entry + '/cmdline', 'utf8').includes(marker);
    } catch {
      return false;
    }
  }).length;
}`;
