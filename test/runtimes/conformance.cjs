// The contract's main paths, in plain CommonJS so that Node (`node FILE`),
// Bun (`bun FILE`) and Deno (`deno run -A FILE`) all run it as it is.
// test/runtimes.test.ts runs it under each; it also runs by hand.
//
//   node test/runtimes/conformance.cjs [auto|worker|native]   (default auto)
//
// Results are checked against the runtime's own crypto, zlib and fs. Each
// check prints `ok - NAME` or `not ok - NAME: ERROR`; the last line, printed
// from the exit handler, is `conformance: N passed, M failed`. The script
// never calls process.exit: the process ending by itself once the loops are
// idle is one of the checks.
'use strict';
const assert = require('node:assert/strict');
const { AsyncLocalStorage } = require('node:async_hooks');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const { EventLoop, EventLoopGroup, wait, asCompleted, CancelledError, TimeoutError, EventLoopClosedError } = require(
  '../../dist/index.js',
);

const runtime = process.versions.bun ? 'Bun' : typeof globalThis.Deno === 'object' ? 'Deno' : 'Node';
const backend = process.argv[2] ?? 'auto';
const results = { passed: 0, failed: 0 };
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sideloop-conformance-'));
let lastStepRan = false;

async function check(name, fn) {
  try {
    await fn();
    results.passed++;
    console.log(`ok - ${name}`);
  } catch (error) {
    results.failed++;
    console.log(`not ok - ${name}: ${error?.stack ?? error}`);
  }
}

/** Whether the addon's shared object is mapped into this process (Linux; undefined elsewhere). */
function addonMapped() {
  if (process.platform !== 'linux') return undefined;
  return fs.readFileSync('/proc/self/maps', 'utf8').includes('sideloop.node');
}

