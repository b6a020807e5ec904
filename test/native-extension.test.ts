/**
 * The native extension API (include/sideloop.h), exercised from the outside:
 * examples/native-extension is built here, as a separate addon, and loaded
 * next to sideloop. Its tasks must behave as built-in tasks do.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { CancelledError, EventLoop, EventLoopClosedError, QueueFullError, TimeoutError, type Future } from '../src/index.js';
import { DIST, PACKAGE_DIR, runProgram, runScript } from './helpers.js';

const EXAMPLE = path.join(PACKAGE_DIR, 'examples', 'native-extension');

interface Extension {
  crc32(loop: unknown, data: unknown, options?: Record<string, unknown>): Future<number>;
  liveTasks(): number;
}
let ext: Extension;

// The CRC-32 of zlib and gzip, bit by bit: slow, and obviously right.
function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Resolves once the extension's free has run for every task (the hang detector is the test timeout). */
async function allFreed(): Promise<void> {
  while (ext.liveTasks() !== 0) await new Promise((resolve) => setImmediate(resolve));
}

// Long enough that it cannot finish before a cancel or a timeout: one byte
// per turn of the loop over 64 MiB is tens of millions of turns.
const endless = () => [Buffer.alloc(64 * 1024 * 1024, 1), { chunkSize: 1 }] as const;

