/**
 * Exit races: child processes that end at a random moment during a flood of
 * tasks (and a stream of exec tasks), in each way a process can end. None may crash (die by SIGSEGV,
 * SIGABRT, ...) or hang.
 */
import { describe, expect, it } from 'vitest';

import { BACKENDS, runScript, type ChildResult } from './helpers.js';

const CHILDREN = 200;
const AT_ONCE = 4;
// 'handler-throws' and 'exit-listener-throws' end the process past
// sideloop's own 'exit' listener, straight from Node's C++ side.
const WAYS = ['natural', 'exit', 'throw', 'sigterm', 'sigterm-handled', 'handler-throws', 'exit-listener-throws'] as const;

function childScript(backend: string, way: (typeof WAYS)[number], delayMs: number): string {
  return `
    if (${JSON.stringify(way)} === 'exit-listener-throws') process.on('exit', () => { throw new Error('exit listener'); });
    const { EventLoop } = require(SIDELOOP);
    const loop = new EventLoop({ backend: ${JSON.stringify(backend)} });
    let flooding = true;
    const flood = () => {
      if (!flooding) return;
      for (let i = 0; i < 500; i++) {
        loop.sleep(i % 7);
        if (i % 50 === 0) loop.hash('sha256', 'x'.repeat(i * 100));
        if (i % 100 === 0) loop.sleep(1000).cancel();
      }
      setImmediate(flood);
    };
    flood();
    // One child process after another: the exit may come as one is spawned
    // or reaped (the native backend's loop thread did both after
    // process.exit() had shut libuv's signal handling down: SIGABRT).
    const execAgain = () => {
      if (flooding) loop.exec('true').then(execAgain, execAgain);
    };
    execAgain();
    if (${JSON.stringify(way)} === 'sigterm-handled') process.on('SIGTERM', () => process.exit(0));
    if (${JSON.stringify(way)} === 'handler-throws') process.on('uncaughtException', () => { throw new Error('handler'); });
    setTimeout(() => {
      switch (${JSON.stringify(way)}) {
        case 'natural': flooding = false; break;          // tasks finish, then the process exits by itself
        case 'exit': process.exit(3);
        case 'throw': case 'handler-throws': throw new Error('exit race');
        case 'exit-listener-throws': process.exit(3);
        default: process.kill(process.pid, 'SIGTERM');
      }
    }, ${delayMs});
  `;
}

const expected: Record<(typeof WAYS)[number], (r: ChildResult) => boolean> = {
  natural: (r) => r.code === 0 && r.signal === null,
  exit: (r) => r.code === 3 && r.signal === null,
  throw: (r) => r.code === 1 && r.signal === null,
  sigterm: (r) => r.signal === 'SIGTERM', // Node's default for an unhandled SIGTERM
  'sigterm-handled': (r) => r.code === 0 && r.signal === null,
  'handler-throws': (r) => r.code === 7 && r.signal === null,
  'exit-listener-throws': (r) => r.code === 3 && r.signal === null,
};

describe.each(BACKENDS)('exit races (%s backend)', (backend) => {
  it(`${CHILDREN} children ending at random moments during a flood: no crash, no hang`, async () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const plans = Array.from({ length: CHILDREN }, (_, i) => ({ way: WAYS[i % WAYS.length]!, delayMs: Math.floor(random() * 40) }));
    const failures: string[] = [];
    let next = 0;
    const runner = async () => {
      while (next < plans.length) {
        const plan = plans[next++]!;
        const result = await runScript(childScript(backend, plan.way, plan.delayMs), { hangAfterMs: 30_000 });
        if (result.hung || !expected[plan.way](result)) {
          failures.push(`${plan.way} after ${plan.delayMs} ms: code ${result.code}, signal ${result.signal}, hung ${result.hung}, ${result.stderr.slice(-300)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: AT_ONCE }, runner));
    expect(failures).toEqual([]);
  });
});

/**
 * Starts 60 worker threads running `workerSource` one after the other and
 * terminates each a random 0 to `maxDelayMs` ms after `readyEvent`; the
 * child prints '60 terminated' once all are gone.
 */
function terminateWorkers(workerSource: string, readyEvent: 'online' | 'message', maxDelayMs: number, seed: number): Promise<ChildResult> {
  return runScript(
    `
    const { Worker } = require('node:worker_threads');
    const source = ${JSON.stringify(workerSource)}.replace('SIDELOOP_PATH', JSON.stringify(SIDELOOP));
    let seed = ${seed};
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    (async () => {
      for (let i = 0; i < 60; i++) {
        const worker = new Worker(source, { eval: true });
        await new Promise((resolve) => worker.once(${JSON.stringify(readyEvent)}, resolve));
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * ${maxDelayMs})));
        await worker.terminate();
      }
      console.log('60 terminated');
    })();
  `,
    { hangAfterMs: 120_000 },
  );
}

function expectAllTerminated(result: ChildResult): void {
  expect(result.hung).toBe(false);
  expect(result.signal, result.stderr).toBeNull();
  expect(result.stdout).toBe('60 terminated\n');
}

describe.each(BACKENDS)('worker termination races (%s backend)', (backend) => {
  it('60 worker threads terminated at random moments of a flood: no crash, no hang', async () => {
    const flooding = `
      const { EventLoop } = require(SIDELOOP_PATH);
      const loop = new EventLoop({ backend: ${JSON.stringify(backend)} });
      const flood = () => {
        for (let i = 0; i < 500; i++) {
          loop.sleep(i % 3).then(() => {});
          if (i % 100 === 0) loop.sleep(1000).cancel();
          if (i % 50 === 0) loop.hash('sha1', 'x'.repeat(i * 10));
        }
        setImmediate(flood);
      };
      flood();
    `;
    expectAllTerminated(await terminateWorkers(flooding, 'online', 30, 777));
  });

  // Terminating a worker stops its JS only at its next interrupt check: calls
  // already under way see Node-API refuse them, and a binding that reads the
  // empty value it then gets dies with a fatal error (SIGABRT). A tight loop
  // of calls gives the termination the most chances to land inside one
  // (under ASan, 2 of 780 did before the binding stopped reading such values).
  it('60 worker threads terminated while they call into the loop without pause: no crash, no hang', async () => {
    const calling = `
      const { parentPort } = require('node:worker_threads');
      const { EventLoop } = require(SIDELOOP_PATH);
      const loop = new EventLoop({ backend: ${JSON.stringify(backend)} });
      parentPort.postMessage('calling');
      for (let i = 0; ; i++) {
        loop.sleep(0).cancel();
        if (i % 7 === 0) loop.hash('sha1', 'abc').done();
        if (i % 11 === 0) {
          try { loop.sleep(5).result(0); } catch {}
        }
        // A blocking wait drains: the slot table stays small however long
        // the worker calls before it is terminated.
        if (i % 256 === 0) loop.sleep(0).result();
      }
    `;
    expectAllTerminated(await terminateWorkers(calling, 'message', 5, 4242));
  });
});
