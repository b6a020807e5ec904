// Case 5: SHA-256 and gzip of 64 KiB: tasks per second for one EventLoop and
// an EventLoopGroup of 2, against Node's threadpool and synchronous calls.
'use strict';
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');
const zlib = require('node:zlib');
const { EventLoop, EventLoopGroup } = require('../..');
const { quick, rounds, summary, windowed, report } = require('../lib');

const INPUT = crypto.randomBytes(32 * 1024).toString('hex'); // 64 KiB of text: compressible, like real payloads
const DATA = Buffer.from(INPUT);
const TOTAL = quick ? 200 : 3_000;
const WINDOW = 16;

function sync(work) {
  const t0 = performance.now();
  for (let i = 0; i < TOTAL; i++) work();
  return TOTAL / ((performance.now() - t0) / 1000);
}

async function measure(workloads) {
  const results = {};
  for (const [name, submit] of Object.entries(workloads)) {
    results[name] = summary(await rounds(() => (typeof submit === 'function' && submit.sync ? sync(submit) : windowed(submit, TOTAL, WINDOW))));
  }
  return results;
}

const onMain = (fn) => Object.assign(fn, { sync: true });

async function main() {
  const results = {};
  for (const backend of ['native', 'worker']) {
    const loop = new EventLoop({ backend });
    const group = new EventLoopGroup({ backend, size: 2 });
    results[backend] = await measure({
      sha256Loop: () => loop.hash('sha256', DATA),
      sha256Group2: () => group.hash('sha256', DATA),
      gzipLoop: () => loop.gzip(DATA),
      gzipGroup2: () => group.gzip(DATA),
    });
    await Promise.all([loop.shutdown(), group.shutdown()]);
  }
  results.node = await measure({
    sha256Threadpool: () => crypto.subtle.digest('SHA-256', DATA),
    sha256Sync: onMain(() => crypto.createHash('sha256').update(DATA).digest()),
    gzipThreadpool: () => new Promise((resolve, reject) => zlib.gzip(DATA, (error, out) => (error ? reject(error) : resolve(out)))),
    gzipSync: onMain(() => zlib.gzipSync(DATA)),
  });
  report({ case: 'cpu', bytes: DATA.length, total: TOTAL, window: WINDOW, results });
}

main();