beforeAll(() => {
  const nodeGyp = path.join(PACKAGE_DIR, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  execFileSync(process.execPath, [nodeGyp, 'rebuild'], { cwd: EXAMPLE, stdio: 'pipe' });
  ext = require(EXAMPLE) as Extension;
});

describe('a native extension (examples/native-extension)', () => {
  it('resolves with the value its to_js makes, for any bytes and chunking', async () => {
    await using loop = new EventLoop({ backend: 'native' });
    const random = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
    const cases: [Uint8Array | DataView, Uint8Array, Record<string, unknown>?][] = [
      [Buffer.alloc(0), Buffer.alloc(0)],
      [Buffer.from('hello world'), Buffer.from('hello world')],
      [random, random],
      [random, random, { chunkSize: 4096 }],
      [random, random, { chunkSize: 1 << 20 }],
      [new Uint16Array(random.buffer, random.byteOffset, 1000), random.subarray(0, 2000)],
      [new DataView(random.buffer, random.byteOffset + 5, 77), random.subarray(5, 82)],
    ];
    const sums = await Promise.all(cases.map(([data, , options]) => ext.crc32(loop, data, options)));
    expect(sums).toEqual(cases.map(([, bytes]) => referenceCrc32(bytes)));
    expect(ext.crc32(loop, Buffer.from('sync')).result()).toBe(referenceCrc32(Buffer.from('sync')));
    expect(loop.stats()).toMatchObject({ submitted: cases.length + 1, completed: cases.length + 1, pending: 0 });
    await allFreed();
  });

  it('fails the Future with the code and message the task gave', async () => {
    await using loop = new EventLoop({ backend: 'native' });
    const data = Buffer.from('checked');
    const error = await ext.crc32(loop, data, { expected: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'ERR_CHECKSUM_MISMATCH', message: expect.stringContaining('expected 00000001') });
    expect(await ext.crc32(loop, data, { expected: referenceCrc32(data) })).toBe(referenceCrc32(data));
    expect(loop.stats()).toMatchObject({ completed: 1, failed: 1 });
    await allFreed();
  });

  it('cancel() cancels the Future at once and the work stops', async () => {
    await using loop = new EventLoop({ backend: 'native' });
    const [data, options] = endless();
    const future = ext.crc32(loop, data, options);
    expect(future.cancel()).toBe(true);
    expect(future.state).toBe('cancelled');
    await expect(future).rejects.toBeInstanceOf(CancelledError);
    // The task comes back (and is freed) only once its work has ended.
    await allFreed();
    expect(loop.stats()).toMatchObject({ cancelled: 1, pending: 0, running: 0 });
  });

  it('an aborted signal cancels it, before and after submission', async () => {
    await using loop = new EventLoop({ backend: 'native' });
    const [data, options] = endless();
    const before = ext.crc32(loop, data, { ...options, signal: AbortSignal.abort() });
    const controller = new AbortController();
    const after = ext.crc32(loop, data, { ...options, signal: controller.signal });
    controller.abort();
    expect([before.state, after.state]).toEqual(['cancelled', 'cancelled']);
    await allFreed();
  });

  it('a timeout aborts the work and fails the Future with TimeoutError', async () => {
    await using loop = new EventLoop({ backend: 'native' });
    const [data, options] = endless();
    const error = await ext.crc32(loop, data, { ...options, timeout: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Delivered only after the task ended: the 64 Mi turns did not run.
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'ERR_SIDELOOP_TIMEOUT', message: 'a native extension task timed out after 1 ms' });
    await allFreed();
  });

  it('shutdown({ cancelPending }) with a task in flight cancels it and frees it', async () => {
    const loop = new EventLoop({ backend: 'native' });
    const [data, options] = endless();
    const future = ext.crc32(loop, data, options);
    await loop.shutdown({ cancelPending: true });
    expect(future.state).toBe('cancelled');
    expect(loop.state).toBe('stopped');
    expect(ext.liveTasks()).toBe(0);
  });

  it('a submission that fails at once (closed loop, full queue) frees its task at once', async () => {
    const loop = new EventLoop({ backend: 'native', maxPending: 1 });
    const [data, options] = endless();
    const first = ext.crc32(loop, data, options);
    const full = ext.crc32(loop, data, options);
    expect(full.exception()).toBeInstanceOf(QueueFullError);
    expect(ext.liveTasks()).toBe(1);
    first.cancel();
    const stopping = loop.shutdown();
    const closed = ext.crc32(loop, data, options);
    expect(closed.exception()).toBeInstanceOf(EventLoopClosedError);
    await stopping;
    expect(ext.liveTasks()).toBe(0);
    expect(loop.stats()).toMatchObject({ submitted: 1, cancelled: 1 });
  });

  it('invalid arguments throw synchronously and leak nothing', async () => {
    await using loop = new EventLoop({ backend: 'native' });
    const data = Buffer.from('x');
    expect(() => ext.crc32({}, data)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    // A Proxy of a loop, or an object made from one (V8's error for the private field had no code).
    for (const impostor of [new Proxy(loop, {}), Object.create(loop)]) {
      expect(() => ext.crc32(impostor, data)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    }
    expect(() => ext.crc32(loop, 'not bytes')).toThrow(expect.objectContaining({ name: 'TypeError' }));
    // Checked by sideloop, after the extension handed its task over.
    expect(() => ext.crc32(loop, data, { timeout: -1 })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
    expect(() => ext.crc32(loop, data, { signal: 'no' })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    expect(ext.liveTasks()).toBe(0);
    expect(loop.stats().submitted).toBe(0);
  });

  it('reads the bytes the engine reports, not a byteLength a subclass overrides', async () => {
    await using loop = new EventLoop({ backend: 'native' });
    class Lying extends Uint8Array {
      override get byteLength(): number {
        return 2 ** 30; // read that far, the checksum would run off the buffer
      }
    }
    const bytes = Buffer.from('hello');
    expect(await ext.crc32(loop, new Lying(bytes))).toBe(referenceCrc32(bytes));
    expect(ext.liveTasks()).toBe(0);
  });

  it('a loop impostor whose Future throws from _settled() makes the call throw that error, and frees the task', () => {
    // The binding gets an empty value back from the throwing call; reading
    // it as a boolean used to be a fatal error (SIGABRT).
    const loop = new EventLoop({ backend: 'native' });
    const boom = new Error('boom');
    const impostor = {
      [Symbol.for('sideloop.nativeApi')]: (loop as unknown as Record<symbol, unknown>)[Symbol.for('sideloop.nativeApi')],
      [Symbol.for('sideloop.submitNative')]: () => ({ _settled: () => { throw boom; } }),
    };
    expect(() => ext.crc32(impostor, Buffer.from('x'))).toThrow(boom);
    expect(ext.liveTasks()).toBe(0);
  });

  it('a worker-backend loop refuses it with ERR_SIDELOOP_NATIVE_ONLY', () => {
    const loop = new EventLoop({ backend: 'worker' });
    expect(() => ext.crc32(loop, Buffer.from('x'))).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_SIDELOOP_NATIVE_ONLY', message: expect.stringContaining("backend is 'worker'") }),
    );
    expect(loop.state).toBe('idle');
    expect(ext.liveTasks()).toBe(0);
  });
});

describe('JS that an extension\'s to_js calls (test/native/reentrant-extension)', () => {
  const FIXTURE = path.join(PACKAGE_DIR, 'test', 'native', 'reentrant-extension');
  const addon = path.join(FIXTURE, 'build', 'Release', 'reentrant.node');
  let reentrant: {
    callBack<T>(loop: unknown, fn: () => T): Future<T>;
    freeCallsBack(loop: unknown, fn: () => unknown): Future<undefined>;
    foreignEnvCalls(): number;
    submitWithoutFuture(loop: unknown): [status: number, freedJobs: number];
  };

  beforeAll(() => {
    const nodeGyp = path.join(PACKAGE_DIR, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    execFileSync(process.execPath, [nodeGyp, 'rebuild'], { cwd: FIXTURE, stdio: 'pipe' });
    reentrant = require(addon);
  });

  it('resolves the Future with what that JS returns, and fails it with what it throws', async () => {
    await using loop = new EventLoop({ backend: 'native' });
    const boom = new Error('boom');
    expect(await reentrant.callBack(loop, () => 'from JS')).toBe('from JS');
    await expect(reentrant.callBack(loop, () => { throw boom; })).rejects.toBe(boom);
    expect(loop.stats()).toMatchObject({ completed: 1, failed: 1, pending: 0 });
  });

  it("to_js and free get the extension's own env, with its instance data", async () => {
    // They got sideloop's: an extension reading its state from its instance
    // data read sideloop's instead.
    await using loop = new EventLoop({ backend: 'native' });
    const before = reentrant.foreignEnvCalls();
    expect(await reentrant.callBack(loop, () => 1)).toBe(1);
    await expect(reentrant.callBack(loop, () => { throw new Error('thrown in to_js'); })).rejects.toThrow('thrown in to_js');
    expect(await reentrant.freeCallsBack(loop, () => 2)).toBeUndefined();
    expect(reentrant.foreignEnvCalls() - before).toBe(0);
  });

  it('a submit without a place for the Future returns napi_invalid_arg and frees the task data at once', async () => {
    // It returned without taking the data, which the docs promise only for an unusable vtable.
    await using loop = new EventLoop({ backend: 'native' });
    const [status, freedBy] = reentrant.submitWithoutFuture(loop);
    const [, freedAfter] = reentrant.submitWithoutFuture(loop);
    expect(status).toBe(1); // napi_invalid_arg
    expect(freedAfter - freedBy).toBe(1);
    expect(loop.stats().submitted).toBe(0);
  });

  it.each(['a natural exit', 'a worker terminated'])(
    "a task in flight at %s is freed in the extension's env, while that env lives",
    async (how) => {
      // Freed when sideloop's environment went away, after the extension's:
      // free got sideloop's env, and given the extension's, it would have
      // had one already deleted. The loop is made before the extension is
      // loaded, so its cleanup comes after the extension's env is gone
      // unless sideloop moves it. And free makes a value: Node runs cleanup
      // hooks without a handle scope, which made that fatal (SIGABRT).
      const body = `
        const { EventLoop } = require(SIDELOOP);
        const loop = new EventLoop({ backend: 'native', keepAlive: false });
        loop.sleep(0).result();
        const reentrant = require(${JSON.stringify(addon)});
        reentrant.hold(loop);
        loop.sleep(0).result(); // the held task has started
      `;
      const script =
        how === 'a natural exit'
          ? body
          : `
        const { Worker } = require('node:worker_threads');
        const worker = new Worker(${JSON.stringify(body.replace('require(SIDELOOP)', `require(${JSON.stringify(DIST)})`) + "require('node:worker_threads').parentPort.postMessage('held');")}, { eval: true });
        worker.once('message', () => worker.terminate().then(() => console.log('terminated')));
      `;
      const result = await runScript(script);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const freed = 'held task freed in its own env, a value made\n';
      expect(result.stdout).toBe(how === 'a natural exit' ? freed : `${freed}terminated\n`);
    },
  );

  it("tasks left undrained after a stop, when the thread's JS ends, are freed in the extension's env", async () => {
    // The stop removed the environment cleanup hook, so tasks its drain had
    // not reached (cut short by a process.exit() in a worker) were freed by
    // the loop's finalizer, after the extension's environment was deleted:
    // free got a deleted env (a use after free valgrind reports). A free
    // that calls process.exit() cuts the drain short here, in its first
    // batch of 1,024.
    const held = 1100;
    const body = `
      const { EventLoop } = require(${JSON.stringify(DIST)});
      const loop = new EventLoop({ backend: 'native' });
      loop.sleep(0).result(); // the loop before the extension: its hook would run after the extension's
      const reentrant = require(${JSON.stringify(addon)});
      reentrant.freeCallsBack(loop, () => process.exit(0));
      for (let i = 0; i < ${held}; i++) reentrant.hold(loop);
      loop.shutdown({ cancelPending: true });
    `;
    const script = `
      const { Worker } = require('node:worker_threads');
      new Worker(${JSON.stringify(body)}, { eval: true }).on('exit', (code) => console.log('worker exit', code));
    `;
    // Into a file: the fixture's printf to a pipe Node made non-blocking
    // loses lines whenever the pipe is full (EAGAIN), as it may be under load.
    const output = path.join(mkdtempSync(path.join(os.tmpdir(), 'sideloop-')), 'stdout');
    const result = await runProgram('sh', ['-c', '"$0" -e "$1" > "$2"', process.execPath, script, output]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const lines = readFileSync(output, 'utf8').trim().split('\n');
    rmSync(path.dirname(output), { recursive: true });
    expect(lines.pop()).toBe('worker exit 0');
    expect(lines.length).toBe(held);
    expect(new Set(lines)).toEqual(new Set(['held task freed in its own env, a value made']));
  });

  it('a vtable size that ends inside a callback leaves that callback out, not half of it', async () => {
    // Copied byte for byte up to the size, half a to_js pointer was kept,
    // its other half zero: a call to nowhere, and the process died.
    const pointer = 8; // the fixture is built for x64, as this suite runs
    const toJsAt = 8 + 2 * pointer; // size, padded to a pointer; start; cancel
    const result = await runScript(`
      const { EventLoop } = require(SIDELOOP);
      const reentrant = require(${JSON.stringify(addon)});
      const loop = new EventLoop({ backend: 'native' });
      const sizes = [${toJsAt}, ${toJsAt + 4}, ${toJsAt + pointer}, ${toJsAt + 2 * pointer}, 1000];
      Promise.all(sizes.map((size) => reentrant.submitWithSize(loop, size))).then((values) => {
        console.log(values.join(' '));
        return loop.shutdown();
      });
    `);
    // undefined (joined as '') while the size does not cover to_js whole
    expect(result).toMatchObject({ code: 0, signal: null, stderr: '', stdout: '  42 42 42\n' });
  });

  it.each(['a natural exit', 'process.exit()'])(
    'at %s, a cancel that also ends a sibling task does not stop the other tasks from being aborted',
    async (how) => {
      // The stop walked the running tasks reading each one's successor
      // before aborting it: a pair's cancel ended both, the walk stopped at
      // the second, and the sleep after it was never aborted. Its timer
      // kept the loop thread running, and the exit waited for it for ever.
      const result = await runScript(
        `
        const { EventLoop } = require(SIDELOOP);
        const reentrant = require(${JSON.stringify(addon)});
        const loop = new EventLoop({ backend: 'native', keepAlive: false });
        loop.sleep(1e9); // started first: last in the list of running tasks
        reentrant.pair(loop); // the newer of the pair is aborted first
        loop.sleep(0).result(); // all three have started
        console.log('running', loop.stats().pending);
        ${how === 'process.exit()' ? 'process.exit(3);' : ''}
      `,
        { hangAfterMs: 20_000 },
      );
      expect(result).toMatchObject({ hung: false, stderr: '', stdout: 'running 3\n', code: how === 'process.exit()' ? 3 : 0 });
    },
  );

  it('a wait on the same loop from inside to_js ends with TimeoutError, and both Futures settle once', async () => {
    // to_js runs inside the loop's drain; the wait needs a drain to settle
    // the sleep, and the one that nests takes nothing. Were it to take the
    // sleep's completion, it would overwrite the running drain's batch: the
    // outer Future would never settle and a released slot be read.
    await using loop = new EventLoop({ backend: 'native' });
    let inner: Future<string> | undefined;
    const outer = reentrant.callBack(loop, () => {
      inner = loop.sleep(0, 'inner');
      try {
        return inner.result(60_000);
      } catch (error) {
        return error;
      }
    });
    const caught = await outer;
    expect(caught).toBeInstanceOf(TimeoutError);
    expect(await inner).toBe('inner');
    expect(loop.stats()).toMatchObject({ submitted: 2, completed: 2, pending: 0 });
  });

  it('work that to_js or free submits and hands over at once comes back, also from a polling (spin) loop', async () => {
    // Reading a new Future's state twice hands its batch over at once; with
    // spin the loop thread answers while the submitter waits, and sends no
    // wake-up. Inside the addon's drain the drain that should take those
    // answers found nothing (it was still draining): they stayed on the
    // thread, and the Futures pending, for ever.
    const result = await runScript(`
      const { EventLoop } = require(SIDELOOP);
      const reentrant = require(${JSON.stringify(addon)});
      const loop = new EventLoop({ backend: 'native', spin: 2000 });
      const inner = [];
      // Ahead of it, so that the loop thread is busy when the outer task comes.
      const ahead = [1, 2, 3].map(() => loop.hash('sha256', Buffer.alloc(1024 * 1024)));
      const outer = reentrant.freeCallsBack(loop, () => {
        for (let i = 0; i < 65; i++) inner.push(loop.sleep(1, i));
        inner[0].done();
        inner[0].done(); // polled: handed over now
      });
      (async () => {
        await outer;
        await Promise.all(ahead);
        const values = await Promise.all(inner);
        console.log(values.reduce((a, b) => a + b));
        await loop.shutdown();
      })();
    `, { hangAfterMs: 20_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('2080\n');
    expect(result.code).toBe(0);
  });

  it("what a free() throws is an uncaught exception, and the rest of the batch settles as it should", async () => {
    // The exception was left pending inside the drain: the next task of the
    // batch failed with it, or, after the batch's last task, the drain threw
    // and every Future of the batch stayed pending for ever.
    const result = await runScript(`
      const { EventLoop } = require(SIDELOOP);
      const reentrant = require(${JSON.stringify(addon)});
      const caught = [];
      let futures;
      // Raised after the batch has settled, not in the middle of it: a
      // handler finds the batch's other tasks done.
      process.on('uncaughtException', (error) => caught.push((error.message ?? error) + ': ' + futures[1].state));
      const loop = new EventLoop({ backend: 'native' });
      (async () => {
        const thrower = () => { throw new Error('thrown by free'); };
        // Same batch: the throwing free comes before a hash, then last.
        // Anything may be thrown, not only objects.
        futures = [reentrant.freeCallsBack(loop, thrower), loop.hash('sha256', 'abc'), reentrant.freeCallsBack(loop, () => { throw 'a string'; })];
        const outcomes = await Promise.allSettled(futures);
        console.log(outcomes.map((o) => o.status === 'fulfilled' ? String(o.value && o.value.toString('hex').slice(0, 8)) : o.reason.message).join(' '));
        console.log(caught.join(' | '));
        await loop.shutdown();
        console.log(loop.state, loop.stats().pending);
      })();
    `);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('undefined ba7816bf undefined\nthrown by free: finished | a string: finished\nstopped 0\n');
    expect(result.code).toBe(0);
  });

  describe('the raw binding, with JS that a drain runs (an extension\'s free)', () => {
    /** Script source: the raw binding as `binding`, and `capture(submit)`, which runs `submit(fake)` and returns the request it made. */
    const prelude = `
      const binding = require(${JSON.stringify(require.resolve('node-gyp-build'))})(${JSON.stringify(PACKAGE_DIR)});
      const reentrant = require(${JSON.stringify(addon)});
      const fake = {
        [Symbol.for('sideloop.nativeApi')]: binding.nativeApi,
        [Symbol.for('sideloop.submitNative')](request) { fake.request = request; return { _settled: () => false }; },
      };
      const capture = (submit) => (submit(fake), fake.request);
      const ids = new Uint32Array(16), statuses = new Uint8Array(16), payloads = [];
      const loop = new binding.NativeLoop('raw', false, () => {}, ids, statuses, payloads, 0);
    `;

    it('a stop() there leaves the tables to the tasks it cancelled', async () => {
      // The drain took fewer tasks than it could and, the loop stopped,
      // gave its tables back; the stop's cancelled task came after the take,
      // and the next drain wrote to the tables given back (SIGSEGV).
      const result = await runScript(`${prelude}
        const stopping = capture((fake) => reentrant.freeCallsBack(fake, () => loop.stop())); // ends at once
        const held = capture((fake) => reentrant.hold(fake)); // ends when cancelled: by that stop
        loop.submit(new Float64Array([0, 9, -1, 0, 5, 9, -1, 0]), 2, [stopping, held]);
        loop.wait(0, -1);
        console.log(loop.drain(), ids[0]);
        console.log(loop.drain(), ids[0], statuses[0]);
      `);
      expect(result).toMatchObject({ code: 0, signal: null, stderr: '', stdout: '1 0\nheld task freed in its own env, a value made\n1 5 2\n' });
    });

    it("a task submitted there into the slot just freed keeps its input", async () => {
      // The slot was free before the free() ran, and its input's reference
      // was let go after: the new task's input, collected, was read after
      // its free (SIGSEGV).
      const result = await runScript(
        `${prelude}
        const crypto = require('node:crypto');
        let digest;
        const resubmitting = capture((fake) => reentrant.freeCallsBack(fake, () => {
          const input = new Uint8Array(256 * 1024 * 1024).fill(7); // held by the loop alone
          digest = crypto.createHash('sha256').update(input).digest('hex');
          loop.submit(new Float64Array([0, 1, -1, 2]), 1, [input]); // a hash, in the slot of the task being freed
        }));
        loop.submit(new Float64Array([0, 9, -1, 0]), 1, [resubmitting]);
        loop.wait(0, -1);
        console.log(loop.drain(), ids[0]);
        for (let i = 0; i < 3; i++) gc();
        loop.wait(0, -1);
        console.log(loop.drain(), ids[0], statuses[0], payloads[0].toString('hex') === digest);
        loop.stop();
      `,
        { nodeArgs: ['--expose-gc'] },
      );
      expect(result).toMatchObject({ code: 0, signal: null, stderr: '', stdout: '1 0\n1 0 0 true\n' });
    });
  });

  it("a request made through one copy of sideloop's table for another copy's loop fails its Future, and is not read as the other's", async () => {
    // Both copies tagged their requests alike: the other copy took the
    // request as its own, read with its own layout (another version's would
    // differ). Each copy's tag is its own now.
    const copy = copyOfPackage();
    try {
      const result = await runScript(`
        const loop = new (require(SIDELOOP).EventLoop)({ backend: 'native' });
        const other = new (require(${JSON.stringify(copy)}).EventLoop)({ backend: 'native' });
        const reentrant = require(${JSON.stringify(addon)});
        (async () => {
          const crossed = await reentrant.submitThrough(loop, other).then((value) => value, (error) => error.code);
          console.log(await reentrant.submitThrough(loop, loop), await reentrant.submitThrough(other, other), crossed);
          await Promise.all([loop.shutdown(), other.shutdown()]);
        })();
      `);
      expect(result).toMatchObject({ code: 0, stderr: '', stdout: '42 42 ERR_SIDELOOP_BAD_TASK\n' });
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

/**
 * A second copy of the package, as a dependency tree with two versions of
 * sideloop has: its own JS and its own binary (the one under test, copied:
 * a file of its own, so the process loads a second addon). Remove it after.
 */
function copyOfPackage(): string {
  const copy = mkdtempSync(path.join(os.tmpdir(), 'sideloop-copy-'));
  cpSync(path.join(PACKAGE_DIR, 'dist'), path.join(copy, 'dist'), { recursive: true });
  cpSync(path.join(PACKAGE_DIR, 'package.json'), path.join(copy, 'package.json'));
  cpSync(path.dirname(require.resolve('node-gyp-build/package.json')), path.join(copy, 'node_modules', 'node-gyp-build'), { recursive: true });
  const binary = (require('node-gyp-build') as { resolve(dir: string): string }).resolve(PACKAGE_DIR);
  cpSync(binary, path.join(copy, path.relative(PACKAGE_DIR, binary)));
  return copy;
}

/**
 * Builds the example against a changed copy of the public header, as an
 * extension built for another sideloop would be, and returns it loaded.
 */
function buildAgainstChangedHeader(change: (header: string) => string): Extension {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sideloop-abi-'));
  try {
    const source = path.join(root, 'examples', 'native-extension');
    cpSync(EXAMPLE, source, { recursive: true, filter: (file) => path.relative(EXAMPLE, file).split(path.sep)[0] !== 'build' });
    mkdirSync(path.join(root, 'include'));
    const header = readFileSync(path.join(PACKAGE_DIR, 'include', 'sideloop.h'), 'utf8');
    const changed = change(header);
    expect(changed).not.toBe(header);
    writeFileSync(path.join(root, 'include', 'sideloop.h'), changed);
    const nodeGyp = path.join(PACKAGE_DIR, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    execFileSync(process.execPath, [nodeGyp, 'rebuild'], { cwd: source, stdio: 'pipe' });
    return require(source) as Extension;
  } finally {
    rmSync(root, { recursive: true, force: true }); // once loaded, the files are no longer needed
  }
}

describe('an extension built for another ABI', () => {
  const refused = expect.objectContaining({ code: 'ERR_SIDELOOP_ABI_MISMATCH', message: expect.stringContaining('another version') });

  it('of another version is refused with ERR_SIDELOOP_ABI_MISMATCH, and submits nothing', () => {
    const other = buildAgainstChangedHeader((header) => header.replace('#define SIDELOOP_ABI_VERSION 1', '#define SIDELOOP_ABI_VERSION 2'));
    const loop = new EventLoop({ backend: 'native' });
    expect(() => other.crc32(loop, Buffer.from('abc'))).toThrow(refused);
    expect(other.liveTasks()).toBe(0);
    expect(loop.state).toBe('idle');
  });

  it('that needs a function this sideloop lacks (a larger table) is refused the same way', () => {
    const other = buildAgainstChangedHeader((header) =>
      header.replace('} sideloop_api;', '  void (*added_in_a_later_release)(void);\n} sideloop_api;'),
    );
    const loop = new EventLoop({ backend: 'native' });
    expect(() => other.crc32(loop, Buffer.from('abc'))).toThrow(refused);
    expect(other.liveTasks()).toBe(0);
    expect(loop.state).toBe('idle');
  });
});

describe('a native extension across process and thread exits', () => {
  const prelude = `const { EventLoop } = require(SIDELOOP); const ext = require(${JSON.stringify(EXAMPLE)});
    const endless = () => ext.crc32(loop, Buffer.alloc(64 * 1024 * 1024, 1), { chunkSize: 1 });`;
  const clean = (result: { code: number | null; signal: string | null; hung: boolean; stderr: string }) => {
    expect(result.hung, `hung; stderr: ${result.stderr}`).toBe(false);
    expect(result.signal, `killed by a signal; stderr: ${result.stderr}`).toBeNull();
    expect(result.code, `stderr: ${result.stderr}`).toBe(0);
  };

  it('process.exit() with a task in flight exits cleanly', async () => {
    const result = await runScript(`const loop = new (require(SIDELOOP).EventLoop)(); ${prelude}
      endless();
      ext.crc32(loop, Buffer.from('abc')).then((sum) => { console.log(sum); process.exit(0); });
    `);
    clean(result);
    expect(result.stdout).toBe('891568578\n');
  });

  it('with keepAlive: false, a task in flight does not keep the process alive, and the exit is clean', async () => {
    const result = await runScript(`const loop = new (require(SIDELOOP).EventLoop)({ keepAlive: false }); ${prelude}
      endless();
      process.on('exit', () => console.log('exit', loop.pending));
    `);
    clean(result);
    expect(result.stdout).toBe('exit 1\n');
  });

  it('two copies of sideloop in one process: each loop uses its own copy, and process.exit() with work on both is clean', async () => {
    const copy = copyOfPackage();
    try {
      const result = await runScript(`const loop = new (require(SIDELOOP).EventLoop)(); ${prelude}
        const Other = require(${JSON.stringify(copy)});
        const other = new Other.EventLoop({ backend: 'native' });
        const addons = new Set(require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\\n')
          .filter((line) => line.endsWith('/sideloop.node')).map((line) => line.split(' ').pop()));
        (async () => {
          const sums = await Promise.all([ext.crc32(loop, Buffer.from('abc')), ext.crc32(other, Buffer.from('abc'))]);
          const digests = await Promise.all([loop.hash('md5', 'abc'), other.hash('md5', 'abc')]);
          // Each loop ran its own two tasks: the extension reached each through its own copy.
          console.log(Other.EventLoop !== EventLoop, addons.size, sums.join(','), digests[0].equals(digests[1]),
            loop.stats().completed, other.stats().completed);
          endless(); other.sleep(600000); ext.crc32(other, Buffer.alloc(64 * 1024 * 1024, 1), { chunkSize: 1 });
          process.exit(0);
        })();
      `);
      clean(result);
      expect(result.stdout).toBe('true 2 891568578,891568578 true 2 2\n');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('runs in worker threads, and a worker terminated with a task in flight crashes nothing', async () => {
    const result = await runScript(`
      const { Worker } = require('node:worker_threads');
      const source = \`
        const { parentPort } = require('node:worker_threads');
        const SIDELOOP = ${JSON.stringify(DIST).replace(/"/g, "'")};
        const loop = new (require(\${JSON.stringify(SIDELOOP)}).EventLoop)({ backend: 'native' });
        ${prelude.replace(/`/g, '\\`').replace(/\$\{/g, '\\${')}
        ext.crc32(loop, Buffer.from('abc')).then((sum) => { endless(); parentPort.postMessage(sum); });
      \`;
      (async () => {
        const sums = [];
        for (let round = 0; round < 5; round++) {
          const worker = new Worker(source, { eval: true });
          sums.push(await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); }));
          await worker.terminate();
        }
        console.log(sums.join(','));
      })();
    `);
    clean(result);
    expect(result.stdout).toBe('891568578,891568578,891568578,891568578,891568578\n');
  });
});
