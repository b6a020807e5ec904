// Case 1: tiny tasks (sleep(0)), 1,024 kept in flight: tasks per second.
'use strict';
const path = require('node:path');
const { Piscina } = require('piscina');
const { EventLoop } = require('../..');
const { quick, sideBySide, windowed, report } = require('../lib');

const WINDOW = 1024;
const TOTAL = quick ? 20_000 : 300_000;
const PEER_TOTAL = quick ? 2_000 : 30_000; // piscina is ~100x slower: fewer tasks, same window

function piscina(options) {
  return new Piscina({ filename: path.join(__dirname, '..', 'peers', 'noop.js'), ...options });
}

async function main() {
  const native = new EventLoop({ backend: 'native' });
  const worker = new EventLoop({ backend: 'worker' });
  const piscinaDefault = piscina({});
  // piscina's best configuration found on these machines (see the findings note)
  const piscinaBest = piscina({ maxThreads: 1, minThreads: 1, concurrentTasksPerWorker: 256, atomics: 'async' });
  const results = await sideBySide({
    floor: () => windowed(() => new Promise((resolve) => resolve()), TOTAL, WINDOW),
    native: () => windowed(() => native.sleep(0), TOTAL, WINDOW),
    worker: () => windowed(() => worker.sleep(0), TOTAL, WINDOW),
    piscinaDefault: () => windowed(() => piscinaDefault.run(null), PEER_TOTAL, WINDOW),
    piscinaBest: () => windowed(() => piscinaBest.run(null), PEER_TOTAL, WINDOW),
  });
  await Promise.all([native.shutdown(), worker.shutdown(), piscinaDefault.destroy(), piscinaBest.destroy()]);
  report({ case: 'throughput', window: WINDOW, total: TOTAL, peerTotal: PEER_TOTAL, results });
}

main();
