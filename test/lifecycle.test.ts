import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { EventLoop, EventLoopClosedError, InvalidStateError, QueueFullError, CancelledError } from '../dist/index.js';
import { BACKENDS, DIST, TAKE_ALL_DESCRIPTORS, countThreads, runScript, runWithFewDescriptors, uniqueName, testLoops } from './helpers.js';

describe.each(BACKENDS)('EventLoop lifecycle (%s backend)', (backend) => {
  const { makeLoop } = testLoops(backend);

  it('starts nothing until the first submission or start()', async () => {
    const name = uniqueName();
    const loop = makeLoop({ name });
    expect(loop.state).toBe('idle');
    expect(loop.backend).toBe(backend);
    expect(loop.name).toBe(name);
    if (backend === 'native') expect(countThreads(name)).toBe(0);
    await loop.sleep(0);
    expect(loop.state).toBe('running');
    if (backend === 'native') expect(countThreads(name)).toBe(1);
  });

  it('shows its name and backend as own properties, and none of its bookkeeping', () => {
    const loop = makeLoop({ name: 'shown' });
    expect(Object.keys(loop).sort()).toEqual(['backend', 'name']);
    expect(JSON.parse(JSON.stringify(loop))).toEqual({ backend, name: 'shown' });
  });

  it('start() is idempotent and returns the loop', () => {
    const name = uniqueName();
    const loop = makeLoop({ name });
    expect(loop.start()).toBe(loop);
    expect(loop.start()).toBe(loop);
    expect(loop.state).toBe('running');
    if (backend === 'native') expect(countThreads(name)).toBe(1);
  });

  it('shutdown() waits for pending tasks, then no thread of the loop is left', async () => {
    const name = uniqueName();
    const loop = makeLoop({ name });
    const futures = [loop.sleep(30, 'a'), loop.sleep(10, 'b')];
    const stopping = loop.shutdown();
    expect(loop.state).toBe('stopping');
    expect(loop.shutdown()).toBe(stopping); // the same promise
    await stopping;
    expect(loop.state).toBe('stopped');
    expect(futures.map((f) => f.result(0))).toEqual(['a', 'b']);
    if (backend === 'native') expect(countThreads(name)).toBe(0);
    expect(loop.stats()).toMatchObject({ submitted: 2, completed: 2, pending: 0, running: 0 });
  });

  it('shutdown({ cancelPending: true }) cancels pending tasks at once', async () => {
    const name = uniqueName();
    const loop = makeLoop({ name });
    const futures = Array.from({ length: 100 }, (_, i) => loop.sleep(60_000, i));
    await loop.sleep(0); // some are running now
    const stopping = loop.shutdown({ cancelPending: true });
    expect(futures.every((f) => f.cancelled())).toBe(true);
    expect(loop.pending).toBe(0);
    await stopping;
    if (backend === 'native') expect(countThreads(name)).toBe(0);
    expect(loop.stats()).toMatchObject({ submitted: 101, completed: 1, cancelled: 100, pending: 0, running: 0 });
  });

  it('shutdown({ cancelPending: true }) keeps the results the loop already has, as cancel() does', async () => {
    // The native backend cancelled every unsettled Future, results in hand included.
    if (backend === 'worker') return; // its results come by message, which may still be on its way
    const loop = makeLoop();
    await loop.sleep(0);
    const kept = loop.sleep(0, 'kept');
    const after = loop.sleep(60_000);
    await null; // the batch goes to the thread; no completion is settled in a microtask
    // Tasks start in order: once `after` runs, `kept` is over on the thread.
    for (let i = 0; i < 10_000_000 && !after.running(); i++);
    expect(after.running()).toBe(true);
    await loop.shutdown({ cancelPending: true });
    expect(kept.result(0)).toBe('kept');
    expect(after.cancelled()).toBe(true);
  });

  it('shutdown({ cancelPending: true }) cancels every Future before any callback runs', async () => {
    // The worker backend cancelled them one at a time, callbacks and all,
    // and told the Worker of none: a callback that waited on a sibling
    // waited for its whole work (its timeout here, for ever without one).
    const loop = makeLoop();
    const first = loop.sleep(60_000, 'first');
    const sibling = loop.sleep(60_000, 'sibling');
    await loop.sleep(0); // both started
    let seen: { siblingCancelled: boolean; waited: unknown; running: number } | undefined;
    first.addDoneCallback(() => {
      const siblingCancelled = sibling.cancelled();
      let waited: unknown;
      try {
        waited = sibling.result(10_000);
      } catch (error) {
        waited = error;
      }
      // And the work stops meanwhile: the loop was told of every cancel
      // before this callback ran (the thread ends them on its own; this
      // one, blocked, sends nothing). The bound only keeps a failure from
      // hanging the run.
      const giveUpAt = Date.now() + 30_000;
      while (loop.stats().running > 0 && Date.now() < giveUpAt);
      seen = { siblingCancelled, waited, running: loop.stats().running };
    });
    await loop.shutdown({ cancelPending: true });
    expect(seen).toEqual({ siblingCancelled: true, waited: expect.any(CancelledError), running: 0 });
  });

  it('shutdown({ cancelPending: true }) refuses what the cancelled Futures\' callbacks submit', async () => {
    // The loop became 'stopping' only after cancelling, so a callback's
    // retry was accepted, and shutdown could wait for it to run to its end.
    const loop = makeLoop();
    await loop.sleep(0); // its slot is free again: the retry would take it
    const first = loop.sleep(60_000);
    let retry: ReturnType<typeof loop.sleep> | undefined;
    first.addDoneCallback(() => (retry = loop.sleep(60_000, 'retried')));
    await loop.shutdown({ cancelPending: true });
    expect(first.cancelled()).toBe(true);
    expect(() => retry!.result(0)).toThrow(EventLoopClosedError);
    expect(loop.stats()).toMatchObject({ submitted: 2, cancelled: 1, pending: 0 });
  });

  it('shutdown({ cancelPending: true }) right after submitting: the cancelled work never runs', async () => {
    // The native backend did not tell its thread, and the stop sent the
    // batch: the task ran after its Future was cancelled (with spin, always).
    const file = path.join(os.tmpdir(), `sideloop-cancelled-${process.pid}-${backend}`);
    for (let i = 0; i < 20; i++) {
      const loop = makeLoop({ spin: 1000 });
      await loop.sleep(0);
      const written = loop.writeFile(file, 'data');
      await loop.shutdown({ cancelPending: true });
      expect(written.state).toBe('cancelled');
      expect(fs.existsSync(file)).toBe(false);
    }
  });

  it('shutdown({ cancelPending: true }) aborts running CPU work instead of waiting for it', async () => {
    const loop = makeLoop();
    await loop.exec('true'); // the worker backend then stops through a goodbye that waits for the thread
    const input = pseudoRandomBytes(64 << 20); // shared: the worker backend hashes it in one synchronous run
    const running = loop.gzip(input, { level: 9 });
    while (!running.running()) await new Promise(setImmediate);
    // The clock is a quarter of the same work on another loop: a shutdown
    // that let the task run to its end would come after it, one that
    // aborts it after its current chunk (1 MiB) long before.
    const reference = makeLoop().gzip(input.subarray(0, 16 << 20), { level: 9 });
    let referenceDone = false;
    reference.addDoneCallback(() => (referenceDone = true));
    await loop.shutdown({ cancelPending: true });
    expect(running.cancelled()).toBe(true);
    expect(referenceDone).toBe(false);
  });

  it('shutdown({ cancelPending: true }) while already stopping cancels what is left', async () => {
    const loop = makeLoop();
    const future = loop.sleep(60_000);
    const first = loop.shutdown();
    const second = loop.shutdown({ cancelPending: true });
    expect(second).toBe(first);
    expect(future.cancelled()).toBe(true);
    await first;
    expect(loop.state).toBe('stopped');
  });

  it('submitting while stopping gives a Future failed with EventLoopClosedError, counted nowhere', async () => {
    const loop = makeLoop();
    loop.sleep(5);
    const stopping = loop.shutdown();
    const late = loop.sleep(0);
    expect(late.done()).toBe(true);
    expect(late.exception()).toBeInstanceOf(EventLoopClosedError);
    expect(late.exception()).toMatchObject({ code: 'ERR_SIDELOOP_CLOSED', name: 'EventLoopClosedError' });
    await expect(late).rejects.toBeInstanceOf(EventLoopClosedError);
    await stopping;
    expect(loop.stats()).toMatchObject({ submitted: 1, completed: 1, failed: 0 });
  });

  it('start() while stopping throws InvalidStateError', async () => {
    const loop = makeLoop();
    loop.sleep(5);
    const stopping = loop.shutdown();
    expect(() => loop.start()).toThrow(InvalidStateError);
    expect(() => loop.start()).toThrow(expect.objectContaining({ code: 'ERR_SIDELOOP_INVALID_STATE' }));
    await stopping;
  });

  it('restarts after shutdown, with a fresh thread, on start() or on submission', async () => {
    const name = uniqueName();
    const loop = makeLoop({ name });
    await loop.sleep(0);
    await loop.shutdown();
    expect(await loop.sleep(0, 'again')).toBe('again');
    expect(loop.state).toBe('running');
    if (backend === 'native') expect(countThreads(name)).toBe(1);
    await loop.shutdown();
    loop.start();
    expect(loop.state).toBe('running');
    await loop.shutdown();
    expect(loop.state).toBe('stopped');
    expect(loop.stats().submitted).toBe(2);
  });

  it('shutdown() of an idle or stopped loop resolves at once', async () => {
    const loop = makeLoop();
    await loop.shutdown();
    expect(loop.state).toBe('idle');
    loop.start();
    await loop.shutdown();
    await loop.shutdown();
    expect(loop.state).toBe('stopped');
  });

  it('supports await using through Symbol.asyncDispose', async () => {
    const name = uniqueName();
    const loop = makeLoop({ name });
    const future = loop.sleep(5, 1);
    await loop[Symbol.asyncDispose]();
    expect(future.result(0)).toBe(1);
    expect(loop.state).toBe('stopped');
  });

  it('maxPending: beyond it submissions fail with QueueFullError, counted nowhere', async () => {
    const loop = makeLoop({ maxPending: 2 });
    const a = loop.sleep(60_000);
    loop.sleep(60_000);
    const full = loop.sleep(0);
    expect(full.exception()).toBeInstanceOf(QueueFullError);
    expect(full.exception()).toMatchObject({ code: 'ERR_SIDELOOP_QUEUE_FULL' });
    expect(loop.stats()).toMatchObject({ submitted: 2, pending: 2, failed: 0 });
    a.cancel();
    expect(await loop.sleep(0, 'room')).toBe('room');
  });

  it('counts stats since construction', async () => {
    const loop = makeLoop();
    await loop.sleep(0);
    const failed = loop.sleep(60_000, undefined, { timeout: 0 });
    await expect(failed).rejects.toMatchObject({ code: 'ERR_SIDELOOP_TIMEOUT' });
    loop.sleep(60_000).cancel();
    const running = loop.sleep(60_000);
    await loop.sleep(0);
    expect(loop.stats()).toEqual({ submitted: 5, completed: 2, failed: 1, cancelled: 1, pending: 1, running: 1 });
    expect(loop.pending).toBe(1);
    await loop.shutdown({ cancelPending: true });
    expect(running.cancelled()).toBe(true);
    expect(loop.stats()).toEqual({ submitted: 5, completed: 2, failed: 1, cancelled: 2, pending: 0, running: 0 });
  });

  it('an AbortSignal cancels the task, before or after submission', async () => {
    const loop = makeLoop();
    const controller = new AbortController();
    const future = loop.sleep(60_000, undefined, { signal: controller.signal });
    await loop.sleep(0);
    controller.abort();
    expect(future.cancelled()).toBe(true);
    await expect(future).rejects.toBeInstanceOf(CancelledError);
    const early = loop.sleep(60_000, undefined, { signal: AbortSignal.abort() });
    expect(early.cancelled()).toBe(true);
  });

  it("a task cancelled by an AbortSignal fails with CancelledError, the signal's reason its cause", async () => {
    const loop = makeLoop();
    const controller = new AbortController();
    const reason = new Error('the client went away');
    const future = loop.sleep(60_000, undefined, { signal: controller.signal });
    controller.abort(reason);
    await expect(future).rejects.toMatchObject({ code: 'ERR_SIDELOOP_CANCELLED', cause: reason });
    expect(() => future.result()).toThrow(expect.objectContaining({ code: 'ERR_SIDELOOP_CANCELLED', cause: reason }));
    const early = loop.sleep(60_000, undefined, { signal: AbortSignal.abort(reason) });
    await expect(early).rejects.toMatchObject({ cause: reason });
    // cancel() gives no reason, and the error no cause.
    const plain = loop.sleep(60_000);
    plain.cancel();
    const error = await plain.then(undefined, (thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(CancelledError);
    expect(error).not.toHaveProperty('cause');
  });

  it('an abort cancels the task even when an earlier listener stops its propagation, as in Node', async () => {
    // A plain 'abort' listener was skipped: the task ran to its end.
    const loop = makeLoop();
    const controller = new AbortController();
    controller.signal.addEventListener('abort', (event) => event.stopImmediatePropagation());
    const future = loop.sleep(60_000, 'ran', { signal: controller.signal });
    controller.abort();
    expect(future.cancelled()).toBe(true);
    await expect(future).rejects.toBeInstanceOf(CancelledError);
  });

  it('a timeout counts from the start and fails the Future with TimeoutError', async () => {
    const loop = makeLoop();
    const future = loop.sleep(60_000, undefined, { timeout: 10 });
    await expect(future).rejects.toMatchObject({ name: 'TimeoutError', code: 'ERR_SIDELOOP_TIMEOUT' });
    expect(future.state).toBe('finished');
    expect(await loop.sleep(1, 'in time', { timeout: 60_000 })).toBe('in time');
    expect(loop.stats().running).toBe(0);
  });

  it("spin: timers and I/O on the loop do not wait for the spin's end", async () => {
    // The loop thread polled its inbox for the whole spin before it looked
    // at timers and I/O again: with a second of spin, a 1 ms sleep took
    // about a second (and any timeout as long).
    const loop = makeLoop({ spin: 1_000_000 });
    await loop.sleep(0);
    for (const submit of [() => loop.sleep(1), () => loop.exec('true')]) {
      const order: string[] = [];
      const quick = loop.sleep(0); // its answer ends the submitting thread's own spin at once
      const task = submit().then(() => order.push('task'));
      await quick;
      // Far shorter than the spin: before, the task ended after it.
      const mainTimer = new Promise<void>((resolve) => setTimeout(resolve, 500)).then(() => order.push('main-thread timer'));
      await Promise.all([task, mainTimer]);
      expect(order).toEqual(['task', 'main-thread timer']);
    }
  });

  it('spin: a task found while the loop thread spins times its sleep from then, not from before the spin', async () => {
    // The loop's clock was last read before the spin: a sleep submitted
    // 300 ms into it was due 300 ms early, and ended at once.
    const loop = makeLoop({ spin: 1_000_000 });
    await loop.sleep(0); // the loop thread now spins for up to a second
    await new Promise((resolve) => setTimeout(resolve, 300));
    const submitted = performance.now();
    await loop.sleep(200);
    // A lower bound only (a timer never fires early); 1 ms for the loop clock's rounding.
    expect(performance.now() - submitted).toBeGreaterThanOrEqual(199);
  });

  it('spin: a polling loop runs tasks, restarts and stops like any other', async () => {
    const name = uniqueName();
    const loop = makeLoop({ name, spin: 200 });
    expect(await loop.sleep(0, 'fast')).toBe('fast');
    expect(loop.sleep(1, 'blocking').result()).toBe('blocking');
    await loop.shutdown();
    if (backend === 'native') expect(countThreads(name)).toBe(0);
    expect(await loop.sleep(0, 'again')).toBe('again');
  });

  it('spin: shutdown() does not wait for the spin to run out', async () => {
    // The stop woke the thread through the async handle, which a spinning
    // thread does not look at: each shutdown() took the whole spin (1 s).
    // Five of them well within one spin leave a margin of a thousand times.
    if (backend === 'worker') return; // it ignores spin
    const spin = 1_000_000;
    const started = performance.now();
    for (let i = 0; i < 5; i++) {
      const loop = makeLoop({ spin });
      await loop.sleep(0);
      await loop.shutdown();
    }
    expect(performance.now() - started).toBeLessThan(spin / 1000);
  });

  it('spin: with spins short enough to end all the time, no round trip is lost', async () => {
    // Each side skips its wake-up while the other polls; a spin of 1 µs
    // keeps ending mid-handshake. A lost wake-up would hang here.
    const loop = makeLoop({ spin: 1 });
    let total = 0;
    for (let i = 0; i < 2000; i++) total += await loop.sleep(0, 1);
    expect(total).toBe(2000);
    await loop.shutdown();
  });

  it('names its thread after options.name, cut to 15 bytes', async () => {
    const long = `${uniqueName('x')}-a-rather-long-thread-name`;
    const loop = makeLoop({ name: long });
    await loop.sleep(0);
    if (backend === 'native') expect(countThreads(long.slice(0, 15))).toBe(1);
    expect(loop.name).toBe(long);
  });
});

describe('a loop that cannot start', () => {
  it.each(BACKENDS)('out of file descriptors: the task fails with the reason, and the next one starts the loop (%s backend)', async (backend) => {
    const script = `
      const fs = require('node:fs');
      const { EventLoop } = require(${JSON.stringify(DIST)});
      const loop = new EventLoop({ backend: '${backend}' }); // the addon is loaded by now
      ${TAKE_ALL_DESCRIPTORS}
      // A failed Future, never a throw: at once on the native backend; on the
      // worker backend, once the Worker's thread has failed to start.
      const refused = loop.sleep(1, 'first');
      refused.then(
        (value) => console.log('value:', value),
        (error) => console.log('failed:', error instanceof Error && typeof error.code === 'string'),
      ).then(async () => {
        for (const fd of held) fs.closeSync(fd);
        console.log('next:', await loop.sleep(1, 'second'));
        await loop.shutdown();
      });
    `;
    const result = await runWithFewDescriptors(script);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('descriptors: EMFILE\nfailed: true\nnext: second\n');
    expect(result.code).toBe(0);
  });

  it("a loop of its own that cannot start keeps nothing of the task: its failed Future holds only the error", async () => {
    const script = `
      const fs = require('node:fs');
      require('node:v8').setFlagsFromString('--expose-gc');
      const gc = require('node:vm').runInNewContext('gc');
      const { EventLoop } = require(${JSON.stringify(DIST)});
      const loop = new EventLoop({ backend: 'native' }); // the addon is loaded by now
      ${TAKE_ALL_DESCRIPTORS}
      let value = { big: 'input' };
      const kept = new WeakRef(value);
      const refused = loop.sleep(1, value);
      value = undefined;
      refused.then(undefined, async (error) => {
        for (const fd of held) fs.closeSync(fd);
        await new Promise((resolve) => setImmediate(resolve)); // a WeakRef's target lives until its job ends
        gc();
        console.log('failed:', typeof error.code, 'value kept:', kept.deref() !== undefined, refused.done());
      });
    `;
    const result = await runWithFewDescriptors(script);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('descriptors: EMFILE\nfailed: string value kept: false true\n');
    expect(result.code).toBe(0);
  });

  it('a group sends work past a loop that cannot start to one that runs', async () => {
    const script = `
      const fs = require('node:fs');
      const { EventLoopGroup } = require(${JSON.stringify(DIST)});
      const group = new EventLoopGroup({ backend: 'native', size: 2 });
      const busy = group.sleep(3600000); // one loop runs; the other has not started
      ${TAKE_ALL_DESCRIPTORS}
      const futures = [1, 2, 3].map((i) => group.sleep(1, i)); // the idle loop has fewer pending, and cannot start
      Promise.allSettled(futures).then(async (outcomes) => {
        for (const fd of held) fs.closeSync(fd);
        console.log(outcomes.map((outcome) => outcome.value ?? outcome.reason.code).join(' '));
        busy.cancel();
        await group.shutdown();
      });
    `;
    const result = await runWithFewDescriptors(script);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('descriptors: EMFILE\n1 2 3\n');
    expect(result.code).toBe(0);
  });

  it("a group's submission past a loop that cannot start reads its arguments once", async () => {
    const script = `
      const fs = require('node:fs');
      const { EventLoopGroup } = require(${JSON.stringify(DIST)});
      const group = new EventLoopGroup({ backend: 'native', size: 2 });
      const busy = group.sleep(3600000); // one loop runs; the other has not started
      ${TAKE_ALL_DESCRIPTORS}
      let reads = 0;
      const controller = new AbortController();
      const options = {
        get signal() {
          reads++;
          return controller.signal;
        },
      };
      const future = group.sleep(1000, 'value', options); // to the idle loop, which cannot start
      const taken = future.state; // the running loop's: the task is not lost, and its signal is followed there
      controller.abort();
      future.then(undefined, async (error) => {
        for (const fd of held) fs.closeSync(fd);
        console.log(taken, error.code, 'reads:', reads, 'pending:', group.pending);
        busy.cancel();
        await group.shutdown();
      });
    `;
    const result = await runWithFewDescriptors(script);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('descriptors: EMFILE\npending ERR_SIDELOOP_CANCELLED reads: 1 pending: 1\n');
    expect(result.code).toBe(0);
  });

  it('Workers denied by the permission model: worker-backend tasks fail with ERR_ACCESS_DENIED, start() throws it', async () => {
    const result = await runScript(
      `
      const { EventLoop } = require(SIDELOOP);
      const loop = new EventLoop({ backend: 'worker' });
      loop.sleep(1).then(
        () => console.log('ran'),
        (error) => {
          console.log('failed:', error.code, loop.state);
          try {
            loop.start();
          } catch (error) {
            console.log('start() threw:', error.code);
          }
        },
      );
    `,
      { nodeArgs: ['--experimental-permission', '--allow-fs-read=*', '--no-warnings'] },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('failed: ERR_ACCESS_DENIED idle\nstart() threw: ERR_ACCESS_DENIED\n');
    expect(result.code).toBe(0);
  });
});

/** Bytes that deflate cannot shrink (so every chunk costs the same), in shared memory. */
function pseudoRandomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(new SharedArrayBuffer(length));
  const words = new Uint32Array(bytes.buffer, 0, length >>> 2);
  let x = 2463534242;
  for (let i = 0; i < words.length; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return bytes;
}