async function main() {
  console.log(`conformance: ${runtime} ${process.version}, backend '${backend}'`);

  await check('backend selection', () => {
    const loop = new EventLoop({ backend });
    if (runtime === 'Node') assert.equal(loop.backend, backend === 'worker' ? 'worker' : 'native');
    else assert.equal(loop.backend, 'worker');
  });

  if (runtime !== 'Node') {
    await check(`backend 'native' throws, naming ${runtime}`, () => {
      assert.throws(
        () => new EventLoop({ backend: 'native' }),
        (error) =>
          error instanceof Error &&
          error.code === 'ERR_SIDELOOP_NATIVE_UNAVAILABLE' &&
          error.message.includes(runtime) &&
          error.message.includes('libuv') &&
          error.cause instanceof Error,
      );
    });
    await check('the addon was never loaded', () => {
      // Loading it would not crash, its first call would: it must not even be mapped.
      assert.notEqual(addonMapped(), true);
    });
  } else if (backend !== 'worker') {
    await check('the addon is loaded (the mapping check above sees it)', () => {
      assert.notEqual(addonMapped(), false);
    });
  }

  await check('lifecycle: start, shutdown waits for pending tasks, restart', async () => {
    const loop = new EventLoop({ backend, name: 'conf-life' });
    assert.equal(loop.state, 'idle');
    assert.equal(loop.start(), loop);
    assert.equal(loop.state, 'running');
    const pending = loop.sleep(20, 'slept');
    const stopping = loop.shutdown();
    assert.equal(loop.state, 'stopping');
    const refused = loop.sleep(0);
    await assert.rejects(refused, EventLoopClosedError);
    await stopping;
    assert.equal(loop.state, 'stopped');
    assert.equal(pending.state, 'finished');
    assert.equal(await pending, 'slept');
    assert.equal(await loop.sleep(0, 'again'), 'again'); // a submission restarts a stopped loop
    assert.equal(loop.state, 'running');
    await loop.shutdown();
    const stats = loop.stats();
    assert.deepEqual(
      { submitted: stats.submitted, completed: stats.completed, failed: stats.failed, pending: stats.pending },
      { submitted: 2, completed: 2, failed: 0, pending: 0 }, // the refused one counts nowhere
    );
  });

  await check('lifecycle: shutdown({ cancelPending: true }) cancels what is pending', async () => {
    const loop = new EventLoop({ backend });
    const long = loop.sleep(60_000);
    await loop.shutdown({ cancelPending: true });
    assert.equal(long.cancelled(), true);
    await assert.rejects(long, CancelledError);
    assert.equal(loop.stats().cancelled, 1);
  });

  const loop = new EventLoop({ backend, name: 'conformance' });
  const text = 'sideloop conformance '.repeat(1000);
  // Past the worker backend's 1 MiB input chunk, so large inputs stream too.
  const big = crypto.randomBytes(3 * 1024 * 1024 + 17);

  await check('sleep', async () => {
    assert.equal(await loop.sleep(0, 'zero'), 'zero');
    assert.equal(await loop.sleep(10, 'ten'), 'ten');
  });

  await check('hash, every algorithm', async () => {
    for (const algorithm of ['md5', 'sha1', 'sha256', 'sha384', 'sha512']) {
      assert.deepEqual(await loop.hash(algorithm, text), crypto.createHash(algorithm).update(text).digest(), algorithm);
    }
    assert.deepEqual(await loop.hash('sha256', big), crypto.createHash('sha256').update(big).digest(), 'large input');
  });

  await check('gzip and gunzip', async () => {
    for (const level of [undefined, 0, 1, 9]) {
      const gzipped = await loop.gzip(text, { level });
      assert.deepEqual(gzipped, zlib.gzipSync(text, { level }), `level ${level}`);
      assert.equal((await loop.gunzip(gzipped)).toString(), text);
    }
    // Level 0 stores blocks whose bounds follow the input and output chunks: the strictest comparison.
    assert.deepEqual(await loop.gzip(big, { level: 0 }), zlib.gzipSync(big, { level: 0 }), 'large input, level 0');
    assert.deepEqual(await loop.gunzip(zlib.gzipSync(big)), big, 'large input');
  });

  await check('deflate and inflate', async () => {
    const deflated = await loop.deflate(text, { level: 6 });
    assert.deepEqual(deflated, zlib.deflateSync(text, { level: 6 }));
    assert.equal((await loop.inflate(deflated)).toString(), text);
    assert.deepEqual(await loop.inflate(await loop.deflate(big)), big, 'large input');
  });

  await check('corrupt input fails as the runtime\'s own zlib does', async () => {
    const garbage = Buffer.from('not gzip at all');
    const expected = (() => {
      try {
        zlib.gunzipSync(garbage);
      } catch (error) {
        return error;
      }
      throw new Error('zlib.gunzipSync accepted garbage');
    })();
    await assert.rejects(loop.gunzip(garbage), (error) => error instanceof Error && error.code === expected.code);
  });

  await check('writeFile and readFile', async () => {
    const file = path.join(scratch, 'data.bin');
    await loop.writeFile(file, big);
    assert.deepEqual(fs.readFileSync(file), big);
    fs.writeFileSync(file, text);
    assert.equal((await loop.readFile(file)).toString(), text);
    await assert.rejects(loop.readFile(path.join(scratch, 'missing')), { code: 'ENOENT' });
  });

  await check('exec', async () => {
    const result = await loop.exec('sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: 'to stdin' });
    assert.equal(result.exitCode, 3);
    assert.equal(result.signal, null);
    assert.equal(result.stdout.toString(), 'to stdin');
    assert.equal(result.stderr.toString(), 'oops\n');
    await assert.rejects(loop.exec(path.join(scratch, 'no-such-program')), { code: 'ENOENT' });
  });

  await check('cancel: a sleep, an exec, and through an AbortSignal', async () => {
    const sleeping = loop.sleep(60_000);
    assert.equal(sleeping.cancel(), true);
    assert.equal(sleeping.cancelled(), true);
    await assert.rejects(sleeping, CancelledError);

    const child = loop.exec('sleep', ['60']);
    assert.equal(child.cancel(), true);
    await assert.rejects(child, CancelledError);

    const controller = new AbortController();
    const signalled = loop.sleep(60_000, undefined, { signal: controller.signal });
    controller.abort();
    await assert.rejects(signalled, CancelledError);
  });

  await check('a task timeout: a sleep, and an exec whose child is killed', async () => {
    await assert.rejects(loop.sleep(60_000, undefined, { timeout: 20 }), TimeoutError);
    await assert.rejects(loop.exec('sleep', ['60'], { timeout: 20 }), TimeoutError);
  });

  await check('result(timeout) blocks until the task is done', () => {
    assert.equal(loop.sleep(20, 42).result(30_000), 42);
    assert.deepEqual(loop.hash('sha1', big).result(30_000), crypto.createHash('sha1').update(big).digest());
    assert.deepEqual(loop.gzip(big).result(30_000), zlib.gzipSync(big));
    assert.equal(loop.exec('sh', ['-c', 'echo blocked']).result(30_000).stdout.toString(), 'blocked\n');
  });

  await check('result(timeout) throws TimeoutError when too short, and the task goes on', async () => {
    const long = loop.sleep(60_000);
    assert.throws(() => long.result(10), TimeoutError);
    assert.equal(long.done(), false);
    long.cancel();
    await assert.rejects(long, CancelledError);
  });

  await check('a done callback sees the AsyncLocalStorage store it was added under', async () => {
    const als = new AsyncLocalStorage();
    const seen = await als.run('request', () => new Promise((resolve) => {
      loop.sleep(1).addDoneCallback(() => resolve(als.getStore()));
    }));
    assert.equal(seen, 'request');
  });

  await check('a throwing done callback\'s error is raised in its own context, never the loop starter\'s', async () => {
    const als = new AsyncLocalStorage();
    const fresh = new EventLoop({ backend });
    await als.run('starter', () => fresh.sleep(0));
    const seen = await new Promise((resolve) => {
      const onError = (error) => {
        process.off('uncaughtException', onError);
        resolve({ message: error.message, store: als.getStore() });
      };
      process.on('uncaughtException', onError);
      als.run('request', () => fresh.sleep(1).addDoneCallback(() => {
        throw new Error('from the callback');
      }));
    });
    await fresh.shutdown();
    assert.equal(seen.message, 'from the callback');
    // Node 20 gives such a handler no store at all; Deno gives it the callback's.
    assert.notEqual(seen.store, 'starter');
  });

  await check('EventLoopGroup', async () => {
    const group = new EventLoopGroup({ backend, size: 3 });
    assert.equal(group.backend, loop.backend);
    const inputs = Array.from({ length: 9 }, (_, i) => `input ${i}`);
    const digests = await Promise.all(inputs.map((input) => group.hash('sha256', input)));
    assert.deepEqual(digests, inputs.map((input) => crypto.createHash('sha256').update(input).digest()));
    assert.equal(group.state, 'running');
    await group.shutdown();
    assert.equal(group.state, 'stopped');
  });

  await check('wait and asCompleted', async () => {
    const quick = loop.sleep(0, 'quick');
    const slow = loop.sleep(60_000);
    const first = await wait([quick, slow], { returnWhen: 'FIRST_COMPLETED' });
    assert.deepEqual([...first.done], [quick]);
    assert.deepEqual([...first.notDone], [slow]);
    slow.cancel();

    const all = [loop.sleep(30, 'c'), loop.sleep(0, 'a'), loop.sleep(10, 'b')];
    const order = [];
    for await (const future of asCompleted(all)) order.push(future.result());
    assert.deepEqual(order, ['a', 'b', 'c']);
    const everything = await wait(all);
    assert.equal(everything.done.size, 3);
  });

  await check('the shared loop shuts down cleanly', async () => {
    await loop.shutdown();
    assert.equal(loop.state, 'stopped');
  });

  // The last step: a pending task on a loop nobody shuts down keeps the
  // process alive until it is done; then the idle loop lets it exit.
  const lastLoop = new EventLoop({ backend });
  lastLoop.sleep(20, 'last').then((value) => {
    lastStepRan = value === 'last';
  });
}

process.on('exit', () => {
  fs.rmSync(scratch, { recursive: true, force: true });
  if (lastStepRan) {
    results.passed++;
    console.log('ok - a pending task kept the process alive, then the idle process exited by itself');
  } else {
    results.failed++;
    console.log('not ok - the process exited before its last pending task was done');
  }
  console.log(`conformance: ${results.passed} passed, ${results.failed} failed`);
  process.exitCode = results.failed === 0 ? 0 : 1;
});

main().catch((error) => {
  results.failed++;
  console.log(`not ok - the script itself: ${error?.stack ?? error}`);
});
