import { inspect } from 'node:util';

import { describe, expect, it, vi } from 'vitest';

import { EventLoop, EventLoopClosedError, EventLoopGroup, InvalidStateError, TimeoutError, asCompleted, getDefaultLoop, wait, type Future } from '../dist/index.js';
import { BACKENDS, runScript, testLoops } from './helpers.js';

describe.each(BACKENDS)('wait, asCompleted and groups (%s backend)', (backend) => {
  const { makeLoop, track } = testLoops(backend);

  it('wait() with ALL_COMPLETED (the default) resolves when all are done', async () => {
    const loop = makeLoop();
    const futures = [loop.sleep(5, 1), loop.sleep(1, 2), loop.sleep(0, 3)];
    const { done, notDone } = await wait(futures);
    expect(done).toEqual(new Set(futures));
    expect(notDone.size).toBe(0);
  });

  it('wait() with FIRST_COMPLETED resolves when one is done', async () => {
    const loop = makeLoop();
    const slow = loop.sleep(60_000);
    const fast = loop.sleep(0);
    const { done, notDone } = await wait([slow, fast], { returnWhen: 'FIRST_COMPLETED' });
    expect(done).toEqual(new Set([fast]));
    expect(notDone).toEqual(new Set([slow]));
  });

  it('wait() with FIRST_EXCEPTION stops at a failure, not at a cancellation', async () => {
    const loop = makeLoop();
    const slow = loop.sleep(60_000);
    const cancelled = loop.sleep(60_000);
    cancelled.cancel();
    const failing = loop.sleep(60_000, undefined, { timeout: 1 });
    const { done, notDone } = await wait([slow, cancelled, failing], { returnWhen: 'FIRST_EXCEPTION' });
    expect(done).toEqual(new Set([cancelled, failing]));
    expect(notDone).toEqual(new Set([slow]));
    // With nothing failing it waits for all.
    const all = await wait([loop.sleep(1), cancelled], { returnWhen: 'FIRST_EXCEPTION' });
    expect(all.notDone.size).toBe(0);
  });

  it('wait() with a timeout resolves with what is done so far', async () => {
    const loop = makeLoop();
    const slow = loop.sleep(60_000);
    const fast = loop.sleep(0);
    await fast;
    const { done, notDone } = await wait([slow, fast], { timeout: 5 });
    expect(done).toEqual(new Set([fast]));
    expect(notDone).toEqual(new Set([slow]));
  });

  it('wait() and asCompleted() reject bad arguments synchronously', () => {
    expect(() => wait(5 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => wait([Promise.resolve()] as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => wait([], { returnWhen: 'ANY' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => wait([], { timeout: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => asCompleted(null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // They pass instanceof but are no Futures: V8's TypeError without a code, reading a private field.
    const future = makeLoop().sleep(0);
    for (const impostor of [Object.create(future), new Proxy(future, {}), Object.create(Object.getPrototypeOf(future))]) {
      expect(() => wait([impostor])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
      expect(() => asCompleted([impostor])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
  });

  it('asCompleted() yields the done ones first, then in completion order', async () => {
    const loop = makeLoop();
    const done = loop.sleep(0, 'done');
    await done;
    const late = loop.sleep(30, 'late');
    const soon = loop.sleep(1, 'soon');
    const order: unknown[] = [];
    for await (const future of asCompleted([late, soon, done])) order.push(future.result());
    expect(order).toEqual(['done', 'soon', 'late']);
  });

  it('asCompleted() and wait() sort each Future once, even when asking about one settles another', async () => {
    // Asking a Future whether it is done settles what the loop has
    // finished: here `quick`, whose callback cancels `slow`. asCompleted()
    // looked at each Future twice, found `slow` not done, then done: it was
    // neither yielded nor waited for, and the iteration never ended.
    const loop = makeLoop();
    const setUp = async () => {
      const quick = loop.sleep(0);
      const slow = loop.sleep(60_000);
      quick.addDoneCallback(() => slow.cancel());
      await null; // handed to the thread
      // Tasks start in order: once `slow` runs, `quick` is over on the thread,
      // and nothing has settled it here. (Reading running work settles nothing.)
      for (let i = 0; i < 10_000_000 && !slow.running(); i++);
      return [slow, quick] as const;
    };
    const [slow, quick] = await setUp();
    const yielded: unknown[] = [];
    for await (const future of asCompleted([slow, quick], { timeout: 5000 })) yielded.push(future);
    expect(new Set(yielded)).toEqual(new Set([slow, quick]));
    const [slow2, quick2] = await setUp();
    const { done, notDone } = await wait([slow2, quick2], { returnWhen: 'FIRST_COMPLETED' });
    expect([done.size, notDone.size]).toEqual([2, 0]);
  });

  it('asCompleted() yields Futures, not their values, even failed ones', async () => {
    const loop = makeLoop();
    const failing = loop.sleep(60_000, undefined, { timeout: 0 });
    const seen: Future<unknown>[] = [];
    for await (const future of asCompleted([failing])) seen.push(future);
    expect(seen).toEqual([failing]);
    expect(seen[0]!.exception()).toBeInstanceOf(TimeoutError);
  });

  it('asCompleted() throws TimeoutError when time runs out', async () => {
    const loop = makeLoop();
    await loop.sleep(0); // started: the 20 ms are for asCompleted, not for starting a thread (a Worker takes longer)
    const iterator = asCompleted([loop.sleep(0, 1), loop.sleep(60_000)], { timeout: 20 });
    const first = await iterator.next();
    expect((first.value as Future<number>).result()).toBe(1);
    await expect(iterator.next()).rejects.toBeInstanceOf(TimeoutError);
  });

  it('asCompleted() serves next() calls made before the last one settled, each with its own Future', async () => {
    const loop = makeLoop();
    const [first, second] = [loop.sleep(1, 'a'), loop.sleep(5, 'b')];
    const iterator = asCompleted([first, second]);
    const results = await Promise.all([iterator.next(), iterator.next(), iterator.next()]);
    expect(results.map((r) => (r.done ? 'end' : (r.value as Future<string>).result())).sort()).toEqual(['a', 'b', 'end']);
  });

  it('a wait that ended lets go of the Futures it waited on, even while one stays pending', async () => {
    // wait() and asCompleted() hang a done callback on each Future; one
    // left on a long-pending Future kept the whole wait alive (its sets,
    // the other Futures, their results): 40,000 waits held 37 MB.
    const { code, stdout, stderr } = await runScript(
      `
      const { EventLoop, wait, asCompleted } = require(SIDELOOP);
      const loop = new EventLoop({ backend: '${backend}' });
      const pending = loop.sleep(600000);
      const gone = {};
      // Each in a function of its own: a frame still running may hold on to
      // the last value it iterated.
      async function ended(name, run) {
        const future = loop.sleep(0);
        gone[name] = new WeakRef(future);
        await run(future);
      }
      (async () => {
        await ended('FIRST_COMPLETED', (future) => wait([pending, future], { returnWhen: 'FIRST_COMPLETED' }));
        await ended('timeout', (future) => wait([pending, future], { timeout: 20 }));
        await ended('return()', async (future) => {
          for await (const first of asCompleted([pending, future])) break;
        });
        await ended('asCompleted timeout', async (future) => {
          try {
            for await (const one of asCompleted([pending, future], { timeout: 20 }));
          } catch (error) {
            if (error.code !== 'ERR_SIDELOOP_TIMEOUT') throw error;
          }
        });
        await new Promise((resolve) => setImmediate(resolve));
        globalThis.gc();
        for (const [name, ref] of Object.entries(gone)) console.log(name, ref.deref() === undefined ? 'collected' : 'kept');
        pending.cancel();
        await loop.shutdown();
      })();
      `,
      { nodeArgs: ['--expose-gc'] },
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toEqual([
      'FIRST_COMPLETED collected',
      'timeout collected',
      'return() collected',
      'asCompleted timeout collected',
    ]);
  });

  it('timeouts past what a Node timer takes (2^31 ms) wait that long, not 1 ms', async () => {
    // Timers are faked: Node (and the fake) fire a longer one after 1 ms.
    const loop = makeLoop();
    const never = loop.sleep(600_000);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const long = 2 ** 31 + 1000;
      let waited: { notDone: Set<Future<unknown>> } | undefined;
      const waiting = wait([never], { timeout: long }).then((result) => (waited = result));
      let iterated: unknown;
      const iterating = asCompleted([never], { timeout: long })
        .next()
        .catch((error: unknown) => (iterated = error));
      await vi.advanceTimersByTimeAsync(2 ** 31);
      expect([waited, iterated]).toEqual([undefined, undefined]);
      await vi.advanceTimersByTimeAsync(1000);
      await Promise.all([waiting, iterating]);
      expect(waited!.notDone).toEqual(new Set([never]));
      expect(iterated).toBeInstanceOf(TimeoutError);
    } finally {
      vi.useRealTimers();
      never.cancel();
    }
  });

  it('EventLoopGroup.shutdown() on an idle or stopped group resolves at once and leaves it open, as a loop does', async () => {
    // It went 'stopping' for a turn, and refused the next submission.
    const group = new EventLoopGroup({ backend, size: 2 });
    track(group);
    const idle = group.shutdown();
    expect(group.state).toBe('idle');
    expect(await group.sleep(0, 'after idle')).toBe('after idle');
    await idle;
    await group.shutdown();
    expect(group.state).toBe('stopped');
    const stopped = group.shutdown();
    expect(group.state).toBe('stopped');
    expect(await group.sleep(0, 'after stopped')).toBe('after stopped');
    await stopped;
    expect(() => group.shutdown({ cancelPending: 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('EventLoopGroup.shutdown() reads its options once, not once per loop', async () => {
    // Each loop read them again: a getter that threw on its second read
    // left the first loop's Futures cancelled and their callbacks never run.
    const group = new EventLoopGroup({ backend, size: 2 });
    track(group);
    const futures = [group.sleep(60_000), group.sleep(60_000)]; // one on each loop
    let called = 0;
    for (const future of futures) future.addDoneCallback(() => called++);
    let reads = 0;
    const options = {
      get cancelPending() {
        reads++;
        return true;
      },
    };
    await group.shutdown(options);
    expect(reads).toBe(1);
    expect(called).toBe(2);
    expect(futures.every((future) => future.cancelled())).toBe(true);
    await group.shutdown(options); // stopped: read once too
    expect(reads).toBe(2);
  });

  it('EventLoopGroup spreads work to the least busy loop and has the same lifecycle', async () => {
    const group = new EventLoopGroup({ backend, size: 3, name: 'grouped' });
    track(group);
    expect(group.size).toBe(3);
    expect(group.state).toBe('idle');
    expect(group.backend).toBe(backend);
    expect(group.name).toBe('grouped');
    const futures = Array.from({ length: 6 }, (_, i) => group.sleep(60_000, i));
    expect(group.pending).toBe(6);
    // One sleep(0) per loop (each goes to the least busy one): when all three are
    // done, every loop has started the tasks it got before. One alone would vouch
    // for its own loop only, and a Worker takes tens of ms to start.
    await Promise.all([group.sleep(0), group.sleep(0), group.sleep(0)]);
    expect(group.stats()).toMatchObject({ submitted: 9, completed: 3, pending: 6, running: 6 });
    const stopping = group.shutdown({ cancelPending: true });
    expect(group.state).toBe('stopping');
    await stopping;
    expect(group.state).toBe('stopped');
    expect(futures.every((f) => f.cancelled())).toBe(true);
    expect(await group.sleep(0, 'restarted')).toBe('restarted');
    expect(group.state).toBe('running');
    await group[Symbol.asyncDispose]();
    expect(group.state).toBe('stopped');
  });

  it('EventLoopGroup stays stopping until every loop has stopped, and refuses work meanwhile', async () => {
    // A loop that was idle, or stopped before the others, took new work
    // and started, so the group was running again after its shutdown()
    // resolved.
    const group = new EventLoopGroup({ backend, size: 2 });
    track(group);
    const slow = group.sleep(50, 'slow'); // one loop busy, the other idle
    const stopping = group.shutdown();
    expect(group.shutdown()).toBe(stopping); // the same promise
    expect(group.state).toBe('stopping');
    const refused = [group.sleep(0), group.sleep(0)]; // the idle loop would take them and start
    expect(() => group.start()).toThrow(InvalidStateError);
    await stopping;
    expect(group.state).toBe('stopped');
    expect(slow.result(0)).toBe('slow');
    for (const future of refused) expect(() => future.result(0)).toThrow(EventLoopClosedError);
    expect(group.stats()).toMatchObject({ submitted: 1, completed: 1, pending: 0 });

    // With cancelPending the done callbacks run inside a loop's shutdown():
    // a retry there went to the other loop, stopped already, and started it.
    const long = group.sleep(60_000);
    let retry: ReturnType<typeof group.sleep> | undefined;
    let again: Promise<void> | undefined;
    let started: unknown;
    long.addDoneCallback(() => {
      retry = group.sleep(0, 'retried');
      again = group.shutdown(); // from inside the first: the same promise
      try {
        group.start();
      } catch (error) {
        started = error;
      }
    });
    const cancelling = group.shutdown({ cancelPending: true });
    expect(again).toBe(cancelling);
    expect(started).toBeInstanceOf(InvalidStateError);
    await cancelling;
    expect(group.state).toBe('stopped');
    expect(() => retry!.result(0)).toThrow(EventLoopClosedError);
  });

  it('EventLoopGroup: a call with bad arguments throws and starts no loop, as on a loop', async () => {
    // The group started the least busy loop (a thread, or a whole Worker)
    // before that loop checked the arguments.
    const group = new EventLoopGroup({ backend, size: 2 });
    track(group);
    expect(() => group.sleep(-1)).toThrow(RangeError);
    expect(() => group.hash('nope' as never, 'x')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => group.readFile(42 as never)).toThrow(TypeError);
    expect(group.state).toBe('idle');
    expect(inspect(group)).toBe(`EventLoopGroup { name: 'sideloop', backend: '${backend}', size: 2, state: 'idle', pending: 0 }`);
    expect(await group.sleep(0, 'then')).toBe('then');
    await group.shutdown();
    expect(() => group.gzip('x', { level: 42 })).toThrow(RangeError);
    expect(group.state).toBe('stopped');
  });

  it("EventLoopGroup.shutdown({ cancelPending: true }) cancels every member's Futures before any callback runs", async () => {
    // Members were shut down one by one, each running its callbacks before
    // the next was touched: a callback that waited on a sibling on another
    // member waited for that sibling's work (its timeout here).
    const group = new EventLoopGroup({ backend, size: 2 });
    track(group);
    const first = group.sleep(60_000, 'first');
    const sibling = group.sleep(60_000, 'sibling'); // the other member: it has fewer pending
    let seen: { state: string; waited: unknown; pending: number } | undefined;
    first.addDoneCallback(() => {
      let waited: unknown;
      try {
        waited = sibling.result(10_000);
      } catch (error) {
        waited = error;
      }
      seen = { state: sibling.state, waited, pending: group.pending };
    });
    await group.shutdown({ cancelPending: true });
    expect(seen).toEqual({ state: 'cancelled', waited: expect.objectContaining({ code: 'ERR_SIDELOOP_CANCELLED' }), pending: 0 });
  });
});

/**
 * Script source: the addon's loop replaced by a stand-in that finishes the
 * tasks given to it only when told (`threads[i].finishAll()`), and never
 * wakes the main thread: what the loop has finished waits until asked for.
 */
const QUIET_LOOPS = `
  const path = require('node:path');
  const load = require(path.join(path.dirname(SIDELOOP), 'backends', 'load.js'));
  const threads = [];
  class QuietLoop {
    constructor(name, keepAlive, onWake, ids, statuses) { threads.push(this); this.ids = ids; this.statuses = statuses; this.phases = []; this.finished = []; }
    submit(batch, count) { for (let i = 0; i < count; i++) this.phases[batch[i * 4]] = 1; return false; }
    finishAll() {
      this.phases.forEach((phase, slot) => { if (phase === 1) { this.phases[slot] = 2; this.finished.push(slot); } });
    }
    phase(slot) { return this.phases[slot]; }
    drain(max = this.ids.length) {
      const n = Math.min(max, this.finished.length);
      for (let i = 0; i < n; i++) { this.ids[i] = this.finished[i]; this.statuses[i] = 0; }
      this.finished.splice(0, n);
      return n;
    }
    cancel() {}
    wait() { return false; }
    setBusy() {}
    running() { return 0; }
    stop() {}
  }
  load.loadNativeBinding = () => ({ binding: { abiVersion: 1, nativeApi: null, NativeLoop: QuietLoop } });
`;

describe('with finished work the main thread has not settled yet (a stand-in loop)', () => {
  it('wait() and asCompleted() count it as done at their timeout', async () => {
    // The timer can fire before the completions of the same turn are
    // settled (timers run before I/O; a drain yields after its budget):
    // wait() put such a Future in notDone, and asCompleted() threw
    // TimeoutError and never yielded it, though done() said it was done.
    // With the stand-in, the timer always comes first.
    const result = await runScript(`
      ${QUIET_LOOPS}
      const { EventLoop, wait, asCompleted } = require(SIDELOOP);
      (async () => {
        const loop = new EventLoop({ backend: 'native' });
        const waited = loop.sleep(60000, 'waited');
        await null; // handed over
        const waiting = wait([waited], { timeout: 1 });
        threads[0].finishAll();
        const { done, notDone } = await waiting;
        console.log('wait:', done.has(waited), notDone.size);

        const iterated = loop.sleep(60000, 'iterated');
        await null;
        const iterator = asCompleted([iterated], { timeout: 1 });
        threads[0].finishAll(); // before next(), which may find the time up already
        const next = iterator.next();
        const { value } = await next.catch((error) => ({ value: error.code }));
        console.log('asCompleted:', value === iterated ? 'yielded it' : value);
        await loop.shutdown();
      })();
    `);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('wait: true 0\nasCompleted: yielded it\n');
  });

  it("EventLoopGroup.shutdown({ cancelPending: true }): its callbacks run only once every loop's Futures are done", async () => {
    // Each loop settled what its thread had finished as its cancel began,
    // callbacks and all, before the other loops were cancelled: a callback
    // that waited on a sibling on another loop found it pending.
    const result = await runScript(`
      ${QUIET_LOOPS}
      const { EventLoopGroup } = require(SIDELOOP);
      (async () => {
        const group = new EventLoopGroup({ backend: 'native', size: 2 });
        const finished = group.sleep(60000, 'finished'); // on the first loop
        const sibling = group.sleep(60000, 'sibling'); // on the second
        let seen;
        finished.addDoneCallback(() => {
          try { sibling.result(0); } catch (error) { seen = error.code; }
        });
        await null; // handed over
        threads[0].finishAll();
        await group.shutdown({ cancelPending: true });
        console.log(finished.result(), seen);
      })();
    `);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('finished ERR_SIDELOOP_CANCELLED\n');
  });
});

describe('getDefaultLoop', () => {
  it('returns one loop per JS thread', async () => {
    const loop = getDefaultLoop();
    expect(getDefaultLoop()).toBe(loop);
    expect(await loop.sleep(0, 'default')).toBe('default');
    const result = await runScript(`
      const { Worker } = require('node:worker_threads');
      const { getDefaultLoop } = require(SIDELOOP);
      const main = getDefaultLoop();
      const w = new Worker(\`
        const { parentPort } = require('node:worker_threads');
        const { getDefaultLoop } = require(\${JSON.stringify(SIDELOOP)});
        parentPort.postMessage(String(getDefaultLoop() === getDefaultLoop()) + ' ' + getDefaultLoop().sleep(1, 'w').result());
      \`, { eval: true });
      w.on('message', (m) => console.log(m, main === getDefaultLoop()));
    `);
    expect(result.stdout).toBe('true w true\n');
    expect(result.code).toBe(0);
  });
});
