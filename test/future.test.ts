import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';

import { describe, expect, it } from 'vitest';

import { CancelledError, EventLoop, Future, TimeoutError } from '../dist/index.js';
import { BACKENDS, runScript, testLoops } from './helpers.js';

describe.each(BACKENDS)('Future (%s backend)', (backend) => {
  const { makeLoop } = testLoops(backend);

  /** Resolves once every task submitted to `loop` before it has started running. */
  const started = (loop: EventLoop) => loop.sleep(0);

  it('is awaitable, thenable and works with Promise.all', async () => {
    const loop = makeLoop();
    expect(await loop.sleep(1, 'a')).toBe('a');
    expect(await loop.sleep(1, 'b').then((v) => v + '!')).toBe('b!');
    const then = loop.sleep(0).then(() => 1);
    expect(then).toBeInstanceOf(Promise);
    expect(await Promise.all([loop.sleep(2, 1), loop.sleep(1, 2), then])).toEqual([1, 2, 1]);
  });

  it('goes pending -> running -> finished', async () => {
    const loop = makeLoop();
    const future = loop.sleep(60_000);
    expect(future.state).toBe('pending'); // not even handed to the thread yet
    expect(future.done()).toBe(false);
    await started(loop);
    expect(future.state).toBe('running');
    expect(future.running()).toBe(true);
    future.cancel();
    const quick = loop.sleep(0, 'v');
    await quick;
    expect(quick.state).toBe('finished');
    expect(quick.done()).toBe(true);
    expect(quick.running()).toBe(false);
    expect(quick.cancelled()).toBe(false);
  });

  it('reads pending right after submission, even on a loop polling for work', async () => {
    // Reading the state used to hand the batch over first, and a polling
    // thread then often started the task before the state was read back.
    const loop = makeLoop({ spin: 1000 });
    await loop.sleep(0);
    const states = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const future = loop.sleep(60_000);
      states.add(future.state);
      future.cancel();
    }
    expect([...states]).toEqual(['pending']);
    // Reading the state hands the task over all the same: polling it
    // without ever yielding to the microtask that would, still sees it start.
    const polled = loop.sleep(60_000);
    for (let i = 0; i < 10_000_000 && !polled.running(); i++);
    expect(polled.state).toBe('running');
  });

  it('done() and cancel() see work the loop finished, while this thread polls without yielding', async () => {
    // done() read only what this thread had settled, while state asked the
    // loop: a synchronous `while (!f.done())` never ended, and cancel()
    // threw away a result the loop already had.
    const loop = makeLoop();
    await loop.sleep(0);
    const polled = loop.sleep(0, 'polled');
    for (let i = 0; i < 10_000_000 && !polled.done(); i++);
    expect(polled.done()).toBe(true);
    expect(polled.result(0)).toBe('polled');

    // The worker backend's results come by message, which may still be on
    // its way when the task reads done: cancel() keeps what has arrived.
    if (backend === 'worker') return;
    const kept = loop.sleep(0, 'kept');
    const after = loop.sleep(60_000);
    await null; // the batch goes to the thread; no completion is settled in a microtask
    // Tasks start in order: once `after` runs, `kept` is over on the thread.
    // (Reading the state of work still running settles nothing.)
    for (let i = 0; i < 10_000_000 && !after.running(); i++);
    expect(after.running()).toBe(true);
    expect(kept.cancel()).toBe(false);
    expect(kept.result(0)).toBe('kept');
    expect(after.cancel()).toBe(true);
  });

  it('polling several Futures in turn without yielding sees them all done', async () => {
    // Only a second reading of the same task in a row handed the batch over:
    // `futures.filter((f) => !f.done())` read each once per pass, and a loop
    // over it never ended.
    const loop = makeLoop();
    await loop.sleep(0);
    const futures = [loop.sleep(1, 'a'), loop.sleep(1, 'b'), loop.sleep(0, 'c')];
    for (let i = 0; i < 10_000_000 && futures.filter((f) => !f.done()).length > 0; i++);
    expect(futures.map((f) => f.done())).toEqual([true, true, true]);
    const read = [loop.sleep(0, 'd'), loop.sleep(0, 'e')];
    for (let i = 0; i < 10_000_000 && read.some((f) => f.state !== 'finished'); i++);
    expect(read.map((f) => f.result(0))).toEqual(['d', 'e']);
  });

  it('polling without yielding also moves on a task whose input is sent in chunks', async () => {
    // The worker backend sends inputs over 1 MiB a chunk per turn of the
    // main loop, and a result(0) sent none: polled, such a task never ended.
    // Twice its window of chunks: the poll must also hear what the worker took.
    const loop = makeLoop();
    await loop.sleep(0);
    const data = Buffer.alloc(16 * 1024 * 1024, 7);
    const expected = createHash('sha256').update(data).digest();
    const polled = loop.hash('sha256', data);
    for (let i = 0; i < 10_000_000 && !polled.done(); i++);
    expect(polled.result(0).equals(expected)).toBe(true);
    const waited = loop.hash('sha256', data);
    let digest: Buffer | undefined;
    for (let i = 0; i < 10_000_000 && digest === undefined; i++) {
      try {
        digest = waited.result(0);
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
      }
    }
    expect(digest!.equals(expected)).toBe(true);
  });

  it('cancel() on pending work cancels at once and the work never runs', async () => {
    const loop = makeLoop();
    const future = loop.sleep(60_000);
    const seen: string[] = [];
    future.addDoneCallback((f) => seen.push(f.state));
    expect(future.cancel()).toBe(true);
    expect(seen).toEqual(['cancelled']); // callbacks ran synchronously
    expect(future.state).toBe('cancelled');
    expect(future.done()).toBe(true);
    expect(future.cancelled()).toBe(true);
    expect(future.cancel()).toBe(true); // again: still true
    await expect(future).rejects.toBeInstanceOf(CancelledError);
    expect(() => future.result()).toThrow(CancelledError);
    expect(() => future.exception()).toThrow(CancelledError);
    await loop.sleep(0); // the loop processed the cancel
    expect(loop.stats()).toMatchObject({ cancelled: 1, pending: 0, running: 0 });
  });

  it('cancel() right after submitting: the work never runs, even on a loop polling for work', async () => {
    // The native backend handed the batch over and then cancelled: a
    // polling (spin) thread could start the task in between, and a small
    // writeFile was done by then, under a cancelled Future.
    const loop = makeLoop({ spin: 1000 });
    await loop.sleep(0);
    const file = path.join(os.tmpdir(), `sideloop-cancel-${process.pid}-${backend}`);
    for (let i = 0; i < 50; i++) {
      const written = loop.writeFile(file, 'data');
      expect(written.state).toBe('pending'); // a reading first, as a caller checking would
      expect(written.cancel()).toBe(true);
      await loop.sleep(0); // tasks go in order: the write was discarded or done by now
      expect(fs.existsSync(file)).toBe(false);
    }
  });

  it('cancel() on running work aborts it on the loop thread', async () => {
    const loop = makeLoop();
    const future = loop.sleep(60_000);
    await started(loop);
    expect(loop.stats().running).toBe(1);
    expect(future.cancel()).toBe(true);
    expect(future.state).toBe('cancelled');
    await loop.sleep(0);
    expect(loop.stats().running).toBe(0);
  });

  it('cancel() on a finished Future returns false and changes nothing', async () => {
    const loop = makeLoop();
    const future = loop.sleep(0, 5);
    await future;
    expect(future.cancel()).toBe(false);
    expect(future.state).toBe('finished');
    expect(future.result()).toBe(5);
  });

  it('result() blocks until the task is done, without the main loop running', () => {
    const loop = makeLoop();
    let immediateRan = false;
    setImmediate(() => (immediateRan = true));
    expect(loop.sleep(20, 'blocked').result()).toBe('blocked');
    expect(loop.sleep(5, 'x').result(60_000)).toBe('x');
    expect(immediateRan).toBe(false); // we never returned to the event loop
  });

  it('a timeout too large for any clock (1e20 ms, 2^64 ms, MAX_VALUE) waits as if there were none', () => {
    const loop = makeLoop();
    for (const timeout of [1e20, 2 ** 64, Number.MAX_VALUE]) {
      expect(loop.sleep(5, timeout).result(timeout)).toBe(timeout);
      expect(loop.sleep(5).exception(timeout)).toBeUndefined();
    }
  });

  it('result(timeout) throws TimeoutError and the task goes on', async () => {
    const loop = makeLoop();
    const future = loop.sleep(200, 'later');
    expect(() => future.result(1)).toThrow(TimeoutError);
    expect(() => future.exception(0)).toThrow(TimeoutError);
    expect(future.done()).toBe(false);
    expect(await future).toBe('later');
    expect(future.result(0)).toBe('later');
  });

  it('result() throws the task error; exception() returns it', async () => {
    const loop = makeLoop();
    const future = loop.sleep(60_000, undefined, { timeout: 1 });
    const error = future.exception();
    expect(error).toBeInstanceOf(TimeoutError);
    expect(() => future.result()).toThrow(error!);
    expect(loop.sleep(0, 1).exception()).toBeUndefined();
  });

  it('result() and exception() reject bad timeouts synchronously', () => {
    const loop = makeLoop();
    const future = loop.sleep(0);
    expect(() => future.result(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => future.result(NaN)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => future.exception('1' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('runs done callbacks once each, in order, after done', async () => {
    const loop = makeLoop();
    const future = loop.sleep(1, 'v');
    const calls: string[] = [];
    future.addDoneCallback((f) => calls.push(`a:${f.result()}`));
    future.addDoneCallback((f) => calls.push(`b:${f.state}`));
    future.addDoneCallback(() => calls.push('c'));
    expect(calls).toEqual([]);
    await future;
    expect(calls).toEqual(['a:v', 'b:finished', 'c']);
    future.cancel();
    await loop.sleep(0);
    expect(calls).toEqual(['a:v', 'b:finished', 'c']);
  });

  it('a done callback finds the other Futures of its batch done, and their slots reused safely', async () => {
    const loop = makeLoop();
    // Tasks that finish together come back in one batch, whatever the backend.
    const batch = Array.from({ length: 8 }, (_, i) => loop.sleep(5, i));
    const seen = await new Promise<{ values: unknown[]; cancels: boolean[]; fresh: string }>((resolve) => {
      batch[0]!.addDoneCallback(() => {
        // A new task may take the slot of a task of this batch: asking about
        // that task's Future must never reach the new one.
        const fresh = loop.sleep(60_000);
        const values = batch.map((future) => future.result(10_000));
        const cancels = batch.map((future) => future.cancel());
        resolve({ values, cancels, fresh: fresh.state });
        fresh.cancel();
      });
    });
    expect(seen.values).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(seen.cancels).toEqual(Array(8).fill(false));
    expect(['pending', 'running']).toContain(seen.fresh);
  });

  it('runs a callback added to a done Future on a later microtask', async () => {
    const loop = makeLoop();
    const future = loop.sleep(0);
    await future;
    const calls: string[] = [];
    future.addDoneCallback(() => calls.push('late'));
    calls.push('sync');
    await Promise.resolve();
    expect(calls).toEqual(['sync', 'late']);
  });

  it('runs each done callback in the async context it was added in, not the one that started the loop', async () => {
    const loop = makeLoop();
    const als = new AsyncLocalStorage<string>();
    // The loop starts here: its wake-ups were made in this context.
    await als.run('starter', () => loop.sleep(0));
    const seen: Record<string, string | undefined> = {};
    const note = (name: string) => () => {
      seen[name] = als.getStore();
    };
    const drained = als.run('request 1', () => {
      const future = loop.sleep(1);
      future.addDoneCallback(note('settled by the loop'));
      return future;
    });
    const outside = loop.sleep(1);
    outside.addDoneCallback(note('added outside any context'));
    await Promise.all([drained, outside]);
    const cancelled = als.run('request 2', () => {
      const future = loop.sleep(60_000);
      future.addDoneCallback(note('settled by cancel()'));
      return future;
    });
    const blocked = als.run('request 3', () => {
      const future = loop.sleep(1);
      future.addDoneCallback(note('settled by result()'));
      return future;
    });
    als.run('elsewhere', () => {
      cancelled.cancel();
      blocked.result(10_000);
    });
    await als.run('request 4', async () => {
      drained.addDoneCallback(note('added when done'));
      await Promise.resolve();
    });
    expect(seen).toEqual({
      'settled by the loop': 'request 1',
      'settled by cancel()': 'request 2',
      'settled by result()': 'request 3',
      'added outside any context': undefined,
      'added when done': 'request 4',
    });
  });

  it('rejects a callback that is not a function', () => {
    const loop = makeLoop();
    expect(() => loop.sleep(0).addDoneCallback('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it("serialises as a Promise does, without the task's input or any bookkeeping", async () => {
    const loop = makeLoop();
    const secret = { SIDELOOP_TEST_SECRET: 'do not log me' };
    const pending = loop.exec(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { env: secret });
    const hashing = loop.hash('sha256', 'do not log me either');
    for (const future of [pending, hashing]) {
      expect(JSON.stringify(future)).toBe('{}');
      expect(Object.keys(future)).toEqual([]);
    }
    pending.cancel();
    await hashing;
    expect(JSON.stringify(hashing)).toBe('{}');
  });

  it('works frozen, as a Promise does, and so do the other Futures of its batch', async () => {
    const loop = makeLoop();
    const sibling = loop.sleep(5, 'sibling');
    const frozen = Object.freeze(loop.sleep(5, 'frozen'));
    expect(await Promise.all([sibling, frozen])).toEqual(['sibling', 'frozen']);
    const cancelled = Object.freeze(loop.sleep(60_000));
    expect(cancelled.cancel()).toBe(true);
    await loop.shutdown({ cancelPending: true });
    expect(loop.state).toBe('stopped');
  });

  it('shows its state with util.inspect', async () => {
    const loop = makeLoop();
    const running = loop.sleep(60_000);
    expect(inspect(running)).toBe('Future { <pending> }');
    await started(loop);
    expect(inspect(running)).toBe('Future { <running> }');
    running.cancel();
    expect(inspect(running)).toBe('Future { <cancelled> }');
    const ok = loop.sleep(0, { a: 1 });
    await ok;
    expect(inspect(ok)).toBe('Future { { a: 1 } }');
    const failed = loop.sleep(60_000, undefined, { timeout: 0 });
    await failed.catch(() => {});
    expect(inspect(failed)).toMatch(/^Future \{ <failed> TimeoutError: sleep\(60000\) timed out/);
    expect(Object.prototype.toString.call(ok)).toBe('[object Future]');
  });

  it('is a Future, and Futures cannot be made by users', () => {
    const loop = makeLoop();
    expect(loop.sleep(0)).toBeInstanceOf(Future);
    // One made by hand had no loop behind it: its result() threw a TimeoutError at once.
    const make = Future as unknown as new (...args: unknown[]) => unknown;
    expect(() => new make()).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_ILLEGAL_CONSTRUCTOR' }));
    expect(() => new make(undefined, Symbol('sideloop.Future'))).toThrow(expect.objectContaining({ code: 'ERR_ILLEGAL_CONSTRUCTOR' }));
  });

  it('sleeps due together settle in the order they were submitted, as Node timers fire', async () => {
    // Natively they came back newest first: each finished in its timer's
    // close callback, and libuv runs those in reverse.
    const loop = makeLoop();
    const settled: number[] = [];
    const futures = [0, 1, 2, 3, 4, 5].map((i) => loop.sleep(20, i));
    for (const future of futures) future.addDoneCallback(() => settled.push(future.result()!));
    await Promise.all(futures);
    expect(settled).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await Promise.race([loop.sleep(5, 'first'), loop.sleep(5, 'second')])).toBe('first');
  });

  it.each([
    [0.4, 0.9, 'ok'],
    [1.5, 1.9, 'ok'],
    [10, 10, 'ok'],
    [3, 3.5, 'ok'],
    [1, 0.5, 'timed out'],
    [5, 2, 'timed out'],
    [0, 0, 'timed out'],
  ])('sleep(%d) with a timeout of %d ms: %s, whatever the rounding to whole ms', async (ms, timeout, expected) => {
    // A limit no shorter than the sleep never applies (the work wins a tie);
    // a shorter one always does. Natively both rounded up to 1 ms and the
    // limit won; the worker's Node timers gave the sleep the tie instead.
    // A limit of 0 has passed as the task starts.
    const loop = makeLoop();
    const outcome = await loop.sleep(ms, 'ok', { timeout }).then(
      (value) => value,
      (error: Error & { code?: string }) => (error.code === 'ERR_SIDELOOP_TIMEOUT' ? 'timed out' : error.message),
    );
    expect(outcome).toBe(expected);
  });
});

describe('Future, in a child process', () => {
  it('a failed Future that nobody observes raises no unhandledRejection and stays retrievable', async () => {
    const result = await runScript(`
      const { EventLoop } = require(SIDELOOP);
      process.on('unhandledRejection', (e) => { console.log('UNHANDLED', e && e.name); process.exitCode = 9; });
      const loop = new EventLoop();
      const jobs = new Map();
      jobs.set('a', loop.sleep(60000, 1, { timeout: 1 }));
      jobs.set('b', loop.sleep(60000));
      jobs.get('b').cancel();
      const c = loop.sleep(60000); c.then(() => {}); c.cancel(); // observed by then() without a handler: the derived promise is the caller's
      setTimeout(() => {
        console.log(jobs.get('a').state, jobs.get('a').exception().name, jobs.get('b').state);
        loop.shutdown();
      }, 50);
      process.on('exit', () => console.log('exit'));
    `);
    // The one derived promise without a handler is reported, as any promise's would be; the Futures never are.
    expect(result.stdout).toBe('UNHANDLED CancelledError\nfinished TimeoutError cancelled\nexit\n');
    expect(result.signal).toBeNull();
  });

  it.each(BACKENDS)("a blocking result() gives way to a vm script's timeout, as to the REPL's Ctrl+C; the task goes on (%s backend)", async (backend) => {
    const result = await runScript(
      `
      const vm = require('node:vm');
      const { EventLoop } = require(SIDELOOP);
      const loop = new EventLoop({ backend: '${backend}' });
      const future = loop.sleep(3600000);
      try {
        vm.runInNewContext('future.result()', { future }, { timeout: 50 });
        console.log('returned');
      } catch (error) {
        console.log(error.code);
      }
      console.log('done:', future.done());
      loop.shutdown({ cancelPending: true }).then(() => console.log(future.state));
    `,
      { hangAfterMs: 30_000 },
    );
    expect(result.hung, result.stderr).toBe(false);
    expect(result.stdout).toBe('ERR_SCRIPT_EXECUTION_TIMEOUT\ndone: false\ncancelled\n');
    expect(result.code).toBe(0);
  });

  it.each(BACKENDS)('keeps working while fake timers hold the globals still, as test frameworks do (%s backend)', async (backend) => {
    const result = await runScript(
      `
      const { EventLoop, TimeoutError } = require(SIDELOOP);
      const loop = new EventLoop({ backend: '${backend}' });
      const real = { setImmediate, queueMicrotask, performance };
      // Fake timers that are never advanced: nothing scheduled runs, the clock stands still.
      globalThis.setImmediate = () => ({ ref() { return this; }, unref() { return this; }, hasRef: () => false });
      globalThis.queueMicrotask = () => {};
      globalThis.performance = { now: () => 0 };
      const flood = Array.from({ length: 3000 }, (_, i) => loop.sleep(0, i)); // more than one turn's batch
      const large = loop.gzip(Buffer.alloc(3 * 1024 * 1024, 1)); // the worker backend streams it in turns
      let timedOut = false;
      try {
        loop.sleep(3600000).result(100);
      } catch (error) {
        timedOut = error instanceof TimeoutError;
      }
      Promise.all([...flood, large]).then((values) => {
        Object.assign(globalThis, real);
        console.log(values.length, values[2999], timedOut);
        return loop.shutdown({ cancelPending: true });
      }).then(() => console.log('stopped'));
    `,
      { hangAfterMs: 30_000 },
    );
    expect(result.hung, result.stderr).toBe(false);
    expect(result.stdout).toBe('3001 2999 true\nstopped\n');
    expect(result.code).toBe(0);
  });

  it('a throwing done callback does not stop the others, and surfaces as an uncaught exception', async () => {
    const result = await runScript(`
      const { EventLoop } = require(SIDELOOP);
      const loop = new EventLoop();
      process.on('uncaughtException', (e) => console.log('uncaught', e.message));
      const f = loop.sleep(1);
      f.addDoneCallback(() => console.log('first'));
      f.addDoneCallback(() => { throw new Error('boom'); });
      f.addDoneCallback(() => console.log('third'));
      f.then(() => loop.shutdown());
    `);
    expect(result.stdout).toBe('first\nthird\nuncaught boom\n');
    expect(result.code).toBe(0);
  });
});
