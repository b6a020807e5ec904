// Case 5: SHA-256 and gzip of 64 KiB: tasks per second for one EventLoop and
// an EventLoopGroup of 2, against Node's threadpool and synchronous calls.
'use strict';
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');
const zlib = require('node:zlib');
const { EventLoop, EventLoopGroup } = require('../..');
const { quick, sideBySide, windowed, report } = require('../lib');

const INPUT = crypto.randomBytes(32 * 1024).toString('hex'); // 64 KiB of text: compressible, like real payloads
const DATA = Buffer.from(INPUT);
// Short rounds (on one thread about 0.06 s of SHA-256, 0.3 s of gzip), many of them, side by
// side: the host's speed drifts within a second, and the median of many rounds rides it out.
const TOTAL = { sha256: quick ? 200 : 1_000, gzip: quick ? 20 : 128 };
const ROUNDS = quick ? 2 : 21;
const WINDOW = 16;

/** Tasks per second of `total` calls of `work` on the main thread. */
function synchronously(work, total) {
  const t0 = performance.now();
  for (let i = 0; i < total; i++) work();
  return total / ((performance.now() - t0) / 1000);
}

async function main() {
  const loops = {};
  for (const backend of ['native', 'worker']) {
    loops[backend] = { loop: new EventLoop({ backend }), group: new EventLoopGroup({ backend, size: 2 }) };
  }
  const results = { native: {}, worker: {}, node: {} };
  const work = {
    sha256: {
      submit: (runner) => runner.hash('sha256', DATA),
      threadpool: () => crypto.subtle.digest('SHA-256', DATA),
      sync: () => crypto.createHash('sha256').update(DATA).digest(),
    },
    gzip: {
      submit: (runner) => runner.gzip(DATA),
      threadpool: () => new Promise((resolve, reject) => zlib.gzip(DATA, (error, out) => (error ? reject(error) : resolve(out)))),
      sync: () => zlib.gzipSync(DATA),
    },
  };
  for (const [algo, { submit, threadpool, sync }] of Object.entries(work)) {
    const total = TOTAL[algo];
    const workloads = {};
    for (const backend of ['native', 'worker']) {
      const { loop, group } = loops[backend];
      workloads[`${backend}.${algo}Loop`] = () => windowed(() => submit(loop), total, WINDOW);
      workloads[`${backend}.${algo}Group2`] = () => windowed(() => submit(group), total, WINDOW);
    }
    workloads[`node.${algo}Threadpool`] = () => windowed(threadpool, total, WINDOW);
    workloads[`node.${algo}Sync`] = () => synchronously(sync, total);
    for (const [name, figure] of Object.entries(await sideBySide(workloads, ROUNDS))) {
      const [owner, key] = name.split('.');
      results[owner][key] = figure;
    }
  }
  await Promise.all(Object.values(loops).flatMap(({ loop, group }) => [loop.shutdown(), group.shutdown()]));
  report({ case: 'cpu', bytes: DATA.length, total: TOTAL, window: WINDOW, results });
}

main();
